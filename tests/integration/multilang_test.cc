// `shardline multilang` end to end on kinesalite (SHARDLINE_KINESIS_ENDPOINT) and dynalite
// (SHARDLINE_DYNAMODB_ENDPOINT), with real KCL clients as children and unchanged MultiLangDaemon
// properties files:
//  - the official Node.js client library (npm aws-kcl, its lib/kcl; no Java, no kcl-bootstrap)
//    on the DynamoDB lease table of a (simulated, dead) Java MultiLangDaemon fleet: it takes the
//    Java leases over and resumes from their checkpoints, gets every record put by the shardline
//    producer (KPL-aggregated), follows a split (shardEnded, SHARD_END, children), and SIGTERM
//    ends it cleanly (shutdownRequested then leaseLost, leases released, exit 0);
//  - a Python child written with the standard library only (tests/multilang/python_processor.py)
//    on a SQLite lease file: sub-sequence checkpoints land in the lease table, and a child
//    killed with SIGKILL costs its shard a restart from the checkpoint, not the daemon.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/digest.h"
#include "shardline/consumer.h"
#include "shardline/dynamodb.h"
#include "shardline/kinesis.h"
#include "shardline/lease_store.h"
#include "shardline/producer.h"
#include "support/cli_process.h"
#include "support/local_aws.h"
#include "support/local_stream_test.h"
#include "support/scoped_env.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using shardline::testing::poll_until;

// The CLI as a separate process (stdout and stderr to files), stopped with SIGTERM.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& args, const std::string& out, const std::string& err)
      : cli_(args, out, err) {}

  pid_t pid() const { return cli_.pid(); }
  bool running() const { return pid() > 0 && ::kill(pid(), 0) == 0 && !exited_zombie(); }

  // SIGTERM, then the exit status (-1 signalled, -2 not within the timeout) and stderr.
  int terminate(std::string& err, std::chrono::milliseconds timeout = 60s) {
    ::kill(cli_.pid(), SIGTERM);
    return wait(err, timeout);
  }
  int wait(std::string& err, std::chrono::milliseconds timeout = 60s) {
    const testing::CliResult r = cli_.wait(timeout);
    err = r.err;
    return r.rc;
  }

 private:
  bool exited_zombie() const {
    std::ifstream stat("/proc/" + std::to_string(pid()) + "/stat");
    std::string line;
    std::getline(stat, line);
    return line.find(") Z") != std::string::npos;
  }
  testing::CliProcess cli_;
};

// What a child wrote to its --out file.
struct ChildOutput {
  std::vector<json> records;  // {"event":"record", shardId, sequenceNumber, subSequenceNumber, ...}
  std::vector<json> events;   // the others
  std::multiset<std::string> data;  // decoded record data
};

ChildOutput read_output(const std::string& path) {
  ChildOutput o;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) continue;  // a line being written
    if (j.value("event", "") == "record") {
      o.records.push_back(j);
      o.data.insert(detail::base64_decode(j.value("data", "")).value_or("?"));
    } else {
      o.events.push_back(j);
    }
  }
  return o;
}

int count_events(const ChildOutput& o, const std::string& event, const std::string& shard = "") {
  int n = 0;
  for (const auto& e : o.events) {
    if (e.value("event", "") == event && (shard.empty() || e.value("shardId", "") == shard)) ++n;
  }
  return n;
}

// The last record (sequence, sub-sequence) a child was given per shard.
std::map<std::string, ExtendedSequenceNumber> last_records(const ChildOutput& o) {
  std::map<std::string, ExtendedSequenceNumber> last;
  for (const auto& r : o.records) {
    const ExtendedSequenceNumber e{r.value("sequenceNumber", ""),
                                   r.value("subSequenceNumber", std::int64_t{0})};
    const std::string shard = r.value("shardId", "");
    auto it = last.find(shard);
    if (it == last.end() || compare(it->second, e) < 0) last[shard] = e;
  }
  return last;
}

class MultiLangIntegration : public testing::LocalStreamTest {
 protected:
  MultiLangIntegration() : LocalStreamTest("multilang") {}
  void SetUp() override {
    ddb_ = testing::env_or_empty("SHARDLINE_DYNAMODB_ENDPOINT");
    LocalStreamTest::SetUp();
  }

  // Puts `n` user records through the shardline producer (KPL aggregation on), data
  // "<tag>-<i>", after warm-up records "<tag>-warm-up-*". Returns the data of all.
  std::set<std::string> produce(const std::string& stream, const std::string& tag, int n) {
    ProducerConfig cfg;
    cfg.record_max_buffered_time = 100;
    ProducerOptions o;
    o.aws = testing::local_aws_config(endpoint_);
    auto p = Producer::create(cfg, o);
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    std::set<std::string> want;
    std::atomic<int> failed{0};
    // Warm-up pairs first, until the producer has the shard map and aggregates.
    EXPECT_TRUE(testing::warm_up_until_aggregating(**p, [&](int round) {
      for (int k = 0; k < 2; ++k) {
        const std::string data =
            tag + "-warm-up-" + std::to_string(round) + "-" + std::to_string(k);
        want.insert(data);
        EXPECT_TRUE((*p)->put(stream, "warm-up", data,
                              [&failed](PutResult&& r) {
                                if (!r.success) failed.fetch_add(1);
                              })
                        .ok());
      }
    }));
    for (int i = 0; i < n; ++i) {
      const std::string data = tag + "-" + std::to_string(i);
      want.insert(data);
      EXPECT_TRUE((*p)->put(stream, "pk-" + tag + "-" + std::to_string(i % 97), data,
                            [&failed](PutResult&& r) {
                              if (!r.success) failed.fetch_add(1);
                            })
                      .ok());
    }
    EXPECT_TRUE((*p)->flush_sync(60s).ok());
    EXPECT_TRUE((*p)->close(10s).ok());
    EXPECT_EQ(failed.load(), 0);
    return want;
  }

  std::string write_properties(const std::string& name, const std::string& body) {
    std::ofstream(path(name)) << body;
    return path(name);
  }

  // Waits until the child output holds every one of `want`; the missing count otherwise.
  bool wait_for(const std::string& out, const std::set<std::string>& want,
                std::chrono::milliseconds timeout = 60s) {
    return poll_until(
        [&] {
          const ChildOutput o = read_output(out);
          for (const auto& w : want) {
            if (!o.data.count(w)) return false;
          }
          return true;
        },
        timeout);
  }

  std::string ddb_;
};

// An item as the Java KCL 2.x daemon leaves it in its table: owned by a worker that has died.
Item java_lease_item(const Shard& s, const std::string& checkpoint) {
  using AV = AttributeValue;
  return Item{
      {"leaseKey", AV::string(s.shard_id)},
      {"leaseOwner", AV::string("java-mld-host-1")},
      {"leaseCounter", AV::number(7)},
      {"checkpoint", AV::string(checkpoint)},
      {"checkpointSubSequenceNumber", AV::number(0)},
      {"ownerSwitchesSinceCheckpoint", AV::number(0)},
      {"startingHashKey", AV::string(s.hash_key_range.start.to_decimal())},
      {"endingHashKey", AV::string(s.hash_key_range.end.to_decimal())},
  };
}

TEST_F(MultiLangIntegration, NodeKclChildTakesOverAJavaFleetTableFollowsASplitAndStops) {
  if (ddb_.empty()) GTEST_SKIP() << "SHARDLINE_DYNAMODB_ENDPOINT unset: scripts/servers start";
  const std::string src = SHARDLINE_SOURCE_DIR;
  ASSERT_TRUE(std::filesystem::exists(src + "/node_modules/aws-kcl/lib/kcl/kcl_process.js"))
      << "npm aws-kcl is missing: scripts/setup installs it";
  const std::string stream = make_stream(2);
  auto shards = k_->list_shards(stream);
  ASSERT_TRUE(shards.ok() && shards->size() == 2u);

  // What the Java fleet had consumed: 20 records, checkpointed at the last one of each shard.
  std::vector<std::string> old_text;
  for (int i = 0; i < 20; ++i) old_text.push_back("old-" + std::to_string(i));
  std::vector<PutRecordsEntry> old;
  for (const std::string& t : old_text) old.push_back({t, t, ""});
  const std::set<std::string> old_data(old_text.begin(), old_text.end());
  auto put = k_->put_records(stream, old);
  ASSERT_TRUE(put.ok() && put->failed_record_count == 0);
  std::map<std::string, std::string> java_checkpoint;
  for (const auto& r : put->records) {
    std::string& c = java_checkpoint[r.shard_id];
    if (c.empty() || compare({c, 0}, {r.sequence_number, 0}) < 0) c = r.sequence_number;
  }
  const std::string table = stream + "-leases";
  auto ddb = DynamoDbClient::create(testing::local_aws_config(ddb_));
  ASSERT_TRUE(ddb.ok());
  struct DropTable {
    DynamoDbClient& c;
    std::string t;
    ~DropTable() { (void)c.delete_table(t); }
  } drop{**ddb, table};
  {
    auto store = make_dynamodb_lease_store(testing::local_aws_config(ddb_), table);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->initialize().ok());
    for (const Shard& s : *shards) {
      ASSERT_TRUE(java_checkpoint.count(s.shard_id)) << "every shard got old records";
      ASSERT_TRUE((*ddb)->put_item(table, java_lease_item(s, java_checkpoint[s.shard_id])).ok());
    }
  }

  const std::set<std::string> first = produce(stream, "a", 300);
  const std::string props =
      write_properties("node.properties",
                       "# a KCL MultiLangDaemon file, as the Java daemon reads it\n"
                       "executableName = node " +
                           src + "/tests/multilang/node_processor.js --out " + path("node.out") +
                           "\n"
                           "streamName = " +
                           stream +
                           "\n"
                           "applicationName = " +
                           stream +
                           "-app\n"
                           "tableName = " +
                           table +
                           "\n"
                           "AWSCredentialsProvider = DefaultCredentialsProvider\n"
                           "processingLanguage = nodejs\n"
                           "initialPositionInStream = TRIM_HORIZON\n"
                           "regionName = us-east-1\n"
                           "kinesisEndpoint = " +
                           endpoint_ +
                           "\n"
                           "dynamoDBEndpoint = " +
                           ddb_ +
                           "\n"
                           "failoverTimeMillis = 1500\n"
                           "idleTimeBetweenReadsInMillis = 100\n"
                           "parentShardPollIntervalMillis = 300\n"
                           "shardSyncIntervalMillis = 1000\n"
                           "cleanupLeasesUponShardCompletion = false\n"
                           "timeoutInSeconds = 30\n"
                           "leaseTakerIntervalMillis = 300\n");
  Daemon d({"multilang", props}, path("d.out"), path("d.err"));
  ASSERT_TRUE(wait_for(path("node.out"), first)) << testing::read_file(path("d.err"));

  // Resumed from the Java checkpoints: nothing the Java fleet had processed comes again.
  ChildOutput o = read_output(path("node.out"));
  for (const auto& old_one : old_data) EXPECT_EQ(o.data.count(old_one), 0u) << old_one;
  for (const auto& e : o.events) {
    if (e.value("event", "") != "initialize") continue;
    EXPECT_EQ(e.value("sequenceNumber", ""), java_checkpoint[e.value("shardId", "")]) << e;
  }

  // A split: the parent ends (shardEnded, SHARD_END), its children start after it.
  const std::string parent = (*shards)[0].shard_id;
  ASSERT_EQ((*shards)[0].hash_key_range.start, HashKey());
  ASSERT_TRUE(k_->split_shard(stream, parent, HashKey(1ULL << 62, 0)).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(stream, 30s).ok());
  const std::set<std::string> second = produce(stream, "b", 200);
  ASSERT_TRUE(wait_for(path("node.out"), second)) << testing::read_file(path("d.err"));
  auto store = make_dynamodb_lease_store(testing::local_aws_config(ddb_), table);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(poll_until([&] {
    auto l = (*store)->get_lease(parent);
    return l.ok() && l->has_value() && (*l)->checkpoint == kCheckpointShardEnd;
  }));
  o = read_output(path("node.out"));
  EXPECT_EQ(count_events(o, "shardEnded", parent), 1);

  std::string err;
  ASSERT_EQ(d.terminate(err), 0) << err;
  o = read_output(path("node.out"));
  // Every record at least once, and each exactly once here (no child failed).
  std::multiset<std::string> want(first.begin(), first.end());
  want.insert(second.begin(), second.end());
  EXPECT_EQ(o.data, want);
  // Leases released at the last record each child was given (checkpoint() = all delivered).
  auto leases = (*store)->list_leases();
  ASSERT_TRUE(leases.ok());
  EXPECT_EQ(leases->size(), 4u);  // 2 shards, 2 children
  const auto last = last_records(o);
  int held_at_the_end = 0;
  for (const Lease& l : *leases) {
    EXPECT_EQ(l.lease_owner, "") << l.lease_key;
    if (l.lease_key == parent) continue;
    ++held_at_the_end;
    auto it = last.find(l.lease_key);
    if (it == last.end()) continue;  // a child shard no record went to
    EXPECT_EQ(l.checkpoint, it->second.sequence_number) << l.lease_key;
    EXPECT_EQ(l.checkpoint_sub_sequence_number, it->second.sub_sequence_number) << l.lease_key;
    EXPECT_EQ(count_events(o, "shutdownRequested", l.lease_key), 1) << l.lease_key;
    EXPECT_EQ(count_events(o, "leaseLost", l.lease_key), 1) << l.lease_key;
  }
  EXPECT_EQ(held_at_the_end, 3);
  // The summary line.
  std::string summary = err.substr(0, err.find_last_not_of('\n') + 1);
  summary = summary.substr(summary.rfind('\n') == std::string::npos ? 0 : summary.rfind('\n') + 1);
  const json s = json::parse(summary, nullptr, false);
  ASSERT_TRUE(s.is_object()) << err;
  EXPECT_EQ(s["records"], want.size()) << s;
  EXPECT_EQ(s["children"]["started"], 4) << s;
  EXPECT_EQ(s["children"]["restarts"], 0) << s;
}

TEST_F(MultiLangIntegration, PythonStdlibChildSubSequenceCheckpointsAndARestartAfterSigkill) {
  const std::string src = SHARDLINE_SOURCE_DIR;
  const std::string stream = make_stream(1);
  const std::set<std::string> first = produce(stream, "p", 500);
  const std::string props = write_properties(
      "py.properties", "executableName = python3 " + src +
                           "/tests/multilang/python_processor.py --out " + path("py.out") +
                           "\n"
                           "streamName = " +
                           stream +
                           "\n"
                           "applicationName = py-app\n"
                           "leaseStore = sqlite:" +
                           path("py.db") +
                           "\n"
                           "initialPositionInStream = TRIM_HORIZON\n"
                           "regionName = us-east-1\n"
                           "kinesisEndpoint = " +
                           endpoint_ +
                           "\n"
                           "idleTimeBetweenReadsInMillis = 100\n"
                           "taskBackoffTimeMillis = 100\n"
                           "timeoutInSeconds = 20\n");
  Daemon d({"multilang", "-p", props}, path("d.out"), path("d.err"));
  ASSERT_TRUE(wait_for(path("py.out"), first)) << testing::read_file(path("d.err"));

  // The checkpoint is the exact (sequence, sub-sequence) of the last record: inside an
  // aggregate.
  auto lease = [&]() -> std::optional<Lease> {
    auto store = make_sqlite_lease_store(path("py.db"), "py-app");
    if (!store.ok()) return std::nullopt;
    auto l = (*store)->list_leases();
    if (!l.ok() || l->size() != 1) return std::nullopt;
    return l->front();
  };
  ChildOutput o = read_output(path("py.out"));
  const auto last = last_records(o);
  ASSERT_EQ(last.size(), 1u);
  ASSERT_TRUE(poll_until([&] {
    auto l = lease();
    return l && l->checkpoint == last.begin()->second.sequence_number &&
           l->checkpoint_sub_sequence_number == last.begin()->second.sub_sequence_number;
  })) << testing::read_file(path("d.err"));
  int aggregated = 0;
  for (const auto& r : o.records) aggregated += r.value("subSequenceNumber", 0) > 0 ? 1 : 0;
  EXPECT_GT(aggregated, 0) << "the producer aggregates";

  // SIGKILL the child: the next batch finds it gone, the shard restarts it from the checkpoint.
  long child = 0;
  for (const auto& e : o.events) {
    if (e.value("event", "") == "initialize") child = e.value("pid", 0L);
  }
  ASSERT_GT(child, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(child), SIGKILL), 0);
  const std::set<std::string> second = produce(stream, "q", 100);
  ASSERT_TRUE(wait_for(path("py.out"), second)) << testing::read_file(path("d.err"));
  EXPECT_TRUE(d.running()) << "the daemon survives its child";

  std::string err;
  ASSERT_EQ(d.terminate(err), 0) << err;
  o = read_output(path("py.out"));
  std::multiset<std::string> want(first.begin(), first.end());
  want.insert(second.begin(), second.end());
  EXPECT_EQ(o.data, want) << "each record once: the first child had checkpointed everything";
  EXPECT_EQ(count_events(o, "initialize"), 2);
  EXPECT_EQ(count_events(o, "shutdownRequested"), 1);
  EXPECT_EQ(count_events(o, "leaseLost"), 1);
  EXPECT_EQ(count_events(o, "eof"), 1);
  auto l = lease();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->lease_owner, "");
  EXPECT_NE(err.find("\"restarts\":1"), std::string::npos) << err;
  EXPECT_NE(err.find("killed by signal 9"), std::string::npos) << err;
}

// A stream that does not exist: exit 3 at once, no child started, no wait for a worker that
// never ran.
TEST_F(MultiLangIntegration, MissingStreamExitsThree) {
  const std::string props = write_properties(
      "missing.properties", "executableName = python3 " + std::string(SHARDLINE_SOURCE_DIR) +
                                "/tests/multilang/python_processor.py\n"
                                "streamName = no-such-stream-here\n"
                                "applicationName = missing-app\n"
                                "leaseStore = sqlite:" +
                                path("missing.db") +
                                "\n"
                                "regionName = us-east-1\n"
                                "kinesisEndpoint = " +
                                endpoint_ + "\n");
  Daemon d({"multilang", "--properties", props}, path("m.out"), path("m.err"));
  std::string err;
  EXPECT_EQ(d.wait(err), 3) << err;
  EXPECT_NE(err.find("no-such-stream-here"), std::string::npos) << err;
  EXPECT_EQ(err.find("had not stopped"), std::string::npos) << err;
  EXPECT_NE(err.find("\"started\":0"), std::string::npos) << err;
}

// retrievalMode = FANOUT in an unchanged KCL properties file: the daemon registers the
// consumer on kinesis-local (kinesis-mock), the child gets every record pushed by
// SubscribeToShard and checkpoints, and the lease ends at the last record.
TEST_F(MultiLangIntegration, FanOutPushesEveryRecordToThePythonChild) {
  const std::string local = testing::env_or_empty("SHARDLINE_KINESIS_LOCAL_ENDPOINT");
  if (local.empty()) GTEST_SKIP() << "SHARDLINE_KINESIS_LOCAL_ENDPOINT unset";
  auto k = KinesisClient::create(testing::local_aws_config(local));
  ASSERT_TRUE(k.ok());
  const std::string stream = "ml-efo-" + std::to_string(std::random_device{}() % 1000000000);
  ASSERT_TRUE((*k)->create_stream(stream, 1).ok());
  ASSERT_TRUE((*k)->wait_for_stream_active(stream, 30s).ok());
  std::set<std::string> want;
  std::vector<std::string> keys, data;
  for (int i = 0; i < 100; ++i) {
    keys.push_back("k" + std::to_string(i));
    data.push_back("efo-" + std::to_string(i));
    want.insert(data.back());
  }
  std::vector<PutRecordsEntry> batch;
  for (int i = 0; i < 100; ++i) batch.push_back({keys[i], data[i], {}});
  auto put = (*k)->put_records(stream, batch);
  ASSERT_TRUE(put.ok() && put->failed_record_count == 0);
  const std::string props = write_properties(
      "efo.properties", "executableName = python3 " + std::string(SHARDLINE_SOURCE_DIR) +
                            "/tests/multilang/python_processor.py --out " + path("efo.out") +
                            "\n"
                            "streamName = " +
                            stream +
                            "\n"
                            "applicationName = efo-app\n"
                            "leaseStore = sqlite:" +
                            path("efo.db") +
                            "\n"
                            "initialPositionInStream = TRIM_HORIZON\n"
                            "regionName = us-east-1\n"
                            "retrievalMode = FANOUT\n"
                            "kinesisEndpoint = " +
                            local + "\n");
  Daemon d({"multilang", "-p", props}, path("d.out"), path("d.err"));
  ASSERT_TRUE(wait_for(path("efo.out"), want)) << testing::read_file(path("d.err"));
  std::string err;
  ASSERT_EQ(d.terminate(err), 0) << err;
  const ChildOutput o = read_output(path("efo.out"));
  EXPECT_EQ(o.data, std::multiset<std::string>(want.begin(), want.end()));
  EXPECT_EQ(count_events(o, "shutdownRequested"), 1);
  auto store = make_sqlite_lease_store(path("efo.db"), "efo-app");
  ASSERT_TRUE(store.ok());
  auto leases = (*store)->list_leases();
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  EXPECT_EQ(leases->front().checkpoint, put->records.back().sequence_number);
  EXPECT_EQ(leases->front().lease_owner, "");
  auto sum = (*k)->describe_stream_summary(stream);
  ASSERT_TRUE(sum.ok());
  auto consumer = (*k)->describe_stream_consumer(sum->arn, "efo-app");
  EXPECT_TRUE(consumer.ok()) << "the consumer is named after the application";
  (void)(*k)->delete_stream(stream, true);
}

}  // namespace
}  // namespace shardline
