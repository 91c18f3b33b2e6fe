// The DynamoDB client (include/shardline/dynamodb.h) against a fake transport: the request JSON
// of each operation (compared as parsed JSON), the parsing of every attribute type and of each
// response, the mapping of AWS error bodies, and clear kInternal errors (never a crash) for
// responses that are not what the operation defines.
#include "shardline/dynamodb.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "aws/aws_errors.h"
#include "support/fake_dynamodb.h"

namespace shardline {
namespace {

using json = nlohmann::json;
using AV = AttributeValue;

using FakeTransport = shardline::testing::FakeDynamoDbTransport;

// The error a real ServiceClient produces for an HTTP error response.
Status aws_error(int http_status, std::string_view body, std::string_view type_header = {}) {
  return detail::aws_error_status(http_status, body, type_header, "req-1");
}

// Every attribute type, nested, in DynamoDB JSON, and the value it means.
const char* const kAllTypesJson = R"({
  "s": {"S": "héllo"},
  "n": {"N": "12345678901234567890123456789012345678"},
  "frac": {"N": "0.1"},
  "b": {"B": "AP8Qgw=="},
  "t": {"BOOL": true},
  "f": {"BOOL": false},
  "nul": {"NULL": true},
  "ss": {"SS": ["a", "b"]},
  "ns": {"NS": ["1", "-2.5", "3E+10"]},
  "bs": {"BS": ["AA==", "/w=="]},
  "l": {"L": [{"S": "x"}, {"N": "1"}, {"L": [{"BOOL": false}]}, {"M": {"k": {"B": "AQI="}}}]},
  "m": {"M": {"inner": {"M": {"deep": {"L": [{"NULL": true}, {"SS": ["z"]}]}}}, "e": {"M": {}}}}
})";

Item all_types_item() {
  return Item{
      {"s", AV::string("héllo")},
      {"n", AV::number("12345678901234567890123456789012345678")},
      {"frac", AV::number("0.1")},
      {"b", AV::binary(std::string("\x00\xff\x10\x83", 4))},
      {"t", AV::boolean(true)},
      {"f", AV::boolean(false)},
      {"nul", AV::null()},
      {"ss", AV::string_set({"a", "b"})},
      {"ns", AV::number_set({"1", "-2.5", "3E+10"})},
      {"bs", AV::binary_set({std::string("\x00", 1), "\xff"})},
      {"l", AV::list({AV::string("x"), AV::number(1), AV::list({AV::boolean(false)}),
                      AV::map({{"k", AV::binary("\x01\x02")}})})},
      {"m", AV::map({{"inner", AV::map({{"deep", AV::list({AV::null(), AV::string_set({"z"})})}})},
                     {"e", AV::map({})}})},
  };
}

// ---- AttributeValue ---------------------------------------------------------------------------

TEST(DynamoDbAttributeValue, FactoriesAndAccessors) {
  EXPECT_TRUE(AV().is_null());
  EXPECT_EQ(AV::null().type(), AttributeType::kNull);
  EXPECT_EQ(*AV::string("x").as_string(), "x");
  EXPECT_EQ(AV::string("x").as_number(), nullptr);
  EXPECT_EQ(*AV::number("1.50").as_number(), "1.50");  // verbatim: the server normalizes
  EXPECT_EQ(*AV::number(std::int64_t{-42}).as_number(), "-42");
  EXPECT_EQ(*AV::binary(std::string("\0a", 2)).as_binary(), std::string("\0a", 2));
  EXPECT_EQ(AV::boolean(false).as_bool(), std::optional<bool>(false));
  EXPECT_EQ(AV::string("true").as_bool(), std::nullopt);
  EXPECT_EQ(*AV::string_set({"a"}).as_string_set(), std::vector<std::string>{"a"});
  EXPECT_EQ(*AV::number_set({"1"}).as_number_set(), std::vector<std::string>{"1"});
  EXPECT_EQ(AV::number_set({"1"}).as_string_set(), nullptr);
  EXPECT_EQ(*AV::binary_set({"\x01"}).as_binary_set(), std::vector<std::string>{"\x01"});
  EXPECT_EQ(AV::list({AV::number(1)}).as_list()->size(), 1u);
  EXPECT_EQ(AV::map({{"a", AV::null()}}).as_map()->count("a"), 1u);
  EXPECT_EQ(AV::list({}).as_map(), nullptr);

  const AttributeType all[] = {AttributeType::kNull,      AttributeType::kString,
                               AttributeType::kNumber,    AttributeType::kBinary,
                               AttributeType::kBool,      AttributeType::kStringSet,
                               AttributeType::kNumberSet, AttributeType::kBinarySet,
                               AttributeType::kList,      AttributeType::kMap};
  const char* names[] = {"NULL", "S", "N", "B", "BOOL", "SS", "NS", "BS", "L", "M"};
  for (std::size_t i = 0; i < std::size(all); ++i) EXPECT_EQ(attribute_type_name(all[i]), names[i]);
}

TEST(DynamoDbAttributeValue, ToInt64IsExact) {
  EXPECT_EQ(*AV::number("0").to_int64(), 0);
  EXPECT_EQ(*AV::number("-17").to_int64(), -17);
  EXPECT_EQ(*AV::number("9223372036854775807").to_int64(), INT64_MAX);
  EXPECT_EQ(*AV::number("-9223372036854775808").to_int64(), INT64_MIN);
  // 2^53 + 1 would not survive a double.
  EXPECT_EQ(*AV::number("9007199254740993").to_int64(), 9007199254740993LL);
  EXPECT_EQ(AV::number("9223372036854775808").to_int64().status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(AV::number("1.5").to_int64().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AV::number("1e3").to_int64().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AV::number("-").to_int64().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AV::number("").to_int64().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AV::string("5").to_int64().status().code(), StatusCode::kInvalidArgument);
}

TEST(DynamoDbAttributeValue, CopiesAreDeepAndMovesLeaveNull) {
  AV original = AV::map({{"a", AV::list({AV::map({{"b", AV::number(1)}})})}});
  AV copy = original;
  (*(*copy.as_map())["a"].as_list())[0].as_map()->at("b") = AV::number(2);
  EXPECT_EQ(*(*original.as_map()).at("a").as_list()->at(0).as_map()->at("b").as_number(), "1");
  EXPECT_FALSE(copy == original);

  AV moved = std::move(copy);
  EXPECT_EQ(moved.type(), AttributeType::kMap);
  EXPECT_TRUE(copy.is_null());  // NOLINT(bugprone-use-after-move): documented state
  copy = original;
  EXPECT_EQ(copy, original);
  AV self = original;
  const AV& alias = self;
  self = alias;
  EXPECT_EQ(self, original);
}

TEST(DynamoDbAttributeValue, Equality) {
  EXPECT_EQ(AV::string_set({"a", "b"}), AV::string_set({"b", "a"}));
  EXPECT_NE(AV::string_set({"a"}), AV::number_set({"a"}));
  EXPECT_NE(AV::number("1"), AV::number("1.0"));  // text, as documented
  EXPECT_NE(AV::string("1"), AV::number("1"));
  EXPECT_NE(AV::list({AV::number(1), AV::number(2)}), AV::list({AV::number(2), AV::number(1)}));
  EXPECT_EQ(AV::null(), AV());
  EXPECT_NE(AV::boolean(true), AV::boolean(false));
}

TEST(DynamoDbAttributeValue, JsonRoundTripOfEveryType) {
  auto parsed = item_from_json(kAllTypesJson);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(*parsed, all_types_item());
  EXPECT_EQ(json::parse(item_to_json(all_types_item())), json::parse(kAllTypesJson));

  auto v = AV::from_json(R"({"N":"-0.000001"})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v->as_number(), "-0.000001");
  EXPECT_EQ(json::parse(AV::binary("\xfa").to_json()), json::parse(R"({"B":"+g=="})"));
}

TEST(DynamoDbAttributeValue, FromJsonRejectsMalformedValues) {
  for (const char* bad : {"", "[]", R"({"N": 5})", R"({"X":"1"})", R"({})", R"({"S":"a","N":"1"})",
                          R"({"B":"!!"})", R"({"SS":"a"})", R"({"SS":[1]})", R"({"L":{}})",
                          R"({"M":[]})", R"({"BOOL":"true"})", R"({"N":""})"}) {
    auto v = AV::from_json(bad);
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(item_from_json(R"({"a":{"S":1}})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(item_from_json(R"({"a":{"M":{"b":{"L":[{"Q":1}]}}}})")
                .status()
                .message()
                .find("item.a.M.b.L[0]: unknown attribute type \"Q\""),
            std::string_view::npos);
  // Explicit nulls next to the real type are tolerated (some servers send them).
  auto tolerant = AV::from_json(R"({"S":"x","N":null})");
  ASSERT_TRUE(tolerant.ok());
  EXPECT_EQ(*tolerant, AV::string("x"));
}

// ---- Requests ---------------------------------------------------------------------------------

TEST(DynamoDbRequests, CreateTableOnDemand) {
  FakeTransport t;
  t.respond(R"({"TableDescription":{"TableName":"leases","TableStatus":"CREATING"}})");
  CreateTableRequest req;
  req.table_name = "leases";
  req.key_schema = {{"leaseKey", KeyType::kHash}};
  req.attribute_definitions = {{"leaseKey", ScalarType::kString}};
  auto r = t.client().create_table(req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->table_status, "CREATING");
  EXPECT_EQ(t.last().operation, "CreateTable");
  EXPECT_EQ(t.last().body, json::parse(R"({
    "TableName": "leases",
    "KeySchema": [{"AttributeName": "leaseKey", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "leaseKey", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST"})"));
}

TEST(DynamoDbRequests, CreateTableProvisionedWithIndexes) {
  FakeTransport t;
  t.respond(R"({"TableDescription":{"TableName":"t","TableStatus":"CREATING"}})");
  CreateTableRequest req;
  req.table_name = "t";
  req.key_schema = {{"pk", KeyType::kHash}, {"sk", KeyType::kRange}};
  req.attribute_definitions = {
      {"pk", ScalarType::kString}, {"sk", ScalarType::kNumber}, {"bin", ScalarType::kBinary}};
  req.provisioned_throughput = ProvisionedThroughput{10, 5};
  req.global_secondary_indexes.push_back(
      {"by-bin", {{"bin", KeyType::kHash}}, ProjectionType::kKeysOnly, {}, std::nullopt});
  req.global_secondary_indexes.push_back({"by-sk",
                                          {{"sk", KeyType::kHash}, {"pk", KeyType::kRange}},
                                          ProjectionType::kInclude,
                                          {"owner"},
                                          ProvisionedThroughput{1, 2}});
  ASSERT_TRUE(t.client().create_table(req).ok());
  EXPECT_EQ(t.last().body, json::parse(R"({
    "TableName": "t",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                  {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "sk", "AttributeType": "N"},
                             {"AttributeName": "bin", "AttributeType": "B"}],
    "BillingMode": "PROVISIONED",
    "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5},
    "GlobalSecondaryIndexes": [
      {"IndexName": "by-bin", "KeySchema": [{"AttributeName": "bin", "KeyType": "HASH"}],
       "Projection": {"ProjectionType": "KEYS_ONLY"},
       "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5}},
      {"IndexName": "by-sk", "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"},
                                           {"AttributeName": "pk", "KeyType": "RANGE"}],
       "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["owner"]},
       "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 2}}]})"));
}

TEST(DynamoDbRequests, TableCalls) {
  FakeTransport t;
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"ACTIVE"}})");
  ASSERT_TRUE(t.client().describe_table("a").ok());
  EXPECT_EQ(t.last().operation, "DescribeTable");
  EXPECT_EQ(t.last().body, json::parse(R"({"TableName":"a"})"));

  t.respond(R"({"TableDescription":{"TableName":"a","TableStatus":"DELETING"}})");
  ASSERT_TRUE(t.client().delete_table("a").ok());
  EXPECT_EQ(t.last().operation, "DeleteTable");
  EXPECT_EQ(t.last().body, json::parse(R"({"TableName":"a"})"));

  t.respond(R"({"TableNames":["b","c"],"LastEvaluatedTableName":"c"})");
  auto page = t.client().list_tables_page("a", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->table_names, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(page->last_evaluated_table_name, "c");
  EXPECT_EQ(t.last().operation, "ListTables");
  EXPECT_EQ(t.last().body, json::parse(R"({"ExclusiveStartTableName":"a","Limit":2})"));

  t.respond(R"({"TableNames":[]})");
  ASSERT_TRUE(t.client().list_tables_page().ok());
  EXPECT_EQ(t.last().body, json::object());
}

TEST(DynamoDbRequests, ListTablesFollowsPagination) {
  FakeTransport t;
  t.respond(R"({"TableNames":["a","b"],"LastEvaluatedTableName":"b"})");
  t.respond(R"({"TableNames":["c"],"LastEvaluatedTableName":"c"})");
  t.respond(R"({"TableNames":[]})");
  auto names = t.client().list_tables();
  ASSERT_TRUE(names.ok()) << names.status().to_string();
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.calls().size(), 3u);
  EXPECT_EQ(t.calls()[0].body, json::object());
  EXPECT_EQ(t.calls()[1].body, json::parse(R"({"ExclusiveStartTableName":"b"})"));
  EXPECT_EQ(t.calls()[2].body, json::parse(R"({"ExclusiveStartTableName":"c"})"));
}

TEST(DynamoDbRequests, GetItem) {
  FakeTransport t;
  t.respond("{}");
  GetItemOptions o;
  o.consistent_read = true;
  o.projection_expression = "#k, leaseCounter";
  o.expression_attribute_names = {{"#k", "leaseKey"}};
  auto r = t.client().get_item("leases", {{"leaseKey", AV::string("shard-1")}}, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(t.last().operation, "GetItem");
  EXPECT_EQ(t.last().body, json::parse(R"({
    "TableName": "leases", "Key": {"leaseKey": {"S": "shard-1"}}, "ConsistentRead": true,
    "ProjectionExpression": "#k, leaseCounter",
    "ExpressionAttributeNames": {"#k": "leaseKey"}})"));

  t.respond("{}");
  ASSERT_TRUE(t.client().get_item("leases", {{"leaseKey", AV::string("s")}}).ok());
  EXPECT_EQ(t.last().body,
            json::parse(R"({"TableName": "leases", "Key": {"leaseKey": {"S": "s"}}})"));
}

TEST(DynamoDbRequests, PutItemEncodesEveryTypeAndKeepsNumbersAsText) {
  FakeTransport t;
  t.respond("{}");
  WriteOptions o;
  o.condition_expression = "attribute_not_exists(#k)";
  o.expression_attribute_names = {{"#k", "leaseKey"}};
  o.return_values = ReturnValues::kAllOld;
  auto r = t.client().put_item("leases", all_types_item(), o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->attributes.has_value());
  EXPECT_EQ(t.last().operation, "PutItem");
  json expected = {{"TableName", "leases"},
                   {"Item", json::parse(kAllTypesJson)},
                   {"ConditionExpression", "attribute_not_exists(#k)"},
                   {"ExpressionAttributeNames", {{"#k", "leaseKey"}}},
                   {"ReturnValues", "ALL_OLD"}};
  EXPECT_EQ(t.last().body, expected);
  // The 38-digit number is a JSON string, not a (rounded) JSON number.
  EXPECT_TRUE(t.last().body["Item"]["n"]["N"].is_string());
}

TEST(DynamoDbRequests, UpdateItemLeaseCas) {
  FakeTransport t;
  t.respond(R"({"Attributes":{"leaseKey":{"S":"shard-1"},"leaseCounter":{"N":"8"},
                              "leaseOwner":{"S":"w1"}}})");
  WriteOptions o;
  o.condition_expression = "leaseCounter = :c AND leaseOwner = :o";
  o.expression_attribute_values = {
      {":c", AV::number(7)}, {":o", AV::string("w1")}, {":one", AV::number(1)}};
  o.return_values = ReturnValues::kAllNew;
  auto r = t.client().update_item("leases", {{"leaseKey", AV::string("shard-1")}},
                                  "SET leaseCounter = leaseCounter + :one", o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->attributes.has_value());
  EXPECT_EQ(*r->attributes->at("leaseCounter").to_int64(), 8);
  EXPECT_EQ(t.last().operation, "UpdateItem");
  EXPECT_EQ(t.last().body, json::parse(R"({
    "TableName": "leases", "Key": {"leaseKey": {"S": "shard-1"}},
    "UpdateExpression": "SET leaseCounter = leaseCounter + :one",
    "ConditionExpression": "leaseCounter = :c AND leaseOwner = :o",
    "ExpressionAttributeValues": {":c": {"N": "7"}, ":o": {"S": "w1"}, ":one": {"N": "1"}},
    "ReturnValues": "ALL_NEW"})"));

  for (auto [rv, name] : {std::pair{ReturnValues::kUpdatedOld, "UPDATED_OLD"},
                          std::pair{ReturnValues::kUpdatedNew, "UPDATED_NEW"}}) {
    t.respond("{}");
    WriteOptions w;
    w.return_values = rv;
    ASSERT_TRUE(t.client().update_item("x", {{"k", AV::number(1)}}, "REMOVE a", w).ok());
    EXPECT_EQ(t.last().body["ReturnValues"], name);
  }
  // No update expression and no options: only the key.
  t.respond("{}");
  ASSERT_TRUE(t.client().update_item("x", {{"k", AV::number(1)}}, "").ok());
  EXPECT_EQ(t.last().body, json::parse(R"({"TableName":"x","Key":{"k":{"N":"1"}}})"));
}

TEST(DynamoDbRequests, DeleteItem) {
  FakeTransport t;
  t.respond(R"({"Attributes":{"k":{"S":"a"},"owner":{"S":"w"}}})");
  WriteOptions o;
  o.condition_expression = "#o = :o";
  o.expression_attribute_names = {{"#o", "owner"}};
  o.expression_attribute_values = {{":o", AV::string("w")}};
  o.return_values = ReturnValues::kAllOld;
  auto r = t.client().delete_item("t", {{"k", AV::string("a")}}, o);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->attributes.has_value());
  EXPECT_EQ(*r->attributes, (Item{{"k", AV::string("a")}, {"owner", AV::string("w")}}));
  EXPECT_EQ(t.last().operation, "DeleteItem");
  EXPECT_EQ(t.last().body, json::parse(R"({
    "TableName": "t", "Key": {"k": {"S": "a"}}, "ConditionExpression": "#o = :o",
    "ExpressionAttributeNames": {"#o": "owner"},
    "ExpressionAttributeValues": {":o": {"S": "w"}}, "ReturnValues": "ALL_OLD"})"));
}

TEST(DynamoDbRequests, ScanWithEveryOption) {
  FakeTransport t;
  t.respond(R"({"Items":[],"Count":0,"ScannedCount":0})");
  ScanOptions o;
  o.index_name = "idx";
  o.filter_expression = "#o = :o";
  o.projection_expression = "leaseKey, #o";
  o.expression_attribute_names = {{"#o", "leaseOwner"}};
  o.expression_attribute_values = {{":o", AV::string("w1")}};
  o.limit = 7;
  o.exclusive_start_key = Item{{"leaseKey", AV::string("s-3")}};
  o.consistent_read = true;
  o.segment = 1;
  o.total_segments = 4;
  ASSERT_TRUE(t.client().scan("leases", o).ok());
  EXPECT_EQ(t.last().operation, "Scan");
  EXPECT_EQ(t.last().body, json::parse(R"({
    "TableName": "leases", "IndexName": "idx", "FilterExpression": "#o = :o",
    "ProjectionExpression": "leaseKey, #o", "ExpressionAttributeNames": {"#o": "leaseOwner"},
    "ExpressionAttributeValues": {":o": {"S": "w1"}}, "Limit": 7,
    "ExclusiveStartKey": {"leaseKey": {"S": "s-3"}}, "ConsistentRead": true,
    "Segment": 1, "TotalSegments": 4})"));

  t.respond(R"({"Items":[],"Count":0,"ScannedCount":0})");
  ASSERT_TRUE(t.client().scan("leases").ok());
  EXPECT_EQ(t.last().body, json::parse(R"({"TableName":"leases"})"));
}

TEST(DynamoDbRequests, Query) {
  FakeTransport t;
  t.respond(R"({"Items":[{"pk":{"S":"a"},"sk":{"N":"2"}}],"Count":1,"ScannedCount":1})");
  QueryOptions o;
  o.expression_attribute_values = {
      {":p", AV::string("a")}, {":lo", AV::number(1)}, {":hi", AV::number("2.5")}};
  o.scan_index_forward = false;
  o.limit = 3;
  auto page = t.client().query("t", "pk = :p AND sk BETWEEN :lo AND :hi", o);
  ASSERT_TRUE(page.ok()) << page.status().to_string();
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].at("sk"), AV::number("2"));
  EXPECT_FALSE(page->last_evaluated_key.has_value());
  EXPECT_EQ(page->scanned_count, 1);
  EXPECT_EQ(t.last().operation, "Query");
  EXPECT_EQ(t.last().body, json::parse(R"({
    "TableName": "t", "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
    "ExpressionAttributeValues": {":p": {"S": "a"}, ":lo": {"N": "1"}, ":hi": {"N": "2.5"}},
    "Limit": 3, "ScanIndexForward": false})"));
}

TEST(DynamoDbRequests, InvalidInputIsRejectedBeforeSending) {
  FakeTransport t;
  auto& c = t.client();
  EXPECT_EQ(c.describe_table("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.get_item("t", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.put_item("t", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.delete_item("", {{"k", AV::string("a")}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c.query("t", "").status().code(), StatusCode::kInvalidArgument);
  ScanOptions negative;
  negative.limit = -1;
  EXPECT_EQ(c.scan("t", negative).status().code(), StatusCode::kInvalidArgument);
  ScanOptions segment;
  segment.segment = 4;
  segment.total_segments = 4;
  EXPECT_EQ(c.scan("t", segment).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.list_tables_page("", -5).status().code(), StatusCode::kInvalidArgument);

  auto not_utf8 = c.put_item("t", {{"k", AV::string("\xff\xfe")}});
  EXPECT_EQ(not_utf8.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_utf8.status().message().find("UTF-8"), std::string_view::npos);
  EXPECT_NE(not_utf8.status().message().find("PutItem"), std::string_view::npos);

  AV deep = AV::string("leaf");
  for (int i = 0; i < 100; ++i) deep = AV::list({std::move(deep)});
  auto too_deep = c.put_item("t", {{"k", AV::string("a")}, {"d", deep}});
  EXPECT_EQ(too_deep.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_deep.status().message().find("Item.d[0][0]"), std::string_view::npos)
      << too_deep.status().message();
  EXPECT_TRUE(t.calls().empty());
}

// ---- Responses --------------------------------------------------------------------------------

TEST(DynamoDbResponses, GetItemParsesEveryAttributeType) {
  FakeTransport t;
  t.respond(std::string(R"({"Item":)") + kAllTypesJson + "}");
  auto r = t.client().get_item("t", {{"s", AV::string("héllo")}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->has_value());
  const Item& item = **r;
  EXPECT_EQ(item, all_types_item());
  // Spot checks through the accessors.
  EXPECT_EQ(*item.at("n").as_number(), "12345678901234567890123456789012345678");
  EXPECT_EQ(*item.at("b").as_binary(), std::string("\x00\xff\x10\x83", 4));
  EXPECT_EQ(item.at("bs").as_binary_set()->at(0), std::string("\x00", 1));
  const auto& l = *item.at("l").as_list();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(*l[3].as_map()->at("k").as_binary(), "\x01\x02");
  const Item& inner = *item.at("m").as_map()->at("inner").as_map();
  EXPECT_EQ(*inner.at("deep").as_list()->at(1).as_string_set(), std::vector<std::string>{"z"});
  EXPECT_TRUE(item.at("m").as_map()->at("e").as_map()->empty());
}

TEST(DynamoDbResponses, WriteAttributesArePresentOnlyWhenReturned) {
  FakeTransport t;
  t.respond(R"({"Attributes":{"a":{"N":"1"}},"ConsumedCapacity":{"TableName":"t"}})");
  auto r = t.client().put_item("t", {{"k", AV::string("x")}});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->attributes.has_value());
  EXPECT_EQ(r->attributes->at("a"), AV::number("1"));
  t.respond(R"({"Attributes":null})");
  auto none = t.client().delete_item("t", {{"k", AV::string("x")}});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->attributes.has_value());
}

TEST(DynamoDbResponses, DescribeTable) {
  FakeTransport t;
  t.respond(R"({"Table":{
    "TableName":"leases","TableArn":"arn:aws:dynamodb:us-east-1:000000000000:table/leases",
    "TableStatus":"ACTIVE","ItemCount":42,"TableSizeBytes":1234,
    "CreationDateTime":1700000000.123,
    "KeySchema":[{"AttributeName":"leaseKey","KeyType":"HASH"}],
    "AttributeDefinitions":[{"AttributeName":"leaseKey","AttributeType":"S"},
                            {"AttributeName":"leaseOwner","AttributeType":"S"}],
    "ProvisionedThroughput":{"ReadCapacityUnits":0,"WriteCapacityUnits":0,
                             "NumberOfDecreasesToday":0},
    "BillingModeSummary":{"BillingMode":"PAY_PER_REQUEST"},
    "GlobalSecondaryIndexes":[{"IndexName":"LeaseOwnerToLeaseKeyIndex","IndexStatus":"CREATING",
      "KeySchema":[{"AttributeName":"leaseOwner","KeyType":"HASH"},
                   {"AttributeName":"leaseKey","KeyType":"RANGE"}],
      "Projection":{"ProjectionType":"KEYS_ONLY"},"ItemCount":3}]}})");
  auto d = t.client().describe_table("leases");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->table_name, "leases");
  EXPECT_EQ(d->table_arn, "arn:aws:dynamodb:us-east-1:000000000000:table/leases");
  EXPECT_EQ(d->table_status, "ACTIVE");
  EXPECT_EQ(d->item_count, 42);
  EXPECT_EQ(d->table_size_bytes, 1234);
  EXPECT_EQ(d->creation_date_time_ms, 1700000000123);
  EXPECT_EQ(d->key_schema, (std::vector<KeySchemaElement>{{"leaseKey", KeyType::kHash}}));
  EXPECT_EQ(d->attribute_definitions,
            (std::vector<AttributeDefinition>{{"leaseKey", ScalarType::kString},
                                              {"leaseOwner", ScalarType::kString}}));
  EXPECT_EQ(d->billing_mode, BillingMode::kPayPerRequest);
  EXPECT_EQ(d->provisioned_throughput, ProvisionedThroughput{});
  ASSERT_EQ(d->global_secondary_indexes.size(), 1u);
  const auto& g = d->global_secondary_indexes[0];
  EXPECT_EQ(g.index_name, "LeaseOwnerToLeaseKeyIndex");
  EXPECT_EQ(g.index_status, "CREATING");
  EXPECT_EQ(g.projection_type, ProjectionType::kKeysOnly);
  EXPECT_EQ(g.item_count, 3);
  EXPECT_EQ(g.key_schema[1], (KeySchemaElement{"leaseKey", KeyType::kRange}));
}

TEST(DynamoDbResponses, BillingModeWithoutSummary) {
  FakeTransport t;
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"ACTIVE",
    "ProvisionedThroughput":{"ReadCapacityUnits":10,"WriteCapacityUnits":10}}})");
  auto provisioned = t.client().describe_table("a");
  ASSERT_TRUE(provisioned.ok());
  EXPECT_EQ(provisioned->billing_mode, BillingMode::kProvisioned);
  EXPECT_EQ(provisioned->provisioned_throughput, (ProvisionedThroughput{10, 10}));
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"ACTIVE",
    "ProvisionedThroughput":{"ReadCapacityUnits":0,"WriteCapacityUnits":0}}})");
  auto on_demand = t.client().describe_table("a");
  ASSERT_TRUE(on_demand.ok());
  EXPECT_EQ(on_demand->billing_mode, BillingMode::kPayPerRequest);
}

TEST(DynamoDbResponses, ScanAllFollowsLastEvaluatedKey) {
  FakeTransport t;
  t.respond(R"({"Items":[{"k":{"S":"a"}},{"k":{"S":"b"}}],"LastEvaluatedKey":{"k":{"S":"b"}},
               "Count":2,"ScannedCount":2})");
  t.respond(R"({"Items":[{"k":{"S":"c"}}],"LastEvaluatedKey":{"k":{"S":"c"}},"Count":1,
               "ScannedCount":2})");
  t.respond(R"({"Items":[],"Count":0,"ScannedCount":0})");
  ScanOptions o;
  o.limit = 2;
  o.filter_expression = "attribute_exists(k)";
  auto all = t.client().scan_all("t", o);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(all->at(2).at("k"), AV::string("c"));
  ASSERT_EQ(t.calls().size(), 3u);
  EXPECT_FALSE(t.calls()[0].body.contains("ExclusiveStartKey"));
  EXPECT_EQ(t.calls()[1].body["ExclusiveStartKey"], json::parse(R"({"k":{"S":"b"}})"));
  EXPECT_EQ(t.calls()[2].body["ExclusiveStartKey"], json::parse(R"({"k":{"S":"c"}})"));
  for (const auto& call : t.calls()) {
    EXPECT_EQ(call.body["Limit"], 2);
    EXPECT_EQ(call.body["FilterExpression"], "attribute_exists(k)");
  }
}

TEST(DynamoDbResponses, QueryAllStartsAtTheGivenKey) {
  FakeTransport t;
  t.respond(R"({"Items":[{"k":{"S":"y"}}],"LastEvaluatedKey":{"k":{"S":"y"}}})");
  t.respond(R"({"Items":[{"k":{"S":"z"}}]})");
  QueryOptions o;
  o.exclusive_start_key = Item{{"k", AV::string("x")}};
  o.expression_attribute_values = {{":k", AV::string("p")}};
  auto all = t.client().query_all("t", "pk = :k", o);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ(t.calls()[0].body["ExclusiveStartKey"], json::parse(R"({"k":{"S":"x"}})"));
  EXPECT_EQ(t.calls()[1].body["ExclusiveStartKey"], json::parse(R"({"k":{"S":"y"}})"));
}

TEST(DynamoDbResponses, PaginationThatDoesNotAdvanceIsAnError) {
  FakeTransport t;
  t.respond(R"({"Items":[],"LastEvaluatedKey":{"k":{"S":"a"}}})");
  t.respond(R"({"Items":[],"LastEvaluatedKey":{"k":{"S":"a"}}})");
  auto all = t.client().scan_all("t");
  EXPECT_EQ(all.status().code(), StatusCode::kInternal);
  EXPECT_NE(all.status().message().find("does not advance"), std::string_view::npos);

  t.respond(R"({"TableNames":["a"],"LastEvaluatedTableName":"a"})");
  t.respond(R"({"TableNames":["a"],"LastEvaluatedTableName":"a"})");
  EXPECT_EQ(t.client().list_tables().status().code(), StatusCode::kInternal);
}

TEST(DynamoDbResponses, WaitForTableActivePolls) {
  FakeTransport t;
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"CREATING"}})");
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"ACTIVE","GlobalSecondaryIndexes":[
                {"IndexName":"i","IndexStatus":"CREATING"}]}})");
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"ACTIVE","GlobalSecondaryIndexes":[
                {"IndexName":"i","IndexStatus":"ACTIVE"}]}})");
  Status s = t.client().wait_for_table_active("a", std::chrono::seconds(60));
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(t.calls().size(), 3u);
  for (const auto& call : t.calls()) EXPECT_EQ(call.operation, "DescribeTable");
}

TEST(DynamoDbResponses, WaitForTableActiveFailures) {
  FakeTransport t;
  t.fail(aws_error(400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                            "message":"Requested resource not found: Table: a not found"})"));
  EXPECT_EQ(t.client().wait_for_table_active("a", std::chrono::seconds(60)).code(),
            StatusCode::kNotFound);

  t.respond(R"({"Table":{"TableName":"a","TableStatus":"DELETING"}})");
  EXPECT_EQ(t.client().wait_for_table_active("a", std::chrono::seconds(60)).code(),
            StatusCode::kFailedPrecondition);

  // A zero timeout: one look, then the deadline has passed.
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"CREATING"}})");
  Status late = t.client().wait_for_table_active("a", std::chrono::milliseconds(0));
  EXPECT_EQ(late.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(late.message().find("CREATING"), std::string_view::npos);
}

TEST(DynamoDbResponses, WaitForTableDeleted) {
  FakeTransport t;
  t.respond(R"({"Table":{"TableName":"a","TableStatus":"DELETING"}})");
  t.fail(aws_error(400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                            "message":"not found"})"));
  EXPECT_TRUE(t.client().wait_for_table_deleted("a", std::chrono::seconds(60)).ok());
  EXPECT_EQ(t.calls().size(), 2u);
}

// ---- Errors -----------------------------------------------------------------------------------

TEST(DynamoDbErrors, ConditionalCheckFailedBodiesMapToAborted) {
  // dynalite (and AWS): lower-case "message".
  Status dynalite = aws_error(
      400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
               "message":"The conditional request failed"})");
  EXPECT_EQ(dynalite.code(), StatusCode::kAborted);
  EXPECT_EQ(dynalite.retry(), RetryClass::kRestart);
  EXPECT_EQ(dynalite.aws_error_code(), "ConditionalCheckFailedException");
  EXPECT_EQ(dynalite.message(), "The conditional request failed");
  // moto with ReturnValuesOnConditionCheckFailure: capital "Message", an Item, and a header.
  Status moto = aws_error(
      400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
               "Message":"The conditional request failed","Item":{"k":{"S":"a"}}})",
      "ConditionalCheckFailedException");
  EXPECT_EQ(moto.code(), StatusCode::kAborted);
  EXPECT_EQ(moto.aws_error_code(), "ConditionalCheckFailedException");
  EXPECT_EQ(moto.message(), "The conditional request failed");

  // Through the client: the status comes back unchanged.
  FakeTransport t;
  t.fail(dynalite);
  WriteOptions o;
  o.condition_expression = "attribute_not_exists(leaseKey)";
  auto r = t.client().put_item("leases", {{"leaseKey", AV::string("a")}}, o);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_EQ(r.status().aws_error_code(), "ConditionalCheckFailedException");
  EXPECT_EQ(r.status().http_status(), 400);
  EXPECT_EQ(r.status().request_id(), "req-1");
}

TEST(DynamoDbErrors, OtherErrorsKeepTheirCodes) {
  Status validation = aws_error(400, R"({"__type":"com.amazon.coral.validate#ValidationException",
                         "message":"Value provided in ExpressionAttributeValues unused in )"
                                     R"(expressions: keys: {:x}"})");
  EXPECT_EQ(validation.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(validation.message().find("unused in expressions"), std::string_view::npos);

  FakeTransport t;
  t.fail(aws_error(400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                            "message":"Requested resource not found"})"));
  EXPECT_EQ(t.client().get_item("missing", {{"k", AV::string("a")}}).status().code(),
            StatusCode::kNotFound);

  // ResourceInUseException on CreateTable: the table exists.
  t.fail(aws_error(400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceInUseException",
                            "message":"Table already exists: leases"})"));
  CreateTableRequest req;
  req.table_name = "leases";
  req.key_schema = {{"leaseKey", KeyType::kHash}};
  req.attribute_definitions = {{"leaseKey", ScalarType::kString}};
  auto created = t.client().create_table(req);
  EXPECT_EQ(created.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(created.status().aws_error_code(), "ResourceInUseException");
  EXPECT_EQ(created.status().message(), "Table already exists: leases");
  EXPECT_EQ(created.status().request_id(), "req-1");
  // ...but on DeleteTable it stays kFailedPrecondition.
  t.fail(aws_error(400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceInUseException",
                            "message":"Attempt to change a resource which is still in use"})"));
  EXPECT_EQ(t.client().delete_table("leases").code(), StatusCode::kFailedPrecondition);

  Status throttled = aws_error(
      400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
               "message":"slow down"})");
  EXPECT_EQ(throttled.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(throttled.retry(), RetryClass::kSameCall);
}

TEST(DynamoDbErrors, MalformedResponsesAreInternalErrors) {
  struct Case {
    const char* body;
    const char* message_part;
  };
  const Case cases[] = {
      {"", "not JSON"},
      {"<html>oops</html>", "not JSON"},
      {R"({"Item":)", "not JSON"},
      {"[1,2]", "a JSON array, not an object"},
      {R"({"Item":[]})", "Item: a JSON array, not an object"},
      {R"({"Item":{"a":"x"}})", "Item.a: a JSON string, not an attribute value object"},
      {R"({"Item":{"a":{}}})", "Item.a: attribute value has no type"},
      {R"({"Item":{"a":{"Z":"1"}}})", "Item.a: unknown attribute type \"Z\""},
      {R"({"Item":{"a":{"N":1.5}}})", "Item.a: N is a JSON number, not a string"},
      {R"({"Item":{"a":{"S":"x","N":"1"}}})", "more than one type"},
      {R"({"Item":{"a":{"B":"not base64!"}}})", "Item.a: B is not valid base64"},
      {R"({"Item":{"a":{"BS":["AA==","%%"]}}})", "Item.a: BS holds invalid base64"},
      {R"({"Item":{"a":{"NS":[1]}}})", "Item.a: NS holds a JSON number, not a string"},
      {R"({"Item":{"a":{"L":[{"M":{"b":{"BOOL":1}}}]}}})",
       "Item.a.L[0].M.b: BOOL is a JSON number, not a boolean"},
      {R"({"Item":{"a":{"M":"x"}}})", "Item.a: M is a JSON string, not an object"},
  };
  for (const Case& c : cases) {
    FakeTransport t;
    t.respond(c.body);
    auto r = t.client().get_item("t", {{"a", AV::string("k")}});
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), StatusCode::kInternal) << c.body;
    EXPECT_EQ(r.status().retry(), RetryClass::kNone) << c.body;
    EXPECT_NE(r.status().message().find("GetItem: malformed response"), std::string_view::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find(c.message_part), std::string_view::npos)
        << r.status().message();
  }
}

TEST(DynamoDbErrors, MalformedResponsesOfEachOperation) {
  FakeTransport t;
  auto& c = t.client();
  const Item key{{"k", AV::string("a")}};
  auto expect_internal = [](const Status& s, std::string_view part) {
    EXPECT_EQ(s.code(), StatusCode::kInternal) << s.to_string();
    EXPECT_NE(s.message().find(part), std::string_view::npos) << s.to_string();
  };
  t.respond("{}");
  expect_internal(c.describe_table("t").status(), "DescribeTable: malformed response: no Table");
  t.respond(R"({"Table":{"TableStatus":"ACTIVE"}})");
  expect_internal(c.describe_table("t").status(), "Table without TableName");
  t.respond(R"({"Table":{"TableName":"t","TableStatus":"ACTIVE","KeySchema":[{"KeyType":"X"}]}})");
  expect_internal(c.describe_table("t").status(), "KeyType \"X\"");
  t.respond(R"({"Table":{"TableName":"t","TableStatus":"ACTIVE","AttributeDefinitions":7}})");
  expect_internal(c.describe_table("t").status(), "AttributeDefinitions is not an array");
  t.respond(R"({"Table":"t"})");
  expect_internal(c.wait_for_table_active("t", std::chrono::seconds(1)), "no Table");
  t.respond("{}");
  expect_internal(c.create_table(CreateTableRequest{"t", {}, {}, std::nullopt, {}}).status(),
                  "CreateTable: malformed response: no TableDescription");
  t.respond("null");
  expect_internal(c.delete_table("t"), "DeleteTable: malformed response");
  t.respond(R"({"TableNames":"a"})");
  expect_internal(c.list_tables().status(), "no TableNames array");
  t.respond(R"({"TableNames":[1]})");
  expect_internal(c.list_tables_page().status(), "a table name is not a string");
  t.respond(R"({"Attributes":{"a":{"N":7}}})");
  expect_internal(c.put_item("t", key).status(), "PutItem: malformed response: Attributes.a");
  t.respond("true");
  expect_internal(c.update_item("t", key, "SET a = :a").status(), "UpdateItem: malformed");
  t.respond(R"({"Attributes":[]})");
  expect_internal(c.delete_item("t", key).status(), "DeleteItem: malformed");
  t.respond(R"({"Count":0})");
  expect_internal(c.scan("t").status(), "Scan: malformed response: no Items array");
  t.respond(R"({"Items":[{"k":{"S":"a"}},{"k":5}]})");
  expect_internal(c.scan_all("t").status(), "Items[1].k: a JSON number");
  t.respond(R"({"Items":[],"LastEvaluatedKey":{"k":{"Q":"a"}}})");
  expect_internal(c.query("t", "k = :k").status(), "Query: malformed response: LastEvaluatedKey.k");
}

TEST(DynamoDbErrors, DeeplyNestedResponsesDoNotCrash) {
  std::string body = R"({"Item":{"a":)";
  constexpr int kDepth = 100000;
  for (int i = 0; i < kDepth; ++i) body += R"({"L":[)";
  body += R"({"S":"x"})";
  for (int i = 0; i < kDepth; ++i) body += "]}";
  body += "}}";
  FakeTransport t;
  t.respond(body);
  auto r = t.client().get_item("t", {{"a", AV::string("k")}});
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("nested deeper than"), std::string_view::npos);

  // 30 levels (DynamoDB allows 32) parse fine.
  std::string ok = R"({"Item":{"a":)";
  for (int i = 0; i < 30; ++i) ok += R"({"M":{"x":)";
  ok += R"({"N":"1"})";
  for (int i = 0; i < 30; ++i) ok += "}}";
  ok += "}}";
  t.respond(ok);
  auto parsed = t.client().get_item("t", {{"a", AV::string("k")}});
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  const AV* v = &(*parsed)->at("a");
  for (int i = 0; i < 30; ++i) v = &v->as_map()->at("x");
  EXPECT_EQ(*v, AV::number("1"));
}

TEST(DynamoDbErrors, TransportErrorsAndThrowsPassThrough) {
  FakeTransport t;
  t.fail(Status::unavailable("could not connect"));
  EXPECT_EQ(t.client().scan("t").status().code(), StatusCode::kUnavailable);

  auto throwing = DynamoDbClient::create_with_transport(
      [](std::string_view, const std::string&) -> Result<std::string> {
        throw std::runtime_error("boom");
      });
  auto r = throwing->get_item("t", {{"k", AV::string("a")}});
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("boom"), std::string_view::npos);
}

TEST(DynamoDbClientCreate, UsesTheConfiguredEndpoint) {
  AwsClientConfig cfg;
  cfg.endpoint_url = "http://127.0.0.1:8000";
  cfg.region = "us-east-1";
  cfg.credentials = make_static_credentials_provider({"AKIDTEST", "secret", "", {}, "static"});
  auto c = DynamoDbClient::create(cfg);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ((*c)->endpoint_url(), "http://127.0.0.1:8000");
}

}  // namespace
}  // namespace shardline
