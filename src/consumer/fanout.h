// Internal: enhanced fan-out (retrievalMode=FANOUT) behind the worker's read interface.
//
// The shard consumer reads a shard as a chain of "iterator" → GetRecords-like result → next
// iterator. FanOutKinesisApi keeps that shape, so checkpoints, retries, shard ends and child
// leases work exactly as with polling: its iterators are positions ("after sequence number N
// of shard S"), made without any call, and a read takes the next SubscribeToShard event of
// the shard's subscription, which is started, resumed and ended here:
//   - a read at a position other than where the buffered events continue (a new lease, a
//     retried batch) cancels the subscription and subscribes again from that position;
//   - events are buffered up to `max_buffered_events` (the KCL's 11); a full buffer cancels the
//     subscription, and the next read that empties the buffer resumes it after the last
//     buffered event, so a slow processor holds no connection and loses nothing;
//   - when the service ends the subscription (every 5 minutes) it is resumed from the last
//     event's continuation; when it fails, the read gets the error (the shard consumer backs
//     off) and the next read subscribes again;
//   - a read that waits `max_wait` without an event returns an empty result at the same
//     position, so a reader is never held for long (shutdown, empty-batch processing);
//   - an event without a continuation is the shard's end (next iterator absent, child shards);
//   - ResourceNotFound (the consumer was deregistered, or the shard is gone) is not taken for
//     the shard's end: the read fails with kInvalidArgument, so the reader asks for a new
//     position, and the consumer is found (or registered) again.
// Thread safety: all methods from any thread. Events arrive on the HTTP thread; reads are
// completed there, on the caller's thread, or on the internal timer thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "shardline/consumer.h"
#include "shardline/kinesis.h"

namespace shardline::detail {

/// How the worker finds its stream consumer (the KCL's FanOutConfig): the stream's ARN
/// (DescribeStreamSummary unless the stream is given by ARN), then DescribeStreamConsumer;
/// RegisterStreamConsumer when it does not exist; then DescribeStreamConsumer until ACTIVE.
struct ConsumerRegistration {
  StreamRef stream{std::string()};
  std::string consumer_name;
  int describe_stream_attempts = 10;
  int describe_consumer_attempts = 10;
  int register_attempts = 10;
  std::chrono::milliseconds backoff{1000};
  LogSink log;
};

/// The ACTIVE consumer's ARN, or why there is none. Blocking; `cancel` ends the waits.
Result<std::string> find_or_register_consumer(KinesisClient& client,
                                              const ConsumerRegistration& reg,
                                              const CancelToken* cancel);

struct FanOutOptions {
  /// The registered consumer's ARN, found (or registered) by `resolve_consumer` on first use
  /// when empty. Called on a pool thread (blocking allowed), with the worker's cancel token.
  std::string consumer_arn;
  std::function<Result<std::string>(const CancelToken*)> resolve_consumer;
  /// Starts SubscribeToShard (KinesisClient::subscribe_to_shard, or a fake).
  std::function<std::shared_ptr<ShardSubscription>(
      const std::string& consumer_arn, const std::string& shard_id, const ShardIteratorStart&,
      std::function<void(SubscribeToShardEvent&&)>, std::function<void(Status)>)>
      subscribe;
  std::size_t max_buffered_events = 11;
  std::chrono::milliseconds max_wait{1000};
  LogSink log;
};

class FanOutKinesisApi final : public ConsumerKinesisApi {
 public:
  /// `shards` answers list_shards (a polling API on the same stream).
  FanOutKinesisApi(std::shared_ptr<ConsumerKinesisApi> shards, FanOutOptions options);
  ~FanOutKinesisApi() override;

  Result<std::vector<Shard>> list_shards(const CancelToken* cancel) override;
  Result<std::string> get_shard_iterator(const std::string& shard_id,
                                         const ShardIteratorStart& start,
                                         const CancelToken* cancel) override;
  void get_records(const std::string& shard_iterator, int limit,
                   std::function<void(Result<GetRecordsResult>)> done) override;

  /// A position as an iterator string, and back.
  static std::string position(const std::string& shard_id, const ShardIteratorStart& start);
  static bool parse_position(const std::string& it, std::string& shard_id,
                             ShardIteratorStart& start);

 private:
  using Done = std::function<void(Result<GetRecordsResult>)>;
  struct Event {
    SubscribeToShardEvent event;
    std::string next;  // the position after it; "" at the shard's end
  };
  struct ShardState {
    std::shared_ptr<ShardSubscription> sub;
    std::uint64_t generation = 0;  // of `sub`: events and ends of older ones are dropped
    bool cancelled_when_full = false;
    std::string expected;  // where the buffered events continue (the last read's next)
    std::string tail;      // the position after the last buffered event
    std::deque<Event> buffered;
    std::optional<Status> ended;  // how `sub` ended, once the buffer is read
    Done waiting;                 // a read with nothing to give yet
    std::string waiting_at;
    std::chrono::steady_clock::time_point waiting_since{};
    std::int64_t millis_behind = 0;
  };
  // A completion to run once the lock is released.
  struct Completion {
    Done done;
    Result<GetRecordsResult> result;
  };

  // A subscription to start once the lock is released (subscribe() may end it at once).
  struct Start {
    std::string shard_id;
    std::string from;
    std::uint64_t generation = 0;
  };
  Start subscribe_locked(const std::string& shard_id, ShardState& st, const std::string& from);
  void start(std::optional<Start> s);
  // The shard's state if `generation` is still its subscription (and not closing), else null.
  ShardState* current_locked(const std::string& shard_id, std::uint64_t generation);
  void on_event(const std::string& shard_id, std::uint64_t generation, SubscribeToShardEvent&& e);
  void on_end(const std::string& shard_id, std::uint64_t generation, Status s);
  // Serves st.waiting if it can; the completion to run, if any.
  std::optional<Completion> serve_locked(ShardState& st);
  Result<GetRecordsResult> take_locked(ShardState& st);
  void timer_loop();
  void log(LogLevel level, const std::string& message) const;

  // Shared with the subscription callbacks, which may run after this object is gone.
  // Recursive: a read completed inside a callback may start a subscription that ends at once.
  struct Guard {
    std::recursive_mutex mu;
    FanOutKinesisApi* self = nullptr;
  };
  std::shared_ptr<Guard> guard_;
  std::shared_ptr<ConsumerKinesisApi> shards_api_;
  FanOutOptions options_;
  std::mutex resolve_mu_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string consumer_arn_;
  std::map<std::string, ShardState> shards_;
  std::uint64_t next_generation_ = 1;
  std::thread timer_;
};

/// The worker's fan-out reader: list_shards from `shards`, the consumer `consumer_arn` or,
/// when empty, the one `reg` finds or registers through `control`, and subscriptions on a
/// client of their own made from `aws`: HTTP/2 (AWS requires it for SubscribeToShard; ALPN
/// falls back to HTTP/1.1), no cap on connections (one per subscription), and HTTP/1.1 toward
/// a plain http:// endpoint, a local server (kinesis-mock holds an HTTP/2 subscription for its
/// full 5 minutes after the client has gone, so a restarted worker could not subscribe again).
Result<std::shared_ptr<ConsumerKinesisApi>> make_fanout_kinesis_api(
    std::shared_ptr<KinesisClient> control, std::shared_ptr<ConsumerKinesisApi> shards,
    const AwsClientConfig& aws, std::string consumer_arn, ConsumerRegistration reg);

}  // namespace shardline::detail
