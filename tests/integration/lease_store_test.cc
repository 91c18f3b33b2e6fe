// The DynamoDB lease store on dynalite (SHARDLINE_DYNAMODB_ENDPOINT; the tests are skipped
// when it is unset): the LeaseStore contract suite of tests/unit/lease_store_test.cc, and
// compatibility with the items the Java KCL 2.x writes and reads, checked on the raw items.
// Start the server with `scripts/servers start dynalite` and `source .servers/env`.
// Each test uses a table of its own (random suffix) and deletes it.
#define SHARDLINE_LEASE_STORE_SUITE_ONLY
#include "unit/lease_store_test.cc"  // the contract suite (LeaseStoreSuite)
#undef SHARDLINE_LEASE_STORE_SUITE_ONLY

#include <gtest/gtest.h>

#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "shardline/credentials.h"
#include "shardline/dynamodb.h"
#include "shardline/lease_store.h"

namespace shardline::lease_store_suite {
namespace {

using AV = AttributeValue;

std::string dynamodb_endpoint() {
  const char* v = std::getenv("SHARDLINE_DYNAMODB_ENDPOINT");
  return v != nullptr ? std::string(v) : std::string();
}

AwsClientConfig dynalite_config(const std::string& endpoint) {
  AwsClientConfig cfg;
  cfg.endpoint_url = endpoint;
  cfg.region = "us-east-1";
  cfg.credentials =
      make_static_credentials_provider({"AKIDSHARDLINETEST", "fake-secret", "", {}, "static"});
  return cfg;
}

// "shardline-leases-<16 hex digits>": unique per test.
std::string unique_table_name() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard lock(mu);
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string("shardline-leases-") + suffix;
}

// A table of its own on dynalite, deleted at the end of the test. Every open() is a store
// with a client of its own, as another worker process would have.
class DynamoDbBackend : public LeaseBackend {
 public:
  static std::unique_ptr<DynamoDbBackend> make(std::string& skip) {
    const std::string endpoint = dynamodb_endpoint();
    if (endpoint.empty()) {
      skip = "SHARDLINE_DYNAMODB_ENDPOINT is not set (scripts/servers start dynalite)";
      return nullptr;
    }
    auto client = DynamoDbClient::create(dynalite_config(endpoint));
    if (!client.ok()) {
      ADD_FAILURE() << client.status().to_string();
      return nullptr;
    }
    return std::unique_ptr<DynamoDbBackend>(
        new DynamoDbBackend(endpoint, std::move(client).value(), unique_table_name()));
  }

  ~DynamoDbBackend() override {
    Status s = client_->delete_table(table_);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      std::fprintf(stderr, "cleanup: deleting %s: %s\n", table_.c_str(), s.to_string().c_str());
    }
  }

  Result<std::unique_ptr<LeaseStore>> open() override {
    return make_dynamodb_lease_store(dynalite_config(endpoint_), table_);
  }
  int race_rounds() const override { return 25; }

  DynamoDbClient& client() { return *client_; }
  const std::string& table() const { return table_; }

 private:
  DynamoDbBackend(std::string endpoint, std::unique_ptr<DynamoDbClient> client, std::string table)
      : endpoint_(std::move(endpoint)), client_(std::move(client)), table_(std::move(table)) {}

  std::string endpoint_;
  std::unique_ptr<DynamoDbClient> client_;
  std::string table_;
};

INSTANTIATE_TEST_SUITE_P(DynamoDb, LeaseStoreSuite,
                         ::testing::Values(BackendParam{
                             "DynamoDb",
                             [](std::string& skip) -> std::unique_ptr<LeaseBackend> {
                               return DynamoDbBackend::make(skip);
                             }}),
                         param_name);

// ---- KCL compatibility, on the raw items ---------------------------------------------------

class DynamoDbLeaseStoreKcl : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string skip;
    backend_ = DynamoDbBackend::make(skip);
    if (backend_ == nullptr) {
      if (skip.empty()) FAIL() << "no DynamoDB client";
      GTEST_SKIP() << skip;
    }
    auto s = backend_->open();
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s).value();
    ASSERT_TRUE(Ok(store_->initialize()));
  }

  void put_raw(const Item& item) {
    auto r = backend_->client().put_item(backend_->table(), item);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  Item get_raw(const std::string& key) {
    GetItemOptions options;
    options.consistent_read = true;
    auto r =
        backend_->client().get_item(backend_->table(), {{"leaseKey", AV::string(key)}}, options);
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << (r.ok() ? "no item " + key : r.status().to_string());
      return {};
    }
    return **r;
  }

  std::unique_ptr<DynamoDbBackend> backend_;
  std::unique_ptr<LeaseStore> store_;
};

constexpr const char* kKclCheckpoint = "49590338271490256608559692538361571095921575989136588898";
constexpr const char* kUpperHalfStart = "170141183460469231731687303715884105728";
constexpr const char* kMaxHashKey = "340282366920938463463374607431768211455";

// An item as the Java KCL 2.x writes it for a lease held by "java-worker" (plus the
// attributes a KCL 3.x worker adds, which shardline must keep).
Item java_kcl_item() {
  return Item{
      {"leaseKey", AV::string("shardId-000000000001")},
      {"leaseOwner", AV::string("java-worker")},
      {"leaseCounter", AV::number(42)},
      {"checkpoint", AV::string(kKclCheckpoint)},
      {"checkpointSubSequenceNumber", AV::number(3)},
      {"ownerSwitchesSinceCheckpoint", AV::number(0)},
      {"parentShardId", AV::string_set({"shardId-000000000000"})},
      {"startingHashKey", AV::string(kUpperHalfStart)},
      {"endingHashKey", AV::string(kMaxHashKey)},
      {"throughputKBps", AV::number("12.345678")},
      {"entityType", AV::string("LEASE")},
  };
}

Lease java_kcl_lease() {
  Lease l;
  l.lease_key = "shardId-000000000001";
  l.lease_owner = "java-worker";
  l.lease_counter = 42;
  l.checkpoint = kKclCheckpoint;
  l.checkpoint_sub_sequence_number = 3;
  l.owner_switches_since_checkpoint = 0;
  l.parent_shard_ids = {"shardId-000000000000"};
  l.hash_key_range =
      HashKeyRange{*HashKey::parse_decimal(kUpperHalfStart), *HashKey::parse_decimal(kMaxHashKey)};
  return l;
}

TEST_F(DynamoDbLeaseStoreKcl, ReadsTakesAndCheckpointsAJavaKclLease) {
  put_raw(java_kcl_item());
  auto listed = store_->list_leases();
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front(), java_kcl_lease());

  Lease l = listed->front();
  ASSERT_TRUE(Wrote(store_->take_lease(l, "shardline-worker")));
  // Exactly the item the KCL expects after its own takeLease: owner set, counter + 1, one
  // more owner switch; every other attribute (including ones shardline does not know) kept.
  Item expected = java_kcl_item();
  expected["leaseOwner"] = AV::string("shardline-worker");
  expected["leaseCounter"] = AV::number(43);
  expected["ownerSwitchesSinceCheckpoint"] = AV::number(1);
  EXPECT_EQ(get_raw(l.lease_key), expected);
  EXPECT_EQ(l.lease_counter, 43);
  EXPECT_EQ(l.owner_switches_since_checkpoint, 1);

  ASSERT_TRUE(Wrote(store_->renew_lease(l)));
  ASSERT_TRUE(Wrote(
      store_->prepare_checkpoint(l, "49590338271490256608559692540925702759324208523137515618", 1,
                                 std::string("\x00\x01", 2))));
  expected["leaseCounter"] = AV::number(45);
  expected["pendingCheckpoint"] =
      AV::string("49590338271490256608559692540925702759324208523137515618");
  expected["pendingCheckpointSubSequenceNumber"] = AV::number(1);
  expected["pendingCheckpointState"] = AV::binary(std::string("\x00\x01", 2));
  EXPECT_EQ(get_raw(l.lease_key), expected);

  ASSERT_TRUE(Wrote(
      store_->update_checkpoint(l, "49590338271490256608559692540925702759324208523137515618", 1)));
  expected.erase("pendingCheckpoint");
  expected.erase("pendingCheckpointSubSequenceNumber");
  expected.erase("pendingCheckpointState");
  expected["leaseCounter"] = AV::number(46);
  expected["checkpoint"] = AV::string("49590338271490256608559692540925702759324208523137515618");
  expected["checkpointSubSequenceNumber"] = AV::number(1);
  expected["ownerSwitchesSinceCheckpoint"] = AV::number(0);
  EXPECT_EQ(get_raw(l.lease_key), expected);

  // A Java worker's stale copy (counter 42) can no longer renew; with a fresh read it could.
  Lease java = java_kcl_lease();
  EXPECT_TRUE(Refused(store_->renew_lease(java)));

  ASSERT_TRUE(Wrote(store_->evict_lease(l)));
  expected.erase("leaseOwner");
  expected["leaseCounter"] = AV::number(47);
  EXPECT_EQ(get_raw(l.lease_key), expected);
}

TEST_F(DynamoDbLeaseStoreKcl, ToleratesOlderItemsWithoutOptionalAttributes) {
  // KCL 1.x / early 2.x: no ownerSwitchesSinceCheckpoint, no hash range, no entityType.
  put_raw(Item{{"leaseKey", AV::string("shardId-000000000007")},
               {"leaseOwner", AV::string("old-java-worker")},
               {"leaseCounter", AV::number(5)},
               {"checkpoint", AV::string("TRIM_HORIZON")},
               {"checkpointSubSequenceNumber", AV::number(0)}});
  auto got = store_->get_lease("shardId-000000000007");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(got->has_value());
  Lease l = **got;
  EXPECT_EQ(l.lease_owner, "old-java-worker");
  EXPECT_EQ(l.owner_switches_since_checkpoint, 0);
  ASSERT_TRUE(Wrote(store_->take_lease(l, "shardline-worker")));  // ADD on a missing number
  EXPECT_EQ(l.owner_switches_since_checkpoint, 1);
  EXPECT_EQ(get_raw(l.lease_key), (Item{{"leaseKey", AV::string("shardId-000000000007")},
                                        {"leaseOwner", AV::string("shardline-worker")},
                                        {"leaseCounter", AV::number(6)},
                                        {"checkpoint", AV::string("TRIM_HORIZON")},
                                        {"checkpointSubSequenceNumber", AV::number(0)},
                                        {"ownerSwitchesSinceCheckpoint", AV::number(1)}}));
}

TEST_F(DynamoDbLeaseStoreKcl, ItemsShardlineCreatesHaveTheKclNamesAndTypes) {
  Lease l = java_kcl_lease();
  l.lease_key = "shardId-000000000002";
  l.lease_owner.clear();
  l.lease_counter = 0;
  l.child_shard_ids = {"shardId-000000000005"};
  ASSERT_TRUE(Wrote(store_->create_lease_if_not_exists(l)));
  EXPECT_EQ(get_raw(l.lease_key), (Item{{"leaseKey", AV::string("shardId-000000000002")},
                                        {"leaseCounter", AV::number(0)},
                                        {"checkpoint", AV::string(kKclCheckpoint)},
                                        {"checkpointSubSequenceNumber", AV::number(3)},
                                        {"ownerSwitchesSinceCheckpoint", AV::number(0)},
                                        {"parentShardId", AV::string_set({"shardId-000000000000"})},
                                        {"childShardIds", AV::string_set({"shardId-000000000005"})},
                                        {"startingHashKey", AV::string(kUpperHalfStart)},
                                        {"endingHashKey", AV::string(kMaxHashKey)}}));

  // Metadata lands in the KCL attributes and leaves the counter alone.
  Lease meta;
  meta.lease_key = l.lease_key;
  meta.child_shard_ids = {"shardId-000000000006", "shardId-000000000005"};
  meta.hash_key_range = HashKeyRange{HashKey(0, 0), HashKey(0, 99)};
  ASSERT_TRUE(Ok(store_->update_lease_metadata(meta)));
  Item raw = get_raw(l.lease_key);
  EXPECT_EQ(raw["childShardIds"], AV::string_set({"shardId-000000000005", "shardId-000000000006"}));
  EXPECT_EQ(raw["startingHashKey"], AV::string("0"));
  EXPECT_EQ(raw["endingHashKey"], AV::string("99"));
  EXPECT_EQ(raw["leaseCounter"], AV::number(0));
}

TEST_F(DynamoDbLeaseStoreKcl, OtherEntitiesAreNotLeases) {
  put_raw(java_kcl_item());
  // KCL 3.5 single-table entities share the table.
  put_raw(Item{{"leaseKey", AV::string("worker-1")},
               {"entityType", AV::string("WORKER_METRIC_STATS")},
               {"lut", AV::number(1700000000)}});
  put_raw(Item{{"leaseKey", AV::string("Leader")},
               {"entityType", AV::string("LEADER")},
               {"leaseCounter", AV::number(3)}});
  auto listed = store_->list_leases();
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  EXPECT_EQ(*listed, std::vector<Lease>{java_kcl_lease()});
  auto worker = store_->get_lease("worker-1");
  ASSERT_TRUE(worker.ok()) << worker.status().to_string();
  EXPECT_EQ(*worker, std::nullopt);
  // Its key is taken all the same: no lease can be created over it.
  Lease l;
  l.lease_key = "worker-1";
  EXPECT_TRUE(Refused(store_->create_lease_if_not_exists(l)));
}

TEST_F(DynamoDbLeaseStoreKcl, MalformedItemsAreInternalErrors) {
  put_raw(Item{{"leaseKey", AV::string("shardId-000000000008")},
               {"leaseCounter", AV::string("not a number")}});
  auto listed = store_->list_leases();
  EXPECT_TRUE(Fails(listed.status(), StatusCode::kInternal));
  EXPECT_NE(listed.status().message().find("shardId-000000000008"), std::string_view::npos)
      << listed.status().to_string();
  EXPECT_NE(listed.status().message().find(backend_->table()), std::string_view::npos)
      << listed.status().to_string();
}

TEST(DynamoDbLeaseStoreTable, InitializeRefusesATableWithAnotherKey) {
  std::string skip;
  auto backend = DynamoDbBackend::make(skip);
  if (backend == nullptr) {
    if (skip.empty()) FAIL() << "no DynamoDB client";
    GTEST_SKIP() << skip;
  }
  CreateTableRequest req;
  req.table_name = backend->table();
  req.key_schema = {{"id", KeyType::kHash}};
  req.attribute_definitions = {{"id", ScalarType::kString}};
  ASSERT_TRUE(backend->client().create_table(req).ok());
  ASSERT_TRUE(
      Ok(backend->client().wait_for_table_active(req.table_name, std::chrono::seconds(60))));
  auto store = backend->open();
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_TRUE(Fails((*store)->initialize(), StatusCode::kFailedPrecondition));
}

TEST(DynamoDbLeaseStoreTable, InitializeCreatesAnOnDemandTable) {
  std::string skip;
  auto backend = DynamoDbBackend::make(skip);
  if (backend == nullptr) {
    if (skip.empty()) FAIL() << "no DynamoDB client";
    GTEST_SKIP() << skip;
  }
  auto store = backend->open();
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  ASSERT_TRUE(Ok((*store)->initialize()));
  auto d = backend->client().describe_table(backend->table());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->table_status, "ACTIVE");
  EXPECT_EQ(d->billing_mode, BillingMode::kPayPerRequest);
  EXPECT_EQ(d->key_schema, (std::vector<KeySchemaElement>{{"leaseKey", KeyType::kHash}}));
  EXPECT_EQ(d->attribute_definitions,
            (std::vector<AttributeDefinition>{{"leaseKey", ScalarType::kString}}));
  // Initializing an existing table is fine.
  auto again = backend->open();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(Ok((*again)->initialize()));
  EXPECT_EQ((*store)->describe(), "dynamodb:" + backend->table());
}

TEST(DynamoDbLeaseStoreTable, WorkersInitializingTogetherBothSucceed) {
  std::string skip;
  auto backend = DynamoDbBackend::make(skip);
  if (backend == nullptr) {
    if (skip.empty()) FAIL() << "no DynamoDB client";
    GTEST_SKIP() << skip;
  }
  auto a = backend->open();
  auto b = backend->open();
  ASSERT_TRUE(a.ok() && b.ok());
  // Both may find no table and both try to create it: the loser's ResourceInUseException
  // must not fail its initialize().
  std::barrier start(2);
  Status results[2];
  std::thread ta([&] {
    start.arrive_and_wait();
    results[0] = (*a)->initialize();
  });
  std::thread tb([&] {
    start.arrive_and_wait();
    results[1] = (*b)->initialize();
  });
  ta.join();
  tb.join();
  EXPECT_TRUE(Ok(results[0]));
  EXPECT_TRUE(Ok(results[1]));
}

}  // namespace
}  // namespace shardline::lease_store_suite
