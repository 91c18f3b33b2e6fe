// Internal: the AVX-512 VBMI base64 encoder as an object whose constants are loaded once for
// many calls. The record writer of the MultiLangDaemon encodes every record's data (100 bytes
// or so each); through a function call per record, the call chain and the table loads were as
// costly as the encoding. base64_simd.cc uses the same object for whole buffers.
//
// Callers must check base64_vbmi_available() and call the methods only from functions
// compiled for SL_BASE64_VBMI_TARGET (GCC and Clang inline them there).
#pragma once

#include <array>
#include <cstddef>

#include "core/digest.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define SL_BASE64_VBMI_TARGET "avx512f,avx512bw,avx512vbmi"

namespace shardline::detail {

/// Whether this CPU has what Base64VbmiEncoder needs (AVX-512 F, BW and VBMI).
bool base64_vbmi_available() noexcept;

struct Base64VbmiTables {
  // Each 32-bit lane g gathers input bytes [3g+1, 3g, 3g+2, 3g+1], so a 64-bit multishift can
  // cut out the four 6-bit fields (shifts 10, 4, 22, 16 in each half).
  alignas(64) std::array<unsigned char, 64> gather;
  alignas(64) std::array<unsigned char, 64> alphabet;
};

inline constexpr Base64VbmiTables kBase64VbmiTables = [] {
  Base64VbmiTables t{};
  for (int g = 0; g < 16; ++g) {
    t.gather[4 * g + 0] = static_cast<unsigned char>(3 * g + 1);
    t.gather[4 * g + 1] = static_cast<unsigned char>(3 * g);
    t.gather[4 * g + 2] = static_cast<unsigned char>(3 * g + 2);
    t.gather[4 * g + 3] = static_cast<unsigned char>(3 * g + 1);
  }
  for (int i = 0; i < 64; ++i) t.alphabet[i] = static_cast<unsigned char>(kBase64Alphabet[i]);
  return t;
}();

// GCC 12's AVX-512 permute intrinsics pass an undefined merge source, which
// -Wmaybe-uninitialized reports wherever they are inlined (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

class Base64VbmiEncoder {
 public:
  __attribute__((target(SL_BASE64_VBMI_TARGET))) Base64VbmiEncoder()
      : gather_(_mm512_load_si512(kBase64VbmiTables.gather.data())),
        alphabet_(_mm512_load_si512(kBase64VbmiTables.alphabet.data())),
        shifts_(_mm512_set1_epi64(0x3036242a1016040aLL)) {}

  /// Encodes the whole 3-byte groups of in[0, n) (48 bytes per step, then the rest under
  /// masks, never reading or writing past them); returns the bytes consumed (n - n % 3).
  __attribute__((target(SL_BASE64_VBMI_TARGET))) std::size_t groups(const unsigned char* in,
                                                                    std::size_t n,
                                                                    char* out) const {
    std::size_t done = 0;
    for (; n - done >= 48; done += 48, out += 64) {
      const __m512i v = _mm512_maskz_loadu_epi8((__mmask64{1} << 48) - 1, in + done);
      _mm512_storeu_si512(out, encode(v));
    }
    if (const std::size_t g = (n - done) / 3; g > 0) {
      const __m512i v = _mm512_maskz_loadu_epi8(_cvtu64_mask64((1ULL << (g * 3)) - 1), in + done);
      _mm512_mask_storeu_epi8(out, _cvtu64_mask64((1ULL << (g * 4)) - 1), encode(v));
      done += g * 3;
    }
    return done;
  }

  /// Encodes in[0, n) with padding; returns the characters written (no NUL).
  __attribute__((target(SL_BASE64_VBMI_TARGET))) std::size_t encode_to(const unsigned char* in,
                                                                       std::size_t n,
                                                                       char* out) const {
    const std::size_t done = groups(in, n, out);
    std::size_t written = done / 3 * 4;
    if (const std::size_t rest = n - done; rest != 0) {
      base64_encode_last(in + done, rest, out + written);
      written += 4;
    }
    return written;
  }

 private:
  __attribute__((target(SL_BASE64_VBMI_TARGET))) __m512i encode(__m512i v) const {
    const __m512i lanes = _mm512_permutexvar_epi8(gather_, v);
    const __m512i fields = _mm512_multishift_epi64_epi8(shifts_, lanes);
    return _mm512_permutexvar_epi8(fields, alphabet_);
  }

  __m512i gather_, alphabet_, shifts_;
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace shardline::detail

#endif  // __x86_64__
