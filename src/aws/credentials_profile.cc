// The shared-files provider: static keys, credential_process, and roles assumed from a source
// profile, a credential source or a web identity token.
#include <algorithm>
#include <charconv>
#include <string>
#include <vector>

#include "aws/credentials_internal.h"
#include "aws/shared_config.h"
#include "aws/sts.h"
#include "shardline/credentials.h"

namespace shardline {

namespace {

using detail::ProfileValues;
using detail::SharedConfig;

// Source profiles may chain (a -> b -> c); botocore has no limit, but a long chain is a
// configuration mistake and each hop is an STS call.
constexpr std::size_t kMaxRoleChain = 8;

std::string_view value_of(const ProfileValues& p, std::string_view key) {
  const auto it = p.find(key);
  return it == p.end() ? std::string_view() : std::string_view(it->second);
}

std::string quoted(std::string_view name) { return "profile '" + std::string(name) + "'"; }

class ProfileProvider final : public CredentialsProvider {
 public:
  explicit ProfileProvider(const CredentialsOptions& options)
      : options_(options),
        profile_(detail::resolve_profile_name(options.profile)),
        explicit_(!options.profile.empty() || detail::env_var("AWS_PROFILE").has_value() ||
                  detail::env_var("AWS_DEFAULT_PROFILE").has_value()),
        config_path_(detail::shared_config_file_path()),
        credentials_path_(detail::shared_credentials_file_path()),
        sts_(detail::resolve_sts_target(options.region, profile_)),
        environment_(make_environment_credentials_provider()),
        container_(make_container_credentials_provider(options)),
        instance_(make_instance_metadata_credentials_provider(options)) {}

  Result<Credentials> get() override {
    auto files = detail::load_shared_config(config_path_, credentials_path_);
    if (!files.ok()) return files.status();
    std::vector<std::string> chain;
    return resolve(*files, profile_, chain, /*as_source=*/false);
  }

  std::string name() const override { return quoted(profile_); }

 private:
  Result<Credentials> resolve(const SharedConfig& files, const std::string& name,
                              std::vector<std::string>& chain, bool as_source) {
    const auto profile = files.profile(name);
    if (!profile) {
      std::string m = quoted(name) + " not found in " + files.describe_files();
      // The default profile may legitimately be absent; a profile the user named may not.
      if (chain.empty() && !explicit_) return detail::not_configured(std::move(m));
      return Status::invalid_argument(std::move(m));
    }
    const ProfileValues& p = *profile;
    const bool has_static =
        !value_of(p, "aws_access_key_id").empty() || !value_of(p, "aws_secret_access_key").empty();
    // A source profile's own keys win over its role settings, as in botocore.
    if (as_source && has_static) return static_credentials(name, p);
    if (!value_of(p, "role_arn").empty()) return assume_role(files, name, p, chain);
    if (has_static) return static_credentials(name, p);
    if (const auto command = value_of(p, "credential_process"); !command.empty()) {
      return process_credentials(name, std::string(command));
    }
    std::string m =
        quoted(name) + " has no credentials (no aws_access_key_id, role_arn or credential_process)";
    if (as_source) return Status::invalid_argument(std::move(m));
    return detail::not_configured(std::move(m));
  }

  static Result<Credentials> static_credentials(const std::string& name, const ProfileValues& p) {
    Credentials c;
    c.access_key_id.assign(value_of(p, "aws_access_key_id"));
    c.secret_access_key.assign(value_of(p, "aws_secret_access_key"));
    c.session_token.assign(value_of(p, "aws_session_token"));
    if (c.access_key_id.empty()) {
      return Status::invalid_argument(quoted(name) +
                                      " has aws_secret_access_key but no aws_access_key_id");
    }
    if (c.secret_access_key.empty()) {
      return Status::invalid_argument(quoted(name) +
                                      " has aws_access_key_id but no aws_secret_access_key");
    }
    c.source = quoted(name);
    return c;
  }

  Result<Credentials> process_credentials(const std::string& name, const std::string& command) {
    const std::string what = quoted(name) + " credential_process";
    auto out = detail::run_credential_process(command, options_.process_timeout);
    if (!out.ok()) return std::move(out).status().with_context(what);
    auto c = detail::parse_credentials_json(*out, detail::CredentialsJsonFormat::kProcess);
    if (!c.ok()) return std::move(c).status().with_context(what);
    c->source = what;
    return c;
  }

  Result<Credentials> assume_role(const SharedConfig& files, const std::string& name,
                                  const ProfileValues& p, std::vector<std::string>& chain) {
    const std::string what = quoted(name);
    const std::string role_arn(value_of(p, "role_arn"));
    const std::string session(value_of(p, "role_session_name"));
    if (!value_of(p, "mfa_serial").empty()) {
      return Status(StatusCode::kUnimplemented,
                    what + ": mfa_serial (interactive MFA for assume role) is not supported");
    }
    if (const auto token_file = value_of(p, "web_identity_token_file"); !token_file.empty()) {
      auto c = detail::web_identity_credentials(options_, sts_, std::string(token_file), role_arn,
                                                session);
      if (!c.ok()) return std::move(c).status().with_context(what);
      c->source = what + " (web identity)";
      return c;
    }
    const std::string source_profile(value_of(p, "source_profile"));
    const std::string_view credential_source = value_of(p, "credential_source");
    if (!source_profile.empty() && !credential_source.empty()) {
      return Status::invalid_argument(
          what + " has both source_profile and credential_source for role_arn");
    }
    Result<Credentials> source = Status::internal("unset");
    if (!source_profile.empty()) {
      if (source_profile == name) {
        // "source_profile = self": the profile's own keys are the source.
        source = static_credentials(name, p);
      } else if (std::find(chain.begin(), chain.end(), source_profile) != chain.end()) {
        std::string cycle;
        for (const auto& n : chain) cycle.append(n).append(" -> ");
        cycle.append(name).append(" -> ").append(source_profile);
        return Status::invalid_argument("source_profile cycle: " + cycle);
      } else if (chain.size() >= kMaxRoleChain) {
        return Status::invalid_argument(what + ": more than " + std::to_string(kMaxRoleChain) +
                                        " chained source profiles");
      } else {
        chain.push_back(name);
        source = resolve(files, source_profile, chain, /*as_source=*/true);
        chain.pop_back();
      }
    } else if (credential_source == "Environment") {
      source = environment_->get();
    } else if (credential_source == "Ec2InstanceMetadata") {
      source = instance_->get();
    } else if (credential_source == "EcsContainer") {
      source = container_->get();
    } else if (!credential_source.empty()) {
      return Status::invalid_argument(what + ": unknown credential_source '" +
                                      std::string(credential_source) +
                                      "' (Environment, Ec2InstanceMetadata or EcsContainer)");
    } else {
      return Status::invalid_argument(
          what +
          " has role_arn but no source_profile, credential_source or web_identity_token_file");
    }
    if (!source.ok()) {
      // Whatever the source said, the role cannot be assumed: not a "not configured" case.
      Status s = std::move(source).status().with_context(what + " source credentials");
      if (s.code() == StatusCode::kNotFound)
        return Status::invalid_argument(std::string(s.message()));
      return s;
    }
    detail::AssumeRoleParams params;
    params.role_arn = role_arn;
    params.role_session_name = session;
    params.external_id.assign(value_of(p, "external_id"));
    if (const auto d = value_of(p, "duration_seconds"); !d.empty()) {
      int seconds = 0;
      const auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), seconds);
      if (ec != std::errc() || end != d.data() + d.size() || seconds < 900 || seconds > 43200) {
        return Status::invalid_argument(what +
                                        ": duration_seconds must be an integer in [900, 43200]");
      }
      params.duration_seconds = seconds;
    }
    if (!sts_.ok()) return sts_.status().with_context(what + " STS endpoint");
    auto c = detail::sts_assume_role(*sts_, *source, params, options_.sts_timeout);
    if (!c.ok()) return std::move(c).status().with_context(what);
    c->source = what + " (assume role)";
    return c;
  }

  const CredentialsOptions options_;
  const std::string profile_;
  const bool explicit_;
  const std::string config_path_;
  const std::string credentials_path_;
  const Result<detail::StsTarget> sts_;
  const std::shared_ptr<CredentialsProvider> environment_;
  const std::shared_ptr<CredentialsProvider> container_;
  const std::shared_ptr<CredentialsProvider> instance_;
};

}  // namespace

std::shared_ptr<CredentialsProvider> make_profile_credentials_provider(
    const CredentialsOptions& options) {
  return std::make_shared<ProfileProvider>(options);
}

}  // namespace shardline
