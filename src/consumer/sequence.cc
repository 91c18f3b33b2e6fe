// Extended sequence numbers: validation, the KCL's order, checkpoint error names.
#include <string_view>

#include "shardline/consumer.h"

namespace shardline {
namespace {

// Rank of a sentinel in the KCL's order; 0 for a sequence number.
int sentinel_rank(std::string_view s) noexcept {
  if (s == kCheckpointAtTimestamp) return -3;
  if (s == kCheckpointTrimHorizon) return -2;
  if (s == kCheckpointLatest) return -1;
  if (s == kCheckpointShardEnd) return 1;
  return 0;
}

std::string_view strip_zeros(std::string_view s) noexcept {
  while (s.size() > 1 && s.front() == '0') s.remove_prefix(1);
  return s;
}

}  // namespace

bool ExtendedSequenceNumber::is_sentinel() const noexcept {
  return sentinel_rank(sequence_number) != 0;
}

Status validate_extended_sequence_number(const ExtendedSequenceNumber& esn) {
  if (esn.sub_sequence_number < 0) {
    return Status(StatusCode::kInvalidArgument, "sub-sequence number must not be negative, got " +
                                                    std::to_string(esn.sub_sequence_number));
  }
  const std::string& s = esn.sequence_number;
  if (sentinel_rank(s) != 0) return {};
  bool digits = !s.empty() && s.size() <= 129;
  for (char c : s) digits = digits && c >= '0' && c <= '9';
  if (!digits) {
    std::string shown = s.size() > 64 ? s.substr(0, 64) + "..." : s;
    return Status(StatusCode::kInvalidArgument,
                  "'" + shown +
                      "' is not a sequence number (decimal digits) or one of TRIM_HORIZON, "
                      "LATEST, AT_TIMESTAMP, SHARD_END");
  }
  return {};
}

int compare(const ExtendedSequenceNumber& a, const ExtendedSequenceNumber& b) noexcept {
  int ra = sentinel_rank(a.sequence_number);
  int rb = sentinel_rank(b.sequence_number);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 0) {
    std::string_view x = strip_zeros(a.sequence_number);
    std::string_view y = strip_zeros(b.sequence_number);
    if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
    if (int c = x.compare(y); c != 0) return c < 0 ? -1 : 1;
  }
  if (a.sub_sequence_number != b.sub_sequence_number) {
    return a.sub_sequence_number < b.sub_sequence_number ? -1 : 1;
  }
  return 0;
}

std::string_view checkpoint_error_name(const Status& status) noexcept {
  switch (status.code()) {
    case StatusCode::kOk:
      return "";
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
    case StatusCode::kCancelled:
      return "ShutdownException";
    case StatusCode::kResourceExhausted:
      return "ThrottlingException";
    case StatusCode::kNotFound:
      return "InvalidStateException";
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return "IllegalArgumentException";
    default:
      return "KinesisClientLibDependencyException";
  }
}

}  // namespace shardline
