// A GoogleTest fixture base for integration tests that run shardline processes against the
// local Kinesis server: a Kinesis client on SHARDLINE_KINESIS_ENDPOINT (the test is skipped
// when it is unset), a private temporary directory, an environment holding only fake static
// credentials (no profile, no instance metadata), and streams deleted at the end.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shardline/kinesis.h"
#include "support/local_aws.h"
#include "support/scoped_env.h"

namespace shardline::testing {

class LocalStreamTest : public ::testing::Test {
 protected:
  /// `tag` names the temporary directory and the streams ("consume-cli" ...).
  explicit LocalStreamTest(std::string tag) : tag_(std::move(tag)) {}

  void SetUp() override {
    endpoint_ = env_or_empty("SHARDLINE_KINESIS_ENDPOINT");
    if (endpoint_.empty())
      GTEST_SKIP() << "SHARDLINE_KINESIS_ENDPOINT unset: scripts/servers start";
    auto k = KinesisClient::create(local_aws_config(endpoint_));
    ASSERT_TRUE(k.ok()) << k.status().to_string();
    k_ = std::move(*k);
    std::string tmpl = "/tmp/shardline-" + tag_ + "-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    // Child processes find credentials in the environment, and nothing else of the developer's.
    env_.emplace(aws_environment_names());
    env_->set("AWS_ACCESS_KEY_ID", "AKIDTEST");
    env_->set("AWS_SECRET_ACCESS_KEY", "test-secret");
    env_->set("AWS_EC2_METADATA_DISABLED", "true");
    env_->set("HOME", dir_);
  }

  void TearDown() override {
    for (const auto& s : streams_) (void)k_->delete_stream(s);
    env_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  /// A new ACTIVE stream with `shards` shards, deleted in TearDown.
  std::string make_stream(int shards) {
    static std::mt19937_64 rng(std::random_device{}());
    const std::string name = tag_ + "-" + std::to_string(rng() % 1000000000);
    EXPECT_TRUE(k_->create_stream(name, shards).ok());
    EXPECT_TRUE(k_->wait_for_stream_active(name, std::chrono::seconds(30)).ok());
    streams_.push_back(name);
    return name;
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string endpoint_, dir_;
  std::unique_ptr<KinesisClient> k_;
  std::vector<std::string> streams_;
  std::optional<ScopedEnv> env_;

 private:
  std::string tag_;
};

}  // namespace shardline::testing
