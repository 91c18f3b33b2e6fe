#include "support/loopback_http_server.h"

#include "core/ascii.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

namespace shardline::testing {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

using shardline::detail::ascii_iequals;
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return ascii_iequals(a, b);
}
std::string to_lower(std::string_view s) { return shardline::detail::ascii_lowercase(s); }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool contains_token(std::string_view list, std::string_view token) {
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    if (iequals(trim(list.substr(pos, comma - pos)), token)) return true;
    pos = comma + 1;
  }
  return false;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

enum class Parse { kIncomplete, kComplete, kBad, kTooLarge };

bool parse_size(std::string_view digits, int base, std::size_t& out) {
  if (digits.empty()) return false;
  std::size_t v = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    if (v > (SIZE_MAX - static_cast<std::size_t>(d)) / static_cast<std::size_t>(base)) return false;
    v = v * static_cast<std::size_t>(base) + static_cast<std::size_t>(d);
  }
  out = v;
  return true;
}

// Decodes a chunked body starting at `in[pos]`. Returns the number of bytes consumed from
// `pos` (through the final CRLF), 0 if incomplete, or SIZE_MAX if malformed.
std::size_t decode_chunked(std::string_view in, std::size_t pos, std::string& body) {
  const std::size_t start = pos;
  body.clear();
  for (;;) {
    std::size_t eol = in.find("\r\n", pos);
    if (eol == std::string_view::npos) return 0;
    std::string_view size_line = in.substr(pos, eol - pos);
    size_line = trim(size_line.substr(0, size_line.find(';')));
    std::size_t size = 0;
    if (!parse_size(size_line, 16, size)) return SIZE_MAX;
    pos = eol + 2;
    if (size == 0) {
      // Trailers, then an empty line.
      for (;;) {
        eol = in.find("\r\n", pos);
        if (eol == std::string_view::npos) return 0;
        const bool empty = eol == pos;
        pos = eol + 2;
        if (empty) return pos - start;
      }
    }
    if (in.size() - pos < size + 2) return 0;
    body.append(in.substr(pos, size));
    pos += size;
    if (in.substr(pos, 2) != "\r\n") return SIZE_MAX;
    pos += 2;
  }
}

// Parses one request from the front of `in`; on kComplete removes it from `in`.
// `wants_continue` is set when the head is complete, the body is not, and the client sent
// "Expect: 100-continue".
Parse parse_request(std::string& in, std::size_t max_bytes, LoopbackRequest& req,
                    bool& wants_continue) {
  wants_continue = false;
  // Tolerate empty lines between requests (RFC 9112 §2.2); anything else must start a method,
  // so a TLS ClientHello or other garbage is answered 400 at once instead of hanging.
  while (in.starts_with("\r\n")) in.erase(0, 2);
  if (in.empty()) return Parse::kIncomplete;
  if (in[0] < 'A' || in[0] > 'Z') return Parse::kBad;
  const std::size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return in.size() > max_bytes ? Parse::kTooLarge : Parse::kIncomplete;
  std::string_view head(in.data(), head_end);
  std::size_t eol = head.find("\r\n");
  std::string_view request_line = head.substr(0, eol);
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return Parse::kBad;
  req = LoopbackRequest{};
  req.method = std::string(request_line.substr(0, sp1));
  req.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  req.version = std::string(request_line.substr(sp2 + 1));
  if (!req.version.starts_with("HTTP/1.")) return Parse::kBad;
  while (eol != std::string_view::npos) {
    const std::size_t begin = eol + 2;
    eol = head.find("\r\n", begin);
    std::string_view line =
        head.substr(begin, eol == std::string_view::npos ? std::string_view::npos : eol - begin);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Parse::kBad;
    req.headers.emplace_back(to_lower(trim(line.substr(0, colon))),
                             std::string(trim(line.substr(colon + 1))));
  }
  const std::size_t body_start = head_end + 4;
  std::size_t consumed = 0;
  if (contains_token(req.header("transfer-encoding"), "chunked")) {
    const std::size_t n = decode_chunked(in, body_start, req.body);
    if (n == SIZE_MAX) return Parse::kBad;
    if (n == 0) {
      if (in.size() > max_bytes) return Parse::kTooLarge;
      wants_continue = contains_token(req.header("expect"), "100-continue");
      return Parse::kIncomplete;
    }
    consumed = body_start + n;
  } else {
    std::size_t length = 0;
    if (req.has_header("content-length") && !parse_size(req.header("content-length"), 10, length)) {
      return Parse::kBad;
    }
    if (length > max_bytes || body_start > max_bytes - length) return Parse::kTooLarge;
    if (in.size() - body_start < length) {
      wants_continue = contains_token(req.header("expect"), "100-continue");
      return Parse::kIncomplete;
    }
    req.body = in.substr(body_start, length);
    consumed = body_start + length;
  }
  in.erase(0, consumed);
  return Parse::kComplete;
}

std::string serialize(const LoopbackResponse& r, bool head_only, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " ";
  out.append(reason_phrase(r.status)).append("\r\n");
  bool has_length = false;
  bool has_connection = false;
  for (const auto& [name, value] : r.headers) {
    has_length =
        has_length || iequals(name, "content-length") || iequals(name, "transfer-encoding");
    has_connection = has_connection || iequals(name, "connection");
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_length)
    out.append("Content-Length: ").append(std::to_string(r.body.size())).append("\r\n");
  if (close && !has_connection) out.append("Connection: close\r\n");
  out.append("\r\n");
  if (!head_only) out.append(r.body);
  return out;
}

}  // namespace

// ---- LoopbackRequest / LoopbackResponse -----------------------------------------------------

std::string_view LoopbackRequest::path() const noexcept {
  std::string_view t(target);
  return t.substr(0, t.find('?'));
}

std::string_view LoopbackRequest::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

bool LoopbackRequest::has_header(std::string_view name) const noexcept {
  for (const auto& h : headers) {
    if (iequals(h.first, name)) return true;
  }
  return false;
}

LoopbackResponse LoopbackResponse::text(int status, std::string body) {
  LoopbackResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "text/plain"}};
  r.body = std::move(body);
  return r;
}

// ---- the server -------------------------------------------------------------------------------

struct LoopbackHttpServer::Connection {
  enum class State { kReading, kWaiting, kWriting, kBlackHole, kClosed };
  int fd = -1;
  std::uint64_t id = 0;
  State state = State::kReading;
  std::string in;
  std::string out;
  std::size_t out_pos = 0;
  LoopbackResponse pending;
  SteadyTime due{};
  bool close_after_write = false;
  bool head_request = false;
  bool continue_sent = false;
};

LoopbackHttpServer::LoopbackHttpServer(Handler handler, Options options)
    : handler_(std::move(handler)), options_(options) {}

Result<std::unique_ptr<LoopbackHttpServer>> LoopbackHttpServer::start(Handler handler) {
  return start(std::move(handler), Options{});
}

Result<std::unique_ptr<LoopbackHttpServer>> LoopbackHttpServer::start(Handler handler,
                                                                      Options options) {
  std::unique_ptr<LoopbackHttpServer> s(new LoopbackHttpServer(std::move(handler), options));
  auto fail = [](std::string_view what) {
    return Status::unavailable("loopback server: " + std::string(what) + ": " +
                               std::strerror(errno));
  };
  s->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->wake_fd_ < 0) return fail("eventfd");
  s->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return fail("socket");
  int one = 1;
  ::setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(s->listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail("bind 127.0.0.1:0");
  }
  if (::listen(s->listen_fd_, 512) != 0) return fail("listen");
  socklen_t len = sizeof(addr);
  if (::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail("getsockname");
  }
  s->port_ = ntohs(addr.sin_port);
  s->thread_ = std::thread([server = s.get()] { server->run(); });
  return s;
}

LoopbackHttpServer::~LoopbackHttpServer() {
  if (thread_.joinable()) {
    stop_.store(true);
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (auto& c : connections_) {
    if (c->fd >= 0) ::close(c->fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::string LoopbackHttpServer::host_port() const { return "127.0.0.1:" + std::to_string(port_); }

std::string LoopbackHttpServer::url(std::string_view path) const {
  return "http://" + host_port() + std::string(path);
}

bool LoopbackHttpServer::wait_for_requests(std::uint64_t n,
                                           std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_received_.load() >= n; });
}

// Locality: server thread, for everything below.
void LoopbackHttpServer::run() {
  std::vector<pollfd> fds;
  while (!stop_.load()) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    const SteadyTime now = std::chrono::steady_clock::now();
    SteadyTime next_due = SteadyTime::max();
    for (auto& c : connections_) {
      short events = POLLIN;
      const bool slow = c->pending.chunk_bytes > 0;
      if (c->state == Connection::State::kWriting && !slow) events |= POLLOUT;
      if (c->state == Connection::State::kWaiting ||
          (c->state == Connection::State::kWriting && slow)) {
        next_due = std::min(next_due, c->due);
      }
      fds.push_back({c->fd, events, 0});
    }
    int timeout_ms = -1;
    if (next_due != SteadyTime::max()) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_due - now);
      timeout_ms = static_cast<int>(std::max<std::int64_t>(0, wait.count()));
    }
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (stop_.load()) break;
    if (fds[0].revents != 0) {
      std::uint64_t drained = 0;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &drained, sizeof(drained));
    }
    // The connections polled this round are the first fds.size() - 2; accept adds more after.
    const std::size_t polled = fds.size() - 2;
    for (std::size_t i = 0; i < polled; ++i) {
      Connection& c = *connections_[i];
      const short revents = fds[i + 2].revents;
      if (revents & (POLLIN | POLLHUP | POLLERR)) on_readable(c);
      if (c.state == Connection::State::kWriting && (revents & POLLOUT)) write_some(c);
    }
    if (fds[1].revents & POLLIN) accept_all();
    const SteadyTime after = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = *connections_[i];
      if (c.state == Connection::State::kWaiting && c.due <= after) {
        act(c);
      } else if (c.state == Connection::State::kWriting && c.pending.chunk_bytes > 0 &&
                 c.due <= after) {
        write_some(c);
      }
    }
    std::erase_if(connections_, [](const std::unique_ptr<Connection>& c) {
      return c->state == Connection::State::kClosed;
    });
  }
}

void LoopbackHttpServer::accept_all() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error: poll again
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->id = connections_accepted_.fetch_add(1) + 1;
    open_connections_.fetch_add(1);
    connections_.push_back(std::move(c));
  }
}

void LoopbackHttpServer::on_readable(Connection& c) {
  char buf[64 * 1024];
  for (;;) {
    if (c.state == Connection::State::kClosed) return;
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n == 0) {
      close_connection(c, false);  // the peer closed
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_connection(c, false);
      return;
    }
    if (c.state != Connection::State::kBlackHole) c.in.append(buf, static_cast<std::size_t>(n));
  }
  if (c.state == Connection::State::kReading) process_input(c);
}

void LoopbackHttpServer::process_input(Connection& c) {
  while (c.state == Connection::State::kReading && !c.in.empty()) {
    LoopbackRequest req;
    bool wants_continue = false;
    const Parse p = parse_request(c.in, options_.max_request_bytes, req, wants_continue);
    if (p == Parse::kIncomplete) {
      if (wants_continue && !c.continue_sent) {
        c.continue_sent = true;
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        [[maybe_unused]] ssize_t n = ::send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL);
      }
      return;
    }
    c.continue_sent = false;
    if (p == Parse::kBad || p == Parse::kTooLarge) {
      c.pending = LoopbackResponse::text(p == Parse::kBad ? 400 : 413,
                                         p == Parse::kBad ? "malformed request" : "too large");
      c.close_after_write = true;
      c.head_request = false;
      c.in.clear();
      act(c);
      return;
    }
    dispatch(c, std::move(req));
  }
}

void LoopbackHttpServer::dispatch(Connection& c, LoopbackRequest req) {
  req.connection_id = c.id;
  req.sequence = requests_received_.load() + 1;
  const std::string_view connection = req.header("connection");
  const bool keep_alive = req.version == "HTTP/1.0" ? contains_token(connection, "keep-alive")
                                                    : !contains_token(connection, "close");
  c.head_request = req.method == "HEAD";
  LoopbackResponse resp;
  try {
    resp = handler_(req);
  } catch (const std::exception& e) {
    resp = LoopbackResponse::text(500, std::string("handler threw: ") + e.what());
  } catch (...) {
    resp = LoopbackResponse::text(500, "handler threw");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_received_.fetch_add(1);
  }
  cv_.notify_all();
  c.pending = std::move(resp);
  c.close_after_write = !keep_alive || c.pending.close_after;
  c.state = Connection::State::kWaiting;
  c.due = std::chrono::steady_clock::now() + c.pending.delay;
  if (c.pending.delay.count() <= 0) act(c);
}

void LoopbackHttpServer::act(Connection& c) {
  switch (c.pending.fault) {
    case LoopbackFault::kClose:
      close_connection(c, false);
      return;
    case LoopbackFault::kReset:
      close_connection(c, true);
      return;
    case LoopbackFault::kBlackHole:
      c.state = Connection::State::kBlackHole;
      c.in.clear();
      return;
    case LoopbackFault::kNone:
      break;
  }
  c.out = serialize(c.pending, c.head_request, c.close_after_write);
  c.out_pos = 0;
  c.state = Connection::State::kWriting;
  c.due = std::chrono::steady_clock::now();
  write_some(c);
}

void LoopbackHttpServer::write_some(Connection& c) {
  const bool slow = c.pending.chunk_bytes > 0;
  std::size_t budget = slow ? c.pending.chunk_bytes : c.out.size();
  while (c.out_pos < c.out.size() && budget > 0) {
    const std::size_t want = std::min(budget, c.out.size() - c.out_pos);
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, want, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_connection(c, false);
      return;
    }
    c.out_pos += static_cast<std::size_t>(n);
    budget -= static_cast<std::size_t>(n);
  }
  if (c.out_pos < c.out.size()) {
    if (slow) c.due = std::chrono::steady_clock::now() + c.pending.chunk_interval;
    return;
  }
  c.out.clear();
  c.out_pos = 0;
  c.pending = LoopbackResponse{};
  if (c.close_after_write) {
    close_connection(c, false);
    return;
  }
  c.state = Connection::State::kReading;
  process_input(c);  // a pipelined request may be waiting
}

void LoopbackHttpServer::close_connection(Connection& c, bool reset) {
  if (c.fd < 0) return;
  if (reset) {
    linger l{};
    l.l_onoff = 1;
    l.l_linger = 0;
    ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  } else {
    ::shutdown(c.fd, SHUT_WR);
  }
  ::close(c.fd);
  c.fd = -1;
  c.state = Connection::State::kClosed;
  open_connections_.fetch_sub(1);
}

}  // namespace shardline::testing
