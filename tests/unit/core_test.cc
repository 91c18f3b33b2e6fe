// Status/Result, hash keys, MD5 and base64.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/string_pool.h"
#include "core/text_buffer.h"
#include "shardline/hash_key.h"
#include "shardline/result.h"
#include "shardline/status.h"

namespace shardline {
namespace {

TEST(Status, OkIsCheapAndPrintsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.to_string(), "OK");
  EXPECT_EQ(Status(StatusCode::kOk, "ignored").ok(), true);
}

TEST(Status, CarriesCodeRetryClassAndAwsDetails) {
  Status s(StatusCode::kResourceExhausted, "Rate exceeded");
  EXPECT_EQ(s.retry(), RetryClass::kSameCall);
  s.set_aws("ProvisionedThroughputExceededException", 400, "req-1");
  EXPECT_EQ(s.to_string(),
            "RESOURCE_EXHAUSTED: Rate exceeded [aws=ProvisionedThroughputExceededException "
            "http=400 request-id=req-1]");
  Status copy = s;
  EXPECT_EQ(copy.aws_error_code(), "ProvisionedThroughputExceededException");
  const Status ctx = std::move(copy).with_context("PutRecords stream=s");
  EXPECT_EQ(ctx.message(), "PutRecords stream=s: Rate exceeded");
  EXPECT_EQ(Status::invalid_argument("x").retry(), RetryClass::kNone);
  EXPECT_EQ(Status(StatusCode::kAborted, "x").retry(), RetryClass::kRestart);
  EXPECT_EQ(Status(StatusCode::kUnavailable, "x", RetryClass::kNone).retry(), RetryClass::kNone);
}

Result<int> half(int v) {
  if (v % 2) return Status::invalid_argument("odd");
  return v / 2;
}
Result<int> quarter(int v) {
  SHARDLINE_ASSIGN_OR_RETURN(int h, half(v));
  return half(h);
}

TEST(Result, PropagatesErrors) {
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_EQ(quarter(6).status().message(), "odd");
  EXPECT_EQ(quarter(6).value_or(-1), -1);
  Result<int> bad(Status{});
  EXPECT_FALSE(bad.ok()) << "a Result from an OK status is an error, not a value";
}

TEST(HashKey, ParsesStrictDecimal) {
  EXPECT_EQ(HashKey::parse_decimal("0")->to_decimal(), "0");
  EXPECT_EQ(HashKey::parse_decimal("0000")->to_decimal(), "0");
  EXPECT_EQ(HashKey::parse_decimal("0123")->to_decimal(), "123");
  EXPECT_EQ(HashKey::parse_decimal("340282366920938463463374607431768211455").value(),
            HashKey::max());
  EXPECT_EQ(HashKey::parse_decimal("00340282366920938463463374607431768211455").value(),
            HashKey::max());
  EXPECT_EQ(HashKey::parse_decimal("340282366920938463463374607431768211456").status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(HashKey::parse_decimal("9999999999999999999999999999999999999999999").status().code(),
            StatusCode::kOutOfRange);
  for (const char* bad : {"", "-1", "+1", "0x1F", "1e3", " 1", "1 ", "１"}) {
    EXPECT_EQ(HashKey::parse_decimal(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(HashKey, RoundTripsRandomValues) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10000; ++i) {
    const HashKey k(i % 3 == 0 ? 0 : rng(), rng());
    EXPECT_EQ(HashKey::parse_decimal(k.to_decimal()).value(), k);
  }
  EXPECT_EQ(HashKey(0, 18446744073709551615ULL).to_decimal(), "18446744073709551615");
  EXPECT_EQ(HashKey(1, 0).to_decimal(), "18446744073709551616");
}

TEST(HashKey, Md5OfPartitionKeyMatchesTheKplVector) {
  const HashKey k = HashKey::from_partition_key("abcd");
  EXPECT_EQ(k, HashKey(0xE2FC714C4727EE93ULL, 0x95F324CD2E7F331FULL));
  EXPECT_EQ(k.to_decimal(), "301716283811389038011477436469853762335");
  EXPECT_EQ(HashKey::from_partition_key("abc").to_decimal(),
            "191415658344158766168031473277922803570");
}

TEST(HashKey, OrdersNumerically) {
  EXPECT_LT(HashKey(0, ~0ULL), HashKey(1, 0));
  EXPECT_LT(HashKey(1, 5), HashKey(1, 6));
  EXPECT_TRUE((HashKeyRange{HashKey(0, 5), HashKey(0, 9)}.contains(HashKey(0, 9))));
  EXPECT_FALSE((HashKeyRange{HashKey(0, 5), HashKey(0, 9)}.contains(HashKey(0, 10))));
}

TEST(HashKey, EvenSplitMatchesCreateStream) {
  // Two shards: [0, 2^127-1] and [2^127, 2^128-1], as Kinesis creates them.
  EXPECT_EQ(even_split_range(0, 2).end.to_decimal(), "170141183460469231731687303715884105727");
  EXPECT_EQ(even_split_range(1, 2).start.to_decimal(), "170141183460469231731687303715884105728");
  EXPECT_EQ(even_split_range(1, 3).start.to_decimal(), "113427455640312821154458202477256070485");
  EXPECT_EQ(even_split_range(0, 1), HashKeyRange{});
  for (std::uint32_t n : {1u, 2u, 3u, 4u, 7u, 64u, 1000u}) {
    EXPECT_EQ(even_split_range(0, n).start, HashKey());
    EXPECT_EQ(even_split_range(n - 1, n).end, HashKey::max());
    for (std::uint32_t i = 1; i < n; ++i) {
      const HashKey prev_end = even_split_range(i - 1, n).end;
      const HashKey start = even_split_range(i, n).start;
      EXPECT_EQ(HashKey(prev_end.hi() + (prev_end.lo() == ~0ULL ? 1 : 0), prev_end.lo() + 1),
                start);
    }
  }
}

TEST(Digest, Md5KnownAnswers) {
  auto hex = [](std::string_view s) {
    const auto d = detail::md5(s);
    return detail::to_hex(d.data(), d.size());
  };
  EXPECT_EQ(hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
}

// md5_many against OpenSSL's EVP MD5 (an independent implementation) on every length around
// the one- and two-padding-block boundaries, mixed lengths in one call, and group sizes that
// leave lanes empty.
TEST(Digest, Md5ManyMatchesOpenSslForEveryLengthAndGroupSize) {
  auto evp_md5 = [](std::string_view s) {
    detail::Md5Digest d{};
    unsigned int len = 0;
    EXPECT_EQ(EVP_Digest(s.data(), s.size(), d.data(), &len, EVP_md5(), nullptr), 1);
    return d;
  };
  std::mt19937_64 rng(7);
  std::vector<std::string> msgs;
  for (std::size_t len = 0; len <= 200; ++len) {
    std::string m(len, '\0');
    for (char& c : m) c = static_cast<char>(rng());
    msgs.push_back(std::move(m));
  }
  for (std::size_t len : std::vector<std::size_t>{1000, 4095, 4096, 51200, 65537}) {
    std::string m(len, '\0');
    for (char& c : m) c = static_cast<char>(rng());
    msgs.push_back(std::move(m));
  }
  for (std::size_t count :
       std::vector<std::size_t>{0, 1, 2, 3, 15, 16, 17, 20, 31, 32, 33, 49, msgs.size()}) {
    std::vector<std::string_view> in;
    for (std::size_t i = 0; i < count; ++i) in.push_back(msgs[(i * 37) % msgs.size()]);
    for (detail::Md5Impl impl : {detail::Md5Impl::kBest, detail::Md5Impl::kAvx512,
                                 detail::Md5Impl::kAvx2, detail::Md5Impl::kScalar}) {
      std::vector<detail::Md5Digest> out(count);
      detail::md5_many(in, out, impl);
      for (std::size_t i = 0; i < count; ++i) {
        ASSERT_EQ(out[i], evp_md5(in[i]))
            << "count " << count << ", input " << i << " (" << in[i].size() << " bytes), path "
            << static_cast<int>(impl);
      }
    }
  }
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2"))
    GTEST_SKIP() << "this CPU lacks AVX-512 or AVX2: those paths fell back to the scalar one";
}

// The vector base64 against OpenSSL's EVP_EncodeBlock (an independent implementation) for
// every length around the 48-byte / 64-character block boundaries, and the decoder's
// strictness at every position of a long input: one bad character anywhere is rejected.
TEST(Digest, Base64VectorPathMatchesOpenSslAndStaysStrict) {
  std::mt19937_64 rng(11);
  auto evp_encode = [](const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
  };
  for (std::size_t len = 0; len <= 400; ++len) {
    std::string in(len, '\0');
    for (char& c : in) c = static_cast<char>(rng());
    const std::string enc = detail::base64_encode(in);
    ASSERT_EQ(enc, evp_encode(in)) << "length " << len;
    ASSERT_EQ(detail::base64_decode(enc).value(), in) << "length " << len;
    if (len % 3 != 0) {  // the unpadded form decodes too
      std::string bare = enc;
      while (!bare.empty() && bare.back() == '=') bare.pop_back();
      ASSERT_EQ(detail::base64_decode(bare).value(), in) << "length " << len;
    }
  }
  std::string big(51200, '\0');
  for (char& c : big) c = static_cast<char>(rng());
  const std::string enc = detail::base64_encode(big);
  ASSERT_EQ(enc, evp_encode(big));
  ASSERT_EQ(detail::base64_decode(enc).value(), big);
  const std::string probe = enc.substr(0, 700);  // 700 characters: whole quanta, no padding
  for (char bad : {'=', ' ', '\n', '-', '_', '.', '\0', static_cast<char>(0xC3)}) {
    for (std::size_t pos = 0; pos < probe.size(); ++pos) {
      if (bad == '=' && pos + 1 == probe.size()) continue;  // that is padding, and valid
      std::string t = probe;
      t[pos] = bad;
      ASSERT_FALSE(detail::base64_decode(t).has_value())
          << "character " << static_cast<int>(static_cast<unsigned char>(bad)) << " at " << pos;
    }
  }
  if (!detail::base64_is_vectorized()) GTEST_SKIP() << "no AVX-512 VBMI: only the scalar path ran";
}

// base64_encode_to's contract, which the multilang writer relies on: the characters, one NUL,
// and not a byte more (the vector tail writes under a mask).
TEST(Digest, Base64EncodeToWritesTheCharactersAndOneNul) {
  std::mt19937_64 rng(5);
  for (std::size_t len = 0; len <= 200; ++len) {
    std::string in(len, '\0');
    for (char& c : in) c = static_cast<char>(rng());
    const std::size_t size = detail::base64_encoded_size(len);
    std::string out(size + 16, '#');
    const std::size_t n = detail::base64_encode_to(
        reinterpret_cast<const unsigned char*>(in.data()), len, out.data());
    ASSERT_EQ(n, size) << "length " << len;
    ASSERT_EQ(out.substr(0, n), detail::base64_encode(in)) << "length " << len;
    ASSERT_EQ(out[n], '\0') << "length " << len;
    ASSERT_EQ(out.substr(n + 1), std::string(15, '#')) << "length " << len;
  }
}

// base64_decode() into a string that already holds bytes (a reused one) leaves exactly the
// decoded bytes, whether the old contents were longer or shorter, and nothing on failure.
TEST(Digest, Base64DecodeOverwritesAReusedString) {
  std::mt19937_64 rng(7);
  for (std::size_t len : {0u, 1u, 2u, 3u, 47u, 48u, 100u, 5000u}) {
    std::string in(len, '\0');
    for (char& c : in) c = static_cast<char>(rng());
    const std::string enc = detail::base64_encode(in);
    for (std::size_t old : {0u, 1u, 64u, 9000u}) {
      std::string out(old, '#');
      ASSERT_TRUE(detail::base64_decode(enc, out)) << len << " over " << old;
      ASSERT_EQ(out, in) << len << " over " << old;
    }
  }
  std::string out(100, '#');
  EXPECT_FALSE(detail::base64_decode("Zm9v!!!!", out));
  EXPECT_TRUE(out.empty());
}

// The pool keeps large strings' memory for the next take(), drops small ones, and stays within
// its byte bound.
TEST(StringPool, ReusesLargeStringsWithinItsBound) {
  detail::StringPool pool;
  EXPECT_TRUE(pool.take().empty());
  std::string big(100000, 'x');
  const char* memory = big.data();
  pool.give(std::move(big));
  EXPECT_GE(pool.pooled_bytes(), 100000u);
  std::string again = pool.take();
  EXPECT_EQ(again.data(), memory) << "the same memory comes back";
  EXPECT_GE(again.capacity(), 100000u);
  EXPECT_EQ(pool.pooled_bytes(), 0u);
  pool.give(std::string(10, 'y'));  // below kMinCapacity: not kept
  EXPECT_EQ(pool.pooled_bytes(), 0u);
  for (int i = 0; i < 40; ++i) pool.give(std::string(1 << 20, 'z'));
  EXPECT_LE(pool.pooled_bytes(), detail::StringPool::kMaxBytes);
  EXPECT_GT(pool.pooled_bytes(), detail::StringPool::kMaxBytes / 2);
}

// TextBuffer keeps its contents as it grows from malloc'd sizes into huge-page mappings and on
// within them; large buffers start at a 2 MiB boundary in whole 2 MiB pages; moves and swaps
// hand the memory over (ASan checks the frees and unmaps match).
TEST(TextBuffer, GrowsAcrossTheHugePageSizeKeepingItsContents) {
  detail::TextBuffer b;
  std::string want;
  std::mt19937_64 rng(3);
  for (std::size_t size :
       {std::size_t{100}, std::size_t{5000}, detail::TextBuffer::kHugeBytes - 1,
        detail::TextBuffer::kHugeBytes + 7, std::size_t{5} << 20, std::size_t{9} << 20}) {
    std::string chunk(size - want.size(), '\0');
    for (char& c : chunk) c = static_cast<char>(rng());
    b.append(chunk);
    want += chunk;
    ASSERT_EQ(b.size(), want.size());
    ASSERT_EQ(b.view(), want) << "after growing to " << size;
    ASSERT_GE(b.capacity(), size);
    if (b.capacity() >= detail::TextBuffer::kHugeBytes) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % (std::size_t{2} << 20), 0u);
      EXPECT_EQ(b.capacity() % (std::size_t{2} << 20), 0u);
    }
  }
  // Written in place past the contents, then committed.
  b.reserve(b.size() + 3);
  std::memcpy(b.end(), "xyz", 3);
  b.set_size(b.size() + 3);
  want += "xyz";
  EXPECT_EQ(b.view(), want);
  detail::TextBuffer small;
  small.append("small");
  b.swap(small);
  EXPECT_EQ(b.view(), "small");
  EXPECT_EQ(small.view(), want);
  detail::TextBuffer moved(std::move(small));
  EXPECT_EQ(moved.view(), want);
  EXPECT_EQ(small.size(), 0u);  // NOLINT: moved-from is empty by contract
  moved = std::move(b);
  EXPECT_EQ(moved.view(), "small");
  moved.clear();
  EXPECT_EQ(moved.size(), 0u);
}

TEST(Digest, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> v[] = {{"", ""},
                                                   {"f", "Zg=="},
                                                   {"fo", "Zm8="},
                                                   {"foo", "Zm9v"},
                                                   {"foob", "Zm9vYg=="},
                                                   {"fooba", "Zm9vYmE="},
                                                   {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : v) {
    EXPECT_EQ(detail::base64_encode(plain), enc);
    EXPECT_EQ(detail::base64_decode(enc).value(), plain);
  }
  EXPECT_EQ(detail::base64_decode("Zg").value(), "f") << "unpadded input is accepted";
  EXPECT_EQ(detail::base64_decode("Zm8").value(), "fo");
}

TEST(Digest, Base64RejectsMalformedInput) {
  for (const char* bad : {"Z", "Zg=", "Zg===", "Z===", "Zm9v\n", " Zm9v", "Zm9v ", "Zm-v", "Zm_v",
                          "Zg==Zg==", "Z=g=", "====", "Zm9v\x01"}) {
    EXPECT_FALSE(detail::base64_decode(bad).has_value()) << bad;
  }
}

TEST(Digest, Base64MatchesOpenSslOnRandomData) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 300, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    const std::string enc = detail::base64_encode(s);
    ASSERT_EQ(detail::base64_decode(enc).value(), s);
    // Independent: OpenSSL's streaming encoder (with its newlines removed).
    std::string ref((s.size() + 2) / 3 * 4 + s.size() / 48 + 80, '\0');
    EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
    EVP_EncodeInit(ctx);
    int n = 0, total = 0;
    EVP_EncodeUpdate(ctx, reinterpret_cast<unsigned char*>(ref.data()), &n,
                     reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    total = n;
    EVP_EncodeFinal(ctx, reinterpret_cast<unsigned char*>(ref.data()) + total, &n);
    total += n;
    EVP_ENCODE_CTX_free(ctx);
    ref.resize(static_cast<std::size_t>(total));
    std::erase(ref, '\n');
    EXPECT_EQ(enc, ref);
  }
}

}  // namespace
}  // namespace shardline
