#include "aws/service_client.h"

#include <cstdio>
#include <future>
#include <thread>

#include "aws/aws_errors.h"
#include "aws/backoff.h"

namespace shardline::detail {

namespace {

bool is_local_host(std::string_view host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]";
}

void default_log(LogLevel level, std::string_view message) {
  if (level < LogLevel::kWarning) return;
  std::fprintf(stderr, "shardline [%s] %.*s\n", level == LogLevel::kWarning ? "warning" : "error",
               static_cast<int>(message.size()), message.data());
}

}  // namespace

HttpClientOptions http_options_from(const AwsClientConfig& config) {
  HttpClientOptions o;
  // 0 or less: no limit (one connection per enhanced fan-out subscription).
  o.max_connections_per_host = std::max(config.max_connections, 0);
  o.max_connections_total =
      config.max_connections <= 0 ? 0 : std::max(config.max_connections * 2, 16);
  o.connect_timeout = config.connect_timeout;
  o.request_timeout = config.request_timeout;
  o.ca_file = config.ca_file;
  o.ca_path = config.ca_path;
  o.insecure = !config.verify_tls;
  o.proxy_host = config.proxy_host;
  o.proxy_port = config.proxy_port;
  o.proxy_user = config.proxy_user;
  o.proxy_password = config.proxy_password;
  if (config.log) {
    LogSink sink = config.log;
    o.log = [sink](detail::LogLevel level, std::string_view message) {
      sink(static_cast<shardline::LogLevel>(level), message);
    };
  }
  return o;
}

Result<std::shared_ptr<ServiceClient>> ServiceClient::create(const AwsClientConfig& config,
                                                             const ServiceSpec& spec,
                                                             std::shared_ptr<HttpClient> http) {
  // The endpoint first: a local endpoint needs no configured region.
  std::string region;
  auto resolved_region = resolve_region(config.region, config.profile);
  if (resolved_region.ok()) region = *resolved_region;
  Result<Endpoint> endpoint = resolve_endpoint(spec.service, region, config.endpoint_url);
  if (!endpoint.ok()) return std::move(endpoint).status();
  if (region.empty()) {
    if (!config.endpoint_url.empty() || endpoint->scheme == "http" ||
        is_local_host(endpoint->host)) {
      region = "us-east-1";  // local servers accept any region
    } else {
      return std::move(resolved_region).status();
    }
  }
  std::shared_ptr<CredentialsProvider> creds = config.credentials;
  if (!creds) {
    CredentialsOptions co;
    co.profile = config.profile;
    co.region = region;
    creds = make_default_credentials_provider(co);
  }
  if (!http) {
    HttpClientOptions o = http_options_from(config);
    if (config.http2) {
      o.http_version =
          endpoint->scheme == "https" ? HttpVersion::kHttp2Tls : HttpVersion::kHttp2PriorKnowledge;
    }
    auto h = HttpClient::create(std::move(o));
    if (!h.ok()) return std::move(h).status();
    http = std::shared_ptr<HttpClient>(std::move(*h));
  }
  return std::shared_ptr<ServiceClient>(new ServiceClient(
      config, spec, std::move(*endpoint), std::move(region), std::move(creds), std::move(http)));
}

ServiceClient::ServiceClient(const AwsClientConfig& config, const ServiceSpec& spec,
                             Endpoint endpoint, std::string region,
                             std::shared_ptr<CredentialsProvider> credentials,
                             std::shared_ptr<HttpClient> http)
    : config_(config),
      spec_(spec),
      endpoint_(std::move(endpoint)),
      region_(std::move(region)),
      credentials_(std::move(credentials)),
      http_(std::move(http)),
      signer_(region_, std::string(spec.service)) {
  url_ = endpoint_.url() + "/";
  path_ = endpoint_.base_path + "/";
  authority_ = endpoint_.authority();
}

void ServiceClient::log(LogLevel level, std::string_view message) const {
  if (config_.log) {
    config_.log(level, message);
  } else {
    default_log(level, message);
  }
}

Result<HttpRequest> ServiceClient::build_request(std::string_view operation, std::string body,
                                                 std::chrono::milliseconds timeout) {
  Result<Credentials> creds = credentials_->get();
  if (!creds.ok()) return std::move(creds).status();
  std::string target;
  target.reserve(spec_.target_prefix.size() + operation.size());
  target.append(spec_.target_prefix).append(operation);
  const SigV4Header headers[] = {
      {"Host", authority_}, {"Content-Type", spec_.content_type}, {"X-Amz-Target", target}};
  thread_local SigV4Result signed_out;
  SigV4Request sreq;
  sreq.method = "POST";
  sreq.path = path_;
  sreq.headers = headers;
  sreq.payload = body;
  Status s = signer_.sign(sreq, *creds, std::chrono::system_clock::now(), signed_out);
  if (!s.ok()) return s;
  HttpRequest req;
  req.method = "POST";
  req.url = url_;
  req.headers.reserve(6);
  req.headers.emplace_back("Content-Type", std::string(spec_.content_type));
  req.headers.emplace_back("X-Amz-Target", std::move(target));
  signed_out.for_each_header([&](std::string_view name, std::string_view value) {
    req.headers.emplace_back(std::string(name), std::string(value));
  });
  req.body = std::move(body);
  req.timeout = timeout;
  return req;
}

void ServiceClient::call_async(std::string_view operation, std::string body, Callback done,
                               std::chrono::milliseconds timeout,
                               std::shared_ptr<BodyFilter> filter) {
  Result<HttpRequest> req = build_request(operation, std::move(body), timeout);
  if (!req.ok()) {
    done(std::move(req).status());
    return;
  }
  req->body_filter = std::move(filter);
  http_->submit(std::move(*req), [done = std::move(done)](Result<HttpResponse> r) {
    if (!r.ok()) {
      done(std::move(r).status());
      return;
    }
    HttpResponse& resp = *r;
    std::string request_id(resp.header("x-amzn-requestid"));
    if (resp.status >= 200 && resp.status < 300) {
      done(ServiceResponse{std::move(resp.body), std::move(request_id)});
      return;
    }
    done(aws_error_status(resp.status, resp.body, resp.header("x-amzn-errortype"), request_id));
  });
}

Result<ServiceResponse> ServiceClient::call(std::string_view operation, const std::string& body,
                                            CallOptions options) {
  Backoff backoff(BackoffOptions{config_.retry_base, config_.retry_cap});
  const int max_attempts =
      std::max(1, options.max_attempts > 0 ? options.max_attempts : config_.max_attempts);
  const auto start = Clock::time_point(std::chrono::steady_clock::now().time_since_epoch());
  const auto deadline =
      options.deadline.count() > 0 ? start + options.deadline : Clock::time_point::max();
  Status last;
  const CancelToken* cancel = options.cancel != nullptr ? options.cancel : scoped_cancel_token();
  auto cancelled = [&] {
    return Status::cancelled(
        std::string(operation) + ": cancelled" +
        (last.ok() ? std::string() : " (last attempt: " + last.to_string() + ")"));
  };
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    if (cancel && cancel->cancelled()) return cancelled();
    // Shared with the callback: a cancelled call returns before its attempt completes.
    auto p = std::make_shared<std::promise<Result<ServiceResponse>>>();
    auto f = p->get_future();
    call_async(
        operation, body, [p](Result<ServiceResponse> r) { p->set_value(std::move(r)); },
        options.attempt_timeout);
    if (cancel) {
      while (f.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
        if (cancel->cancelled()) return cancelled();
      }
    }
    Result<ServiceResponse> r = f.get();
    if (r.ok()) return r;
    last = std::move(r).status();
    if (last.retry() != RetryClass::kSameCall || attempt + 1 == max_attempts) break;
    const auto now = Clock::time_point(std::chrono::steady_clock::now().time_since_epoch());
    const std::optional<Clock::duration> delay = backoff.next_delay(attempt, now, deadline);
    if (!delay) break;  // the next attempt could not start before the deadline
    log(LogLevel::kDebug, std::string(operation) + " attempt " + std::to_string(attempt + 1) +
                              " failed (" + last.to_string() + "); retrying");
    if (cancel) {
      if (!cancel->sleep_for(*delay)) return cancelled();
    } else {
      std::this_thread::sleep_for(*delay);
    }
  }
  return std::move(last).with_context(operation);
}

namespace {
thread_local const CancelToken* t_scoped_cancel = nullptr;
}  // namespace

CancelScope::CancelScope(const CancelToken* token) noexcept : previous_(t_scoped_cancel) {
  t_scoped_cancel = token;
}

CancelScope::~CancelScope() { t_scoped_cancel = previous_; }

const CancelToken* scoped_cancel_token() noexcept { return t_scoped_cancel; }

}  // namespace shardline::detail
