// Reading record objects from JSON lines with simdjson (on-demand, no DOM).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace shardline::cli {

/// Fields of one record line. Views are valid until the parser parses the next line.
/// Accepted spellings: `data`/`Data`, `partitionKey`/`PartitionKey`,
/// `explicitHashKey`/`ExplicitHashKey`, `sequenceNumber`/`SequenceNumber`, at the top level or
/// inside a Lambda event record's `kinesis` object. JSON null counts as absent.
struct RecordFields {
  std::optional<std::string_view> data;
  std::optional<std::string_view> partition_key;
  std::optional<std::string_view> explicit_hash_key;
  std::optional<std::string_view> sequence_number;
};

/// Parses record lines with simdjson's on-demand API. The simdjson types stay inside
/// record_json.cc, the one file compiled with the SIMD kernel's flags.
class RecordLineParser {
 public:
  RecordLineParser();
  ~RecordLineParser();
  RecordLineParser(const RecordLineParser&) = delete;
  RecordLineParser& operator=(const RecordLineParser&) = delete;

  /// Parses `line` (with at least 64 readable bytes after it, see kLinePadding). On error,
  /// returns false and sets `error` to a one-line reason.
  bool parse(std::string_view line, RecordFields& out, std::string& error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardline::cli
