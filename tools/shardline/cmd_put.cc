// shardline put --stream NAME [FILE|-] [--format jsonl|lines]
//               [--partition-key KEY | --random-partition-key] [--config KPL.properties]
//               [-X Key=Value]... [--results FILE]
//
// Puts user records through the Producer (aggregation, per-shard rate limiting, batching,
// retries) and accounts for every one of them:
//   * a one-line JSON summary on stdout (userRecords, succeeded, failed, kinesisRecords,
//     putRecordsRequests, retries, elapsedMs, ...);
//   * with --results FILE, one JSON line per input record, in input order, written as soon as
//     a prefix of the input is resolved (memory holds only the unresolved window);
//   * a bad input line is named on stderr with its line number, counted as failed, and never
//     stops the run;
//   * on a terminal, a progress line on stderr, redrawn at most every 500 ms.
// SIGINT/SIGTERM stop the reading; everything already accepted is resolved (close with the
// RecordTtl) before the summary, which then says "interrupted": true.
// Exit status: 0 iff every record read succeeded, 1 otherwise, 2 for bad arguments.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aws_cli.h"
#include "commands.h"
#include "core/digest.h"
#include "io.h"
#include "record_json.h"
#include "shardline/aggregation.h"
#include "shardline/config.h"
#include "shardline/producer.h"

namespace shardline::cli {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct PutArgs {
  AwsOptions aws;
  std::string stream;
  std::string input = "-";
  std::string format = "jsonl";
  std::string partition_key;
  bool partition_key_given = false;
  bool random_partition_key = false;
  std::string config_file;
  std::vector<std::string> settings;  // -X Key=Value
  std::string results_file;
};

// ---- stderr: one-line messages that coexist with a progress line -------------------------

class Console {
 public:
  // Runs `print` (which writes whole lines to stderr) after erasing the progress line.
  template <class F>
  void print(F&& print_lines) {
    std::lock_guard<std::mutex> lock(mu_);
    erase_locked();
    print_lines();
    std::fflush(stderr);
  }
  void line(const std::string& text) {
    print([&] { std::fprintf(stderr, "%s\n", text.c_str()); });
  }
  // Replaces the progress line (no newline; only call when stderr is a terminal).
  void progress(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void end_progress() {
    std::lock_guard<std::mutex> lock(mu_);
    erase_locked();
    std::fflush(stderr);
  }

 private:
  void erase_locked() {
    if (shown_) std::fputs("\r\033[K", stderr);
    shown_ = false;
  }
  std::mutex mu_;
  bool shown_ = false;
};

// ---- input: lines with simdjson's padding, interruptible by SIGINT/SIGTERM -----------------

// Like LineReader, but a read from a pipe, FIFO or terminal never blocks for more than a
// moment without looking at stop_requested(), so a signal stops the reading even when the
// writer keeps the input open and idle.
class InputReader {
 public:
  enum class Next { kLine, kEnd, kStopped, kError };

  // kCancelled when a stop signal arrived while opening (a FIFO waits for its writer).
  static Result<std::unique_ptr<InputReader>> open(const std::string& path) {
    int fd = 0;
    bool owned = false;
    std::string name = "<stdin>";
    if (!path.empty() && path != "-") {
      do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      } while (fd < 0 && errno == EINTR && !stop_requested());
      if (fd < 0) {
        if (errno == EINTR) return Status::cancelled("interrupted while opening '" + path + "'");
        return Status::not_found("cannot open '" + path + "': " + std::strerror(errno));
      }
      owned = true;
      name = path;
    }
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    return std::unique_ptr<InputReader>(new InputReader(fd, owned, !regular, std::move(name)));
  }
  ~InputReader() {
    if (owned_) ::close(fd_);
  }
  InputReader(const InputReader&) = delete;
  InputReader& operator=(const InputReader&) = delete;

  // The next line, without "\n" or "\r\n"; kLinePadding readable bytes follow it. The view is
  // valid until the next call.
  Next next(std::string_view& line) {
    std::size_t scan_from = begin_;
    while (true) {
      const void* nl = std::memchr(buf_.data() + scan_from, '\n', end_ - scan_from);
      if (nl != nullptr) {
        const auto pos = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
        line = trim_cr(begin_, pos - begin_);
        begin_ = pos + 1;
        ++line_no_;
        return Next::kLine;
      }
      if (eof_) break;
      const std::size_t scanned = end_ - begin_;
      const Next r = fill();
      if (r == Next::kError || r == Next::kStopped) return r;
      scan_from = begin_ + scanned;
    }
    if (begin_ < end_) {  // a last line without a newline
      line = trim_cr(begin_, end_ - begin_);
      begin_ = end_;
      ++line_no_;
      return Next::kLine;
    }
    return Next::kEnd;
  }

  std::uint64_t line_number() const noexcept { return line_no_; }
  const Status& status() const noexcept { return status_; }

 private:
  static constexpr std::size_t kInitial = 1 << 20;
  static constexpr std::size_t kMaxLine = 256u << 20;  // as LineReader

  InputReader(int fd, bool owned, bool pollable, std::string name)
      : fd_(fd), owned_(owned), pollable_(pollable), name_(std::move(name)) {
    cap_ = kInitial;
    buf_.assign(cap_ + kLinePadding, '\0');
  }

  std::string_view trim_cr(std::size_t at, std::size_t len) const {
    if (len > 0 && buf_[at + len - 1] == '\r') --len;
    return std::string_view(buf_.data() + at, len);
  }

  // Reads more: kLine when bytes arrived, kEnd at end of input (eof_ set), or an error/stop.
  Next fill() {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == cap_) {
      if (cap_ >= kMaxLine) {
        status_ =
            Status::invalid_argument(name_ + ": line " + std::to_string(line_no_ + 1) +
                                     " is longer than " + std::to_string(kMaxLine) + " bytes");
        return Next::kError;
      }
      cap_ *= 2;
      buf_.resize(cap_ + kLinePadding, '\0');
    }
    while (true) {
      if (stop_requested()) return Next::kStopped;
      if (pollable_) {
        pollfd p{fd_, POLLIN, 0};
        const int n = ::poll(&p, 1, 100);
        if (n == 0 || (n < 0 && errno == EINTR)) continue;  // look at the stop flag again
      }
      const ssize_t n = ::read(fd_, buf_.data() + end_, cap_ - end_);
      if (n > 0) {
        end_ += static_cast<std::size_t>(n);
        return Next::kLine;
      }
      if (n == 0) {
        eof_ = true;
        return Next::kEnd;
      }
      if (errno == EINTR || errno == EAGAIN) continue;
      status_ = Status::unavailable(name_ + ": read failed: " + std::strerror(errno));
      return Next::kError;
    }
  }

  int fd_;
  bool owned_;
  bool pollable_;
  std::string name_;
  std::vector<char> buf_;
  std::size_t cap_ = 0;
  std::size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  std::uint64_t line_no_ = 0;
  Status status_;
};

// ---- results, in input order --------------------------------------------------------------

// Outcomes arrive in completion order (callback thread) and as input errors (main thread);
// lines are written as soon as every earlier record has its line.
class OrderedResults {
 public:
  explicit OrderedResults(int fd) : out_(fd) {}

  // Claims the next index's slot. Call before the record can complete.
  std::uint64_t reserve() {
    std::lock_guard<std::mutex> lock(mu_);
    window_.emplace_back();
    return base_ + window_.size() - 1;
  }

  void complete(std::uint64_t index, std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    window_[index - base_] = std::move(line);
    while (!window_.empty() && !window_.front().empty()) {
      out_.buf().append(window_.front());
      window_.pop_front();
      ++base_;
      out_.line_done();
    }
  }

  // Writes what is left. kInternal if a reserved record never completed.
  Status finish() {
    std::lock_guard<std::mutex> lock(mu_);
    const Status s = out_.flush();
    if (!s.ok()) return s;
    if (out_.failed()) return Status::unavailable("write failed");
    if (!window_.empty()) {
      return Status(StatusCode::kInternal,
                    std::to_string(window_.size()) + " records have no outcome");
    }
    return {};
  }

 private:
  std::mutex mu_;
  std::deque<std::string> window_;  // "" = not resolved yet (a result line is never empty)
  std::uint64_t base_ = 0;          // index of window_.front()
  Output out_;
};

void append_attempt(std::string& o, std::string_view code, std::string_view message,
                    std::int64_t delay_ms, std::int64_t duration_ms, bool success) {
  o.append("{\"errorCode\":");
  append_json_string(o, code);
  o.append(",\"errorMessage\":");
  append_json_string(o, message);
  o.append(",\"delayMs\":");
  append_uint(o, static_cast<std::uint64_t>(std::max<std::int64_t>(delay_ms, 0)));
  o.append(",\"durationMs\":");
  append_uint(o, static_cast<std::uint64_t>(std::max<std::int64_t>(duration_ms, 0)));
  o.append(success ? ",\"success\":true}" : ",\"success\":false}");
}

void append_result_head(std::string& o, std::uint64_t index, std::uint64_t line, bool success) {
  o.append("{\"index\":");
  append_uint(o, index);
  o.append(",\"line\":");
  append_uint(o, line);
  o.append(success ? ",\"success\":true" : ",\"success\":false");
}

std::string result_line(std::uint64_t index, std::uint64_t line, const PutResult& r) {
  std::string o;
  o.reserve(160 + r.attempts.size() * 96);
  append_result_head(o, index, line, r.success);
  o.append(",\"shardId\":");
  if (r.success) {
    append_json_string(o, r.shard_id);
    o.append(",\"sequenceNumber\":");
    append_json_string(o, r.sequence_number);
  } else {
    o.append("null,\"sequenceNumber\":null");
  }
  o.append(",\"attempts\":[");
  for (std::size_t i = 0; i < r.attempts.size(); ++i) {
    const Attempt& a = r.attempts[i];
    if (i > 0) o.push_back(',');
    append_attempt(o, a.error_code, a.error_message, a.delay.count(), a.duration.count(),
                   a.success);
  }
  o.append("]}\n");
  return o;
}

std::string invalid_line(std::uint64_t index, std::uint64_t line, std::string_view code,
                         std::string_view message) {
  std::string o;
  append_result_head(o, index, line, false);
  o.append(",\"shardId\":null,\"sequenceNumber\":null,\"attempts\":[");
  append_attempt(o, code, message, 0, 0, false);
  o.append("]}\n");
  return o;
}

// ---- shared state between the reader, the callback thread and the progress line ----------

struct Tally {
  Console console;
  std::unique_ptr<OrderedResults> results;  // null without --results
  std::atomic<std::uint64_t> read{0};       // user records read (valid or not)
  std::atomic<std::uint64_t> succeeded{0};
  std::atomic<std::uint64_t> failed{0};  // delivery failures and invalid input
  std::atomic<std::uint64_t> invalid{0};
  std::atomic<std::uint64_t> messages{0};  // failure lines printed on stderr

  static constexpr std::uint64_t kMaxMessages = 100;

  // One stderr line per failed record, up to kMaxMessages; the rest are only counted.
  void report(const std::string& text) {
    if (messages.fetch_add(1) < kMaxMessages) console.line("shardline: warning: " + text);
  }

  void on_result(std::uint64_t index, std::uint64_t line, PutResult&& r) {
    if (r.success) {
      succeeded.fetch_add(1, std::memory_order_relaxed);
    } else {
      failed.fetch_add(1, std::memory_order_relaxed);
      const Attempt* last = r.attempts.empty() ? nullptr : &r.attempts.back();
      report("line " + std::to_string(line) + ": record " + std::to_string(index) +
             " failed after " + std::to_string(r.attempts.size()) + " attempt(s): " +
             (last ? last->error_code + ": " + last->error_message : std::string("no attempt")));
    }
    if (results) results->complete(index, result_line(index, line, r));
  }

  void on_invalid(std::uint64_t index, std::uint64_t line, std::string_view code,
                  const std::string& reason, bool bad_input = true) {
    failed.fetch_add(1, std::memory_order_relaxed);
    if (bad_input) invalid.fetch_add(1, std::memory_order_relaxed);
    report("line " + std::to_string(line) + ": " + reason + "; record failed");
    if (results) results->complete(index, invalid_line(index, line, code, reason));
  }
};

// Redraws "N read, M done (R/s), K outstanding, F failed" on stderr every 500 ms.
class ProgressLine {
 public:
  ProgressLine(Tally& t, const Producer& p) : t_(t), p_(p) {
    last_ = SteadyClock::now();
    thread_ = std::thread([this] { loop(); });
  }
  ~ProgressLine() { stop(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    t_.console.end_progress();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, milliseconds(500), [&] { return stop_; })) draw();
  }

  void draw() {
    const auto now = SteadyClock::now();
    const std::uint64_t done = t_.succeeded.load() + t_.failed.load();
    const double secs = std::chrono::duration<double>(now - last_).count();
    const double rate = secs > 0 ? static_cast<double>(done - last_done_) / secs : 0;
    last_ = now;
    last_done_ = done;
    char buf[256];
    std::snprintf(
        buf, sizeof buf, "put: %llu read, %llu done, %.0f records/s, %zu outstanding, %llu failed",
        static_cast<unsigned long long>(t_.read.load()), static_cast<unsigned long long>(done),
        rate, p_.outstanding(), static_cast<unsigned long long>(t_.failed.load()));
    t_.console.progress(buf);
  }

  Tally& t_;
  const Producer& p_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  SteadyClock::time_point last_;
  std::uint64_t last_done_ = 0;
  std::thread thread_;
};

// 32 random hex digits: spreads records evenly over the shards.
std::string random_key(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string k(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = rng();
    for (int i = 0; i < 16; ++i) {
      k[static_cast<std::size_t>(half * 16 + i)] = kHex[v & 15];
      v >>= 4;
    }
  }
  return k;
}

// Loads --config and -X into `cfg`; prints each distinct warning once. A bad setting is a
// usage error (exit 2) with the loader's message.
int load_settings(const PutArgs& a, ProducerConfig& cfg) {
  std::vector<std::string> warnings;
  Status s;
  if (!a.config_file.empty()) s = load_properties_file(a.config_file, cfg, &warnings);
  for (std::size_t i = 0; s.ok() && i < a.settings.size(); ++i) {
    const std::string& kv = a.settings[i];
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      s = Status::invalid_argument("-X needs Key=Value, got '" + kv + "'");
      break;
    }
    std::string key = kv.substr(0, eq);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    s = set_setting(cfg, key, std::string_view(kv).substr(eq + 1), &warnings);
    if (!s.ok()) s = Status::invalid_argument("-X " + kv + ": " + std::string(s.message()));
  }
  std::set<std::string> seen;
  for (const std::string& w : warnings) {
    if (seen.insert(w).second) std::fprintf(stderr, "shardline: warning: %s\n", w.c_str());
  }
  if (!s.ok()) {
    std::fprintf(stderr, "shardline: error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  return 0;
}

int run(const PutArgs& a) {
  if (a.stream.empty()) {
    std::fprintf(stderr, "shardline: error: --stream is empty\n");
    return 2;
  }
  if (a.partition_key_given) {
    auto k = validate_user_record(a.partition_key, std::nullopt, 0);
    if (!k.ok()) {
      std::fprintf(stderr, "shardline: error: --partition-key: %s\n",
                   std::string(k.status().message()).c_str());
      return 2;
    }
  }
  ProducerConfig cfg;
  if (const int rc = load_settings(a, cfg); rc != 0) return rc;

  install_stop_signals();
  bool interrupted = false;
  std::unique_ptr<InputReader> reader;
  {
    auto r = InputReader::open(a.input);
    if (r.ok()) {
      reader = std::move(*r);
    } else if (r.status().code() == StatusCode::kCancelled) {
      interrupted = true;
    } else {
      std::fprintf(stderr, "shardline: error: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
  }

  auto tally = std::make_shared<Tally>();
  int results_fd = -1;
  if (!a.results_file.empty()) {
    results_fd = ::open(a.results_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (results_fd < 0) {
      std::fprintf(stderr, "shardline: error: cannot create '%s': %s\n", a.results_file.c_str(),
                   std::strerror(errno));
      return 1;
    }
    tally->results = std::make_unique<OrderedResults>(results_fd);
  }

  // Log lines (ours, the client's, the producer's) erase the progress line first.
  AwsClientConfig aws = make_aws_config(a.aws);
  const LogSink plain = aws.log;
  Tally* const t = tally.get();
  aws.log = [plain, t](LogLevel level, std::string_view message) {
    t->console.print([&] { plain(level, message); });
  };
  ProducerOptions options;
  options.aws = aws;
  options.log = aws.log;
  auto created = Producer::create(cfg, std::move(options));
  if (!created.ok()) {
    if (results_fd >= 0) ::close(results_fd);
    return report_error("producer", created.status());
  }
  std::unique_ptr<Producer> producer = std::move(*created);

  const auto start = SteadyClock::now();
  std::unique_ptr<ProgressLine> progress;
  if (::isatty(2)) progress = std::make_unique<ProgressLine>(*tally, *producer);

  const bool jsonl = a.format == "jsonl";
  const bool random_keys = a.random_partition_key || (!jsonl && !a.partition_key_given);
  std::mt19937_64 rng(std::random_device{}());
  RecordLineParser parser;
  RecordFields fields;
  std::string error, data, key;
  Status input_status, fatal;
  std::uint64_t index = 0;

  while (reader && !interrupted) {
    if (stop_requested()) {
      interrupted = true;
      break;
    }
    std::string_view line;
    const InputReader::Next next = reader->next(line);
    if (next == InputReader::Next::kStopped) {
      interrupted = true;
      break;
    }
    if (next == InputReader::Next::kError) {
      input_status = reader->status();
      break;
    }
    if (next == InputReader::Next::kEnd) break;
    const std::uint64_t line_no = reader->line_number();

    std::optional<std::string_view> ehk;
    std::string_view pk, payload;
    std::string reason;
    if (jsonl) {
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      if (line.empty()) continue;  // blank lines are not records
      if (!parser.parse(line, fields, error)) {
        reason = error;
      } else if (!fields.data) {
        reason = "a record needs \"data\" (base64)";
      } else if (!fields.partition_key && !a.partition_key_given && !a.random_partition_key) {
        reason = "a record needs \"partitionKey\" (or use --partition-key/--random-partition-key)";
      } else if (!detail::base64_decode(*fields.data, data)) {
        reason = "\"data\" is not valid base64";
      } else {
        payload = data;
        ehk = fields.explicit_hash_key;
        if (!a.partition_key_given && !a.random_partition_key) pk = *fields.partition_key;
      }
    } else {
      payload = line;
    }
    if (reason.empty()) {
      if (a.partition_key_given) {
        pk = a.partition_key;
      } else if (random_keys) {
        key = random_key(rng);
        pk = key;
      }
    }

    const std::uint64_t i = index++;
    tally->read.fetch_add(1, std::memory_order_relaxed);
    if (tally->results) tally->results->reserve();
    if (!reason.empty()) {
      tally->on_invalid(i, line_no, "InvalidInput", reason);
      continue;
    }
    // Blocking back-pressure. kResourceExhausted only means PutBlockTimeout passed with the
    // buffer still full; accepted records resolve by their RecordTtl, so keep waiting.
    Status s;
    while (true) {
      s = producer->put(
          a.stream, pk, payload,
          [t, i, line_no](PutResult&& r) { t->on_result(i, line_no, std::move(r)); }, ehk);
      if (s.code() != StatusCode::kResourceExhausted) break;
      if (cfg.put_block_timeout < 10) std::this_thread::sleep_for(milliseconds(10));
    }
    if (s.ok()) continue;
    if (s.code() == StatusCode::kInvalidArgument) {
      tally->on_invalid(i, line_no, "InvalidInput", std::string(s.message()));
      continue;
    }
    // The producer refuses everything from now on (closed, or a fatal error).
    tally->on_invalid(i, line_no, status_code_name(s.code()), std::string(s.message()), false);
    fatal = s;
    break;
  }

  // Resolve everything accepted: delivered, failed, expired by RecordTtl, or cancelled.
  producer->flush();
  (void)producer->close(milliseconds(cfg.record_ttl));
  const auto elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  if (progress) progress->stop();
  const ProducerMetrics m = producer->metrics();

  Status results_status;
  if (tally->results) {
    results_status = tally->results->finish();
    if (::close(results_fd) != 0 && results_status.ok()) {
      results_status = Status::unavailable(std::string("close failed: ") + std::strerror(errno));
    }
  }

  const std::uint64_t read = tally->read.load();
  const std::uint64_t ok = tally->succeeded.load();
  const std::uint64_t failed = tally->failed.load();
  std::string o = "{\"stream\":";
  append_json_string(o, a.stream);
  o.append(",\"userRecords\":");
  append_uint(o, read);
  o.append(",\"succeeded\":");
  append_uint(o, ok);
  o.append(",\"failed\":");
  append_uint(o, failed);
  o.append(",\"invalidInput\":");
  append_uint(o, tally->invalid.load());
  o.append(",\"kinesisRecords\":");
  append_uint(o, m.kinesis_records_put);
  o.append(",\"putRecordsRequests\":");
  append_uint(o, m.put_records_requests);
  o.append(",\"retries\":");
  append_uint(o, m.retries);
  o.append(",\"elapsedMs\":");
  append_uint(o, static_cast<std::uint64_t>(elapsed.count()));
  o.append(",\"errorsByCode\":{");
  bool first = true;
  for (const auto& [code, n] : m.errors_by_code) {
    if (!first) o.push_back(',');
    first = false;
    append_json_string(o, code);
    o.push_back(':');
    append_uint(o, n);
  }
  o.append(interrupted ? "},\"interrupted\":true}\n" : "},\"interrupted\":false}\n");
  std::fwrite(o.data(), 1, o.size(), stdout);
  std::fflush(stdout);

  if (tally->messages.load() > Tally::kMaxMessages) {
    std::fprintf(stderr, "shardline: warning: %llu more failed records not shown%s\n",
                 static_cast<unsigned long long>(tally->messages.load() - Tally::kMaxMessages),
                 tally->results ? " (see --results)" : "");
  }
  int rc = 0;
  if (!input_status.ok()) {
    std::fprintf(stderr, "shardline: error: %s\n", std::string(input_status.message()).c_str());
    rc = 1;
  }
  if (!fatal.ok()) rc = std::max(rc, report_error("put", fatal));
  if (!results_status.ok()) {
    std::fprintf(stderr, "shardline: error: --results %s: %s\n", a.results_file.c_str(),
                 std::string(results_status.message()).c_str());
    rc = std::max(rc, 1);
  }
  if (failed > 0 || ok != read) {
    std::fprintf(stderr, "shardline: error: %llu of %llu records failed\n",
                 static_cast<unsigned long long>(read - ok), static_cast<unsigned long long>(read));
    rc = std::max(rc, 1);
  }
  return rc;
}

}  // namespace

Runner add_put(CLI::App& app) {
  auto a = std::make_shared<PutArgs>();
  CLI::App* sub = app.add_subcommand(
      "put", "Put records through the producer (aggregation, batching, retries) and report each.");
  add_aws_options(*sub, a->aws);
  sub->add_option("--stream", a->stream, "Stream name or ARN")->required();
  sub->add_option("input", a->input, "Input file, or - for standard input")->default_val("-");
  sub->add_option("--format", a->format,
                  "jsonl: {\"partitionKey\", \"explicitHashKey\"?, \"data\" (base64)} per line; "
                  "lines: each text line is one record's data")
      ->check(CLI::IsMember({"jsonl", "lines"}))
      ->default_val("jsonl");
  CLI::Option* pk = sub->add_option("--partition-key", a->partition_key,
                                    "Use this partition key for every record (overrides "
                                    "\"partitionKey\" in jsonl input)");
  CLI::Option* rpk = sub->add_flag("--random-partition-key", a->random_partition_key,
                                   "A fresh random partition key for every record (the default "
                                   "for --format lines)");
  pk->excludes(rpk);
  rpk->excludes(pk);
  sub->add_option("--config", a->config_file,
                  "KPL-style .properties file of producer settings (see `shardline config docs`)");
  sub->add_option("-X", a->settings,
                  "Set one producer setting, e.g. -X RecordTtl=60000 (repeatable; applied after "
                  "--config)")
      ->allow_extra_args(false)
      ->type_name("Key=Value");
  sub->add_option("--results", a->results_file,
                  "Write one JSON line per input record, in input order: index, line, success, "
                  "shardId, sequenceNumber, attempts");
  sub->footer(
      "Summary (stdout, one JSON line): stream, userRecords, succeeded, failed, invalidInput,\n"
      "kinesisRecords, putRecordsRequests, retries, elapsedMs, errorsByCode, interrupted.\n"
      "Bad input lines are named on stderr with their line number and count as failed.\n"
      "SIGINT/SIGTERM: stop reading, resolve every accepted record, then report.\n"
      "Exit 0 iff every record succeeded; 1 otherwise; 2 for bad arguments or settings.");
  return [a, pk]() -> int {
    a->partition_key_given = pk->count() > 0;
    return run(*a);
  };
}

}  // namespace shardline::cli
