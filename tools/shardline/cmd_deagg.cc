// shardline deagg [FILE|-] [--shard-range START:END] [--kcl-exact]
//
// Input: one Kinesis record per line, either bare base64 of its data or a JSON object with
// `data` (+ optional partitionKey, explicitHashKey, sequenceNumber; Lambda event records and
// the SDK's capitalised names are accepted too). Output: one JSON line per user record.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "core/digest.h"
#include "io.h"
#include "record_json.h"
#include "shardline/aggregation.h"

namespace shardline::cli {

namespace {

struct DeaggArgs {
  std::string input = "-";
  std::string shard_range;
  bool kcl_exact = false;
};

Result<HashKeyRange> parse_range(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    return Status::invalid_argument("--shard-range must be START:END (decimal hash keys), got '" +
                                    text + "'");
  }
  auto start = HashKey::parse_decimal(std::string_view(text).substr(0, colon));
  if (!start.ok()) return std::move(start).status().with_context("--shard-range START");
  auto end = HashKey::parse_decimal(std::string_view(text).substr(colon + 1));
  if (!end.ok()) return std::move(end).status().with_context("--shard-range END");
  if (*end < *start) return Status::invalid_argument("--shard-range: END is below START");
  return HashKeyRange{*start, *end};
}

int run(const DeaggArgs& args) {
  DeaggregateOptions opts;
  opts.kcl_exact = args.kcl_exact;
  if (!args.shard_range.empty()) {
    auto r = parse_range(args.shard_range);
    if (!r.ok()) {
      std::fprintf(stderr, "shardline: error: %s\n", std::string(r.status().message()).c_str());
      return 2;
    }
    opts.shard_range = *r;
  }
  auto reader_or = LineReader::open(args.input);
  if (!reader_or.ok()) {
    std::fprintf(stderr, "shardline: error: %s\n",
                 std::string(reader_or.status().message()).c_str());
    return 1;
  }
  LineReader& reader = **reader_or;

  Deaggregator deagg(opts);
  RecordLineParser parser;
  Output out;
  Warnings warnings;
  std::string blob;
  std::string error;
  std::vector<UserRecordView> users;
  RecordFields fields;
  std::uint64_t unreadable = 0, corrupt = 0, filtered = 0;

  std::string_view line;
  while (reader.next(line)) {
    // Trim surrounding blanks; skip empty lines.
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty()) continue;

    std::string_view b64;
    fields = RecordFields{};
    if (line.front() == '{') {
      if (!parser.parse(line, fields, error)) {
        ++unreadable;
        warnings.warn(reader.line_number(), error + "; line skipped");
        continue;
      }
      if (!fields.data) {
        ++unreadable;
        warnings.warn(reader.line_number(), "no 'data' field; line skipped");
        continue;
      }
      b64 = *fields.data;
    } else {
      b64 = line;
    }
    if (!detail::base64_decode(b64, blob)) {
      ++unreadable;
      warnings.warn(reader.line_number(), "data is not valid base64; line skipped");
      continue;
    }

    users.clear();
    const DecodeSummary sum =
        deagg.decode(KinesisRecordView{blob, fields.partition_key.value_or(std::string_view()),
                                       fields.explicit_hash_key},
                     users);
    if (sum.kind == BlobKind::kInvalidAggregate || sum.kind == BlobKind::kCorruptAggregate) {
      ++corrupt;
      warnings.warn(reader.line_number(),
                    std::string(sum.kind == BlobKind::kCorruptAggregate
                                    ? "corrupt aggregated record (data loss): "
                                    : "invalid aggregated record: ") +
                        std::string(sum.detail) + "; passed through raw");
    }
    filtered += sum.filtered_out;

    std::string& o = out.buf();
    RecordContext ctx;
    ctx.sequence_number = fields.sequence_number ? &*fields.sequence_number : nullptr;
    for (const UserRecordView& u : users) {
      ctx.partition_key_known = u.aggregated || fields.partition_key.has_value();
      append_record_json(o, u.partition_key, u.explicit_hash_key, u.data, u.sub_sequence_number,
                         u.aggregated, ctx);
    }
    out.line_done();
    if (out.failed()) break;
  }
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
  if (filtered > 0) {
    std::fprintf(stderr, "shardline: %llu user records outside --shard-range dropped\n",
                 static_cast<unsigned long long>(filtered));
  }
  if (corrupt > 0) {
    std::fprintf(stderr, "shardline: %llu corrupt aggregated records passed through raw\n",
                 static_cast<unsigned long long>(corrupt));
  }
  if (unreadable > 0) {
    std::fprintf(stderr, "shardline: error: %llu input lines could not be read\n",
                 static_cast<unsigned long long>(unreadable));
    return 1;
  }
  return 0;
}

}  // namespace

Runner add_deagg(CLI::App& app) {
  auto args = std::make_shared<DeaggArgs>();
  CLI::App* sub =
      app.add_subcommand("deagg", "Expand KPL aggregated records into user records (JSON lines).");
  sub->footer(
      "Input lines: bare base64 of a Kinesis record's data, or JSON objects with \"data\" and\n"
      "optional \"partitionKey\", \"explicitHashKey\", \"sequenceNumber\".\n"
      "Output: one JSON line per user record: partitionKey, explicitHashKey (or null), data\n"
      "(base64), subSequenceNumber, aggregated, and sequenceNumber when given.\n"
      "Records that are not valid aggregates pass through whole; corrupt ones are warned about\n"
      "on stderr. Exit 1 if an input line cannot be read at all.");
  sub->add_option("input", args->input, "Input file, or - for standard input")->default_val("-");
  sub->add_option("--shard-range", args->shard_range,
                  "Keep only user records whose hash key is in START:END (inclusive, decimal)");
  sub->add_flag("--kcl-exact", args->kcl_exact,
                "KCL semantics: drop a whole aggregate when one user record is outside "
                "--shard-range");
  return [args] { return run(*args); };
}

}  // namespace shardline::cli
