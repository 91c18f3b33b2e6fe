// `shardline put` end to end against kinesalite (SHARDLINE_KINESIS_ENDPOINT) and through the
// fault proxy (SHARDLINE_PROXY_ENDPOINT): the summary, the --results file (one line per input
// record, in input order, naming the shard that owns the record's hash key), the stream read
// back independently (GetRecords + Deaggregator), bad input lines, throttling, and SIGINT.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aws/http_client.h"
#include "core/digest.h"
#include "shardline/aggregation.h"
#include "shardline/kinesis.h"
#include "support/cli_process.h"
#include "support/local_aws.h"
#include "support/local_stream_test.h"
#include "support/scoped_env.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string env(const char* name) { return shardline::testing::env_or_empty(name); }
AwsClientConfig local_config(const std::string& endpoint) {
  return shardline::testing::local_aws_config(endpoint);
}

using shardline::testing::poll_until;

struct CliRun {
  int rc = -1;  // exit status; -1 killed by a signal, -2 did not exit in time (then killed)
  std::string out, err;
  json summary;  // the last stdout line, parsed (null if none)
};

// A started CLI process: stdin from `stdin_fd` (or /dev/null), stdout and stderr to files.
class Cli {
 public:
  Cli(const std::vector<std::string>& args, int stdin_fd, std::string out_path,
      std::string err_path)
      : p_(args, std::move(out_path), std::move(err_path), stdin_fd) {}
  pid_t pid() const { return p_.pid(); }
  CliRun wait(std::chrono::milliseconds timeout = 180s) {
    testing::CliResult res = p_.wait(timeout);
    CliRun r{res.rc, std::move(res.out), std::move(res.err), {}};
    r.summary = json::parse(testing::last_line(r.out), nullptr, /*allow_exceptions=*/false);
    return r;
  }

 private:
  testing::CliProcess p_;
};

// One user record read back from the stream.
struct Stored {
  std::string shard, pk, data;
};

class PutCliIntegration : public testing::LocalStreamTest {
 protected:
  PutCliIntegration() : LocalStreamTest("put-cli") {}
  void SetUp() override {
    LocalStreamTest::SetUp();
    proxy_ = env("SHARDLINE_PROXY_ENDPOINT");
  }

  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
  }

  // Runs the CLI to completion with the given endpoint.
  CliRun run(std::vector<std::string> args, const std::string& endpoint, int stdin_fd = -1) {
    args.insert(args.end(), {"--endpoint-url", endpoint, "--region", "us-east-1"});
    Cli cli(args, stdin_fd, path("out"), path("err"));
    return cli.wait();
  }

  static std::vector<json> read_json_lines(const std::string& file) {
    std::vector<json> out;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line));
    return out;
  }

  // Every user record in the stream: each shard from TRIM_HORIZON, deaggregated.
  std::vector<Stored> read_back(const std::string& stream) {
    std::string error;
    std::vector<Stored> got;
    for (auto& r : shardline::testing::read_stream(*k_, stream, &error)) {
      got.push_back({std::move(r.shard_id), std::move(r.partition_key), std::move(r.data)});
    }
    EXPECT_EQ(error, "");
    return got;
  }

  // The shard whose range holds `hash`.
  std::string owner(const std::vector<Shard>& shards, const HashKey& hash) {
    for (const Shard& s : shards)
      if (s.is_open() && s.hash_key_range.contains(hash)) return s.shard_id;
    return "";
  }

  // The proxy's control API.
  json proxy_call(const std::string& method, const std::string& what, const json& body = {}) {
    auto http = detail::HttpClient::create();
    EXPECT_TRUE(http.ok());
    if (!http.ok()) return {};
    detail::HttpRequest req;
    req.method = method;
    req.url = proxy_ + what;
    if (method == "POST") {
      req.headers = {{"Content-Type", "application/json"}};
      req.body = body.is_null() ? "{}" : body.dump();
    }
    auto r = (*http)->send(req);
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().to_string());
    if (!r.ok()) return {};
    return json::parse(r->body, nullptr, false);
  }

  // Sets proxy faults now and turns them all off again when the test ends.
  struct ProxyFaults {
    PutCliIntegration* t;
    ~ProxyFaults() {
      t->proxy_call("POST", "/__proxy/config",
                    {{"throttleProbability", 0},
                     {"latencyMs", 0},
                     {"error500Probability", 0},
                     {"recordFailureProbability", 0},
                     {"resetProbability", 0}});
    }
  };
  ProxyFaults set_proxy_faults(const json& faults) {
    proxy_call("POST", "/__proxy/config", faults);
    return ProxyFaults{this};
  }

  std::string proxy_;
};

// Checks the summary fields every run reports.
void expect_summary(const json& s, std::uint64_t records, std::uint64_t succeeded) {
  ASSERT_TRUE(s.is_object()) << s;
  EXPECT_EQ(s["userRecords"], records) << s;
  EXPECT_EQ(s["succeeded"], succeeded) << s;
  EXPECT_EQ(s["failed"], records - succeeded) << s;
  for (const char* k : {"kinesisRecords", "putRecordsRequests", "retries", "elapsedMs"}) {
    EXPECT_TRUE(s.contains(k) && s[k].is_number_unsigned()) << k << " in " << s;
  }
  if (succeeded > 0) {
    EXPECT_GE(s["kinesisRecords"].get<std::uint64_t>(), 1u);
    EXPECT_LE(s["kinesisRecords"].get<std::uint64_t>(), succeeded);
    EXPECT_GE(s["putRecordsRequests"].get<std::uint64_t>(), 1u);
  }
}

// One result line per record, in input order; successes name the owning shard.
void expect_results_in_order(const std::vector<json>& results, std::size_t n) {
  ASSERT_EQ(results.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const json& r = results[i];
    ASSERT_EQ(r["index"], i) << r;
    ASSERT_TRUE(r["attempts"].is_array() && !r["attempts"].empty()) << r;
    for (const json& a : r["attempts"]) {
      for (const char* k : {"errorCode", "errorMessage", "delayMs", "durationMs", "success"}) {
        EXPECT_TRUE(a.contains(k)) << k << " in " << r;
      }
    }
    EXPECT_EQ(r["attempts"].back()["success"], r["success"]) << r;
    if (r["success"].get<bool>()) {
      EXPECT_EQ(r["shardId"].get<std::string>().rfind("shardId-", 0), 0u) << r;
      EXPECT_FALSE(r["sequenceNumber"].get<std::string>().empty()) << r;
    }
  }
}

TEST_F(PutCliIntegration, PutsJsonlAndLinesAndReportsEveryRecordInInputOrder) {
  const std::string stream = make_stream(4);
  auto shards = k_->list_shards(stream);
  ASSERT_TRUE(shards.ok());

  // 2000 jsonl records, binary data, every fifth with an explicit hash key.
  std::mt19937_64 rng(42);
  std::string jsonl;
  std::multiset<std::string> want;
  std::vector<std::string> want_shard;
  for (int i = 0; i < 2000; ++i) {
    const std::string pk = "user-" + std::to_string(i % 173);
    std::string data(rng() % 200, '\0');
    for (char& c : data) c = static_cast<char>(rng() & 0xff);
    json line = {{"partitionKey", pk}, {"data", detail::base64_encode(data)}};
    HashKey hash = HashKey::from_partition_key(pk);
    if (i % 5 == 0) {
      hash = HashKey(rng(), rng());
      line["explicitHashKey"] = hash.to_decimal();
    }
    want_shard.push_back(owner(*shards, hash));
    want.insert(pk + "|" + data);
    jsonl += line.dump() + "\n";
  }
  write("records.jsonl", jsonl);
  CliRun r =
      run({"put", "--stream", stream, path("records.jsonl"), "--results", path("jsonl.results")},
          endpoint_);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "") << "quiet when stderr is not a terminal";
  expect_summary(r.summary, 2000, 2000);
  EXPECT_EQ(r.summary["interrupted"], false);
  const auto results = read_json_lines(path("jsonl.results"));
  expect_results_in_order(results, 2000);
  for (std::size_t i = 0; i < results.size() && i < want_shard.size(); ++i) {
    EXPECT_TRUE(results[i]["success"].get<bool>()) << results[i];
    EXPECT_EQ(results[i]["shardId"], want_shard[i]) << "record " << i;
  }

  // 500 text lines (random partition keys by default), then 20 from stdin with a fixed key.
  std::string text;
  for (int i = 0; i < 500; ++i) text += "line-" + std::to_string(i) + " caf\xc3\xa9 \"q\"\n";
  write("records.txt", text);
  r = run({"put", "--stream", stream, "--format", "lines", path("records.txt"), "--results",
           path("lines.results")},
          endpoint_);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  expect_summary(r.summary, 500, 500);
  expect_results_in_order(read_json_lines(path("lines.results")), 500);

  std::string fixed;
  for (int i = 0; i < 20; ++i) fixed += "fixed-" + std::to_string(i) + "\r\n";
  write("fixed.txt", fixed);
  const int in = ::open(path("fixed.txt").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(in, 0);
  r = run({"put", "--stream", stream, "--format", "lines", "--partition-key", "the-key", "-"},
          endpoint_, in);
  ::close(in);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  expect_summary(r.summary, 20, 20);

  // Read everything back, independently of the producer.
  std::multiset<std::string> got_jsonl;
  std::multiset<std::string> got_lines, fixed_keys;
  std::set<std::string> line_keys;
  for (const Stored& s : read_back(stream)) {
    if (s.data.rfind("line-", 0) == 0) {
      got_lines.insert(s.data);
      line_keys.insert(s.pk);
    } else if (s.data.rfind("fixed-", 0) == 0) {
      fixed_keys.insert(s.pk + "|" + s.data);
    } else {
      got_jsonl.insert(s.pk + "|" + s.data);
    }
  }
  EXPECT_TRUE(got_jsonl == want) << got_jsonl.size() << " jsonl records read back, want 2000";
  std::multiset<std::string> want_lines;
  for (int i = 0; i < 500; ++i)
    want_lines.insert("line-" + std::to_string(i) + " caf\xc3\xa9 \"q\"");
  EXPECT_TRUE(got_lines == want_lines) << got_lines.size() << " lines read back, want 500";
  EXPECT_GE(line_keys.size(), 490u) << "a fresh random partition key per record";
  std::multiset<std::string> want_fixed;
  for (int i = 0; i < 20; ++i) want_fixed.insert("the-key|fixed-" + std::to_string(i));
  EXPECT_TRUE(fixed_keys == want_fixed);
}

TEST_F(PutCliIntegration, BadLinesAreReportedByLineNumberAndFailTheRun) {
  const std::string stream = make_stream(1);
  const std::string big = detail::base64_encode(std::string(2000, 'b'));
  const std::vector<std::string> lines_in = {
      R"({"partitionKey":"good","data":"Z29vZC0x"})",                  // 1 ok
      R"({broken)",                                                    // 2 bad JSON
      "",                                                              // 3 blank: not a record
      R"({"partitionKey":"k","data":"%%%"})",                          // 4 bad base64
      R"({"data":"eA=="})",                                            // 5 no partition key
      R"({"partitionKey":"good","data":"Z29vZC0y"})",                  // 6 ok
      R"({"partitionKey":"k","explicitHashKey":"-1","data":"eA=="})",  // 7 bad hash key
      R"({"partitionKey":")" + std::string(257, 'p') + R"(","data":"eA=="})",  // 8 long key
      R"({"partitionKey":"k","data":")" + big + R"("})",  // 9 over MaxUserRecordSize
      R"({"partitionKey":"good","data":"Z29vZC0z"})",     // 10 ok
  };
  std::string text;
  for (const auto& l : lines_in) text += l + "\n";
  write("mixed.jsonl", text);
  CliRun r = run({"put", "--stream", stream, path("mixed.jsonl"), "-X", "MaxUserRecordSize=1024",
                  "--results", path("mixed.results")},
                 endpoint_);
  ASSERT_EQ(r.rc, 1) << r.out << r.err;
  expect_summary(r.summary, 9, 3);
  EXPECT_EQ(r.summary["invalidInput"], 6);
  for (int line : {2, 4, 5, 7, 8, 9}) {
    EXPECT_NE(r.err.find("line " + std::to_string(line) + ":"), std::string::npos)
        << "line " << line << " named in: " << r.err;
  }
  for (int line : {1, 3, 6, 10}) {
    EXPECT_EQ(r.err.find("line " + std::to_string(line) + ":"), std::string::npos) << r.err;
  }
  const auto results = read_json_lines(path("mixed.results"));
  expect_results_in_order(results, 9);
  const std::vector<int> lines{1, 2, 4, 5, 6, 7, 8, 9, 10};
  const std::set<int> good{1, 6, 10};
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i]["line"], lines[i]) << results[i];
    EXPECT_EQ(results[i]["success"], good.count(lines[i]) == 1) << results[i];
    if (!good.count(lines[i])) {
      EXPECT_EQ(results[i]["attempts"][0]["errorCode"], "InvalidInput") << results[i];
    }
  }
  std::multiset<std::string> got;
  for (const Stored& s : read_back(stream)) got.insert(s.pk + "|" + s.data);
  EXPECT_EQ(got, (std::multiset<std::string>{"good|good-1", "good|good-2", "good|good-3"}));
}

TEST_F(PutCliIntegration, ThrottledRunRetriesUntilEveryRecordSucceeds) {
  if (env("SHARDLINE_PROXY_ENDPOINT").empty()) GTEST_SKIP() << "SHARDLINE_PROXY_ENDPOINT unset";
  const std::string stream = make_stream(2);
  std::string jsonl;
  std::multiset<std::string> want;
  for (int i = 0; i < 1000; ++i) {
    const std::string pk = "t-" + std::to_string(i % 61), data = "throttled-" + std::to_string(i);
    want.insert(pk + "|" + data);
    jsonl += json({{"partitionKey", pk}, {"data", detail::base64_encode(data)}}).dump() + "\n";
  }
  write("t.jsonl", jsonl);
  CliRun r;
  {
    const ProxyFaults faults = set_proxy_faults({{"throttleProbability", 0.3}, {"seed", 17}});
    // Small aggregates and batches: many PutRecords calls for the throttling to hit.
    r = run({"put", "--stream", stream, path("t.jsonl"), "-X", "AggregationMaxCount=4", "-X",
             "CollectionMaxCount=5", "-X", "RecordTtl=120000", "--results", path("t.results")},
            proxy_);
  }
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  expect_summary(r.summary, 1000, 1000);
  EXPECT_GT(r.summary["retries"].get<std::uint64_t>(), 0u) << r.summary;
  EXPECT_GT(r.summary["errorsByCode"].value("ProvisionedThroughputExceededException", 0), 0)
      << r.summary;
  const auto results = read_json_lines(path("t.results"));
  expect_results_in_order(results, 1000);
  std::size_t throttled = 0;
  for (const json& x : results) {
    EXPECT_TRUE(x["success"].get<bool>()) << x;
    for (const json& a : x["attempts"])
      if (a["errorCode"] == "ProvisionedThroughputExceededException") ++throttled;
  }
  EXPECT_GT(throttled, 0u) << "the attempts show the throttling";
  std::multiset<std::string> got;
  for (const Stored& s : read_back(stream)) got.insert(s.pk + "|" + s.data);
  for (const auto& w : want) EXPECT_GE(got.count(w), 1u) << w;
}

TEST_F(PutCliIntegration, SigintStopsReadingResolvesEverythingAcceptedAndReports) {
  if (env("SHARDLINE_PROXY_ENDPOINT").empty()) GTEST_SKIP() << "SHARDLINE_PROXY_ENDPOINT unset";
  const std::string stream = make_stream(1);
  // Slow responses, so requests are in flight when the signal comes.
  const ProxyFaults faults = set_proxy_faults({{"latencyMs", 500}});
  proxy_call("POST", "/__proxy/stats/reset");
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  Cli cli({"put", "--stream", stream, "--format", "lines", "--results", path("sig.results"),
           "--endpoint-url", proxy_, "--region", "us-east-1"},
          fds[0], path("out"), path("err"));
  ::close(fds[0]);
  ASSERT_GT(cli.pid(), 0);
  // 200 lines (well under the pipe's buffer); the write end stays open: no end of input.
  std::string text;
  for (int i = 0; i < 200; ++i) text += "sig-" + std::to_string(i) + "\n";
  ASSERT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  const bool sending = poll_until(
      [&] {
        const json stats = proxy_call("GET", "/__proxy/stats");
        return stats.is_object() && stats.contains("byOperation") &&
               stats["byOperation"].contains("PutRecords") &&
               stats["byOperation"]["PutRecords"].value("requests", 0) > 0;
      },
      60s);
  ASSERT_TRUE(sending) << "the CLI never sent PutRecords";
  ASSERT_EQ(::kill(cli.pid(), SIGINT), 0);
  CliRun r = cli.wait(60s);
  ::close(fds[1]);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  ASSERT_TRUE(r.summary.is_object()) << r.out;
  EXPECT_EQ(r.summary["interrupted"], true);
  const std::uint64_t n = r.summary["userRecords"].get<std::uint64_t>();
  EXPECT_GT(n, 0u);
  EXPECT_LE(n, 200u);
  expect_summary(r.summary, n, n);
  const auto results = read_json_lines(path("sig.results"));
  expect_results_in_order(results, n);
  for (const json& x : results) EXPECT_TRUE(x["success"].get<bool>()) << x;
  // The records accepted are the first n lines, and each is in the stream.
  std::multiset<std::string> got;
  for (const Stored& s : read_back(stream)) got.insert(s.data);
  for (std::uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(got.count("sig-" + std::to_string(i)), 1u) << i;
  }
}

}  // namespace
}  // namespace shardline
