#include "aws/http_client.h"

#include "core/ascii.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <future>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "shardline/version.h"

// curl_multi_poll (7.66), curl_multi_wakeup (7.68), CURLOPT_PROTOCOLS_STR (7.85).
static_assert(LIBCURL_VERSION_NUM >= 0x075500, "shardline needs libcurl 7.85 or newer");

namespace shardline::detail {
namespace {

// How long the loop sleeps when nothing is due; submit() and the destructor wake it earlier,
// and libcurl's own timers shorten it while transfers run.
constexpr int kIdleWaitMs = 10'000;
// Receive buffer per transfer: large responses (GetRecords: up to 10 MiB) take fewer writes.
constexpr long kReceiveBufferBytes = 64 * 1024;

// With CURLOPT_NOSIGNAL libcurl does not ignore SIGPIPE for us, and a TLS write to a
// connection the peer closed can raise it (OpenSSL writes to the socket without MSG_NOSIGNAL).
// SIGPIPE from a write is directed at the writing thread, so blocking it on the event-loop
// thread turns it into an EPIPE error there without touching the process's signal handlers.
void block_sigpipe_on_this_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::once_flag g_curl_init_once;
CURLcode g_curl_init_result = CURLE_OK;

CURLcode init_curl_once() {
  std::call_once(g_curl_init_once, [] { g_curl_init_result = curl_global_init(CURL_GLOBAL_ALL); });
  return g_curl_init_result;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return detail::ascii_iequals(a, b);
}
std::string to_lower(std::string_view s) { return detail::ascii_lowercase(s); }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// RFC 9110 token characters (method and header names).
bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool has_line_break(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

std::string_view level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// One request in flight. Owned by the event loop from submit() until its callback returns.
// Locality: event-loop thread only (after it leaves the submission queue).
struct Transfer {
  HttpRequest request;  // owns the URL and the body that libcurl points into
  HttpClient::Callback done;
  HttpResponse response;
  std::string host;  // "host:port", the only part of the URL that messages show
  curl_slist* header_list = nullptr;
  std::size_t max_response_bytes = 0;
  std::size_t received = 0;  // body bytes so far
  std::size_t expected = 0;  // Content-Length, 0 if unknown
  int status_line_code = 0;  // of the last status line
  bool filtering = false;    // the body goes to request.body_filter

  // Whether the body of the response whose status line came last goes to the filter.
  bool filtered() const noexcept {
    return request.body_filter && status_line_code >= 200 && status_line_code < 300;
  }
  bool too_large = false;
  bool aborted = false;  // the body filter ended it
  char error[CURL_ERROR_SIZE] = {};

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() {
    if (header_list != nullptr) curl_slist_free_all(header_list);
  }
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  const bool unbounded = t->filtered() && t->request.body_filter->unbounded();
  if (!unbounded && n > t->max_response_bytes - std::min(t->max_response_bytes, t->received)) {
    t->too_large = true;
    return CURL_WRITEFUNC_ERROR;
  }
  if (t->received == 0 && t->filtered()) {
    t->filtering = true;
    t->request.body_filter->begin(t->expected);
  }
  t->received += n;
  if (t->filtering) {
    t->request.body_filter->feed(std::string_view(data, n));
  } else {
    t->response.body.append(data, n);
  }
  return n;
}

// Transfers with a body filter: the filter may end them (BodyFilter::keep_going).
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request.body_filter->keep_going()) return 0;
  t->aborted = true;
  return 1;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  std::string_view line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  HttpHeaders& headers = t->response.headers;
  if (line.starts_with("HTTP/")) {
    // A new header block: after a 1xx, keep only the final response's headers.
    headers.clear();
    const std::size_t sp = line.find(' ');
    t->status_line_code = 0;
    for (std::size_t i = sp + 1; sp != std::string_view::npos && i < line.size() && i < sp + 4;
         ++i) {
      if (line[i] < '0' || line[i] > '9') break;
      t->status_line_code = t->status_line_code * 10 + (line[i] - '0');
    }
    return n;
  }
  if (line.empty()) return n;
  if ((line.front() == ' ' || line.front() == '\t') && !headers.empty()) {
    // Obsolete line folding: a continuation of the previous value.
    headers.back().second.append(" ").append(trim_ows(line));
    return n;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name = to_lower(trim_ows(line.substr(0, colon)));
  std::string_view value = trim_ows(line.substr(colon + 1));
  if (name == "content-length" && t->request.method != "HEAD") {
    // Reserve once for the whole body (bounded: the header is the server's word).
    std::size_t length = 0;
    for (char c : value) {
      if (c < '0' || c > '9' || length > t->max_response_bytes) break;
      length = length * 10 + static_cast<std::size_t>(c - '0');
    }
    // Plus room for the padding a SIMD JSON parser reads past the end (kBodyPadding), so
    // the body can be parsed where it lies instead of copied.
    if (length <= t->max_response_bytes) {
      t->expected = length;
      if (!t->filtered()) t->response.body.reserve(length + kBodyPadding);
    }
  }
  headers.emplace_back(std::move(name), std::string(value));
  return n;
}

}  // namespace

void log_to_stderr(LogLevel level, std::string_view message) {
  if (level < LogLevel::kWarning) return;
  std::string line = "shardline [";
  line.append(level_name(level)).append("] ").append(message).append("\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

std::string default_user_agent() { return "shardline/" + std::string(kVersion); }

std::string_view HttpResponse::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

bool HttpResponse::has_header(std::string_view name) const noexcept {
  for (const auto& h : headers) {
    if (iequals(h.first, name)) return true;
  }
  return false;
}

std::string HttpClientOptions::describe() const {
  std::string s;
  s += "max_connections_per_host=" + std::to_string(max_connections_per_host);
  s += " max_connections_total=" + std::to_string(max_connections_total);
  s += " connect_timeout=" + std::to_string(connect_timeout.count()) + "ms";
  s += " request_timeout=" + std::to_string(request_timeout.count()) + "ms";
  s += " http=";
  switch (http_version) {
    case HttpVersion::kHttp1_1:
      s += "1.1";
      break;
    case HttpVersion::kHttp2Tls:
      s += "2-tls";
      break;
    case HttpVersion::kHttp2PriorKnowledge:
      s += "2-prior-knowledge";
      break;
  }
  s += insecure ? " tls=INSECURE" : " tls=verify";
  if (!ca_file.empty()) s += " ca_file=" + ca_file;
  if (!ca_path.empty()) s += " ca_path=" + ca_path;
  if (!proxy_host.empty()) {
    s += " proxy=" + proxy_host + ":" + std::to_string(proxy_port);
    if (!proxy_user.empty()) s += " proxy_user=" + proxy_user;
    if (!proxy_password.empty()) s += " proxy_password=***";
  }
  return s;
}

TransportError transport_error_for_curl_code(int curl_code) noexcept {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_COULDNT_CONNECT:
      return TransportError::kConnectFailed;
    case CURLE_COULDNT_RESOLVE_HOST:
      return TransportError::kDnsFailed;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PROXY:
      return TransportError::kProxy;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_SEND_FAIL_REWIND:
      return TransportError::kConnectionLost;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
      return TransportError::kTlsCertificate;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_USE_SSL_FAILED:
      return TransportError::kTlsHandshake;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return TransportError::kMalformedUrl;
    case CURLE_ABORTED_BY_CALLBACK:
      return TransportError::kCancelled;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
    case CURLE_FAILED_INIT:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
      return TransportError::kInternal;
    default:
      return TransportError::kOther;
  }
}

// ---------------------------------------------------------------------------------------------

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions options) : options_(std::move(options)) {
    if (!options_.log) options_.log = log_to_stderr;
    user_agent_ = default_user_agent();
    if (!options_.user_agent_suffix.empty()) user_agent_ += " " + options_.user_agent_suffix;
    if (!options_.proxy_host.empty()) {
      proxy_url_ = options_.proxy_host.find("://") == std::string::npos
                       ? "http://" + options_.proxy_host
                       : options_.proxy_host;
      proxy_url_ += ":" + std::to_string(options_.proxy_port);
    }
  }

  ~Impl() {
    if (thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
      }
      curl_multi_wakeup(multi_);
      thread_.join();
    }
    for (CURL* easy : free_easy_) curl_easy_cleanup(easy);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status start() {
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return Status::internal("curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_connections_per_host);
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, options_.max_connections_total);
    // The keep-alive pool: idle connections the multi handle keeps for reuse.
    if (options_.max_connections_total > 0) {
      curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options_.max_connections_total);
    }
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, long{CURLPIPE_MULTIPLEX});
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
      return Status::internal(std::string("cannot start the HTTP event-loop thread: ") + e.what());
    }
    return Status();
  }

  void submit(HttpRequest request, Callback done) {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->done = std::move(done);
    t->max_response_bytes = options_.max_response_bytes;
    submitted_.fetch_add(1, std::memory_order_relaxed);
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_) {
        queue_.push_back(std::move(t));
        t = nullptr;
      }
    }
    if (t == nullptr) {
      curl_multi_wakeup(multi_);
      return;
    }
    // Only reachable while the destructor runs, from a thread that raced it.
    complete(std::move(t), transport_error_status(TransportError::kCancelled, "", ""));
  }

  bool on_loop_thread() const noexcept {
    return loop_thread_id_.load(std::memory_order_acquire) == std::this_thread::get_id();
  }

  HttpClientStats stats() const noexcept {
    HttpClientStats s;
    s.submitted = submitted_.load(std::memory_order_relaxed);
    s.completed = completed_.load(std::memory_order_relaxed);
    s.failed = failed_.load(std::memory_order_relaxed);
    s.new_connections = new_connections_.load(std::memory_order_relaxed);
    s.in_flight = in_flight_.load(std::memory_order_relaxed);
    return s;
  }

  const HttpClientOptions& options() const noexcept { return options_; }

  void log(LogLevel level, std::string_view message) const {
    try {
      options_.log(level, message);
    } catch (...) {
      // A throwing log sink must not take the event loop down.
    }
  }

 private:
  // Locality: event-loop thread.
  void run() {
    block_sigpipe_on_this_thread();
    loop_thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
    std::vector<std::unique_ptr<Transfer>> batch;
    for (;;) {
      bool stopping = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        batch.swap(queue_);
        stopping = stopping_;
        if (stopping && batch.empty() && active_.empty()) {
          closed_ = true;
          break;
        }
      }
      if (stopping) {
        // Callbacks of cancelled requests may submit again; the next pass cancels those too.
        cancel_all(batch);
        continue;
      }
      for (auto& t : batch) begin_transfer(std::move(t));
      batch.clear();

      int running = 0;
      CURLMcode mc = curl_multi_perform(multi_, &running);
      if (mc != CURLM_OK) {
        log(LogLevel::kError, std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
      }
      drain_finished();

      int ignored = 0;
      mc = curl_multi_poll(multi_, nullptr, 0, kIdleWaitMs, &ignored);
      if (mc != CURLM_OK) {
        log(LogLevel::kError, std::string("curl_multi_poll: ") + curl_multi_strerror(mc));
      }
    }
  }

  // Locality: event-loop thread.
  void drain_finished() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg == CURLMSG_DONE) finish(msg->easy_handle, msg->data.result);
    }
  }

  // Locality: event-loop thread.
  void begin_transfer(std::unique_ptr<Transfer> t) {
    Status s = prepare(*t);
    if (!s.ok()) {
      complete(std::move(t), std::move(s));
      return;
    }
    CURL* easy = acquire_easy();
    if (easy == nullptr) {
      s = transport_error_status(TransportError::kInternal, t->host, "curl_easy_init failed");
      complete(std::move(t), std::move(s));
      return;
    }
    s = configure(easy, *t);
    if (s.ok()) {
      CURLMcode mc = curl_multi_add_handle(multi_, easy);
      if (mc != CURLM_OK) {
        s = transport_error_status(TransportError::kInternal, t->host, curl_multi_strerror(mc));
      }
    }
    if (!s.ok()) {
      release_easy(easy, /*reusable=*/false);
      complete(std::move(t), std::move(s));
      return;
    }
    active_.emplace(easy, std::move(t));
  }

  // Validates the request and extracts "host:port" for messages. No libcurl handle yet.
  Status prepare(Transfer& t) {
    const HttpRequest& r = t.request;
    CURLU* url = curl_url();
    if (url == nullptr) {
      return transport_error_status(TransportError::kInternal, "", "curl_url failed");
    }
    CURLUcode uc = curl_url_set(url, CURLUPART_URL, r.url.c_str(), 0);
    char* scheme = nullptr;
    char* host = nullptr;
    char* port = nullptr;
    if (uc == CURLUE_OK) uc = curl_url_get(url, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_OK) uc = curl_url_get(url, CURLUPART_HOST, &host, 0);
    if (uc == CURLUE_OK) uc = curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    Status s;
    if (uc != CURLUE_OK) {
      // Never echo the URL: a presigned query string carries credentials.
      s = transport_error_status(TransportError::kMalformedUrl, "", curl_url_strerror(uc));
    } else {
      t.host = std::string(host) + ":" + port;
      std::string_view sch(scheme);
      if (sch != "http" && sch != "https") {
        s = transport_error_status(TransportError::kMalformedUrl, t.host,
                                   "only http and https are supported");
      }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(url);
    if (!s.ok()) return s;

    if (!is_token(r.method)) {
      return transport_error_status(TransportError::kInvalidRequest, t.host,
                                    "the method is not an HTTP token");
    }
    for (const auto& [name, value] : r.headers) {
      // Name the header, never show its value.
      if (!is_token(name)) {
        return transport_error_status(TransportError::kInvalidRequest, t.host,
                                      "a header name is empty or not an HTTP token");
      }
      if (has_line_break(value)) {
        return transport_error_status(TransportError::kInvalidRequest, t.host,
                                      "the value of header '" + name + "' contains CR, LF or NUL");
      }
    }
    return Status();
  }

  // Locality: event-loop thread.
  Status configure(CURL* easy, Transfer& t) {
    const HttpRequest& r = t.request;
    CURLcode rc = CURLE_OK;
    auto set = [&rc](CURLcode c) {
      if (rc == CURLE_OK) rc = c;
    };
    set(curl_easy_setopt(easy, CURLOPT_PRIVATE, static_cast<void*>(&t)));
    set(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error));
    set(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));
    set(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
    set(curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str()));
    set(curl_easy_setopt(easy, CURLOPT_USERAGENT, user_agent_.c_str()));
    set(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(options_.connect_timeout.count())));
    const std::chrono::milliseconds timeout =
        r.timeout.count() > 0 ? r.timeout : options_.request_timeout;
    set(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count())));
    set(curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L));
    set(curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L));
    set(curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE,
                         static_cast<long>(options_.tcp_keepalive_idle.count())));
    set(curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL,
                         static_cast<long>(options_.tcp_keepalive_interval.count())));
    set(curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN,
                         static_cast<long>(options_.max_idle_connection_age.count())));
    set(curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kReceiveBufferBytes));
    set(curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L));

    // TLS.
    set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, options_.insecure ? 0L : 1L));
    set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options_.insecure ? 0L : 2L));
    if (!options_.ca_file.empty()) {
      set(curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str()));
      set(curl_easy_setopt(easy, CURLOPT_PROXY_CAINFO, options_.ca_file.c_str()));
    }
    if (!options_.ca_path.empty()) {
      set(curl_easy_setopt(easy, CURLOPT_CAPATH, options_.ca_path.c_str()));
      set(curl_easy_setopt(easy, CURLOPT_PROXY_CAPATH, options_.ca_path.c_str()));
    }

    // Proxy: an explicit "" makes libcurl ignore http_proxy/https_proxy in the environment.
    set(curl_easy_setopt(easy, CURLOPT_PROXY, proxy_url_.c_str()));
    if (!proxy_url_.empty()) {
      if (!options_.proxy_user.empty()) {
        set(curl_easy_setopt(easy, CURLOPT_PROXYUSERNAME, options_.proxy_user.c_str()));
      }
      if (!options_.proxy_password.empty()) {
        set(curl_easy_setopt(easy, CURLOPT_PROXYPASSWORD, options_.proxy_password.c_str()));
      }
    }

    switch (options_.http_version) {
      case HttpVersion::kHttp1_1:
        set(curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, long{CURL_HTTP_VERSION_1_1}));
        break;
      case HttpVersion::kHttp2Tls:
        set(curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, long{CURL_HTTP_VERSION_2TLS}));
        set(curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L));
        break;
      case HttpVersion::kHttp2PriorKnowledge:
        set(curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                             long{CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE}));
        set(curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L));
        break;
    }

    // Method and body. The body stays in t.request until the transfer ends.
    bool has_content_type = false;
    bool has_expect = false;
    for (const auto& h : r.headers) {
      has_content_type = has_content_type || iequals(h.first, "content-type");
      has_expect = has_expect || iequals(h.first, "expect");
    }
    const bool sends_body = !(r.method == "GET" || r.method == "HEAD") || !r.body.empty();
    if (r.method == "HEAD") {
      set(curl_easy_setopt(easy, CURLOPT_NOBODY, 1L));
    } else if (!sends_body) {
      set(curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L));
    } else {
      set(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                           static_cast<curl_off_t>(r.body.size())));
      set(curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.data()));
      if (r.method != "POST") {
        set(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str()));
      }
    }

    // Headers. "Name;" is libcurl's spelling of an empty header; "Name:" removes one.
    std::string line;
    auto append = [&t](const std::string& l) {
      curl_slist* next = curl_slist_append(t.header_list, l.c_str());
      if (next == nullptr) return false;
      t.header_list = next;
      return true;
    };
    bool appended = true;
    for (const auto& [name, value] : r.headers) {
      line = value.empty() ? name + ";" : name + ": " + value;
      appended = appended && append(line);
    }
    // No "Expect: 100-continue" round trip before large bodies.
    if (!has_expect) appended = appended && append("Expect:");
    // No default "application/x-www-form-urlencoded" on bodies.
    if (sends_body && !has_content_type) appended = appended && append("Content-Type:");
    if (!appended) return Status::internal("out of memory building request headers");
    set(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.header_list));

    set(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body));
    set(curl_easy_setopt(easy, CURLOPT_WRITEDATA, static_cast<void*>(&t)));
    set(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header));
    set(curl_easy_setopt(easy, CURLOPT_HEADERDATA, static_cast<void*>(&t)));
    // A stream's connection is its own: no other request waits behind it (HTTP/1.1), and
    // after an early end (keep_going) the connection is closed, not handed to the next
    // request mid-stream (with HTTP/2, kinesis-mock then broke the framing of every later
    // stream on that connection).
    const bool stream = r.body_filter && r.body_filter->unbounded();
    set(curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, stream ? 1L : 0L));
    set(curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, stream ? 1L : 0L));
    if (r.body_filter) {
      set(curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress));
      set(curl_easy_setopt(easy, CURLOPT_XFERINFODATA, static_cast<void*>(&t)));
      set(curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L));
    } else {
      set(curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 1L));
    }

    if (rc != CURLE_OK) {
      return transport_error_status(transport_error_for_curl_code(rc), t.host,
                                    curl_easy_strerror(rc));
    }
    return Status();
  }

  // Locality: event-loop thread.
  void finish(CURL* easy, CURLcode result) {
    auto it = active_.find(easy);
    if (it == active_.end()) return;  // not ours: cannot happen
    std::unique_ptr<Transfer> t = std::move(it->second);
    active_.erase(it);
    curl_multi_remove_handle(multi_, easy);

    long connects = 0;
    if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0) {
      new_connections_.fetch_add(static_cast<std::uint64_t>(connects), std::memory_order_relaxed);
    }
    if (result == CURLE_OK) {
      long code = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
      release_easy(easy);
      t->response.status = static_cast<int>(code);
      if (t->filtering) t->request.body_filter->end();
      HttpResponse response = std::move(t->response);
      complete(std::move(t), std::move(response));
      return;
    }
    // A handle whose transfer failed (timeout, reset) is not reused: libcurl 7.88 can leave it
    // rejecting options on the next configure (seen: CURLOPT_BUFFERSIZE after a timeout).
    release_easy(easy, /*reusable=*/false);
    Status s;
    if (t->aborted) {
      s = transport_error_status(TransportError::kCancelled, t->host, "ended by its reader");
    } else if (t->too_large) {
      s = transport_error_status(TransportError::kResponseTooLarge, t->host,
                                 "more than " + std::to_string(t->max_response_bytes) + " bytes");
    } else {
      std::string_view detail = t->error[0] != '\0' ? std::string_view(t->error)
                                                    : std::string_view(curl_easy_strerror(result));
      s = transport_error_status(transport_error_for_curl_code(result), t->host, detail);
    }
    complete(std::move(t), std::move(s));
  }

  // Locality: event-loop thread.
  void cancel_all(std::vector<std::unique_ptr<Transfer>>& queued) {
    std::vector<std::unique_ptr<Transfer>> all;
    for (auto& [easy, t] : active_) {
      curl_multi_remove_handle(multi_, easy);
      release_easy(easy, /*reusable=*/false);
      all.push_back(std::move(t));
    }
    active_.clear();
    for (auto& t : queued) all.push_back(std::move(t));
    queued.clear();
    for (auto& t : all) {
      std::string host = t->host;
      complete(std::move(t), transport_error_status(TransportError::kCancelled, host, ""));
    }
  }

  // Runs the callback after the transfer (and its buffers) is gone, so a callback that submits
  // again finds the loop consistent. Counters move before the callback runs.
  void complete(std::unique_ptr<Transfer> t, Result<HttpResponse> result) {
    Callback done = std::move(t->done);
    t.reset();
    completed_.fetch_add(1, std::memory_order_relaxed);
    if (!result.ok()) failed_.fetch_add(1, std::memory_order_relaxed);
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    if (!done) return;
    try {
      done(std::move(result));
    } catch (const std::exception& e) {
      log(LogLevel::kError, std::string("an HTTP completion callback threw: ") + e.what());
    } catch (...) {
      log(LogLevel::kError, "an HTTP completion callback threw a non-exception");
    }
  }

  // Locality: event-loop thread. Easy handles are recycled: reset keeps their allocations.
  CURL* acquire_easy() {
    if (!free_easy_.empty()) {
      CURL* easy = free_easy_.back();
      free_easy_.pop_back();
      return easy;
    }
    return curl_easy_init();
  }

  void release_easy(CURL* easy, bool reusable = true) {
    if (!reusable) {
      curl_easy_cleanup(easy);
      return;
    }
    curl_easy_reset(easy);  // drops every pointer into the finished Transfer
    const std::size_t keep =
        static_cast<std::size_t>(std::max<long>(16, options_.max_connections_total));
    if (free_easy_.size() < keep) {
      free_easy_.push_back(easy);
    } else {
      curl_easy_cleanup(easy);
    }
  }

  HttpClientOptions options_;
  std::string user_agent_;
  std::string proxy_url_;
  CURLM* multi_ = nullptr;
  std::thread thread_;
  std::atomic<std::thread::id> loop_thread_id_{};

  std::mutex mu_;
  std::vector<std::unique_ptr<Transfer>> queue_;  // guarded by mu_
  bool stopping_ = false;                         // guarded by mu_
  bool closed_ = false;                           // guarded by mu_: the loop has exited

  // Event-loop thread only.
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active_;
  std::vector<CURL*> free_easy_;

  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> new_connections_{0};
  std::atomic<std::uint64_t> in_flight_{0};
};

// ---------------------------------------------------------------------------------------------

namespace {

Status validate(const HttpClientOptions& o) {
  if (o.max_connections_per_host < 0 || o.max_connections_total < 0) {
    return Status::invalid_argument("HTTP connection limits must be >= 0 (0 = unlimited)");
  }
  if (o.connect_timeout.count() <= 0 || o.request_timeout.count() <= 0) {
    return Status::invalid_argument("HTTP connect and request timeouts must be > 0 ms");
  }
  if (o.max_response_bytes == 0) {
    return Status::invalid_argument("HTTP max_response_bytes must be > 0");
  }
  if (!o.ca_file.empty() && ::access(o.ca_file.c_str(), R_OK) != 0) {
    return Status::invalid_argument("TLS CA file '" + o.ca_file + "' is not readable");
  }
  if (!o.ca_path.empty() && ::access(o.ca_path.c_str(), R_OK | X_OK) != 0) {
    return Status::invalid_argument("TLS CA directory '" + o.ca_path + "' is not readable");
  }
  if (!o.proxy_host.empty()) {
    if (o.proxy_port < 1 || o.proxy_port > 65535) {
      return Status::invalid_argument("HTTP proxy port must be in [1, 65535], got " +
                                      std::to_string(o.proxy_port));
    }
    if (o.proxy_host.find_first_of(" \t\r\n@") != std::string::npos) {
      return Status::invalid_argument(
          "HTTP proxy host must be a host name (user and password go in their own options)");
    }
  }
  if (has_line_break(o.user_agent_suffix) || has_line_break(o.proxy_user) ||
      has_line_break(o.proxy_password)) {
    return Status::invalid_argument(
        "HTTP user agent and proxy credentials must not contain "
        "CR, LF or NUL");
  }
  if (o.http_version != HttpVersion::kHttp1_1) {
    const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
    if (info == nullptr || (info->features & CURL_VERSION_HTTP2) == 0) {
      return Status(StatusCode::kUnimplemented, "this libcurl was built without HTTP/2");
    }
  }
  return Status();
}

}  // namespace

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(HttpClientOptions options) {
  if (init_curl_once() != CURLE_OK) {
    return Status::internal(std::string("curl_global_init failed: ") +
                            curl_easy_strerror(g_curl_init_result));
  }
  SHARDLINE_RETURN_IF_ERROR(validate(options));
  auto impl = std::make_unique<Impl>(std::move(options));
  if (impl->options().insecure) {
    impl->log(LogLevel::kWarning,
              "TLS certificate verification is OFF (insecure): any server can impersonate the "
              "endpoint. Use only against local test servers.");
  }
  SHARDLINE_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

void HttpClient::submit(HttpRequest request, Callback done) {
  impl_->submit(std::move(request), std::move(done));
}

Result<HttpResponse> HttpClient::send(HttpRequest request) {
  if (impl_->on_loop_thread()) {
    return Status::failed_precondition(
        "HttpClient::send called from the event-loop thread (a completion callback); use "
        "submit");
  }
  auto promise = std::make_shared<std::promise<Result<HttpResponse>>>();
  std::future<Result<HttpResponse>> future = promise->get_future();
  submit(std::move(request),
         [promise](Result<HttpResponse> r) { promise->set_value(std::move(r)); });
  return future.get();
}

HttpClientStats HttpClient::stats() const noexcept { return impl_->stats(); }

const HttpClientOptions& HttpClient::options() const noexcept { return impl_->options(); }

}  // namespace shardline::detail
