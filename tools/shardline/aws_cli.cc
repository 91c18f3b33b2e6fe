#include "aws_cli.h"

#include <csignal>
#include <cstdio>

namespace shardline::cli {

void add_aws_options(CLI::App& app, AwsOptions& o) {
  app.add_option("--region", o.region,
                 "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, profile)");
  app.add_option("--endpoint-url", o.endpoint_url,
                 "Endpoint URL, e.g. http://127.0.0.1:4567 for a local kinesalite "
                 "(default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL)");
  app.add_option("--profile", o.profile, "Shared-file profile (default: AWS_PROFILE, default)");
  app.add_option("--ca-bundle", o.ca_bundle, "CA certificates file for TLS verification");
  app.add_flag("--no-verify-ssl", o.no_verify_ssl,
               "Do not verify TLS certificates (for local testing only; logs a warning)");
  app.add_flag("--debug", o.debug, "Log each request (credentials are never logged)");
}

AwsClientConfig make_aws_config(const AwsOptions& o) {
  AwsClientConfig c;
  c.region = o.region;
  c.endpoint_url = o.endpoint_url;
  c.profile = o.profile;
  c.ca_file = o.ca_bundle;
  c.verify_tls = !o.no_verify_ssl;
  const bool debug = o.debug;
  c.log = [debug](LogLevel level, std::string_view message) {
    if (level < LogLevel::kWarning && !debug) return;
    const char* name = level >= LogLevel::kError     ? "error"
                       : level == LogLevel::kWarning ? "warning"
                                                     : "debug";
    std::fprintf(stderr, "shardline: %s: %.*s\n", name, static_cast<int>(message.size()),
                 message.data());
  };
  return c;
}

int exit_code_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return 2;
    case StatusCode::kNotFound:
      return 3;
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      return 4;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return 5;
    default:
      return 1;
  }
}

int report_error(std::string_view what, const Status& s) {
  std::string prefix;
  if (s.code() == StatusCode::kUnauthenticated) prefix = "authentication failed: ";
  if (s.code() == StatusCode::kPermissionDenied) prefix = "permission denied: ";
  const std::string text = s.to_string();
  // to_string() starts with the canonical code name; keep the AWS details, drop the name.
  const auto colon = text.find(": ");
  const std::string body = colon == std::string::npos ? text : text.substr(colon + 2);
  std::fprintf(stderr, "shardline: error: %.*s: %s%s\n", static_cast<int>(what.size()), what.data(),
               prefix.c_str(), body.c_str());
  return exit_code_for(s);
}

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() noexcept { return g_stop != 0; }

}  // namespace shardline::cli
