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

}  // namespace
}  // namespace shardline
