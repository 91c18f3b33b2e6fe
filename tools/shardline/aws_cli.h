// AWS options shared by the CLI commands that talk to AWS, and one-line error reporting.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "shardline/aws_client.h"
#include "shardline/status.h"

namespace shardline::cli {

struct AwsOptions {
  std::string region;
  std::string endpoint_url;
  std::string profile;
  std::string ca_bundle;
  bool no_verify_ssl = false;
  bool debug = false;
};

/// Adds --region, --endpoint-url, --profile, --ca-bundle, --no-verify-ssl, --debug.
void add_aws_options(CLI::App& app, AwsOptions& options);

/// The client settings for these options. --debug logs requests at debug level (credentials
/// never appear in log lines).
AwsClientConfig make_aws_config(const AwsOptions& options);

/// Exit status for a failed call: 2 invalid argument, 3 not found, 4 authentication or
/// permission, 5 throttled or unavailable, 1 anything else.
int exit_code_for(const Status& status);

/// Prints "shardline: error: <what>: <message> [aws=Code http=N request-id=...]" (one line) and
/// returns exit_code_for(status). Authentication failures say so plainly.
int report_error(std::string_view what, const Status& status);

/// True once SIGINT or SIGTERM arrived (after install_stop_signals()).
void install_stop_signals();
bool stop_requested() noexcept;

}  // namespace shardline::cli
