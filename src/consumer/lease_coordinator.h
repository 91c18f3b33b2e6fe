// The lease coordinator of one worker: which leases it holds, renewing them, taking expired and
// unowned leases, stealing toward an even share, and the fenced checkpoint writes.
//
// Expiry is judged on the local monotonic clock from observed counter changes (the KCL's
// model): a lease whose counter has not moved for failoverTime since this worker first saw its
// current value is expired. No clocks are compared across hosts.
//
// Balancing (take_leases, one table scan):
//   workers  = owners of unexpired, unfinished leases, plus this worker;
//   target   = ceil(unfinished leases / workers), capped by maxLeasesForWorker;
//   this worker takes available leases (unowned, expired, or owned under its own id by an
//   earlier life of this worker) up to target -- and beyond it, up to maxLeasesForWorker, those
//   it has seen left available for two failover periods (the other workers are at their share
//   or at their maxLeasesForWorker: no one else will take them). If none are available it
//   steals from every worker above target, at most (its count - target) from each, so no worker
//   is pushed below target. As the target is a ceiling (32 leases on 5 workers could stay at
//   7, 7, 7, 7, 4) and workers without leases are invisible to the others (the target is then
//   too high), a worker at or below target also gives leases to one that holds at least two
//   fewer, until the two are within one. Every steal moves a lease from a worker with d leases
//   to one with at most d - 2, so the sum of the squared counts falls with each: leases never
//   move back and forth. Finished (SHARD_END) leases are never taken; any worker cleans them up.
//
// Threads: renew_all() and take_leases() are called by one thread (the scheduler). held(),
// checkpoint(), prepare_checkpoint(), release() and drop() may be called from any thread.
// Writes to one lease are serialized (a renewal never races its own checkpoint).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shardline/aws_client.h"
#include "shardline/clock.h"
#include "shardline/lease_store.h"

namespace shardline::detail {

struct LeaseCoordinatorOptions {
  std::string worker_id;
  std::chrono::milliseconds failover_time{10000};
  std::chrono::milliseconds epsilon{25};
  std::int64_t max_leases_for_worker = 2147483647;
  std::int64_t max_leases_to_steal = 0;  // 0: as many as needed
  Clock* clock = nullptr;
  LogSink log;
  std::uint64_t random_seed = 0;  // 0: random
  /// Runs `n` jobs (possibly in parallel) and returns when all are done; null: one by one.
  std::function<void(std::size_t n, const std::function<void(std::size_t)>& job)> parallel_for;
};

/// A held lease as the rest of the worker sees it.
struct HeldLease {
  Lease lease;
  std::uint64_t token = 0;  // changes with every acquisition (the KCL's concurrency token)
};

struct TakeResult {
  Status status;                   // the scan's error, if any
  std::vector<Lease> leases;       // the table as scanned (before taking)
  std::vector<std::string> taken;  // acquired in this run
  std::int64_t workers = 0;        // workers seen (incl. this one)
  std::int64_t target = 0;         // this worker's share
};

struct CoordinatorCounters {
  std::atomic<std::int64_t> store_calls{0};
  std::atomic<std::int64_t> renewals{0};
  std::atomic<std::int64_t> taken{0};
  std::atomic<std::int64_t> stolen{0};
  std::atomic<std::int64_t> lost{0};
  std::atomic<std::int64_t> released{0};
};

class LeaseCoordinator {
 public:
  LeaseCoordinator(std::shared_ptr<LeaseStore> store, LeaseCoordinatorOptions options);

  const std::string& worker_id() const noexcept { return options_.worker_id; }
  std::chrono::milliseconds renew_interval() const noexcept;

  /// Renew every held lease once. Leases whose renewal was refused (someone else moved the
  /// counter) or that expired locally are dropped and reported by take_lost().
  void renew_all();
  /// Scan the table, take and steal toward this worker's share.
  TakeResult take_leases();
  /// Never take this lease again (a shard stopped by processRecordsErrorPolicy=STOP).
  void exclude(const std::string& key) {
    std::lock_guard lk(mu_);
    excluded_.push_back(key);
  }
  /// Stop taking new leases (graceful shutdown).
  void stop_taking() { taking_.store(false); }

  /// The lease if held and not locally expired.
  std::optional<HeldLease> held(const std::string& key) const;
  std::vector<HeldLease> held_leases() const;
  std::size_t held_count() const;
  /// Keys dropped since the last call (lost, expired, refused checkpoint), with their tokens.
  std::vector<std::pair<std::string, std::uint64_t>> take_lost();

  /// Fenced checkpoint: the lease must be held under `token` and not locally expired, and the
  /// conditional write must succeed. kFailedPrecondition when the lease is not held (it is
  /// dropped); store errors as the store reports them (kResourceExhausted, kNotFound, ...).
  Status checkpoint(const std::string& key, std::uint64_t token, const std::string& sequence,
                    std::int64_t sub_sequence);
  Status prepare_checkpoint(const std::string& key, std::uint64_t token,
                            const std::string& sequence, std::int64_t sub_sequence,
                            std::optional<std::string> state);
  /// Give the lease up in the store (owner removed) and drop it. Idempotent.
  Status release(const std::string& key, std::uint64_t token);
  /// Forget a lease locally (no store write).
  void drop(const std::string& key, std::uint64_t token);

  /// Any thread: the latest scan, with local observations (for shard sync and cleanup).
  const CoordinatorCounters& counters() const noexcept { return counters_; }
  LeaseStore& store() noexcept { return *store_; }

 private:
  struct Slot {
    std::mutex io;  // serializes store writes for this lease
    Lease lease;    // guarded by mu_
    std::uint64_t token = 0;
    Clock::time_point last_renewed;  // guarded by mu_: start of the last proven write
    // Guarded by mu_: start of the first write since then whose outcome is unknown (it failed
    // with an error, but may have been applied). A write confirmed later by reading the lease
    // back may be that one, so it proves the lease only from this time.
    std::optional<Clock::time_point> unconfirmed;
  };
  struct Observation {
    std::int64_t counter = 0;
    std::string owner;
    Clock::time_point last_change;
    Clock::time_point seen;  // when this worker first saw this counter and owner
  };

  bool expired_locked(const Slot& s, Clock::time_point now) const;
  void drop_locked(const std::string& key, const char* why);
  std::shared_ptr<Slot> slot_for(const std::string& key, std::uint64_t token) const;
  bool try_take(Lease lease, bool steal, Clock::time_point now);
  // A write returned false: was it ours after all (a retried request that had succeeded)?
  std::optional<Lease> confirm_write(const Lease& before,
                                     const std::function<bool(const Lease&)>& matches);
  void log(LogLevel level, const std::string& message) const;
  template <class F>
  Status fenced_write(const std::string& key, std::uint64_t token, const char* what, F&& write,
                      const std::function<bool(const Lease&)>& matches);

  std::shared_ptr<LeaseStore> store_;
  LeaseCoordinatorOptions options_;
  Clock* clock_;
  std::atomic<bool> taking_{true};

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>> held_;
  std::vector<std::pair<std::string, std::uint64_t>> lost_;
  std::uint64_t next_token_ = 1;
  std::vector<std::string> excluded_;

  // Scheduler thread only.
  std::map<std::string, Observation> observed_;
  std::int64_t scans_ = 0;  // successful table scans
  std::mt19937_64 rng_;
  CoordinatorCounters counters_;
};

}  // namespace shardline::detail
