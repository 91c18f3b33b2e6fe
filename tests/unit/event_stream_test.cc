// The event-stream framing of SubscribeToShard: messages split anywhere, every header type,
// and every kind of corruption reported as kDataLoss without a crash.
#include "aws/event_stream.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

namespace shardline::detail {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

void put32(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}
std::uint32_t crc(const std::string& s) {
  return static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}
// A message around raw header bytes, framed independently of the encoder under test.
std::string frame(const std::string& headers, const std::string& payload) {
  std::string out;
  put32(out, static_cast<std::uint32_t>(16 + headers.size() + payload.size()));
  put32(out, static_cast<std::uint32_t>(headers.size()));
  put32(out, crc(out));
  out += headers;
  out += payload;
  put32(out, crc(out));
  return out;
}

std::vector<EventStreamMessage> decode_all(const std::string& bytes, Status* status = nullptr) {
  std::vector<EventStreamMessage> out;
  EventStreamDecoder d;
  Status s = d.feed(bytes, [&](EventStreamMessage&& m) { out.push_back(std::move(m)); });
  if (status != nullptr) *status = s;
  return out;
}

const Headers kEventHeaders = {{":message-type", "event"},
                               {":event-type", "SubscribeToShardEvent"},
                               {":content-type", "application/json"}};

TEST(EventStream, EncodesTheFramingAwsDefines) {
  const std::string m = encode_event_stream_message({{"a", "b"}}, "xyz");
  // 1 + 1 name, 1 type, 2 length, 1 value = 6 header bytes.
  EXPECT_EQ(m, frame(std::string("\x01"
                                 "a\x07\x00\x01"
                                 "b",
                                 6),
                     "xyz"));
}

TEST(EventStream, RoundTripsHeadersAndPayload) {
  const std::string payload = R"({"Records":[],"ContinuationSequenceNumber":"49"})";
  Status s;
  auto got = decode_all(encode_event_stream_message(kEventHeaders, payload), &s);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers, kEventHeaders);
  EXPECT_EQ(got[0].payload, payload);
  EXPECT_EQ(got[0].header(":event-type"), "SubscribeToShardEvent");
  EXPECT_EQ(got[0].header(":exception-type"), "");
}

TEST(EventStream, EveryHeaderType) {
  std::string h;
  h += std::string("\x01t\x00", 3);  // true
  h += std::string(
      "\x01"
      "f\x01",
      3);  // false
  h += std::string(
      "\x01"
      "b\x02\xff",
      4);                                                             // byte -1
  h += std::string("\x01s\x03\x80\x00", 5);                           // short -32768
  h += std::string("\x01i\x04\x00\x01\x00\x00", 7);                   // int 65536
  h += std::string("\x01l\x05\xff\xff\xff\xff\xff\xff\xff\xfe", 11);  // long -2
  h += std::string(
      "\x01"
      "a\x06\x00\x03\x00\x01\x02",
      8);  // bytes
  h += std::string(
      "\x01"
      "d\x08\x00\x00\x01\x8b\xcf\xe5\x68\x00",
      11);  // timestamp ms
  std::string uuid = "\x01u\x09";
  for (int k = 0; k < 16; ++k) uuid.push_back(static_cast<char>(k * 17));
  h += uuid;
  Status s;
  auto got = decode_all(frame(h, ""), &s);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers, (Headers{{"t", "true"},
                                     {"f", "false"},
                                     {"b", "-1"},
                                     {"s", "-32768"},
                                     {"i", "65536"},
                                     {"l", "-2"},
                                     {"a", std::string("\x00\x01\x02", 3)},
                                     {"d", "1700000000000"},
                                     {"u", "00112233445566778899aabbccddeeff"}}));
  EXPECT_EQ(got[0].payload, "");
}

TEST(EventStream, MessagesSplitAtEveryByteComeOutWhole) {
  const std::string a = encode_event_stream_message(kEventHeaders, R"({"n":1})");
  const std::string b = encode_event_stream_message({{":message-type", "event"}}, "");
  const std::string c = encode_event_stream_message(kEventHeaders, std::string(300, 'p'));
  const std::string all = a + b + c;
  for (std::size_t cut1 = 0; cut1 <= all.size(); cut1 += 3) {
    for (std::size_t cut2 = cut1; cut2 <= all.size(); cut2 += 29) {
      EventStreamDecoder d;
      std::vector<EventStreamMessage> got;
      auto sink = [&](EventStreamMessage&& m) { got.push_back(std::move(m)); };
      ASSERT_TRUE(d.feed(std::string_view(all).substr(0, cut1), sink).ok());
      ASSERT_TRUE(d.feed(std::string_view(all).substr(cut1, cut2 - cut1), sink).ok());
      ASSERT_TRUE(d.feed(std::string_view(all).substr(cut2), sink).ok());
      ASSERT_EQ(got.size(), 3u) << cut1 << " " << cut2;
      EXPECT_EQ(got[0].payload, R"({"n":1})");
      EXPECT_EQ(got[1].headers, (Headers{{":message-type", "event"}}));
      EXPECT_EQ(got[2].payload, std::string(300, 'p'));
      EXPECT_EQ(d.buffered(), 0u);
    }
  }
}

TEST(EventStream, AnIncompleteMessageIsHeldNotDelivered) {
  const std::string m = encode_event_stream_message(kEventHeaders, "{}");
  EventStreamDecoder d;
  int n = 0;
  ASSERT_TRUE(d.feed(std::string_view(m).substr(0, m.size() - 1), [&](auto&&) { ++n; }).ok());
  EXPECT_EQ(n, 0);
  EXPECT_EQ(d.buffered(), m.size() - 1);
  ASSERT_TRUE(d.feed(std::string_view(m).substr(m.size() - 1), [&](auto&&) { ++n; }).ok());
  EXPECT_EQ(n, 1);
  EXPECT_EQ(d.buffered(), 0u);
}

Status first_error(const std::string& bytes) {
  Status s;
  decode_all(bytes, &s);
  return s;
}

TEST(EventStream, CorruptionIsDataLossNamingTheFault) {
  const std::string good = encode_event_stream_message(kEventHeaders, R"({"Records":[]})");
  std::string payload_flip = good;
  payload_flip[good.size() - 6] ^= 1;
  EXPECT_EQ(first_error(payload_flip).code(), StatusCode::kDataLoss);
  EXPECT_NE(first_error(payload_flip).message().find("message CRC"), std::string::npos);

  std::string length_flip = good;
  length_flip[3] ^= 1;
  EXPECT_NE(first_error(length_flip).message().find("prelude CRC"), std::string::npos);

  // Valid prelude CRCs around impossible lengths.
  auto prelude = [](std::uint32_t total, std::uint32_t headers) {
    std::string p;
    put32(p, total);
    put32(p, headers);
    put32(p, crc(p));
    return p + std::string(32, '\0');
  };
  EXPECT_NE(first_error(prelude(15, 0)).message().find("message length 15"), std::string::npos);
  EXPECT_NE(first_error(prelude((16u << 20) + 1, 0)).message().find("message length"),
            std::string::npos);
  EXPECT_NE(first_error(prelude(40, 25)).message().find("headers length 25"), std::string::npos);

  EXPECT_NE(first_error(frame(std::string("\x01x\x0a", 3), "")).message().find("unknown type 10"),
            std::string::npos);
  EXPECT_NE(first_error(frame(std::string("\x01x\x07\x00\x09"
                                          "ab",
                                          7),
                              ""))
                .message()
                .find("truncated header"),
            std::string::npos);
  EXPECT_NE(first_error(frame(std::string("\x00", 1), "")).message().find("empty name"),
            std::string::npos);
  EXPECT_NE(first_error(frame(std::string("\x05"
                                          "ab",
                                          3),
                              ""))
                .message()
                .find("truncated"),
            std::string::npos);
}

TEST(EventStream, AFailedDecoderStaysFailedAndDeliversNothingAfterTheFault) {
  const std::string good = encode_event_stream_message(kEventHeaders, "{}");
  std::string bad = good;
  bad[good.size() - 1] ^= 0x40;
  EventStreamDecoder d;
  int n = 0;
  auto sink = [&](EventStreamMessage&&) { ++n; };
  const Status s = d.feed(good + bad + good, sink);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(d.failed());
  EXPECT_EQ(d.feed(good, sink).to_string(), s.to_string());
  EXPECT_EQ(n, 1);
}

TEST(EventStream, DecodeOneMessageChecksItsLength) {
  const std::string m = encode_event_stream_message(kEventHeaders, "{}");
  EventStreamMessage out;
  EXPECT_TRUE(decode_event_stream_message(m, out).ok());
  EXPECT_EQ(decode_event_stream_message(m + "x", out).code(), StatusCode::kDataLoss);
  EXPECT_EQ(decode_event_stream_message(m.substr(0, 5), out).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace shardline::detail
