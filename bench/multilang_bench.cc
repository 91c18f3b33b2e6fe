// shardline_multilang_bench: records/s through one MultiLangDaemon child on one shard, and the
// CPU the daemon and the child each spend per record, against a loopback endpoint (usually
// shardline_stub_kinesis with --aggregate and --full-range-shards: KPL aggregates of 100-byte
// user records). The daemon is the real one (worker, polling GetRecords, deaggregation, the
// protocol, checkpoints in a SQLite lease file); the child is any MultiLangDaemon program, e.g.
// tests/multilang/node_processor.js --bench. Prints one JSON line.
// bench/multilang_bench.sh runs it with the Node.js and the Python children.
//
//   shardline_multilang_bench --endpoint http://127.0.0.1:PORT --child "node x.js --bench"
//                             [--seconds 10] [--threads 2] [--label NAME]
//                             [--replay-buffer-bytes N]
//
// Records/s: the worker's RecordsProcessed over a window that starts once records flow. CPU:
// the daemon's own (getrusage RUSAGE_SELF) and the children's (RUSAGE_CHILDREN, complete once
// the daemon has stopped and reaped them), each over the whole run, divided by every record
// delivered; start-up costs are a negligible share of a run of seconds.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "bench_util.h"
#include "shardline/credentials.h"
#include "shardline/multilang.h"

using namespace shardline;

namespace {

// User + system CPU seconds of the children this process has reaped.
double children_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint, child, label;
  double seconds = 10;
  int threads = 2;
  long long replay = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--endpoint") {
      endpoint = next();
    } else if (a == "--child") {
      child = next();
    } else if (a == "--seconds") {
      seconds = std::atof(next());
    } else if (a == "--threads") {
      threads = std::atoi(next());
    } else if (a == "--replay-buffer-bytes") {
      replay = std::atoll(next());
    } else if (a == "--label") {
      label = next();
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (endpoint.empty() || child.empty() || seconds <= 0 || threads <= 0) {
    std::fprintf(stderr,
                 "usage: shardline_multilang_bench --endpoint URL --child COMMAND [--seconds S]\n");
    return 2;
  }
  if (label.empty()) label = child;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("shardline-multilang-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  MultiLangDaemonOptions o;
  o.consumer.application_name = "bench";
  o.consumer.stream_name = "bench";
  o.consumer.worker_id = "bench-worker";
  o.consumer.initial_position_in_stream = "TRIM_HORIZON";
  o.consumer.idle_time_between_reads_in_millis = 0;
  o.consumer.processing_threads = threads;
  o.consumer.lease_store = "sqlite:" + (dir / "leases.db").string();
  o.consumer.kinesis_endpoint = endpoint;
  o.multilang.executable_name = child;
  if (replay >= 0) o.multilang.replay_buffer_max_bytes = replay;
  o.aws.region = "us-east-1";
  o.aws.credentials =
      make_static_credentials_provider({"AKIDBENCH", "bench-secret", "", {}, "bench"});
  o.log = [](LogLevel l, std::string_view m) {
    if (l >= LogLevel::kWarning)
      std::fprintf(stderr, "%.*s\n", static_cast<int>(m.size()), m.data());
  };
  o.child_stderr = [](std::string_view shard, long pid, std::string_view line) {
    std::fprintf(stderr, "%.*s child %ld: %.*s\n", static_cast<int>(shard.size()), shard.data(),
                 pid, static_cast<int>(line.size()), line.data());
  };
  auto d = MultiLangDaemon::create(std::move(o));
  if (!d.ok()) {
    std::fprintf(stderr, "%s\n", d.status().to_string().c_str());
    return 1;
  }
  if (Status s = (*d)->start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  // Warm up until records flow to the child, then measure a fixed window.
  const auto warm_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((*d)->worker_metrics().records_processed == 0) {
    if (std::chrono::steady_clock::now() > warm_deadline) {
      std::fprintf(stderr, "no record reached the child within 60 s\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const long r0 = (*d)->worker_metrics().records_processed;
  const double self0 = bench::cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const long r1 = (*d)->worker_metrics().records_processed;
  const double self1 = bench::cpu_seconds();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (*d)->stop();
  const long total = (*d)->worker_metrics().records_processed;
  const MultiLangMetrics m = (*d)->metrics();
  d->reset();
  const double self_total = bench::cpu_seconds();
  const double children_total = children_cpu_seconds();
  std::filesystem::remove_all(dir);

  const double daemon_us = self_total * 1e6 / static_cast<double>(total);
  const double child_us = children_total * 1e6 / static_cast<double>(total);
  std::printf(
      "{\"tool\":\"%s\",\"seconds\":%.2f,\"records\":%ld,\"recordsPerSec\":%.0f,"
      "\"daemonCpuUsPerRecord\":%.3f,\"daemonWindowCpuUsPerRecord\":%.3f,"
      "\"childCpuUsPerRecord\":%.3f,\"daemonToChildCpu\":%.4f,\"childrenStarted\":%lld,"
      "\"childRestarts\":%lld,\"messages\":%lld,\"mbSent\":%.1f}\n",
      json_escape(label).c_str(), elapsed, total, static_cast<double>(r1 - r0) / elapsed, daemon_us,
      (self1 - self0) * 1e6 / static_cast<double>(r1 - r0), child_us, daemon_us / child_us,
      static_cast<long long>(m.children_started), static_cast<long long>(m.child_restarts),
      static_cast<long long>(m.messages_sent), static_cast<double>(m.bytes_sent) / 1e6);
  return 0;
}
