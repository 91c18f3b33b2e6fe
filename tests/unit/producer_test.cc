// The producer pipeline, deterministic: a fake clock, a fake Kinesis whose calls the test
// completes, and the manual pump (no threads).
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "producer/token_bucket.h"
#include "shardline/aggregation.h"
#include "shardline/producer.h"
#include "support/fake_clock.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using shardline::testing::FakeClock;

struct Call {
  std::string stream;
  std::vector<KinesisRecord> records;  // copies of what was sent
  std::function<void(Result<PutRecordsResult>)> done;
};

class FakeKinesis final : public KinesisApi {
 public:
  void put_records_async(const StreamRef& stream, std::span<const PutRecordsEntry> records,
                         std::function<void(Result<PutRecordsResult>)> done) override {
    Call c;
    c.stream = stream.display();
    for (const auto& r : records)
      c.records.push_back(
          {std::string(r.partition_key), std::string(r.explicit_hash_key), std::string(r.data)});
    c.done = std::move(done);
    calls.push_back(std::move(c));
  }
  Result<std::vector<Shard>> list_shards(const StreamRef&) override {
    ++list_calls;
    if (!list_error.ok()) return list_error;
    return shards;
  }
  // The shard a Kinesis record routes to.
  std::string route(const KinesisRecord& r) const {
    const HashKey h = *HashKey::parse_decimal(r.explicit_hash_key);
    for (const Shard& s : shards)
      if (s.hash_key_range.contains(h)) return s.shard_id;
    return "none";
  }
  // Complete the oldest call with every entry stored where its hash key routes.
  void succeed_next() {
    Call c = pop();
    PutRecordsResult r;
    for (const auto& k : c.records) r.records.push_back({std::to_string(++seq), route(k), "", ""});
    c.done(r);
  }
  Call pop() {
    Call c = std::move(calls.front());
    calls.pop_front();
    return c;
  }
  std::deque<Call> calls;
  std::vector<Shard> shards;
  Status list_error;
  int list_calls = 0;
  int seq = 1000;
};

std::vector<Shard> even_shards(int n) {
  std::vector<Shard> v;
  for (int i = 0; i < n; ++i) {
    Shard s;
    s.shard_id = "shardId-00000000000" + std::to_string(i);
    s.hash_key_range =
        even_split_range(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(n));
    s.starting_sequence_number = "1";
    v.push_back(s);
  }
  return v;
}

class ProducerTest : public ::testing::Test {
 protected:
  void make(int shards = 2) {
    fake_ = std::make_shared<FakeKinesis>();
    fake_->shards = even_shards(shards);
    clock_ = std::make_shared<FakeClock>();
    ProducerOptions o;
    o.api = fake_;
    o.clock = clock_;
    o.manual_pump = true;
    o.log = [this](LogLevel, std::string_view m) { logs_.emplace_back(m); };
    auto p = Producer::create(cfg_, o);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    p_ = std::move(*p);
  }
  void TearDown() override {
    if (p_) (void)p_->close(0ms);
  }
  // put() that records the outcome under `key`.
  void put(const std::string& pk, const std::string& data = "d",
           std::optional<std::string> ehk = std::nullopt) {
    const Status s = p_->put(
        "s", pk, data,
        [this, pk](PutResult&& r) {
          ++callbacks_[pk];
          results_[pk] = std::move(r);
        },
        ehk ? std::optional<std::string_view>(*ehk) : std::nullopt);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
  void step(Clock::duration d) {
    clock_->advance(d);
    p_->pump();
  }

  ProducerConfig cfg_;
  std::shared_ptr<FakeKinesis> fake_;
  std::shared_ptr<FakeClock> clock_;
  std::unique_ptr<Producer> p_;
  std::map<std::string, PutResult> results_;
  std::map<std::string, int> callbacks_;
  std::vector<std::string> logs_;
};

// Records are reused once their callback has run: nothing of a record's earlier life (its
// explicit hash key, data, attempts, callback) may show in the next one.
TEST_F(ProducerTest, ReusedRecordsCarryNothingFromTheirPreviousUse) {
  make(1);
  const std::string ehk = "170141183460469231731687303715884105727";
  for (int i = 0; i < 20; ++i)
    put("first-" + std::to_string(i), std::string(2000, 'x'), ehk);  // large data, with EHK
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  fake_->succeed_next();
  p_->pump();
  ASSERT_EQ(callbacks_.size(), 20u);
  // The second generation reuses those records: short data, no EHK, a failure then a success.
  for (int i = 0; i < 20; ++i) put("second-" + std::to_string(i), "v" + std::to_string(i));
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  const Call sent = fake_->calls.front();
  ASSERT_EQ(sent.records.size(), 1u);
  Deaggregator d;
  std::vector<UserRecordView> views;
  ASSERT_EQ(d.decode({sent.records[0].data, "a", std::nullopt}, views).kind, BlobKind::kAggregated);
  ASSERT_EQ(views.size(), 20u);
  for (std::size_t i = 0; i < views.size(); ++i) {
    EXPECT_FALSE(views[i].explicit_hash_key.has_value()) << "a stale explicit hash key";
    EXPECT_EQ(views[i].partition_key, "second-" + std::to_string(i));
    EXPECT_EQ(views[i].data, "v" + std::to_string(i));
  }
  Call c = fake_->pop();
  c.done(Status::unavailable("connection reset"));
  for (int i = 0; i < 100 && fake_->calls.empty(); ++i) step(100ms);  // backoff, then retried
  ASSERT_FALSE(fake_->calls.empty());
  fake_->succeed_next();
  p_->pump();
  ASSERT_EQ(callbacks_.size(), 40u);
  for (int i = 0; i < 20; ++i) {
    const std::string pk = "second-" + std::to_string(i);
    EXPECT_EQ(callbacks_[pk], 1) << pk;
    const PutResult& r = results_[pk];
    EXPECT_TRUE(r.success) << pk;
    ASSERT_EQ(r.attempts.size(), 2u) << "this record's own two attempts, none of the last use's";
    EXPECT_EQ(r.attempts[0].error_code, "Unavailable");
    EXPECT_TRUE(r.attempts[1].success);
    EXPECT_EQ(r.shard_id, "shardId-000000000000");
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(callbacks_["first-" + std::to_string(i)], 1);
}

TEST_F(ProducerTest, AggregatesPerPredictedShardAndReportsSuccess) {
  make(2);
  for (int i = 0; i < 40; ++i) put("key-" + std::to_string(i), "data-" + std::to_string(i));
  p_->pump();
  EXPECT_TRUE(fake_->calls.empty()) << "nothing is sent before RecordMaxBufferedTime";
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  const Call& c = fake_->calls.front();
  ASSERT_EQ(c.records.size(), 2u) << "one aggregate per shard";
  std::size_t users = 0;
  for (const KinesisRecord& k : c.records) {
    EXPECT_EQ(k.partition_key, "a");
    Deaggregator d;
    std::vector<UserRecordView> out;
    ASSERT_EQ(d.decode({k.data, k.partition_key, std::nullopt}, out).kind, BlobKind::kAggregated);
    const std::string shard = fake_->route(k);
    for (const auto& u : out) {
      ++users;
      // Every user record routes to the shard the aggregate routes to.
      const HashKey h = HashKey::from_partition_key(u.partition_key);
      bool same = false;
      for (const Shard& s : fake_->shards)
        if (s.shard_id == shard) same = s.hash_key_range.contains(h);
      EXPECT_TRUE(same) << u.partition_key;
    }
  }
  EXPECT_EQ(users, 40u);
  fake_->succeed_next();
  p_->pump();
  ASSERT_EQ(results_.size(), 40u);
  for (const auto& [pk, r] : results_) {
    EXPECT_TRUE(r.success) << pk;
    EXPECT_EQ(callbacks_[pk], 1);
    EXPECT_FALSE(r.sequence_number.empty());
    ASSERT_EQ(r.attempts.size(), 1u);
    EXPECT_TRUE(r.attempts[0].success);
    EXPECT_EQ(r.attempts[0].delay, 120ms) << "RecordMaxBufferedTime plus the collector grace";
  }
  EXPECT_EQ(p_->outstanding(), 0u);
  const ProducerMetrics m = p_->metrics();
  EXPECT_EQ(m.user_records_put, 40u);
  EXPECT_EQ(m.kinesis_records_put, 2u);
  EXPECT_EQ(m.put_records_requests, 1u);
  EXPECT_DOUBLE_EQ(m.user_records_per_kinesis_record.mean(), 20.0);
}

TEST_F(ProducerTest, NonRetryableErrorsFailAtOnceWithTheServiceCode) {
  make();
  put("a1");
  put("a2");
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  Status denied(StatusCode::kPermissionDenied, "User is not authorized", RetryClass::kNone);
  denied.set_aws("AccessDeniedException", 400, "rid");
  fake_->pop().done(denied);
  step(1s);
  EXPECT_TRUE(fake_->calls.empty()) << "AccessDenied is not retried";
  ASSERT_EQ(results_.size(), 2u);
  for (const auto& [pk, r] : results_) {
    EXPECT_FALSE(r.success);
    ASSERT_EQ(r.attempts.size(), 1u);
    EXPECT_EQ(r.attempts[0].error_code, "AccessDeniedException");
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(p_->metrics().errors_by_code.at("AccessDeniedException"), 2u);
}

TEST_F(ProducerTest, ThrottledEntriesRetryAfterBackoffAndOthersSucceed) {
  make(1);
  cfg_.aggregation_enabled = false;
  make(1);
  put("x1");
  put("x2");
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  Call c = fake_->pop();
  ASSERT_EQ(c.records.size(), 2u);
  PutRecordsResult r;
  r.failed_record_count = 1;
  r.records.push_back({"", "", "ProvisionedThroughputExceededException", "Rate exceeded"});
  r.records.push_back({"77", "shardId-000000000000", "", ""});
  c.done(r);
  p_->pump();
  const std::string failed_pk = c.records[0].partition_key, ok_pk = c.records[1].partition_key;
  EXPECT_TRUE(results_[ok_pk].success);
  EXPECT_EQ(results_.count(failed_pk), 0u) << "the throttled record is retried, not reported";
  // Retries wait for the shard's backoff (at most 100 ms for the first), then go out again.
  for (int i = 0; i < 20 && fake_->calls.empty(); ++i) step(10ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  fake_->succeed_next();
  p_->pump();
  const PutResult& f = results_[failed_pk];
  EXPECT_TRUE(f.success);
  ASSERT_EQ(f.attempts.size(), 2u);
  EXPECT_EQ(f.attempts[0].error_code, "ProvisionedThroughputExceededException");
  EXPECT_FALSE(f.attempts[0].success);
  EXPECT_TRUE(f.attempts[1].success);
  EXPECT_EQ(p_->metrics().retries, 1u);
}

TEST_F(ProducerTest, RetryableFailuresEndInUserRecordExpired) {
  cfg_.record_ttl = 1000;
  make();
  for (int i = 0; i < 10; ++i) put("k" + std::to_string(i));
  for (int t = 0; t < 300 && results_.size() < 10; ++t) {
    clock_->advance(10ms);
    p_->pump();
    while (!fake_->calls.empty()) {
      fake_->pop().done(Status(StatusCode::kUnavailable, "HTTP 500", RetryClass::kSameCall));
      p_->pump();
    }
  }
  ASSERT_EQ(results_.size(), 10u);
  for (const auto& [pk, r] : results_) {
    EXPECT_FALSE(r.success);
    EXPECT_EQ(callbacks_[pk], 1);
    ASSERT_GE(r.attempts.size(), 2u);
    EXPECT_EQ(r.attempts.back().error_code, "UserRecordExpired");
    EXPECT_EQ(r.attempts.front().error_code, "Unavailable");
    EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  }
  EXPECT_EQ(p_->metrics().user_record_expired, 10u);
  EXPECT_EQ(p_->outstanding(), 0u);
}

TEST_F(ProducerTest, AnInFlightRecordIsResolvedByItsRequestThenExpires) {
  cfg_.record_max_buffered_time = 5000;
  cfg_.record_ttl = 6000;
  make();
  put("slow");
  step(5000ms);
  EXPECT_TRUE(fake_->calls.empty());
  // Sent at its buffering deadline plus the collector grace; never answered.
  step(50ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  step(2000ms);
  EXPECT_EQ(results_.count("slow"), 0u) << "in flight: resolved by the request's outcome";
  fake_->pop().done(Status(StatusCode::kDeadlineExceeded, "timeout", RetryClass::kSameCall));
  p_->pump();
  ASSERT_EQ(results_.count("slow"), 1u);
  EXPECT_EQ(results_["slow"].attempts.back().error_code, "UserRecordExpired");
}

TEST_F(ProducerTest, WrongShardLandingRetriesTheWholeAggregate) {
  make(2);
  for (int i = 0; i < 10; ++i) put("w" + std::to_string(i));
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  Call c = fake_->pop();
  // The stream was resharded: everything landed on a shard we did not predict.
  PutRecordsResult r;
  for (std::size_t i = 0; i < c.records.size(); ++i)
    r.records.push_back({"5", "shardId-000000000009", "", ""});
  const int lists_before = fake_->list_calls;
  fake_->shards = even_shards(2);
  c.done(r);
  p_->pump();
  EXPECT_TRUE(results_.empty()) << "no user record of a misplaced aggregate is reported done";
  for (int i = 0; i < 100 && results_.size() < 10; ++i) {
    step(10ms);
    while (!fake_->calls.empty()) {
      fake_->succeed_next();
      p_->pump();
    }
  }
  step(200ms);  // past the refresh rate limit (100 ms after the last map)
  EXPECT_GT(fake_->list_calls, lists_before) << "the shard map is refreshed";
  ASSERT_EQ(results_.size(), 10u);
  for (const auto& [pk, res] : results_) {
    EXPECT_TRUE(res.success);
    ASSERT_EQ(res.attempts.size(), 2u);
    EXPECT_EQ(res.attempts[0].error_code, "WrongShard");
  }
}

TEST_F(ProducerTest, CountMismatchFailsTheRecords) {
  make(1);
  put("m1");
  step(120ms);
  Call c = fake_->pop();
  c.done(PutRecordsResult{});  // zero entries for one record
  p_->pump();
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_["m1"].attempts.back().error_code, "RecordCountMismatch");
}

TEST_F(ProducerTest, RejectsBadInputWithoutACallback) {
  make();
  auto cb = [this](PutResult&&) { ++callbacks_["bad"]; };
  EXPECT_EQ(p_->put("s", "", "d", cb).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p_->put("s", "k", "d", cb, "0x10").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p_->put("s", "k", "d", cb, "340282366920938463463374607431768211456").code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(p_->put("s", std::string(257, 'k'), "d", cb).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p_->put("s", "k", std::string(1048577, 'd'), cb).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p_->put("", "k", "d", cb).code(), StatusCode::kInvalidArgument);
  p_->pump();
  EXPECT_EQ(callbacks_.count("bad"), 0u);
  EXPECT_EQ(p_->outstanding(), 0u);
}

TEST_F(ProducerTest, BackPressureRefusesThenAdmits) {
  cfg_.max_outstanding_records = 3;
  make(1);
  for (int i = 0; i < 3; ++i) put("b" + std::to_string(i));
  const Status full = p_->try_put("s", "b3", "d", [](PutResult&&) {});
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  step(120ms);
  fake_->succeed_next();
  p_->pump();
  EXPECT_EQ(p_->outstanding(), 0u);
  EXPECT_TRUE(p_->try_put("s", "b3", "d", [](PutResult&&) {}).ok());
}

TEST_F(ProducerTest, CloseResolvesEverythingOutstanding) {
  make();
  for (int i = 0; i < 5; ++i) put("c" + std::to_string(i));
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);  // in flight, never answered
  put("late");                         // still buffered
  const Status s = p_->close(0ms);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  ASSERT_EQ(results_.size(), 6u);
  for (const auto& [pk, r] : results_) {
    EXPECT_FALSE(r.success);
    EXPECT_EQ(r.attempts.back().error_code, "Cancelled") << pk;
    EXPECT_EQ(callbacks_[pk], 1);
  }
  EXPECT_EQ(p_->outstanding(), 0u);
  EXPECT_EQ(p_->put("s", "k", "d", [](PutResult&&) {}).code(), StatusCode::kFailedPrecondition);
  // The request that was in flight answers after close: nothing is reported twice.
  fake_->succeed_next();
  p_->pump();
  EXPECT_EQ(callbacks_["c0"], 1);
}

TEST_F(ProducerTest, AThrowingCallbackDoesNotStopOthers) {
  make(1);
  ASSERT_TRUE(p_->put("s", "t1", "d", [](PutResult&&) { throw std::runtime_error("boom"); }).ok());
  put("t2");
  step(120ms);
  fake_->succeed_next();
  p_->pump();
  EXPECT_TRUE(results_["t2"].success);
  bool logged = false;
  for (const auto& l : logs_) logged |= l.find("boom") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(ProducerTest, WithoutAShardMapRecordsGoUnaggregated) {
  make(2);
  fake_->list_error = Status::unavailable("ListShards down");
  fake_ = nullptr;
  cfg_ = ProducerConfig{};
  auto api = std::make_shared<FakeKinesis>();
  api->list_error = Status::unavailable("ListShards down");
  api->shards = even_shards(2);
  fake_ = api;
  ProducerOptions o;
  o.api = api;
  o.clock = clock_;
  o.manual_pump = true;
  o.log = [this](LogLevel, std::string_view m) { logs_.emplace_back(m); };
  p_ = std::move(*Producer::create(cfg_, o));
  for (int i = 0; i < 4; ++i) put("u" + std::to_string(i));
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  EXPECT_EQ(fake_->calls.front().records.size(), 4u) << "one Kinesis record per user record";
  for (const auto& k : fake_->calls.front().records) EXPECT_NE(k.partition_key, "a");
  fake_->succeed_next();
  p_->pump();
  EXPECT_EQ(results_.size(), 4u);
  // The map comes back after the refresh backoff (1 s): records aggregate again.
  fake_->list_error = Status();
  step(1100ms);
  for (int i = 0; i < 4; ++i) put("v" + std::to_string(i % 1) + std::to_string(i));
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  EXPECT_LE(fake_->calls.front().records.size(), 2u);
}

TEST_F(ProducerTest, CollectionMaxCountSplitsRequests) {
  cfg_.aggregation_enabled = false;
  cfg_.collection_max_count = 3;
  make(1);
  for (int i = 0; i < 7; ++i) put("n" + std::to_string(i));
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 3u);
  EXPECT_EQ(fake_->calls[0].records.size(), 3u);
  EXPECT_EQ(fake_->calls[2].records.size(), 1u);
}

TEST_F(ProducerTest, AtMostMaxConnectionsRequestsAreInFlight) {
  cfg_.aggregation_enabled = false;
  cfg_.collection_max_count = 2;
  cfg_.max_connections = 1;
  make(1);
  for (int i = 0; i < 6; ++i) put("q" + std::to_string(i));
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u) << "the other batches wait for the connection";
  for (int round = 0; round < 2; ++round) {
    fake_->succeed_next();
    p_->pump();
    ASSERT_EQ(fake_->calls.size(), 1u) << "the next batch starts when one completes";
  }
  fake_->succeed_next();
  p_->pump();
  EXPECT_EQ(results_.size(), 6u);
  EXPECT_TRUE(fake_->calls.empty());
}

TEST_F(ProducerTest, RecordsWaitingForAConnectionStillExpire) {
  cfg_.aggregation_enabled = false;
  cfg_.collection_max_count = 1;
  cfg_.max_connections = 1;
  cfg_.record_ttl = 500;
  make(1);
  put("first");
  put("second");
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 1u);
  step(500ms);  // the first call hangs; the second record expires while queued
  ASSERT_EQ(results_.count("second") + results_.count("first"), 1u);
  const std::string queued = results_.count("second") ? "second" : "first";
  EXPECT_EQ(results_[queued].attempts.back().error_code, "UserRecordExpired");
  ASSERT_EQ(results_[queued].attempts.size(), 1u) << "never sent";
}

TEST_F(ProducerTest, FlushSendsWithoutWaiting) {
  cfg_.record_max_buffered_time = 60000;
  cfg_.record_ttl = 120000;
  make(1);
  put("f1");
  p_->flush();
  p_->pump();
  EXPECT_EQ(fake_->calls.size(), 1u);
}

TEST_F(ProducerTest, MetricsExportInPrometheusAndEmf) {
  make(1);
  put("e1");
  step(120ms);
  fake_->succeed_next();
  p_->pump();
  const ProducerMetrics m = p_->metrics();
  const std::string prom = m.to_prometheus();
  EXPECT_NE(prom.find("shardline_producer_user_records_put_total 1"), std::string::npos) << prom;
  EXPECT_NE(prom.find("# TYPE shardline_producer_request_time_ms summary"), std::string::npos);
  const std::string emf = m.to_emf("KinesisProducerLibrary", 1700000000000);
  EXPECT_NE(emf.find("\"Namespace\":\"KinesisProducerLibrary\""), std::string::npos) << emf;
  EXPECT_NE(emf.find("\"UserRecordsPut\":1"), std::string::npos) << emf;
}

TEST_F(ProducerTest, ConfigurationIsValidated) {
  cfg_.record_ttl = 100;
  cfg_.record_max_buffered_time = 100;
  ProducerOptions o;
  o.api = std::make_shared<FakeKinesis>();
  o.manual_pump = true;
  auto p = Producer::create(cfg_, o);
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
}

TEST(TokenBucket, StartsFullRefillsContinuouslyAndCapsAtCapacity) {
  const Clock::time_point t0(std::chrono::seconds(10));
  detail::TokenBucket b(1000, 1000, t0);  // 1000 tokens/s, capacity 1000
  EXPECT_TRUE(b.try_take(1000, t0, 1.0));
  EXPECT_FALSE(b.try_take(1, t0, 1.0));
  EXPECT_EQ(b.wait_for(10, t0, 1.0), std::chrono::milliseconds(10) + std::chrono::microseconds(1));
  EXPECT_TRUE(b.try_take(10, t0 + 10ms, 1.0));
  EXPECT_FALSE(b.try_take(1, t0 + 10ms, 1.0));
  // A rate factor of 0.5 halves the refill.
  EXPECT_FALSE(b.try_take(10, t0 + 20ms, 0.5));
  EXPECT_TRUE(b.try_take(10, t0 + 30ms, 0.5));
  // Never above capacity, however long it idles.
  EXPECT_TRUE(b.try_take(1000, t0 + 100s, 1.0));
  EXPECT_FALSE(b.try_take(1, t0 + 100s, 1.0));
}

TEST_F(ProducerTest, PerShardRateLimitHoldsRecordsBeyondTheBucket) {
  cfg_.aggregation_enabled = false;
  cfg_.rate_limit = 1;  // 10 Kinesis records/s per shard; the bucket starts with 1000
  cfg_.record_ttl = 60000;
  make(1);
  for (int i = 0; i < 1010; ++i) put("r" + std::to_string(i));
  step(120ms);
  auto sent = [this] {
    std::size_t n = 0;
    for (const Call& c : fake_->calls) n += c.records.size();
    return n;
  };
  EXPECT_EQ(sent(), 1000u) << "the full bucket lets 1000 through at once";
  step(100ms);
  step(50ms);  // the released record waits out the collector grace
  EXPECT_EQ(sent(), 1001u) << "then 10 per second";
  step(1000ms);
  EXPECT_EQ(sent(), 1010u);
}

TEST_F(ProducerTest, RecordsExpireWhileWaitingInTheLimiter) {
  cfg_.aggregation_enabled = false;
  cfg_.rate_limit = 1;
  cfg_.record_ttl = 300;
  make(1);
  for (int i = 0; i < 1100; ++i) put("l" + std::to_string(i));
  for (int t = 0; t < 40; ++t) {
    step(10ms);
    while (!fake_->calls.empty()) {
      fake_->succeed_next();
      p_->pump();
    }
  }
  ASSERT_EQ(results_.size(), 1100u);
  std::size_t ok = 0, expired = 0;
  for (const auto& [pk, r] : results_) {
    if (r.success) ++ok;
    if (!r.success) {
      ++expired;
      ASSERT_EQ(r.attempts.size(), 1u) << "never sent";
      EXPECT_EQ(r.attempts[0].error_code, "UserRecordExpired");
    }
  }
  EXPECT_GE(ok, 1000u);
  EXPECT_GE(expired, 90u);
  EXPECT_EQ(p_->outstanding(), 0u);
}

TEST_F(ProducerTest, SeveralStreamsBatchSeparately) {
  make(1);
  ASSERT_TRUE(
      p_->put("s1", "a", "1", [this](PutResult&& r) { results_["s1"] = std::move(r); }).ok());
  ASSERT_TRUE(
      p_->put("s2", "a", "2", [this](PutResult&& r) { results_["s2"] = std::move(r); }).ok());
  step(120ms);
  ASSERT_EQ(fake_->calls.size(), 2u);
  std::set<std::string> streams;
  for (const Call& c : fake_->calls) streams.insert(c.stream);
  EXPECT_EQ(streams, (std::set<std::string>{"s1", "s2"}));
  fake_->succeed_next();
  fake_->succeed_next();
  p_->pump();
  EXPECT_TRUE(results_["s1"].success);
  EXPECT_TRUE(results_["s2"].success);
}

}  // namespace
}  // namespace shardline
