// `shardline consume` end to end against kinesalite (SHARDLINE_KINESIS_ENDPOINT) with a SQLite
// lease table in a temporary directory: every record printed exactly once as the lines of
// `shardline tail`, checkpoints in the lease table at the last record printed of each shard, a
// second run resuming from them, two processes sharing one lease file, SIGTERM (graceful:
// leases released, exit 0), and a closed stdout (exit 1, nothing unprinted checkpointed).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "core/digest.h"
#include "shardline/aggregation.h"
#include "shardline/consumer.h"
#include "shardline/dynamodb.h"
#include "shardline/hash_key.h"
#include "shardline/kinesis.h"
#include "shardline/lease_store.h"
#include "support/cli_process.h"
#include "support/local_aws.h"
#include "support/local_stream_test.h"
#include "support/scoped_env.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using nlohmann::ordered_json;
using shardline::testing::poll_until;

// The fields of a `tail` line, in order.
const std::vector<std::string> kLineKeys = {
    "partitionKey", "explicitHashKey", "data",    "subSequenceNumber",
    "aggregated",   "sequenceNumber",  "shardId", "approximateArrivalTimestamp"};

struct CliRun {
  int rc = -1;  // exit status; -1 killed by a signal, -2 did not exit in time (then killed)
  std::string out, err;
  json summary;  // the last stderr line, parsed (null if it is not JSON)
};

// A started CLI process: stdin /dev/null, stdout to `out_path` (or to `stdout_fd`), stderr to
// `err_path`. Killed in the destructor if still running.
class Cli {
 public:
  Cli(const std::vector<std::string>& args, std::string out_path, std::string err_path,
      int stdout_fd = -1)
      : p_(args, std::move(out_path), std::move(err_path), -1, stdout_fd) {}
  pid_t pid() const { return p_.pid(); }
  CliRun wait(std::chrono::milliseconds timeout = 180s) {
    testing::CliResult res = p_.wait(timeout);
    CliRun r{res.rc, std::move(res.out), std::move(res.err), {}};
    r.summary = json::parse(testing::last_line(r.err), nullptr, /*allow_exceptions=*/false);
    return r;
  }

 private:
  testing::CliProcess p_;
};

// One printed line, parsed.
struct Line {
  std::string raw;
  std::string shard, pk, data, seq;
  std::int64_t sub = 0;
  bool aggregated = false;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// What a running process has written so far, up to its last complete line: its stdout is
// block-buffered into the file, so the file may end inside a line at any moment.
std::string complete_lines(std::string text) {
  const std::size_t nl = text.rfind('\n');
  text.resize(nl == std::string::npos ? 0 : nl + 1);
  return text;
}

// Parses stdout; every line must be a complete record line with tail's fields in tail's order.
std::vector<Line> parse_output(const std::string& out) {
  std::vector<Line> lines;
  EXPECT_TRUE(out.empty() || out.back() == '\n') << "output ends with a partial line";
  for (const std::string& raw : split_lines(out)) {
    const ordered_json j = ordered_json::parse(raw, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << raw;
    if (!j.is_object()) continue;
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    EXPECT_EQ(keys, kLineKeys) << raw;
    Line l;
    l.raw = raw;
    l.shard = j.value("shardId", "");
    l.pk = j.value("partitionKey", "");
    l.seq = j.value("sequenceNumber", "");
    l.sub = j.value("subSequenceNumber", std::int64_t{-1});
    l.aggregated = j.value("aggregated", false);
    const auto data = detail::base64_decode(j.value("data", ""));
    EXPECT_TRUE(data.has_value()) << raw;
    if (data) l.data = *data;
    EXPECT_TRUE(j["approximateArrivalTimestamp"].is_number_integer()) << raw;
    lines.push_back(std::move(l));
  }
  return lines;
}

class ConsumeCliIntegration : public testing::LocalStreamTest {
 protected:
  ConsumeCliIntegration() : LocalStreamTest("consume-cli") {}

  // A new stream; its shards are remembered for owner().
  std::string make_stream(int shards) {
    const std::string name = LocalStreamTest::make_stream(shards);
    auto s = k_->list_shards(name);
    EXPECT_TRUE(s.ok());
    if (s.ok()) shards_[name] = *s;
    return name;
  }

  std::vector<std::string> with_endpoint(std::vector<std::string> args) const {
    args.insert(args.end(), {"--endpoint-url", endpoint_, "--region", "us-east-1"});
    return args;
  }

  // Puts `plain` records, then `aggregated` more in KPL aggregates of up to 10 user records
  // (built per shard, as the KPL does). Returns data -> partition key; every data is unique.
  std::map<std::string, std::string> put(const std::string& stream, const std::string& tag,
                                         int plain, int aggregated) {
    std::map<std::string, std::string> want;
    std::vector<std::string> pks, datas;
    for (int i = 0; i < plain; ++i) {
      pks.push_back("pk-" + tag + "-" + std::to_string(i));
      datas.push_back("plain " + tag + " #" + std::to_string(i) + " \xc3\xa9\n\"q\"");
      want[datas.back()] = pks.back();
    }
    std::vector<KinesisRecord> aggregates;
    {
      std::map<std::string, std::vector<int>> by_shard;
      for (int i = 0; i < aggregated; ++i) {
        by_shard[owner(stream, "agg-" + tag + "-" + std::to_string(i))].push_back(i);
      }
      std::vector<std::string> user_pks(static_cast<std::size_t>(aggregated));
      std::vector<std::string> user_data(user_pks.size());
      for (int i = 0; i < aggregated; ++i) {
        user_pks[static_cast<std::size_t>(i)] = "agg-" + tag + "-" + std::to_string(i);
        user_data[static_cast<std::size_t>(i)] = "aggregated " + tag + " #" + std::to_string(i);
        want[user_data[static_cast<std::size_t>(i)]] = user_pks[static_cast<std::size_t>(i)];
      }
      for (const auto& [shard, indexes] : by_shard) {
        AggregateBuilder b;
        for (int i : indexes) {
          const auto u = static_cast<std::size_t>(i);
          b.add(user_pks[u], std::nullopt, user_data[u]);
          if (b.count() == 10) {
            aggregates.push_back(b.build());
            b.clear();
          }
        }
        if (!b.empty()) aggregates.push_back(b.build());
      }
    }
    std::vector<PutRecordsEntry> entries;
    for (std::size_t i = 0; i < pks.size(); ++i) entries.push_back({pks[i], datas[i], ""});
    for (const KinesisRecord& r : aggregates)
      entries.push_back({r.partition_key, r.data, r.explicit_hash_key});
    for (std::size_t from = 0; from < entries.size(); from += 500) {
      const std::size_t n = std::min<std::size_t>(500, entries.size() - from);
      auto r = k_->put_records(stream, std::span<const PutRecordsEntry>(entries).subspan(from, n));
      EXPECT_TRUE(r.ok() && r->failed_record_count == 0)
          << (r.ok() ? std::to_string(r->failed_record_count) : r.status().to_string());
    }
    return want;
  }

  // Starts `shardline consume` on `stream` with lease table sqlite:<dir>/<db>.
  std::unique_ptr<Cli> start_consume(const std::string& stream, const std::string& app,
                                     const std::string& db, const std::string& name,
                                     std::vector<std::string> extra, int stdout_fd = -1) {
    std::vector<std::string> args = {
        "consume", "--stream", stream, "--application", app, "--lease-table", "sqlite:" + path(db)};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Cli>(with_endpoint(args), path(name + ".out"), path(name + ".err"),
                                 stdout_fd);
  }

  CliRun consume(const std::string& stream, const std::string& app, const std::string& db,
                 const std::string& name, std::vector<std::string> extra = {}) {
    if (extra.empty()) extra = {"--until-idle", "2", "--initial-position", "TRIM_HORIZON"};
    return start_consume(stream, app, db, name, extra)->wait();
  }

  // The shard whose hash key range holds the partition key's hash.
  std::string owner(const std::string& stream, const std::string& pk) {
    const HashKey h = HashKey::from_partition_key(pk);
    for (const Shard& s : shards_[stream])
      if (s.is_open() && s.hash_key_range.contains(h)) return s.shard_id;
    return "";
  }

  // Each wanted record exactly `times` (or at least once when times == 0), nothing else, each
  // line in the shard that owns its partition key.
  void expect_records(const std::string& stream, const std::vector<Line>& lines,
                      const std::map<std::string, std::string>& want, int times) {
    std::map<std::string, int> seen;
    for (const Line& l : lines) {
      ++seen[l.data];
      auto it = want.find(l.data);
      if (it == want.end()) {
        ADD_FAILURE() << "unexpected record: " << l.raw;
        continue;
      }
      EXPECT_EQ(l.pk, it->second) << l.raw;
      EXPECT_EQ(l.shard, owner(stream, l.pk)) << l.raw;
      EXPECT_FALSE(l.seq.empty()) << l.raw;
    }
    int missing = 0, wrong = 0;
    for (const auto& [data, pk] : want) {
      const int n = seen.count(data) ? seen[data] : 0;
      if (n == 0) ++missing;
      if (times > 0 && n != times) ++wrong;
    }
    EXPECT_EQ(missing, 0) << "of " << want.size() << " records";
    EXPECT_EQ(wrong, 0) << "records not printed exactly " << times << " time(s)";
  }

  // The lease table's leases, by shard.
  std::map<std::string, Lease> leases(const std::string& db, const std::string& app) {
    std::map<std::string, Lease> out;
    auto store = make_sqlite_lease_store(path(db), app);
    EXPECT_TRUE(store.ok()) << store.status().to_string();
    if (!store.ok()) return out;
    auto l = (*store)->list_leases();
    EXPECT_TRUE(l.ok()) << l.status().to_string();
    if (!l.ok()) return out;
    for (Lease& x : *l) out[x.lease_key] = std::move(x);
    return out;
  }

  // Every shard's lease: released, checkpointed at the last record printed in that shard.
  void expect_checkpoints_at_last_printed(const std::string& stream, const std::string& db,
                                          const std::string& app, const std::vector<Line>& lines) {
    std::map<std::string, ExtendedSequenceNumber> last;
    for (const Line& l : lines) {
      const ExtendedSequenceNumber e{l.seq, l.sub};
      auto it = last.find(l.shard);
      if (it == last.end() || compare(it->second, e) < 0) last[l.shard] = e;
    }
    const auto ls = leases(db, app);
    EXPECT_EQ(ls.size(), shards_[stream].size());
    for (const auto& [shard, lease] : ls) {
      EXPECT_EQ(lease.lease_owner, "") << shard << ": released at shutdown";
      auto it = last.find(shard);
      if (it == last.end()) continue;  // no record in this shard
      EXPECT_EQ(lease.checkpoint, it->second.sequence_number) << shard;
      EXPECT_EQ(lease.checkpoint_sub_sequence_number, it->second.sub_sequence_number) << shard;
    }
  }

  std::map<std::string, std::vector<Shard>> shards_;
};

TEST_F(ConsumeCliIntegration, PrintsEveryRecordOnceCheckpointsAndResumes) {
  const std::string stream = make_stream(2);
  const auto want = put(stream, "a", 100, 100);
  ASSERT_EQ(want.size(), 200u);

  CliRun r = consume(stream, "app-one", "x.db", "run1");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<Line> lines = parse_output(r.out);
  expect_records(stream, lines, want, 1);
  int aggregated = 0;
  for (const Line& l : lines) aggregated += l.aggregated ? 1 : 0;
  EXPECT_EQ(aggregated, 100) << "user records of KPL aggregates";

  // The summary on stderr.
  ASSERT_TRUE(r.summary.is_object()) << r.err;
  EXPECT_TRUE(r.summary["worker"].is_string() && !r.summary["worker"].get<std::string>().empty())
      << r.summary;
  EXPECT_EQ(r.summary["records"], 200) << r.summary;
  ASSERT_TRUE(r.summary["shards"].is_array()) << r.summary;
  const auto ls = leases("x.db", "app-one");
  for (const json& s : r.summary["shards"]) {
    const std::string id = s.value("shardId", "");
    ASSERT_TRUE(ls.count(id)) << s;
    EXPECT_EQ(s["checkpoint"], ls.at(id).checkpoint) << s;
  }

  // The lines are tail's lines, byte for byte.
  {
    Cli tail(with_endpoint({"tail", "--stream", stream, "--until-idle", "1"}), path("tail.out"),
             path("tail.err"));
    const CliRun t = tail.wait();
    ASSERT_EQ(t.rc, 0) << t.err;
    std::multiset<std::string> from_tail, from_consume;
    for (const std::string& l : split_lines(t.out)) from_tail.insert(l);
    for (const Line& l : lines) from_consume.insert(l.raw);
    EXPECT_TRUE(from_tail == from_consume)
        << from_tail.size() << " tail lines vs " << from_consume.size() << " consume lines";
  }

  expect_checkpoints_at_last_printed(stream, "x.db", "app-one", lines);

  // Again: resumes at the checkpoints, prints nothing.
  r = consume(stream, "app-one", "x.db", "run2");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.summary["records"], 0) << r.err;

  // New records: exactly those. --initial-position does not matter any more (checkpoints).
  const auto more = put(stream, "b", 20, 10);
  r = consume(stream, "app-one", "x.db", "run3",
              {"--until-idle", "2", "--initial-position", "LATEST"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<Line> new_lines = parse_output(r.out);
  expect_records(stream, new_lines, more, 1);
  std::vector<Line> all = lines;
  all.insert(all.end(), new_lines.begin(), new_lines.end());
  expect_checkpoints_at_last_printed(stream, "x.db", "app-one", all);

  // Another application has its own leases: it sees everything.
  r = consume(stream, "app-two", "x.db", "run4");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto everything = want;
  everything.insert(more.begin(), more.end());
  expect_records(stream, parse_output(r.out), everything, 1);
}

TEST_F(ConsumeCliIntegration, TwoProcessesShareOneLeaseFile) {
  const std::string stream = make_stream(4);
  const auto want = put(stream, "c", 300, 100);
  const std::vector<std::string> args = {"--until-idle", "3", "--initial-position", "TRIM_HORIZON"};
  auto a = start_consume(stream, "shared", "shared.db", "a", args);
  auto b = start_consume(stream, "shared", "shared.db", "b", args);
  const CliRun ra = a->wait();
  const CliRun rb = b->wait();
  ASSERT_EQ(ra.rc, 0) << ra.err;
  ASSERT_EQ(rb.rc, 0) << rb.err;
  EXPECT_NE(ra.summary.value("worker", ""), rb.summary.value("worker", ""));
  std::vector<Line> all = parse_output(ra.out);
  const std::vector<Line> from_b = parse_output(rb.out);
  all.insert(all.end(), from_b.begin(), from_b.end());
  // At least once: a shard whose lease moved may be printed twice from its last checkpoint.
  expect_records(stream, all, want, 0);
  EXPECT_EQ(ra.summary.value("records", -1) + rb.summary.value("records", -1),
            static_cast<int>(all.size()));
  for (const auto& [shard, lease] : leases("shared.db", "shared")) {
    EXPECT_EQ(lease.lease_owner, "") << shard;
  }
  // Whatever the split, the checkpoints cover everything: a third run prints nothing.
  const CliRun rc = consume(stream, "shared", "shared.db", "c");
  ASSERT_EQ(rc.rc, 0) << rc.err;
  EXPECT_EQ(rc.out, "");
}

TEST_F(ConsumeCliIntegration, SigtermShutsDownGracefully) {
  const std::string stream = make_stream(2);
  const auto want = put(stream, "d", 50, 0);
  auto cli = start_consume(stream, "sig", "sig.db", "sig", {"--initial-position", "TRIM_HORIZON"});
  // Runs until told to stop: wait for every record on stdout (another process: poll the file).
  ASSERT_TRUE(poll_until(
      [&] {
        std::ifstream in(path("sig.out"));
        std::string line;
        std::size_t n = 0;
        while (std::getline(in, line)) ++n;
        return n >= want.size();
      },
      120s));
  ASSERT_EQ(::kill(cli->pid(), SIGTERM), 0);
  const CliRun r = cli->wait();
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<Line> lines = parse_output(r.out);
  expect_records(stream, lines, want, 1);
  EXPECT_EQ(r.summary["records"], 50) << r.err;
  expect_checkpoints_at_last_printed(stream, "sig.db", "sig", lines);
}

TEST_F(ConsumeCliIntegration, ClosedStdoutExitsOneWithoutCheckpointingUnprintedRecords) {
  const std::string stream = make_stream(2);
  const auto want = put(stream, "e", 40, 0);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[0]);  // no reader from the start: the first write fails with EPIPE
  auto cli = start_consume(stream, "pipe", "pipe.db", "pipe",
                           {"--until-idle", "2", "--initial-position", "TRIM_HORIZON"}, fds[1]);
  ::close(fds[1]);
  const CliRun r = cli->wait();
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("writing to standard output"), std::string::npos) << r.err;
  for (const auto& [shard, lease] : leases("pipe.db", "pipe")) {
    EXPECT_EQ(lease.checkpoint, "TRIM_HORIZON") << shard << ": nothing was printed";
  }
  // The next run prints everything.
  const CliRun again = consume(stream, "pipe", "pipe.db", "pipe2");
  ASSERT_EQ(again.rc, 0) << again.err;
  expect_records(stream, parse_output(again.out), want, 1);
}

TEST_F(ConsumeCliIntegration, DynamoDbLeaseTableHasItsOwnEndpoint) {
  const std::string ddb = testing::env_or_empty("SHARDLINE_DYNAMODB_ENDPOINT");
  if (ddb.empty()) GTEST_SKIP() << "SHARDLINE_DYNAMODB_ENDPOINT unset: scripts/servers start";
  const std::string stream = make_stream(2);
  const std::string table = stream + "-leases";
  auto client = DynamoDbClient::create(testing::local_aws_config(ddb));
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  struct DropTable {
    DynamoDbClient& c;
    std::string t;
    ~DropTable() { (void)c.delete_table(t); }
  } drop{**client, table};

  const auto want = put(stream, "f", 30, 20);
  // --endpoint-url is Kinesis (kinesalite), --dynamodb-endpoint the lease table (dynalite).
  const std::vector<std::string> args = {"consume",
                                         "--stream",
                                         stream,
                                         "--application",
                                         "ddb-app",
                                         "--lease-table",
                                         "dynamodb:" + table,
                                         "--dynamodb-endpoint",
                                         ddb,
                                         "--until-idle",
                                         "2"};
  Cli first(with_endpoint(args), path("ddb1.out"), path("ddb1.err"));
  CliRun r = first.wait();
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<Line> lines = parse_output(r.out);
  expect_records(stream, lines, want, 1);

  auto store = make_dynamodb_lease_store(testing::local_aws_config(ddb), table);
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto leases = (*store)->list_leases();
  ASSERT_TRUE(leases.ok()) << leases.status().to_string();
  EXPECT_EQ(leases->size(), 2u);
  for (const Lease& l : *leases) {
    EXPECT_EQ(l.lease_owner, "") << l.lease_key;
    EXPECT_NE(l.checkpoint, "TRIM_HORIZON") << l.lease_key << ": every shard has records";
  }

  Cli second(with_endpoint(args), path("ddb2.out"), path("ddb2.err"));
  r = second.wait();
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "") << "resumed from the checkpoints in DynamoDB";
}

}  // namespace
}  // namespace shardline

namespace shardline {
namespace {

// kill -9 of one of two workers (separate processes, one SQLite lease file): the survivor takes
// the dead worker's shards once they expire and resumes them from their checkpoints; nothing
// is missing. The handover time is reported, and bounded by failoverTimeMillis plus one
// renewal interval plus the taker's scan period (with slack for a loaded CI machine).
TEST_F(ConsumeCliIntegration, KillNineFailsOverToTheOtherWorker) {
  const std::string stream = make_stream(4);
  auto want = put(stream, "k", 200, 0);
  {
    std::ofstream props(path("fast.properties"));
    props << "failoverTimeMillis = 3000\nleaseTakerIntervalMillis = 500\n"
             "idleTimeBetweenReadsInMillis = 100\n";
  }
  const std::vector<std::string> args = {"--config", path("fast.properties"), "--initial-position",
                                         "TRIM_HORIZON"};
  auto with_id = [&](const std::string& id) {
    auto v = args;
    v.insert(v.end(), {"--worker-id", id});
    return v;
  };
  auto a = start_consume(stream, "kill", "kill.db", "ka", with_id("wka"));
  auto b = start_consume(stream, "kill", "kill.db", "kb", with_id("wkb"));
  // Both hold leases and everything put so far was printed.
  // Owner -> leases held; empty until the workers have created the table (no assertion here:
  // it is polled).
  auto owners = [&] {
    std::map<std::string, int> n;
    auto store = make_sqlite_lease_store(path("kill.db"), "kill");
    if (!store.ok()) return n;
    auto l = (*store)->list_leases();
    if (!l.ok() || l->size() != 4) return std::map<std::string, int>{};
    for (const Lease& x : *l) ++n[x.lease_owner];
    return n;
  };
  ASSERT_TRUE(poll_until(
      [&] {
        auto n = owners();
        return n.size() == 2 && n.count("") == 0;
      },
      60s));
  const std::string a_id = "wka";
  ASSERT_EQ(::kill(a->pid(), SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  const CliRun ra = a->wait();
  EXPECT_EQ(ra.rc, -1);  // killed by a signal
  // The survivor takes over every lease.
  ASSERT_TRUE(poll_until(
      [&] {
        auto n = owners();
        return n.size() == 1 && n.count(a_id) == 0 && n.count("") == 0;
      },
      60s));
  const auto took_over = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  RecordProperty("failover_ms", static_cast<int>(took_over.count()));
  std::printf("[ failover ] survivor held every lease %lld ms after kill -9\n",
              static_cast<long long>(took_over.count()));
  // failover 3000 + renewal 975 + taker 500 (+10 % jitter), with 4 s of slack for CI load.
  EXPECT_LT(took_over.count(), 3000 + 975 + 550 + 4000);
  auto more = put(stream, "m", 100, 0);
  want.insert(more.begin(), more.end());
  // The survivor prints the new records too; then stop it gracefully.
  ASSERT_TRUE(poll_until(
      [&] {
        std::set<std::string> got;
        for (const Line& l : parse_output(complete_lines(testing::read_file(path("kb.out")))))
          got.insert(l.data);
        for (const Line& l : parse_output(complete_lines(testing::read_file(path("ka.out")))))
          got.insert(l.data);
        return got.size() >= want.size();
      },
      60s));
  ASSERT_EQ(::kill(b->pid(), SIGTERM), 0);
  const CliRun rb = b->wait();
  ASSERT_EQ(rb.rc, 0) << rb.err;
  std::vector<Line> all = parse_output(ra.out);
  const std::vector<Line> from_b = parse_output(rb.out);
  all.insert(all.end(), from_b.begin(), from_b.end());
  expect_records(stream, all, want, 0);  // at least once, nothing missing
}

}  // namespace
}  // namespace shardline

namespace shardline {
namespace {

// Two worker processes on one SQLite lease file while the stream is split and then merged:
// every record reaches the output, parents before children in each shard lineage.
TEST_F(ConsumeCliIntegration, TwoProcessesFollowASplitAndAMerge) {
  const std::string stream = make_stream(2);
  auto want = put(stream, "s", 150, 0);
  {
    std::ofstream props(path("reshard.properties"));
    props << "failoverTimeMillis = 3000\nleaseTakerIntervalMillis = 500\n"
             "idleTimeBetweenReadsInMillis = 100\nparentShardPollIntervalMillis = 300\n";
  }
  const std::vector<std::string> args = {"--config", path("reshard.properties"),
                                         "--initial-position", "TRIM_HORIZON"};
  auto a = start_consume(stream, "rs", "rs.db", "ra", args);
  auto b = start_consume(stream, "rs", "rs.db", "rb", args);
  auto printed = [&] {
    std::set<std::string> got;
    for (const char* f : {"ra.out", "rb.out"}) {
      for (const Line& l : parse_output(complete_lines(testing::read_file(path(f)))))
        got.insert(l.data);
    }
    return got;
  };
  ASSERT_TRUE(poll_until([&] { return printed().size() >= want.size(); }, 60s));

  auto shards = k_->list_shards(stream);
  ASSERT_TRUE(shards.ok());
  ASSERT_EQ(shards->size(), 2u);
  const Shard low = (*shards)[0], high = (*shards)[1];
  // Split the low shard in the middle of its range, then merge its upper child with the high
  // shard (adjacent ranges).
  const HashKey mid(low.hash_key_range.end.hi() / 2, 0);
  ASSERT_TRUE(k_->split_shard(stream, low.shard_id, mid).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(stream, 30s).ok());
  auto more = put(stream, "t", 150, 0);
  want.insert(more.begin(), more.end());
  auto after_split = k_->list_shards(stream);
  ASSERT_TRUE(after_split.ok());
  std::string upper_child;
  for (const Shard& s : *after_split) {
    if (s.parent_shard_id == low.shard_id && s.hash_key_range.start == mid)
      upper_child = s.shard_id;
  }
  ASSERT_FALSE(upper_child.empty());
  ASSERT_TRUE(k_->merge_shards(stream, upper_child, high.shard_id).ok());
  ASSERT_TRUE(k_->wait_for_stream_active(stream, 30s).ok());
  auto last = put(stream, "u", 150, 0);
  want.insert(last.begin(), last.end());
  shards_[stream] = *k_->list_shards(stream);  // for owner(): the open shards now

  ASSERT_TRUE(poll_until([&] { return printed().size() >= want.size(); }, 90s))
      << printed().size() << " of " << want.size();
  // The three closed shards reach SHARD_END (or are cleaned up once their children started).
  auto parents_finished = [&] {
    auto store = make_sqlite_lease_store(path("rs.db"), "rs");
    if (!store.ok()) return false;
    auto ls = (*store)->list_leases();
    if (!ls.ok()) return false;
    for (const Lease& l : *ls) {
      const bool parent =
          l.lease_key == low.shard_id || l.lease_key == high.shard_id || l.lease_key == upper_child;
      if (parent && l.checkpoint != kCheckpointShardEnd) return false;
    }
    return true;
  };
  EXPECT_TRUE(poll_until(parents_finished, 60s));
  ASSERT_EQ(::kill(a->pid(), SIGTERM), 0);
  ASSERT_EQ(::kill(b->pid(), SIGTERM), 0);
  const CliRun ra = a->wait();
  const CliRun rb = b->wait();
  ASSERT_EQ(ra.rc, 0) << ra.err;
  ASSERT_EQ(rb.rc, 0) << rb.err;
  std::map<std::string, int> seen;
  for (const CliRun* r : {&ra, &rb}) {
    for (const Line& l : parse_output(r->out)) ++seen[l.data];
  }
  int missing = 0;
  for (const auto& [data, pk] : want) missing += seen.count(data) == 0 ? 1 : 0;
  EXPECT_EQ(missing, 0) << "of " << want.size();
}

}  // namespace
}  // namespace shardline
