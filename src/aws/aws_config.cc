#include "shardline/aws_config.h"

#include "core/ascii.h"

#include <string>

#include "aws/shared_config.h"

namespace shardline {

namespace {

bool valid_region(std::string_view r) {
  if (r.empty() || r.size() > 64 || r.front() == '-' || r.back() == '-') return false;
  for (char c : r) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

using detail::ascii_lower;

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool path_char(char c) {
  // RFC 3986 pchar and '/': unreserved, sub-delims, ':', '@', and '%' for escapes.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~!$&'()*+,;=:@/%").find(c) != std::string_view::npos;
}

Status bad_url(std::string_view url, std::string_view why) {
  std::string m("invalid endpoint URL '");
  m.append(url).append("': ").append(why);
  return Status::invalid_argument(std::move(m));
}

// "KINESIS" from "kinesis": AWS_ENDPOINT_URL_<SERVICE> upper-cases the service id and turns
// spaces and dashes into underscores.
std::string service_env_name(std::string_view service) {
  std::string n("AWS_ENDPOINT_URL_");
  for (char c : service) {
    if (c >= 'a' && c <= 'z') {
      n += static_cast<char>(c - 32);
    } else if (c == ' ' || c == '-') {
      n += '_';
    } else {
      n += c;
    }
  }
  return n;
}

}  // namespace

namespace detail {

Result<std::optional<std::string>> find_configured_region(std::string_view explicit_region,
                                                          std::string_view profile) {
  auto check = [](std::string value, std::string_view from) -> Result<std::optional<std::string>> {
    if (!valid_region(value)) {
      std::string m("invalid AWS region from ");
      m.append(from).append(": '").append(value).append(
          "' (expected lower-case letters, digits and '-', e.g. us-east-1)");
      return Status::invalid_argument(std::move(m));
    }
    return std::optional<std::string>(std::move(value));
  };
  if (!explicit_region.empty()) return check(std::string(explicit_region), "--region");
  if (auto r = env_var("AWS_REGION")) return check(*r, "AWS_REGION");
  if (auto r = env_var("AWS_DEFAULT_REGION")) return check(*r, "AWS_DEFAULT_REGION");
  const std::string name = resolve_profile_name(profile);
  auto files = load_shared_config_file_only();
  if (!files.ok()) return std::move(files).status().with_context("reading the AWS region");
  if (auto p = files->profile(name)) {
    if (auto it = p->find("region"); it != p->end() && !it->second.empty()) {
      return check(it->second, "profile '" + name + "' in " + files->config_path);
    }
  }
  return std::optional<std::string>();
}

}  // namespace detail

Result<std::string> resolve_region(std::string_view explicit_region, std::string_view profile) {
  auto found = detail::find_configured_region(explicit_region, profile);
  if (!found.ok()) return found.status();
  if (*found) return std::move(**found);
  std::string m(
      "no AWS region configured: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or set "
      "region in profile '");
  m.append(detail::resolve_profile_name(profile)).append("' of ");
  const std::string path = detail::shared_config_file_path();
  m.append(path.empty() ? std::string("~/.aws/config") : path);
  return Status::invalid_argument(std::move(m));
}

std::string Endpoint::authority() const {
  if (default_port()) return host;
  return host + ":" + std::to_string(port);
}

std::string Endpoint::url() const { return scheme + "://" + authority() + base_path; }

Result<Endpoint> parse_endpoint_url(std::string_view url) {
  const std::size_t sep = url.find("://");
  if (url.empty()) return bad_url(url, "empty");
  if (sep == std::string_view::npos) return bad_url(url, "expected scheme://host[:port][/path]");
  Endpoint ep;
  for (char c : url.substr(0, sep)) ep.scheme += ascii_lower(c);
  if (ep.scheme != "http" && ep.scheme != "https") {
    return bad_url(url, "scheme must be http or https");
  }
  ep.port = ep.scheme == "http" ? 80 : 443;
  std::string_view rest = url.substr(sep + 3);
  const std::size_t path_at = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view path =
      path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);
  if (authority.find('@') != std::string_view::npos) {
    return bad_url(url, "user information is not allowed");
  }
  if (authority.empty()) return bad_url(url, "missing host");
  std::string_view port_text;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad_url(url, "unterminated IPv6 literal");
    const std::string_view inside = authority.substr(1, close - 1);
    if (inside.empty()) return bad_url(url, "empty IPv6 literal");
    for (char c : inside) {
      const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                      c == ':' || c == '.';
      if (!ok) return bad_url(url, "invalid IPv6 literal");
    }
    ep.host.assign(authority.substr(0, close + 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad_url(url, "unexpected text after IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return bad_url(url, "empty port");
    }
  } else {
    const std::size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (host.empty()) return bad_url(url, "missing host");
    for (char c : host) {
      if (!host_char(c)) return bad_url(url, "invalid character in host");
    }
    for (char c : host) ep.host += ascii_lower(c);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad_url(url, "empty port");
    }
  }
  if (!port_text.empty()) {
    unsigned long port = 0;
    if (port_text.size() > 5) return bad_url(url, "port out of range");
    for (char c : port_text) {
      if (c < '0' || c > '9') return bad_url(url, "port is not a number");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) return bad_url(url, "port out of range (1-65535)");
    ep.port = static_cast<std::uint16_t>(port);
  }
  if (!path.empty()) {
    if (path.front() != '/') return bad_url(url, "query strings and fragments are not allowed");
    for (char c : path) {
      if (c == '?' || c == '#') return bad_url(url, "query strings and fragments are not allowed");
      if (!path_char(c)) return bad_url(url, "invalid character in path");
    }
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    ep.base_path.assign(path);
  }
  return ep;
}

std::string_view dns_suffix_for_region(std::string_view region) noexcept {
  return region.substr(0, 3) == "cn-" ? std::string_view("amazonaws.com.cn")
                                      : std::string_view("amazonaws.com");
}

Result<Endpoint> resolve_endpoint(std::string_view service, std::string_view region,
                                  std::string_view explicit_url) {
  auto from = [](std::string_view url, std::string_view source) -> Result<Endpoint> {
    auto ep = parse_endpoint_url(url);
    if (!ep.ok()) return std::move(ep).status().with_context(source);
    return ep;
  };
  if (!explicit_url.empty()) return from(explicit_url, "--endpoint-url");
  if (!detail::env_flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
    const std::string name = service_env_name(service);
    if (auto u = detail::env_var(name.c_str())) return from(*u, name);
    if (auto u = detail::env_var("AWS_ENDPOINT_URL")) return from(*u, "AWS_ENDPOINT_URL");
  }
  if (service.empty()) return Status::invalid_argument("resolve_endpoint: empty service name");
  if (region.empty()) {
    std::string m("no AWS region for the ");
    m.append(service).append(" endpoint: pass --region or set AWS_REGION (or pass --endpoint-url)");
    return Status::invalid_argument(std::move(m));
  }
  if (!valid_region(region)) {
    std::string m("invalid AWS region '");
    m.append(region).append("'");
    return Status::invalid_argument(std::move(m));
  }
  Endpoint ep;
  ep.scheme = "https";
  ep.port = 443;
  ep.host.append(service).append(".").append(region).append(".").append(
      dns_suffix_for_region(region));
  return ep;
}

}  // namespace shardline
