// The event-loop HTTP client (src/aws/http_client.h) against the loopback server
// (tests/support/loopback_http_server.h). No sleeps: waits block on futures or condition
// variables up to a generous deadline, and no assertion depends on wall-clock durations.
#include "aws/http_client.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback_http_server.h"
#include "support/loopback_tls_server.h"

namespace shardline {
namespace {

using detail::HttpClient;
using detail::HttpClientOptions;
using detail::HttpRequest;
using detail::HttpResponse;
using detail::LogLevel;
using std::chrono::milliseconds;
using testing::LoopbackFault;
using testing::LoopbackHttpServer;
using testing::LoopbackRequest;
using testing::LoopbackResponse;
using testing::LoopbackTlsServer;

// How long a test waits for an event before failing. Generous: only a broken client or server
// ever waits this long.
constexpr milliseconds kWait{30000};

std::unique_ptr<LoopbackHttpServer> start_server(LoopbackHttpServer::Handler handler) {
  auto server = LoopbackHttpServer::start(std::move(handler));
  if (!server.ok()) ADD_FAILURE() << server.status().to_string();
  return server.ok() ? std::move(server).value() : nullptr;
}

std::unique_ptr<HttpClient> make_client(HttpClientOptions options = {}) {
  auto client = HttpClient::create(std::move(options));
  if (!client.ok()) ADD_FAILURE() << client.status().to_string();
  return client.ok() ? std::move(client).value() : nullptr;
}

LoopbackResponse echo(const LoopbackRequest& req) {
  LoopbackResponse r = LoopbackResponse::text(200, req.body);
  r.headers.emplace_back("X-Method", req.method);
  r.headers.emplace_back("X-Target", req.target);
  return r;
}

// Collects asynchronous results by index; wait() blocks until `n` arrived.
class Results {
 public:
  explicit Results(std::size_t n) : results_(n) {}

  HttpClient::Callback callback(std::size_t i) {
    return [this, i](Result<HttpResponse> r) {
      // Notify under the lock: once the waiter sees the count it may destroy this object.
      std::lock_guard<std::mutex> lock(mu_);
      results_[i].emplace(std::move(r));
      threads_.insert(std::this_thread::get_id());
      ++count_;
      cv_.notify_all();
    };
  }

  bool wait(std::size_t n = SIZE_MAX) {
    if (n == SIZE_MAX) n = results_.size();
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return count_ >= n; });
  }

  std::size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

  // Call after wait().
  const Result<HttpResponse>& at(std::size_t i) const { return *results_[i]; }
  std::set<std::thread::id> threads() {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::optional<Result<HttpResponse>>> results_;
  std::set<std::thread::id> threads_;
  std::size_t count_ = 0;
};

// Requests seen by a server handler (server thread), read by the test thread.
class Seen {
 public:
  void add(const LoopbackRequest& req) {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req);
  }
  std::vector<LoopbackRequest> all() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  LoopbackRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.empty() ? LoopbackRequest{} : requests_.back();
  }

 private:
  std::mutex mu_;
  std::vector<LoopbackRequest> requests_;
};

// A log sink that records every line.
struct LogCapture {
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> lines;
  detail::LogCallback sink() {
    return [this](LogLevel level, std::string_view m) {
      std::lock_guard<std::mutex> lock(mu);
      lines.emplace_back(level, std::string(m));
    };
  }
  std::vector<std::pair<LogLevel, std::string>> snapshot() {
    std::lock_guard<std::mutex> lock(mu);
    return lines;
  }
};

// A pseudo-random, non-repeating-looking pattern, so a shifted or truncated body is caught.
std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

TEST(HttpClient, GetRoundTripsStatusHeadersAndBody) {
  Seen requests;
  auto server = start_server([&requests](const LoopbackRequest& req) {
    requests.add(req);
    LoopbackResponse r = LoopbackResponse::text(201, "hello");
    r.headers.emplace_back("X-Amzn-RequestId", "req-1");
    r.headers.emplace_back("X-Multi", "a");
    r.headers.emplace_back("X-Multi", "b");
    r.headers.emplace_back("X-Spaces", "  padded value  ");
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);

  Result<HttpResponse> r = client->send({.method = "GET",
                                         .url = server->url("/path?q=1"),
                                         .headers = {{"X-Custom", "v1"}, {"X-Empty", ""}}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->header("x-amzn-requestid"), "req-1");
  EXPECT_EQ(r->header("X-AMZN-REQUESTID"), "req-1");  // any case
  EXPECT_EQ(r->header("x-multi"), "a");               // the first of repeated headers
  EXPECT_EQ(r->header("x-spaces"), "padded value");
  EXPECT_EQ(r->header("absent"), "");
  EXPECT_FALSE(r->has_header("absent"));
  for (const auto& [name, value] : r->headers) {
    for (char c : name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
  }
  int multi = 0;
  for (const auto& h : r->headers) multi += h.first == "x-multi";
  EXPECT_EQ(multi, 2);

  const LoopbackRequest seen = requests.last();
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.target, "/path?q=1");
  EXPECT_EQ(seen.header("x-custom"), "v1");
  EXPECT_TRUE(seen.has_header("x-empty"));
  EXPECT_EQ(seen.header("x-empty"), "");
  EXPECT_EQ(seen.header("user-agent"), detail::default_user_agent());
  EXPECT_TRUE(seen.header("user-agent").starts_with("shardline/"));
  EXPECT_FALSE(seen.has_header("accept-encoding"));
  EXPECT_FALSE(seen.has_header("expect"));
}

TEST(HttpClient, PostSendsBodyWithoutExpectOrDefaultContentType) {
  Seen requests;
  auto server = start_server([&requests](const LoopbackRequest& req) {
    requests.add(req);
    return LoopbackResponse::text(200, "ok");
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);

  // libcurl would add "Expect: 100-continue" above 1 MiB and a form Content-Type by default.
  const std::string big = pattern(2 << 20, 1);
  auto a = client->send({.method = "POST", .url = server->url("/a"), .body = big});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto b = client->send({.method = "POST",
                         .url = server->url("/b"),
                         .headers = {{"Content-Type", "application/x-amz-json-1.1"}},
                         .body = "{}"});
  ASSERT_TRUE(b.ok()) << b.status().to_string();

  const std::vector<LoopbackRequest> seen = requests.all();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].body, big);
  EXPECT_FALSE(seen[0].has_header("expect"));
  EXPECT_FALSE(seen[0].has_header("content-type"));
  EXPECT_FALSE(seen[0].has_header("accept-encoding"));
  EXPECT_EQ(seen[0].header("content-length"), std::to_string(big.size()));
  EXPECT_EQ(seen[1].header("content-type"), "application/x-amz-json-1.1");
  EXPECT_EQ(seen[1].body, "{}");
}

TEST(HttpClient, LargeBodiesBothWays) {
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  auto client = make_client({.request_timeout = kWait});
  ASSERT_NE(client, nullptr);
  const std::string body = pattern(8 << 20, 2);
  auto r = client->send({.method = "POST", .url = server->url("/echo"), .body = body});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(r->body.size(), body.size());
  EXPECT_TRUE(r->body == body);
}

// A body filter gets a 2xx body in pieces, in order, with its Content-Length up front, and the
// response's own body stays empty; a non-2xx body is collected as usual for the error.
TEST(HttpClient, BodyFilterTakesOnlySuccessfulBodies) {
  struct Collect final : detail::BodyFilter {
    void begin(std::size_t n) override {
      ++begins;
      expected = n;
    }
    void feed(std::string_view chunk) override {
      body.append(chunk);
      ++pieces;
    }
    void end() override { ++ends; }
    int begins = 0, ends = 0, pieces = 0;
    std::size_t expected = 0;
    std::string body;
  };
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  auto client = make_client({.request_timeout = kWait});
  ASSERT_NE(client, nullptr);
  const std::string body = pattern(3 << 20, 9);
  auto filter = std::make_shared<Collect>();
  auto r = client->send(
      {.method = "POST", .url = server->url("/echo"), .body = body, .body_filter = filter});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(filter->begins, 1);
  EXPECT_EQ(filter->ends, 1);
  EXPECT_EQ(filter->expected, body.size());
  EXPECT_GT(filter->pieces, 1) << "3 MiB should arrive in several pieces";
  EXPECT_TRUE(filter->body == body);

  auto error_server = start_server(
      [](const LoopbackRequest&) { return LoopbackResponse::text(400, "{\"__type\":\"Bad\"}"); });
  ASSERT_NE(error_server, nullptr);
  auto unused = std::make_shared<Collect>();
  auto e = client->send({.url = error_server->url("/"), .body_filter = unused});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->body, "{\"__type\":\"Bad\"}");
  EXPECT_EQ(unused->begins + unused->ends + unused->pieces, 0);
}

TEST(HttpClient, MethodsPutDeleteHead) {
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  auto put = client->send({.method = "PUT", .url = server->url("/x"), .body = "data"});
  ASSERT_TRUE(put.ok()) << put.status().to_string();
  EXPECT_EQ(put->header("x-method"), "PUT");
  EXPECT_EQ(put->body, "data");
  auto del = client->send({.method = "DELETE", .url = server->url("/x")});
  ASSERT_TRUE(del.ok()) << del.status().to_string();
  EXPECT_EQ(del->header("x-method"), "DELETE");
  auto head = client->send({.method = "HEAD", .url = server->url("/x")});
  ASSERT_TRUE(head.ok()) << head.status().to_string();
  EXPECT_EQ(head->header("x-method"), "HEAD");
  EXPECT_EQ(head->body, "");
  // Every request above went over one keep-alive connection.
  EXPECT_EQ(server->connections_accepted(), 1u);
}

TEST(HttpClient, ConcurrentRequestsOnOneEventLoopWithinTheConnectionLimit) {
  // The server answers each request only after a short delay, so requests overlap and the
  // client must spread them over its (limited) connections.
  auto server = start_server([](const LoopbackRequest& req) {
    LoopbackResponse r = echo(req);
    r.delay = milliseconds(5);
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.max_connections_per_host = 4});
  ASSERT_NE(client, nullptr);

  constexpr std::size_t kRequests = 200;
  Results results(kRequests);
  for (std::size_t i = 0; i < kRequests; ++i) {
    client->submit({.method = "POST", .url = server->url("/r"), .body = std::to_string(i)},
                   results.callback(i));
  }
  ASSERT_TRUE(results.wait()) << results.count() << " of " << kRequests << " completed";
  for (std::size_t i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(results.at(i).ok()) << i << ": " << results.at(i).status().to_string();
    EXPECT_EQ(results.at(i)->status, 200);
    EXPECT_EQ(results.at(i)->body, std::to_string(i));
  }
  // One event-loop thread ran every callback, and it is not this thread.
  const auto threads = results.threads();
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  // Keep-alive: never more connections than the per-host limit.
  EXPECT_GE(server->connections_accepted(), 1u);
  EXPECT_LE(server->connections_accepted(), 4u);
  const auto stats = client->stats();
  EXPECT_EQ(stats.submitted, kRequests);
  EXPECT_EQ(stats.completed, kRequests);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.in_flight, 0u);
  EXPECT_EQ(stats.new_connections, server->connections_accepted());
}

TEST(HttpClient, SequentialRequestsReuseOneConnection) {
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 20; ++i) {
    auto r = client->send({.method = "POST", .url = server->url("/"), .body = "x"});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_EQ(server->connections_accepted(), 1u);
  EXPECT_EQ(client->stats().new_connections, 1u);
}

TEST(HttpClient, ServerClosingAfterResponseGetsANewConnection) {
  auto server = start_server([](const LoopbackRequest& req) {
    LoopbackResponse r = echo(req);
    r.close_after = true;
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto r = client->send({.url = server->url("/")});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_EQ(server->connections_accepted(), 3u);
}

TEST(HttpClient, SlowAnswerArrivesWhole) {
  const std::string body = pattern(4096, 3);
  auto server = start_server([&body](const LoopbackRequest&) {
    LoopbackResponse r = LoopbackResponse::text(200, body);
    r.chunk_bytes = 512;
    r.chunk_interval = milliseconds(1);
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.request_timeout = kWait});
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = server->url("/slow")});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->body == body);
}

void expect_timeout(const Result<HttpResponse>& r, const LoopbackHttpServer& server) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kSameCall);
  EXPECT_NE(r.status().message().find(server.host_port()), std::string_view::npos)
      << r.status().to_string();
}

TEST(HttpClient, DelayedAnswerTimesOut) {
  auto server = start_server([](const LoopbackRequest&) {
    LoopbackResponse r = LoopbackResponse::text(200, "too late");
    r.delay = std::chrono::minutes(10);
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  expect_timeout(client->send({.url = server->url("/"), .timeout = milliseconds(100)}), *server);
}

TEST(HttpClient, BlackHoleTimesOut) {
  auto server = start_server([](const LoopbackRequest&) { return LoopbackResponse::black_hole(); });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.request_timeout = milliseconds(100)});
  ASSERT_NE(client, nullptr);
  expect_timeout(client->send({.method = "POST", .url = server->url("/"), .body = "x"}), *server);
  EXPECT_EQ(client->stats().failed, 1u);
}

TEST(HttpClient, RequestsWaitingForAConnectionStillTimeOut) {
  // One connection, held by a black hole: the queued requests must not wait forever.
  auto server = start_server([](const LoopbackRequest&) { return LoopbackResponse::black_hole(); });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.max_connections_per_host = 1, .request_timeout = milliseconds(100)});
  ASSERT_NE(client, nullptr);
  constexpr std::size_t kRequests = 3;
  Results results(kRequests);
  for (std::size_t i = 0; i < kRequests; ++i) {
    client->submit({.url = server->url("/")}, results.callback(i));
  }
  ASSERT_TRUE(results.wait()) << results.count() << " of " << kRequests << " completed";
  for (std::size_t i = 0; i < kRequests; ++i) {
    ASSERT_FALSE(results.at(i).ok()) << i;
    EXPECT_EQ(results.at(i).status().code(), StatusCode::kDeadlineExceeded)
        << results.at(i).status().to_string();
  }
}

TEST(HttpClient, TooSlowAnswerTimesOut) {
  auto server = start_server([](const LoopbackRequest&) {
    LoopbackResponse r = LoopbackResponse::text(200, std::string(1000, 'x'));
    r.chunk_bytes = 1;
    r.chunk_interval = milliseconds(50);
    return r;
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  expect_timeout(client->send({.url = server->url("/"), .timeout = milliseconds(150)}), *server);
}

TEST(HttpClient, ConnectionResetIsUnavailableSameCall) {
  auto server = start_server([](const LoopbackRequest&) { return LoopbackResponse::reset(); });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  auto r = client->send({.method = "POST", .url = server->url("/"), .body = "x"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kSameCall);
  EXPECT_NE(r.status().message().find(server->host_port()), std::string_view::npos);
}

TEST(HttpClient, ConnectionClosedWithoutAnswerIsUnavailableSameCall) {
  auto server =
      start_server([](const LoopbackRequest&) { return LoopbackResponse::close_connection(); });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = server->url("/")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kSameCall);
}

TEST(HttpClient, RecoversAfterAFaultOnTheSameClient) {
  auto server = start_server([](const LoopbackRequest& req) {
    if (req.sequence == 1) return LoopbackResponse::reset();
    return echo(req);
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->send({.url = server->url("/")}).ok());
  auto r = client->send({.method = "POST", .url = server->url("/"), .body = "again"});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "again");
}

TEST(HttpClient, ConnectionRefusedIsUnavailableSameCall) {
  std::string url, host_port;
  {
    auto server = start_server(echo);
    ASSERT_NE(server, nullptr);
    url = server->url("/");
    host_port = server->host_port();
  }  // closed: nothing listens on the port now
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = url});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kSameCall);
  EXPECT_NE(r.status().message().find(host_port), std::string_view::npos);
}

TEST(HttpClient, TlsToAPlainServerIsUnavailable) {
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = "https://" + server->host_port() + "/"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
}

TEST(HttpClient, MalformedRequestsAreInvalidArgument) {
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  for (const char* url : {"not a url", "ftp://127.0.0.1/", "http://", "", "file:///etc/passwd"}) {
    auto r = client->send({.url = url});
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << url << r.status().to_string();
    EXPECT_EQ(r.status().retry(), RetryClass::kNone) << url;
  }
  auto bad_method = client->send({.method = "GE T", .url = "http://127.0.0.1:9/"});
  EXPECT_EQ(bad_method.status().code(), StatusCode::kInvalidArgument);
  auto bad_name = client->send({.url = "http://127.0.0.1:9/", .headers = {{"Bad Name", "v"}}});
  EXPECT_EQ(bad_name.status().code(), StatusCode::kInvalidArgument);
  auto injected =
      client->send({.url = "http://127.0.0.1:9/", .headers = {{"X-A", "v\r\nX-Injected: yes"}}});
  EXPECT_EQ(injected.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(injected.status().message().find("Injected"), std::string_view::npos);
}

TEST(HttpClient, ResponseOverTheLimitIsResourceExhausted) {
  auto server = start_server(
      [](const LoopbackRequest&) { return LoopbackResponse::text(200, std::string(5000, 'z')); });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.max_response_bytes = 1000});
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = server->url("/")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kNone);
}

TEST(HttpClient, DestructionCancelsEveryPendingRequest) {
  auto server = start_server([](const LoopbackRequest&) { return LoopbackResponse::black_hole(); });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.max_connections_per_host = 2, .request_timeout = kWait});
  ASSERT_NE(client, nullptr);
  // Two requests reach the server and hang; four wait for a connection inside the client.
  constexpr std::size_t kRequests = 6;
  Results results(kRequests);
  for (std::size_t i = 0; i < kRequests; ++i) {
    client->submit({.method = "POST", .url = server->url("/"), .body = "x"}, results.callback(i));
  }
  ASSERT_TRUE(server->wait_for_requests(2, kWait));
  EXPECT_EQ(results.count(), 0u);
  client.reset();
  // Every callback ran before the destructor returned.
  ASSERT_EQ(results.count(), kRequests);
  for (std::size_t i = 0; i < kRequests; ++i) {
    ASSERT_FALSE(results.at(i).ok());
    EXPECT_EQ(results.at(i).status().code(), StatusCode::kCancelled)
        << results.at(i).status().to_string();
    EXPECT_EQ(results.at(i).status().retry(), RetryClass::kNone);
  }
}

TEST(HttpClient, DestructionWithNothingPendingIsQuick) {
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  client.reset();
  SUCCEED();
}

TEST(HttpClient, CallbacksMaySubmitButNotSend) {
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  std::promise<Status> send_from_callback;
  std::promise<int> chain_done;
  std::function<void(int)> step = [&](int n) {
    client->submit(
        {.method = "POST", .url = server->url("/"), .body = std::to_string(n)},
        [&, n](Result<HttpResponse> r) {
          if (!r.ok() || r->body != std::to_string(n)) {
            chain_done.set_value(-n);
            return;
          }
          if (n == 0) {
            send_from_callback.set_value(client->send({.url = server->url("/")}).status());
          }
          if (n == 4) {
            chain_done.set_value(n);
            return;
          }
          step(n + 1);
        });
  };
  step(0);
  auto done = chain_done.get_future();
  ASSERT_EQ(done.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(done.get(), 4);
  EXPECT_EQ(send_from_callback.get_future().get().code(), StatusCode::kFailedPrecondition);
}

TEST(HttpClient, ThrowingCallbackIsCaughtAndLogged) {
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  LogCapture log;
  auto client = make_client({.log = log.sink()});
  ASSERT_NE(client, nullptr);
  std::promise<void> thrown;
  client->submit({.url = server->url("/")}, [&thrown](Result<HttpResponse>) {
    thrown.set_value();
    throw std::runtime_error("user bug");
  });
  ASSERT_EQ(thrown.get_future().wait_for(kWait), std::future_status::ready);
  // The loop survives: a following request works, and by then the throw was logged.
  auto r = client->send({.url = server->url("/")});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  bool logged = false;
  for (const auto& [level, line] : log.snapshot()) {
    logged = logged || (level == LogLevel::kError && line.find("user bug") != std::string::npos);
  }
  EXPECT_TRUE(logged);
}

TEST(HttpClient, NoAuthorizationValueInAnyMessageOrLog) {
  const std::string secret = "Signature=0123456789abcdefSECRETSECRET";
  const std::string authorization =
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, "
      "SignedHeaders=host;x-amz-date, " +
      secret;
  auto faulty = start_server([](const LoopbackRequest& req) {
    if (req.path() == "/reset") return LoopbackResponse::reset();
    if (req.path() == "/close") return LoopbackResponse::close_connection();
    return LoopbackResponse::black_hole();
  });
  ASSERT_NE(faulty, nullptr);
  std::string refused_url;
  {
    auto gone = start_server(echo);
    ASSERT_NE(gone, nullptr);
    refused_url = gone->url("/");
  }
  LogCapture log;
  auto client = make_client({.request_timeout = milliseconds(100), .log = log.sink()});
  ASSERT_NE(client, nullptr);
  const detail::HttpHeaders headers = {{"Authorization", authorization},
                                       {"X-Amz-Security-Token", secret}};
  std::vector<HttpRequest> requests = {
      {.method = "POST", .url = faulty->url("/reset"), .headers = headers, .body = secret},
      {.method = "POST", .url = faulty->url("/close"), .headers = headers, .body = secret},
      {.method = "POST", .url = faulty->url("/hole"), .headers = headers, .body = secret},
      {.method = "POST", .url = refused_url, .headers = headers, .body = secret},
      // A presigned URL carries the signature in its query string.
      {.url = faulty->url("/hole?X-Amz-Signature=" + secret), .headers = headers},
      {.url = "https://" + faulty->host_port() + "/?X-Amz-Signature=" + secret, .headers = headers},
      {.url = "http://[bad/?X-Amz-Signature=" + secret, .headers = headers},
      // A bad header next to the Authorization header.
      {.url = faulty->url("/"), .headers = {{"Authorization", authorization}, {"X", "a\nb"}}},
  };
  for (HttpRequest& request : requests) {
    auto r = client->send(std::move(request));
    ASSERT_FALSE(r.ok());
    const std::string text = r.status().to_string();
    EXPECT_EQ(text.find(secret), std::string::npos) << text;
    EXPECT_EQ(text.find("AKIDEXAMPLE"), std::string::npos) << text;
  }
  for (const auto& [level, line] : log.snapshot()) {
    EXPECT_EQ(line.find(secret), std::string::npos) << line;
  }
}

TEST(HttpClient, InsecureWarnsOnceAndNeverLogsTheProxyPassword) {
  LogCapture log;
  HttpClientOptions options{.insecure = true,
                            .proxy_host = "127.0.0.1",
                            .proxy_port = 3128,
                            .proxy_user = "user",
                            .proxy_password = "hunter2",
                            .log = log.sink()};
  EXPECT_EQ(options.describe().find("hunter2"), std::string::npos);
  EXPECT_NE(options.describe().find("proxy_password=***"), std::string::npos);
  auto client = make_client(options);
  ASSERT_NE(client, nullptr);
  client.reset();
  const auto lines = log.snapshot();
  int warnings = 0;
  for (const auto& [level, line] : lines) {
    EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
    warnings += level == LogLevel::kWarning && line.find("insecure") != std::string::npos;
  }
  EXPECT_EQ(warnings, 1);
}

TEST(HttpClient, ProxyReceivesAbsoluteTargetAndCredentials) {
  // The loopback server plays an HTTP proxy: for http:// targets the client sends the absolute
  // URL and Proxy-Authorization to it.
  auto proxy = start_server(echo);
  ASSERT_NE(proxy, nullptr);
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  auto client = make_client({.proxy_host = "127.0.0.1",
                             .proxy_port = proxy->port(),
                             .proxy_user = "user",
                             .proxy_password = "pass"});
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = "http://backend.invalid:8000/through?x=1"});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->header("x-target"), "http://backend.invalid:8000/through?x=1");
  EXPECT_EQ(proxy->requests_received(), 1u);
  EXPECT_EQ(server->requests_received(), 0u);
}

TEST(HttpClient, NoProxyIgnoresTheEnvironment) {
  // With no proxy configured, http_proxy in the environment must not divert requests.
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  ::setenv("http_proxy", "http://127.0.0.1:9", 1);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = server->url("/direct")});
  ::unsetenv("http_proxy");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->header("x-target"), "/direct");
}

TEST(HttpClient, CreateRejectsBadOptions) {
  auto expect_invalid = [](HttpClientOptions o) {
    auto c = HttpClient::create(std::move(o));
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << c.status().to_string();
  };
  expect_invalid({.ca_file = "/nonexistent/ca.pem"});
  expect_invalid({.ca_path = "/nonexistent/dir"});
  expect_invalid({.max_connections_per_host = -1});
  expect_invalid({.connect_timeout = milliseconds(0)});
  expect_invalid({.proxy_host = "proxy", .proxy_port = 0});
  expect_invalid({.proxy_host = "user:pw@proxy"});
  expect_invalid({.user_agent_suffix = "app\r\nX-Injected: 1"});
}

TEST(HttpClient, UserAgentSuffix) {
  Seen requests;
  auto server = start_server([&requests](const LoopbackRequest& req) {
    requests.add(req);
    return echo(req);
  });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.user_agent_suffix = "my-app/2"});
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->send({.url = server->url("/")}).ok());
  EXPECT_EQ(requests.last().header("user-agent"), detail::default_user_agent() + " my-app/2");
}

TEST(HttpClient, CurlCodesMapToTransportErrors) {
  using detail::transport_error_for_curl_code;
  using detail::TransportError;
  EXPECT_EQ(transport_error_for_curl_code(CURLE_OPERATION_TIMEDOUT), TransportError::kTimeout);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_COULDNT_CONNECT), TransportError::kConnectFailed);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_COULDNT_RESOLVE_HOST), TransportError::kDnsFailed);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_RECV_ERROR), TransportError::kConnectionLost);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_SEND_ERROR), TransportError::kConnectionLost);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_GOT_NOTHING), TransportError::kConnectionLost);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_PEER_FAILED_VERIFICATION),
            TransportError::kTlsCertificate);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_SSL_CACERT_BADFILE),
            TransportError::kTlsCertificate);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_SSL_CONNECT_ERROR), TransportError::kTlsHandshake);
  EXPECT_EQ(transport_error_for_curl_code(CURLE_URL_MALFORMAT), TransportError::kMalformedUrl);
  Status cert = detail::transport_error_status(
      transport_error_for_curl_code(CURLE_PEER_FAILED_VERIFICATION), "h:443", "");
  EXPECT_EQ(cert.code(), StatusCode::kUnavailable);
  EXPECT_EQ(cert.retry(), RetryClass::kNone);
  EXPECT_NE(cert.message().find("certificate could not be verified"), std::string_view::npos);
}

// ---- TLS verification, end to end ---------------------------------------------------------

std::unique_ptr<LoopbackTlsServer> start_tls(std::string_view san) {
  auto server = LoopbackTlsServer::start(san);
  if (!server.ok()) ADD_FAILURE() << server.status().to_string();
  return server.ok() ? std::move(server).value() : nullptr;
}

TEST(HttpClientTls, UnknownCertificateIsUnavailableAndNotRetried) {
  auto tls = start_tls("IP:127.0.0.1,DNS:localhost");
  ASSERT_NE(tls, nullptr);
  auto client = make_client();  // verification on by default; the system store lacks this CA
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = tls->url("/")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kNone);
  EXPECT_NE(r.status().message().find("certificate could not be verified"), std::string_view::npos)
      << r.status().to_string();
  EXPECT_NE(r.status().message().find("127.0.0.1:" + std::to_string(tls->port())),
            std::string_view::npos);
  EXPECT_EQ(tls->requests(), 0u);
}

TEST(HttpClientTls, CaFileTrustsTheServer) {
  auto tls = start_tls("IP:127.0.0.1,DNS:localhost");
  ASSERT_NE(tls, nullptr);
  auto client = make_client({.ca_file = tls->ca_file()});
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = tls->url("/")});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(tls->requests(), 1u);
}

TEST(HttpClientTls, HostNameMismatchIsACertificateFailure) {
  auto tls = start_tls("DNS:not-this-host.example");
  ASSERT_NE(tls, nullptr);
  auto client = make_client({.ca_file = tls->ca_file()});
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = tls->url("/")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kNone);
  EXPECT_NE(r.status().message().find("certificate could not be verified"), std::string_view::npos)
      << r.status().to_string();
  EXPECT_EQ(tls->requests(), 0u);
}

TEST(HttpClientTls, InsecureSkipsVerification) {
  auto tls = start_tls("DNS:not-this-host.example");
  ASSERT_NE(tls, nullptr);
  LogCapture log;
  auto client = make_client({.insecure = true, .log = log.sink()});
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = tls->url("/")});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "ok");
}

// ---- the loopback server itself -------------------------------------------------------------

TEST(HttpLoopbackServer, CountsConnectionsAndWaitsForRequests) {
  auto server = start_server(echo);
  ASSERT_NE(server, nullptr);
  EXPECT_NE(server->port(), 0);
  EXPECT_EQ(server->url("/p"), "http://127.0.0.1:" + std::to_string(server->port()) + "/p");
  EXPECT_EQ(server->connections_accepted(), 0u);
  EXPECT_FALSE(server->wait_for_requests(1, milliseconds(1)));
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->send({.url = server->url("/")}).ok());
  EXPECT_TRUE(server->wait_for_requests(1, milliseconds(0)));
  EXPECT_EQ(server->connections_accepted(), 1u);
  EXPECT_EQ(server->open_connections(), 1u);
}

TEST(HttpLoopbackServer, HandlerExceptionBecomes500) {
  auto server = start_server(
      [](const LoopbackRequest&) -> LoopbackResponse { throw std::runtime_error("boom"); });
  ASSERT_NE(server, nullptr);
  auto client = make_client();
  ASSERT_NE(client, nullptr);
  auto r = client->send({.url = server->url("/")});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 500);
}

TEST(HttpLoopbackServer, DestructorClosesHangingConnections) {
  // A black-holed request is still open when the server goes away; the client sees the close.
  auto server = start_server([](const LoopbackRequest&) { return LoopbackResponse::black_hole(); });
  ASSERT_NE(server, nullptr);
  auto client = make_client({.request_timeout = kWait});
  ASSERT_NE(client, nullptr);
  std::promise<Result<HttpResponse>> done;
  client->submit({.url = server->url("/")},
                 [&done](Result<HttpResponse> r) { done.set_value(std::move(r)); });
  ASSERT_TRUE(server->wait_for_requests(1, kWait));
  server.reset();
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
  Result<HttpResponse> r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
}

}  // namespace
}  // namespace shardline
