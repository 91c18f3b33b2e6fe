// Shard discovery for a worker: which leases to create, parent/child bookkeeping, cleanup of
// finished leases and hash-range hole detection. Pure functions over a shard list and a lease
// list plus the lease store's writes, so the rules are unit-tested without a stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shardline/kinesis.h"
#include "shardline/lease_store.h"

namespace shardline::detail {

/// Where leases of a new application start.
struct InitialPosition {
  std::string sentinel = std::string(kCheckpointLatest);  // TRIM_HORIZON, LATEST or AT_TIMESTAMP
};

/// The leases to create so that every shard is covered, following the KCL's rules:
///  - empty table: TRIM_HORIZON / AT_TIMESTAMP → every shard listed (children wait for their
///    parents); LATEST → every open shard;
///  - otherwise, for every open shard without a lease: if some ancestor has a lease, leases for
///    the un-leased shards between that ancestor and it (at TRIM_HORIZON, or AT_TIMESTAMP when
///    that is the initial position) so nothing between them is skipped; an un-leased branch
///    without a leased ancestor (the shard itself, or a parent merged with a leased sibling)
///    starts at the initial position: LATEST → a lease for its newest shard; TRIM_HORIZON /
///    AT_TIMESTAMP → leases for all its shards, oldest first, as the KCL reads it from its
///    oldest shards.
/// Created leases carry parent ids and the hash range. Sorted parents first.
std::vector<Lease> leases_to_create(const std::vector<Shard>& shards,
                                    const std::vector<Lease>& leases,
                                    const InitialPosition& initial);

/// The lease of a child shard discovered at the end of its parent (TRIM_HORIZON, as the KCL).
Lease child_lease(const ChildShard& child);

/// The children of `parent_id` in a shard list (shards naming it as parent or adjacent parent).
std::vector<ChildShard> children_in(const std::vector<Shard>& shards, const std::string& parent_id);

/// Finished leases that may be deleted now: checkpoint SHARD_END, every child (from
/// childShardIds, or the shard list when the lease has none recorded) has a lease whose
/// checkpoint is past TRIM_HORIZON/AT_TIMESTAMP, and none of its own parents has a lease.
/// `shards` may be empty (then only childShardIds are used).
std::vector<std::string> leases_to_clean_up(const std::vector<Lease>& leases,
                                            const std::vector<Shard>& shards);

/// True when the unfinished leases' hash ranges do not cover 0..2^128-1 without gaps (leases
/// without a hash range are ignored; with none at all there is no hole to report).
bool has_hash_range_hole(const std::vector<Lease>& leases);

}  // namespace shardline::detail
