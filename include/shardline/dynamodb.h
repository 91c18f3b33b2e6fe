// File: shardline/dynamodb.h
//
// A thin, typed Amazon DynamoDB client: one method per API call (JSON 1.0 over HTTPS, SigV4),
// plus "all pages" helpers for Scan, Query and ListTables. It serves the lease table, so it is
// built for correctness and clarity rather than speed.
//
//   shardline::AwsClientConfig cfg;
//   cfg.endpoint_url = "http://127.0.0.1:8000";  // a local dynalite
//   auto client = shardline::DynamoDbClient::create(cfg);
//   if (!client.ok()) return client.status();
//   auto& ddb = **client;
//
//   shardline::CreateTableRequest t;
//   t.table_name = "leases";
//   t.key_schema = {{"leaseKey", shardline::KeyType::kHash}};
//   t.attribute_definitions = {{"leaseKey", shardline::ScalarType::kString}};
//   SHARDLINE_RETURN_IF_ERROR(ddb.create_table(t).status());
//   SHARDLINE_RETURN_IF_ERROR(ddb.wait_for_table_active("leases", std::chrono::seconds(60)));
//
//   using shardline::AttributeValue;
//   shardline::WriteOptions w;
//   w.condition_expression = "leaseCounter = :c AND leaseOwner = :o";
//   w.expression_attribute_values = {{":c", AttributeValue::number(41)},
//                                    {":o", AttributeValue::string("worker-1")},
//                                    {":one", AttributeValue::number(1)}};
//   w.return_values = shardline::ReturnValues::kAllNew;
//   auto r = ddb.update_item("leases", {{"leaseKey", AttributeValue::string("shardId-0")}},
//                            "SET leaseCounter = leaseCounter + :one", w);
//   if (r.status().code() == shardline::StatusCode::kAborted) { /* lost the race: re-read */ }
//
// Values. An AttributeValue is one DynamoDB value of any type (S, N, B, BOOL, NULL, SS, NS, BS,
// L, M). Numbers (N, NS) are decimal strings end to end: the client never converts them
// through a floating-point type, so 38-digit numbers and exact decimals survive. Binary values
// (B, BS) hold raw bytes; the client base64-encodes them on the wire.
//
// Errors. Every call returns a Status (or a Result) whose code follows the AWS error table
// (src/aws/aws_errors.def), with the AWS error code, HTTP status and request id attached and the
// operation name as message context ("PutItem: The conditional request failed"):
//   - kAborted, aws_error_code "ConditionalCheckFailedException": a ConditionExpression was
//     false (retry class kRestart: re-read the item before deciding again);
//   - kNotFound: the table (or index) does not exist, or is not ACTIVE
//     (ResourceNotFoundException);
//   - kInvalidArgument: the request failed validation (ValidationException: bad expression,
//     unused expression attribute values or names, wrong key, empty set, ...; the server's
//     message is kept), or the client rejected it before sending (empty table name or key, a
//     string that is not UTF-8, values nested deeper than 64 levels, a negative limit);
//   - kResourceExhausted: throttled (ProvisionedThroughputExceededException, RequestLimitExceeded,
//     ThrottlingException, LimitExceededException) after the client's own retries;
//   - kPermissionDenied / kUnauthenticated: AccessDenied, unknown keys, bad signature;
//   - kUnavailable / kDeadlineExceeded: 5xx and transport failures after the retries;
//   - kInternal: the response was not the JSON the operation defines (the message says what was
//     wrong); never a crash.
// Per-method notes below name the codes specific to a call.
//
// Retries. Blocking calls retry throttling, 5xx, timeouts and connection failures
// (AwsClientConfig::max_attempts, capped exponential backoff with full jitter). A write retried
// after a transport failure may already have been applied by the earlier attempt: a conditional
// write can then report kAborted although it took effect. Callers that need to know (a lease
// renewal) re-read the item, as the KCL does.
//
// Thread safety. A DynamoDbClient is thread-safe: any number of threads may call any methods
// concurrently on one client. AttributeValue and the request/response structs are plain values
// (the usual rules: concurrent reads are safe, a write needs exclusive access).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardline/aws_client.h"
#include "shardline/result.h"

namespace shardline {

class AttributeValue;

/// An item, a key, or a set of expression attribute values: attribute name → value.
using Item = std::map<std::string, AttributeValue>;

/// The type of an AttributeValue; the comments give the DynamoDB type descriptor.
enum class AttributeType : std::uint8_t {
  kNull,       // NULL
  kString,     // S
  kNumber,     // N
  kBinary,     // B
  kBool,       // BOOL
  kStringSet,  // SS
  kNumberSet,  // NS
  kBinarySet,  // BS
  kList,       // L
  kMap,        // M
};

/// The DynamoDB type descriptor: "NULL", "S", "N", "B", "BOOL", "SS", "NS", "BS", "L", "M".
std::string_view attribute_type_name(AttributeType type) noexcept;

/// One DynamoDB attribute value. A regular value type (copyable, movable, comparable).
///
///   Item lease{{"leaseKey", AttributeValue::string("shardId-000000000000")},
///              {"leaseCounter", AttributeValue::number(1)},
///              {"parentShardId", AttributeValue::string_set({"shardId-0", "shardId-1"})}};
///   if (const std::string* key = lease.at("leaseKey").as_string()) use(*key);
///   Result<std::int64_t> counter = lease.at("leaseCounter").to_int64();  // exact, no double
class AttributeValue {
 public:
  /// NULL.
  AttributeValue() noexcept = default;
  AttributeValue(const AttributeValue& other);
  AttributeValue& operator=(const AttributeValue& other);
  AttributeValue(AttributeValue&&) noexcept;
  AttributeValue& operator=(AttributeValue&&) noexcept;
  ~AttributeValue();

  static AttributeValue null() { return AttributeValue(); }
  /// S: a UTF-8 string.
  static AttributeValue string(std::string value);
  /// N: a decimal number as text ("42", "-3.25", "1E+3"), kept verbatim. DynamoDB validates
  /// and normalizes it; the client never converts it.
  static AttributeValue number(std::string decimal);
  static AttributeValue number(std::int64_t value);
  /// B: raw bytes (base64 on the wire only).
  static AttributeValue binary(std::string bytes);
  /// BOOL.
  static AttributeValue boolean(bool value);
  /// SS, NS, BS. DynamoDB rejects empty sets and duplicate elements.
  static AttributeValue string_set(std::vector<std::string> values);
  static AttributeValue number_set(std::vector<std::string> decimals);
  static AttributeValue binary_set(std::vector<std::string> byte_strings);
  /// L and M.
  static AttributeValue list(std::vector<AttributeValue> values);
  static AttributeValue map(Item values);

  AttributeType type() const noexcept { return type_; }
  bool is_null() const noexcept { return type_ == AttributeType::kNull; }

  /// Typed access: a pointer to the value when the type matches, else nullptr.
  const std::string* as_string() const noexcept;  // S
  const std::string* as_number() const noexcept;  // N: the decimal text
  const std::string* as_binary() const noexcept;  // B: raw bytes
  std::optional<bool> as_bool() const noexcept;   // BOOL
  const std::vector<std::string>* as_string_set() const noexcept;
  const std::vector<std::string>* as_number_set() const noexcept;
  const std::vector<std::string>* as_binary_set() const noexcept;  // raw bytes
  const std::vector<AttributeValue>* as_list() const noexcept;
  std::vector<AttributeValue>* as_list() noexcept;
  const Item* as_map() const noexcept;
  Item* as_map() noexcept;

  /// An N holding an integer ("-?[0-9]+") that fits in int64, parsed exactly.
  /// kInvalidArgument if the value is not N or not an integer; kOutOfRange if it overflows.
  Result<std::int64_t> to_int64() const;

  /// The DynamoDB JSON of the value, e.g. {"S":"x"} or {"M":{"a":{"N":"1"}}}; bytes are base64.
  /// For messages and tools: strings that are not UTF-8 are shown with U+FFFD replacements.
  std::string to_json() const;
  /// Parses DynamoDB JSON of one value ({"N":"42"}). kInvalidArgument if malformed.
  static Result<AttributeValue> from_json(std::string_view json);

  /// Same type and contents. Numbers compare as text ("1" != "1.0"); sets compare without
  /// regard to element order.
  friend bool operator==(const AttributeValue& a, const AttributeValue& b);

 private:
  explicit AttributeValue(AttributeType type) noexcept : type_(type) {}

  AttributeType type_ = AttributeType::kNull;
  bool bool_ = false;                 // BOOL
  std::string scalar_;                // S, N, B
  std::vector<std::string> set_;      // SS, NS, BS
  std::vector<AttributeValue> list_;  // L
  std::unique_ptr<Item> map_;         // M (never null when type_ == kMap)
};

/// The DynamoDB JSON of an item: {"name":{"S":"x"},...}.
std::string item_to_json(const Item& item);
/// Parses the DynamoDB JSON of an item. kInvalidArgument if malformed.
Result<Item> item_from_json(std::string_view json);

/// Writes `value.to_json()` (readable GoogleTest failure messages).
std::ostream& operator<<(std::ostream& os, const AttributeValue& value);

// ---- Tables -----------------------------------------------------------------------------------

enum class KeyType : std::uint8_t { kHash, kRange };
/// The scalar types a key attribute may have: S, N, B.
enum class ScalarType : std::uint8_t { kString, kNumber, kBinary };
enum class BillingMode : std::uint8_t { kPayPerRequest, kProvisioned };
/// Which attributes a secondary index copies: ALL, KEYS_ONLY, INCLUDE.
enum class ProjectionType : std::uint8_t { kAll, kKeysOnly, kInclude };

struct KeySchemaElement {
  std::string attribute_name;
  KeyType key_type = KeyType::kHash;
  friend bool operator==(const KeySchemaElement&, const KeySchemaElement&) = default;
};

struct AttributeDefinition {
  std::string attribute_name;
  ScalarType attribute_type = ScalarType::kString;
  friend bool operator==(const AttributeDefinition&, const AttributeDefinition&) = default;
};

struct ProvisionedThroughput {
  std::int64_t read_capacity_units = 0;
  std::int64_t write_capacity_units = 0;
  friend bool operator==(const ProvisionedThroughput&, const ProvisionedThroughput&) = default;
};

struct GlobalSecondaryIndex {
  std::string index_name;
  std::vector<KeySchemaElement> key_schema;
  ProjectionType projection_type = ProjectionType::kAll;
  /// For kInclude: the non-key attributes to copy.
  std::vector<std::string> non_key_attributes;
  /// nullopt = none for an on-demand table, the table's own throughput for a provisioned one
  /// (as the KCL does).
  std::optional<ProvisionedThroughput> provisioned_throughput;
};

struct CreateTableRequest {
  std::string table_name;
  /// One HASH element, optionally followed by one RANGE element.
  std::vector<KeySchemaElement> key_schema;
  /// Every attribute used in a key schema (table or index), and no other.
  std::vector<AttributeDefinition> attribute_definitions;
  /// nullopt = on-demand (PAY_PER_REQUEST, the default); otherwise PROVISIONED with these
  /// capacity units.
  std::optional<ProvisionedThroughput> provisioned_throughput;
  std::vector<GlobalSecondaryIndex> global_secondary_indexes;
};

struct GlobalSecondaryIndexDescription {
  std::string index_name;
  std::string index_status;  // CREATING, UPDATING, DELETING, ACTIVE
  std::vector<KeySchemaElement> key_schema;
  ProjectionType projection_type = ProjectionType::kAll;
  std::int64_t item_count = 0;
};

struct TableDescription {
  std::string table_name;
  std::string table_arn;
  /// CREATING, UPDATING, DELETING, ACTIVE, INACCESSIBLE_ENCRYPTION_CREDENTIALS, ARCHIVING,
  /// ARCHIVED.
  std::string table_status;
  std::vector<KeySchemaElement> key_schema;
  std::vector<AttributeDefinition> attribute_definitions;
  /// From BillingModeSummary; a response without one (AWS omits it for tables that were always
  /// provisioned) counts as kProvisioned unless both capacity units are 0.
  BillingMode billing_mode = BillingMode::kProvisioned;
  /// 0/0 for an on-demand table.
  ProvisionedThroughput provisioned_throughput;
  /// Approximate: AWS updates it about every six hours (dynalite always reports 0).
  std::int64_t item_count = 0;
  std::int64_t table_size_bytes = 0;
  std::int64_t creation_date_time_ms = 0;  // epoch milliseconds
  std::vector<GlobalSecondaryIndexDescription> global_secondary_indexes;
};

struct ListTablesPage {
  std::vector<std::string> table_names;
  /// Pass as exclusive_start_table_name for the next page; "" on the last page.
  std::string last_evaluated_table_name;
};

// ---- Items ------------------------------------------------------------------------------------

/// Which attributes a write returns: ReturnValues NONE, ALL_OLD, UPDATED_OLD, ALL_NEW,
/// UPDATED_NEW. PutItem and DeleteItem accept only kNone and kAllOld (the server rejects the
/// others with kInvalidArgument).
enum class ReturnValues : std::uint8_t { kNone, kAllOld, kUpdatedOld, kAllNew, kUpdatedNew };

/// Options of PutItem, UpdateItem and DeleteItem.
struct WriteOptions {
  /// ConditionExpression; "" = unconditional. When it is false the call fails with kAborted
  /// and aws_error_code "ConditionalCheckFailedException", and nothing is written.
  std::string condition_expression;
  /// ExpressionAttributeNames: "#placeholder" → attribute name. Used by the condition and (for
  /// UpdateItem) the update expression. Every entry must be used by an expression.
  std::map<std::string, std::string> expression_attribute_names;
  /// ExpressionAttributeValues: ":placeholder" → value. Every entry must be used.
  Item expression_attribute_values;
  ReturnValues return_values = ReturnValues::kNone;
};

struct WriteResult {
  /// The attributes asked for by ReturnValues; nullopt when none were asked for or the server
  /// returned none (ALL_OLD of a put that created the item, of a delete of a missing item).
  std::optional<Item> attributes;
};

struct GetItemOptions {
  /// ConsistentRead: true = strongly consistent (reads every acknowledged write).
  bool consistent_read = false;
  /// ProjectionExpression; "" = all attributes.
  std::string projection_expression;
  std::map<std::string, std::string> expression_attribute_names;
};

/// Options shared by Scan and Query.
struct ScanQueryOptions {
  /// IndexName: read a secondary index instead of the table; "" = the table.
  std::string index_name;
  /// FilterExpression: applied after the read (Limit counts items before the filter).
  std::string filter_expression;
  /// ProjectionExpression; "" = all attributes.
  std::string projection_expression;
  std::map<std::string, std::string> expression_attribute_names;
  Item expression_attribute_values;
  /// Limit: the most items read per page (before the filter); 0 = no limit (the server stops
  /// a page at 1 MB).
  int limit = 0;
  /// ExclusiveStartKey: continue after this key (a page's last_evaluated_key).
  std::optional<Item> exclusive_start_key;
  /// ConsistentRead (not allowed on a global secondary index).
  bool consistent_read = false;
};

struct ScanOptions : ScanQueryOptions {
  /// Parallel scan: Segment in [0, total_segments); total_segments 0 = not parallel.
  int segment = 0;
  int total_segments = 0;
};

struct QueryOptions : ScanQueryOptions {
  /// ScanIndexForward: false = descending sort-key order.
  bool scan_index_forward = true;
};

/// One page of Scan or Query results.
struct ItemPage {
  std::vector<Item> items;
  /// LastEvaluatedKey: set when there may be more items; pass it as exclusive_start_key.
  std::optional<Item> last_evaluated_key;
  /// ScannedCount: items read before the filter.
  std::int64_t scanned_count = 0;
};

namespace detail {
/// Sends one DynamoDB call (operation name such as "PutItem", JSON request body) and returns
/// the response body of a 2xx answer or the mapped error. Must be thread-safe.
using DynamoDbTransport =
    std::function<Result<std::string>(std::string_view operation, const std::string& body)>;
}  // namespace detail

class DynamoDbClient {
 public:
  /// Resolves region, endpoint (AWS_ENDPOINT_URL_DYNAMODB, ...) and credentials from `config`.
  /// Errors: those of region, endpoint and credential resolution (kInvalidArgument,
  /// kNotFound for a missing region with a non-local endpoint).
  static Result<std::unique_ptr<DynamoDbClient>> create(const AwsClientConfig& config);
  /// A client whose calls go to `transport` instead of HTTP (tests, fakes, instrumentation).
  static std::unique_ptr<DynamoDbClient> create_with_transport(detail::DynamoDbTransport transport,
                                                               std::string endpoint_url = {});
  ~DynamoDbClient();
  DynamoDbClient(const DynamoDbClient&) = delete;
  DynamoDbClient& operator=(const DynamoDbClient&) = delete;

  // ---- Tables ----

  /// CreateTable. The returned description is usually CREATING: wait_for_table_active().
  /// kAlreadyExists (aws_error_code "ResourceInUseException") if the table exists or is being
  /// created or deleted; kInvalidArgument for a bad schema; kResourceExhausted
  /// (LimitExceededException) when too many tables are being created at once.
  Result<TableDescription> create_table(const CreateTableRequest& request);
  /// DescribeTable. kNotFound if the table does not exist.
  Result<TableDescription> describe_table(std::string_view table_name);
  /// Polls DescribeTable (backoff from 25 ms doubling to 1 s) until the table and its global
  /// secondary indexes are ACTIVE.
  /// kNotFound if it does not exist (or disappears); kFailedPrecondition if it is DELETING;
  /// kDeadlineExceeded if it is not ACTIVE after `timeout`.
  Status wait_for_table_active(std::string_view table_name, std::chrono::milliseconds timeout);
  /// Polls DescribeTable until it answers kNotFound. kDeadlineExceeded after `timeout`.
  Status wait_for_table_deleted(std::string_view table_name, std::chrono::milliseconds timeout);
  /// DeleteTable. kNotFound if the table does not exist; kFailedPrecondition
  /// (ResourceInUseException) if it is being created or updated.
  Status delete_table(std::string_view table_name);
  /// One ListTables page: names after `exclusive_start_table_name` ("" = from the start), at
  /// most `limit` (1..100; 0 = the server's default, 100).
  Result<ListTablesPage> list_tables_page(std::string_view exclusive_start_table_name = {},
                                          int limit = 0);
  /// Every table name (follows LastEvaluatedTableName).
  Result<std::vector<std::string>> list_tables();

  // ---- Items ----

  /// GetItem by its full primary key. nullopt if there is no such item.
  /// kNotFound if the table does not exist; kInvalidArgument if `key` is not the table's key.
  Result<std::optional<Item>> get_item(std::string_view table_name, const Item& key,
                                       const GetItemOptions& options = {});
  /// PutItem: creates or replaces the whole item. kAborted if the condition is false.
  Result<WriteResult> put_item(std::string_view table_name, const Item& item,
                               const WriteOptions& options = {});
  /// UpdateItem: applies `update_expression` ("SET a = :v REMOVE b", "ADD c :one", ...; "" =
  /// none) to the item with `key`, creating it if absent (unless the condition forbids).
  /// kAborted if the condition is false.
  Result<WriteResult> update_item(std::string_view table_name, const Item& key,
                                  std::string_view update_expression,
                                  const WriteOptions& options = {});
  /// DeleteItem. Deleting a missing item is not an error (unless the condition says so).
  /// kAborted if the condition is false.
  Result<WriteResult> delete_item(std::string_view table_name, const Item& key,
                                  const WriteOptions& options = {});

  /// One Scan page, starting after options.exclusive_start_key.
  Result<ItemPage> scan(std::string_view table_name, const ScanOptions& options = {});
  /// Every item of the scan (follows LastEvaluatedKey from options.exclusive_start_key; each
  /// request reads at most options.limit items). kInternal if the server's pagination does not
  /// advance.
  Result<std::vector<Item>> scan_all(std::string_view table_name, const ScanOptions& options = {});
  /// One Query page. `key_condition_expression` is required ("pk = :p AND sk > :s").
  Result<ItemPage> query(std::string_view table_name, std::string_view key_condition_expression,
                         const QueryOptions& options = {});
  /// Every item of the query (follows LastEvaluatedKey, as scan_all()).
  Result<std::vector<Item>> query_all(std::string_view table_name,
                                      std::string_view key_condition_expression,
                                      const QueryOptions& options = {});

  /// The endpoint URL requests go to.
  std::string endpoint_url() const;

 private:
  DynamoDbClient(detail::DynamoDbTransport transport, std::string endpoint_url);
  Result<std::string> call(std::string_view operation, Result<std::string> body);

  detail::DynamoDbTransport transport_;
  std::string endpoint_url_;
};

}  // namespace shardline
