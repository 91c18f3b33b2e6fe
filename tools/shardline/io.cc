#include "io.h"

#include "core/digest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace shardline::cli {

namespace {
constexpr std::size_t kInitialBuffer = 4 << 20;
constexpr std::size_t kMaxLine = 256u << 20;  // 10 MiB records are ~14 MiB of base64 + JSON
}  // namespace

LineReader::LineReader(int fd, bool owned, std::string name)
    : fd_(fd), owned_(owned), name_(std::move(name)) {
  cap_ = kInitialBuffer;
  buf_ = std::make_unique<char[]>(cap_ + kLinePadding);
}

LineReader::~LineReader() {
  if (owned_) ::close(fd_);
}

Result<std::unique_ptr<LineReader>> LineReader::open(const std::string& path) {
  if (path.empty() || path == "-") {
    return std::unique_ptr<LineReader>(new LineReader(0, false, "<stdin>"));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::not_found("cannot open '" + path + "': " + std::strerror(errno));
  }
  return std::unique_ptr<LineReader>(new LineReader(fd, true, path));
}

bool LineReader::fill() {
  // Move the unread tail to the front, grow if the buffer is full of one line, then read.
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == cap_) {
    if (cap_ >= kMaxLine) {
      status_ = Status::invalid_argument(name_ + ": line " + std::to_string(line_no_ + 1) +
                                         " is longer than " + std::to_string(kMaxLine) + " bytes");
      return false;
    }
    const std::size_t ncap = cap_ * 2;
    auto nbuf = std::make_unique<char[]>(ncap + kLinePadding);
    std::memcpy(nbuf.get(), buf_.get(), end_);
    buf_ = std::move(nbuf);
    cap_ = ncap;
  }
  while (true) {
    const ssize_t n = ::read(fd_, buf_.get() + end_, cap_ - end_);
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    status_ = Status::unavailable(name_ + ": read failed: " + std::strerror(errno));
    return false;
  }
}

bool LineReader::next(std::string_view& line) {
  std::size_t scan_from = begin_;
  while (true) {
    const char* start = buf_.get() + scan_from;
    const void* nl = std::memchr(start, '\n', end_ - scan_from);
    if (nl != nullptr) {
      const std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.get());
      std::size_t len = pos - begin_;
      if (len > 0 && buf_[begin_ + len - 1] == '\r') --len;
      line = std::string_view(buf_.get() + begin_, len);
      begin_ = pos + 1;
      ++line_no_;
      return true;
    }
    if (eof_ || !status_.ok()) break;
    const std::size_t scanned = end_ - begin_;
    if (!fill()) {
      if (!status_.ok()) return false;
      break;
    }
    scan_from = begin_ + scanned;
  }
  if (begin_ < end_) {  // last line without a newline
    std::size_t len = end_ - begin_;
    if (buf_[begin_ + len - 1] == '\r') --len;
    line = std::string_view(buf_.get() + begin_, len);
    begin_ = end_;
    ++line_no_;
    return true;
  }
  return false;
}

Status Output::flush() {
  std::size_t off = 0;
  while (off < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      failed_ = true;
      buf_.clear();
      return Status::unavailable(std::string("write failed: ") + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  buf_.clear();
  return {};
}

namespace {

// Bytes that need no escaping in a JSON string: printable ASCII except '"' and '\\'.
constexpr bool plain_byte(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

struct PlainTable {
  bool t[256];
  constexpr PlainTable() : t() {
    for (int i = 0; i < 256; ++i) t[i] = plain_byte(static_cast<unsigned char>(i));
  }
};
constexpr PlainTable kPlain;

// Length of a valid UTF-8 sequence starting at p (>= 2 bytes), or 0 if invalid.
std::size_t utf8_seq(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = *p;
  std::size_t len;
  std::uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
    return 0;
  return len;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const auto* run = p;
    while (p < end && kPlain.t[*p]) ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      const std::size_t n = utf8_seq(p, end);
      if (n == 0) {
        out.append("\\ufffd");
        ++p;
      } else {
        out.append(reinterpret_cast<const char*>(p), n);
        p += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, 6);
      }
    }
    ++p;
  }
  out.push_back('"');
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[20];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

void append_record_json(std::string& o, std::string_view partition_key,
                        const std::optional<std::string_view>& explicit_hash_key,
                        std::string_view data, std::uint64_t sub_sequence_number, bool aggregated,
                        const RecordContext& ctx) {
  o.append("{\"partitionKey\":");
  if (ctx.partition_key_known) {
    append_json_string(o, partition_key);
  } else {
    o.append("null");
  }
  o.append(",\"explicitHashKey\":");
  if (explicit_hash_key) {
    append_json_string(o, *explicit_hash_key);
  } else {
    o.append("null");
  }
  o.append(",\"data\":\"");
  detail::base64_append(o, data);
  o.append("\",\"subSequenceNumber\":");
  append_uint(o, sub_sequence_number);
  o.append(aggregated ? ",\"aggregated\":true" : ",\"aggregated\":false");
  if (ctx.sequence_number) {
    o.append(",\"sequenceNumber\":");
    append_json_string(o, *ctx.sequence_number);
  }
  if (ctx.shard_id) {
    o.append(",\"shardId\":");
    append_json_string(o, *ctx.shard_id);
  }
  if (ctx.arrival_ms) {
    o.append(",\"approximateArrivalTimestamp\":");
    o.append(std::to_string(*ctx.arrival_ms));
  }
  o.append("}\n");
}

void Warnings::warn(std::uint64_t line, std::string_view message) {
  ++count_;
  if (count_ <= limit_) {
    std::fprintf(stderr, "shardline: warning: line %llu: %.*s\n",
                 static_cast<unsigned long long>(line), static_cast<int>(message.size()),
                 message.data());
  }
}

void Warnings::finish() const {
  if (count_ > limit_) {
    std::fprintf(stderr, "shardline: warning: %zu more warnings not shown (%zu in all)\n",
                 count_ - limit_, count_);
  }
}

bool write_text_file(const std::string& path, std::string_view text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.close();
  if (f) return true;
  std::fprintf(stderr, "shardline: error: cannot write '%s': %s\n", path.c_str(),
               std::strerror(errno));
  return false;
}

void append_shards_json(std::string& o, const std::vector<ShardStatus>& shards) {
  o += "\"shards\":[";
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const ShardStatus& s = shards[i];
    if (i) o += ',';
    o += "{\"shardId\":";
    append_json_string(o, s.shard_id);
    o += ",\"records\":" + std::to_string(s.records_processed) + ",\"checkpoint\":";
    append_json_string(o, s.checkpoint.sequence_number);
    o += ",\"checkpointSubSequenceNumber\":" + std::to_string(s.checkpoint.sub_sequence_number);
    o += '}';
  }
  o += ']';
}

}  // namespace shardline::cli
