#include "multilang/protocol.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

#include "aws/json_writer.h"
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

// The text around the sub-sequence number changes once per Kinesis record, not per user
// record: rebuild it only then.
void RecordWriter::refresh(const ConsumerRecord& r) {
  if (r.sequence_number != seq_ || middle_.empty()) {
    seq_.assign(r.sequence_number);
    middle_ = R"(,"sequenceNumber":)";
    append_json_string(middle_, r.sequence_number);
    middle_ += R"(,"subSequenceNumber":)";
  }
  if (r.approximate_arrival_timestamp_ms != arrival_ || tail_.empty()) {
    arrival_ = r.approximate_arrival_timestamp_ms;
    tail_ = R"(,"approximateArrivalTimestamp":)";
    if (arrival_ > 0) {
      append_int(tail_, arrival_);
    } else {
      tail_ += "null";
    }
    tail_ += '}';
  }
}

void RecordWriter::append(std::string& out, const ConsumerRecord& r) {
  refresh(r);
  // The usual case, a partition key without anything to escape: size the line exactly and
  // write it with one resize instead of a dozen appends (which were a tenth of the daemon).
  const std::string_view pk = r.partition_key;
  bool plain = true;
  for (char c : pk) plain &= kPlain.plain[static_cast<unsigned char>(c)];
  if (plain) {
    static constexpr std::string_view kHead = R"({"action":"record","data":")";
    static constexpr std::string_view kKey = R"(","partitionKey":")";
    char sub[24];
    const auto sub_end = std::to_chars(sub, sub + sizeof sub, r.sub_sequence_number).ptr;
    const std::size_t sub_len = static_cast<std::size_t>(sub_end - sub);
    const std::size_t b64 = base64_encoded_size(r.data.size());
    const std::size_t old = out.size();
    out.resize(old + kHead.size() + b64 + kKey.size() + pk.size() + 1 + middle_.size() + sub_len +
               tail_.size());
    char* p = out.data() + old;
    auto put = [&p](std::string_view v) {
      std::memcpy(p, v.data(), v.size());
      p += v.size();
    };
    put(kHead);
    // The NUL written after the base64 lands on the next byte, which put(kKey) overwrites.
    p += base64_encode_to(reinterpret_cast<const unsigned char*>(r.data.data()), r.data.size(), p);
    put(kKey);
    put(pk);
    *p++ = '"';
    put(middle_);
    put(std::string_view(sub, sub_len));
    put(tail_);
    return;
  }
  out += R"({"action":"record","data":")";
  base64_append(out, r.data);
  out += R"(","partitionKey":)";
  append_json_string(out, r.partition_key);
  out += middle_;
  append_int(out, r.sub_sequence_number);
  out += tail_;
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
