// Region and endpoint resolution (shardline/aws_config.h).
#include "shardline/aws_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/scoped_env.h"

namespace shardline {
namespace {

namespace fs = std::filesystem;
using testing::ScopedEnv;

class AwsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.emplace(testing::aws_environment_names());
    std::string tmpl = (fs::temp_directory_path() / "shardline-region-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    env_->set("HOME", dir_);
  }
  void TearDown() override {
    env_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void config(const std::string& text) {
    const std::string path = dir_ + "/config";
    std::ofstream(path) << text;
    env_->set("AWS_CONFIG_FILE", path);
  }
  std::optional<ScopedEnv> env_;
  std::string dir_;
};

using RegionResolution = AwsConfigTest;
using EndpointResolution = AwsConfigTest;

TEST_F(RegionResolution, PrecedenceExplicitThenEnvironmentThenProfile) {
  config("[default]\nregion = eu-central-1\n[profile dev]\nregion = ap-south-1\n");
  EXPECT_EQ(*resolve_region(), "eu-central-1");
  env_->set("AWS_PROFILE", "dev");
  EXPECT_EQ(*resolve_region(), "ap-south-1");
  EXPECT_EQ(*resolve_region({}, "default"), "eu-central-1");  // the argument beats AWS_PROFILE
  env_->set("AWS_DEFAULT_REGION", "us-west-1");
  EXPECT_EQ(*resolve_region(), "us-west-1");
  env_->set("AWS_REGION", "us-west-2");
  EXPECT_EQ(*resolve_region(), "us-west-2");
  EXPECT_EQ(*resolve_region("sa-east-1"), "sa-east-1");
}

TEST_F(RegionResolution, DefaultConfigFileUnderHome) {
  fs::create_directories(dir_ + "/.aws");
  std::ofstream(dir_ + "/.aws/config") << "[default]\nregion = ca-central-1\n";
  EXPECT_EQ(*resolve_region(), "ca-central-1");
}

TEST_F(RegionResolution, MissingOrInvalidRegionIsInvalidArgument) {
  auto none = resolve_region();
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no AWS region configured"), std::string::npos);
  EXPECT_NE(none.status().message().find("--region"), std::string::npos);
  EXPECT_EQ(resolve_region("US East").status().code(), StatusCode::kInvalidArgument);
  env_->set("AWS_REGION", "evil.example.com/");
  auto bad = resolve_region();
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("AWS_REGION"), std::string::npos);
  env_->unset("AWS_REGION");
  config("[default\nregion = x\n");
  EXPECT_EQ(resolve_region().status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EndpointResolution, DefaultsPerServiceAndPartition) {
  auto k = resolve_endpoint("kinesis", "us-east-1");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->url(), "https://kinesis.us-east-1.amazonaws.com");
  EXPECT_EQ(k->authority(), "kinesis.us-east-1.amazonaws.com");
  EXPECT_EQ(k->port, 443);
  EXPECT_EQ(resolve_endpoint("dynamodb", "eu-west-1")->url(),
            "https://dynamodb.eu-west-1.amazonaws.com");
  EXPECT_EQ(resolve_endpoint("sts", "cn-north-1")->url(),
            "https://sts.cn-north-1.amazonaws.com.cn");
  EXPECT_EQ(dns_suffix_for_region("cn-northwest-1"), "amazonaws.com.cn");
  EXPECT_EQ(dns_suffix_for_region("us-gov-west-1"), "amazonaws.com");
}

TEST_F(EndpointResolution, OverridePrecedence) {
  env_->set("AWS_ENDPOINT_URL", "http://localhost:4566");
  EXPECT_EQ(resolve_endpoint("kinesis", "us-east-1")->url(), "http://localhost:4566");
  env_->set("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:4567");
  EXPECT_EQ(resolve_endpoint("kinesis", "us-east-1")->url(), "http://127.0.0.1:4567");
  EXPECT_EQ(resolve_endpoint("dynamodb", "us-east-1")->url(), "http://localhost:4566");
  env_->set("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000");
  EXPECT_EQ(resolve_endpoint("dynamodb", "us-east-1")->url(), "http://127.0.0.1:8000");
  env_->set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9000/");
  EXPECT_EQ(resolve_endpoint("sts", "us-east-1")->url(), "http://127.0.0.1:9000");
  EXPECT_EQ(
      resolve_endpoint("kinesis", "us-east-1", "https://vpce-1.kinesis.example:8443/base")->url(),
      "https://vpce-1.kinesis.example:8443/base");
  // An override does not need a region.
  EXPECT_TRUE(resolve_endpoint("kinesis", "").ok());
  env_->set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
  EXPECT_EQ(resolve_endpoint("kinesis", "us-east-1")->url(),
            "https://kinesis.us-east-1.amazonaws.com");
}

TEST_F(EndpointResolution, MalformedOverrideNamesItsSource) {
  env_->set("AWS_ENDPOINT_URL_KINESIS", "localhost:4567");
  auto r = resolve_endpoint("kinesis", "us-east-1");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("AWS_ENDPOINT_URL_KINESIS: invalid endpoint URL", 0), 0u)
      << r.status().message();
  EXPECT_NE(
      resolve_endpoint("kinesis", "us-east-1", "nope").status().message().find("--endpoint-url"),
      std::string::npos);
}

TEST_F(EndpointResolution, MissingRegionIsInvalidArgument) {
  auto r = resolve_endpoint("kinesis", "");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no AWS region"), std::string::npos);
  EXPECT_EQ(resolve_endpoint("kinesis", "bad region").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EndpointUrl, ParsesSchemeHostPortAndBasePath) {
  auto e = parse_endpoint_url("HTTP://LocalHost:4567/prefix/");
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->scheme, "http");
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, 4567);
  EXPECT_EQ(e->base_path, "/prefix");
  EXPECT_EQ(e->authority(), "localhost:4567");
  EXPECT_EQ(e->url(), "http://localhost:4567/prefix");
  auto d = parse_endpoint_url("http://example.com:80");
  EXPECT_EQ(d->authority(), "example.com");  // default port omitted from Host
  EXPECT_TRUE(d->default_port());
  auto v6 = parse_endpoint_url("https://[::1]:8443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->port, 8443);
  EXPECT_EQ(v6->url(), "https://[::1]:8443");
  EXPECT_EQ(parse_endpoint_url("https://[fd00:ec2::254]")->port, 443);
}

TEST(EndpointUrl, RejectsMalformedUrls) {
  for (const char* bad :
       {"", "localhost:4567", "ftp://host", "http://", "http://:80",
        "http://host:", "http://host:0", "http://host:65536", "http://host:12ab",
        "http://user:pw@host", "http://host/path?x=1", "http://host#frag", "http://ho st",
        "http://[::1", "http://[::1]x", "http://[]", "http://host/pa th"}) {
    auto r = parse_endpoint_url(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace shardline
