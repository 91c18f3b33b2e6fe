// File: shardline/producer.h
//
// A KPL-equivalent producer that never loses a record silently. Every record put() accepts
// ends in exactly one outcome delivered to the caller: stored (shard id and sequence number)
// or failed, with the full attempt history. Records are aggregated per predicted shard in the
// KPL format, rate-limited per shard, batched into PutRecords and retried with capped
// exponential backoff; RecordTtl is enforced at every stage.
//
//   shardline::ProducerConfig cfg;                                  // KPL defaults
//   auto p = shardline::Producer::create(cfg, {.aws = aws_config});
//   if (!p.ok()) return p.status();
//   Status s = (*p)->put("events", "user-1", payload,
//       [](shardline::PutResult&& r) {                               // callback thread
//         if (!r.success) log(r.attempts.back().error_code);
//       });
//   (*p)->close(std::chrono::seconds(30));                          // drains, resolves all
//
// Threads: put()/try_put() run on the caller's thread (thread-safe, O(1): validate,
// enqueue). One pipeline thread owns aggregation, rate limiting, batching and retries; one HTTP
// event-loop thread runs the requests; completion callbacks and futures complete on one
// dedicated callback thread, in completion order. A callback that throws is caught and logged.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
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
#include "shardline/result.h"

namespace shardline {

/// One attempt to deliver a user record, as the KPL reports it.
struct Attempt {
  /// From the record's arrival (first attempt) or the previous attempt's end to this one's start.
  std::chrono::milliseconds delay{0};
  /// The PutRecords call's duration; 0 for attempts that did not reach Kinesis (expiry, ...).
  std::chrono::milliseconds duration{0};
  bool success = false;
  /// The AWS error code ("ProvisionedThroughputExceededException", "AccessDeniedException"),
  /// or shardline's: "UserRecordExpired", "WrongShard", "RecordCountMismatch", "Cancelled",
  /// a transport failure ("Unavailable", "DeadlineExceeded"). Empty on success.
  std::string error_code;
  std::string error_message;
};

/// The outcome of one user record.
struct PutResult {
  bool success = false;
  std::string shard_id;         // where it was stored (success)
  std::string sequence_number;  // of the Kinesis record holding it (shared within an aggregate)
  std::vector<Attempt> attempts;
  /// OK, or the final attempt's failure as a Status (kDeadlineExceeded for an expired record).
  Status status() const;
};

/// Runs on the producer's callback thread, exactly once per accepted record.
using PutCallback = std::function<void(PutResult&&)>;

/// The interface the producer needs from Kinesis. The default wraps a KinesisClient; unit
/// tests substitute a fake.
class KinesisApi {
 public:
  virtual ~KinesisApi() = default;
  /// One attempt. `done` may run on any thread, exactly once.
  virtual void put_records_async(const StreamRef& stream, std::span<const PutRecordsEntry> records,
                                 std::function<void(Result<PutRecordsResult>)> done) = 0;
  /// Every shard of the stream (blocking; called from the producer's shard-map thread).
  virtual Result<std::vector<Shard>> list_shards(const StreamRef& stream) = 0;
};

/// A statistic over an interval: count, sum, min, max.
struct MetricStat {
  std::uint64_t count = 0;
  double sum = 0, min = 0, max = 0;
  void add(double v) {
    if (count == 0 || v < min) min = v;
    if (count == 0 || v > max) max = v;
    ++count;
    sum += v;
  }
  double mean() const { return count ? sum / static_cast<double>(count) : 0; }
};

/// A snapshot of the producer's metrics since create(), with the KPL's names.
struct ProducerMetrics {
  std::uint64_t user_records_received = 0;              // UserRecordsReceived
  std::uint64_t user_records_pending = 0;               // UserRecordsPending (now)
  std::uint64_t user_records_put = 0;                   // UserRecordsPut (successes)
  std::uint64_t user_records_failed = 0;                // failures of every kind
  std::uint64_t user_records_data_put = 0;              // UserRecordsDataPut (bytes)
  std::uint64_t user_record_expired = 0;                // UserRecordExpired
  std::uint64_t kinesis_records_put = 0;                // KinesisRecordsPut
  std::uint64_t kinesis_records_data_put = 0;           // KinesisRecordsDataPut (bytes)
  std::uint64_t put_records_requests = 0;               // PutRecords calls made
  std::uint64_t all_errors = 0;                         // AllErrors
  std::uint64_t retries = 0;                            // attempts beyond the first, summed
  std::map<std::string, std::uint64_t> errors_by_code;  // ErrorsByCode
  MetricStat retries_per_record;                        // RetriesPerRecord
  MetricStat buffering_time_ms;                         // BufferingTime
  MetricStat request_time_ms;                           // RequestTime
  MetricStat user_records_per_kinesis_record;           // UserRecordsPerKinesisRecord
  MetricStat kinesis_records_per_put_records_request;   // KinesisRecordsPerPutRecordsRequest
  MetricStat user_records_per_put_records_request;      // UserRecordsPerPutRecordsRequest

  /// Prometheus text exposition (names prefixed `shardline_producer_`).
  std::string to_prometheus() const;
  /// One CloudWatch embedded-metric-format JSON line (namespace from MetricsNamespace).
  std::string to_emf(std::string_view metrics_namespace, std::int64_t timestamp_ms) const;
};

struct ProducerOptions {
  /// Region, endpoint, credentials, TLS. KinesisEndpoint/KinesisPort, Region,
  /// VerifyCertificate, CaCert*, Proxy*, ConnectTimeout, RequestTimeout and MaxConnections
  /// from the ProducerConfig override it when set.
  AwsClientConfig aws;
  /// Testing seam: a fake Kinesis. Null = a KinesisClient from `aws`.
  std::shared_ptr<KinesisApi> api;
  /// Testing seam: a fake clock. Null = the steady clock.
  std::shared_ptr<Clock> clock;
  /// Testing seam: no pipeline or callback thread; the test calls Producer::pump() to run
  /// everything that is due, and callbacks run inside pump().
  bool manual_pump = false;
  LogSink log;
};

class Producer {
 public:
  /// Validates the settings and starts the threads.
  /// @returns kInvalidArgument for inconsistent settings (e.g. RecordTtl not above
  ///          RecordMaxBufferedTime), or the AWS client's configuration error.
  static Result<std::unique_ptr<Producer>> create(const ProducerConfig& config,
                                                  ProducerOptions options = {});
  /// close() with the RecordTtl as timeout, if not closed yet.
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  /// Accept a record. Blocks up to PutBlockTimeout while MaxOutstandingRecords or
  /// MaxOutstandingBytes is reached. On OK, `done` runs exactly once later.
  /// @returns kInvalidArgument (bad partition key, explicit hash key, or a record over
  ///          MaxUserRecordSize / the stream's MaxRecordSize), kResourceExhausted (still no
  ///          room after PutBlockTimeout), kFailedPrecondition (closed), or a sticky fatal
  ///          status. On an error `done` is never called.
  Status put(std::string_view stream, std::string_view partition_key, std::string_view data,
             PutCallback done, std::optional<std::string_view> explicit_hash_key = std::nullopt);
  /// As put(), but never blocks: kResourceExhausted at once when full.
  Status try_put(std::string_view stream, std::string_view partition_key, std::string_view data,
                 PutCallback done,
                 std::optional<std::string_view> explicit_hash_key = std::nullopt);
  /// As put(), returning a future (completed on the callback thread).
  Result<std::future<PutResult>> put(
      std::string_view stream, std::string_view partition_key, std::string_view data,
      std::optional<std::string_view> explicit_hash_key = std::nullopt);

  /// Send everything buffered now, without waiting for RecordMaxBufferedTime. Non-blocking.
  void flush();
  /// flush(), then wait until every accepted record is resolved.
  /// @returns OK, or kDeadlineExceeded with the number still outstanding.
  Status flush_sync(std::chrono::milliseconds timeout);
  /// Stop accepting, drain for up to `timeout`, then fail whatever is left with "Cancelled";
  /// returns after every accepted record's callback has run. Idempotent.
  /// @returns OK if everything was resolved by the service, kDeadlineExceeded if some records
  ///          had to be cancelled.
  Status close(std::chrono::milliseconds timeout);

  /// Accepted records not yet resolved.
  std::size_t outstanding() const noexcept;
  ProducerMetrics metrics() const;

  /// Testing seam (manual_pump): process everything due now, deliver callbacks.
  /// @returns the number of events handled.
  std::size_t pump();

 private:
  class Impl;
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The KinesisApi of a KinesisClient.
std::shared_ptr<KinesisApi> make_kinesis_api(std::shared_ptr<KinesisClient> client);

}  // namespace shardline
