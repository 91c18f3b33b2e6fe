// MD5 uses OpenSSL's low-level one-shot MD5(): it runs the same assembly as EVP without the
// per-call EVP context setup, which dominates for partition keys of a few dozen bytes.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "core/digest.h"

#include <openssl/evp.h>
#include <openssl/md5.h>

namespace shardline::detail {

Md5Digest md5(std::string_view bytes) noexcept {
  Md5Digest d;
  MD5(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d.data());
  return d;
}

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n * 2, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[bytes[i] >> 4];
    s[2 * i + 1] = kHex[bytes[i] & 0xF];
  }
  return s;
}

std::size_t base64_encode_to(const unsigned char* in, std::size_t n, char* out) noexcept {
  const std::size_t done = base64_encode_blocks(in, n, out);
  out += done / 3 * 4;
  const std::size_t rest = n - done;
  if (rest > 2) {  // no vector code: OpenSSL's scalar loop, which also writes a NUL
    return done / 3 * 4 +
           static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out),
                                                    in + done, static_cast<int>(rest)));
  }
  // The last one or two bytes, padded: too few to be worth a library call per record.
  if (rest == 0) {
    *out = '\0';
    return done / 3 * 4;
  }
  base64_encode_last(in + done, rest, out);
  out[4] = '\0';
  return done / 3 * 4 + 4;
}

void base64_append(std::string& out, std::string_view bytes) {
  const std::size_t old = out.size();
  out.resize(old + base64_encoded_size(bytes.size()));
  // The trailing NUL lands in out[size()], the terminator slot std::string owns.
  const std::size_t n = base64_encode_to(reinterpret_cast<const unsigned char*>(bytes.data()),
                                         bytes.size(), out.data() + old);
  out.resize(old + n);
}

std::string base64_encode(std::string_view bytes) {
  std::string s;
  base64_append(s, bytes);
  return s;
}

namespace {
constexpr bool is_b64(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}
}  // namespace

static bool base64_decode_rest(std::string_view text, std::string& out, std::size_t at);

bool base64_decode(std::string_view text, std::string& out) {
  return base64_decode(text, out, false);
}

bool base64_decode(std::string_view text, std::string& out, bool force_scalar) {
  if (text.empty()) {
    out.clear();
    return true;
  }
  // Room for the most the text can decode to (plus one byte the scalar decoder may write).
  // Bytes `out` already holds are overwritten, not zero-filled first: a reused string (see
  // StringPool) costs no fill at all. The result is truncated to its length at the end.
  if (const std::size_t most = (text.size() + 3) / 4 * 3 + 1; out.size() < most) {
    out.resize(most);
  }
  // Whole 64-character blocks before the last quantum (which may hold padding) go through the
  // vector kernel; it stops at a block with anything outside the alphabet, and the checks
  // below then see that block as the start of the rest.
  std::size_t prefix_out = 0;
  if (text.size() > 68 && !force_scalar && base64_is_vectorized()) {
    const std::size_t used = base64_decode_blocks(text.data(), text.size() - 4,
                                                  reinterpret_cast<unsigned char*>(out.data()));
    prefix_out = used / 4 * 3;
    text.remove_prefix(used);
  }
  if (!base64_decode_rest(text, out, prefix_out)) {
    out.clear();
    return false;
  }
  return true;
}

// The scalar decoder: `text` (not empty) into out, starting at out[at].
static bool base64_decode_rest(std::string_view text, std::string& out, std::size_t at) {
  // Count and strip padding; OpenSSL's EVP_DecodeBlock decodes '=' as zero bytes and also
  // skips leading/trailing whitespace, which a strict decoder must not accept.
  std::size_t pad = 0;
  while (pad < text.size() && pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
  const std::size_t body = text.size() - pad;
  if (pad > 0 && text.size() % 4 != 0) return false;
  if (body % 4 == 1) return false;
  // EVP_DecodeBlock validates the alphabet but tolerates whitespace at the ends and '=' in the
  // middle: check both.
  if (body == 0 || text.substr(0, body).find('=') != std::string_view::npos) return false;
  if (!is_b64(static_cast<unsigned char>(text[0])) ||
      !is_b64(static_cast<unsigned char>(text[body - 1])))
    return false;
  std::string padded;
  std::string_view in = text;
  if (pad == 0 && body % 4 != 0) {  // unpadded input: complete the last quantum
    padded.assign(text);
    padded.append(4 - body % 4, '=');
    in = padded;
  }
  const std::size_t quanta = in.size() / 4;
  out.resize(at + quanta * 3 + 1);  // +1: EVP_DecodeBlock may not write a NUL, but be safe
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0 || static_cast<std::size_t>(n) != quanta * 3) {
    out.clear();
    return false;
  }
  const std::size_t missing = in.size() - body;  // number of '=' in what we decoded
  const std::size_t len = quanta * 3 - missing;
  out.resize(at + len);
  return true;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  if (!base64_decode(text, out)) return std::nullopt;
  return out;
}

}  // namespace shardline::detail
