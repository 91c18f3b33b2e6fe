// SigV4: the aws-c-auth signing test suite (header and presigned-query variants), the
// canonicalisation rules one by one, the signer's cache and thread-safety, and a differential
// test against botocore's SigV4Auth on random requests.
#include "aws/sigv4.h"

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "aws/aws_time.h"
#include "core/digest.h"
#include "support/child_process.h"
#include "support/test_util.h"

namespace shardline::detail {
namespace {

using std::chrono::system_clock;
namespace fs = std::filesystem;

// ---- the aws-c-auth suite -------------------------------------------------------------------

struct ParsedRequest {
  std::string method, path, query, body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// request.txt: "METHOD URI HTTP/1.1", header lines (an indented line continues the previous
// value, as obs-fold), a blank line, the body. The URI may contain spaces.
ParsedRequest parse_request(const std::string& text) {
  ParsedRequest r;
  std::size_t pos = text.find('\n');
  const std::string first = text.substr(0, pos);
  const std::size_t sp1 = first.find(' ');
  const std::size_t sp2 = first.rfind(' ');
  r.method = first.substr(0, sp1);
  const std::string uri = first.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::size_t q = uri.find('?');
  r.path = uri.substr(0, q);
  if (q != std::string::npos) r.query = uri.substr(q + 1);
  pos = pos == std::string::npos ? text.size() : pos + 1;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) {
      if (pos < text.size()) r.body = text.substr(pos);
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !r.headers.empty()) {
      r.headers.back().second += "\n" + line;
      continue;
    }
    const std::size_t colon = line.find(':');
    r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return r;
}

std::vector<std::string> suite_cases() {
  std::vector<std::string> names;
  const fs::path dir = fs::path(SHARDLINE_TESTDATA_DIR) / "sigv4";
  if (!fs::is_directory(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && fs::exists(e.path() / "context.json")) {
      names.push_back(e.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_case(const std::string& name, const std::string& file) {
  return testing::read_file(testing::testdata("sigv4/" + name + "/" + file));
}

bool case_has(const std::string& name, const std::string& file) {
  return fs::exists(fs::path(SHARDLINE_TESTDATA_DIR) / "sigv4" / name / file);
}

struct SuiteCase {
  ParsedRequest request;
  std::vector<SigV4Header> headers;
  Credentials credentials;
  std::string region, service;
  system_clock::time_point time;
  SigV4Options options;
  std::chrono::seconds expires{0};

  explicit SuiteCase(const std::string& name)
      : request(parse_request(read_case(name, "request.txt"))) {
    const auto ctx = nlohmann::json::parse(read_case(name, "context.json"));
    credentials.access_key_id = ctx["credentials"]["access_key_id"];
    credentials.secret_access_key = ctx["credentials"]["secret_access_key"];
    credentials.session_token = ctx["credentials"].value("token", "");
    region = ctx["region"];
    service = ctx["service"];
    time = *parse_iso8601(ctx["timestamp"].get<std::string>());
    options.normalize_path = ctx["normalize"];
    options.sign_body = ctx["sign_body"];
    options.omit_session_token = ctx.value("omit_session_token", false);
    expires = std::chrono::seconds(ctx.value("expiration_in_seconds", 0));
    for (const auto& [n, v] : request.headers) headers.push_back({n, v});
  }
  SigV4Request sigv4_request() const {
    return {.method = request.method,
            .path = request.path,
            .query = request.query,
            .headers = headers,
            .payload = request.body,
            .payload_sha256 = {}};
  }
};

class SigV4Suite : public ::testing::TestWithParam<std::string> {};

TEST(SigV4Vectors, AllCasesPresent) {
  // 38 v4 cases were copied; an empty list would make the parameterised tests vanish silently.
  EXPECT_GE(suite_cases().size(), 38u);
}

TEST_P(SigV4Suite, HeaderSigningMatchesByteForByte) {
  const std::string name = GetParam();
  SuiteCase c(name);
  SigV4Signer signer(c.region, c.service, c.options);
  SigV4Result out;
  ASSERT_TRUE(signer.sign(c.sigv4_request(), c.credentials, c.time, out).ok());
  EXPECT_EQ(out.canonical_request, read_case(name, "header-canonical-request.txt"));
  EXPECT_EQ(out.string_to_sign, read_case(name, "header-string-to-sign.txt"));
  EXPECT_EQ(out.signature, read_case(name, "header-signature.txt"));
  // The Authorization header of the signed request.
  const std::string signed_request = read_case(name, "header-signed-request.txt");
  const std::size_t at = signed_request.find("\nAuthorization:");
  ASSERT_NE(at, std::string::npos);
  const std::size_t eol = signed_request.find('\n', at + 1);
  EXPECT_EQ(out.authorization, signed_request.substr(at + 15, eol - at - 15));
  EXPECT_EQ(out.amz_date, "20150830T123600Z");
  EXPECT_EQ(out.security_token, c.credentials.session_token);
}

std::multiset<std::string> query_params(std::string_view q) {
  std::multiset<std::string> s;
  std::size_t pos = 0;
  while (pos <= q.size()) {
    std::size_t end = q.find('&', pos);
    if (end == std::string_view::npos) end = q.size();
    if (end > pos) s.insert(std::string(q.substr(pos, end - pos)));
    pos = end + 1;
  }
  return s;
}

TEST_P(SigV4Suite, PresignedQueryMatchesByteForByte) {
  const std::string name = GetParam();
  if (!case_has(name, "query-canonical-request.txt")) GTEST_SKIP() << "no query variant";
  SuiteCase c(name);
  SigV4Signer signer(c.region, c.service, c.options);
  SigV4Result out;
  ASSERT_TRUE(signer.presign(c.sigv4_request(), c.credentials, c.time, c.expires, out).ok());
  EXPECT_EQ(out.canonical_request, read_case(name, "query-canonical-request.txt"));
  EXPECT_EQ(out.string_to_sign, read_case(name, "query-string-to-sign.txt"));
  EXPECT_EQ(out.signature, read_case(name, "query-signature.txt"));
  // The query string of the signed request, compared as a set (its order is the suite's).
  const std::string signed_request = read_case(name, "query-signed-request.txt");
  const std::string line = signed_request.substr(0, signed_request.find('\n'));
  const std::size_t qmark = line.find('?');
  ASSERT_NE(qmark, std::string::npos);
  const std::string query = line.substr(qmark + 1, line.rfind(' ') - qmark - 1);
  // The suite leaves the request's own parameters as written; ours are canonical. Compare the
  // X-Amz-* parameters, which must be identical.
  auto amz_only = [](const std::multiset<std::string>& all) {
    std::multiset<std::string> r;
    for (const auto& p : all) {
      if (p.rfind("X-Amz-", 0) == 0) r.insert(p);
    }
    return r;
  };
  EXPECT_EQ(amz_only(query_params(out.presigned_query)), amz_only(query_params(query)));
  EXPECT_TRUE(out.authorization.empty());
}

INSTANTIATE_TEST_SUITE_P(SigV4AwsCAuth, SigV4Suite, ::testing::ValuesIn(suite_cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// ---- canonicalisation, rule by rule ---------------------------------------------------------

std::string uri(std::string_view path, bool normalize = true, bool encode = true) {
  std::string out;
  sigv4_canonical_uri(out, path, normalize, encode);
  return out;
}

std::string query(std::string_view q) {
  std::string out;
  sigv4_canonical_query(out, q);
  return out;
}

std::string trimmed(std::string_view v) {
  std::string out;
  sigv4_append_trimmed(out, v);
  return out;
}

TEST(SigV4Canonical, UriEncodingKeepsOnlyUnreserved) {
  std::string out;
  sigv4_uri_encode(out, "AZaz09-_.~ !\"#$%&'()*+,/:;<=>?@[\\]^`{|}", false);
  EXPECT_EQ(out,
            "AZaz09-_.~%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E"
            "%60%7B%7C%7D");
  out.clear();
  sigv4_uri_encode(out, "/a b/\xE1\x88\xB4/", true);
  EXPECT_EQ(out, "/a%20b/%E1%88%B4/");
  out.clear();
  sigv4_uri_encode(out, std::string_view("\x00\xff", 2), false);
  EXPECT_EQ(out, "%00%FF");
}

TEST(SigV4Canonical, PathIsEncodedOnceMoreSoWireEscapesAreDoubleEncoded) {
  // The path is taken as sent; AWS (all services but S3) encodes it again.
  EXPECT_EQ(uri("/a%20b"), "/a%2520b");
  EXPECT_EQ(uri("/a%2Fb"), "/a%252Fb");
  EXPECT_EQ(uri("/a b"), "/a%20b");
  // S3 style: neither normalised nor re-encoded.
  EXPECT_EQ(uri("/a%20b//./c", false, false), "/a%20b//./c");
}

TEST(SigV4Canonical, PathNormalisation) {
  EXPECT_EQ(uri(""), "/");
  EXPECT_EQ(uri("/"), "/");
  EXPECT_EQ(uri("//"), "/");
  EXPECT_EQ(uri("/./"), "/");
  EXPECT_EQ(uri("/.."), "/");
  EXPECT_EQ(uri("/../../a"), "/a");
  EXPECT_EQ(uri("/a/./b/../c/"), "/a/c/");
  EXPECT_EQ(uri("/a/b/.."), "/a");
  EXPECT_EQ(uri("//a//b//"), "/a/b/");
  EXPECT_EQ(uri("/a/..."), "/a/...");  // "..." is a name, not a dot segment
  EXPECT_EQ(uri("/a/.b/..c"), "/a/.b/..c");
  // Unnormalised: kept, only encoded.
  EXPECT_EQ(uri("//a/../b/", false), "//a/../b/");
  EXPECT_EQ(uri("", false), "/");
}

TEST(SigV4Canonical, QuerySortingAndEncoding) {
  EXPECT_EQ(query(""), "");
  EXPECT_EQ(query("b=2&a=1"), "a=1&b=2");
  // Same key: sorted by value. Sorting is on the encoded form, byte-wise (upper case first).
  EXPECT_EQ(query("k=b&k=a&K=c"), "K=c&k=a&k=b");
  EXPECT_EQ(query("Param-3=3&Param=2&%E1%88%B4=1"), "%E1%88%B4=1&Param=2&Param-3=3");
  // No '=' means an empty value; empty pairs vanish.
  EXPECT_EQ(query("flag&&a="), "a=&flag=");
  // Decoded then strictly re-encoded: lower-case escapes normalised, over-escaped
  // unreserved characters unescaped, raw reserved characters escaped, '+' is literal.
  EXPECT_EQ(query("a=%7e%2f&b=x y+z&c=%41"), "a=~%2F&b=x%20y%2Bz&c=A");
  // A '%' that does not start an escape is a literal '%'.
  EXPECT_EQ(query("p=100%&q=%zz"), "p=100%25&q=%25zz");
  // Only the first '=' separates key and value.
  EXPECT_EQ(query("a=b=c"), "a=b%3Dc");
}

TEST(SigV4Canonical, HeaderValueTrimming) {
  EXPECT_EQ(trimmed("  a   b \t c  "), "a b c");
  EXPECT_EQ(trimmed("value1\n  value2\n     value3"), "value1 value2 value3");
  EXPECT_EQ(trimmed("\"a   b   c\""), "\"a b c\"");
  EXPECT_EQ(trimmed(""), "");
  EXPECT_EQ(trimmed(" \t "), "");
}

const Credentials kCreds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", {}, ""};
const system_clock::time_point kTime = *parse_iso8601("2015-08-30T12:36:00Z");

SigV4Result sign_with(std::span<const SigV4Header> headers, SigV4Options options = {},
                      const Credentials& creds = kCreds, std::string_view payload = {},
                      std::string_view payload_sha = {}) {
  SigV4Signer signer("us-east-1", "service", options);
  SigV4Result out;
  EXPECT_TRUE(signer
                  .sign({.method = "POST",
                         .path = "/",
                         .query = {},
                         .headers = headers,
                         .payload = payload,
                         .payload_sha256 = payload_sha},
                        creds, kTime, out)
                  .ok());
  return out;
}

TEST(SigV4Canonical, HeadersLowerCasedSortedAndFolded) {
  const SigV4Header h[] = {{"Host", "example.amazonaws.com"},
                           {"X-B", " 2 "},
                           {"x-a", "1"},
                           {"X-A", "  one   more "},
                           {"Content-Type", "application/x-amz-json-1.1"}};
  const SigV4Result out = sign_with(h);
  EXPECT_EQ(out.signed_headers, "content-type;host;x-a;x-amz-date;x-b");
  EXPECT_NE(out.canonical_request.find("x-a:1,one more\n"), std::string::npos);
  EXPECT_NE(out.canonical_request.find("x-b:2\n"), std::string::npos);
}

TEST(SigV4Canonical, NeverSignsHopByHopOrProxyRewrittenHeaders) {
  const SigV4Header h[] = {{"Host", "h"},
                           {"User-Agent", "shardline/1"},
                           {"Expect", "100-continue"},
                           {"Transfer-Encoding", "chunked"},
                           {"X-Amzn-Trace-Id", "Root=1"},
                           {"Authorization", "stale"},
                           {"X-Amz-Date", "19990101T000000Z"},
                           {"X-Amz-Security-Token", "stale-token"},
                           {"X-Amz-Target", "Kinesis_20131202.PutRecords"}};
  const SigV4Result out = sign_with(h);
  EXPECT_EQ(out.signed_headers, "host;x-amz-date;x-amz-target");
  EXPECT_EQ(out.canonical_request.find("stale"), std::string::npos);
  EXPECT_EQ(out.canonical_request.find("19990101"), std::string::npos);
  // Without a session token nothing is added for it.
  EXPECT_TRUE(out.security_token.empty());
}

TEST(SigV4Canonical, SessionTokenSignedOrOmitted) {
  Credentials creds = kCreds;
  creds.session_token = "TOKEN+/=";
  const SigV4Header h[] = {{"Host", "h"}};
  SigV4Result out = sign_with(h, {}, creds);
  EXPECT_EQ(out.signed_headers, "host;x-amz-date;x-amz-security-token");
  EXPECT_EQ(out.security_token, "TOKEN+/=");
  SigV4Options omit;
  omit.omit_session_token = true;
  out = sign_with(h, omit, creds);
  EXPECT_EQ(out.signed_headers, "host;x-amz-date");
  EXPECT_EQ(out.security_token, "TOKEN+/=");  // still sent, just not signed
  std::vector<std::string> names;
  out.for_each_header([&](std::string_view n, std::string_view) { names.emplace_back(n); });
  EXPECT_EQ(names,
            (std::vector<std::string>{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"}));
}

TEST(SigV4Canonical, PayloadHashComputedOrGiven) {
  const SigV4Header h[] = {{"Host", "h"}};
  SigV4Result out = sign_with(h, {}, kCreds, "Param1=value1");
  EXPECT_TRUE(out.canonical_request.ends_with(
      "\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"));
  EXPECT_TRUE(out.content_sha256.empty());
  out = sign_with(h, {}, kCreds, "ignored", "UNSIGNED-PAYLOAD");
  EXPECT_TRUE(out.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"));
  SigV4Options body;
  body.sign_body = true;
  const SigV4Header with_stale[] = {{"Host", "h"}, {"X-Amz-Content-Sha256", "stale"}};
  out = sign_with(with_stale, body, kCreds, "Param1=value1");
  EXPECT_EQ(out.content_sha256, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  EXPECT_EQ(out.signed_headers, "host;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(out.canonical_request.find("stale"), std::string::npos);
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SigV4Canonical, MissingCredentialsOrScopeAreErrors) {
  SigV4Signer signer("us-east-1", "kinesis");
  SigV4Result out;
  const SigV4Header h[] = {{"Host", "h"}};
  const SigV4Request req{.method = "POST",
                         .path = "/",
                         .query = {},
                         .headers = h,
                         .payload = {},
                         .payload_sha256 = {}};
  Credentials no_secret = kCreds;
  no_secret.secret_access_key.clear();
  EXPECT_EQ(signer.sign(req, no_secret, kTime, out).code(), StatusCode::kUnauthenticated);
  Credentials no_id = kCreds;
  no_id.access_key_id.clear();
  EXPECT_EQ(signer.sign(req, no_id, kTime, out).code(), StatusCode::kUnauthenticated);
  SigV4Signer no_region("", "kinesis");
  EXPECT_EQ(no_region.sign(req, kCreds, kTime, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(signer.presign(req, kCreds, kTime, std::chrono::seconds(0), out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(signer.presign(req, kCreds, kTime, std::chrono::seconds(604801), out).code(),
            StatusCode::kInvalidArgument);
}

TEST(SigV4Primitives, AmzDateFormatting) {
  char buf[16];
  format_amz_date(kTime, buf);
  EXPECT_EQ(std::string_view(buf, 16), "20150830T123600Z");
  format_amz_date(system_clock::time_point{}, buf);
  EXPECT_EQ(std::string_view(buf, 16), "19700101T000000Z");
  format_amz_date(*parse_iso8601("2024-02-29T23:59:59.999Z"), buf);
  EXPECT_EQ(std::string_view(buf, 16), "20240229T235959Z");
}

TEST(SigV4Primitives, HmacMatchesOpenSslForAllKeyLengths) {
  std::mt19937 rng(7);
  for (std::size_t key_len : {0u, 1u, 32u, 63u, 64u, 65u, 200u}) {
    std::string key(key_len, '\0');
    std::string msg(static_cast<std::size_t>(rng() % 300), '\0');
    for (char& c : key) c = static_cast<char>(rng());
    for (char& c : msg) c = static_cast<char>(rng());
    unsigned char expected[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), expected, &len);
    const auto got = hmac_sha256(key, msg);
    EXPECT_EQ(to_hex(got.data(), got.size()), to_hex(expected, len)) << "key length " << key_len;
  }
}

// ---- the signer object ----------------------------------------------------------------------

TEST(SigV4Signer, KeyCacheSurvivesRotationAndDateChange) {
  // One long-lived signer must give the same signatures as fresh signers while secrets rotate
  // and days change (the cache is keyed by secret and date).
  const SigV4Header h[] = {{"Host", "kinesis.us-east-1.amazonaws.com"}};
  const SigV4Request req{.method = "POST",
                         .path = "/",
                         .query = {},
                         .headers = h,
                         .payload = "{}",
                         .payload_sha256 = {}};
  SigV4Signer shared("us-east-1", "kinesis");
  const Credentials a{"AKIDA", "secret-a", "", {}, ""};
  const Credentials b{"AKIDB", "secret-b", "", {}, ""};
  const Credentials c{"AKIDC", "secret-c", "", {}, ""};
  const system_clock::time_point day1 = kTime;
  const system_clock::time_point day2 = kTime + std::chrono::hours(24);
  const std::pair<const Credentials*, system_clock::time_point> sequence[] = {
      {&a, day1}, {&b, day1}, {&a, day1}, {&c, day1},
      {&a, day2}, {&b, day2}, {&b, day1}, {&a, day1}};
  for (const auto& [creds, when] : sequence) {
    SigV4Result got;
    SigV4Result want;
    ASSERT_TRUE(shared.sign(req, *creds, when, got).ok());
    SigV4Signer fresh("us-east-1", "kinesis");
    ASSERT_TRUE(fresh.sign(req, *creds, when, want).ok());
    EXPECT_EQ(got.authorization, want.authorization);
  }
}

TEST(SigV4Signer, ConcurrentSigningIsConsistent) {
  SigV4Signer signer("eu-west-1", "kinesis");
  const SigV4Header h[] = {{"Host", "kinesis.eu-west-1.amazonaws.com"},
                           {"X-Amz-Target", "Kinesis_20131202.PutRecords"}};
  auto sign_one = [&](int i, SigV4Result& out) {
    const std::string body = "{\"n\":" + std::to_string(i) + "}";
    const Credentials creds{"AKID", i % 2 ? "odd-secret" : "even-secret", "", {}, ""};
    return signer.sign({.method = "POST",
                        .path = "/",
                        .query = {},
                        .headers = h,
                        .payload = body,
                        .payload_sha256 = {}},
                       creds, kTime + std::chrono::hours(24 * (i % 3)), out);
  };
  std::vector<std::string> expected(64);
  for (int i = 0; i < 64; ++i) {
    SigV4Result out;
    ASSERT_TRUE(sign_one(i, out).ok());
    expected[static_cast<std::size_t>(i)] = out.authorization;
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      SigV4Result out;  // reused: exercises the capacity-keeping path
      for (int round = 0; round < 50; ++round) {
        for (int i = t; i < 64; i += 4) {
          if (!sign_one(i, out).ok() ||
              out.authorization != expected[static_cast<std::size_t>(i)]) {
            ++mismatches;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---- differential test against botocore -----------------------------------------------------

std::string strict_encode(std::string_view raw) {
  std::string out;
  sigv4_uri_encode(out, raw, false);
  return out;
}

struct RandomRequest {
  std::string method, host, path, query, body, region, service;
  std::vector<std::pair<std::string, std::string>> headers;
  Credentials creds;
  system_clock::time_point time;
};

class Generator {
 public:
  explicit Generator(std::uint32_t seed) : rng_(seed) {}

  RandomRequest next() {
    RandomRequest r;
    r.method = pick({"GET", "POST", "PUT", "DELETE", "HEAD"});
    r.host = pick({"kinesis.us-east-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com",
                   "localhost:4567", "127.0.0.1:8000", "sts.cn-north-1.amazonaws.com.cn"});
    r.path = path();
    r.query = query_string();
    r.body = bytes(below(4) == 0 ? 0 : below(400));
    r.region = pick({"us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"});
    r.service = pick({"kinesis", "dynamodb", "sts", "execute-api", "monitoring"});
    r.creds.access_key_id = "AKIA" + from_alphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
    r.creds.secret_access_key = from_alphabet(kB64, 40);
    if (below(2) == 0) r.creds.session_token = from_alphabet(kB64, 20 + below(300));
    // 2000-01-01 .. 2037-12-31
    r.time = system_clock::time_point(std::chrono::seconds(946684800 + below(1198800000)));
    r.headers.emplace_back(below(2) ? "Host" : "host", r.host);
    const std::size_t n = below(7);
    for (std::size_t i = 0; i < n; ++i) {
      std::string name;
      switch (below(6)) {
        case 0:
          name = pick({"Content-Type", "X-Amz-Target", "Content-Length"});
          break;
        case 1:
          name = pick({"User-Agent", "X-Amzn-Trace-Id", "Expect"});
          break;
        case 2:  // a repeat of an earlier name, maybe in another case
          name = r.headers[below(r.headers.size())].first;
          if (name == "Host" || name == "host") name = "X-Repeat";
          if (below(2)) std::transform(name.begin(), name.end(), name.begin(), ::toupper);
          break;
        default:
          name = "X-" +
                 from_alphabet("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
                               1 + below(12));
      }
      r.headers.emplace_back(name, header_value());
    }
    return r;
  }

 private:
  static constexpr std::string_view kB64 =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

  std::size_t below(std::size_t n) { return n == 0 ? 0 : rng_() % n; }
  std::string pick(std::initializer_list<const char*> options) {
    return *(options.begin() + below(options.size()));
  }
  std::string from_alphabet(std::string_view alphabet, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += alphabet[below(alphabet.size())];
    return s;
  }
  std::string bytes(std::size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }
  // Raw text for names and values: unreserved, reserved, space, '%', and UTF-8.
  std::string raw_text(std::size_t max_len) {
    static const std::vector<std::string> pieces = {"a",
                                                    "Z",
                                                    "0",
                                                    "-",
                                                    "_",
                                                    ".",
                                                    "~",
                                                    " ",
                                                    "!",
                                                    "$",
                                                    "&",
                                                    "'",
                                                    "(",
                                                    ")",
                                                    "*",
                                                    "+",
                                                    ",",
                                                    ";",
                                                    "=",
                                                    ":",
                                                    "@",
                                                    "%",
                                                    "\xC3\xA9",
                                                    "\xE1\x88\xB4",
                                                    "\xF0\x9F\x98\x80",
                                                    "/",
                                                    "?"};
    std::string s;
    const std::size_t n = below(max_len + 1);
    for (std::size_t i = 0; i < n; ++i) s += pieces[below(pieces.size())];
    return s;
  }
  std::string path() {
    std::string p;
    const std::size_t segments = below(6);
    for (std::size_t i = 0; i < segments; ++i) {
      p += '/';
      switch (below(8)) {
        case 0:
          p += ".";
          break;
        case 1:
          p += "..";
          break;
        case 2:
          break;  // an empty segment: "//"
        default: {
          std::string seg = raw_text(6);
          // '/' splits, '?' and '#' would end the path in a URL.
          std::erase_if(seg, [](char c) { return c == '/' || c == '?' || c == '#'; });
          p += seg;
        }
      }
    }
    if (p.empty() || below(3) == 0) p += '/';
    if (p.back() == ' ') p += 'x';  // urlsplit strips trailing spaces from a URL
    return p;
  }
  // An already-encoded query string (what a client sends); botocore signs it as written.
  std::string query_string() {
    std::string q;
    const std::size_t n = below(5);
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < n; ++i) {
      if (!q.empty()) q += '&';
      std::string key =
          (!keys.empty() && below(3) == 0) ? keys[below(keys.size())] : strict_encode(raw_text(5));
      if (key.empty()) key = "k";
      keys.push_back(key);
      q += key;
      if (below(5) != 0) q += "=" + strict_encode(raw_text(6));
    }
    return q;
  }
  std::string header_value() {
    std::string v;
    const std::size_t n = below(6);
    for (std::size_t i = 0; i < n; ++i) {
      v += std::string(below(3), below(2) ? ' ' : '\t');
      v += from_alphabet("abcXYZ019=;,:\"'()/<>@[]{}?!#$%&*+-.^_`|~", 1 + below(8));
    }
    v += std::string(below(3), ' ');
    return v;
  }

  std::mt19937 rng_;
};

TEST(SigV4Botocore, RandomRequestsSignIdentically) {
  if (!testing::python3_can("import botocore.auth")) {
    GTEST_SKIP() << "python3 with botocore is not available";
  }
  // SHARDLINE_SIGV4_DIFF_SEED / SHARDLINE_SIGV4_DIFF_REQUESTS widen the search when debugging.
  const char* seed_env = std::getenv("SHARDLINE_SIGV4_DIFF_SEED");
  const char* count_env = std::getenv("SHARDLINE_SIGV4_DIFF_REQUESTS");
  const std::uint32_t kSeed =
      seed_env ? static_cast<std::uint32_t>(std::stoul(seed_env)) : 20240601;
  const int kRequests = count_env ? std::stoi(count_env) : 60;
  Generator gen(kSeed);
  std::vector<RandomRequest> requests;
  std::string input;
  for (int i = 0; i < kRequests; ++i) {
    RandomRequest r = gen.next();
    char date[16];
    format_amz_date(r.time, date);
    nlohmann::json headers = nlohmann::json::array();
    for (const auto& [n, v] : r.headers) headers.push_back({n, v});
    const nlohmann::json line = {{"method", r.method},
                                 {"host", r.host},
                                 {"path", r.path},
                                 {"query", r.query},
                                 {"headers", headers},
                                 {"body_b64", base64_encode(r.body)},
                                 {"access_key", r.creds.access_key_id},
                                 {"secret_key", r.creds.secret_access_key},
                                 {"token", r.creds.session_token},
                                 {"region", r.region},
                                 {"service", r.service},
                                 {"amz_date", std::string(date, 16)}};
    input += line.dump() + "\n";
    requests.push_back(std::move(r));
  }
  const std::string script = std::string(SHARDLINE_SOURCE_DIR) + "/tests/support/sigv4_botocore.py";
  const testing::ProcessResult result = testing::run_process({"python3", script}, input);
  ASSERT_EQ(result.exit_code, 0) << "sigv4_botocore.py failed";
  std::istringstream lines(result.out);
  std::string line;
  int compared = 0;
  for (const RandomRequest& r : requests) {
    ASSERT_TRUE(std::getline(lines, line)) << "botocore returned " << compared << " results";
    const auto want = nlohmann::json::parse(line);
    std::vector<SigV4Header> headers;
    for (const auto& [n, v] : r.headers) headers.push_back({n, v});
    SigV4Signer signer(r.region, r.service);
    SigV4Result got;
    ASSERT_TRUE(signer
                    .sign({.method = r.method,
                           .path = r.path,
                           .query = r.query,
                           .headers = headers,
                           .payload = r.body,
                           .payload_sha256 = {}},
                          r.creds, r.time, got)
                    .ok());
    EXPECT_EQ(got.canonical_request, want["canonical_request"].get<std::string>())
        << "seed " << kSeed << " request " << compared;
    EXPECT_EQ(got.string_to_sign, want["string_to_sign"].get<std::string>());
    EXPECT_EQ(got.authorization, want["authorization"].get<std::string>());
    ++compared;
  }
  EXPECT_EQ(compared, kRequests);
}

}  // namespace
}  // namespace shardline::detail
