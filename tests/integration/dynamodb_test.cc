// The DynamoDB client against local servers: dynalite (SHARDLINE_DYNAMODB_ENDPOINT) for
// everything, and the CRUD scenario again against moto (SHARDLINE_MOTO_ENDPOINT). Start them
// with `scripts/servers start dynalite moto` and `source .servers/env`; a test whose endpoint
// is unset is skipped. Each test uses tables of its own (random suffix) and deletes them.
// No sleeps: waits poll the server up to a deadline, and nothing asserts wall-clock times.
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "shardline/credentials.h"
#include "shardline/dynamodb.h"
#include "support/local_aws.h"

namespace shardline {
namespace {

using AV = AttributeValue;
using std::chrono::seconds;

constexpr auto kTableWait = seconds(60);

std::string env(const char* name) { return shardline::testing::env_or_empty(name); }

std::unique_ptr<DynamoDbClient> make_client(const std::string& endpoint) {
  AwsClientConfig cfg;
  cfg.endpoint_url = endpoint;
  cfg.region = "us-east-1";
  cfg.credentials =
      make_static_credentials_provider({"AKIDSHARDLINETEST", "fake-secret", "", {}, "static"});
  auto c = DynamoDbClient::create(cfg);
  if (!c.ok()) {
    ADD_FAILURE() << c.status().to_string();
    return nullptr;
  }
  return std::move(c).value();
}

// "shardline-<test>-<16 hex digits>": unique per test run, valid as a DynamoDB table name.
std::string unique_table_name(std::string_view what) {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard lock(mu);
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  return "shardline-" + std::string(what) + "-" + suffix;
}

// Deletes the table when the test ends, whatever happened.
class TableGuard {
 public:
  TableGuard(DynamoDbClient& client, std::string name) : client_(client), name_(std::move(name)) {}
  ~TableGuard() {
    Status s = client_.delete_table(name_);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      std::fprintf(stderr, "cleanup: deleting %s: %s\n", name_.c_str(), s.to_string().c_str());
    }
  }
  TableGuard(const TableGuard&) = delete;
  TableGuard& operator=(const TableGuard&) = delete;

 private:
  DynamoDbClient& client_;
  std::string name_;
};

CreateTableRequest lease_table(const std::string& name) {
  CreateTableRequest req;
  req.table_name = name;
  req.key_schema = {{"leaseKey", KeyType::kHash}};
  req.attribute_definitions = {{"leaseKey", ScalarType::kString}};
  return req;
}

// Creates the table and waits until it is ACTIVE.
::testing::AssertionResult create_and_wait(DynamoDbClient& client, const CreateTableRequest& req) {
  auto created = client.create_table(req);
  if (!created.ok()) {
    return ::testing::AssertionFailure() << "create_table: " << created.status().to_string();
  }
  Status active = client.wait_for_table_active(req.table_name, kTableWait);
  if (!active.ok()) return ::testing::AssertionFailure() << "wait: " << active.to_string();
  return ::testing::AssertionSuccess();
}

Item lease_key(const std::string& key) { return {{"leaseKey", AV::string(key)}}; }

std::string all_bytes() {
  std::string b(256, '\0');
  for (int i = 0; i < 256; ++i) b[static_cast<std::size_t>(i)] = static_cast<char>(i);
  return b;
}

// Numbers here are already in the form every server returns (dynalite normalizes, moto does not).
Item sample_lease(const std::string& key) {
  return Item{
      {"leaseKey", AV::string(key)},
      {"leaseOwner", AV::string("worker-a")},
      {"leaseCounter", AV::number(1)},
      {"checkpoint", AV::string("49590338271490256608559692538361571095921575989136588898")},
      {"checkpointSubSequenceNumber", AV::number(0)},
      {"big", AV::number("12345678901234567890123456789012345678")},
      {"tenth", AV::number("0.1")},
      {"pendingCheckpointState", AV::binary(all_bytes())},
      {"parentShardId", AV::string_set({"shardId-000000000000", "shardId-000000000001"})},
      {"ns", AV::number_set({"1", "-2.5"})},
      {"bs", AV::binary_set({std::string("\0", 1), "\xff\xfe"})},
      {"flag", AV::boolean(true)},
      {"nothing", AV::null()},
      {"sts", AV::map({{"cpu", AV::list({AV::number(10), AV::number(-1)})},
                       {"nested", AV::map({{"deep", AV::list({AV::map({})})}})}})},
  };
}

Result<std::int64_t> counter_of(const Item& item) {
  auto it = item.find("leaseCounter");
  if (it == item.end()) return Status::not_found("no leaseCounter");
  return it->second.to_int64();
}

// The lease-table CRUD scenario, run against each server.
void run_crud(DynamoDbClient& c, const std::string& table) {
  const std::string key = "shardId-000000000007";
  const Item lease = sample_lease(key);

  // Create-if-absent, twice: the second loses.
  WriteOptions create;
  create.condition_expression = "attribute_not_exists(leaseKey)";
  auto first = c.put_item(table, lease, create);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_FALSE(first->attributes.has_value());
  auto second = c.put_item(table, lease, create);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAborted) << second.status().to_string();
  EXPECT_EQ(second.status().aws_error_code(), "ConditionalCheckFailedException");
  EXPECT_EQ(second.status().retry(), RetryClass::kRestart);

  // Every type reads back as written.
  GetItemOptions consistent;
  consistent.consistent_read = true;
  auto got = c.get_item(table, lease_key(key), consistent);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, lease);

  // Projection with a name placeholder.
  GetItemOptions projected;
  projected.consistent_read = true;
  projected.projection_expression = "#o, leaseCounter";
  projected.expression_attribute_names = {{"#o", "leaseOwner"}};
  auto proj = c.get_item(table, lease_key(key), projected);
  ASSERT_TRUE(proj.ok()) << proj.status().to_string();
  ASSERT_TRUE(proj->has_value());
  EXPECT_EQ(**proj,
            (Item{{"leaseOwner", AV::string("worker-a")}, {"leaseCounter", AV::number(1)}}));

  // The lease CAS: renew (counter 1 → 2) when counter and owner are as expected.
  WriteOptions cas;
  cas.condition_expression = "leaseCounter = :c AND leaseOwner = :o";
  cas.expression_attribute_values = {
      {":c", AV::number(1)}, {":o", AV::string("worker-a")}, {":one", AV::number(1)}};
  cas.return_values = ReturnValues::kAllNew;
  auto renewed =
      c.update_item(table, lease_key(key), "SET leaseCounter = leaseCounter + :one", cas);
  ASSERT_TRUE(renewed.ok()) << renewed.status().to_string();
  ASSERT_TRUE(renewed->attributes.has_value());
  EXPECT_EQ(*counter_of(*renewed->attributes), 2);
  EXPECT_EQ(renewed->attributes->at("leaseOwner"), AV::string("worker-a"));
  EXPECT_EQ(renewed->attributes->at("big"), lease.at("big"));  // ALL_NEW: the whole item

  // The same CAS again is stale: the counter is 2 now.
  auto stale = c.update_item(table, lease_key(key), "SET leaseCounter = leaseCounter + :one", cas);
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted) << stale.status().to_string();
  EXPECT_EQ(stale.status().aws_error_code(), "ConditionalCheckFailedException");

  // Take: new owner, counter + 1, ownerSwitches ADD 1; UPDATED_OLD returns the old values.
  WriteOptions take;
  take.condition_expression = "leaseCounter = :c";
  take.expression_attribute_values = {
      {":c", AV::number(2)}, {":one", AV::number(1)}, {":me", AV::string("worker-b")}};
  take.return_values = ReturnValues::kUpdatedOld;
  auto taken = c.update_item(table, lease_key(key),
                             "SET leaseCounter = leaseCounter + :one, leaseOwner = :me "
                             "ADD ownerSwitchesSinceCheckpoint :one",
                             take);
  ASSERT_TRUE(taken.ok()) << taken.status().to_string();
  ASSERT_TRUE(taken->attributes.has_value());
  EXPECT_EQ(*taken->attributes,
            (Item{{"leaseCounter", AV::number(2)}, {"leaseOwner", AV::string("worker-a")}}));

  // UPDATED_NEW with if_not_exists and REMOVE of the owner (an "unassigned" lease).
  WriteOptions release;
  release.condition_expression = "leaseOwner = :me";
  release.expression_attribute_values = {
      {":me", AV::string("worker-b")}, {":five", AV::number(5)}, {":one", AV::number(1)}};
  release.return_values = ReturnValues::kUpdatedNew;
  auto released = c.update_item(
      table, lease_key(key),
      "SET leaseCounter = leaseCounter + :one, "
      "checkpointSubSequenceNumber = if_not_exists(noSuchAttribute, :five) REMOVE leaseOwner",
      release);
  ASSERT_TRUE(released.ok()) << released.status().to_string();
  ASSERT_TRUE(released->attributes.has_value());
  EXPECT_EQ(*released->attributes, (Item{{"leaseCounter", AV::number(4)},
                                         {"checkpointSubSequenceNumber", AV::number(5)}}));
  auto after_remove = c.get_item(table, lease_key(key), consistent);
  ASSERT_TRUE(after_remove.ok() && after_remove->has_value());
  EXPECT_EQ((*after_remove)->count("leaseOwner"), 0u);
  EXPECT_EQ((*after_remove)->at("ownerSwitchesSinceCheckpoint"), AV::number(1));
  EXPECT_EQ(*counter_of(**after_remove), 4);

  // Delete: a false condition keeps the item; a true one returns it (ALL_OLD).
  WriteOptions wrong_delete;
  wrong_delete.condition_expression = "leaseCounter = :c";
  wrong_delete.expression_attribute_values = {{":c", AV::number(3)}};
  wrong_delete.return_values = ReturnValues::kAllOld;
  auto refused = c.delete_item(table, lease_key(key), wrong_delete);
  EXPECT_EQ(refused.status().code(), StatusCode::kAborted) << refused.status().to_string();
  auto still_there = c.get_item(table, lease_key(key), consistent);
  ASSERT_TRUE(still_there.ok());
  EXPECT_TRUE(still_there->has_value());

  WriteOptions right_delete = wrong_delete;
  right_delete.expression_attribute_values = {{":c", AV::number(4)}};
  auto deleted = c.delete_item(table, lease_key(key), right_delete);
  ASSERT_TRUE(deleted.ok()) << deleted.status().to_string();
  ASSERT_TRUE(deleted->attributes.has_value());
  EXPECT_EQ(deleted->attributes->at("leaseKey"), AV::string(key));
  EXPECT_EQ(deleted->attributes->at("pendingCheckpointState"), AV::binary(all_bytes()));
  EXPECT_EQ(*counter_of(*deleted->attributes), 4);

  auto gone = c.get_item(table, lease_key(key), consistent);
  ASSERT_TRUE(gone.ok()) << gone.status().to_string();
  EXPECT_FALSE(gone->has_value());

  // Deleting a missing item is fine; ALL_OLD then returns nothing.
  WriteOptions all_old;
  all_old.return_values = ReturnValues::kAllOld;
  auto missing = c.delete_item(table, lease_key(key), all_old);
  ASSERT_TRUE(missing.ok()) << missing.status().to_string();
  EXPECT_FALSE(missing->attributes.has_value());

  // PutItem ALL_OLD of a replaced item returns the old one.
  ASSERT_TRUE(c.put_item(table, {{"leaseKey", AV::string(key)}, {"v", AV::number(1)}}).ok());
  auto replaced = c.put_item(table, {{"leaseKey", AV::string(key)}, {"v", AV::number(2)}}, all_old);
  ASSERT_TRUE(replaced.ok()) << replaced.status().to_string();
  ASSERT_TRUE(replaced->attributes.has_value());
  EXPECT_EQ(replaced->attributes->at("v"), AV::number(1));
}

class DynaliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = env("SHARDLINE_DYNAMODB_ENDPOINT");
    if (endpoint_.empty()) {
      GTEST_SKIP() << "SHARDLINE_DYNAMODB_ENDPOINT is not set: run `scripts/servers start "
                      "dynalite` and `source .servers/env`";
    }
    client_ = make_client(endpoint_);
    ASSERT_NE(client_, nullptr);
  }

  DynamoDbClient& c() { return *client_; }

  std::string endpoint_;
  std::unique_ptr<DynamoDbClient> client_;
};

TEST_F(DynaliteTest, Crud) {
  const std::string table = unique_table_name("crud");
  TableGuard guard(c(), table);
  ASSERT_TRUE(create_and_wait(c(), lease_table(table)));
  run_crud(c(), table);
}

TEST_F(DynaliteTest, TableLifecycle) {
  const std::string table = unique_table_name("lifecycle");
  TableGuard guard(c(), table);
  auto created = c().create_table(lease_table(table));
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  EXPECT_EQ(created->table_name, table);
  EXPECT_TRUE(created->table_status == "CREATING" || created->table_status == "ACTIVE")
      << created->table_status;
  ASSERT_TRUE(c().wait_for_table_active(table, kTableWait).ok());

  // Creating it again: kAlreadyExists.
  auto again = c().create_table(lease_table(table));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().to_string();
  EXPECT_EQ(again.status().aws_error_code(), "ResourceInUseException");

  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c().put_item(table, lease_key("shard-" + std::to_string(i))).ok());
  }
  auto d = c().describe_table(table);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->table_name, table);
  EXPECT_EQ(d->table_status, "ACTIVE");
  EXPECT_EQ(d->key_schema, (std::vector<KeySchemaElement>{{"leaseKey", KeyType::kHash}}));
  EXPECT_EQ(d->attribute_definitions,
            (std::vector<AttributeDefinition>{{"leaseKey", ScalarType::kString}}));
  EXPECT_EQ(d->billing_mode, BillingMode::kPayPerRequest);
  // ItemCount is approximate (AWS refreshes it about every six hours; dynalite reports 0).
  EXPECT_GE(d->item_count, 0);
  EXPECT_FALSE(d->table_arn.empty());
  EXPECT_GT(d->creation_date_time_ms, 0);

  // ListTables, one name per page, finds it; list_tables() too.
  std::vector<std::string> paged;
  std::string start;
  for (int page = 0; page < 10000; ++page) {
    auto p = c().list_tables_page(start, 1);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    EXPECT_LE(p->table_names.size(), 1u);
    paged.insert(paged.end(), p->table_names.begin(), p->table_names.end());
    if (p->last_evaluated_table_name.empty()) break;
    start = p->last_evaluated_table_name;
  }
  EXPECT_NE(std::find(paged.begin(), paged.end(), table), paged.end());
  auto all = c().list_tables();
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_NE(std::find(all->begin(), all->end(), table), all->end());

  ASSERT_TRUE(c().delete_table(table).ok());
  ASSERT_TRUE(c().wait_for_table_deleted(table, kTableWait).ok());
  EXPECT_EQ(c().describe_table(table).status().code(), StatusCode::kNotFound);
  auto after = c().list_tables();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(std::find(after->begin(), after->end(), table), after->end());
}

TEST_F(DynaliteTest, ProvisionedTableWithLeaseOwnerIndex) {
  const std::string table = unique_table_name("provisioned");
  TableGuard guard(c(), table);
  CreateTableRequest req = lease_table(table);
  req.attribute_definitions.push_back({"leaseOwner", ScalarType::kString});
  req.provisioned_throughput = ProvisionedThroughput{10, 10};
  // KCL 3.x's index: owner → lease keys, keys only (copies the table's throughput).
  req.global_secondary_indexes.push_back(
      {"LeaseOwnerToLeaseKeyIndex",
       {{"leaseOwner", KeyType::kHash}, {"leaseKey", KeyType::kRange}},
       ProjectionType::kKeysOnly,
       {},
       std::nullopt});
  ASSERT_TRUE(create_and_wait(c(), req));
  auto d = c().describe_table(table);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->billing_mode, BillingMode::kProvisioned);
  EXPECT_EQ(d->provisioned_throughput, (ProvisionedThroughput{10, 10}));
  ASSERT_EQ(d->global_secondary_indexes.size(), 1u);
  EXPECT_EQ(d->global_secondary_indexes[0].index_name, "LeaseOwnerToLeaseKeyIndex");
  EXPECT_EQ(d->global_secondary_indexes[0].index_status, "ACTIVE");
  EXPECT_EQ(d->global_secondary_indexes[0].projection_type, ProjectionType::kKeysOnly);

  for (int i = 0; i < 6; ++i) {
    Item lease = lease_key("shard-" + std::to_string(i));
    lease["leaseOwner"] = AV::string(i % 2 == 0 ? "even" : "odd");
    lease["leaseCounter"] = AV::number(i);
    ASSERT_TRUE(c().put_item(table, lease).ok());
  }
  QueryOptions o;
  o.index_name = "LeaseOwnerToLeaseKeyIndex";
  o.expression_attribute_values = {{":o", AV::string("odd")}};
  auto mine = c().query_all(table, "leaseOwner = :o", o);
  ASSERT_TRUE(mine.ok()) << mine.status().to_string();
  std::vector<std::string> keys;
  for (const Item& item : *mine) {
    keys.push_back(*item.at("leaseKey").as_string());
    EXPECT_EQ(item.count("leaseCounter"), 0u) << "KEYS_ONLY projects no other attribute";
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"shard-1", "shard-3", "shard-5"}));
}

TEST_F(DynaliteTest, RacingCasExactlyOneWinnerPerRound) {
  const std::string table = unique_table_name("race");
  TableGuard guard(c(), table);
  ASSERT_TRUE(create_and_wait(c(), lease_table(table)));
  const std::string key = "shardId-000000000000";
  ASSERT_TRUE(c().put_item(table, {{"leaseKey", AV::string(key)},
                                   {"leaseCounter", AV::number(0)},
                                   {"leaseOwner", AV::string("nobody")}})
                  .ok());

  constexpr int kRounds = 25;
  constexpr int kWorkers = 2;
  struct Outcome {
    std::int64_t seen_counter = -1;
    std::string seen_owner;
    StatusCode code = StatusCode::kUnknown;
    std::int64_t new_counter = -1;
  };
  std::vector<std::vector<Outcome>> outcomes(kWorkers, std::vector<Outcome>(kRounds));
  std::barrier sync(kWorkers);
  // Both workers share one client: it is thread-safe.
  auto worker = [&](int id) {
    const std::string me = "worker-" + std::to_string(id);
    for (int round = 0; round < kRounds; ++round) {
      Outcome& out = outcomes[static_cast<std::size_t>(id)][static_cast<std::size_t>(round)];
      sync.arrive_and_wait();  // the previous round's writes are done
      GetItemOptions consistent;
      consistent.consistent_read = true;
      auto cur = c().get_item(table, lease_key(key), consistent);
      if (cur.ok() && cur->has_value()) {
        out.seen_counter = counter_of(**cur).value_or(-1);
        if (const std::string* o = (*cur)->at("leaseOwner").as_string()) out.seen_owner = *o;
      }
      sync.arrive_and_wait();  // both have read the same state; now race
      WriteOptions w;
      w.condition_expression = "leaseCounter = :c AND leaseOwner = :o";
      w.expression_attribute_values = {{":c", AV::number(out.seen_counter)},
                                       {":o", AV::string(out.seen_owner)},
                                       {":one", AV::number(1)},
                                       {":me", AV::string(me)}};
      w.return_values = ReturnValues::kAllNew;
      auto r = c().update_item(table, lease_key(key),
                               "SET leaseCounter = leaseCounter + :one, leaseOwner = :me", w);
      out.code = r.ok() ? StatusCode::kOk : r.status().code();
      if (r.ok() && r->attributes) out.new_counter = counter_of(*r->attributes).value_or(-1);
    }
  };
  std::vector<std::thread> threads;
  for (int id = 0; id < kWorkers; ++id) threads.emplace_back(worker, id);
  for (auto& t : threads) t.join();

  for (int round = 0; round < kRounds; ++round) {
    const Outcome& a = outcomes[0][static_cast<std::size_t>(round)];
    const Outcome& b = outcomes[1][static_cast<std::size_t>(round)];
    EXPECT_EQ(a.seen_counter, round) << "round " << round;
    EXPECT_EQ(b.seen_counter, round) << "round " << round;
    const int wins = (a.code == StatusCode::kOk ? 1 : 0) + (b.code == StatusCode::kOk ? 1 : 0);
    const int losses =
        (a.code == StatusCode::kAborted ? 1 : 0) + (b.code == StatusCode::kAborted ? 1 : 0);
    EXPECT_EQ(wins, 1) << "round " << round;
    EXPECT_EQ(losses, 1) << "round " << round;
    const Outcome& winner = a.code == StatusCode::kOk ? a : b;
    EXPECT_EQ(winner.new_counter, round + 1) << "round " << round;
  }
  GetItemOptions consistent;
  consistent.consistent_read = true;
  auto final_item = c().get_item(table, lease_key(key), consistent);
  ASSERT_TRUE(final_item.ok() && final_item->has_value());
  EXPECT_EQ(*counter_of(**final_item), kRounds);
}

TEST_F(DynaliteTest, ScanPaginationWithLimit) {
  const std::string table = unique_table_name("scan");
  TableGuard guard(c(), table);
  ASSERT_TRUE(create_and_wait(c(), lease_table(table)));
  constexpr int kItems = 30;
  for (int i = 0; i < kItems; ++i) {
    Item item = lease_key("shard-" + std::to_string(i));
    item["leaseCounter"] = AV::number(i);
    item["leaseOwner"] = AV::string(i % 3 == 0 ? "w0" : "w1");
    ASSERT_TRUE(c().put_item(table, item).ok());
  }

  // Page by page with Limit 7.
  ScanOptions o;
  o.limit = 7;
  o.consistent_read = true;
  std::set<std::string> seen;
  int pages = 0;
  while (true) {
    auto page = c().scan(table, o);
    ASSERT_TRUE(page.ok()) << page.status().to_string();
    ++pages;
    ASSERT_LT(pages, 100) << "pagination does not end";
    EXPECT_LE(page->items.size(), 7u);
    for (const Item& item : page->items) {
      EXPECT_TRUE(seen.insert(*item.at("leaseKey").as_string()).second) << "an item came twice";
    }
    if (!page->last_evaluated_key) break;
    o.exclusive_start_key = std::move(page->last_evaluated_key);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kItems));
  EXPECT_GE(pages, (kItems + 6) / 7);

  // All pages at once.
  ScanOptions all_opts;
  all_opts.limit = 7;
  auto all = c().scan_all(table, all_opts);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(all->size(), static_cast<std::size_t>(kItems));

  // A filter with Limit: Limit counts items read, the filter drops some of them.
  ScanOptions filtered;
  filtered.limit = 4;
  filtered.filter_expression = "leaseOwner = :o";
  filtered.projection_expression = "leaseKey, leaseCounter";
  filtered.expression_attribute_values = {{":o", AV::string("w0")}};
  auto w0 = c().scan_all(table, filtered);
  ASSERT_TRUE(w0.ok()) << w0.status().to_string();
  EXPECT_EQ(w0->size(), 10u);
  for (const Item& item : *w0) {
    EXPECT_EQ(item.size(), 2u);
    EXPECT_EQ(*counter_of(item) % 3, 0);
  }

  // Parallel scan: two segments cover the table exactly once.
  std::set<std::string> segmented;
  for (int s = 0; s < 2; ++s) {
    ScanOptions seg;
    seg.segment = s;
    seg.total_segments = 2;
    auto part = c().scan_all(table, seg);
    ASSERT_TRUE(part.ok()) << part.status().to_string();
    for (const Item& item : *part) segmented.insert(*item.at("leaseKey").as_string());
  }
  EXPECT_EQ(segmented, seen);
}

TEST_F(DynaliteTest, Query) {
  const std::string table = unique_table_name("query");
  TableGuard guard(c(), table);
  CreateTableRequest req;
  req.table_name = table;
  req.key_schema = {{"pk", KeyType::kHash}, {"sk", KeyType::kRange}};
  req.attribute_definitions = {{"pk", ScalarType::kString}, {"sk", ScalarType::kNumber}};
  ASSERT_TRUE(create_and_wait(c(), req));
  for (const char* pk : {"a", "b"}) {
    for (int sk = 0; sk < 10; ++sk) {
      ASSERT_TRUE(c().put_item(table, {{"pk", AV::string(pk)},
                                       {"sk", AV::number(sk)},
                                       {"odd", AV::boolean(sk % 2 == 1)}})
                      .ok());
    }
  }
  QueryOptions o;
  o.expression_attribute_values = {
      {":p", AV::string("a")}, {":lo", AV::number(2)}, {":hi", AV::number("7")}};
  o.scan_index_forward = false;
  o.limit = 4;
  o.consistent_read = true;
  auto first = c().query(table, "pk = :p AND sk BETWEEN :lo AND :hi", o);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  ASSERT_EQ(first->items.size(), 4u);
  EXPECT_EQ(first->items[0].at("sk"), AV::number(7));  // descending
  EXPECT_EQ(first->items[3].at("sk"), AV::number(4));
  ASSERT_TRUE(first->last_evaluated_key.has_value());

  auto all = c().query_all(table, "pk = :p AND sk BETWEEN :lo AND :hi", o);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  std::vector<std::int64_t> sks;
  for (const Item& item : *all) sks.push_back(*item.at("sk").to_int64());
  EXPECT_EQ(sks, (std::vector<std::int64_t>{7, 6, 5, 4, 3, 2}));

  QueryOptions filtered;
  filtered.filter_expression = "#odd = :t";
  filtered.expression_attribute_names = {{"#odd", "odd"}};
  filtered.expression_attribute_values = {{":p", AV::string("b")}, {":t", AV::boolean(true)}};
  auto odd = c().query_all(table, "pk = :p", filtered);
  ASSERT_TRUE(odd.ok()) << odd.status().to_string();
  EXPECT_EQ(odd->size(), 5u);
}

TEST_F(DynaliteTest, MissingTableIsNotFound) {
  const std::string table = unique_table_name("missing");
  const Item key = lease_key("x");
  EXPECT_EQ(c().describe_table(table).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c().wait_for_table_active(table, kTableWait).code(), StatusCode::kNotFound);
  EXPECT_EQ(c().delete_table(table).code(), StatusCode::kNotFound);
  auto get = c().get_item(table, key);
  EXPECT_EQ(get.status().code(), StatusCode::kNotFound) << get.status().to_string();
  EXPECT_EQ(get.status().aws_error_code(), "ResourceNotFoundException");
  EXPECT_EQ(c().put_item(table, key).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c().scan(table).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(c().wait_for_table_deleted(table, kTableWait).ok());
}

TEST_F(DynaliteTest, ValidationErrorsAreInvalidArgument) {
  const std::string table = unique_table_name("validation");
  TableGuard guard(c(), table);
  ASSERT_TRUE(create_and_wait(c(), lease_table(table)));
  WriteOptions unused;
  unused.condition_expression = "attribute_not_exists(leaseKey)";
  unused.expression_attribute_values = {{":unused", AV::number(1)}};
  auto r = c().put_item(table, lease_key("a"), unused);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(r.status().aws_error_code(), "ValidationException");
  EXPECT_NE(r.status().message().find("unused"), std::string_view::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find(":unused"), std::string_view::npos) << r.status().to_string();

  // A key of the wrong type, and a syntax error in an expression.
  auto wrong_key = c().get_item(table, {{"leaseKey", AV::number(1)}});
  EXPECT_EQ(wrong_key.status().code(), StatusCode::kInvalidArgument);
  auto syntax = c().update_item(table, lease_key("a"), "SET = nonsense");
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument) << syntax.status().to_string();
}

TEST(DynamoDbMoto, Crud) {
  const std::string endpoint = env("SHARDLINE_MOTO_ENDPOINT");
  if (endpoint.empty()) {
    GTEST_SKIP() << "SHARDLINE_MOTO_ENDPOINT is not set: run `scripts/servers start moto` and "
                    "`source .servers/env`";
  }
  auto client = make_client(endpoint);
  ASSERT_NE(client, nullptr);
  const std::string table = unique_table_name("moto-crud");
  TableGuard guard(*client, table);
  ASSERT_TRUE(create_and_wait(*client, lease_table(table)));
  run_crud(*client, table);
  auto d = client->describe_table(table);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->billing_mode, BillingMode::kPayPerRequest);
}

}  // namespace
}  // namespace shardline
