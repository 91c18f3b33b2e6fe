// A scripted in-memory ConsumerKinesisApi for shard consumer tests: shards with records,
// real-looking iterators (GetShardIterator positions, NextShardIterator, null at the end of a
// closed shard with its ChildShards), and injectable failures of GetRecords and
// GetShardIterator. Completions run inline (before get_records returns) or on the fake's own
// thread. Every call is recorded so tests can assert what a consumer asked for.
//
//   FakeConsumerKinesis k;                          // or FakeConsumerKinesis(kThread)
//   k.add_shard("shardId-0");
//   auto seq = k.add_record("shardId-0", "data");
//   k.fail_get_records("shardId-0", FakeConsumerKinesis::expired_iterator());  // next call
//   k.close_shard("shardId-0", {ChildShard{"shardId-1", {"shardId-0"}, {}}});
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "shardline/aggregation.h"
#include "shardline/consumer.h"
#include "shardline/kinesis.h"

namespace shardline::testing {

class FakeConsumerKinesis final : public ConsumerKinesisApi {
 public:
  enum class Completion { kInline, kThread };

  struct IteratorRequest {
    std::string shard_id;
    ShardIteratorStart start;
  };

  explicit FakeConsumerKinesis(Completion mode = Completion::kInline) : mode_(mode) {
    if (mode_ == Completion::kThread) thread_ = std::thread([this] { loop(); });
  }
  ~FakeConsumerKinesis() override { stop(); }
  FakeConsumerKinesis(const FakeConsumerKinesis&) = delete;
  FakeConsumerKinesis& operator=(const FakeConsumerKinesis&) = delete;

  /// Stop the completion thread; completions not yet delivered are dropped (never called).
  void stop() {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lk(mu_);
      dropped.swap(pending_);
    }
  }

  // ---- the errors the real client returns ----------------------------------------------

  static Status expired_iterator() {
    Status s(StatusCode::kAborted, "Iterator expired", RetryClass::kRestart);
    s.set_aws("ExpiredIteratorException", 400, "fake-request-id");
    return s;
  }
  static Status throttled() {
    Status s(StatusCode::kResourceExhausted, "Rate exceeded for shard", RetryClass::kSameCall);
    s.set_aws("ProvisionedThroughputExceededException", 400, "fake-request-id");
    return s;
  }
  static Status not_found() {
    Status s(StatusCode::kNotFound, "Shard does not exist", RetryClass::kNone);
    s.set_aws("ResourceNotFoundException", 400, "fake-request-id");
    return s;
  }

  // ---- script ----------------------------------------------------------------------------

  void add_shard(const std::string& shard_id, HashKeyRange range = {},
                 std::vector<std::string> parents = {}) {
    std::lock_guard lk(mu_);
    FakeShard& s = shards_[shard_id];
    s.shard.shard_id = shard_id;
    s.shard.hash_key_range = range;
    if (!parents.empty()) s.shard.parent_shard_id = parents[0];
    if (parents.size() > 1) s.shard.adjacent_parent_shard_id = parents[1];
    s.ordinal = next_ordinal_++;
    s.shard.starting_sequence_number = make_sequence(s.ordinal, 0);
  }

  /// Append a record; returns its sequence number (56 digits, increasing).
  std::string add_record(const std::string& shard_id, std::string data,
                         std::string partition_key = "pk", std::int64_t arrival_ms = 0) {
    std::lock_guard lk(mu_);
    FakeShard& s = shard_locked(shard_id);
    StreamRecord r;
    r.sequence_number = make_sequence(s.ordinal, s.records.size() + 1);
    r.data = std::move(data);
    r.partition_key = std::move(partition_key);
    r.approximate_arrival_timestamp_ms =
        arrival_ms != 0 ? arrival_ms : 1700000000000 + static_cast<std::int64_t>(s.records.size());
    s.records.push_back(r);
    return r.sequence_number;
  }

  /// Append a record as the producer would put it (e.g. a KPL aggregate from AggregateBuilder).
  std::string add_kinesis_record(const std::string& shard_id, const KinesisRecord& record) {
    return add_record(shard_id, record.data, record.partition_key);
  }

  /// Close the shard: once a reader reaches its end, GetRecords returns no NextShardIterator
  /// and these children.
  void close_shard(const std::string& shard_id, std::vector<ChildShard> children) {
    std::lock_guard lk(mu_);
    FakeShard& s = shard_locked(shard_id);
    s.closed = true;
    s.children = std::move(children);
    s.shard.ending_sequence_number = make_sequence(s.ordinal, s.records.size() + 1000);
  }

  /// At most `n` records per GetRecords call (besides the caller's limit).
  void set_records_per_call(const std::string& shard_id, int n) {
    std::lock_guard lk(mu_);
    shard_locked(shard_id).per_call = n;
  }

  /// The `call`-th GetRecords call on the shard (1-based; 0 = the next one) fails with `s`.
  void fail_get_records(const std::string& shard_id, Status s, int call = 0) {
    std::lock_guard lk(mu_);
    FakeShard& sh = shard_locked(shard_id);
    sh.records_failures[call != 0 ? call : sh.get_records_calls + 1] = std::move(s);
  }
  /// The `call`-th GetShardIterator call on the shard (1-based; 0 = the next one) fails.
  void fail_get_shard_iterator(const std::string& shard_id, Status s, int call = 0) {
    std::lock_guard lk(mu_);
    FakeShard& sh = shard_locked(shard_id);
    sh.iterator_failures[call != 0 ? call : static_cast<int>(sh.iterator_requests.size()) + 1] =
        std::move(s);
  }

  // ---- observations ----------------------------------------------------------------------

  std::vector<IteratorRequest> iterator_requests(const std::string& shard_id) const {
    std::lock_guard lk(mu_);
    auto it = shards_.find(shard_id);
    return it == shards_.end() ? std::vector<IteratorRequest>{} : it->second.iterator_requests;
  }
  /// GetRecords calls made on the shard (failed ones included).
  int get_records_calls(const std::string& shard_id) const {
    std::lock_guard lk(mu_);
    auto it = shards_.find(shard_id);
    return it == shards_.end() ? 0 : it->second.get_records_calls;
  }
  /// The most GetRecords calls of one shard whose completion had not started yet, at once.
  int max_outstanding(const std::string& shard_id) const {
    std::lock_guard lk(mu_);
    auto it = shards_.find(shard_id);
    return it == shards_.end() ? 0 : it->second.max_outstanding;
  }
  /// GetRecords calls of the shard whose completion has not started yet.
  int outstanding(const std::string& shard_id) const {
    std::lock_guard lk(mu_);
    auto it = shards_.find(shard_id);
    return it == shards_.end() ? 0 : it->second.outstanding;
  }
  /// Calls with an iterator this fake never issued.
  int bad_iterators() const {
    std::lock_guard lk(mu_);
    return bad_iterators_;
  }
  std::vector<std::string> sequence_numbers(const std::string& shard_id) const {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    auto it = shards_.find(shard_id);
    if (it != shards_.end()) {
      for (const auto& r : it->second.records) out.push_back(r.sequence_number);
    }
    return out;
  }

  // ---- ConsumerKinesisApi ----------------------------------------------------------------

  Result<std::vector<Shard>> list_shards(const CancelToken*) override {
    std::lock_guard lk(mu_);
    std::vector<Shard> out;
    for (const auto& [id, s] : shards_) out.push_back(s.shard);
    return out;
  }

  Result<std::string> get_shard_iterator(const std::string& shard_id,
                                         const ShardIteratorStart& start,
                                         const CancelToken*) override {
    std::lock_guard lk(mu_);
    auto it = shards_.find(shard_id);
    if (it == shards_.end()) return not_found();
    FakeShard& s = it->second;
    s.iterator_requests.push_back({shard_id, start});
    if (auto f = s.iterator_failures.find(static_cast<int>(s.iterator_requests.size()));
        f != s.iterator_failures.end()) {
      return f->second;
    }
    std::size_t pos = 0;
    switch (start.type) {
      case ShardIteratorType::kTrimHorizon:
        pos = 0;
        break;
      case ShardIteratorType::kLatest:
        pos = s.records.size();
        break;
      case ShardIteratorType::kAtTimestamp:
        while (pos < s.records.size() &&
               s.records[pos].approximate_arrival_timestamp_ms < start.timestamp_ms) {
          ++pos;
        }
        break;
      case ShardIteratorType::kAtSequenceNumber:
      case ShardIteratorType::kAfterSequenceNumber: {
        if (validate_extended_sequence_number({start.sequence_number, 0}).ok() &&
            !ExtendedSequenceNumber{start.sequence_number, 0}.is_sentinel()) {
          const bool after = start.type == ShardIteratorType::kAfterSequenceNumber;
          while (pos < s.records.size()) {
            int c = compare({s.records[pos].sequence_number, 0}, {start.sequence_number, 0});
            if (after ? c > 0 : c >= 0) break;
            ++pos;
          }
        } else {
          return Status(StatusCode::kInvalidArgument, "bad StartingSequenceNumber");
        }
        break;
      }
    }
    return issue_locked(shard_id, pos);
  }

  void get_records(const std::string& shard_iterator, int limit,
                   std::function<void(Result<GetRecordsResult>)> done) override {
    Result<GetRecordsResult> result = Status::internal("unset");
    std::string shard_id;
    {
      std::lock_guard lk(mu_);
      auto it = iterators_.find(shard_iterator);
      if (it == iterators_.end()) {
        ++bad_iterators_;
        result = Status(StatusCode::kInvalidArgument, "unknown shard iterator " + shard_iterator);
      } else {
        shard_id = it->second.first;
        const std::size_t pos = it->second.second;
        FakeShard& s = shards_.at(shard_id);
        ++s.get_records_calls;
        ++s.outstanding;
        s.max_outstanding = std::max(s.max_outstanding, s.outstanding);
        if (auto f = s.records_failures.find(s.get_records_calls); f != s.records_failures.end()) {
          result = f->second;
        } else {
          std::size_t n = s.records.size() - std::min(pos, s.records.size());
          if (limit > 0) n = std::min<std::size_t>(n, static_cast<std::size_t>(limit));
          if (s.per_call > 0) n = std::min<std::size_t>(n, static_cast<std::size_t>(s.per_call));
          GetRecordsResult r;
          r.records.assign(s.records.begin() + static_cast<std::ptrdiff_t>(pos),
                           s.records.begin() + static_cast<std::ptrdiff_t>(pos + n));
          const std::size_t next = pos + n;
          r.millis_behind_latest = millis_behind(s, next);
          if (s.closed && next == s.records.size()) {
            r.child_shards = s.children;  // NextShardIterator absent: the shard is finished
          } else {
            r.next_shard_iterator = issue_locked(shard_id, next);
          }
          result = std::move(r);
        }
      }
    }
    auto complete = [this, shard_id, done = std::move(done), result = std::move(result)]() mutable {
      if (!shard_id.empty()) {
        std::lock_guard lk(mu_);
        --shards_.at(shard_id).outstanding;
      }
      done(std::move(result));
    };
    if (mode_ == Completion::kInline) {
      complete();
      return;
    }
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      pending_.push_back(std::move(complete));
    }
    cv_.notify_all();
  }

  /// What GetRecords reports as MillisBehindLatest when the reader's next position is `next`:
  /// 1000 ms per record not yet returned, plus 7 (so 0 never appears by accident).
  static std::int64_t millis_behind_for(std::size_t remaining) {
    return static_cast<std::int64_t>(remaining) * 1000 + 7;
  }

 private:
  struct FakeShard {
    Shard shard;
    std::size_t ordinal = 0;
    std::vector<StreamRecord> records;
    bool closed = false;
    std::vector<ChildShard> children;
    int per_call = 0;
    std::map<int, Status> records_failures;
    std::map<int, Status> iterator_failures;
    std::vector<IteratorRequest> iterator_requests;
    int get_records_calls = 0;
    int outstanding = 0;
    int max_outstanding = 0;
  };

  static std::string make_sequence(std::size_t ordinal, std::size_t index) {
    std::string a = std::to_string(ordinal);
    std::string b = std::to_string(index * 10);
    return "49" + std::string(6 - a.size(), '0') + a + std::string(48 - b.size(), '0') + b;
  }
  static std::int64_t millis_behind(const FakeShard& s, std::size_t next) {
    return millis_behind_for(s.records.size() - std::min(next, s.records.size()));
  }

  FakeShard& shard_locked(const std::string& shard_id) {
    auto it = shards_.find(shard_id);
    if (it == shards_.end()) throw std::logic_error("FakeConsumerKinesis: no shard " + shard_id);
    return it->second;
  }

  std::string issue_locked(const std::string& shard_id, std::size_t pos) {
    std::string token =
        "iter/" + shard_id + "/" + std::to_string(pos) + "/" + std::to_string(++next_iterator_);
    iterators_.emplace(token, std::make_pair(shard_id, pos));
    return token;
  }

  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
        if (stopping_) return;
        job = std::move(pending_.front());
        pending_.pop_front();
      }
      job();
    }
  }

  const Completion mode_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, FakeShard> shards_;
  std::map<std::string, std::pair<std::string, std::size_t>> iterators_;
  std::size_t next_ordinal_ = 0;
  std::uint64_t next_iterator_ = 0;
  int bad_iterators_ = 0;
  bool stopping_ = false;
  std::deque<std::function<void()>> pending_;
  std::thread thread_;
};

}  // namespace shardline::testing
