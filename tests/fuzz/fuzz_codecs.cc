// Differential fuzzing of the vector codecs against their scalar references: base64 decoding
// (vector kernel vs OpenSSL alone: same verdict, same bytes), base64 encoding (vs OpenSSL's
// EVP_EncodeBlock, and it must round-trip), and md5_many over slices of the input (vs MD5 one
// at a time).
#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/digest.h"
#include "fuzz_util.h"

using namespace shardline;
using shardline::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // Decode the input as text, both ways.
  std::string fast, slow;
  const bool fast_ok = detail::base64_decode(in, fast, false);
  const bool slow_ok = detail::base64_decode(in, slow, true);
  require(fast_ok == slow_ok);
  if (fast_ok) require(fast == slow);

  // Encode the input as bytes; compare with OpenSSL and decode back.
  const std::string enc = detail::base64_encode(in);
  std::string ref(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(ref.data()), data, static_cast<int>(size));
  ref.resize(static_cast<std::size_t>(n));
  require(enc == ref);
  std::string back;
  require(detail::base64_decode(enc, back));
  require(back == in);

  // MD5 of slices (lengths chosen by the input itself) in one md5_many call.
  std::vector<std::string_view> slices;
  for (std::size_t at = 0; at < size && slices.size() < 40;) {
    const std::size_t len = std::min<std::size_t>(size - at, data[at] * 3u);
    slices.push_back(in.substr(at, len));
    at += len + 1;
  }
  for (detail::Md5Impl impl : {detail::Md5Impl::kAvx512, detail::Md5Impl::kAvx2}) {
    std::vector<detail::Md5Digest> many(slices.size());
    detail::md5_many(slices, many, impl);
    for (std::size_t i = 0; i < slices.size(); ++i) require(many[i] == detail::md5(slices[i]));
  }
  return 0;
}
