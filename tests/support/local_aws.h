// Helpers for tests against the local servers started by scripts/servers.
#pragma once

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "shardline/aws_client.h"
#include "shardline/credentials.h"

namespace shardline::testing {

/// The variable's value, or "" when it is unset.
inline std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

/// Client settings for a local server: its URL, a fixed region, fake static credentials and
/// short retry waits.
inline AwsClientConfig local_aws_config(const std::string& endpoint, int max_attempts = 8) {
  using namespace std::chrono_literals;
  AwsClientConfig c;
  c.endpoint_url = endpoint;
  c.region = "us-east-1";
  c.credentials = make_static_credentials_provider({"AKIDTEST", "test-secret", "", {}, "test"});
  c.retry_base = 10ms;
  c.retry_cap = 50ms;
  c.max_attempts = max_attempts;
  return c;
}

/// Run a shell command; returns its stdout, and its exit status in `*rc` (-1 if signalled).
inline std::string run_command(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 65536> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace shardline::testing
