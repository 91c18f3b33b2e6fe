// The DynamoDB client: requests built and responses parsed with nlohmann::json (DynamoDB
// serves the low-volume lease table here, so clarity beats speed). Attribute values keep
// numbers as decimal text end to end; nothing converts them through a double.
#include "shardline/dynamodb.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <ostream>
#include <thread>
#include <utility>

#include "aws/service_client.h"
#include "core/digest.h"

namespace shardline {

using json = nlohmann::json;

namespace {

// DynamoDB allows 32 levels of nesting; the client accepts a little more and leaves the exact
// limit to the server. The bound keeps the recursive encoder and decoder off the stack's edge.
constexpr int kMaxNesting = 64;

// ---- Encoding: AttributeValue → DynamoDB JSON -------------------------------------------------

Status encode_value(const AttributeValue& v, int depth, json& out, std::string& path);

Status encode_item(const Item& item, int depth, json& out, std::string& path) {
  out = json::object();
  for (const auto& [name, value] : item) {
    const std::size_t mark = path.size();
    path.append(".").append(name);
    json& slot = out[name];
    Status s = encode_value(value, depth, slot, path);
    if (!s.ok()) return s;
    path.resize(mark);
  }
  return {};
}

Status encode_value(const AttributeValue& v, int depth, json& out, std::string& path) {
  if (depth > kMaxNesting) {
    return Status::invalid_argument(path + ": value nested deeper than " +
                                    std::to_string(kMaxNesting) + " levels");
  }
  out = json::object();
  switch (v.type()) {
    case AttributeType::kNull:
      out["NULL"] = true;
      break;
    case AttributeType::kString:
      out["S"] = *v.as_string();
      break;
    case AttributeType::kNumber:
      out["N"] = *v.as_number();
      break;
    case AttributeType::kBinary:
      out["B"] = detail::base64_encode(*v.as_binary());
      break;
    case AttributeType::kBool:
      out["BOOL"] = *v.as_bool();
      break;
    case AttributeType::kStringSet:
      out["SS"] = *v.as_string_set();
      break;
    case AttributeType::kNumberSet:
      out["NS"] = *v.as_number_set();
      break;
    case AttributeType::kBinarySet: {
      json& arr = out["BS"] = json::array();
      for (const std::string& b : *v.as_binary_set()) arr.push_back(detail::base64_encode(b));
      break;
    }
    case AttributeType::kList: {
      json& arr = out["L"] = json::array();
      const auto& list = *v.as_list();
      for (std::size_t i = 0; i < list.size(); ++i) {
        const std::size_t mark = path.size();
        path.append("[").append(std::to_string(i)).append("]");
        json element;
        Status s = encode_value(list[i], depth + 1, element, path);
        if (!s.ok()) return s;
        arr.push_back(std::move(element));
        path.resize(mark);
      }
      break;
    }
    case AttributeType::kMap: {
      json m;
      Status s = encode_item(*v.as_map(), depth + 1, m, path);
      if (!s.ok()) return s;
      out["M"] = std::move(m);
      break;
    }
  }
  return {};
}

// Encodes `item` as the member `key` of `req` ("Item", "Key", ...; also the path in messages).
Status put_item_field(json& req, std::string_view key, const Item& item) {
  std::string path(key);
  json encoded;
  Status s = encode_item(item, 0, encoded, path);
  if (!s.ok()) return s;
  req[std::string(key)] = std::move(encoded);
  return {};
}

// The request body, or kInvalidArgument when a string is not UTF-8 (DynamoDB requires UTF-8;
// nlohmann's strict dump refuses anything else).
Result<std::string> dump_request(const json& req) {
  try {
    return req.dump();
  } catch (const json::type_error&) {
    return Status::invalid_argument(
        "a string in the request is not valid UTF-8 (DynamoDB strings must be UTF-8; use "
        "AttributeValue::binary for bytes)");
  }
}

// ---- Decoding: DynamoDB JSON → AttributeValue -------------------------------------------------
// Decoders return false with `error` saying where and what is wrong:
// "Items[2].lease.M.owners.L[0]: SS holds a number, not a string". `path` is the location of
// the value being decoded.

bool decode_value(const json& j, int depth, std::string& path, AttributeValue& out,
                  std::string& error);

bool fail(const std::string& path, std::string_view what, std::string& error) {
  error = path;
  error.append(": ").append(what);
  return false;
}

bool decode_item(const json& j, int depth, std::string& path, Item& out, std::string& error) {
  if (!j.is_object()) {
    return fail(path, std::string("a JSON ") + j.type_name() + ", not an object", error);
  }
  out.clear();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::size_t mark = path.size();
    path.append(".").append(it.key());
    AttributeValue v;
    if (!decode_value(it.value(), depth, path, v, error)) return false;
    path.resize(mark);
    out.emplace(it.key(), std::move(v));
  }
  return true;
}

bool decode_strings(const json& j, const std::string& type, const std::string& path,
                    std::vector<std::string>& out, std::string& error) {
  if (!j.is_array()) {
    return fail(path, type + " is a JSON " + j.type_name() + ", not an array", error);
  }
  out.clear();
  out.reserve(j.size());
  for (const json& e : j) {
    if (!e.is_string()) {
      return fail(path, type + " holds a JSON " + e.type_name() + ", not a string", error);
    }
    out.push_back(e.get<std::string>());
  }
  return true;
}

bool decode_value(const json& j, int depth, std::string& path, AttributeValue& out,
                  std::string& error) {
  if (depth > kMaxNesting) {
    return fail(path, "value nested deeper than " + std::to_string(kMaxNesting) + " levels", error);
  }
  if (!j.is_object()) {
    return fail(path, std::string("a JSON ") + j.type_name() + ", not an attribute value object",
                error);
  }
  // Exactly one type descriptor. Explicit JSON nulls are tolerated and ignored.
  const json* body = nullptr;
  std::string type;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_null()) continue;
    if (body != nullptr) {
      return fail(path, "attribute value has more than one type (" + type + ", " + it.key() + ")",
                  error);
    }
    body = &it.value();
    type = it.key();
  }
  if (body == nullptr) return fail(path, "attribute value has no type", error);
  const json& b = *body;
  auto need = [&](bool ok, std::string_view wanted) {
    if (ok) return true;
    return fail(path, type + " is a JSON " + b.type_name() + ", not " + std::string(wanted), error);
  };
  if (type == "S") {
    if (!need(b.is_string(), "a string")) return false;
    out = AttributeValue::string(b.get<std::string>());
  } else if (type == "N") {
    // A JSON number here would have been through a double somewhere: refuse it.
    if (!need(b.is_string(), "a string")) return false;
    std::string n = b.get<std::string>();
    if (n.empty()) return fail(path, "N is empty", error);
    out = AttributeValue::number(std::move(n));
  } else if (type == "B") {
    if (!need(b.is_string(), "a string")) return false;
    std::string bytes;
    if (!detail::base64_decode(b.get<std::string>(), bytes)) {
      return fail(path, "B is not valid base64", error);
    }
    out = AttributeValue::binary(std::move(bytes));
  } else if (type == "BOOL") {
    if (!need(b.is_boolean(), "a boolean")) return false;
    out = AttributeValue::boolean(b.get<bool>());
  } else if (type == "NULL") {
    if (!need(b.is_boolean(), "a boolean")) return false;
    out = AttributeValue::null();
  } else if (type == "SS" || type == "NS" || type == "BS") {
    std::vector<std::string> values;
    if (!decode_strings(b, type, path, values, error)) return false;
    if (type == "SS") {
      out = AttributeValue::string_set(std::move(values));
    } else if (type == "NS") {
      for (const std::string& v : values) {
        if (v.empty()) return fail(path, "NS holds an empty number", error);
      }
      out = AttributeValue::number_set(std::move(values));
    } else {
      for (std::string& v : values) {
        std::string bytes;
        if (!detail::base64_decode(v, bytes)) return fail(path, "BS holds invalid base64", error);
        v = std::move(bytes);
      }
      out = AttributeValue::binary_set(std::move(values));
    }
  } else if (type == "L") {
    if (!need(b.is_array(), "an array")) return false;
    std::vector<AttributeValue> list;
    list.reserve(b.size());
    for (std::size_t i = 0; i < b.size(); ++i) {
      const std::size_t mark = path.size();
      path.append(".L[").append(std::to_string(i)).append("]");
      AttributeValue e;
      if (!decode_value(b[i], depth + 1, path, e, error)) return false;
      path.resize(mark);
      list.push_back(std::move(e));
    }
    out = AttributeValue::list(std::move(list));
  } else if (type == "M") {
    if (!need(b.is_object(), "an object")) return false;
    const std::size_t mark = path.size();
    path.append(".M");
    Item m;
    if (!decode_item(b, depth + 1, path, m, error)) return false;
    path.resize(mark);
    out = AttributeValue::map(std::move(m));
  } else {
    return fail(path, "unknown attribute type \"" + type + "\"", error);
  }
  return true;
}

// Parses a whole document; nullopt (with `error`) if it is not JSON.
std::optional<json> parse_json(std::string_view text, std::string& error) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    error = "not JSON";
    return std::nullopt;
  }
  return doc;
}

// ---- Responses --------------------------------------------------------------------------------

// A 2xx response the client cannot understand: not retried (a write may have happened).
Status bad_response(std::string_view operation, std::string_view what) {
  std::string m(operation);
  m.append(": malformed response: ").append(what);
  return Status(StatusCode::kInternal, std::move(m), RetryClass::kNone);
}

Result<json> parse_response(std::string_view operation, const std::string& body) {
  std::string error;
  std::optional<json> doc = parse_json(body, error);
  if (!doc) return bad_response(operation, error);
  if (!doc->is_object()) {
    return bad_response(operation, std::string("a JSON ") + doc->type_name() + ", not an object");
  }
  return std::move(*doc);
}

// The member `key` of `obj` when it is present and not null.
const json* member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string string_member(const json& obj, std::string_view key) {
  const json* v = member(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// Counts and sizes (ItemCount, ScannedCount, capacity units): integers, tolerated as floats.
std::int64_t int_member(const json& obj, std::string_view key) {
  const json* v = member(obj, key);
  if (v == nullptr) return 0;
  if (v->is_number_integer()) return v->get<std::int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && std::fabs(d) < 9.0e18)
      return static_cast<std::int64_t>(std::llround(d));
  }
  return 0;
}

// An Item-valued member ("Item", "Attributes", "LastEvaluatedKey"): nullopt when absent.
Result<std::optional<Item>> item_member(std::string_view operation, const json& obj,
                                        std::string_view key) {
  const json* v = member(obj, key);
  if (v == nullptr) return std::optional<Item>();
  Item item;
  std::string path(key), error;
  if (!decode_item(*v, 0, path, item, error)) return bad_response(operation, error);
  return std::optional<Item>(std::move(item));
}

bool parse_key_schema(const json* arr, std::vector<KeySchemaElement>& out, std::string& error) {
  out.clear();
  if (arr == nullptr) return true;
  if (!arr->is_array()) {
    error = "KeySchema is not an array";
    return false;
  }
  for (const json& e : *arr) {
    KeySchemaElement k;
    k.attribute_name = string_member(e, "AttributeName");
    const std::string type = string_member(e, "KeyType");
    if (type == "HASH") {
      k.key_type = KeyType::kHash;
    } else if (type == "RANGE") {
      k.key_type = KeyType::kRange;
    } else {
      error = "KeySchema element with KeyType \"" + type + "\"";
      return false;
    }
    if (k.attribute_name.empty()) {
      error = "KeySchema element without AttributeName";
      return false;
    }
    out.push_back(std::move(k));
  }
  return true;
}

ProjectionType parse_projection_type(const json& index) {
  const json* p = member(index, "Projection");
  const std::string t = p != nullptr ? string_member(*p, "ProjectionType") : std::string();
  if (t == "KEYS_ONLY") return ProjectionType::kKeysOnly;
  if (t == "INCLUDE") return ProjectionType::kInclude;
  return ProjectionType::kAll;
}

Result<TableDescription> parse_table_description(std::string_view operation, const json* t,
                                                 std::string_view field) {
  if (t == nullptr || !t->is_object()) return bad_response(operation, "no " + std::string(field));
  TableDescription d;
  d.table_name = string_member(*t, "TableName");
  d.table_status = string_member(*t, "TableStatus");
  if (d.table_name.empty())
    return bad_response(operation, std::string(field) + " without TableName");
  if (d.table_status.empty()) {
    return bad_response(operation, std::string(field) + " without TableStatus");
  }
  d.table_arn = string_member(*t, "TableArn");
  std::string error;
  if (!parse_key_schema(member(*t, "KeySchema"), d.key_schema, error)) {
    return bad_response(operation, error);
  }
  if (const json* defs = member(*t, "AttributeDefinitions")) {
    if (!defs->is_array()) return bad_response(operation, "AttributeDefinitions is not an array");
    for (const json& e : *defs) {
      AttributeDefinition a;
      a.attribute_name = string_member(e, "AttributeName");
      const std::string type = string_member(e, "AttributeType");
      if (type == "S") {
        a.attribute_type = ScalarType::kString;
      } else if (type == "N") {
        a.attribute_type = ScalarType::kNumber;
      } else if (type == "B") {
        a.attribute_type = ScalarType::kBinary;
      } else {
        return bad_response(operation, "attribute definition with AttributeType \"" + type + "\"");
      }
      d.attribute_definitions.push_back(std::move(a));
    }
  }
  if (const json* pt = member(*t, "ProvisionedThroughput")) {
    d.provisioned_throughput.read_capacity_units = int_member(*pt, "ReadCapacityUnits");
    d.provisioned_throughput.write_capacity_units = int_member(*pt, "WriteCapacityUnits");
  }
  const json* billing = member(*t, "BillingModeSummary");
  const std::string mode = billing != nullptr ? string_member(*billing, "BillingMode") : "";
  if (mode == "PAY_PER_REQUEST") {
    d.billing_mode = BillingMode::kPayPerRequest;
  } else if (mode == "PROVISIONED") {
    d.billing_mode = BillingMode::kProvisioned;
  } else {
    d.billing_mode = d.provisioned_throughput == ProvisionedThroughput{}
                         ? BillingMode::kPayPerRequest
                         : BillingMode::kProvisioned;
  }
  d.item_count = int_member(*t, "ItemCount");
  d.table_size_bytes = int_member(*t, "TableSizeBytes");
  if (const json* created = member(*t, "CreationDateTime"); created && created->is_number()) {
    // Epoch seconds with a fraction (a timestamp, not an attribute value: a double is fine).
    const double secs = created->get<double>();
    if (std::isfinite(secs) && std::fabs(secs) < 9.0e12) {
      d.creation_date_time_ms = static_cast<std::int64_t>(std::llround(secs * 1000.0));
    }
  }
  if (const json* gsis = member(*t, "GlobalSecondaryIndexes")) {
    if (!gsis->is_array()) return bad_response(operation, "GlobalSecondaryIndexes is not an array");
    for (const json& g : *gsis) {
      GlobalSecondaryIndexDescription gd;
      gd.index_name = string_member(g, "IndexName");
      gd.index_status = string_member(g, "IndexStatus");
      if (!parse_key_schema(member(g, "KeySchema"), gd.key_schema, error)) {
        return bad_response(operation, "index " + gd.index_name + ": " + error);
      }
      gd.projection_type = parse_projection_type(g);
      gd.item_count = int_member(g, "ItemCount");
      d.global_secondary_indexes.push_back(std::move(gd));
    }
  }
  return d;
}

Result<ItemPage> parse_page(std::string_view operation, const std::string& body) {
  auto doc = parse_response(operation, body);
  if (!doc.ok()) return std::move(doc).status();
  const json* items = member(*doc, "Items");
  if (items == nullptr || !items->is_array()) return bad_response(operation, "no Items array");
  ItemPage page;
  page.items.reserve(items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    Item item;
    std::string path = "Items[" + std::to_string(i) + "]", error;
    if (!decode_item((*items)[i], 0, path, item, error)) return bad_response(operation, error);
    page.items.push_back(std::move(item));
  }
  auto lek = item_member(operation, *doc, "LastEvaluatedKey");
  if (!lek.ok()) return std::move(lek).status();
  page.last_evaluated_key = std::move(*lek);
  page.scanned_count = int_member(*doc, "ScannedCount");
  return page;
}

Result<WriteResult> parse_write(std::string_view operation, const std::string& body) {
  auto doc = parse_response(operation, body);
  if (!doc.ok()) return std::move(doc).status();
  auto attrs = item_member(operation, *doc, "Attributes");
  if (!attrs.ok()) return std::move(attrs).status();
  return WriteResult{std::move(*attrs)};
}

// ---- Request pieces ---------------------------------------------------------------------------

std::string_view key_type_name(KeyType t) { return t == KeyType::kRange ? "RANGE" : "HASH"; }

std::string_view scalar_type_name(ScalarType t) {
  switch (t) {
    case ScalarType::kString:
      return "S";
    case ScalarType::kNumber:
      return "N";
    case ScalarType::kBinary:
      return "B";
  }
  return "S";
}

std::string_view projection_type_name(ProjectionType t) {
  switch (t) {
    case ProjectionType::kAll:
      return "ALL";
    case ProjectionType::kKeysOnly:
      return "KEYS_ONLY";
    case ProjectionType::kInclude:
      return "INCLUDE";
  }
  return "ALL";
}

std::string_view return_values_name(ReturnValues r) {
  switch (r) {
    case ReturnValues::kNone:
      return "NONE";
    case ReturnValues::kAllOld:
      return "ALL_OLD";
    case ReturnValues::kUpdatedOld:
      return "UPDATED_OLD";
    case ReturnValues::kAllNew:
      return "ALL_NEW";
    case ReturnValues::kUpdatedNew:
      return "UPDATED_NEW";
  }
  return "NONE";
}

json key_schema_json(const std::vector<KeySchemaElement>& schema) {
  json arr = json::array();
  for (const auto& k : schema) {
    arr.push_back({{"AttributeName", k.attribute_name}, {"KeyType", key_type_name(k.key_type)}});
  }
  return arr;
}

json throughput_json(const ProvisionedThroughput& t) {
  return {{"ReadCapacityUnits", t.read_capacity_units},
          {"WriteCapacityUnits", t.write_capacity_units}};
}

Status check_table_name(std::string_view table_name) {
  if (table_name.empty()) return Status::invalid_argument("the table name is empty");
  return {};
}

Status check_key(const Item& key) {
  if (key.empty()) return Status::invalid_argument("the key is empty");
  return {};
}

void add_names(json& req, const std::map<std::string, std::string>& names) {
  if (names.empty()) return;
  json& n = req["ExpressionAttributeNames"] = json::object();
  for (const auto& [placeholder, name] : names) n[placeholder] = name;
}

Status add_values(json& req, const Item& values) {
  if (values.empty()) return {};
  return put_item_field(req, "ExpressionAttributeValues", values);
}

Status add_write_options(json& req, const WriteOptions& o) {
  if (!o.condition_expression.empty()) req["ConditionExpression"] = o.condition_expression;
  add_names(req, o.expression_attribute_names);
  SHARDLINE_RETURN_IF_ERROR(add_values(req, o.expression_attribute_values));
  if (o.return_values != ReturnValues::kNone) {
    req["ReturnValues"] = return_values_name(o.return_values);
  }
  return {};
}

Status add_read_options(json& req, const ScanQueryOptions& o) {
  if (o.limit < 0) {
    return Status::invalid_argument("limit " + std::to_string(o.limit) + " is negative");
  }
  if (!o.index_name.empty()) req["IndexName"] = o.index_name;
  if (!o.filter_expression.empty()) req["FilterExpression"] = o.filter_expression;
  if (!o.projection_expression.empty()) req["ProjectionExpression"] = o.projection_expression;
  add_names(req, o.expression_attribute_names);
  SHARDLINE_RETURN_IF_ERROR(add_values(req, o.expression_attribute_values));
  if (o.limit > 0) req["Limit"] = o.limit;
  if (o.exclusive_start_key) {
    SHARDLINE_RETURN_IF_ERROR(put_item_field(req, "ExclusiveStartKey", *o.exclusive_start_key));
  }
  if (o.consistent_read) req["ConsistentRead"] = true;
  return {};
}

// Follows LastEvaluatedKey from options.exclusive_start_key until the last page.
template <class Options, class FetchPage>
Result<std::vector<Item>> all_pages(std::string_view operation, Options options, FetchPage fetch) {
  std::vector<Item> all;
  while (true) {
    Result<ItemPage> page = fetch(options);
    if (!page.ok()) return std::move(page).status();
    all.insert(all.end(), std::make_move_iterator(page->items.begin()),
               std::make_move_iterator(page->items.end()));
    if (!page->last_evaluated_key) return all;
    if (options.exclusive_start_key && *options.exclusive_start_key == *page->last_evaluated_key) {
      return bad_response(operation, "LastEvaluatedKey " + item_to_json(*page->last_evaluated_key) +
                                         " repeats the ExclusiveStartKey (pagination does not "
                                         "advance)");
    }
    options.exclusive_start_key = std::move(page->last_evaluated_key);
  }
}

// Sleeps until the next poll: `delay`, but never past `deadline`.
void sleep_before_poll(std::chrono::steady_clock::time_point deadline,
                       std::chrono::milliseconds& delay) {
  const auto left = deadline - std::chrono::steady_clock::now();
  // Polling a remote state: there is no event to wait on. A cancelled scope ends the wait (the
  // next DescribeTable then returns kCancelled).
  const auto wait = std::min<std::chrono::steady_clock::duration>(delay, left);
  if (const CancelToken* cancel = detail::scoped_cancel_token()) {
    (void)cancel->sleep_for(wait);
  } else {
    std::this_thread::sleep_for(wait);
  }
  delay = std::min(delay * 2, std::chrono::milliseconds(1000));
}

}  // namespace

// ---- AttributeValue ---------------------------------------------------------------------------

std::string_view attribute_type_name(AttributeType type) noexcept {
  switch (type) {
    case AttributeType::kNull:
      return "NULL";
    case AttributeType::kString:
      return "S";
    case AttributeType::kNumber:
      return "N";
    case AttributeType::kBinary:
      return "B";
    case AttributeType::kBool:
      return "BOOL";
    case AttributeType::kStringSet:
      return "SS";
    case AttributeType::kNumberSet:
      return "NS";
    case AttributeType::kBinarySet:
      return "BS";
    case AttributeType::kList:
      return "L";
    case AttributeType::kMap:
      return "M";
  }
  return "NULL";
}

AttributeValue::AttributeValue(const AttributeValue& other)
    : type_(other.type_),
      bool_(other.bool_),
      scalar_(other.scalar_),
      set_(other.set_),
      list_(other.list_),
      map_(other.map_ ? std::make_unique<Item>(*other.map_) : nullptr) {}

AttributeValue& AttributeValue::operator=(const AttributeValue& other) {
  if (this != &other) *this = AttributeValue(other);
  return *this;
}

// Moves leave `other` NULL, so a moved-from M never has a null map.
AttributeValue::AttributeValue(AttributeValue&& other) noexcept
    : type_(other.type_),
      bool_(other.bool_),
      scalar_(std::move(other.scalar_)),
      set_(std::move(other.set_)),
      list_(std::move(other.list_)),
      map_(std::move(other.map_)) {
  other.type_ = AttributeType::kNull;
  other.bool_ = false;
}

AttributeValue& AttributeValue::operator=(AttributeValue&& other) noexcept {
  if (this != &other) {
    type_ = other.type_;
    bool_ = other.bool_;
    scalar_ = std::move(other.scalar_);
    set_ = std::move(other.set_);
    list_ = std::move(other.list_);
    map_ = std::move(other.map_);
    other.type_ = AttributeType::kNull;
    other.bool_ = false;
    other.scalar_.clear();
    other.set_.clear();
    other.list_.clear();
  }
  return *this;
}

AttributeValue::~AttributeValue() = default;

AttributeValue AttributeValue::string(std::string value) {
  AttributeValue v(AttributeType::kString);
  v.scalar_ = std::move(value);
  return v;
}

AttributeValue AttributeValue::number(std::string decimal) {
  AttributeValue v(AttributeType::kNumber);
  v.scalar_ = std::move(decimal);
  return v;
}

AttributeValue AttributeValue::number(std::int64_t value) { return number(std::to_string(value)); }

AttributeValue AttributeValue::binary(std::string bytes) {
  AttributeValue v(AttributeType::kBinary);
  v.scalar_ = std::move(bytes);
  return v;
}

AttributeValue AttributeValue::boolean(bool value) {
  AttributeValue v(AttributeType::kBool);
  v.bool_ = value;
  return v;
}

AttributeValue AttributeValue::string_set(std::vector<std::string> values) {
  AttributeValue v(AttributeType::kStringSet);
  v.set_ = std::move(values);
  return v;
}

AttributeValue AttributeValue::number_set(std::vector<std::string> decimals) {
  AttributeValue v(AttributeType::kNumberSet);
  v.set_ = std::move(decimals);
  return v;
}

AttributeValue AttributeValue::binary_set(std::vector<std::string> byte_strings) {
  AttributeValue v(AttributeType::kBinarySet);
  v.set_ = std::move(byte_strings);
  return v;
}

AttributeValue AttributeValue::list(std::vector<AttributeValue> values) {
  AttributeValue v(AttributeType::kList);
  v.list_ = std::move(values);
  return v;
}

AttributeValue AttributeValue::map(Item values) {
  AttributeValue v(AttributeType::kMap);
  v.map_ = std::make_unique<Item>(std::move(values));
  return v;
}

const std::string* AttributeValue::as_string() const noexcept {
  return type_ == AttributeType::kString ? &scalar_ : nullptr;
}
const std::string* AttributeValue::as_number() const noexcept {
  return type_ == AttributeType::kNumber ? &scalar_ : nullptr;
}
const std::string* AttributeValue::as_binary() const noexcept {
  return type_ == AttributeType::kBinary ? &scalar_ : nullptr;
}
std::optional<bool> AttributeValue::as_bool() const noexcept {
  if (type_ != AttributeType::kBool) return std::nullopt;
  return bool_;
}
const std::vector<std::string>* AttributeValue::as_string_set() const noexcept {
  return type_ == AttributeType::kStringSet ? &set_ : nullptr;
}
const std::vector<std::string>* AttributeValue::as_number_set() const noexcept {
  return type_ == AttributeType::kNumberSet ? &set_ : nullptr;
}
const std::vector<std::string>* AttributeValue::as_binary_set() const noexcept {
  return type_ == AttributeType::kBinarySet ? &set_ : nullptr;
}
const std::vector<AttributeValue>* AttributeValue::as_list() const noexcept {
  return type_ == AttributeType::kList ? &list_ : nullptr;
}
std::vector<AttributeValue>* AttributeValue::as_list() noexcept {
  return type_ == AttributeType::kList ? &list_ : nullptr;
}
const Item* AttributeValue::as_map() const noexcept {
  return type_ == AttributeType::kMap ? map_.get() : nullptr;
}
Item* AttributeValue::as_map() noexcept {
  return type_ == AttributeType::kMap ? map_.get() : nullptr;
}

Result<std::int64_t> AttributeValue::to_int64() const {
  if (type_ != AttributeType::kNumber) {
    return Status::invalid_argument("attribute is " + std::string(attribute_type_name(type_)) +
                                    ", not N");
  }
  const std::string& s = scalar_;
  const std::size_t digits_from = !s.empty() && s[0] == '-' ? 1 : 0;
  if (s.size() == digits_from ||
      !std::all_of(s.begin() + static_cast<std::ptrdiff_t>(digits_from), s.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::invalid_argument("number \"" + s + "\" is not an integer");
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return Status::out_of_range("number " + s + " does not fit in 64 bits");
  }
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Status::invalid_argument("number \"" + s + "\" is not an integer");
  }
  return value;
}

std::string AttributeValue::to_json() const {
  json j;
  std::string path = "value";
  Status s = encode_value(*this, 0, j, path);
  if (!s.ok()) return json(std::string(s.message())).dump();
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<AttributeValue> AttributeValue::from_json(std::string_view text) {
  std::string error, path = "value";
  std::optional<json> doc = parse_json(text, error);
  AttributeValue v;
  if (!doc || !decode_value(*doc, 0, path, v, error)) {
    return Status::invalid_argument("not a DynamoDB attribute value: " + error);
  }
  return v;
}

bool operator==(const AttributeValue& a, const AttributeValue& b) {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case AttributeType::kNull:
      return true;
    case AttributeType::kBool:
      return a.bool_ == b.bool_;
    case AttributeType::kString:
    case AttributeType::kNumber:
    case AttributeType::kBinary:
      return a.scalar_ == b.scalar_;
    case AttributeType::kStringSet:
    case AttributeType::kNumberSet:
    case AttributeType::kBinarySet: {
      if (a.set_.size() != b.set_.size()) return false;
      std::vector<std::string> x = a.set_, y = b.set_;
      std::sort(x.begin(), x.end());
      std::sort(y.begin(), y.end());
      return x == y;
    }
    case AttributeType::kList:
      return a.list_ == b.list_;
    case AttributeType::kMap:
      return *a.map_ == *b.map_;
  }
  return false;
}

std::string item_to_json(const Item& item) {
  json j;
  std::string path = "item";
  Status s = encode_item(item, 0, j, path);
  if (!s.ok()) return json(std::string(s.message())).dump();
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Item> item_from_json(std::string_view text) {
  std::string error, path = "item";
  std::optional<json> doc = parse_json(text, error);
  Item item;
  if (!doc || !decode_item(*doc, 0, path, item, error)) {
    return Status::invalid_argument("not a DynamoDB item: " + error);
  }
  return item;
}

std::ostream& operator<<(std::ostream& os, const AttributeValue& value) {
  return os << value.to_json();
}

// ---- DynamoDbClient ---------------------------------------------------------------------------

Result<std::unique_ptr<DynamoDbClient>> DynamoDbClient::create(const AwsClientConfig& config) {
  auto svc = detail::ServiceClient::create(config, detail::kDynamoDbSpec);
  if (!svc.ok()) return std::move(svc).status();
  std::shared_ptr<detail::ServiceClient> service = std::move(*svc);
  std::string url = service->endpoint().url();
  detail::DynamoDbTransport transport = [service](std::string_view operation,
                                                  const std::string& body) -> Result<std::string> {
    auto r = service->call(operation, body);
    if (!r.ok()) return std::move(r).status();
    return std::move(r->body);
  };
  return std::unique_ptr<DynamoDbClient>(new DynamoDbClient(std::move(transport), std::move(url)));
}

std::unique_ptr<DynamoDbClient> DynamoDbClient::create_with_transport(
    detail::DynamoDbTransport transport, std::string endpoint_url) {
  return std::unique_ptr<DynamoDbClient>(
      new DynamoDbClient(std::move(transport), std::move(endpoint_url)));
}

DynamoDbClient::DynamoDbClient(detail::DynamoDbTransport transport, std::string endpoint_url)
    : transport_(std::move(transport)), endpoint_url_(std::move(endpoint_url)) {}

DynamoDbClient::~DynamoDbClient() = default;

std::string DynamoDbClient::endpoint_url() const { return endpoint_url_; }

// Sends `req` (a request under construction, or the error met while building it). Errors the
// client finds itself get the operation as context, as the service's errors do.
Result<std::string> DynamoDbClient::call(std::string_view operation, Result<std::string> body) {
  if (!body.ok()) return std::move(body).status().with_context(operation);
  try {
    return transport_(operation, *body);
  } catch (const std::exception& e) {
    // Only a test transport can throw; report it rather than unwind through the caller.
    return Status::internal(std::string(operation) + ": transport threw: " + e.what());
  }
}

namespace {
// Builds a request: `fill` adds the fields; any error it returns is the call's error.
template <class Fill>
Result<std::string> build(Fill fill) {
  json req = json::object();
  Status s = fill(req);
  if (!s.ok()) return s;
  return dump_request(req);
}
}  // namespace

Result<TableDescription> DynamoDbClient::create_table(const CreateTableRequest& request) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(request.table_name));
    req["TableName"] = request.table_name;
    req["KeySchema"] = key_schema_json(request.key_schema);
    json& defs = req["AttributeDefinitions"] = json::array();
    for (const auto& a : request.attribute_definitions) {
      defs.push_back({{"AttributeName", a.attribute_name},
                      {"AttributeType", scalar_type_name(a.attribute_type)}});
    }
    if (request.provisioned_throughput) {
      req["BillingMode"] = "PROVISIONED";
      req["ProvisionedThroughput"] = throughput_json(*request.provisioned_throughput);
    } else {
      req["BillingMode"] = "PAY_PER_REQUEST";
    }
    if (!request.global_secondary_indexes.empty()) {
      json& gsis = req["GlobalSecondaryIndexes"] = json::array();
      for (const auto& g : request.global_secondary_indexes) {
        json index = {{"IndexName", g.index_name}, {"KeySchema", key_schema_json(g.key_schema)}};
        json projection = {{"ProjectionType", projection_type_name(g.projection_type)}};
        if (!g.non_key_attributes.empty()) projection["NonKeyAttributes"] = g.non_key_attributes;
        index["Projection"] = std::move(projection);
        if (g.provisioned_throughput) {
          index["ProvisionedThroughput"] = throughput_json(*g.provisioned_throughput);
        } else if (request.provisioned_throughput) {
          index["ProvisionedThroughput"] = throughput_json(*request.provisioned_throughput);
        }
        gsis.push_back(std::move(index));
      }
    }
    return {};
  });
  constexpr std::string_view kOp = "CreateTable";
  auto r = call(kOp, std::move(body));
  if (!r.ok()) {
    Status s = std::move(r).status();
    // On create, "in use" means the table already exists (or is still being created/deleted).
    if (s.aws_error_code() == "ResourceInUseException") {
      Status exists(StatusCode::kAlreadyExists, std::string(s.message()), RetryClass::kNone);
      exists.set_aws(std::string(s.aws_error_code()), s.http_status(), std::string(s.request_id()));
      return exists;
    }
    return s;
  }
  auto doc = parse_response(kOp, *r);
  if (!doc.ok()) return std::move(doc).status();
  return parse_table_description(kOp, member(*doc, "TableDescription"), "TableDescription");
}

Result<TableDescription> DynamoDbClient::describe_table(std::string_view table_name) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    req["TableName"] = table_name;
    return {};
  });
  constexpr std::string_view kOp = "DescribeTable";
  auto r = call(kOp, std::move(body));
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_response(kOp, *r);
  if (!doc.ok()) return std::move(doc).status();
  return parse_table_description(kOp, member(*doc, "Table"), "Table");
}

Status DynamoDbClient::wait_for_table_active(std::string_view table_name,
                                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(25);
  while (true) {
    auto d = describe_table(table_name);
    if (!d.ok()) return std::move(d).status();
    std::string waiting_for;
    if (d->table_status == "DELETING") {
      return Status::failed_precondition("table " + std::string(table_name) + " is being deleted");
    }
    if (d->table_status != "ACTIVE") {
      waiting_for = "table " + std::string(table_name) + " is " + d->table_status;
    } else {
      for (const auto& g : d->global_secondary_indexes) {
        if (g.index_status != "ACTIVE" && !g.index_status.empty()) {
          waiting_for = "index " + g.index_name + " of table " + std::string(table_name) + " is " +
                        g.index_status;
          break;
        }
      }
    }
    if (waiting_for.empty()) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::deadline_exceeded(waiting_for + " after " + std::to_string(timeout.count()) +
                                       " ms");
    }
    sleep_before_poll(deadline, delay);
  }
}

Status DynamoDbClient::wait_for_table_deleted(std::string_view table_name,
                                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(25);
  while (true) {
    auto d = describe_table(table_name);
    if (!d.ok()) {
      if (d.status().code() == StatusCode::kNotFound) return {};
      return std::move(d).status();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::deadline_exceeded("table " + std::string(table_name) + " is still " +
                                       d->table_status + " after " +
                                       std::to_string(timeout.count()) + " ms");
    }
    sleep_before_poll(deadline, delay);
  }
}

Status DynamoDbClient::delete_table(std::string_view table_name) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    req["TableName"] = table_name;
    return {};
  });
  auto r = call("DeleteTable", std::move(body));
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_response("DeleteTable", *r);
  return doc.ok() ? Status() : std::move(doc).status();
}

Result<ListTablesPage> DynamoDbClient::list_tables_page(std::string_view exclusive_start_table_name,
                                                        int limit) {
  auto body = build([&](json& req) -> Status {
    if (limit < 0)
      return Status::invalid_argument("limit " + std::to_string(limit) + " is negative");
    if (!exclusive_start_table_name.empty()) {
      req["ExclusiveStartTableName"] = exclusive_start_table_name;
    }
    if (limit > 0) req["Limit"] = limit;
    return {};
  });
  constexpr std::string_view kOp = "ListTables";
  auto r = call(kOp, std::move(body));
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_response(kOp, *r);
  if (!doc.ok()) return std::move(doc).status();
  const json* names = member(*doc, "TableNames");
  if (names == nullptr || !names->is_array()) return bad_response(kOp, "no TableNames array");
  ListTablesPage page;
  for (const json& n : *names) {
    if (!n.is_string()) return bad_response(kOp, "a table name is not a string");
    page.table_names.push_back(n.get<std::string>());
  }
  page.last_evaluated_table_name = string_member(*doc, "LastEvaluatedTableName");
  return page;
}

Result<std::vector<std::string>> DynamoDbClient::list_tables() {
  std::vector<std::string> names;
  std::string start;
  while (true) {
    auto page = list_tables_page(start);
    if (!page.ok()) return std::move(page).status();
    names.insert(names.end(), page->table_names.begin(), page->table_names.end());
    if (page->last_evaluated_table_name.empty()) return names;
    if (page->last_evaluated_table_name == start) {
      return bad_response("ListTables", "LastEvaluatedTableName " + start +
                                            " repeats (pagination does not advance)");
    }
    start = std::move(page->last_evaluated_table_name);
  }
}

Result<std::optional<Item>> DynamoDbClient::get_item(std::string_view table_name, const Item& key,
                                                     const GetItemOptions& options) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    SHARDLINE_RETURN_IF_ERROR(check_key(key));
    req["TableName"] = table_name;
    SHARDLINE_RETURN_IF_ERROR(put_item_field(req, "Key", key));
    if (options.consistent_read) req["ConsistentRead"] = true;
    if (!options.projection_expression.empty()) {
      req["ProjectionExpression"] = options.projection_expression;
    }
    add_names(req, options.expression_attribute_names);
    return {};
  });
  constexpr std::string_view kOp = "GetItem";
  auto r = call(kOp, std::move(body));
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_response(kOp, *r);
  if (!doc.ok()) return std::move(doc).status();
  return item_member(kOp, *doc, "Item");
}

Result<WriteResult> DynamoDbClient::put_item(std::string_view table_name, const Item& item,
                                             const WriteOptions& options) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    if (item.empty()) return Status::invalid_argument("the item is empty");
    req["TableName"] = table_name;
    SHARDLINE_RETURN_IF_ERROR(put_item_field(req, "Item", item));
    return add_write_options(req, options);
  });
  auto r = call("PutItem", std::move(body));
  if (!r.ok()) return std::move(r).status();
  return parse_write("PutItem", *r);
}

Result<WriteResult> DynamoDbClient::update_item(std::string_view table_name, const Item& key,
                                                std::string_view update_expression,
                                                const WriteOptions& options) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    SHARDLINE_RETURN_IF_ERROR(check_key(key));
    req["TableName"] = table_name;
    SHARDLINE_RETURN_IF_ERROR(put_item_field(req, "Key", key));
    if (!update_expression.empty()) req["UpdateExpression"] = update_expression;
    return add_write_options(req, options);
  });
  auto r = call("UpdateItem", std::move(body));
  if (!r.ok()) return std::move(r).status();
  return parse_write("UpdateItem", *r);
}

Result<WriteResult> DynamoDbClient::delete_item(std::string_view table_name, const Item& key,
                                                const WriteOptions& options) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    SHARDLINE_RETURN_IF_ERROR(check_key(key));
    req["TableName"] = table_name;
    SHARDLINE_RETURN_IF_ERROR(put_item_field(req, "Key", key));
    return add_write_options(req, options);
  });
  auto r = call("DeleteItem", std::move(body));
  if (!r.ok()) return std::move(r).status();
  return parse_write("DeleteItem", *r);
}

Result<ItemPage> DynamoDbClient::scan(std::string_view table_name, const ScanOptions& options) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    req["TableName"] = table_name;
    SHARDLINE_RETURN_IF_ERROR(add_read_options(req, options));
    if (options.total_segments > 0) {
      if (options.segment < 0 || options.segment >= options.total_segments) {
        return Status::invalid_argument("segment " + std::to_string(options.segment) +
                                        " is not in [0, " + std::to_string(options.total_segments) +
                                        ")");
      }
      req["Segment"] = options.segment;
      req["TotalSegments"] = options.total_segments;
    }
    return {};
  });
  auto r = call("Scan", std::move(body));
  if (!r.ok()) return std::move(r).status();
  return parse_page("Scan", *r);
}

Result<std::vector<Item>> DynamoDbClient::scan_all(std::string_view table_name,
                                                   const ScanOptions& options) {
  return all_pages("Scan", options, [&](const ScanOptions& o) { return scan(table_name, o); });
}

Result<ItemPage> DynamoDbClient::query(std::string_view table_name,
                                       std::string_view key_condition_expression,
                                       const QueryOptions& options) {
  auto body = build([&](json& req) -> Status {
    SHARDLINE_RETURN_IF_ERROR(check_table_name(table_name));
    if (key_condition_expression.empty()) {
      return Status::invalid_argument("the key condition expression is empty");
    }
    req["TableName"] = table_name;
    req["KeyConditionExpression"] = key_condition_expression;
    SHARDLINE_RETURN_IF_ERROR(add_read_options(req, options));
    if (!options.scan_index_forward) req["ScanIndexForward"] = false;
    return {};
  });
  auto r = call("Query", std::move(body));
  if (!r.ok()) return std::move(r).status();
  return parse_page("Query", *r);
}

Result<std::vector<Item>> DynamoDbClient::query_all(std::string_view table_name,
                                                    std::string_view key_condition_expression,
                                                    const QueryOptions& options) {
  return all_pages("Query", options, [&](const QueryOptions& o) {
    return query(table_name, key_condition_expression, o);
  });
}

}  // namespace shardline
