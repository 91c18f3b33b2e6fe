// shardline_stub_kinesis: a loopback Kinesis endpoint with canned responses, for benchmarks.
//
// It answers the Kinesis JSON 1.1 API by X-Amz-Target so that a client's cost can be measured
// without an emulator in the way: every response body is built once at start-up and sent with
// writev() straight from that buffer. One thread, one epoll loop, HTTP/1.1 keep-alive, any
// number of connections, pipelined requests answered in order. Signatures are not checked.
//
//   PutRecords             success, one entry per "Data" key in the request (56-digit
//                          sequence numbers, shard ids spread over --shards shards)
//   PutRecord              success
//   GetRecords             --records records (default 10000) of --record-size bytes (default
//                          100, base64), UUID partition keys, 56-digit sequence numbers, arrival
//                          timestamps, a NextShardIterator; a smaller "Limit" truncates the list
//   GetShardIterator       a fixed iterator
//   ListShards             --shards shards splitting the hash key space evenly
//   DescribeStreamSummary  ACTIVE, PROVISIONED
//   ListStreams            one stream
//   anything else          400 UnknownOperationException
//
// Usage: shardline_stub_kinesis [--port N] [--records N] [--record-size N] [--shards N]
//                               [--route-by-hash-key]   (PutRecords shard ids follow each
//                               entry's ExplicitHashKey: for clients that predict shards)
//                               [--aggregate N]   (each GetRecords record is a KPL aggregate of
//                               N user records of --record-size bytes: for consumers)
//                               [--full-range-shards]   (every listed shard covers the whole
//                               hash key range, so a consumer filters nothing out)
// Prints "LISTENING <port>" on stdout once it accepts connections (port 0 = a free port), and
// on SIGTERM or SIGINT prints "served <n> requests on <c> connections" on stderr and exits 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shardline/aggregation.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

constexpr std::size_t kMaxRequestBytes = 64u << 20;  // larger requests close the connection
constexpr std::size_t kReadChunk = 256u << 10;
constexpr int kMaxIov = 64;

// ---- canned bodies ----

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void append_base64(std::string& out, const unsigned char* p, std::size_t n) {
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (n - i == 1) {
    const unsigned v = p[i] << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (n - i == 2) {
    const unsigned v = (p[i] << 16) | (p[i + 1] << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
}

// A realistic 56-digit sequence number: a fixed 40-digit shard/epoch prefix (as on AWS,
// sequence numbers of one shard share most leading digits) and a 16-digit counter.
std::string sequence_number(std::uint64_t n) {
  char tail[17];
  std::snprintf(tail, sizeof tail, "%016llu",
                static_cast<unsigned long long>(1'000'000'000'000'000ull + n * 7919));
  return std::string("4959033827149025660855969253836157109592") + tail;
}

std::string shard_id(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shardId-%012d", i);
  return buf;
}

std::string uuid_like(std::mt19937_64& rng) {
  static const char hex[] = "0123456789abcdef";
  std::string k(36, '-');
  for (int j = 0; j < 36; ++j) {
    if (j != 8 && j != 13 && j != 18 && j != 23) k[static_cast<std::size_t>(j)] = hex[rng() % 16];
  }
  return k;
}

// An iterator looks like AWS's: a long opaque base64 string.
std::string shard_iterator(std::mt19937_64& rng) {
  std::string raw(212, '\0');
  for (char& c : raw) c = static_cast<char>(rng());
  std::string out;
  append_base64(out, reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  return out;
}

// A JSON array body whose first n elements can be sent alone: `text` holds the head, then the
// elements separated by ',', and ends[i] is the offset just past element i. A body of n
// elements is text[0, ends[n-1]) followed by `tail`.
struct ListBody {
  std::string text;
  std::vector<std::size_t> ends;
  std::string tail;
  std::size_t head_size = 0;
};

struct Canned {
  ListBody put_records;  // {"FailedRecordCount":0,"Records":[{...},...]}
  ListBody get_records;  // {"MillisBehindLatest":0,"NextShardIterator":"...","Records":[...]}
  std::string put_record;
  std::string get_shard_iterator;
  std::string list_shards;
  std::string describe_stream_summary;
  std::string list_streams;
  std::string unknown_operation;
  std::string bad_request;
  std::string too_many_records;
};

std::string uint128_decimal(unsigned __int128 v) {
  if (v == 0) return "0";
  std::string s;
  while (v != 0) {
    s += static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  }
  std::reverse(s.begin(), s.end());
  return s;
}

Canned make_canned(int records, int record_size, int shards, int aggregate, bool full_range) {
  Canned c;
  std::mt19937_64 rng(20240601);
  const std::string arn = "arn:aws:kinesis:us-east-1:123456789012:stream/bench";

  // PutRecords: room for the 500-record API limit and more (a stub should not be the reason a
  // caller's oversized batch fails); more than this answers 400 ValidationException.
  constexpr int kMaxPutEntries = 10000;
  c.put_records.text = R"({"FailedRecordCount":0,"Records":[)";
  c.put_records.head_size = c.put_records.text.size();
  for (int i = 0; i < kMaxPutEntries; ++i) {
    if (i != 0) c.put_records.text += ',';
    c.put_records.text += R"({"SequenceNumber":")" + sequence_number(static_cast<unsigned>(i)) +
                          R"(","ShardId":")" + shard_id(i % shards) + R"("})";
    c.put_records.ends.push_back(c.put_records.text.size());
  }
  c.put_records.tail = "]}";

  const std::string iterator = shard_iterator(rng);
  c.get_records.text =
      R"({"MillisBehindLatest":0,"NextShardIterator":")" + iterator + R"(","Records":[)";
  c.get_records.head_size = c.get_records.text.size();
  std::vector<unsigned char> payload(static_cast<std::size_t>(record_size));
  const std::int64_t t0_ms = 1717200000000;  // 2024-06-01T00:00:00Z
  std::vector<std::string> user_data, user_keys;
  for (int i = 0; i < records; ++i) {
    for (auto& b : payload) b = static_cast<unsigned char>(rng());
    std::string aggregated;
    if (aggregate > 0) {
      // A KPL aggregate of `aggregate` user records of record_size bytes each.
      shardline::AggregationLimits limits;
      limits.max_size = shardline::kLargestMaxRecordSize;
      limits.max_record_size = shardline::kLargestMaxRecordSize;
      shardline::AggregateBuilder b(limits);
      user_data.assign(static_cast<std::size_t>(aggregate), std::string());
      user_keys.assign(static_cast<std::size_t>(aggregate), std::string());
      for (int u = 0; u < aggregate; ++u) {
        auto& d = user_data[static_cast<std::size_t>(u)];
        d.resize(static_cast<std::size_t>(record_size));
        for (auto& ch : d) ch = static_cast<char>(rng());
        user_keys[static_cast<std::size_t>(u)] = uuid_like(rng);
        b.add(user_keys[static_cast<std::size_t>(u)], std::nullopt, d);
      }
      aggregated = b.build().data;
    }
    if (i != 0) c.get_records.text += ',';
    // Coral's JSON form of a timestamp, seconds in E notation with milliseconds:
    // 1717200000123 ms -> 1.717200000123E9.
    const std::string ms = std::to_string(t0_ms + i / 10);
    const std::string ts = ms.substr(0, 1) + "." + ms.substr(1) + "E9";
    c.get_records.text += R"({"SequenceNumber":")" + sequence_number(static_cast<unsigned>(i)) +
                          R"(","ApproximateArrivalTimestamp":)" + ts + R"(,"Data":")";
    if (aggregate > 0) {
      append_base64(c.get_records.text, reinterpret_cast<const unsigned char*>(aggregated.data()),
                    aggregated.size());
    } else {
      append_base64(c.get_records.text, payload.data(), payload.size());
    }
    c.get_records.text += R"(","PartitionKey":")" + uuid_like(rng) + R"("})";
    c.get_records.ends.push_back(c.get_records.text.size());
  }
  c.get_records.tail = "]}";

  c.put_record =
      R"({"SequenceNumber":")" + sequence_number(1) + R"(","ShardId":")" + shard_id(0) + R"("})";
  c.get_shard_iterator = R"({"ShardIterator":")" + iterator + R"("})";

  c.list_shards = R"({"Shards":[)";
  const unsigned __int128 max = ~static_cast<unsigned __int128>(0);
  const unsigned __int128 step = max / static_cast<unsigned>(shards);
  for (int i = 0; i < shards; ++i) {
    if (i != 0) c.list_shards += ',';
    unsigned __int128 start = step * static_cast<unsigned>(i);
    unsigned __int128 end = i + 1 == shards ? max : start + step - 1;
    if (full_range) {  // every shard claims every key: no consumer-side range filtering
      start = 0;
      end = max;
    }
    c.list_shards += R"({"ShardId":")" + shard_id(i) + R"(","HashKeyRange":{"StartingHashKey":")" +
                     uint128_decimal(start) + R"(","EndingHashKey":")" + uint128_decimal(end) +
                     R"("},"SequenceNumberRange":{"StartingSequenceNumber":")" +
                     sequence_number(0) + R"("}})";
  }
  c.list_shards += "]}";

  c.describe_stream_summary =
      R"({"StreamDescriptionSummary":{"StreamName":"bench","StreamARN":")" + arn +
      R"(","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"PROVISIONED"},)"
      R"("RetentionPeriodHours":24,"StreamCreationTimestamp":1717200000.0,)"
      R"("EnhancedMonitoring":[{"ShardLevelMetrics":[]}],"EncryptionType":"NONE",)"
      R"("OpenShardCount":)" +
      std::to_string(shards) + R"(,"ConsumerCount":0}})";
  c.list_streams = R"({"HasMoreStreams":false,"StreamNames":["bench"]})";
  c.unknown_operation = R"({"__type":"UnknownOperationException"})";
  c.bad_request = R"({"__type":"SerializationException","message":"bad request"})";
  c.too_many_records =
      R"({"__type":"ValidationException","message":"too many records for the stub"})";
  return c;
}

// ---- HTTP ----

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Occurrences of the object key "Data" (a quote, Data, a quote, optional spaces, a colon).
// Base64 contains no quote, and a string value "Data" is followed by ',' or '}', not ':'.
int count_data_keys(std::string_view body) {
  int n = 0;
  const char* p = body.data();
  const char* end = p + body.size();
  while (true) {
    const void* hit = memmem(p, static_cast<std::size_t>(end - p), "\"Data\"", 6);
    if (hit == nullptr) break;
    const char* q = static_cast<const char*>(hit) + 6;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) ++q;
    if (q < end && *q == ':') ++n;
    p = q;
  }
  return n;
}

// The integer after the key "Limit", or -1.
long find_limit(std::string_view body) {
  const std::size_t k = body.find("\"Limit\"");
  if (k == std::string_view::npos) return -1;
  std::size_t i = k + 7;
  while (i < body.size() && (body[i] == ' ' || body[i] == ':')) ++i;
  long v = -1;
  std::from_chars(body.data() + i, body.data() + body.size(), v);
  return v;
}

enum class Op : std::uint8_t {
  kPutRecords,
  kPutRecord,
  kGetRecords,
  kGetShardIterator,
  kListShards,
  kDescribeStreamSummary,
  kListStreams,
  kUnknown,
};

Op op_from_target(std::string_view target) {
  const std::size_t dot = target.rfind('.');
  const std::string_view op = dot == std::string_view::npos ? target : target.substr(dot + 1);
  if (op == "PutRecords") return Op::kPutRecords;
  if (op == "PutRecord") return Op::kPutRecord;
  if (op == "GetRecords") return Op::kGetRecords;
  if (op == "GetShardIterator") return Op::kGetShardIterator;
  if (op == "ListShards") return Op::kListShards;
  if (op == "DescribeStreamSummary") return Op::kDescribeStreamSummary;
  if (op == "ListStreams") return Op::kListStreams;
  return Op::kUnknown;
}

// One queued response: a formatted head and up to two static body pieces.
struct Response {
  std::array<char, 256> head;
  std::size_t head_size = 0;
  const char* body1 = nullptr;
  std::size_t body1_size = 0;
  const char* body2 = nullptr;
  std::size_t body2_size = 0;
  std::size_t sent = 0;  // bytes of head+body1+body2 already written
  std::string owned;     // a body built for this request (--route-by-hash-key)
  std::size_t total() const { return head_size + body1_size + body2_size; }
};

// --route-by-hash-key: a PutRecords answer whose ShardIds follow each entry's ExplicitHashKey
// over --shards even ranges (as ListShards describes them), so a client that predicts shards
// sees every record land where it predicted. Entries without one go to shard 0.
std::string routed_put_records(std::string_view body, int shards) {
  const unsigned __int128 max = ~static_cast<unsigned __int128>(0);
  const unsigned __int128 step = max / static_cast<unsigned>(shards);
  std::string out = R"({"FailedRecordCount":0,"Records":[)";
  const std::string_view data_key = "\"Data\"", ehk_key = "\"ExplicitHashKey\":\"";
  std::size_t pos = 0;
  bool first = true;
  while ((pos = body.find(data_key, pos)) != std::string_view::npos) {
    // The entry's object ends at the next '}' (base64 and decimal keys contain none).
    const std::size_t entry_end = body.find('}', pos);
    const std::size_t k = body.find(ehk_key, pos);
    unsigned __int128 hk = 0;
    if (k != std::string_view::npos && k < entry_end) {
      for (std::size_t i = k + ehk_key.size(); i < body.size() && body[i] >= '0' && body[i] <= '9';
           ++i)
        hk = hk * 10 + static_cast<unsigned>(body[i] - '0');
    }
    const unsigned __int128 idx128 = hk / step;
    const int idx = idx128 >= static_cast<unsigned>(shards) ? shards - 1 : static_cast<int>(idx128);
    if (!first) out += ',';
    first = false;
    out +=
        R"({"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":")";
    out += shard_id(idx);
    out += R"("})";
    pos = entry_end == std::string_view::npos ? body.size() : entry_end;
  }
  out += "]}";
  return out;
}

struct Connection {
  int fd = -1;
  std::vector<char> in;  // received bytes [0, in_size)
  std::size_t in_size = 0;
  std::size_t in_pos = 0;  // start of the first unprocessed request
  // Parsed head of the request at in_pos while its body is incomplete (0 = not parsed yet).
  std::size_t head_size = 0;
  std::size_t content_length = 0;
  Op op = Op::kUnknown;
  bool keep_alive = true;
  bool continue_sent = false;
  bool want_out = false;      // EPOLLOUT armed
  bool closing = false;       // close once the queue drains
  std::vector<Response> out;  // queue [out_pos, size)
  std::size_t out_pos = 0;
};

class Server {
 public:
  Server(Canned canned, int shards, bool route_by_hash_key)
      : canned_(std::move(canned)), shards_(shards), route_by_hash_key_(route_by_hash_key) {}

  int listen_on(int port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return -1;
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
    if (listen(listen_fd_, 1024) != 0) return -1;
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the listening socket
    epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev);
    return ntohs(addr.sin_port);
  }

  void run() {
    std::array<epoll_event, 256> events;
    while (g_stop == 0) {
      const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Connection*>(events[static_cast<std::size_t>(i)].data.ptr);
        if (c == nullptr) {
          accept_all();
          continue;
        }
        const std::uint32_t e = events[static_cast<std::size_t>(i)].events;
        if ((e & (EPOLLERR | EPOLLHUP)) != 0 && (e & EPOLLIN) == 0) {
          close_conn(c);
          continue;
        }
        if ((e & EPOLLIN) != 0 && !on_readable(c)) {
          close_conn(c);
          continue;
        }
        if ((e & EPOLLOUT) != 0 && !flush(c)) close_conn(c);
      }
    }
  }

  std::uint64_t requests() const { return requests_; }
  std::uint64_t connections() const { return connections_; }

 private:
  void accept_all() {
    while (true) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: wait for the next event
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto conn = std::make_unique<Connection>();
      conn->fd = fd;
      conn->in.resize(kReadChunk);
      conn->out.reserve(16);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = conn.get();
      epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
      conns_.emplace(conn.get(), std::move(conn));
      ++connections_;
    }
  }

  void close_conn(Connection* c) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    conns_.erase(c);
  }

  // Reads until EAGAIN (edge-triggered), answering every complete request. False = close.
  bool on_readable(Connection* c) {
    bool eof = false;
    while (true) {
      if (c->in_size == c->in.size()) {
        // Make room: drop processed bytes, then grow.
        if (c->in_pos > 0) {
          std::memmove(c->in.data(), c->in.data() + c->in_pos, c->in_size - c->in_pos);
          c->in_size -= c->in_pos;
          c->in_pos = 0;
        } else {
          if (c->in.size() >= kMaxRequestBytes) return false;
          c->in.resize(c->in.size() * 2);
        }
      }
      const ssize_t r = recv(c->fd, c->in.data() + c->in_size, c->in.size() - c->in_size, 0);
      if (r > 0) {
        c->in_size += static_cast<std::size_t>(r);
        if (!process(c)) return false;
        continue;
      }
      if (r == 0) {
        eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    if (!flush(c)) return false;
    if (eof) {
      // The peer finished sending: answer what is queued, then close.
      c->closing = true;
      return c->out_pos < c->out.size();
    }
    return true;
  }

  // Parses and answers every complete request in the buffer. False = a protocol error.
  bool process(Connection* c) {
    while (c->in_pos < c->in_size && !c->closing) {
      const char* base = c->in.data() + c->in_pos;
      const std::size_t avail = c->in_size - c->in_pos;
      if (c->head_size == 0) {
        const void* end = memmem(base, avail, "\r\n\r\n", 4);
        if (end == nullptr) {
          if (avail > 64 * 1024) return false;  // a head this large is not a client of ours
          return true;
        }
        c->head_size = static_cast<std::size_t>(static_cast<const char*>(end) - base) + 4;
        if (!parse_head(c, std::string_view(base, c->head_size))) return false;
      }
      if (avail < c->head_size + c->content_length) return true;  // wait for the body
      answer(c, std::string_view(base + c->head_size, c->content_length));
      c->in_pos += c->head_size + c->content_length;
      c->head_size = 0;
      c->content_length = 0;
      c->continue_sent = false;
      if (c->in_pos == c->in_size) c->in_pos = c->in_size = 0;
    }
    return true;
  }

  bool parse_head(Connection* c, std::string_view head) {
    std::size_t line_end = head.find("\r\n");
    const std::string_view request_line = head.substr(0, line_end);
    c->keep_alive = request_line.ends_with("HTTP/1.1");
    c->op = Op::kUnknown;
    c->content_length = 0;
    bool expect_continue = false;
    std::size_t pos = line_end + 2;
    while (pos < head.size()) {
      line_end = head.find("\r\n", pos);
      if (line_end == pos || line_end == std::string_view::npos) break;
      const std::string_view line = head.substr(pos, line_end - pos);
      pos = line_end + 2;
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = line.substr(0, colon);
      const std::string_view value = trim(line.substr(colon + 1));
      if (iequals(name, "content-length")) {
        std::from_chars(value.data(), value.data() + value.size(), c->content_length);
      } else if (iequals(name, "x-amz-target")) {
        c->op = op_from_target(value);
      } else if (iequals(name, "connection")) {
        if (iequals(value, "close")) c->keep_alive = false;
        if (iequals(value, "keep-alive")) c->keep_alive = true;
      } else if (iequals(name, "expect")) {
        expect_continue = iequals(value, "100-continue");
      } else if (iequals(name, "transfer-encoding")) {
        return false;  // clients of ours send Content-Length
      }
    }
    if (c->content_length > kMaxRequestBytes) return false;
    const std::size_t have = c->in_size - c->in_pos - c->head_size;
    if (expect_continue && have < c->content_length) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      queue(c, kContinue, sizeof kContinue - 1, nullptr, 0, nullptr, 0);
      c->continue_sent = true;
      if (!flush(c)) return false;
    }
    return true;
  }

  void answer(Connection* c, std::string_view body) {
    ++requests_;
    const char* b1 = nullptr;
    std::size_t n1 = 0;
    const char* b2 = nullptr;
    std::size_t n2 = 0;
    int status = 200;
    auto whole = [&](const std::string& s) {
      b1 = s.data();
      n1 = s.size();
    };
    auto list = [&](const ListBody& l, std::size_t n) {
      b1 = l.text.data();
      n1 = n == 0 ? l.head_size : l.ends[n - 1];
      b2 = l.tail.data();
      n2 = l.tail.size();
    };
    std::string routed;
    switch (c->op) {
      case Op::kPutRecords: {
        if (route_by_hash_key_) {
          routed = routed_put_records(body, shards_);
          break;
        }
        const auto n = static_cast<std::size_t>(count_data_keys(body));
        if (n > canned_.put_records.ends.size()) {
          status = 400;
          whole(canned_.too_many_records);
        } else {
          list(canned_.put_records, n);
        }
        break;
      }
      case Op::kGetRecords: {
        const long limit = find_limit(body);
        const std::size_t all = canned_.get_records.ends.size();
        list(canned_.get_records, limit > 0 ? std::min(all, static_cast<std::size_t>(limit)) : all);
        break;
      }
      case Op::kPutRecord:
        whole(canned_.put_record);
        break;
      case Op::kGetShardIterator:
        whole(canned_.get_shard_iterator);
        break;
      case Op::kListShards:
        whole(canned_.list_shards);
        break;
      case Op::kDescribeStreamSummary:
        whole(canned_.describe_stream_summary);
        break;
      case Op::kListStreams:
        whole(canned_.list_streams);
        break;
      case Op::kUnknown:
        status = 400;
        whole(canned_.unknown_operation);
        break;
    }
    Response& r = push(c);
    if (!routed.empty()) {
      r.owned = std::move(routed);  // a heap buffer: stays put when the queue grows
      b1 = r.owned.data();
      n1 = r.owned.size();
      b2 = nullptr;
      n2 = 0;
    }
    char* p = r.head.data();
    char* const end = p + r.head.size();
    auto put = [&](std::string_view s) {
      std::memcpy(p, s.data(), s.size());
      p += s.size();
    };
    put(status == 200 ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 400 Bad Request\r\n");
    put("Content-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: ");
    // A UUID-shaped request id from a counter.
    char id[37] = "00000000-0000-4000-8000-000000000000";
    std::uint64_t v = requests_;
    for (int i = 35; i >= 0 && v != 0; --i) {
      if (id[i] == '-') continue;
      id[i] = "0123456789abcdef"[v & 15];
      v >>= 4;
    }
    put(std::string_view(id, 36));
    put("\r\nContent-Length: ");
    p = std::to_chars(p, end, n1 + n2).ptr;
    put(c->keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    r.head_size = static_cast<std::size_t>(p - r.head.data());
    r.body1 = b1;
    r.body1_size = n1;
    r.body2 = b2;
    r.body2_size = n2;
    if (!c->keep_alive) c->closing = true;
  }

  Response& push(Connection* c) {
    if (c->out_pos == c->out.size()) {
      c->out.clear();
      c->out_pos = 0;
    }
    c->out.emplace_back();
    return c->out.back();
  }

  void queue(Connection* c, const char* head, std::size_t head_size, const char* b1, std::size_t n1,
             const char* b2, std::size_t n2) {
    Response& r = push(c);
    std::memcpy(r.head.data(), head, head_size);
    r.head_size = head_size;
    r.body1 = b1;
    r.body1_size = n1;
    r.body2 = b2;
    r.body2_size = n2;
  }

  // Writes queued responses until done or EAGAIN. False = close the connection.
  bool flush(Connection* c) {
    while (c->out_pos < c->out.size()) {
      std::array<iovec, kMaxIov> iov;
      int n = 0;
      for (std::size_t i = c->out_pos; i < c->out.size() && n + 3 <= kMaxIov; ++i) {
        Response& r = c->out[i];
        std::size_t skip = r.sent;
        auto add = [&](const char* p, std::size_t len) {
          if (len == 0) return;
          if (skip >= len) {
            skip -= len;
            return;
          }
          iov[static_cast<std::size_t>(n++)] = {const_cast<char*>(p + skip), len - skip};
          skip = 0;
        };
        add(r.head.data(), r.head_size);
        add(r.body1, r.body1_size);
        add(r.body2, r.body2_size);
      }
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = static_cast<std::size_t>(n);
      const ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          arm_out(c, true);
          return true;
        }
        return false;
      }
      auto left = static_cast<std::size_t>(w);
      while (left > 0 && c->out_pos < c->out.size()) {
        Response& r = c->out[c->out_pos];
        const std::size_t rest = r.total() - r.sent;
        if (left >= rest) {
          left -= rest;
          ++c->out_pos;
        } else {
          r.sent += left;
          left = 0;
        }
      }
    }
    c->out.clear();
    c->out_pos = 0;
    arm_out(c, false);
    return !c->closing;
  }

  void arm_out(Connection* c, bool on) {
    if (c->want_out == on) return;
    c->want_out = on;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
  }

  Canned canned_;
  int shards_ = 1;
  bool route_by_hash_key_ = false;
  int listen_fd_ = -1;
  int ep_ = -1;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;
  std::uint64_t requests_ = 0;
  std::uint64_t connections_ = 0;
};

int usage() {
  std::fprintf(stderr,
               "usage: shardline_stub_kinesis [--port N] [--records N] [--record-size N] "
               "[--shards N]\n"
               "       [--route-by-hash-key] [--aggregate N] [--full-range-shards]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, records = 10000, record_size = 100, shards = 4, aggregate = 0;
  bool route_by_hash_key = false, full_range = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--route-by-hash-key") {
      route_by_hash_key = true;
      continue;
    }
    if (a == "--full-range-shards") {
      full_range = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    const int v = std::atoi(argv[++i]);
    if (a == "--port") {
      port = v;
    } else if (a == "--records") {
      records = v;
    } else if (a == "--record-size") {
      record_size = v;
    } else if (a == "--shards") {
      shards = v;
    } else if (a == "--aggregate") {
      aggregate = v;
    } else {
      return usage();
    }
  }
  if (port < 0 || port > 65535 || records < 0 || record_size < 0 || shards < 1 || aggregate < 0)
    return usage();

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  Server server(make_canned(records, record_size, shards, aggregate, full_range), shards,
                route_by_hash_key);
  const int bound = server.listen_on(port);
  if (bound < 0) {
    std::perror("shardline_stub_kinesis: listen");
    return 1;
  }
  std::printf("LISTENING %d\n", bound);
  std::fflush(stdout);
  server.run();
  std::fprintf(stderr, "served %llu requests on %llu connections\n",
               static_cast<unsigned long long>(server.requests()),
               static_cast<unsigned long long>(server.connections()));
  return 0;
}
