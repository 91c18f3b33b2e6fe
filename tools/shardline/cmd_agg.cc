// shardline agg [FILE|-] [--max-size BYTES] [--max-count N] [--max-record-size BYTES]
//               [--shards N]
//
// Input: JSON lines {"partitionKey", "explicitHashKey"?, "data"}. Output: Kinesis records as
// JSON lines {"partitionKey", "explicitHashKey", "data"}, in the KPL's exact format. With
// --shards N, records are grouped per shard of an evenly split N-shard stream (what
// CreateStream makes), so every aggregate routes to one shard as a KCL consumer requires.
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "core/digest.h"
#include "io.h"
#include "record_json.h"
#include "shardline/aggregation.h"

namespace shardline::cli {

namespace {

struct AggArgs {
  std::string input = "-";
  std::size_t max_size = 51200;
  std::uint64_t max_count = 4294967295ULL;
  std::size_t max_record_size = kDefaultMaxRecordSize;
  std::uint32_t shards = 1;
};

// One shard's open aggregate and the storage its views point into.
struct ShardBuffer {
  explicit ShardBuffer(const AggregationLimits& l) : builder(l) {}
  AggregateBuilder builder;
  std::deque<std::string> keys;  // deque: elements never move, so views stay valid
  std::deque<std::string> datas;
};

void emit(const AggregateBuilder& b, Output& out) {
  const KinesisRecord r = b.build();
  std::string& o = out.buf();
  o.append("{\"partitionKey\":");
  append_json_string(o, r.partition_key);
  o.append(",\"explicitHashKey\":\"");
  o.append(r.explicit_hash_key);
  o.append("\",\"data\":\"");
  detail::base64_append(o, r.data);
  o.append("\"}\n");
  out.line_done();
}

void flush_shard(ShardBuffer& s, Output& out) {
  if (s.builder.empty()) return;
  emit(s.builder, out);
  s.builder.clear();
  s.keys.clear();
  s.datas.clear();
}

int run(const AggArgs& args) {
  AggregationLimits limits;
  limits.max_size = args.max_size;
  limits.max_count = args.max_count;
  limits.max_record_size = args.max_record_size;

  auto reader_or = LineReader::open(args.input);
  if (!reader_or.ok()) {
    std::fprintf(stderr, "shardline: error: %s\n",
                 std::string(reader_or.status().message()).c_str());
    return 1;
  }
  LineReader& reader = **reader_or;

  std::vector<std::unique_ptr<ShardBuffer>> shards;
  std::vector<HashKeyRange> ranges;
  for (std::uint32_t i = 0; i < args.shards; ++i) {
    shards.push_back(std::make_unique<ShardBuffer>(limits));
    ranges.push_back(even_split_range(i, args.shards));
  }

  RecordLineParser parser;
  Output out;
  Warnings warnings;
  RecordFields fields;
  std::string error;
  std::string data;
  std::uint64_t rejected = 0;

  std::string_view line;
  while (reader.next(line)) {
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) continue;
    if (!parser.parse(line, fields, error)) {
      ++rejected;
      warnings.warn(reader.line_number(), error + "; record rejected");
      continue;
    }
    if (!fields.data || !fields.partition_key) {
      ++rejected;
      warnings.warn(reader.line_number(),
                    "a record needs \"partitionKey\" and \"data\"; record rejected");
      continue;
    }
    if (!detail::base64_decode(*fields.data, data)) {
      ++rejected;
      warnings.warn(reader.line_number(), "data is not valid base64; record rejected");
      continue;
    }
    auto hash = validate_user_record(*fields.partition_key, fields.explicit_hash_key, data.size(),
                                     args.max_record_size);
    if (!hash.ok()) {
      ++rejected;
      warnings.warn(reader.line_number(),
                    std::string(hash.status().message()) + "; record rejected");
      continue;
    }
    std::optional<HashKey> ehk;
    if (fields.explicit_hash_key) ehk = *hash;

    std::size_t idx = 0;
    if (args.shards > 1) {
      // Ranges are sorted and contiguous: binary search for the owner.
      std::size_t lo = 0, hi = ranges.size() - 1;
      while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        if (ranges[mid].end < *hash)
          lo = mid + 1;
        else
          hi = mid;
      }
      idx = lo;
    }
    ShardBuffer& s = *shards[idx];
    if (!s.builder.fits(*fields.partition_key, ehk, data.size())) flush_shard(s, out);
    s.keys.emplace_back(*fields.partition_key);
    s.datas.emplace_back(std::move(data));
    data = std::string();
    s.builder.add(s.keys.back(), ehk, s.datas.back(), *hash);
    // A record that alone reaches a limit leaves nothing to wait for.
    if (s.builder.count() >= limits.max_count) flush_shard(s, out);
    if (out.failed()) break;
  }
  for (auto& s : shards) flush_shard(*s, out);
  const Status flushed = out.flush();
  warnings.finish();
  if (!reader.status().ok()) {
    std::fprintf(stderr, "shardline: error: %s\n", std::string(reader.status().message()).c_str());
    return 1;
  }
  if (!flushed.ok() || out.failed()) {
    std::fprintf(stderr, "shardline: error: %s\n", std::string(flushed.message()).c_str());
    return 1;
  }
  if (rejected > 0) {
    std::fprintf(stderr, "shardline: error: %llu input records rejected\n",
                 static_cast<unsigned long long>(rejected));
    return 1;
  }
  return 0;
}

}  // namespace

Runner add_agg(CLI::App& app) {
  auto args = std::make_shared<AggArgs>();
  CLI::App* sub = app.add_subcommand(
      "agg", "Pack user records into KPL aggregated Kinesis records (JSON lines).");
  sub->footer(
      "Input lines: {\"partitionKey\": ..., \"explicitHashKey\": ... (optional), \"data\": "
      "base64}.\n"
      "Output lines: {\"partitionKey\", \"explicitHashKey\", \"data\"}: byte-for-byte what the "
      "KPL\n"
      "writes (outer key \"a\" for aggregates, a lone record sent as itself).\n"
      "Use --shards N for an evenly split N-shard stream so each aggregate routes to one shard.\n"
      "Exit 1 if any input record is rejected (each is named on stderr).");
  sub->add_option("input", args->input, "Input file, or - for standard input")->default_val("-");
  sub->add_option("--max-size", args->max_size,
                  "Maximum aggregated record size in bytes (AggregationMaxSize)")
      ->default_val(51200)
      ->check(CLI::Range(static_cast<std::size_t>(64), kLargestMaxRecordSize));
  sub->add_option("--max-count", args->max_count,
                  "Maximum user records per aggregate (AggregationMaxCount)")
      ->default_val(4294967295ULL)
      ->check(CLI::Range(static_cast<std::uint64_t>(1), static_cast<std::uint64_t>(INT64_MAX)));
  sub->add_option("--max-record-size", args->max_record_size,
                  "The stream's maximum record size: partition key + data")
      ->default_val(kDefaultMaxRecordSize)
      ->check(CLI::Range(static_cast<std::size_t>(1024), kLargestMaxRecordSize));
  sub->add_option("--shards", args->shards,
                  "Group records by shard of an evenly split stream with this many shards")
      ->default_val(1)
      ->check(CLI::Range(1u, 100000u));
  return [args] { return run(*args); };
}

}  // namespace shardline::cli
