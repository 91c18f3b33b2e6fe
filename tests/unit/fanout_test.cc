// The enhanced fan-out reader: positions as iterators, subscriptions started, resumed,
// cancelled when the buffer is full and when the reader moves, events delivered in order and
// never twice, errors passed to the reader. The subscriptions are fakes driven by the test.
#include "consumer/fanout.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>

#include "support/test_util.h"

namespace shardline::detail {
namespace {

using namespace std::chrono_literals;
using shardline::testing::poll_until;

struct FakeSubscription : ShardSubscription {
  std::atomic<bool> cancelled{false};
  void cancel() override { cancelled = true; }
};

struct Started {
  std::string arn, shard;
  ShardIteratorStart start;
  std::shared_ptr<FakeSubscription> sub;
  std::function<void(SubscribeToShardEvent&&)> on_event;
  std::function<void(Status)> done;
};

class NoShards : public ConsumerKinesisApi {
 public:
  Result<std::vector<Shard>> list_shards(const CancelToken*) override {
    return std::vector<Shard>{};
  }
  Result<std::string> get_shard_iterator(const std::string&, const ShardIteratorStart&,
                                         const CancelToken*) override {
    return Status::internal("unused");
  }
  void get_records(const std::string&, int,
                   std::function<void(Result<GetRecordsResult>)> d) override {
    d(Status::internal("unused"));
  }
};

SubscribeToShardEvent event(std::vector<std::string> seqs, std::string continuation) {
  SubscribeToShardEvent e;
  for (auto& s : seqs) {
    StreamRecord r;
    r.sequence_number = s;
    r.data = "d" + s;
    e.records.push_back(std::move(r));
  }
  e.continuation_sequence_number = std::move(continuation);
  e.millis_behind_latest = 5;
  return e;
}

class FanOut : public ::testing::Test {
 protected:
  void make(std::size_t max_buffered = 11, std::chrono::milliseconds max_wait = 60s) {
    FanOutOptions o;
    o.resolve_consumer = [this](const CancelToken*) -> Result<std::string> {
      ++resolves_;
      if (resolve_error_) return Status::unavailable("describe failed");
      return std::string("arn:consumer");
    };
    o.subscribe = [this](const std::string& arn, const std::string& shard,
                         const ShardIteratorStart& start,
                         std::function<void(SubscribeToShardEvent &&)> on_event,
                         std::function<void(Status)> done) {
      auto sub = std::make_shared<FakeSubscription>();
      std::lock_guard lk(mu_);
      started_.push_back({arn, shard, start, sub, std::move(on_event), std::move(done)});
      return sub;
    };
    o.max_buffered_events = max_buffered;
    o.max_wait = max_wait;
    api_ = std::make_unique<FanOutKinesisApi>(std::make_shared<NoShards>(), std::move(o));
  }
  std::string iterator(const ShardIteratorStart& s = {}) {
    auto it = api_->get_shard_iterator("shardId-1", s, nullptr);
    EXPECT_TRUE(it.ok()) << it.status().to_string();
    return it.ok() ? *it : "";
  }
  // One read; its result once it has one.
  std::shared_future<Result<GetRecordsResult>> read(const std::string& it) {
    auto p = std::make_shared<std::promise<Result<GetRecordsResult>>>();
    std::shared_future<Result<GetRecordsResult>> f = p->get_future().share();
    api_->get_records(it, 10000, [p](Result<GetRecordsResult> r) { p->set_value(std::move(r)); });
    return f;
  }
  static bool ready(const std::shared_future<Result<GetRecordsResult>>& f) {
    return f.wait_for(0s) == std::future_status::ready;
  }
  Started& sub(std::size_t i) {
    std::lock_guard lk(mu_);
    return started_.at(i);
  }
  std::size_t subs() {
    std::lock_guard lk(mu_);
    return started_.size();
  }
  static std::vector<std::string> seqs(const GetRecordsResult& r) {
    std::vector<std::string> out;
    for (const auto& rec : r.records) out.push_back(rec.sequence_number);
    return out;
  }

  std::mutex mu_;
  std::vector<Started> started_;
  std::atomic<int> resolves_{0};
  bool resolve_error_ = false;
  std::unique_ptr<FanOutKinesisApi> api_;
};

TEST(FanOutPosition, RoundTripsAndRejectsOtherIterators) {
  for (const ShardIteratorStart& s :
       {ShardIteratorStart{ShardIteratorType::kTrimHorizon, "", 0},
        ShardIteratorStart{ShardIteratorType::kLatest, "", 0},
        ShardIteratorStart{ShardIteratorType::kAtSequenceNumber, "4961", 0},
        ShardIteratorStart{ShardIteratorType::kAfterSequenceNumber, "4962", 0},
        ShardIteratorStart{ShardIteratorType::kAtTimestamp, "", 1700000000123}}) {
    std::string shard;
    ShardIteratorStart back;
    ASSERT_TRUE(
        FanOutKinesisApi::parse_position(FanOutKinesisApi::position("shardId-7", s), shard, back));
    EXPECT_EQ(shard, "shardId-7");
    EXPECT_EQ(back.type, s.type);
    EXPECT_EQ(back.sequence_number, s.sequence_number);
    EXPECT_EQ(back.timestamp_ms, s.timestamp_ms);
  }
  std::string shard;
  ShardIteratorStart back;
  for (const char* bad : {"", "AAAAAAAA", "shardline-efo|", "shardline-efo|s|NOPE|",
                          "shardline-efo|s|AT_SEQUENCE_NUMBER|", "shardline-efo|s|AT_TIMESTAMP|x",
                          "shardline-efo|s|LATEST|123", "shardline-efo||LATEST|"}) {
    EXPECT_FALSE(FanOutKinesisApi::parse_position(bad, shard, back)) << bad;
  }
}

TEST_F(FanOut, TheConsumerIsResolvedOnceAndItsFailureIsTheIteratorsFailure) {
  make();
  resolve_error_ = true;
  auto it = api_->get_shard_iterator("shardId-1", {}, nullptr);
  EXPECT_EQ(it.status().code(), StatusCode::kUnavailable);
  resolve_error_ = false;
  iterator();
  iterator();
  EXPECT_EQ(resolves_.load(), 2);  // the failed try and one success
  auto r = read("garbage");
  ASSERT_TRUE(ready(r));
  EXPECT_EQ(r.get().status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FanOut, EventsInOrderThenResumedAfterTheServiceEndsTheSubscription) {
  make();
  const std::string start = iterator({ShardIteratorType::kAtSequenceNumber, "10", 0});
  auto r1 = read(start);
  ASSERT_EQ(subs(), 1u);
  EXPECT_EQ(sub(0).arn, "arn:consumer");
  EXPECT_EQ(sub(0).shard, "shardId-1");
  EXPECT_EQ(sub(0).start.type, ShardIteratorType::kAtSequenceNumber);
  EXPECT_EQ(sub(0).start.sequence_number, "10");
  EXPECT_FALSE(ready(r1));
  sub(0).on_event(event({"10", "11"}, "11"));
  sub(0).on_event(event({"12"}, "12"));  // buffered
  ASSERT_TRUE(ready(r1));
  const GetRecordsResult a = r1.get().value();
  EXPECT_EQ(seqs(a), (std::vector<std::string>{"10", "11"}));
  EXPECT_EQ(a.millis_behind_latest, 5);
  ASSERT_TRUE(a.next_shard_iterator.has_value());
  auto r2 = read(*a.next_shard_iterator);
  ASSERT_TRUE(ready(r2));
  const GetRecordsResult b = r2.get().value();
  EXPECT_EQ(seqs(b), (std::vector<std::string>{"12"}));
  // The service ends the subscription (5 minutes): the next read resumes after "12".
  sub(0).done(Status());
  auto r3 = read(*b.next_shard_iterator);
  ASSERT_EQ(subs(), 2u);
  EXPECT_EQ(sub(1).start.type, ShardIteratorType::kAfterSequenceNumber);
  EXPECT_EQ(sub(1).start.sequence_number, "12");
  sub(1).on_event(event({"13"}, "13"));
  ASSERT_TRUE(ready(r3));
  EXPECT_EQ(seqs(r3.get().value()), (std::vector<std::string>{"13"}));
}

TEST_F(FanOut, AnEndWhileAReaderWaitsResumesAtOnce) {
  make();
  auto r1 = read(iterator());
  sub(0).on_event(event({"1"}, "1"));
  auto r2 = read(*r1.get().value().next_shard_iterator);
  sub(0).done(Status());
  ASSERT_EQ(subs(), 2u);
  EXPECT_EQ(sub(1).start.sequence_number, "1");
  sub(1).on_event(event({"2"}, "2"));
  ASSERT_TRUE(ready(r2));
  EXPECT_EQ(seqs(r2.get().value()), (std::vector<std::string>{"2"}));
}

TEST_F(FanOut, AFullBufferCancelsAndTheDrainedReaderResumesAfterTheLastBufferedEvent) {
  make(/*max_buffered=*/3);
  auto r = read(iterator());
  for (int i = 1; i <= 6; ++i) {
    sub(0).on_event(event({std::to_string(i)}, std::to_string(i)));
  }
  // The first went to the waiting read, three filled the buffer, the rest came after cancel.
  EXPECT_TRUE(sub(0).sub->cancelled);
  sub(0).done(Status::cancelled("cancelled"));
  std::vector<std::string> got = seqs(r.get().value());
  std::string next = *r.get().value().next_shard_iterator;
  for (int i = 0; i < 3; ++i) {
    auto ri = read(next);
    ASSERT_TRUE(ready(ri));
    for (auto& s : seqs(ri.get().value())) got.push_back(s);
    next = *ri.get().value().next_shard_iterator;
  }
  EXPECT_EQ(got, (std::vector<std::string>{"1", "2", "3", "4"}));
  EXPECT_EQ(subs(), 1u) << "no new subscription while buffered events remain";
  auto r5 = read(next);
  ASSERT_EQ(subs(), 2u);
  EXPECT_EQ(sub(1).start.type, ShardIteratorType::kAfterSequenceNumber);
  EXPECT_EQ(sub(1).start.sequence_number, "4");
  sub(1).on_event(event({"5"}, "5"));
  EXPECT_EQ(seqs(r5.get().value()), (std::vector<std::string>{"5"}));
}

TEST_F(FanOut, AFailureReachesTheReaderAndTheNextReadSubscribesAgain) {
  make();
  const std::string it = iterator();
  auto r1 = read(it);
  sub(0).done(Status(StatusCode::kFailedPrecondition, "ResourceInUseException"));
  ASSERT_TRUE(ready(r1));
  EXPECT_EQ(r1.get().status().code(), StatusCode::kFailedPrecondition);
  auto r2 = read(it);
  ASSERT_EQ(subs(), 2u);
  EXPECT_EQ(sub(1).start.type, ShardIteratorType::kTrimHorizon);
  sub(1).on_event(event({"1"}, "1"));
  EXPECT_EQ(seqs(r2.get().value()), (std::vector<std::string>{"1"}));
}

TEST_F(FanOut, AReadElsewhereStartsOverAndDropsTheOldSubscriptionsEvents) {
  make();
  auto r1 = read(iterator());
  sub(0).on_event(event({"1"}, "1"));
  sub(0).on_event(event({"2"}, "2"));  // buffered for a reader that does not come
  const std::string elsewhere = iterator({ShardIteratorType::kAtSequenceNumber, "1", 0});
  auto r2 = read(elsewhere);
  ASSERT_EQ(subs(), 2u);
  EXPECT_TRUE(sub(0).sub->cancelled);
  EXPECT_EQ(sub(1).start.type, ShardIteratorType::kAtSequenceNumber);
  sub(0).on_event(event({"3"}, "3"));  // late, from the old subscription
  sub(0).done(Status::cancelled("cancelled"));
  EXPECT_FALSE(ready(r2));
  sub(1).on_event(event({"1", "2"}, "2"));
  EXPECT_EQ(seqs(r2.get().value()), (std::vector<std::string>{"1", "2"}));
}

TEST_F(FanOut, TheShardsEndHasNoNextIteratorAndCarriesTheChildren) {
  make();
  auto r = read(iterator());
  SubscribeToShardEvent last = event({"9"}, "");
  last.child_shards.push_back(ChildShard{"shardId-2", {"shardId-1"}, {}});
  sub(0).on_event(std::move(last));
  const GetRecordsResult g = r.get().value();
  EXPECT_FALSE(g.next_shard_iterator.has_value());
  ASSERT_EQ(g.child_shards.size(), 1u);
  EXPECT_EQ(g.child_shards[0].shard_id, "shardId-2");
}

TEST_F(FanOut, AQuietShardAnswersEmptyAtTheSamePosition) {
  make(11, /*max_wait=*/20ms);
  const std::string it = iterator();
  auto r = read(it);
  ASSERT_TRUE(poll_until([&] { return ready(r); }));
  const GetRecordsResult g = r.get().value();
  EXPECT_TRUE(g.records.empty());
  EXPECT_EQ(g.next_shard_iterator, it);
  EXPECT_EQ(subs(), 1u);
  // The subscription stays; its next event goes to the next read.
  auto r2 = read(it);
  sub(0).on_event(event({"1"}, "1"));
  ASSERT_TRUE(poll_until([&] { return ready(r2); }));
  EXPECT_EQ(seqs(r2.get().value()), (std::vector<std::string>{"1"}));
  EXPECT_EQ(subs(), 1u);
}

TEST_F(FanOut, ClosingCancelsSubscriptionsAndWaitingReads) {
  make();
  auto r = read(iterator());
  auto s = sub(0);
  api_.reset();
  EXPECT_TRUE(s.sub->cancelled);
  ASSERT_TRUE(ready(r));
  EXPECT_EQ(r.get().status().code(), StatusCode::kCancelled);
  s.on_event(event({"1"}, "1"));  // after close: ignored, no crash
  s.done(Status());
}

TEST_F(FanOut, ResourceNotFoundIsNotTheShardsEndAndFindsTheConsumerAgain) {
  make();
  const std::string it = iterator();
  EXPECT_EQ(resolves_.load(), 1);
  auto r = read(it);
  sub(0).done(Status(StatusCode::kNotFound, "consumer not found"));
  ASSERT_TRUE(ready(r));
  EXPECT_EQ(r.get().status().code(), StatusCode::kInvalidArgument) << r.get().status().to_string();
  // The reader asks for a new position: the consumer is resolved again.
  iterator();
  EXPECT_EQ(resolves_.load(), 2);
}

}  // namespace
}  // namespace shardline::detail
