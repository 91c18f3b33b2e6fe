// Test helper: starts tests/support/fake_aws_metadata.py (IMDSv2, ECS, STS fakes) on a free
// 127.0.0.1 port and talks to its control endpoints.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/child_process.h"

namespace shardline::testing {

class FakeAwsMetadata {
 public:
  /// Starts the server; nullptr (with `why`) if python3 is missing or it does not come up.
  static std::unique_ptr<FakeAwsMetadata> start(std::string& why);

  int port() const { return port_; }
  /// "http://127.0.0.1:<port>"
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// GET /_stats: counters and the last STS request's parameters.
  nlohmann::json stats() const;
  /// POST /_control: merge `settings` into the server state.
  void control(const nlohmann::json& settings) const;
  /// Back to the defaults, counters cleared.
  void reset() const { control({{"reset", true}}); }

 private:
  FakeAwsMetadata(std::unique_ptr<BackgroundProcess> process, int port)
      : process_(std::move(process)), port_(port) {}
  std::unique_ptr<BackgroundProcess> process_;
  int port_;
};

}  // namespace shardline::testing
