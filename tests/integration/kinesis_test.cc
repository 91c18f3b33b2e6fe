// The Kinesis client and the streams/tail CLI against kinesalite, directly and through the
// fault-injection proxy. Endpoints come from scripts/servers (.servers/env):
// SHARDLINE_KINESIS_ENDPOINT and SHARDLINE_PROXY_ENDPOINT.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aws/http_client.h"
#include "shardline/aggregation.h"
#include "shardline/kinesis.h"
#include "support/local_aws.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;

using shardline::testing::run_command;
std::string env(const char* name) { return shardline::testing::env_or_empty(name); }

std::string unique_name(const std::string& prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  return prefix + "-" + std::to_string(rng() % 1000000000);
}

AwsClientConfig local_config(const std::string& endpoint) {
  return shardline::testing::local_aws_config(endpoint, 4);
}

class KinesisIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = env("SHARDLINE_KINESIS_ENDPOINT");
    if (endpoint_.empty())
      GTEST_SKIP() << "SHARDLINE_KINESIS_ENDPOINT unset: run scripts/servers start";
    auto c = KinesisClient::create(local_config(endpoint_));
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    k_ = std::move(*c);
  }
  void TearDown() override {
    for (const auto& s : created_) (void)k_->delete_stream(s);
  }
  std::string make_stream(int shards) {
    const std::string name = unique_name("it");
    const Status s = k_->create_stream(name, shards);
    EXPECT_TRUE(s.ok()) << s.to_string();
    created_.push_back(name);
    const Status a = k_->wait_for_stream_active(name, 30s);
    EXPECT_TRUE(a.ok()) << a.to_string();
    return name;
  }
  // Every Kinesis record of a shard from TRIM_HORIZON until an empty read or the shard's end.
  std::vector<StreamRecord> read_shard(const std::string& stream, const std::string& shard) {
    std::vector<StreamRecord> out;
    auto it = k_->get_shard_iterator(stream, shard, {});
    EXPECT_TRUE(it.ok()) << it.status().to_string();
    std::string iter = it.ok() ? *it : "";
    for (int i = 0; i < 100 && !iter.empty(); ++i) {
      auto r = k_->get_records(iter);
      EXPECT_TRUE(r.ok()) << r.status().to_string();
      if (!r.ok()) break;
      for (auto& rec : r->records) out.push_back(std::move(rec));
      if (!r->next_shard_iterator || r->records.empty()) break;
      iter = *r->next_shard_iterator;
    }
    return out;
  }

  std::string endpoint_;
  std::unique_ptr<KinesisClient> k_;
  std::vector<std::string> created_;
};

TEST_F(KinesisIntegration, StreamLifecycle) {
  const std::string name = make_stream(3);
  auto sum = k_->describe_stream_summary(name);
  ASSERT_TRUE(sum.ok()) << sum.status().to_string();
  EXPECT_EQ(sum->name, name);
  EXPECT_EQ(sum->status, "ACTIVE");
  EXPECT_EQ(sum->open_shard_count, 3);
  EXPECT_NE(sum->arn.find(name), std::string::npos);
  auto names = k_->list_streams();
  ASSERT_TRUE(names.ok());
  EXPECT_NE(std::find(names->begin(), names->end(), name), names->end());
  auto shards = k_->list_shards(name);
  ASSERT_TRUE(shards.ok());
  ASSERT_EQ(shards->size(), 3u);
  // The ranges tile the whole hash space, as CreateStream splits it.
  for (std::uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*shards)[i].hash_key_range, even_split_range(i, 3)) << i;
    EXPECT_TRUE((*shards)[i].is_open());
  }
  ASSERT_TRUE(k_->delete_stream(name).ok());
  created_.clear();
  // Deletion completes asynchronously: poll until the stream is gone.
  Status st;
  shardline::testing::poll_until([&] {
    st = k_->describe_stream_summary(name).status();
    return st.code() == StatusCode::kNotFound;
  });
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
}

TEST_F(KinesisIntegration, AggregatesPerShardReadBackExactly) {
  const std::string name = make_stream(4);
  auto shards = k_->list_shards(name);
  ASSERT_TRUE(shards.ok());
  // 3000 user records grouped by shard into aggregates, sent with PutRecords.
  std::vector<std::string> keys, datas;
  for (int i = 0; i < 3000; ++i) {
    keys.push_back("user-" + std::to_string(i % 700));
    datas.push_back("payload-" + std::to_string(i) + std::string(i % 90, 'x'));
  }
  std::vector<AggregateBuilder> builders(shards->size(), AggregateBuilder(AggregationLimits{8192}));
  std::vector<KinesisRecord> kinesis_records;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const HashKey h = HashKey::from_partition_key(keys[i]);
    std::size_t s = 0;
    while (!(*shards)[s].hash_key_range.contains(h)) ++s;
    if (!builders[s].fits(keys[i], std::nullopt, datas[i].size())) {
      kinesis_records.push_back(builders[s].build());
      builders[s].clear();
    }
    builders[s].add(keys[i], std::nullopt, datas[i], h);
  }
  for (auto& b : builders)
    if (!b.empty()) kinesis_records.push_back(b.build());
  std::vector<PutRecordsEntry> entries;
  for (const auto& r : kinesis_records)
    entries.push_back({r.partition_key, r.data, r.explicit_hash_key});
  for (std::size_t off = 0; off < entries.size(); off += 500) {
    const std::size_t n = std::min<std::size_t>(500, entries.size() - off);
    auto res = k_->put_records(name, std::span(entries).subspan(off, n));
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    EXPECT_EQ(res->failed_record_count, 0);
    ASSERT_EQ(res->records.size(), n);
  }
  // Read every shard back independently and deaggregate.
  std::multiset<std::string> got;
  for (const Shard& sh : *shards) {
    for (const StreamRecord& rec : read_shard(name, sh.shard_id)) {
      Deaggregator d;
      std::vector<UserRecordView> users;
      const auto sum = d.decode({rec.data, rec.partition_key, std::nullopt}, users);
      EXPECT_NE(sum.kind, BlobKind::kCorruptAggregate);
      EXPECT_GT(rec.approximate_arrival_timestamp_ms, 1500000000000);
      for (const auto& u : users) {
        // Each user record hashes into the shard its aggregate landed on.
        EXPECT_TRUE(sh.hash_key_range.contains(HashKey::from_partition_key(u.partition_key)));
        got.insert(std::string(u.partition_key) + "|" + std::string(u.data));
      }
    }
  }
  std::multiset<std::string> want;
  for (std::size_t i = 0; i < keys.size(); ++i) want.insert(keys[i] + "|" + datas[i]);
  EXPECT_EQ(got, want);
}

TEST_F(KinesisIntegration, PutRecordRoutesByExplicitHashKey) {
  const std::string name = make_stream(2);
  auto r = k_->put_record(name, "any", "hello", "170141183460469231731687303715884105728");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->shard_id, "shardId-000000000001");
  auto l = k_->put_record(name, "any", "hello", "0");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->shard_id, "shardId-000000000000");
  const auto recs = read_shard(name, "shardId-000000000001");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].data, "hello");
  EXPECT_EQ(recs[0].sequence_number, r->sequence_number);
}

TEST_F(KinesisIntegration, SplitAndMergeShards) {
  const std::string name = make_stream(1);
  ASSERT_TRUE(k_->split_shard(name, "shardId-000000000000", HashKey(1ULL << 63, 0)).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(name, 30s).ok());
  auto shards = k_->list_shards(name);
  ASSERT_TRUE(shards.ok());
  ASSERT_EQ(shards->size(), 3u);
  EXPECT_FALSE((*shards)[0].is_open()) << "the parent is closed";
  std::vector<std::string> children;
  for (const Shard& s : *shards)
    if (s.parent_shard_id == "shardId-000000000000") children.push_back(s.shard_id);
  ASSERT_EQ(children.size(), 2u);
  ASSERT_TRUE(k_->merge_shards(name, children[0], children[1]).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(name, 30s).ok());
  shards = k_->list_shards(name);
  ASSERT_TRUE(shards.ok());
  ASSERT_EQ(shards->size(), 4u);
  const Shard& merged = shards->back();
  EXPECT_EQ(merged.parent_shard_id, children[0]);
  EXPECT_EQ(merged.adjacent_parent_shard_id, children[1]);
  EXPECT_EQ(merged.hash_key_range, HashKeyRange{});
}

TEST_F(KinesisIntegration, ErrorsAreClassified) {
  auto missing = k_->describe_stream_summary("no-such-stream-xyz");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().aws_error_code(), "ResourceNotFoundException");
  EXPECT_EQ(missing.status().retry(), RetryClass::kNone);
  const std::string name = make_stream(1);
  std::vector<PutRecordsEntry> too_many(501, PutRecordsEntry{"k", "d", ""});
  auto r = k_->put_records(name, too_many);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  auto bad_iter = k_->get_records("not-an-iterator");
  EXPECT_EQ(bad_iter.status().code(), StatusCode::kInvalidArgument)
      << bad_iter.status().to_string();
  auto bad_seq = k_->get_shard_iterator(name, "shardId-000000000000",
                                        {ShardIteratorType::kAtSequenceNumber, "123", 0});
  EXPECT_FALSE(bad_seq.ok());
}

TEST_F(KinesisIntegration, TransportFailureIsUnavailable) {
  // Nothing listens on port 9 of loopback: connection refused, retried, then kUnavailable.
  auto cfg = local_config("http://127.0.0.1:9");
  cfg.max_attempts = 2;
  auto c = KinesisClient::create(cfg);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->list_streams();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
  EXPECT_EQ(r.status().retry(), RetryClass::kSameCall);
}

// ---- through the fault-injection proxy ----------------------------------------------------

class ProxyIntegration : public KinesisIntegration {
 protected:
  void SetUp() override {
    KinesisIntegration::SetUp();
    if (IsSkipped()) return;
    proxy_ = env("SHARDLINE_PROXY_ENDPOINT");
    if (proxy_.empty())
      GTEST_SKIP() << "SHARDLINE_PROXY_ENDPOINT unset: scripts/servers start proxy";
    auto c = KinesisClient::create(local_config(proxy_));
    ASSERT_TRUE(c.ok());
    via_proxy_ = std::move(*c);
  }
  void TearDown() override {
    if (!proxy_.empty())
      configure({{"recordFailureProbability", 0},
                 {"throttleProbability", 0},
                 {"error500Probability", 0},
                 {"seed", 1}});
    KinesisIntegration::TearDown();
  }
  void configure(const nlohmann::json& j) {
    ASSERT_EQ(shardline::testing::configure_fault_proxy(proxy_, j.dump()), "");
  }
  std::string proxy_;
  std::unique_ptr<KinesisClient> via_proxy_;
};

TEST_F(ProxyIntegration, PartialPutRecordsFailuresAreReportedPerEntry) {
  const std::string name = make_stream(2);
  configure({{"recordFailureProbability", 0.5}, {"seed", 7}});
  std::vector<std::string> datas;
  for (int i = 0; i < 200; ++i) datas.push_back("r" + std::to_string(i));
  std::vector<PutRecordsEntry> entries;
  for (const auto& d : datas) entries.push_back({d, d, ""});
  auto r = via_proxy_->put_records(name, entries);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->records.size(), entries.size());
  int failed = 0;
  std::set<std::string> ok_data;
  for (std::size_t i = 0; i < r->records.size(); ++i) {
    if (r->records[i].ok()) {
      ok_data.insert(datas[i]);
    } else {
      ++failed;
      EXPECT_EQ(r->records[i].error_code, "ProvisionedThroughputExceededException");
    }
  }
  EXPECT_EQ(failed, r->failed_record_count);
  EXPECT_GT(failed, 50);
  EXPECT_LT(failed, 150);
  configure({{"recordFailureProbability", 0}});
  // Failed entries were really not written: the stream holds exactly the successes.
  std::set<std::string> stored;
  for (const char* shard : {"shardId-000000000000", "shardId-000000000001"})
    for (const auto& rec : read_shard(name, shard)) stored.insert(rec.data);
  EXPECT_EQ(stored, ok_data);
}

TEST_F(ProxyIntegration, ThrottlingAndServerErrorsAreRetriedThenReported) {
  const std::string name = make_stream(1);
  const std::vector<PutRecordsEntry> one{{"k", "v", ""}};
  configure({{"throttleProbability", 1}});
  auto t = via_proxy_->put_records(name, one);
  EXPECT_EQ(t.status().code(), StatusCode::kResourceExhausted) << t.status().to_string();
  EXPECT_EQ(t.status().aws_error_code(), "ProvisionedThroughputExceededException");
  EXPECT_EQ(t.status().retry(), RetryClass::kSameCall);
  configure({{"throttleProbability", 0}, {"error500Probability", 1}});
  auto e = via_proxy_->put_records(name, one);
  EXPECT_EQ(e.status().code(), StatusCode::kUnavailable) << e.status().to_string();
  EXPECT_EQ(e.status().http_status(), 500);
  // A failure rate below 1 is absorbed by the blocking call's retries.
  configure({{"error500Probability", 0.3}, {"seed", 3}});
  for (int i = 0; i < 20; ++i) {
    auto ok = via_proxy_->put_records(name, one);
    EXPECT_TRUE(ok.ok()) << ok.status().to_string();
  }
}

// ---- the CLI ------------------------------------------------------------------------------

std::string run(const std::string& cmd, int* rc) { return run_command(cmd, rc); }

TEST_F(KinesisIntegration, TailFollowsChildrenAfterASplit) {
  const std::string name = make_stream(1);
  // Records in the parent, then a split, then records in both children.
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(k_->put_record(name, "p" + std::to_string(i), "before").ok());
  ASSERT_TRUE(k_->split_shard(name, "shardId-000000000000", HashKey(1ULL << 63, 0)).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(name, 30s).ok());
  // An aggregate too, to see deaggregation in tail.
  AggregateBuilder b;
  const std::string d1 = "agg-1", d2 = "agg-2";
  b.add("x", HashKey(0, 5), d1);
  b.add("y", HashKey(0, 6), d2);
  const KinesisRecord agg = b.build();
  ASSERT_TRUE(k_->put_record(name, agg.partition_key, agg.data, agg.explicit_hash_key).ok());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(k_->put_record(name, "c" + std::to_string(i), "after").ok());

  int rc = -1;
  const std::string cmd = std::string(SHARDLINE_CLI_PATH) + " tail --stream " + name +
                          " --endpoint-url " + endpoint_ + " --until-idle 1.5 2>&1";
  setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "test-secret", 1);
  const std::string out = run(cmd, &rc);
  ASSERT_EQ(rc, 0) << out;
  std::vector<nlohmann::json> lines;
  std::size_t pos = 0;
  while (pos < out.size()) {
    const auto nl = out.find('\n', pos);
    lines.push_back(nlohmann::json::parse(out.substr(pos, nl - pos)));
    pos = nl == std::string::npos ? out.size() : nl + 1;
  }
  ASSERT_EQ(lines.size(), 12u) << out;
  // Parent first: the five "before" records all come before any child record.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(lines[i]["shardId"], "shardId-000000000000");
    EXPECT_EQ(lines[i]["data"], "YmVmb3Jl");
  }
  int aggregated = 0;
  for (const auto& l : lines) {
    EXPECT_TRUE(l.contains("sequenceNumber"));
    EXPECT_GT(l["approximateArrivalTimestamp"].get<std::int64_t>(), 1500000000000);
    if (l["aggregated"].get<bool>()) {
      ++aggregated;
      EXPECT_EQ(l["shardId"], "shardId-000000000001");
    }
  }
  EXPECT_EQ(aggregated, 2);
}

TEST_F(KinesisIntegration, StreamsCliReportsErrorsInOneLine) {
  int rc = -1;
  setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "test-secret", 1);
  const std::string out =
      run(std::string(SHARDLINE_CLI_PATH) + " streams describe no-such-stream-q" +
              " --endpoint-url " + endpoint_ + " 2>&1",
          &rc);
  EXPECT_EQ(rc, 3);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("ResourceNotFoundException"), std::string::npos) << out;
  EXPECT_NE(out.find("request-id="), std::string::npos) << out;
  EXPECT_EQ(out.find("test-secret"), std::string::npos);
}

}  // namespace
}  // namespace shardline
