// A DynamoDbClient whose calls go to a test: every call is recorded (operation and parsed
// body) and answered from a queue of canned responses.
#pragma once

#include <nlohmann/json.hpp>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "shardline/dynamodb.h"

namespace shardline::testing {

class FakeDynamoDbTransport {
 public:
  struct Call {
    std::string operation;
    nlohmann::json body;
  };

  FakeDynamoDbTransport()
      : client_(DynamoDbClient::create_with_transport(
            [this](std::string_view operation, const std::string& body) -> Result<std::string> {
              calls_.push_back({std::string(operation), nlohmann::json::parse(body)});
              if (responses_.empty()) return Status::internal("the test queued no response");
              Result<std::string> r = std::move(responses_.front());
              responses_.pop_front();
              return r;
            },
            "http://fake")) {}

  void respond(std::string body) { responses_.emplace_back(std::move(body)); }
  void fail(Status status) { responses_.emplace_back(std::move(status)); }

  DynamoDbClient& client() { return *client_; }
  const std::shared_ptr<DynamoDbClient>& shared_client() const { return client_; }
  const std::vector<Call>& calls() const { return calls_; }
  const Call& last() const { return calls_.back(); }

 private:
  std::vector<Call> calls_;
  std::deque<Result<std::string>> responses_;
  std::shared_ptr<DynamoDbClient> client_;
};

}  // namespace shardline::testing
