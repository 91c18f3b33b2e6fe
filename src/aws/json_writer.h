// Internal: a small, fast JSON writer for AWS request bodies (no DOM, no allocation beyond
// the output string). Commas are managed by the writer.
//
//   JsonWriter w;
//   w.begin_object().key("StreamName").string(name).key("Limit").number(100).end_object();
//   std::string body = std::move(w).take();
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shardline::detail {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(256); }
  explicit JsonWriter(std::size_t reserve) { out_.reserve(reserve); }

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view k) {
    comma();
    append_string(k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }
  JsonWriter& string(std::string_view v) {
    comma();
    append_string(v);
    return *this;
  }
  /// A base64 string of `bytes`.
  JsonWriter& base64(std::string_view bytes);
  JsonWriter& number(std::int64_t v) {
    comma();
    out_ += std::to_string(v);
    return *this;
  }
  JsonWriter& boolean(bool v) {
    comma();
    out_ += v ? "true" : "false";
    return *this;
  }
  JsonWriter& null() {
    comma();
    out_ += "null";
    return *this;
  }
  /// Pre-encoded JSON (a number string, a nested document).
  JsonWriter& raw(std::string_view json) {
    comma();
    out_.append(json);
    return *this;
  }

  const std::string& str() const noexcept { return out_; }
  std::string take() && { return std::move(out_); }

  /// Append `s` as a JSON string literal with quotes.
  static void append_escaped(std::string& out, std::string_view s);
  /// Append the JSON escape of one byte below 0x20, '"' or '\\' (\n, \u001f, ...).
  static void append_escape(std::string& out, unsigned char c);

 private:
  JsonWriter& open(char c) {
    comma();
    out_.push_back(c);
    first_ = true;
    return *this;
  }
  JsonWriter& close(char c) {
    out_.push_back(c);
    first_ = false;
    return *this;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  void append_string(std::string_view s) { append_escaped(out_, s); }

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace shardline::detail
