// Multi-buffer MD5: up to 16 independent messages hashed side by side, one per 32-bit lane of
// an AVX-512 register. MD5 is a serial chain within one message (about 4.5 cycles per byte in
// OpenSSL's assembly, which the scalar path uses), but independent messages have no such
// dependency: 16 lanes cost about as much per block as one scalar block. The producer digests
// every aggregate of a PutRecords request together, and the reader every aggregate of a
// GetRecords batch and every partition key of an aggregate.
//
// Messages of different lengths share a group: each lane runs for its own number of blocks
// (its data, then one or two padding blocks from a per-lane tail buffer) and is masked out
// after that. Groups are formed from inputs sorted by length, so lanes rarely idle.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/digest.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// GCC 12's AVX-512 unpack intrinsics pass _mm512_undefined_epi32() as their unused merge
// source, which -Wmaybe-uninitialized reports once inlined (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace shardline::detail {

namespace {

constexpr std::uint32_t kK[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

#if defined(__x86_64__)

constexpr int kLanes = 16;

// One lane's message: `full` 64-byte blocks read in place, then `tail_blocks` blocks of
// padding (with the message's last partial block) from `tail`.
struct Lane {
  const unsigned char* data = nullptr;
  std::size_t full = 0;
  std::size_t tail_blocks = 0;
  alignas(64) unsigned char tail[128];
  const unsigned char* block(std::size_t b) const {
    return b < full ? data + 64 * b : tail + 64 * (b - full);
  }
};

void prepare_lane(Lane& lane, std::string_view m) {
  lane.data = reinterpret_cast<const unsigned char*>(m.data());
  lane.full = m.size() / 64;
  const std::size_t rest = m.size() % 64;
  std::memset(lane.tail, 0, sizeof lane.tail);
  if (rest) std::memcpy(lane.tail, lane.data + 64 * lane.full, rest);
  lane.tail[rest] = 0x80;
  lane.tail_blocks = rest + 1 + 8 <= 64 ? 1 : 2;
  const std::uint64_t bits = static_cast<std::uint64_t>(m.size()) * 8;
  // MD5 appends the bit length little-endian (x86 is little-endian).
  std::memcpy(lane.tail + 64 * lane.tail_blocks - 8, &bits, 8);
}

// Transpose a 16x16 matrix of 32-bit words: r[i] holds lane i's block on entry and word i of
// every lane on exit.
__attribute__((target("avx512f"))) inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Now within each 128-bit slice k of r[4g + j], word j of rows 4k'.. is arranged; combine
  // the four 128-bit slices across groups of rows.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

#define SL_MD5_STEP(imm, a, b, c, d, x, k, s)                                               \
  a = _mm512_add_epi32(                                                                     \
      b, _mm512_rol_epi32(                                                                  \
             _mm512_add_epi32(_mm512_add_epi32(a, _mm512_ternarylogic_epi32(b, c, d, imm)), \
                              _mm512_add_epi32(x, _mm512_set1_epi32(static_cast<int>(k)))), \
             s))

// imm8 truth tables for _mm512_ternarylogic_epi32(b, c, d): F = b ? c : d (0xCA),
// G = d ? b : c, written as (b & d) | (c & ~d) (0xE4), H = b ^ c ^ d (0x96),
// I = c ^ (b | ~d) (0x39).
__attribute__((target("avx512f"))) void md5_group(Lane* lanes, int n, Md5Digest* out) {
  std::size_t blocks[kLanes] = {};
  std::size_t max_blocks = 0;
  for (int i = 0; i < n; ++i) {
    blocks[i] = lanes[i].full + lanes[i].tail_blocks;
    max_blocks = std::max(max_blocks, blocks[i]);
  }
  __m512i a = _mm512_set1_epi32(0x67452301);
  __m512i b = _mm512_set1_epi32(static_cast<int>(0xefcdab89));
  __m512i c = _mm512_set1_epi32(static_cast<int>(0x98badcfe));
  __m512i d = _mm512_set1_epi32(0x10325476);
  alignas(64) static const unsigned char kZero[64] = {};
  for (std::size_t blk = 0; blk < max_blocks; ++blk) {
    __m512i m[16];
    __mmask16 active = 0;
    for (int i = 0; i < kLanes; ++i) {
      const unsigned char* p = kZero;
      if (i < n && blk < blocks[i]) {
        p = lanes[i].block(blk);
        active = static_cast<__mmask16>(active | (1u << i));
      }
      m[i] = _mm512_loadu_si512(p);
    }
    transpose16(m);
    const __m512i aa = a, bb = b, cc = c, dd = d;
    SL_MD5_STEP(0xCA, a, b, c, d, m[0], kK[0], 7);
    SL_MD5_STEP(0xCA, d, a, b, c, m[1], kK[1], 12);
    SL_MD5_STEP(0xCA, c, d, a, b, m[2], kK[2], 17);
    SL_MD5_STEP(0xCA, b, c, d, a, m[3], kK[3], 22);
    SL_MD5_STEP(0xCA, a, b, c, d, m[4], kK[4], 7);
    SL_MD5_STEP(0xCA, d, a, b, c, m[5], kK[5], 12);
    SL_MD5_STEP(0xCA, c, d, a, b, m[6], kK[6], 17);
    SL_MD5_STEP(0xCA, b, c, d, a, m[7], kK[7], 22);
    SL_MD5_STEP(0xCA, a, b, c, d, m[8], kK[8], 7);
    SL_MD5_STEP(0xCA, d, a, b, c, m[9], kK[9], 12);
    SL_MD5_STEP(0xCA, c, d, a, b, m[10], kK[10], 17);
    SL_MD5_STEP(0xCA, b, c, d, a, m[11], kK[11], 22);
    SL_MD5_STEP(0xCA, a, b, c, d, m[12], kK[12], 7);
    SL_MD5_STEP(0xCA, d, a, b, c, m[13], kK[13], 12);
    SL_MD5_STEP(0xCA, c, d, a, b, m[14], kK[14], 17);
    SL_MD5_STEP(0xCA, b, c, d, a, m[15], kK[15], 22);

    SL_MD5_STEP(0xE4, a, b, c, d, m[1], kK[16], 5);
    SL_MD5_STEP(0xE4, d, a, b, c, m[6], kK[17], 9);
    SL_MD5_STEP(0xE4, c, d, a, b, m[11], kK[18], 14);
    SL_MD5_STEP(0xE4, b, c, d, a, m[0], kK[19], 20);
    SL_MD5_STEP(0xE4, a, b, c, d, m[5], kK[20], 5);
    SL_MD5_STEP(0xE4, d, a, b, c, m[10], kK[21], 9);
    SL_MD5_STEP(0xE4, c, d, a, b, m[15], kK[22], 14);
    SL_MD5_STEP(0xE4, b, c, d, a, m[4], kK[23], 20);
    SL_MD5_STEP(0xE4, a, b, c, d, m[9], kK[24], 5);
    SL_MD5_STEP(0xE4, d, a, b, c, m[14], kK[25], 9);
    SL_MD5_STEP(0xE4, c, d, a, b, m[3], kK[26], 14);
    SL_MD5_STEP(0xE4, b, c, d, a, m[8], kK[27], 20);
    SL_MD5_STEP(0xE4, a, b, c, d, m[13], kK[28], 5);
    SL_MD5_STEP(0xE4, d, a, b, c, m[2], kK[29], 9);
    SL_MD5_STEP(0xE4, c, d, a, b, m[7], kK[30], 14);
    SL_MD5_STEP(0xE4, b, c, d, a, m[12], kK[31], 20);

    SL_MD5_STEP(0x96, a, b, c, d, m[5], kK[32], 4);
    SL_MD5_STEP(0x96, d, a, b, c, m[8], kK[33], 11);
    SL_MD5_STEP(0x96, c, d, a, b, m[11], kK[34], 16);
    SL_MD5_STEP(0x96, b, c, d, a, m[14], kK[35], 23);
    SL_MD5_STEP(0x96, a, b, c, d, m[1], kK[36], 4);
    SL_MD5_STEP(0x96, d, a, b, c, m[4], kK[37], 11);
    SL_MD5_STEP(0x96, c, d, a, b, m[7], kK[38], 16);
    SL_MD5_STEP(0x96, b, c, d, a, m[10], kK[39], 23);
    SL_MD5_STEP(0x96, a, b, c, d, m[13], kK[40], 4);
    SL_MD5_STEP(0x96, d, a, b, c, m[0], kK[41], 11);
    SL_MD5_STEP(0x96, c, d, a, b, m[3], kK[42], 16);
    SL_MD5_STEP(0x96, b, c, d, a, m[6], kK[43], 23);
    SL_MD5_STEP(0x96, a, b, c, d, m[9], kK[44], 4);
    SL_MD5_STEP(0x96, d, a, b, c, m[12], kK[45], 11);
    SL_MD5_STEP(0x96, c, d, a, b, m[15], kK[46], 16);
    SL_MD5_STEP(0x96, b, c, d, a, m[2], kK[47], 23);

    SL_MD5_STEP(0x39, a, b, c, d, m[0], kK[48], 6);
    SL_MD5_STEP(0x39, d, a, b, c, m[7], kK[49], 10);
    SL_MD5_STEP(0x39, c, d, a, b, m[14], kK[50], 15);
    SL_MD5_STEP(0x39, b, c, d, a, m[5], kK[51], 21);
    SL_MD5_STEP(0x39, a, b, c, d, m[12], kK[52], 6);
    SL_MD5_STEP(0x39, d, a, b, c, m[3], kK[53], 10);
    SL_MD5_STEP(0x39, c, d, a, b, m[10], kK[54], 15);
    SL_MD5_STEP(0x39, b, c, d, a, m[1], kK[55], 21);
    SL_MD5_STEP(0x39, a, b, c, d, m[8], kK[56], 6);
    SL_MD5_STEP(0x39, d, a, b, c, m[15], kK[57], 10);
    SL_MD5_STEP(0x39, c, d, a, b, m[6], kK[58], 15);
    SL_MD5_STEP(0x39, b, c, d, a, m[13], kK[59], 21);
    SL_MD5_STEP(0x39, a, b, c, d, m[4], kK[60], 6);
    SL_MD5_STEP(0x39, d, a, b, c, m[11], kK[61], 10);
    SL_MD5_STEP(0x39, c, d, a, b, m[2], kK[62], 15);
    SL_MD5_STEP(0x39, b, c, d, a, m[9], kK[63], 21);

    // Lanes past their last block keep their state.
    a = _mm512_mask_add_epi32(aa, active, a, aa);
    b = _mm512_mask_add_epi32(bb, active, b, bb);
    c = _mm512_mask_add_epi32(cc, active, c, cc);
    d = _mm512_mask_add_epi32(dd, active, d, dd);
  }
  alignas(64) std::uint32_t wa[16], wb[16], wc[16], wd[16];
  _mm512_store_si512(wa, a);
  _mm512_store_si512(wb, b);
  _mm512_store_si512(wc, c);
  _mm512_store_si512(wd, d);
  for (int i = 0; i < n; ++i) {
    const std::uint32_t words[4] = {wa[i], wb[i], wc[i], wd[i]};
    std::memcpy(out[i].data(), words, 16);
  }
}
#undef SL_MD5_STEP

bool have_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

#endif  // __x86_64__

}  // namespace

bool md5_many_is_vectorized() noexcept {
#if defined(__x86_64__)
  return have_avx512();
#else
  return false;
#endif
}

void md5_many(std::span<const std::string_view> inputs, std::span<Md5Digest> out,
              bool force_scalar) noexcept {
  const std::size_t n = std::min(inputs.size(), out.size());
#if defined(__x86_64__)
  if (!force_scalar && n >= 2 && have_avx512()) {
    // Longest first, so each group's lanes have similar lengths.
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      return inputs[x].size() > inputs[y].size();
    });
    Lane lanes[kLanes];
    Md5Digest digests[kLanes];
    for (std::size_t g = 0; g < n; g += kLanes) {
      const int count = static_cast<int>(std::min<std::size_t>(kLanes, n - g));
      if (count == 1) {
        out[order[g]] = md5(inputs[order[g]]);
        break;
      }
      for (int i = 0; i < count; ++i) prepare_lane(lanes[i], inputs[order[g + i]]);
      md5_group(lanes, count, digests);
      for (int i = 0; i < count; ++i) out[order[g + i]] = digests[i];
    }
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) out[i] = md5(inputs[i]);
}

}  // namespace shardline::detail
