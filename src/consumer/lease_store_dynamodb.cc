// The KCL-compatible lease store on DynamoDB (see shardline/lease_store.h for the item schema).
//
// Every write is one DynamoDB call with a ConditionExpression equivalent to the KCL's
// `Expected` clauses (reference §1.4):
//   create              PutItem     attribute_not_exists(leaseKey)
//   renew               UpdateItem  leaseCounter = :c [AND attribute_not_exists(checkpointOwner)
//                                   unless the caller's lease has a checkpointOwner]
//   take                UpdateItem  leaseCounter = :c
//   evict, checkpoint,  UpdateItem  leaseCounter = :c AND leaseOwner = :o
//     prepare                       (attribute_not_exists(leaseOwner) for an unowned lease)
//   metadata            UpdateItem  attribute_exists(leaseKey)
//   delete              DeleteItem  (unconditional)
// Updates ask for ReturnValues ALL_NEW and hand the stored item back to the caller, so the
// caller's Lease is exactly what the table holds (including attributes someone else changed
// without a counter bump, such as childShardIds). Attribute names always go through
// ExpressionAttributeNames, so no name can collide with a DynamoDB reserved word.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardline/dynamodb.h"
#include "shardline/lease_store.h"

namespace shardline {
namespace {

using AV = AttributeValue;

constexpr std::string_view kConditionalCheckFailed = "ConditionalCheckFailedException";

// The KCL's attribute names (DynamoDBLeaseSerializer).
constexpr const char* kLeaseKey = "leaseKey";
constexpr const char* kLeaseOwner = "leaseOwner";
constexpr const char* kLeaseCounter = "leaseCounter";
constexpr const char* kCheckpoint = "checkpoint";
constexpr const char* kCheckpointSubSequenceNumber = "checkpointSubSequenceNumber";
constexpr const char* kPendingCheckpoint = "pendingCheckpoint";
constexpr const char* kPendingCheckpointSubSequenceNumber = "pendingCheckpointSubSequenceNumber";
constexpr const char* kPendingCheckpointState = "pendingCheckpointState";
constexpr const char* kOwnerSwitchesSinceCheckpoint = "ownerSwitchesSinceCheckpoint";
constexpr const char* kParentShardId = "parentShardId";
constexpr const char* kChildShardIds = "childShardIds";
constexpr const char* kStartingHashKey = "startingHashKey";
constexpr const char* kEndingHashKey = "endingHashKey";
constexpr const char* kCheckpointOwner = "checkpointOwner";
constexpr const char* kEntityType = "entityType";
constexpr std::string_view kLeaseEntity = "LEASE";

// ---- Item <-> Lease ---------------------------------------------------------------------------

Status wrong_type(std::string_view name, const AV& value, AttributeType expected) {
  return Status::internal("attribute " + std::string(name) + " is " +
                          std::string(attribute_type_name(value.type())) + ", expected " +
                          std::string(attribute_type_name(expected)));
}

// The attribute `name`, or nullptr when absent or NULL (the KCL never writes NULL; a tool
// might, and it means "no value" either way).
const AV* find_attribute(const Item& item, const char* name) {
  auto it = item.find(name);
  if (it == item.end() || it->second.is_null()) return nullptr;
  return &it->second;
}

Status read_string(const Item& item, const char* name, std::string& out) {
  const AV* v = find_attribute(item, name);
  if (v == nullptr) return {};
  const std::string* s = v->as_string();
  if (s == nullptr) return wrong_type(name, *v, AttributeType::kString);
  out = *s;
  return {};
}

Status read_optional_string(const Item& item, const char* name, std::optional<std::string>& out) {
  const AV* v = find_attribute(item, name);
  if (v == nullptr) return {};
  const std::string* s = v->as_string();
  if (s == nullptr) return wrong_type(name, *v, AttributeType::kString);
  out = *s;
  return {};
}

Status read_int(const Item& item, const char* name, std::int64_t& out) {
  const AV* v = find_attribute(item, name);
  if (v == nullptr) return {};
  if (v->type() != AttributeType::kNumber) return wrong_type(name, *v, AttributeType::kNumber);
  Result<std::int64_t> n = v->to_int64();
  if (!n.ok()) {
    return Status::internal("attribute " + std::string(name) + " = " + *v->as_number() +
                            " is not a 64-bit integer");
  }
  out = *n;
  return {};
}

Status read_string_set(const Item& item, const char* name, std::vector<std::string>& out) {
  const AV* v = find_attribute(item, name);
  if (v == nullptr) return {};
  const std::vector<std::string>* set = v->as_string_set();
  if (set == nullptr) return wrong_type(name, *v, AttributeType::kStringSet);
  out = *set;
  return {};
}

// True when the item is a lease: no entityType (KCL 1.x-3.4), or entityType "LEASE" (3.5).
bool is_lease_item(const Item& item) {
  const AV* type = find_attribute(item, kEntityType);
  if (type == nullptr) return true;
  const std::string* s = type->as_string();
  return s != nullptr && *s == kLeaseEntity;
}

// The lease in `item` (normalized). kInternal naming the key and attribute if malformed.
Result<Lease> lease_from_item(const Item& item) {
  Lease l;
  const AV* key = find_attribute(item, kLeaseKey);
  if (key == nullptr || key->as_string() == nullptr || key->as_string()->empty()) {
    return Status::internal("an item has no leaseKey string: " + item_to_json(item));
  }
  l.lease_key = *key->as_string();
  auto read_all = [&]() -> Status {
    if (find_attribute(item, kLeaseCounter) == nullptr) {
      return Status::internal("attribute leaseCounter is missing");
    }
    SHARDLINE_RETURN_IF_ERROR(read_string(item, kLeaseOwner, l.lease_owner));
    SHARDLINE_RETURN_IF_ERROR(read_int(item, kLeaseCounter, l.lease_counter));
    SHARDLINE_RETURN_IF_ERROR(read_string(item, kCheckpoint, l.checkpoint));
    SHARDLINE_RETURN_IF_ERROR(
        read_int(item, kCheckpointSubSequenceNumber, l.checkpoint_sub_sequence_number));
    SHARDLINE_RETURN_IF_ERROR(read_optional_string(item, kPendingCheckpoint, l.pending_checkpoint));
    SHARDLINE_RETURN_IF_ERROR(read_int(item, kPendingCheckpointSubSequenceNumber,
                                       l.pending_checkpoint_sub_sequence_number));
    if (const AV* state = find_attribute(item, kPendingCheckpointState)) {
      const std::string* bytes = state->as_binary();
      if (bytes == nullptr) {
        return wrong_type(kPendingCheckpointState, *state, AttributeType::kBinary);
      }
      l.pending_checkpoint_state = *bytes;
    }
    SHARDLINE_RETURN_IF_ERROR(
        read_int(item, kOwnerSwitchesSinceCheckpoint, l.owner_switches_since_checkpoint));
    SHARDLINE_RETURN_IF_ERROR(read_string_set(item, kParentShardId, l.parent_shard_ids));
    SHARDLINE_RETURN_IF_ERROR(read_string_set(item, kChildShardIds, l.child_shard_ids));
    std::optional<std::string> start;
    std::optional<std::string> end;
    SHARDLINE_RETURN_IF_ERROR(read_optional_string(item, kStartingHashKey, start));
    SHARDLINE_RETURN_IF_ERROR(read_optional_string(item, kEndingHashKey, end));
    // Like the KCL: a range only when both ends are there.
    if (start && end && !start->empty() && !end->empty()) {
      Result<HashKey> s = HashKey::parse_decimal(*start);
      if (!s.ok()) return Status::internal("attribute startingHashKey = '" + *start + "' is bad");
      Result<HashKey> e = HashKey::parse_decimal(*end);
      if (!e.ok()) return Status::internal("attribute endingHashKey = '" + *end + "' is bad");
      l.hash_key_range = HashKeyRange{*s, *e};
    }
    SHARDLINE_RETURN_IF_ERROR(read_string(item, kCheckpointOwner, l.checkpoint_owner));
    return {};
  };
  Status s = read_all();
  if (!s.ok()) return std::move(s).with_context("lease '" + l.lease_key + "'");
  return normalize_lease(std::move(l));
}

// The full item the KCL writes for `l` (normalized), without entityType (KCL 2.x does not
// write it; 3.5 reads a missing entityType as LEASE).
Item item_from_lease(const Lease& l) {
  Item item;
  item.emplace(kLeaseKey, AV::string(l.lease_key));
  if (!l.lease_owner.empty()) item.emplace(kLeaseOwner, AV::string(l.lease_owner));
  item.emplace(kLeaseCounter, AV::number(l.lease_counter));
  if (!l.checkpoint.empty()) item.emplace(kCheckpoint, AV::string(l.checkpoint));
  item.emplace(kCheckpointSubSequenceNumber, AV::number(l.checkpoint_sub_sequence_number));
  if (l.pending_checkpoint) {
    item.emplace(kPendingCheckpoint, AV::string(*l.pending_checkpoint));
    item.emplace(kPendingCheckpointSubSequenceNumber,
                 AV::number(l.pending_checkpoint_sub_sequence_number));
  }
  if (l.pending_checkpoint_state) {
    item.emplace(kPendingCheckpointState, AV::binary(*l.pending_checkpoint_state));
  }
  item.emplace(kOwnerSwitchesSinceCheckpoint, AV::number(l.owner_switches_since_checkpoint));
  if (!l.parent_shard_ids.empty()) {
    item.emplace(kParentShardId, AV::string_set(l.parent_shard_ids));
  }
  if (!l.child_shard_ids.empty()) item.emplace(kChildShardIds, AV::string_set(l.child_shard_ids));
  if (l.hash_key_range) {
    item.emplace(kStartingHashKey, AV::string(l.hash_key_range->start.to_decimal()));
    item.emplace(kEndingHashKey, AV::string(l.hash_key_range->end.to_decimal()));
  }
  if (!l.checkpoint_owner.empty()) item.emplace(kCheckpointOwner, AV::string(l.checkpoint_owner));
  return item;
}

Item key_of(const std::string& lease_key) { return Item{{kLeaseKey, AV::string(lease_key)}}; }

bool is_condition_failure(const Status& s) {
  return s.code() == StatusCode::kAborted && s.aws_error_code() == kConditionalCheckFailed;
}

// ---- Expressions ------------------------------------------------------------------------------

// Builds a ConditionExpression and an UpdateExpression with their placeholders: every
// attribute name goes through "#name", every value through ":name".
class Expression {
 public:
  std::string name(const char* attribute) {
    std::string placeholder = std::string("#") + attribute;
    options_.expression_attribute_names[placeholder] = attribute;
    return placeholder;
  }
  std::string value(std::string_view id, AV v) {
    std::string placeholder = ":" + std::string(id);
    options_.expression_attribute_values[placeholder] = std::move(v);
    return placeholder;
  }

  void condition(std::string clause) {
    if (!condition_.empty()) condition_ += " AND ";
    condition_ += clause;
  }
  // Conditions shared by the writes.
  void counter_is(std::int64_t counter) {
    condition(name(kLeaseCounter) + " = " + value("counter", AV::number(counter)));
  }
  void owner_is(const std::string& owner) {
    if (owner.empty()) {
      condition("attribute_not_exists(" + name(kLeaseOwner) + ")");
    } else {
      condition(name(kLeaseOwner) + " = " + value("owner", AV::string(owner)));
    }
  }

  void set(const char* attribute, std::string_view id, AV v) {
    set_.push_back(name(attribute) + " = " + value(id, std::move(v)));
  }
  void remove(const char* attribute) { remove_.push_back(name(attribute)); }
  void add(const char* attribute, std::string_view id, AV v) {
    add_.push_back(name(attribute) + " " + value(id, std::move(v)));
  }

  std::string update_expression() const {
    std::string out;
    auto clause = [&out](std::string_view keyword, const std::vector<std::string>& parts) {
      if (parts.empty()) return;
      if (!out.empty()) out += ' ';
      out += keyword;
      out += ' ';
      for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) out += ", ";
        out += parts[i];
      }
    };
    clause("SET", set_);
    clause("REMOVE", remove_);
    clause("ADD", add_);
    return out;
  }
  WriteOptions options(ReturnValues return_values) const {
    WriteOptions w = options_;
    w.condition_expression = condition_;
    w.return_values = return_values;
    return w;
  }

 private:
  WriteOptions options_;
  std::string condition_;
  std::vector<std::string> set_;
  std::vector<std::string> remove_;
  std::vector<std::string> add_;
};

// The caller's lease can be the base of a conditional write: a key, and a counter that can
// be incremented.
Status check_writable(const Lease& lease, std::string_view op) {
  if (lease.lease_key.empty()) {
    return Status::invalid_argument(std::string(op) + ": the lease key is empty");
  }
  if (lease.lease_counter < 0 || lease.lease_counter == INT64_MAX) {
    return Status::out_of_range(std::string(op) + "(" + lease.lease_key + "): leaseCounter " +
                                std::to_string(lease.lease_counter) + " cannot be incremented");
  }
  return {};
}

Status check_checkpoint_args(const std::string& checkpoint, std::int64_t sub_sequence_number) {
  if (checkpoint.empty()) return Status::invalid_argument("the checkpoint is empty");
  if (sub_sequence_number < 0) {
    return Status::invalid_argument("sub-sequence number " + std::to_string(sub_sequence_number) +
                                    " is negative");
  }
  return {};
}

// ---- The store --------------------------------------------------------------------------------

class DynamoDbLeaseStore final : public LeaseStore {
 public:
  DynamoDbLeaseStore(std::shared_ptr<DynamoDbClient> client, std::string table)
      : client_(std::move(client)), table_(std::move(table)) {}

  Status initialize(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Result<TableDescription> described = client_->describe_table(table_);
    if (described.ok()) {
      SHARDLINE_RETURN_IF_ERROR(check_schema(*described));
    } else if (described.status().code() == StatusCode::kNotFound) {
      CreateTableRequest req;
      req.table_name = table_;
      req.key_schema = {{kLeaseKey, KeyType::kHash}};
      req.attribute_definitions = {{kLeaseKey, ScalarType::kString}};
      // provisioned_throughput nullopt = PAY_PER_REQUEST.
      Result<TableDescription> created = client_->create_table(req);
      // kAlreadyExists: another worker created it first; waiting is all that is left.
      if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
        return context(std::move(created).status(), "initialize");
      }
    } else {
      return context(std::move(described).status(), "initialize");
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    Status active = client_->wait_for_table_active(table_, std::max(left, decltype(left){0}));
    if (!active.ok()) return context(std::move(active), "initialize");
    return {};
  }

  Result<std::vector<Lease>> list_leases() override {
    ScanOptions options;
    options.consistent_read = true;
    Result<std::vector<Item>> items = client_->scan_all(table_, options);
    if (!items.ok()) return context(std::move(items).status(), "list_leases");
    std::vector<Lease> leases;
    leases.reserve(items->size());
    for (const Item& item : *items) {
      if (!is_lease_item(item)) continue;
      Result<Lease> l = lease_from_item(item);
      if (!l.ok()) return context(std::move(l).status(), "list_leases");
      leases.push_back(std::move(l).value());
    }
    std::sort(leases.begin(), leases.end(),
              [](const Lease& a, const Lease& b) { return a.lease_key < b.lease_key; });
    return leases;
  }

  Result<std::optional<Lease>> get_lease(const std::string& lease_key) override {
    if (lease_key.empty()) return Status::invalid_argument("get_lease: the lease key is empty");
    GetItemOptions options;
    options.consistent_read = true;
    Result<std::optional<Item>> item = client_->get_item(table_, key_of(lease_key), options);
    if (!item.ok()) return context(std::move(item).status(), "get_lease", lease_key);
    if (!item->has_value() || !is_lease_item(**item)) return std::optional<Lease>();
    Result<Lease> l = lease_from_item(**item);
    if (!l.ok()) return context(std::move(l).status(), "get_lease", lease_key);
    return std::optional<Lease>(std::move(l).value());
  }

  Result<bool> create_lease_if_not_exists(const Lease& lease) override {
    SHARDLINE_RETURN_IF_ERROR(validate_lease(lease));
    Expression e;
    e.condition("attribute_not_exists(" + e.name(kLeaseKey) + ")");
    Result<WriteResult> put = client_->put_item(table_, item_from_lease(normalize_lease(lease)),
                                                e.options(ReturnValues::kNone));
    if (put.ok()) return true;
    if (is_condition_failure(put.status())) return false;
    return context(std::move(put).status(), "create_lease_if_not_exists", lease.lease_key);
  }

  Result<bool> renew_lease(Lease& lease) override {
    SHARDLINE_RETURN_IF_ERROR(check_writable(lease, "renew_lease"));
    Expression e;
    e.counter_is(lease.lease_counter);
    // The KCL's renewer also fails while a graceful handoff is pending (3.x), unless this
    // worker's copy already knows about it.
    if (lease.checkpoint_owner.empty()) {
      e.condition("attribute_not_exists(" + e.name(kCheckpointOwner) + ")");
    }
    e.set(kLeaseCounter, "next", AV::number(lease.lease_counter + 1));
    return update(lease, "renew_lease", e, [](Lease& l) { ++l.lease_counter; });
  }

  Result<bool> take_lease(Lease& lease, const std::string& owner) override {
    SHARDLINE_RETURN_IF_ERROR(check_writable(lease, "take_lease"));
    if (owner.empty()) return Status::invalid_argument("take_lease: the new owner is empty");
    // Like the KCL: a switch is from one owner to another, as the caller's copy has it
    // (taking an unowned lease is not one).
    const bool owner_changes = !lease.lease_owner.empty() && owner != lease.lease_owner;
    Expression e;
    e.counter_is(lease.lease_counter);
    e.set(kLeaseCounter, "next", AV::number(lease.lease_counter + 1));
    e.set(kLeaseOwner, "newOwner", AV::string(owner));
    e.remove(kCheckpointOwner);
    if (owner_changes) e.add(kOwnerSwitchesSinceCheckpoint, "one", AV::number(1));
    return update(lease, "take_lease", e, [&owner, owner_changes](Lease& l) {
      ++l.lease_counter;
      l.lease_owner = owner;
      l.checkpoint_owner.clear();
      if (owner_changes) ++l.owner_switches_since_checkpoint;
    });
  }

  Result<bool> evict_lease(Lease& lease) override {
    SHARDLINE_RETURN_IF_ERROR(check_writable(lease, "evict_lease"));
    Expression e;
    e.counter_is(lease.lease_counter);
    e.owner_is(lease.lease_owner);
    e.set(kLeaseCounter, "next", AV::number(lease.lease_counter + 1));
    e.remove(kLeaseOwner);
    e.remove(kCheckpointOwner);
    return update(lease, "evict_lease", e, [](Lease& l) {
      ++l.lease_counter;
      l.lease_owner.clear();
      l.checkpoint_owner.clear();
    });
  }

  Result<bool> update_checkpoint(Lease& lease, const std::string& checkpoint,
                                 std::int64_t sub_sequence_number) override {
    SHARDLINE_RETURN_IF_ERROR(check_writable(lease, "update_checkpoint"));
    SHARDLINE_RETURN_IF_ERROR(
        check_checkpoint_args(checkpoint, sub_sequence_number).with_context("update_checkpoint"));
    Expression e;
    e.counter_is(lease.lease_counter);
    e.owner_is(lease.lease_owner);
    e.set(kLeaseCounter, "next", AV::number(lease.lease_counter + 1));
    e.set(kCheckpoint, "checkpoint", AV::string(checkpoint));
    e.set(kCheckpointSubSequenceNumber, "sub", AV::number(sub_sequence_number));
    e.set(kOwnerSwitchesSinceCheckpoint, "zero", AV::number(0));
    e.remove(kPendingCheckpoint);
    e.remove(kPendingCheckpointSubSequenceNumber);
    e.remove(kPendingCheckpointState);
    return update(lease, "update_checkpoint", e, [&](Lease& l) {
      ++l.lease_counter;
      l.checkpoint = checkpoint;
      l.checkpoint_sub_sequence_number = sub_sequence_number;
      l.owner_switches_since_checkpoint = 0;
      l.pending_checkpoint.reset();
      l.pending_checkpoint_sub_sequence_number = 0;
      l.pending_checkpoint_state.reset();
    });
  }

  Result<bool> prepare_checkpoint(Lease& lease, const std::string& pending_checkpoint,
                                  std::int64_t sub_sequence_number,
                                  std::optional<std::string> state) override {
    SHARDLINE_RETURN_IF_ERROR(check_writable(lease, "prepare_checkpoint"));
    SHARDLINE_RETURN_IF_ERROR(check_checkpoint_args(pending_checkpoint, sub_sequence_number)
                                  .with_context("prepare_checkpoint"));
    Expression e;
    e.counter_is(lease.lease_counter);
    e.owner_is(lease.lease_owner);
    e.set(kLeaseCounter, "next", AV::number(lease.lease_counter + 1));
    e.set(kPendingCheckpoint, "pending", AV::string(pending_checkpoint));
    e.set(kPendingCheckpointSubSequenceNumber, "pendingSub", AV::number(sub_sequence_number));
    if (state) {
      e.set(kPendingCheckpointState, "state", AV::binary(*state));
    } else {
      e.remove(kPendingCheckpointState);
    }
    return update(lease, "prepare_checkpoint", e, [&](Lease& l) {
      ++l.lease_counter;
      l.pending_checkpoint = pending_checkpoint;
      l.pending_checkpoint_sub_sequence_number = sub_sequence_number;
      l.pending_checkpoint_state = state;
    });
  }

  Status update_lease_metadata(const Lease& lease) override {
    SHARDLINE_RETURN_IF_ERROR(validate_lease(lease).with_context("update_lease_metadata"));
    Lease l = normalize_lease(lease);
    Expression e;
    e.condition("attribute_exists(" + e.name(kLeaseKey) + ")");
    if (!l.child_shard_ids.empty()) {
      e.set(kChildShardIds, "children", AV::string_set(l.child_shard_ids));
    }
    if (l.hash_key_range) {
      e.set(kStartingHashKey, "start", AV::string(l.hash_key_range->start.to_decimal()));
      e.set(kEndingHashKey, "end", AV::string(l.hash_key_range->end.to_decimal()));
    }
    const std::string update_expression = e.update_expression();
    if (update_expression.empty()) {
      // Nothing to write: only the existence check is left.
      Result<std::optional<Lease>> existing = get_lease(l.lease_key);
      if (!existing.ok()) return std::move(existing).status();
      if (!existing->has_value()) return missing_lease("update_lease_metadata", l.lease_key);
      return {};
    }
    Result<WriteResult> r = client_->update_item(table_, key_of(l.lease_key), update_expression,
                                                 e.options(ReturnValues::kNone));
    if (r.ok()) return {};
    if (is_condition_failure(r.status())) {
      return missing_lease("update_lease_metadata", l.lease_key);
    }
    return context(std::move(r).status(), "update_lease_metadata", l.lease_key);
  }

  Status delete_lease(const std::string& lease_key) override {
    if (lease_key.empty()) return Status::invalid_argument("delete_lease: the lease key is empty");
    Result<WriteResult> r = client_->delete_item(table_, key_of(lease_key));
    if (!r.ok()) return context(std::move(r).status(), "delete_lease", lease_key);
    return {};
  }

  std::string describe() const override { return "dynamodb:" + table_; }

 private:
  // One conditional UpdateItem (the caller has checked the lease with check_writable()).
  // On success the caller's lease becomes the stored item
  // (ALL_NEW); `apply` updates it locally instead if the answer carries no usable item.
  Result<bool> update(Lease& lease, std::string_view op, const Expression& e,
                      const std::function<void(Lease&)>& apply) {
    Result<WriteResult> r = client_->update_item(
        table_, key_of(lease.lease_key), e.update_expression(), e.options(ReturnValues::kAllNew));
    if (!r.ok()) {
      if (is_condition_failure(r.status())) return false;
      return context(std::move(r).status(), op, lease.lease_key);
    }
    if (r->attributes) {
      Result<Lease> stored = lease_from_item(*r->attributes);
      if (stored.ok() && stored->lease_key == lease.lease_key) {
        lease = std::move(stored).value();
        return true;
      }
    }
    apply(lease);
    return true;
  }

  Status check_schema(const TableDescription& d) const {
    const bool key_ok = d.key_schema.size() == 1 && d.key_schema[0].attribute_name == kLeaseKey &&
                        d.key_schema[0].key_type == KeyType::kHash;
    bool type_ok = false;
    for (const AttributeDefinition& a : d.attribute_definitions) {
      if (a.attribute_name == kLeaseKey) type_ok = a.attribute_type == ScalarType::kString;
    }
    if (key_ok && type_ok) return {};
    return Status::failed_precondition(describe() +
                                       ": the table exists but its key is not leaseKey (S, "
                                       "HASH only): it is not a lease table");
  }

  Status missing_lease(std::string_view op, const std::string& key) const {
    return Status::not_found(describe() + ": " + std::string(op) + "(" + key +
                             "): there is no such lease");
  }

  Status context(Status s, std::string_view op, std::string_view key = {}) const {
    std::string what = describe() + ": " + std::string(op);
    if (!key.empty()) what += "(" + std::string(key) + ")";
    return std::move(s).with_context(what);
  }

  std::shared_ptr<DynamoDbClient> client_;
  std::string table_;
};

// DynamoDB's rule for table names: 3 to 255 of [a-zA-Z0-9_.-].
Status check_table_name(const std::string& table) {
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  };
  if (table.size() < 3 || table.size() > 255 || !std::all_of(table.begin(), table.end(), allowed)) {
    return Status::invalid_argument("'" + table +
                                    "' is not a DynamoDB table name (3 to 255 characters of "
                                    "a-z, A-Z, 0-9, '_', '-', '.')");
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<LeaseStore>> make_dynamodb_lease_store(
    std::shared_ptr<DynamoDbClient> client, const std::string& table) {
  if (client == nullptr) return Status::invalid_argument("make_dynamodb_lease_store: no client");
  SHARDLINE_RETURN_IF_ERROR(check_table_name(table));
  return std::unique_ptr<LeaseStore>(new DynamoDbLeaseStore(std::move(client), table));
}

Result<std::unique_ptr<LeaseStore>> make_dynamodb_lease_store(const AwsClientConfig& config,
                                                              const std::string& table) {
  SHARDLINE_RETURN_IF_ERROR(check_table_name(table));
  Result<std::unique_ptr<DynamoDbClient>> client = DynamoDbClient::create(config);
  if (!client.ok()) {
    return std::move(client).status().with_context("dynamodb:" + table);
  }
  return make_dynamodb_lease_store(std::shared_ptr<DynamoDbClient>(std::move(client).value()),
                                   table);
}

}  // namespace shardline
