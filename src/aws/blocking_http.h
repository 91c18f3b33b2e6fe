// Internal: a small blocking HTTP client on libcurl's easy interface, for the handful of calls
// the credential providers make (STS, instance metadata, container endpoint). Request paths
// (producer, consumer) use the event-loop client instead.
//
//   BlockingHttpRequest req{.method = "PUT", .url = "http://169.254.169.254/latest/api/token"};
//   req.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", "21600");
//   auto resp = blocking_http(req);  // blocks the calling thread up to req.timeout
//
// TLS peers are verified (certificate and host name). Redirects are not followed. Error
// messages name the method and URL and the transport problem, never a header or body.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardline/result.h"

namespace shardline::detail {

struct BlockingHttpRequest {
  std::string method = "GET";
  std::string url{};
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds timeout{5000};  // whole request, including connect
  /// false: ignore http_proxy/https_proxy (link-local metadata endpoints must not be proxied).
  bool use_proxy = true;
  /// Responses larger than this fail with kResourceExhausted.
  std::size_t max_response_bytes = 1 << 20;
};

struct BlockingHttpResponse {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  /// The first header named `name` (lower case), or "".
  std::string_view header(std::string_view name) const;
};

/// Perform one request on the calling thread. Any HTTP status is a successful result.
/// @returns kDeadlineExceeded on a timeout, kUnavailable when the host cannot be resolved or
///   reached or the connection fails (TLS included), kInvalidArgument for a malformed URL,
///   kResourceExhausted for an oversized response, kInternal if libcurl cannot start.
Result<BlockingHttpResponse> blocking_http(const BlockingHttpRequest& request);

}  // namespace shardline::detail
