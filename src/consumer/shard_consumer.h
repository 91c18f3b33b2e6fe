// One shard consumer: the KCL's state machine for one lease acquisition, its record fetcher
// (polling GetRecords with bounded prefetch) and its checkpointer.
//
// It is an actor: events (a fetch completed, the lease was lost, shutdown was requested, a
// timer passed) set flags under its mutex and schedule one step() on the processing pool;
// at most one step() runs at a time, so the processor never sees two calls at once. poll() is
// called by the scheduler thread on each tick to start timed work.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "consumer/lease_coordinator.h"
#include "consumer/thread_pool.h"
#include "shardline/aggregation.h"
#include "shardline/consumer.h"

namespace shardline::detail {

class PiecewiseRecordProcessor;

enum class ErrorPolicy : std::uint8_t { kRetry, kSkip, kStop };

/// Worker-wide counters (the metrics snapshot reads them).
struct WorkerCounters {
  std::atomic<std::int64_t> records_processed{0};
  std::atomic<std::int64_t> data_bytes_processed{0};
  std::atomic<std::int64_t> expired_iterators{0};
  std::atomic<std::int64_t> get_records_calls{0};
  std::atomic<std::int64_t> get_records_failures{0};
  std::atomic<std::int64_t> throttled_reads{0};
  std::atomic<std::int64_t> process_records_failures{0};
  std::atomic<std::int64_t> records_skipped{0};
  std::atomic<std::int64_t> records_filtered{0};
  std::atomic<std::int64_t> corrupt_aggregates{0};
  std::atomic<std::int64_t> checkpoints{0};
  std::atomic<std::int64_t> checkpoint_failures{0};
  std::atomic<std::int64_t> leases_created{0};
  std::atomic<std::int64_t> leases_deleted{0};
  std::atomic<std::int64_t> hash_range_holes{0};
  std::atomic<std::int64_t> lease_store_calls{0};  // besides the coordinator's
  std::atomic<std::int64_t> prefetch_bytes{0};     // fetched, not yet processed (all shards)
};

/// What every shard consumer of a worker shares.
struct ConsumerContext {
  // Settings.
  int max_records = 10000;
  std::chrono::milliseconds idle_between_reads{1500};
  std::size_t max_pending_batches = 4;
  std::int64_t max_prefetch_records = 30000;
  std::int64_t max_prefetch_bytes = 8 << 20;
  std::int64_t max_prefetch_bytes_total = 256 << 20;
  std::chrono::milliseconds parent_poll_interval{10000};
  std::chrono::milliseconds task_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  ErrorPolicy error_policy = ErrorPolicy::kRetry;
  bool call_process_records_even_for_empty = false;
  bool kcl_exact = false;
  std::int64_t initial_timestamp_ms = 0;  // for AT_TIMESTAMP
  std::string worker_id;
  std::string stream;  // for log lines

  // Collaborators.
  Clock* clock = nullptr;
  ConsumerKinesisApi* kinesis = nullptr;
  const CancelToken* cancel = nullptr;  // the worker's: cancelled when it shuts down
  LeaseCoordinator* coordinator = nullptr;
  LeaseStore* store = nullptr;
  RecordProcessorFactory factory;
  ThreadPool* pool = nullptr;
  WorkerCounters* counters = nullptr;
  LogSink log;
  /// Children of a finished shard when GetRecords named none (ListShards); may refresh.
  std::function<Result<std::vector<ChildShard>>(const std::string& shard_id)> find_children;
  /// The shard's hash range when the lease has none recorded.
  std::function<std::optional<HashKeyRange>(const std::string& shard_id)> find_range;
  /// Called (any thread) when a shard reached SHARD_END here: children may start now.
  std::function<void(const std::string& shard_id)> on_shard_finished;
  /// Ask the scheduler to tick soon.
  std::function<void()> wake;
};

class ShardConsumer : public std::enable_shared_from_this<ShardConsumer> {
 public:
  enum class State : std::uint8_t {
    kWaitingOnParents,
    kInitializing,
    kProcessing,
    kShardEnding,
    kShuttingDown,
    kDone,
  };

  ShardConsumer(ConsumerContext& ctx, std::string shard_id, std::uint64_t token);
  ~ShardConsumer();

  const std::string& shard_id() const noexcept { return shard_id_; }
  std::uint64_t token() const noexcept { return token_; }

  /// Scheduler tick: run timed work (parent checks, retries, the next GetRecords).
  void poll();
  /// The lease was lost: lease_lost() after the current callback, then done.
  void lease_lost();
  /// Graceful shutdown: shutdown_requested(), release the lease, lease_lost(), done.
  void request_shutdown();
  /// A parent may have finished: check parents at the next tick instead of waiting.
  void recheck_parents();
  /// Stopped (kDone) and no GetRecords call still in flight: safe to forget.
  bool finished() const;
  State state() const;
  ShardStatus status() const;
  static const char* state_name(State s) noexcept;

 private:
  struct Batch {
    GetRecordsResult result;
    std::int64_t bytes = 0;
    std::int64_t records = 0;
  };
  class CheckpointerImpl;
  enum class Action : std::uint8_t {
    kNone,
    kCheckParents,
    kInitialize,
    kProcess,
    kCheckpointShardEnd,
    kShutdownRequested,
    kLeaseLost,
  };

  void schedule_step();
  void step();
  Action next_action_locked(Clock::time_point now);
  void run_action(Action a);
  void do_check_parents();
  void do_initialize();
  void do_process();
  void do_shard_end();
  void do_shutdown_requested();
  void do_lease_lost();
  void finish(bool release_lease);
  Status call(const char* what, const std::function<Status()>& fn);
  void backoff_locked(Clock::time_point now);

  // Fetching.
  void maybe_fetch();
  bool fetch_allowed_locked(Clock::time_point now) const;
  void start_fetch();
  void on_records(Result<GetRecordsResult> r, Clock::time_point started);
  ShardIteratorStart restart_position_locked() const;
  void drop_queue_locked();

  void log(LogLevel level, const std::string& message) const;

  ConsumerContext& ctx_;
  const std::string shard_id_;
  const std::uint64_t token_;
  std::shared_ptr<CheckpointerImpl> checkpointer_;
  std::unique_ptr<RecordProcessor> processor_;  // step() only
  // processor_, when it takes batches in pieces (piecewise_processor.h); step() only.
  PiecewiseRecordProcessor* piecewise_ = nullptr;
  Deaggregator deaggregator_;                   // step() only
  std::vector<std::string_view> digest_views_;  // step() only
  std::vector<UserRecordView> views_;           // step() only
  std::vector<ConsumerRecord> records_;         // step() only
  std::optional<HashKeyRange> range_;           // step() only
  bool filtering_checkpoint_ = true;            // step() only: still skipping <= checkpoint

  mutable std::mutex mu_;
  State state_ = State::kWaitingOnParents;
  bool step_scheduled_ = false;
  bool lease_lost_ = false;
  bool shutdown_requested_ = false;
  bool initialized_ = false;        // the processor's initialize() succeeded
  Clock::time_point not_before_{};  // retries and parent polls wait until then
  int failures_ = 0;                // consecutive callback failures (backoff)
  // Fetcher state.
  std::deque<Batch> queue_;
  std::int64_t queued_records_ = 0;
  std::int64_t queued_bytes_ = 0;
  bool fetching_enabled_ = false;
  bool fetch_in_flight_ = false;
  bool fetch_loop_active_ = false;
  bool refetch_ = false;
  bool shard_end_reached_ = false;
  bool resource_gone_ = false;  // ResourceNotFound while reading: no children to create
  std::vector<ChildShard> child_shards_;
  std::string iterator_;
  ShardIteratorStart initial_start_;
  std::string last_fetched_sequence_;
  Clock::time_point next_fetch_at_{};
  int fetch_failures_ = 0;
  std::int64_t fetch_reservation_ = 0;           // budget held by the call in flight
  std::int64_t expected_batch_bytes_ = 1 << 20;  // the last response's size
  // Status.
  ExtendedSequenceNumber start_position_;
  std::int64_t records_processed_ = 0;
  std::int64_t millis_behind_latest_ = 0;
};

}  // namespace shardline::detail
