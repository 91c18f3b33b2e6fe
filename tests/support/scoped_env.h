// Test helper: set, unset and restore environment variables around a test.
#pragma once

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shardline::testing {

/// Remembers the original value of every variable it touches and restores them all when
/// destroyed. Not thread-safe (nor is the environment): use only on the test's thread while no
/// provider thread is running.
class ScopedEnv {
 public:
  ScopedEnv() = default;
  /// Unsets each of `names` now (remembering them).
  explicit ScopedEnv(const std::vector<std::string>& names) {
    for (const auto& n : names) unset(n);
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

  void set(const std::string& name, const std::string& value) {
    remember(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name) {
    remember(name);
    ::unsetenv(name.c_str());
  }

 private:
  void remember(const std::string& name) {
    if (saved_.count(name) != 0) return;
    const char* v = std::getenv(name.c_str());
    saved_[name] = v ? std::optional<std::string>(v) : std::nullopt;
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

/// Every variable the AWS credential, region and endpoint code reads, plus HOME and the proxy
/// variables: a test starts from none of them so the developer's own setup cannot leak in.
inline const std::vector<std::string>& aws_environment_names() {
  static const std::vector<std::string> names = {"AWS_ACCESS_KEY_ID",
                                                 "AWS_SECRET_ACCESS_KEY",
                                                 "AWS_SESSION_TOKEN",
                                                 "AWS_PROFILE",
                                                 "AWS_DEFAULT_PROFILE",
                                                 "AWS_REGION",
                                                 "AWS_DEFAULT_REGION",
                                                 "AWS_CONFIG_FILE",
                                                 "AWS_SHARED_CREDENTIALS_FILE",
                                                 "AWS_WEB_IDENTITY_TOKEN_FILE",
                                                 "AWS_ROLE_ARN",
                                                 "AWS_ROLE_SESSION_NAME",
                                                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                                 "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                                 "AWS_EC2_METADATA_DISABLED",
                                                 "AWS_EC2_METADATA_V1_DISABLED",
                                                 "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                                 "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
                                                 "AWS_ENDPOINT_URL",
                                                 "AWS_ENDPOINT_URL_STS",
                                                 "AWS_ENDPOINT_URL_KINESIS",
                                                 "AWS_ENDPOINT_URL_DYNAMODB",
                                                 "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                                                 "HOME",
                                                 "http_proxy",
                                                 "HTTP_PROXY",
                                                 "https_proxy",
                                                 "HTTPS_PROXY",
                                                 "all_proxy",
                                                 "ALL_PROXY",
                                                 "no_proxy",
                                                 "NO_PROXY"};
  return names;
}

}  // namespace shardline::testing
