// Internal: an asynchronous HTTP/1.1 (optionally HTTP/2) client on libcurl's multi interface.
//
// ONE event-loop thread owns the libcurl multi handle and every easy handle, and runs any
// number of requests concurrently over a pool of keep-alive connections. No thread per request.
//
//   SHARDLINE_ASSIGN_OR_RETURN(auto http, detail::HttpClient::create({.max_connections_per_host =
//   8})); http->submit({.method = "POST", .url = "https://kinesis.us-east-1.amazonaws.com/",
//                 .headers = {{"Content-Type", "application/x-amz-json-1.1"}}, .body = json},
//                [](Result<detail::HttpResponse> r) {   // runs on the event-loop thread
//                  if (!r.ok()) return log(r.status().to_string());
//                  if (r->status != 200) ... detail::aws_error_status(r->status, r->body, ...);
//                });
//   Result<detail::HttpResponse> r = http->send(request);   // blocking, from any other thread
//
// A response with any HTTP status (4xx and 5xx included) is a successful Result: the AWS layer
// classifies it (aws_errors.h). A Result error means no complete response: a transport failure,
// mapped through the transport rows of aws_errors.def:
//   timeout                                     → kDeadlineExceeded, RetryClass::kSameCall
//   refused, reset, DNS, send/receive failure   → kUnavailable,      RetryClass::kSameCall
//   TLS certificate not verified                → kUnavailable,      RetryClass::kNone
//   malformed URL, bad method or header         → kInvalidArgument,  RetryClass::kNone
//   client destroyed first                      → kCancelled,        RetryClass::kNone
// Messages name the host ("host:port"), never the URL, a header or the body: Authorization and
// presigned query strings cannot leak into a Status or a log line.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/aws_errors.h"
#include "shardline/aws_client.h"
#include "shardline/result.h"
#include "shardline/status.h"

namespace shardline::detail {

// The one log vocabulary is the public one (shardline/aws_client.h); these names keep the
// transport layer's spelling. The callback is called from any thread (the creating thread and
// the event-loop thread); it must be thread-safe and must not call back into the client.
using LogLevel = ::shardline::LogLevel;
using LogCallback = ::shardline::LogSink;

/// The default sink: warnings and errors as "shardline [warning] message" on stderr; lower
/// levels are dropped (as AwsClientConfig::log documents for a null sink).
void log_to_stderr(LogLevel level, std::string_view message);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/// Takes a 2xx response's body as it arrives, instead of the client collecting it in
/// HttpResponse::body (which then stays empty): a parser can work on each chunk while it is in
/// the cache. Other responses' bodies are collected as usual. Called on the event-loop thread.
class BodyFilter {
 public:
  virtual ~BodyFilter() = default;
  /// A 2xx response's body begins; `expected` is its Content-Length, or 0 if unknown.
  virtual void begin(std::size_t expected) = 0;
  virtual void feed(std::string_view chunk) = 0;
  /// The body is complete (not called when the transfer fails).
  virtual void end() = 0;
  /// Polled on the event-loop thread while the transfer runs, about once a second also when
  /// no bytes arrive: false aborts it, and its callback gets kCancelled. For long-lived
  /// streams (SubscribeToShard) that their owner ends early.
  virtual bool keep_going() { return true; }
  /// True: the body may be longer than HttpClientOptions::max_response_bytes (a stream that
  /// the filter bounds itself).
  virtual bool unbounded() const { return false; }
};

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, DELETE, HEAD, ...
  std::string url{};           // http:// or https:// only
  /// Sent as given (name case kept). An empty value sends an empty header. Names and values
  /// must not contain CR or LF (kInvalidArgument). libcurl adds Host, Content-Length,
  /// User-Agent and Accept unless given here; the client never sends Accept-Encoding or
  /// `Expect: 100-continue`, and never a default Content-Type.
  HttpHeaders headers{};
  std::string body{};
  /// Whole-request timeout, including the wait for a free connection. 0 = the client's default.
  std::chrono::milliseconds timeout{0};
  /// Optional: takes a 2xx response's body (see BodyFilter).
  std::shared_ptr<BodyFilter> body_filter{};
};

/// Bytes of spare capacity the client leaves after a response body whose length it knew in
/// advance (simdjson reads up to 64 bytes past the end of its input).
inline constexpr std::size_t kBodyPadding = 64;

struct HttpResponse {
  int status = 0;
  /// In arrival order; names lower-cased, values trimmed. Only the final response's headers
  /// (no 1xx, no proxy CONNECT response).
  HttpHeaders headers{};
  std::string body{};

  /// The first value of the header `name` (any case), or "" if absent.
  std::string_view header(std::string_view name) const noexcept;
  bool has_header(std::string_view name) const noexcept;
};

enum class HttpVersion : std::uint8_t {
  kHttp1_1,              // HTTP/1.1 only
  kHttp2Tls,             // HTTP/2 over TLS when the server offers it by ALPN; HTTP/1.1 otherwise
  kHttp2PriorKnowledge,  // HTTP/2 without negotiation, also cleartext (h2c), e.g. kinesis-mock
};

struct HttpClientOptions {
  /// Open connections per host:port (CURLMOPT_MAX_HOST_CONNECTIONS). Requests beyond it wait
  /// for a free connection. 0 = unlimited. The KPL's MaxConnections default is 24.
  long max_connections_per_host = 24;
  /// Open connections in total (CURLMOPT_MAX_TOTAL_CONNECTIONS); also sizes the keep-alive
  /// cache. 0 = unlimited.
  long max_connections_total = 64;
  /// TCP plus TLS connect timeout.
  std::chrono::milliseconds connect_timeout{6000};
  /// Timeout of a request whose HttpRequest::timeout is 0.
  std::chrono::milliseconds request_timeout{6000};
  /// Idle keep-alive connections older than this are not reused (AWS closes idle connections
  /// after about 60 s, so reuse must stop earlier).
  std::chrono::seconds max_idle_connection_age{50};
  /// TCP keep-alive probes on every connection.
  std::chrono::seconds tcp_keepalive_idle{30};
  std::chrono::seconds tcp_keepalive_interval{15};

  /// TLS: certificates are verified (peer and host name) unless `insecure`.
  std::string ca_file{};  // a PEM bundle instead of the system's
  std::string ca_path{};  // a directory of hashed CA certificates instead of the system's
  /// Skip certificate and host-name verification. Logs a warning once, at create().
  bool insecure = false;

  /// HTTP proxy. Empty host = no proxy, and the http_proxy/https_proxy environment variables
  /// are ignored. The host may carry a scheme ("https://proxy"); the default is http://.
  std::string proxy_host{};
  int proxy_port = 8080;
  std::string proxy_user{};
  std::string proxy_password{};  // never logged; describe() prints "***"

  HttpVersion http_version = HttpVersion::kHttp1_1;

  /// Appended to "shardline/<version>" after a space, e.g. an application name.
  std::string user_agent_suffix{};

  /// A response body larger than this fails the request with kResourceExhausted.
  /// Kinesis GetRecords returns at most 10 MiB.
  std::size_t max_response_bytes = 64u << 20;

  /// Log sink; default log_to_stderr.
  LogCallback log{};

  /// A one-line summary for logs; the proxy password is replaced by "***".
  std::string describe() const;
};

/// Counters since create(). Cheap to read from any thread.
struct HttpClientStats {
  std::uint64_t submitted = 0;
  std::uint64_t completed = 0;        // callbacks invoked (any outcome)
  std::uint64_t failed = 0;           // completed with a transport failure (incl. cancelled)
  std::uint64_t new_connections = 0;  // connections opened (the rest reused the pool)
  std::uint64_t in_flight = 0;        // submitted and not yet completed
};

/// The User-Agent: "shardline/<version>".
std::string default_user_agent();

class HttpClient {
 public:
  using Callback = std::function<void(Result<HttpResponse>)>;

  /// Validates `options` and starts the event-loop thread.
  /// @returns kInvalidArgument for a bad option (e.g. an unreadable ca_file), kInternal when
  ///          libcurl cannot be initialized.
  static Result<std::unique_ptr<HttpClient>> create(HttpClientOptions options = {});

  /// Fails every request not yet completed with kCancelled (their callbacks run, on the
  /// event-loop thread, before this returns), then joins the thread. Must not be called from
  /// a completion callback.
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Starts `request`; `done` is called exactly once with the response or a transport failure.
  /// Thread-safe, O(1), never blocks on the network.
  /// @note `done` runs on the event-loop thread: keep it short and non-blocking (hand the
  ///       result to another thread if it needs to work). It may call submit(). An exception
  ///       escaping `done` is caught and logged.
  void submit(HttpRequest request, Callback done);

  /// Blocking convenience: submit() and wait.
  /// @returns the response, a transport failure, or kFailedPrecondition when called from the
  ///          event-loop thread (it would deadlock).
  Result<HttpResponse> send(HttpRequest request);

  HttpClientStats stats() const noexcept;
  const HttpClientOptions& options() const noexcept;

 private:
  class Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The transport failure for a libcurl result code (CURLcode as int), for tests and for
/// other libcurl users in the AWS layer.
TransportError transport_error_for_curl_code(int curl_code) noexcept;

}  // namespace shardline::detail
