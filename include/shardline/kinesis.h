// File: shardline/kinesis.h
//
// A thin, typed Kinesis Data Streams client: one method per API call, JSON 1.1 over HTTPS,
// SigV4. Blocking methods retry throttling, 5xx and connection failures (AwsClientConfig::
// max_attempts); the *_async methods make exactly one attempt, for pipelines that keep their
// own retry and attempt history (the producer).
//
//   shardline::AwsClientConfig cfg;
//   cfg.endpoint_url = "http://127.0.0.1:4567";
//   auto client = shardline::KinesisClient::create(cfg);
//   if (!client.ok()) return client.status();
//   auto& k = **client;
//   SHARDLINE_RETURN_IF_ERROR(k.create_stream("events", 4));
//   SHARDLINE_RETURN_IF_ERROR(k.wait_for_stream_active("events", std::chrono::seconds(30)));
//   auto shards = k.list_shards("events");
//
// Streams are named by a StreamRef: a name, or an ARN (anything starting with "arn:").
// Errors: the Status carries the AWS error code, HTTP status and request id; codes follow the
// AWS error table (kNotFound for ResourceNotFoundException, kResourceExhausted for throttling,
// kAborted for ExpiredIteratorException, kInvalidArgument for validation errors,
// kPermissionDenied / kUnauthenticated for auth failures, kUnavailable for 5xx and transport).
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
#include "shardline/hash_key.h"
#include "shardline/result.h"

namespace shardline {

namespace detail {
class ServiceClient;
}

/// A stream by name or by ARN.
struct StreamRef {
  StreamRef(std::string name_or_arn);  // NOLINT(google-explicit-constructor)
  StreamRef(const char* name_or_arn) : StreamRef(std::string(name_or_arn)) {}       // NOLINT
  StreamRef(std::string_view name_or_arn) : StreamRef(std::string(name_or_arn)) {}  // NOLINT
  std::string name;  // set when given a name
  std::string arn;   // set when given an ARN
  /// The name or the ARN, for messages.
  const std::string& display() const noexcept { return arn.empty() ? name : arn; }
};

struct Shard {
  std::string shard_id;
  std::string parent_shard_id;           // "" if none
  std::string adjacent_parent_shard_id;  // "" if none (set by MergeShards)
  HashKeyRange hash_key_range;
  std::string starting_sequence_number;
  std::string ending_sequence_number;  // "" while the shard is open
  bool is_open() const noexcept { return ending_sequence_number.empty(); }
};

struct ChildShard {
  std::string shard_id;
  std::vector<std::string> parent_shards;
  HashKeyRange hash_key_range;
};

struct StreamSummary {
  std::string name;
  std::string arn;
  std::string status;       // CREATING, DELETING, ACTIVE, UPDATING
  std::string stream_mode;  // PROVISIONED, ON_DEMAND, or "" when the server does not say
  int open_shard_count = 0;
  int retention_period_hours = 0;
  std::string encryption_type;
  int consumer_count = 0;
  std::int64_t creation_timestamp_ms = 0;
};

struct StreamRecord {
  std::string sequence_number;
  std::int64_t approximate_arrival_timestamp_ms = 0;
  std::string data;  // decoded bytes
  std::string partition_key;
  std::string encryption_type;
};

struct GetRecordsResult {
  std::vector<StreamRecord> records;
  /// Absent when the shard is closed and fully read.
  std::optional<std::string> next_shard_iterator;
  std::int64_t millis_behind_latest = 0;
  /// Sent by AWS at the end of a closed shard (kinesalite never sends it).
  std::vector<ChildShard> child_shards;
};

struct PutRecordsEntry {
  std::string_view partition_key;
  std::string_view data;
  std::string_view explicit_hash_key;  // "" = none
};

struct PutRecordsResultEntry {
  std::string sequence_number;  // "" on failure
  std::string shard_id;
  std::string error_code;  // "" on success
  std::string error_message;
  bool ok() const noexcept { return error_code.empty() && !sequence_number.empty(); }
};

struct PutRecordsResult {
  int failed_record_count = 0;
  std::vector<PutRecordsResultEntry> records;
  std::string encryption_type;
};

enum class ShardIteratorType : std::uint8_t {
  kTrimHorizon,
  kLatest,
  kAtSequenceNumber,
  kAfterSequenceNumber,
  kAtTimestamp,
};

/// The API's name of the type: "TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", ...
std::string_view shard_iterator_type_name(ShardIteratorType type) noexcept;

struct ShardIteratorStart {
  ShardIteratorType type = ShardIteratorType::kTrimHorizon;
  std::string sequence_number;    // AT_/AFTER_SEQUENCE_NUMBER
  std::int64_t timestamp_ms = 0;  // AT_TIMESTAMP
};

struct ListShardsOptions {
  /// ShardFilter Type: "", AT_LATEST, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AFTER_SHARD_ID,
  /// AT_TIMESTAMP, FROM_TIMESTAMP. Some servers ignore it (kinesalite): callers must not rely on
  /// the filter having been applied.
  std::string filter_type;
  std::string filter_shard_id;
  std::int64_t filter_timestamp_ms = 0;
  std::string exclusive_start_shard_id;
  int max_results_per_page = 1000;
  /// Ends the call early with kCancelled (see CancelToken); null = not cancellable.
  const CancelToken* cancel = nullptr;
};

struct StreamConsumer {
  std::string name;
  std::string arn;
  std::string status;  // CREATING, DELETING, ACTIVE
  std::int64_t creation_timestamp_ms = 0;
};

/// One SubscribeToShardEvent of an enhanced fan-out subscription.
struct SubscribeToShardEvent {
  std::vector<StreamRecord> records;
  /// Where the next subscription starts (AFTER_SEQUENCE_NUMBER); "" when the shard is closed
  /// and fully read.
  std::string continuation_sequence_number;
  std::int64_t millis_behind_latest = 0;
  /// Sent by AWS with the shard's last event.
  std::vector<ChildShard> child_shards;
};

/// A running SubscribeToShard call.
class ShardSubscription {
 public:
  virtual ~ShardSubscription() = default;
  /// Ends the subscription soon (within about a second); its `done` gets kCancelled. Any
  /// thread; idempotent.
  virtual void cancel() = 0;
};

class KinesisClient {
 public:
  static Result<std::unique_ptr<KinesisClient>> create(const AwsClientConfig& config);
  ~KinesisClient();
  KinesisClient(const KinesisClient&) = delete;
  KinesisClient& operator=(const KinesisClient&) = delete;

  /// nullopt shard_count creates an ON_DEMAND stream.
  Status create_stream(std::string_view name, std::optional<int> shard_count);
  Status delete_stream(const StreamRef& stream, bool enforce_consumer_deletion = false);
  Result<StreamSummary> describe_stream_summary(const StreamRef& stream);
  /// Polls DescribeStreamSummary until ACTIVE. kDeadlineExceeded after `timeout`;
  /// kNotFound if the stream does not exist.
  Status wait_for_stream_active(const StreamRef& stream, std::chrono::milliseconds timeout);
  /// Every stream name (follows pagination).
  Result<std::vector<std::string>> list_streams();
  /// Every shard (follows NextToken).
  Result<std::vector<Shard>> list_shards(const StreamRef& stream,
                                         const ListShardsOptions& options = {});

  struct PutRecordResult {
    std::string shard_id;
    std::string sequence_number;
  };
  Result<PutRecordResult> put_record(const StreamRef& stream, std::string_view partition_key,
                                     std::string_view data,
                                     std::string_view explicit_hash_key = {});
  /// Up to 500 records. Per-record failures are in the result, not the Status.
  Result<PutRecordsResult> put_records(const StreamRef& stream,
                                       std::span<const PutRecordsEntry> records);
  /// One attempt; `done` runs on the HTTP event-loop thread (keep it short).
  void put_records_async(const StreamRef& stream, std::span<const PutRecordsEntry> records,
                         std::function<void(Result<PutRecordsResult>)> done);

  /// A non-zero `attempt_timeout` makes one attempt with that timeout (no retries). `cancel`
  /// ends the call early with kCancelled.
  Result<std::string> get_shard_iterator(const StreamRef& stream, std::string_view shard_id,
                                         const ShardIteratorStart& start,
                                         std::chrono::milliseconds attempt_timeout = {},
                                         const CancelToken* cancel = nullptr);
  /// `limit` 1..10000. With a stream ARN the request names it (required for cross-account).
  Result<GetRecordsResult> get_records(std::string_view shard_iterator, int limit = 10000,
                                       const StreamRef* stream = nullptr);
  void get_records_async(std::string_view shard_iterator, int limit,
                         std::function<void(Result<GetRecordsResult>)> done);

  Status split_shard(const StreamRef& stream, std::string_view shard_id,
                     const HashKey& new_starting_hash_key);
  Status merge_shards(const StreamRef& stream, std::string_view shard_id,
                      std::string_view adjacent_shard_id);
  Status update_shard_count(const StreamRef& stream, int target_shard_count);

  Result<StreamConsumer> register_stream_consumer(std::string_view stream_arn,
                                                  std::string_view consumer_name);
  /// By stream ARN + consumer name, or by consumer ARN (stream_arn empty).
  Result<StreamConsumer> describe_stream_consumer(std::string_view stream_arn,
                                                  std::string_view consumer_name,
                                                  std::string_view consumer_arn = {});
  Status deregister_stream_consumer(std::string_view stream_arn, std::string_view consumer_name,
                                    std::string_view consumer_arn = {});

  /// SubscribeToShard: pushes the shard's records to `on_event`, one call per event, in
  /// order, on the HTTP event-loop thread (keep it short; do not call back into this client
  /// from it). `done` runs once, after the last event, on the same thread: OK when the service
  /// ended the subscription (after 5 minutes, as AWS does), else why it ended: an exception
  /// sent in the stream or as the response (ResourceInUseException: another subscription on
  /// this consumer and shard is open; ResourceNotFound...), a transport failure, kDataLoss for
  /// a corrupt stream, kCancelled after cancel(). One attempt, never retried here: a retry
  /// must start after the last event seen. On AWS the client needs AwsClientConfig::http2.
  std::shared_ptr<ShardSubscription> subscribe_to_shard(
      std::string_view consumer_arn, std::string_view shard_id, const ShardIteratorStart& start,
      std::function<void(SubscribeToShardEvent&&)> on_event, std::function<void(Status)> done);

  /// The endpoint URL requests go to.
  std::string endpoint_url() const;

 private:
  explicit KinesisClient(std::shared_ptr<detail::ServiceClient> service);
  std::shared_ptr<detail::ServiceClient> service_;
};

/// Response parsers, exposed for tests and benchmarks.
namespace detail {
/// `readable`: bytes that may be read from json.data(); 64 or more beyond json.size() lets the
/// parser read the document in place instead of copying it (0: always copy).
/// The Data strings are decoded by the compaction (GetRecordsCompactor) and the DOM parser
/// reads only what is left (a few hundred bytes per record); anything unusual, and every error,
/// is left to parse_get_records_dom(), so results and errors are always the DOM parser's.
Result<GetRecordsResult> parse_get_records(std::string_view json, std::size_t readable = 0);
/// The reference parser (simdjson DOM over the whole body).
Result<GetRecordsResult> parse_get_records_dom(std::string_view json, std::size_t readable = 0);
/// parse_get_records()' first step on a whole body (GetRecordsCompactor below): `json` gets
/// the body with each "Data" string that is plain base64 replaced by its index in `data`,
/// which gets the decoded bytes (both stay empty when there is none: the body is then parsed
/// as it is). false when the body needs the DOM parser as it is (an unterminated string, a key
/// with an escape, a Data value that is not a string).
bool compact_get_records(std::string_view body, std::string& json, std::vector<std::string>& data);

/// The compaction, fed the body piece by piece as it arrives, so that no copy of the whole
/// body is made: the HTTP client feeds each received chunk while it is still in the cache
/// (parse_get_records() and compact_get_records() feed a whole body at once). After finish(),
/// compacted() says whether json() is the compacted document (with data() its decoded
/// strings); otherwise json() is the body itself, for the DOM parser. Data strings taken out
/// before a reason to fall back showed up are then written back as the canonical base64 of
/// their bytes, which decodes to the same bytes.
class GetRecordsCompactor {
 public:
  /// Forget everything: a new body begins. `expected`: its length, if known (0 = unknown).
  void reset(std::size_t expected = 0);
  void feed(std::string_view piece);
  void finish();
  bool compacted() const noexcept { return finished_ && !failed_ && !data_.empty(); }
  /// The body needs the DOM parser as it is (see compact_get_records()).
  bool failed() const noexcept { return failed_; }
  std::string& json() noexcept { return json_; }
  std::vector<std::string>& data() noexcept { return data_; }
  /// The body as it came (Data strings in canonical form); for an error the DOM path reports.
  std::string original() const;

 private:
  enum class State { kScan, kString, kAfterString, kAfterColon, kDataValue, kFailed };
  void fail();
  State state_ = State::kScan;
  bool finished_ = false, failed_ = false;
  // The string being read: its length, first bytes (for "Data"), whether it holds a
  // backslash, and whether the backslashes at its end so far are odd in number.
  std::size_t str_len_ = 0;
  char str_head_[4] = {};
  bool str_backslash_ = false, odd_backslashes_ = false;
  std::string value_;  // the Data string read so far (reused: stays in the cache)
  std::string json_;
  std::vector<std::size_t> index_at_;  // where each index was written in json_
  std::vector<std::string> data_;
};
/// parse_get_records() of a body fed to `compactor` (finished).
Result<GetRecordsResult> parse_get_records(GetRecordsCompactor& compactor);
/// The JSON payload of one SubscribeToShardEvent (the records as GetRecords has them).
Result<SubscribeToShardEvent> parse_subscribe_to_shard_event(std::string_view json);
Result<PutRecordsResult> parse_put_records(std::string_view json);
std::string build_put_records(const StreamRef& stream, std::span<const PutRecordsEntry> records);
}  // namespace detail

}  // namespace shardline
