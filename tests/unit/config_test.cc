// The settings table, the .properties parser and validation messages.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shardline/config.h"
#include "support/test_util.h"

namespace shardline {
namespace {

TEST(Config, DefaultsAreTheKpls) {
  ProducerConfig c;
  EXPECT_TRUE(c.aggregation_enabled);
  EXPECT_EQ(c.aggregation_max_count, 4294967295LL);
  EXPECT_EQ(c.aggregation_max_size, 51200);
  EXPECT_EQ(c.collection_max_count, 500);
  EXPECT_EQ(c.collection_max_size, 5242880);
  EXPECT_EQ(c.record_max_buffered_time, 100);
  EXPECT_EQ(c.record_ttl, 30000);
  EXPECT_EQ(c.rate_limit, 150);
  EXPECT_EQ(c.max_connections, 24);
  EXPECT_EQ(c.request_timeout, 6000);
  EXPECT_TRUE(c.verify_certificate);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.metrics_level, "detailed");
}

TEST(Config, EveryKeyInTheTableIsSettableToItsDefault) {
  ProducerConfig c;
  for (const auto& s : producer_settings()) {
    if (s.kind == SettingKind::kUnused) continue;
    std::string def(s.default_text);
    while (!def.empty() && (def.back() == 'L' || def.back() == 'U')) def.pop_back();
    EXPECT_TRUE(set_setting(c, s.key, def).ok()) << s.key << "=" << def;
  }
}

TEST(Config, OutOfRangeNamesKeyRangeAndValue) {
  ProducerConfig c;
  const Status s = set_setting(c, "AggregationMaxSize", "20000000");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "AggregationMaxSize must be in [64, 10485760] bytes, got '20000000'");
  EXPECT_EQ(c.aggregation_max_size, 51200) << "a rejected value leaves the setting alone";
  EXPECT_FALSE(set_setting(c, "CollectionMaxCount", "501").ok());
  EXPECT_FALSE(set_setting(c, "RecordTtl", "99").ok());
  EXPECT_FALSE(set_setting(c, "RecordTtl", "99999999999999999999999").ok());
}

TEST(Config, RejectsBadNumbersIncludingTrailingJunk) {
  ProducerConfig c;
  for (const char* bad : {"1048576;", "1e6", "0x10", "", "12 ms", "1_000", "--5", "5.0"}) {
    const Status s = set_setting(c, "MaxUserRecordSize", bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("MaxUserRecordSize must be an integer in [64, 10485760] bytes"),
              std::string::npos)
        << s.message();
  }
  EXPECT_TRUE(set_setting(c, "MaxUserRecordSize", " 2048 ").ok())
      << "surrounding blanks are trimmed";
  EXPECT_EQ(c.max_user_record_size, 2048);
}

TEST(Config, BooleansAreStrict) {
  ProducerConfig c;
  EXPECT_TRUE(set_setting(c, "AggregationEnabled", "FALSE").ok());
  EXPECT_FALSE(c.aggregation_enabled);
  EXPECT_TRUE(set_setting(c, "AggregationEnabled", "True").ok());
  EXPECT_TRUE(c.aggregation_enabled);
  const Status s = set_setting(c, "AggregationEnabled", "yes");
  EXPECT_EQ(s.message(), "AggregationEnabled must be true or false, got 'yes'");
}

TEST(Config, EnumsListTheirChoices) {
  ProducerConfig c;
  EXPECT_TRUE(set_setting(c, "LogLevel", "WARNING").ok());
  EXPECT_EQ(c.log_level, "warning");
  EXPECT_EQ(set_setting(c, "MetricsGranularity", "cluster").message(),
            "MetricsGranularity must be one of global|stream|shard, got 'cluster'");
}

TEST(Config, UnknownKeysWarnWithASuggestion) {
  ProducerConfig c;
  std::vector<std::string> w;
  EXPECT_TRUE(set_setting(c, "AgregationMaxSize", "100", &w).ok());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "unknown key 'AgregationMaxSize' ignored; did you mean 'AggregationMaxSize'?");
  w.clear();
  EXPECT_TRUE(set_setting(c, "recordttl", "100", &w).ok());
  EXPECT_NE(w[0].find("did you mean 'RecordTtl'"), std::string::npos) << "keys are case-sensitive";
  w.clear();
  EXPECT_TRUE(set_setting(c, "CompletelyDifferent", "1", &w).ok());
  EXPECT_EQ(w[0], "unknown key 'CompletelyDifferent' ignored");
}

TEST(Config, UnusedKplKeysAreAcceptedWithAReason) {
  ProducerConfig c;
  std::vector<std::string> w;
  EXPECT_TRUE(set_setting(c, "ThreadingModel", "POOLED", &w).ok());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("ThreadingModel accepted, not used"), std::string::npos);
}

TEST(Properties, ParsesJavaPropertiesSyntax) {
  const std::string text =
      "# comment\n"
      "! another comment\n"
      "\n"
      "a = 1\n"
      "b:2\n"
      "c 3\n"
      "   d\t=\t  spaced value  \n"
      "e = first \\\n"
      "    second\n"
      "f = tab\\tnew\\nline \\u00e9\\\\\n"
      "g\\ key = v\n"
      "h=\n"
      "i=a=b:c\r\n"
      "j = last";
  std::vector<Property> p;
  ASSERT_TRUE(parse_properties(text, p).ok());
  ASSERT_EQ(p.size(), 10u);
  EXPECT_EQ(p[0].key, "a");
  EXPECT_EQ(p[0].value, "1");
  EXPECT_EQ(p[0].line, 4);
  EXPECT_EQ(p[1].value, "2");
  EXPECT_EQ(p[2].value, "3");
  EXPECT_EQ(p[3].key, "d");
  EXPECT_EQ(p[3].value, "spaced value  ");
  EXPECT_EQ(p[4].value, "first second");
  EXPECT_EQ(p[4].line, 8);
  EXPECT_EQ(p[5].value, "tab\tnew\nline \xC3\xA9\\");
  EXPECT_EQ(p[6].key, "g key");
  EXPECT_EQ(p[7].key, "h");
  EXPECT_EQ(p[7].value, "");
  EXPECT_EQ(p[8].value, "a=b:c");
  EXPECT_EQ(p[9].value, "last");
}

TEST(Properties, MalformedUnicodeEscapeIsAnError) {
  std::vector<Property> p;
  const Status s = parse_properties("a = x\nb = \\u12G4\n", p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("line 2"), std::string::npos);
  EXPECT_FALSE(parse_properties("b = \\u12", p).ok());
}

TEST(Properties, ApplyNamesFileAndLine) {
  ProducerConfig c;
  std::vector<std::string> w;
  const Status s = apply_properties(c, "RecordTtl = 60000\nMaxUserRecordSize = 1048576;\n",
                                    "kpl.properties", &w);
  EXPECT_EQ(s.message(),
            "kpl.properties:2: MaxUserRecordSize must be an integer in [64, 10485760] bytes, got "
            "'1048576;'");
  EXPECT_EQ(c.record_ttl, 60000);
  ASSERT_TRUE(apply_properties(c, "Bogus=1\nRegion = us-west-2\n", "x.properties", &w).ok());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "x.properties:1: unknown key 'Bogus' ignored");
  EXPECT_EQ(c.region, "us-west-2");
}

TEST(Properties, MissingFileIsNotFound) {
  ProducerConfig c;
  EXPECT_EQ(load_properties_file("/nonexistent/kpl.properties", c).code(), StatusCode::kNotFound);
}

TEST(Properties, LoadsTheKplSampleConfigurationKeys) {
  // The KPL's sample default_config.properties sets these keys (values as shipped, but
  // without the sample's trailing ';' typo on MaxUserRecordSize).
  const std::string sample =
      "AggregationEnabled = true\nAggregationMaxCount = 4294967295\nAggregationMaxSize = 51200\n"
      "CloudwatchEndpoint =\nCloudwatchPort = 443\nCollectionMaxCount = 500\n"
      "CollectionMaxSize = 5242880\nConnectTimeout = 6000\nEnableCoreDumps = false\n"
      "FailIfThrottled = false\nKinesisEndpoint =\nKinesisPort = 443\nLogLevel = info\n"
      "MaxConnections = 24\nMetricsGranularity = shard\nMetricsLevel = detailed\n"
      "MetricsNamespace = KinesisProducerLibrary\nMetricsUploadDelay = 60000\n"
      "MinConnections = 1\nRateLimit = 150\nRecordMaxBufferedTime = 100\nRecordTtl = 30000\n"
      "Region = us-west-1\nRequestTimeout = 6000\nVerifyCertificate = true\n"
      "ThreadingModel = PER_REQUEST\nThreadPoolSize = 0\nMaxUserRecordSize = 1048576\n";
  ProducerConfig c;
  std::vector<std::string> w;
  ASSERT_TRUE(apply_properties(c, sample, "default_config.properties", &w).ok());
  for (const auto& x : w) EXPECT_NE(x.find("accepted, not used"), std::string::npos) << x;
  EXPECT_EQ(c.region, "us-west-1");
}

TEST(Config, NearestKey) {
  const std::string_view keys[] = {"RecordTtl", "RateLimit", "Region"};
  EXPECT_EQ(nearest_key("RecordTTL", keys), "RecordTtl");
  EXPECT_EQ(nearest_key("Regoin", keys), "Region");
  EXPECT_EQ(nearest_key("zzzzzzzzzz", keys), "");
}

TEST(Config, MarkdownListsEveryKey) {
  const std::string md = configuration_markdown();
  for (const auto& s : producer_settings()) {
    EXPECT_NE(md.find("`" + std::string(s.key) + "`"), std::string::npos) << s.key;
  }
}

// --- the consumer (KCL) table -----------------------------------------------------------------

TEST(ConfigConsumer, DefaultsAreTheTablesForEveryRow) {
  const ConsumerConfig c;
  ASSERT_FALSE(consumer_settings().empty());
  for (const auto& s : consumer_settings()) {
    std::string def(s.default_text);
    switch (s.kind) {
      case SettingKind::kUnused:
        EXPECT_EQ(s.bool_member, nullptr) << s.key;
        EXPECT_EQ(s.int_member, nullptr) << s.key;
        EXPECT_EQ(s.string_member, nullptr) << s.key;
        break;
      case SettingKind::kBool:
        ASSERT_NE(s.bool_member, nullptr) << s.key;
        ASSERT_TRUE(def == "true" || def == "false") << s.key << "=" << def;
        EXPECT_EQ(c.*(s.bool_member), def == "true") << s.key;
        break;
      case SettingKind::kInt: {
        ASSERT_NE(s.int_member, nullptr) << s.key;
        while (!def.empty() && (def.back() == 'L' || def.back() == 'U')) def.pop_back();
        EXPECT_EQ(std::to_string(c.*(s.int_member)), def) << s.key;
        EXPECT_LE(s.min, c.*(s.int_member)) << s.key << ": default below the minimum";
        EXPECT_GE(s.max, c.*(s.int_member)) << s.key << ": default above the maximum";
        break;
      }
      case SettingKind::kEnum:
      case SettingKind::kString:
        ASSERT_NE(s.string_member, nullptr) << s.key;
        EXPECT_EQ(c.*(s.string_member), def) << s.key;
        break;
    }
    if (s.kind == SettingKind::kUnused) continue;
    // Setting each key to its default is accepted and changes nothing (an enum default is
    // spelled exactly as one of its choices).
    ConsumerConfig d;
    std::vector<std::string> w;
    EXPECT_TRUE(set_setting(d, s.key, def, &w).ok()) << s.key << "=" << def;
    EXPECT_TRUE(w.empty()) << s.key;
    if (s.string_member) EXPECT_EQ(d.*(s.string_member), c.*(s.string_member)) << s.key;
  }
  EXPECT_EQ(c.initial_position_in_stream, "LATEST");
  EXPECT_EQ(c.failover_time_millis, 10000);
  EXPECT_EQ(c.max_records, 10000);
  EXPECT_TRUE(c.cleanup_leases_upon_shard_completion);
}

TEST(ConfigConsumer, KeysAreUniqueAndDistinctFromTheProducers) {
  const auto table = consumer_settings();
  for (std::size_t i = 0; i < table.size(); ++i)
    for (std::size_t j = i + 1; j < table.size(); ++j)
      EXPECT_NE(table[i].key, table[j].key) << "duplicate key " << table[i].key;
  ConsumerConfig c;
  std::vector<std::string> w;
  EXPECT_TRUE(set_setting(c, "RecordTtl", "60000", &w).ok());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind("unknown key 'RecordTtl' ignored", 0), 0u)
      << "a producer key is unknown to the consumer: " << w[0];
}

TEST(ConfigConsumer, EnumsAreValidatedAgainstTheirChoices) {
  ConsumerConfig c;
  const Status s = set_setting(c, "initialPositionInStream", "FOO");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "initialPositionInStream must be one of TRIM_HORIZON|LATEST|AT_TIMESTAMP, got 'FOO'");
  EXPECT_EQ(c.initial_position_in_stream, "LATEST") << "a rejected value leaves the setting alone";
  EXPECT_TRUE(set_setting(c, "initialPositionInStream", "trim_horizon").ok());
  EXPECT_EQ(c.initial_position_in_stream, "TRIM_HORIZON") << "stored as the table spells it";
  EXPECT_EQ(set_setting(c, "processRecordsErrorPolicy", "IGNORE").message(),
            "processRecordsErrorPolicy must be one of RETRY|SKIP|STOP, got 'IGNORE'");
}

TEST(ConfigConsumer, OutOfRangeNamesKeyRangeAndValue) {
  ConsumerConfig c;
  EXPECT_EQ(set_setting(c, "failoverTimeMillis", "5").message(),
            "failoverTimeMillis must be in [300, 9223372036854775807] ms, got '5'");
  EXPECT_EQ(set_setting(c, "maxRecords", "10001").message(),
            "maxRecords must be in [1, 10000] records, got '10001'");
  EXPECT_EQ(set_setting(c, "cleanupLeasesUponShardCompletion", "1").message(),
            "cleanupLeasesUponShardCompletion must be true or false, got '1'");
  EXPECT_EQ(c.failover_time_millis, 10000);
  EXPECT_EQ(c.max_records, 10000);
}

TEST(ConfigConsumer, AppliesAKclPropertiesFile) {
  // The shape of a KCL MultiLangDaemon properties file (minus executableName, which belongs to
  // the multilang table).
  const std::string text =
      "# The KCL sample, trimmed\n"
      "applicationName = orders-app\n"
      "streamName = orders\n"
      "regionName = us-west-2\n"
      "initialPositionInStream = TRIM_HORIZON\n"
      "failoverTimeMillis = 20000\n"
      "maxRecords = 500\n"
      "idleTimeBetweenReadsInMillis = 250\n"
      "cleanupLeasesUponShardCompletion = false\n"
      "callProcessRecordsEvenForEmptyRecordList: true\n"
      "metricsLevel = summary\n"
      "kinesisEndpoint = http://127.0.0.1:4567\n"
      "dynamoDBEndpoint = http://127.0.0.1:8000\n"
      "leaseStore = sqlite:/var/lib/orders\\\n"
      "              .leases.db\n"
      "AwsCredentialsProvider = DefaultCredentialsProvider\n";
  ConsumerConfig c;
  std::vector<std::string> w;
  ASSERT_TRUE(apply_properties(c, text, "kcl.properties", &w).ok());
  EXPECT_EQ(c.application_name, "orders-app");
  EXPECT_EQ(c.stream_name, "orders");
  EXPECT_EQ(c.region_name, "us-west-2");
  EXPECT_EQ(c.initial_position_in_stream, "TRIM_HORIZON");
  EXPECT_EQ(c.failover_time_millis, 20000);
  EXPECT_EQ(c.max_records, 500);
  EXPECT_EQ(c.idle_time_between_reads_in_millis, 250);
  EXPECT_FALSE(c.cleanup_leases_upon_shard_completion);
  EXPECT_TRUE(c.call_process_records_even_for_empty_record_list);
  EXPECT_EQ(c.metrics_level, "SUMMARY");
  EXPECT_EQ(c.kinesis_endpoint, "http://127.0.0.1:4567");
  EXPECT_EQ(c.dynamodb_endpoint, "http://127.0.0.1:8000");
  EXPECT_EQ(c.lease_store, "sqlite:/var/lib/orders.leases.db");
  EXPECT_EQ(c.epsilon_millis, 25) << "keys not in the file keep their defaults";
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind("kcl.properties:16: AwsCredentialsProvider accepted, not used: ", 0), 0u)
      << w[0];

  const Status bad =
      apply_properties(c, "streamName = s\nfailoverTimeMillis = 5\n", "kcl.properties", &w);
  EXPECT_EQ(bad.message(),
            "kcl.properties:2: failoverTimeMillis must be in [300, 9223372036854775807] ms, got "
            "'5'");
}

TEST(ConfigConsumer, UnusedKclKeysAreAcceptedWithAReason) {
  ConsumerConfig c;
  std::vector<std::string> w;
  EXPECT_TRUE(set_setting(c, "maxLeaseRenewalThreads", "20", &w).ok());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "maxLeaseRenewalThreads accepted, not used: renewals run on the scheduler's own pool");
}

TEST(ConfigConsumer, UnknownKeysWarnWithTheNearestConsumerKey) {
  ConsumerConfig c;
  std::vector<std::string> w;
  EXPECT_TRUE(set_setting(c, "failoverTimeMilis", "20000", &w).ok());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "unknown key 'failoverTimeMilis' ignored; did you mean 'failoverTimeMillis'?");
  EXPECT_EQ(c.failover_time_millis, 10000);
  w.clear();
  EXPECT_TRUE(set_setting(c, "InitialPositionInStream", "LATEST", &w).ok());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("did you mean 'initialPositionInStream'"), std::string::npos)
      << "keys are case-sensitive: " << w[0];
  w.clear();
  EXPECT_TRUE(set_setting(c, "CompletelyDifferent", "1", &w).ok());
  EXPECT_EQ(w[0], "unknown key 'CompletelyDifferent' ignored");
}

TEST(ConfigConsumer, MissingFileIsNotFound) {
  ConsumerConfig c;
  EXPECT_EQ(load_properties_file("/nonexistent/kcl.properties", c).code(), StatusCode::kNotFound);
}

TEST(ConfigConsumer, MarkdownHasAConsumerSectionListingEveryKey) {
  const std::string md = configuration_markdown();
  const auto consumer =
      md.find("## Consumer (`shardline consume --config FILE`, `ConsumerConfig`)");
  ASSERT_NE(consumer, std::string::npos);
  EXPECT_LT(md.find("## Producer"), consumer);
  for (const auto& s : consumer_settings()) {
    EXPECT_NE(md.find("`" + std::string(s.key) + "`", consumer), std::string::npos) << s.key;
  }
}

}  // namespace
}  // namespace shardline

namespace shardline {
namespace {

TEST(ConfigValidate, CodeBuiltConfigsAreCheckedAgainstTheTable) {
  ConsumerConfig c;
  EXPECT_TRUE(validate_config(c).ok());
  c.failover_time_millis = 5;
  Status s = validate_config(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("failoverTimeMillis must be in [300, "), std::string_view::npos)
      << s.message();
  c = {};
  c.initial_position_in_stream = "YESTERDAY";
  s = validate_config(c);
  EXPECT_NE(s.message().find("initialPositionInStream must be one of"), std::string_view::npos)
      << s.message();
  ProducerConfig p;
  EXPECT_TRUE(validate_config(p).ok());
  p.collection_max_count = 501;
  EXPECT_NE(validate_config(p).message().find("CollectionMaxCount"), std::string_view::npos);
}

}  // namespace
}  // namespace shardline
