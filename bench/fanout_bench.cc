// Enhanced fan-out's decoding cost, against baselines measured in the same run:
//   BM_Crc32Baseline       zlib's CRC32 over the event stream's bytes: the one pass the
//                          framing cannot avoid (each message's CRC covers all of it);
//   BM_EventStreamDecode   the incremental decoder over the same bytes, fed 64 KiB at a time;
//   BM_GetRecordsParse     the polling path: a GetRecords body of 1,000 records parsed;
//   BM_SubscribeEventParse the same 1,000 records as one SubscribeToShardEvent: frame decoded
//                          and payload parsed.
// bench/run_fanout_bench.sh prints the ratios.
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <string>

#include "aws/event_stream.h"
#include "core/digest.h"
#include "shardline/kinesis.h"

namespace {

using namespace shardline;

// A GetRecords-shaped JSON document of `n` records of `size` bytes; `tail` ends it.
std::string records_json(int n, std::size_t size, const std::string& tail) {
  std::string json = R"({"Records":[)";
  for (int i = 0; i < n; ++i) {
    std::string data(size, static_cast<char>('a' + i % 26));
    if (i) json += ',';
    json += R"({"Data":")" + detail::base64_encode(data) + R"(","PartitionKey":"pk-)" +
            std::to_string(i) + R"(","SequenceNumber":"4968046854924900261912687699783920600)" +
            std::to_string(1000 + i) + R"(","ApproximateArrivalTimestamp":1795375106.74})";
  }
  return json + "]," + tail + "}";
}

const std::string& frame() {
  static const std::string f = detail::encode_event_stream_message(
      {{":message-type", "event"},
       {":event-type", "SubscribeToShardEvent"},
       {":content-type", "application/json"}},
      records_json(
          1000, 100,
          R"("ContinuationSequenceNumber":"49680468549249002619126876997840414934949543268778508290","MillisBehindLatest":0)"));
  return f;
}

// 8 MiB of consecutive events.
const std::string& stream() {
  static const std::string s = [] {
    std::string out;
    while (out.size() < (8u << 20)) out += frame();
    return out;
  }();
  return s;
}

void BM_Crc32Baseline(benchmark::State& state) {
  const std::string& s = stream();
  for (auto _ : state) {
    uLong crc = ::crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size()));
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}
BENCHMARK(BM_Crc32Baseline);

void BM_EventStreamDecode(benchmark::State& state) {
  const std::string& s = stream();
  std::size_t messages = 0;
  for (auto _ : state) {
    detail::EventStreamDecoder d;
    for (std::size_t at = 0; at < s.size(); at += 65536) {
      Status st =
          d.feed(std::string_view(s).substr(at, 65536), [&](detail::EventStreamMessage&& m) {
            benchmark::DoNotOptimize(m.payload.data());
            ++messages;
          });
      if (!st.ok()) state.SkipWithError("decode failed");
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
  benchmark::DoNotOptimize(messages);
}
BENCHMARK(BM_EventStreamDecode);

void BM_GetRecordsParse(benchmark::State& state) {
  const std::string body =
      records_json(1000, 100, R"("NextShardIterator":"AAAA","MillisBehindLatest":0)");
  for (auto _ : state) {
    auto r = detail::parse_get_records(body);
    if (!r.ok() || r->records.size() != 1000) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 1000));
}
BENCHMARK(BM_GetRecordsParse);

void BM_SubscribeEventParse(benchmark::State& state) {
  const std::string& f = frame();
  for (auto _ : state) {
    detail::EventStreamDecoder d;
    Status st = d.feed(f, [&](detail::EventStreamMessage&& m) {
      auto e = detail::parse_subscribe_to_shard_event(m.payload);
      if (!e.ok() || e->records.size() != 1000) state.SkipWithError("parse failed");
      benchmark::DoNotOptimize(e);
    });
    if (!st.ok()) state.SkipWithError("decode failed");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 1000));
}
BENCHMARK(BM_SubscribeEventParse);

}  // namespace

BENCHMARK_MAIN();
