// File: shardline/hash_key.h
//
// Kinesis hash keys: unsigned 128-bit integers. A record's hash key is its explicit hash key
// (a strict decimal string in [0, 2^128-1]) or MD5(partition key bytes) read as a big-endian
// 128-bit integer. Shards own inclusive hash-key ranges.
//
//   auto k = shardline::HashKey::from_partition_key("abcd");
//   k.to_decimal();  // "301716283811389038011477436469853762335"
//   auto e = shardline::HashKey::parse_decimal("0123");  // ok: leading zeros are decimal, = 123
//   auto bad = shardline::HashKey::parse_decimal("0x10"); // kInvalidArgument
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "shardline/result.h"

namespace shardline {

class HashKey {
 public:
  constexpr HashKey() noexcept = default;
  constexpr HashKey(std::uint64_t hi, std::uint64_t lo) noexcept : hi_(hi), lo_(lo) {}

  static constexpr HashKey max() noexcept { return {~0ULL, ~0ULL}; }

  /// Strict decimal: 1..39 ASCII digits (leading zeros allowed, as Java's BigInteger and the
  /// Kinesis service accept), value <= 2^128-1. No sign, no spaces, no hex or octal.
  static Result<HashKey> parse_decimal(std::string_view s);

  /// MD5(bytes) as a big-endian 128-bit integer: the key Kinesis uses for a partition key.
  static HashKey from_partition_key(std::string_view partition_key) noexcept;

  /// A 16-byte big-endian digest as an integer.
  static HashKey from_big_endian(const unsigned char bytes[16]) noexcept;

  /// Canonical decimal, no leading zeros ("0" for zero).
  std::string to_decimal() const;
  /// Write the canonical decimal into `buf` (no NUL); returns its length (1..39).
  std::size_t to_chars(char (&buf)[40]) const noexcept;
  /// Append the canonical decimal to `out`; returns the number of characters appended.
  std::size_t append_decimal(std::string& out) const;

  constexpr std::uint64_t hi() const noexcept { return hi_; }
  constexpr std::uint64_t lo() const noexcept { return lo_; }

  friend constexpr auto operator<=>(const HashKey&, const HashKey&) noexcept = default;
  friend constexpr bool operator==(const HashKey&, const HashKey&) noexcept = default;

 private:
  std::uint64_t hi_ = 0;  // declared first so the defaulted <=> compares hi then lo
  std::uint64_t lo_ = 0;
};

/// For unordered containers keyed by HashKey.
struct HashKeyHash {
  std::size_t operator()(const HashKey& k) const noexcept {
    return static_cast<std::size_t>(k.hi() * 0x9E3779B97F4A7C15ULL ^ k.lo());
  }
};

/// An inclusive range of hash keys, as a shard owns it.
struct HashKeyRange {
  HashKey start;
  HashKey end = HashKey::max();
  constexpr bool contains(const HashKey& k) const noexcept { return start <= k && k <= end; }
  friend constexpr bool operator==(const HashKeyRange&, const HashKeyRange&) noexcept = default;
};

/// The ranges CreateStream gives an N-shard stream: range i starts at i * floor(2^128 / N)
/// and the last range ends at 2^128-1. Preconditions: 1 <= n.
HashKeyRange even_split_range(std::uint32_t index, std::uint32_t n) noexcept;

}  // namespace shardline
