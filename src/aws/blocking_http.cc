#include "aws/blocking_http.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace shardline::detail {

namespace {

void init_curl_once() {
  static std::once_flag once;
  // curl_global_init is reference counted: another component calling it too is harmless.
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  BlockingHttpResponse* response;
  std::size_t limit;
  bool overflow = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t bytes = size * n;
  if (sink->response->body.size() + bytes > sink->limit) {
    sink->overflow = true;
    return 0;  // makes libcurl fail with CURLE_WRITE_ERROR
  }
  sink->response->body.append(data, bytes);
  return bytes;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* response = static_cast<BlockingHttpResponse*>(user);
  const std::size_t bytes = size * n;
  std::string_view line(data, bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {
    response->headers.clear();  // a new response (after 100 Continue): keep only the last
    return bytes;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  std::string name(line.substr(0, colon));
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  response->headers.emplace_back(std::move(name), std::string(value));
  return bytes;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

Status transport_error(const BlockingHttpRequest& req, CURLcode code, const char* detail) {
  std::string m(req.method);
  m.append(" ").append(req.url).append(": ");
  m.append(detail[0] != '\0' ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status::deadline_exceeded(std::move(m));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::invalid_argument(std::move(m));
    default:
      return Status::unavailable(std::move(m));
  }
}

}  // namespace

std::string_view BlockingHttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

Result<BlockingHttpResponse> blocking_http(const BlockingHttpRequest& req) {
  init_curl_once();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Status::internal("curl_easy_init failed");
  CURL* h = curl.get();
  BlockingHttpResponse response;
  Sink sink{&response, req.max_response_bytes};
  char error[CURL_ERROR_SIZE] = {};

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& line) {
    // curl_slist_append returns the list head: new on the first append, unchanged after.
    curl_slist* head = curl_slist_append(headers.get(), line.c_str());
    if (head != nullptr && head != headers.get()) {
      (void)headers.release();
      headers.reset(head);
    }
  };
  for (const auto& [name, value] : req.headers) {
    // A header value with CR or LF would inject headers: refuse it (without quoting it).
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return Status::invalid_argument(req.method + " " + req.url + ": header '" + name +
                                      "' contains a line break");
    }
    add_header(value.empty() ? name + ";" : name + ": " + value);
  }
  add_header("Expect:");  // no 100-continue round trip

  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "shardline");
  if (!req.use_proxy) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response);
  if (req.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    // POSTFIELDS with an explicit size sends the body (possibly empty) with Content-Length;
    // CUSTOMREQUEST turns the POST into PUT/DELETE/... without changing that.
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
    if (req.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  const CURLcode rc = curl_easy_perform(h);
  if (sink.overflow) {
    return Status::resource_exhausted(req.method + " " + req.url + ": response larger than " +
                                      std::to_string(req.max_response_bytes) + " bytes");
  }
  if (rc != CURLE_OK) return transport_error(req, rc, error);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace shardline::detail
