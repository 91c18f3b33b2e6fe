#include "support/fake_aws_metadata.h"

#include <stdexcept>

#include "aws/blocking_http.h"

namespace shardline::testing {

std::unique_ptr<FakeAwsMetadata> FakeAwsMetadata::start(std::string& why) {
  const std::string script =
      std::string(SHARDLINE_SOURCE_DIR) + "/tests/support/fake_aws_metadata.py";
  std::string line;
  auto p =
      BackgroundProcess::start({"python3", script, "--port", "0"}, line, std::chrono::seconds(20));
  if (!p || line.rfind("PORT ", 0) != 0) {
    why = "could not start " + script + " (python3 missing?)";
    return nullptr;
  }
  const int port = std::stoi(line.substr(5));
  return std::unique_ptr<FakeAwsMetadata>(new FakeAwsMetadata(std::move(p), port));
}

nlohmann::json FakeAwsMetadata::stats() const {
  detail::BlockingHttpRequest req;
  req.url = url() + "/_stats";
  req.use_proxy = false;
  auto r = detail::blocking_http(req);
  if (!r.ok() || r->status != 200) throw std::runtime_error("fake server /_stats failed");
  return nlohmann::json::parse(r->body);
}

void FakeAwsMetadata::control(const nlohmann::json& settings) const {
  detail::BlockingHttpRequest req;
  req.method = "POST";
  req.url = url() + "/_control";
  req.body = settings.dump();
  req.use_proxy = false;
  auto r = detail::blocking_http(req);
  if (!r.ok() || r->status != 200) throw std::runtime_error("fake server /_control failed");
}

}  // namespace shardline::testing
