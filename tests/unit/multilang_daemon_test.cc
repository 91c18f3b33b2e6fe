// The MultiLangDaemon as a whole (worker, leases, children) over a fake Kinesis API and a SQLite
// lease file: every record reaches a child, checkpoints land in the lease table, a child that
// dies costs its shard a restart from the checkpoint (and nothing else), the graceful stop sends
// shutdownRequested then leaseLost and releases the leases; and the settings it refuses.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/digest.h"
#include "shardline/multilang.h"
#include "support/fake_consumer_kinesis.h"
#include "support/faulty_lease_store.h"
#include "unit/multilang_test_support.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::FakeConsumerKinesis;
using testing::poll_until;

// Logs every record and event; checkpoints each batch at its last record (sequence and
// sub-sequence); the first child to see the record "die" exits instead (once per test).
constexpr const char* kChild = R"PY(
import os, sys
shard = [None]
def init(m):
    shard[0] = m['shardId']
    log(event='initialize', shard=shard[0], at=m['sequenceNumber'])
def process(m):
    for r in m['records']:
        if r['data'] == 'ZGll' and not os.path.exists(sys.argv[1] + '.died'):
            open(sys.argv[1] + '.died', 'w').close()
            log(event='dying', shard=shard[0])
            sys.exit(5)
        log(event='record', shard=shard[0], data=r['data'], seq=r['sequenceNumber'],
            sub=r['subSequenceNumber'])
    last = m['records'][-1]
    checkpoint(last['sequenceNumber'], last['subSequenceNumber'])
def shutdown(m):
    log(event='shutdownRequested', shard=shard[0])
    checkpoint()
def lost(m):
    log(event='leaseLost', shard=shard[0])
serve({'initialize': init, 'processRecords': process, 'shutdownRequested': shutdown,
       'leaseLost': lost})
log(event='exit', shard=shard[0])
)PY";

class MultiLangDaemonTest : public ::testing::Test {
 protected:
  MultiLangDaemonOptions options() {
    MultiLangDaemonOptions o;
    o.consumer.application_name = "app";
    o.consumer.stream_name = "stream";
    o.consumer.worker_id = "w1";
    o.consumer.initial_position_in_stream = "TRIM_HORIZON";
    o.consumer.idle_time_between_reads_in_millis = 10;
    o.consumer.lease_taker_interval_millis = 50;
    o.consumer.task_backoff_time_millis = 20;
    o.multilang.executable_name = "python3 " + dir_.path("child.py") + " " + dir_.path("child.log");
    o.multilang.shutdown_grace_millis = 10000;
    o.kinesis = kinesis_;
    o.lease_store = db_.store();
    o.log = collected_.log_sink();
    o.child_stderr = collected_.stderr_sink();
    return o;
  }
  // data (base64) -> times a child logged it as processed
  std::map<std::string, int> processed() {
    std::map<std::string, int> n;
    for (const auto& e : dir_.events()) {
      if (e.value("event", "") == "record") ++n[e.value("data", "")];
    }
    return n;
  }
  int count(const std::string& event, const std::string& shard) {
    int n = 0;
    for (const auto& e : dir_.events()) {
      if (e.value("event", "") == event && e.value("shard", "") == shard) ++n;
    }
    return n;
  }

  testing::ChildDir dir_;
  std::shared_ptr<FakeConsumerKinesis> kinesis_ = std::make_shared<FakeConsumerKinesis>();
  testing::TempSqliteLeaseStore db_;
  testing::Collected collected_;
};

TEST_F(MultiLangDaemonTest, ChildrenGetEveryRecordAndADeadChildCostsOnlyItsShardARestart) {
  dir_.child("child.py", kChild);
  kinesis_->add_shard("shardId-0", {HashKey(), HashKey(1ULL << 63, 0)});
  kinesis_->add_shard("shardId-1", {HashKey((1ULL << 63) + 1, 0), HashKey::max()});
  kinesis_->set_records_per_call("shardId-0", 5);
  kinesis_->set_records_per_call("shardId-1", 5);
  std::set<std::string> want;
  std::map<std::string, std::string> last_seq;
  for (int i = 0; i < 40; ++i) {
    for (const char* shard : {"shardId-0", "shardId-1"}) {
      const std::string data = std::string(shard).substr(8) + "-" + std::to_string(i);
      last_seq[shard] = kinesis_->add_record(shard, data);
      want.insert(detail::base64_encode(data));
    }
    if (i == 22) kinesis_->add_record("shardId-0", "die");
  }
  auto d = MultiLangDaemon::create(options());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  ASSERT_TRUE((*d)->start().ok());
  ASSERT_TRUE(poll_until(
      [&] {
        const auto got = processed();
        for (const auto& w : want) {
          if (!got.count(w)) return false;
        }
        return true;
      },
      60s))
      << collected_.all_logs();
  // Checkpoints reach the lease table at each shard's last record.
  ASSERT_TRUE(poll_until([&] {
    auto l0 = db_.store()->get_lease("shardId-0");
    auto l1 = db_.store()->get_lease("shardId-1");
    return l0.ok() && l1.ok() && l0->has_value() && l1->has_value() &&
           (*l0)->checkpoint == last_seq["shardId-0"] && (*l1)->checkpoint == last_seq["shardId-1"];
  }));
  // Exactly once apart from what the dead child had received after its last checkpoint; the
  // "die" record reached the new child.
  for (const auto& [data, n] : processed()) {
    if (data.rfind("MS0", 0) == 0) EXPECT_EQ(n, 1) << data;  // shard 1's "1-..." records
  }
  EXPECT_EQ(processed()["ZGll"], 1);
  EXPECT_EQ(count("initialize", "shardId-0"), 2);
  EXPECT_EQ(count("initialize", "shardId-1"), 1);
  MultiLangMetrics m = (*d)->metrics();
  EXPECT_EQ(m.child_restarts, 1);
  EXPECT_EQ(m.child_exits, 1);
  EXPECT_EQ(m.children_started, 3);
  // Logged by the pump thread after it reaps the child.
  EXPECT_TRUE(poll_until([&] { return collected_.logged("exited with status 5"); }))
      << collected_.all_logs();

  // The graceful stop: shutdownRequested, leaseLost, EOF, leases released.
  (*d)->stop();
  EXPECT_TRUE((*d)->stopped());
  EXPECT_EQ(count("shutdownRequested", "shardId-0"), 1);
  EXPECT_EQ(count("shutdownRequested", "shardId-1"), 1);
  EXPECT_EQ(count("leaseLost", "shardId-0"), 1);
  EXPECT_EQ(count("leaseLost", "shardId-1"), 1);
  EXPECT_EQ(count("exit", "shardId-0"), 1);  // the dead child logged no exit; its successor did
  EXPECT_EQ(count("exit", "shardId-1"), 1);
  auto leases = db_.store()->list_leases();
  ASSERT_TRUE(leases.ok());
  for (const Lease& l : *leases) EXPECT_EQ(l.lease_owner, "") << l.lease_key;
  const WorkerMetrics wm = (*d)->worker_metrics();
  EXPECT_GE(wm.records_processed, 81);
  EXPECT_EQ((*d)->lease_store(), db_.store()->describe());
}

TEST_F(MultiLangDaemonTest, RefusesWhatCannotRun) {
  dir_.child("child.py", kChild);
  auto o = options();
  o.multilang.executable_name = "   ";
  Result<std::unique_ptr<MultiLangDaemon>> d = MultiLangDaemon::create(o);
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("executableName is required"), std::string_view::npos);
  o = options();
  o.multilang.executable_name = "no-such-program-anywhere --flag";
  d = MultiLangDaemon::create(o);
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("not found in PATH"), std::string_view::npos)
      << d.status().to_string();
  o = options();
  o.consumer.application_name.clear();
  EXPECT_NE(MultiLangDaemon::create(o).status().message().find("applicationName"),
            std::string_view::npos);
  o = options();
  o.consumer.stream_name.clear();
  EXPECT_NE(MultiLangDaemon::create(o).status().message().find("streamName"),
            std::string_view::npos);
  o = options();
  o.multilang.timeout_in_seconds = -3;
  EXPECT_NE(MultiLangDaemon::create(o).status().message().find("timeoutInSeconds"),
            std::string_view::npos);
  o = options();
  o.multilang.aws_credentials_provider = "KclStsAssumeRoleCredentialsProvider";
  EXPECT_EQ(MultiLangDaemon::create(o).status().code(), StatusCode::kInvalidArgument);
  o = options();
  std::vector<std::string> warnings;
  o.warnings = &warnings;
  o.multilang.aws_credentials_provider = "SomethingElse";
  o.lease_store = nullptr;
  o.consumer.lease_store = "sqlite:" + dir_.path("own.db");
  d = MultiLangDaemon::create(o);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ((*d)->lease_store(), "sqlite:" + dir_.path("own.db"));
  EXPECT_FALSE(warnings.empty());
  o.consumer.lease_store = "nosuchscheme:x";
  EXPECT_FALSE(MultiLangDaemon::create(o).ok());
}

}  // namespace
}  // namespace shardline
