// Base64 with AVX-512 VBMI, after Muła and Lemire, "Base64 encoding and decoding at almost the
// speed of a memory copy" (Software: Practice and Experience, 2019). 48 bytes become 64
// characters per step and back; byte permutes do the table lookups. OpenSSL's scalar code
// (about 2 GB/s here) handles the tails and CPUs without VBMI; digest.cc combines the two.
//
// The tables are derived below from the alphabet, not written out by hand.
#include <array>
#include <cstring>

#include "core/base64_vbmi.h"
#include "core/digest.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// GCC 12's AVX-512 permute intrinsics pass an undefined merge source, which
// -Wmaybe-uninitialized reports once inlined (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace shardline::detail {

#if defined(__x86_64__)
namespace {

// The encoder's tables are in core/base64_vbmi.h.
struct Tables {
  // Decode: ASCII 0..127 -> 6-bit value, 0x80 for anything outside the alphabet ('=' too).
  alignas(64) unsigned char decode_lo[64];
  alignas(64) unsigned char decode_hi[64];
  // Decode: after the multiply-adds each 32-bit lane holds 24 bits little-endian; output byte
  // j is byte 2 - j % 3 of lane j / 3.
  alignas(64) unsigned char decode_pack[64];
};

const Tables& tables() {
  static const Tables t = [] {
    Tables x{};
    unsigned char dec[128];
    std::memset(dec, 0x80, sizeof dec);
    for (int i = 0; i < 64; ++i)
      dec[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<unsigned char>(i);
    std::memcpy(x.decode_lo, dec, 64);
    std::memcpy(x.decode_hi, dec + 64, 64);
    for (int j = 0; j < 64; ++j)
      x.decode_pack[j] = j < 48 ? static_cast<unsigned char>(4 * (j / 3) + 2 - j % 3) : 0;
    return x;
  }();
  return t;
}

bool have_vbmi() { return base64_vbmi_available(); }

// Whole buffers: the whole 3-byte groups (the caller pads the last one or two bytes).
__attribute__((target(SL_BASE64_VBMI_TARGET))) std::size_t encode_vbmi(const unsigned char* in,
                                                                       std::size_t n, char* out) {
  return Base64VbmiEncoder().groups(in, n, out);
}

constexpr __mmask64 kLow48 = (__mmask64{1} << 48) - 1;

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) std::size_t decode_vbmi(const char* in,
                                                                               std::size_t n,
                                                                               unsigned char* out) {
  const Tables& t = tables();
  const __m512i lo = _mm512_load_si512(t.decode_lo);
  const __m512i hi = _mm512_load_si512(t.decode_hi);
  const __m512i pack = _mm512_load_si512(t.decode_pack);
  const __m512i merge_ab_bc = _mm512_set1_epi32(0x01400140);
  const __m512i merge_abc = _mm512_set1_epi32(0x00011000);
  std::size_t done = 0;
  for (; n - done >= 64; done += 64, out += 48) {
    const __m512i v = _mm512_loadu_si512(in + done);
    const __m512i values = _mm512_permutex2var_epi8(lo, v, hi);
    // A character >= 128 or outside the alphabet sets a high bit: leave this block (and the
    // rest) to the scalar decoder, which reports the error.
    if (_mm512_movepi8_mask(_mm512_or_si512(values, v)) != 0) break;
    const __m512i ab_bc = _mm512_maddubs_epi16(values, merge_ab_bc);
    const __m512i abc = _mm512_madd_epi16(ab_bc, merge_abc);
    _mm512_mask_storeu_epi8(out, kLow48, _mm512_permutexvar_epi8(pack, abc));
  }
  return done;
}

}  // namespace

bool base64_vbmi_available() noexcept {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vbmi");
  return yes;
}
#endif  // __x86_64__

std::size_t base64_encode_blocks(const unsigned char* in, std::size_t n, char* out) noexcept {
#if defined(__x86_64__)
  if (n >= 48 && have_vbmi()) return encode_vbmi(in, n, out);
#else
  (void)in, (void)n, (void)out;
#endif
  return 0;
}

std::size_t base64_decode_blocks(const char* in, std::size_t n, unsigned char* out) noexcept {
#if defined(__x86_64__)
  if (n >= 64 && have_vbmi()) return decode_vbmi(in, n, out);
#else
  (void)in, (void)n, (void)out;
#endif
  return 0;
}

bool base64_is_vectorized() noexcept {
#if defined(__x86_64__)
  return have_vbmi();
#else
  return false;
#endif
}

}  // namespace shardline::detail
