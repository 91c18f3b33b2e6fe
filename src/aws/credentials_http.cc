// The providers that fetch over HTTP: web identity (STS), ECS/EKS container, EC2 IMDS.
#include <string>

#include "aws/blocking_http.h"
#include "aws/credentials_internal.h"
#include "aws/shared_config.h"
#include "aws/sts.h"
#include "shardline/aws_config.h"
#include "shardline/credentials.h"

namespace shardline {

namespace detail {

Result<Credentials> web_identity_credentials(const CredentialsOptions& options,
                                             const Result<StsTarget>& target,
                                             const std::string& token_file,
                                             const std::string& role_arn,
                                             const std::string& session_name) {
  auto token = read_small_file(token_file, 64 * 1024);
  // Configured but unreadable is an error, never "not configured" (kNotFound would make a
  // chain move on).
  if (!token.ok()) {
    return Status::invalid_argument("web identity token file: " +
                                    std::string(token.status().message()));
  }
  std::string_view t(*token);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) {
    t.remove_suffix(1);
  }
  if (t.empty())
    return Status::invalid_argument("web identity token file " + token_file + " is empty");
  if (!target.ok()) return target.status();
  return sts_assume_role_with_web_identity(*target, role_arn, session_name, t, options.sts_timeout);
}

}  // namespace detail

namespace {

using detail::BlockingHttpRequest;
using detail::BlockingHttpResponse;

// One metadata request with the configured attempts: transport failures and 5xx are retried,
// other statuses are returned to the caller.
Result<BlockingHttpResponse> metadata_request(const CredentialsOptions& options,
                                              BlockingHttpRequest req) {
  req.connect_timeout = options.metadata_timeout;
  req.timeout = options.metadata_timeout;
  req.use_proxy = false;
  const int attempts = options.metadata_attempts < 1 ? 1 : options.metadata_attempts;
  Result<BlockingHttpResponse> r = Status::internal("no attempt made");
  for (int i = 0; i < attempts; ++i) {
    r = detail::blocking_http(req);
    if (r.ok() && r->status < 500) return r;
  }
  return r;
}

Status http_status_error(std::string_view what, long status) {
  std::string m(what);
  m.append(": HTTP ").append(std::to_string(status));
  if (status == 401 || status == 403) return {StatusCode::kPermissionDenied, std::move(m)};
  if (status >= 500) return Status::unavailable(std::move(m));
  return Status::invalid_argument(std::move(m));
}

// ---- web identity from the environment ----

class WebIdentityProvider final : public CredentialsProvider {
 public:
  explicit WebIdentityProvider(const CredentialsOptions& options)
      : options_(options),
        sts_(detail::resolve_sts_target(options.region,
                                        detail::resolve_profile_name(options.profile))),
        token_file_(detail::env_var("AWS_WEB_IDENTITY_TOKEN_FILE")),
        role_arn_(detail::env_var("AWS_ROLE_ARN")),
        session_name_(detail::env_var("AWS_ROLE_SESSION_NAME").value_or("")) {}

  Result<Credentials> get() override {
    if (!token_file_) return detail::not_configured("AWS_WEB_IDENTITY_TOKEN_FILE not set");
    if (!role_arn_) {
      return Status::invalid_argument("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
    }
    auto c =
        detail::web_identity_credentials(options_, sts_, *token_file_, *role_arn_, session_name_);
    if (c.ok()) c->source = "web identity";
    return c;
  }
  std::string name() const override { return "web identity"; }

 private:
  const CredentialsOptions options_;
  const Result<detail::StsTarget> sts_;  // resolved when created, like the variables below
  const std::optional<std::string> token_file_, role_arn_;
  const std::string session_name_;
};

// ---- ECS / EKS container endpoint ----

constexpr std::string_view kEcsHost = "http://169.254.170.2";

// The host of an absolute URL, lower-cased, IPv6 brackets kept; "" if malformed.
std::string url_host(std::string_view url) {
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos) return {};
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (rest.find('@') != std::string_view::npos) return {};
  std::string_view host;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return {};
    host = rest.substr(0, close + 1);
  } else {
    host = rest.substr(0, rest.find(':'));
  }
  std::string h(host);
  for (char& c : h) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return h;
}

// Plain http is allowed only to the container agents' link-local addresses and to loopback,
// as in the SDKs: credentials must not cross a network in clear text.
bool allowed_http_host(const std::string& host) {
  if (host == "localhost" || host == "[::1]" || host == "169.254.170.2" ||
      host == "169.254.170.23" || host == "[fd00:ec2::23]") {
    return true;
  }
  // 127.0.0.0/8
  if (host.rfind("127.", 0) != 0) return false;
  int parts = 1;
  for (char c : host) {
    if (c == '.') {
      ++parts;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return parts == 4;
}

class ContainerProvider final : public CredentialsProvider {
 public:
  explicit ContainerProvider(const CredentialsOptions& options)
      : options_(options),
        relative_uri_(detail::env_var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")),
        full_uri_(detail::env_var("AWS_CONTAINER_CREDENTIALS_FULL_URI")),
        token_(detail::env_var("AWS_CONTAINER_AUTHORIZATION_TOKEN")),
        token_file_(detail::env_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {}

  Result<Credentials> get() override {
    BlockingHttpRequest req;
    if (relative_uri_) {
      if (relative_uri_->front() != '/') {
        return Status::invalid_argument(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
      }
      req.url = std::string(kEcsHost) + *relative_uri_;
    } else if (full_uri_) {
      const std::string& url = *full_uri_;
      const std::string host = url_host(url);
      const bool https = url.rfind("https://", 0) == 0;
      const bool http = url.rfind("http://", 0) == 0;
      if (host.empty() || (!https && !http)) {
        return Status::invalid_argument("AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
      }
      if (http && !allowed_http_host(host)) {
        return Status::invalid_argument(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is allowed only to loopback or the "
            "ECS/EKS container endpoints, not to host '" +
            host + "'");
      }
      req.url = url;
    } else {
      return detail::not_configured(
          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI not set");
    }
    std::string token;
    if (token_file_) {
      auto t = detail::read_small_file(*token_file_, 16 * 1024);
      if (!t.ok()) {
        return Status::invalid_argument("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: " +
                                        std::string(t.status().message()));
      }
      token = std::move(*t);
      while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    } else if (token_) {
      token = *token_;
    }
    if (token.find_first_of("\r\n") != std::string::npos) {
      return Status::invalid_argument("container authorization token contains a line break");
    }
    if (!token.empty()) req.headers.emplace_back("Authorization", token);
    req.headers.emplace_back("Accept", "application/json");

    auto resp = metadata_request(options_, std::move(req));
    if (!resp.ok()) return std::move(resp).status().with_context("container credentials");
    if (resp->status != 200)
      return http_status_error("container credentials endpoint", resp->status);
    auto c = detail::parse_credentials_json(resp->body, detail::CredentialsJsonFormat::kMetadata);
    if (!c.ok()) return std::move(c).status().with_context("container credentials");
    c->source = "container";
    return c;
  }
  std::string name() const override { return "container"; }

 private:
  const CredentialsOptions options_;
  const std::optional<std::string> relative_uri_, full_uri_, token_, token_file_;
};

// ---- EC2 instance metadata (IMDSv2) ----

constexpr std::string_view kImdsIpv4 = "http://169.254.169.254";
constexpr std::string_view kImdsIpv6 = "http://[fd00:ec2::254]";
constexpr std::string_view kTokenTtlSeconds = "21600";  // 6 hours, the SDKs' value

class ImdsProvider final : public CredentialsProvider {
 public:
  explicit ImdsProvider(const CredentialsOptions& options)
      : options_(options),
        disabled_(detail::env_flag("AWS_EC2_METADATA_DISABLED")),
        v1_disabled_(detail::env_flag("AWS_EC2_METADATA_V1_DISABLED")) {
    if (auto ep = detail::env_var("AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
      endpoint_ = *ep;
      endpoint_source_ = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
    } else {
      auto mode = detail::env_var("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
      const bool v6 = mode && (*mode == "IPv6" || *mode == "ipv6" || *mode == "IPV6");
      endpoint_ = std::string(v6 ? kImdsIpv6 : kImdsIpv4);
    }
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  }

  Result<Credentials> get() override {
    if (disabled_) return detail::not_configured("disabled by AWS_EC2_METADATA_DISABLED");
    if (!endpoint_source_.empty()) {
      auto ep = parse_endpoint_url(endpoint_);
      if (!ep.ok()) return std::move(ep).status().with_context(endpoint_source_);
    }
    // 1. Session token (IMDSv2).
    std::string token;
    {
      BlockingHttpRequest req;
      req.method = "PUT";
      req.url = endpoint_ + "/latest/api/token";
      req.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds",
                               std::string(kTokenTtlSeconds));
      auto resp = metadata_request(options_, std::move(req));
      if (!resp.ok()) {
        // Not on EC2 (or the endpoint is unreachable): the usual outcome off EC2.
        return std::move(resp).status().with_context("instance metadata token");
      }
      if (resp->status == 200) {
        token = std::move(resp->body);
      } else if ((resp->status == 404 || resp->status == 405) && !v1_disabled_) {
        // An IMDSv1-only endpoint: continue without a token.
      } else {
        return http_status_error("instance metadata token", resp->status);
      }
    }
    auto get = [&](const std::string& path) {
      BlockingHttpRequest req;
      req.url = endpoint_ + path;
      if (!token.empty()) req.headers.emplace_back("X-aws-ec2-metadata-token", token);
      return metadata_request(options_, std::move(req));
    };
    // 2. The role attached to the instance profile.
    constexpr std::string_view kCredsPath = "/latest/meta-data/iam/security-credentials/";
    auto role_resp = get(std::string(kCredsPath));
    if (!role_resp.ok())
      return std::move(role_resp).status().with_context("instance metadata role");
    if (role_resp->status == 404) {
      return detail::not_configured("no IAM role attached to this instance");
    }
    if (role_resp->status != 200)
      return http_status_error("instance metadata role", role_resp->status);
    std::string_view role(role_resp->body);
    role = role.substr(0, role.find('\n'));
    while (!role.empty() && (role.back() == '\r' || role.back() == ' ')) role.remove_suffix(1);
    if (role.empty()) return detail::not_configured("no IAM role attached to this instance");
    if (role.find_first_of("/?#% ") != std::string_view::npos) {
      return Status::invalid_argument("instance metadata returned an invalid role name");
    }
    // 3. Its credentials.
    auto creds_resp = get(std::string(kCredsPath) + std::string(role));
    if (!creds_resp.ok())
      return std::move(creds_resp).status().with_context("instance metadata credentials");
    if (creds_resp->status != 200) {
      return http_status_error("instance metadata credentials", creds_resp->status);
    }
    auto c =
        detail::parse_credentials_json(creds_resp->body, detail::CredentialsJsonFormat::kMetadata);
    if (!c.ok()) return std::move(c).status().with_context("instance metadata credentials");
    c->source = "instance metadata";
    return c;
  }
  std::string name() const override { return "instance metadata"; }

 private:
  const CredentialsOptions options_;
  const bool disabled_;
  const bool v1_disabled_;
  std::string endpoint_;
  std::string endpoint_source_;
};

}  // namespace

std::shared_ptr<CredentialsProvider> make_web_identity_credentials_provider(
    const CredentialsOptions& options) {
  return std::make_shared<WebIdentityProvider>(options);
}

std::shared_ptr<CredentialsProvider> make_container_credentials_provider(
    const CredentialsOptions& options) {
  return std::make_shared<ContainerProvider>(options);
}

std::shared_ptr<CredentialsProvider> make_instance_metadata_credentials_provider(
    const CredentialsOptions& options) {
  return std::make_shared<ImdsProvider>(options);
}

}  // namespace shardline
