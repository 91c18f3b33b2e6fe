// File: support/loopback_http_server.h
//
// A small HTTP/1.1 server on 127.0.0.1 (a free port) for tests and benchmarks. One thread
// serves every connection (poll), with keep-alive and pipelining, and a handler decides each
// answer, including scripted misbehaviour: answer late, answer slowly, close or reset the
// connection without answering, or never answer at all (a black hole).
//
//   auto server = LoopbackHttpServer::start([](const LoopbackRequest& req) {
//     if (req.path() == "/slow") return LoopbackResponse{.body = "late", .delay = 200ms};
//     if (req.sequence == 1) return LoopbackResponse::reset();   // first request: RST
//     return LoopbackResponse::text(200, req.body);              // echo
//   });
//   ASSERT_TRUE(server.ok()) << server.status().to_string();
//   std::string url = (*server)->url("/echo");                   // http://127.0.0.1:PORT/echo
//   ...
//   EXPECT_EQ((*server)->connections_accepted(), 1u);            // keep-alive reuse
//
// The destructor stops the thread and closes every connection (black-holed ones included).
// Waiting for the server never needs a sleep: wait_for_requests() blocks on a condition
// variable up to a timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "shardline/result.h"

namespace shardline::testing {

/// One parsed request, as the handler sees it.
struct LoopbackRequest {
  std::string method{};
  std::string target{};   // as sent: path and query
  std::string version{};  // "HTTP/1.1"
  /// In arrival order; names lower-cased, values trimmed.
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};               // de-chunked if it came chunked
  std::uint64_t connection_id = 0;  // 1, 2, ... in accept order
  std::uint64_t sequence = 0;       // 1, 2, ... over the server's life, in arrival order

  /// The target without its query string.
  std::string_view path() const noexcept;
  /// The first value of header `name` (any case), or "".
  std::string_view header(std::string_view name) const noexcept;
  bool has_header(std::string_view name) const noexcept;
};

/// What to do instead of (or on top of) answering.
enum class LoopbackFault : std::uint8_t {
  kNone,       // answer normally
  kClose,      // close the connection (FIN) without answering
  kReset,      // reset the connection (RST, SO_LINGER 0) without answering
  kBlackHole,  // never answer; keep the connection open until the peer or the server closes it
};

/// The handler's decision for one request.
struct LoopbackResponse {
  int status = 200;
  /// Sent as given. Content-Length is added unless present; "Connection: close" is added when
  /// the server closes after this response.
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  LoopbackFault fault = LoopbackFault::kNone;
  /// Wait this long before answering (or before the fault).
  std::chrono::milliseconds delay{0};
  /// Answer slowly: send at most chunk_bytes every chunk_interval. 0 = all at once.
  std::size_t chunk_bytes = 0;
  std::chrono::milliseconds chunk_interval{0};
  /// Close the connection after this response.
  bool close_after = false;

  static LoopbackResponse text(int status, std::string body);
  static LoopbackResponse close_connection() { return {.fault = LoopbackFault::kClose}; }
  static LoopbackResponse reset() { return {.fault = LoopbackFault::kReset}; }
  static LoopbackResponse black_hole() { return {.fault = LoopbackFault::kBlackHole}; }
};

class LoopbackHttpServer {
 public:
  /// Runs on the server thread, one request at a time: must not block (use `delay`). An
  /// exception becomes a 500 answer.
  using Handler = std::function<LoopbackResponse(const LoopbackRequest&)>;

  struct Options {
    /// A request (head + body) larger than this is answered 413 and the connection closed.
    std::size_t max_request_bytes = 64u << 20;
  };

  /// Binds 127.0.0.1:0, listens, and starts the server thread.
  /// @returns kUnavailable if a socket call fails.
  static Result<std::unique_ptr<LoopbackHttpServer>> start(Handler handler);
  static Result<std::unique_ptr<LoopbackHttpServer>> start(Handler handler, Options options);

  /// Stops the thread; closes the listener and every connection.
  ~LoopbackHttpServer();

  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  /// "127.0.0.1:PORT"
  std::string host_port() const;
  /// "http://127.0.0.1:PORT" + path
  std::string url(std::string_view path = "/") const;

  /// Connections accepted so far (keep-alive reuse keeps this low).
  std::uint64_t connections_accepted() const noexcept { return connections_accepted_.load(); }
  /// Complete requests received so far (whatever the handler answered).
  std::uint64_t requests_received() const noexcept { return requests_received_.load(); }
  /// Connections currently open.
  std::uint64_t open_connections() const noexcept { return open_connections_.load(); }

  /// Blocks until at least `n` requests were received, or `timeout` passes.
  /// @returns whether `n` were reached.
  bool wait_for_requests(std::uint64_t n, std::chrono::milliseconds timeout) const;

 private:
  struct Connection;
  LoopbackHttpServer(Handler handler, Options options);
  void run();
  void accept_all();
  void on_readable(Connection& c);
  void process_input(Connection& c);
  void dispatch(Connection& c, LoopbackRequest request);
  void act(Connection& c);
  void write_some(Connection& c);
  void close_connection(Connection& c, bool reset);

  Handler handler_;
  Options options_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> connections_accepted_{0};
  std::atomic<std::uint64_t> requests_received_{0};
  std::atomic<std::uint64_t> open_connections_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  // Server thread only.
  std::vector<std::unique_ptr<Connection>> connections_;
};

}  // namespace shardline::testing
