// The Worker with its real threads over a fake Kinesis API and a SQLite lease file: settings
// validation, delivery, graceful shutdown, metrics exports, and fatal errors ending run().
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "aws/service_client.h"
#include "shardline/consumer.h"
#include "shardline/dynamodb.h"
#include "support/fake_consumer_kinesis.h"
#include "support/faulty_lease_store.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using testing::FakeConsumerKinesis;
using testing::poll_until;

class Collecting : public RecordProcessor {
 public:
  Collecting(std::mutex& mu, std::multiset<std::string>& seen) : mu_(mu), seen_(seen) {}
  Status initialize(const InitializationInput&) override { return {}; }
  Status process_records(const ProcessRecordsInput& in) override {
    {
      std::lock_guard lk(mu_);
      for (const auto& r : in.records) seen_.insert(std::string(r.data));
    }
    return in.checkpointer.checkpoint();
  }

 private:
  std::mutex& mu_;
  std::multiset<std::string>& seen_;
};

class WorkerTest : public ::testing::Test {
 protected:
  WorkerOptions options() {
    WorkerOptions o;
    o.config.application_name = "app";
    o.config.stream_name = "stream";
    o.config.worker_id = "w1";
    o.config.initial_position_in_stream = "TRIM_HORIZON";
    o.config.idle_time_between_reads_in_millis = 10;
    o.config.lease_taker_interval_millis = 50;
    o.config.processing_threads = 2;
    o.kinesis = kinesis_;
    o.lease_store = db_.store();
    o.log = [](LogLevel, std::string_view) {};
    return o;
  }
  RecordProcessorFactory factory() {
    return [this](const std::string&) { return std::make_unique<Collecting>(mu_, seen_); };
  }
  std::size_t seen() {
    std::lock_guard lk(mu_);
    return seen_.size();
  }

  std::shared_ptr<FakeConsumerKinesis> kinesis_ = std::make_shared<FakeConsumerKinesis>();
  testing::TempSqliteLeaseStore db_;
  std::mutex mu_;
  std::multiset<std::string> seen_;
};

// A Kinesis whose ListShards never answers (a black-holed endpoint): only the worker's
// cancellation ends the call.
class NeverAnsweringKinesis final : public ConsumerKinesisApi {
 public:
  Result<std::vector<Shard>> list_shards(const CancelToken* cancel) override {
    ++calls;
    if (cancel == nullptr) return Status::internal("the worker passed no cancel token");
    // Bounded, so a broken cancellation fails the test instead of hanging it.
    if (cancel->sleep_for(std::chrono::seconds(20)))
      return Status::deadline_exceeded("ListShards was not cancelled within 20 s");
    cancelled = true;
    return Status::cancelled("ListShards: cancelled");
  }
  Result<std::string> get_shard_iterator(const std::string&, const ShardIteratorStart&,
                                         const CancelToken*) override {
    return Status::internal("not reached");
  }
  void get_records(const std::string&, int,
                   std::function<void(Result<GetRecordsResult>)> done) override {
    done(Status::internal("not reached"));
  }
  std::atomic<int> calls{0};
  std::atomic<bool> cancelled{false};
};

TEST_F(WorkerTest, ShutdownDuringStartUpCancelsTheBlockingCallAndIsNotAnError) {
  auto never = std::make_shared<NeverAnsweringKinesis>();
  auto o = options();
  o.kinesis = never;
  auto w = Worker::create(o, factory());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  Status started = Status::internal("start() did not return");
  std::thread t([&] { started = (*w)->start(); });
  ASSERT_TRUE(poll_until([&] { return never->calls.load() >= 1; }));
  EXPECT_FALSE((*w)->stopped());
  (*w)->shutdown();
  t.join();
  EXPECT_TRUE(never->cancelled)
      << "start() returned, but not because shutdown cancelled ListShards";
  EXPECT_TRUE(started.ok()) << started.to_string();
  EXPECT_TRUE((*w)->stopped());
}

// The lease store's start-up calls take no token; the worker's CancelScope reaches them: a
// DynamoDB whose DescribeTable never answers is cut short by the shutdown too.
TEST_F(WorkerTest, ShutdownDuringStartUpCancelsTheLeaseTableSetUp) {
  std::atomic<int> calls{0};
  std::atomic<bool> cancelled{false};
  auto client = DynamoDbClient::create_with_transport(
      [&](std::string_view operation, const std::string&) -> Result<std::string> {
        ++calls;
        const CancelToken* cancel = detail::scoped_cancel_token();
        if (cancel == nullptr)
          return Status::internal("no cancel scope around " + std::string(operation));
        // Bounded, so a broken cancellation fails the test instead of hanging it.
        if (cancel->sleep_for(std::chrono::seconds(20))) {
          return Status::deadline_exceeded(std::string(operation) + " was not cancelled");
        }
        cancelled = true;
        return Status::cancelled(std::string(operation) + ": cancelled");
      });
  auto store =
      make_dynamodb_lease_store(std::shared_ptr<DynamoDbClient>(std::move(client)), "leases");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto o = options();
  o.lease_store = std::shared_ptr<LeaseStore>(std::move(*store));
  auto w = Worker::create(o, factory());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  Status started = Status::internal("start() did not return");
  std::thread t([&] { started = (*w)->start(); });
  ASSERT_TRUE(poll_until([&] { return calls.load() >= 1; }));
  (*w)->shutdown();
  t.join();
  EXPECT_TRUE(cancelled) << "start() returned, but not because shutdown cancelled DescribeTable";
  EXPECT_TRUE(started.ok()) << started.to_string();
  EXPECT_TRUE((*w)->stopped());
}

TEST_F(WorkerTest, InvalidSettingsNameTheKey) {
  auto o = options();
  o.config.failover_time_millis = 5;
  auto w = Worker::create(o, factory());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(w.status().message().find("failoverTimeMillis"), std::string_view::npos);

  o = options();
  o.config.application_name.clear();
  EXPECT_NE(Worker::create(o, factory()).status().message().find("applicationName"),
            std::string_view::npos);
  o = options();
  o.config.stream_name.clear();
  EXPECT_NE(Worker::create(o, factory()).status().message().find("streamName"),
            std::string_view::npos);
  o = options();
  o.config.retrieval_mode = "SUBSCRIBE";
  EXPECT_NE(Worker::create(o, factory()).status().message().find("retrievalMode"),
            std::string_view::npos);
  o = options();
  o.config.initial_position_in_stream = "AT_TIMESTAMP";
  EXPECT_NE(Worker::create(o, factory()).status().message().find("initialTimestampMillis"),
            std::string_view::npos);
  EXPECT_FALSE(Worker::create(options(), nullptr).ok());
}

TEST_F(WorkerTest, DeliversEveryShardAndReleasesOnShutdown) {
  kinesis_->add_shard("shardId-0", {HashKey(), HashKey(1ULL << 63, 0)});
  kinesis_->add_shard("shardId-1", {HashKey(1ULL << 63, 1), HashKey::max()});
  for (int i = 0; i < 50; ++i) {
    kinesis_->add_record("shardId-0", "a" + std::to_string(i));
    kinesis_->add_record("shardId-1", "b" + std::to_string(i));
  }
  auto w = Worker::create(options(), factory());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  ASSERT_TRUE((*w)->start().ok());
  // The metrics count a batch once process_records has returned.
  ASSERT_TRUE(poll_until([&] { return (*w)->metrics().records_processed == 100; }));
  EXPECT_EQ(seen(), 100u);
  WorkerMetrics m = (*w)->metrics();
  EXPECT_EQ(m.hash_range_holes, 0);
  EXPECT_EQ(m.records_processed, 100);
  EXPECT_EQ(m.current_leases, 2);
  EXPECT_EQ(m.leases_created, 2);
  ASSERT_EQ(m.shards.size(), 2u);
  EXPECT_EQ(m.shards[0].state, "PROCESSING");
  const std::string prom = m.to_prometheus("w1");
  EXPECT_NE(prom.find("shardline_consumer_records_processed_total{worker=\"w1\"} 100"),
            std::string::npos)
      << prom;
  const std::string emf = m.to_emf("app", "w1", 1700000000000);
  EXPECT_NE(emf.find("\"RecordsProcessed\":100"), std::string::npos) << emf;
  EXPECT_NE(emf.find("\"Namespace\":\"app\""), std::string::npos) << emf;

  (*w)->shutdown();
  ASSERT_TRUE((*w)->wait(20s));
  EXPECT_TRUE((*w)->stopped());
  EXPECT_EQ((*w)->metrics().current_leases, 0);
  EXPECT_EQ((*w)->metrics().released_leases, 2);
  auto leases = db_.store()->list_leases();
  ASSERT_TRUE(leases.ok());
  for (const Lease& l : *leases) {
    EXPECT_EQ(l.lease_owner, "") << l.lease_key;
    EXPECT_NE(l.checkpoint, kCheckpointTrimHorizon) << l.lease_key;  // checkpointed
  }
}

TEST_F(WorkerTest, RunReturnsTheErrorWhenTheLeaseTableIsGone) {
  kinesis_->add_shard("shardId-0");
  auto w = Worker::create(options(), factory());
  ASSERT_TRUE(w.ok());
  Status result;
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    result = (*w)->run();
    returned = true;
  });
  ASSERT_TRUE(poll_until([&] { return (*w)->metrics().current_leases == 1; }));
  // Someone drops the table: every scan now fails with kNotFound; after three the worker stops.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE shardline_leases", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  ASSERT_TRUE(poll_until([&] { return returned.load(); }, 30s));
  runner.join();
  EXPECT_EQ(result.code(), StatusCode::kNotFound) << result.to_string();
  EXPECT_TRUE((*w)->stopped());
}

TEST_F(WorkerTest, AFailedStartReturnsTheErrorAndLeavesTheWorkerStopped) {
  auto faulty = std::make_shared<testing::FaultyLeaseStore>(db_.store());
  faulty->script(testing::LeaseOp::kInitialize, {testing::Fault::kUnavailableBefore});
  auto o = options();
  o.lease_store = faulty;
  auto w = Worker::create(o, factory());
  ASSERT_TRUE(w.ok());
  Status s = (*w)->start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.to_string();
  EXPECT_TRUE((*w)->stopped());
  EXPECT_TRUE((*w)->wait(1s));
}

TEST_F(WorkerTest, ShutdownBeforeStartIsImmediate) {
  auto w = Worker::create(options(), factory());
  ASSERT_TRUE(w.ok());
  (*w)->shutdown();
  EXPECT_TRUE((*w)->wait(1s));
}

}  // namespace
}  // namespace shardline
