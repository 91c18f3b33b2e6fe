// Operations kinesalite does not implement, against kinesis-local (kinesis-mock):
// StreamARN addressing, ListShards pagination and ShardFilter, UpdateShardCount, ChildShards at
// a shard's end, and enhanced fan-out consumer registration. SHARDLINE_KINESIS_LOCAL_ENDPOINT
// comes from `scripts/servers start kinesis-local`.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "shardline/kinesis.h"
#include "support/local_aws.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;

// How a subscribing client talks to kinesis-local.
enum class Wire { kHttp1, kH2c, kH2Tls };

class KinesisLocal : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* ep = std::getenv("SHARDLINE_KINESIS_LOCAL_ENDPOINT");
    if (!ep)
      GTEST_SKIP() << "SHARDLINE_KINESIS_LOCAL_ENDPOINT unset: scripts/servers start kinesis-local";
    AwsClientConfig c;
    c.endpoint_url = ep;
    c.region = "us-east-1";
    c.credentials = make_static_credentials_provider({"AKIDTEST", "secret", "", {}, "test"});
    c.retry_base = 10ms;
    c.retry_cap = 100ms;
    auto k = KinesisClient::create(c);
    ASSERT_TRUE(k.ok()) << k.status().to_string();
    k_ = std::move(*k);
    name_ = "kl-" + std::to_string(std::random_device{}() % 1000000000);
    ASSERT_TRUE(k_->create_stream(name_, 4).ok());
    ASSERT_TRUE(k_->wait_for_stream_active(name_, 30s).ok());
    auto sum = k_->describe_stream_summary(name_);
    ASSERT_TRUE(sum.ok());
    arn_ = sum->arn;
  }
  AwsClientConfig config(Wire wire) const {
    AwsClientConfig c;
    c.endpoint_url = std::getenv("SHARDLINE_KINESIS_LOCAL_ENDPOINT");
    c.region = "us-east-1";
    c.credentials = make_static_credentials_provider({"AKIDTEST", "secret", "", {}, "test"});
    c.http2 = wire != Wire::kHttp1;
    if (wire == Wire::kH2Tls) {
      // The TLS port: HTTP/2 negotiated by ALPN, as on AWS. Its certificate is self-signed.
      c.endpoint_url = testing::env_or_empty("SHARDLINE_KINESIS_LOCAL_TLS_ENDPOINT");
      c.verify_tls = false;
    }
    return c;
  }
  // A registered, ACTIVE consumer's ARN.
  std::string active_consumer(const std::string& name) {
    auto c = k_->register_stream_consumer(arn_, name);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    if (!c.ok()) return "";
    EXPECT_TRUE(shardline::testing::poll_until([&] {
      auto d = k_->describe_stream_consumer("", "", c->arn);
      return d.ok() && d->status == "ACTIVE";
    }));
    return c->arn;
  }
  void TearDown() override {
    if (k_ && !name_.empty()) (void)k_->delete_stream(name_, true);
  }
  std::unique_ptr<KinesisClient> k_;
  std::string name_, arn_;
};

TEST_F(KinesisLocal, StreamArnAddressesTheStream) {
  ASSERT_EQ(arn_.rfind("arn:aws:kinesis:", 0), 0u) << arn_;
  auto sum = k_->describe_stream_summary(arn_);
  ASSERT_TRUE(sum.ok()) << sum.status().to_string();
  EXPECT_EQ(sum->name, name_);
  auto put = k_->put_record(arn_, "k", "via-arn");
  ASSERT_TRUE(put.ok()) << put.status().to_string();
  auto it = k_->get_shard_iterator(arn_, put->shard_id, {});
  ASSERT_TRUE(it.ok()) << it.status().to_string();
  const StreamRef ref(arn_);
  auto r = k_->get_records(*it, 100, &ref);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->records.size(), 1u);
  EXPECT_EQ(r->records[0].data, "via-arn");
}

TEST_F(KinesisLocal, ListShardsPaginatesAndFilters) {
  ListShardsOptions small;
  small.max_results_per_page = 1;  // four pages of one shard each
  auto all = k_->list_shards(name_, small);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 4u);
  ASSERT_TRUE(k_->split_shard(name_, (*all)[0].shard_id, HashKey(0, 1000)).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(name_, 30s).ok());
  auto everything = k_->list_shards(name_);
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->size(), 6u);
  ListShardsOptions latest;
  latest.filter_type = "AT_LATEST";
  auto open = k_->list_shards(name_, latest);
  ASSERT_TRUE(open.ok()) << open.status().to_string();
  EXPECT_EQ(open->size(), 5u) << "AT_LATEST leaves out the closed parent";
  for (const Shard& s : *open) EXPECT_TRUE(s.is_open()) << s.shard_id;
}

TEST_F(KinesisLocal, UpdateShardCountAndChildShardsAtShardEnd) {
  ASSERT_TRUE(k_->put_record(name_, "k", "before", "0").ok());
  ASSERT_TRUE(k_->update_shard_count(name_, 8).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(name_, 60s).ok());
  auto sum = k_->describe_stream_summary(name_);
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->open_shard_count, 8);
  // Reading the closed first shard to its end yields ChildShards (kinesis-mock sends them).
  auto it = k_->get_shard_iterator(name_, "shardId-000000000000", {});
  ASSERT_TRUE(it.ok());
  std::string iter = *it;
  std::vector<ChildShard> children;
  for (int i = 0; i < 20; ++i) {
    auto r = k_->get_records(iter);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    if (!r->next_shard_iterator) {
      children = r->child_shards;
      break;
    }
    iter = *r->next_shard_iterator;
  }
  ASSERT_FALSE(children.empty());
  for (const auto& c : children) {
    EXPECT_FALSE(c.parent_shards.empty());
    EXPECT_EQ(c.parent_shards.front().rfind("shardId-", 0), 0u);
  }
}

TEST_F(KinesisLocal, RegisterDescribeDeregisterConsumer) {
  auto c = k_->register_stream_consumer(arn_, "app-1");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->name, "app-1");
  EXPECT_FALSE(c->arn.empty());
  // Registration completes asynchronously: poll for ACTIVE.
  Result<StreamConsumer> d = Status::unavailable("not described yet");
  shardline::testing::poll_until([&] {
    d = k_->describe_stream_consumer(arn_, "app-1");
    return d.ok() && d->status == "ACTIVE";
  });
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->status, "ACTIVE");
  auto by_arn = k_->describe_stream_consumer("", "", c->arn);
  ASSERT_TRUE(by_arn.ok()) << by_arn.status().to_string();
  EXPECT_EQ(by_arn->name, "app-1");
  EXPECT_TRUE(k_->deregister_stream_consumer(arn_, "app-1").ok());
}

// What one subscription delivered, shared with the HTTP thread.
struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<SubscribeToShardEvent> events;
  std::optional<Status> done;
  std::multiset<std::string> data() {
    std::lock_guard lk(mu);
    std::multiset<std::string> out;
    for (const auto& e : events)
      for (const auto& r : e.records) out.insert(r.data);
    return out;
  }
};

// SubscribeToShard over HTTP/1.1 (chunked) and HTTP/2 without TLS (prior knowledge): every
// record put, in order, each event with a continuation; cancel() ends it with kCancelled; a
// second subscription from the first one's continuation starts after it.
class KinesisLocalSubscribe : public KinesisLocal, public ::testing::WithParamInterface<Wire> {};

TEST_P(KinesisLocalSubscribe, PushesEveryRecordAndResumesFromTheContinuation) {
  const std::string consumer = active_consumer("efo-app");
  ASSERT_FALSE(consumer.empty());
  if (GetParam() == Wire::kH2Tls &&
      testing::env_or_empty("SHARDLINE_KINESIS_LOCAL_TLS_ENDPOINT").empty())
    GTEST_SKIP() << "SHARDLINE_KINESIS_LOCAL_TLS_ENDPOINT unset";
  auto client = KinesisClient::create(config(GetParam()));
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  const std::string shard = "shardId-000000000000";
  const std::string pin = "0";  // explicit hash key 0: always the first shard
  std::multiset<std::string> want;
  for (int i = 0; i < 20; ++i) {
    const std::string d = "first-" + std::to_string(i);
    ASSERT_TRUE(k_->put_record(name_, "k", d, pin).ok());
    want.insert(d);
  }
  auto run = [&](const std::string& by, const ShardIteratorStart& start, Collected& c,
                 const std::multiset<std::string>& expect) {
    auto sub = (*client)->subscribe_to_shard(
        by, shard, start,
        [&c](SubscribeToShardEvent&& e) {
          std::lock_guard lk(c.mu);
          c.events.push_back(std::move(e));
        },
        [&c](Status s) {
          std::lock_guard lk(c.mu);
          c.done = std::move(s);
          c.cv.notify_all();
        });
    EXPECT_TRUE(shardline::testing::poll_until([&] { return c.data() == expect || c.done; }, 30s));
    sub->cancel();
    std::unique_lock lk(c.mu);
    EXPECT_TRUE(c.cv.wait_for(lk, 10s, [&] { return c.done.has_value(); })) << "cancel() ends it";
  };
  Collected first;
  run(consumer, {ShardIteratorType::kTrimHorizon, "", 0}, first, want);
  ASSERT_TRUE(first.done.has_value());
  EXPECT_EQ(first.done->code(), StatusCode::kCancelled) << first.done->to_string();
  EXPECT_EQ(first.data(), want);
  std::vector<std::string> order;
  std::string continuation;
  for (const auto& e : first.events) {
    EXPECT_FALSE(e.continuation_sequence_number.empty());
    for (const auto& r : e.records) {
      order.push_back(r.data);
      EXPECT_EQ(r.partition_key, "k");
      EXPECT_GT(r.approximate_arrival_timestamp_ms, 0);
    }
    continuation = e.continuation_sequence_number;
  }
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], "first-" + std::to_string(i));

  // From the continuation: only what was put afterwards. Over HTTP/1.1 kinesis-mock frees the
  // consumer's shard a few seconds after the first connection closed (ResourceInUseException
  // until then); over HTTP/2 it keeps it until the 5 minutes are up, so that run resumes
  // through a second consumer.
  const std::string resumer = GetParam() != Wire::kHttp1 ? active_consumer("efo-app-2") : consumer;
  ASSERT_FALSE(resumer.empty());
  std::multiset<std::string> more;
  for (int i = 0; i < 5; ++i) {
    const std::string d = "second-" + std::to_string(i);
    ASSERT_TRUE(k_->put_record(name_, "k", d, pin).ok());
    more.insert(d);
  }
  Collected second;
  ASSERT_TRUE(shardline::testing::poll_until(
      [&] {
        second.events.clear();
        second.done.reset();
        run(resumer, {ShardIteratorType::kAfterSequenceNumber, continuation, 0}, second, more);
        return second.done->code() == StatusCode::kCancelled;
      },
      60s))
      << second.done->to_string();
  EXPECT_EQ(second.data(), more);
}

INSTANTIATE_TEST_SUITE_P(Http, KinesisLocalSubscribe,
                         ::testing::Values(Wire::kHttp1, Wire::kH2c, Wire::kH2Tls),
                         [](const auto& info) {
                           switch (info.param) {
                             case Wire::kHttp1:
                               return "Http1";
                             case Wire::kH2c:
                               return "H2c";
                             case Wire::kH2Tls:
                               return "H2Tls";
                           }
                           return "unknown";
                         });

}  // namespace
}  // namespace shardline
