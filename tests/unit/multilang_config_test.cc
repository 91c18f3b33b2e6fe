// A KCL MultiLangDaemon properties file applied across the consumer and multilang tables:
// routing, the Java daemon's keys (every key of its configuration is known), warnings for
// unused and unknown keys with the nearest key of either table, errors naming key and line;
// and the AwsCredentialsProvider values mapped to shardline's credentials providers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "shardline/config.h"
#include "shardline/multilang.h"
#include "support/fake_aws_metadata.h"
#include "support/scoped_env.h"
#include "unit/multilang_test_support.h"

namespace shardline {
namespace {

Status load(const std::string& text, ConsumerConfig& c, MultiLangConfig& m,
            std::vector<std::string>& warnings) {
  return apply_properties(c, m, text, "app.properties", &warnings);
}

bool any_contains(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v) {
    if (s.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(MultiLangConfig, DefaultsDifferFromTheJavaDaemonWhereDocumented) {
  MultiLangConfig m;
  EXPECT_EQ(m.shutdown_grace_millis, 5000);  // the Java daemon: 0 (does not wait)
  EXPECT_EQ(m.timeout_in_seconds, 0);        // no limit, as unset in Java
  EXPECT_EQ(m.aws_credentials_provider, "DefaultCredentialsProvider");
  EXPECT_EQ(m.executable_name, "");
  EXPECT_TRUE(validate_config(m).ok());
  m.timeout_in_seconds = -1;
  EXPECT_NE(validate_config(m).message().find("timeoutInSeconds"), std::string_view::npos);
}

// shardline's own keys: zeroCopyMessages is on unless the file turns it off.
TEST(MultiLangConfig, ZeroCopyMessagesCanBeTurnedOff) {
  ConsumerConfig c;
  MultiLangConfig m;
  std::vector<std::string> warnings;
  EXPECT_TRUE(m.zero_copy_messages);
  ASSERT_TRUE(load("executableName = x\nzeroCopyMessages = false\n", c, m, warnings).ok());
  EXPECT_FALSE(m.zero_copy_messages);
  EXPECT_TRUE(warnings.empty());
  EXPECT_FALSE(load("zeroCopyMessages = sometimes\n", c, m, warnings).ok());
}

// The Python sample's properties file (KCL 2.x/3.x), keys routed to both tables.
TEST(MultiLangConfig, LoadsAJavaDaemonSampleFile) {
  const std::string text = R"(# The script that abides by the multi-language protocol.
executableName = sample_kclpy_app.py
streamName = kclpysample
applicationName = PythonKCLSample
AWSCredentialsProvider = DefaultCredentialsProvider
processingLanguage = python/3.8
initialPositionInStream = TRIM_HORIZON
#initialPositionInStreamExtended = 1636609142
maxRecords = 10000
idleTimeBetweenReadsInMillis = 1000
failoverTimeMillis = 10000
workerId = worker-1
shardSyncIntervalMillis = 60000
callProcessRecordsEvenForEmptyRecordList = false
parentShardPollIntervalMillis = 10000
cleanupLeasesUponShardCompletion = true
taskBackoffTimeMillis = 500
metricsBufferTimeMillis = 10000
metricsMaxQueueSize = 10000
validateSequenceNumberBeforeCheckpointing = true
regionName = us-east-1
maxLeasesForWorker = 2147483647
maxLeasesToStealAtOneTime = 1
initialLeaseTableReadCapacity = 10
initialLeaseTableWriteCapacity = 10
maxLeaseRenewalThreads=20
maxActiveThreads = -1
timeoutInSeconds = 30
shutdownGraceMillis = 2000
tableName = kclpysample-leases
kinesisEndpoint = https://kinesis.us-east-1.amazonaws.com
dynamoDBEndpoint = https://dynamodb.us-east-1.amazonaws.com
retrievalMode = POLLING
)";
  ConsumerConfig c;
  MultiLangConfig m;
  std::vector<std::string> w;
  ASSERT_TRUE(load(text, c, m, w).ok());
  EXPECT_EQ(m.executable_name, "sample_kclpy_app.py");
  EXPECT_EQ(m.aws_credentials_provider, "DefaultCredentialsProvider");
  EXPECT_EQ(m.max_active_threads, -1);
  EXPECT_EQ(m.timeout_in_seconds, 30);
  EXPECT_EQ(m.shutdown_grace_millis, 2000);
  EXPECT_EQ(c.stream_name, "kclpysample");
  EXPECT_EQ(c.application_name, "PythonKCLSample");
  EXPECT_EQ(c.initial_position_in_stream, "TRIM_HORIZON");
  EXPECT_EQ(c.idle_time_between_reads_in_millis, 1000);
  EXPECT_EQ(c.worker_id, "worker-1");
  EXPECT_EQ(c.table_name, "kclpysample-leases");
  EXPECT_EQ(c.region_name, "us-east-1");
  EXPECT_EQ(c.max_leases_to_steal_at_one_time, 1);
  EXPECT_EQ(c.kinesis_endpoint, "https://kinesis.us-east-1.amazonaws.com");
  // No key is unknown; the unused ones say why, once each, with their line.
  EXPECT_FALSE(any_contains(w, "unknown key")) << ::testing::PrintToString(w);
  EXPECT_TRUE(any_contains(w, "app.properties:6: processingLanguage accepted, not used"));
  EXPECT_TRUE(any_contains(w, "validateSequenceNumberBeforeCheckpointing accepted, not used"));
  EXPECT_FALSE(any_contains(w, "AWSCredentialsProvider"));
  EXPECT_FALSE(any_contains(w, "maxActiveThreads"));
}

// Every key of the Java daemon's configuration (MultiLangDaemonConfiguration and its beans) is
// either honoured or accepted with a reason: none is "unknown".
TEST(MultiLangConfig, EveryJavaDaemonKeyIsKnown) {
  const char* keys[] = {"executableName",
                        "processingLanguage",
                        "maxActiveThreads",
                        "applicationName",
                        "streamName",
                        "streamArn",
                        "tableName",
                        "workerId",
                        "regionName",
                        "kinesisEndpoint",
                        "dynamoDBEndpoint",
                        "AwsCredentialsProvider",
                        "AwsCredentialsProviderDynamoDB",
                        "AwsCredentialsProviderCloudWatch",
                        "initialPositionInStream",
                        "initialPositionInStreamExtended",
                        "failoverTimeMillis",
                        "leaseAssignmentIntervalMillis",
                        "shardSyncIntervalMillis",
                        "cleanupLeasesUponShardCompletion",
                        "ignoreUnexpectedChildShards",
                        "maxLeasesForWorker",
                        "maxLeasesToStealAtOneTime",
                        "enablePriorityLeaseAssignment",
                        "initialLeaseTableReadCapacity",
                        "initialLeaseTableWriteCapacity",
                        "leaseTableDeletionProtectionEnabled",
                        "leaseTablePitrEnabled",
                        "leaseTableScanTotalSegments",
                        "maxLeaseRenewalThreads",
                        "listShardsBackoffTimeInMillis",
                        "maxListShardsRetryAttempts",
                        "callProcessRecordsEvenForEmptyRecordList",
                        "parentShardPollIntervalMillis",
                        "shardPrioritization",
                        "skipShardSyncAtWorkerInitializationIfLeasesExist",
                        "schedulerInitializationBackoffTimeMillis",
                        "clientVersionConfig",
                        "migrateAllEntitiesToLeaseTable",
                        "tableMigrationCompleteBakeTimeSeconds",
                        "taskBackoffTimeMillis",
                        "logWarningForTaskAfterMillis",
                        "metricsBufferTimeMillis",
                        "metricsMaxQueueSize",
                        "metricsLevel",
                        "metricsEnabledDimensions",
                        "retrievalMode",
                        "maxRecords",
                        "idleTimeBetweenReadsInMillis",
                        "retryGetRecordsInSeconds",
                        "maxGetRecordsThreadPool",
                        "millisBehindLatestThresholdForReducedTps",
                        "consumerArn",
                        "consumerName",
                        "maxDescribeStreamSummaryRetries",
                        "maxDescribeStreamConsumerRetries",
                        "registerStreamConsumerRetries",
                        "retryBackoffMillis",
                        "gracefulLeaseHandoffTimeoutMillis",
                        "isGracefulLeaseHandoffEnabled",
                        "inMemoryWorkerMetricsCaptureFrequencyMillis",
                        "workerMetricsReporterFreqInMillis",
                        "noOfPersistedMetricsPerWorkerMetrics",
                        "disableWorkerMetrics",
                        "maxThroughputPerHostKBps",
                        "dampeningPercentage",
                        "reBalanceThresholdPercentage",
                        "allowThroughputOvershoot",
                        "varianceBalancingFrequency",
                        "workerMetricsEMAAlpha",
                        "staleWorkerMetricsEntryCleanupDuration",
                        "workerMetricsTableName",
                        "workerMetricsBillingMode",
                        "workerMetricsReadCapacity",
                        "workerMetricsWriteCapacity",
                        "workerMetricsPointInTimeRecoveryEnabled",
                        "workerMetricsDeletionProtectionEnabled",
                        "workerMetricsTags",
                        "coordinatorStateTableName",
                        "coordinatorStateBillingMode",
                        "coordinatorStateReadCapacity",
                        "coordinatorStateWriteCapacity",
                        "coordinatorStatePointInTimeRecoveryEnabled",
                        "coordinatorStateDeletionProtectionEnabled",
                        "coordinatorStateTags",
                        "timeoutInSeconds",
                        "shutdownGraceMillis",
                        "validateSequenceNumberBeforeCheckpointing"};
  std::set<std::string> known;
  for (const auto& s : consumer_settings()) known.insert(std::string(s.key));
  for (const auto& s : multilang_settings()) known.insert(std::string(s.key));
  for (const char* k : keys) EXPECT_TRUE(known.count(k)) << k;
  // And the two tables never define the same key twice, apart from the credentials rows the
  // multilang table takes over.
  std::set<std::string> ml;
  for (const auto& s : multilang_settings()) ml.insert(std::string(s.key));
  for (const auto& s : consumer_settings()) {
    if (ml.count(std::string(s.key))) {
      EXPECT_EQ(std::string(s.key).rfind("AwsCredentialsProvider", 0), 0u) << s.key;
    }
  }
}

TEST(MultiLangConfig, CredentialsKeysInAnyCase) {
  for (const char* key :
       {"AwsCredentialsProvider", "AWSCredentialsProvider", "awscredentialsprovider"}) {
    ConsumerConfig c;
    MultiLangConfig m;
    std::vector<std::string> w;
    ASSERT_TRUE(load(std::string(key) +
                         " = EnvironmentVariableCredentialsProvider\n"
                         "AWSCredentialsProviderDynamoDB = ProfileCredentialsProvider|x\n",
                     c, m, w)
                    .ok());
    EXPECT_EQ(m.aws_credentials_provider, "EnvironmentVariableCredentialsProvider") << key;
    EXPECT_EQ(m.aws_credentials_provider_dynamodb, "ProfileCredentialsProvider|x");
    EXPECT_TRUE(w.empty()) << ::testing::PrintToString(w);
  }
  ConsumerConfig c;
  MultiLangConfig m;
  std::vector<std::string> w;
  ASSERT_TRUE(
      load("AWSCredentialsProviderCloudWatch = DefaultCredentialsProvider\n", c, m, w).ok());
  EXPECT_TRUE(any_contains(w, "no CloudWatch metrics are published"))
      << ::testing::PrintToString(w);
}

TEST(MultiLangConfig, UnknownKeysNameTheNearestKeyOfEitherTable) {
  ConsumerConfig c;
  MultiLangConfig m;
  std::vector<std::string> w;
  ASSERT_TRUE(load("executableNme = x\nfailoverTimeMilis = 5\nshutdownGraceMilis = 1\n"
                   "somethingElseEntirely = 1\n",
                   c, m, w)
                  .ok());
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0],
            "app.properties:1: unknown key 'executableNme' ignored; did you mean "
            "'executableName'?");
  EXPECT_EQ(w[1],
            "app.properties:2: unknown key 'failoverTimeMilis' ignored; did you mean "
            "'failoverTimeMillis'?");
  EXPECT_EQ(w[2],
            "app.properties:3: unknown key 'shutdownGraceMilis' ignored; did you mean "
            "'shutdownGraceMillis'?");
  EXPECT_EQ(w[3], "app.properties:4: unknown key 'somethingElseEntirely' ignored");
  EXPECT_EQ(m.executable_name, "");
}

TEST(MultiLangConfig, ErrorsNameKeyAndLine) {
  const std::pair<std::string, std::string> cases[] = {
      {"timeoutInSeconds = -1", "app.properties:1: timeoutInSeconds must be in [0, 86400] s"},
      {"x = 1\nshutdownGraceMillis = soon",
       "app.properties:2: shutdownGraceMillis must be an integer in [0, 3600000] ms"},
      {"maxActiveThreads = 99999999999", "maxActiveThreads must be in"},
      {"failoverTimeMillis = 1", "failoverTimeMillis must be in"},
      {"replayBufferMaxBytes = -5", "replayBufferMaxBytes must be in"},
  };
  for (const auto& [text, want] : cases) {
    ConsumerConfig c;
    MultiLangConfig m;
    std::vector<std::string> w;
    const Status s = load(text, c, m, w);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(want), std::string_view::npos) << s.message();
  }
  ConsumerConfig c;
  MultiLangConfig m;
  EXPECT_EQ(load_properties_file("/nonexistent/x.properties", c, m).code(), StatusCode::kNotFound);
}

TEST(MultiLangConfig, TheGeneratedDocHasTheMultiLangSection) {
  const std::string md = configuration_markdown();
  EXPECT_NE(md.find("## MultiLangDaemon (`shardline multilang --properties FILE`"),
            std::string::npos);
  EXPECT_NE(md.find("| `executableName` | string |"), std::string::npos);
  EXPECT_NE(md.find("| `shutdownGraceMillis` | int | `5000` |"), std::string::npos);
  EXPECT_NE(md.find("| `consumerArn` | string |"), std::string::npos);
  EXPECT_EQ(md.find("fan-out is not implemented"), std::string::npos);
}

// ---- AwsCredentialsProvider values --------------------------------------------------------

class KclCredentialsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = testing::FakeAwsMetadata::start(server_error_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    env_.emplace(testing::aws_environment_names());
    env_->set("HOME", dir_.path());
    env_->set("AWS_EC2_METADATA_DISABLED", "true");
    env_->set("AWS_CONFIG_FILE", dir_.write("config", "[profile dev]\nregion = us-west-2\n"));
    env_->set("AWS_SHARED_CREDENTIALS_FILE", dir_.write("credentials",
                                                        "[dev]\naws_access_key_id = AKIDDEV\n"
                                                        "aws_secret_access_key = SECRETDEV\n"));
  }
  void TearDown() override { env_.reset(); }

  Result<std::shared_ptr<CredentialsProvider>> map(const std::string& value) {
    warnings_.clear();
    return credentials_provider_from_kcl(value, CredentialsOptions{}, &warnings_);
  }
  std::string key_of(const std::string& value) {
    auto p = map(value);
    if (!p.ok() || !*p) return "(no provider)";
    auto c = (*p)->get();
    return c.ok() ? c->access_key_id : "error: " + c.status().to_string();
  }

  testing::ChildDir dir_;
  std::optional<testing::ScopedEnv> env_;
  std::vector<std::string> warnings_;
  static testing::FakeAwsMetadata* server_;
  static std::string server_error_;
};

testing::FakeAwsMetadata* KclCredentialsTest::server_ = nullptr;
std::string KclCredentialsTest::server_error_;

TEST_F(KclCredentialsTest, TheDefaultChainInItsSpellingsIsTheClientsDefault) {
  for (const char* v : {"DefaultCredentialsProvider", "DefaultAWSCredentialsProviderChain",
                        "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
                        "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
                        " DefaultCredentialsProvider , "}) {
    auto p = map(v);
    ASSERT_TRUE(p.ok()) << v;
    EXPECT_EQ(*p, nullptr) << v;  // AwsClientConfig's default: the SDK chain
    EXPECT_TRUE(warnings_.empty()) << v;
  }
}

TEST_F(KclCredentialsTest, NamedProvidersAndChains) {
  env_->set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env_->set("AWS_SECRET_ACCESS_KEY", "SECRETENV");
  EXPECT_EQ(key_of("EnvironmentVariableCredentialsProvider"), "AKIDENV");
  EXPECT_EQ(key_of("ProfileCredentialsProvider|dev"), "AKIDDEV");
  EXPECT_EQ(key_of("com.amazonaws.auth.profile.ProfileCredentialsProvider|dev"), "AKIDDEV");
  // A chain: the first provider that has credentials.
  EXPECT_EQ(key_of("ProfileCredentialsProvider|dev,EnvironmentVariableCredentialsProvider"),
            "AKIDDEV");
  env_->unset("AWS_ACCESS_KEY_ID");
  env_->unset("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(key_of("EnvironmentVariableCredentialsProvider,ProfileCredentialsProvider|dev"),
            "AKIDDEV");
  EXPECT_TRUE(warnings_.empty());
  // Mapped without being fetched here: they need a container or an instance.
  for (const char* v : {"ContainerCredentialsProvider", "InstanceProfileCredentialsProvider",
                        "WebIdentityTokenFileCredentialsProvider"}) {
    auto p = map(v);
    ASSERT_TRUE(p.ok()) << v;
    EXPECT_NE(*p, nullptr) << v;
    EXPECT_TRUE(warnings_.empty()) << v;
  }
}

TEST_F(KclCredentialsTest, UnmappableProvidersAreWarnedAndSkipped) {
  auto p =
      map("org.example.MyCustomProvider|a|b, SystemPropertyCredentialsProvider,"
          "AnonymousCredentialsProvider");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, nullptr);  // nothing left: the default chain
  ASSERT_EQ(warnings_.size(), 4u) << ::testing::PrintToString(warnings_);
  EXPECT_NE(warnings_[0].find("'org.example.MyCustomProvider|a|b' cannot be mapped"),
            std::string::npos);
  EXPECT_NE(warnings_[1].find("Java system properties"), std::string::npos);
  EXPECT_NE(warnings_[2].find("unsigned requests"), std::string::npos);
  EXPECT_NE(warnings_[3].find("using the default chain"), std::string::npos);
  // A mappable provider after an unmappable one is kept.
  EXPECT_EQ(key_of("MyCustomProvider, ProfileCredentialsProvider|dev"), "AKIDDEV");
  EXPECT_EQ(warnings_.size(), 1u);
}

TEST_F(KclCredentialsTest, StsAssumeRoleWithNestedProperties) {
  ASSERT_NE(server_, nullptr) << server_error_;
  server_->reset();
  server_->control({{"known_keys", {{"AKIDENV", "SECRETENV"}}}});
  env_->set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env_->set("AWS_SECRET_ACCESS_KEY", "SECRETENV");
  env_->set("AWS_ENDPOINT_URL_STS", server_->url());
  EXPECT_EQ(key_of("KclStsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/kcl|"
                   "kcl-session|endpointRegion=us-west-2|externalId=spartacus"),
            "ASIASTS1");
  auto last = server_->stats()["last_sts"];
  EXPECT_EQ(last["Action"], "AssumeRole");
  EXPECT_EQ(last["RoleArn"], "arn:aws:iam::123456789012:role/kcl");
  EXPECT_EQ(last["RoleSessionName"], "kcl-session");
  EXPECT_EQ(last["ExternalId"], "spartacus");
  EXPECT_EQ(last["signing_access_key"], "AKIDENV");
  EXPECT_EQ(last["signing_region"], "us-west-2");
  // endpoint=URL^REGION names the STS endpoint and its signing region.
  env_->unset("AWS_ENDPOINT_URL_STS");
  EXPECT_EQ(key_of("StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/kcl|s2|"
                   "endpoint=" +
                   server_->url() + "^eu-west-1"),
            "ASIASTS2");
  last = server_->stats()["last_sts"];
  EXPECT_EQ(last["RoleSessionName"], "s2");
  EXPECT_EQ(last["signing_region"], "eu-west-1");
}

TEST_F(KclCredentialsTest, MalformedAssumeRoleProviders) {
  auto p = map("KclStsAssumeRoleCredentialsProvider");
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("role ARN is missing"), std::string_view::npos);
  p = map("KclStsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s|endpoint=http://x");
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("URL^REGION"), std::string_view::npos);
  p = map("KclStsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s|endpoint=nope^us-east-1");
  EXPECT_FALSE(p.ok());
  p = map("KclStsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s|durationSeconds=900");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("unsupported nested key 'durationSeconds'"), std::string::npos);
}

}  // namespace
}  // namespace shardline
