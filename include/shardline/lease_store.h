// File: shardline/lease_store.h
//
// Leases and checkpoints of a consumer application: one lease per shard, owned by at most one
// worker, fenced by a counter. Two stores share this interface:
//  - DynamoDB, with the KCL 2.x lease table schema and attribute names, so a shardline worker
//    can take over a Java KCL application's table and the reverse;
//  - SQLite, the embedded default for one host (several worker processes may share the file).
//
//   auto store = shardline::make_sqlite_lease_store("orders.leases.db", "orders");
//   SHARDLINE_RETURN_IF_ERROR((*store)->initialize());
//   shardline::Lease l{.lease_key = "shardId-000000000000", .checkpoint = "TRIM_HORIZON"};
//   auto created = (*store)->create_lease_if_not_exists(l);   // false: it existed
//   auto took = (*store)->take_lease(l, "worker-1");           // false: someone moved first
//
// Every write but create/metadata/delete is conditional on the lease counter the caller last
// saw (`Lease::lease_counter`); on success the store bumps the counter and updates the caller's
// Lease to what was written. A failed condition is `false` (the lease was lost or changed),
// not an error. Errors: kResourceExhausted (throttled: retry later), kUnavailable (the store
// cannot be reached), kNotFound (the table does not exist), kInternal (a malformed item),
// kInvalidArgument (a lease or argument no store can hold, see validate_lease()), kOutOfRange
// (a caller's counter that is negative or cannot be incremented).
// Implementations are thread-safe.
//
// On failure (false or an error) the caller's Lease is left unchanged. The conditions that name
// the owner compare the stored leaseOwner with the caller's `lease_owner`; "" means "unowned"
// (the attribute is absent). Parent and child shard ids are sets: stores return them sorted
// without duplicates (normalize_lease()).
//
// DynamoDB items (KCL 2.x names and types; absent attributes are read as empty/0/none):
//   leaseKey S, leaseOwner S (absent = unowned), leaseCounter N, checkpoint S (absent = ""),
//   checkpointSubSequenceNumber N, pendingCheckpoint S + pendingCheckpointSubSequenceNumber N
//   and pendingCheckpointState B (absent = none), ownerSwitchesSinceCheckpoint N,
//   parentShardId SS and childShardIds SS (absent = empty), startingHashKey S +
//   endingHashKey S (decimal; absent = no range), checkpointOwner S (absent = none).
// Other attributes (throughputKBps, ...) are kept untouched; items whose entityType is present
// and not "LEASE" (KCL 3.5 single-table entities) are not leases: list_leases() and
// get_lease() skip them.
//
// The SQLite store uses WAL mode and one conditional UPDATE per write, so worker processes on
// one host may share the file. A store object must not be used in a child after fork(): open
// another one there.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shardline/aws_client.h"
#include "shardline/hash_key.h"
#include "shardline/result.h"

namespace shardline {

/// Checkpoint sentinels, as the KCL writes them.
inline constexpr std::string_view kCheckpointTrimHorizon = "TRIM_HORIZON";
inline constexpr std::string_view kCheckpointLatest = "LATEST";
inline constexpr std::string_view kCheckpointAtTimestamp = "AT_TIMESTAMP";
inline constexpr std::string_view kCheckpointShardEnd = "SHARD_END";

/// One lease, with the KCL 2.x attributes (DynamoDB names in comments).
struct Lease {
  std::string lease_key;                            // leaseKey: the shard id
  std::string lease_owner;                          // leaseOwner: worker id; "" = unowned
  std::int64_t lease_counter = 0;                   // leaseCounter
  std::string checkpoint;                           // checkpoint: sequence number or a sentinel
  std::int64_t checkpoint_sub_sequence_number = 0;  // checkpointSubSequenceNumber
  std::optional<std::string> pending_checkpoint;    // pendingCheckpoint
  std::int64_t pending_checkpoint_sub_sequence_number = 0;  // pendingCheckpointSubSequenceNumber
  std::optional<std::string> pending_checkpoint_state;      // pendingCheckpointState (bytes)
  std::int64_t owner_switches_since_checkpoint = 0;         // ownerSwitchesSinceCheckpoint
  std::vector<std::string> parent_shard_ids;                // parentShardId (a string set)
  std::vector<std::string> child_shard_ids;                 // childShardIds (a string set)
  std::optional<HashKeyRange> hash_key_range;               // startingHashKey / endingHashKey
  std::string checkpoint_owner;  // checkpointOwner (KCL 3.x graceful handoff); "" = none

  friend bool operator==(const Lease&, const Lease&) = default;
};

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;

  /// Create the table if it does not exist (DynamoDB: PAY_PER_REQUEST, key leaseKey) and wait
  /// until it can be used.
  virtual Status initialize(std::chrono::milliseconds timeout = std::chrono::seconds(60)) = 0;

  /// Every lease (consistent read where the store offers one).
  virtual Result<std::vector<Lease>> list_leases() = 0;
  virtual Result<std::optional<Lease>> get_lease(const std::string& lease_key) = 0;

  /// Write `lease` if no lease has its key. false: one existed (nothing written).
  virtual Result<bool> create_lease_if_not_exists(const Lease& lease) = 0;

  /// Heartbeat: counter + 1 if the counter is still `lease.lease_counter`.
  virtual Result<bool> renew_lease(Lease& lease) = 0;
  /// Take (or steal) the lease for `owner`: counter + 1, owner set, ownerSwitchesSinceCheckpoint
  /// + 1 when the owner changes, checkpointOwner removed; if the counter is still the caller's.
  /// As in the KCL, "the owner changes" compares `owner` with the caller's copy and taking an
  /// unowned lease is no switch. kInvalidArgument if `owner` is empty.
  virtual Result<bool> take_lease(Lease& lease, const std::string& owner) = 0;
  /// Give the lease up (graceful shutdown): owner removed, counter + 1; if the counter and the
  /// owner are still the caller's. Other workers can take it at once. Also ends a pending
  /// handoff (checkpointOwner removed), as the KCL 3.x evictLease does.
  virtual Result<bool> evict_lease(Lease& lease) = 0;
  /// Checkpoint: counter + 1, checkpoint and sub-sequence set, ownerSwitchesSinceCheckpoint 0,
  /// pending checkpoint removed; if the counter and owner are still the caller's.
  virtual Result<bool> update_checkpoint(Lease& lease, const std::string& checkpoint,
                                         std::int64_t sub_sequence_number) = 0;
  /// Two-phase checkpoint, first phase: pendingCheckpoint* set, counter + 1; conditional as
  /// update_checkpoint.
  virtual Result<bool> prepare_checkpoint(Lease& lease, const std::string& pending_checkpoint,
                                          std::int64_t sub_sequence_number,
                                          std::optional<std::string> state) = 0;
  /// Record child shards and the hash range (no counter change), if the lease exists: writes
  /// `child_shard_ids` when not empty and `hash_key_range` when set, and nothing else.
  /// kNotFound if there is no lease with that key.
  virtual Status update_lease_metadata(const Lease& lease) = 0;
  /// Unconditional; deleting a missing lease is not an error.
  virtual Status delete_lease(const std::string& lease_key) = 0;

  /// "dynamodb:TABLE" or "sqlite:PATH", for messages.
  virtual std::string describe() const = 0;
};

class DynamoDbClient;

/// The KCL-compatible DynamoDB store on `table`.
Result<std::unique_ptr<LeaseStore>> make_dynamodb_lease_store(const AwsClientConfig& config,
                                                              const std::string& table);
/// The same store on an existing client (shared, or one built with
/// DynamoDbClient::create_with_transport for tests).
Result<std::unique_ptr<LeaseStore>> make_dynamodb_lease_store(
    std::shared_ptr<DynamoDbClient> client, const std::string& table);

/// The SQLite store in the file at `path` (created when absent), leases of `application`.
Result<std::unique_ptr<LeaseStore>> make_sqlite_lease_store(const std::string& path,
                                                            const std::string& application);

/// "dynamodb:TABLE" or "sqlite:PATH" (a bare name means sqlite:NAME). "dynamodb:" alone
/// uses the table named `application`, as the KCL does. A spec that starts like another
/// scheme ("dynamo:orders") is kInvalidArgument rather than a file name; write
/// "sqlite:a:b" or "./a:b" for such a file.
Result<std::unique_ptr<LeaseStore>> open_lease_store(const std::string& spec,
                                                     const std::string& application,
                                                     const AwsClientConfig& config);

/// `lease` as the stores return it: parent and child shard ids sorted with duplicates removed,
/// and the pending sub-sequence number 0 when there is no pending checkpoint.
Lease normalize_lease(Lease lease);

/// OK, or kInvalidArgument naming the field when no store can hold `lease`: an empty key, a
/// negative counter, sub-sequence number or owner switch count, an empty shard id or one with
/// a newline in a set, a hash range whose start is above its end.
Status validate_lease(const Lease& lease);

}  // namespace shardline
