#include "consumer/shard_sync.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace shardline::detail {
namespace {

std::vector<std::string> parents_of(const Shard& s) {
  std::vector<std::string> p;
  if (!s.parent_shard_id.empty()) p.push_back(s.parent_shard_id);
  if (!s.adjacent_parent_shard_id.empty()) p.push_back(s.adjacent_parent_shard_id);
  return p;
}

Lease lease_for(const Shard& s, std::string checkpoint) {
  Lease l;
  l.lease_key = s.shard_id;
  l.checkpoint = std::move(checkpoint);
  l.parent_shard_ids = parents_of(s);
  l.hash_key_range = s.hash_key_range;
  return normalize_lease(std::move(l));
}

bool started(const Lease& l) {
  return l.checkpoint != kCheckpointTrimHorizon && l.checkpoint != kCheckpointAtTimestamp;
}

}  // namespace

std::vector<Lease> leases_to_create(const std::vector<Shard>& shards,
                                    const std::vector<Lease>& leases,
                                    const InitialPosition& initial) {
  std::map<std::string, const Shard*> by_id;
  for (const Shard& s : shards) by_id.emplace(s.shard_id, &s);
  std::set<std::string> leased;
  for (const Lease& l : leases) leased.insert(l.lease_key);

  std::vector<Lease> out;
  std::set<std::string> planned;
  auto plan = [&](const Shard& s, const std::string& checkpoint) {
    if (leased.count(s.shard_id) != 0 || !planned.insert(s.shard_id).second) return;
    out.push_back(lease_for(s, checkpoint));
  };

  if (leases.empty()) {
    for (const Shard& s : shards) {
      if (initial.sentinel == kCheckpointLatest && !s.is_open()) continue;
      plan(s, initial.sentinel);
    }
  } else {
    // Memoized: does some ancestor (through listed shards) have a lease?
    std::map<std::string, bool> memo;
    std::function<bool(const std::string&)> leased_ancestor = [&](const std::string& id) {
      if (auto it = memo.find(id); it != memo.end()) return it->second;
      memo[id] = false;  // cycle guard
      bool r = false;
      auto it = by_id.find(id);
      if (it != by_id.end()) {
        for (const std::string& p : parents_of(*it->second)) {
          if (leased.count(p) != 0 || leased_ancestor(p)) r = true;
        }
      }
      memo[id] = r;
      return r;
    };
    const std::string descendant_start = initial.sentinel == kCheckpointAtTimestamp
                                             ? std::string(kCheckpointAtTimestamp)
                                             : std::string(kCheckpointTrimHorizon);
    // A branch without any leased ancestor starts at the initial position. At TRIM_HORIZON or
    // AT_TIMESTAMP that means from its oldest listed shards (the KCL creates those), so every
    // un-leased shard of the branch gets a lease; at LATEST only the shard itself.
    std::function<void(const Shard&)> branch = [&](const Shard& s) {
      if (initial.sentinel != kCheckpointLatest) {
        for (const std::string& p : parents_of(s)) {
          auto it = by_id.find(p);
          if (it != by_id.end() && leased.count(p) == 0) branch(*it->second);
        }
      }
      plan(s, initial.sentinel);
    };
    std::function<void(const Shard&)> chain = [&](const Shard& s) {
      for (const std::string& p : parents_of(s)) {
        auto it = by_id.find(p);
        if (it == by_id.end() || leased.count(p) != 0) continue;
        // A parent on the way to a leased ancestor: nothing after that ancestor is skipped.
        // A parent without one (the KCL's example: 6, merged with the leased 7 into 8): it
        // needs a lease too, or the child would not wait for it and its records would be lost.
        if (leased_ancestor(p)) {
          chain(*it->second);
        } else {
          branch(*it->second);
        }
      }
      plan(s, descendant_start);
    };
    for (const Shard& s : shards) {
      if (!s.is_open() || leased.count(s.shard_id) != 0) continue;
      if (leased_ancestor(s.shard_id)) {
        chain(s);
      } else {
        branch(s);
      }
    }
  }
  // Parents before children: a crash between two creates never leaves a child without the
  // parent it must wait for.
  std::vector<Lease> sorted;
  std::set<std::string> placed;
  std::function<void(const Lease&)> place = [&](const Lease& l) {
    if (!placed.insert(l.lease_key).second) return;
    for (const std::string& p : l.parent_shard_ids) {
      auto it =
          std::find_if(out.begin(), out.end(), [&](const Lease& x) { return x.lease_key == p; });
      if (it != out.end()) place(*it);
    }
    sorted.push_back(l);
  };
  for (const Lease& l : out) place(l);
  return sorted;
}

Lease child_lease(const ChildShard& child) {
  Lease l;
  l.lease_key = child.shard_id;
  l.checkpoint = std::string(kCheckpointTrimHorizon);
  l.parent_shard_ids = child.parent_shards;
  l.hash_key_range = child.hash_key_range;
  return normalize_lease(std::move(l));
}

std::vector<ChildShard> children_in(const std::vector<Shard>& shards,
                                    const std::string& parent_id) {
  std::vector<ChildShard> out;
  for (const Shard& s : shards) {
    auto parents = parents_of(s);
    if (std::find(parents.begin(), parents.end(), parent_id) == parents.end()) continue;
    out.push_back({s.shard_id, parents, s.hash_key_range});
  }
  return out;
}

std::vector<std::string> leases_to_clean_up(const std::vector<Lease>& leases,
                                            const std::vector<Shard>& shards) {
  std::map<std::string, const Lease*> by_key;
  for (const Lease& l : leases) by_key.emplace(l.lease_key, &l);
  std::vector<std::string> out;
  for (const Lease& l : leases) {
    if (l.checkpoint != kCheckpointShardEnd) continue;
    bool parents_gone = std::none_of(l.parent_shard_ids.begin(), l.parent_shard_ids.end(),
                                     [&](const std::string& p) { return by_key.count(p) != 0; });
    if (!parents_gone) continue;
    std::vector<std::string> children = l.child_shard_ids;
    if (children.empty()) {
      for (const ChildShard& c : children_in(shards, l.lease_key)) children.push_back(c.shard_id);
    }
    if (children.empty()) continue;  // unknown children: keep the lease
    bool children_started = std::all_of(children.begin(), children.end(), [&](const auto& c) {
      auto it = by_key.find(c);
      return it != by_key.end() && started(*it->second);
    });
    if (children_started) out.push_back(l.lease_key);
  }
  return out;
}

bool has_hash_range_hole(const std::vector<Lease>& leases) {
  std::vector<HashKeyRange> ranges;
  for (const Lease& l : leases) {
    if (l.checkpoint != kCheckpointShardEnd && l.hash_key_range)
      ranges.push_back(*l.hash_key_range);
  }
  if (ranges.empty()) return false;
  std::sort(ranges.begin(), ranges.end(),
            [](const HashKeyRange& a, const HashKeyRange& b) { return a.start < b.start; });
  if (ranges.front().start != HashKey{}) return true;
  HashKey covered_to = ranges.front().end;
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (covered_to == HashKey::max()) break;
    HashKey next = covered_to.lo() == ~0ULL ? HashKey(covered_to.hi() + 1, 0)
                                            : HashKey(covered_to.hi(), covered_to.lo() + 1);
    if (ranges[i].start > next) return true;
    if (ranges[i].end > covered_to) covered_to = ranges[i].end;
  }
  return covered_to != HashKey::max();
}

}  // namespace shardline::detail
