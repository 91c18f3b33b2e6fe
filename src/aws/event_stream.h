// Internal: the AWS event-stream framing (application/vnd.amazon.eventstream), the body of a
// SubscribeToShard response.
//
// A message is
//   total length (u32 BE) | headers length (u32 BE) | CRC32 of those 8 bytes (u32 BE)
//   | headers | payload | CRC32 of everything before it (u32 BE)
// and a header is  name length (u8) | name | value type (u8) | value,  where the value is
//   0 true, 1 false (no bytes) | 2 i8 | 3 i16 | 4 i32 | 5 i64 | 8 timestamp (i64 ms)
//   | 6 bytes, 7 string (u16 BE length + bytes) | 9 UUID (16 bytes).
//
//   detail::EventStreamDecoder d;
//   Status s = d.feed(chunk, [](detail::EventStreamMessage&& m) {
//     if (m.header(":message-type") == "event") ... m.payload ...
//   });
//   // !s.ok(): the stream is corrupt (kDataLoss) and stays failed; drop the connection.
//
// The decoder keeps at most one incomplete message; a message may be split anywhere across
// feed() calls. Limits (as the AWS runtimes enforce): a message is at most 16 MiB and its
// headers at most 128 KiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardline/status.h"

namespace shardline::detail {

inline constexpr std::size_t kEventStreamMaxMessage = 16u << 20;
inline constexpr std::size_t kEventStreamMaxHeaders = 128u << 10;

struct EventStreamMessage {
  /// In wire order. String and byte-array values as they are; booleans as "true"/"false";
  /// integers and timestamps in decimal; UUIDs as 32 lower-case hex digits.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;

  /// The first header called `name` (exact case, as the wire names are), or "".
  std::string_view header(std::string_view name) const noexcept;
};

class EventStreamDecoder {
 public:
  using Sink = std::function<void(EventStreamMessage&&)>;

  /// Takes the next bytes of the stream and passes each message they complete to `sink`, in
  /// order. A malformed message (bad length, CRC mismatch, unknown header type, truncated
  /// header) returns kDataLoss naming the fault; every later call returns it again.
  Status feed(std::string_view bytes, const Sink& sink);

  /// Bytes of an incomplete message held (0 between messages: a clean end of stream).
  std::size_t buffered() const noexcept { return buffer_.size() - start_; }
  bool failed() const noexcept { return !error_.ok(); }

 private:
  std::string buffer_;
  std::size_t start_ = 0;
  Status error_;
};

/// Exactly one whole message, as the decoder reads it.
Status decode_event_stream_message(std::string_view bytes, EventStreamMessage& out);

/// Encodes a message whose header values are all strings (type 7), the form AWS uses for
/// `:message-type`, `:event-type` and friends. For tests and fakes.
std::string encode_event_stream_message(
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view payload);

}  // namespace shardline::detail
