// The LeaseStore contract, as one parameterised suite (LeaseStoreSuite) that any store must
// pass, followed by the tests specific to the SQLite store, open_lease_store() and the
// DynamoDB store's requests (on a fake transport).
//
// The suite is shared: tests/integration/lease_store_test.cc defines
// SHARDLINE_LEASE_STORE_SUITE_ONLY, includes this file and instantiates the suite on dynalite.
// Here it runs on SQLite files in a private temporary directory.
//
// No sleeps and no wall-clock assertions: races are started with barriers and judged by their
// outcome (exactly one winner per round, no lost update).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <barrier>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "shardline/lease_store.h"

namespace shardline::lease_store_suite {

// ---- Backends -------------------------------------------------------------------------------

/// Where the stores of one test live: one SQLite file, one DynamoDB table.
class LeaseBackend {
 public:
  virtual ~LeaseBackend() = default;
  /// A new store object on the same file or table (another worker), not initialized.
  virtual Result<std::unique_ptr<LeaseStore>> open() = 0;
  /// Rounds of the two-worker race (fewer where each call is a network round trip).
  virtual int race_rounds() const = 0;
};

struct BackendParam {
  std::string name;
  /// A fresh backend, or nullptr with `skip` set when the backend is not available here.
  std::function<std::unique_ptr<LeaseBackend>(std::string& skip)> make;
};

inline std::string param_name(const ::testing::TestParamInfo<BackendParam>& info) {
  return info.param.name;
}
inline void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.name; }

// ---- Assertions -----------------------------------------------------------------------------

inline ::testing::AssertionResult Ok(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.to_string();
}

/// A conditional write that took effect.
inline ::testing::AssertionResult Wrote(const Result<bool>& r) {
  if (!r.ok()) return ::testing::AssertionFailure() << r.status().to_string();
  if (!*r) return ::testing::AssertionFailure() << "the write was refused (false)";
  return ::testing::AssertionSuccess();
}

/// A conditional write whose condition did not hold (false, not an error).
inline ::testing::AssertionResult Refused(const Result<bool>& r) {
  if (!r.ok()) return ::testing::AssertionFailure() << r.status().to_string();
  if (*r) return ::testing::AssertionFailure() << "the write took effect (true)";
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult Fails(const Status& s, StatusCode code) {
  if (s.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << status_code_name(code) << ", got " << s.to_string();
}

inline std::string lease_text(const Lease& l) {
  std::string out =
      "Lease{key=" + l.lease_key + " owner=" + l.lease_owner +
      " counter=" + std::to_string(l.lease_counter) + " checkpoint=" + l.checkpoint + "/" +
      std::to_string(l.checkpoint_sub_sequence_number) +
      " pending=" + l.pending_checkpoint.value_or("<none>") + "/" +
      std::to_string(l.pending_checkpoint_sub_sequence_number) + " state=" +
      (l.pending_checkpoint_state ? std::to_string(l.pending_checkpoint_state->size()) + " bytes"
                                  : std::string("<none>")) +
      " switches=" + std::to_string(l.owner_switches_since_checkpoint) + " parents=";
  for (const auto& p : l.parent_shard_ids) out += p + ",";
  out += " children=";
  for (const auto& c : l.child_shard_ids) out += c + ",";
  out += " range=";
  out += l.hash_key_range
             ? l.hash_key_range->start.to_decimal() + ".." + l.hash_key_range->end.to_decimal()
             : std::string("<none>");
  out += " checkpointOwner=" + l.checkpoint_owner + "}";
  return out;
}

}  // namespace shardline::lease_store_suite

namespace shardline {
// Readable failure messages for EXPECT_EQ on leases.
inline void PrintTo(const Lease& l, std::ostream* os) { *os << lease_store_suite::lease_text(l); }
}  // namespace shardline

namespace shardline::lease_store_suite {

// ---- Leases ---------------------------------------------------------------------------------

inline const char* const kSeq1 = "49590338271490256608559692538361571095921575989136588898";
inline const char* const kSeq2 = "49590338271490256608559692540925702759324208523137515618";

inline std::string all_bytes() {
  std::string b(256, '\0');
  for (int i = 0; i < 256; ++i) b[static_cast<std::size_t>(i)] = static_cast<char>(i);
  return b;
}

/// A new, unowned lease as shard sync creates it.
inline Lease new_lease(const std::string& key) {
  Lease l;
  l.lease_key = key;
  l.checkpoint = std::string(kCheckpointTrimHorizon);
  l.parent_shard_ids = {"shardId-000000000000"};
  l.hash_key_range = HashKeyRange{HashKey(0, 0), HashKey::max()};
  return l;
}

/// A lease with every field set (sets sorted, as the stores return them).
inline Lease full_lease(const std::string& key) {
  Lease l;
  l.lease_key = key;
  l.lease_owner = "worker-a";
  l.lease_counter = 7;
  l.checkpoint = kSeq1;
  l.checkpoint_sub_sequence_number = 3;
  l.pending_checkpoint = kSeq2;
  l.pending_checkpoint_sub_sequence_number = 1;
  l.pending_checkpoint_state = all_bytes();
  l.owner_switches_since_checkpoint = 2;
  l.parent_shard_ids = {"shardId-000000000000", "shardId-000000000001"};
  l.child_shard_ids = {"shardId-000000000004", "shardId-000000000005"};
  l.hash_key_range =
      HashKeyRange{*HashKey::parse_decimal("85070591730234615865843651857942052864"),
                   *HashKey::parse_decimal("170141183460469231731687303715884105727")};
  l.checkpoint_owner = "worker-old";
  return l;
}

// ---- The suite ------------------------------------------------------------------------------

class LeaseStoreSuite : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    std::string skip;
    backend_ = GetParam().make(skip);
    if (backend_ == nullptr) {
      if (skip.empty()) FAIL() << "the backend could not be set up";
      GTEST_SKIP() << skip;
    }
    store_ = open_initialized();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<LeaseStore> open_initialized() {
    auto s = backend_->open();
    if (!s.ok()) {
      ADD_FAILURE() << s.status().to_string();
      return nullptr;
    }
    Status init = (*s)->initialize();
    if (!init.ok()) {
      ADD_FAILURE() << init.to_string();
      return nullptr;
    }
    return std::move(s).value();
  }

  // The stored lease, or nullopt (failing the test on an error).
  std::optional<Lease> fetch(const std::string& key, LeaseStore* store = nullptr) {
    auto r = (store != nullptr ? store : store_.get())->get_lease(key);
    if (!r.ok()) {
      ADD_FAILURE() << r.status().to_string();
      return std::nullopt;
    }
    return *r;
  }

  // Creates `l` and returns it as stored.
  Lease created(const Lease& l) {
    EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(l)));
    return fetch(l.lease_key).value_or(Lease{});
  }

  std::unique_ptr<LeaseBackend> backend_;
  std::unique_ptr<LeaseStore> store_;
};

TEST_P(LeaseStoreSuite, InitializeIsIdempotentAndStartsEmpty) {
  EXPECT_TRUE(Ok(store_->initialize()));
  auto other = open_initialized();
  ASSERT_NE(other, nullptr);
  auto leases = store_->list_leases();
  ASSERT_TRUE(leases.ok()) << leases.status().to_string();
  EXPECT_TRUE(leases->empty());
  EXPECT_EQ(fetch("shardId-000000000000"), std::nullopt);
  EXPECT_FALSE(store_->describe().empty());
}

TEST_P(LeaseStoreSuite, OperationsBeforeInitializeReportNotFound) {
  std::string skip;
  auto fresh = GetParam().make(skip);
  ASSERT_NE(fresh, nullptr);
  auto store = fresh->open();
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_TRUE(Fails((*store)->list_leases().status(), StatusCode::kNotFound));
  EXPECT_TRUE(Fails((*store)->get_lease("shardId-0").status(), StatusCode::kNotFound));
  Lease l = new_lease("shardId-0");
  EXPECT_TRUE(Fails((*store)->create_lease_if_not_exists(l).status(), StatusCode::kNotFound));
  EXPECT_TRUE(Fails((*store)->renew_lease(l).status(), StatusCode::kNotFound));
  EXPECT_EQ(l, new_lease("shardId-0"));
}

TEST_P(LeaseStoreSuite, CreateTwiceKeepsTheFirst) {
  Lease first = new_lease("shardId-000000000001");
  EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(first)));
  Lease second = full_lease("shardId-000000000001");
  EXPECT_TRUE(Refused(store_->create_lease_if_not_exists(second)));
  EXPECT_EQ(fetch(first.lease_key), first);
}

TEST_P(LeaseStoreSuite, EveryFieldRoundTrips) {
  const Lease full = full_lease("shardId-000000000002");
  EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(full)));
  EXPECT_EQ(fetch(full.lease_key), full);

  // The smallest lease: nothing but a key (no owner, checkpoint, sets, range or pending).
  Lease bare;
  bare.lease_key = "shardId-000000000003";
  EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(bare)));
  EXPECT_EQ(fetch(bare.lease_key), bare);

  // An empty pending state is a state, not "none"; the largest counter survives.
  Lease edge = new_lease("shardId-000000000004");
  edge.pending_checkpoint = std::string(kCheckpointShardEnd);
  edge.pending_checkpoint_state = std::string();
  edge.lease_counter = INT64_MAX - 1;
  EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(edge)));
  EXPECT_EQ(fetch(edge.lease_key), edge);

  auto all = store_->list_leases();
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(*all, (std::vector<Lease>{full, bare, edge}));
}

TEST_P(LeaseStoreSuite, SetsComeBackSortedWithoutDuplicates) {
  Lease l = new_lease("shardId-000000000005");
  l.parent_shard_ids = {"shardId-000000000002", "shardId-000000000001", "shardId-000000000002"};
  l.child_shard_ids = {"shardId-000000000009", "shardId-000000000008"};
  l.pending_checkpoint_sub_sequence_number = 5;  // meaningless without a pending checkpoint
  EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(l)));
  Lease expected = normalize_lease(l);
  EXPECT_EQ(expected.parent_shard_ids,
            (std::vector<std::string>{"shardId-000000000001", "shardId-000000000002"}));
  EXPECT_EQ(expected.pending_checkpoint_sub_sequence_number, 0);
  EXPECT_EQ(fetch(l.lease_key), expected);
}

TEST_P(LeaseStoreSuite, RenewBumpsTheCounterAndNothingElse) {
  Lease l = created(full_lease("shardId-000000000010"));
  l.checkpoint_owner.clear();  // (a pending handoff is tested below)
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));
  const Lease before = l;
  ASSERT_TRUE(Wrote(store_->renew_lease(l)));
  Lease expected = before;
  expected.lease_counter = before.lease_counter + 1;
  EXPECT_EQ(l, expected);
  EXPECT_EQ(fetch(l.lease_key), expected);
}

TEST_P(LeaseStoreSuite, RenewWithAStaleCounterFails) {
  Lease mine = created(new_lease("shardId-000000000011"));
  ASSERT_TRUE(Wrote(store_->take_lease(mine, "worker-a")));
  Lease stale = mine;
  ASSERT_TRUE(Wrote(store_->renew_lease(mine)));
  EXPECT_TRUE(Refused(store_->renew_lease(stale)));
  // A refused write leaves the caller's lease as it was, and the table as the winner left it.
  EXPECT_EQ(stale.lease_counter, mine.lease_counter - 1);
  EXPECT_EQ(fetch(mine.lease_key), mine);
  // A lease that does not exist cannot be renewed either.
  Lease ghost = new_lease("shardId-999999999999");
  EXPECT_TRUE(Refused(store_->renew_lease(ghost)));
  EXPECT_EQ(fetch(ghost.lease_key), std::nullopt);
}

TEST_P(LeaseStoreSuite, RenewFailsWhileAHandoffIsPendingUnlessTheCallerKnows) {
  // The stored lease has a checkpointOwner (a KCL 3.x graceful handoff in progress).
  Lease stored = new_lease("shardId-000000000012");
  stored.lease_owner = "worker-new";
  stored.checkpoint_owner = "worker-old";
  stored.lease_counter = 4;
  EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(stored)));

  Lease unaware = stored;
  unaware.checkpoint_owner.clear();
  EXPECT_TRUE(Refused(store_->renew_lease(unaware)));

  Lease aware = stored;
  EXPECT_TRUE(Wrote(store_->renew_lease(aware)));
  EXPECT_EQ(aware.lease_counter, 5);
  EXPECT_EQ(aware.checkpoint_owner, "worker-old");
}

TEST_P(LeaseStoreSuite, TakeCountsOwnerSwitchesOnlyWhenTheOwnerChanges) {
  Lease base = new_lease("shardId-000000000013");
  base.checkpoint_owner = "worker-old";
  Lease l = created(base);
  ASSERT_EQ(l.owner_switches_since_checkpoint, 0);

  // As in the KCL, a switch is from one owner to another: taking an unowned lease is none.
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));  // unowned -> a: no switch
  EXPECT_EQ(l.lease_owner, "worker-a");
  EXPECT_EQ(l.lease_counter, 1);
  EXPECT_EQ(l.owner_switches_since_checkpoint, 0);
  EXPECT_EQ(l.checkpoint_owner, "");  // take ends any handoff
  EXPECT_EQ(fetch(l.lease_key), l);

  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));  // a -> a: no switch
  EXPECT_EQ(l.lease_counter, 2);
  EXPECT_EQ(l.owner_switches_since_checkpoint, 0);
  EXPECT_EQ(fetch(l.lease_key), l);

  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-b")));  // a -> b: a switch
  EXPECT_EQ(l.lease_owner, "worker-b");
  EXPECT_EQ(l.lease_counter, 3);
  EXPECT_EQ(l.owner_switches_since_checkpoint, 1);
  EXPECT_EQ(fetch(l.lease_key), l);

  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));  // b -> a: a switch
  EXPECT_EQ(l.owner_switches_since_checkpoint, 2);
  EXPECT_EQ(fetch(l.lease_key), l);

  // Everything but owner, counter, switches and checkpointOwner is untouched.
  Lease expected = base;
  expected.lease_owner = "worker-a";
  expected.lease_counter = 4;
  expected.owner_switches_since_checkpoint = 2;
  expected.checkpoint_owner.clear();
  EXPECT_EQ(l, expected);
}

TEST_P(LeaseStoreSuite, TakeWithAStaleCounterFails) {
  Lease a = created(new_lease("shardId-000000000014"));
  Lease b = a;
  ASSERT_TRUE(Wrote(store_->take_lease(a, "worker-a")));
  EXPECT_TRUE(Refused(store_->take_lease(b, "worker-b")));
  EXPECT_EQ(b.lease_owner, "");
  EXPECT_EQ(fetch(a.lease_key), a);
  // With the counter it has now observed, worker-b can steal the lease.
  b = *fetch(a.lease_key);
  EXPECT_TRUE(Wrote(store_->take_lease(b, "worker-b")));
  EXPECT_TRUE(Refused(store_->renew_lease(a)));  // worker-a finds out it lost the lease
}

TEST_P(LeaseStoreSuite, EvictReleasesTheLease) {
  Lease l = created(new_lease("shardId-000000000015"));
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));
  const std::int64_t counter = l.lease_counter;
  ASSERT_TRUE(Wrote(store_->evict_lease(l)));
  EXPECT_EQ(l.lease_owner, "");
  EXPECT_EQ(l.lease_counter, counter + 1);
  EXPECT_EQ(fetch(l.lease_key), l);
  // Another worker takes it at once with what it reads (from unowned: no owner switch).
  Lease seen = *fetch(l.lease_key);
  EXPECT_TRUE(Wrote(store_->take_lease(seen, "worker-b")));
  EXPECT_EQ(seen.lease_owner, "worker-b");
  EXPECT_EQ(seen.owner_switches_since_checkpoint, 0);
}

TEST_P(LeaseStoreSuite, StaleOrForeignEvictFails) {
  Lease l = created(new_lease("shardId-000000000016"));
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));
  Lease stale = l;
  ASSERT_TRUE(Wrote(store_->renew_lease(l)));
  EXPECT_TRUE(Refused(store_->evict_lease(stale)));  // counter moved on

  Lease foreign = l;  // right counter, another owner
  foreign.lease_owner = "worker-b";
  EXPECT_TRUE(Refused(store_->evict_lease(foreign)));
  Lease unowned = l;
  unowned.lease_owner.clear();
  EXPECT_TRUE(Refused(store_->evict_lease(unowned)));
  EXPECT_EQ(fetch(l.lease_key), l);
}

TEST_P(LeaseStoreSuite, CheckpointRequiresTheOwnerAndTheCounter) {
  Lease l = created(new_lease("shardId-000000000017"));
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));

  Lease impostor = l;
  impostor.lease_owner = "worker-b";
  EXPECT_TRUE(Refused(store_->update_checkpoint(impostor, kSeq1, 0)));
  Lease stale = l;
  stale.lease_counter -= 1;
  EXPECT_TRUE(Refused(store_->update_checkpoint(stale, kSeq1, 0)));
  EXPECT_EQ(fetch(l.lease_key), l);

  const std::int64_t counter = l.lease_counter;
  ASSERT_TRUE(Wrote(store_->update_checkpoint(l, kSeq1, 7)));
  EXPECT_EQ(l.checkpoint, kSeq1);
  EXPECT_EQ(l.checkpoint_sub_sequence_number, 7);
  EXPECT_EQ(l.lease_counter, counter + 1);
  EXPECT_EQ(l.owner_switches_since_checkpoint, 0);
  EXPECT_EQ(l.lease_owner, "worker-a");
  EXPECT_EQ(fetch(l.lease_key), l);
}

TEST_P(LeaseStoreSuite, CheckpointOfAnUnownedLeaseNeedsAnUnownedCopy) {
  // An operator's reset of an idle lease: the caller's owner "" means "still unowned".
  Lease l = created(new_lease("shardId-000000000018"));
  Lease racer = l;
  EXPECT_TRUE(Wrote(store_->update_checkpoint(l, std::string(kCheckpointLatest), 0)));
  EXPECT_EQ(l.checkpoint, kCheckpointLatest);
  racer = *fetch(l.lease_key);
  ASSERT_TRUE(Wrote(store_->take_lease(racer, "worker-a")));
  Lease idle = racer;
  idle.lease_owner.clear();
  EXPECT_TRUE(Refused(store_->update_checkpoint(idle, std::string(kCheckpointTrimHorizon), 0)));
}

TEST_P(LeaseStoreSuite, PrepareThenCheckpointClearsThePendingFields) {
  Lease l = created(new_lease("shardId-000000000019"));
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-b")));
  ASSERT_EQ(l.owner_switches_since_checkpoint, 1);

  Lease impostor = l;
  impostor.lease_owner = "worker-a";
  EXPECT_TRUE(Refused(store_->prepare_checkpoint(impostor, kSeq2, 4, "state")));
  Lease stale = l;
  stale.lease_counter -= 1;
  EXPECT_TRUE(Refused(store_->prepare_checkpoint(stale, kSeq2, 4, "state")));

  const std::int64_t counter = l.lease_counter;
  ASSERT_TRUE(Wrote(store_->prepare_checkpoint(l, kSeq2, 4, all_bytes())));
  EXPECT_EQ(l.lease_counter, counter + 1);
  EXPECT_EQ(l.pending_checkpoint, kSeq2);
  EXPECT_EQ(l.pending_checkpoint_sub_sequence_number, 4);
  EXPECT_EQ(l.pending_checkpoint_state, all_bytes());
  EXPECT_EQ(l.checkpoint, kCheckpointTrimHorizon);  // the real checkpoint is untouched
  EXPECT_EQ(l.owner_switches_since_checkpoint, 1);
  EXPECT_EQ(fetch(l.lease_key), l);

  // Preparing again without state removes the old state.
  ASSERT_TRUE(Wrote(store_->prepare_checkpoint(l, kSeq2, 5, std::nullopt)));
  EXPECT_EQ(l.pending_checkpoint_sub_sequence_number, 5);
  EXPECT_EQ(l.pending_checkpoint_state, std::nullopt);
  EXPECT_EQ(fetch(l.lease_key), l);
  ASSERT_TRUE(Wrote(store_->prepare_checkpoint(l, kSeq2, 5, "again")));

  ASSERT_TRUE(Wrote(store_->update_checkpoint(l, kSeq2, 5)));
  EXPECT_EQ(l.checkpoint, kSeq2);
  EXPECT_EQ(l.checkpoint_sub_sequence_number, 5);
  EXPECT_EQ(l.pending_checkpoint, std::nullopt);
  EXPECT_EQ(l.pending_checkpoint_sub_sequence_number, 0);
  EXPECT_EQ(l.pending_checkpoint_state, std::nullopt);
  EXPECT_EQ(l.owner_switches_since_checkpoint, 0);
  EXPECT_EQ(fetch(l.lease_key), l);
}

TEST_P(LeaseStoreSuite, MetadataUpdateLeavesTheCounter) {
  Lease l = created(new_lease("shardId-000000000020"));
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));
  ASSERT_TRUE(Wrote(store_->update_checkpoint(l, std::string(kCheckpointShardEnd), 0)));

  Lease meta;
  meta.lease_key = l.lease_key;
  meta.child_shard_ids = {"shardId-000000000022", "shardId-000000000021"};
  EXPECT_TRUE(Ok(store_->update_lease_metadata(meta)));
  Lease expected = l;
  expected.child_shard_ids = {"shardId-000000000021", "shardId-000000000022"};
  EXPECT_EQ(fetch(l.lease_key), expected);

  // The hash range alone: the children stay.
  meta.child_shard_ids.clear();
  meta.hash_key_range = HashKeyRange{HashKey(0, 5), HashKey(1, 0)};
  EXPECT_TRUE(Ok(store_->update_lease_metadata(meta)));
  expected.hash_key_range = meta.hash_key_range;
  EXPECT_EQ(fetch(l.lease_key), expected);

  // Neither: nothing changes, but the lease must exist.
  meta.hash_key_range.reset();
  EXPECT_TRUE(Ok(store_->update_lease_metadata(meta)));
  EXPECT_EQ(fetch(l.lease_key), expected);

  // The owner's copy is still current (no counter change) and picks the metadata up from the
  // store on its next write.
  ASSERT_TRUE(Wrote(store_->renew_lease(l)));
  EXPECT_EQ(l.child_shard_ids, expected.child_shard_ids);
  EXPECT_EQ(l.hash_key_range, expected.hash_key_range);
}

TEST_P(LeaseStoreSuite, MetadataOfAMissingLeaseIsNotFound) {
  Lease meta;
  meta.lease_key = "shardId-000000000404";
  meta.child_shard_ids = {"shardId-000000000405"};
  EXPECT_TRUE(Fails(store_->update_lease_metadata(meta), StatusCode::kNotFound));
  meta.child_shard_ids.clear();
  EXPECT_TRUE(Fails(store_->update_lease_metadata(meta), StatusCode::kNotFound));
  EXPECT_EQ(fetch(meta.lease_key), std::nullopt);  // not created by the attempt
}

TEST_P(LeaseStoreSuite, DeleteRemovesTheLease) {
  Lease l = created(new_lease("shardId-000000000021"));
  Lease other = created(new_lease("shardId-000000000022"));
  EXPECT_TRUE(Ok(store_->delete_lease(l.lease_key)));
  EXPECT_EQ(fetch(l.lease_key), std::nullopt);
  EXPECT_EQ(fetch(other.lease_key), other);
  EXPECT_TRUE(Ok(store_->delete_lease(l.lease_key)));  // already gone: fine
  EXPECT_TRUE(Refused(store_->renew_lease(l)));
  // The key can be used again.
  EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(l)));
}

TEST_P(LeaseStoreSuite, ListReturnsEveryLeaseSortedByKey) {
  std::vector<Lease> expected;
  for (int i : {7, 3, 11, 0, 5}) {
    char key[32];
    std::snprintf(key, sizeof key, "shardId-%012d", i);
    Lease l = new_lease(key);
    l.lease_counter = i;
    EXPECT_TRUE(Wrote(store_->create_lease_if_not_exists(l)));
    expected.push_back(l);
  }
  std::sort(expected.begin(), expected.end(),
            [](const Lease& a, const Lease& b) { return a.lease_key < b.lease_key; });
  auto listed = store_->list_leases();
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  EXPECT_EQ(*listed, expected);

  // A second store object (another worker) sees the same.
  auto other = open_initialized();
  ASSERT_NE(other, nullptr);
  auto seen = other->list_leases();
  ASSERT_TRUE(seen.ok()) << seen.status().to_string();
  EXPECT_EQ(*seen, expected);
}

TEST_P(LeaseStoreSuite, InvalidArgumentsAreRejected) {
  Lease l = created(new_lease("shardId-000000000023"));
  ASSERT_TRUE(Wrote(store_->take_lease(l, "worker-a")));
  const Lease before = l;
  auto invalid = [](const Status& s) { return Fails(s, StatusCode::kInvalidArgument); };

  EXPECT_TRUE(invalid(store_->take_lease(l, "").status()));
  EXPECT_TRUE(invalid(store_->update_checkpoint(l, "", 0).status()));
  EXPECT_TRUE(invalid(store_->update_checkpoint(l, kSeq1, -1).status()));
  EXPECT_TRUE(invalid(store_->prepare_checkpoint(l, "", 0, std::nullopt).status()));
  EXPECT_TRUE(invalid(store_->prepare_checkpoint(l, kSeq1, -2, std::nullopt).status()));
  EXPECT_EQ(l, before);
  EXPECT_EQ(fetch(l.lease_key), before);

  Lease top = *fetch(l.lease_key);
  top.lease_counter = INT64_MAX;
  EXPECT_TRUE(Fails(store_->renew_lease(top).status(), StatusCode::kOutOfRange));
  top.lease_counter = -1;
  EXPECT_TRUE(Fails(store_->take_lease(top, "worker-b").status(), StatusCode::kOutOfRange));

  Lease keyless = new_lease("");
  EXPECT_TRUE(invalid(store_->create_lease_if_not_exists(keyless).status()));
  EXPECT_TRUE(invalid(store_->renew_lease(keyless).status()));
  EXPECT_TRUE(invalid(store_->get_lease("").status()));
  EXPECT_TRUE(invalid(store_->delete_lease("")));
  Lease bad = new_lease("shardId-000000000024");
  bad.parent_shard_ids = {""};
  EXPECT_TRUE(invalid(store_->create_lease_if_not_exists(bad).status()));
  bad.parent_shard_ids = {"a\nb"};
  EXPECT_TRUE(invalid(store_->create_lease_if_not_exists(bad).status()));
  bad = new_lease("shardId-000000000024");
  bad.lease_counter = -1;
  EXPECT_TRUE(invalid(store_->create_lease_if_not_exists(bad).status()));
  bad = new_lease("shardId-000000000024");
  bad.hash_key_range = HashKeyRange{HashKey(0, 9), HashKey(0, 8)};
  EXPECT_TRUE(invalid(store_->create_lease_if_not_exists(bad).status()));
  EXPECT_EQ(fetch(bad.lease_key), std::nullopt);
}

TEST_P(LeaseStoreSuite, TheWritersCopyIsTheStoredLease) {
  // Another worker records children without bumping the counter; the owner's next write
  // hands back the stored lease, children included.
  Lease mine = created(new_lease("shardId-000000000025"));
  ASSERT_TRUE(Wrote(store_->take_lease(mine, "worker-a")));
  auto other = open_initialized();
  ASSERT_NE(other, nullptr);
  Lease meta;
  meta.lease_key = mine.lease_key;
  meta.child_shard_ids = {"shardId-000000000026"};
  ASSERT_TRUE(Ok(other->update_lease_metadata(meta)));
  ASSERT_TRUE(Wrote(store_->update_checkpoint(mine, std::string(kCheckpointShardEnd), 0)));
  EXPECT_EQ(mine.child_shard_ids, meta.child_shard_ids);
  EXPECT_EQ(fetch(mine.lease_key, other.get()), mine);
}

TEST_P(LeaseStoreSuite, TwoStoresRacingACompareAndSwapHaveOneWinnerPerRound) {
  const Lease initial = created(new_lease("shardId-000000000030"));
  auto second = open_initialized();
  ASSERT_NE(second, nullptr);
  LeaseStore* stores[2] = {store_.get(), second.get()};
  const int rounds = backend_->race_rounds();

  // wins[r][w]: 1 if worker w won round r, 0 if refused, -1 on an error.
  std::vector<std::array<int, 2>> wins(static_cast<std::size_t>(rounds), {-1, -1});
  std::vector<std::string> errors[2];
  std::barrier sync(2);
  auto worker = [&](int w) {
    const std::string owner = "worker-" + std::to_string(w);
    for (int r = 0; r < rounds; ++r) {
      sync.arrive_and_wait();  // the previous round is over
      auto seen = stores[w]->get_lease(initial.lease_key);
      sync.arrive_and_wait();  // both have read the same counter
      if (!seen.ok() || !seen->has_value()) {
        errors[w].push_back(seen.ok() ? "lease missing" : seen.status().to_string());
        continue;
      }
      Lease l = **seen;
      auto took = stores[w]->take_lease(l, owner);
      if (!took.ok()) {
        errors[w].push_back(took.status().to_string());
        continue;
      }
      wins[static_cast<std::size_t>(r)][static_cast<std::size_t>(w)] = *took ? 1 : 0;
    }
  };
  std::thread t0(worker, 0);
  std::thread t1(worker, 1);
  t0.join();
  t1.join();

  EXPECT_TRUE(errors[0].empty()) << errors[0].front();
  EXPECT_TRUE(errors[1].empty()) << errors[1].front();
  int total = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto& round = wins[static_cast<std::size_t>(r)];
    EXPECT_EQ(round[0] + round[1], 1) << "round " << r << ": " << round[0] << ", " << round[1];
    total += round[0] + round[1];
  }
  EXPECT_EQ(total, rounds);
  auto final_lease = fetch(initial.lease_key);
  ASSERT_TRUE(final_lease.has_value());
  EXPECT_EQ(final_lease->lease_counter, initial.lease_counter + rounds);
}

}  // namespace shardline::lease_store_suite

#ifndef SHARDLINE_LEASE_STORE_SUITE_ONLY

// ================================================================================================
// The SQLite store, open_lease_store(), and the DynamoDB store's requests on a fake transport.
// ================================================================================================

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aws/aws_errors.h"
#include "shardline/credentials.h"
#include "shardline/dynamodb.h"
#include "support/fake_dynamodb.h"

namespace shardline::lease_store_suite {
namespace {

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "shardline-lease-XXXXXX");
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

class SqliteBackend : public LeaseBackend {
 public:
  Result<std::unique_ptr<LeaseStore>> open() override {
    return make_sqlite_lease_store(dir_.file("leases.db"), "orders");
  }
  int race_rounds() const override { return 200; }

 private:
  TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, LeaseStoreSuite,
                         ::testing::Values(BackendParam{
                             "Sqlite",
                             [](std::string&) -> std::unique_ptr<LeaseBackend> {
                               return std::make_unique<SqliteBackend>();
                             }}),
                         param_name);

std::unique_ptr<LeaseStore> open_sqlite(const std::string& path, const std::string& app) {
  auto s = make_sqlite_lease_store(path, app);
  if (!s.ok()) {
    ADD_FAILURE() << s.status().to_string();
    return nullptr;
  }
  Status init = (*s)->initialize();
  if (!init.ok()) {
    ADD_FAILURE() << init.to_string();
    return nullptr;
  }
  return std::move(s).value();
}

// One worker process, forked: it obeys one-byte commands from the parent on `in` and answers
// on `out`, and never returns (no gtest in the child; the exit code says what went wrong).
//   'r' read the lease            -> 'k'
//   't' take what it read         -> '1' (won) or '0' (refused)
//   'f' take kFreeTakes times, re-reading before each -> the number won (int)
//   'q' exit 0
[[noreturn]] void lease_worker_process(const std::string& path, const std::string& key, int id,
                                       int in, int out, int free_takes) {
  auto store = make_sqlite_lease_store(path, "orders");
  if (!store.ok() || !(*store)->initialize().ok()) _exit(2);
  const std::string owner = "process-" + std::to_string(id);
  Lease seen;
  for (char command = 0; read(in, &command, 1) == 1;) {
    if (command == 'q') {
      store->reset();
      _exit(0);
    }
    if (command == 'r') {
      auto got = (*store)->get_lease(key);
      if (!got.ok() || !got->has_value()) _exit(3);
      seen = **got;
      if (write(out, "k", 1) != 1) _exit(4);
    } else if (command == 't') {
      auto took = (*store)->take_lease(seen, owner);
      if (!took.ok()) _exit(5);
      if (write(out, *took ? "1" : "0", 1) != 1) _exit(4);
    } else if (command == 'f') {
      int wins = 0;
      for (int n = 0; n < free_takes; ++n) {
        auto got = (*store)->get_lease(key);
        if (!got.ok() || !got->has_value()) _exit(3);
        Lease l = **got;
        auto took = (*store)->take_lease(l, owner);
        if (!took.ok()) _exit(5);
        if (*took) ++wins;
      }
      if (write(out, &wins, sizeof wins) != static_cast<ssize_t>(sizeof wins)) _exit(4);
    } else {
      _exit(6);
    }
  }
  _exit(7);  // the parent went away
}

TEST(SqliteLeaseStore, TwoProcessesRacingTakesLoseNoUpdate) {
  TempDir dir;
  const std::string path = dir.file("shared.db");
  const std::string key = "shardId-000000000000";
  {
    auto store = open_sqlite(path, "orders");
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Wrote(store->create_lease_if_not_exists(new_lease(key))));
  }  // closed: no connection is carried across fork()

  constexpr int kLockstepRounds = 100;
  constexpr int kFreeTakes = 500;
  struct Worker {
    pid_t pid = -1;
    int to = -1;    // commands to the child
    int from = -1;  // answers from the child
  };
  Worker workers[2];
  // However the test ends: closing the pipes makes the children exit; then reap them.
  struct Reaper {
    Worker (&workers)[2];
    ~Reaper() {
      for (Worker& w : workers) {
        if (w.to >= 0) close(w.to);
        if (w.from >= 0) close(w.from);
        if (w.pid > 0) waitpid(w.pid, nullptr, 0);
      }
    }
  } reaper{workers};
  for (int i = 0; i < 2; ++i) {
    int down[2];
    int up[2];
    ASSERT_EQ(pipe(down), 0);
    ASSERT_EQ(pipe(up), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(down[1]);
      close(up[0]);
      if (i == 1) {  // not the first child's pipes
        close(workers[0].to);
        close(workers[0].from);
      }
      lease_worker_process(path, key, i, down[0], up[1], kFreeTakes);
    }
    close(down[0]);
    close(up[1]);
    workers[i] = {pid, down[1], up[0]};
  }
  auto send = [&](char command) {
    for (Worker& w : workers) ASSERT_EQ(write(w.to, &command, 1), 1);
  };
  auto answer = [](Worker& w) {
    char c = 0;
    return read(w.from, &c, 1) == 1 ? c : '?';
  };

  // Lockstep: both read the same counter, then both take at once. One wins each round.
  int total_wins = 0;
  for (int round = 0; round < kLockstepRounds; ++round) {
    send('r');
    for (Worker& w : workers) ASSERT_EQ(answer(w), 'k') << "round " << round;
    send('t');
    int winners = 0;
    for (Worker& w : workers) {
      const char c = answer(w);
      ASSERT_TRUE(c == '0' || c == '1') << "round " << round << ": answer " << c;
      winners += c == '1' ? 1 : 0;
    }
    EXPECT_EQ(winners, 1) << "round " << round;
    total_wins += winners;
  }
  // Free running: each process re-reads and takes as fast as it can.
  send('f');
  int free_wins = 0;
  for (Worker& w : workers) {
    int wins = -1;
    ASSERT_EQ(read(w.from, &wins, sizeof wins), static_cast<ssize_t>(sizeof wins));
    EXPECT_GT(wins, 0);
    free_wins += wins;
  }
  // Every refused take was caused by a distinct successful take of the other process.
  EXPECT_GE(free_wins, kFreeTakes);
  total_wins += free_wins;
  send('q');
  for (Worker& w : workers) {
    int status = 0;
    const pid_t pid = std::exchange(w.pid, -1);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "see lease_worker_process for the exit codes";
  }

  auto store = open_sqlite(path, "orders");
  ASSERT_NE(store, nullptr);
  auto final_lease = store->get_lease(key);
  ASSERT_TRUE(final_lease.ok() && final_lease->has_value());
  EXPECT_EQ((*final_lease)->lease_counter, total_wins);  // no lost update
}

TEST(SqliteLeaseStore, ApplicationsShareAFileWithoutSeeingEachOther) {
  TempDir dir;
  auto orders = open_sqlite(dir.file("leases.db"), "orders");
  auto billing = open_sqlite(dir.file("leases.db"), "billing");
  ASSERT_NE(orders, nullptr);
  ASSERT_NE(billing, nullptr);
  Lease l = new_lease("shardId-000000000000");
  EXPECT_TRUE(Wrote(orders->create_lease_if_not_exists(l)));
  EXPECT_TRUE(Wrote(billing->create_lease_if_not_exists(full_lease(l.lease_key))));
  ASSERT_TRUE(Wrote(orders->take_lease(l, "worker-a")));
  auto b = billing->get_lease(l.lease_key);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ(**b, full_lease(l.lease_key));
  EXPECT_TRUE(Ok(billing->delete_lease(l.lease_key)));
  auto o = orders->list_leases();
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(*o, std::vector<Lease>{l});
}

TEST(SqliteLeaseStore, DescribesItselfAndSurvivesReopening) {
  TempDir dir;
  const std::string path = dir.file("leases.db");
  {
    auto store = open_sqlite(path, "orders");
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->describe(), "sqlite:" + path);
    EXPECT_TRUE(Wrote(store->create_lease_if_not_exists(full_lease("shardId-000000000001"))));
  }
  auto store = open_sqlite(path, "orders");
  ASSERT_NE(store, nullptr);
  auto l = store->get_lease("shardId-000000000001");
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ(**l, full_lease("shardId-000000000001"));
}

TEST(SqliteLeaseStore, UsesWalModeAndTheDocumentedSchema) {
  TempDir dir;
  const std::string path = dir.file("leases.db");
  ASSERT_NE(open_sqlite(path, "orders"), nullptr);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  auto query = [db](const char* sql) {
    std::vector<std::string> rows;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) return rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(stmt, 0);
      rows.emplace_back(t != nullptr ? reinterpret_cast<const char*>(t) : "");
    }
    sqlite3_finalize(stmt);
    return rows;
  };
  EXPECT_EQ(query("PRAGMA journal_mode"), std::vector<std::string>{"wal"});
  EXPECT_EQ(query("PRAGMA user_version"), std::vector<std::string>{"1"});
  EXPECT_EQ(query("SELECT name FROM pragma_table_info('shardline_leases') ORDER BY cid"),
            (std::vector<std::string>{
                "application", "lease_key", "lease_owner", "lease_counter", "checkpoint",
                "checkpoint_sub_sequence_number", "pending_checkpoint",
                "pending_checkpoint_sub_sequence_number", "pending_checkpoint_state",
                "owner_switches_since_checkpoint", "parent_shard_ids", "child_shard_ids",
                "starting_hash_key", "ending_hash_key", "checkpoint_owner"}));
  sqlite3_close(db);
}

TEST(SqliteLeaseStore, RefusesAFileFromANewerSchema) {
  TempDir dir;
  const std::string path = dir.file("leases.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = make_sqlite_lease_store(path, "orders");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  Status s = (*store)->initialize();
  EXPECT_TRUE(Fails(s, StatusCode::kFailedPrecondition));
  EXPECT_NE(s.message().find(path), std::string_view::npos) << s.to_string();
}

TEST(SqliteLeaseStore, ErrorsNameTheFileAndSqlitesMessage) {
  TempDir dir;
  const std::string garbage = dir.file("garbage.db");
  {
    std::ofstream out(garbage, std::ios::binary);
    out << std::string(4096, 'x');
  }
  auto store = make_sqlite_lease_store(garbage, "orders");
  Status s = store.ok() ? (*store)->initialize() : store.status();
  EXPECT_TRUE(Fails(s, StatusCode::kDataLoss));
  EXPECT_NE(s.message().find(garbage), std::string_view::npos) << s.to_string();
  EXPECT_NE(s.message().find("not a database"), std::string_view::npos) << s.to_string();

  const std::string nowhere = dir.file("no/such/dir/leases.db");
  auto missing = make_sqlite_lease_store(nowhere, "orders");
  Status m = missing.ok() ? (*missing)->initialize() : missing.status();
  EXPECT_FALSE(m.ok());
  EXPECT_NE(m.message().find(nowhere), std::string_view::npos) << m.to_string();

  EXPECT_TRUE(Fails(make_sqlite_lease_store("", "orders").status(), StatusCode::kInvalidArgument));
  EXPECT_TRUE(
      Fails(make_sqlite_lease_store(dir.file("x.db"), "").status(), StatusCode::kInvalidArgument));
}

TEST(SqliteLeaseStore, ReadOnlyFileIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  TempDir dir;
  const std::string path = dir.file("leases.db");
  {
    auto store = open_sqlite(path, "orders");
    ASSERT_NE(store, nullptr);
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_read);
  auto store = make_sqlite_lease_store(path, "orders");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto created = (*store)->create_lease_if_not_exists(new_lease("shardId-0"));
  EXPECT_FALSE(created.ok());
  EXPECT_NE(created.status().message().find(path), std::string_view::npos)
      << created.status().to_string();
}

// ---- open_lease_store -----------------------------------------------------------------------

AwsClientConfig local_config() {
  AwsClientConfig cfg;
  cfg.endpoint_url = "http://127.0.0.1:9";  // never contacted by these tests
  cfg.region = "us-east-1";
  cfg.credentials = make_static_credentials_provider({"AKIDTEST", "secret", "", {}, "static"});
  return cfg;
}

TEST(OpenLeaseStore, ChoosesTheStoreFromTheSpec) {
  TempDir dir;
  const AwsClientConfig cfg = local_config();
  auto dynamo = open_lease_store("dynamodb:orders-leases", "orders", cfg);
  ASSERT_TRUE(dynamo.ok()) << dynamo.status().to_string();
  EXPECT_EQ((*dynamo)->describe(), "dynamodb:orders-leases");
  auto by_app = open_lease_store("dynamodb:", "orders", cfg);
  ASSERT_TRUE(by_app.ok()) << by_app.status().to_string();
  EXPECT_EQ((*by_app)->describe(), "dynamodb:orders");

  const std::string path = dir.file("a.db");
  auto sqlite = open_lease_store("sqlite:" + path, "orders", cfg);
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().to_string();
  EXPECT_EQ((*sqlite)->describe(), "sqlite:" + path);
  const std::string bare_path = dir.file("b.db");
  auto bare = open_lease_store(bare_path, "orders", cfg);
  ASSERT_TRUE(bare.ok()) << bare.status().to_string();
  EXPECT_EQ((*bare)->describe(), "sqlite:" + bare_path);
  EXPECT_TRUE(Ok((*bare)->initialize()));

  const std::string colon_path = dir.file("c:d.db");
  auto colon = open_lease_store("sqlite:" + colon_path, "orders", cfg);
  ASSERT_TRUE(colon.ok()) << colon.status().to_string();
  EXPECT_EQ((*colon)->describe(), "sqlite:" + colon_path);
}

TEST(OpenLeaseStore, RejectsBadSpecs) {
  const AwsClientConfig cfg = local_config();
  auto invalid = [](const Status& s) { return Fails(s, StatusCode::kInvalidArgument); };
  EXPECT_TRUE(invalid(open_lease_store("", "orders", cfg).status()));
  EXPECT_TRUE(invalid(open_lease_store("sqlite:", "orders", cfg).status()));
  EXPECT_TRUE(invalid(open_lease_store("dynamodb:", "", cfg).status()));
  EXPECT_TRUE(invalid(open_lease_store("dynamodb:no spaces", "orders", cfg).status()));
  EXPECT_TRUE(invalid(open_lease_store("dynamodb:ab", "orders", cfg).status()));
  Status typo = open_lease_store("dynamo:orders", "orders", cfg).status();
  EXPECT_TRUE(invalid(typo));
  EXPECT_NE(typo.message().find("dynamo:"), std::string_view::npos) << typo.to_string();
}

TEST(LeaseHelpers, NormalizeAndValidate) {
  Lease l = new_lease("shardId-1");
  l.parent_shard_ids = {"b", "a", "b"};
  l.child_shard_ids = {"d", "c"};
  l.pending_checkpoint_sub_sequence_number = 3;
  Lease n = normalize_lease(l);
  EXPECT_EQ(n.parent_shard_ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(n.child_shard_ids, (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(n.pending_checkpoint_sub_sequence_number, 0);
  l.pending_checkpoint = "x";
  EXPECT_EQ(normalize_lease(l).pending_checkpoint_sub_sequence_number, 3);

  EXPECT_TRUE(Ok(validate_lease(full_lease("k"))));
  Lease bad = full_lease("k");
  bad.owner_switches_since_checkpoint = -1;
  Status s = validate_lease(bad);
  EXPECT_TRUE(Fails(s, StatusCode::kInvalidArgument));
  EXPECT_NE(s.message().find("ownerSwitchesSinceCheckpoint"), std::string_view::npos);
  bad = full_lease("k");
  bad.child_shard_ids = {"ok", ""};
  EXPECT_TRUE(Fails(validate_lease(bad), StatusCode::kInvalidArgument));
}

// ---- The DynamoDB store's requests, on a fake transport -------------------------------------

using json = nlohmann::json;
using AV = AttributeValue;

class FakeDynamoDb : public shardline::testing::FakeDynamoDbTransport {
 public:
  FakeDynamoDb() {
    auto s = make_dynamodb_lease_store(shared_client(), "orders");
    if (s.ok()) store_ = std::move(s).value();
  }

  void condition_fails() {
    fail(detail::aws_error_status(
        400,
        R"({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",)"
        R"("message":"The conditional request failed"})",
        {}, "req-1"));
  }
  void throttled() {
    fail(detail::aws_error_status(
        400,
        R"({"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",)"
        R"("message":"slow down"})",
        {}, "req-2"));
  }

  LeaseStore& store() { return *store_; }

 private:
  std::unique_ptr<LeaseStore> store_;
};

// {"Attributes": item} as UpdateItem returns it with ALL_NEW.
std::string attributes_response(const Item& item) {
  return R"({"Attributes":)" + item_to_json(item) + "}";
}

// The expression `key` of a request with its "#name" placeholders replaced by the attribute
// names they stand for (value placeholders stay), to compare it with the KCL's rule.
std::string expand(const json& body, const std::string& key) {
  const std::string e = body.at(key).get<std::string>();
  std::string out;
  for (std::size_t i = 0; i < e.size();) {
    if (e[i] != '#') {
      out += e[i++];
      continue;
    }
    std::size_t end = i + 1;
    while (end < e.size() && (std::isalnum(static_cast<unsigned char>(e[end])) || e[end] == '_')) {
      ++end;
    }
    const std::string placeholder = e.substr(i, end - i);
    const json& names = body.at("ExpressionAttributeNames");
    out += names.contains(placeholder) ? names[placeholder].get<std::string>()
                                       : "<unknown " + placeholder + ">";
    i = end;
  }
  return out;
}

TEST(DynamoDbLeaseStoreRequests, CreateWritesTheKclItemConditionally) {
  FakeDynamoDb ddb;
  ddb.respond("{}");
  Lease l = full_lease("shardId-000000000001");
  ASSERT_TRUE(Wrote(ddb.store().create_lease_if_not_exists(l)));
  const json& body = ddb.last().body;
  EXPECT_EQ(ddb.last().operation, "PutItem");
  EXPECT_EQ(body["TableName"], "orders");
  EXPECT_EQ(expand(body, "ConditionExpression"), "attribute_not_exists(leaseKey)");
  auto item = item_from_json(body["Item"].dump());
  ASSERT_TRUE(item.ok()) << item.status().to_string();
  const Item expected{
      {"leaseKey", AV::string("shardId-000000000001")},
      {"leaseOwner", AV::string("worker-a")},
      {"leaseCounter", AV::number(7)},
      {"checkpoint", AV::string(kSeq1)},
      {"checkpointSubSequenceNumber", AV::number(3)},
      {"pendingCheckpoint", AV::string(kSeq2)},
      {"pendingCheckpointSubSequenceNumber", AV::number(1)},
      {"pendingCheckpointState", AV::binary(all_bytes())},
      {"ownerSwitchesSinceCheckpoint", AV::number(2)},
      {"parentShardId", AV::string_set({"shardId-000000000000", "shardId-000000000001"})},
      {"childShardIds", AV::string_set({"shardId-000000000004", "shardId-000000000005"})},
      {"startingHashKey", AV::string("85070591730234615865843651857942052864")},
      {"endingHashKey", AV::string("170141183460469231731687303715884105727")},
      {"checkpointOwner", AV::string("worker-old")},
  };
  EXPECT_EQ(*item, expected);

  // Empty sets, owner, checkpoint owner and pending fields are absent (DynamoDB rejects empty
  // sets; the KCL reads a missing owner as unowned).
  ddb.respond("{}");
  Lease bare;
  bare.lease_key = "shardId-000000000002";
  bare.checkpoint = "TRIM_HORIZON";
  ASSERT_TRUE(Wrote(ddb.store().create_lease_if_not_exists(bare)));
  auto bare_item = item_from_json(ddb.last().body["Item"].dump());
  ASSERT_TRUE(bare_item.ok());
  EXPECT_EQ(*bare_item, (Item{{"leaseKey", AV::string("shardId-000000000002")},
                              {"leaseCounter", AV::number(0)},
                              {"checkpoint", AV::string("TRIM_HORIZON")},
                              {"checkpointSubSequenceNumber", AV::number(0)},
                              {"ownerSwitchesSinceCheckpoint", AV::number(0)}}));

  ddb.condition_fails();
  EXPECT_TRUE(Refused(ddb.store().create_lease_if_not_exists(bare)));
}

TEST(DynamoDbLeaseStoreRequests, ConditionsFollowTheKclRules) {
  FakeDynamoDb ddb;
  Lease l = new_lease("shardId-000000000003");
  l.lease_owner = "worker-a";
  l.lease_counter = 41;
  struct Case {
    const char* what;
    std::function<Result<bool>(Lease&)> call;
    const char* condition;
    const char* update;
  };
  const std::vector<Case> cases = {
      {"renew", [&](Lease& x) { return ddb.store().renew_lease(x); },
       "leaseCounter = :counter AND attribute_not_exists(checkpointOwner)",
       "SET leaseCounter = :next"},
      {"take (same owner)", [&](Lease& x) { return ddb.store().take_lease(x, "worker-a"); },
       "leaseCounter = :counter",
       "SET leaseCounter = :next, leaseOwner = :newOwner REMOVE checkpointOwner"},
      {"take (unowned)",
       [&](Lease& x) {
         Lease unowned = x;
         unowned.lease_owner.clear();
         return ddb.store().take_lease(unowned, "worker-b");
       },
       "leaseCounter = :counter",
       "SET leaseCounter = :next, leaseOwner = :newOwner REMOVE checkpointOwner"},
      {"take (new owner)", [&](Lease& x) { return ddb.store().take_lease(x, "worker-b"); },
       "leaseCounter = :counter",
       "SET leaseCounter = :next, leaseOwner = :newOwner REMOVE checkpointOwner "
       "ADD ownerSwitchesSinceCheckpoint :one"},
      {"evict", [&](Lease& x) { return ddb.store().evict_lease(x); },
       "leaseCounter = :counter AND leaseOwner = :owner",
       "SET leaseCounter = :next REMOVE leaseOwner, checkpointOwner"},
      {"checkpoint", [&](Lease& x) { return ddb.store().update_checkpoint(x, kSeq1, 2); },
       "leaseCounter = :counter AND leaseOwner = :owner",
       "SET leaseCounter = :next, checkpoint = :checkpoint, checkpointSubSequenceNumber = :sub, "
       "ownerSwitchesSinceCheckpoint = :zero REMOVE pendingCheckpoint, "
       "pendingCheckpointSubSequenceNumber, pendingCheckpointState"},
      {"prepare",
       [&](Lease& x) { return ddb.store().prepare_checkpoint(x, kSeq2, 1, std::string("s")); },
       "leaseCounter = :counter AND leaseOwner = :owner",
       "SET leaseCounter = :next, pendingCheckpoint = :pending, "
       "pendingCheckpointSubSequenceNumber = :pendingSub, pendingCheckpointState = :state"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Lease copy = l;
    ddb.condition_fails();
    EXPECT_TRUE(Refused(c.call(copy)));
    EXPECT_EQ(copy, l);
    const json& body = ddb.last().body;
    EXPECT_EQ(ddb.last().operation, "UpdateItem");
    EXPECT_EQ(body["Key"], json::parse(R"({"leaseKey":{"S":"shardId-000000000003"}})"));
    EXPECT_EQ(expand(body, "ConditionExpression"), c.condition);
    EXPECT_EQ(expand(body, "UpdateExpression"), c.update);
    EXPECT_EQ(body["ReturnValues"], "ALL_NEW");
    EXPECT_EQ(body["ExpressionAttributeValues"][":counter"], json::parse(R"({"N":"41"})"));
    EXPECT_EQ(body["ExpressionAttributeValues"][":next"], json::parse(R"({"N":"42"})"));
  }

  // An unowned caller's copy requires the owner to be absent; a caller in a handoff renews
  // without the checkpointOwner condition.
  Lease unowned = l;
  unowned.lease_owner.clear();
  ddb.condition_fails();
  EXPECT_TRUE(Refused(ddb.store().evict_lease(unowned)));
  EXPECT_EQ(expand(ddb.last().body, "ConditionExpression"),
            "leaseCounter = :counter AND attribute_not_exists(leaseOwner)");
  Lease handoff = l;
  handoff.checkpoint_owner = "worker-old";
  ddb.condition_fails();
  EXPECT_TRUE(Refused(ddb.store().renew_lease(handoff)));
  EXPECT_EQ(expand(ddb.last().body, "ConditionExpression"), "leaseCounter = :counter");

  ddb.condition_fails();
  Lease meta;
  meta.lease_key = l.lease_key;
  meta.child_shard_ids = {"shardId-000000000009"};
  EXPECT_TRUE(Fails(ddb.store().update_lease_metadata(meta), StatusCode::kNotFound));
  EXPECT_EQ(expand(ddb.last().body, "ConditionExpression"), "attribute_exists(leaseKey)");
  EXPECT_EQ(expand(ddb.last().body, "UpdateExpression"), "SET childShardIds = :children");
  EXPECT_FALSE(ddb.last().body.contains("ReturnValues") &&
               ddb.last().body["ReturnValues"] != "NONE");
}

TEST(DynamoDbLeaseStoreRequests, TheCallersLeaseBecomesTheReturnedItem) {
  FakeDynamoDb ddb;
  Lease l = new_lease("shardId-000000000004");
  l.lease_counter = 9;
  // A KCL item: no ownerSwitchesSinceCheckpoint before the take, extra attributes, and
  // childShardIds recorded by someone else.
  ddb.respond(attributes_response({{"leaseKey", AV::string("shardId-000000000004")},
                                   {"leaseOwner", AV::string("worker-b")},
                                   {"leaseCounter", AV::number(10)},
                                   {"checkpoint", AV::string("TRIM_HORIZON")},
                                   {"checkpointSubSequenceNumber", AV::number(0)},
                                   {"ownerSwitchesSinceCheckpoint", AV::number(1)},
                                   {"parentShardId", AV::string_set({"shardId-000000000000"})},
                                   {"childShardIds", AV::string_set({"shardId-000000000007"})},
                                   {"throughputKBps", AV::number("1.5")},
                                   {"entityType", AV::string("LEASE")}}));
  ASSERT_TRUE(Wrote(ddb.store().take_lease(l, "worker-b")));
  Lease expected;
  expected.lease_key = "shardId-000000000004";
  expected.lease_owner = "worker-b";
  expected.lease_counter = 10;
  expected.checkpoint = "TRIM_HORIZON";
  expected.owner_switches_since_checkpoint = 1;
  expected.parent_shard_ids = {"shardId-000000000000"};
  expected.child_shard_ids = {"shardId-000000000007"};
  EXPECT_EQ(l, expected);

  // No item in the answer: the store applies the write to the caller's copy itself.
  ddb.respond("{}");
  ASSERT_TRUE(Wrote(ddb.store().renew_lease(l)));
  expected.lease_counter = 11;
  EXPECT_EQ(l, expected);
}

TEST(DynamoDbLeaseStoreRequests, ErrorsPassThroughWithTheTableNamed) {
  FakeDynamoDb ddb;
  Lease l = new_lease("shardId-000000000005");
  ddb.throttled();
  auto r = ddb.store().take_lease(l, "worker-a");
  EXPECT_TRUE(Fails(r.status(), StatusCode::kResourceExhausted));
  EXPECT_EQ(r.status().aws_error_code(), "ProvisionedThroughputExceededException");
  EXPECT_NE(r.status().message().find("dynamodb:orders"), std::string_view::npos)
      << r.status().to_string();
  EXPECT_EQ(l, new_lease("shardId-000000000005"));

  ddb.fail(Status::unavailable("connection reset"));
  EXPECT_TRUE(Fails(ddb.store().list_leases().status(), StatusCode::kUnavailable));
  // Another kAborted (not a failed condition) is an error, not false.
  ddb.fail(detail::aws_error_status(
      400, R"({"__type":"TransactionConflictException","message":"conflict"})", {}, "req-3"));
  EXPECT_TRUE(Fails(ddb.store().renew_lease(l).status(), StatusCode::kAborted));
}

TEST(DynamoDbLeaseStoreRequests, ListScansConsistentlyAcrossPagesAndSkipsOtherEntities) {
  FakeDynamoDb ddb;
  Item lease1{{"leaseKey", AV::string("shardId-000000000002")},
              {"leaseCounter", AV::number(3)},
              {"checkpoint", AV::string("LATEST")},
              {"checkpointSubSequenceNumber", AV::number(0)}};
  Item worker{{"leaseKey", AV::string("worker-1")},
              {"entityType", AV::string("WORKER_METRIC_STATS")},
              {"lut", AV::number(1700000000)}};
  Item lease0{{"leaseKey", AV::string("shardId-000000000001")},
              {"leaseCounter", AV::number(5)},
              {"leaseOwner", AV::string("w")},
              {"entityType", AV::string("LEASE")}};
  ddb.respond(R"({"Items":[)" + item_to_json(lease1) + "," + item_to_json(worker) +
              R"(],"Count":2,"ScannedCount":2,"LastEvaluatedKey":{"leaseKey":{"S":"worker-1"}}})");
  ddb.respond(R"({"Items":[)" + item_to_json(lease0) + R"(],"Count":1,"ScannedCount":1})");
  auto leases = ddb.store().list_leases();
  ASSERT_TRUE(leases.ok()) << leases.status().to_string();
  ASSERT_EQ(leases->size(), 2u);
  EXPECT_EQ((*leases)[0].lease_key, "shardId-000000000001");
  EXPECT_EQ((*leases)[0].lease_owner, "w");
  EXPECT_EQ((*leases)[1].lease_key, "shardId-000000000002");
  EXPECT_EQ((*leases)[1].checkpoint, "LATEST");
  ASSERT_EQ(ddb.calls().size(), 2u);
  for (const auto& c : ddb.calls()) {
    EXPECT_EQ(c.operation, "Scan");
    EXPECT_EQ(c.body["ConsistentRead"], true);
  }
  EXPECT_EQ(ddb.calls()[1].body["ExclusiveStartKey"],
            json::parse(R"({"leaseKey":{"S":"worker-1"}})"));

  // get_lease of a non-lease entity: no lease.
  ddb.respond(R"({"Item":)" + item_to_json(worker) + "}");
  auto got = ddb.store().get_lease("worker-1");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, std::nullopt);
  EXPECT_EQ(ddb.last().body["ConsistentRead"], true);
}

TEST(DynamoDbLeaseStoreRequests, MalformedItemsAreInternalErrorsNamingTheLease) {
  FakeDynamoDb ddb;
  const std::vector<Item> bad = {
      {{"leaseKey", AV::string("shardId-1")}, {"leaseCounter", AV::string("3")}},
      {{"leaseKey", AV::string("shardId-1")}},  // no leaseCounter
      {{"leaseKey", AV::string("shardId-1")},
       {"leaseCounter", AV::number(1)},
       {"parentShardId", AV::string("shardId-0")}},
      {{"leaseKey", AV::string("shardId-1")}, {"leaseCounter", AV::number("1.5")}},
      {{"leaseKey", AV::string("shardId-1")},
       {"leaseCounter", AV::number(1)},
       {"startingHashKey", AV::string("-1")},
       {"endingHashKey", AV::string("5")}},
  };
  for (const Item& item : bad) {
    SCOPED_TRACE(item_to_json(item));
    ddb.respond(R"({"Item":)" + item_to_json(item) + "}");
    auto got = ddb.store().get_lease("shardId-1");
    EXPECT_TRUE(Fails(got.status(), StatusCode::kInternal));
    EXPECT_NE(got.status().message().find("shardId-1"), std::string_view::npos)
        << got.status().to_string();
  }
  // Tolerated: NULL values and a single hash key end mean "absent".
  ddb.respond(R"({"Item":)" +
              item_to_json({{"leaseKey", AV::string("shardId-1")},
                            {"leaseCounter", AV::number(1)},
                            {"leaseOwner", AV::null()},
                            {"startingHashKey", AV::string("5")}}) +
              "}");
  auto got = ddb.store().get_lease("shardId-1");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->lease_owner, "");
  EXPECT_EQ((*got)->hash_key_range, std::nullopt);
}

TEST(DynamoDbLeaseStoreRequests, InitializeCreatesAnOnDemandTableOnce) {
  FakeDynamoDb ddb;
  ddb.fail(detail::aws_error_status(
      400, R"({"__type":"ResourceNotFoundException","message":"no table"})", {}, "r"));
  ddb.respond(R"({"TableDescription":{"TableName":"orders","TableStatus":"CREATING"}})");
  ddb.respond(R"({"Table":{"TableName":"orders","TableStatus":"ACTIVE",)"
              R"("KeySchema":[{"AttributeName":"leaseKey","KeyType":"HASH"}],)"
              R"("AttributeDefinitions":[{"AttributeName":"leaseKey","AttributeType":"S"}]}})");
  ASSERT_TRUE(Ok(ddb.store().initialize()));
  ASSERT_GE(ddb.calls().size(), 2u);
  const json& create = ddb.calls()[1].body;
  EXPECT_EQ(ddb.calls()[1].operation, "CreateTable");
  EXPECT_EQ(create["BillingMode"], "PAY_PER_REQUEST");
  EXPECT_EQ(create["KeySchema"], json::parse(R"([{"AttributeName":"leaseKey","KeyType":"HASH"}])"));
  EXPECT_EQ(create["AttributeDefinitions"],
            json::parse(R"([{"AttributeName":"leaseKey","AttributeType":"S"}])"));

  // A table with another key is not a lease table.
  FakeDynamoDb other;
  other.respond(R"({"Table":{"TableName":"orders","TableStatus":"ACTIVE",)"
                R"("KeySchema":[{"AttributeName":"id","KeyType":"HASH"}],)"
                R"("AttributeDefinitions":[{"AttributeName":"id","AttributeType":"S"}]}})");
  EXPECT_TRUE(Fails(other.store().initialize(), StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace shardline::lease_store_suite

#endif  // SHARDLINE_LEASE_STORE_SUITE_ONLY
