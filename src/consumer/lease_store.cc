// open_lease_store() and the helpers both lease stores share (see shardline/lease_store.h).
#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardline/lease_store.h"

namespace shardline {
namespace {

constexpr std::string_view kDynamoDbScheme = "dynamodb:";
constexpr std::string_view kSqliteScheme = "sqlite:";

void normalize_set(std::vector<std::string>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

Status check_set(const std::vector<std::string>& ids, std::string_view field,
                 const std::string& key) {
  for (const std::string& id : ids) {
    if (id.empty()) {
      return Status::invalid_argument("lease '" + key + "': " + std::string(field) +
                                      " holds an empty shard id");
    }
    if (id.find('\n') != std::string::npos) {
      return Status::invalid_argument("lease '" + key + "': " + std::string(field) +
                                      " holds a shard id with a newline");
    }
  }
  return {};
}

Status check_non_negative(std::int64_t value, std::string_view field, const std::string& key) {
  if (value >= 0) return {};
  return Status::invalid_argument("lease '" + key + "': " + std::string(field) + " is " +
                                  std::to_string(value) + ", must be >= 0");
}

// "name:" at the start of `spec` where name looks like a URL scheme (a letter, then letters,
// digits, '+', '-', '.'), at least two characters so that no drive letter is taken for one.
bool starts_with_scheme(std::string_view spec) {
  std::size_t colon = spec.find(':');
  if (colon == std::string_view::npos || colon < 2) return false;
  if (std::isalpha(static_cast<unsigned char>(spec[0])) == 0) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    auto c = static_cast<unsigned char>(spec[i]);
    if (std::isalnum(c) == 0 && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

}  // namespace

Lease normalize_lease(Lease lease) {
  normalize_set(lease.parent_shard_ids);
  normalize_set(lease.child_shard_ids);
  if (!lease.pending_checkpoint) lease.pending_checkpoint_sub_sequence_number = 0;
  return lease;
}

Status validate_lease(const Lease& lease) {
  if (lease.lease_key.empty()) return Status::invalid_argument("a lease needs a lease_key");
  const std::string& key = lease.lease_key;
  SHARDLINE_RETURN_IF_ERROR(check_non_negative(lease.lease_counter, "leaseCounter", key));
  SHARDLINE_RETURN_IF_ERROR(
      check_non_negative(lease.checkpoint_sub_sequence_number, "checkpointSubSequenceNumber", key));
  SHARDLINE_RETURN_IF_ERROR(check_non_negative(lease.pending_checkpoint_sub_sequence_number,
                                               "pendingCheckpointSubSequenceNumber", key));
  SHARDLINE_RETURN_IF_ERROR(check_non_negative(lease.owner_switches_since_checkpoint,
                                               "ownerSwitchesSinceCheckpoint", key));
  SHARDLINE_RETURN_IF_ERROR(check_set(lease.parent_shard_ids, "parentShardId", key));
  SHARDLINE_RETURN_IF_ERROR(check_set(lease.child_shard_ids, "childShardIds", key));
  if (lease.hash_key_range && lease.hash_key_range->end < lease.hash_key_range->start) {
    return Status::invalid_argument(
        "lease '" + key + "': startingHashKey " + lease.hash_key_range->start.to_decimal() +
        " is above endingHashKey " + lease.hash_key_range->end.to_decimal());
  }
  return {};
}

Result<std::unique_ptr<LeaseStore>> open_lease_store(const std::string& spec,
                                                     const std::string& application,
                                                     const AwsClientConfig& config) {
  std::string_view s(spec);
  if (s.starts_with(kDynamoDbScheme)) {
    std::string table(s.substr(kDynamoDbScheme.size()));
    if (table.empty()) table = application;
    if (table.empty()) {
      return Status::invalid_argument(
          "lease store 'dynamodb:': no table name and no application name to use instead");
    }
    return make_dynamodb_lease_store(config, table);
  }
  if (s.starts_with(kSqliteScheme)) {
    std::string path(s.substr(kSqliteScheme.size()));
    if (path.empty()) {
      return Status::invalid_argument("lease store 'sqlite:': the file path is missing");
    }
    return make_sqlite_lease_store(path, application);
  }
  if (s.empty()) {
    return Status::invalid_argument(
        "no lease store given (expected dynamodb:TABLE, sqlite:PATH or a file path)");
  }
  if (starts_with_scheme(s)) {
    return Status::invalid_argument(
        "lease store '" + spec + "': unknown scheme '" + std::string(s.substr(0, s.find(':'))) +
        ":' (expected dynamodb:TABLE, sqlite:PATH or a file path; write sqlite:" + spec +
        " for a file of that name)");
  }
  return make_sqlite_lease_store(spec, application);
}

}  // namespace shardline
