// `shardline leases` on a SQLite lease store written through the LeaseStore API.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "shardline/lease_store.h"
#include "support/local_aws.h"

namespace shardline {
namespace {

std::string run(const std::string& cmd, int* rc) {
  return shardline::testing::run_command(cmd, rc);
}

class LeasesCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sl-leases-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "orders.leases.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(LeasesCli, ListsEveryLeaseAsATableAndAsJson) {
  auto store = make_sqlite_lease_store(path_, "orders");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  ASSERT_TRUE((*store)->initialize().ok());
  Lease a;
  a.lease_key = "shardId-000000000000";
  a.checkpoint = std::string(kCheckpointShardEnd);
  a.child_shard_ids = {"shardId-000000000002"};
  Lease b;
  b.lease_key = "shardId-000000000002";
  b.checkpoint = "49590338271490256608559692538361571095921575989136588898";
  b.checkpoint_sub_sequence_number = 3;
  b.parent_shard_ids = {"shardId-000000000000"};
  ASSERT_TRUE(*(*store)->create_lease_if_not_exists(a));
  ASSERT_TRUE(*(*store)->create_lease_if_not_exists(b));
  ASSERT_TRUE(*(*store)->take_lease(b, "worker-1"));

  int rc = -1;
  const std::string cli = SHARDLINE_CLI_PATH;
  const std::string table =
      run("cd " + dir_.string() + " && " + cli + " leases --application orders", &rc);
  ASSERT_EQ(rc, 0) << table;
  EXPECT_NE(table.find("shardId-000000000002     worker-1"), std::string::npos) << table;
  EXPECT_NE(table.find("SHARD_END"), std::string::npos);
  EXPECT_NE(table.find("2 leases, 1 owners, 1 unowned; worker-1: 1"), std::string::npos) << table;

  const std::string json =
      run(cli + " leases --application orders --json --lease-table sqlite:" + path_, &rc);
  ASSERT_EQ(rc, 0) << json;
  const auto first = nlohmann::json::parse(json.substr(0, json.find('\n')));
  const auto second = nlohmann::json::parse(json.substr(json.find('\n') + 1));
  EXPECT_TRUE(first["leaseOwner"].is_null());
  EXPECT_EQ(first["childShardIds"], nlohmann::json::array({"shardId-000000000002"}));
  EXPECT_EQ(second["leaseOwner"], "worker-1");
  EXPECT_EQ(second["leaseCounter"], 1);
  EXPECT_EQ(second["checkpointSubSequenceNumber"], 3);
  EXPECT_EQ(second["parentShardIds"], nlohmann::json::array({"shardId-000000000000"}));
}

TEST_F(LeasesCli, SamplingShowsTheAgeOfEachLease) {
  auto store = make_sqlite_lease_store(path_, "orders");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  ASSERT_TRUE((*store)->initialize().ok());
  Lease live, stalled;
  live.lease_key = "shardId-000000000000";
  stalled.lease_key = "shardId-000000000001";
  for (Lease* l : {&live, &stalled}) {
    l->checkpoint = std::string(kCheckpointTrimHorizon);
    ASSERT_TRUE(*(*store)->create_lease_if_not_exists(*l));
    ASSERT_TRUE(*(*store)->take_lease(*l, "worker-1"));
  }
  // A live owner renews one lease the whole time the CLI samples; the other never moves.
  std::atomic<bool> done{false};
  std::thread renewer([&] {
    auto own = make_sqlite_lease_store(path_, "orders");
    if (!own.ok()) return;
    while (!done.load()) {
      (void)(*own)->renew_lease(live);
      std::this_thread::yield();
    }
  });
  int rc = -1;
  const std::string json = run(std::string(SHARDLINE_CLI_PATH) +
                                   " leases --application orders --json --sample 0.6 "
                                   "--lease-table sqlite:" +
                                   path_,
                               &rc);
  done = true;
  renewer.join();
  ASSERT_EQ(rc, 0) << json;
  const auto first = nlohmann::json::parse(json.substr(0, json.find('\n')));
  const auto second = nlohmann::json::parse(json.substr(json.find('\n') + 1));
  ASSERT_TRUE(first.contains("ageMs")) << first;
  EXPECT_LT(first["ageMs"].get<long>(), 600);
  ASSERT_TRUE(second.contains("ageMsAtLeast")) << second;
  EXPECT_GE(second["ageMsAtLeast"].get<long>(), 600);
  // Without --sample there is no age.
  const std::string plain =
      run(std::string(SHARDLINE_CLI_PATH) +
              " leases --application orders --json --lease-table sqlite:" + path_,
          &rc);
  EXPECT_EQ(plain.find("ageMs"), std::string::npos) << plain;
}

TEST_F(LeasesCli, AMissingStoreIsAnErrorAndIsNotCreated) {
  int rc = -1;
  const std::string out =
      run(std::string(SHARDLINE_CLI_PATH) + " leases --application nope --lease-table sqlite:" +
              (dir_ / "nope.db").string() + " 2>&1",
          &rc);
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("no lease store at"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "nope.db"));
  const std::string bad = run(
      std::string(SHARDLINE_CLI_PATH) + " leases --application x --lease-table dynamo:t 2>&1", &rc);
  EXPECT_EQ(rc, 2) << bad;
}

}  // namespace
}  // namespace shardline
