// The worker against kinesalite (Kinesis) with the SQLite and dynalite (DynamoDB) lease stores,
// with its real threads: every record put is delivered, checkpoints resume exactly, a split
// during consumption delivers parents before children, two workers share the shards and a
// graceful shutdown hands the leases over at once.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "shardline/consumer.h"
#include "shardline/lease_store.h"
#include "support/local_aws.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using shardline::testing::poll_until;

// Records what every processor of a test saw.
struct Seen {
  std::mutex mu;
  std::multiset<std::string> data;
  std::map<std::string, std::vector<std::string>> by_shard;  // data in delivery order
  std::vector<std::string> order;                            // shard of each delivered batch
  std::map<std::string, int> shard_ended;
  std::atomic<int> lease_lost{0};
  std::atomic<int> shutdown_requested{0};
  std::size_t size() {
    std::lock_guard lk(mu);
    return data.size();
  }
  // Records seen at least once (at-least-once delivery may repeat some).
  std::size_t distinct() {
    std::lock_guard lk(mu);
    return std::set<std::string>(data.begin(), data.end()).size();
  }
};

class RecordingProcessor : public RecordProcessor {
 public:
  explicit RecordingProcessor(Seen& seen) : seen_(seen) {}
  Status initialize(const InitializationInput& in) override {
    shard_ = in.shard_id;
    return {};
  }
  Status process_records(const ProcessRecordsInput& in) override {
    {
      std::lock_guard lk(seen_.mu);
      for (const auto& r : in.records) {
        seen_.data.insert(std::string(r.data));
        seen_.by_shard[shard_].push_back(std::string(r.data));
      }
      seen_.order.push_back(shard_);
    }
    return in.checkpointer.checkpoint();
  }
  Status shard_ended(Checkpointer& cp) override {
    {
      std::lock_guard lk(seen_.mu);
      ++seen_.shard_ended[shard_];
    }
    return cp.checkpoint();
  }
  Status lease_lost() override {
    ++seen_.lease_lost;
    return {};
  }
  Status shutdown_requested(Checkpointer& cp) override {
    ++seen_.shutdown_requested;
    return cp.checkpoint();
  }

 private:
  Seen& seen_;
  std::string shard_;
};

class WorkerIntegration : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    endpoint_ = testing::env_or_empty(kinesis_env());
    if (endpoint_.empty()) GTEST_SKIP() << kinesis_env() << " unset: scripts/servers start";
    if (GetParam() == "dynamodb") {
      ddb_ = testing::env_or_empty("SHARDLINE_DYNAMODB_ENDPOINT");
      if (ddb_.empty()) GTEST_SKIP() << "SHARDLINE_DYNAMODB_ENDPOINT unset";
    }
    auto k = KinesisClient::create(testing::local_aws_config(endpoint_));
    ASSERT_TRUE(k.ok());
    k_ = std::move(*k);
    const auto n = std::random_device{}() % 1000000000;
    stream_ = "wi-" + std::to_string(n);
    app_ = "app-" + std::to_string(n);
    dir_ = std::filesystem::temp_directory_path() / ("shardline-wi-" + std::to_string(n));
    std::filesystem::create_directories(dir_);
  }
  virtual const char* kinesis_env() const { return "SHARDLINE_KINESIS_ENDPOINT"; }
  void TearDown() override {
    if (k_) (void)k_->delete_stream(stream_, true);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void create_stream(int shards) {
    ASSERT_TRUE(k_->create_stream(stream_, shards).ok());
    ASSERT_TRUE(k_->wait_for_stream_active(stream_, 30s).ok());
  }
  std::vector<std::string> put(int n, const std::string& prefix) {
    std::vector<std::string> out;
    std::vector<std::string> keys, datas;
    for (int i = 0; i < n; ++i) {
      keys.push_back("pk-" + std::to_string(i));
      datas.push_back(prefix + std::to_string(i));
    }
    for (int i = 0; i < n; i += 500) {
      std::vector<PutRecordsEntry> batch;
      for (int j = i; j < std::min(n, i + 500); ++j) batch.push_back({keys[j], datas[j], {}});
      auto r = k_->put_records(stream_, batch);
      EXPECT_TRUE(r.ok() && r->failed_record_count == 0);
    }
    return datas;
  }
  std::string store_spec() const {
    return GetParam() == "sqlite" ? "sqlite:" + (dir_ / "leases.db").string() : "dynamodb:" + app_;
  }
  std::unique_ptr<Worker> make_worker(Seen& seen, const std::string& id,
                                      std::function<void(ConsumerConfig&)> tweak = {}) {
    WorkerOptions o;
    o.config.application_name = app_;
    o.config.stream_name = stream_;
    o.config.worker_id = id;
    o.config.initial_position_in_stream = "TRIM_HORIZON";
    o.config.failover_time_millis = 3000;
    o.config.idle_time_between_reads_in_millis = 50;
    o.config.parent_shard_poll_interval_millis = 200;
    o.config.lease_taker_interval_millis = 500;
    o.config.lease_store = store_spec();
    o.config.dynamodb_endpoint = ddb_;
    o.config.processing_threads = 2;
    if (tweak) tweak(o.config);
    o.aws = testing::local_aws_config(endpoint_);
    o.log = [](LogLevel l, std::string_view m) {
      if (l >= LogLevel::kWarning)
        std::fprintf(stderr, "[worker] %.*s\n", static_cast<int>(m.size()), m.data());
    };
    auto w = Worker::create(std::move(o), [&seen](const std::string&) {
      return std::make_unique<RecordingProcessor>(seen);
    });
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return w.ok() ? std::move(*w) : nullptr;
  }

  std::string endpoint_, ddb_, stream_, app_;
  std::filesystem::path dir_;
  std::unique_ptr<KinesisClient> k_;
};

// Enhanced fan-out (retrievalMode=FANOUT) against kinesis-local (kinesis-mock): the consumer
// is registered, every record is pushed and delivered once, and a second life of the
// application resumes from the checkpoints with new subscriptions.
class WorkerFanOutIntegration : public WorkerIntegration {
 protected:
  const char* kinesis_env() const override { return "SHARDLINE_KINESIS_LOCAL_ENDPOINT"; }
};

TEST_P(WorkerFanOutIntegration, DeliversEveryRecordAndResumesFromCheckpoints) {
  create_stream(2);
  auto first = put(200, "a-");
  auto fanout = [](ConsumerConfig& c) { c.retrieval_mode = "FANOUT"; };
  Seen seen;
  {
    auto w = make_worker(seen, "w1", fanout);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->start().ok());
    ASSERT_TRUE(poll_until([&] { return seen.size() >= first.size(); }, 60s)) << seen.size();
    w->shutdown();
    ASSERT_TRUE(w->wait(30s));
  }
  EXPECT_EQ(seen.data, std::multiset<std::string>(first.begin(), first.end()));
  EXPECT_EQ(seen.shutdown_requested.load(), 2);
  // The consumer the worker registered: the application's name, ACTIVE.
  auto sum = k_->describe_stream_summary(stream_);
  ASSERT_TRUE(sum.ok());
  auto consumer = k_->describe_stream_consumer(sum->arn, app_);
  ASSERT_TRUE(consumer.ok()) << consumer.status().to_string();
  EXPECT_EQ(consumer->status, "ACTIVE");

  auto second = put(50, "b-");
  Seen again;
  auto w = make_worker(again, "w2", fanout);
  ASSERT_TRUE(w->start().ok());
  ASSERT_TRUE(poll_until([&] { return again.size() >= second.size(); }, 90s)) << again.size();
  w->shutdown();
  ASSERT_TRUE(w->wait(30s));
  EXPECT_EQ(again.data, std::multiset<std::string>(second.begin(), second.end()));
}

INSTANTIATE_TEST_SUITE_P(Store, WorkerFanOutIntegration, ::testing::Values("sqlite"));

TEST_P(WorkerIntegration, DeliversEveryRecordAndResumesFromCheckpoints) {
  create_stream(3);
  auto first = put(300, "a-");
  Seen seen;
  {
    auto w = make_worker(seen, "w1");
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->start().ok());
    ASSERT_TRUE(poll_until([&] { return seen.size() >= first.size(); }, 60s)) << seen.size();
    w->shutdown();
    ASSERT_TRUE(w->wait(30s));
    EXPECT_EQ(w->metrics().current_leases, 0);
  }
  EXPECT_EQ(seen.data, std::multiset<std::string>(first.begin(), first.end()));
  EXPECT_EQ(seen.shutdown_requested.load(), 3);

  // A second life of the application sees only the new records: it resumed from checkpoints.
  auto second = put(100, "b-");
  Seen again;
  auto w = make_worker(again, "w2");
  ASSERT_TRUE(w->start().ok());
  ASSERT_TRUE(poll_until([&] { return again.size() >= second.size(); }, 60s)) << again.size();
  w->shutdown();
  ASSERT_TRUE(w->wait(30s));
  EXPECT_EQ(again.data, std::multiset<std::string>(second.begin(), second.end()));
}

TEST_P(WorkerIntegration, SplitDuringConsumptionDeliversParentsBeforeChildren) {
  create_stream(1);
  auto before = put(200, "p-");
  Seen seen;
  auto w = make_worker(seen, "w1");
  ASSERT_TRUE(w->start().ok());
  ASSERT_TRUE(poll_until([&] { return seen.size() >= before.size(); }, 60s));
  auto shards = k_->list_shards(stream_);
  ASSERT_TRUE(shards.ok());
  ASSERT_TRUE(k_->split_shard(stream_, (*shards)[0].shard_id, HashKey(1ULL << 63, 0)).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(stream_, 30s).ok());
  auto after = put(200, "c-");
  ASSERT_TRUE(poll_until([&] { return seen.size() >= before.size() + after.size(); }, 60s))
      << seen.size();
  w->shutdown();
  ASSERT_TRUE(w->wait(30s));
  std::multiset<std::string> want(before.begin(), before.end());
  want.insert(after.begin(), after.end());
  EXPECT_EQ(seen.data, want);
  std::lock_guard lk(seen.mu);
  EXPECT_EQ(seen.shard_ended[(*shards)[0].shard_id], 1);
  // Every batch of the parent came before any batch of a child.
  auto last_parent = std::find(seen.order.rbegin(), seen.order.rend(), (*shards)[0].shard_id);
  auto first_child = std::find_if(seen.order.begin(), seen.order.end(),
                                  [&](const std::string& s) { return s != (*shards)[0].shard_id; });
  ASSERT_NE(first_child, seen.order.end());
  EXPECT_LT(std::distance(seen.order.begin(), last_parent.base()) - 1,
            std::distance(seen.order.begin(), first_child));
}

TEST_P(WorkerIntegration, MergeDuringConsumptionWaitsForBothParents) {
  create_stream(2);
  auto before = put(200, "m-");
  Seen seen;
  auto w = make_worker(seen, "w1");
  ASSERT_TRUE(w->start().ok());
  ASSERT_TRUE(poll_until([&] { return seen.size() >= before.size(); }, 60s));
  auto shards = k_->list_shards(stream_);
  ASSERT_TRUE(shards.ok());
  ASSERT_EQ(shards->size(), 2u);
  const std::string p0 = (*shards)[0].shard_id, p1 = (*shards)[1].shard_id;
  ASSERT_TRUE(k_->merge_shards(stream_, p0, p1).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(stream_, 30s).ok());
  auto after = put(200, "n-");
  ASSERT_TRUE(poll_until([&] { return seen.size() >= before.size() + after.size(); }, 60s))
      << seen.size();
  w->shutdown();
  ASSERT_TRUE(w->wait(30s));
  std::multiset<std::string> want(before.begin(), before.end());
  want.insert(after.begin(), after.end());
  EXPECT_EQ(seen.data, want);
  std::lock_guard lk(seen.mu);
  EXPECT_EQ(seen.shard_ended[p0], 1);
  EXPECT_EQ(seen.shard_ended[p1], 1);
  // The merged child's first batch came after the last batch of both parents.
  std::size_t last_parent = 0, first_child = seen.order.size();
  for (std::size_t i = 0; i < seen.order.size(); ++i) {
    if (seen.order[i] == p0 || seen.order[i] == p1)
      last_parent = i;
    else if (first_child == seen.order.size())
      first_child = i;
  }
  ASSERT_LT(first_child, seen.order.size());
  EXPECT_LT(last_parent, first_child);
}

TEST_P(WorkerIntegration, TwoWorkersShareShardsAndShutdownHandsOverAtOnce) {
  create_stream(4);
  auto first = put(400, "x-");
  Seen seen;
  auto a = make_worker(seen, "wa");
  auto b = make_worker(seen, "wb");
  ASSERT_TRUE(a->start().ok());
  ASSERT_TRUE(b->start().ok());
  ASSERT_TRUE(poll_until(
      [&] { return a->metrics().current_leases == 2 && b->metrics().current_leases == 2; }, 60s))
      << a->metrics().current_leases << " " << b->metrics().current_leases;
  ASSERT_TRUE(poll_until([&] { return seen.distinct() >= first.size(); }, 60s));
  // A graceful shutdown releases a's leases: b takes them within a taker run, long before
  // they would expire.
  const auto stolen_before = b->metrics().stolen_leases;
  a->shutdown();
  ASSERT_TRUE(a->wait(30s));
  EXPECT_EQ(a->metrics().released_leases, 2);
  {
    AwsClientConfig d = testing::local_aws_config(ddb_);
    auto store = open_lease_store(store_spec(), app_, d);
    ASSERT_TRUE(store.ok());
    auto leases = (*store)->list_leases();
    ASSERT_TRUE(leases.ok());
    for (const Lease& l : *leases) EXPECT_NE(l.lease_owner, "wa") << l.lease_key;
  }
  ASSERT_TRUE(poll_until([&] { return b->metrics().current_leases == 4; }, 30s));
  // Taken as released leases, not stolen.
  EXPECT_EQ(b->metrics().stolen_leases, stolen_before);
  auto more = put(100, "y-");
  ASSERT_TRUE(poll_until([&] { return seen.distinct() >= first.size() + more.size(); }, 60s));
  b->shutdown();
  ASSERT_TRUE(b->wait(30s));
  std::set<std::string> distinct(seen.data.begin(), seen.data.end());
  std::set<std::string> want(first.begin(), first.end());
  want.insert(more.begin(), more.end());
  EXPECT_EQ(distinct, want);
}

INSTANTIATE_TEST_SUITE_P(Stores, WorkerIntegration, ::testing::Values("sqlite", "dynamodb"));

}  // namespace
}  // namespace shardline
