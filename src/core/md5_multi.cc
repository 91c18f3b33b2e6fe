// Multi-buffer MD5: up to 16 independent messages hashed side by side, one per 32-bit lane of
// an AVX-512 register (8 in an AVX2 register on CPUs without AVX-512), and up to 32 as two such
// chains interleaved. MD5 is a serial chain within
// one message (about 4.5 cycles per byte in OpenSSL's assembly, which the scalar path uses), but
// independent messages have no such dependency: 16 lanes cost about as much per block as one scalar
// block. The producer digests every aggregate of a PutRecords request together, and the reader
// every aggregate of a GetRecords batch and every partition key of an aggregate.
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
// source, which -Wmaybe-uninitialized (or -Wuninitialized) reports once inlined (a known
// false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
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

// Each lane's block count (data plus padding) into blocks[]; returns the largest.
std::size_t count_blocks(const Lane* lanes, int n, std::size_t* blocks) {
  std::size_t max_blocks = 0;
  for (int i = 0; i < n; ++i) {
    blocks[i] = lanes[i].full + lanes[i].tail_blocks;
    max_blocks = std::max(max_blocks, blocks[i]);
  }
  return max_blocks;
}

// Lane i's digest: its final A, B, C, D words, little-endian.
void store_digests(const std::uint32_t* wa, const std::uint32_t* wb, const std::uint32_t* wc,
                   const std::uint32_t* wd, int n, Md5Digest* out) {
  for (int i = 0; i < n; ++i) {
    const std::uint32_t words[4] = {wa[i], wb[i], wc[i], wd[i]};
    std::memcpy(out[i].data(), words, 16);
  }
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

// The 64 steps of one block. imm8 truth tables for _mm512_ternarylogic_epi32(b, c, d):
// F = b ? c : d (0xCA), G = d ? b : c, written as (b & d) | (c & ~d) (0xE4), H = b ^ c ^ d
// (0x96), I = c ^ (b | ~d) (0x39). STEP(imm, a, b, c, d, word, k, s) is one chain's step or two.
#define SL_MD5_ROUNDS(STEP)               \
  STEP(0xCA, a, b, c, d, 0, kK[0], 7);    \
  STEP(0xCA, d, a, b, c, 1, kK[1], 12);   \
  STEP(0xCA, c, d, a, b, 2, kK[2], 17);   \
  STEP(0xCA, b, c, d, a, 3, kK[3], 22);   \
  STEP(0xCA, a, b, c, d, 4, kK[4], 7);    \
  STEP(0xCA, d, a, b, c, 5, kK[5], 12);   \
  STEP(0xCA, c, d, a, b, 6, kK[6], 17);   \
  STEP(0xCA, b, c, d, a, 7, kK[7], 22);   \
  STEP(0xCA, a, b, c, d, 8, kK[8], 7);    \
  STEP(0xCA, d, a, b, c, 9, kK[9], 12);   \
  STEP(0xCA, c, d, a, b, 10, kK[10], 17); \
  STEP(0xCA, b, c, d, a, 11, kK[11], 22); \
  STEP(0xCA, a, b, c, d, 12, kK[12], 7);  \
  STEP(0xCA, d, a, b, c, 13, kK[13], 12); \
  STEP(0xCA, c, d, a, b, 14, kK[14], 17); \
  STEP(0xCA, b, c, d, a, 15, kK[15], 22); \
  STEP(0xE4, a, b, c, d, 1, kK[16], 5);   \
  STEP(0xE4, d, a, b, c, 6, kK[17], 9);   \
  STEP(0xE4, c, d, a, b, 11, kK[18], 14); \
  STEP(0xE4, b, c, d, a, 0, kK[19], 20);  \
  STEP(0xE4, a, b, c, d, 5, kK[20], 5);   \
  STEP(0xE4, d, a, b, c, 10, kK[21], 9);  \
  STEP(0xE4, c, d, a, b, 15, kK[22], 14); \
  STEP(0xE4, b, c, d, a, 4, kK[23], 20);  \
  STEP(0xE4, a, b, c, d, 9, kK[24], 5);   \
  STEP(0xE4, d, a, b, c, 14, kK[25], 9);  \
  STEP(0xE4, c, d, a, b, 3, kK[26], 14);  \
  STEP(0xE4, b, c, d, a, 8, kK[27], 20);  \
  STEP(0xE4, a, b, c, d, 13, kK[28], 5);  \
  STEP(0xE4, d, a, b, c, 2, kK[29], 9);   \
  STEP(0xE4, c, d, a, b, 7, kK[30], 14);  \
  STEP(0xE4, b, c, d, a, 12, kK[31], 20); \
  STEP(0x96, a, b, c, d, 5, kK[32], 4);   \
  STEP(0x96, d, a, b, c, 8, kK[33], 11);  \
  STEP(0x96, c, d, a, b, 11, kK[34], 16); \
  STEP(0x96, b, c, d, a, 14, kK[35], 23); \
  STEP(0x96, a, b, c, d, 1, kK[36], 4);   \
  STEP(0x96, d, a, b, c, 4, kK[37], 11);  \
  STEP(0x96, c, d, a, b, 7, kK[38], 16);  \
  STEP(0x96, b, c, d, a, 10, kK[39], 23); \
  STEP(0x96, a, b, c, d, 13, kK[40], 4);  \
  STEP(0x96, d, a, b, c, 0, kK[41], 11);  \
  STEP(0x96, c, d, a, b, 3, kK[42], 16);  \
  STEP(0x96, b, c, d, a, 6, kK[43], 23);  \
  STEP(0x96, a, b, c, d, 9, kK[44], 4);   \
  STEP(0x96, d, a, b, c, 12, kK[45], 11); \
  STEP(0x96, c, d, a, b, 15, kK[46], 16); \
  STEP(0x96, b, c, d, a, 2, kK[47], 23);  \
  STEP(0x39, a, b, c, d, 0, kK[48], 6);   \
  STEP(0x39, d, a, b, c, 7, kK[49], 10);  \
  STEP(0x39, c, d, a, b, 14, kK[50], 15); \
  STEP(0x39, b, c, d, a, 5, kK[51], 21);  \
  STEP(0x39, a, b, c, d, 12, kK[52], 6);  \
  STEP(0x39, d, a, b, c, 3, kK[53], 10);  \
  STEP(0x39, c, d, a, b, 10, kK[54], 15); \
  STEP(0x39, b, c, d, a, 1, kK[55], 21);  \
  STEP(0x39, a, b, c, d, 8, kK[56], 6);   \
  STEP(0x39, d, a, b, c, 15, kK[57], 10); \
  STEP(0x39, c, d, a, b, 6, kK[58], 15);  \
  STEP(0x39, b, c, d, a, 13, kK[59], 21); \
  STEP(0x39, a, b, c, d, 4, kK[60], 6);   \
  STEP(0x39, d, a, b, c, 11, kK[61], 10); \
  STEP(0x39, c, d, a, b, 2, kK[62], 15);  \
  STEP(0x39, b, c, d, a, 9, kK[63], 21);

// One chain: state a..d, message words m[].
#define SL_MD5_STEP1(imm, a, b, c, d, i, k, s) SL_MD5_STEP(imm, a, b, c, d, m[i], k, s)
// Two independent chains, step by step: a..d with m[], and a2..d2 with m2[]. Each step is a
// serial chain of about five dependent operations (latency-bound at 16 lanes); the other
// chain's step fills the idle ports.
#define SL_MD5_STEP2(imm, a, b, c, d, i, k, s) \
  SL_MD5_STEP(imm, a, b, c, d, m[i], k, s);    \
  SL_MD5_STEP(imm, a##2, b##2, c##2, d##2, m2[i], k, s)

// Block `blk` of up to 16 lanes, transposed: m[w] holds word w of every lane. Returns the
// lanes that have this block (the others read zeros and keep their state).
__attribute__((target("avx512f"))) inline __mmask16 load_block16(const Lane* lanes, int n,
                                                                 const std::size_t* blocks,
                                                                 std::size_t blk, __m512i m[16]) {
  alignas(64) static const unsigned char kZero[64] = {};
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
  return active;
}

struct State16 {
  __m512i a, b, c, d;
};

__attribute__((target("avx512f"))) inline State16 md5_init16() {
  return {_mm512_set1_epi32(0x67452301), _mm512_set1_epi32(static_cast<int>(0xefcdab89)),
          _mm512_set1_epi32(static_cast<int>(0x98badcfe)), _mm512_set1_epi32(0x10325476)};
}

// Lane i's digest: its final A, B, C, D words.
__attribute__((target("avx512f"))) inline void store16(const State16& s, int n, Md5Digest* out) {
  alignas(64) std::uint32_t wa[16], wb[16], wc[16], wd[16];
  _mm512_store_si512(wa, s.a);
  _mm512_store_si512(wb, s.b);
  _mm512_store_si512(wc, s.c);
  _mm512_store_si512(wd, s.d);
  store_digests(wa, wb, wc, wd, n, out);
}

// Adds a block's a..d to the state of the lanes in `active`; the others keep theirs.
__attribute__((target("avx512f"))) inline void md5_add16(State16& s, __mmask16 active, __m512i a,
                                                         __m512i b, __m512i c, __m512i d) {
  s.a = _mm512_mask_add_epi32(s.a, active, a, s.a);
  s.b = _mm512_mask_add_epi32(s.b, active, b, s.b);
  s.c = _mm512_mask_add_epi32(s.c, active, c, s.c);
  s.d = _mm512_mask_add_epi32(s.d, active, d, s.d);
}

// One block of one chain; lanes not in `active` keep their state.
__attribute__((target("avx512f"))) inline void md5_block16(State16& s, const __m512i m[16],
                                                           __mmask16 active) {
  __m512i a = s.a, b = s.b, c = s.c, d = s.d;
  SL_MD5_ROUNDS(SL_MD5_STEP1)
  md5_add16(s, active, a, b, c, d);
}

// Up to 16 lanes, one chain.
__attribute__((target("avx512f"))) void md5_group(Lane* lanes, int n, Md5Digest* out) {
  std::size_t blocks[kLanes] = {};
  const std::size_t max_blocks = count_blocks(lanes, n, blocks);
  State16 s = md5_init16();
  for (std::size_t blk = 0; blk < max_blocks; ++blk) {
    __m512i m[16];
    const __mmask16 active = load_block16(lanes, n, blocks, blk, m);
    md5_block16(s, m, active);
  }
  store16(s, n, out);
}

// 17 to 32 lanes as two interleaved chains of 16: lanes[0..15] and lanes[16..n). Both chains
// run together while both have blocks, then the longer one alone (md5_many sorts the lanes
// longest first, so that is the first). Two passes of md5_group would each wait on the step
// latency; interleaved, two chains cost about a third more than one.
__attribute__((target("avx512f"))) void md5_group32(Lane* lanes, int n, Md5Digest* out) {
  const int n2 = n - kLanes;
  Lane* lanes2 = lanes + kLanes;
  std::size_t blocks[kLanes] = {}, blocks2[kLanes] = {};
  const std::size_t max_blocks = count_blocks(lanes, kLanes, blocks);
  const std::size_t max_blocks2 = count_blocks(lanes2, n2, blocks2);
  const std::size_t both = std::min(max_blocks, max_blocks2);
  State16 s1 = md5_init16(), s2 = md5_init16();
  std::size_t blk = 0;
  for (; blk < both; ++blk) {
    __m512i m[16], m2[16];
    const __mmask16 active = load_block16(lanes, kLanes, blocks, blk, m);
    const __mmask16 active2 = load_block16(lanes2, n2, blocks2, blk, m2);
    __m512i a = s1.a, b = s1.b, c = s1.c, d = s1.d;
    __m512i a2 = s2.a, b2 = s2.b, c2 = s2.c, d2 = s2.d;
    SL_MD5_ROUNDS(SL_MD5_STEP2)
    md5_add16(s1, active, a, b, c, d);
    md5_add16(s2, active2, a2, b2, c2, d2);
  }
  for (; blk < max_blocks; ++blk) {
    __m512i m[16];
    const __mmask16 active = load_block16(lanes, kLanes, blocks, blk, m);
    md5_block16(s1, m, active);
  }
  for (; blk < max_blocks2; ++blk) {
    __m512i m[16];
    const __mmask16 active2 = load_block16(lanes2, n2, blocks2, blk, m);
    md5_block16(s2, m, active2);
  }
  store16(s1, kLanes, out);
  store16(s2, n2, out + kLanes);
}
#undef SL_MD5_STEP2
#undef SL_MD5_STEP1
#undef SL_MD5_ROUNDS
#undef SL_MD5_STEP

// The same on AVX2: 8 lanes, rotations from two shifts, the boolean functions spelled out.
__attribute__((target("avx2"))) inline __m256i rol8(__m256i x, int s) {
  return _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - s));
}

// Transpose an 8x8 matrix of 32-bit words held in r[0..7] (r[i]: 8 words of lane i) so that
// r[w] holds word w of every lane.
__attribute__((target("avx2"))) inline void transpose8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // u[4g + j], 128-bit half h: word 4h + j of lanes 4g..4g+3.
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

#define SL_MD5_STEP8(f, a, b, c, d, x, k, s)                                                 \
  a = _mm256_add_epi32(                                                                      \
      b, rol8(_mm256_add_epi32(_mm256_add_epi32(a, f),                                       \
                               _mm256_add_epi32(x, _mm256_set1_epi32(static_cast<int>(k)))), \
              s))
#define SL_F8(b, c, d) _mm256_or_si256(_mm256_and_si256(b, c), _mm256_andnot_si256(b, d))
#define SL_G8(b, c, d) _mm256_or_si256(_mm256_and_si256(b, d), _mm256_andnot_si256(d, c))
#define SL_H8(b, c, d) _mm256_xor_si256(_mm256_xor_si256(b, c), d)
#define SL_I8(b, c, d) \
  _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, _mm256_set1_epi32(-1))))

__attribute__((target("avx2"))) void md5_group8(Lane* lanes, int n, Md5Digest* out) {
  std::size_t blocks[8] = {};
  const std::size_t max_blocks = count_blocks(lanes, n, blocks);
  __m256i a = _mm256_set1_epi32(0x67452301);
  __m256i b = _mm256_set1_epi32(static_cast<int>(0xefcdab89));
  __m256i c = _mm256_set1_epi32(static_cast<int>(0x98badcfe));
  __m256i d = _mm256_set1_epi32(0x10325476);
  alignas(64) static const unsigned char kZero[64] = {};
  for (std::size_t blk = 0; blk < max_blocks; ++blk) {
    __m256i lo[8], hi[8];
    alignas(32) std::int32_t active_words[8];
    for (int i = 0; i < 8; ++i) {
      const unsigned char* p = kZero;
      active_words[i] = 0;
      if (i < n && blk < blocks[i]) {
        p = lanes[i].block(blk);
        active_words[i] = -1;
      }
      lo[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      hi[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    }
    transpose8(lo);  // lo[w]: word w (0..7) of every lane
    transpose8(hi);  // hi[w]: word 8 + w
    const __m256i m[16] = {lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7],
                           hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], hi[6], hi[7]};
    const __m256i active = _mm256_load_si256(reinterpret_cast<const __m256i*>(active_words));
    const __m256i aa = a, bb = b, cc = c, dd = d;
    static constexpr int kR1[4] = {7, 12, 17, 22}, kR2[4] = {5, 9, 14, 20},
                         kR3[4] = {4, 11, 16, 23}, kR4[4] = {6, 10, 15, 21};
    for (int i = 0; i < 16; i += 4) {
      SL_MD5_STEP8(SL_F8(b, c, d), a, b, c, d, m[i], kK[i], kR1[0]);
      SL_MD5_STEP8(SL_F8(a, b, c), d, a, b, c, m[i + 1], kK[i + 1], kR1[1]);
      SL_MD5_STEP8(SL_F8(d, a, b), c, d, a, b, m[i + 2], kK[i + 2], kR1[2]);
      SL_MD5_STEP8(SL_F8(c, d, a), b, c, d, a, m[i + 3], kK[i + 3], kR1[3]);
    }
    for (int i = 16; i < 32; i += 4) {
      SL_MD5_STEP8(SL_G8(b, c, d), a, b, c, d, m[(5 * i + 1) % 16], kK[i], kR2[0]);
      SL_MD5_STEP8(SL_G8(a, b, c), d, a, b, c, m[(5 * (i + 1) + 1) % 16], kK[i + 1], kR2[1]);
      SL_MD5_STEP8(SL_G8(d, a, b), c, d, a, b, m[(5 * (i + 2) + 1) % 16], kK[i + 2], kR2[2]);
      SL_MD5_STEP8(SL_G8(c, d, a), b, c, d, a, m[(5 * (i + 3) + 1) % 16], kK[i + 3], kR2[3]);
    }
    for (int i = 32; i < 48; i += 4) {
      SL_MD5_STEP8(SL_H8(b, c, d), a, b, c, d, m[(3 * i + 5) % 16], kK[i], kR3[0]);
      SL_MD5_STEP8(SL_H8(a, b, c), d, a, b, c, m[(3 * (i + 1) + 5) % 16], kK[i + 1], kR3[1]);
      SL_MD5_STEP8(SL_H8(d, a, b), c, d, a, b, m[(3 * (i + 2) + 5) % 16], kK[i + 2], kR3[2]);
      SL_MD5_STEP8(SL_H8(c, d, a), b, c, d, a, m[(3 * (i + 3) + 5) % 16], kK[i + 3], kR3[3]);
    }
    for (int i = 48; i < 64; i += 4) {
      SL_MD5_STEP8(SL_I8(b, c, d), a, b, c, d, m[(7 * i) % 16], kK[i], kR4[0]);
      SL_MD5_STEP8(SL_I8(a, b, c), d, a, b, c, m[(7 * (i + 1)) % 16], kK[i + 1], kR4[1]);
      SL_MD5_STEP8(SL_I8(d, a, b), c, d, a, b, m[(7 * (i + 2)) % 16], kK[i + 2], kR4[2]);
      SL_MD5_STEP8(SL_I8(c, d, a), b, c, d, a, m[(7 * (i + 3)) % 16], kK[i + 3], kR4[3]);
    }
    // Lanes past their last block keep their state.
    a = _mm256_blendv_epi8(aa, _mm256_add_epi32(a, aa), active);
    b = _mm256_blendv_epi8(bb, _mm256_add_epi32(b, bb), active);
    c = _mm256_blendv_epi8(cc, _mm256_add_epi32(c, cc), active);
    d = _mm256_blendv_epi8(dd, _mm256_add_epi32(d, dd), active);
  }
  alignas(32) std::uint32_t wa[8], wb[8], wc[8], wd[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(wa), a);
  _mm256_store_si256(reinterpret_cast<__m256i*>(wb), b);
  _mm256_store_si256(reinterpret_cast<__m256i*>(wc), c);
  _mm256_store_si256(reinterpret_cast<__m256i*>(wd), d);
  store_digests(wa, wb, wc, wd, n, out);
}
#undef SL_MD5_STEP8
#undef SL_F8
#undef SL_G8
#undef SL_H8
#undef SL_I8

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

bool have_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

#endif  // __x86_64__

}  // namespace

bool md5_many_is_vectorized() noexcept {
#if defined(__x86_64__)
  return have_avx512() || have_avx2();
#else
  return false;
#endif
}

void md5_many(std::span<const std::string_view> inputs, std::span<Md5Digest> out,
              Md5Impl impl) noexcept {
  const std::size_t n = std::min(inputs.size(), out.size());
#if defined(__x86_64__)
  if (impl == Md5Impl::kBest)
    impl = have_avx512() ? Md5Impl::kAvx512 : have_avx2() ? Md5Impl::kAvx2 : Md5Impl::kScalar;
  if ((impl == Md5Impl::kAvx512 && !have_avx512()) || (impl == Md5Impl::kAvx2 && !have_avx2()))
    impl = Md5Impl::kScalar;
  if (impl != Md5Impl::kScalar && n >= 2) {
    // AVX-512 takes up to 32 lanes at a time (two interleaved chains), AVX2 8.
    const int width = impl == Md5Impl::kAvx512 ? 2 * kLanes : 8;
    // Longest first, so each group's lanes have similar lengths.
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      return inputs[x].size() > inputs[y].size();
    });
    Lane lanes[2 * kLanes];
    Md5Digest digests[2 * kLanes];
    for (std::size_t g = 0; g < n; g += static_cast<std::size_t>(width)) {
      const int count =
          static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(width), n - g));
      if (count == 1) {
        out[order[g]] = md5(inputs[order[g]]);
        break;
      }
      for (int i = 0; i < count; ++i) prepare_lane(lanes[i], inputs[order[g + i]]);
      if (width == 8) {
        md5_group8(lanes, count, digests);
      } else if (count > kLanes) {
        md5_group32(lanes, count, digests);
      } else {
        md5_group(lanes, count, digests);
      }
      for (int i = 0; i < count; ++i) out[order[g + i]] = digests[i];
    }
    return;
  }
#else
  (void)impl;
#endif
  for (std::size_t i = 0; i < n; ++i) out[i] = md5(inputs[i]);
}

}  // namespace shardline::detail
