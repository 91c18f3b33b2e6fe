// Internal: MD5 and base64 on OpenSSL. No I/O, no allocation beyond the output string.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace shardline::detail {

using Md5Digest = std::array<unsigned char, 16>;

/// MD5 of `bytes` (OpenSSL's assembly implementation).
Md5Digest md5(std::string_view bytes) noexcept;

/// How md5_many() hashes: kBest picks AVX-512 (16 lanes, or two chains of 16 for up to 32
/// inputs), else AVX2 (8 lanes), else OpenSSL's
/// MD5 one input at a time; the others force a path (tests, benchmarks; a forced vector path
/// the CPU lacks falls back to kScalar).
enum class Md5Impl { kBest, kAvx512, kAvx2, kScalar };
/// MD5 of each input into out[i] (for i < min of the sizes), several side by side
/// (src/core/md5_multi.cc). The digests are the same whatever the path.
void md5_many(std::span<const std::string_view> inputs, std::span<Md5Digest> out,
              Md5Impl impl = Md5Impl::kBest) noexcept;
/// Whether md5_many() runs vectorized on this CPU.
bool md5_many_is_vectorized() noexcept;

/// Lower-case hex of bytes.
std::string to_hex(const unsigned char* bytes, std::size_t n);

/// Standard base64 (RFC 4648, with padding).
constexpr std::size_t base64_encoded_size(std::size_t n) noexcept { return 4 * ((n + 2) / 3); }
inline constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// The last `rest` (1 or 2) bytes of an input as their 4 padded characters at `out`.
inline void base64_encode_last(const unsigned char* in, std::size_t rest, char* out) noexcept {
  const unsigned b0 = in[0], b1 = rest == 2 ? in[1] : 0u;
  out[0] = kBase64Alphabet[b0 >> 2];
  out[1] = kBase64Alphabet[((b0 & 3u) << 4) | (b1 >> 4)];
  out[2] = rest == 2 ? kBase64Alphabet[(b1 & 15u) << 2] : '=';
  out[3] = '=';
}
/// Encode `n` bytes into `out`, which must have room for base64_encoded_size(n) characters plus
/// one: a NUL is written after them. Returns the number of characters (vector kernel for whole
/// 48-byte blocks, OpenSSL for the rest).
std::size_t base64_encode_to(const unsigned char* in, std::size_t n, char* out) noexcept;
void base64_append(std::string& out, std::string_view bytes);
std::string base64_encode(std::string_view bytes);

/// The AVX-512 VBMI kernels behind base64_append() and base64_decode() (src/core/
/// base64_simd.cc). encode: whole 3-byte groups of `in`, 4 characters each (all but the last
/// 0-2 bytes, which need padding); decode: whole
/// 64-character blocks while they are all in the alphabet, 48 bytes each. Both return how
/// much input they consumed: 0 without VBMI, the rest is for the scalar code.
std::size_t base64_encode_blocks(const unsigned char* in, std::size_t n, char* out) noexcept;
std::size_t base64_decode_blocks(const char* in, std::size_t n, unsigned char* out) noexcept;
bool base64_is_vectorized() noexcept;

/// Strict standard base64 decode: length a multiple of 4 (or unpadded, completed here),
/// alphabet A-Z a-z 0-9 + /, '=' only as final padding. Returns nullopt when invalid.
/// `out` is replaced with the decoded bytes.
bool base64_decode(std::string_view text, std::string& out);
/// The same with the vector kernel off (force_scalar), for differential tests.
bool base64_decode(std::string_view text, std::string& out, bool force_scalar);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace shardline::detail
