// A deterministic simulation of the lease protocol: N workers (LeaseCoordinator each, on one
// SQLite table through a FaultyLeaseStore each) and M leases, on a FakeClock in 100 ms steps.
//
// Each step a random subset of the workers runs what its scheduler has due (renew_all() every
// renew_interval(), take_leases() every failoverTime plus up to 10 % jitter, as worker.cc) and
// "processes" its leases the way worker.cc dispatches them: one consumer per acquisition
// (token), started from the lease's checkpoint, stopped when take_lost() reports the token or a
// checkpoint is refused, checkpointing increasing sequence numbers.
//
// Faults while the fault phase lasts: store calls fail before the write (kUnavailable,
// kResourceExhausted), after it (the reply is lost), or are reported `false` after they took
// effect (a client retry); a worker's store is partitioned for a while (most calls fail, many
// after the write); workers crash (stop, restart later with the same or a new worker id and a
// fresh coordinator), shut down gracefully (release their leases), pause for longer than
// failoverTime (a GC pause: no calls at all), or stall inside a store call while the others go
// on (a pause between the local expiry check and the write, or between the write and its
// reply). Shards go idle and busy (idle: no records, no checkpoints, only renewals move the
// counter).
//
// Invariants, checked after every step (and every step of a stall):
//  (a) at most one coordinator has held(key) returning the stored counter, and it is the stored
//      owner; every checkpoint that succeeds was written while its worker was the stored owner;
//  (b) a lease's stored checkpoint never goes backwards;
//  (d) the holder's local expiry comes first: when a worker whose view of a lease is current
//      (it saw the stored counter) considers it expired -- and may take it at once -- no one
//      believes they hold it (held() returns nothing everywhere); and a lease taken as expired
//      (not stolen) is not held by anyone else at that moment;
//  (e) an acquisition (token) that is replaced is reported by take_lost();
//  (c) liveness: once the faults stop, within a bounded simulated time every lease is held by
//      a live worker and every lease's checkpoint reaches its final value; then the workers are
//      balanced (within one lease of each other) and nothing moves any more.
//
// SHARDLINE_LEASE_SIM_SEEDS=N runs seeds 1..N instead of the default (8; 2 in debug builds).

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
using testing::FaultRates;
using testing::FaultyLeaseStore;
using testing::LeaseOp;
using testing::TempSqliteLeaseStore;

constexpr milliseconds kFailover{10000};
#ifdef NDEBUG
constexpr std::uint64_t kDefaultSeeds = 8;
#else
constexpr std::uint64_t kDefaultSeeds = 2;  // debug and sanitizer builds: about 10 times slower
#endif
constexpr milliseconds kStep{100};

struct SimConfig {
  int workers = 5;
  int leases = 32;
  milliseconds fault_phase{200000};
  milliseconds calm_bound{60000};   // liveness: everything held and processed within this
  milliseconds calm_stable{30000};  // then nothing may move for this long
  std::int64_t final_position = 2000;
  double act = 0.85;     // a worker's scheduler gets to run in a step
  double crash = 0.002;  // per worker and step
  double shutdown = 0.001;
  double pause = 0.002;
  double partition = 0.004;  // the worker's store calls mostly fail for 2..15 s
  double stall = 0.0003;     // per store call
  double process = 0.3;      // per consumer and step (1 once the faults stop)
  FaultRates faults{.unavailable_before = 0.03,
                    .throttled_before = 0.02,
                    .unavailable_after = 0.03,
                    .retried_success = 0.03};
  FaultRates partitioned{.unavailable_before = 0.4, .unavailable_after = 0.3};
};

struct SimStats {
  std::int64_t crashes = 0, shutdowns = 0, pauses = 0, partitions = 0, stalls = 0;
  std::int64_t taken = 0, stolen = 0, lost = 0, released = 0;
  std::int64_t checkpoints = 0, checkpoints_refused = 0, checkpoint_errors = 0;
  std::int64_t store_calls = 0, store_faults = 0;
  double calm_seconds = 0;      // from the end of the faults to everything held and processed
  double balanced_seconds = 0;  // from the end of the faults to an even spread
};

std::string shard(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shardId-%012d", i);
  return buf;
}

std::int64_t position_of(const std::string& checkpoint) {
  if (checkpoint == kCheckpointTrimHorizon) return 0;
  return std::stoll(checkpoint);
}

class Simulation {
 public:
  Simulation(std::uint64_t seed, SimConfig cfg) : seed_(seed), cfg_(cfg), rng_(seed) {
    for (int i = 0; i < cfg_.leases; ++i) {
      Lease l;
      l.lease_key = shard(i);
      l.checkpoint = std::string(kCheckpointTrimHorizon);
      auto r = db_.store()->create_lease_if_not_exists(l);
      EXPECT_TRUE(r.ok() && *r);
      max_checkpoint_[l.lease_key] = 0;
      traffic_[l.lease_key] =
          Traffic{bernoulli(0.5), clock_.now() + milliseconds(uniform(0, 40000))};
    }
    workers_.resize(static_cast<std::size_t>(cfg_.workers));
    for (int i = 0; i < cfg_.workers; ++i) {
      Worker& w = workers_[static_cast<std::size_t>(i)];
      w.index = i;
      w.id = "w" + std::to_string(i);
      start(w, false);
    }
  }

  void run() {
    const auto fault_end = clock_.now() + cfg_.fault_phase;
    while (clock_.now() < fault_end && !::testing::Test::HasFailure()) {
      clock_.advance(kStep);
      events();
      step(nullptr);
      check();
    }
    if (::testing::Test::HasFailure()) return;

    // The faults stop: every worker runs, every store call works.
    faults_on_ = false;
    const auto calm_start = clock_.now();
    for (Worker& w : workers_) {
      w.paused_until = calm_start;
      w.partitioned_until.reset();
      if (w.coord) {
        w.store->set_rates({});
      } else {
        start(w, bernoulli(0.5));
      }
    }
    while (!done() && clock_.now() - calm_start < cfg_.calm_bound &&
           !::testing::Test::HasFailure()) {
      clock_.advance(kStep);
      step(nullptr);
      check();
    }
    if (::testing::Test::HasFailure()) return;
    stats_.calm_seconds = std::chrono::duration<double>(clock_.now() - calm_start).count();
    ASSERT_TRUE(done()) << "seed " << seed_ << ": not every lease is held and processed "
                        << std::chrono::duration<double>(cfg_.calm_bound).count()
                        << " s after the faults stopped\n"
                        << table();

    // Balanced: every live worker within one lease of the others.
    const auto processed_at = clock_.now();
    while (!balanced() && clock_.now() - processed_at < cfg_.calm_bound &&
           !::testing::Test::HasFailure()) {
      clock_.advance(kStep);
      step(nullptr);
      check();
    }
    if (::testing::Test::HasFailure()) return;
    stats_.balanced_seconds = std::chrono::duration<double>(clock_.now() - calm_start).count();
    ASSERT_TRUE(balanced()) << "seed " << seed_ << "\n" << table();

    // Stable: nothing moves, nothing is lost.
    std::map<std::string, std::int64_t> taken_before;
    for (Worker& w : workers_) taken_before[w.id] = w.coord->counters().taken.load();
    const auto owners_before = owners();
    const auto stable_end = clock_.now() + cfg_.calm_stable;
    while (clock_.now() < stable_end && !::testing::Test::HasFailure()) {
      clock_.advance(kStep);
      step(nullptr);
      check();
    }
    EXPECT_TRUE(done()) << "seed " << seed_ << "\n" << table();
    EXPECT_EQ(owners(), owners_before) << "seed " << seed_ << ": leases moved after convergence";
    for (Worker& w : workers_) {
      EXPECT_EQ(w.coord->counters().taken.load(), taken_before[w.id]) << w.id;
      EXPECT_TRUE(w.coord->take_lost().empty()) << w.id;
    }
    EXPECT_TRUE(balanced()) << "seed " << seed_ << "\n" << table();
    finish_stats();
  }

  const SimStats& stats() const { return stats_; }

 private:
  struct Consumer {
    std::uint64_t token = 0;
    std::int64_t processed = 0;     // records processed (monotonic)
    std::int64_t checkpointed = 0;  // the last successful checkpoint
  };
  // What a coordinator has seen of a lease in its scans (its expiry clock), as the simulation
  // reconstructs it from TakeResult::leases: last_change is never earlier than the
  // coordinator's own.
  struct Observed {
    std::int64_t counter = 0;
    std::string owner;
    Clock::time_point last_change{};
  };
  struct Worker {
    int index = 0;
    int generation = 0;
    std::string id;
    std::shared_ptr<FaultyLeaseStore> store;
    std::unique_ptr<LeaseCoordinator> coord;  // null: crashed or shut down
    Clock::time_point next_renew{}, next_take{}, paused_until{}, restart_at{};
    std::optional<Clock::time_point> partitioned_until;
    std::map<std::string, Consumer> consumers;
    std::set<std::pair<std::string, std::uint64_t>> tokens;  // acquisitions seen, not yet lost
    std::map<std::string, Observed> observed;
    bool busy = false;                // stalled inside a store call
    std::optional<Lease> last_write;  // the stored lease right after its last checkpoint write
    std::int64_t stalls_seen = 0;
  };

  bool bernoulli(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
  }

  void start(Worker& w, bool new_id) {
    ++w.generation;
    if (new_id) w.id = "w" + std::to_string(w.index) + "." + std::to_string(w.generation);
    w.store = std::make_shared<FaultyLeaseStore>(db_.store());
    w.store->set_random(seed_ * 7919 + static_cast<std::uint64_t>(w.index) * 131 +
                            static_cast<std::uint64_t>(w.generation),
                        faults_on_ ? cfg_.faults : FaultRates{});
    const int index = w.index;
    w.store->set_hook([this, index](LeaseOp op, const std::string& key, bool after) {
      on_store_call(index, op, key, after);
    });
    LeaseCoordinatorOptions o;
    o.worker_id = w.id;
    o.failover_time = kFailover;
    o.clock = &clock_;
    o.random_seed = seed_ * 1000 + static_cast<std::uint64_t>(w.index) * 10 +
                    static_cast<std::uint64_t>(w.generation);
    w.coord = std::make_unique<LeaseCoordinator>(w.store, std::move(o));
    w.next_renew = clock_.now() + w.coord->renew_interval();
    w.next_take = clock_.now();
    w.consumers.clear();
    w.tokens.clear();
    w.observed.clear();
    w.partitioned_until.reset();
  }

  void stop(Worker& w) {
    stats_.taken += w.coord->counters().taken.load();
    stats_.stolen += w.coord->counters().stolen.load();
    stats_.lost += w.coord->counters().lost.load();
    stats_.released += w.coord->counters().released.load();
    for (int op = 0; op < static_cast<int>(testing::kLeaseOpCount); ++op) {
      stats_.store_calls += w.store->calls(static_cast<LeaseOp>(op));
    }
    stats_.store_faults +=
        w.store->faults(Fault::kUnavailableBefore) + w.store->faults(Fault::kThrottledBefore) +
        w.store->faults(Fault::kUnavailableAfter) + w.store->faults(Fault::kRetriedSuccess);
    w.coord.reset();
    w.store.reset();
    w.consumers.clear();
    w.tokens.clear();
  }

  void finish_stats() {
    for (Worker& w : workers_) {
      if (w.coord) stop(w);
    }
  }

  bool running(const Worker& w) const {
    return w.coord && !w.busy && clock_.now() >= w.paused_until;
  }

  // Crashes, graceful shutdowns, pauses, partitions, restarts, idle shards (fault phase only).
  void events() {
    const auto now = clock_.now();
    for (auto& [key, t] : traffic_) {
      if (now < t.until) continue;
      t.active = !t.active;
      t.until = now + milliseconds(uniform(5000, 40000));
    }
    for (Worker& w : workers_) {
      if (!w.coord) {
        if (now >= w.restart_at) start(w, bernoulli(0.5));
        continue;
      }
      if (w.partitioned_until && now >= *w.partitioned_until) {
        w.store->set_rates(cfg_.faults);
        w.partitioned_until.reset();
      }
      if (now < w.paused_until) continue;
      if (!w.partitioned_until && bernoulli(cfg_.partition)) {
        ++stats_.partitions;
        w.store->set_rates(cfg_.partitioned);
        w.partitioned_until = now + milliseconds(uniform(2000, 15000));
      }
      if (bernoulli(cfg_.crash)) {
        ++stats_.crashes;
        stop(w);
        w.restart_at = now + milliseconds(uniform(1000, 30000));
      } else if (bernoulli(cfg_.shutdown)) {
        ++stats_.shutdowns;
        w.coord->stop_taking();
        for (const auto& h : w.coord->held_leases())
          (void)w.coord->release(h.lease.lease_key, h.token);
        stop(w);
        w.restart_at = now + milliseconds(uniform(1000, 30000));
      } else if (bernoulli(cfg_.pause)) {
        ++stats_.pauses;
        w.paused_until = now + milliseconds(uniform(kFailover.count(), 5 * kFailover.count() / 2));
      }
    }
  }

  // One step: the running workers (but `except`) that the scheduler gets to, in random order.
  void step(const Worker* except) {
    std::vector<std::size_t> order(workers_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    for (std::size_t i : order) {
      Worker& w = workers_[i];
      if (&w == except || !running(w)) continue;
      if (faults_on_ && !bernoulli(cfg_.act)) continue;
      act(w);
      if (::testing::Test::HasFailure()) return;
    }
  }

  void act(Worker& w) {
    std::array<int, 3> what{0, 1, 2};
    std::shuffle(what.begin(), what.end(), rng_);
    for (int a : what) {
      if (!running(w)) return;  // (a stall of another worker cannot stop this one)
      const auto now = clock_.now();
      if (a == 0 && now >= w.next_renew) {
        w.coord->renew_all();
        w.next_renew = now + w.coord->renew_interval();
      } else if (a == 1 && now >= w.next_take) {
        take(w);
        w.next_take = now + kFailover + milliseconds(uniform(0, kFailover.count() / 10));
      } else if (a == 2) {
        dispatch(w);
      }
      if (::testing::Test::HasFailure()) return;
    }
  }

  void take(Worker& w) {
    const auto stolen_before = w.coord->counters().stolen.load();
    const auto stalls_before = w.stalls_seen;
    TakeResult r = w.coord->take_leases();
    if (r.status.ok()) {
      const auto now = clock_.now();
      std::map<std::string, Observed> next;
      for (const Lease& l : r.leases) {
        auto it = w.observed.find(l.lease_key);
        Observed o{l.lease_counter, l.lease_owner, now};
        if (it != w.observed.end() && it->second.counter == l.lease_counter &&
            it->second.owner == l.lease_owner) {
          o.last_change = it->second.last_change;
        }
        next.emplace(l.lease_key, std::move(o));
      }
      w.observed = std::move(next);
    }
    // (d): leases taken as available (no steal in this run) that another worker owned were
    // expired: no one may still believe they hold them. (Skipped when this worker stalled in
    // the run: others may have moved on meanwhile.)
    if (w.coord->counters().stolen.load() != stolen_before || w.stalls_seen != stalls_before)
      return;
    for (const std::string& key : r.taken) {
      auto it = std::find_if(r.leases.begin(), r.leases.end(),
                             [&](const Lease& l) { return l.lease_key == key; });
      ASSERT_NE(it, r.leases.end());
      if (it->lease_owner.empty() || it->lease_owner == w.id) continue;
      for (Worker& other : workers_) {
        if (&other == &w || !other.coord) continue;
        auto h = other.coord->held(key);
        EXPECT_FALSE(h) << "seed " << seed_ << ": " << w.id << " took " << key << " (owner "
                        << it->lease_owner << ") as expired while " << other.id
                        << " still believes it holds it (counter " << h->lease.lease_counter << ")";
      }
    }
  }

  // As worker.cc: consumers stop on a lost token, start for new acquisitions, and process.
  void dispatch(Worker& w) {
    for (const auto& [key, token] : w.coord->take_lost()) {
      w.tokens.erase({key, token});
      auto it = w.consumers.find(key);
      if (it != w.consumers.end() && it->second.token == token) w.consumers.erase(it);
    }
    for (const HeldLease& h : w.coord->held_leases()) {
      const std::string& key = h.lease.lease_key;
      w.tokens.insert({key, h.token});
      // (e) every earlier acquisition of this lease must have been reported lost.
      for (const auto& [k, t] : w.tokens) {
        EXPECT_FALSE(k == key && t != h.token)
            << "seed " << seed_ << ": " << w.id << " acquired " << key << " again (token "
            << h.token << ") without reporting token " << t << " lost";
      }
      auto it = w.consumers.find(key);
      if (it != w.consumers.end()) {
        if (it->second.token != h.token)
          w.consumers.erase(it);  // (reported above)
        else
          continue;
      }
      const std::int64_t from = position_of(h.lease.checkpoint);
      w.consumers[key] = Consumer{h.token, from, from};
    }
    const double p = faults_on_ ? cfg_.process : 1.0;
    for (auto it = w.consumers.begin(); it != w.consumers.end();) {
      const std::string key = it->first;
      Consumer& c = it->second;
      const bool idle = faults_on_ && !traffic_[key].active;  // no records: no checkpoints
      if (idle || c.checkpointed >= cfg_.final_position || !bernoulli(p)) {
        ++it;
        continue;
      }
      // Process more records (if any are left), then checkpoint all processed so far (again
      // after a failure).
      c.processed = std::min(cfg_.final_position,
                             c.processed + (faults_on_ ? uniform(1, 5) : uniform(10, 30)));
      const bool prepare = bernoulli(0.05);
      const std::string seq = std::to_string(c.processed);
      w.last_write.reset();
      Status s = prepare ? w.coord->prepare_checkpoint(key, c.token, seq, 0, std::nullopt)
                         : w.coord->checkpoint(key, c.token, seq, 0);
      if (s.ok()) {
        ++stats_.checkpoints;
        if (!prepare) c.checkpointed = c.processed;
        // (a) the write that made it succeed was made while this worker owned the lease.
        ASSERT_TRUE(w.last_write) << "seed " << seed_;
        EXPECT_EQ(w.last_write->lease_owner, w.id) << "seed " << seed_ << ": " << key;
        if (prepare) {
          EXPECT_EQ(w.last_write->pending_checkpoint, seq) << "seed " << seed_ << ": " << key;
        } else {
          EXPECT_EQ(w.last_write->checkpoint, seq) << "seed " << seed_ << ": " << key;
        }
        ++it;
      } else if (s.code() == StatusCode::kFailedPrecondition) {
        ++stats_.checkpoints_refused;  // lease lost: the consumer stops
        it = w.consumers.erase(it);
      } else {
        ++stats_.checkpoint_errors;  // retried later
        EXPECT_TRUE(s.code() == StatusCode::kUnavailable ||
                    s.code() == StatusCode::kResourceExhausted)
            << s.to_string();
        ++it;
      }
      if (::testing::Test::HasFailure()) return;
    }
  }

  // The store hook of worker `index`: records checkpoint writes, and sometimes stalls the call
  // while the other workers go on.
  void on_store_call(int index, LeaseOp op, const std::string& key, bool after) {
    Worker& w = workers_[static_cast<std::size_t>(index)];
    if (after && (op == LeaseOp::kCheckpoint || op == LeaseOp::kPrepare)) {
      auto stored = db_.store()->get_lease(key);
      ASSERT_TRUE(stored.ok() && stored->has_value());
      w.last_write = **stored;
    }
    if (nested_ || !faults_on_ || !bernoulli(cfg_.stall)) return;
    ++stats_.stalls;
    ++w.stalls_seen;
    nested_ = true;
    w.busy = true;
    const auto until =
        clock_.now() + milliseconds(uniform(kFailover.count() / 2, 2 * kFailover.count()));
    while (clock_.now() < until && !::testing::Test::HasFailure()) {
      clock_.advance(kStep);
      step(&w);
      check();
    }
    w.busy = false;
    nested_ = false;
  }

  // (a), (b) and (d), from the table as stored.
  void check() {
    auto all = db_.store()->list_leases();
    ASSERT_TRUE(all.ok()) << all.status().to_string();
    const auto now = clock_.now();
    for (const Lease& l : *all) {
      // (d) a worker whose view of the lease is current and says it expired may take it at
      // once: no one may believe they hold it (not even with an older counter).
      for (Worker& x : workers_) {
        if (!x.coord) continue;
        auto seen = x.observed.find(l.lease_key);
        if (seen == x.observed.end() || seen->second.counter != l.lease_counter ||
            seen->second.owner != l.lease_owner || l.lease_owner.empty() ||
            now - seen->second.last_change <= kFailover) {
          continue;
        }
        for (Worker& y : workers_) {
          if (!y.coord) continue;
          auto h = y.coord->held(l.lease_key);
          EXPECT_FALSE(h) << "seed " << seed_ << ": " << x.id << " sees " << l.lease_key
                          << " (owner " << l.lease_owner << ", counter " << l.lease_counter
                          << ") expired while " << y.id << " believes it holds it (counter "
                          << h->lease.lease_counter << ")";
        }
      }
      int believers = 0;
      for (Worker& w : workers_) {
        if (!w.coord) continue;
        auto h = w.coord->held(l.lease_key);
        if (h && h->lease.lease_counter == l.lease_counter) {
          ++believers;
          EXPECT_EQ(w.id, l.lease_owner) << "seed " << seed_ << ": " << l.lease_key;
        }
      }
      EXPECT_LE(believers, 1) << "seed " << seed_ << ": " << l.lease_key;
      const std::int64_t pos = position_of(l.checkpoint);
      std::int64_t& max = max_checkpoint_[l.lease_key];
      EXPECT_GE(pos, max) << "seed " << seed_ << ": the checkpoint of " << l.lease_key
                          << " went backwards";
      max = std::max(max, pos);
    }
  }

  // (c): every lease held (current counter) by a running worker that owns it, and processed.
  bool done() {
    auto all = db_.store()->list_leases();
    if (!all.ok()) return false;
    for (const Lease& l : *all) {
      if (position_of(l.checkpoint) != cfg_.final_position) return false;
      bool held = false;
      for (Worker& w : workers_) {
        if (!running(w) || w.id != l.lease_owner) continue;
        auto h = w.coord->held(l.lease_key);
        held = h && h->lease.lease_counter == l.lease_counter;
      }
      if (!held) return false;
    }
    return true;
  }

  bool balanced() {
    std::int64_t lo = cfg_.leases, hi = 0;
    for (Worker& w : workers_) {
      const auto n = static_cast<std::int64_t>(w.coord->held_count());
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    return hi - lo <= 1;
  }

  std::map<std::string, std::string> owners() {
    std::map<std::string, std::string> out;
    auto all = db_.store()->list_leases();
    if (all.ok()) {
      for (const Lease& l : *all) out[l.lease_key] = l.lease_owner;
    }
    return out;
  }

  std::string table() {
    std::string out;
    auto all = db_.store()->list_leases();
    if (!all.ok()) return all.status().to_string();
    for (const Lease& l : *all) {
      out += l.lease_key + " owner=" + l.lease_owner +
             " counter=" + std::to_string(l.lease_counter) + " checkpoint=" + l.checkpoint + "\n";
    }
    for (Worker& w : workers_) {
      out += w.id + (w.coord ? " holds " + std::to_string(w.coord->held_count()) : " down") + "\n";
    }
    return out;
  }

  const std::uint64_t seed_;
  const SimConfig cfg_;
  std::mt19937_64 rng_;
  FakeClock clock_;
  TempSqliteLeaseStore db_;
  std::vector<Worker> workers_;
  std::map<std::string, std::int64_t> max_checkpoint_;
  struct Traffic {
    bool active = true;  // records are arriving on the shard
    Clock::time_point until{};
  };
  std::map<std::string, Traffic> traffic_;
  bool faults_on_ = true;
  bool nested_ = false;
  SimStats stats_;
};

TEST(LeaseSimulation, SafeUnderFaultsAndLiveOnceTheyStop) {
  std::uint64_t seeds = kDefaultSeeds;
  if (const char* env = std::getenv("SHARDLINE_LEASE_SIM_SEEDS")) seeds = std::stoull(env);
  SimStats total;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation sim(seed, SimConfig{});
    sim.run();
    const SimStats& s = sim.stats();
    std::printf(
        "[ sim      ] seed %llu: %lld crashes, %lld shutdowns, %lld pauses, %lld partitions, "
        "%lld stalls; "
        "%lld store calls, %lld faults; %lld taken (%lld stolen), %lld lost, %lld released; "
        "%lld checkpoints, %lld refused, %lld errors; after the faults: all held and processed "
        "in %.1f s, balanced in %.1f s\n",
        static_cast<unsigned long long>(seed), static_cast<long long>(s.crashes),
        static_cast<long long>(s.shutdowns), static_cast<long long>(s.pauses),
        static_cast<long long>(s.partitions), static_cast<long long>(s.stalls),
        static_cast<long long>(s.store_calls), static_cast<long long>(s.store_faults),
        static_cast<long long>(s.taken), static_cast<long long>(s.stolen),
        static_cast<long long>(s.lost), static_cast<long long>(s.released),
        static_cast<long long>(s.checkpoints), static_cast<long long>(s.checkpoints_refused),
        static_cast<long long>(s.checkpoint_errors), s.calm_seconds, s.balanced_seconds);
    if (::testing::Test::HasFailure()) break;
    total.crashes += s.crashes;
    total.shutdowns += s.shutdowns;
    total.pauses += s.pauses;
    total.partitions += s.partitions;
    total.stalls += s.stalls;
    total.store_faults += s.store_faults;
    total.stolen += s.stolen;
    total.lost += s.lost;
    total.checkpoints_refused += s.checkpoints_refused;
  }
  if (::testing::Test::HasFailure()) return;
  // The faults happened (the simulation is not vacuous).
  EXPECT_GT(total.crashes, 0);
  EXPECT_GT(total.shutdowns, 0);
  EXPECT_GT(total.pauses, 0);
  EXPECT_GT(total.partitions, 0);
  EXPECT_GT(total.stalls, 0);
  EXPECT_GT(total.store_faults, 0);
  EXPECT_GT(total.stolen, 0);
  EXPECT_GT(total.lost, 0);
  EXPECT_GT(total.checkpoints_refused, 0);
}

}  // namespace
}  // namespace shardline::detail
