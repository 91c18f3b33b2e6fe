#include "aws/aws_time.h"

#include <cstdint>

namespace shardline::detail {

namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::seconds;
using std::chrono::system_clock;

void put2(char* p, unsigned v) noexcept {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

void put4(char* p, int v) noexcept {
  // Years outside 0..9999 cannot appear in a SigV4 date; clamp rather than overflow the buffer.
  const unsigned u = v < 0 ? 0U : (v > 9999 ? 9999U : static_cast<unsigned>(v));
  put2(p, u / 100);
  put2(p + 2, u % 100);
}

struct Fields {
  int year;
  unsigned month, day, hour, minute, second;
};

Fields split(system_clock::time_point t) noexcept {
  const auto s = floor<seconds>(t);
  const auto d = floor<days>(s);
  const std::chrono::year_month_day ymd{d};
  const std::chrono::hh_mm_ss hms{s - d};
  return {static_cast<int>(ymd.year()),
          static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()),
          static_cast<unsigned>(hms.hours().count()),
          static_cast<unsigned>(hms.minutes().count()),
          static_cast<unsigned>(hms.seconds().count())};
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

void format_amz_date(system_clock::time_point t, char out[16]) noexcept {
  const Fields f = split(t);
  put4(out, f.year);
  put2(out + 4, f.month);
  put2(out + 6, f.day);
  out[8] = 'T';
  put2(out + 9, f.hour);
  put2(out + 11, f.minute);
  put2(out + 13, f.second);
  out[15] = 'Z';
}

std::string format_iso8601(system_clock::time_point t) {
  const Fields f = split(t);
  std::string s(20, '\0');
  put4(s.data(), f.year);
  s[4] = '-';
  put2(s.data() + 5, f.month);
  s[7] = '-';
  put2(s.data() + 8, f.day);
  s[10] = 'T';
  put2(s.data() + 11, f.hour);
  s[13] = ':';
  put2(s.data() + 14, f.minute);
  s[16] = ':';
  put2(s.data() + 17, f.second);
  s[19] = 'Z';
  return s;
}

std::optional<system_clock::time_point> parse_iso8601(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::chrono::nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::int64_t scale = 100'000'000;
    const std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac += std::chrono::nanoseconds((s[pos] - '0') * scale);
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh)) return std::nullopt;
    std::size_t p = pos + 3;
    if (p < s.size() && s[p] == ':') ++p;
    if (!digits(s, p, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_minutes = sign * (oh * 60 + om);
    pos = p + 2;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  // 60 is a leap second; AWS never sends one, and system_clock cannot represent it.
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  const auto t = std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} +
                 seconds{sec} - std::chrono::minutes{offset_minutes};
  return std::chrono::time_point_cast<system_clock::duration>(t) +
         std::chrono::duration_cast<system_clock::duration>(frac);
}

}  // namespace shardline::detail
