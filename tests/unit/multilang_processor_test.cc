// The MultiLangDaemon's record processor against scripted child processes (small Python
// programs): every message and its answer, checkpoint requests in every form and with every
// error, stray stdout lines, children that answer for the wrong action, exit, hang, cannot
// start, flood their stdout, ignore EOF; restarts from the last checkpoint with the replay of
// what the dead child had not checkpointed; stderr forwarding; the shutdown sequence and its
// grace period; and the lease release when the replay buffer has overflowed.
#include <signal.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <span>
#include <thread>

#include "consumer/piecewise_processor.h"
#include "core/digest.h"
#include "core/signals.h"
#include "shardline/lease_store.h"
#include "shardline/multilang.h"
#include "unit/multilang_test_support.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Batch;
using testing::FakeCheckpointer;
using testing::poll_until;
using testing::seqno;

class MultiLangProcessorTest : public ::testing::Test {
 protected:
  // A supervisor running `argv`, its processor for `shard`.
  std::unique_ptr<RecordProcessor> make(const std::vector<std::string>& argv,
                                        const std::string& shard = "shardId-000000000007") {
    MultiLangProcessorOptions o = options_;
    o.command = argv;
    o.worker_id = "w1";
    o.log = collected_.log_sink();
    o.child_stderr = collected_.stderr_sink();
    auto s = MultiLangSupervisor::create(o);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    sup_ = *s;
    return sup_->factory()(shard);
  }
  static InitializationInput init(const std::string& shard = "shardId-000000000007",
                                  ExtendedSequenceNumber at = {"TRIM_HORIZON", 0}) {
    InitializationInput in;
    in.shard_id = shard;
    in.extended_sequence_number = std::move(at);
    return in;
  }
  // Every child started by the supervisor has exited and been reaped.
  void expect_children_gone() { EXPECT_TRUE(sup_->wait_children(20s)) << collected_.all_logs(); }

  testing::ChildDir dir_;
  MultiLangProcessorOptions options_;
  testing::Collected collected_;
  std::shared_ptr<MultiLangSupervisor> sup_;
};

// initialize, processRecords with a sub-sequence checkpoint, shardEnded with the SHARD_END
// checkpoint, then EOF: every message as the Java daemon writes it, every answer understood.
TEST_F(MultiLangProcessorTest, FullLifecycleWithCheckpoints) {
  auto p = make(dir_.child("c.py", R"PY(
def process(m):
    last = m['records'][-1]
    r = checkpoint(last['sequenceNumber'], last['subSequenceNumber'])
    log(event='reply', reply=r)
def ended(m):
    r = checkpoint()
    log(event='reply', reply=r)
serve({'processRecords': process, 'shardEnded': ended})
log(event='exiting')
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok()) << collected_.all_logs();
  Batch b;
  b.add(seqno(1), 0, "meow", "cat", 1476889707000).add(seqno(1), 1, "purr", "cat");
  cp.largest = {seqno(1), 1};
  ASSERT_TRUE(p->process_records(b.input(cp, 1234)).ok()) << collected_.all_logs();
  cp.largest = {"SHARD_END", 0};
  ASSERT_TRUE(p->shard_ended(cp).ok()) << collected_.all_logs();
  EXPECT_EQ(cp.calls, (std::vector<std::string>{seqno(1) + "/1", "()"}));
  EXPECT_EQ(cp.last.sequence_number, "SHARD_END");
  expect_children_gone();

  const auto got = dir_.received(1);
  ASSERT_EQ(got.size(), 5u) << dir_.path("child.log");
  EXPECT_EQ(
      got[0],
      R"({"action":"initialize","shardId":"shardId-000000000007","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})");
  EXPECT_EQ(
      got[1],
      R"({"action":"processRecords","records":[{"action":"record","data":"bWVvdw==","partitionKey":"cat","sequenceNumber":")" +
          seqno(1) +
          R"(","subSequenceNumber":0,"approximateArrivalTimestamp":1476889707000},{"action":"record","data":"cHVycg==","partitionKey":"cat","sequenceNumber":")" +
          seqno(1) +
          R"(","subSequenceNumber":1,"approximateArrivalTimestamp":1700000000123}],"millisBehindLatest":1234})");
  EXPECT_EQ(got[2], R"({"action":"checkpoint","sequenceNumber":")" + seqno(1) +
                        R"(","subSequenceNumber":1,"error":null})");
  EXPECT_EQ(got[3], R"({"action":"shardEnded"})");
  EXPECT_EQ(
      got[4],
      R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null})");
  const long pid = dir_.starts().at(0);
  EXPECT_TRUE(dir_.has_event("eof", pid));
  EXPECT_TRUE(dir_.has_event("exiting", pid));
  // Logged by the pump thread after it reaps the child.
  EXPECT_TRUE(poll_until([&] { return collected_.logged("exited with status 0"); }))
      << collected_.all_logs();
  const MultiLangMetrics m = sup_->metrics();
  EXPECT_EQ(m.children_started, 1);
  EXPECT_EQ(m.child_restarts, 0);
  EXPECT_EQ(m.checkpoints, 2);
  EXPECT_EQ(m.checkpoint_errors, 0);
  EXPECT_EQ(m.records_sent, 2);
}

// Every checkpoint form: no sequence number (everything delivered), a sequence number alone
// (sub-sequence 0), both; numbers given as JSON numbers or numeric strings; wrong types.
TEST_F(MultiLangProcessorTest, CheckpointRequestForms) {
  auto p = make(dir_.child("c.py", R"PY(
def process(m):
    s = m['records'][-1]['sequenceNumber']
    for raw in ['{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}',
                '{"action":"checkpoint"}',
                '{"action":"checkpoint","sequenceNumber":"%s"}' % s,
                '{"action":"checkpoint","sequenceNumber":"%s","subSequenceNumber":2}' % s,
                '{"action":"checkpoint","sequenceNumber":456,"subSequenceNumber":"2"}',
                '{"action":"checkpoint","sequenceNumber":"%s","subSequenceNumber":"two"}' % s,
                '{"action":"checkpoint","sequenceNumber":"%s","subSequenceNumber":-1}' % s,
                '{"action":"checkpoint","sequenceNumber":"not-a-number"}',
                '{"action":"checkpoint","sequenceNumber":%s}' % s]:
        log(event='reply', reply=checkpoint_raw(raw))
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(5), 2, "x");
  cp.largest = {seqno(5), 2};
  ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  const std::string s = seqno(5);
  // "two" and a 56-digit JSON number (not exact as a number) are refused before the
  // checkpointer; the others reach it.
  EXPECT_EQ(cp.calls, (std::vector<std::string>{"()", "()", s + "/0", s + "/2", "456/2", s + "/-1",
                                                "not-a-number/0"}));
  std::vector<json> replies;
  for (const auto& e : dir_.events()) {
    if (e.value("event", "") == "reply") replies.push_back(e["reply"]);
  }
  ASSERT_EQ(replies.size(), 9u);
  const json ok_null = json::parse(
      R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null})");
  EXPECT_EQ(replies[0], ok_null);
  EXPECT_EQ(replies[1], ok_null);
  EXPECT_EQ(replies[2], json({{"action", "checkpoint"},
                              {"sequenceNumber", s},
                              {"subSequenceNumber", nullptr},
                              {"error", nullptr}}));
  EXPECT_EQ(replies[3], json({{"action", "checkpoint"},
                              {"sequenceNumber", s},
                              {"subSequenceNumber", 2},
                              {"error", nullptr}}));
  EXPECT_EQ(replies[4], json({{"action", "checkpoint"},
                              {"sequenceNumber", "456"},
                              {"subSequenceNumber", 2},
                              {"error", nullptr}}));
  for (int i = 5; i < 9; ++i) EXPECT_EQ(replies[i]["error"], "IllegalArgumentException") << i;
  EXPECT_EQ(replies[6]["subSequenceNumber"], -1);
  EXPECT_EQ(sup_->metrics().checkpoint_errors, 4);
}

// A failed checkpoint is answered with the KCL exception class name, as the Java daemon does.
TEST_F(MultiLangProcessorTest, CheckpointErrorsCarryTheKclExceptionNames) {
  auto p = make(dir_.child("c.py", R"PY(
def process(m):
    for i in range(6):
        log(event='reply', reply=checkpoint())
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  cp.results = {Status::failed_precondition("lease lost"),
                Status::resource_exhausted("throttled"),
                Status::not_found("no table"),
                Status::unavailable("DynamoDB down"),
                Status::invalid_argument("before the last checkpoint"),
                Status()};
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(1), 0, "x");
  cp.largest = {seqno(1), 0};
  ASSERT_TRUE(p->process_records(b.input(cp)).ok());
  std::vector<json> errors;
  for (const auto& e : dir_.events()) {
    if (e.value("event", "") == "reply") errors.push_back(e["reply"]["error"]);
  }
  EXPECT_EQ(errors,
            (std::vector<json>{"ShutdownException", "ThrottlingException", "InvalidStateException",
                               "KinesisClientLibDependencyException", "IllegalArgumentException",
                               nullptr}));
  EXPECT_EQ(sup_->metrics().checkpoint_errors, 5);
  EXPECT_TRUE(collected_.logged("(ThrottlingException)")) << collected_.all_logs();
}

// initialize and leaseLost have no checkpointer: InvalidStateException, as the Java daemon.
TEST_F(MultiLangProcessorTest, NoCheckpointerDuringInitializeAndLeaseLost) {
  auto p = make(dir_.child("c.py", R"PY(
def anytime(m):
    log(event='reply', action=m['action'], reply=checkpoint('1'))
serve({'initialize': anytime, 'leaseLost': anytime})
)PY"));
  ASSERT_TRUE(p->initialize(init()).ok());
  ASSERT_TRUE(p->lease_lost().ok());
  expect_children_gone();
  std::vector<std::string> seen;
  for (const auto& e : dir_.events()) {
    if (e.value("event", "") != "reply") continue;
    EXPECT_EQ(e["reply"]["error"], "InvalidStateException") << e;
    EXPECT_EQ(e["reply"]["sequenceNumber"], "1") << e;
    seen.push_back(e.value("action", ""));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"initialize", "leaseLost"}));
}

// Lines that are not messages are skipped (the Java daemon's behaviour); the status after them
// counts. Blank lines are the clients' own framing and not even counted.
TEST_F(MultiLangProcessorTest, StrayStdoutLinesAreSkipped) {
  auto p = make(dir_.child("c.py", R"PY(
def process(m):
    for raw in ['hello from print()', '', '{not json', '[1, 2]', '{"foo": 1}',
                '{"action": "bogus"}', '{"action": 5}', '   ']:
        send_raw(raw)
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(1), 0, "x");
  ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  EXPECT_EQ(sup_->metrics().skipped_lines, 6);
  EXPECT_TRUE(
      collected_.logged("skipping a line on stdout (not a JSON object): hello from print()"))
      << collected_.all_logs();
  EXPECT_TRUE(collected_.logged("(unknown action 'bogus')")) << collected_.all_logs();
  EXPECT_EQ(sup_->metrics().child_restarts, 0);
}

// A status for another action is a protocol error: the child is killed; the retry restarts it.
TEST_F(MultiLangProcessorTest, WrongResponseForRestartsTheChild) {
  auto p = make(dir_.child("c.py", R"PY(
def process(m):
    if GEN == 1:
        status('initialize')
        hang()
        return 'sent'
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(1), 0, "x");
  const Status s = p->process_records(b.input(cp));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("with a status for 'initialize'"), std::string_view::npos)
      << s.to_string();
  EXPECT_EQ(sup_->metrics().protocol_errors, 1);
  const long first = dir_.starts().at(0);
  EXPECT_TRUE(poll_until([&] { return !testing::process_alive(first); }));
  ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  EXPECT_EQ(dir_.actions(2), (std::vector<std::string>{"initialize", "processRecords"}));
  EXPECT_EQ(sup_->metrics().child_restarts, 1);
}

// The child exits in the middle of a batch. The retry starts a new child, initializes it at the
// last checkpoint, replays what the dead child had been given after that checkpoint, then the
// batch itself: the new child sees exactly the records after the checkpoint, in order, once.
TEST_F(MultiLangProcessorTest, ExitedChildRestartsFromTheCheckpointWithReplay) {
  auto p = make(dir_.child("c.py", R"PY(
import sys
def process(m):
    recs = m['records']
    if GEN == 1 and recs[0]['data'] == 'YTE=':      # a1: checkpoint a1/0 only
        log(event='reply', reply=checkpoint(recs[0]['sequenceNumber'], 0))
    if GEN == 1 and recs[0]['data'] == 'YzE=':      # c1: die
        sys.exit(3)
    if GEN == 2:                                     # checkpoint everything, replays included
        checkpoint(recs[-1]['sequenceNumber'], recs[-1]['subSequenceNumber'])
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch a, b, c;
  a.add(seqno(1), 0, "a1").add(seqno(1), 1, "a2").add(seqno(2), 0, "a3");
  b.add(seqno(3), 0, "b1").add(seqno(4), 0, "b2");
  c.add(seqno(5), 0, "c1").add(seqno(6), 0, "c2");
  cp.largest = {seqno(2), 0};
  ASSERT_TRUE(p->process_records(a.input(cp)).ok());
  cp.largest = {seqno(4), 0};
  ASSERT_TRUE(p->process_records(b.input(cp, 5)).ok());
  cp.largest = {seqno(6), 0};
  const Status s = p->process_records(c.input(cp));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exited with status 3"), std::string_view::npos) << s.to_string();
  EXPECT_EQ(sup_->metrics().child_exits, 1);

  ASSERT_TRUE(p->process_records(c.input(cp)).ok()) << collected_.all_logs();
  // What the new child was sent, checkpoint replies aside.
  std::vector<std::string> got;
  for (const auto& raw : dir_.received(2)) {
    if (json::parse(raw).value("action", "") != "checkpoint") got.push_back(raw);
  }
  ASSERT_EQ(got.size(), 4u);
  // Its checkpoints during the replay (a2..a3, then b1..b2) and after (c2) all landed.
  EXPECT_EQ(cp.calls, (std::vector<std::string>{seqno(1) + "/0", seqno(2) + "/0", seqno(4) + "/0",
                                                seqno(6) + "/0"}));
  EXPECT_EQ(json::parse(got[0]), json({{"action", "initialize"},
                                       {"shardId", "shardId-000000000007"},
                                       {"sequenceNumber", seqno(1)},
                                       {"subSequenceNumber", 0}}));
  auto datas = [](const std::string& raw) {
    std::vector<std::string> d;
    const json j = json::parse(raw);
    for (const auto& r : j["records"]) d.push_back(r["data"]);
    return d;
  };
  // a1/0 was checkpointed: a2 (same aggregate, sub 1) onwards.
  EXPECT_EQ(datas(got[1]), (std::vector<std::string>{"YTI=", "YTM="}));
  EXPECT_EQ(datas(got[2]), (std::vector<std::string>{"YjE=", "YjI="}));
  EXPECT_EQ(json::parse(got[2])["millisBehindLatest"], 5);
  EXPECT_EQ(datas(got[3]), (std::vector<std::string>{"YzE=", "YzI="}));
  const MultiLangMetrics m = sup_->metrics();
  EXPECT_EQ(m.child_restarts, 1);
  EXPECT_EQ(m.records_replayed, 4);
  EXPECT_TRUE(collected_.logged("restarted the child")) << collected_.all_logs();
}

// A retried batch is trimmed to what follows the checkpoint: the dead child had checkpointed
// inside it before dying.
// The worker hands batches over in pieces (consumer/piecewise_processor.h). A batch whose
// message cannot be allocated fails with kResourceExhausted (the worker's retry rule applies)
// and sends the child nothing; the next batch goes out whole, from pieces.
TEST_F(MultiLangProcessorTest, PiecewiseBatchesAndAMessageThatCannotBeAllocated) {
  auto made = make(dir_.child("c.py", R"PY(
def process(m):
    pass
serve({'processRecords': process})
)PY"));
  auto* p = dynamic_cast<detail::PiecewiseRecordProcessor*>(made.get());
  ASSERT_NE(p, nullptr);
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(1), 0, "a1").add(seqno(1), 1, "a2").add(seqno(2), 0, "b1");
  cp.largest = {seqno(2), 0};
  // Sized from an absurd data size: the buffer cannot be had.
  p->begin_batch(std::int64_t{1} << 60);
  p->add_records(b.views);
  const Status s = p->finish_batch(ProcessRecordsInput{{}, 0, cp});
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.to_string();
  // Then a batch in two pieces.
  p->begin_batch(100);
  p->add_records(std::span<const ConsumerRecord>(b.views).first(2));
  p->add_records(std::span<const ConsumerRecord>(b.views).subspan(2));
  ASSERT_TRUE(p->finish_batch(ProcessRecordsInput{{}, 7, cp}).ok()) << collected_.all_logs();
  ASSERT_TRUE(p->lease_lost().ok());
  expect_children_gone();
  std::vector<json> batches;
  for (const auto& raw : dir_.received(1)) {
    json j = json::parse(raw);
    if (j.value("action", "") == "processRecords") batches.push_back(std::move(j));
  }
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0]["records"].size(), 3u);
  EXPECT_EQ(batches[0]["records"][2]["data"], "YjE=");
  EXPECT_EQ(batches[0]["millisBehindLatest"], 7);
  EXPECT_EQ(sup_->metrics().records_sent, 3);
}

TEST_F(MultiLangProcessorTest, RetriedBatchSkipsWhatWasCheckpointed) {
  auto p = make(dir_.child("c.py", R"PY(
import sys
def process(m):
    if GEN == 1:
        checkpoint(m['records'][0]['sequenceNumber'], m['records'][0]['subSequenceNumber'])
        sys.exit(1)
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch c;
  c.add(seqno(5), 0, "c1").add(seqno(5), 1, "c2").add(seqno(6), 0, "c3");
  cp.largest = {seqno(6), 0};
  EXPECT_FALSE(p->process_records(c.input(cp)).ok());
  ASSERT_TRUE(p->process_records(c.input(cp)).ok()) << collected_.all_logs();
  const auto got = dir_.received(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(json::parse(got[0])["sequenceNumber"], seqno(5));
  std::vector<std::string> subs;
  const json batch = json::parse(got[1]);
  for (const auto& r : batch["records"]) subs.push_back(r["data"]);
  EXPECT_EQ(subs, (std::vector<std::string>{"YzI=", "YzM="}));
}

// timeoutInSeconds: a child that does not answer is killed (not the daemon) and restarted.
TEST_F(MultiLangProcessorTest, HungChildIsKilledAtTheTimeoutAndRestarted) {
  options_.response_timeout = 1s;
  auto p = make(dir_.child("c.py", R"PY(
def process(m):
    if GEN == 1:
        hang()
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(1), 0, "x");
  const Status s = p->process_records(b.input(cp));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("did not answer processRecords within timeoutInSeconds"),
            std::string_view::npos)
      << s.to_string();
  EXPECT_EQ(sup_->metrics().child_timeouts, 1);
  const long first = dir_.starts().at(0);
  EXPECT_TRUE(poll_until([&] { return !testing::process_alive(first); }));
  // Logged by the pump thread after it reaps the child.
  EXPECT_TRUE(poll_until([&] { return collected_.logged("was killed by signal 9"); }))
      << collected_.all_logs();
  ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  EXPECT_EQ(dir_.actions(2), (std::vector<std::string>{"initialize", "processRecords"}));
}

// A child that cannot be started fails initialize with the reason (retried by the worker);
// a script without #! runs with /bin/sh, as Java runs it.
TEST_F(MultiLangProcessorTest, StartFailuresAndShellScripts) {
  auto p = make({dir_.path("no-such-program")});
  Status s = p->initialize(init());
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.to_string();
  EXPECT_NE(s.message().find("no-such-program"), std::string_view::npos);
  dir_.write("not-executable", "#!/bin/sh\n");
  p = make({dir_.path("not-executable")});
  EXPECT_EQ(p->initialize(init()).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(sup_->metrics().start_failures, 1);

  dir_.child("c.py", "serve({})");
  dir_.write("run-child", "exec python3 " + dir_.path("c.py") + " " + dir_.path("child.log") + "\n",
             true);
  p = make({dir_.path("run-child")});
  ASSERT_TRUE(p->initialize(init()).ok()) << collected_.all_logs();
  ASSERT_TRUE(p->lease_lost().ok());
  expect_children_gone();
  EXPECT_EQ(dir_.actions(1), (std::vector<std::string>{"initialize", "leaseLost"}));
}

// A child that dies before answering initialize: initialize fails, the next attempt works.
TEST_F(MultiLangProcessorTest, ChildDyingAtStartFailsInitializeUntilOneAnswers) {
  auto p = make(dir_.child("c.py", R"PY(
import sys
if GEN == 1:
    sys.exit(7)
serve({})
)PY"));
  const Status s = p->initialize(init());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exited with status 7"), std::string_view::npos) << s.to_string();
  ASSERT_TRUE(p->initialize(init()).ok()) << collected_.all_logs();
  EXPECT_EQ(dir_.actions(2), (std::vector<std::string>{"initialize"}));
  EXPECT_EQ(sup_->metrics().children_started, 2);
}

// Each stderr line reaches the sink with the shard and the pid; a last line without a newline
// too, when the child exits.
TEST_F(MultiLangProcessorTest, StderrIsForwardedLineByLine) {
  auto p = make(dir_.child("c.py", R"PY(
import sys
sys.stderr.write('first line\nsecond line\n')
sys.stderr.flush()
serve({})
sys.stderr.write('no newline at the end')
)PY"),
                "shardId-000000000042");
  ASSERT_TRUE(p->initialize(init("shardId-000000000042")).ok());
  ASSERT_TRUE(p->lease_lost().ok());
  expect_children_gone();
  const long pid = dir_.starts().at(0);
  ASSERT_TRUE(poll_until([&] {
    std::lock_guard lk(collected_.mu);
    return collected_.stderr_lines.size() >= 3;
  }));
  std::lock_guard lk(collected_.mu);
  ASSERT_EQ(collected_.stderr_lines.size(), 3u);
  const char* want[] = {"first line", "second line", "no newline at the end"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(collected_.stderr_lines[i].shard, "shardId-000000000042");
    EXPECT_EQ(collected_.stderr_lines[i].pid, pid);
    EXPECT_EQ(collected_.stderr_lines[i].line, want[i]);
  }
}

// Graceful shutdown: shutdownRequested (the child checkpoints), then leaseLost, then EOF.
TEST_F(MultiLangProcessorTest, ShutdownRequestedThenLeaseLost) {
  auto p = make(dir_.child("c.py", R"PY(
def shutdown(m):
    log(event='reply', reply=checkpoint())
serve({'shutdownRequested': shutdown})
log(event='clean-exit')
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(1), 0, "x");
  cp.largest = {seqno(1), 0};
  ASSERT_TRUE(p->process_records(b.input(cp)).ok());
  ASSERT_TRUE(p->shutdown_requested(cp).ok());
  ASSERT_TRUE(p->lease_lost().ok());
  expect_children_gone();
  EXPECT_EQ(dir_.actions(1),
            (std::vector<std::string>{"initialize", "processRecords", "shutdownRequested",
                                      "checkpoint", "leaseLost"}));
  EXPECT_EQ(cp.calls, std::vector<std::string>{"()"});
  EXPECT_TRUE(dir_.has_event("clean-exit", dir_.starts().at(0)));
}

// shutdownGraceMillis bounds the whole shutdown: a child still silent at the deadline is
// killed; a processor reached after the deadline sends nothing and kills its child.
TEST_F(MultiLangProcessorTest, ShutdownGraceBoundsTheWait) {
  options_.shutdown_grace = 300ms;
  const auto slow = dir_.child("slow.py", R"PY(
serve({'shutdownRequested': lambda m: hang()})
)PY",
                               "slow.log");
  auto p1 = make(slow, "shardId-1");
  auto p2 = sup_->factory()("shardId-2");
  FakeCheckpointer cp;
  ASSERT_TRUE(p1->initialize(init("shardId-1")).ok());
  ASSERT_TRUE(p2->initialize(init("shardId-2")).ok());
  const Status s = p1->shutdown_requested(cp);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("shutdownGraceMillis"), std::string_view::npos) << s.to_string();
  EXPECT_EQ(sup_->metrics().child_timeouts, 0);  // not a child timeout: the grace ran out
  (void)p2->shutdown_requested(cp);
  EXPECT_TRUE(p1->lease_lost().ok());
  EXPECT_TRUE(p2->lease_lost().ok());
  expect_children_gone();
  // The second child was never sent shutdownRequested.
  EXPECT_EQ(dir_.actions(2, "slow.log"), (std::vector<std::string>{"initialize"}));
  EXPECT_TRUE(collected_.logged("was not sent shutdownRequested")) << collected_.all_logs();
  // No new child once the shutdown has begun.
  auto p3 = sup_->factory()("shardId-3");
  EXPECT_EQ(p3->initialize(init("shardId-3")).code(), StatusCode::kCancelled);
}

// A message to a child that has gone away fails cleanly: no SIGPIPE reaches the daemon (the
// test binary does not ignore it), and leaseLost to a dead child is simply done. Both on a
// thread of the application's and on one that blocks SIGPIPE for good as the worker's pool
// threads do (core/signals.h), where the raised signal must not be left pending either.
TEST_F(MultiLangProcessorTest, WritingToADeadChildRaisesNoSigpipe) {
  const auto child = dir_.child("c.py", R"PY(
import os
def process(m):
    status('processRecords')
    os._exit(0)
serve({'processRecords': process})
)PY");
  // SIGPIPE at its default, so that a SIGPIPE raised in the daemon would end this test binary.
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGPIPE, &dfl, &old), 0);
  for (const bool pool_thread : {false, true}) {
    SCOPED_TRACE(pool_thread ? "a thread that blocks SIGPIPE" : "an application thread");
    auto p = make(child);
    const std::size_t run = pool_thread ? 1 : 0;
    auto body = [&] {
      FakeCheckpointer cp;
      ASSERT_TRUE(p->initialize(init()).ok());
      Batch b;
      b.add(seqno(1), 0, "x");
      ASSERT_TRUE(p->process_records(b.input(cp)).ok());
      const long pid = dir_.starts().at(run);
      // The child has exited (a zombie until reaped): its stdin has no reader any more.
      ASSERT_TRUE(poll_until([&] {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        std::getline(stat, line);
        return line.empty() || line.find(") Z") != std::string::npos;
      }));
      EXPECT_TRUE(p->lease_lost().ok());
      sigset_t pending;
      sigemptyset(&pending);
      ASSERT_EQ(::sigpending(&pending), 0);
      EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
    };
    if (pool_thread) {
      std::thread([&] {
        detail::block_sigpipe_in_this_thread();
        ASSERT_TRUE(detail::sigpipe_blocked_in_this_thread());
        body();
      }).join();
    } else {
      body();
    }
    expect_children_gone();
    EXPECT_GE(sup_->metrics().child_exits, 1);
  }
  ::sigaction(SIGPIPE, &old, nullptr);
}

// A child that answers shardEnded without checkpointing is kept and asked again.
TEST_F(MultiLangProcessorTest, ShardEndedWithoutCheckpointAsksAgain) {
  auto p = make(dir_.child("c.py", R"PY(
count = [0]
def ended(m):
    count[0] += 1
    if count[0] == 2:
        checkpoint()
serve({'shardEnded': ended})
)PY"));
  FakeCheckpointer cp;
  cp.largest = {"SHARD_END", 0};
  ASSERT_TRUE(p->initialize(init()).ok());
  ASSERT_TRUE(p->shard_ended(cp).ok());
  EXPECT_NE(cp.last.sequence_number, "SHARD_END");
  EXPECT_TRUE(collected_.logged("answered shardEnded without checkpointing"));
  ASSERT_TRUE(p->shard_ended(cp).ok());
  EXPECT_EQ(cp.last.sequence_number, "SHARD_END");
  expect_children_gone();
  EXPECT_EQ(dir_.starts().size(), 1u);
  EXPECT_EQ(dir_.actions(1),
            (std::vector<std::string>{"initialize", "shardEnded", "shardEnded", "checkpoint"}));
}

// A multi-megabyte message to a child that floods its stdout before reading anything: writing
// and reading go together, so neither pipe fills up for good.
TEST_F(MultiLangProcessorTest, LargeMessagesWhileTheChildFloodsStdout) {
  auto p = make(dir_.child("c.py", R"PY(
def process(m):
    send_raw(('x' * 1000 + '\n') * 2000)
    log(event='count', n=len(m['records']), size=sum(len(r['data']) for r in m['records']))
def init(m):
    status('initialize')
    send_raw(('y' * 1000 + '\n') * 2000)     # 2 MB the daemon must read while it writes
    return 'sent'
serve({'processRecords': process, 'initialize': init})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  const std::string data(3000, 'd');
  for (int i = 0; i < 3000; ++i) b.add(seqno(i + 1), 0, data);  // about 12 MB of JSON
  ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  bool counted = false;
  for (const auto& e : dir_.events()) {
    if (e.value("event", "") == "count") {
      EXPECT_EQ(e["n"], 3000);
      EXPECT_EQ(e["size"], 3000 * 4000);
      counted = true;
    }
  }
  EXPECT_TRUE(counted);
  EXPECT_EQ(sup_->metrics().skipped_lines, 4000);
}

// A child that logs, for each processRecords, how many records came and the MD5 of every
// record's partition key, data (base64) and sequence number: exactly what arrived.
constexpr const char* kDigestChild = R"PY(
import hashlib
def process(m):
    h = hashlib.md5()
    for r in m['records']:
        h.update(r['partitionKey'].encode() + b'|' + r['data'].encode() + b'|' +
                 r['sequenceNumber'].encode() + b'\n')
    log(event='digest', n=len(m['records']), sha=h.hexdigest())
serve({'processRecords': process})
)PY";

// The digest kDigestChild logs for `b` (keys as UTF-8, as Python encodes them).
std::string expected_digest(const Batch& b) {
  std::string text;
  for (const ConsumerRecord& r : b.views) {
    text.append(r.partition_key).append("|").append(detail::base64_encode(r.data)).append("|");
    text.append(r.sequence_number).append("\n");
  }
  const detail::Md5Digest d = detail::md5(text);
  return detail::to_hex(d.data(), d.size());
}

// The (count, digest) pairs kDigestChild logged, in order.
std::vector<std::pair<int, std::string>> logged_digests(testing::ChildDir& dir) {
  std::vector<std::pair<int, std::string>> out;
  for (const auto& e : dir.events()) {
    if (e.value("event", "") == "digest") out.emplace_back(e["n"].get<int>(), e["sha"]);
  }
  return out;
}

// Large messages go to the child without a copy (vmsplice from the message buffer, which the
// next message reuses): each of several consecutive batches reaches the child exactly as sent.
TEST_F(MultiLangProcessorTest, LargeMessagesArriveIntactBatchAfterBatch) {
  auto p = make(dir_.child("c.py", kDigestChild));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  std::vector<std::pair<int, std::string>> expected;
  for (int batch = 0; batch < 4; ++batch) {
    Batch b;
    for (int i = 0; i < 400; ++i) {
      // 600 bytes each, different in every batch: 400 records are about 330 KB of JSON.
      b.add(seqno(batch * 1000 + i + 1), 0,
            std::string(600, static_cast<char>('a' + (batch * 7 + i) % 26)));
    }
    ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
    expected.emplace_back(400, expected_digest(b));
  }
  EXPECT_EQ(logged_digests(dir_), expected);
  EXPECT_EQ(sup_->metrics().protocol_errors, 0);
}

// Keys that escape to six times their size overrun the message's estimate (which counts each
// key once), so the message grows while records are written into it: every key still arrives
// exactly, in order, after records with plain keys.
TEST_F(MultiLangProcessorTest, KeysThatNeedEscapingGrowTheMessage) {
  auto p = make(dir_.child("c.py", kDigestChild));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  for (int i = 0; i < 600; ++i) {
    // 256 control characters become 1,536 bytes of \u00XX escapes.
    b.add(seqno(1), i, "record " + std::to_string(i),
          i < 100 ? "plain-" + std::to_string(i) : std::string(256, static_cast<char>(1 + i % 31)));
  }
  ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  const std::vector<std::pair<int, std::string>> want = {{600, expected_digest(b)}};
  EXPECT_EQ(logged_digests(dir_), want) << collected_.all_logs();
}

// The first child answers processRecords after reading 10 bytes of it (then hangs); the next
// ones log how many records they got.
constexpr const char* kAnswersBeforeReading = R"PY(
def process(m):
    log(event='records', n=len(m['records']))
def init(m):
    status('initialize')
    if GEN == 1:
        os.read(0, 10)             # a few bytes of the processRecords line, then the answer
        status('processRecords')
        hang()
    return 'sent'
serve({'processRecords': process, 'initialize': init})
)PY";

// 300 records of 500 bytes: a message of about 220 KB, sent without a copy by default.
Batch large_batch() {
  Batch b;
  for (int i = 0; i < 300; ++i) b.add(seqno(i + 1), 0, std::string(500, 'q'));
  return b;
}

// A child that answers processRecords before it has read the whole message breaks the protocol,
// and the message's memory may still be read from the pipe: the child is killed (the buffer is
// held until nothing can read it), and the next attempt's child gets the batch intact.
TEST_F(MultiLangProcessorTest, AStatusBeforeTheWholeMessageWasReadKillsTheChild) {
  options_.response_timeout = 10s;  // were the child kept, the retry would fail, not hang
  auto p = make(dir_.child("c.py", kAnswersBeforeReading));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  const Batch b = large_batch();
  const Status s = p->process_records(b.input(cp));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("answered processRecords before reading all of the message"),
            std::string_view::npos)
      << s.to_string();
  EXPECT_EQ(sup_->metrics().protocol_errors, 1);
  ASSERT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  int delivered = 0;
  for (const auto& e : dir_.events()) {
    if (e.value("event", "") == "records") delivered += e["n"].get<int>();
  }
  EXPECT_EQ(delivered, 300);
  EXPECT_EQ(dir_.actions(2), (std::vector<std::string>{"initialize", "processRecords"}));
}

// With zeroCopyMessages off, messages are copied into the pipe: nothing of the daemon's memory is
// left to read, so a child that answers before reading the whole message is not a risk and is
// kept (the bytes it left are its own business).
TEST_F(MultiLangProcessorTest, CopiedMessagesLetAnEarlyAnswerThrough) {
  options_.zero_copy_messages = false;
  auto p = make(dir_.child("c.py", kAnswersBeforeReading));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  const Batch b = large_batch();
  EXPECT_TRUE(p->process_records(b.input(cp)).ok()) << collected_.all_logs();
  EXPECT_EQ(sup_->metrics().protocol_errors, 0);
  EXPECT_EQ(sup_->metrics().child_restarts, 0);
}

// A processor destroyed without a final message closes the child's stdin; a child that ignores
// EOF is killed after childExitTimeoutMillis.
TEST_F(MultiLangProcessorTest, ChildrenAreReapedAndStubbornOnesKilled) {
  options_.child_exit_timeout = 200ms;
  auto p = make(dir_.child("c.py", R"PY(
serve({})
if GEN == 2:
    hang()
)PY"));
  ASSERT_TRUE(p->initialize(init()).ok());
  p.reset();
  expect_children_gone();
  auto q = sup_->factory()("shardId-000000000007");
  ASSERT_TRUE(q->initialize(init()).ok());
  ASSERT_TRUE(q->lease_lost().ok());
  expect_children_gone();
  const auto pids = dir_.starts();
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_TRUE(dir_.has_event("hang", pids[1]));
  EXPECT_TRUE(collected_.logged("did not exit after its stdin was closed"))
      << collected_.all_logs();
}

// kill_all() (the daemon's last resort at shutdown) ends a conversation that has no timeout.
TEST_F(MultiLangProcessorTest, KillAllEndsAConversationWithoutTimeout) {
  auto p = make(dir_.child("c.py", R"PY(
serve({'processRecords': lambda m: hang()})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch b;
  b.add(seqno(1), 0, "x");
  Status s;
  std::thread t([&] { s = p->process_records(b.input(cp)); });
  ASSERT_TRUE(poll_until([&] { return dir_.has_event("hang", dir_.starts().at(0)); }));
  sup_->kill_all();
  t.join();
  EXPECT_FALSE(s.ok());
  expect_children_gone();
}

// Records not checkpointed beyond replayBufferMaxBytes cannot be replayed: the restart gives
// the lease up instead (the shard starts over from its checkpoint, here or on another worker).
TEST_F(MultiLangProcessorTest, ReplayOverflowReleasesTheLease) {
  char tmpl[] = "/tmp/shardline-mld-leases-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string db = std::string(tmpl) + "/leases.db";
  auto store = make_sqlite_lease_store(db, "app");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<LeaseStore> leases(std::move(*store));
  ASSERT_TRUE(leases->initialize().ok());
  Lease l;
  l.lease_key = "shardId-000000000007";
  l.checkpoint = "TRIM_HORIZON";
  ASSERT_TRUE(leases->create_lease_if_not_exists(l).ok());
  ASSERT_TRUE(*leases->take_lease(l, "w1"));

  options_.replay_buffer_max_bytes = 100;
  options_.lease_store = leases;
  auto p = make(dir_.child("c.py", R"PY(
import sys
def process(m):
    if m['records'][0]['data'] == 'Yg==':
        sys.exit(1)
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch a, b;
  a.add(seqno(1), 0, "a").add(seqno(2), 0, "a");
  b.add(seqno(3), 0, "b");
  ASSERT_TRUE(p->process_records(a.input(cp)).ok());  // over 100 bytes, not checkpointed
  EXPECT_TRUE(collected_.logged("replayBufferMaxBytes")) << collected_.all_logs();
  EXPECT_FALSE(p->process_records(b.input(cp)).ok());
  const Status s = p->process_records(b.input(cp));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
  EXPECT_NE(s.message().find("released its lease"), std::string_view::npos);
  auto after = leases->get_lease("shardId-000000000007");
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->lease_owner, "");
  EXPECT_EQ(sup_->metrics().leases_released, 1);
  EXPECT_EQ(dir_.starts().size(), 1u);  // no new child for records it could not get
  EXPECT_EQ(p->process_records(b.input(cp)).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(p->lease_lost().ok());
  p.reset();
  sup_.reset();
  std::filesystem::remove_all(tmpl);
}

// Without a lease store (a library user's own worker), the restart goes ahead and says what
// the new child does not get.
TEST_F(MultiLangProcessorTest, ReplayOverflowWithoutAStoreRestartsAndSaysWhatIsMissing) {
  options_.replay_buffer_max_bytes = 100;
  auto p = make(dir_.child("c.py", R"PY(
import sys
def process(m):
    if GEN == 1 and m['records'][0]['data'] == 'Yg==':
        sys.exit(1)
serve({'processRecords': process})
)PY"));
  FakeCheckpointer cp;
  ASSERT_TRUE(p->initialize(init()).ok());
  Batch a, b;
  a.add(seqno(1), 0, "a").add(seqno(2), 0, "a");
  b.add(seqno(3), 0, "b");
  ASSERT_TRUE(p->process_records(a.input(cp)).ok());
  EXPECT_FALSE(p->process_records(b.input(cp)).ok());
  ASSERT_TRUE(p->process_records(b.input(cp)).ok());
  EXPECT_TRUE(collected_.logged("the restarted child does not see them")) << collected_.all_logs();
  EXPECT_EQ(dir_.actions(2), (std::vector<std::string>{"initialize", "processRecords"}));
}

TEST_F(MultiLangProcessorTest, SupervisorRequiresACommand) {
  EXPECT_EQ(MultiLangSupervisor::create({}).status().code(), StatusCode::kInvalidArgument);
  MultiLangProcessorOptions o;
  o.command = {"python3"};
  o.response_timeout = -1s;
  EXPECT_EQ(MultiLangSupervisor::create(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shardline
