// Fault injection for lease-store clients (the lease coordinator): a LeaseStore that delegates
// to another one and, per call, fails the way a remote store does.
//
//   TempSqliteLeaseStore db;                                  // a real store on a temp file
//   auto faulty = std::make_shared<FaultyLeaseStore>(db.store());
//   faulty->script(LeaseOp::kRenew, {Fault::kUnavailableAfter});  // the next renewal only
//   faulty->set_random(42, {.unavailable_before = 0.05, .retried_success = 0.02});
//
// The faults, each deterministic (scripted, or drawn from a seeded RNG):
//  - kUnavailableBefore / kThrottledBefore: kUnavailable / kResourceExhausted, nothing done;
//  - kUnavailableAfter: the call is made (a write takes effect), then kUnavailable is reported
//    (the reply was lost: the caller cannot tell whether its write happened);
//  - kRetriedSuccess: a conditional write is made and, if it took effect, reported as `false`.
//    This is what a client-side retry produces when its first attempt succeeded but the reply
//    was lost: the retry's condition (the old counter) no longer holds. Reads are unaffected.
// A store never reports `false` for a write that took effect in any other way.
//
// On any reported failure the caller's Lease is left as it was, as the LeaseStore contract says.
// A hook (set_hook) runs before and after each delegated call, with the lease key: a test uses
// it to let time pass or other workers act while a call is "in flight". Thread-safe; the hook
// runs without locks.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "shardline/lease_store.h"

namespace shardline::testing {

enum class LeaseOp : std::uint8_t {
  kInitialize,
  kList,
  kGet,
  kCreate,
  kRenew,
  kTake,
  kEvict,
  kCheckpoint,
  kPrepare,
  kMetadata,
  kDelete,
};
inline constexpr std::size_t kLeaseOpCount = 11;

enum class Fault : std::uint8_t {
  kNone,
  kUnavailableBefore,
  kThrottledBefore,
  kUnavailableAfter,
  kRetriedSuccess,
};
inline constexpr std::size_t kFaultCount = 5;

inline bool is_conditional_write(LeaseOp op) {
  return op == LeaseOp::kRenew || op == LeaseOp::kTake || op == LeaseOp::kEvict ||
         op == LeaseOp::kCheckpoint || op == LeaseOp::kPrepare;
}

/// Probabilities per call (drawn in this order; the rest is kNone). kRetriedSuccess applies to
/// conditional writes only; initialize() is never faulted at random.
struct FaultRates {
  double unavailable_before = 0;
  double throttled_before = 0;
  double unavailable_after = 0;
  double retried_success = 0;
};

class FaultyLeaseStore final : public LeaseStore {
 public:
  /// Called before (`after` false) and after (`after` true) each delegated call, with the
  /// lease key ("" for list_leases and initialize).
  using Hook = std::function<void(LeaseOp op, const std::string& key, bool after)>;

  explicit FaultyLeaseStore(std::shared_ptr<LeaseStore> inner) : inner_(std::move(inner)) {}

  /// The next calls of `op` get these faults, in order (before any random fault).
  void script(LeaseOp op, std::initializer_list<Fault> faults) {
    std::lock_guard lk(mu_);
    for (Fault f : faults) scripted_[index(op)].push_back(f);
  }
  /// Every call of `op` gets `fault` until cleared (kNone clears).
  void always(LeaseOp op, Fault fault) {
    std::lock_guard lk(mu_);
    always_[index(op)] = fault;
  }
  /// Random faults from now on (all rates 0: none).
  void set_random(std::uint64_t seed, FaultRates rates) {
    std::lock_guard lk(mu_);
    rng_.seed(seed);
    rates_ = rates;
  }
  void set_rates(FaultRates rates) {
    std::lock_guard lk(mu_);
    rates_ = rates;
  }
  void set_hook(Hook hook) {
    std::lock_guard lk(mu_);
    hook_ = std::move(hook);
  }

  std::int64_t calls(LeaseOp op) const {
    std::lock_guard lk(mu_);
    return calls_[index(op)];
  }
  std::int64_t faults(Fault f) const {
    std::lock_guard lk(mu_);
    return faults_[static_cast<std::size_t>(f)];
  }
  /// Calls of conditional writes (renew, take, evict, checkpoint, prepare).
  std::int64_t writes() const {
    std::lock_guard lk(mu_);
    std::int64_t n = 0;
    for (std::size_t i = 0; i < kLeaseOpCount; ++i) {
      if (is_conditional_write(static_cast<LeaseOp>(i))) n += calls_[i];
    }
    return n;
  }
  LeaseStore& inner() { return *inner_; }

  Status initialize(std::chrono::milliseconds timeout) override {
    return status_call(LeaseOp::kInitialize, "", [&] { return inner_->initialize(timeout); });
  }
  Result<std::vector<Lease>> list_leases() override {
    return read_call(LeaseOp::kList, "", [&] { return inner_->list_leases(); });
  }
  Result<std::optional<Lease>> get_lease(const std::string& lease_key) override {
    return read_call(LeaseOp::kGet, lease_key, [&] { return inner_->get_lease(lease_key); });
  }
  Result<bool> create_lease_if_not_exists(const Lease& lease) override {
    return read_call(LeaseOp::kCreate, lease.lease_key,
                     [&] { return inner_->create_lease_if_not_exists(lease); });
  }
  Result<bool> renew_lease(Lease& lease) override {
    return write_call(LeaseOp::kRenew, lease, [&](Lease& l) { return inner_->renew_lease(l); });
  }
  Result<bool> take_lease(Lease& lease, const std::string& owner) override {
    return write_call(LeaseOp::kTake, lease,
                      [&](Lease& l) { return inner_->take_lease(l, owner); });
  }
  Result<bool> evict_lease(Lease& lease) override {
    return write_call(LeaseOp::kEvict, lease, [&](Lease& l) { return inner_->evict_lease(l); });
  }
  Result<bool> update_checkpoint(Lease& lease, const std::string& checkpoint,
                                 std::int64_t sub_sequence_number) override {
    return write_call(LeaseOp::kCheckpoint, lease, [&](Lease& l) {
      return inner_->update_checkpoint(l, checkpoint, sub_sequence_number);
    });
  }
  Result<bool> prepare_checkpoint(Lease& lease, const std::string& pending_checkpoint,
                                  std::int64_t sub_sequence_number,
                                  std::optional<std::string> state) override {
    return write_call(LeaseOp::kPrepare, lease, [&](Lease& l) {
      return inner_->prepare_checkpoint(l, pending_checkpoint, sub_sequence_number, state);
    });
  }
  Status update_lease_metadata(const Lease& lease) override {
    return status_call(LeaseOp::kMetadata, lease.lease_key,
                       [&] { return inner_->update_lease_metadata(lease); });
  }
  Status delete_lease(const std::string& lease_key) override {
    return status_call(LeaseOp::kDelete, lease_key,
                       [&] { return inner_->delete_lease(lease_key); });
  }
  std::string describe() const override { return "faulty:" + inner_->describe(); }

 private:
  static std::size_t index(LeaseOp op) { return static_cast<std::size_t>(op); }

  // Counts the call and picks its fault.
  Fault next_fault(LeaseOp op, Hook& hook) {
    std::lock_guard lk(mu_);
    hook = hook_;
    ++calls_[index(op)];
    Fault f = Fault::kNone;
    auto& queue = scripted_[index(op)];
    if (!queue.empty()) {
      f = queue.front();
      queue.pop_front();
    } else if (always_[index(op)] != Fault::kNone) {
      f = always_[index(op)];
    } else if (op != LeaseOp::kInitialize) {
      const double x = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      double edge = rates_.unavailable_before;
      if (x < edge) {
        f = Fault::kUnavailableBefore;
      } else if (x < (edge += rates_.throttled_before)) {
        f = Fault::kThrottledBefore;
      } else if (x < (edge += rates_.unavailable_after)) {
        f = Fault::kUnavailableAfter;
      } else if (x < (edge += rates_.retried_success) && is_conditional_write(op)) {
        f = Fault::kRetriedSuccess;
      }
    }
    if (f == Fault::kRetriedSuccess && !is_conditional_write(op)) f = Fault::kNone;
    ++faults_[static_cast<std::size_t>(f)];
    return f;
  }

  static Status injected(Fault f, LeaseOp op) {
    const std::string what = "injected fault on lease store call " + std::to_string(index(op));
    if (f == Fault::kThrottledBefore) return Status::resource_exhausted(what + ": throttled");
    return Status::unavailable(what + (f == Fault::kUnavailableAfter ? ": reply lost" : ""));
  }

  template <class Call>
  auto read_call(LeaseOp op, const std::string& key, Call call) -> decltype(call()) {
    Hook hook;
    const Fault f = next_fault(op, hook);
    if (f == Fault::kUnavailableBefore || f == Fault::kThrottledBefore) return injected(f, op);
    if (hook) hook(op, key, false);
    auto r = call();
    if (hook) hook(op, key, true);
    if (f == Fault::kUnavailableAfter) return injected(f, op);
    return r;
  }

  template <class Call>
  Status status_call(LeaseOp op, const std::string& key, Call call) {
    Hook hook;
    const Fault f = next_fault(op, hook);
    if (f == Fault::kUnavailableBefore || f == Fault::kThrottledBefore) return injected(f, op);
    if (hook) hook(op, key, false);
    Status s = call();
    if (hook) hook(op, key, true);
    if (f == Fault::kUnavailableAfter) return injected(f, op);
    return s;
  }

  template <class Call>
  Result<bool> write_call(LeaseOp op, Lease& lease, Call call) {
    Hook hook;
    const Fault f = next_fault(op, hook);
    if (f == Fault::kUnavailableBefore || f == Fault::kThrottledBefore) return injected(f, op);
    Lease copy = lease;
    if (hook) hook(op, lease.lease_key, false);
    Result<bool> r = call(copy);
    if (hook) hook(op, lease.lease_key, true);
    if (f == Fault::kUnavailableAfter) return injected(f, op);
    if (f == Fault::kRetriedSuccess && r.ok()) return false;
    if (r.ok() && *r) lease = std::move(copy);
    return r;
  }

  std::shared_ptr<LeaseStore> inner_;
  mutable std::mutex mu_;
  std::array<std::deque<Fault>, kLeaseOpCount> scripted_;
  std::array<Fault, kLeaseOpCount> always_{};
  std::array<std::int64_t, kLeaseOpCount> calls_{};
  std::array<std::int64_t, kFaultCount> faults_{};
  FaultRates rates_;
  std::mt19937_64 rng_{1};
  Hook hook_;
};

/// A SQLite lease store on a file in a private temporary directory (removed with it; in
/// /dev/shm where there is one), initialized. Several coordinators may share store() (the store is
/// thread-safe) or open their own with open().
class TempSqliteLeaseStore {
 public:
  explicit TempSqliteLeaseStore(std::string application = "app")
      : application_(std::move(application)) {
    // Memory-backed when the system has /dev/shm: no disk syncs.
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    std::string pattern = base / "shardline-lc-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    store_ = open();
  }
  ~TempSqliteLeaseStore() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempSqliteLeaseStore(const TempSqliteLeaseStore&) = delete;
  TempSqliteLeaseStore& operator=(const TempSqliteLeaseStore&) = delete;

  const std::shared_ptr<LeaseStore>& store() const { return store_; }
  std::string path() const { return (dir_ / "leases.db").string(); }

  /// Another store object on the same file, initialized.
  std::shared_ptr<LeaseStore> open() const {
    auto s = make_sqlite_lease_store(path(), application_);
    if (!s.ok()) throw std::runtime_error(s.status().to_string());
    Status init = (*s)->initialize();
    if (!init.ok()) throw std::runtime_error(init.to_string());
    return std::shared_ptr<LeaseStore>(std::move(s).value());
  }

 private:
  std::string application_;
  std::filesystem::path dir_;
  std::shared_ptr<LeaseStore> store_;
};

}  // namespace shardline::testing
