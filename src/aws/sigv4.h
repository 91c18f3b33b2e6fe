// Internal: AWS Signature Version 4 (header signing and presigned query strings).
//
//   SigV4Signer signer("us-east-1", "kinesis");
//   const SigV4Header headers[] = {{"Host", ep.authority()}, {"Content-Type", kJson11},
//                                  {"X-Amz-Target", "Kinesis_20131202.PutRecords"}};
//   SigV4Result out;  // reuse across calls: its strings keep their capacity
//   SHARDLINE_RETURN_IF_ERROR(signer.sign({.method = "POST", .path = "/", .headers = headers,
//                                          .payload = body}, creds, now, out));
//   out.for_each_header([&](std::string_view name, std::string_view value) { add(name, value); });
//
// Canonicalisation follows the SigV4 specification and matches the AWS SDKs (verified against
// the aws-c-auth signing test suite and botocore):
//  - path: optionally normalised (dot segments resolved, empty segments dropped, a trailing
//    '/' kept), then every byte except unreserved characters and '/' percent-encoded; the path
//    is taken as sent on the wire, so an already-encoded "%20" becomes "%2520" as AWS expects
//    for every service but S3 (encode_path = false sends it through unchanged);
//  - query: split on '&', each key and value percent-decoded then strictly re-encoded, "k" is
//    "k=", sorted by encoded key then encoded value;
//  - headers: names lower-cased, values trimmed with inner whitespace runs (including folded
//    lines) collapsed to one space, repeated names joined with ',' in request order, sorted by
//    name. `user-agent`, `expect`, `transfer-encoding`, `x-amzn-trace-id` and `authorization`
//    are never signed (proxies rewrite them); `x-amz-date`, `x-amz-security-token` and (with
//    sign_body) `x-amz-content-sha256` in the input are ignored because the signer sets them.
//
// Performance: the derived signing key is cached per (secret, date) in each signer (region and
// service are fixed per signer) as precomputed HMAC pad states, so a signature costs one
// SHA-256 of the payload, one of the canonical request and one HMAC, with no OpenSSL context
// allocation. Scratch buffers are per thread; a reused SigV4Result makes steady-state signing
// allocation-free apart from growth.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "shardline/credentials.h"
#include "shardline/status.h"

namespace shardline::detail {

struct SigV4Header {
  std::string_view name{};
  std::string_view value{};
};

// Every member has a default so that designated initializers may omit any of them.
struct SigV4Request {
  std::string_view method{};               // upper case: "POST"
  std::string_view path{};                 // as sent, without the query: "/" for Kinesis
  std::string_view query{};                // the raw query string without '?', "" for none
  std::span<const SigV4Header> headers{};  // must include Host
  std::string_view payload{};              // the body
  /// Lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"; when set, `payload` is ignored.
  std::string_view payload_sha256{};
};

struct SigV4Options {
  /// Resolve '.', '..' and empty path segments: yes for every service but S3.
  bool normalize_path = true;
  /// Percent-encode the (wire) path once more: yes for every service but S3.
  bool encode_path = true;
  /// Add and sign X-Amz-Content-SHA256 (header signing only).
  bool sign_body = false;
  /// Send the session token without signing it (added after signing), as some services need.
  bool omit_session_token = false;
};

/// What signing produced. Contains the session token (X-Amz-Security-Token and, when it is
/// signed, the canonical request): never log a SigV4Result.
struct SigV4Result {
  // Headers to add to the request (header signing). Empty ones are not to be sent.
  std::string authorization;   // Authorization
  std::string amz_date;        // X-Amz-Date, e.g. "20150830T123600Z"
  std::string security_token;  // X-Amz-Security-Token
  std::string content_sha256;  // X-Amz-Content-SHA256 (sign_body)

  /// presign(): the query string to send instead of the request's, ending in X-Amz-Signature.
  std::string presigned_query;

  // Intermediate values, for tests and debugging.
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date"
  std::string signature;       // lower-case hex

  /// Calls `add(name, value)` for each header to add after sign() (not after presign()).
  template <class F>
  void for_each_header(F&& add) const {
    add(std::string_view("Authorization"), std::string_view(authorization));
    add(std::string_view("X-Amz-Date"), std::string_view(amz_date));
    if (!security_token.empty()) {
      add(std::string_view("X-Amz-Security-Token"), std::string_view(security_token));
    }
    if (!content_sha256.empty()) {
      add(std::string_view("X-Amz-Content-SHA256"), std::string_view(content_sha256));
    }
  }
};

/// Signs requests for one (region, service). Thread-safe: sign() and presign() may be called
/// concurrently (the key cache is guarded by a mutex held for a few nanoseconds).
class SigV4Signer {
 public:
  SigV4Signer(std::string region, std::string service, SigV4Options options = {});
  ~SigV4Signer();
  SigV4Signer(const SigV4Signer&) = delete;
  SigV4Signer& operator=(const SigV4Signer&) = delete;

  /// Header signing. @returns kUnauthenticated for credentials without an access key id or
  /// secret, kInvalidArgument for an empty region or service; `out` is then unspecified.
  Status sign(const SigV4Request& request, const Credentials& credentials,
              std::chrono::system_clock::time_point now, SigV4Result& out) const;

  /// Query-string signing (a presigned URL valid for `expires`, 1 s .. 7 days).
  /// @returns as sign(), plus kInvalidArgument for an out-of-range `expires`.
  Status presign(const SigV4Request& request, const Credentials& credentials,
                 std::chrono::system_clock::time_point now, std::chrono::seconds expires,
                 SigV4Result& out) const;

  const std::string& region() const noexcept { return region_; }
  const std::string& service() const noexcept { return service_; }
  const SigV4Options& options() const noexcept { return options_; }

  /// Precomputed HMAC-SHA256 state for one key (opaque outside sigv4.cc).
  struct HmacKey {
    alignas(8) std::array<unsigned char, 128> inner{};  // SHA256_CTX after key ^ ipad
    alignas(8) std::array<unsigned char, 128> outer{};  // SHA256_CTX after key ^ opad
  };

 private:
  Status sign_impl(const SigV4Request& request, const Credentials& credentials,
                   std::chrono::system_clock::time_point now, std::chrono::seconds expires,
                   bool presign, SigV4Result& out) const;
  HmacKey signing_key(std::string_view secret, std::string_view date) const;

  struct CacheEntry {
    std::string secret;
    std::array<char, 8> date{};
    HmacKey key;
    std::uint64_t last_use = 0;
  };

  std::string region_;
  std::string service_;
  SigV4Options options_;
  mutable std::mutex mu_;
  // Two entries: a rotation (old and new secret both in flight) or a date change at midnight
  // must not make every request recompute the key.
  mutable std::array<CacheEntry, 2> cache_;
  mutable std::uint64_t use_counter_ = 0;
};

// ---- building blocks, exposed for tests ----

/// Append `in` with every byte except A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash) as %XX.
void sigv4_uri_encode(std::string& out, std::string_view in, bool keep_slash);
/// The canonical URI of a wire path.
void sigv4_canonical_uri(std::string& out, std::string_view path, bool normalize, bool encode);
/// The canonical query string of a raw query string.
void sigv4_canonical_query(std::string& out, std::string_view query);
/// Append a header value trimmed, inner whitespace runs collapsed to one space.
void sigv4_append_trimmed(std::string& out, std::string_view value);
/// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view bytes);
/// HMAC-SHA256 (any key length), the building block of the key derivation.
std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view message);

}  // namespace shardline::detail
