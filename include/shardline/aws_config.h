// File: shardline/aws_config.h
//
// Which AWS region and which endpoint URL a client talks to, resolved the way the AWS SDKs
// and CLI do.
//
//   auto region = shardline::resolve_region(cli_region);        // --region, env, profile
//   if (!region.ok()) return region.status();                     // kInvalidArgument
//   auto ep = shardline::resolve_endpoint("kinesis", *region, cli_endpoint_url);
//   // ep->url() == "https://kinesis.us-east-1.amazonaws.com", ep->authority() is the Host header
//
// Region, first found wins: the explicit value, AWS_REGION, AWS_DEFAULT_REGION, `region` of
// the profile in the config file (AWS_CONFIG_FILE, default ~/.aws/config; profile from the
// argument, else AWS_PROFILE, else "default").
//
// Endpoint for a service ("kinesis", "dynamodb", "sts"), first found wins: the explicit URL,
// AWS_ENDPOINT_URL_<SERVICE> (KINESIS, DYNAMODB, STS), AWS_ENDPOINT_URL, then
// https://{service}.{region}.amazonaws.com (amazonaws.com.cn for cn-* regions). The two
// environment variables are ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true.
//
// Environment variables and files are read at each call. Thread-safe as long as nobody
// modifies the environment concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shardline/result.h"

namespace shardline {

/// The region, or kInvalidArgument when none is configured or the value is not a region name
/// (lower-case letters, digits and '-'), or when the config file cannot be parsed.
Result<std::string> resolve_region(std::string_view explicit_region = {},
                                   std::string_view profile = {});

/// A parsed endpoint URL.
struct Endpoint {
  std::string scheme;        // "https" or "http" (lower case)
  std::string host;          // "kinesis.us-east-1.amazonaws.com", "127.0.0.1", "[::1]"
  std::uint16_t port = 443;  // explicit, else 443 for https and 80 for http
  std::string base_path;     // "" or a prefix such as "/kinesis" (no trailing '/')

  bool default_port() const noexcept { return port == (scheme == "http" ? 80 : 443); }
  /// host, plus ":port" when the port is not the scheme's default: the Host header value.
  std::string authority() const;
  /// scheme://authority + base_path.
  std::string url() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

/// Parse "scheme://host[:port][/path]". http and https only; no user info, query or
/// fragment; IPv6 literals in brackets. kInvalidArgument naming what is wrong otherwise.
Result<Endpoint> parse_endpoint_url(std::string_view url);

/// The endpoint of `service` ("kinesis", "dynamodb", "sts", ...) in `region`. `explicit_url`
/// (the CLI's --endpoint-url) wins when non-empty. kInvalidArgument for a malformed URL (the
/// message names the variable it came from) or when the default is needed and the region is
/// empty or invalid.
Result<Endpoint> resolve_endpoint(std::string_view service, std::string_view region,
                                  std::string_view explicit_url = {});

/// "amazonaws.com", or "amazonaws.com.cn" for cn-* regions.
std::string_view dns_suffix_for_region(std::string_view region) noexcept;

}  // namespace shardline
