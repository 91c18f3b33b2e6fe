// Differential fuzzing of the event-stream decoder (SubscribeToShard's framing): the input fed
// whole and fed in pieces split where the input's first bytes say give the same messages and
// the same verdict; each message decoded alone agrees; a message whose headers are all strings
// encodes back to the same bytes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aws/event_stream.h"
#include "fuzz_util.h"

using namespace shardline;
using shardline::fuzz::require;

namespace {

struct Run {
  std::vector<detail::EventStreamMessage> messages;
  Status status;
  std::size_t buffered = 0;
};

Run decode(std::string_view in, const std::vector<std::size_t>& cuts) {
  Run r;
  detail::EventStreamDecoder d;
  auto sink = [&r](detail::EventStreamMessage&& m) { r.messages.push_back(std::move(m)); };
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    if (cut <= at || cut > in.size()) continue;
    r.status = d.feed(in.substr(at, cut - at), sink);
    at = cut;
    if (!r.status.ok()) return r;
  }
  r.status = d.feed(in.substr(at), sink);
  r.buffered = d.buffered();
  if (!r.status.ok()) require(d.failed() && d.feed("x", sink).to_string() == r.status.to_string());
  return r;
}

bool same(const detail::EventStreamMessage& a, const detail::EventStreamMessage& b) {
  return a.headers == b.headers && a.payload == b.payload;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const Run whole = decode(in, {});
  std::vector<std::size_t> cuts;
  std::size_t at = 0;
  for (std::size_t i = 0; i < size && i < 8; ++i) {
    at += 1 + data[i] % 37;
    cuts.push_back(at);
  }
  const Run pieces = decode(in, cuts);
  require(whole.status.to_string() == pieces.status.to_string());
  require(whole.messages.size() == pieces.messages.size());
  for (std::size_t i = 0; i < whole.messages.size(); ++i) {
    require(same(whole.messages[i], pieces.messages[i]));
  }
  if (whole.status.ok()) require(whole.buffered == pieces.buffered);

  // Each message alone; string-only messages re-encode byte for byte.
  std::size_t offset = 0;
  for (const detail::EventStreamMessage& m : whole.messages) {
    const std::uint32_t total = (std::uint32_t{data[offset]} << 24) |
                                (std::uint32_t{data[offset + 1]} << 16) |
                                (std::uint32_t{data[offset + 2]} << 8) | data[offset + 3];
    detail::EventStreamMessage alone;
    require(detail::decode_event_stream_message(in.substr(offset, total), alone).ok());
    require(same(alone, m));
    const std::string again = detail::encode_event_stream_message(m.headers, m.payload);
    detail::EventStreamMessage round;
    require(detail::decode_event_stream_message(again, round).ok() && same(round, m));
    offset += total;
  }
  return 0;
}
