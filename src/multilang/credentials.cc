// The KCL MultiLangDaemon's AwsCredentialsProvider values, mapped to shardline's providers.
//
// The KCL decodes the value (ML/config/AwsCredentialsProviderPropertyValueDecoder.java) as a
// comma-separated list of Java classes, each `Class|arg|arg|nestedKey=value`, tried under the
// prefixes software.amazon.kinesis.multilang.auth., software.amazon.awssdk.auth.credentials.
// and none, and chains those it can construct. Here a class is known by its simple name (any
// package prefix is dropped, so the SDK v1 names the KCL 1.x samples use work too).
#include <memory>
#include <string>
#include <vector>

#include "aws/sts.h"
#include "shardline/multilang.h"

namespace shardline {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t at = s.find(sep, pos);
    out.push_back(s.substr(pos, at == std::string_view::npos ? at : at - pos));
    if (at == std::string_view::npos) return out;
    pos = at + 1;
  }
}

// STS AssumeRole with the SDK chain's credentials (the KCL's KclStsAssumeRoleCredentialsProvider
// builds an StsClient on the default chain). Cached by the caller.
class AssumeRoleProvider final : public CredentialsProvider {
 public:
  AssumeRoleProvider(std::shared_ptr<CredentialsProvider> source, Result<detail::StsTarget> target,
                     detail::AssumeRoleParams params, std::chrono::milliseconds timeout)
      : source_(std::move(source)),
        target_(std::move(target)),
        params_(std::move(params)),
        timeout_(timeout) {}

  Result<Credentials> get() override {
    if (!target_.ok()) return target_.status().with_context(name() + ": STS endpoint");
    auto src = source_->get();
    if (!src.ok()) {
      Status s = src.status().with_context(name() + " source credentials");
      // The role is configured: a missing source is not "not configured".
      if (s.code() == StatusCode::kNotFound)
        return Status::invalid_argument(std::string(s.message()));
      return s;
    }
    auto c = detail::sts_assume_role(*target_, *src, params_, timeout_);
    if (!c.ok()) return c.status().with_context(name());
    c->source = name();
    return c;
  }
  std::string name() const override { return "assume role " + params_.role_arn; }

 private:
  std::shared_ptr<CredentialsProvider> source_;
  Result<detail::StsTarget> target_;
  detail::AssumeRoleParams params_;
  std::chrono::milliseconds timeout_;
};

Result<std::shared_ptr<CredentialsProvider>> assume_role(std::string_view entry,
                                                         const std::vector<std::string_view>& args,
                                                         const CredentialsOptions& options,
                                                         std::vector<std::string>* warnings) {
  std::vector<std::string> positional;
  std::string region(options.region);
  std::string endpoint;
  detail::AssumeRoleParams params;
  for (std::string_view a : args) {
    const std::size_t eq = a.find('=');
    if (eq == std::string_view::npos) {
      positional.emplace_back(a);
      continue;
    }
    const std::string_view key = a.substr(0, eq);
    const std::string_view value = a.substr(eq + 1);
    if (key == "endpointRegion") {
      region.assign(value);
    } else if (key == "externalId") {
      params.external_id.assign(value);
    } else if (key == "endpoint") {
      // ENDPOINT ::= SERVICE_ENDPOINT "^" SIGNING_REGION
      const std::size_t caret = value.find('^');
      if (caret == std::string_view::npos) {
        return Status::invalid_argument("AwsCredentialsProvider '" + std::string(entry) +
                                        "': endpoint must be URL^REGION, got '" +
                                        std::string(value) + "'");
      }
      endpoint.assign(value.substr(0, caret));
      region.assign(value.substr(caret + 1));
    } else if (warnings != nullptr) {
      warnings->push_back("AwsCredentialsProvider: unsupported nested key '" + std::string(key) +
                          "' in '" + std::string(entry) + "' ignored");
    }
  }
  if (positional.empty() || positional[0].empty()) {
    return Status::invalid_argument("AwsCredentialsProvider '" + std::string(entry) +
                                    "': the role ARN is missing (Name|roleArn|sessionName)");
  }
  params.role_arn = positional[0];
  if (positional.size() > 1) params.role_session_name = positional[1];
  Result<detail::StsTarget> target = Status::internal("unset");
  if (!endpoint.empty()) {
    auto ep = parse_endpoint_url(endpoint);
    if (!ep.ok()) {
      return ep.status().with_context("AwsCredentialsProvider '" + std::string(entry) +
                                      "' endpoint");
    }
    target = detail::StsTarget{region.empty() ? "us-east-1" : region, *ep};
  } else {
    target = detail::resolve_sts_target(region, options.profile);
  }
  return std::shared_ptr<CredentialsProvider>(std::make_shared<AssumeRoleProvider>(
      make_default_credentials_provider(options), std::move(target), std::move(params),
      options.sts_timeout));
}

}  // namespace

Result<std::shared_ptr<CredentialsProvider>> credentials_provider_from_kcl(
    std::string_view value, const CredentialsOptions& options, std::vector<std::string>* warnings) {
  auto warn = [&](std::string w) {
    if (warnings != nullptr) warnings->push_back(std::move(w));
  };
  std::vector<std::shared_ptr<CredentialsProvider>> chain;
  bool only_default = true;
  int entries = 0;
  for (std::string_view raw : split(value, ',')) {
    const std::string_view entry = trim(raw);
    if (entry.empty()) continue;
    ++entries;
    std::vector<std::string_view> parts = split(entry, '|');
    std::string_view cls = trim(parts.front());
    if (const std::size_t dot = cls.rfind('.'); dot != std::string_view::npos) {
      cls.remove_prefix(dot + 1);
    }
    const std::vector<std::string_view> args(parts.begin() + 1, parts.end());
    std::shared_ptr<CredentialsProvider> p;
    bool is_default = false;
    if (cls == "DefaultCredentialsProvider" || cls == "DefaultAWSCredentialsProviderChain" ||
        cls == "DefaultAwsCredentialsProviderChain") {
      p = make_default_credentials_provider(options);
      is_default = true;
    } else if (cls == "EnvironmentVariableCredentialsProvider") {
      p = make_environment_credentials_provider();
    } else if (cls == "ProfileCredentialsProvider") {
      CredentialsOptions o = options;
      if (!args.empty() && !trim(args[0]).empty()) o.profile.assign(trim(args[0]));
      p = make_profile_credentials_provider(o);
    } else if (cls == "WebIdentityTokenFileCredentialsProvider" ||
               cls == "WebIdentityTokenCredentialsProvider") {
      p = make_web_identity_credentials_provider(options);
    } else if (cls == "ContainerCredentialsProvider" ||
               cls == "EC2ContainerCredentialsProviderWrapper" ||
               cls == "ContainerCredentialsProviderWrapper") {
      p = make_container_credentials_provider(options);
    } else if (cls == "InstanceProfileCredentialsProvider") {
      p = make_instance_metadata_credentials_provider(options);
    } else if (cls == "StsAssumeRoleCredentialsProvider" ||
               cls == "KclStsAssumeRoleCredentialsProvider" ||
               cls == "STSAssumeRoleSessionCredentialsProvider" ||
               cls == "KclSTSAssumeRoleSessionCredentialsProvider") {
      auto r = assume_role(entry, args, options, warnings);
      if (!r.ok()) return r.status();
      p = *r;
    } else if (cls == "SystemPropertyCredentialsProvider" ||
               cls == "SystemPropertiesCredentialsProvider") {
      warn("AwsCredentialsProvider: '" + std::string(entry) +
           "' reads Java system properties, which a native daemon does not have; skipped (set "
           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead)");
      continue;
    } else if (cls == "AnonymousCredentialsProvider") {
      warn("AwsCredentialsProvider: '" + std::string(entry) +
           "' (unsigned requests) is not supported; skipped");
      continue;
    } else {
      warn("AwsCredentialsProvider: '" + std::string(entry) +
           "' cannot be mapped to a shardline credentials provider; skipped");
      continue;
    }
    if (!is_default) only_default = false;
    chain.push_back(std::move(p));
  }
  if (chain.empty()) {
    if (entries != 0) {
      warn("AwsCredentialsProvider: no provider of '" + std::string(value) +
           "' could be mapped; using the default chain (environment, web identity, profile, "
           "container, instance metadata)");
    }
    return std::shared_ptr<CredentialsProvider>();
  }
  if (only_default) return std::shared_ptr<CredentialsProvider>();  // the client's default
  if (chain.size() == 1) return make_caching_credentials_provider(chain.front(), options.caching);
  return make_caching_credentials_provider(make_chain_credentials_provider(std::move(chain)),
                                           options.caching);
}

}  // namespace shardline
