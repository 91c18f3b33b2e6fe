// shardline_producer_bench: user records/s and CPU per record through the real producer
// (aggregation, limiter, collector, SigV4, HTTP) against a loopback endpoint, usually
// shardline_stub_kinesis. Prints one JSON line. bench/run_producer_bench.sh runs the matrix
// and the baselines.
//
//   shardline_producer_bench --endpoint http://127.0.0.1:PORT --records 2000000 --size 100
//                            [--no-aggregation] [--threads 2] [--max-outstanding-bytes N]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "shardline/producer.h"

using namespace shardline;
using shardline::bench::cpu_seconds;
using shardline::bench::peak_rss_kib;

int main(int argc, char** argv) {
  std::string endpoint;
  long records = 1000000;
  int size = 100;
  int threads = 2;
  bool aggregation = true;
  long max_outstanding_bytes = 0;
  long latency_note = 0;
  long collection_max_size = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--endpoint")
      endpoint = next();
    else if (a == "--records")
      records = std::atol(next());
    else if (a == "--size")
      size = std::atoi(next());
    else if (a == "--threads")
      threads = std::atoi(next());
    else if (a == "--no-aggregation")
      aggregation = false;
    else if (a == "--max-outstanding-bytes")
      max_outstanding_bytes = std::atol(next());
    else if (a == "--latency-note")
      latency_note = std::atol(next());
    else if (a == "--collection-max-size")
      collection_max_size = std::atol(next());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (endpoint.empty() || records <= 0 || size <= 0 || threads <= 0) {
    std::fprintf(stderr,
                 "usage: shardline_producer_bench --endpoint URL [--records N] [--size B] "
                 "[--threads T] [--no-aggregation] [--max-outstanding-bytes N]\n");
    return 2;
  }

  ProducerConfig cfg;
  cfg.aggregation_enabled = aggregation;
  // The stub does not throttle; the KPL default RateLimit (150% of 1 MiB/s per shard) would
  // measure the limiter, not the client. Raise it far above what one host can send.
  cfg.rate_limit = 1000000;
  cfg.record_ttl = 600000;
  if (max_outstanding_bytes > 0) cfg.max_outstanding_bytes = max_outstanding_bytes;
  if (collection_max_size > 0) cfg.collection_max_size = collection_max_size;
  if (collection_max_size > 0) cfg.collection_max_size = collection_max_size;
  ProducerOptions opts;
  opts.aws.endpoint_url = endpoint;
  opts.aws.region = "us-east-1";
  opts.aws.credentials =
      make_static_credentials_provider({"AKIDBENCH", "bench-secret", "", {}, "bench"});
  auto producer = Producer::create(cfg, opts);
  if (!producer.ok()) {
    std::fprintf(stderr, "%s\n", producer.status().to_string().c_str());
    return 1;
  }
  Producer& p = **producer;

  // Keys and payloads prepared up front so the loop measures the producer, not the generator.
  std::vector<std::string> keys;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    char k[37];
    std::snprintf(k, sizeof k, "%08llx-%04llx-%04llx-%04llx-%012llx",
                  static_cast<unsigned long long>(rng() & 0xffffffff),
                  static_cast<unsigned long long>(rng() & 0xffff),
                  static_cast<unsigned long long>(rng() & 0xffff),
                  static_cast<unsigned long long>(rng() & 0xffff),
                  static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
    keys.emplace_back(k);
  }
  const std::string data(static_cast<std::size_t>(size), 'x');

  std::atomic<long> ok{0}, failed{0};
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (long i = t; i < records; i += threads) {
        const Status s = p.put("bench", keys[static_cast<std::size_t>(i) % keys.size()], data,
                               [&ok, &failed](PutResult&& r) {
                                 (r.success ? ok : failed).fetch_add(1, std::memory_order_relaxed);
                               });
        if (!s.ok()) {
          failed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const Status drained = p.flush_sync(std::chrono::minutes(10));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - c0;
  const ProducerMetrics m = p.metrics();
  (void)p.close(std::chrono::seconds(10));
  std::printf(
      "{\"records\":%ld,\"size\":%d,\"aggregation\":%s,\"threads\":%d,\"seconds\":%.3f,"
      "\"recordsPerSecond\":%.0f,\"cpuMicrosPerRecord\":%.3f,\"succeeded\":%ld,\"failed\":%ld,"
      "\"kinesisRecords\":%llu,\"putRecordsRequests\":%llu,\"peakRssMiB\":%.1f,"
      "\"maxOutstandingBytes\":%lld,\"drained\":%s,\"latencyMs\":%ld}\n",
      records, size, aggregation ? "true" : "false", threads, secs,
      static_cast<double>(records) / secs, cpu / static_cast<double>(records) * 1e6, ok.load(),
      failed.load(), static_cast<unsigned long long>(m.kinesis_records_put),
      static_cast<unsigned long long>(m.put_records_requests),
      static_cast<double>(peak_rss_kib()) / 1024.0,
      static_cast<long long>(cfg.max_outstanding_bytes), drained.ok() ? "true" : "false",
      latency_note);
  return ok.load() == records ? 0 : 1;
}
