#include "shardline/hash_key.h"

#include <cstring>

#include "core/digest.h"
#include "core/uint128.h"

namespace shardline {

using detail::u128;

Result<HashKey> HashKey::parse_decimal(std::string_view s) {
  if (s.empty()) return Status::invalid_argument("explicit hash key is empty");
  // 2^128-1 has 39 digits; allow leading zeros beyond that as long as the value fits.
  constexpr u128 kMax = ~static_cast<u128>(0);
  u128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return Status::invalid_argument(
          "explicit hash key must be a decimal integer in [0, 2^128-1] (digits only), got '" +
          std::string(s.substr(0, 64)) + (s.size() > 64 ? "...'" : "'"));
    }
    const unsigned d = static_cast<unsigned>(c - '0');
    if (v > (kMax - d) / 10) {
      return Status::out_of_range("explicit hash key exceeds 2^128-1: '" +
                                  std::string(s.substr(0, 64)) + (s.size() > 64 ? "...'" : "'"));
    }
    v = v * 10 + d;
  }
  return detail::from_u128(v);
}

HashKey HashKey::from_big_endian(const unsigned char b[16]) noexcept {
  std::uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | b[i];
  for (int i = 8; i < 16; ++i) lo = (lo << 8) | b[i];
  return {hi, lo};
}

HashKey HashKey::from_partition_key(std::string_view pk) noexcept {
  const detail::Md5Digest d = detail::md5(pk);
  return from_big_endian(d.data());
}

std::size_t HashKey::to_chars(char (&buf)[40]) const noexcept {
  char* p = buf + sizeof buf;
  u128 v = detail::to_u128(*this);
  // Peel 19 digits at a time with 64-bit division: two 128-bit divisions at most.
  constexpr std::uint64_t kTen19 = 10000000000000000000ULL;
  while (v > 0xFFFFFFFFFFFFFFFFULL) {
    std::uint64_t chunk = static_cast<std::uint64_t>(v % kTen19);
    v /= kTen19;
    for (int i = 0; i < 19; ++i) {
      *--p = static_cast<char>('0' + chunk % 10);
      chunk /= 10;
    }
  }
  std::uint64_t low = static_cast<std::uint64_t>(v);
  do {
    *--p = static_cast<char>('0' + low % 10);
    low /= 10;
  } while (low != 0);
  const std::size_t n = static_cast<std::size_t>(buf + sizeof buf - p);
  std::memmove(buf, p, n);
  return n;
}

std::size_t HashKey::append_decimal(std::string& out) const {
  char buf[40];
  const std::size_t n = to_chars(buf);
  out.append(buf, n);
  return n;
}

std::string HashKey::to_decimal() const {
  std::string s;
  append_decimal(s);
  return s;
}

HashKeyRange even_split_range(std::uint32_t index, std::uint32_t n) noexcept {
  constexpr u128 kMax = ~static_cast<u128>(0);
  // floor(2^128 / n), computed without overflowing: (2^128 - 1) / n, plus one when n divides 2^128.
  u128 width = kMax / n + ((kMax % n) == n - 1 ? 1 : 0);
  const u128 start = width * index;
  const u128 end = (index + 1 >= n) ? kMax : width * (index + 1) - 1;
  return {detail::from_u128(start), detail::from_u128(end)};
}

}  // namespace shardline
