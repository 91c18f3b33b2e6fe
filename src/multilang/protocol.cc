#include "multilang/protocol.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

#include "aws/json_writer.h"
#include "core/base64_vbmi.h"
#include "core/digest.h"

namespace shardline::detail::multilang {

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (a byte >= 0x80), 0 if malformed.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

}  // namespace

namespace {
// Bytes that a JSON string can hold as they are: printable ASCII but '"' and '\\'.
struct PlainTable {
  bool plain[256] = {};
  constexpr PlainTable() {
    for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  }
};
constexpr PlainTable kPlain;
}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (kPlain.plain[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence_length(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    if (c >= 0x80) {
      out += "\\ufffd";  // a byte that is not part of well-formed UTF-8
    } else {
      JsonWriter::append_escape(out, c);
    }
    ++i;
    run = i;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void append_initialize(std::string& out, std::string_view shard_id,
                       const ExtendedSequenceNumber& position) {
  out += R"({"action":"initialize","shardId":)";
  append_json_string(out, shard_id);
  out += R"(,"sequenceNumber":)";
  append_json_string(out, position.sequence_number);
  out += R"(,"subSequenceNumber":)";
  append_int(out, position.sub_sequence_number);
  out += "}\n";
}

void append_process_records_begin(std::string& out) {
  out += R"({"action":"processRecords","records":[)";
}

void append_record(std::string& out, const ConsumerRecord& r) {
  out += R"({"action":"record","data":")";
  base64_append(out, r.data);
  out += R"(","partitionKey":)";
  append_json_string(out, r.partition_key);
  out += R"(,"sequenceNumber":)";
  append_json_string(out, r.sequence_number);
  out += R"(,"subSequenceNumber":)";
  append_int(out, r.sub_sequence_number);
  out += R"(,"approximateArrivalTimestamp":)";
  if (r.approximate_arrival_timestamp_ms > 0) {
    append_int(out, r.approximate_arrival_timestamp_ms);
  } else {
    out += "null";
  }
  out += '}';
}

namespace {

// Copies `n` bytes in whole 32-byte blocks: `src` and `dst` must both have room for n rounded
// up to 32. A few fixed-size vector moves instead of a library call per piece of a record.
inline char* copy_blocks(char* dst, const char* src, std::size_t n) noexcept {
  for (std::size_t k = 0; k < n; k += 32) std::memcpy(dst + k, src + k, 32);
  return dst + n;
}

// `text` in `buf` padded with zeros to whole 32-byte blocks; returns text's size.
std::size_t set_padded(std::string& buf, const std::string& text) {
  buf = text;
  buf.resize((text.size() + 31) / 32 * 32 + 32, '\0');
  return text.size();
}

}  // namespace

// The text around the sub-sequence number changes once per Kinesis record, not per user
// record: rebuild it only then.
void RecordWriter::refresh(const ConsumerRecord& r) {
  const bool same_string =
      r.sequence_number.data() == seq_data_ && r.sequence_number.size() == seq_.size();
  seq_data_ = r.sequence_number.data();
  if (!same_string && (r.sequence_number != seq_ || middle_.empty())) {
    seq_.assign(r.sequence_number);
    std::string m = R"(,"sequenceNumber":)";
    append_json_string(m, r.sequence_number);
    m += R"(,"subSequenceNumber":)";
    middle_size_ = set_padded(middle_, m);
  }
  if (r.approximate_arrival_timestamp_ms != arrival_ || tail_.empty()) {
    arrival_ = r.approximate_arrival_timestamp_ms;
    std::string t = R"(,"approximateArrivalTimestamp":)";
    if (arrival_ > 0) {
      append_int(t, arrival_);
    } else {
      t += "null";
    }
    t += '}';
    tail_size_ = set_padded(tail_, t);
  }
}

// A record's object is begin_record(), the base64 of its data, end_record(). These two are
// inlined into write() and into write_records_vbmi(), whose AVX-512 encoder can only be
// inlined into a function compiled for it.
inline char* RecordWriter::begin_record(char* p, const ConsumerRecord& r) {
  // The text around the sub-sequence number is rebuilt only when the Kinesis record changes.
  if (r.sequence_number.data() != seq_data_ || r.sequence_number.size() != seq_.size() ||
      r.approximate_arrival_timestamp_ms != arrival_) {
    refresh(r);
  }
  static constexpr std::string_view kHead = R"({"action":"record","data":")";
  std::memcpy(p, kHead.data(), kHead.size());
  return p + kHead.size();
}

inline char* RecordWriter::end_record(char* p, const ConsumerRecord& r) {
  static constexpr std::string_view kKey = R"(","partitionKey":")";
  std::memcpy(p, kKey.data(), kKey.size());
  p += kKey.size();
  // The usual partition key has nothing to escape: copied while it is checked.
  const std::string_view pk = r.partition_key;
  bool plain = true;
  char* q = p;
  for (char c : pk) {
    *q++ = c;
    plain &= kPlain.plain[static_cast<unsigned char>(c)];
  }
  if (plain) {
    p = q;
    *p++ = '"';
  } else {
    thread_local std::string escaped;
    escaped.clear();
    append_json_string(escaped, pk);
    std::memcpy(p - 1, escaped.data(), escaped.size());  // over the opening quote
    p += escaped.size() - 1;
  }
  p = copy_blocks(p, middle_.data(), middle_size_);
  p = std::to_chars(p, p + 24, r.sub_sequence_number).ptr;
  return copy_blocks(p, tail_.data(), tail_size_);
}

char* RecordWriter::write(char* p, const ConsumerRecord& r) {
  p = begin_record(p, r);
  // The NUL written after the base64 lands on the next byte, which end_record() overwrites.
  p += base64_encode_to(reinterpret_cast<const unsigned char*>(r.data.data()), r.data.size(), p);
  return end_record(p, r);
}

std::size_t RecordWriter::write_records(char*& p, const char* limit,
                                        std::span<const ConsumerRecord> records,
                                        std::size_t& written) {
#if defined(__x86_64__)
  if (base64_vbmi_available()) return write_records_vbmi(p, limit, records, written);
#endif
  std::size_t i = 0;
  for (; i < records.size(); ++i) {
    if (static_cast<std::size_t>(limit - p) < 1 + max_size(records[i]) + kSlack) break;
    if (written++ != 0) *p++ = ',';
    p = write(p, records[i]);
  }
  return i;
}

#if defined(__x86_64__)
// write_records() with the encoder's constants in registers and its code inlined.
__attribute__((target(SL_BASE64_VBMI_TARGET))) std::size_t RecordWriter::write_records_vbmi(
    char*& p, const char* limit, std::span<const ConsumerRecord> records, std::size_t& written) {
  const Base64VbmiEncoder encoder;
  std::size_t i = 0;
  for (; i < records.size(); ++i) {
    const ConsumerRecord& r = records[i];
    if (static_cast<std::size_t>(limit - p) < 1 + max_size(r) + kSlack) break;
    if (written++ != 0) *p++ = ',';
    p = begin_record(p, r);
    p += encoder.encode_to(reinterpret_cast<const unsigned char*>(r.data.data()), r.data.size(), p);
    p = end_record(p, r);
  }
  return i;
}
#endif

void RecordWriter::append(std::string& out, const ConsumerRecord& r) {
  begin_batch();  // `r` may be anywhere, even where an earlier record's string was
  const std::size_t old = out.size();
  out.resize(old + max_size(r) + kSlack);
  out.resize(static_cast<std::size_t>(write(out.data() + old, r) - out.data()));
}

void append_process_records_end(std::string& out, std::int64_t millis_behind_latest) {
  out += R"(],"millisBehindLatest":)";
  append_int(out, millis_behind_latest);
  out += "}\n";
}

void append_action(std::string& out, std::string_view action) {
  out += R"({"action":)";
  append_json_string(out, action);
  out += "}\n";
}

void append_checkpoint_reply(std::string& out, const std::optional<std::string>& sequence_number,
                             const std::optional<std::int64_t>& sub_sequence_number,
                             std::string_view error) {
  out += R"({"action":"checkpoint","sequenceNumber":)";
  if (sequence_number) {
    append_json_string(out, *sequence_number);
  } else {
    out += "null";
  }
  out += R"(,"subSequenceNumber":)";
  if (sub_sequence_number) {
    append_int(out, *sub_sequence_number);
  } else {
    out += "null";
  }
  out += R"(,"error":)";
  if (error.empty()) {
    out += "null";
  } else {
    append_json_string(out, error);
  }
  out += "}\n";
}

std::vector<std::string_view> split_record_objects(std::string_view records) {
  std::vector<std::string_view> out;
  int depth = 0;
  bool in_string = false;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const char c = records[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (depth++ == 0) begin = i;
    } else if ((c == '}' || c == ']') && depth > 0 && --depth == 0) {
      out.push_back(records.substr(begin, i + 1 - begin));
    }
  }
  return out;
}

std::optional<ExtendedSequenceNumber> record_position(std::string_view record) {
  const nlohmann::json j = nlohmann::json::parse(record, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto seq = j.find("sequenceNumber");
  const auto sub = j.find("subSequenceNumber");
  if (seq == j.end() || !seq->is_string() || sub == j.end() || !sub->is_number_integer()) {
    return std::nullopt;
  }
  return ExtendedSequenceNumber{seq->get<std::string>(), sub->get<std::int64_t>()};
}

ChildMessage parse_child_line(std::string_view line) {
  ChildMessage m;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t first = 0;
  while (first < line.size() && (line[first] == ' ' || line[first] == '\t')) ++first;
  if (first == line.size()) {
    m.why = "empty line";
    return m;
  }
  // Only a line that looks like an object is parsed: stray output is usually plain text.
  if (line[first] != '{') {
    m.why = "not a JSON object";
    return m;
  }
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    m.why = "not valid JSON";
    return m;
  }
  if (!j.is_object()) {
    m.why = "not a JSON object";
    return m;
  }
  const auto action = j.find("action");
  if (action == j.end() || !action->is_string()) {
    m.why = "no \"action\"";
    return m;
  }
  const std::string& name = action->get_ref<const std::string&>();
  if (name == "status") {
    m.kind = ChildMessage::Kind::kStatus;
    const auto rf = j.find("responseFor");
    if (rf != j.end() && rf->is_string()) m.response_for = rf->get<std::string>();
    return m;
  }
  if (name != "checkpoint") {
    m.why = "unknown action '" + name + "'";
    return m;
  }
  m.kind = ChildMessage::Kind::kCheckpoint;
  if (const auto seq = j.find("sequenceNumber"); seq != j.end() && !seq->is_null()) {
    if (seq->is_string()) {
      m.sequence_number = seq->get<std::string>();
    } else if (seq->is_number_unsigned()) {
      m.sequence_number = std::to_string(seq->get<std::uint64_t>());
    } else {
      m.invalid = "sequenceNumber must be a string, got " + seq->dump();
    }
  }
  if (const auto sub = j.find("subSequenceNumber"); sub != j.end() && !sub->is_null()) {
    if (sub->is_number_integer()) {
      m.sub_sequence_number = sub->get<std::int64_t>();
    } else if (sub->is_string()) {
      // Jackson turns a numeric string into the Long field too.
      const std::string& t = sub->get_ref<const std::string&>();
      std::int64_t v = 0;
      const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size()) {
        m.invalid = "subSequenceNumber must be an integer, got " + sub->dump();
      } else {
        m.sub_sequence_number = v;
      }
    } else {
      m.invalid = "subSequenceNumber must be an integer, got " + sub->dump();
    }
  }
  return m;
}

}  // namespace shardline::detail::multilang
