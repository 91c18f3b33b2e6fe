// File: shardline/aggregation.h
//
// The KPL Aggregated Record format: magic F3 89 9A C2, a proto2 `AggregatedRecord`, and the
// MD5 of the protobuf bytes. The writer produces the KPL's bytes exactly; the reader accepts
// every variant in the wild (KPL, the Python/Node/Go/Java aggregators) and never crashes on
// corrupt input. No I/O; usable alone (a Lambda-style deaggregator needs nothing else).
//
// Writing (records must all route to one shard: the producer keeps one builder per shard):
//
//   shardline::AggregationLimits limits;                     // 51200 bytes, 1 MiB records
//   shardline::AggregateBuilder b(limits);
//   if (b.fits("pk-1", std::nullopt, data.size())) b.add("pk-1", std::nullopt, data);
//   shardline::KinesisRecord out = b.build();                 // then b.clear()
//
// Reading:
//
//   shardline::Deaggregator d;                                // optional shard range filter
//   std::vector<shardline::UserRecordView> recs;               // views into `blob`
//   shardline::DecodeSummary s = d.decode({blob, outer_pk, outer_ehk}, recs);
//   if (s.kind == shardline::BlobKind::kCorruptAggregate) log(s.detail);  // passed through raw
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardline/hash_key.h"
#include "shardline/status.h"

namespace shardline {

/// The 4 magic bytes that start every aggregated record.
inline constexpr std::string_view kAggregationMagic{"\xF3\x89\x9A\xC2", 4};
/// Magic + MD5 trailer.
inline constexpr std::size_t kAggregationOverhead = 20;
/// Kinesis' default maximum record size (partition key + data): 1 MiB.
inline constexpr std::size_t kDefaultMaxRecordSize = 1048576;
/// The largest maximum record size a stream can have (UpdateMaxRecordSize): 10 MiB.
inline constexpr std::size_t kLargestMaxRecordSize = 10485760;

/// A Kinesis record ready for PutRecords.
struct KinesisRecord {
  std::string partition_key;
  std::string explicit_hash_key;  // decimal; always set by the builder
  std::string data;
};

/// Checks the caller's part of a user record against the Kinesis rules: partition key of 1..256
/// characters (UTF-16 code units, as the KPL counts them) in valid UTF-8; explicit hash key,
/// when given, a strict decimal in [0, 2^128-1]; len(partition key) + data size <=
/// `max_record_size`. Returns the record's hash key, or kInvalidArgument naming the rule.
Result<HashKey> validate_user_record(std::string_view partition_key,
                                     std::optional<std::string_view> explicit_hash_key,
                                     std::size_t data_size,
                                     std::size_t max_record_size = kDefaultMaxRecordSize);
/// The same checks without computing the hash key of a record that has no explicit one (the
/// caller hashes later, e.g. many partition keys at once); returns the explicit key, if any.
Result<std::optional<HashKey>> check_user_record(
    std::string_view partition_key, std::optional<std::string_view> explicit_hash_key,
    std::size_t data_size, std::size_t max_record_size = kDefaultMaxRecordSize);

struct AggregationLimits {
  /// Maximum aggregated data size (magic + protobuf + MD5): AggregationMaxSize, 64..10 MiB.
  std::size_t max_size = 51200;
  /// Maximum user records per aggregate: AggregationMaxCount.
  std::uint64_t max_count = 4294967295ULL;
  /// The stream's maximum record size (partition key + data), 1 MiB unless raised.
  std::size_t max_record_size = kDefaultMaxRecordSize;
};

/// Builds one Kinesis record from user records that route to the same shard.
///
/// Sizes are exact and incremental: size() is always the byte count build() will produce, so
/// an aggregate never exceeds the limits and never needs trimming. add() encodes the record at
/// once (the builder copies the bytes), except for the first record's partition key and data,
/// which it keeps as views: those must stay alive until build() or clear().
/// Not thread-safe (one builder per shard, owned by one thread).
class AggregateBuilder {
 public:
  explicit AggregateBuilder(AggregationLimits limits = {});

  /// True if a record with these parts can join: with it, the aggregate stays within
  /// max_count, max_size and (with the outer "a" key) max_record_size. Always true for an
  /// empty builder: a lone record is sent as plain data (validate it first).
  bool fits(std::string_view partition_key, const std::optional<HashKey>& explicit_hash_key,
            std::size_t data_size) const;

  /// Add a record. Precondition: fits(...) for a non-empty builder. `hash_key` is the record's
  /// routing key (its EHK, or MD5 of the partition key); pass it to avoid recomputing.
  void add(std::string_view partition_key, const std::optional<HashKey>& explicit_hash_key,
           std::string_view data, const HashKey& hash_key);
  /// Convenience: computes the hash key.
  void add(std::string_view partition_key, const std::optional<HashKey>& explicit_hash_key,
           std::string_view data);
  /// fits() and add() with one key lookup: adds the record and returns true if it fits (always
  /// for an empty builder); returns false and leaves the builder unchanged if it does not.
  bool try_add(std::string_view partition_key, const std::optional<HashKey>& explicit_hash_key,
               std::string_view data, const HashKey& hash_key);

  std::size_t count() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  /// The exact size of build().data.
  std::size_t size() const noexcept;
  /// The size of the aggregated form (magic + protobuf + MD5), even for a single record.
  std::size_t aggregated_size() const noexcept { return kAggregationOverhead + proto_size_; }

  /// The Kinesis record, byte for byte as the KPL writes it. One record: its own data,
  /// partition key and hash key (plain, not aggregated). Several: partition key "a", explicit
  /// hash key = the first record's hash key, data = magic + AggregatedRecord + MD5.
  /// Precondition: !empty(). The builder is unchanged; call clear() to reuse it.
  /// With digest = false an aggregate's 16-byte MD5 trailer is left zero, for
  /// digest_aggregates() to fill later together with others (much faster in bulk).
  KinesisRecord build(bool digest = true) const;
  /// Serialize only the aggregated data (also for a single record), appending to `out`.
  void serialize_aggregate(std::string& out, bool digest = true) const;
  /// Fill the MD5 trailer of aggregates built with digest = false (each element: the whole
  /// aggregated data, magic to trailer), hashing them side by side where the CPU allows.
  static void digest_aggregates(std::span<std::string* const> aggregates);

  void clear() noexcept;

 private:
  // The first record, which build() sends as itself when it is alone.
  struct First {
    std::string_view partition_key;
    std::string_view data;
    HashKey hash_key;
  };
  // A partition key's bytes inside pk_buf_.
  struct KeySpan {
    std::uint32_t offset;
    std::uint32_t size;
  };
  // Where a record's keys are (or would go) in the tables, and what the record adds.
  struct Placement {
    std::uint64_t pk_hash = 0, ehk_hash = 0;
    std::size_t pk_slot = 0, ehk_slot = 0;
    std::int64_t pk_found = -1, ehk_found = -1;  // table positions, -1: new key
    std::size_t pk_index = 0;                    // after insertion
    std::int64_t ehk_index = -1;                 // -1: no explicit hash key
    char digits[40];                             // a new explicit hash key in decimal
    std::size_t digits_len = 0;
    std::size_t record_inner = 0;  // the Record message's length
    std::size_t record_size = 0;   // with its tag and length
    std::size_t added = 0;         // bytes the aggregate grows by
  };
  Placement place(std::string_view partition_key, const std::optional<HashKey>& explicit_hash_key,
                  std::size_t data_size) const noexcept;
  bool room_for(const Placement& p) const noexcept;
  std::string_view pk_at(std::size_t i) const noexcept {
    return std::string_view(pk_buf_.data() + pk_table_[i].offset, pk_table_[i].size);
  }

  AggregationLimits limits_;
  std::size_t count_ = 0;
  First first_;
  // Open-addressing index from a key's hash to its table position. It keeps its memory across
  // clear() (a generation stamp empties it in O(1)), so adding a record allocates nothing.
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t index = 0;
    std::uint32_t generation = 0;
  };
  bool insert(std::string_view partition_key, const std::optional<HashKey>& explicit_hash_key,
              std::string_view data, const HashKey& hash_key, bool check_fit);
  // Position of a key in its table, or -1; `slot` receives where it is or would go.
  std::int64_t find_pk(std::string_view pk, std::uint64_t hash, std::size_t& slot) const noexcept;
  std::int64_t find_ehk(const HashKey& k, std::uint64_t hash, std::size_t& slot) const noexcept;
  void grow_index(std::vector<Slot>& index);

  // The encoded protobuf, kept in two parts because the tables come first in the message:
  // pk_buf_ holds the partition_key_table fields, rec_buf_ the records fields, each appended as
  // records are added (the data is copied while it is still in cache). Both keep their
  // capacity across clear(): one aggregate's worth per builder.
  std::string pk_buf_;
  std::string rec_buf_;
  std::vector<KeySpan> pk_table_;
  std::vector<std::string> ehk_table_;  // canonical decimal strings
  std::vector<HashKey> ehk_keys_;       // the same keys as integers
  std::vector<Slot> pk_index_;          // capacity: a power of two
  std::vector<Slot> ehk_index_;
  std::uint32_t generation_ = 1;
  std::size_t proto_size_ = 0;
};

/// A Kinesis record as the reader receives it.
struct KinesisRecordView {
  std::string_view data;
  std::string_view partition_key;
  std::optional<std::string_view> explicit_hash_key;
};

/// One user record. Views point into the decoded blob (or the outer record for pass-through).
struct UserRecordView {
  std::string_view partition_key;
  std::optional<std::string_view> explicit_hash_key;  // absent when the record had none
  std::string_view data;
  std::uint64_t sub_sequence_number = 0;  // index inside the aggregate; 0 for plain records
  bool aggregated = false;
};

/// How a blob was read.
enum class BlobKind : std::uint8_t {
  kPlain,             // no magic (or too short): a normal record, passed through
  kAggregated,        // a valid aggregate: its user records were emitted
  kInvalidAggregate,  // magic present but MD5 or protobuf parse failed (the KCL treats it as
                      // plain): passed through raw
  kCorruptAggregate,  // MD5 and protobuf fine but a required field is missing or a key index
                      // is out of range: passed through raw, and this is DATA LOSS
};

struct DecodeSummary {
  BlobKind kind = BlobKind::kPlain;
  /// Static text saying why a blob was not read as an aggregate ("md5 mismatch", ...).
  std::string_view detail;
  /// User records in the aggregate (0 for plain).
  std::size_t user_records = 0;
  /// User records dropped by the shard-range filter.
  std::size_t filtered_out = 0;
  /// kDataLoss for kCorruptAggregate, else OK.
  Status status() const;
};

struct DeaggregateOptions {
  /// Keep only user records whose hash key is in this range (the leased shard's range).
  std::optional<HashKeyRange> shard_range;
  /// KCL-exact semantics: drop the whole aggregate if any user record is outside
  /// shard_range (the KCL's AggregatorUtil), and treat a missing required field as a
  /// protobuf parse failure (plain pass-through) as Java's parser does.
  bool kcl_exact = false;
};

namespace detail {
struct RecordSpan {  // one parsed Record message, before its indices are resolved
  std::uint64_t pk_index;
  std::uint64_t ehk_index;
  std::string_view data;
  bool has_pk, has_ehk, has_data;
};
}  // namespace detail

/// Reads Kinesis records. Keeps scratch space between calls, so decoding allocates nothing
/// in steady state. Not thread-safe; use one per thread.
class Deaggregator {
 public:
  explicit Deaggregator(DeaggregateOptions options = {});

  /// Decode one Kinesis record and append its user records to `out`. Never fails: anything
  /// that is not a valid aggregate is appended as one raw record (see BlobKind).
  DecodeSummary decode(const KinesisRecordView& record, std::vector<UserRecordView>& out);

  /// Optional, for speed: check the MD5 trailers of the aggregates among `datas` together
  /// (side by side where the CPU allows). decode() calls that follow for the same buffers, in
  /// the same order (records may be skipped), reuse the results; others digest as usual. The
  /// results hold until the next predigest(); the buffers must not change in between.
  void predigest(std::span<const std::string_view> datas);

  const DeaggregateOptions& options() const noexcept { return options_; }

 private:
  DeaggregateOptions options_;
  bool filter_ = false;  // a shard range that can exclude keys
  static constexpr std::uint8_t kUnknown = 0, kIn = 1, kOut = 2;
  std::vector<std::uint8_t> pk_in_range_;  // per key-table entry, for the aggregate at hand
  std::vector<std::uint8_t> ehk_in_range_;
  std::vector<std::string_view> pk_table_;
  std::vector<std::string_view> ehk_table_;
  std::vector<detail::RecordSpan> records_;
  struct Predigested {
    const char* data;
    std::size_t size;
    bool md5_ok;
  };
  std::vector<Predigested> predigested_;
  std::size_t predigest_next_ = 0;
  std::vector<std::string_view> digest_in_;
  std::vector<std::array<unsigned char, 16>> digest_out_;  // MD5 digests
};

/// True when `data` is an aggregate by the KCL's rule: magic, more than 16 bytes after it,
/// MD5 matches and the protobuf parses.
bool is_aggregated(std::string_view data);

}  // namespace shardline
