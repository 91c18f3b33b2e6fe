// The lease coordinator (src/consumer/lease_coordinator.*) against the real SQLite store, with a
// FakeClock and, where a store failure matters, a FaultyLeaseStore in between. The protocol is
// the KCL's (docs: kcl-consumer-and-multilang.md §1.3 expiry from observed counter changes,
// §1.4 conditional writes, §2.2 taking, §2.5 lost-lease detection).
//
// No sleeps, no threads (parallel_for unset: renewals run one by one), no wall-clock
// assertions: time moves only through FakeClock::advance().
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "consumer/lease_coordinator.h"
#include "shardline/lease_store.h"
#include "support/fake_clock.h"
#include "support/faulty_lease_store.h"

namespace shardline::detail {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;
using testing::Fault;
using testing::FaultyLeaseStore;
using testing::LeaseOp;
using testing::TempSqliteLeaseStore;

constexpr milliseconds kFailover{10000};
#ifdef NDEBUG
constexpr std::uint64_t kBalanceSeeds = 3;
#else
constexpr std::uint64_t kBalanceSeeds = 1;  // debug and sanitizer builds: about 10 times slower
#endif

std::string shard(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shardId-%012d", i);
  return buf;
}

::testing::AssertionResult Fails(const Status& s, StatusCode code) {
  if (s.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << status_code_name(code) << ", got " << s.to_string();
}

::testing::AssertionResult Ok(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.to_string();
}

using Lost = std::vector<std::pair<std::string, std::uint64_t>>;

class LeaseCoordinatorTest : public ::testing::Test {
 protected:
  std::unique_ptr<LeaseCoordinator> coordinator(const std::string& id,
                                                std::shared_ptr<LeaseStore> store = nullptr,
                                                std::int64_t max_leases = 2147483647) {
    LeaseCoordinatorOptions o;
    o.worker_id = id;
    o.failover_time = kFailover;
    o.max_leases_for_worker = max_leases;
    o.clock = &clock_;
    o.random_seed = ++seed_;
    o.log = [this](LogLevel, std::string_view m) { log_.emplace_back(m); };
    return std::make_unique<LeaseCoordinator>(store ? std::move(store) : db_.store(), std::move(o));
  }
  std::shared_ptr<FaultyLeaseStore> faulty() {
    return std::make_shared<FaultyLeaseStore>(db_.store());
  }

  void create(int n) {
    for (int i = 0; i < n; ++i) {
      Lease l;
      l.lease_key = shard(i);
      l.checkpoint = std::string(kCheckpointTrimHorizon);
      auto r = db_.store()->create_lease_if_not_exists(l);
      ASSERT_TRUE(r.ok() && *r) << (r.ok() ? "existed" : r.status().to_string());
    }
  }
  Lease stored(const std::string& key) {
    auto r = db_.store()->get_lease(key);
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "no lease " << key;
      return {};
    }
    return **r;
  }
  std::map<std::string, int> owners() {
    std::map<std::string, int> out;
    auto all = db_.store()->list_leases();
    EXPECT_TRUE(all.ok());
    if (all.ok()) {
      for (const auto& l : *all) ++out[l.lease_owner];
    }
    return out;
  }
  // Advances the fake clock to `ms` after the test's start.
  void at(std::int64_t ms) {
    auto target = start_ + milliseconds(ms);
    ASSERT_GE(target, clock_.now());
    clock_.advance(target - clock_.now());
  }
  bool logged(const std::string& fragment) const {
    return std::any_of(log_.begin(), log_.end(),
                       [&](const std::string& m) { return m.find(fragment) != std::string::npos; });
  }

  TempSqliteLeaseStore db_;
  FakeClock clock_;
  const Clock::time_point start_ = clock_.now();
  std::uint64_t seed_ = 0;
  std::vector<std::string> log_;
};

TEST_F(LeaseCoordinatorTest, RenewalKeepsTheLease) {
  create(1);
  auto a = coordinator("worker-a");
  auto b = coordinator("worker-b");
  EXPECT_EQ(a->renew_interval(), milliseconds(3308));  // failover / 3 - epsilon, as the KCL
  auto r = a->take_leases();
  ASSERT_TRUE(Ok(r.status));
  ASSERT_EQ(r.taken, std::vector<std::string>{shard(0)});
  const auto held = a->held(shard(0));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->lease.lease_owner, "worker-a");

  // Ten failover times of renewals; worker-b scans after every one and never gets it.
  for (int i = 0; i < 30; ++i) {
    clock_.advance(a->renew_interval());
    a->renew_all();
    EXPECT_TRUE(b->take_leases().taken.empty()) << "round " << i;
    auto now_held = a->held(shard(0));
    ASSERT_TRUE(now_held) << "round " << i;
    EXPECT_EQ(now_held->token, held->token);
    EXPECT_EQ(now_held->lease.lease_counter, stored(shard(0)).lease_counter);
  }
  EXPECT_TRUE(a->take_lost().empty());
  EXPECT_EQ(stored(shard(0)).lease_owner, "worker-a");
  EXPECT_EQ(stored(shard(0)).lease_counter, held->lease.lease_counter + 30);
  EXPECT_EQ(a->counters().renewals.load(), 30);
  EXPECT_EQ(b->held_count(), 0u);
  EXPECT_EQ(b->counters().taken.load(), 0);
}

TEST_F(LeaseCoordinatorTest, AnUnownedLeaseIsAvailableAtOnce) {
  create(3);
  auto a = coordinator("worker-a");
  // First scan, no time passed: never-seen unowned leases are available immediately.
  auto r = a->take_leases();
  EXPECT_EQ(r.taken.size(), 3u);
  EXPECT_EQ(r.workers, 1);
  EXPECT_EQ(r.target, 3);
  EXPECT_EQ(a->held_count(), 3u);
  EXPECT_EQ(owners(), (std::map<std::string, int>{{"worker-a", 3}}));
}

TEST_F(LeaseCoordinatorTest, TheFirstSightOfAnOwnedLeaseStartsAFullPeriod) {
  create(1);
  auto a = coordinator("worker-a");
  ASSERT_EQ(a->take_leases().taken.size(), 1u);
  a.reset();  // worker-a dies at once: the counter never moves again

  // worker-b starts a minute later. The counter has not moved for 60 s, but worker-b cannot
  // know that (no clocks are compared across hosts): its first sight starts the period.
  at(60000);
  auto b = coordinator("worker-b");
  EXPECT_TRUE(b->take_leases().taken.empty());
  at(60000 + kFailover.count());  // exactly failoverTime: not yet expired
  EXPECT_TRUE(b->take_leases().taken.empty());
  at(60000 + kFailover.count() + 1);
  EXPECT_EQ(b->take_leases().taken, std::vector<std::string>{shard(0)});
  EXPECT_EQ(stored(shard(0)).lease_owner, "worker-b");
  EXPECT_EQ(stored(shard(0)).owner_switches_since_checkpoint, 1);
}

TEST_F(LeaseCoordinatorTest, ExpiryIsJudgedFromObservedCounterChanges) {
  create(1);
  auto a = coordinator("worker-a");
  auto b = coordinator("worker-b");
  ASSERT_EQ(a->take_leases().taken.size(), 1u);  // t = 0
  EXPECT_TRUE(b->take_leases().taken.empty());   // t = 0: first sight
  at(3000);
  a->renew_all();
  at(6000);
  a->renew_all();
  at(9000);
  a->renew_all();
  a.reset();  // dies after its last renewal at 9 s

  // worker-b scans at 12 s: the counter moved since its last scan (at 0 s), so the period runs
  // from 12 s -- when worker-b saw the change, not when worker-a wrote it.
  at(12000);
  EXPECT_TRUE(b->take_leases().taken.empty());
  at(19500);  // 10.5 s after worker-a's last write, 7.5 s after worker-b saw it
  EXPECT_TRUE(b->take_leases().taken.empty());
  at(12000 + kFailover.count());
  EXPECT_TRUE(b->take_leases().taken.empty());
  at(12000 + kFailover.count() + 1);
  EXPECT_EQ(b->take_leases().taken, std::vector<std::string>{shard(0)});
  EXPECT_EQ(b->counters().stolen.load(), 0);  // taken as expired, not stolen
}

TEST_F(LeaseCoordinatorTest, APausedHolderSeesItsLeaseExpiredBeforeAnotherWorkerTakesIt) {
  create(1);
  auto a = coordinator("worker-a");
  auto b = coordinator("worker-b");
  ASSERT_EQ(a->take_leases().taken.size(), 1u);
  const auto held = a->held(shard(0));
  ASSERT_TRUE(held);
  EXPECT_TRUE(b->take_leases().taken.empty());

  // worker-a stops for 25 s (a GC pause): no renewals. worker-b keeps scanning.
  for (std::int64_t t = 1000; t <= 25000; t += 1000) {
    at(t);
    auto r = b->take_leases();
    if (!r.taken.empty()) {
      // worker-b takes the lease only once worker-a's own clock says it is gone.
      EXPECT_EQ(a->held(shard(0)), std::nullopt) << "taken at " << t << " ms";
      EXPECT_GT(t, kFailover.count());
    }
  }
  EXPECT_EQ(stored(shard(0)).lease_owner, "worker-b");

  // worker-a wakes up: its checkpoint is refused without a store call, and its next renewal
  // reports the loss.
  EXPECT_TRUE(
      Fails(a->checkpoint(shard(0), held->token, "100", 0), StatusCode::kFailedPrecondition));
  a->renew_all();
  EXPECT_EQ(a->take_lost(), (Lost{{shard(0), held->token}}));
  EXPECT_EQ(stored(shard(0)).checkpoint, kCheckpointTrimHorizon);
}

TEST_F(LeaseCoordinatorTest, AStolenLeaseIsReportedAtTheVictimsNextRenewal) {
  create(2);
  auto a = coordinator("worker-a");
  auto b = coordinator("worker-b");
  ASSERT_EQ(a->take_leases().taken.size(), 2u);
  std::map<std::string, std::uint64_t> tokens;
  for (const auto& h : a->held_leases()) tokens[h.lease.lease_key] = h.token;
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_TRUE(b->take_leases().taken.empty());  // first scan: it watches, steals nothing

  at(1000);
  auto r = b->take_leases();  // target 1 each: worker-b steals one
  ASSERT_EQ(r.taken.size(), 1u);
  EXPECT_EQ(r.workers, 2);
  EXPECT_EQ(r.target, 1);
  EXPECT_EQ(b->counters().stolen.load(), 1);
  const std::string k = r.taken[0];
  const std::string other = k == shard(0) ? shard(1) : shard(0);
  EXPECT_EQ(stored(k).lease_owner, "worker-b");
  EXPECT_EQ(stored(k).owner_switches_since_checkpoint, 1);

  // Until its next renewal worker-a does not know (its belief is stale: an older counter).
  EXPECT_TRUE(a->take_lost().empty());
  ASSERT_TRUE(a->held(k));
  EXPECT_LT(a->held(k)->lease.lease_counter, stored(k).lease_counter);

  at(a->renew_interval().count());  // within one renewal interval of the steal
  a->renew_all();
  EXPECT_EQ(a->take_lost(), (Lost{{k, tokens[k]}}));
  EXPECT_EQ(a->held(k), std::nullopt);
  EXPECT_TRUE(a->held(other));
  EXPECT_EQ(a->counters().lost.load(), 1);
  EXPECT_TRUE(Fails(a->checkpoint(k, tokens[k], "100", 0), StatusCode::kFailedPrecondition));
  EXPECT_EQ(stored(k).checkpoint, kCheckpointTrimHorizon);
  EXPECT_EQ(stored(k).lease_owner, "worker-b");
  // The lease it kept still checkpoints.
  EXPECT_TRUE(Ok(a->checkpoint(other, tokens[other], "100", 0)));
  EXPECT_EQ(stored(other).checkpoint, "100");
}

TEST_F(LeaseCoordinatorTest, AStaleCheckpointIsFencedByTheCounter) {
  create(2);
  auto a = coordinator("worker-a");
  auto b = coordinator("worker-b");
  ASSERT_EQ(a->take_leases().taken.size(), 2u);
  EXPECT_TRUE(b->take_leases().taken.empty());  // first scan: it watches, steals nothing
  auto r = b->take_leases();
  ASSERT_EQ(r.taken.size(), 1u);
  const std::string k = r.taken[0];
  const auto stale = a->held(k);
  ASSERT_TRUE(stale);  // worker-a has not renewed since: it still believes

  // The checkpoint is attempted (not locally expired) and refused by the counter condition.
  EXPECT_TRUE(Fails(a->checkpoint(k, stale->token, "100", 0), StatusCode::kFailedPrecondition));
  EXPECT_EQ(a->take_lost(), (Lost{{k, stale->token}}));
  EXPECT_EQ(a->held(k), std::nullopt);
  EXPECT_EQ(stored(k).checkpoint, kCheckpointTrimHorizon);
  EXPECT_EQ(stored(k).lease_owner, "worker-b");
  // A wrong token is refused as well, without a store call.
  const auto mine = a->held_leases();
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_TRUE(Fails(a->checkpoint(mine[0].lease.lease_key, mine[0].token + 1000, "100", 0),
                    StatusCode::kFailedPrecondition));
}

TEST_F(LeaseCoordinatorTest, CheckpointFailsOnceTheLeaseExpiredLocallyEvenIfTheStoreWouldAccept) {
  create(1);
  auto store = faulty();
  auto a = coordinator("worker-a", store);
  ASSERT_EQ(a->take_leases().taken.size(), 1u);  // t = 0
  const auto held = a->held(shard(0));
  ASSERT_TRUE(held);

  // Every renewal fails (throttled, then unreachable): nothing reaches the store.
  store->script(LeaseOp::kRenew, {Fault::kThrottledBefore});
  store->always(LeaseOp::kRenew, Fault::kUnavailableBefore);
  for (int i = 1; i <= 3; ++i) {
    at(i * a->renew_interval().count());  // 3.3, 6.6, 9.9 s
    a->renew_all();
    EXPECT_TRUE(a->held(shard(0))) << "renewal " << i;
  }
  EXPECT_EQ(store->calls(LeaseOp::kRenew), 3);
  EXPECT_TRUE(a->take_lost().empty());
  at(kFailover.count());  // exactly failoverTime after the take: still held
  EXPECT_TRUE(a->held(shard(0)));
  at(kFailover.count() + 1);
  EXPECT_EQ(a->held(shard(0)), std::nullopt);
  EXPECT_TRUE(a->held_leases().empty());

  const auto checkpoints_before = store->calls(LeaseOp::kCheckpoint);
  EXPECT_TRUE(
      Fails(a->checkpoint(shard(0), held->token, "100", 0), StatusCode::kFailedPrecondition));
  EXPECT_TRUE(Fails(a->prepare_checkpoint(shard(0), held->token, "100", 0, std::nullopt),
                    StatusCode::kFailedPrecondition));
  EXPECT_EQ(store->calls(LeaseOp::kCheckpoint), checkpoints_before);  // never sent
  EXPECT_EQ(a->take_lost(), (Lost{{shard(0), held->token}}));

  // The store would have taken it: the lease is still worker-a's, at the counter it holds.
  Lease copy = held->lease;
  auto direct = db_.store()->update_checkpoint(copy, "100", 0);
  ASSERT_TRUE(direct.ok());
  EXPECT_TRUE(*direct);
}

TEST_F(LeaseCoordinatorTest, AWriteReportedFalseAfterItSucceededKeepsTheLease) {
  // A client retry whose first attempt succeeded: the store has the write, the caller gets
  // false. The coordinator reads the lease back and keeps it (take, renew, checkpoint, prepare).
  create(1);
  auto store = faulty();
  auto a = coordinator("worker-a", store);
  auto b = coordinator("worker-b");

  store->script(LeaseOp::kTake, {Fault::kRetriedSuccess});
  auto r = a->take_leases();
  EXPECT_EQ(r.taken, std::vector<std::string>{shard(0)});
  auto held = a->held(shard(0));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->lease.lease_counter, stored(shard(0)).lease_counter);

  store->script(LeaseOp::kRenew, {Fault::kRetriedSuccess});
  at(a->renew_interval().count());
  a->renew_all();
  EXPECT_TRUE(a->take_lost().empty());
  held = a->held(shard(0));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->lease.lease_counter, stored(shard(0)).lease_counter);

  store->script(LeaseOp::kCheckpoint, {Fault::kRetriedSuccess});
  EXPECT_TRUE(Ok(a->checkpoint(shard(0), held->token, "100", 2)));
  EXPECT_EQ(stored(shard(0)).checkpoint, "100");
  EXPECT_EQ(stored(shard(0)).checkpoint_sub_sequence_number, 2);
  held = a->held(shard(0));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->lease.lease_counter, stored(shard(0)).lease_counter);
  EXPECT_EQ(held->lease.checkpoint, "100");

  store->script(LeaseOp::kPrepare, {Fault::kRetriedSuccess});
  EXPECT_TRUE(Ok(a->prepare_checkpoint(shard(0), held->token, "200", 0, std::string("s"))));
  EXPECT_EQ(stored(shard(0)).pending_checkpoint, "200");

  EXPECT_EQ(store->faults(Fault::kRetriedSuccess), 4);
  EXPECT_TRUE(a->take_lost().empty());
  EXPECT_EQ(a->counters().lost.load(), 0);
  // Still the holder: later writes work, and the lease is never considered free by others.
  EXPECT_TRUE(Ok(a->checkpoint(shard(0), held->token, "300", 0)));
  at(2 * a->renew_interval().count());
  a->renew_all();
  EXPECT_TRUE(a->held(shard(0)));
  EXPECT_TRUE(b->take_leases().taken.empty());
}

TEST_F(LeaseCoordinatorTest, ALostReplyIsRecoveredByTheNextWrite) {
  // The write happened, the reply was lost (kUnavailable): the holder's counter is one behind.
  create(1);
  auto store = faulty();
  auto a = coordinator("worker-a", store);
  ASSERT_EQ(a->take_leases().taken.size(), 1u);
  auto held = a->held(shard(0));
  ASSERT_TRUE(held);

  store->script(LeaseOp::kRenew, {Fault::kUnavailableAfter});
  at(a->renew_interval().count());
  a->renew_all();
  EXPECT_EQ(stored(shard(0)).lease_counter, held->lease.lease_counter + 1);
  EXPECT_EQ(a->held(shard(0))->lease.lease_counter, held->lease.lease_counter);
  at(2 * a->renew_interval().count());
  a->renew_all();  // refused (stale counter), read back: our own write
  EXPECT_TRUE(a->take_lost().empty());
  held = a->held(shard(0));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->lease.lease_counter, stored(shard(0)).lease_counter);

  // A checkpoint whose reply was lost, retried with the same position.
  store->script(LeaseOp::kCheckpoint, {Fault::kUnavailableAfter});
  EXPECT_TRUE(Fails(a->checkpoint(shard(0), held->token, "100", 0), StatusCode::kUnavailable));
  EXPECT_EQ(stored(shard(0)).checkpoint, "100");
  EXPECT_TRUE(Ok(a->checkpoint(shard(0), held->token, "100", 0)));
  held = a->held(shard(0));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->lease.lease_counter, stored(shard(0)).lease_counter);

  // A checkpoint whose reply was lost, followed by a later position.
  store->script(LeaseOp::kCheckpoint, {Fault::kUnavailableAfter});
  EXPECT_TRUE(Fails(a->checkpoint(shard(0), held->token, "200", 0), StatusCode::kUnavailable));
  EXPECT_TRUE(Ok(a->checkpoint(shard(0), held->token, "250", 0)));
  EXPECT_EQ(stored(shard(0)).checkpoint, "250");

  // A renewal whose reply was lost, followed by a checkpoint.
  store->script(LeaseOp::kRenew, {Fault::kUnavailableAfter});
  at(3 * a->renew_interval().count());
  a->renew_all();
  EXPECT_TRUE(Ok(a->checkpoint(shard(0), held->token, "300", 0)));
  EXPECT_EQ(stored(shard(0)).checkpoint, "300");
  EXPECT_TRUE(a->take_lost().empty());
  EXPECT_EQ(a->counters().lost.load(), 0);
}

TEST_F(LeaseCoordinatorTest, ALostReplyDoesNotExtendTheLocalLease) {
  // The holder must consider its lease expired no later than any other worker may. A renewal
  // whose reply was lost and that is later confirmed by reading the lease back happened when
  // the lost call was made, not when the confirming call was.
  create(1);
  auto store = faulty();
  auto a = coordinator("worker-a", store);
  auto b = coordinator("worker-b");
  ASSERT_EQ(a->take_leases().taken.size(), 1u);  // t = 0
  EXPECT_TRUE(b->take_leases().taken.empty());   // first sight at 0

  store->script(LeaseOp::kRenew, {Fault::kUnavailableAfter});
  at(3000);
  a->renew_all();  // written at 3 s; worker-a does not know
  at(3100);
  EXPECT_TRUE(b->take_leases().taken.empty());  // worker-b sees the change at 3.1 s
  store->script(LeaseOp::kRenew, {Fault::kUnavailableBefore});
  at(6000);
  a->renew_all();  // fails, nothing written
  at(9000);
  a->renew_all();  // refused (counter moved), read back: confirmed as worker-a's own write
  EXPECT_TRUE(a->take_lost().empty());
  store->script(LeaseOp::kRenew, {Fault::kUnavailableBefore});
  at(12000);
  a->renew_all();  // fails, nothing written: the counter has not moved since 3 s

  // worker-b may take the lease once failoverTime has passed since it saw the change at 3.1 s.
  at(13101);
  auto r = b->take_leases();
  ASSERT_EQ(r.taken, std::vector<std::string>{shard(0)});
  EXPECT_EQ(a->held(shard(0)), std::nullopt)
      << "worker-a still believes it holds the lease worker-b took as expired";
}

TEST_F(LeaseCoordinatorTest, ReleaseLetsAnotherWorkerTakeTheLeaseAtOnce) {
  create(2);
  auto a = coordinator("worker-a");
  auto b = coordinator("worker-b", nullptr, 1);  // wants one lease
  ASSERT_EQ(a->take_leases().taken.size(), 2u);
  EXPECT_TRUE(b->take_leases().taken.empty());  // first scan: it watches, steals nothing
  auto rb = b->take_leases();  // second scan; worker-b steals one (target 1)
  ASSERT_EQ(rb.taken.size(), 1u);
  a->renew_all();
  ASSERT_EQ(a->take_lost().size(), 1u);
  auto held = a->held_leases();
  ASSERT_EQ(held.size(), 1u);
  const std::string k = held[0].lease.lease_key;

  at(500);
  auto c = coordinator("worker-c");
  EXPECT_TRUE(c->take_leases().taken.empty());  // owned by live workers, at target
  EXPECT_TRUE(Ok(a->release(k, held[0].token)));
  EXPECT_TRUE(a->take_lost().empty());  // released, not lost
  EXPECT_EQ(a->held(k), std::nullopt);
  EXPECT_EQ(a->held_count(), 0u);
  EXPECT_EQ(a->counters().released.load(), 1);
  EXPECT_EQ(stored(k).lease_owner, "");
  EXPECT_TRUE(Ok(a->release(k, held[0].token)));  // idempotent
  EXPECT_TRUE(Fails(a->checkpoint(k, held[0].token, "100", 0), StatusCode::kFailedPrecondition));

  // No time passes: worker-c takes it on its next scan, without waiting for an expiry.
  auto rc = c->take_leases();
  EXPECT_EQ(rc.taken, std::vector<std::string>{k});
  EXPECT_EQ(stored(k).lease_owner, "worker-c");
  EXPECT_EQ(stored(k).owner_switches_since_checkpoint, 0);  // taken unowned: no switch
}

TEST_F(LeaseCoordinatorTest, MaxLeasesForWorkerCaps) {
  create(10);
  auto a = coordinator("worker-a", nullptr, 3);
  auto r = a->take_leases();
  EXPECT_EQ(r.target, 3);
  EXPECT_EQ(r.taken.size(), 3u);
  EXPECT_TRUE(logged("lease spillover"));
  for (int i = 1; i <= 15; ++i) {  // five failover times
    at(i * a->renew_interval().count());
    a->renew_all();
    EXPECT_TRUE(a->take_leases().taken.empty());
  }
  EXPECT_EQ(a->held_count(), 3u);
  EXPECT_EQ(owners(), (std::map<std::string, int>{{"", 7}, {"worker-a", 3}}));
}

TEST_F(LeaseCoordinatorTest, LeasesLeftOverByCappedWorkersAreTakenBeyondTheShare) {
  // worker-a may hold 3 of 10 leases. worker-b's fair share is 5 (two workers): it takes 5,
  // and the last 2 would stay unowned forever (the KCL takes such "very old" leases first,
  // ignoring the target: enablePriorityLeaseAssignment). worker-b takes them once it has seen
  // them left available for two failover periods.
  create(10);
  auto a = coordinator("worker-a", nullptr, 3);
  auto b = coordinator("worker-b");
  EXPECT_EQ(a->take_leases().taken.size(), 3u);
  auto r = b->take_leases();
  EXPECT_EQ(r.target, 5);
  EXPECT_EQ(r.taken.size(), 5u);
  std::int64_t left_over_at = -1;
  for (int i = 1; i <= 12; ++i) {  // four failover times
    at(i * a->renew_interval().count());
    a->renew_all();
    b->renew_all();
    EXPECT_TRUE(a->take_leases().taken.empty());
    auto rb = b->take_leases();
    if (!rb.taken.empty()) {
      EXPECT_EQ(rb.taken.size(), 2u);
      EXPECT_EQ(left_over_at, -1);
      left_over_at = i * a->renew_interval().count();
    }
  }
  EXPECT_GT(left_over_at, 2 * kFailover.count());
  EXPECT_LE(left_over_at, 2 * kFailover.count() + a->renew_interval().count());
  EXPECT_EQ(owners(), (std::map<std::string, int>{{"worker-a", 3}, {"worker-b", 7}}));

  // A worker capped below its share never takes more than its cap.
  auto c = coordinator("worker-c", nullptr, 1);
  at(13 * a->renew_interval().count());
  a->renew_all();
  b->renew_all();
  EXPECT_TRUE(c->take_leases().taken.empty());    // first scan: it watches, steals nothing
  EXPECT_EQ(c->take_leases().taken.size(), 1u);  // stolen from worker-b (7 > target 4)
  for (int i = 14; i <= 30; ++i) {
    at(i * a->renew_interval().count());
    a->renew_all();
    b->renew_all();
    c->renew_all();
    EXPECT_TRUE(c->take_leases().taken.empty());
    EXPECT_TRUE(a->take_leases().taken.empty());
    b->take_leases();
  }
  EXPECT_EQ(owners(),
            (std::map<std::string, int>{{"worker-a", 3}, {"worker-b", 6}, {"worker-c", 1}}));
}

TEST_F(LeaseCoordinatorTest, ExcludedLeasesAreNeverTaken) {
  create(3);
  auto a = coordinator("worker-a");
  a->exclude(shard(1));
  auto r = a->take_leases();
  EXPECT_EQ(r.taken.size(), 2u);
  EXPECT_EQ(a->held(shard(1)), std::nullopt);
  for (int i = 1; i <= 15; ++i) {  // five failover times
    at(i * a->renew_interval().count());
    a->renew_all();
    EXPECT_TRUE(a->take_leases().taken.empty());
  }
  EXPECT_EQ(stored(shard(1)).lease_owner, "");
  // Another worker takes it.
  auto b = coordinator("worker-b");
  EXPECT_EQ(b->take_leases().taken, std::vector<std::string>{shard(1)});
}

TEST_F(LeaseCoordinatorTest, StopTakingStopsTakingButNotRenewing) {
  create(2);
  auto a = coordinator("worker-a");
  ASSERT_EQ(a->take_leases().taken.size(), 2u);
  a->stop_taking();  // graceful shutdown begins
  Lease extra;
  extra.lease_key = shard(2);
  extra.checkpoint = std::string(kCheckpointTrimHorizon);
  ASSERT_TRUE(db_.store()->create_lease_if_not_exists(extra).ok());
  for (int i = 1; i <= 6; ++i) {
    at(i * a->renew_interval().count());
    a->renew_all();
    EXPECT_TRUE(a->take_leases().taken.empty());
  }
  EXPECT_EQ(a->held_count(), 2u);
  EXPECT_TRUE(a->take_lost().empty());
  EXPECT_EQ(stored(shard(2)).lease_owner, "");
}

TEST_F(LeaseCoordinatorTest, AReacquiredLeaseReportsTheOldAcquisitionLost) {
  // Renewals fail for longer than failoverTime; no one else takes the lease (it is still
  // worker-a's in the store), and worker-a's next scan takes it back before its next
  // renew_all(). The old acquisition (token) must be reported lost, or the shard consumer
  // that holds it is never told to stop and the new acquisition never starts.
  create(1);
  auto store = faulty();
  auto a = coordinator("worker-a", store);
  ASSERT_EQ(a->take_leases().taken.size(), 1u);
  const auto first = a->held(shard(0));
  ASSERT_TRUE(first);
  store->always(LeaseOp::kRenew, Fault::kUnavailableBefore);
  for (int i = 1; i <= 3; ++i) {
    at(i * a->renew_interval().count());
    a->renew_all();
  }
  store->always(LeaseOp::kRenew, Fault::kNone);
  at(kFailover.count() + 500);
  EXPECT_EQ(a->held(shard(0)), std::nullopt);  // locally expired, not yet dropped
  auto r = a->take_leases();
  ASSERT_EQ(r.taken, std::vector<std::string>{shard(0)});  // owned under its own id
  const auto second = a->held(shard(0));
  ASSERT_TRUE(second);
  EXPECT_NE(second->token, first->token);
  EXPECT_EQ(a->take_lost(), (Lost{{shard(0), first->token}}));
  EXPECT_TRUE(
      Fails(a->checkpoint(shard(0), first->token, "100", 0), StatusCode::kFailedPrecondition));
  EXPECT_TRUE(Ok(a->checkpoint(shard(0), second->token, "100", 0)));
}

TEST_F(LeaseCoordinatorTest, ARestartedWorkerTakesBackItsOwnLeasesAtOnce) {
  create(4);
  auto a = coordinator("worker-a");
  ASSERT_EQ(a->take_leases().taken.size(), 4u);
  a.reset();
  auto again = coordinator("worker-a");  // same id, new life: no waiting for expiry
  EXPECT_EQ(again->take_leases().taken.size(), 4u);
  EXPECT_EQ(owners(), (std::map<std::string, int>{{"worker-a", 4}}));
  for (const auto& h : again->held_leases()) EXPECT_EQ(h.lease.owner_switches_since_checkpoint, 0);
}

// ---- Balancing ------------------------------------------------------------------------------

// Runs workers on the scheduler's cadence (renew every renew_interval(), take every
// failoverTime plus a deterministic jitter of up to 10 %, as worker.cc) in small steps.
class Fleet {
 public:
  Fleet(FakeClock& clock, std::uint64_t seed) : clock_(clock), rng_(seed) {}

  struct Member {
    std::unique_ptr<LeaseCoordinator> c;
    Clock::time_point next_renew;
    Clock::time_point next_take;
    int take_runs = 0;
  };

  void add(std::unique_ptr<LeaseCoordinator> c, milliseconds first_take_after) {
    Member m;
    m.next_renew = clock_.now() + c->renew_interval();
    m.next_take = clock_.now() + first_take_after;
    m.c = std::move(c);
    members_.push_back(std::move(m));
  }

  // One step: every member does what is due. Returns the leases taken.
  std::int64_t step(milliseconds by = milliseconds(100)) {
    clock_.advance(by);
    std::int64_t taken = 0;
    const auto now = clock_.now();
    for (auto& m : members_) {
      if (now >= m.next_renew) {
        m.c->renew_all();
        m.c->take_lost();
        m.next_renew = now + m.c->renew_interval();
      }
      if (now >= m.next_take) {
        auto r = m.c->take_leases();
        EXPECT_TRUE(r.status.ok()) << r.status.to_string();
        taken += static_cast<std::int64_t>(r.taken.size());
        ++m.take_runs;
        auto jitter = std::uniform_int_distribution<std::int64_t>(0, kFailover.count() / 10)(rng_);
        m.next_take = now + kFailover + milliseconds(jitter);
      }
    }
    return taken;
  }

  std::vector<Member>& members() { return members_; }

 private:
  FakeClock& clock_;
  std::mt19937_64 rng_;
  std::vector<Member> members_;
};

struct BalanceCase {
  int leases;
  int new_workers;
};

TEST_F(LeaseCoordinatorTest, StealingConvergesFastAndDoesNotFlap) {
  // One worker holds every lease; new workers join (each starting within one taker interval)
  // and steal toward an even share. Several layouts and several deterministic start orders.
  //
  // The KCL 2.x taker steals one lease per run (maxLeasesToStealAtOneTime = 1) from the single
  // most loaded worker, every 2 x (failover + epsilon) = 20 s: 64 leases from 1 to 4 workers
  // means 48 lease moves, one per run -- 48 runs, about 16 minutes if counted one after the
  // other, or 16 runs (about 5.3 minutes) per new worker with the three running side by side.
  // Here each new worker takes its whole share in its first run (steals from every worker
  // above target, never pushing one below it), so the fleet converges within one taker
  // interval of the workers joining, plus the old worker's next renewal (when it learns).
  //
  // {7, 6} and {32, 4} need the steals from workers at target: with 7 leases on 7 workers the
  // ones without leases are invisible (target 2: 2, 2, 2, 1, 0, 0, 0 would be stable), and 32
  // on 5 has target 7 (7, 7, 7, 7, 4 would be stable).
  const std::vector<BalanceCase> cases = {{64, 3}, {64, 4},  {32, 4}, {10, 3},
                                          {7, 6},  {100, 1}, {3, 4}};
  for (const BalanceCase& bc : cases) {
    for (std::uint64_t seed = 1; seed <= kBalanceSeeds; ++seed) {
      SCOPED_TRACE("leases " + std::to_string(bc.leases) + ", new workers " +
                   std::to_string(bc.new_workers) + ", seed " + std::to_string(seed));
      TempSqliteLeaseStore db;
      auto table = db.store();
      for (int i = 0; i < bc.leases; ++i) {
        Lease l;
        l.lease_key = shard(i);
        l.checkpoint = std::string(kCheckpointTrimHorizon);
        ASSERT_TRUE(table->create_lease_if_not_exists(l).ok());
      }
      Fleet fleet(clock_, seed);
      auto make = [&](const std::string& id) {
        LeaseCoordinatorOptions o;
        o.worker_id = id;
        o.failover_time = kFailover;
        o.clock = &clock_;
        o.random_seed = seed * 100 + static_cast<std::uint64_t>(fleet.members().size()) + 1;
        return std::make_unique<LeaseCoordinator>(table, std::move(o));
      };
      auto first = make("worker-0");
      ASSERT_EQ(first->take_leases().taken.size(), static_cast<std::size_t>(bc.leases));
      fleet.add(std::move(first), kFailover);

      // The new workers start at random moments within one taker interval.
      std::mt19937_64 rng(seed);
      const auto joined = clock_.now();
      for (int w = 1; w <= bc.new_workers; ++w) {
        auto offset = std::uniform_int_distribution<std::int64_t>(0, kFailover.count() - 1)(rng);
        fleet.add(make("worker-" + std::to_string(w)), milliseconds(offset));
      }
      auto owners_now = [&] {
        std::map<std::string, int> out;
        auto all = table->list_leases();
        if (all.ok()) {
          for (const auto& l : *all) ++out[l.lease_owner];
        }
        return out;
      };
      auto balanced = [&] {
        const auto n = static_cast<std::int64_t>(fleet.members().size());
        auto owners = owners_now();
        std::int64_t total = 0;
        for (const auto& m : fleet.members()) {
          const auto h = static_cast<std::int64_t>(m.c->held_count());
          if (h < bc.leases / n || h > (bc.leases + n - 1) / n) return false;
          if (owners[m.c->worker_id()] != h) return false;
          total += h;
        }
        return total == bc.leases;
      };
      int steps = 0;
      while (!balanced() && steps < 1200) {  // 120 s of simulated time at most
        fleet.step();
        ++steps;
      }
      ASSERT_TRUE(balanced()) << "not balanced after " << steps << " steps";
      const auto converged = clock_.now() - joined;
      int max_runs = 0;
      for (auto& m : fleet.members()) max_runs = std::max(max_runs, m.take_runs);
      // A few take runs per worker at most (observed: two; the first only watches).
      EXPECT_LE(max_runs, 4);
      EXPECT_LE(converged, 4 * kFailover);
      std::printf(
          "[ balance  ] %d leases, 1 + %d workers, seed %llu: balanced after %.1f s of "
          "simulated time, at most %d take runs per worker\n",
          bc.leases, bc.new_workers, static_cast<unsigned long long>(seed),
          std::chrono::duration<double>(converged).count(), max_runs);

      // No flapping: 20 more take runs per worker move nothing.
      const auto owners_before = owners_now();
      std::vector<int> runs_before;
      for (auto& m : fleet.members()) runs_before.push_back(m.take_runs);
      std::int64_t moved = 0;
      for (int i = 0; i < 20 * 22; ++i) moved += fleet.step(milliseconds(500));
      for (std::size_t i = 0; i < runs_before.size(); ++i) {
        EXPECT_GE(fleet.members()[i].take_runs - runs_before[i], 20);
      }
      EXPECT_EQ(moved, 0);
      EXPECT_TRUE(balanced());
      EXPECT_EQ(owners_now(), owners_before);
      for (auto& m : fleet.members()) EXPECT_TRUE(m.c->take_lost().empty());
    }
  }
}

}  // namespace
}  // namespace shardline::detail
