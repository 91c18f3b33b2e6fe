// The producer against kinesalite, with its real threads: records read back independently
// (GetRecords + the reader) equal what was put, each aggregate's user records hash into the
// shard it landed on; and through the fault proxy nothing is lost and nothing reported twice.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "aws/http_client.h"
#include "shardline/aggregation.h"
#include "shardline/producer.h"
#include "support/local_aws.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;

std::string env(const char* n) { return shardline::testing::env_or_empty(n); }
AwsClientConfig local(const std::string& endpoint) {
  return shardline::testing::local_aws_config(endpoint);
}

struct Outcomes {
  std::mutex mu;
  std::map<int, PutResult> by_index;
  std::map<int, int> calls;
  void add(int i, PutResult&& r) {
    std::lock_guard<std::mutex> l(mu);
    ++calls[i];
    by_index[i] = std::move(r);
  }
};

class ProducerIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = env("SHARDLINE_KINESIS_ENDPOINT");
    if (endpoint_.empty())
      GTEST_SKIP() << "SHARDLINE_KINESIS_ENDPOINT unset: scripts/servers start";
    auto k = KinesisClient::create(local(endpoint_));
    ASSERT_TRUE(k.ok());
    k_ = std::move(*k);
    stream_ = "pi-" + std::to_string(std::random_device{}() % 1000000000);
    ASSERT_TRUE(k_->create_stream(stream_, 4).ok());
    ASSERT_TRUE(k_->wait_for_stream_active(stream_, 30s).ok());
  }
  void TearDown() override {
    if (k_) (void)k_->delete_stream(stream_);
  }
  // Every user record in the stream, read back independently; with `check_ranges`, each
  // aggregated user record must hash into the shard it landed on.
  std::multiset<std::string> read_back(bool check_ranges) {
    std::multiset<std::string> got;
    std::string error;
    const auto recs = shardline::testing::read_stream(*k_, stream_, &error);
    EXPECT_EQ(error, "");
    auto shards = k_->list_shards(stream_);
    EXPECT_TRUE(shards.ok());
    for (const auto& r : recs) {
      if (check_ranges && r.aggregated) {
        for (const Shard& sh : *shards) {
          if (sh.shard_id == r.shard_id) {
            EXPECT_TRUE(sh.hash_key_range.contains(HashKey::from_partition_key(r.partition_key)))
                << "an aggregate mixes shards";
          }
        }
      }
      got.insert(r.partition_key + "|" + r.data);
    }
    return got;
  }
  std::string endpoint_, stream_;
  std::unique_ptr<KinesisClient> k_;
};

TEST_F(ProducerIntegration, EverythingPutIsStoredOnceAndReportedOnce) {
  ProducerConfig cfg;
  ProducerOptions o;
  o.aws = local(endpoint_);
  auto p = Producer::create(cfg, o);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  Outcomes out;
  std::multiset<std::string> want;
  // Warm-up pairs first (indices -1, -2, ...), until the shard map is loaded, so the
  // aggregation check below does not depend on how fast the server answered ListShards.
  int warm_up = 0;
  ASSERT_TRUE(shardline::testing::warm_up_until_aggregating(**p, [&](int round) {
    for (int k = 0; k < 2; ++k) {
      const int index = -1 - warm_up++;
      const std::string data = "w" + std::to_string(round) + "-" + std::to_string(k);
      want.insert("warm-up|" + data);
      ASSERT_TRUE((*p)->put(stream_, "warm-up", data,
                            [&out, index](PutResult&& r) { out.add(index, std::move(r)); })
                      .ok());
    }
  }));
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    const std::string pk = "user-" + std::to_string(i % 613);
    const std::string data = "event-" + std::to_string(i);
    want.insert(pk + "|" + data);
    ASSERT_TRUE(
        (*p)->put(stream_, pk, data, [&out, i](PutResult&& r) { out.add(i, std::move(r)); }).ok());
  }
  ASSERT_TRUE((*p)->flush_sync(30s).ok());
  ASSERT_TRUE((*p)->close(5s).ok());
  ASSERT_EQ(out.by_index.size(), static_cast<std::size_t>(n + warm_up));
  for (const auto& [i, r] : out.by_index) {
    EXPECT_TRUE(r.success) << i << " " << (r.attempts.empty() ? "" : r.attempts.back().error_code);
    EXPECT_EQ(out.calls[i], 1);
    EXPECT_EQ(r.shard_id.rfind("shardId-", 0), 0u);
  }
  const ProducerMetrics m = (*p)->metrics();
  EXPECT_EQ(m.user_records_put, static_cast<std::uint64_t>(n + warm_up));
  EXPECT_GT(m.user_records_per_kinesis_record.mean(), 10.0) << "records were aggregated";
  EXPECT_EQ(read_back(true), want);
}

TEST_F(ProducerIntegration, FaultsLoseNothingAndReportNothingTwice) {
  const std::string proxy = env("SHARDLINE_PROXY_ENDPOINT");
  if (proxy.empty()) GTEST_SKIP() << "SHARDLINE_PROXY_ENDPOINT unset";
  auto configure = [&](const nlohmann::json& j) {
    ASSERT_EQ(shardline::testing::configure_fault_proxy(proxy, j.dump()), "");
  };
  configure({{"recordFailureProbability", 0.2},
             {"throttleProbability", 0.1},
             {"error500Probability", 0.05},
             {"resetProbability", 0.02},
             {"latencyMs", 5},
             {"seed", 11}});
  ProducerConfig cfg;
  cfg.record_ttl = 60000;
  ProducerOptions o;
  o.aws = local(proxy);
  auto p = Producer::create(cfg, o);
  ASSERT_TRUE(p.ok());
  Outcomes out;
  std::multiset<std::string> want;
  const int n = 3000;
  for (int i = 0; i < n; ++i) {
    const std::string pk = "k-" + std::to_string(i % 97);
    const std::string data = "v-" + std::to_string(i);
    want.insert(pk + "|" + data);
    ASSERT_TRUE(
        (*p)->put(stream_, pk, data, [&out, i](PutResult&& r) { out.add(i, std::move(r)); }).ok());
  }
  const Status drained = (*p)->flush_sync(60s);
  configure({{"recordFailureProbability", 0},
             {"throttleProbability", 0},
             {"error500Probability", 0},
             {"resetProbability", 0},
             {"latencyMs", 0}});
  ASSERT_TRUE(drained.ok()) << drained.to_string();
  (void)(*p)->close(5s);
  ASSERT_EQ(out.by_index.size(), static_cast<std::size_t>(n));
  std::size_t retried = 0;
  for (const auto& [i, r] : out.by_index) {
    EXPECT_TRUE(r.success) << i;
    EXPECT_EQ(out.calls[i], 1) << "reported exactly once";
    if (r.attempts.size() > 1) ++retried;
  }
  EXPECT_GT(retried, 0u) << "the faults did hit";
  // At least once: every record is stored; a retried aggregate may be stored twice only if
  // its first copy was stored (connection reset after the write).
  const auto got = read_back(false);
  for (const auto& w : want) EXPECT_GE(got.count(w), 1u) << w;
}

TEST_F(ProducerIntegration, BlackHoledEndpointExpiresEveryRecordWithinTtlPlusOneTimeout) {
  const std::string proxy = env("SHARDLINE_PROXY_ENDPOINT");
  if (proxy.empty()) GTEST_SKIP() << "SHARDLINE_PROXY_ENDPOINT unset";
  auto configure = [&](const nlohmann::json& j) {
    ASSERT_EQ(shardline::testing::configure_fault_proxy(proxy, j.dump()), "");
  };
  ProducerConfig cfg;
  cfg.record_ttl = 1500;
  cfg.request_timeout = 500;
  ProducerOptions o;
  o.aws = local(proxy);
  auto p = Producer::create(cfg, o);
  ASSERT_TRUE(p.ok());
  // Let the shard map load first, then black-hole the endpoint.
  configure({{"blackhole", true}});
  Outcomes out;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE((*p)->put(stream_, "bh-" + std::to_string(i), "x",
                          [&out, i](PutResult&& r) { out.add(i, std::move(r)); })
                    .ok());
  }
  const Status s = (*p)->flush_sync(10s);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  configure({{"blackhole", false}});
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(out.by_index.size(), 200u);
  for (const auto& [i, r] : out.by_index) {
    EXPECT_FALSE(r.success);
    EXPECT_EQ(r.attempts.back().error_code, "UserRecordExpired") << i;
  }
  // TTL + one request timeout, with slack for scheduling: a correctness bound, not a benchmark.
  EXPECT_LT(elapsed, std::chrono::milliseconds(cfg.record_ttl + cfg.request_timeout + 1500));
  (void)(*p)->close(1s);
}

}  // namespace
}  // namespace shardline
