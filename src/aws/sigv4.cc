// SigV4 on OpenSSL's low-level SHA-256 (SHA256_CTX): hashes, and for HMAC states precomputed
// once per signing key and copied per signature. That avoids the EVP_MAC fetch and context
// allocation OpenSSL 3's HMAC() performs on every call, and the algorithm fetch its one-shot
// SHA256() does (it goes through EVP_Q_digest): together they dominated the cost of signing a
// small Kinesis request. The low-level API is deprecated in OpenSSL 3 but stable.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "aws/sigv4.h"

#include "core/ascii.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "aws/aws_time.h"

namespace shardline::detail {

namespace {

// SHA-256 of `n` bytes, without the per-call algorithm fetch of OpenSSL 3's SHA256().
void sha256(const void* data, std::size_t n, unsigned char* out) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, data, n);
  SHA256_Final(out, &c);
}

static_assert(sizeof(SHA256_CTX) <= sizeof(SigV4Signer::HmacKey::inner),
              "HmacKey too small for SHA256_CTX");

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kHexLower[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

using Digest = std::array<unsigned char, 32>;

struct UnreservedTable {
  bool v[256] = {};
  constexpr UnreservedTable() {
    for (int c = 'A'; c <= 'Z'; ++c) v[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) v[c] = true;
    for (int c = '0'; c <= '9'; ++c) v[c] = true;
    v[static_cast<unsigned char>('-')] = true;
    v[static_cast<unsigned char>('_')] = true;
    v[static_cast<unsigned char>('.')] = true;
    v[static_cast<unsigned char>('~')] = true;
  }
};
constexpr UnreservedTable kUnreserved;

constexpr bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

constexpr char lower(char c) noexcept { return detail::ascii_lower(c); }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_hex(std::string& out, const unsigned char* bytes, std::size_t n) {
  const std::size_t old = out.size();
  out.resize(old + 2 * n);
  char* p = out.data() + old;
  for (std::size_t i = 0; i < n; ++i) {
    p[2 * i] = kHexLower[bytes[i] >> 4];
    p[2 * i + 1] = kHexLower[bytes[i] & 0xF];
  }
}

void append_encoded_byte(std::string& out, unsigned char b) {
  if (kUnreserved.v[b]) {
    out += static_cast<char>(b);
  } else {
    const char enc[3] = {'%', kHexUpper[b >> 4], kHexUpper[b & 0xF]};
    out.append(enc, 3);
  }
}

// Percent-decode (lenient: a '%' not followed by two hex digits is a literal '%'), then encode
// strictly. Idempotent on strictly encoded input.
void append_reencoded(std::string& out, std::string_view in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(in[i]);
    if (b == '%' && i + 2 < in.size()) {
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        b = static_cast<unsigned char>(hi * 16 + lo);
        i += 2;
      }
    }
    append_encoded_byte(out, b);
  }
}

// ---- HMAC-SHA256 on precomputed pad states ----

void hmac_prepare(SigV4Signer::HmacKey& k, const unsigned char* key, std::size_t len) {
  unsigned char block[64] = {};
  if (len > sizeof(block)) {
    sha256(key, len, block);
  } else if (len > 0) {
    std::memcpy(block, key, len);
  }
  unsigned char pad[64];
  SHA256_CTX c;
  for (std::size_t i = 0; i < 64; ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x36);
  SHA256_Init(&c);
  SHA256_Update(&c, pad, sizeof(pad));
  std::memcpy(k.inner.data(), &c, sizeof(c));
  for (std::size_t i = 0; i < 64; ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x5c);
  SHA256_Init(&c);
  SHA256_Update(&c, pad, sizeof(pad));
  std::memcpy(k.outer.data(), &c, sizeof(c));
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
  OPENSSL_cleanse(&c, sizeof(c));
}

Digest hmac_finish(const SigV4Signer::HmacKey& k, std::string_view message) {
  SHA256_CTX c;
  Digest inner;
  Digest out;
  std::memcpy(&c, k.inner.data(), sizeof(c));
  SHA256_Update(&c, message.data(), message.size());
  SHA256_Final(inner.data(), &c);
  std::memcpy(&c, k.outer.data(), sizeof(c));
  SHA256_Update(&c, inner.data(), inner.size());
  SHA256_Final(out.data(), &c);
  return out;
}

Digest hmac(const unsigned char* key, std::size_t len, std::string_view message) {
  SigV4Signer::HmacKey k;
  hmac_prepare(k, key, len);
  Digest d = hmac_finish(k, message);
  OPENSSL_cleanse(&k, sizeof(k));
  return d;
}

// ---- per-thread scratch: signing allocates nothing once these have grown ----

struct HeaderEntry {
  std::string_view name;
  std::string_view value;
  std::uint32_t order;
};

struct QueryParam {
  std::uint32_t key_off, key_len, value_off, value_len;
};

struct Scratch {
  std::vector<HeaderEntry> headers;
  std::vector<QueryParam> params;
  std::vector<std::string_view> segments;
  std::string query_buf;
  std::string canonical_headers;
  std::string raw_query;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return detail::ascii_iequals(a, b);
}

// Case-insensitive three-way compare of header names (their lower-case forms, byte-wise).
int icompare(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto ca = static_cast<unsigned char>(lower(a[i]));
    const auto cb = static_cast<unsigned char>(lower(b[i]));
    if (ca != cb) return ca < cb ? -1 : 1;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

// Headers the SDKs never sign (a proxy may rewrite them), plus the ones the signer owns.
bool skipped_header(std::string_view name, bool sign_body) noexcept {
  switch (name.size()) {
    case 6:
      return iequals(name, "expect");
    case 10:
      return iequals(name, "user-agent") || iequals(name, "x-amz-date");
    case 13:
      return iequals(name, "authorization");
    case 15:
      return iequals(name, "x-amzn-trace-id");
    case 17:
      return iequals(name, "transfer-encoding");
    case 20:
      return iequals(name, "x-amz-security-token") ||
             (sign_body && iequals(name, "x-amz-content-sha256"));
    default:
      return false;
  }
}

// Writes the canonical header block (each "name:value\n") to `block` and the signed header list.
void build_canonical_headers(std::span<const SigV4Header> input, std::span<const HeaderEntry> own,
                             bool sign_body, std::string& block, std::string& signed_headers) {
  Scratch& s = scratch();
  auto& entries = s.headers;
  entries.clear();
  std::uint32_t order = 0;
  for (const SigV4Header& h : input) {
    if (!skipped_header(h.name, sign_body)) entries.push_back({h.name, h.value, order++});
  }
  for (const HeaderEntry& h : own) entries.push_back({h.name, h.value, order++});
  // Sort by name, then by position: repeated headers keep the request's order (std::sort plus
  // the position tie-break instead of std::stable_sort, which allocates a buffer).
  std::sort(entries.begin(), entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    const int c = icompare(a.name, b.name);
    return c != 0 ? c < 0 : a.order < b.order;
  });
  block.clear();
  signed_headers.clear();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const HeaderEntry& e = entries[i];
    if (i > 0 && iequals(e.name, entries[i - 1].name)) {
      block.back() = ',';  // replace the previous line's '\n': fold into one line
    } else {
      if (i > 0) signed_headers += ';';
      const std::size_t at = block.size();
      block.append(e.name);
      std::transform(block.begin() + static_cast<std::ptrdiff_t>(at), block.end(),
                     block.begin() + static_cast<std::ptrdiff_t>(at), lower);
      signed_headers.append(block, at, e.name.size());
      block += ':';
    }
    sigv4_append_trimmed(block, e.value);
    block += '\n';
  }
}

bool valid_expires(std::chrono::seconds s) { return s.count() >= 1 && s.count() <= 604800; }

}  // namespace

// ---- building blocks ----

void sigv4_uri_encode(std::string& out, std::string_view in, bool keep_slash) {
  out.reserve(out.size() + in.size());
  for (char c : in) {
    const auto b = static_cast<unsigned char>(c);
    if (keep_slash && b == '/') {
      out += '/';
    } else {
      append_encoded_byte(out, b);
    }
  }
}

void sigv4_canonical_uri(std::string& out, std::string_view path, bool normalize, bool encode) {
  if (path.empty()) {
    out += '/';
    return;
  }
  if (!normalize) {
    if (encode) {
      sigv4_uri_encode(out, path, /*keep_slash=*/true);
    } else {
      out.append(path);
    }
    return;
  }
  // Dot segments resolved and empty segments dropped (AWS requires consecutive slashes to be
  // removed); a trailing '/' survives only if something is left, as the SDKs do.
  auto& segs = scratch().segments;
  segs.clear();
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(pos, end - pos);
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.push_back(seg);
    }
    pos = end + 1;
  }
  const std::size_t start = out.size();
  if (path.front() == '/') out += '/';
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (i > 0) out += '/';
    if (encode) {
      sigv4_uri_encode(out, segs[i], /*keep_slash=*/false);
    } else {
      out.append(segs[i]);
    }
  }
  if (path.back() == '/' && !segs.empty()) out += '/';
  if (out.size() == start) out += '/';
}

void sigv4_canonical_query(std::string& out, std::string_view query) {
  if (query.empty()) return;
  Scratch& s = scratch();
  auto& params = s.params;
  auto& buf = s.query_buf;
  params.clear();
  buf.clear();
  std::size_t pos = 0;
  while (pos <= query.size()) {
    std::size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    QueryParam p;
    p.key_off = static_cast<std::uint32_t>(buf.size());
    append_reencoded(buf, key);
    p.key_len = static_cast<std::uint32_t>(buf.size() - p.key_off);
    p.value_off = static_cast<std::uint32_t>(buf.size());
    append_reencoded(buf, value);
    p.value_len = static_cast<std::uint32_t>(buf.size() - p.value_off);
    params.push_back(p);
  }
  const std::string_view b(buf);
  std::sort(params.begin(), params.end(), [b](const QueryParam& x, const QueryParam& y) {
    const std::string_view xk = b.substr(x.key_off, x.key_len);
    const std::string_view yk = b.substr(y.key_off, y.key_len);
    if (xk != yk) return xk < yk;
    return b.substr(x.value_off, x.value_len) < b.substr(y.value_off, y.value_len);
  });
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out += '&';
    out.append(b.substr(params[i].key_off, params[i].key_len));
    out += '=';
    out.append(b.substr(params[i].value_off, params[i].value_len));
  }
}

void sigv4_append_trimmed(std::string& out, std::string_view value) {
  std::size_t i = 0;
  bool first = true;
  while (i < value.size()) {
    while (i < value.size() && is_ws(value[i])) ++i;
    if (i == value.size()) break;
    std::size_t j = i;
    while (j < value.size() && !is_ws(value[j])) ++j;
    if (!first) out += ' ';
    out.append(value.substr(i, j - i));
    first = false;
    i = j;
  }
}

std::string sha256_hex(std::string_view bytes) {
  if (bytes.empty()) return std::string(kEmptySha256);
  Digest d;
  sha256(bytes.data(), bytes.size(), d.data());
  std::string s;
  append_hex(s, d.data(), d.size());
  return s;
}

std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view message) {
  return hmac(reinterpret_cast<const unsigned char*>(key.data()), key.size(), message);
}

// ---- the signer ----

SigV4Signer::SigV4Signer(std::string region, std::string service, SigV4Options options)
    : region_(std::move(region)), service_(std::move(service)), options_(options) {}

SigV4Signer::~SigV4Signer() {
  for (CacheEntry& e : cache_) {
    if (!e.secret.empty()) OPENSSL_cleanse(e.secret.data(), e.secret.size());
    OPENSSL_cleanse(&e.key, sizeof(e.key));
  }
}

SigV4Signer::HmacKey SigV4Signer::signing_key(std::string_view secret,
                                              std::string_view date) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (CacheEntry& e : cache_) {
      if (e.last_use != 0 && e.secret == secret && std::string_view(e.date.data(), 8) == date) {
        e.last_use = ++use_counter_;
        return e.key;
      }
    }
  }
  // Miss (first request, new day, rotated secret): derive outside the lock.
  std::string k_secret;
  k_secret.reserve(4 + secret.size());
  k_secret.append("AWS4").append(secret);
  Digest k = hmac_sha256(k_secret, date);
  OPENSSL_cleanse(k_secret.data(), k_secret.size());
  const auto as_key = [](const Digest& d) {
    return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
  };
  k = hmac_sha256(as_key(k), region_);
  k = hmac_sha256(as_key(k), service_);
  k = hmac_sha256(as_key(k), "aws4_request");
  HmacKey key;
  hmac_prepare(key, k.data(), k.size());
  OPENSSL_cleanse(k.data(), k.size());

  std::lock_guard<std::mutex> lock(mu_);
  CacheEntry* victim = &cache_[0];
  for (CacheEntry& e : cache_) {
    if (e.last_use < victim->last_use) victim = &e;
  }
  if (!victim->secret.empty()) OPENSSL_cleanse(victim->secret.data(), victim->secret.size());
  victim->secret.assign(secret);
  std::memcpy(victim->date.data(), date.data(), 8);
  victim->key = key;
  victim->last_use = ++use_counter_;
  return key;
}

Status SigV4Signer::sign(const SigV4Request& request, const Credentials& credentials,
                         std::chrono::system_clock::time_point now, SigV4Result& out) const {
  return sign_impl(request, credentials, now, std::chrono::seconds(0), /*presign=*/false, out);
}

Status SigV4Signer::presign(const SigV4Request& request, const Credentials& credentials,
                            std::chrono::system_clock::time_point now, std::chrono::seconds expires,
                            SigV4Result& out) const {
  if (!valid_expires(expires)) {
    return Status::invalid_argument("presign: expiry must be in [1, 604800] seconds, got " +
                                    std::to_string(expires.count()));
  }
  return sign_impl(request, credentials, now, expires, /*presign=*/true, out);
}

Status SigV4Signer::sign_impl(const SigV4Request& request, const Credentials& credentials,
                              std::chrono::system_clock::time_point now,
                              std::chrono::seconds expires, bool presign, SigV4Result& out) const {
  if (credentials.access_key_id.empty()) {
    return {StatusCode::kUnauthenticated, "SigV4: credentials have no access key id"};
  }
  if (credentials.secret_access_key.empty()) {
    return {StatusCode::kUnauthenticated, "SigV4: credentials have no secret access key"};
  }
  if (region_.empty() || service_.empty()) {
    return Status::invalid_argument("SigV4: signer needs a region and a service");
  }
  Scratch& s = scratch();

  char amz_date[16];
  format_amz_date(now, amz_date);
  out.amz_date.assign(amz_date, 16);
  const std::string_view date8(amz_date, 8);

  // Payload hash.
  out.content_sha256.clear();
  std::string_view payload_hash;
  Digest payload_digest;
  char payload_hex[64];
  if (!request.payload_sha256.empty()) {
    payload_hash = request.payload_sha256;
  } else if (request.payload.empty()) {
    payload_hash = kEmptySha256;
  } else {
    sha256(request.payload.data(), request.payload.size(), payload_digest.data());
    for (std::size_t i = 0; i < 32; ++i) {
      payload_hex[2 * i] = kHexLower[payload_digest[i] >> 4];
      payload_hex[2 * i + 1] = kHexLower[payload_digest[i] & 0xF];
    }
    payload_hash = std::string_view(payload_hex, 64);
  }

  const bool has_token = !credentials.session_token.empty();
  out.security_token.clear();
  if (has_token) out.security_token = credentials.session_token;

  // The headers the signer adds and signs.
  HeaderEntry own[3];
  std::size_t n_own = 0;
  if (!presign) {
    own[n_own++] = {"x-amz-date", out.amz_date, 0};
    if (has_token && !options_.omit_session_token) {
      own[n_own++] = {"x-amz-security-token", credentials.session_token, 0};
    }
    if (options_.sign_body) {
      out.content_sha256.assign(payload_hash);
      own[n_own++] = {"x-amz-content-sha256", out.content_sha256, 0};
    }
  }
  build_canonical_headers(request.headers, std::span<const HeaderEntry>(own, n_own),
                          options_.sign_body && !presign, s.canonical_headers, out.signed_headers);

  std::string& cr = out.canonical_request;
  cr.clear();
  cr.append(request.method).append("\n");
  sigv4_canonical_uri(cr, request.path, options_.normalize_path, options_.encode_path);
  cr += '\n';
  if (presign) {
    // The X-Amz-* parameters join the request's own before sorting; their values are
    // encoded here, and re-encoding strictly encoded text is the identity.
    std::string& q = s.raw_query;
    q.assign(request.query);
    if (!q.empty()) q += '&';
    q.append("X-Amz-Algorithm=").append(kAlgorithm);
    q.append("&X-Amz-Credential=");
    sigv4_uri_encode(q, credentials.access_key_id, false);
    q.append("%2F").append(date8).append("%2F");
    sigv4_uri_encode(q, region_, false);
    q.append("%2F");
    sigv4_uri_encode(q, service_, false);
    q.append("%2Faws4_request");
    q.append("&X-Amz-Date=").append(out.amz_date);
    q.append("&X-Amz-Expires=").append(std::to_string(expires.count()));
    q.append("&X-Amz-SignedHeaders=");
    sigv4_uri_encode(q, out.signed_headers, false);
    if (has_token && !options_.omit_session_token) {
      q.append("&X-Amz-Security-Token=");
      sigv4_uri_encode(q, credentials.session_token, false);
    }
    const std::size_t qstart = cr.size();
    sigv4_canonical_query(cr, q);
    out.presigned_query.assign(cr, qstart, std::string::npos);
  } else {
    sigv4_canonical_query(cr, request.query);
    out.presigned_query.clear();
  }
  cr += '\n';
  cr.append(s.canonical_headers);
  cr += '\n';
  cr.append(out.signed_headers);
  cr += '\n';
  cr.append(payload_hash);

  // String to sign.
  Digest cr_digest;
  sha256(cr.data(), cr.size(), cr_digest.data());
  std::string& sts = out.string_to_sign;
  sts.clear();
  sts.append(kAlgorithm).append("\n").append(out.amz_date).append("\n");
  const std::size_t scope_start = sts.size();
  sts.append(date8).append("/").append(region_).append("/").append(service_).append(
      "/aws4_request");
  const std::size_t scope_len = sts.size() - scope_start;
  sts += '\n';
  append_hex(sts, cr_digest.data(), cr_digest.size());

  // Signature.
  const HmacKey key = signing_key(credentials.secret_access_key, date8);
  const Digest sig = hmac_finish(key, sts);
  out.signature.clear();
  append_hex(out.signature, sig.data(), sig.size());

  if (presign) {
    out.authorization.clear();
    out.presigned_query.append("&X-Amz-Signature=").append(out.signature);
    if (has_token && options_.omit_session_token) {
      out.presigned_query.append("&X-Amz-Security-Token=");
      sigv4_uri_encode(out.presigned_query, credentials.session_token, false);
    }
    out.security_token.clear();
    out.amz_date.clear();
  } else {
    std::string& a = out.authorization;
    a.clear();
    a.append(kAlgorithm).append(" Credential=").append(credentials.access_key_id).append("/");
    a.append(std::string_view(sts).substr(scope_start, scope_len));
    a.append(", SignedHeaders=").append(out.signed_headers);
    a.append(", Signature=").append(out.signature);
  }
  return Status();
}

}  // namespace shardline::detail
