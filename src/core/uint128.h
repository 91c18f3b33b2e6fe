// Internal: the compiler's unsigned 128-bit integer (GCC and Clang), and conversions.
#pragma once

#include "shardline/hash_key.h"

namespace shardline::detail {

__extension__ typedef unsigned __int128 u128;

inline constexpr u128 to_u128(const HashKey& k) noexcept {
  return (static_cast<u128>(k.hi()) << 64) | k.lo();
}
inline constexpr HashKey from_u128(u128 v) noexcept {
  return {static_cast<std::uint64_t>(v >> 64), static_cast<std::uint64_t>(v)};
}

}  // namespace shardline::detail
