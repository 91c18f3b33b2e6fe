#include "aws/event_stream.h"

#include <zlib.h>

#include <cstring>

namespace shardline::detail {
namespace {

constexpr std::size_t kPrelude = 12;  // two lengths and the prelude CRC
constexpr std::size_t kMinMessage = kPrelude + 4;

// The big-endian unsigned integer of n bytes at p.
std::uint64_t be(const char* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void put32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

std::uint32_t crc32_of(std::string_view bytes, std::uint32_t crc = 0) noexcept {
  // zlib's crc32 takes a uInt length; messages are at most 16 MiB.
  return static_cast<std::uint32_t>(
      ::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

// The prelude of a message that starts at `p` (12 bytes available): its total length, or an
// error.
Status check_prelude(const char* p, std::size_t& total, std::size_t& headers) {
  total = be(p, 4);
  headers = be(p + 4, 4);
  if (crc32_of(std::string_view(p, 8)) != be(p + 8, 4)) {
    return Status::data_loss("event stream: prelude CRC mismatch");
  }
  if (total < kMinMessage || total > kEventStreamMaxMessage) {
    return Status::data_loss("event stream: message length " + std::to_string(total) +
                             " outside [16, 16 MiB]");
  }
  if (headers > kEventStreamMaxHeaders || headers > total - kMinMessage) {
    return Status::data_loss("event stream: headers length " + std::to_string(headers) +
                             " does not fit the message");
  }
  return Status();
}

Status parse_headers(std::string_view h, EventStreamMessage& out) {
  std::size_t i = 0;
  auto truncated = [] { return Status::data_loss("event stream: truncated header"); };
  while (i < h.size()) {
    const std::size_t name_len = static_cast<unsigned char>(h[i++]);
    if (name_len == 0) return Status::data_loss("event stream: header with an empty name");
    if (h.size() - i < name_len + 1) return truncated();
    std::string name(h.substr(i, name_len));
    i += name_len;
    const int type = static_cast<unsigned char>(h[i++]);
    std::string value;
    auto fixed = [&](std::size_t n) -> bool {
      if (h.size() - i < n) return false;
      const std::uint64_t u = be(h.data() + i, n);
      // Sign-extend the two's-complement integer of n bytes.
      const std::int64_t v = n == 8 ? static_cast<std::int64_t>(u)
                                    : static_cast<std::int64_t>(u << (64 - 8 * n)) >> (64 - 8 * n);
      value = std::to_string(v);
      i += n;
      return true;
    };
    switch (type) {
      case 0:
        value = "true";
        break;
      case 1:
        value = "false";
        break;
      case 2:
        if (!fixed(1)) return truncated();
        break;
      case 3:
        if (!fixed(2)) return truncated();
        break;
      case 4:
        if (!fixed(4)) return truncated();
        break;
      case 5:
      case 8:
        if (!fixed(8)) return truncated();
        break;
      case 6:
      case 7: {
        if (h.size() - i < 2) return truncated();
        const std::size_t n = be(h.data() + i, 2);
        i += 2;
        if (h.size() - i < n) return truncated();
        value.assign(h.substr(i, n));
        i += n;
        break;
      }
      case 9: {
        if (h.size() - i < 16) return truncated();
        static constexpr char kHex[] = "0123456789abcdef";
        for (std::size_t k = 0; k < 16; ++k) {
          const auto b = static_cast<unsigned char>(h[i + k]);
          value.push_back(kHex[b >> 4]);
          value.push_back(kHex[b & 15]);
        }
        i += 16;
        break;
      }
      default:
        return Status::data_loss("event stream: header '" + name + "' has unknown type " +
                                 std::to_string(type));
    }
    out.headers.emplace_back(std::move(name), std::move(value));
  }
  return Status();
}

}  // namespace

std::string_view EventStreamMessage::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

Status decode_event_stream_message(std::string_view bytes, EventStreamMessage& out) {
  out.headers.clear();
  out.payload.clear();
  if (bytes.size() < kPrelude) return Status::data_loss("event stream: truncated prelude");
  std::size_t total = 0;
  std::size_t headers = 0;
  if (Status s = check_prelude(bytes.data(), total, headers); !s.ok()) return s;
  if (bytes.size() != total) {
    return Status::data_loss("event stream: message of " + std::to_string(bytes.size()) +
                             " bytes declares " + std::to_string(total));
  }
  if (crc32_of(bytes.substr(0, total - 4)) != be(bytes.data() + total - 4, 4)) {
    return Status::data_loss("event stream: message CRC mismatch");
  }
  if (Status s = parse_headers(bytes.substr(kPrelude, headers), out); !s.ok()) return s;
  out.payload.assign(bytes.substr(kPrelude + headers, total - kMinMessage - headers));
  return Status();
}

Status EventStreamDecoder::feed(std::string_view bytes, const Sink& sink) {
  if (!error_.ok()) return error_;
  // Whole messages straight from `bytes` while nothing is held; the rest is copied.
  std::string_view in = bytes;
  if (buffered() == 0) {
    buffer_.clear();
    start_ = 0;
  } else {
    buffer_.append(bytes);
    in = std::string_view(buffer_).substr(start_);
  }
  std::size_t used = 0;
  while (in.size() - used >= kPrelude) {
    std::size_t total = 0;
    std::size_t headers = 0;
    if (Status s = check_prelude(in.data() + used, total, headers); !s.ok()) {
      error_ = s;
      return s;
    }
    if (in.size() - used < total) break;
    EventStreamMessage m;
    if (Status s = decode_event_stream_message(in.substr(used, total), m); !s.ok()) {
      error_ = s;
      return s;
    }
    used += total;
    sink(std::move(m));
  }
  if (in.data() == bytes.data()) {
    buffer_.assign(bytes.substr(used));
    start_ = 0;
  } else {
    start_ += used;
    if (start_ == buffer_.size()) {
      buffer_.clear();
      start_ = 0;
    } else if (start_ > buffer_.size() / 2) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
  }
  return Status();
}

std::string encode_event_stream_message(
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view payload) {
  std::string h;
  for (const auto& [name, value] : headers) {
    h.push_back(static_cast<char>(name.size()));
    h += name;
    h.push_back(7);
    h.push_back(static_cast<char>(value.size() >> 8));
    h.push_back(static_cast<char>(value.size()));
    h += value;
  }
  std::string out;
  const auto total = static_cast<std::uint32_t>(kMinMessage + h.size() + payload.size());
  put32(out, total);
  put32(out, static_cast<std::uint32_t>(h.size()));
  put32(out, crc32_of(out));
  out += h;
  out += payload;
  put32(out, crc32_of(out));
  return out;
}

}  // namespace shardline::detail
