#include "aws/sts.h"

#include <chrono>

#include "aws/aws_errors.h"
#include "aws/aws_time.h"
#include "aws/blocking_http.h"
#include "aws/shared_config.h"
#include "aws/sigv4.h"

namespace shardline::detail {

namespace {

constexpr std::string_view kApiVersion = "2011-06-15";
constexpr std::string_view kFormContentType = "application/x-www-form-urlencoded; charset=utf-8";

void add_param(std::string& body, std::string_view key, std::string_view value) {
  if (!body.empty()) body += '&';
  body.append(key).append("=");
  sigv4_uri_encode(body, value, /*keep_slash=*/false);
}

// Strict RFC 3986 encoding is a valid application/x-www-form-urlencoded encoding.
std::string form_body(std::string_view action, const AssumeRoleParams* params,
                      std::string_view role_arn, std::string_view session,
                      std::string_view web_token) {
  std::string body;
  add_param(body, "Action", action);
  add_param(body, "Version", kApiVersion);
  add_param(body, "RoleArn", role_arn);
  add_param(body, "RoleSessionName", session);
  if (params != nullptr) {
    if (!params->external_id.empty()) add_param(body, "ExternalId", params->external_id);
    if (params->duration_seconds) {
      add_param(body, "DurationSeconds", std::to_string(*params->duration_seconds));
    }
  }
  if (!web_token.empty()) add_param(body, "WebIdentityToken", web_token);
  return body;
}

std::string request_path(const Endpoint& ep) { return ep.base_path.empty() ? "/" : ep.base_path; }

bool decode_entity(std::string_view s, std::size_t& i, std::string& out) {
  const std::size_t semi = s.find(';', i);
  if (semi == std::string_view::npos || semi - i > 10) return false;
  const std::string_view name = s.substr(i + 1, semi - i - 1);
  if (name == "amp") {
    out += '&';
  } else if (name == "lt") {
    out += '<';
  } else if (name == "gt") {
    out += '>';
  } else if (name == "quot") {
    out += '"';
  } else if (name == "apos") {
    out += '\'';
  } else if (name.size() > 1 && name[0] == '#') {
    unsigned long cp = 0;
    const bool hex = name[1] == 'x' || name[1] == 'X';
    const std::string_view digits = name.substr(hex ? 2 : 1);
    if (digits.empty()) return false;
    for (char c : digits) {
      int v;
      if (c >= '0' && c <= '9') {
        v = c - '0';
      } else if (hex && c >= 'a' && c <= 'f') {
        v = c - 'a' + 10;
      } else if (hex && c >= 'A' && c <= 'F') {
        v = c - 'A' + 10;
      } else {
        return false;
      }
      cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(v);
      if (cp > 0x10FFFF) return false;
    }
    // UTF-8 encode.
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  } else {
    return false;
  }
  i = semi;
  return true;
}

Result<Credentials> call_sts(const StsTarget& target, std::string_view action, std::string body,
                             const Credentials* signer_credentials,
                             std::chrono::milliseconds timeout) {
  BlockingHttpRequest req;
  req.method = "POST";
  const std::string path = request_path(target.endpoint);
  req.url = target.endpoint.scheme + "://" + target.endpoint.authority() + path;
  req.body = std::move(body);
  req.connect_timeout = timeout;
  req.timeout = timeout;
  const std::string host = target.endpoint.authority();
  req.headers.emplace_back("Host", host);
  req.headers.emplace_back("Content-Type", std::string(kFormContentType));
  if (signer_credentials != nullptr) {
    const SigV4Signer signer(target.region, "sts");
    const SigV4Header headers[] = {{"Host", host}, {"Content-Type", kFormContentType}};
    SigV4Result signed_out;
    SHARDLINE_RETURN_IF_ERROR(
        signer.sign({.method = "POST", .path = path, .headers = headers, .payload = req.body},
                    *signer_credentials, std::chrono::system_clock::now(), signed_out));
    signed_out.for_each_header([&](std::string_view n, std::string_view v) {
      req.headers.emplace_back(std::string(n), std::string(v));
    });
  }
  auto resp = blocking_http(req);
  if (!resp.ok())
    return std::move(resp).status().with_context(std::string("STS ") + std::string(action));
  if (resp->status != 200) {
    return sts_error(action, resp->status, resp->body, resp->header("x-amzn-requestid"));
  }
  auto creds = parse_sts_credentials(resp->body);
  if (!creds.ok())
    return std::move(creds).status().with_context(std::string("STS ") + std::string(action));
  return creds;
}

}  // namespace

Result<StsTarget> resolve_sts_target(std::string_view region, std::string_view profile) {
  StsTarget t;
  // A missing region is not an error here: STS falls back to us-east-1 as the SDKs do. A
  // malformed config file or region value is.
  auto r = find_configured_region(region, profile);
  if (!r.ok()) return r.status();
  t.region = r->value_or("us-east-1");
  auto ep = resolve_endpoint("sts", t.region);
  if (!ep.ok()) return ep.status();
  t.endpoint = std::move(*ep);
  return t;
}

std::optional<std::string_view> xml_element_raw(std::string_view xml, std::string_view tag) {
  std::size_t pos = 0;
  for (;;) {
    pos = xml.find('<', pos);
    if (pos == std::string_view::npos) return std::nullopt;
    const std::string_view rest = xml.substr(pos + 1);
    if (rest.substr(0, tag.size()) == tag && rest.size() > tag.size() &&
        (rest[tag.size()] == '>' || rest[tag.size()] == ' ' || rest[tag.size()] == '/')) {
      break;
    }
    ++pos;
  }
  const std::size_t open_end = xml.find('>', pos);
  if (open_end == std::string_view::npos) return std::nullopt;
  if (xml[open_end - 1] == '/') return std::string_view();  // <Tag/>
  std::string close("</");
  close.append(tag).append(">");
  const std::size_t end = xml.find(close, open_end + 1);
  if (end == std::string_view::npos) return std::nullopt;
  return xml.substr(open_end + 1, end - open_end - 1);
}

std::optional<std::string> xml_element_text(std::string_view xml, std::string_view tag) {
  const auto raw = xml_element_raw(xml, tag);
  if (!raw) return std::nullopt;
  std::string text;
  text.reserve(raw->size());
  for (std::size_t i = 0; i < raw->size(); ++i) {
    if ((*raw)[i] == '&' && decode_entity(*raw, i, text)) continue;
    text += (*raw)[i];
  }
  // Trim the whitespace pretty-printed XML puts around values.
  const std::size_t b = text.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return std::string();
  const std::size_t e = text.find_last_not_of(" \t\r\n");
  return text.substr(b, e - b + 1);
}

Result<Credentials> parse_sts_credentials(std::string_view xml) {
  const auto block = xml_element_raw(xml, "Credentials");
  if (!block) return Status::invalid_argument("response has no <Credentials> element");
  Credentials c;
  auto field = [&](std::string_view name, std::string& out) -> Status {
    auto v = xml_element_text(*block, name);
    if (!v || v->empty()) {
      return Status::invalid_argument("response <Credentials> has no <" + std::string(name) + ">");
    }
    out = std::move(*v);
    return Status();
  };
  SHARDLINE_RETURN_IF_ERROR(field("AccessKeyId", c.access_key_id));
  SHARDLINE_RETURN_IF_ERROR(field("SecretAccessKey", c.secret_access_key));
  SHARDLINE_RETURN_IF_ERROR(field("SessionToken", c.session_token));
  std::string expiration;
  SHARDLINE_RETURN_IF_ERROR(field("Expiration", expiration));
  c.expiration = parse_iso8601(expiration);
  if (!c.expiration) {
    return Status::invalid_argument("response <Expiration> is not an ISO 8601 timestamp");
  }
  return c;
}

Status sts_error(std::string_view action, long http_status, std::string_view xml,
                 std::string_view request_id) {
  std::string request(request_id);
  if (request.empty()) request = xml_element_text(xml, "RequestId").value_or("");
  // The code and retry class come from the project's one AWS error table.
  Status s = aws_error_status(static_cast<int>(http_status), xml, {}, request);
  if (s.ok()) s = Status::unavailable("unexpected HTTP " + std::to_string(http_status));
  return std::move(s).with_context("STS " + std::string(action));
}

std::string default_role_session_name() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return "shardline-" + std::to_string(ms);
}

Result<Credentials> sts_assume_role(const StsTarget& target, const Credentials& source,
                                    const AssumeRoleParams& params,
                                    std::chrono::milliseconds timeout) {
  const std::string session =
      params.role_session_name.empty() ? default_role_session_name() : params.role_session_name;
  return call_sts(target, "AssumeRole",
                  form_body("AssumeRole", &params, params.role_arn, session, {}), &source, timeout);
}

Result<Credentials> sts_assume_role_with_web_identity(const StsTarget& target,
                                                      std::string_view role_arn,
                                                      std::string_view role_session_name,
                                                      std::string_view web_identity_token,
                                                      std::chrono::milliseconds timeout) {
  const std::string session =
      role_session_name.empty() ? default_role_session_name() : std::string(role_session_name);
  return call_sts(
      target, "AssumeRoleWithWebIdentity",
      form_body("AssumeRoleWithWebIdentity", nullptr, role_arn, session, web_identity_token),
      nullptr, timeout);
}

}  // namespace shardline::detail
