// The shard consumer state machine, its record fetcher and its checkpointer, on a real SQLite
// lease store, a real lease coordinator and real pool threads, with a fake Kinesis and a fake
// clock. Timers (idle time between reads, backoff, parent polls) move only when a test
// advances the clock; waits for pool threads use poll_until with a deadline.
#include "consumer/shard_consumer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "consumer/lease_coordinator.h"
#include "consumer/piecewise_processor.h"
#include "consumer/thread_pool.h"
#include "shardline/aggregation.h"
#include "shardline/consumer.h"
#include "shardline/lease_store.h"
#include "support/fake_clock.h"
#include "support/fake_consumer_kinesis.h"
#include "support/test_util.h"

namespace shardline::detail {
namespace {

using namespace std::chrono_literals;
using shardline::testing::FakeClock;
using shardline::testing::FakeConsumerKinesis;
using shardline::testing::poll_until;
using Completion = FakeConsumerKinesis::Completion;

const std::string kShard = "shardId-000000000000";
const std::string kChildA = "shardId-000000000001";
const std::string kChildB = "shardId-000000000002";
const std::string kParent2 = "shardId-000000000003";
const std::string kWorker = "worker-1";
const std::string kOther = "worker-2";

constexpr auto kIdle = 100ms;
constexpr auto kBackoff = 500ms;
constexpr auto kParentPoll = 10000ms;

const HashKeyRange kLower{HashKey(), HashKey(~0ULL >> 1, ~0ULL)};
const HashKeyRange kUpper{HashKey(1ULL << 63, 0), HashKey::max()};

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "shardline-consumer-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// One user record as a processor saw it.
struct Delivered {
  std::string seq;
  std::int64_t sub = 0;
  std::string data;
  friend bool operator==(const Delivered&, const Delivered&) = default;
};
void PrintTo(const Delivered& d, std::ostream* os) {
  *os << "{" << d.seq << "/" << d.sub << " '" << d.data << "'}";
}

// What the processors of one shard did, and what they are told to do. Behaviours are set
// before the consumer starts; `n` is the 1-based number of the call of that kind.
struct Script {
  mutable std::mutex mu;
  std::vector<std::string> events;
  std::vector<std::vector<Delivered>> batches;  // every process_records call
  std::vector<std::int64_t> millis_behind;
  std::vector<InitializationInput> inits;
  Checkpointer* checkpointer = nullptr;  // the last one seen
  std::atomic<int> factory_calls{0};
  std::atomic<int> in_call{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> pieces{0};  // add_records calls of a piecewise processor

  std::function<bool(int n)> factory_fails;
  std::function<Status(const InitializationInput&, int n)> on_initialize;
  std::function<Status(const ProcessRecordsInput&, int n)> on_process;
  std::function<Status(Checkpointer&, int n)> on_shard_ended;  // default: checkpoint()
  std::function<Status(int n)> on_lease_lost;
  std::function<Status(Checkpointer&, int n)> on_shutdown_requested;

  int count(const std::string& e) const {
    std::lock_guard lk(mu);
    return static_cast<int>(std::count(events.begin(), events.end(), e));
  }
  std::vector<std::string> all_events() const {
    std::lock_guard lk(mu);
    return events;
  }
  std::vector<std::vector<Delivered>> all_batches() const {
    std::lock_guard lk(mu);
    return batches;
  }
  std::vector<Delivered> delivered() const {
    std::lock_guard lk(mu);
    std::vector<Delivered> out;
    for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
    return out;
  }
  std::vector<InitializationInput> all_inits() const {
    std::lock_guard lk(mu);
    return inits;
  }
  Checkpointer* last_checkpointer() const {
    std::lock_guard lk(mu);
    return checkpointer;
  }
};

class ScriptedProcessor final : public RecordProcessor {
 public:
  explicit ScriptedProcessor(std::shared_ptr<Script> s) : s_(std::move(s)) {}

  Status initialize(const InitializationInput& in) override {
    Guard g(*s_);
    int n = record("initialize", [&] { s_->inits.push_back(in); });
    return s_->on_initialize ? s_->on_initialize(in, n) : Status();
  }
  Status process_records(const ProcessRecordsInput& in) override {
    Guard g(*s_);
    int n = record("process_records", [&] {
      std::vector<Delivered> batch;
      for (const ConsumerRecord& r : in.records) {
        batch.push_back(
            {std::string(r.sequence_number), r.sub_sequence_number, std::string(r.data)});
      }
      s_->batches.push_back(std::move(batch));
      s_->millis_behind.push_back(in.millis_behind_latest);
      s_->checkpointer = &in.checkpointer;
    });
    return s_->on_process ? s_->on_process(in, n) : Status();
  }
  Status shard_ended(Checkpointer& cp) override {
    Guard g(*s_);
    int n = record("shard_ended", [&] { s_->checkpointer = &cp; });
    return s_->on_shard_ended ? s_->on_shard_ended(cp, n) : cp.checkpoint();
  }
  Status lease_lost() override {
    Guard g(*s_);
    int n = record("lease_lost", [] {});
    return s_->on_lease_lost ? s_->on_lease_lost(n) : Status();
  }
  Status shutdown_requested(Checkpointer& cp) override {
    Guard g(*s_);
    int n = record("shutdown_requested", [&] { s_->checkpointer = &cp; });
    return s_->on_shutdown_requested ? s_->on_shutdown_requested(cp, n) : Status();
  }

 private:
  // Flags a second call entering while one is running (the consumer must serialize them).
  struct Guard {
    explicit Guard(Script& s) : s_(s) {
      if (s_.in_call.fetch_add(1) != 0) s_.overlaps.fetch_add(1);
      for (int i = 0; i < 20; ++i) std::this_thread::yield();  // widen the window
    }
    ~Guard() { s_.in_call.fetch_sub(1); }
    Script& s_;
  };
  template <class F>
  int record(const char* event, F&& extra) {
    std::lock_guard lk(s_->mu);
    s_->events.emplace_back(event);
    extra();
    return static_cast<int>(std::count(s_->events.begin(), s_->events.end(), event));
  }
  std::shared_ptr<Script> s_;
};

// The same processor taking batches in pieces (consumer/piecewise_processor.h), as the
// MultiLangDaemon's does: the pieces are put back together and handed to the script as one
// batch, so that every test of ShardConsumerTest runs both ways.
class PiecewiseScriptedProcessor final : public PiecewiseRecordProcessor {
 public:
  explicit PiecewiseScriptedProcessor(std::shared_ptr<Script> s) : s_(s), inner_(std::move(s)) {}

  Status initialize(const InitializationInput& in) override { return inner_.initialize(in); }
  Status process_records(const ProcessRecordsInput& in) override {
    ADD_FAILURE() << "process_records called on a piecewise processor";
    return inner_.process_records(in);
  }
  Status shard_ended(Checkpointer& cp) override { return inner_.shard_ended(cp); }
  Status lease_lost() override { return inner_.lease_lost(); }
  Status shutdown_requested(Checkpointer& cp) override { return inner_.shutdown_requested(cp); }

  // A batch without records (none left after the checkpoint, or none read) ends without
  // finish_batch: the next begin_batch starts over.
  void begin_batch(std::int64_t) noexcept override {
    records_.clear();
    open_ = true;
  }
  void add_records(std::span<const ConsumerRecord> piece) noexcept override {
    EXPECT_TRUE(open_) << "add_records outside begin_batch .. finish_batch";
    EXPECT_FALSE(piece.empty());
    records_.insert(records_.end(), piece.begin(), piece.end());
    s_->pieces.fetch_add(1);
  }
  Status finish_batch(const ProcessRecordsInput& in) override {
    EXPECT_TRUE(open_) << "finish_batch without begin_batch";
    EXPECT_TRUE(in.records.empty());
    open_ = false;
    return inner_.process_records({records_, in.millis_behind_latest, in.checkpointer});
  }

 private:
  std::shared_ptr<Script> s_;
  ScriptedProcessor inner_;
  std::vector<ConsumerRecord> records_;  // views into the batch, valid until finish_batch
  bool open_ = false;
};

std::vector<Delivered> plain(const std::vector<std::string>& seqs, std::size_t from,
                             std::size_t to) {
  std::vector<Delivered> out;
  for (std::size_t i = from; i < to; ++i) out.push_back({seqs[i], 0, "r" + std::to_string(i)});
  return out;
}

KinesisRecord make_aggregate(const std::vector<std::optional<HashKey>>& ehks) {
  static std::vector<std::string> pks, datas;  // the builder keeps views
  pks.clear();
  datas.clear();
  pks.reserve(ehks.size());
  datas.reserve(ehks.size());
  AggregateBuilder b;
  for (std::size_t i = 0; i < ehks.size(); ++i) {
    pks.push_back("k" + std::to_string(i));
    datas.push_back("d" + std::to_string(i));
    b.add(pks.back(), ehks[i], datas.back());
  }
  return b.build();
}

KinesisRecord make_aggregate(std::size_t n) {
  return make_aggregate(std::vector<std::optional<HashKey>>(n, std::nullopt));
}

class ShardConsumerFixture : public ::testing::Test {
 protected:
  struct Options {
    std::size_t threads = 1;
    Completion completion = Completion::kInline;
  };

  void start_harness() { start_harness(Options{1, Completion::kInline}); }
  void start_harness(Options o) {
    kinesis_ = std::make_unique<FakeConsumerKinesis>(o.completion);
    auto store = make_sqlite_lease_store(dir_.file("leases.db"), "app");
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::shared_ptr<LeaseStore>(std::move(*store));
    ASSERT_TRUE(store_->initialize().ok());
    LeaseCoordinatorOptions lo;
    lo.worker_id = kWorker;
    lo.failover_time = std::chrono::milliseconds(1000LL * 1000 * 1000);  // never expires here
    lo.clock = &clock_;
    lo.random_seed = 7;
    lo.log = [this](LogLevel l, std::string_view m) { log(l, m); };
    coordinator_ = std::make_unique<LeaseCoordinator>(store_, std::move(lo));
    pool_ = std::make_unique<ThreadPool>(o.threads);

    ctx_.max_records = 10000;
    ctx_.idle_between_reads = kIdle;
    ctx_.max_pending_batches = 4;
    ctx_.parent_poll_interval = kParentPoll;
    ctx_.task_backoff = kBackoff;
    ctx_.max_backoff = 8000ms;
    ctx_.error_policy = ErrorPolicy::kRetry;
    ctx_.worker_id = kWorker;
    ctx_.stream = "test-stream";
    ctx_.clock = &clock_;
    ctx_.kinesis = kinesis_.get();
    ctx_.coordinator = coordinator_.get();
    ctx_.store = store_.get();
    ctx_.pool = pool_.get();
    ctx_.counters = &counters_;
    ctx_.log = [this](LogLevel l, std::string_view m) { log(l, m); };
    ctx_.factory = [this](const std::string& shard_id) -> std::unique_ptr<RecordProcessor> {
      auto s = script_ptr(shard_id);
      int n = s->factory_calls.fetch_add(1) + 1;
      if (s->factory_fails && s->factory_fails(n)) return nullptr;
      if (piecewise_) return std::make_unique<PiecewiseScriptedProcessor>(s);
      return std::make_unique<ScriptedProcessor>(s);
    };
    ctx_.on_shard_finished = [this](const std::string& id) {
      std::lock_guard lk(mu_);
      finished_shards_.push_back(id);
    };
    ctx_.wake = [] {};
  }

  void TearDown() override {
    if (kinesis_) kinesis_->stop();
    if (pool_) pool_->stop();
    if (HasFailure()) {
      std::lock_guard lk(mu_);
      for (const auto& l : logs_) std::cerr << "  log: " << l << "\n";
    }
  }

  void log(LogLevel, std::string_view m) {
    std::lock_guard lk(mu_);
    logs_.emplace_back(m);
  }

  std::shared_ptr<Script> script_ptr(const std::string& shard_id) {
    std::lock_guard lk(mu_);
    auto& s = scripts_[shard_id];
    if (!s) s = std::make_shared<Script>();
    return s;
  }
  Script& script(const std::string& shard_id = kShard) { return *script_ptr(shard_id); }

  std::vector<std::string> finished_shards() {
    std::lock_guard lk(mu_);
    return finished_shards_;
  }

  void create_lease(const std::string& key, std::string checkpoint = "TRIM_HORIZON",
                    std::int64_t sub = 0, std::vector<std::string> parents = {},
                    std::optional<HashKeyRange> range = HashKeyRange{}, std::string owner = "") {
    Lease l;
    l.lease_key = key;
    l.checkpoint = std::move(checkpoint);
    l.checkpoint_sub_sequence_number = sub;
    l.parent_shard_ids = std::move(parents);
    l.hash_key_range = range;
    l.lease_owner = std::move(owner);
    auto r = store_->create_lease_if_not_exists(l);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_TRUE(*r);
  }

  Lease stored(const std::string& key) {
    auto r = store_->get_lease(key);
    EXPECT_TRUE(r.ok() && r->has_value()) << key;
    return r.ok() && r->has_value() ? **r : Lease{};
  }

  // Take the leases (as the scheduler does) and start a consumer for `key`.
  std::shared_ptr<ShardConsumer> acquire(const std::string& key) {
    coordinator_->take_leases();
    auto held = coordinator_->held(key);
    EXPECT_TRUE(held.has_value()) << "not held: " << key;
    if (!held) return nullptr;
    return std::make_shared<ShardConsumer>(ctx_, key, held->token);
  }

  // Scheduler ticks: advance the clock by `step` and poll until `done`.
  template <class F>
  bool drive(ShardConsumer& c, F done, Clock::duration step = kIdle) {
    return poll_until([&] {
      if (done()) return true;
      clock_.advance(step);
      c.poll();
      return done();
    });
  }

  // Wait until the pool has run everything queued (repeatedly: jobs queue more jobs). With
  // one pool thread, or all but one blocked, the queue runs in order.
  void drain() {
    for (int i = 0; i < 6; ++i) {
      std::promise<void> p;
      auto f = p.get_future();
      pool_->post([&p] { p.set_value(); });
      ASSERT_EQ(f.wait_for(20s), std::future_status::ready) << "the pool is stuck";
    }
  }
  // One scheduler tick without moving the clock, then wait for the work it started.
  void settle(ShardConsumer& c) {
    c.poll();
    drain();
  }

  std::int64_t counter(const std::atomic<std::int64_t>& a) { return a.load(); }

  TempDir dir_;
  FakeClock clock_;
  WorkerCounters counters_;
  std::unique_ptr<FakeConsumerKinesis> kinesis_;
  std::shared_ptr<LeaseStore> store_;
  std::unique_ptr<LeaseCoordinator> coordinator_;
  ConsumerContext ctx_;
  std::unique_ptr<ThreadPool> pool_;

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Script>> scripts_;
  std::vector<std::string> finished_shards_;
  std::vector<std::string> logs_;
  bool piecewise_ = false;  // the processors take batches in pieces
};

// Every test runs with a processor that takes whole batches and with one that takes them in
// pieces.
class ShardConsumerTest : public ShardConsumerFixture, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override { piecewise_ = GetParam(); }
};

std::vector<std::string> repeat(const std::string& e, int n) {
  return std::vector<std::string>(static_cast<std::size_t>(n), e);
}
std::vector<std::string> cat(std::vector<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// ---- lifecycle ---------------------------------------------------------------------------------

TEST_P(ShardConsumerTest, LifecycleInitializeProcessShardEndedCreatesChildrenAndReleases) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 6; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  kinesis_->set_records_per_call(kShard, 2);
  kinesis_->close_shard(
      kShard, {ChildShard{kChildA, {kShard}, kLower}, ChildShard{kChildB, {kShard}, kUpper}});
  create_lease(kShard);
  script().on_process = [](const ProcessRecordsInput& in, int) {
    return in.checkpointer.checkpoint();
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status().state, "WAITING_ON_PARENT_SHARDS");
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));

  EXPECT_EQ(script().all_events(),
            cat({{"initialize"}, repeat("process_records", 3), {"shard_ended"}}));
  EXPECT_EQ(script().delivered(), plain(seqs, 0, 6));
  EXPECT_EQ(script().overlaps.load(), 0);
  auto inits = script().all_inits();
  ASSERT_EQ(inits.size(), 1U);
  EXPECT_EQ(inits[0].shard_id, kShard);
  EXPECT_EQ(inits[0].extended_sequence_number,
            (ExtendedSequenceNumber{std::string(kCheckpointTrimHorizon), 0}));
  EXPECT_FALSE(inits[0].pending_checkpoint.has_value());
  auto its = kinesis_->iterator_requests(kShard);
  ASSERT_EQ(its.size(), 1U);
  EXPECT_EQ(its[0].start.type, ShardIteratorType::kTrimHorizon);
  EXPECT_EQ(kinesis_->bad_iterators(), 0);

  // The parent: SHARD_END, children recorded, released.
  Lease p = stored(kShard);
  EXPECT_EQ(p.checkpoint, "SHARD_END");
  EXPECT_EQ(p.checkpoint_sub_sequence_number, 0);
  EXPECT_EQ(p.lease_owner, "");
  EXPECT_EQ(p.child_shard_ids, (std::vector<std::string>{kChildA, kChildB}));
  EXPECT_FALSE(coordinator_->held(kShard).has_value());
  // The children: from ChildShards, with their parent and range, at TRIM_HORIZON, unowned.
  for (const auto& [key, range] : {std::pair{kChildA, kLower}, std::pair{kChildB, kUpper}}) {
    Lease ch = stored(key);
    EXPECT_EQ(ch.checkpoint, "TRIM_HORIZON") << key;
    EXPECT_EQ(ch.parent_shard_ids, std::vector<std::string>{kShard}) << key;
    ASSERT_TRUE(ch.hash_key_range.has_value()) << key;
    EXPECT_EQ(*ch.hash_key_range, range) << key;
    EXPECT_EQ(ch.lease_owner, "") << key;
  }
  EXPECT_EQ(finished_shards(), std::vector<std::string>{kShard});
  EXPECT_EQ(counter(counters_.leases_created), 2);
  EXPECT_EQ(counter(counters_.records_processed), 6);
  EXPECT_EQ(counter(counters_.checkpoints), 4);  // three batches and SHARD_END
  ShardStatus st = c->status();
  EXPECT_EQ(st.state, "STOPPED");
  EXPECT_EQ(st.checkpoint.sequence_number, "SHARD_END");
  EXPECT_EQ(st.records_processed, 6);
}

TEST_P(ShardConsumerTest, ChildrenCreatedAtShardEndStartAfterTheParent) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_shard(kChildA, kLower, {kShard});
  kinesis_->add_shard(kChildB, kUpper, {kShard});
  auto parent_seq = kinesis_->add_record(kShard, "p");
  auto a_seq = kinesis_->add_record(kChildA, "a");
  auto b_seq = kinesis_->add_record(kChildB, "b");
  kinesis_->close_shard(
      kShard, {ChildShard{kChildA, {kShard}, kLower}, ChildShard{kChildB, {kShard}, kUpper}});
  create_lease(kShard);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script(kShard).delivered(), (std::vector<Delivered>{{parent_seq, 0, "p"}}));

  auto a = acquire(kChildA);
  auto b = acquire(kChildB);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(drive(*a, [&] {
    b->poll();
    return script(kChildA).count("process_records") == 1 &&
           script(kChildB).count("process_records") == 1;
  }));
  EXPECT_EQ(script(kChildA).delivered(), (std::vector<Delivered>{{a_seq, 0, "a"}}));
  EXPECT_EQ(script(kChildB).delivered(), (std::vector<Delivered>{{b_seq, 0, "b"}}));
  EXPECT_EQ(script(kChildA).all_inits().at(0).extended_sequence_number.sequence_number,
            "TRIM_HORIZON");
}

TEST_P(ShardConsumerTest, ShardEndedWithoutCheckpointIsRetriedAndChildrenWait) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_shard(kChildA, {}, {kShard});
  kinesis_->add_record(kShard, "r0");
  kinesis_->close_shard(kShard, {ChildShard{kChildA, {kShard}, {}}});
  create_lease(kShard);
  script().on_shard_ended = [](Checkpointer& cp, int n) {
    return n < 3 ? Status() : cp.checkpoint();  // forgets to checkpoint twice
  };
  auto c = acquire(kShard);
  c->poll();
  ASSERT_TRUE(poll_until([&] { return script().count("shard_ended") == 1; }));
  drain();

  // Not finished: the lease is still held, SHARD_END not written, the child's lease exists but
  // its consumer waits for the parent.
  EXPECT_EQ(c->state(), ShardConsumer::State::kShardEnding);
  EXPECT_FALSE(c->finished());
  EXPECT_NE(stored(kShard).checkpoint, "SHARD_END");
  EXPECT_EQ(stored(kShard).lease_owner, kWorker);
  EXPECT_TRUE(finished_shards().empty());
  EXPECT_EQ(stored(kChildA).checkpoint, "TRIM_HORIZON");
  auto child = acquire(kChildA);
  ASSERT_TRUE(child);
  settle(*child);
  EXPECT_EQ(child->state(), ShardConsumer::State::kWaitingOnParents);
  EXPECT_EQ(script(kChildA).factory_calls.load(), 0);

  // Retried after taskBackoffTimeMillis, then after twice that.
  settle(*c);
  EXPECT_EQ(script().count("shard_ended"), 1);
  clock_.advance(kBackoff - 1ms);
  settle(*c);
  EXPECT_EQ(script().count("shard_ended"), 1);
  clock_.advance(1ms);
  settle(*c);
  EXPECT_EQ(script().count("shard_ended"), 2);
  EXPECT_NE(stored(kShard).checkpoint, "SHARD_END");
  clock_.advance(2 * kBackoff - 1ms);
  settle(*c);
  EXPECT_EQ(script().count("shard_ended"), 2);
  clock_.advance(1ms);
  settle(*c);
  EXPECT_EQ(script().count("shard_ended"), 3);
  ASSERT_TRUE(poll_until([&] { return c->finished(); }));
  EXPECT_EQ(stored(kShard).checkpoint, "SHARD_END");
  EXPECT_EQ(stored(kShard).lease_owner, "");
  EXPECT_EQ(counter(counters_.leases_created), 1);  // not once per attempt
  EXPECT_EQ(finished_shards(), std::vector<std::string>{kShard});

  // Now the child starts.
  child->recheck_parents();
  ASSERT_TRUE(drive(*child, [&] { return script(kChildA).count("initialize") == 1; }));
}

TEST_P(ShardConsumerTest, ShardEndedFailingIsRetried) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  kinesis_->close_shard(kShard, {ChildShard{kChildA, {kShard}, {}}});
  create_lease(kShard);
  script().on_shard_ended = [](Checkpointer& cp, int n) -> Status {
    if (n == 1) return Status::unavailable("downstream is down");
    if (n == 2) throw std::runtime_error("boom");
    return cp.checkpoint();
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().all_events(),
            cat({{"initialize", "process_records"}, repeat("shard_ended", 3)}));
  EXPECT_EQ(stored(kShard).checkpoint, "SHARD_END");
  EXPECT_EQ(stored(kShard).lease_owner, "");
  EXPECT_EQ(counter(counters_.leases_created), 1);
}

TEST_P(ShardConsumerTest, LeaseLostCallsLeaseLostOnceAndNothingAfterwards) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 3; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  create_lease(kShard);
  script().on_process = [&](const ProcessRecordsInput& in, int) {
    return in.checkpointer.checkpoint(seqs[0]);
  };
  auto c = acquire(kShard);
  const auto token = c->token();
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  drain();

  // Another worker takes the lease; the renewal finds out; the scheduler tells the consumer.
  Lease l = stored(kShard);
  auto took = store_->take_lease(l, kOther);
  ASSERT_TRUE(took.ok() && *took);
  coordinator_->renew_all();
  auto lost = coordinator_->take_lost();
  ASSERT_EQ(lost.size(), 1U);
  EXPECT_EQ(lost[0], std::make_pair(kShard, token));
  c->lease_lost();
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().all_events(),
            (std::vector<std::string>{"initialize", "process_records", "lease_lost"}));

  // Checkpoints fail now (ShutdownException), and nothing is written.
  Checkpointer* cp = script().last_checkpointer();
  ASSERT_NE(cp, nullptr);
  Status s = cp->checkpoint();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
  EXPECT_EQ(checkpoint_error_name(s), "ShutdownException");
  s = cp->checkpoint(seqs[2]);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
  EXPECT_EQ(counter(counters_.checkpoint_failures), 2);
  EXPECT_EQ(stored(kShard).lease_owner, kOther);
  EXPECT_EQ(stored(kShard).checkpoint, seqs[0]);

  // Nothing more happens: no calls, no reads, a second lease_lost() is ignored.
  const int reads = kinesis_->get_records_calls(kShard);
  kinesis_->add_record(kShard, "late");
  c->lease_lost();
  for (int i = 0; i < 5; ++i) {
    clock_.advance(10s);
    settle(*c);
  }
  EXPECT_EQ(script().count("lease_lost"), 1);
  EXPECT_EQ(script().all_events().size(), 3U);
  EXPECT_EQ(kinesis_->get_records_calls(kShard), reads);
}

TEST_P(ShardConsumerTest, LeaseLostDuringProcessRecordsIsDeliveredAfterItReturns) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  create_lease(kShard);
  std::shared_ptr<ShardConsumer> c;
  std::atomic<bool> lost_seen_inside{false};
  script().on_process = [&](const ProcessRecordsInput&, int) {
    c->lease_lost();  // decided now, delivered after this call
    lost_seen_inside = script().count("lease_lost") != 0;
    return Status();
  };
  c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_FALSE(lost_seen_inside.load());
  EXPECT_EQ(script().all_events(),
            (std::vector<std::string>{"initialize", "process_records", "lease_lost"}));
  EXPECT_FALSE(coordinator_->held(kShard).has_value());
  EXPECT_EQ(stored(kShard).lease_owner, kWorker);  // lost, not released: no store write
}

TEST_P(ShardConsumerTest, RequestShutdownCallsShutdownRequestedThenLeaseLostAndReleases) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 2; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  create_lease(kShard);
  script().on_shutdown_requested = [](Checkpointer& cp, int) { return cp.checkpoint(); };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  c->request_shutdown();
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().all_events(), (std::vector<std::string>{"initialize", "process_records",
                                                             "shutdown_requested", "lease_lost"}));
  Lease l = stored(kShard);
  EXPECT_EQ(l.lease_owner, "");  // released: another worker takes it at once
  EXPECT_EQ(l.checkpoint, seqs[1]);
  EXPECT_FALSE(coordinator_->held(kShard).has_value());
  EXPECT_TRUE(finished_shards().empty());
}

TEST_P(ShardConsumerTest, LeaseLostBeforeInitializeCreatesNoProcessor) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  create_lease(kShard);
  auto c = acquire(kShard);
  c->lease_lost();
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().factory_calls.load(), 0);
  EXPECT_TRUE(script().all_events().empty());
  EXPECT_FALSE(coordinator_->held(kShard).has_value());
  EXPECT_EQ(kinesis_->get_records_calls(kShard), 0);
}

TEST_P(ShardConsumerTest, ShutdownWhileWaitingOnParentsCreatesNoProcessorAndReleases) {
  start_harness();
  kinesis_->add_shard(kChildA, {}, {kShard});
  create_lease(kShard, "49590000000000000000000000000000000000000000000000000001", 0, {},
               HashKeyRange{}, kOther);
  create_lease(kChildA, "TRIM_HORIZON", 0, {kShard});
  auto c = acquire(kChildA);
  ASSERT_TRUE(c);
  EXPECT_FALSE(coordinator_->held(kShard).has_value());
  settle(*c);
  EXPECT_EQ(c->state(), ShardConsumer::State::kWaitingOnParents);
  c->request_shutdown();
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script(kChildA).factory_calls.load(), 0);
  EXPECT_TRUE(script(kChildA).all_events().empty());
  EXPECT_EQ(stored(kChildA).lease_owner, "");
}

TEST_P(ShardConsumerTest, NeverTwoCallsAtOnceForOneProcessor) {
  start_harness({.threads = 2, .completion = Completion::kThread});
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 30; ++i) {
    seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  }
  kinesis_->set_records_per_call(kShard, 1);
  kinesis_->close_shard(kShard, {ChildShard{kChildA, {kShard}, {}}});
  create_lease(kShard);
  script().on_initialize = [](const InitializationInput&, int n) {
    return n == 1 ? Status::unavailable("not yet") : Status();
  };
  script().on_process = [](const ProcessRecordsInput& in, int n) {
    if (n % 4 == 0) return Status::unavailable("flaky");  // RETRY: redelivered
    return in.checkpointer.checkpoint();
  };
  auto c = acquire(kShard);
  // A second "scheduler" hammering the consumer from another thread.
  std::atomic<bool> stop{false};
  std::thread other([&] {
    while (!stop.load()) {
      c->poll();
      c->recheck_parents();
      (void)c->status();
      std::this_thread::yield();
    }
  });
  bool done = drive(
      *c, [&] { return c->finished(); }, 50ms);
  stop = true;
  other.join();
  ASSERT_TRUE(done);
  EXPECT_EQ(script().overlaps.load(), 0);
  auto events = script().all_events();
  ASSERT_GE(events.size(), 3U);
  EXPECT_EQ(events[0], "initialize");
  EXPECT_EQ(events[1], "initialize");
  EXPECT_EQ(events.back(), "shard_ended");
  EXPECT_EQ(script().count("shard_ended"), 1);
  EXPECT_EQ(script().count("lease_lost"), 0);
  // Each failed batch came again; collapsing the retries gives every record once, in order.
  auto batches = script().all_batches();
  std::vector<Delivered> once;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (i > 0 && batches[i] == batches[i - 1]) continue;
    once.insert(once.end(), batches[i].begin(), batches[i].end());
  }
  EXPECT_EQ(once, plain(seqs, 0, 30));
  EXPECT_EQ(stored(kShard).checkpoint, "SHARD_END");
  EXPECT_LE(kinesis_->max_outstanding(kShard), 1);
}

// ---- callback failures ---------------------------------------------------------------------

TEST_P(ShardConsumerTest, InitializeFailingIsRetriedAfterBackoff) {
  start_harness();
  kinesis_->add_shard(kShard);
  create_lease(kShard, "49590000000000000000000000000000000000000000000000000001", 3);
  script().on_initialize = [](const InitializationInput&, int n) -> Status {
    if (n == 1) return Status::unavailable("database not ready");
    if (n == 2) throw std::runtime_error("initialize threw");
    return Status();
  };
  auto c = acquire(kShard);
  settle(*c);
  EXPECT_EQ(script().count("initialize"), 1);
  EXPECT_EQ(c->state(), ShardConsumer::State::kInitializing);
  clock_.advance(kBackoff - 1ms);
  settle(*c);
  EXPECT_EQ(script().count("initialize"), 1);
  clock_.advance(1ms);
  settle(*c);
  EXPECT_EQ(script().count("initialize"), 2);  // the exception is a failure too
  EXPECT_EQ(c->state(), ShardConsumer::State::kInitializing);
  clock_.advance(2 * kBackoff - 1ms);  // exponential
  settle(*c);
  EXPECT_EQ(script().count("initialize"), 2);
  clock_.advance(1ms);
  settle(*c);
  EXPECT_EQ(script().count("initialize"), 3);
  EXPECT_EQ(c->state(), ShardConsumer::State::kProcessing);
  EXPECT_EQ(script().factory_calls.load(), 1);  // the same processor object
  for (const auto& in : script().all_inits()) {
    EXPECT_EQ(
        in.extended_sequence_number,
        (ExtendedSequenceNumber{"49590000000000000000000000000000000000000000000000000001", 3}));
  }
}

TEST_P(ShardConsumerTest, FactoryReturningNullIsRetried) {
  start_harness();
  kinesis_->add_shard(kShard);
  create_lease(kShard);
  script().factory_fails = [](int n) { return n == 1; };
  auto c = acquire(kShard);
  settle(*c);
  EXPECT_EQ(script().factory_calls.load(), 1);
  EXPECT_EQ(script().count("initialize"), 0);
  clock_.advance(kBackoff);
  settle(*c);
  EXPECT_EQ(script().factory_calls.load(), 2);
  EXPECT_EQ(script().count("initialize"), 1);
}

TEST_P(ShardConsumerTest, ProcessRecordsRetryRedeliversTheSameRecords) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 6; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  kinesis_->set_records_per_call(kShard, 3);
  create_lease(kShard);
  script().on_process = [](const ProcessRecordsInput&, int n) {
    return n == 1 ? Status::internal("processing failed") : Status();
  };
  auto c = acquire(kShard);
  c->poll();
  ASSERT_TRUE(poll_until([&] { return script().count("process_records") == 1; }));
  drain();
  EXPECT_EQ(counter(counters_.process_records_failures), 1);
  clock_.advance(kBackoff - 1ms);  // the next batch is fetched meanwhile, not delivered
  settle(*c);
  EXPECT_EQ(script().count("process_records"), 1);
  clock_.advance(1ms);
  settle(*c);
  ASSERT_TRUE(poll_until([&] { return script().count("process_records") == 3; }));
  drain();  // the counters move after process_records returns
  EXPECT_EQ(script().all_batches(), (std::vector<std::vector<Delivered>>{
                                        plain(seqs, 0, 3), plain(seqs, 0, 3), plain(seqs, 3, 6)}));
  EXPECT_EQ(counter(counters_.records_processed), 6);
  EXPECT_EQ(counter(counters_.records_skipped), 0);
}

TEST_P(ShardConsumerTest, ProcessRecordsRetryAfterResumingInsideAnAggregate) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  const std::string agg = kinesis_->add_kinesis_record(kShard, make_aggregate(5));
  const std::string last = kinesis_->add_record(kShard, "r2");
  create_lease(kShard, agg, 2);
  script().on_process = [](const ProcessRecordsInput&, int n) {
    return n == 1 ? Status::internal("processing failed") : Status();
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 2; }));
  const std::vector<Delivered> expected = {{agg, 3, "d3"}, {agg, 4, "d4"}, {last, 0, "r2"}};
  // The retry is the same batch: nothing at or before the checkpoint comes back.
  EXPECT_EQ(script().all_batches(), (std::vector<std::vector<Delivered>>{expected, expected}));
}

// A batch of aggregates and plain records: one process_records call with every record in order,
// whichever way the processor takes it. A piecewise processor gets it in several pieces.
TEST_P(ShardConsumerTest, ABatchOfAggregatesAndPlainRecordsArrivesWhole) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<Delivered> expected;
  for (int i = 0; i < 3; ++i) {
    const std::string seq = kinesis_->add_kinesis_record(kShard, make_aggregate(300));
    for (int j = 0; j < 300; ++j) expected.push_back({seq, j, "d" + std::to_string(j)});
  }
  for (int i = 0; i < 600; ++i) {
    const std::string data = "r" + std::to_string(i);
    expected.push_back({kinesis_->add_record(kShard, data), 0, data});
  }
  create_lease(kShard);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  drain();  // the counters move after process_records returns
  EXPECT_EQ(script().all_batches(), (std::vector<std::vector<Delivered>>{expected}));
  if (piecewise_) {
    EXPECT_GE(script().pieces.load(), 4);
  } else {
    EXPECT_EQ(script().pieces.load(), 0);
  }
  EXPECT_EQ(counter(counters_.records_processed), 1500);
  // Everything delivered may be checkpointed, and nothing more.
  Checkpointer* cp = script().last_checkpointer();
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->largest_permitted(), (ExtendedSequenceNumber{expected.back().seq, 0}));
}

// A batch with nothing after the checkpoint (the aggregate's last user record was
// checkpointed) is not delivered; the next one is, alone.
TEST_P(ShardConsumerTest, ABatchWhollyAtOrBeforeTheCheckpointIsNotDelivered) {
  start_harness();
  kinesis_->add_shard(kShard);
  const std::string agg = kinesis_->add_kinesis_record(kShard, make_aggregate(5));
  const std::string next = kinesis_->add_record(kShard, "r1");
  kinesis_->set_records_per_call(kShard, 1);
  create_lease(kShard, agg, 4);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  drain();  // the counters move after process_records returns
  EXPECT_EQ(script().all_batches(),
            (std::vector<std::vector<Delivered>>{{Delivered{next, 0, "r1"}}}));
  EXPECT_EQ(counter(counters_.records_processed), 1);
}

TEST_P(ShardConsumerTest, ProcessRecordsSkipPolicySkipsTheBatch) {
  start_harness();
  ctx_.error_policy = ErrorPolicy::kSkip;
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 6; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  kinesis_->set_records_per_call(kShard, 3);
  create_lease(kShard);
  script().on_process = [](const ProcessRecordsInput&, int n) -> Status {
    if (n == 1) throw std::runtime_error("bad record");
    return Status();
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 2; }));
  for (int i = 0; i < 5; ++i) {
    clock_.advance(kBackoff);
    settle(*c);
  }
  EXPECT_EQ(script().all_batches(),
            (std::vector<std::vector<Delivered>>{plain(seqs, 0, 3), plain(seqs, 3, 6)}));
  EXPECT_EQ(counter(counters_.records_skipped), 3);
  EXPECT_EQ(counter(counters_.records_processed), 3);
  EXPECT_EQ(counter(counters_.process_records_failures), 1);
  // The skipped records count as delivered: checkpoint() may pass them.
  EXPECT_EQ(script().last_checkpointer()->largest_permitted(),
            (ExtendedSequenceNumber{seqs[5], 0}));
}

TEST_P(ShardConsumerTest, ProcessRecordsStopPolicyReleasesTheLeaseForGood) {
  start_harness();
  ctx_.error_policy = ErrorPolicy::kStop;
  kinesis_->add_shard(kShard);
  for (int i = 0; i < 6; ++i) kinesis_->add_record(kShard, "r" + std::to_string(i));
  kinesis_->set_records_per_call(kShard, 3);
  create_lease(kShard);
  script().on_process = [](const ProcessRecordsInput&, int) {
    return Status::internal("poison record");
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().all_events(),
            (std::vector<std::string>{"initialize", "process_records", "lease_lost"}));
  EXPECT_EQ(stored(kShard).lease_owner, "");
  EXPECT_FALSE(coordinator_->held(kShard).has_value());
  // This worker does not take it again.
  auto r = coordinator_->take_leases();
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.taken.empty());
  EXPECT_FALSE(coordinator_->held(kShard).has_value());
  EXPECT_EQ(stored(kShard).lease_owner, "");
}

TEST_P(ShardConsumerTest, LeaseLostFailingIsRetried) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  create_lease(kShard);
  script().on_lease_lost = [](int n) {
    return n == 1 ? Status::unavailable("cleanup failed") : Status();
  };
  auto c = acquire(kShard);
  c->poll();
  ASSERT_TRUE(poll_until([&] { return script().count("process_records") == 1; }));
  drain();
  c->lease_lost();
  ASSERT_TRUE(poll_until([&] { return script().count("lease_lost") == 1; }));
  drain();
  EXPECT_FALSE(c->finished());
  clock_.advance(kBackoff - 1ms);
  settle(*c);
  EXPECT_EQ(script().count("lease_lost"), 1);
  clock_.advance(1ms);
  settle(*c);
  ASSERT_TRUE(poll_until([&] { return c->finished(); }));
  EXPECT_EQ(script().count("lease_lost"), 2);
  EXPECT_EQ(script().count("process_records"), 1);
}

// ---- checkpointer ------------------------------------------------------------------------------

TEST_P(ShardConsumerTest, CheckpointerRangeAndValidation) {
  start_harness();
  kinesis_->add_shard(kShard);
  const std::string p0 = kinesis_->add_record(kShard, "r0");
  const std::string p1 = kinesis_->add_record(kShard, "r1");
  const std::string agg = kinesis_->add_kinesis_record(kShard, make_aggregate(5));
  create_lease(kShard);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  drain();
  Checkpointer* cp = script().last_checkpointer();
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->largest_permitted(), (ExtendedSequenceNumber{agg, 4}));
  EXPECT_EQ(cp->last_checkpoint(), (ExtendedSequenceNumber{"TRIM_HORIZON", 0}));
  const std::string undelivered = kinesis_->add_record(kShard, "later");

  auto expect_invalid = [&](Status s, const char* what) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << what << ": " << s.to_string();
    EXPECT_EQ(checkpoint_error_name(s), "IllegalArgumentException") << what;
  };

  // An exact position.
  ASSERT_TRUE(cp->checkpoint(p1).ok());
  EXPECT_EQ(stored(kShard).checkpoint, p1);
  EXPECT_EQ(cp->last_checkpoint(), (ExtendedSequenceNumber{p1, 0}));
  // Backwards.
  expect_invalid(cp->checkpoint(p0), "backwards");
  expect_invalid(cp->checkpoint("LATEST"), "a sentinel behind it");
  // Past the largest delivered.
  expect_invalid(cp->checkpoint(agg, 5), "past the last sub-record");
  expect_invalid(cp->checkpoint(undelivered), "an undelivered record");
  expect_invalid(cp->checkpoint("SHARD_END"), "SHARD_END before the end");
  expect_invalid(cp->prepare_checkpoint(undelivered), "prepare past the end");
  // Malformed.
  expect_invalid(cp->checkpoint("abc"), "not a number");
  expect_invalid(cp->checkpoint(""), "empty");
  expect_invalid(cp->checkpoint("-5"), "negative");
  expect_invalid(cp->checkpoint(agg, -1), "negative sub-sequence");
  EXPECT_EQ(stored(kShard).checkpoint, p1);  // none of these wrote

  // Inside an aggregate, exactly.
  ASSERT_TRUE(cp->checkpoint(agg, 2).ok());
  Lease l = stored(kShard);
  EXPECT_EQ(l.checkpoint, agg);
  EXPECT_EQ(l.checkpoint_sub_sequence_number, 2);
  // The same value again: OK, and nothing is written.
  const auto counter_before = l.lease_counter;
  const auto writes_before = counter(counters_.checkpoints);
  ASSERT_TRUE(cp->checkpoint(agg, 2).ok());
  ASSERT_TRUE(cp->checkpoint("000" + agg, 2).ok());  // the same number
  EXPECT_EQ(stored(kShard).lease_counter, counter_before);
  EXPECT_EQ(counter(counters_.checkpoints), writes_before);
  // checkpoint(): everything delivered.
  ASSERT_TRUE(cp->checkpoint().ok());
  l = stored(kShard);
  EXPECT_EQ(l.checkpoint, agg);
  EXPECT_EQ(l.checkpoint_sub_sequence_number, 4);
  ASSERT_TRUE(cp->checkpoint().ok());
  EXPECT_EQ(stored(kShard).lease_counter, l.lease_counter);
  EXPECT_EQ(counter(counters_.checkpoints), writes_before + 1);
  EXPECT_EQ(counter(counters_.checkpoint_failures), 0);
  EXPECT_EQ(c->status().checkpoint, (ExtendedSequenceNumber{agg, 4}));
}

TEST_P(ShardConsumerTest, CheckpointOfTheLastRecordInShardEndedWritesShardEnd) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  const std::string last = kinesis_->add_record(kShard, "r1");
  kinesis_->close_shard(kShard, {});
  create_lease(kShard);
  ctx_.find_children = [](const std::string&) -> Result<std::vector<ChildShard>> {
    return std::vector<ChildShard>{ChildShard{kChildA, {kShard}, {}}};
  };
  std::optional<ExtendedSequenceNumber> largest_inside;
  script().on_shard_ended = [&](Checkpointer& cp, int) {
    largest_inside = cp.largest_permitted();
    return cp.checkpoint(last);  // the record, not checkpoint(): SHARD_END all the same
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().count("shard_ended"), 1);
  EXPECT_EQ(largest_inside, (ExtendedSequenceNumber{"SHARD_END", 0}));
  EXPECT_EQ(stored(kShard).checkpoint, "SHARD_END");
  EXPECT_EQ(stored(kShard).child_shard_ids, std::vector<std::string>{kChildA});  // ListShards
}

TEST_P(ShardConsumerTest, ShardEndAfterProcessRecordsCheckpointedTheLastRecordKclBug211) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  const std::string agg = kinesis_->add_kinesis_record(kShard, make_aggregate(5));
  kinesis_->close_shard(kShard, {ChildShard{kChildA, {kShard}, {}}});
  create_lease(kShard);
  script().on_process = [](const ProcessRecordsInput& in, int) {
    return in.checkpointer.checkpoint();  // (agg, 4): the last record of the shard
  };
  std::optional<ExtendedSequenceNumber> last_inside;
  script().on_shard_ended = [&](Checkpointer& cp, int) {
    last_inside = cp.last_checkpoint();
    return cp.checkpoint(agg, 4);  // the KCL skips this write and then fails the task
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(last_inside, (ExtendedSequenceNumber{agg, 4}));
  EXPECT_EQ(script().count("shard_ended"), 1);
  EXPECT_EQ(stored(kShard).checkpoint, "SHARD_END");
  EXPECT_EQ(stored(kShard).lease_owner, "");
}

TEST_P(ShardConsumerTest, ShardEndWithNothingNewDeliveredStillMapsTheLastRecord) {
  // The previous owner processed and checkpointed the last record, then lost the lease: this
  // owner delivers nothing, and checkpoint(last) in shard_ended still means SHARD_END.
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  const std::string last = kinesis_->add_record(kShard, "r1");
  kinesis_->close_shard(kShard, {ChildShard{kChildA, {kShard}, {}}});
  create_lease(kShard, last, 0);
  script().on_shard_ended = [&](Checkpointer& cp, int) { return cp.checkpoint(last); };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().count("process_records"), 0);
  EXPECT_EQ(script().count("shard_ended"), 1);
  EXPECT_EQ(stored(kShard).checkpoint, "SHARD_END");
}

TEST_P(ShardConsumerTest, PrepareCheckpointIsSeenByTheNextOwner) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 3; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  create_lease(kShard);
  script().on_process = [&](const ProcessRecordsInput& in, int n) {
    if (n == 1) {
      Status s = in.checkpointer.checkpoint(seqs[0]);
      if (!s.ok()) return s;
      return in.checkpointer.prepare_checkpoint(seqs[1], 0, std::string("state-\x01\x02", 8));
    }
    return in.checkpointer.checkpoint();
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  Lease l = stored(kShard);
  EXPECT_EQ(l.checkpoint, seqs[0]);
  ASSERT_TRUE(l.pending_checkpoint.has_value());
  EXPECT_EQ(*l.pending_checkpoint, seqs[1]);
  EXPECT_EQ(l.pending_checkpoint_state, std::string("state-\x01\x02", 8));
  c->request_shutdown();
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));

  // The next owner.
  auto c2 = acquire(kShard);
  ASSERT_TRUE(c2);
  EXPECT_NE(c2->token(), c->token());
  ASSERT_TRUE(drive(*c2, [&] { return script().count("process_records") == 2; }));
  auto inits = script().all_inits();
  ASSERT_EQ(inits.size(), 2U);
  EXPECT_EQ(inits[1].extended_sequence_number, (ExtendedSequenceNumber{seqs[0], 0}));
  ASSERT_TRUE(inits[1].pending_checkpoint.has_value());
  EXPECT_EQ(*inits[1].pending_checkpoint, (ExtendedSequenceNumber{seqs[1], 0}));
  EXPECT_EQ(inits[1].pending_checkpoint_state, std::string("state-\x01\x02", 8));
  // It resumed after the checkpoint, and its checkpoint removed the pending one.
  EXPECT_EQ(script().all_batches().at(1), plain(seqs, 1, 3));
  l = stored(kShard);
  EXPECT_EQ(l.checkpoint, seqs[2]);
  EXPECT_FALSE(l.pending_checkpoint.has_value());
}

// ---- retrieval ---------------------------------------------------------------------------------

TEST_P(ShardConsumerTest, ResumesExactlyInsideAnAggregate) {
  start_harness();
  kinesis_->add_shard(kShard);
  kinesis_->add_record(kShard, "r0");
  const std::string agg = kinesis_->add_kinesis_record(kShard, make_aggregate(5));
  const std::string last = kinesis_->add_record(kShard, "r2");
  create_lease(kShard);
  script().on_process = [&](const ProcessRecordsInput& in, int n) {
    return n == 1 ? in.checkpointer.checkpoint(agg, 2) : Status();
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  ASSERT_EQ(script().delivered().size(), 7U);  // r0, five user records, r2
  c->request_shutdown();
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(stored(kShard).checkpoint_sub_sequence_number, 2);

  auto c2 = acquire(kShard);
  ASSERT_TRUE(drive(*c2, [&] { return script().count("process_records") == 2; }));
  EXPECT_EQ(script().all_inits().at(1).extended_sequence_number, (ExtendedSequenceNumber{agg, 2}));
  auto its = kinesis_->iterator_requests(kShard);
  ASSERT_EQ(its.size(), 2U);
  EXPECT_EQ(its[1].start.type, ShardIteratorType::kAtSequenceNumber);
  EXPECT_EQ(its[1].start.sequence_number, agg);
  EXPECT_EQ(script().all_batches().at(1),
            (std::vector<Delivered>{{agg, 3, "d3"}, {agg, 4, "d4"}, {last, 0, "r2"}}));
}

class ExpiredIteratorTest : public ShardConsumerFixture,
                            public ::testing::WithParamInterface<Completion> {};

TEST_P(ExpiredIteratorTest, RestartsAfterTheLastRecordRead) {
  start_harness({.threads = 2, .completion = GetParam()});
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 6; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  kinesis_->set_records_per_call(kShard, 2);
  kinesis_->fail_get_records(kShard, FakeConsumerKinesis::expired_iterator(), 2);
  create_lease(kShard);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().delivered().size() >= 6; }));
  for (int i = 0; i < 5; ++i) {
    clock_.advance(kIdle);
    c->poll();
  }
  ASSERT_TRUE(poll_until([&] { return kinesis_->get_records_calls(kShard) >= 6; }));
  EXPECT_EQ(script().delivered(), plain(seqs, 0, 6));  // nothing lost, nothing twice
  auto its = kinesis_->iterator_requests(kShard);
  ASSERT_EQ(its.size(), 2U);
  EXPECT_EQ(its[0].start.type, ShardIteratorType::kTrimHorizon);
  EXPECT_EQ(its[1].start.type, ShardIteratorType::kAfterSequenceNumber);
  EXPECT_EQ(its[1].start.sequence_number, seqs[1]);
  EXPECT_EQ(counter(counters_.expired_iterators), 1);
  EXPECT_EQ(counter(counters_.get_records_failures), 1);
  EXPECT_EQ(kinesis_->bad_iterators(), 0);
}

INSTANTIATE_TEST_SUITE_P(Completions, ExpiredIteratorTest,
                         ::testing::Values(Completion::kInline, Completion::kThread),
                         [](const auto& info) {
                           return info.param == Completion::kInline ? "Inline" : "Thread";
                         });

TEST_P(ShardConsumerTest, ExpiredIteratorBeforeAnyRecordRestartsAtTheCheckpoint) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 4; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  create_lease(kShard, seqs[1], 0);
  kinesis_->fail_get_records(kShard, FakeConsumerKinesis::expired_iterator(), 1);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  EXPECT_EQ(script().delivered(), plain(seqs, 2, 4));
  auto its = kinesis_->iterator_requests(kShard);
  ASSERT_EQ(its.size(), 2U);
  for (const auto& it : its) {
    EXPECT_EQ(it.start.type, ShardIteratorType::kAtSequenceNumber);
    EXPECT_EQ(it.start.sequence_number, seqs[1]);
  }
}

TEST_P(ShardConsumerTest, ThrottlingBacksOffAndIsCounted) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 4; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  kinesis_->set_records_per_call(kShard, 2);
  kinesis_->fail_get_records(kShard, FakeConsumerKinesis::throttled(), 2);
  create_lease(kShard);
  auto c = acquire(kShard);
  c->poll();
  ASSERT_TRUE(poll_until([&] { return script().count("process_records") == 1; }));
  drain();
  EXPECT_EQ(kinesis_->get_records_calls(kShard), 1);
  clock_.advance(kIdle - 1ms);  // idleTimeBetweenReads
  settle(*c);
  EXPECT_EQ(kinesis_->get_records_calls(kShard), 1);
  clock_.advance(1ms);
  settle(*c);
  EXPECT_EQ(kinesis_->get_records_calls(kShard), 2);  // throttled
  EXPECT_EQ(counter(counters_.throttled_reads), 1);
  // Backoff (taskBackoffTimeMillis, longer than the idle time here) before the next read.
  clock_.advance(kBackoff - 1ms);
  settle(*c);
  EXPECT_EQ(kinesis_->get_records_calls(kShard), 2);
  clock_.advance(1ms);
  settle(*c);
  EXPECT_EQ(kinesis_->get_records_calls(kShard), 3);
  ASSERT_TRUE(poll_until([&] { return script().count("process_records") == 2; }));
  EXPECT_EQ(script().delivered(), plain(seqs, 0, 4));
  EXPECT_EQ(kinesis_->iterator_requests(kShard).size(), 1U);  // same iterator
  EXPECT_EQ(counter(counters_.get_records_failures), 1);
  EXPECT_EQ(counter(counters_.expired_iterators), 0);
}

std::vector<std::optional<HashKey>> mixed_ehks() {
  // In the lower half: 5, 10, 0. Outside: 2^127 + 5, the maximum.
  return {HashKey(0, 5), HashKey(1ULL << 63, 5), HashKey(0, 10), HashKey::max(), HashKey(0, 0)};
}

TEST_P(ShardConsumerTest, FiltersUserRecordsOutsideTheLeaseHashRange) {
  start_harness();
  kinesis_->add_shard(kShard, kLower);
  const std::string agg = kinesis_->add_kinesis_record(kShard, make_aggregate(mixed_ehks()));
  // A plain record is never filtered (its hash key is not in the GetRecords response).
  const std::string p = kinesis_->add_record(kShard, "plain", "some-key");
  create_lease(kShard, "TRIM_HORIZON", 0, {}, kLower);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  EXPECT_EQ(
      script().delivered(),
      (std::vector<Delivered>{{agg, 0, "d0"}, {agg, 2, "d2"}, {agg, 4, "d4"}, {p, 0, "plain"}}));
  EXPECT_EQ(counter(counters_.records_filtered), 2);
}

TEST_P(ShardConsumerTest, FiltersWithTheShardRangeWhenTheLeaseHasNone) {
  start_harness();
  kinesis_->add_shard(kShard, kLower);
  const std::string agg = kinesis_->add_kinesis_record(kShard, make_aggregate(mixed_ehks()));
  create_lease(kShard, "TRIM_HORIZON", 0, {}, std::nullopt);
  ctx_.find_range = [](const std::string& id) -> std::optional<HashKeyRange> {
    if (id == kShard) return kLower;
    return std::nullopt;
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  EXPECT_EQ(script().delivered(),
            (std::vector<Delivered>{{agg, 0, "d0"}, {agg, 2, "d2"}, {agg, 4, "d4"}}));
  EXPECT_EQ(counter(counters_.records_filtered), 2);
}

TEST_P(ShardConsumerTest, KclExactDropsTheWholeAggregate) {
  start_harness();
  ctx_.kcl_exact = true;
  kinesis_->add_shard(kShard, kLower);
  kinesis_->add_kinesis_record(kShard, make_aggregate(mixed_ehks()));
  const std::string inside = kinesis_->add_kinesis_record(
      kShard, make_aggregate({HashKey(0, 1), HashKey(0, 2)}));  // entirely in range: kept
  const std::string p = kinesis_->add_record(kShard, "plain", "some-key");
  create_lease(kShard, "TRIM_HORIZON", 0, {}, kLower);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  EXPECT_EQ(script().delivered(),
            (std::vector<Delivered>{{inside, 0, "d0"}, {inside, 1, "d1"}, {p, 0, "plain"}}));
  EXPECT_EQ(counter(counters_.records_filtered), 5);
}

TEST_P(ShardConsumerTest, PrefetchIsBoundedWhileTheProcessorIsBusy) {
  start_harness({.threads = 2, .completion = Completion::kThread});
  ctx_.max_pending_batches = 2;
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 20; ++i) {
    seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  }
  kinesis_->set_records_per_call(kShard, 1);
  create_lease(kShard);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  script().on_process = [released](const ProcessRecordsInput&, int n) {
    if (n == 1) released.wait();
    return Status();
  };
  struct Release {  // never leave a pool thread blocked
    std::promise<void>& p;
    bool done = false;
    void operator()() {
      if (!done) p.set_value();
      done = true;
    }
    ~Release() { (*this)(); }
  } unblock{release};

  auto c = acquire(kShard);
  c->poll();
  ASSERT_TRUE(poll_until([&] { return script().count("process_records") == 1; }));
  ASSERT_TRUE(drive(*c, [&] { return kinesis_->get_records_calls(kShard) >= 2; }));
  // Plenty of ticks and time: the fetcher must stop at the bound.
  for (int i = 0; i < 30; ++i) {
    clock_.advance(kIdle);
    c->poll();
    ASSERT_TRUE(poll_until([&] { return kinesis_->outstanding(kShard) == 0; }));
    drain();  // one pool thread is blocked in the processor; the other runs the queue in order
  }
  const int calls = kinesis_->get_records_calls(kShard);
  EXPECT_GE(calls, 2);
  EXPECT_LE(calls, static_cast<int>(ctx_.max_pending_batches) + 1)
      << "more GetRecords results than the queue may hold";
  EXPECT_LE(kinesis_->max_outstanding(kShard), 1);
  EXPECT_EQ(script().count("process_records"), 1);

  unblock();
  ASSERT_TRUE(drive(*c, [&] { return script().delivered().size() == 20; }));
  EXPECT_EQ(script().delivered(), plain(seqs, 0, 20));
  EXPECT_LE(kinesis_->max_outstanding(kShard), 1);
}

TEST_P(ShardConsumerTest, EmptyRecordListsAreNotDeliveredByDefault) {
  start_harness();
  kinesis_->add_shard(kShard);
  create_lease(kShard);
  auto c = acquire(kShard);
  settle(*c);
  for (int i = 0; i < 5; ++i) {
    clock_.advance(kIdle);
    settle(*c);
  }
  EXPECT_GE(kinesis_->get_records_calls(kShard), 5);
  EXPECT_EQ(script().count("process_records"), 0);
  const std::string s = kinesis_->add_record(kShard, "r0");
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 1; }));
  EXPECT_EQ(script().delivered(), (std::vector<Delivered>{{s, 0, "r0"}}));
}

TEST_P(ShardConsumerTest, CallProcessRecordsEvenForEmptyRecordList) {
  start_harness();
  ctx_.call_process_records_even_for_empty = true;
  kinesis_->add_shard(kShard);
  create_lease(kShard);
  Status cp_status = Status::internal("not called");
  script().on_process = [&](const ProcessRecordsInput& in, int n) {
    if (n == 1) cp_status = in.checkpointer.checkpoint();  // nothing delivered: a no-op
    return Status();
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") >= 3; }));
  drain();
  for (const auto& b : script().all_batches()) EXPECT_TRUE(b.empty());
  EXPECT_TRUE(cp_status.ok()) << cp_status.to_string();
  EXPECT_EQ(stored(kShard).checkpoint, "TRIM_HORIZON");
  std::lock_guard lk(script().mu);
  for (auto m : script().millis_behind) EXPECT_EQ(m, FakeConsumerKinesis::millis_behind_for(0));
}

TEST_P(ShardConsumerTest, MillisBehindLatestIsPassedThrough) {
  start_harness();
  kinesis_->add_shard(kShard);
  for (int i = 0; i < 5; ++i) kinesis_->add_record(kShard, "r" + std::to_string(i));
  kinesis_->set_records_per_call(kShard, 2);
  create_lease(kShard);
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return script().count("process_records") == 3; }));
  std::vector<std::int64_t> seen;
  {
    std::lock_guard lk(script().mu);
    seen = script().millis_behind;
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{FakeConsumerKinesis::millis_behind_for(3),
                                             FakeConsumerKinesis::millis_behind_for(1),
                                             FakeConsumerKinesis::millis_behind_for(0)}));
  EXPECT_EQ(c->status().millis_behind_latest, FakeConsumerKinesis::millis_behind_for(0));
}

TEST_P(ShardConsumerTest, ResourceNotFoundWhileReadingEndsTheShardWithoutChildren) {
  start_harness();
  kinesis_->add_shard(kShard);
  std::vector<std::string> seqs;
  for (int i = 0; i < 3; ++i) seqs.push_back(kinesis_->add_record(kShard, "r" + std::to_string(i)));
  kinesis_->fail_get_records(kShard, FakeConsumerKinesis::not_found(), 2);
  create_lease(kShard);
  std::atomic<int> find_children_calls{0};
  ctx_.find_children = [&](const std::string&) -> Result<std::vector<ChildShard>> {
    ++find_children_calls;
    return std::vector<ChildShard>{ChildShard{kChildA, {kShard}, {}}};
  };
  auto c = acquire(kShard);
  ASSERT_TRUE(drive(*c, [&] { return c->finished(); }));
  EXPECT_EQ(script().all_events(),
            (std::vector<std::string>{"initialize", "process_records", "shard_ended"}));
  EXPECT_EQ(script().delivered(), plain(seqs, 0, 3));
  Lease l = stored(kShard);
  EXPECT_EQ(l.checkpoint, "SHARD_END");
  EXPECT_TRUE(l.child_shard_ids.empty());
  EXPECT_EQ(l.lease_owner, "");
  EXPECT_EQ(find_children_calls.load(), 0);
  EXPECT_EQ(counter(counters_.leases_created), 0);
  auto all = store_->list_leases();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1U);
}

// ---- parents before children -------------------------------------------------------------------

TEST_P(ShardConsumerTest, ChildWaitsUntilEveryParentReachesShardEnd) {
  start_harness();
  kinesis_->add_shard(kChildA, {}, {kShard, kParent2});
  const std::string s = kinesis_->add_record(kChildA, "child");
  // A merge child: one parent finished, the other still read by another worker.
  create_lease(kParent2, "SHARD_END");
  create_lease(kShard, "49590000000000000000000000000000000000000000000000000001", 0, {},
               HashKeyRange{}, kOther);
  create_lease(kChildA, "TRIM_HORIZON", 0, {kShard, kParent2});
  auto c = acquire(kChildA);
  ASSERT_TRUE(c);
  settle(*c);
  EXPECT_EQ(c->state(), ShardConsumer::State::kWaitingOnParents);
  EXPECT_EQ(c->status().state, "WAITING_ON_PARENT_SHARDS");
  const auto reads = counter(counters_.lease_store_calls);
  EXPECT_GE(reads, 1);

  // Checked again only after parentShardPollIntervalMillis.
  clock_.advance(kParentPoll - 1ms);
  settle(*c);
  EXPECT_EQ(counter(counters_.lease_store_calls), reads);
  clock_.advance(1ms);
  settle(*c);
  EXPECT_GT(counter(counters_.lease_store_calls), reads);
  EXPECT_EQ(c->state(), ShardConsumer::State::kWaitingOnParents);
  EXPECT_EQ(script(kChildA).factory_calls.load(), 0);

  // The other worker finishes the parent.
  Lease p = stored(kShard);
  auto w = store_->update_checkpoint(p, "SHARD_END", 0);
  ASSERT_TRUE(w.ok() && *w);
  settle(*c);
  EXPECT_EQ(c->state(), ShardConsumer::State::kWaitingOnParents);  // not before the next poll
  EXPECT_EQ(script(kChildA).count("initialize"), 0);
  clock_.advance(kParentPoll);
  settle(*c);
  EXPECT_EQ(script(kChildA).count("initialize"), 1);
  ASSERT_TRUE(drive(*c, [&] { return script(kChildA).count("process_records") == 1; }));
  EXPECT_EQ(script(kChildA).delivered(), (std::vector<Delivered>{{s, 0, "child"}}));
}

TEST_P(ShardConsumerTest, ChildStartsWhenTheParentLeaseIsDeleted) {
  start_harness();
  kinesis_->add_shard(kChildA, {}, {kShard});
  create_lease(kShard, "49590000000000000000000000000000000000000000000000000001", 0, {},
               HashKeyRange{}, kOther);
  create_lease(kChildA, "TRIM_HORIZON", 0, {kShard});
  auto c = acquire(kChildA);
  ASSERT_TRUE(c);
  settle(*c);
  EXPECT_EQ(c->state(), ShardConsumer::State::kWaitingOnParents);
  ASSERT_TRUE(store_->delete_lease(kShard).ok());
  clock_.advance(kParentPoll);
  settle(*c);
  EXPECT_EQ(script(kChildA).count("initialize"), 1);
  EXPECT_EQ(c->state(), ShardConsumer::State::kProcessing);
}

TEST_P(ShardConsumerTest, RecheckParentsChecksAtOnce) {
  start_harness();
  kinesis_->add_shard(kChildA, {}, {kShard});
  create_lease(kShard, "49590000000000000000000000000000000000000000000000000001", 0, {},
               HashKeyRange{}, kOther);
  create_lease(kChildA, "TRIM_HORIZON", 0, {kShard});
  auto c = acquire(kChildA);
  settle(*c);
  EXPECT_EQ(c->state(), ShardConsumer::State::kWaitingOnParents);
  Lease p = stored(kShard);
  auto w = store_->update_checkpoint(p, "SHARD_END", 0);
  ASSERT_TRUE(w.ok() && *w);
  c->recheck_parents();  // the scheduler's "a shard finished" hint: no clock advance needed
  drain();
  EXPECT_EQ(script(kChildA).count("initialize"), 1);
}

INSTANTIATE_TEST_SUITE_P(Processors, ShardConsumerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Piecewise" : "Whole"; });

}  // namespace
}  // namespace shardline::detail
