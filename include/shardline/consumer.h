// File: shardline/consumer.h
//
// A native KCL worker: leases and checkpoints in a LeaseStore (DynamoDB with the KCL 2.x table
// schema, or SQLite), shard discovery with parents before children, and the KCL 2.x
// record-processor lifecycle.
//
//   class Printer : public shardline::RecordProcessor {
//     shardline::Status initialize(const shardline::InitializationInput&) override { return {}; }
//     shardline::Status process_records(const shardline::ProcessRecordsInput& in) override {
//       for (const auto& r : in.records) write(r.data);
//       return in.checkpointer.checkpoint();       // everything delivered so far
//     }
//   };
//   shardline::ConsumerConfig cfg;
//   cfg.application_name = "orders-audit";
//   cfg.stream_name = "orders";
//   auto w = shardline::Worker::create({.config = cfg, .aws = aws},
//                                      [](const std::string&) { return std::make_unique<Printer>();
//                                      });
//   if (!w.ok()) return w.status();
//   Status s = (*w)->run();                         // until shutdown() (e.g. from a signal)
//
// Threads. One scheduler thread renews and takes leases, syncs shards and drives the shard
// consumers. Record processors run on a fixed pool of `processingThreads` threads; calls for one
// shard never overlap and come in lifecycle order, calls for different shards run in parallel.
// GetRecords calls of every shard share one HTTP event-loop thread. Nothing runs per shard: the
// thread count does not grow with the number of shards.
//
// Lifecycle of one lease acquisition (one RecordProcessor object per acquisition):
//   initialize → process_records* → exactly one of
//     shard_ended (the shard is closed and fully read: checkpoint to release the children),
//     lease_lost (another worker took the lease, or it could not be renewed in time),
//     shutdown_requested then lease_lost (Worker::shutdown(): checkpoint, then the lease is
//       released so another worker takes it at once).
// A processor whose lease is lost before initialize() is never created.
//
// Errors. Callbacks return Status; an exception thrown by a callback is caught and treated as
// a failed Status. A failed initialize, shard_ended or lease_lost is retried after
// taskBackoffTimeMillis (exponential, capped by maxErrorBackoffMillis). A failed
// process_records follows processRecordsErrorPolicy: RETRY (default; the same batch again),
// SKIP (the KCL's behaviour: logged, counted in RecordsSkipped), or STOP (the shard stops and
// its lease is released).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardline/aws_client.h"
#include "shardline/clock.h"
#include "shardline/config.h"
#include "shardline/kinesis.h"
#include "shardline/lease_store.h"
#include "shardline/result.h"

namespace shardline {

/// A position in a shard: a sequence number (decimal) or a sentinel (TRIM_HORIZON, LATEST,
/// AT_TIMESTAMP, SHARD_END), and the index of a user record inside a KPL aggregate.
struct ExtendedSequenceNumber {
  std::string sequence_number;
  std::int64_t sub_sequence_number = 0;

  bool is_sentinel() const noexcept;
  friend bool operator==(const ExtendedSequenceNumber&, const ExtendedSequenceNumber&) = default;
};

/// OK, or kInvalidArgument: not a sentinel and not a decimal sequence number (1..129 digits),
/// or a negative sub-sequence number.
Status validate_extended_sequence_number(const ExtendedSequenceNumber& esn);

/// The KCL's order: AT_TIMESTAMP < TRIM_HORIZON < LATEST < sequence numbers (numerically) <
/// SHARD_END, ties broken by sub-sequence number. Both must be valid. Returns <0, 0, >0.
int compare(const ExtendedSequenceNumber& a, const ExtendedSequenceNumber& b) noexcept;

/// One user record as delivered to a processor: deaggregated, filtered to the shard's hash
/// range. The views stay valid until process_records returns; copy what you keep.
struct ConsumerRecord {
  std::string_view data;
  std::string_view partition_key;
  std::optional<std::string_view> explicit_hash_key;
  std::string_view sequence_number;
  std::int64_t sub_sequence_number = 0;  // index in the aggregate; 0 for plain records
  std::int64_t approximate_arrival_timestamp_ms = 0;
  bool aggregated = false;
};

class Checkpointer;

struct InitializationInput {
  std::string shard_id;
  /// Where processing resumes: the checkpoint, or the initial-position sentinel.
  ExtendedSequenceNumber extended_sequence_number;
  /// A prepared (two-phase) checkpoint left by the previous owner, if any.
  std::optional<ExtendedSequenceNumber> pending_checkpoint;
  std::optional<std::string> pending_checkpoint_state;
};

struct ProcessRecordsInput {
  std::span<const ConsumerRecord> records;
  std::int64_t millis_behind_latest = 0;
  Checkpointer& checkpointer;
};

/// Checkpoints of one shard. Calls are thread-safe and may be made from any thread while the
/// processor holds the lease (from a callback or later). Errors:
///  - kFailedPrecondition: the lease is not held any more (lost, stolen, expired locally, or the
///    worker shut down). Stop processing this shard. (KCL: ShutdownException)
///  - kResourceExhausted: the lease store throttled. Retry later. (KCL: ThrottlingException)
///  - kNotFound: the lease table does not exist. (KCL: InvalidStateException)
///  - kUnavailable / kInternal: the lease store failed. Retry later.
///    (KCL: KinesisClientLibDependencyException)
///  - kInvalidArgument: malformed, behind the last checkpoint, or past the last record
///    delivered. (KCL: IllegalArgumentException)
/// Checkpointing the current value again is OK and writes nothing.
class Checkpointer {
 public:
  virtual ~Checkpointer() = default;
  /// Everything delivered so far; inside shard_ended(): SHARD_END.
  virtual Status checkpoint() = 0;
  /// An exact position. Inside shard_ended(), the last record of the shard means SHARD_END
  /// (the KCL loses that case: its bug #211).
  virtual Status checkpoint(std::string_view sequence_number,
                            std::int64_t sub_sequence_number = 0) = 0;
  /// Two-phase checkpoint: store a pending checkpoint (and opaque state) that the next owner
  /// sees in InitializationInput. A later checkpoint removes it.
  virtual Status prepare_checkpoint(std::string_view sequence_number,
                                    std::int64_t sub_sequence_number = 0,
                                    std::optional<std::string> state = std::nullopt) = 0;
  /// The last checkpoint written (or read at initialize).
  virtual ExtendedSequenceNumber last_checkpoint() const = 0;
  /// The largest position delivered to the processor (SHARD_END inside shard_ended()).
  virtual ExtendedSequenceNumber largest_permitted() const = 0;
};

/// The KCL exception class name for a checkpoint error ("ShutdownException",
/// "ThrottlingException", "InvalidStateException", "KinesisClientLibDependencyException",
/// "IllegalArgumentException"), "" for OK.
std::string_view checkpoint_error_name(const Status& status) noexcept;

/// A shard's record processor. All calls for one processor come from the processing pool, one
/// at a time. Return a non-OK Status (or throw) to report a failure; see the file comment.
class RecordProcessor {
 public:
  virtual ~RecordProcessor() = default;
  virtual Status initialize(const InitializationInput& input) = 0;
  virtual Status process_records(const ProcessRecordsInput& input) = 0;
  /// The shard is closed and every record has been delivered. Checkpoint (checkpoint() writes
  /// SHARD_END) so the child shards start; without it the call is retried. The default
  /// implementation checkpoints.
  virtual Status shard_ended(Checkpointer& checkpointer) { return checkpointer.checkpoint(); }
  /// The lease is gone; checkpoints fail from now on. Clean up.
  virtual Status lease_lost() { return {}; }
  /// Worker::shutdown() was called: checkpoint what is done; the lease is released afterwards.
  virtual Status shutdown_requested(Checkpointer& checkpointer) {
    (void)checkpointer;
    return {};
  }
};

/// Makes the processor of one lease acquisition. Called on the processing pool. Returning
/// nullptr is an initialize failure (retried).
using RecordProcessorFactory = std::function<std::unique_ptr<RecordProcessor>(const std::string&)>;

/// The Kinesis calls a worker makes, bound to one stream; tests substitute fakes.
class ConsumerKinesisApi {
 public:
  virtual ~ConsumerKinesisApi() = default;
  /// Every shard of the stream (all pages). Blocking, with retries; `cancel` (the worker's,
  /// cancelled when it shuts down) ends the call early with kCancelled.
  virtual Result<std::vector<Shard>> list_shards(const CancelToken* cancel) = 0;
  virtual Result<std::string> get_shard_iterator(const std::string& shard_id,
                                                 const ShardIteratorStart& start,
                                                 const CancelToken* cancel) = 0;
  /// One GetRecords call. `done` may run on any thread, also before this returns; it must be
  /// called exactly once.
  virtual void get_records(const std::string& shard_iterator, int limit,
                           std::function<void(Result<GetRecordsResult>)> done) = 0;
};

/// The real API on a KinesisClient (its AwsClientConfig sets timeouts and retries).
std::unique_ptr<ConsumerKinesisApi> make_consumer_kinesis_api(std::shared_ptr<KinesisClient> client,
                                                              StreamRef stream);

/// What a worker is doing with one shard.
struct ShardStatus {
  std::string shard_id;
  std::string state;  // WAITING_ON_PARENT_SHARDS, INITIALIZING, PROCESSING, SHARD_END,
                      // SHUTTING_DOWN, STOPPED
  ExtendedSequenceNumber checkpoint;
  std::int64_t records_processed = 0;
  std::int64_t millis_behind_latest = 0;
};

/// A snapshot of the worker's metrics since create(), with the KCL's names.
struct WorkerMetrics {
  std::int64_t records_processed = 0;     // RecordsProcessed
  std::int64_t data_bytes_processed = 0;  // DataBytesProcessed
  std::int64_t millis_behind_latest = 0;  // MillisBehindLatest (max over held shards)
  std::int64_t current_leases = 0;        // CurrentLeases
  std::int64_t lost_leases = 0;           // LostLeases
  std::int64_t taken_leases = 0;          // TakenLeases (incl. stolen)
  std::int64_t stolen_leases = 0;         // StolenLeases
  std::int64_t released_leases = 0;       // ReleasedLeases (graceful shutdown, shard end)
  std::int64_t expired_iterators = 0;     // ExpiredIterator
  std::int64_t get_records_calls = 0;     // KinesisDataFetcher.getRecords.Success
  std::int64_t get_records_failures = 0;  // KinesisDataFetcher.getRecords failures
  std::int64_t throttled_reads = 0;       // ProvisionedThroughputExceeded on GetRecords
  std::int64_t process_records_failures = 0;
  std::int64_t records_skipped = 0;     // RecordsSkipped (SKIP policy)
  std::int64_t records_filtered = 0;    // user records outside the shard's hash range
  std::int64_t corrupt_aggregates = 0;  // delivered raw: DATA_LOSS
  std::int64_t checkpoints = 0;         // UpdateLease.Success
  std::int64_t checkpoint_failures = 0;
  std::int64_t lease_store_calls = 0;  // every LeaseStore call (renewals, scans, writes)
  std::int64_t renewals = 0;           // RenewLease.Success
  std::int64_t leases_created = 0;     // CreateLease.Success
  std::int64_t leases_deleted = 0;     // cleanup
  std::int64_t hash_range_holes = 0;   // shard syncs that found a hole in the lease table
  std::vector<ShardStatus> shards;

  /// Prometheus text exposition (shardline_consumer_* names, labels worker and shard).
  std::string to_prometheus(std::string_view worker_id) const;
  /// One CloudWatch embedded-metric-format JSON line (namespace = application name).
  std::string to_emf(std::string_view application, std::string_view worker_id,
                     std::int64_t timestamp_ms) const;
};

struct WorkerOptions {
  /// Settings with the KCL's key names; applicationName and streamName/streamArn are required.
  ConsumerConfig config;
  /// Region, credentials, TLS. regionName, kinesisEndpoint, dynamoDBEndpoint and
  /// verifyCertificate from the config override it when set.
  AwsClientConfig aws;
  /// The lease store; null: opened from config.lease_store ("" = the DynamoDB table tableName,
  /// or applicationName).
  std::shared_ptr<LeaseStore> lease_store;
  /// The Kinesis API; null: a KinesisClient on `aws`.
  std::shared_ptr<ConsumerKinesisApi> kinesis;
  /// Time source (tests). null: SteadyClock.
  Clock* clock = nullptr;
  /// Log lines, with worker, stream and shard in the text. null: stderr at info and above.
  LogSink log;
};

class Worker {
 public:
  /// Validates the settings (kInvalidArgument naming the key) and builds the clients. No I/O
  /// to Kinesis or the lease store yet.
  static Result<std::unique_ptr<Worker>> create(WorkerOptions options,
                                                RecordProcessorFactory factory);
  ~Worker();  // shutdown() and waits
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Initializes (lease table, first shard sync) and starts the threads. Returns when the worker
  /// is running, or the initialization error.
  Status start();
  /// start(), then blocks until shutdown() completes. The first fatal error (e.g. the stream
  /// was deleted, access denied) stops the worker and is returned.
  Status run();
  /// Graceful shutdown, asynchronous and idempotent: stop taking leases, call
  /// shutdown_requested on every processor, release every lease (other workers take them at
  /// once), stop. Safe from a signal-handling thread (not from a signal handler).
  void shutdown();
  /// Wait until the worker has stopped. false on timeout.
  bool wait(std::chrono::milliseconds timeout);
  bool stopped() const;

  WorkerMetrics metrics() const;
  const std::string& worker_id() const;

 private:
  class Impl;
  explicit Worker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardline
