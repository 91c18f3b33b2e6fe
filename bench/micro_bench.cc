// Micro-benchmarks of the aggregation format, each with its baseline in the same run:
// MD5 alone over the same bytes. bench/run_micro.sh prints the ratios.
//
// Workload (issue 2): 100-byte user records with 36-character UUID-like partition keys,
// packed into 51200-byte aggregates.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/digest.h"
#include "shardline/aggregation.h"

namespace {

using namespace shardline;

struct Workload {
  std::vector<std::string> keys;
  std::vector<std::string> datas;
  std::vector<HashKey> hashes;
};

const Workload& workload(std::size_t record_size) {
  static std::map<std::size_t, Workload> cache;
  auto& w = cache[record_size];
  if (!w.keys.empty()) return w;
  std::mt19937_64 rng(42);
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 20000; ++i) {
    std::string k(36, '-');
    for (int j = 0; j < 36; ++j)
      if (j != 8 && j != 13 && j != 18 && j != 23) k[j] = hex[rng() % 16];
    std::string d(record_size, '\0');
    for (char& c : d) c = static_cast<char>('a' + rng() % 26);
    w.hashes.push_back(HashKey::from_partition_key(k));
    w.keys.push_back(std::move(k));
    w.datas.push_back(std::move(d));
  }
  return w;
}

// Build full aggregates from the workload; returns the aggregates.
std::vector<std::string> make_aggregates(const Workload& w, std::size_t max_size) {
  std::vector<std::string> out;
  AggregateBuilder b(AggregationLimits{max_size, UINT64_MAX, kDefaultMaxRecordSize});
  for (std::size_t i = 0; i < w.keys.size(); ++i) {
    if (!b.fits(w.keys[i], std::nullopt, w.datas[i].size())) {
      out.push_back(b.build().data);
      b.clear();
    }
    b.add(w.keys[i], std::nullopt, w.datas[i], w.hashes[i]);
  }
  return out;
}

// Baseline: MD5 over exactly the bytes the writer produces.
void BM_Md5Baseline(benchmark::State& state) {
  const auto aggs = make_aggregates(workload(100), 51200);
  std::size_t bytes = 0, i = 0;
  for (auto _ : state) {
    const std::string& a = aggs[i++ % aggs.size()];
    benchmark::DoNotOptimize(detail::md5(std::string_view(a).substr(4, a.size() - 20)));
    bytes += a.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_Md5Baseline);

// md5_many over N aggregates (the producer digests a request's aggregates together) and over
// N partition keys; compare bytes/s with BM_Md5Baseline and with the scalar path (Md5Impl 3).
void BM_Md5ManyAggregates(benchmark::State& state) {
  const auto aggs = make_aggregates(workload(100), 51200);
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string_view> in;
  std::size_t batch_bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& a = aggs[i % aggs.size()];
    in.push_back(std::string_view(a).substr(4, a.size() - 20));
    batch_bytes += a.size();
  }
  std::vector<detail::Md5Digest> out(n);
  std::size_t bytes = 0;
  for (auto _ : state) {
    detail::md5_many(in, out, static_cast<detail::Md5Impl>(state.range(1)));
    benchmark::DoNotOptimize(out.data());
    bytes += batch_bytes;
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
// Second argument: detail::Md5Impl (0 best, 1 AVX-512, 2 AVX2, 3 scalar).
BENCHMARK(BM_Md5ManyAggregates)
    ->Args({16, 1})
    ->Args({16, 2})
    ->Args({16, 3})
    ->Args({5, 1})
    ->Args({20, 1})
    ->Args({32, 1});

void BM_Md5ManyKeys(benchmark::State& state) {
  const Workload& w = workload(100);
  std::vector<std::string_view> in(w.keys.begin(), w.keys.begin() + 370);
  std::vector<detail::Md5Digest> out(in.size());
  for (auto _ : state) {
    detail::md5_many(in, out, static_cast<detail::Md5Impl>(state.range(0)));
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * in.size()));
}
BENCHMARK(BM_Md5ManyKeys)->Arg(1)->Arg(2)->Arg(3);

// Writer: add every record (key dedup, exact sizing) and serialize with MD5. Items are user
// records; bytes are aggregate bytes produced (comparable with the baseline).
void BM_AggregateWrite(benchmark::State& state) {
  const Workload& w = workload(static_cast<std::size_t>(state.range(0)));
  AggregateBuilder b(AggregationLimits{51200, UINT64_MAX, kDefaultMaxRecordSize});
  std::string out;
  std::size_t i = 0, records = 0, bytes = 0;
  for (auto _ : state) {
    // One full aggregate per iteration.
    b.clear();
    while (true) {
      const std::size_t k = i % w.keys.size();
      if (!b.empty() && !b.fits(w.keys[k], std::nullopt, w.datas[k].size())) break;
      b.add(w.keys[k], std::nullopt, w.datas[k], w.hashes[k]);
      ++i;
    }
    out.clear();
    b.serialize_aggregate(out);
    benchmark::DoNotOptimize(out.data());
    records += b.count();
    bytes += out.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_AggregateWrite)->Arg(100)->Arg(1024);

// Writer including the partition key hashing a producer does for shard prediction.
void BM_AggregateWriteWithKeyHash(benchmark::State& state) {
  const Workload& w = workload(100);
  AggregateBuilder b(AggregationLimits{51200, UINT64_MAX, kDefaultMaxRecordSize});
  std::string out;
  std::size_t i = 0, records = 0, bytes = 0;
  for (auto _ : state) {
    b.clear();
    while (true) {
      const std::size_t k = i % w.keys.size();
      if (!b.empty() && !b.fits(w.keys[k], std::nullopt, w.datas[k].size())) break;
      b.add(w.keys[k], std::nullopt, w.datas[k], HashKey::from_partition_key(w.keys[k]));
      ++i;
    }
    out.clear();
    b.serialize_aggregate(out);
    benchmark::DoNotOptimize(out.data());
    records += b.count();
    bytes += out.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_AggregateWriteWithKeyHash);

// Reader: full KCL check (magic, MD5, protobuf) and zero-copy views for every user record.
void BM_Deaggregate(benchmark::State& state) {
  const auto aggs = make_aggregates(workload(static_cast<std::size_t>(state.range(0))), 51200);
  Deaggregator d;
  std::vector<UserRecordView> out;
  std::size_t i = 0, records = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& a = aggs[i++ % aggs.size()];
    out.clear();
    d.decode({a, "a", std::nullopt}, out);
    benchmark::DoNotOptimize(out.data());
    records += out.size();
    bytes += a.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_Deaggregate)->Arg(100)->Arg(1024);

// The reader's protobuf work alone: the MD5 trailers are checked beforehand (predigest(), as
// the consumer does for each GetRecords answer) and only the decode() calls are timed.
void BM_DeaggregatePredigested(benchmark::State& state) {
  const auto aggs = make_aggregates(workload(100), 51200);
  std::vector<std::string_view> views(aggs.begin(), aggs.end());
  Deaggregator d;
  std::vector<UserRecordView> out;
  std::size_t records = 0;
  for (auto _ : state) {
    d.predigest(views);
    const auto t0 = std::chrono::steady_clock::now();
    for (const std::string& a : aggs) {
      out.clear();
      d.decode({a, "a", std::nullopt}, out);
      benchmark::DoNotOptimize(out.data());
      records += out.size();
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
}
BENCHMARK(BM_DeaggregatePredigested)->UseManualTime();

// Reader with per-user-record shard-range filtering (an MD5 per partition key).
void BM_DeaggregateFiltered(benchmark::State& state) {
  const auto aggs = make_aggregates(workload(100), 51200);
  DeaggregateOptions o;
  o.shard_range = HashKeyRange{};
  Deaggregator d(o);
  std::vector<UserRecordView> out;
  std::size_t i = 0, records = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& a = aggs[i++ % aggs.size()];
    out.clear();
    d.decode({a, "a", std::nullopt}, out);
    benchmark::DoNotOptimize(out.data());
    records += out.size();
    bytes += a.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_DeaggregateFiltered);

}  // namespace

BENCHMARK_MAIN();
