// Internal: the timestamp formats AWS uses for signing and for credential expirations.
// No I/O, no locale, no libc time functions (thread-safe by construction).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace shardline::detail {

/// The SigV4 "basic" timestamp, "20150830T123600Z": 16 characters written to `out`.
void format_amz_date(std::chrono::system_clock::time_point t, char out[16]) noexcept;

/// ISO 8601 extended UTC with seconds, "2015-08-30T12:36:00Z".
std::string format_iso8601(std::chrono::system_clock::time_point t);

/// Parse the timestamps credential sources return: "2015-08-30T12:36:00Z", with optional
/// fractional seconds ("...:00.123Z") and a numeric offset instead of Z ("+02:00", "-0500").
/// Returns nullopt for anything else (including out-of-range fields).
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

}  // namespace shardline::detail
