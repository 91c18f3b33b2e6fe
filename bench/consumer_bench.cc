// shardline_consumer_bench: user records/s and CPU per record delivered by the real worker
// (lease coordination, polling GetRecords, JSON parsing, base64, deaggregation, checkpoints)
// to a no-op processor, against a loopback endpoint (usually shardline_stub_kinesis with
// --aggregate and --full-range-shards). Leases live in a SQLite file in a temp directory.
// Prints one JSON line. bench/run_consumer_bench.sh runs the matrix.
//
//   shardline_consumer_bench --endpoint http://127.0.0.1:PORT --shards 1 --seconds 10
//                            [--threads 2] [--no-checkpoint] [--max-prefetch-bytes-total N]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "bench_util.h"
#include "shardline/consumer.h"
#include "shardline/credentials.h"

using namespace shardline;
using shardline::bench::cpu_seconds;
using shardline::bench::peak_rss_kib;

namespace {

long status_field(const char* name) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(name) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) return std::atol(line.c_str() + prefix.size());
  }
  return -1;
}

std::atomic<long> g_records{0};
std::atomic<long> g_bytes{0};

class NoopProcessor : public RecordProcessor {
 public:
  explicit NoopProcessor(bool checkpoint) : checkpoint_(checkpoint) {}
  Status initialize(const InitializationInput&) override { return {}; }
  Status process_records(const ProcessRecordsInput& in) override {
    long bytes = 0;
    for (const auto& r : in.records) bytes += static_cast<long>(r.data.size());
    g_records.fetch_add(static_cast<long>(in.records.size()), std::memory_order_relaxed);
    g_bytes.fetch_add(bytes, std::memory_order_relaxed);
    return checkpoint_ ? in.checkpointer.checkpoint() : Status();
  }

 private:
  bool checkpoint_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint;
  int shards = 1;
  double seconds = 10;
  int threads = 2;
  bool checkpoint = true;
  long prefetch_total = 256L << 20;
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
    } else if (a == "--shards") {
      shards = std::atoi(next());
    } else if (a == "--seconds") {
      seconds = std::atof(next());
    } else if (a == "--threads") {
      threads = std::atoi(next());
    } else if (a == "--no-checkpoint") {
      checkpoint = false;
    } else if (a == "--max-prefetch-bytes-total") {
      prefetch_total = std::atol(next());
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (endpoint.empty() || shards <= 0 || seconds <= 0 || threads <= 0) {
    std::fprintf(stderr,
                 "usage: shardline_consumer_bench --endpoint URL [--shards N] [--seconds S]\n");
    return 2;
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   ("shardline-consumer-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  WorkerOptions o;
  o.config.application_name = "bench";
  o.config.stream_name = "bench";
  o.config.worker_id = "bench-worker";
  o.config.initial_position_in_stream = "TRIM_HORIZON";
  o.config.idle_time_between_reads_in_millis = 0;
  o.config.processing_threads = threads;
  o.config.max_prefetch_bytes_total = prefetch_total;
  o.config.lease_store = "sqlite:" + (dir / "leases.db").string();
  o.aws.endpoint_url = endpoint;
  o.aws.region = "us-east-1";
  o.aws.credentials =
      make_static_credentials_provider({"AKIDBENCH", "bench-secret", "", {}, "bench"});
  o.log = [](LogLevel l, std::string_view m) {
    if (l >= LogLevel::kWarning)
      std::fprintf(stderr, "%.*s\n", static_cast<int>(m.size()), m.data());
  };
  auto w = Worker::create(std::move(o), [checkpoint](const std::string&) {
    return std::make_unique<NoopProcessor>(checkpoint);
  });
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.status().to_string().c_str());
    return 1;
  }
  if (Status s = (*w)->start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  // Warm up until every shard is held and delivering, then measure a fixed window.
  const auto warm_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((*w)->metrics().current_leases < shards || g_records.load() == 0) {
    if (std::chrono::steady_clock::now() > warm_deadline) {
      std::fprintf(stderr, "the worker did not take every lease within 60 s\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const long r0 = g_records.load(), b0 = g_bytes.load();
  const auto m0 = (*w)->metrics();
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  long max_threads = status_field("Threads");
  const auto end = t0 + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    max_threads = std::max(max_threads, status_field("Threads"));
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - c0;
  const long n = g_records.load() - r0;
  const long bytes = g_bytes.load() - b0;
  const auto m1 = (*w)->metrics();
  (*w)->shutdown();
  (*w)->wait(std::chrono::seconds(60));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  // Coordination only (renewals, scans, takes, parent checks): checkpoint writes are the
  // application's choice and are reported apart.
  auto coordination = [](const WorkerMetrics& m) {
    return m.lease_store_calls - m.checkpoints - m.checkpoint_failures;
  };
  const double store_ops_per_lease_s =
      static_cast<double>(coordination(m1) - coordination(m0)) / wall / shards;
  const double checkpoints_per_s = static_cast<double>(m1.checkpoints - m0.checkpoints) / wall;
  std::printf(
      "{\"shards\":%d,\"threads\":%d,\"checkpoint\":%s,\"seconds\":%.2f,\"userRecords\":%ld,"
      "\"recordsPerSec\":%.0f,\"mbPerSec\":%.1f,\"cpuUsPerRecord\":%.3f,\"cpuCores\":%.2f,"
      "\"leaseStoreOpsPerLeasePerSec\":%.3f,\"kclRenewalsPerLeasePerSec\":%.3f,"
      "\"checkpointWritesPerSec\":%.1f,"
      "\"processThreads\":%ld,\"peakRssMiB\":%.1f}\n",
      shards, threads, checkpoint ? "true" : "false", wall, n, static_cast<double>(n) / wall,
      static_cast<double>(bytes) / wall / 1e6, n > 0 ? cpu * 1e6 / static_cast<double>(n) : 0.0,
      cpu / wall, store_ops_per_lease_s, 1.0 / 3.308, checkpoints_per_s, max_threads,
      static_cast<double>(peak_rss_kib()) / 1024.0);
  return 0;
}
