// Internal: the few protobuf wire-format primitives the aggregation format needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace shardline::detail {

inline constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

/// Writes a varint at p; returns the byte after it.
inline char* put_varint(char* p, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *p++ = static_cast<char>(static_cast<unsigned char>(v) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline char* put_bytes_field(char* p, unsigned char tag, std::string_view bytes) noexcept {
  *p++ = static_cast<char>(tag);
  p = put_varint(p, bytes.size());
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return p + bytes.size();
}

/// Size of a length-delimited field with a one-byte tag.
inline constexpr std::size_t bytes_field_size(std::size_t len) noexcept {
  return 1 + varint_size(len) + len;
}

/// A bounds-checked reader over a protobuf message.
class WireReader {
 public:
  explicit WireReader(std::string_view buf) noexcept
      : p_(reinterpret_cast<const unsigned char*>(buf.data())), end_(p_ + buf.size()) {}

  bool done() const noexcept { return p_ == end_; }
  /// The next byte to read.
  const unsigned char* position() const noexcept { return p_; }

  /// Up to 10 bytes; false on truncation or an over-long varint.
  bool varint(std::uint64_t& out) noexcept {
    // Tags, lengths under 128 and small indexes: one byte, the common case by far.
    if (p_ != end_ && *p_ < 0x80) [[likely]] {
      out = *p_++;
      return true;
    }
    std::uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {  // 10 bytes; bits past 64 are dropped
      if (p_ == end_) return false;
      const unsigned char b = *p_++;
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        out = v;
        return true;
      }
    }
    return false;
  }

  /// A tag: field number >= 1 and fits in 29 bits, wire type in [0, 5].
  bool tag(std::uint32_t& field, std::uint32_t& wire) noexcept {
    std::uint64_t t;
    if (!varint(t) || t > 0xFFFFFFFFULL) return false;
    field = static_cast<std::uint32_t>(t >> 3);
    wire = static_cast<std::uint32_t>(t & 7);
    return field != 0 && wire <= 5;
  }

  /// A length-delimited payload (length <= INT32_MAX and within the buffer).
  bool bytes(std::string_view& out) noexcept {
    std::uint64_t n;
    if (!varint(n) || n > 0x7FFFFFFFULL || n > static_cast<std::uint64_t>(end_ - p_)) return false;
    out = std::string_view(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return true;
  }

  bool skip(std::size_t n) noexcept {
    if (n > static_cast<std::size_t>(end_ - p_)) return false;
    p_ += n;
    return true;
  }

  /// Skip one field's payload of the given wire type, as protobuf parsers skip unknown
  /// fields. Groups (3) are skipped to their matching end (4); a stray end-group fails.
  bool skip_field(std::uint32_t field, std::uint32_t wire, int depth = 0) noexcept {
    switch (wire) {
      case 0: {
        std::uint64_t v;
        return varint(v);
      }
      case 1:
        return skip(8);
      case 2: {
        std::string_view s;
        return bytes(s);
      }
      case 5:
        return skip(4);
      case 3: {
        if (depth >= 64) return false;
        while (true) {
          std::uint32_t f, w;
          if (!tag(f, w)) return false;
          if (w == 4) return f == field;
          if (!skip_field(f, w, depth + 1)) return false;
        }
      }
      default:
        return false;  // 4 (end group without start), 6, 7
    }
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

}  // namespace shardline::detail
