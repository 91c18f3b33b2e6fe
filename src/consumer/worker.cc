// The worker (the KCL's Scheduler): one scheduler thread drives lease renewal and taking,
// shard sync, cleanup and the shard consumers; processors run on a fixed pool.
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "aws/service_client.h"
#include "consumer/fanout.h"
#include "consumer/lease_coordinator.h"
#include "consumer/shard_consumer.h"
#include "consumer/shard_sync.h"
#include "consumer/thread_pool.h"
#include "shardline/consumer.h"

namespace shardline {
namespace {

// ---- the real Kinesis API ----------------------------------------------------------------

class RealConsumerKinesisApi final : public ConsumerKinesisApi {
 public:
  RealConsumerKinesisApi(std::shared_ptr<KinesisClient> client, StreamRef stream)
      : client_(std::move(client)), stream_(std::move(stream)) {}

  Result<std::vector<Shard>> list_shards(const CancelToken* cancel) override {
    ListShardsOptions o;
    o.cancel = cancel;
    return client_->list_shards(stream_, o);
  }
  Result<std::string> get_shard_iterator(const std::string& shard_id,
                                         const ShardIteratorStart& start,
                                         const CancelToken* cancel) override {
    return client_->get_shard_iterator(stream_, shard_id, start, {}, cancel);
  }
  void get_records(const std::string& shard_iterator, int limit,
                   std::function<void(Result<GetRecordsResult>)> done) override {
    client_->get_records_async(shard_iterator, limit, std::move(done));
  }

 private:
  std::shared_ptr<KinesisClient> client_;
  StreamRef stream_;
};

std::string default_worker_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    std::snprintf(host, sizeof host, "worker");
  std::random_device rd;
  char suffix[20];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return std::string(host) + "-" + suffix;
}

void default_log(LogLevel level, std::string_view message) {
  if (level < LogLevel::kInfo) return;
  static const char* names[] = {"trace", "debug", "info", "warning", "error"};
  std::fprintf(stderr, "shardline: %s: %.*s\n", names[static_cast<int>(level)],
               static_cast<int>(message.size()), message.data());
}

}  // namespace

std::unique_ptr<ConsumerKinesisApi> make_consumer_kinesis_api(std::shared_ptr<KinesisClient> client,
                                                              StreamRef stream) {
  return std::make_unique<RealConsumerKinesisApi>(std::move(client), std::move(stream));
}

// ---- the worker --------------------------------------------------------------------------

class Worker::Impl {
 public:
  Impl(WorkerOptions o, RecordProcessorFactory factory) : options_(std::move(o)) {
    const ConsumerConfig& c = options_.config;
    clock_ = options_.clock != nullptr ? options_.clock : &SteadyClock::instance();
    log_ = options_.log ? options_.log : LogSink(default_log);
    worker_id_ = c.worker_id.empty() ? default_worker_id() : c.worker_id;
    stream_ = c.stream_arn.empty() ? c.stream_name : c.stream_arn;
    failover_ = std::chrono::milliseconds(c.failover_time_millis);
    taker_interval_ = std::chrono::milliseconds(
        c.lease_taker_interval_millis > 0 ? c.lease_taker_interval_millis : c.failover_time_millis);
    sync_interval_ = std::chrono::milliseconds(c.shard_sync_interval_millis);
    initial_.sentinel = c.initial_position_in_stream;
    std::int64_t ts = c.initial_timestamp_millis;
    if (ts == 0 && c.initial_position_in_stream_extended > 0) {
      ts = c.initial_position_in_stream_extended * 1000;
    }
    if (ts > 0) initial_.sentinel = std::string(kCheckpointAtTimestamp);
    cleanup_ = c.cleanup_leases_upon_shard_completion;

    std::size_t threads = c.processing_threads > 0
                              ? static_cast<std::size_t>(c.processing_threads)
                              : std::max(2u, std::thread::hardware_concurrency());
    pool_ = std::make_unique<detail::ThreadPool>(threads);
    io_pool_ = std::make_unique<detail::ThreadPool>(4);

    ctx_.max_records = static_cast<int>(c.max_records);
    ctx_.idle_between_reads = std::chrono::milliseconds(c.idle_time_between_reads_in_millis);
    ctx_.max_pending_batches = static_cast<std::size_t>(c.max_pending_process_records_input);
    ctx_.max_prefetch_records = c.max_prefetch_records;
    ctx_.max_prefetch_bytes = c.max_prefetch_bytes;
    ctx_.max_prefetch_bytes_total = c.max_prefetch_bytes_total;
    ctx_.parent_poll_interval = std::chrono::milliseconds(c.parent_shard_poll_interval_millis);
    ctx_.task_backoff = std::chrono::milliseconds(c.task_backoff_time_millis);
    ctx_.max_backoff = std::chrono::milliseconds(c.max_error_backoff_millis);
    ctx_.error_policy = c.process_records_error_policy == "SKIP"   ? detail::ErrorPolicy::kSkip
                        : c.process_records_error_policy == "STOP" ? detail::ErrorPolicy::kStop
                                                                   : detail::ErrorPolicy::kRetry;
    ctx_.call_process_records_even_for_empty = c.call_process_records_even_for_empty_record_list;
    ctx_.kcl_exact = c.kcl_exact_deaggregation;
    ctx_.initial_timestamp_ms = ts;
    ctx_.worker_id = worker_id_;
    ctx_.stream = stream_;
    ctx_.clock = clock_;
    ctx_.factory = std::move(factory);
    ctx_.pool = pool_.get();
    ctx_.counters = &counters_;
    ctx_.log = log_;
    ctx_.find_children = [this](const std::string& id) -> Result<std::vector<ChildShard>> {
      auto shards = refresh_shards(true);
      if (!shards.ok()) return shards.status();
      return detail::children_in(*shards, id);
    };
    ctx_.find_range = [this](const std::string& id) -> std::optional<HashKeyRange> {
      std::lock_guard lk(shards_mu_);
      for (const Shard& s : shards_) {
        if (s.shard_id == id) return s.hash_key_range;
      }
      return std::nullopt;
    };
    ctx_.on_shard_finished = [this](const std::string& id) {
      std::lock_guard lk(mu_);
      finished_shards_.push_back(id);
      cv_.notify_all();
    };
    ctx_.wake = [this] {
      std::lock_guard lk(mu_);
      kick_ = true;
      cv_.notify_all();
    };
  }

  ~Impl() {
    request_shutdown();
    if (thread_.joinable()) thread_.join();
    pool_->stop();
    io_pool_->stop();
  }

  Status setup() {
    const ConsumerConfig& c = options_.config;
    if (c.application_name.empty()) {
      return Status::invalid_argument("applicationName is required");
    }
    if (stream_.empty()) return Status::invalid_argument("streamName or streamArn is required");
    if (initial_.sentinel == kCheckpointAtTimestamp && ctx_.initial_timestamp_ms <= 0) {
      return Status::invalid_argument(
          "initialPositionInStream=AT_TIMESTAMP needs initialTimestampMillis or "
          "initialPositionInStreamExtended");
    }
    AwsClientConfig aws = options_.aws;
    if (!c.region_name.empty()) aws.region = c.region_name;
    if (!c.verify_certificate) aws.verify_tls = false;
    aws.request_timeout = std::chrono::milliseconds(c.request_timeout_millis);
    if (!aws.log) aws.log = log_;
    const bool fanout = c.retrieval_mode == "FANOUT";
    if (!options_.kinesis) {
      AwsClientConfig k = aws;
      if (!c.kinesis_endpoint.empty()) k.endpoint_url = c.kinesis_endpoint;
      auto client = KinesisClient::create(k);
      if (!client.ok()) return client.status();
      std::shared_ptr<KinesisClient> shared(std::move(*client));
      options_.kinesis = make_consumer_kinesis_api(shared, StreamRef(stream_));
      if (fanout) {
        detail::ConsumerRegistration reg;
        reg.stream = StreamRef(stream_);
        reg.consumer_name = c.consumer_name.empty() ? c.application_name : c.consumer_name;
        reg.describe_stream_attempts = static_cast<int>(c.max_describe_stream_summary_retries);
        reg.describe_consumer_attempts = static_cast<int>(c.max_describe_stream_consumer_retries);
        reg.register_attempts = static_cast<int>(c.register_stream_consumer_retries);
        reg.backoff = std::chrono::milliseconds(c.retry_backoff_millis);
        reg.log = log_;
        auto api = detail::make_fanout_kinesis_api(shared, options_.kinesis, k, c.consumer_arn,
                                                   std::move(reg));
        if (!api.ok()) return api.status();
        options_.kinesis = std::move(*api);
      }
    }
    // With enhanced fan-out a read waits for the service's next push instead of polling.
    if (fanout) ctx_.idle_between_reads = std::chrono::milliseconds(0);
    if (!options_.lease_store) {
      AwsClientConfig d = aws;
      d.endpoint_url = c.dynamodb_endpoint;
      std::string spec = c.lease_store;
      if (spec.empty())
        spec = "dynamodb:" + (c.table_name.empty() ? c.application_name : c.table_name);
      auto store = open_lease_store(spec, c.application_name, d);
      if (!store.ok()) return store.status();
      options_.lease_store = std::shared_ptr<LeaseStore>(std::move(*store));
    }
    detail::LeaseCoordinatorOptions lo;
    lo.worker_id = worker_id_;
    lo.failover_time = failover_;
    lo.epsilon = std::chrono::milliseconds(c.epsilon_millis);
    lo.max_leases_for_worker = c.max_leases_for_worker;
    lo.max_leases_to_steal = c.max_leases_to_steal_at_one_time;
    lo.clock = clock_;
    lo.log = log_;
    lo.parallel_for = [this](std::size_t n, const std::function<void(std::size_t)>& job) {
      io_pool_->parallel_for(n, job);
    };
    coordinator_ = std::make_unique<detail::LeaseCoordinator>(options_.lease_store, std::move(lo));
    ctx_.kinesis = options_.kinesis.get();
    ctx_.cancel = &cancel_;
    ctx_.store = options_.lease_store.get();
    ctx_.coordinator = coordinator_.get();
    return {};
  }

  Status start() {
    {
      std::lock_guard lk(mu_);
      if (started_)
        return Status(StatusCode::kFailedPrecondition, "the worker was started already");
      started_ = true;
    }
    Status s;
    {
      // A shutdown also ends the lease store's calls at start-up (DynamoDB: DescribeTable,
      // CreateTable, the wait for ACTIVE, the first leases), not only the Kinesis ones.
      detail::CancelScope scope(&cancel_);
      s = options_.lease_store->initialize();
      if (s.ok()) s = sync_shards();
    }
    if (!s.ok()) {
      // Never running: wait() and stopped() report it stopped. A shutdown requested during
      // start-up is not an error, even though it cut the start-up calls short.
      std::lock_guard lk(mu_);
      stopped_ = true;
      cv_.notify_all();
      if (shutdown_) {
        log(LogLevel::kInfo, "shut down during start-up (" + s.to_string() + ")");
        return {};
      }
      return s;
    }
    log(LogLevel::kInfo, "started on " + options_.lease_store->describe());
    thread_ = std::thread([this] { loop(); });
    return {};
  }

  Status run() {
    SHARDLINE_RETURN_IF_ERROR(start());
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return stopped_; });
    return fatal_;
  }

  void request_shutdown() {
    {
      std::lock_guard lk(mu_);
      shutdown_ = true;
      if (!started_) stopped_ = true;
      cv_.notify_all();
    }
    // Blocking Kinesis calls (ListShards, GetShardIterator, with their retries) end now
    // instead of running out their attempts against an endpoint that may be unreachable.
    cancel_.cancel();
  }

  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return stopped_; });
  }

  bool stopped() const {
    std::lock_guard lk(mu_);
    return stopped_;
  }

  WorkerMetrics metrics() const {
    WorkerMetrics m;
    auto get = [](const std::atomic<std::int64_t>& a) { return a.load(std::memory_order_relaxed); };
    m.records_processed = get(counters_.records_processed);
    m.data_bytes_processed = get(counters_.data_bytes_processed);
    m.expired_iterators = get(counters_.expired_iterators);
    m.get_records_calls = get(counters_.get_records_calls);
    m.get_records_failures = get(counters_.get_records_failures);
    m.throttled_reads = get(counters_.throttled_reads);
    m.process_records_failures = get(counters_.process_records_failures);
    m.records_skipped = get(counters_.records_skipped);
    m.records_filtered = get(counters_.records_filtered);
    m.corrupt_aggregates = get(counters_.corrupt_aggregates);
    m.checkpoints = get(counters_.checkpoints);
    m.checkpoint_failures = get(counters_.checkpoint_failures);
    m.leases_created = get(counters_.leases_created);
    m.leases_deleted = get(counters_.leases_deleted);
    m.hash_range_holes = get(counters_.hash_range_holes);
    if (coordinator_) {
      const auto& cc = coordinator_->counters();
      m.lease_store_calls = get(counters_.lease_store_calls) + get(cc.store_calls);
      m.renewals = get(cc.renewals);
      m.taken_leases = get(cc.taken);
      m.stolen_leases = get(cc.stolen);
      m.lost_leases = get(cc.lost);
      m.released_leases = get(cc.released);
      m.current_leases = static_cast<std::int64_t>(coordinator_->held_count());
    }
    std::lock_guard lk(consumers_mu_);
    for (const auto& [k, c] : consumers_) {
      ShardStatus st = c->status();
      m.millis_behind_latest = std::max(m.millis_behind_latest, st.millis_behind_latest);
      m.shards.push_back(std::move(st));
    }
    for (const auto& st : retired_) {
      if (consumers_.count(st.shard_id) == 0) m.shards.push_back(st);
    }
    std::sort(m.shards.begin(), m.shards.end(),
              [](const ShardStatus& a, const ShardStatus& b) { return a.shard_id < b.shard_id; });
    return m;
  }

  const std::string& worker_id() const { return worker_id_; }

 private:
  void log(LogLevel level, const std::string& message) const {
    log_(level, "worker " + worker_id_ + " stream " + stream_ + ": " + message);
  }

  Result<std::vector<Shard>> refresh_shards(bool force) {
    std::lock_guard lk(shards_mu_);
    auto now = clock_->now();
    if (!force && have_shards_) return shards_;
    if (force && have_shards_ && now - shards_at_ < std::chrono::seconds(1)) return shards_;
    auto r = options_.kinesis->list_shards(&cancel_);
    if (!r.ok()) return r.status();
    shards_ = std::move(*r);
    shards_at_ = now;
    have_shards_ = true;
    return shards_;
  }

  // Create the leases that are missing (start-up and periodic sync).
  Status sync_shards() {
    auto shards = refresh_shards(true);
    if (!shards.ok()) {
      return Status(shards.status().code(), "listing the shards of " + stream_ + " failed: " +
                                                std::string(shards.status().message()));
    }
    counters_.lease_store_calls.fetch_add(1, std::memory_order_relaxed);
    auto leases = options_.lease_store->list_leases();
    if (!leases.ok()) return leases.status();
    auto todo = detail::leases_to_create(*shards, *leases, initial_);
    for (const Lease& l : todo) {
      counters_.lease_store_calls.fetch_add(1, std::memory_order_relaxed);
      auto created = options_.lease_store->create_lease_if_not_exists(l);
      if (!created.ok()) return created.status();
      if (*created) {
        counters_.leases_created.fetch_add(1, std::memory_order_relaxed);
        log(LogLevel::kInfo, "created lease " + l.lease_key + " at " + l.checkpoint);
      }
    }
    return {};
  }

  // A failure that retrying cannot fix (the stream or the lease table was deleted, access is
  // denied), seen three times in a row, stops the worker; run() returns it.
  void note_failure(const Status& s, const char* what, int& streak) {
    const bool fatal = s.code() == StatusCode::kNotFound ||
                       s.code() == StatusCode::kPermissionDenied ||
                       s.code() == StatusCode::kUnauthenticated;
    if (!fatal) {
      streak = 0;
      return;
    }
    if (++streak < 3) return;
    log(LogLevel::kError, std::string(what) + " keeps failing; stopping: " + s.to_string());
    std::lock_guard lk(mu_);
    if (fatal_.ok()) fatal_ = s;
    shutdown_ = true;
  }

  void cleanup(const std::vector<Lease>& leases) {
    std::vector<Shard> shards;
    {
      std::lock_guard lk(shards_mu_);
      shards = shards_;
    }
    for (const std::string& key : detail::leases_to_clean_up(leases, shards)) {
      counters_.lease_store_calls.fetch_add(1, std::memory_order_relaxed);
      Status s = options_.lease_store->delete_lease(key);
      if (s.ok()) {
        counters_.leases_deleted.fetch_add(1, std::memory_order_relaxed);
        log(LogLevel::kInfo, "deleted the lease of finished shard " + key);
      } else {
        log(LogLevel::kWarning, "deleting the lease of " + key + " failed: " + s.to_string());
      }
    }
  }

  void loop() {
    auto now = clock_->now();
    auto next_renew = now + coordinator_->renew_interval();
    auto next_take = now;
    auto next_sync = now + sync_interval_;
    std::mt19937_64 rng(std::random_device{}());
    bool shutting_down = false;
    for (;;) {
      now = clock_->now();
      {
        std::lock_guard lk(mu_);
        if (shutdown_ && !shutting_down) {
          shutting_down = true;
          coordinator_->stop_taking();
          log(LogLevel::kInfo,
              "shutting down: releasing " + std::to_string(coordinator_->held_count()) + " leases");
        }
      }
      if (now >= next_renew) {
        coordinator_->renew_all();
        next_renew = now + coordinator_->renew_interval();
      }
      if (!shutting_down && now >= next_take) {
        auto r = coordinator_->take_leases();
        // Jitter keeps workers that started together from scanning together.
        auto jitter = std::uniform_int_distribution<std::int64_t>(
            0, std::max<std::int64_t>(1, taker_interval_.count() / 10))(rng);
        next_take = now + taker_interval_ + std::chrono::milliseconds(jitter);
        note_failure(r.status, "reading the lease table", take_streak_);
        if (r.status.ok()) {
          if (cleanup_) cleanup(r.leases);
          if (detail::has_hash_range_hole(r.leases)) {
            counters_.hash_range_holes.fetch_add(1, std::memory_order_relaxed);
            log(LogLevel::kWarning, "the lease table has a hash-range hole; syncing shards");
            next_sync = now;
          }
        }
      }
      if (!shutting_down && now >= next_sync) {
        Status s = sync_shards();
        if (!s.ok()) log(LogLevel::kWarning, "shard sync failed: " + s.to_string());
        note_failure(s, "syncing shards", sync_streak_);
        next_sync = now + sync_interval_;
      }
      dispatch(shutting_down);
      if (shutting_down) {
        std::lock_guard lk(consumers_mu_);
        if (consumers_.empty()) {
          // Leases held without a consumer (taken in the last instant): give them back.
          for (const auto& h : coordinator_->held_leases()) {
            Status s = coordinator_->release(h.lease.lease_key, h.token);
            if (!s.ok())
              log(LogLevel::kWarning, "releasing " + h.lease.lease_key + ": " + s.to_string());
          }
          break;
        }
      }
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(20), [&] {
        return (shutdown_ && !shutting_down) || !finished_shards_.empty() || kick_;
      });
      kick_ = false;
    }
    log(LogLevel::kInfo, "stopped");
    std::lock_guard lk(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

  void dispatch(bool shutting_down) {
    std::vector<std::string> finished;
    {
      std::lock_guard lk(mu_);
      finished.swap(finished_shards_);
    }
    auto lost = coordinator_->take_lost();
    auto held = coordinator_->held_leases();
    std::lock_guard lk(consumers_mu_);
    for (const auto& [key, token] : lost) {
      auto it = consumers_.find(key);
      if (it != consumers_.end() && it->second->token() == token) it->second->lease_lost();
    }
    if (!shutting_down) {
      for (const auto& h : held) {
        auto it = consumers_.find(h.lease.lease_key);
        if (it != consumers_.end() && it->second->token() == h.token) continue;
        if (it != consumers_.end()) continue;  // the old consumer is still stopping
        auto c = std::make_shared<detail::ShardConsumer>(ctx_, h.lease.lease_key, h.token);
        consumers_.emplace(h.lease.lease_key, c);
        log(LogLevel::kInfo, "started a consumer for " + h.lease.lease_key);
      }
    }
    for (auto it = consumers_.begin(); it != consumers_.end();) {
      auto& c = it->second;
      if (shutting_down) c->request_shutdown();
      if (!finished.empty() && c->state() == detail::ShardConsumer::State::kWaitingOnParents) {
        c->recheck_parents();
      }
      c->poll();
      if (c->finished()) {
        ShardStatus st = c->status();
        retired_.erase(
            std::remove_if(retired_.begin(), retired_.end(),
                           [&](const ShardStatus& r) { return r.shard_id == st.shard_id; }),
            retired_.end());
        retired_.push_back(std::move(st));
        it = consumers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  WorkerOptions options_;
  Clock* clock_;
  LogSink log_;
  std::string worker_id_;
  std::string stream_;
  std::chrono::milliseconds failover_;
  std::chrono::milliseconds taker_interval_;
  std::chrono::milliseconds sync_interval_;
  detail::InitialPosition initial_;
  bool cleanup_ = true;
  CancelToken cancel_;  // cancelled by request_shutdown(); outlives the threads using it

  std::unique_ptr<detail::ThreadPool> pool_;
  std::unique_ptr<detail::ThreadPool> io_pool_;
  std::unique_ptr<detail::LeaseCoordinator> coordinator_;
  detail::WorkerCounters counters_;
  detail::ConsumerContext ctx_;

  mutable std::mutex shards_mu_;
  std::vector<Shard> shards_;
  Clock::time_point shards_at_{};
  bool have_shards_ = false;

  mutable std::mutex consumers_mu_;
  std::map<std::string, std::shared_ptr<detail::ShardConsumer>> consumers_;
  std::vector<ShardStatus> retired_;  // finished consumers' last status

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool shutdown_ = false;
  bool stopped_ = false;
  bool kick_ = false;    // a consumer asked for an early tick
  int take_streak_ = 0;  // scheduler thread only: consecutive fatal-class failures
  int sync_streak_ = 0;
  Status fatal_;
  std::vector<std::string> finished_shards_;
  std::thread thread_;
};

Result<std::unique_ptr<Worker>> Worker::create(WorkerOptions options,
                                               RecordProcessorFactory factory) {
  if (!factory) return Status::invalid_argument("a record processor factory is required");
  // Before anything is sized from the settings (thread pools, caps).
  SHARDLINE_RETURN_IF_ERROR(validate_config(options.config));
  auto impl = std::make_unique<Impl>(std::move(options), std::move(factory));
  SHARDLINE_RETURN_IF_ERROR(impl->setup());
  return std::unique_ptr<Worker>(new Worker(std::move(impl)));
}

Worker::Worker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Worker::~Worker() = default;
Status Worker::start() { return impl_->start(); }
Status Worker::run() { return impl_->run(); }
void Worker::shutdown() { impl_->request_shutdown(); }
bool Worker::wait(std::chrono::milliseconds timeout) { return impl_->wait(timeout); }
bool Worker::stopped() const { return impl_->stopped(); }
WorkerMetrics Worker::metrics() const { return impl_->metrics(); }
const std::string& Worker::worker_id() const { return impl_->worker_id(); }

}  // namespace shardline
