// Shard sync rules: which leases to create (the KCL's HierarchicalShardSyncer outcomes), child
// leases, cleanup of finished leases and hash-range hole detection.
#include "consumer/shard_sync.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace shardline::detail {
namespace {

using u128 = unsigned __int128;

u128 to_u128(const HashKey& k) { return (static_cast<u128>(k.hi()) << 64) | k.lo(); }
HashKey from_u128(u128 v) {
  return HashKey(static_cast<std::uint64_t>(v >> 64), static_cast<std::uint64_t>(v));
}

std::string sid(int n) {
  std::string d = std::to_string(n);
  return "shardId-" + std::string(12 - d.size(), '0') + d;
}

Shard make_shard(int n, HashKeyRange range, std::vector<int> parents, bool open) {
  Shard s;
  s.shard_id = sid(n);
  if (!parents.empty()) s.parent_shard_id = sid(parents[0]);
  if (parents.size() > 1) s.adjacent_parent_shard_id = sid(parents[1]);
  s.hash_key_range = range;
  s.starting_sequence_number = "4959" + std::to_string(100 + n);
  if (!open) s.ending_sequence_number = "4959" + std::to_string(900 + n);
  return s;
}

Lease make_lease(int n, std::string checkpoint, std::vector<int> parents = {}) {
  Lease l;
  l.lease_key = sid(n);
  l.checkpoint = std::move(checkpoint);
  for (int p : parents) l.parent_shard_ids.push_back(sid(p));
  return l;
}

// The stream of the KCL's HierarchicalShardSyncer comment and docs/lease-lifecycle.md:
//
//   0 1 2 3 4   5    shards until epoch 102
//   \ / \ / |   |
//    6   7  4   5    shards from epoch 103 to 205
//     \ /   |  / \
//      8    4 9  10  shards from epoch 206 (open)
//
// 6 = merge(0, 1), 7 = merge(2, 3), 8 = merge(6, 7), 4 unchanged, 9 and 10 = split(5).
std::vector<Shard> kcl_example_shards() {
  std::vector<HashKeyRange> r;
  for (std::uint32_t i = 0; i < 6; ++i) r.push_back(even_split_range(i, 6));
  const u128 mid5 = to_u128(r[5].start) + (to_u128(r[5].end) - to_u128(r[5].start)) / 2;
  std::vector<Shard> s;
  for (int i = 0; i < 6; ++i) s.push_back(make_shard(i, r[i], {}, i == 4));
  s.push_back(make_shard(6, {r[0].start, r[1].end}, {0, 1}, false));
  s.push_back(make_shard(7, {r[2].start, r[3].end}, {2, 3}, false));
  s.push_back(make_shard(8, {r[0].start, r[3].end}, {6, 7}, true));
  s.push_back(make_shard(9, {r[5].start, from_u128(mid5)}, {5}, true));
  s.push_back(make_shard(10, {from_u128(mid5 + 1), r[5].end}, {5}, true));
  return s;
}

// Existing leases of the KCL's example: (4, 5, 7), all started.
std::vector<Lease> kcl_example_leases() {
  return {make_lease(4, "49590001"), make_lease(5, "49590002"), make_lease(7, "49590003", {2, 3})};
}

std::map<std::string, std::string> checkpoints_by_key(const std::vector<Lease>& leases) {
  std::map<std::string, std::string> m;
  for (const Lease& l : leases) m[l.lease_key] = l.checkpoint;
  return m;
}

std::map<std::string, std::string> expect_map(std::vector<std::pair<int, std::string_view>> v) {
  std::map<std::string, std::string> m;
  for (const auto& [n, c] : v) m[sid(n)] = std::string(c);
  return m;
}

// Every lease comes after the created leases of its parents (a crash between two creates
// never leaves a child without the parent lease it must wait for).
void expect_parents_first(const std::vector<Lease>& out) {
  std::map<std::string, std::size_t> pos;
  for (std::size_t i = 0; i < out.size(); ++i) pos[out[i].lease_key] = i;
  EXPECT_EQ(pos.size(), out.size()) << "a lease is planned twice";
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (const std::string& p : out[i].parent_shard_ids) {
      auto it = pos.find(p);
      if (it != pos.end()) {
        EXPECT_LT(it->second, i) << "parent " << p << " after child " << out[i].lease_key;
      }
    }
  }
}

// Created leases carry the shard's parents and hash range.
void expect_shard_metadata(const std::vector<Lease>& out, const std::vector<Shard>& shards) {
  for (const Lease& l : out) {
    auto it = std::find_if(shards.begin(), shards.end(),
                           [&](const Shard& s) { return s.shard_id == l.lease_key; });
    ASSERT_NE(it, shards.end()) << l.lease_key;
    std::vector<std::string> parents;
    if (!it->parent_shard_id.empty()) parents.push_back(it->parent_shard_id);
    if (!it->adjacent_parent_shard_id.empty()) parents.push_back(it->adjacent_parent_shard_id);
    std::sort(parents.begin(), parents.end());
    EXPECT_EQ(l.parent_shard_ids, parents) << l.lease_key;
    ASSERT_TRUE(l.hash_key_range.has_value()) << l.lease_key;
    EXPECT_EQ(*l.hash_key_range, it->hash_key_range) << l.lease_key;
    EXPECT_TRUE(l.lease_owner.empty());
    EXPECT_EQ(l.lease_counter, 0);
  }
}

// The shards a consumer starting at TRIM_HORIZON / AT_TIMESTAMP must read: every shard that is
// not an ancestor of a leased shard (those were read by whoever checkpointed the lease).
// Each must have a lease (existing or created), so no records are skipped.
void expect_nothing_skipped(const std::vector<Shard>& shards, const std::vector<Lease>& existing,
                            const std::vector<Lease>& created) {
  std::map<std::string, const Shard*> by_id;
  for (const Shard& s : shards) by_id[s.shard_id] = &s;
  std::set<std::string> leased;
  for (const Lease& l : existing) leased.insert(l.lease_key);
  std::set<std::string> read_before;  // strict ancestors of leased shards
  std::vector<std::string> todo(leased.begin(), leased.end());
  while (!todo.empty()) {
    std::string id = todo.back();
    todo.pop_back();
    auto it = by_id.find(id);
    if (it == by_id.end()) continue;
    for (const std::string& p :
         {it->second->parent_shard_id, it->second->adjacent_parent_shard_id}) {
      if (!p.empty() && read_before.insert(p).second) todo.push_back(p);
    }
  }
  for (const Lease& l : created) leased.insert(l.lease_key);
  for (const Shard& s : shards) {
    if (read_before.count(s.shard_id) != 0) continue;
    EXPECT_EQ(leased.count(s.shard_id), 1U) << s.shard_id << " would never be read";
  }
}

// ---- leases_to_create: the KCL's worked example ---------------------------------------------
//
// The KCL (HierarchicalShardSyncer, NonEmptyLeaseTableSynchronizer) creates leases only for
// the oldest un-leased level of each open shard's ancestry and leaves the descendants to the
// SHARD_END child-lease creation. shardline also creates the descendants between those and the
// open shards up front, at TRIM_HORIZON (AT_TIMESTAMP at that initial position), parents first.
// That is a superset of the KCL's leases with the same checkpoints for the KCL's ones: every
// extra lease names its parents, so it waits (WAITING_ON_PARENT_SHARDS) until they reach
// SHARD_END, exactly as the child lease the KCL would create at SHARD_END. The records read
// are the same.

void expect_kcl_subset(const std::map<std::string, std::string>& ours,
                       const std::map<std::string, std::string>& kcl) {
  for (const auto& [key, checkpoint] : kcl) {
    auto it = ours.find(key);
    ASSERT_NE(it, ours.end()) << "the KCL creates a lease for " << key;
    EXPECT_EQ(it->second, checkpoint) << key;
  }
}

TEST(LeasesToCreate, KclExampleLatest) {
  auto shards = kcl_example_shards();
  auto existing = kcl_example_leases();
  auto out = leases_to_create(shards, existing, InitialPosition{"LATEST"});
  auto got = checkpoints_by_key(out);
  // KCL: (6) at LATEST. 6's branch was never read, so it starts at the tip; its lease makes
  // 8 wait for it.
  expect_kcl_subset(got, expect_map({{6, "LATEST"}}));
  // shardline: also 8 (after 6 and 7) and 9, 10 (after 5), which the KCL creates at SHARD_END.
  EXPECT_EQ(
      got,
      expect_map({{6, "LATEST"}, {8, "TRIM_HORIZON"}, {9, "TRIM_HORIZON"}, {10, "TRIM_HORIZON"}}));
  expect_parents_first(out);
  expect_shard_metadata(out, shards);
}

TEST(LeasesToCreate, KclExampleTrimHorizon) {
  auto shards = kcl_example_shards();
  auto existing = kcl_example_leases();
  auto out = leases_to_create(shards, existing, InitialPosition{"TRIM_HORIZON"});
  auto got = checkpoints_by_key(out);
  // KCL: (0, 1) at TRIM_HORIZON: 6's branch is read from its oldest shards.
  expect_kcl_subset(got, expect_map({{0, "TRIM_HORIZON"}, {1, "TRIM_HORIZON"}}));
  EXPECT_EQ(got, expect_map({{0, "TRIM_HORIZON"},
                             {1, "TRIM_HORIZON"},
                             {6, "TRIM_HORIZON"},
                             {8, "TRIM_HORIZON"},
                             {9, "TRIM_HORIZON"},
                             {10, "TRIM_HORIZON"}}));
  EXPECT_EQ(got.count(sid(2)), 0U) << "2 and 3 were read before 7's lease";
  expect_parents_first(out);
  expect_shard_metadata(out, shards);
  expect_nothing_skipped(shards, existing, out);
}

TEST(LeasesToCreate, KclExampleAtTimestamp) {
  auto shards = kcl_example_shards();
  auto existing = kcl_example_leases();
  auto out = leases_to_create(shards, existing, InitialPosition{"AT_TIMESTAMP"});
  auto got = checkpoints_by_key(out);
  // KCL: (0, 1) at AT_TIMESTAMP.
  expect_kcl_subset(got, expect_map({{0, "AT_TIMESTAMP"}, {1, "AT_TIMESTAMP"}}));
  EXPECT_EQ(got, expect_map({{0, "AT_TIMESTAMP"},
                             {1, "AT_TIMESTAMP"},
                             {6, "AT_TIMESTAMP"},
                             {8, "AT_TIMESTAMP"},
                             {9, "AT_TIMESTAMP"},
                             {10, "AT_TIMESTAMP"}}));
  expect_parents_first(out);
  expect_shard_metadata(out, shards);
  expect_nothing_skipped(shards, existing, out);
}

TEST(LeasesToCreate, OpenShardWithoutLeasedAncestorInANonEmptyTable) {
  // 0 (closed) -> 1 (open), and an unrelated leased shard 2. Nothing of 0/1 is leased.
  std::vector<Shard> shards = {make_shard(0, even_split_range(0, 2), {}, false),
                               make_shard(1, even_split_range(0, 2), {0}, true),
                               make_shard(2, even_split_range(1, 2), {}, true)};
  std::vector<Lease> existing = {make_lease(2, "49590001")};
  // KCL: TRIM_HORIZON creates 0 (1 follows at SHARD_END); shardline creates 0 and 1.
  auto trim = leases_to_create(shards, existing, InitialPosition{"TRIM_HORIZON"});
  EXPECT_EQ(checkpoints_by_key(trim), expect_map({{0, "TRIM_HORIZON"}, {1, "TRIM_HORIZON"}}));
  expect_parents_first(trim);
  expect_nothing_skipped(shards, existing, trim);
  // KCL and shardline: LATEST creates 1 at LATEST only.
  auto latest = leases_to_create(shards, existing, InitialPosition{"LATEST"});
  EXPECT_EQ(checkpoints_by_key(latest), expect_map({{1, "LATEST"}}));
}

TEST(LeasesToCreate, DescendantsOfALeasedShardStartAtTrimHorizonWhateverTheInitialPosition) {
  // Leased 0 -> 1 (closed, no lease) -> 2 (open): 1 and 2 must not skip anything after 0.
  std::vector<Shard> shards = {make_shard(0, {}, {}, false), make_shard(1, {}, {0}, false),
                               make_shard(2, {}, {1}, true)};
  std::vector<Lease> existing = {make_lease(0, "49590001")};
  for (const char* initial : {"LATEST", "TRIM_HORIZON"}) {
    auto out = leases_to_create(shards, existing, InitialPosition{initial});
    EXPECT_EQ(checkpoints_by_key(out), expect_map({{1, "TRIM_HORIZON"}, {2, "TRIM_HORIZON"}}))
        << initial;
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].lease_key, sid(1));
    EXPECT_EQ(out[1].parent_shard_ids, std::vector<std::string>{sid(1)});
  }
  auto at = leases_to_create(shards, existing, InitialPosition{"AT_TIMESTAMP"});
  EXPECT_EQ(checkpoints_by_key(at), expect_map({{1, "AT_TIMESTAMP"}, {2, "AT_TIMESTAMP"}}));
}

TEST(LeasesToCreate, NothingWhenEveryOpenShardIsLeased) {
  auto shards = kcl_example_shards();
  std::vector<Lease> existing = {make_lease(4, "1"), make_lease(8, "2", {6, 7}),
                                 make_lease(9, "3", {5}), make_lease(10, "4", {5})};
  for (const char* initial : {"LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"}) {
    EXPECT_TRUE(leases_to_create(shards, existing, InitialPosition{initial}).empty()) << initial;
  }
}

// ---- leases_to_create: empty table ------------------------------------------------------------

TEST(LeasesToCreate, EmptyTableTrimHorizonAndAtTimestampLeaseEveryShard) {
  auto shards = kcl_example_shards();
  // Children listed before their parents: the output must still put parents first.
  std::reverse(shards.begin(), shards.end());
  for (const char* initial : {"TRIM_HORIZON", "AT_TIMESTAMP"}) {
    auto out = leases_to_create(shards, {}, InitialPosition{initial});
    ASSERT_EQ(out.size(), shards.size()) << initial;
    for (const Lease& l : out) EXPECT_EQ(l.checkpoint, initial) << l.lease_key;
    expect_parents_first(out);
    expect_shard_metadata(out, shards);
    expect_nothing_skipped(shards, {}, out);
  }
}

TEST(LeasesToCreate, EmptyTableLatestLeasesTheOpenShards) {
  auto shards = kcl_example_shards();
  auto out = leases_to_create(shards, {}, InitialPosition{"LATEST"});
  EXPECT_EQ(checkpoints_by_key(out),
            expect_map({{4, "LATEST"}, {8, "LATEST"}, {9, "LATEST"}, {10, "LATEST"}}));
  expect_shard_metadata(out, shards);
}

TEST(LeasesToCreate, EmptyStreamAndEmptyTable) {
  EXPECT_TRUE(leases_to_create({}, {}, InitialPosition{"TRIM_HORIZON"}).empty());
  EXPECT_TRUE(leases_to_create({}, {}, InitialPosition{"LATEST"}).empty());
}

// ---- child leases ----------------------------------------------------------------------------

TEST(ChildLease, StartsAtTrimHorizonWithItsParentsAndRange) {
  ChildShard c{sid(8), {sid(7), sid(6)}, even_split_range(1, 4)};
  Lease l = child_lease(c);
  EXPECT_EQ(l.lease_key, sid(8));
  EXPECT_EQ(l.checkpoint, "TRIM_HORIZON");
  EXPECT_EQ(l.parent_shard_ids, (std::vector<std::string>{sid(6), sid(7)}));  // sorted
  ASSERT_TRUE(l.hash_key_range.has_value());
  EXPECT_EQ(*l.hash_key_range, even_split_range(1, 4));
  EXPECT_TRUE(l.lease_owner.empty());
  EXPECT_TRUE(l.child_shard_ids.empty());
}

TEST(ChildrenIn, FindsSplitAndMergeChildren) {
  auto shards = kcl_example_shards();
  auto ids = [](const std::vector<ChildShard>& v) {
    std::vector<std::string> out;
    for (const auto& c : v) out.push_back(c.shard_id);
    std::sort(out.begin(), out.end());
    return out;
  };
  // Split: 5 -> 9, 10.
  auto split = children_in(shards, sid(5));
  EXPECT_EQ(ids(split), (std::vector<std::string>{sid(9), sid(10)}));
  for (const auto& c : split) EXPECT_EQ(c.parent_shards, std::vector<std::string>{sid(5)});
  // Merge: 6 and 7 -> 8, found through the parent and the adjacent parent, with both parents.
  for (int p : {6, 7}) {
    auto merged = children_in(shards, sid(p));
    ASSERT_EQ(ids(merged), std::vector<std::string>{sid(8)}) << p;
    EXPECT_EQ(merged[0].parent_shards, (std::vector<std::string>{sid(6), sid(7)}));
    EXPECT_EQ(merged[0].hash_key_range, shards[8].hash_key_range);
  }
  EXPECT_TRUE(children_in(shards, sid(4)).empty());
  EXPECT_TRUE(children_in(shards, sid(8)).empty());
  EXPECT_TRUE(children_in(shards, "shardId-unknown").empty());
}

// ---- cleanup -----------------------------------------------------------------------------------

Lease finished_lease(int n, std::vector<int> children, std::vector<int> parents = {}) {
  Lease l = make_lease(n, "SHARD_END", parents);
  for (int c : children) l.child_shard_ids.push_back(sid(c));
  return l;
}

TEST(LeasesToCleanUp, NeedsEveryChildStartedAndOwnParentsGone) {
  // 5 split into 9 and 10, both started: 5 goes.
  EXPECT_EQ(leases_to_clean_up({finished_lease(5, {9, 10}), make_lease(9, "49590001", {5}),
                                make_lease(10, "LATEST", {5})},
                               {}),
            std::vector<std::string>{sid(5)});
  // A child that has not checkpointed yet keeps the parent.
  for (const char* unstarted : {"TRIM_HORIZON", "AT_TIMESTAMP"}) {
    EXPECT_TRUE(leases_to_clean_up({finished_lease(5, {9, 10}), make_lease(9, "49590001", {5}),
                                    make_lease(10, unstarted, {5})},
                                   {})
                    .empty())
        << unstarted;
  }
  // A child without a lease keeps the parent.
  EXPECT_TRUE(
      leases_to_clean_up({finished_lease(5, {9, 10}), make_lease(9, "49590001", {5})}, {}).empty());
  // Not finished: kept.
  EXPECT_TRUE(leases_to_clean_up({make_lease(5, "49590009"), make_lease(9, "49590001", {5}),
                                  make_lease(10, "49590002", {5})},
                                 {})
                  .empty());
}

TEST(LeasesToCleanUp, WaitsUntilItsOwnParentsAreDeleted) {
  // 0 -> 6 -> 8: 0 and 6 finished, 8 started. Only 0 goes now (6's parent 0 still exists);
  // 6 goes in the next round.
  std::vector<Lease> leases = {finished_lease(0, {6}), finished_lease(6, {8}, {0}),
                               make_lease(8, "49590001", {6})};
  EXPECT_EQ(leases_to_clean_up(leases, {}), std::vector<std::string>{sid(0)});
  leases.erase(leases.begin());
  EXPECT_EQ(leases_to_clean_up(leases, {}), std::vector<std::string>{sid(6)});
}

TEST(LeasesToCleanUp, ChildrenFromTheShardListWhenNoneAreRecorded) {
  auto shards = kcl_example_shards();
  std::vector<Lease> leases = {finished_lease(5, {}), make_lease(9, "49590001", {5}),
                               make_lease(10, "49590002", {5})};
  EXPECT_EQ(leases_to_clean_up(leases, shards), std::vector<std::string>{sid(5)});
  // Without a shard list the children are unknown: keep the lease.
  EXPECT_TRUE(leases_to_clean_up(leases, {}).empty());
  // With the list, an unstarted child still keeps it.
  leases[2].checkpoint = "TRIM_HORIZON";
  EXPECT_TRUE(leases_to_clean_up(leases, shards).empty());
}

// ---- hash-range holes -----------------------------------------------------------------------

Lease ranged(int n, HashKeyRange r, std::string checkpoint = "49590001") {
  Lease l = make_lease(n, std::move(checkpoint));
  l.hash_key_range = r;
  return l;
}

TEST(HashRangeHole, CoveredRangesHaveNoHole) {
  EXPECT_FALSE(has_hash_range_hole({ranged(0, HashKeyRange{})}));
  EXPECT_FALSE(
      has_hash_range_hole({ranged(1, even_split_range(1, 2)), ranged(0, even_split_range(0, 2))}));
  std::vector<Lease> five;
  for (std::uint32_t i = 0; i < 5; ++i)
    five.push_back(ranged(static_cast<int>(i), even_split_range(i, 5)));
  EXPECT_FALSE(has_hash_range_hole(five));
  // Adjacent across the 64-bit boundary (the carry into the high word).
  EXPECT_FALSE(has_hash_range_hole(
      {ranged(0, {HashKey(0, 0), HashKey(0, ~0ULL)}), ranged(1, {HashKey(1, 0), HashKey::max()})}));
  // Nothing to judge: no leases, or none with a range.
  EXPECT_FALSE(has_hash_range_hole({}));
  EXPECT_FALSE(has_hash_range_hole({make_lease(0, "49590001")}));
}

TEST(HashRangeHole, GapMissingStartMissingEnd) {
  auto a = even_split_range(0, 3), b = even_split_range(1, 3), c = even_split_range(2, 3);
  EXPECT_TRUE(has_hash_range_hole({ranged(0, a), ranged(2, c)}));  // gap
  EXPECT_TRUE(has_hash_range_hole({ranged(1, b), ranged(2, c)}));  // missing start
  EXPECT_TRUE(has_hash_range_hole({ranged(0, a), ranged(1, b)}));  // missing end
  // A gap of a single key.
  EXPECT_TRUE(has_hash_range_hole(
      {ranged(0, {HashKey(0, 0), HashKey(0, 99)}), ranged(1, {HashKey(0, 101), HashKey::max()})}));
  EXPECT_FALSE(has_hash_range_hole(
      {ranged(0, {HashKey(0, 0), HashKey(0, 99)}), ranged(1, {HashKey(0, 100), HashKey::max()})}));
  // Ends one short of the maximum.
  EXPECT_TRUE(has_hash_range_hole({ranged(0, {HashKey(), HashKey(~0ULL, ~0ULL - 1)})}));
}

TEST(HashRangeHole, OverlappingParentAndChildrenAndFinishedLeases) {
  auto lower = even_split_range(0, 2), upper = even_split_range(1, 2);
  // A parent still being read and its two children: overlapping, no hole.
  EXPECT_FALSE(has_hash_range_hole({ranged(0, HashKeyRange{}), ranged(1, lower, "TRIM_HORIZON"),
                                    ranged(2, upper, "TRIM_HORIZON")}));
  // Children overlapping each other inside a parent's range.
  EXPECT_FALSE(has_hash_range_hole({ranged(0, {HashKey(), HashKey(5, 0)}),
                                    ranged(1, {HashKey(1, 0), HashKey(9, 0)}),
                                    ranged(2, {HashKey(9, 1), HashKey::max()})}));
  // SHARD_END leases do not count: their range is covered only if their children are leased.
  EXPECT_TRUE(has_hash_range_hole(
      {ranged(0, HashKeyRange{}, "SHARD_END"), ranged(1, lower, "TRIM_HORIZON")}));
  EXPECT_FALSE(has_hash_range_hole({ranged(0, HashKeyRange{}, "SHARD_END"),
                                    ranged(1, lower, "TRIM_HORIZON"), ranged(2, upper)}));
}

}  // namespace
}  // namespace shardline::detail
