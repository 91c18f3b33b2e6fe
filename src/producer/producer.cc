// The producer pipeline. See include/shardline/producer.h for the contract and
// docs/architecture.md for the design. In short, on the pipeline thread:
//
//   intake -> route (shard map) -> per-shard aggregator -> per-shard limiter (token buckets,
//   backoff) -> per-stream collector (PutRecords batches) -> in flight -> completion:
//   success | retry (back to route, with backoff) | fail; every end goes to the callback queue.
//
// Invariant: every accepted UserRec is owned by exactly one place (intake, a shard's
// aggregator members, a KRec in a limiter, collector or in-flight request, or the callback
// queue as a finished result), so nothing can be lost or reported twice.
#include "shardline/producer.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "aws/aws_errors.h"
#include "aws/backoff.h"
#include "core/digest.h"
#include "producer/token_bucket.h"
#include "shardline/aggregation.h"

namespace shardline {

using namespace std::chrono_literals;
using detail::TokenBucket;
using TimePoint = Clock::time_point;
using Dur = Clock::duration;

Status PutResult::status() const {
  if (success) return {};
  if (attempts.empty()) return Status(StatusCode::kUnknown, "no attempt recorded");
  const Attempt& a = attempts.back();
  if (a.error_code == "UserRecordExpired") return Status::deadline_exceeded(a.error_message);
  if (a.error_code == "Cancelled") return Status::cancelled(a.error_message);
  if (const auto* info = detail::find_aws_error(a.error_code)) {
    Status s(info->status_code, a.error_message);
    s.set_aws(a.error_code, 0, "");
    return s;
  }
  return Status(StatusCode::kUnknown, a.error_code + ": " + a.error_message);
}

namespace {

// The 256 KiB per-shard flush threshold of the KPL's collector.
constexpr std::size_t kCollectorShardBytes = 256 * 1024;
// Per-shard limits (records/s, bytes/s) and bucket capacities, as the KPL's limiter.
constexpr double kShardRecordsPerSecond = 1000;
constexpr double kShardBytesPerSecond = 1024 * 1024;
constexpr double kBucketRecords = 1000;
constexpr double kBucketBytes = 10 * 1024 * 1024;
constexpr Dur kSweepInterval = 25ms;
// The smallest a record can add to an aggregate (tags, index, empty data, framing).
constexpr std::size_t kMinRecordField = 6;

std::chrono::milliseconds ms_between(TimePoint a, TimePoint b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a);
}

// A CamelCase error code for a Status without an AWS code (transport failures).
std::string error_code_of(const Status& s) {
  if (!s.aws_error_code().empty()) return std::string(s.aws_error_code());
  switch (s.code()) {
    case StatusCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kCancelled:
      return "Cancelled";
    case StatusCode::kUnauthenticated:
      return "Unauthenticated";
    case StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    default:
      return "InternalFailure";
  }
}

// Records are pooled: put() takes one from the spare list, the callback thread gives it back
// once the callback has run (see Impl::recycle). Without the pool, every record was allocated
// on the caller's thread and freed on another, which kept glibc's malloc busy consolidating
// across arenas: about a third of the producer's CPU.
struct UserRec {
  std::uint32_t stream = 0;
  // The partition key and the data share one buffer, kept across reuses of the record.
  std::unique_ptr<char[]> bytes_buf;
  std::size_t bytes_cap = 0;
  std::string_view pk;
  std::string_view data;
  std::optional<HashKey> ehk;
  HashKey hash;               // routing key: the EHK or the partition key's MD5
  bool hash_pending = false;  // MD5 not computed yet (see Impl::hash_keys)
  TimePoint arrival, deadline, expiration, last_end;
  std::vector<Attempt> attempts;
  PutCallback cb;
  std::size_t bytes = 0;
};
using URec = std::unique_ptr<UserRec>;

// One Kinesis record: an aggregate or a single user record.
struct KRec {
  std::vector<URec> users;
  KinesisRecord rec;
  int shard = -1;             // predicted shard index in the stream's current map, -1: none
  bool needs_digest = false;  // an aggregate whose MD5 trailer start() fills
  std::string predicted_shard_id;
  TimePoint deadline = TimePoint::max(), expiration = TimePoint::max();
  std::size_t size() const { return rec.partition_key.size() + rec.data.size(); }
};

struct ShardState {
  // std::deque's move may allocate, so it is not noexcept; declare it so vectors move rather
  // than copy (a failed allocation there terminates, like any other here).
  ShardState() = default;
  ShardState(ShardState&&) noexcept = default;
  ShardState& operator=(ShardState&&) noexcept = default;
  std::string shard_id;
  HashKeyRange range;
  AggregateBuilder builder;
  std::vector<URec> members;  // the aggregator's records, in builder order
  TimePoint agg_deadline = TimePoint::max();
  TimePoint agg_expiration = TimePoint::max();
  std::deque<KRec> limiter;
  TokenBucket records, bytes;
  double rate_factor = 1.0;  // lowered by throttling, restored by successes
  int errors = 0;            // consecutive failed attempts (backoff exponent)
  TimePoint not_before{};    // backoff: nothing leaves the limiter before this
  std::size_t collector_bytes = 0;
};

struct StreamState {
  StreamState() = default;
  StreamState(StreamState&&) noexcept = default;
  StreamState& operator=(StreamState&&) noexcept = default;
  StreamRef ref{std::string()};
  std::vector<ShardState> shards;  // open shards, sorted by range.start
  ShardState unsharded;            // records without a predicted shard (no map)
  bool map_ready = false;
  bool map_stale = false;  // wrong-shard evidence: a refresh is due
  bool refreshing = false;
  TimePoint map_updated{};
  TimePoint next_refresh{};
  Dur refresh_backoff = 1s;
  std::vector<KRec> collector;
  std::size_t collector_bytes = 0;
  TimePoint collector_deadline = TimePoint::max();
  // Records that arrived before the first shard map: held until it arrives (so they can be
  // aggregated) or until their deadline, whichever is first.
  std::vector<URec> waiting;
  TimePoint waiting_deadline = TimePoint::max();
};

struct InFlight {
  std::uint32_t stream;
  std::vector<KRec> krecs;
  TimePoint sent;
};

struct Completion {
  std::uint64_t id;
  Result<PutRecordsResult> result;
};

struct MapResult {
  std::uint32_t stream;
  Result<std::vector<Shard>> shards;
};

// How the records of a finished batch ended. Entry 0 of every batch means "failed": the
// record's attempt list is complete. The others are one stored Kinesis record each (an
// aggregate's user records share it); the callback thread appends the successful attempt.
struct Outcome {
  bool stored = false;
  std::string shard_id;
  std::string sequence_number;
  TimePoint sent{};
  std::chrono::milliseconds duration{0};
};

// A resolved record on its way to the callback thread. The pipeline thread does not touch a
// stored record again after sending it (with many shards each touch was a cache miss): the
// callback thread completes its attempt, its metrics and its PutResult, whose strings and
// attempt list are then allocated and (usually) freed on that one thread.
struct Finished {
  std::unique_ptr<UserRec> rec;
  std::uint32_t outcome = 0;  // index into FinishedBatch::outcomes
};

struct FinishedBatch {
  std::vector<Finished> done;
  std::vector<Outcome> outcomes{Outcome{}};
};

// The largest buffer a spare record keeps, and how often spare records that went unused are
// returned to the allocator (half of the surplus each time, so after a burst the pool shrinks
// within seconds, while a steady flow reuses records without touching malloc).
constexpr std::size_t kMaxSpareBuffer = 1024;
constexpr Dur kSpareTrimInterval = 1s;

class KinesisClientApi final : public KinesisApi {
 public:
  explicit KinesisClientApi(std::shared_ptr<KinesisClient> c) : c_(std::move(c)) {}
  void put_records_async(const StreamRef& stream, std::span<const PutRecordsEntry> records,
                         std::function<void(Result<PutRecordsResult>)> done) override {
    c_->put_records_async(stream, records, std::move(done));
  }
  Result<std::vector<Shard>> list_shards(const StreamRef& stream) override {
    ListShardsOptions o;
    o.filter_type = "AT_LATEST";
    return c_->list_shards(stream, o);
  }

 private:
  std::shared_ptr<KinesisClient> c_;
};

// Transparent hashing, so put() looks stream names up without allocating.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

}  // namespace

std::shared_ptr<KinesisApi> make_kinesis_api(std::shared_ptr<KinesisClient> client) {
  return std::make_shared<KinesisClientApi>(std::move(client));
}

class Producer::Impl {
 public:
  Impl(const ProducerConfig& cfg, ProducerOptions opts, std::shared_ptr<KinesisApi> api)
      : cfg_(cfg), opts_(std::move(opts)), api_(std::move(api)), clock_(opts_.clock) {
    if (!clock_) clock_ = std::shared_ptr<Clock>(&SteadyClock::instance(), [](Clock*) {});
    limits_.max_size = static_cast<std::size_t>(cfg_.aggregation_max_size);
    limits_.max_count = static_cast<std::uint64_t>(cfg_.aggregation_max_count);
    limits_.max_record_size = static_cast<std::size_t>(cfg_.max_record_size);
    if (!opts_.manual_pump) {
      pipeline_ = std::thread([this] { pipeline_loop(); });
      callbacks_ = std::thread([this] { callback_loop(); });
      mapper_ = std::thread([this] { mapper_loop(); });
    }
  }

  ~Impl() {
    shutdown_threads();
    // Destroying the client cancels its requests; their callbacks lock mu_, so this must
    // happen while every member is still alive.
    api_.reset();
  }

  // ---- caller side ----------------------------------------------------------------------

  Status admit(std::string_view stream, std::string_view pk, std::string_view data, PutCallback cb,
               std::optional<std::string_view> ehk, bool block) {
    if (static_cast<std::int64_t>(data.size()) > cfg_.max_user_record_size) {
      return Status::invalid_argument("record data is " + std::to_string(data.size()) +
                                      " bytes; MaxUserRecordSize is " +
                                      std::to_string(cfg_.max_user_record_size));
    }
    if (stream.empty()) return Status::invalid_argument("stream name is empty");
    // The partition key's MD5 is left to the pipeline, which hashes many keys at once.
    auto checked = check_user_record(pk, ehk, data.size(), limits_.max_record_size);
    if (!checked.ok()) return std::move(checked).status();
    const std::size_t bytes = pk.size() + data.size();
    const TimePoint now = clock_->now();

    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return Status::failed_precondition("the producer is closed");
    auto has_room = [&] {
      return outstanding_records_ == 0 ||
             (outstanding_records_ + 1 <=
                  static_cast<std::uint64_t>(cfg_.max_outstanding_records) &&
              outstanding_bytes_ + bytes <= static_cast<std::uint64_t>(cfg_.max_outstanding_bytes));
    };
    if (!has_room()) {
      if (!block || opts_.manual_pump) {
        return Status::resource_exhausted(
            "producer buffer full: " + std::to_string(outstanding_records_) + " records, " +
            std::to_string(outstanding_bytes_) + " bytes outstanding");
      }
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.put_block_timeout);
      if (!room_cv_.wait_until(lock, until, [&] { return has_room() || closed_; })) {
        return Status::resource_exhausted("producer buffer still full after PutBlockTimeout (" +
                                          std::to_string(cfg_.put_block_timeout) + " ms)");
      }
      if (closed_) return Status::failed_precondition("the producer is closed");
    }
    auto it = stream_ids_.find(stream);
    if (it == stream_ids_.end()) {
      it = stream_ids_.emplace(std::string(stream), static_cast<std::uint32_t>(stream_ids_.size()))
               .first;
    }
    URec rec;
    if (spare_.empty()) {
      rec = std::make_unique<UserRec>();
    } else {
      rec = std::move(spare_.back());
      spare_.pop_back();
      spare_low_ = std::min(spare_low_, spare_.size());
    }
    if (rec->bytes_cap < bytes) {
      rec->bytes_buf = std::make_unique_for_overwrite<char[]>(bytes);
      rec->bytes_cap = bytes;
    }
    if (!pk.empty()) std::memcpy(rec->bytes_buf.get(), pk.data(), pk.size());
    if (!data.empty()) std::memcpy(rec->bytes_buf.get() + pk.size(), data.data(), data.size());
    rec->pk = std::string_view(rec->bytes_buf.get(), pk.size());
    rec->data = std::string_view(rec->bytes_buf.get() + pk.size(), data.size());
    rec->ehk = *checked;
    rec->hash_pending = !rec->ehk;
    if (rec->ehk) rec->hash = *rec->ehk;
    rec->cb = std::move(cb);
    rec->bytes = bytes;
    rec->arrival = now;
    rec->last_end = now;
    rec->expiration = now + std::chrono::milliseconds(cfg_.record_ttl);
    rec->deadline =
        std::min(rec->expiration, now + std::chrono::milliseconds(cfg_.record_max_buffered_time));
    rec->stream = it->second;
    ++outstanding_records_;
    outstanding_bytes_ += bytes;
    ++received_;
    const bool wake = intake_.empty();
    intake_.push_back(std::move(rec));
    lock.unlock();
    if (wake) wake_.notify_one();
    return {};
  }

  void flush() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      flush_requested_ = true;
    }
    wake_.notify_one();
  }

  Status flush_sync(std::chrono::milliseconds timeout) {
    flush();
    std::unique_lock<std::mutex> lock(mu_);
    const auto until = std::chrono::steady_clock::now() + timeout;
    if (opts_.manual_pump)
      return outstanding_records_ == 0 ? Status()
                                       : Status::deadline_exceeded("records outstanding");
    if (!drained_cv_.wait_until(lock, until, [&] { return outstanding_records_ == 0; })) {
      return Status::deadline_exceeded(std::to_string(outstanding_records_) +
                                       " records still outstanding after " +
                                       std::to_string(timeout.count()) + " ms");
    }
    return {};
  }

  Status close(std::chrono::milliseconds timeout) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_ && joined_) return close_status_;
      closed_ = true;
    }
    room_cv_.notify_all();
    Status drained = flush_sync(timeout);
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_requested_ = !drained.ok();
    }
    wake_.notify_one();
    if (opts_.manual_pump) {
      pump();
      if (cancel_requested_) cancel_everything();
      deliver_callbacks_inline();
    } else {
      shutdown_threads();
    }
    std::lock_guard<std::mutex> lock(mu_);
    joined_ = true;
    close_status_ = drained.ok() ? Status()
                                 : Status::deadline_exceeded(
                                       "close timed out: records still buffered or in "
                                       "flight were failed as Cancelled");
    return close_status_;
  }

  std::size_t outstanding() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outstanding_records_;
  }

  ProducerMetrics metrics() const {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    ProducerMetrics m = metrics_;
    {
      std::lock_guard<std::mutex> l2(mu_);
      m.user_records_received = received_;
      m.user_records_pending = outstanding_records_;
    }
    return m;
  }

  std::size_t pump() {
    run_once(clock_->now());
    return deliver_callbacks_inline();
  }

 private:
  // ---- threads ----------------------------------------------------------------------------

  void shutdown_threads() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      closed_ = true;
      cancel_requested_ = true;  // whatever is still here when the threads stop is cancelled
    }
    room_cv_.notify_all();
    wake_.notify_all();
    map_cv_.notify_all();
    if (pipeline_.joinable()) pipeline_.join();
    if (mapper_.joinable()) mapper_.join();
    {
      std::lock_guard<std::mutex> lock(cb_mu_);
      cb_stop_ = true;
    }
    cb_cv_.notify_all();
    if (callbacks_.joinable()) callbacks_.join();
  }

  void pipeline_loop() {
    while (true) {
      const TimePoint wake_at = run_once(clock_->now());
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) {
        lock.unlock();
        // Let in-flight requests complete (their callbacks post completions), then cancel
        // the rest. The HTTP client fails in-flight requests when it is destroyed, but it may
        // be shared, so wait for completions here with the clock.
        drain_in_flight_then_cancel();
        return;
      }
      const bool work =
          !intake_.empty() || !completions_.empty() || !map_results_.empty() || flush_requested_;
      if (work) continue;
      if (wake_at == TimePoint::max()) {
        wake_.wait(lock);
      } else {
        const auto now = clock_->now();
        if (wake_at > now) wake_.wait_for(lock, wake_at - now);
      }
    }
  }

  void drain_in_flight_then_cancel() {
    const auto until =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(std::max<std::int64_t>(cfg_.request_timeout, 100) + 1000);
    while (!in_flight_.empty() && std::chrono::steady_clock::now() < until) {
      run_once(clock_->now());
      std::unique_lock<std::mutex> lock(mu_);
      if (completions_.empty()) wake_.wait_for(lock, 10ms);
    }
    run_once(clock_->now());
    cancel_everything();
  }

  void callback_loop() {
    std::vector<FinishedBatch> batches;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(cb_mu_);
        cb_cv_.wait(lock, [&] { return cb_stop_ || !cb_queue_.empty(); });
        if (cb_queue_.empty() && cb_stop_) return;
        batches.swap(cb_queue_);
      }
      for (FinishedBatch& b : batches) complete(b);
      batches.clear();
    }
  }

  // Run a batch's callbacks, account for it, and give its records back to the spare list.
  std::size_t complete(FinishedBatch& batch) {
    if (batch.done.empty()) return 0;
    CallbackStats stats;
    run_callbacks(batch, stats);
    {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      metrics_.user_records_put += stats.put;
      metrics_.user_records_failed += stats.failed;
      metrics_.user_records_data_put += stats.data_put;
      metrics_.retries += static_cast<std::uint64_t>(stats.retries.sum);
      merge_stat(metrics_.retries_per_record, stats.retries);
      merge_stat(metrics_.buffering_time_ms, stats.buffering);
    }
    // A record stops counting as outstanding once its callback has run, so flush_sync() and
    // close() return only after the callbacks.
    const std::size_t n = batch.done.size();
    bool drained = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      outstanding_records_ -= n;
      outstanding_bytes_ -= stats.bytes;
      drained = outstanding_records_ == 0;
      for (Finished& f : batch.done) spare_.push_back(std::move(f.rec));
    }
    room_cv_.notify_all();
    if (drained) drained_cv_.notify_all();
    return n;
  }

  // Free half of the spare records that no put() needed since the last trim.
  void trim_spare(TimePoint now) {
    if (now < next_spare_trim_) return;
    next_spare_trim_ = now + kSpareTrimInterval;
    std::vector<URec> surplus;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const std::size_t n = (spare_low_ + 1) / 2;
      const auto first = spare_.begin() + static_cast<std::ptrdiff_t>(spare_.size() - n);
      surplus.assign(std::make_move_iterator(first), std::make_move_iterator(spare_.end()));
      spare_.erase(first, spare_.end());
      spare_low_ = spare_.size();
    }
  }

  void mapper_loop() {
    while (true) {
      std::pair<std::uint32_t, StreamRef> job{0, StreamRef(std::string())};
      {
        std::unique_lock<std::mutex> lock(mu_);
        map_cv_.wait(lock, [&] { return stopping_ || !map_jobs_.empty(); });
        if (stopping_) return;
        job = std::move(map_jobs_.front());
        map_jobs_.pop_front();
      }
      auto shards = api_->list_shards(job.second);
      {
        std::lock_guard<std::mutex> lock(mu_);
        map_results_.push_back(MapResult{job.first, std::move(shards)});
      }
      wake_.notify_one();
    }
  }

  struct CallbackStats {
    std::uint64_t put = 0, failed = 0, data_put = 0, bytes = 0;
    MetricStat retries, buffering;
  };

  void run_callbacks(FinishedBatch& batch, CallbackStats& stats) {
    // One PutResult serves every callback: assigning into it reuses its strings' and attempt
    // list's capacity, so a callback that only reads its result costs no allocation. (One that
    // moves from it leaves it valid but empty; the next assignment allocates again.)
    PutResult& r = callback_result_;
    const std::size_t n = batch.done.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i + 8 < n) __builtin_prefetch(batch.done[i + 8].rec.get(), 1);
      Finished& f = batch.done[i];
      UserRec& u = *f.rec;
      const Outcome& o = batch.outcomes[f.outcome];
      if (o.stored) {
        Attempt& a = u.attempts.emplace_back();
        a.delay = ms_between(u.last_end, o.sent);
        a.duration = o.duration;
        a.success = true;
        stats.buffering.add(static_cast<double>(a.delay.count()));
        ++stats.put;
        stats.data_put += u.data.size();
      } else {
        ++stats.failed;
      }
      stats.retries.add(u.attempts.empty() ? 0.0 : static_cast<double>(u.attempts.size() - 1));
      stats.bytes += u.bytes;
      if (u.cb) {
        r.success = o.stored;
        r.shard_id.assign(o.shard_id);
        r.sequence_number.assign(o.sequence_number);
        r.attempts.assign(u.attempts.begin(), u.attempts.end());
        PutCallback cb = std::move(u.cb);
        u.cb = nullptr;
        try {
          cb(std::move(r));
        } catch (const std::exception& e) {
          log(LogLevel::kError, std::string("a put callback threw: ") + e.what());
        } catch (...) {
          log(LogLevel::kError, "a put callback threw a non-exception");
        }
      }
      // Ready for reuse: the attempt list keeps its capacity, a large buffer does not.
      u.attempts.clear();
      u.ehk.reset();
      if (u.bytes_cap > kMaxSpareBuffer) {
        u.bytes_buf.reset();
        u.bytes_cap = 0;
      }
      u.pk = u.data = {};
    }
  }

  std::size_t deliver_callbacks_inline() {
    std::vector<FinishedBatch> batches;
    {
      std::lock_guard<std::mutex> lock(cb_mu_);
      batches.swap(cb_queue_);
    }
    std::size_t n = 0;
    for (FinishedBatch& b : batches) n += complete(b);
    return n;
  }

  void log(LogLevel level, std::string_view message) const {
    if (opts_.log) {
      opts_.log(level, message);
    } else if (level >= LogLevel::kWarning) {
      std::fprintf(stderr, "shardline producer [%s] %.*s\n",
                   level == LogLevel::kWarning ? "warning" : "error",
                   static_cast<int>(message.size()), message.data());
    }
  }

  // ---- the pipeline (pipeline thread only) -------------------------------------------------

  // Runs everything due at `now`; returns when the pipeline next needs to run.
  TimePoint run_once(TimePoint now) {
    std::vector<URec> intake;
    std::vector<Completion> completions;
    std::vector<MapResult> maps;
    bool flush_all = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      intake.swap(intake_);
      completions.swap(completions_);
      maps.swap(map_results_);
      flush_all = flush_requested_;
      flush_requested_ = false;
    }
    for (MapResult& m : maps) on_map(m, now);
    // In chunks small enough to stay in cache across the passes over them.
    constexpr std::size_t kChunk = 1024;
    for (std::size_t begin = 0; begin < intake.size(); begin += kChunk) {
      const std::size_t end = std::min(intake.size(), begin + kChunk);
      hash_keys(std::span<URec>(intake.data() + begin, end - begin));
      std::size_t routable = begin;
      for (std::size_t i = begin; i < end; ++i) {
        URec& r = intake[i];
        ensure_stream(r->stream);
        StreamState& st = streams_[r->stream];
        if (!st.map_ready && !st.refreshing && now >= st.next_refresh) request_map(r->stream, now);
        if (!st.map_ready && st.refreshing && cfg_.aggregation_enabled) {
          st.waiting_deadline = std::min(st.waiting_deadline, r->deadline);
          st.waiting.push_back(std::move(r));
          continue;
        }
        if (routable != i) intake[routable] = std::move(r);
        ++routable;
      }
      route_batch(std::span<URec>(intake.data() + begin, routable - begin));
    }
    for (Completion& c : completions) on_completion(c, now);
    if (now >= next_sweep_ || flush_all) {
      sweep_expired(now);
      sweep_ready(now);
      next_sweep_ = now + kSweepInterval;
    }
    TimePoint next = next_sweep_;
    for (std::uint32_t s = 0; s < streams_.size(); ++s) {
      StreamState& st = streams_[s];
      if (!st.refreshing && now >= st.next_refresh) request_map(s, now);
      if (!st.waiting.empty()) {
        const bool map_pending = (!st.map_ready || st.map_stale) &&
                                 (st.refreshing || st.next_refresh != TimePoint::max());
        if (!map_pending || flush_all || now >= st.waiting_deadline) {
          std::vector<URec> w = std::move(st.waiting);
          st.waiting.clear();
          st.waiting_deadline = TimePoint::max();
          for (URec& u : w) route(std::move(u));
        } else {
          next = std::min(next, st.waiting_deadline);
        }
      }
    }
    // The per-shard pass (aggregator deadlines, limiters, collectors) is O(shards): run it only
    // when something in it is due or an event made a shard actionable, not on every wake-up
    // for new records (with 1,000 shards that loop would dominate).
    if (flush_all || scan_needed_ || now >= next_scan_) {
      scan_needed_ = false;
      TimePoint scan_next = TimePoint::max();
      for (std::uint32_t s = 0; s < streams_.size(); ++s) {
        StreamState& st = streams_[s];
        for (std::size_t i = 0; i < st.shards.size(); ++i) {
          ShardState& sh = st.shards[i];
          if (!sh.members.empty() && (flush_all || now >= sh.agg_deadline))
            flush_aggregate(s, static_cast<int>(i));
          scan_next = std::min(scan_next, release(s, static_cast<int>(i), now));
          if (!sh.members.empty()) scan_next = std::min(scan_next, sh.agg_deadline);
        }
        scan_next = std::min(scan_next, release(s, -1, now));
        scan_next = std::min(scan_next, collect(s, now, flush_all));
      }
      next_scan_ = scan_next;
    }
    next = std::min(next, next_scan_);
    publish_finished();
    trim_spare(now);
    {
      std::lock_guard<std::mutex> lock(mu_);
      next_wake_ = next;
    }
    return next;
  }

  void ensure_stream(std::uint32_t id) {
    while (streams_.size() <= id) {
      StreamState st;
      std::string name;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [n, i] : stream_ids_)
          if (i == streams_.size()) name = n;
      }
      st.ref = StreamRef(name);
      st.next_refresh = TimePoint{};  // refresh at once
      streams_.push_back(std::move(st));
    }
  }

  void request_map(std::uint32_t s, TimePoint now) {
    StreamState& st = streams_[s];
    st.refreshing = true;
    st.next_refresh = TimePoint::max();
    if (opts_.manual_pump) {
      MapResult m{s, api_->list_shards(st.ref)};
      on_map(m, now);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      map_jobs_.emplace_back(s, st.ref);
    }
    map_cv_.notify_one();
  }

  void on_map(MapResult& m, TimePoint now) {
    StreamState& st = streams_[m.stream];
    st.refreshing = false;
    if (!m.shards.ok()) {
      log(LogLevel::kWarning,
          "stream " + st.ref.display() + ": ListShards failed (" + m.shards.status().to_string() +
              "); retrying in " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::milliseconds>(st.refresh_backoff)
                      .count()) +
              " ms");
      st.next_refresh = now + st.refresh_backoff;
      st.refresh_backoff =
          std::min<Dur>(std::chrono::duration_cast<Dur>(st.refresh_backoff * 1.5), 30s);
      return;
    }
    st.refresh_backoff = 1s;
    st.next_refresh = TimePoint::max();
    st.map_stale = false;
    std::vector<Shard> open;
    for (Shard& sh : *m.shards)
      if (sh.is_open()) open.push_back(std::move(sh));
    std::sort(open.begin(), open.end(), [](const Shard& a, const Shard& b) {
      return a.hash_key_range.start < b.hash_key_range.start;
    });
    // Keep the state of shards that are still open; re-route what waits in closed ones.
    std::vector<URec> orphans;
    std::vector<ShardState> next;
    next.reserve(open.size());
    for (const Shard& sh : open) {
      auto old = std::find_if(st.shards.begin(), st.shards.end(),
                              [&](const ShardState& x) { return x.shard_id == sh.shard_id; });
      if (old != st.shards.end()) {
        next.push_back(std::move(*old));
        old->shard_id.clear();
        continue;
      }
      ShardState ns;
      ns.shard_id = sh.shard_id;
      ns.range = sh.hash_key_range;
      ns.builder = AggregateBuilder(limits_);
      const double rl = static_cast<double>(cfg_.rate_limit) / 100.0;
      ns.records = TokenBucket(kBucketRecords, kShardRecordsPerSecond * rl, now);
      ns.bytes = TokenBucket(kBucketBytes, kShardBytesPerSecond * rl, now);
      next.push_back(std::move(ns));
    }
    for (ShardState& old : st.shards) {
      if (old.shard_id.empty()) continue;  // moved into `next`
      for (URec& u : old.members) orphans.push_back(std::move(u));
      for (KRec& k : old.limiter)
        for (URec& u : k.users) orphans.push_back(std::move(u));
    }
    st.shards = std::move(next);
    st.map_ready = !st.shards.empty();
    scan_needed_ = true;
    // Collector entries keep their prediction by shard id; their indices follow the new map.
    for (ShardState& sh : st.shards) sh.collector_bytes = 0;
    for (KRec& k : st.collector) {
      k.shard = -1;
      for (std::size_t i = 0; i < st.shards.size(); ++i) {
        if (st.shards[i].shard_id == k.predicted_shard_id) {
          k.shard = static_cast<int>(i);
          st.shards[i].collector_bytes += k.size();
        }
      }
    }
    st.map_updated = now;
    for (URec& u : orphans) route(std::move(u));
  }

  void invalidate_map(std::uint32_t s, TimePoint now) {
    StreamState& st = streams_[s];
    st.map_stale = true;
    if (st.refreshing) return;
    // Refresh at most every 100 ms, however much wrong-shard evidence arrives.
    st.next_refresh = std::min(st.next_refresh, std::max(now, st.map_updated + 100ms));
  }

  int predict(const StreamState& st, const HashKey& h) const {
    if (!st.map_ready) return -1;
    // Shards are sorted by start; the owner is the last shard starting at or below h.
    auto it =
        std::upper_bound(st.shards.begin(), st.shards.end(), h,
                         [](const HashKey& k, const ShardState& s) { return k < s.range.start; });
    if (it == st.shards.begin()) return -1;
    --it;
    if (!it->range.contains(h)) return -1;  // a hole in the map (mid-reshard)
    return static_cast<int>(it - st.shards.begin());
  }

  // The partition keys' MD5 for records put without an explicit hash key, side by side.
  void hash_keys(std::span<URec> recs) {
    hash_in_.clear();
    for (const URec& u : recs)
      if (u->hash_pending) hash_in_.push_back(u->pk);
    if (hash_in_.empty()) return;
    hash_out_.resize(hash_in_.size());
    detail::md5_many(hash_in_, hash_out_);
    std::size_t k = 0;
    for (URec& u : recs) {
      if (!u->hash_pending) continue;
      u->hash = HashKey::from_big_endian(hash_out_[k++].data());
      u->hash_pending = false;
    }
  }

  // Route a batch grouped by predicted shard, each shard's records in arrival order: a shard's
  // aggregator then takes its records in one run while its tables are in cache. (Routing in
  // arrival order touched a different aggregator on nearly every record with many shards.)
  void route_batch(std::span<URec> batch) {
    if (batch.size() < 64) {
      for (URec& u : batch) route(std::move(u));
      return;
    }
    // Bucket b: stream s's shard i is bucket_base[s] + 1 + i; bucket_base[s] is "no shard".
    std::vector<std::uint32_t>& base = route_bucket_base_;
    base.assign(streams_.size() + 1, 0);
    for (std::size_t s = 0; s < streams_.size(); ++s)
      base[s + 1] = base[s] + 1 + static_cast<std::uint32_t>(streams_[s].shards.size());
    std::vector<std::uint32_t>& bucket = route_bucket_;
    bucket.resize(batch.size());
    std::vector<int>& shard_of = route_shard_;
    shard_of.resize(batch.size());
    std::vector<std::uint32_t>& start = route_bucket_start_;
    start.assign(base.back() + 1, 0);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const UserRec& u = *batch[i];
      const int shard = predict(streams_[u.stream], u.hash);
      shard_of[i] = shard;
      bucket[i] = base[u.stream] + static_cast<std::uint32_t>(shard + 1);  // -1: "no shard"
      ++start[bucket[i] + 1];
    }
    for (std::size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
    std::vector<std::pair<URec, int>>& sorted = route_sorted_;
    sorted.resize(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i)
      sorted[start[bucket[i]]++] = {std::move(batch[i]), shard_of[i]};
    for (auto& [u, shard] : sorted) route_to(std::move(u), shard);
    sorted.clear();
  }

  void route(URec u) {
    const int shard = predict(streams_[u->stream], u->hash);
    route_to(std::move(u), shard);
  }

  // `shard`: predict()'s answer for u.
  void route_to(URec u, int shard) {
    StreamState& st = streams_[u->stream];
    if (shard < 0 || !cfg_.aggregation_enabled) {
      KRec k = single(std::move(u), shard, st);
      limiter_of(st, shard).limiter.push_back(std::move(k));
      scan_needed_ = true;
      return;
    }
    ShardState& sh = st.shards[static_cast<std::size_t>(shard)];
    const std::uint32_t u_stream = u->stream;
    if (!sh.builder.try_add(u->pk, u->ehk, u->data, u->hash)) {
      flush_aggregate(u_stream, shard);
      sh.builder.add(u->pk, u->ehk, u->data, u->hash);
    }
    sh.agg_deadline = std::min(sh.agg_deadline, u->deadline);
    next_scan_ = std::min(next_scan_, sh.agg_deadline);
    sh.agg_expiration = std::min(sh.agg_expiration, u->expiration);
    sh.members.push_back(std::move(u));
    // Nothing more can join a full aggregate: do not wait for its deadline.
    if (sh.builder.count() >= limits_.max_count ||
        sh.builder.aggregated_size() + kMinRecordField > limits_.max_size) {
      flush_aggregate(u_stream, shard);
    }
  }

  ShardState& limiter_of(StreamState& st, int shard) {
    return shard < 0 ? st.unsharded : st.shards[static_cast<std::size_t>(shard)];
  }

  KRec single(URec u, int shard, const StreamState& st) {
    KRec k;
    k.shard = shard;
    if (shard >= 0) k.predicted_shard_id = st.shards[static_cast<std::size_t>(shard)].shard_id;
    k.rec.partition_key.assign(u->pk);
    k.rec.explicit_hash_key = u->hash.to_decimal();
    k.rec.data.assign(u->data);
    k.deadline = u->deadline;
    k.expiration = u->expiration;
    k.users.push_back(std::move(u));
    return k;
  }

  void flush_aggregate(std::uint32_t s, int shard) {
    StreamState& st = streams_[s];
    ShardState& sh = st.shards[static_cast<std::size_t>(shard)];
    if (sh.members.empty()) return;
    KRec k;
    k.shard = shard;
    k.predicted_shard_id = sh.shard_id;
    // The MD5 trailer is filled when the request is sent, for all its aggregates at once.
    k.needs_digest = sh.builder.count() > 1;
    k.rec = sh.builder.build(/*digest=*/!k.needs_digest);
    k.deadline = sh.agg_deadline;
    k.expiration = sh.agg_expiration;
    k.users = std::move(sh.members);
    sh.members.clear();
    sh.builder.clear();
    sh.agg_deadline = TimePoint::max();
    sh.agg_expiration = TimePoint::max();
    sh.limiter.push_back(std::move(k));
    scan_needed_ = true;
  }

  // Move records from a shard's limiter to the collector while tokens and backoff allow.
  TimePoint release(std::uint32_t s, int shard, TimePoint now) {
    StreamState& st = streams_[s];
    ShardState& sh = limiter_of(st, shard);
    if (sh.limiter.empty()) return TimePoint::max();
    if (now < sh.not_before) return sh.not_before;
    while (!sh.limiter.empty()) {
      KRec& k = sh.limiter.front();
      if (shard >= 0) {
        // Take from both buckets only when both have enough (head-of-line, as the KPL).
        const double bytes = static_cast<double>(k.rec.data.size());
        const Dur wait = std::max(sh.records.wait_for(1, now, sh.rate_factor),
                                  sh.bytes.wait_for(bytes, now, sh.rate_factor));
        if (wait > Dur::zero()) return now + wait;
        sh.records.try_take(1, now, sh.rate_factor);
        sh.bytes.try_take(bytes, now, sh.rate_factor);
      }
      KRec moved = std::move(k);
      sh.limiter.pop_front();
      // The KPL's grace on entering the collector, so a fresh aggregate is not sent alone.
      const Dur grace =
          std::min<Dur>(50ms, std::chrono::milliseconds(cfg_.record_max_buffered_time / 5));
      // Anchored at the record's own deadline, so a late pass does not add delay.
      moved.deadline = std::min(moved.expiration,
                                std::max(moved.deadline, std::min(now, moved.deadline) + grace));
      add_to_collector(s, std::move(moved), now);
    }
    return TimePoint::max();
  }

  void add_to_collector(std::uint32_t s, KRec k, TimePoint now) {
    StreamState& st = streams_[s];
    const std::size_t size = k.size();
    if (!st.collector.empty() &&
        (st.collector.size() >= static_cast<std::size_t>(cfg_.collection_max_count) ||
         st.collector_bytes + size > static_cast<std::size_t>(cfg_.collection_max_size))) {
      send(s, now);
    }
    st.collector_deadline = std::min(st.collector_deadline, k.deadline);
    st.collector_bytes += size;
    bool shard_full = false;
    if (k.shard >= 0) {
      ShardState& sh = st.shards[static_cast<std::size_t>(k.shard)];
      sh.collector_bytes += size;
      shard_full = sh.collector_bytes >= kCollectorShardBytes;
    }
    st.collector.push_back(std::move(k));
    if (shard_full || st.collector.size() >= static_cast<std::size_t>(cfg_.collection_max_count)) {
      send(s, now);
    }
  }

  TimePoint collect(std::uint32_t s, TimePoint now, bool flush_all) {
    StreamState& st = streams_[s];
    if (st.collector.empty()) return TimePoint::max();
    if (flush_all || now >= st.collector_deadline) {
      send(s, now);
      return TimePoint::max();
    }
    return st.collector_deadline;
  }

  void send(std::uint32_t s, TimePoint now) {
    StreamState& st = streams_[s];
    if (st.collector.empty()) return;
    InFlight req{s, std::move(st.collector), now};
    st.collector.clear();
    st.collector_bytes = 0;
    st.collector_deadline = TimePoint::max();
    for (KRec& k : req.krecs) {
      if (k.shard >= 0) st.shards[static_cast<std::size_t>(k.shard)].collector_bytes = 0;
    }
    ready_.push_back(std::move(req));
    dispatch(now);
  }

  // Start ready requests while fewer than MaxConnections are in flight: more would only wait
  // for a connection inside the HTTP client, where their timeout already runs.
  void dispatch(TimePoint now) {
    const std::size_t limit =
        static_cast<std::size_t>(std::max<std::int64_t>(1, cfg_.max_connections));
    while (!ready_.empty() && in_flight_.size() < limit) {
      InFlight req = std::move(ready_.front());
      ready_.pop_front();
      start(std::move(req), now);
    }
  }

  void start(InFlight req, TimePoint now) {
    const std::uint64_t id = next_request_id_++;
    const std::uint32_t s = req.stream;
    StreamState& st = streams_[s];
    req.sent = now;
    // The user records' attempts are written when the request completes (see
    // begin_attempts): touching every record here as well cost a cache miss per record.
    std::vector<std::string*> undigested;
    for (KRec& k : req.krecs) {
      if (k.needs_digest) undigested.push_back(&k.rec.data);
      k.needs_digest = false;
    }
    AggregateBuilder::digest_aggregates(undigested);
    std::vector<PutRecordsEntry> entries;
    entries.reserve(req.krecs.size());
    std::size_t users = 0;
    for (KRec& k : req.krecs) {
      entries.push_back({k.rec.partition_key, k.rec.data, k.rec.explicit_hash_key});
      users += k.users.size();
    }
    {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      ++metrics_.put_records_requests;
      metrics_.kinesis_records_per_put_records_request.add(static_cast<double>(req.krecs.size()));
      metrics_.user_records_per_put_records_request.add(static_cast<double>(users));
      for (const KRec& k : req.krecs)
        metrics_.user_records_per_kinesis_record.add(static_cast<double>(k.users.size()));
    }
    const StreamRef ref = st.ref;
    in_flight_.emplace(id, std::move(req));
    api_->put_records_async(ref, entries, [this, id](Result<PutRecordsResult> r) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        completions_.push_back(Completion{id, std::move(r)});
      }
      wake_.notify_one();
    });
  }

  void on_completion(Completion& c, TimePoint now) {
    auto it = in_flight_.find(c.id);
    if (it == in_flight_.end()) return;
    InFlight req = std::move(it->second);
    in_flight_.erase(it);
    handle_response(req, c, now);
    dispatch(now);
    scan_needed_ = true;  // retries, backoff and rate changes may make shards actionable
  }

  void handle_response(InFlight& req, Completion& c, TimePoint now) {
    const auto duration = ms_between(req.sent, now);
    {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      metrics_.request_time_ms.add(static_cast<double>(duration.count()));
    }
    StreamState& st = streams_[req.stream];
    const bool mismatch = c.result.ok() && c.result->records.size() != req.krecs.size();
    // Records that are not stored get their attempt here; stored ones on the callback thread.
    MetricStat buffering;
    auto attempted = [&](KRec& k) { begin_attempts(k, req.sent, duration, buffering); };
    for (std::size_t i = 0; i < req.krecs.size(); ++i) {
      KRec& k = req.krecs[i];
      if (!c.result.ok()) {
        attempted(k);
        const Status& s = c.result.status();
        count_error(error_code_of(s));
        on_failure(req.stream, k, error_code_of(s), std::string(s.message()), s.retry(),
                   s.code() == StatusCode::kResourceExhausted, now);
        continue;
      }
      if (mismatch) {
        attempted(k);
        count_error("RecordCountMismatch");
        fail_all(k, "RecordCountMismatch",
                 "PutRecords answered " + std::to_string(c.result->records.size()) +
                     " entries for " + std::to_string(req.krecs.size()) + " records",
                 now);
        continue;
      }
      const PutRecordsResultEntry& e = c.result->records[i];
      if (!e.ok()) {
        attempted(k);
        count_error(e.error_code);
        const auto* info = detail::find_aws_error(e.error_code);
        const RetryClass rc = info ? info->retry : RetryClass::kSameCall;
        const bool throttled = info ? info->status_code == StatusCode::kResourceExhausted : false;
        on_failure(req.stream, k, e.error_code, e.error_message, rc, throttled, now);
        continue;
      }
      if (k.shard >= 0 && e.shard_id != k.predicted_shard_id) {
        invalidate_map(req.stream, now);
        if (k.users.size() > 1) {
          // An aggregate on a shard that does not own all its records: a KCL consumer drops
          // it, so every user record in it goes again (at-least-once, never lost).
          attempted(k);
          count_error("WrongShard");
          retry_users(req.stream, k, "WrongShard",
                      "aggregate landed on " + e.shard_id + ", predicted " + k.predicted_shard_id,
                      now, /*wait_for_map=*/true);
          continue;
        }
      }
      on_success(st, k, e, req.sent, duration);
    }
    if (buffering.count) {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      merge_stat(metrics_.buffering_time_ms, buffering);
    }
  }

  // Record the attempt a completed (or cancelled) request made for each of k's user records.
  // BufferingTime: from the previous attempt's end (or arrival) to the send.
  static void begin_attempts(KRec& k, TimePoint sent, std::chrono::milliseconds duration,
                             MetricStat& buffering) {
    const std::size_t n = k.users.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i + 8 < n) __builtin_prefetch(k.users[i + 8].get(), 1);
      UserRec& u = *k.users[i];
      Attempt& a = u.attempts.emplace_back();
      a.delay = ms_between(u.last_end, sent);
      a.duration = duration;
      buffering.add(static_cast<double>(a.delay.count()));
    }
  }

  static void merge_stat(MetricStat& into, const MetricStat& from) {
    if (from.count == 0) return;
    if (into.count == 0 || from.min < into.min) into.min = from.min;
    if (into.count == 0 || from.max > into.max) into.max = from.max;
    into.count += from.count;
    into.sum += from.sum;
  }

  void count_error(const std::string& code) {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    ++metrics_.errors_by_code[code];
    ++metrics_.all_errors;
  }

  void on_success(StreamState& st, KRec& k, const PutRecordsResultEntry& e, TimePoint sent,
                  std::chrono::milliseconds duration) {
    if (k.shard >= 0 && static_cast<std::size_t>(k.shard) < st.shards.size() &&
        st.shards[static_cast<std::size_t>(k.shard)].shard_id == k.predicted_shard_id) {
      ShardState& sh = st.shards[static_cast<std::size_t>(k.shard)];
      sh.errors = 0;
      sh.rate_factor = std::min(1.0, sh.rate_factor * 1.05 + 0.01);
    }
    {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      ++metrics_.kinesis_records_put;
      metrics_.kinesis_records_data_put += k.rec.data.size();
    }
    const auto outcome = static_cast<std::uint32_t>(batch_.outcomes.size());
    batch_.outcomes.push_back(Outcome{true, e.shard_id, e.sequence_number, sent, duration});
    for (URec& u : k.users) batch_.done.push_back(Finished{std::move(u), outcome});
  }

  void on_failure(std::uint32_t s, KRec& k, const std::string& code, const std::string& message,
                  RetryClass rc, bool throttled, TimePoint now) {
    const bool fail_now =
        rc == RetryClass::kNone ||
        (cfg_.fail_if_throttled && code == "ProvisionedThroughputExceededException");
    if (fail_now) {
      fail_all(k, code, message, now);
      return;
    }
    StreamState& st = streams_[s];
    // Back off the shard (or the stream's unsharded queue) and, on throttling, slow its rate.
    ShardState* sh = &st.unsharded;
    if (k.shard >= 0 && static_cast<std::size_t>(k.shard) < st.shards.size() &&
        st.shards[static_cast<std::size_t>(k.shard)].shard_id == k.predicted_shard_id) {
      sh = &st.shards[static_cast<std::size_t>(k.shard)];
    }
    const Dur delay = backoff_.delay(sh->errors);
    sh->errors = std::min(sh->errors + 1, 16);
    sh->not_before = std::max(sh->not_before, now + delay);
    if (throttled) sh->rate_factor = std::max(0.1, sh->rate_factor * 0.5);
    retry_users(s, k, code, message, now);
  }

  void retry_users(std::uint32_t s, KRec& k, const std::string& code, const std::string& message,
                   TimePoint now, bool wait_for_map = false) {
    StreamState& st = streams_[s];
    for (URec& u : k.users) {
      Attempt& a = u->attempts.back();
      a.success = false;
      a.error_code = code;
      a.error_message = message;
      u->last_end = now;
      if (now >= u->expiration) {
        expire(std::move(u), now);
        continue;
      }
      u->deadline = std::min(u->expiration,
                             now + std::chrono::milliseconds(cfg_.record_max_buffered_time / 2));
      if (wait_for_map) {
        st.waiting_deadline = std::min(st.waiting_deadline, u->deadline);
        st.waiting.push_back(std::move(u));
      } else {
        route(std::move(u));
      }
    }
    k.users.clear();
  }

  void fail_all(KRec& k, const std::string& code, const std::string& message, TimePoint now) {
    for (URec& u : k.users) {
      Attempt& a = u->attempts.back();
      a.success = false;
      a.error_code = code;
      a.error_message = message;
      u->last_end = now;
      finish(std::move(u));
    }
    k.users.clear();
  }

  void expire(URec u, TimePoint now) {
    Attempt a;
    a.delay = ms_between(u->last_end, now);
    a.error_code = "UserRecordExpired";
    a.error_message =
        "record not delivered within RecordTtl (" + std::to_string(cfg_.record_ttl) + " ms)";
    u->attempts.push_back(std::move(a));
    {
      std::lock_guard<std::mutex> lock(metrics_mu_);
      ++metrics_.user_record_expired;
      ++metrics_.errors_by_code["UserRecordExpired"];
    }
    finish(std::move(u));
  }

  // Fail every record whose TTL has passed and that is not in flight: in aggregators,
  // limiters and collectors. (In-flight records are resolved by their request's outcome.)
  void sweep_expired(TimePoint now) {
    for (std::uint32_t s = 0; s < streams_.size(); ++s) {
      StreamState& st = streams_[s];
      for (std::size_t i = 0; i < st.shards.size(); ++i) {
        ShardState& sh = st.shards[i];
        if (!sh.members.empty() && now >= sh.agg_expiration) {
          std::vector<URec> keep;
          for (URec& u : sh.members) {
            if (now >= u->expiration) {
              expire(std::move(u), now);
            } else {
              keep.push_back(std::move(u));
            }
          }
          sh.members.clear();
          sh.builder.clear();
          sh.agg_deadline = TimePoint::max();
          sh.agg_expiration = TimePoint::max();
          for (URec& u : keep) route(std::move(u));
        }
      }
      if (!st.waiting.empty()) {
        std::vector<URec> keep;
        for (URec& u : st.waiting) {
          if (now >= u->expiration) {
            expire(std::move(u), now);
          } else {
            keep.push_back(std::move(u));
          }
        }
        st.waiting = std::move(keep);
      }
      auto sweep_queue = [&](std::deque<KRec>& q) {
        for (auto it = q.begin(); it != q.end();) {
          if (now < it->expiration) {
            ++it;
            continue;
          }
          // Fail the expired user records; the others go back through routing.
          std::vector<URec> users = std::move(it->users);
          it = q.erase(it);
          for (URec& u : users) {
            if (now >= u->expiration) {
              expire(std::move(u), now);
            } else {
              route(std::move(u));
            }
          }
        }
      };
      for (ShardState& sh : st.shards) sweep_queue(sh.limiter);
      sweep_queue(st.unsharded.limiter);
      if (!st.collector.empty()) {
        std::vector<KRec> keep;
        std::vector<URec> reroute;
        for (KRec& k : st.collector) {
          if (now < k.expiration) {
            keep.push_back(std::move(k));
            continue;
          }
          for (URec& u : k.users) {
            if (now >= u->expiration) {
              expire(std::move(u), now);
            } else {
              reroute.push_back(std::move(u));
            }
          }
        }
        st.collector = std::move(keep);
        st.collector_bytes = 0;
        st.collector_deadline = TimePoint::max();
        for (ShardState& sh : st.shards) sh.collector_bytes = 0;
        for (KRec& k : st.collector) {
          st.collector_bytes += k.size();
          st.collector_deadline = std::min(st.collector_deadline, k.deadline);
          if (k.shard >= 0)
            st.shards[static_cast<std::size_t>(k.shard)].collector_bytes += k.size();
        }
        for (URec& u : reroute) route(std::move(u));
      }
    }
  }

  // Requests waiting for a free connection hold records that are not in flight yet: expire
  // them too; the survivors go back through routing.
  void sweep_ready(TimePoint now) {
    for (auto it = ready_.begin(); it != ready_.end();) {
      bool any = false;
      for (const KRec& k : it->krecs) any |= now >= k.expiration;
      if (!any) {
        ++it;
        continue;
      }
      std::vector<KRec> krecs = std::move(it->krecs);
      it = ready_.erase(it);
      for (KRec& k : krecs) {
        for (URec& u : k.users) {
          if (now >= u->expiration) {
            expire(std::move(u), now);
          } else {
            route(std::move(u));
          }
        }
      }
    }
  }

  // Fail everything not yet resolved (close timeout or shutdown), including in-flight records.
  void cancel_everything() {
    const TimePoint now = clock_->now();
    auto cancel = [&](URec u) {
      Attempt a;
      a.delay = ms_between(u->last_end, now);
      a.error_code = "Cancelled";
      a.error_message = "the producer was closed before the record was delivered";
      u->attempts.push_back(std::move(a));
      finish(std::move(u));
    };
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (URec& u : intake_) cancel_intake_.push_back(std::move(u));
      intake_.clear();
    }
    for (URec& u : cancel_intake_) cancel(std::move(u));
    cancel_intake_.clear();
    for (StreamState& st : streams_) {
      for (ShardState& sh : st.shards) {
        for (URec& u : sh.members) cancel(std::move(u));
        sh.members.clear();
        sh.builder.clear();
        for (KRec& k : sh.limiter)
          for (URec& u : k.users) cancel(std::move(u));
        sh.limiter.clear();
      }
      for (URec& u : st.waiting) cancel(std::move(u));
      st.waiting.clear();
      for (KRec& k : st.unsharded.limiter)
        for (URec& u : k.users) cancel(std::move(u));
      st.unsharded.limiter.clear();
      for (KRec& k : st.collector)
        for (URec& u : k.users) cancel(std::move(u));
      st.collector.clear();
    }
    for (auto& [id, req] : in_flight_) {
      MetricStat unused;
      for (KRec& k : req.krecs) {
        // The attempt in flight never completed.
        begin_attempts(k, req.sent, ms_between(req.sent, now), unused);
        for (URec& u : k.users) {
          Attempt& a = u->attempts.back();
          a.error_code = "Cancelled";
          a.error_message = "the producer was closed before the record was delivered";
          u->last_end = now;
          finish(std::move(u));
        }
      }
    }
    in_flight_.clear();
    for (InFlight& req : ready_)
      for (KRec& k : req.krecs)
        for (URec& u : k.users) cancel(std::move(u));
    ready_.clear();
    publish_finished();
  }

  // Fail a record whose attempt list is complete. Results are handed to the callback thread
  // once per pipeline pass (publish_finished), not per record; it also does the accounting.
  void finish(URec u) { batch_.done.push_back(Finished{std::move(u), 0}); }

  void publish_finished() {
    if (batch_.done.empty()) return;
    {
      std::lock_guard<std::mutex> lock(cb_mu_);
      cb_queue_.push_back(std::move(batch_));
    }
    cb_cv_.notify_one();
    batch_ = FinishedBatch{};
  }

  // ---- state -------------------------------------------------------------------------------

  const ProducerConfig cfg_;
  const ProducerOptions opts_;
  std::shared_ptr<KinesisApi> api_;
  std::shared_ptr<Clock> clock_;
  AggregationLimits limits_;
  detail::Backoff backoff_{
      detail::BackoffOptions{std::chrono::milliseconds(100), std::chrono::seconds(5)}};

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable wake_, room_cv_, drained_cv_, map_cv_;
  std::vector<URec> intake_;
  std::vector<Completion> completions_;
  std::vector<MapResult> map_results_;
  std::deque<std::pair<std::uint32_t, StreamRef>> map_jobs_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> stream_ids_;
  std::vector<URec> spare_;    // records for put() to reuse
  std::size_t spare_low_ = 0;  // the fewest spare records since the last trim
  std::uint64_t outstanding_records_ = 0, outstanding_bytes_ = 0, received_ = 0;
  bool closed_ = false, joined_ = false, stopping_ = false, flush_requested_ = false,
       cancel_requested_ = false;
  TimePoint next_wake_ = TimePoint::max();
  Status close_status_;

  // Pipeline thread only.
  std::vector<StreamState> streams_;
  std::unordered_map<std::uint64_t, InFlight> in_flight_;
  std::deque<InFlight> ready_;  // complete requests waiting for an in-flight slot
  TimePoint next_scan_{};       // when the per-shard pass is next due
  bool scan_needed_ = true;     // an event made a shard actionable now
  std::uint64_t next_request_id_ = 1;
  TimePoint next_sweep_{};
  std::vector<URec> cancel_intake_;
  // route_batch's scratch space, kept across passes.
  std::vector<std::uint32_t> route_bucket_base_, route_bucket_, route_bucket_start_;
  std::vector<int> route_shard_;
  std::vector<std::string_view> hash_in_;  // hash_keys' scratch space
  std::vector<detail::Md5Digest> hash_out_;
  std::vector<std::pair<URec, int>> route_sorted_;
  TimePoint next_spare_trim_{};
  FinishedBatch batch_;  // resolved in this pass

  // Callback queue.
  std::mutex cb_mu_;
  std::condition_variable cb_cv_;
  std::vector<FinishedBatch> cb_queue_;
  PutResult callback_result_;  // callback thread (or pump()) only
  bool cb_stop_ = false;

  mutable std::mutex metrics_mu_;
  ProducerMetrics metrics_;

  std::thread pipeline_, callbacks_, mapper_;
};

// ---- Producer ------------------------------------------------------------------------------

Result<std::unique_ptr<Producer>> Producer::create(const ProducerConfig& config,
                                                   ProducerOptions options) {
  SHARDLINE_RETURN_IF_ERROR(validate_config(config));
  if (config.record_ttl <= config.record_max_buffered_time) {
    return Status::invalid_argument("RecordTtl (" + std::to_string(config.record_ttl) +
                                    " ms) must be above RecordMaxBufferedTime (" +
                                    std::to_string(config.record_max_buffered_time) + " ms)");
  }
  std::shared_ptr<KinesisApi> api = options.api;
  if (!api) {
    AwsClientConfig aws = options.aws;
    if (!config.region.empty()) aws.region = config.region;
    if (!config.kinesis_endpoint.empty()) {
      std::string ep = config.kinesis_endpoint;
      if (ep.find("://") == std::string::npos) {
        ep = "https://" + ep +
             (config.kinesis_port != 443 ? ":" + std::to_string(config.kinesis_port) : "");
      }
      aws.endpoint_url = ep;
    }
    aws.verify_tls = aws.verify_tls && config.verify_certificate;
    if (!config.ca_cert_file.empty()) aws.ca_file = config.ca_cert_file;
    if (!config.ca_cert_path.empty()) aws.ca_path = config.ca_cert_path;
    if (!config.proxy_host.empty()) {
      aws.proxy_host = config.proxy_host;
      aws.proxy_port = static_cast<int>(config.proxy_port);
      aws.proxy_user = config.proxy_user_name;
      aws.proxy_password = config.proxy_password;
    }
    aws.connect_timeout = std::chrono::milliseconds(config.connect_timeout);
    aws.request_timeout = std::chrono::milliseconds(config.request_timeout);
    aws.max_connections = static_cast<int>(config.max_connections);
    if (!aws.log) aws.log = options.log;
    auto client = KinesisClient::create(aws);
    if (!client.ok()) return std::move(client).status();
    api = make_kinesis_api(std::shared_ptr<KinesisClient>(std::move(*client)));
  }
  return std::unique_ptr<Producer>(
      new Producer(std::make_unique<Impl>(config, std::move(options), std::move(api))));
}

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Producer::~Producer() {
  if (impl_) (void)impl_->close(std::chrono::milliseconds(30000));
}

Status Producer::put(std::string_view stream, std::string_view partition_key, std::string_view data,
                     PutCallback done, std::optional<std::string_view> explicit_hash_key) {
  return impl_->admit(stream, partition_key, data, std::move(done), explicit_hash_key, true);
}

Status Producer::try_put(std::string_view stream, std::string_view partition_key,
                         std::string_view data, PutCallback done,
                         std::optional<std::string_view> explicit_hash_key) {
  return impl_->admit(stream, partition_key, data, std::move(done), explicit_hash_key, false);
}

Result<std::future<PutResult>> Producer::put(std::string_view stream,
                                             std::string_view partition_key, std::string_view data,
                                             std::optional<std::string_view> explicit_hash_key) {
  auto promise = std::make_shared<std::promise<PutResult>>();
  std::future<PutResult> f = promise->get_future();
  Status s = impl_->admit(
      stream, partition_key, data, [promise](PutResult&& r) { promise->set_value(std::move(r)); },
      explicit_hash_key, true);
  if (!s.ok()) return s;
  return f;
}

void Producer::flush() { impl_->flush(); }
Status Producer::flush_sync(std::chrono::milliseconds timeout) {
  return impl_->flush_sync(timeout);
}
Status Producer::close(std::chrono::milliseconds timeout) { return impl_->close(timeout); }
std::size_t Producer::outstanding() const noexcept { return impl_->outstanding(); }
ProducerMetrics Producer::metrics() const { return impl_->metrics(); }
std::size_t Producer::pump() { return impl_->pump(); }

}  // namespace shardline
