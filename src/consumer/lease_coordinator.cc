#include "consumer/lease_coordinator.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>

namespace shardline::detail {
namespace {

bool finished(const Lease& l) { return l.checkpoint == kCheckpointShardEnd; }

}  // namespace

LeaseCoordinator::LeaseCoordinator(std::shared_ptr<LeaseStore> store,
                                   LeaseCoordinatorOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SteadyClock::instance()),
      rng_(options_.random_seed != 0 ? options_.random_seed : std::random_device{}()) {}

std::chrono::milliseconds LeaseCoordinator::renew_interval() const noexcept {
  auto d = options_.failover_time / 3 - options_.epsilon;
  return std::max(d, std::chrono::milliseconds(1));
}

void LeaseCoordinator::log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, "worker " + options_.worker_id + ": " + message);
}

bool LeaseCoordinator::expired_locked(const Slot& s, Clock::time_point now) const {
  return now - s.last_renewed > options_.failover_time;
}

void LeaseCoordinator::drop_locked(const std::string& key, const char* why) {
  auto it = held_.find(key);
  if (it == held_.end()) return;
  lost_.emplace_back(key, it->second->token);
  held_.erase(it);
  counters_.lost.fetch_add(1, std::memory_order_relaxed);
  log(LogLevel::kWarning, "lost lease " + key + " (" + why + ")");
}

std::optional<HeldLease> LeaseCoordinator::held(const std::string& key) const {
  std::lock_guard lk(mu_);
  auto it = held_.find(key);
  if (it == held_.end() || expired_locked(*it->second, clock_->now())) return std::nullopt;
  return HeldLease{it->second->lease, it->second->token};
}

std::vector<HeldLease> LeaseCoordinator::held_leases() const {
  std::lock_guard lk(mu_);
  std::vector<HeldLease> out;
  out.reserve(held_.size());
  auto now = clock_->now();
  for (const auto& [k, s] : held_) {
    if (!expired_locked(*s, now)) out.push_back({s->lease, s->token});
  }
  return out;
}

std::size_t LeaseCoordinator::held_count() const {
  std::lock_guard lk(mu_);
  return held_.size();
}

std::vector<std::pair<std::string, std::uint64_t>> LeaseCoordinator::take_lost() {
  std::lock_guard lk(mu_);
  return std::exchange(lost_, {});
}

std::shared_ptr<LeaseCoordinator::Slot> LeaseCoordinator::slot_for(const std::string& key,
                                                                   std::uint64_t token) const {
  std::lock_guard lk(mu_);
  auto it = held_.find(key);
  if (it == held_.end() || it->second->token != token) return nullptr;
  return it->second;
}

std::optional<Lease> LeaseCoordinator::confirm_write(
    const Lease& before, const std::function<bool(const Lease&)>& matches) {
  counters_.store_calls.fetch_add(1, std::memory_order_relaxed);
  auto fresh = store_->get_lease(before.lease_key);
  if (!fresh.ok() || !fresh->has_value()) return std::nullopt;
  const Lease& l = **fresh;
  if (l.lease_owner != options_.worker_id || l.lease_counter != before.lease_counter + 1 ||
      !matches(l)) {
    return std::nullopt;
  }
  return l;
}

void LeaseCoordinator::renew_all() {
  std::vector<std::shared_ptr<Slot>> slots;
  {
    std::lock_guard lk(mu_);
    auto now = clock_->now();
    std::vector<std::string> expired;
    for (const auto& [k, s] : held_) {
      if (expired_locked(*s, now)) {
        expired.push_back(k);
      } else {
        slots.push_back(s);
      }
    }
    for (const auto& k : expired) drop_locked(k, "not renewed within failoverTimeMillis");
  }
  auto renew_one = [&](std::size_t i) {
    Slot& s = *slots[i];
    std::lock_guard io(s.io);
    Lease copy;
    std::string key;
    {
      std::lock_guard lk(mu_);
      auto it = held_.find(s.lease.lease_key);
      if (it == held_.end() || it->second.get() != &s) return;  // dropped meanwhile
      copy = s.lease;
      key = copy.lease_key;
    }
    const Lease before = copy;
    auto started = clock_->now();
    counters_.store_calls.fetch_add(1, std::memory_order_relaxed);
    auto r = store_->renew_lease(copy);
    bool ok = r.ok() && *r;
    bool confirmed = false;
    if (r.ok() && !*r) {
      if (auto mine = confirm_write(before, [](const Lease&) { return true; })) {
        copy = std::move(*mine);
        ok = confirmed = true;
      }
    }
    std::lock_guard lk(mu_);
    auto it = held_.find(key);
    if (it == held_.end() || it->second.get() != &s) return;
    if (ok) {
      s.lease = copy;
      // A confirmed write may be an earlier one whose reply was lost.
      s.last_renewed = confirmed ? s.unconfirmed.value_or(started) : started;
      s.unconfirmed.reset();
      counters_.renewals.fetch_add(1, std::memory_order_relaxed);
    } else if (r.ok()) {
      drop_locked(key, "another worker changed it");
    } else {
      if (!s.unconfirmed) s.unconfirmed = started;  // it may have been written
      log(LogLevel::kWarning, "renewing " + key + " failed: " + r.status().to_string());
    }
  };
  if (options_.parallel_for && slots.size() > 1) {
    options_.parallel_for(slots.size(), renew_one);
  } else {
    for (std::size_t i = 0; i < slots.size(); ++i) renew_one(i);
  }
}

bool LeaseCoordinator::try_take(Lease lease, bool steal, Clock::time_point now) {
  const std::string key = lease.lease_key;
  if (steal) {
    // The scan's counter is likely stale for a lease its owner renews: read it again.
    counters_.store_calls.fetch_add(1, std::memory_order_relaxed);
    auto fresh = store_->get_lease(key);
    if (!fresh.ok() || !fresh->has_value()) return false;
    if ((*fresh)->lease_owner != lease.lease_owner || finished(**fresh)) return false;
    lease = **fresh;
  }
  const Lease before = lease;
  counters_.store_calls.fetch_add(1, std::memory_order_relaxed);
  auto r = store_->take_lease(lease, options_.worker_id);
  if (!r.ok()) {
    log(LogLevel::kWarning, "taking " + key + " failed: " + r.status().to_string());
    return false;
  }
  if (!*r) {
    // A retried request whose first attempt succeeded looks like a lost race: check.
    auto confirmed = confirm_write(before, [](const Lease&) { return true; });
    if (!confirmed) return false;
    lease = std::move(*confirmed);
  }
  auto slot = std::make_shared<Slot>();
  slot->lease = std::move(lease);
  slot->last_renewed = now;
  {
    std::lock_guard lk(mu_);
    slot->token = next_token_++;
    // An earlier acquisition that expired locally and that renew_all() has not dropped yet:
    // report it lost before the new one replaces it, so its consumer is told.
    drop_locked(key, "not renewed within failoverTimeMillis");
    held_[key] = std::move(slot);
  }
  counters_.taken.fetch_add(1, std::memory_order_relaxed);
  if (steal) counters_.stolen.fetch_add(1, std::memory_order_relaxed);
  return true;
}

TakeResult LeaseCoordinator::take_leases() {
  TakeResult out;
  counters_.store_calls.fetch_add(1, std::memory_order_relaxed);
  auto scanned = store_->list_leases();
  if (!scanned.ok()) {
    out.status = scanned.status();
    log(LogLevel::kWarning, "listing leases failed: " + out.status.to_string());
    return out;
  }
  out.leases = std::move(*scanned);
  ++scans_;
  const auto now = clock_->now();

  // Observe counter changes (local monotonic time; never compare clocks across hosts).
  std::map<std::string, Observation> next;
  for (const Lease& l : out.leases) {
    auto it = observed_.find(l.lease_key);
    Observation o;
    o.counter = l.lease_counter;
    o.owner = l.lease_owner;
    if (it == observed_.end()) {
      // Never seen: an unowned lease is available at once, an owned one gets a full period.
      o.last_change = l.lease_owner.empty() ? Clock::time_point{} : now;
      o.seen = now;
    } else if (it->second.counter != l.lease_counter || it->second.owner != l.lease_owner) {
      o.last_change = now;
      o.seen = now;
    } else {
      o.last_change = it->second.last_change;
      o.seen = it->second.seen;
    }
    next.emplace(l.lease_key, std::move(o));
  }
  observed_ = std::move(next);

  std::vector<std::string> mine;
  std::vector<std::string> excluded;
  {
    std::lock_guard lk(mu_);
    for (const auto& [k, s] : held_) {
      if (!expired_locked(*s, now)) mine.push_back(k);
    }
    excluded = excluded_;
  }
  auto is_mine = [&](const std::string& k) {
    return std::find(mine.begin(), mine.end(), k) != mine.end();
  };

  std::vector<const Lease*> available;
  std::unordered_map<std::string, std::vector<const Lease*>> by_owner;
  std::int64_t active = 0;
  for (const Lease& l : out.leases) {
    if (finished(l)) continue;
    ++active;
    if (is_mine(l.lease_key)) continue;
    const Observation& o = observed_.at(l.lease_key);
    bool expired = now - o.last_change > options_.failover_time;
    bool skip = std::find(excluded.begin(), excluded.end(), l.lease_key) != excluded.end();
    if (skip) continue;
    if (l.lease_owner.empty() || expired || l.lease_owner == options_.worker_id) {
      available.push_back(&l);
    } else {
      by_owner[l.lease_owner].push_back(&l);
    }
  }
  const auto my_count = static_cast<std::int64_t>(mine.size());
  out.workers = static_cast<std::int64_t>(by_owner.size()) + 1;
  std::int64_t target = active == 0 ? 0 : (active + out.workers - 1) / out.workers;
  if (target > options_.max_leases_for_worker) {
    log(LogLevel::kWarning, "lease spillover: fair share " + std::to_string(target) +
                                " is above maxLeasesForWorker " +
                                std::to_string(options_.max_leases_for_worker));
    target = options_.max_leases_for_worker;
  }
  out.target = target;
  if (!taking_.load()) return out;
  std::int64_t needed = target - my_count;
  if (needed <= 0 && available.empty()) return out;

  std::shuffle(available.begin(), available.end(), rng_);
  std::int64_t took = 0;
  // Beyond target (up to maxLeasesForWorker), a lease this worker has seen left available and
  // unchanged for two failover periods: the workers below target had their turn, so the others
  // are at their share or at their maxLeasesForWorker, and no one else will take it.
  const std::int64_t room = options_.max_leases_for_worker - my_count;
  for (const Lease* l : available) {
    if (took >= room) break;
    if (took >= needed && now - observed_.at(l->lease_key).seen <= 2 * options_.failover_time) {
      continue;
    }
    if (try_take(*l, false, now)) {
      out.taken.push_back(l->lease_key);
      ++took;
    }
  }
  needed -= took;
  // Steal only from the second scan on: by then this worker has watched the table for one
  // taker interval. Workers started together settle on the available leases first, and a
  // lease is not stolen from an owner that took it an instant ago and has checkpointed
  // nothing yet (everything it processed would be read twice).
  if (needed > 0 && available.empty() && scans_ > 1) {
    // Steal from every worker above target, the busiest first.
    std::vector<std::pair<std::string, std::vector<const Lease*>>> donors(by_owner.begin(),
                                                                          by_owner.end());
    std::sort(donors.begin(), donors.end(), [](const auto& a, const auto& b) {
      return a.second.size() != b.second.size() ? a.second.size() > b.second.size()
                                                : a.first < b.first;
    });
    std::int64_t steal_cap =
        options_.max_leases_to_steal > 0 ? options_.max_leases_to_steal : needed;
    std::int64_t count = my_count;
    for (auto& [owner, leases] : donors) {
      if (needed <= 0 || steal_cap <= 0) break;
      // Down to target from a worker above it. The target is a ceiling (32 leases on 5 workers:
      // 7, 7, 7, 7, 4), and too high when workers without leases are not seen, so from a worker
      // at or below target too while it keeps at least as many as this worker: each move is
      // from d leases to at most d - 2.
      const auto d = static_cast<std::int64_t>(leases.size());
      std::int64_t n = std::min({d > target ? d - target : (d - count) / 2, needed, steal_cap});
      if (n <= 0) continue;
      std::shuffle(leases.begin(), leases.end(), rng_);
      for (std::int64_t i = 0; i < n; ++i) {
        if (try_take(*leases[static_cast<std::size_t>(i)], true, now)) {
          out.taken.push_back(leases[static_cast<std::size_t>(i)]->lease_key);
          --needed;
          --steal_cap;
          ++count;
        }
      }
    }
  }
  if (!out.taken.empty()) {
    log(LogLevel::kInfo, "saw " + std::to_string(out.leases.size()) + " leases (" +
                             std::to_string(active) + " unfinished), " +
                             std::to_string(out.workers) + " workers; target " +
                             std::to_string(target) + ", held " + std::to_string(my_count) +
                             ", took " + std::to_string(out.taken.size()));
  }
  return out;
}

template <class F>
Status LeaseCoordinator::fenced_write(const std::string& key, std::uint64_t token, const char* what,
                                      F&& write, const std::function<bool(const Lease&)>& matches) {
  auto slot = slot_for(key, token);
  auto not_held = [&] {
    return Status(StatusCode::kFailedPrecondition, std::string("cannot ") + what + " " + key +
                                                       ": worker " + options_.worker_id +
                                                       " does not hold the lease");
  };
  if (!slot) return not_held();
  std::lock_guard io(slot->io);
  for (int attempt = 0;; ++attempt) {
    Lease copy;
    bool unknown = false;  // an earlier write of this lease may have been applied
    {
      std::lock_guard lk(mu_);
      auto it = held_.find(key);
      if (it == held_.end() || it->second != slot) return not_held();
      if (expired_locked(*slot, clock_->now())) {
        drop_locked(key, "not renewed within failoverTimeMillis");
        return not_held();
      }
      copy = slot->lease;
      unknown = slot->unconfirmed.has_value();
    }
    const Lease before = copy;
    auto started = clock_->now();
    counters_.store_calls.fetch_add(1, std::memory_order_relaxed);
    Result<bool> r = write(copy);
    if (!r.ok()) {
      std::lock_guard lk(mu_);
      if (!slot->unconfirmed) slot->unconfirmed = started;  // it may have been written
      return r.status();
    }
    std::optional<Lease> ours;  // refused, but the next counter is this worker's
    if (!*r) ours = confirm_write(before, [](const Lease&) { return true; });
    // Done: written, or the stored lease is this write (a retried request whose first attempt
    // succeeded, or a repeat of a call whose reply was lost).
    const bool done = *r || (ours && matches(*ours));
    // Another write of this worker whose reply was lost moved the counter: adopt it, write again.
    const bool again = !done && ours && unknown && attempt == 0;
    std::lock_guard lk(mu_);
    auto it = held_.find(key);
    const bool current = it != held_.end() && it->second == slot;
    if (!done && !again) {
      if (current) drop_locked(key, "conditional write refused");
      return not_held();
    }
    if (!current) return done ? Status() : not_held();
    slot->lease = *r ? std::move(copy) : std::move(*ours);
    slot->last_renewed = *r ? started : slot->unconfirmed.value_or(started);
    slot->unconfirmed.reset();
    if (done) return {};
  }
}

Status LeaseCoordinator::checkpoint(const std::string& key, std::uint64_t token,
                                    const std::string& sequence, std::int64_t sub_sequence) {
  return fenced_write(
      key, token, "checkpoint",
      [&](Lease& l) { return store_->update_checkpoint(l, sequence, sub_sequence); },
      [&](const Lease& l) {
        return l.checkpoint == sequence && l.checkpoint_sub_sequence_number == sub_sequence;
      });
}

Status LeaseCoordinator::prepare_checkpoint(const std::string& key, std::uint64_t token,
                                            const std::string& sequence, std::int64_t sub_sequence,
                                            std::optional<std::string> state) {
  return fenced_write(
      key, token, "prepare a checkpoint of",
      [&](Lease& l) { return store_->prepare_checkpoint(l, sequence, sub_sequence, state); },
      [&](const Lease& l) { return l.pending_checkpoint == sequence; });
}

Status LeaseCoordinator::release(const std::string& key, std::uint64_t token) {
  auto slot = slot_for(key, token);
  if (!slot) return {};
  std::lock_guard io(slot->io);
  Lease copy;
  {
    std::lock_guard lk(mu_);
    auto it = held_.find(key);
    if (it == held_.end() || it->second != slot) return {};
    copy = slot->lease;
    held_.erase(it);  // released, not lost: no lease_lost report
  }
  counters_.store_calls.fetch_add(1, std::memory_order_relaxed);
  auto r = store_->evict_lease(copy);
  if (!r.ok()) return r.status();
  if (*r) {
    counters_.released.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::kInfo, "released lease " + key);
  }
  return {};
}

void LeaseCoordinator::drop(const std::string& key, std::uint64_t token) {
  std::lock_guard lk(mu_);
  auto it = held_.find(key);
  if (it != held_.end() && it->second->token == token) held_.erase(it);
}

}  // namespace shardline::detail
