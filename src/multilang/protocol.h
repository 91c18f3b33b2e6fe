// Internal: the KCL multi-language protocol's messages, as the Java MultiLangDaemon writes
// them (ML/messages/*.java serialized by Jackson: "action" first, nulls written as null, one
// JSON object per line) and reads them (ML/GetNextMessageTask.java: a line that is not a known
// message is skipped).
//
// Daemon -> child (each appended with its '\n'):
//   {"action":"initialize","shardId":S,"sequenceNumber":S,"subSequenceNumber":N}
//   {"action":"processRecords","records":[R,...],"millisBehindLatest":N}
//     R = {"action":"record","data":base64,"partitionKey":S,"sequenceNumber":S,
//          "subSequenceNumber":N,"approximateArrivalTimestamp":N|null}
//   {"action":"leaseLost"}  {"action":"shardEnded"}  {"action":"shutdownRequested"}
//   {"action":"checkpoint","sequenceNumber":S|null,"subSequenceNumber":N|null,"error":S|null}
// Child -> daemon:
//   {"action":"status","responseFor":A}
//   {"action":"checkpoint","sequenceNumber":S|null,"subSequenceNumber":N|null}
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "shardline/consumer.h"

namespace shardline::detail::multilang {

/// `s` as a JSON string literal. Bytes that are not UTF-8 become U+FFFD, as the Java daemon's
/// String decoding would make them; control characters are escaped.
void append_json_string(std::string& out, std::string_view s);

void append_initialize(std::string& out, std::string_view shard_id,
                       const ExtendedSequenceNumber& position);

/// `{"action":"processRecords","records":[`: then append_record() per record, separated by
/// ',', then append_process_records_end().
void append_process_records_begin(std::string& out);
/// One record object (no separator).
void append_record(std::string& out, const ConsumerRecord& record);

/// append_record() for a whole batch: the user records of one KPL aggregate share their
/// sequence number and arrival time, so the text around the sub-sequence number is built once
/// per aggregate instead of once per record. Same output.
class RecordWriter {
 public:
  /// Bytes past the end of a record that write() may store (and later overwrite): it copies
  /// whole 32-byte blocks and the base64 encoder writes a NUL.
  static constexpr std::size_t kSlack = 64;
  /// An upper bound of what write() produces for `record` (its keys escaped at their worst).
  static std::size_t max_size(const ConsumerRecord& record) noexcept {
    // The fixed text is under 200 bytes; a key escapes to at most 6 bytes per byte.
    return 256 + base64_encoded_size(record.data.size()) +
           6 * (record.partition_key.size() + record.sequence_number.size());
  }
  /// Writes `record`'s object at `p` and returns its end. `p` must have room for
  /// max_size(record) + kSlack bytes.
  char* write(char* p, const ConsumerRecord& record);
  /// write() for consecutive records of one batch, each after a ',' unless it is the batch's
  /// first (`written`: the batch's records so far, counted on), for as long as the room before
  /// `limit` holds the next one's 1 + max_size() + kSlack bytes. Returns how many it wrote;
  /// `p` moves past them. With AVX-512 VBMI the base64 encoder's constants stay in registers
  /// for all of them.
  std::size_t write_records(char*& p, const char* limit, std::span<const ConsumerRecord> records,
                            std::size_t& written);
  /// write() at the end of `out`.
  void append(std::string& out, const ConsumerRecord& record);
  /// Before the records of a new batch: within one batch, records whose sequence number is the
  /// same string (the user records of an aggregate) are recognised by its address.
  void begin_batch() noexcept { seq_data_ = nullptr; }

 private:
  void refresh(const ConsumerRecord& record);
  char* begin_record(char* p, const ConsumerRecord& record);
  char* end_record(char* p, const ConsumerRecord& record);
#if defined(__x86_64__)
  std::size_t write_records_vbmi(char*& p, const char* limit,
                                 std::span<const ConsumerRecord> records, std::size_t& written);
#endif
  std::string seq_;                 // the sequence number `middle_` and `tail_` were built for
  const char* seq_data_ = nullptr;  // where the last record's sequence number was (this batch)
  std::int64_t arrival_ = -1;
  // ,"sequenceNumber":"S","subSequenceNumber":  and  ,"approximateArrivalTimestamp":T}
  // Each is kept in a buffer padded to whole 32-byte blocks, which write() copies whole.
  std::string middle_, tail_;
  std::size_t middle_size_ = 0, tail_size_ = 0;
};
/// `],"millisBehindLatest":N}` and the newline.
void append_process_records_end(std::string& out, std::int64_t millis_behind_latest);

/// The objects of a records array as written above (the text between '[' and ']', objects
/// separated by ','), each one's text; strings are skipped with their escapes, so keys that
/// contain braces, quotes or commas do not confuse it. For the replay after a child restart,
/// which needs the records that follow a checkpoint; the batches keep only their text.
std::vector<std::string_view> split_record_objects(std::string_view records);
/// The sequenceNumber and subSequenceNumber of one record object written above; nullopt when
/// the text is not such an object.
std::optional<ExtendedSequenceNumber> record_position(std::string_view record);

/// `{"action":"<action>"}` and the newline (leaseLost, shardEnded, shutdownRequested).
void append_action(std::string& out, std::string_view action);

/// The answer to a checkpoint request: the request's own sequenceNumber and subSequenceNumber
/// (null when it had none), and the KCL exception class name or null.
void append_checkpoint_reply(std::string& out, const std::optional<std::string>& sequence_number,
                             const std::optional<std::int64_t>& sub_sequence_number,
                             std::string_view error);

/// One line of the child's stdout.
struct ChildMessage {
  enum class Kind { kStatus, kCheckpoint, kSkip };
  Kind kind = Kind::kSkip;
  /// kStatus: the action acknowledged ("" when the field is missing or not a string).
  std::string response_for;
  /// kCheckpoint: null (absent) means "everything delivered" / "sub-sequence 0".
  std::optional<std::string> sequence_number;
  std::optional<std::int64_t> sub_sequence_number;
  /// kCheckpoint: a field of the wrong type (answered with IllegalArgumentException).
  std::string invalid;
  /// kSkip: why (for the log).
  std::string why;
};

/// Parses one line (without its newline; a trailing '\r' is ignored). Never fails: anything
/// that is not a status or checkpoint message is kSkip.
ChildMessage parse_child_line(std::string_view line);

}  // namespace shardline::detail::multilang
