// Buffered line input and output for the CLI: big reads, no per-line allocation, and the
// padding simdjson needs after each line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardline/consumer.h"
#include "shardline/result.h"

namespace shardline::cli {

/// Bytes guaranteed readable after every line returned by LineReader (simdjson's padding).
inline constexpr std::size_t kLinePadding = 64;

class LineReader {
 public:
  /// "-" or "" reads standard input.
  static Result<std::unique_ptr<LineReader>> open(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// The next line without its "\n" or "\r\n". The view (and kLinePadding readable bytes after
  /// it) stays valid until the next call. False at end of input or on error (see status()).
  bool next(std::string_view& line);
  /// 1-based number of the line last returned.
  std::uint64_t line_number() const noexcept { return line_no_; }
  const Status& status() const noexcept { return status_; }

 private:
  LineReader(int fd, bool owned, std::string name);
  bool fill();

  int fd_;
  bool owned_;
  std::string name_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0;    // usable bytes (allocation is cap_ + kLinePadding)
  std::size_t begin_ = 0;  // start of unread data
  std::size_t end_ = 0;    // end of valid data
  bool eof_ = false;
  std::uint64_t line_no_ = 0;
  Status status_;
};

/// Accumulates output and writes it in large chunks.
class Output {
 public:
  explicit Output(int fd = 1) : fd_(fd) { buf_.reserve(kFlushAt + (1 << 16)); }
  ~Output() { (void)flush(); }
  std::string& buf() noexcept { return buf_; }
  /// Write out if the buffer is large. Call after each completed line.
  void line_done() {
    if (buf_.size() >= kFlushAt) (void)flush();
  }
  Status flush();
  bool failed() const noexcept { return failed_; }

 private:
  static constexpr std::size_t kFlushAt = 1 << 20;
  int fd_;
  std::string buf_;
  bool failed_ = false;
};

/// Append `s` as a JSON string literal (quotes included). Control characters are escaped and
/// invalid UTF-8 bytes become U+FFFD, so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

/// Append an unsigned decimal.
void append_uint(std::string& out, std::uint64_t v);

/// Extra fields of a user-record line (the `tail` and `consume` commands add the shard).
struct RecordContext {
  bool partition_key_known = true;  // false: a plain record whose partition key is unknown
  const std::string_view* sequence_number = nullptr;
  const std::string_view* shard_id = nullptr;
  const std::int64_t* arrival_ms = nullptr;
};

/// Append one user-record JSON line (with its newline): partitionKey, explicitHashKey (or
/// null), data (base64), subSequenceNumber, aggregated, then sequenceNumber, shardId and
/// approximateArrivalTimestamp when given.
void append_record_json(std::string& out, std::string_view partition_key,
                        const std::optional<std::string_view>& explicit_hash_key,
                        std::string_view data, std::uint64_t sub_sequence_number, bool aggregated,
                        const RecordContext& ctx);

/// Append `"shards":[{"shardId","records","checkpoint","checkpointSubSequenceNumber"},...]`, the
/// per-shard part of the `consume` and `multilang` exit summaries.
void append_shards_json(std::string& out, const std::vector<ShardStatus>& shards);

/// Write `text` to the file at `path` (created or truncated), e.g. a --metrics-file. On failure
/// prints "shardline: error: cannot write 'PATH': REASON" and returns false.
bool write_text_file(const std::string& path, std::string_view text);

/// Rate-limited warnings on stderr: the first `limit` are printed, the rest only counted.
class Warnings {
 public:
  explicit Warnings(std::size_t limit = 20) : limit_(limit) {}
  void warn(std::uint64_t line, std::string_view message);
  std::size_t count() const noexcept { return count_; }
  /// Print "N more warnings not shown" if any were suppressed.
  void finish() const;

 private:
  std::size_t limit_;
  std::size_t count_ = 0;
};

}  // namespace shardline::cli
