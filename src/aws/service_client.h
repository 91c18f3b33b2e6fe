// Internal: one AWS JSON-protocol service (Kinesis: JSON 1.1, DynamoDB: JSON 1.0) at one
// endpoint. Signs each attempt with SigV4, sends it on the shared HTTP event loop, maps error
// responses through the AWS error table and, for blocking calls, retries what the table says is
// retryable (capped exponential backoff, full jitter, attempt cap and deadline).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "aws/http_client.h"
#include "aws/sigv4.h"
#include "shardline/aws_client.h"
#include "shardline/aws_config.h"
#include "shardline/result.h"

namespace shardline::detail {

struct ServiceSpec {
  std::string_view service;        // signing name and endpoint prefix: "kinesis", "dynamodb"
  std::string_view target_prefix;  // "Kinesis_20131202." / "DynamoDB_20120810."
  std::string_view content_type;   // "application/x-amz-json-1.1" / "application/x-amz-json-1.0"
};

inline constexpr ServiceSpec kKinesisSpec{"kinesis", "Kinesis_20131202.",
                                          "application/x-amz-json-1.1"};
inline constexpr ServiceSpec kDynamoDbSpec{"dynamodb", "DynamoDB_20120810.",
                                           "application/x-amz-json-1.0"};

/// A successful call's response body and request id.
struct ServiceResponse {
  std::string body;
  std::string request_id;
};

class ServiceClient {
 public:
  /// Resolves region, endpoint and credentials from `config`; shares `http` when given,
  /// otherwise creates an HTTP client from the config.
  static Result<std::shared_ptr<ServiceClient>> create(const AwsClientConfig& config,
                                                       const ServiceSpec& spec,
                                                       std::shared_ptr<HttpClient> http = nullptr);

  using Callback = std::function<void(Result<ServiceResponse>)>;

  /// One attempt, asynchronous. `done` runs on the HTTP event-loop thread (keep it short) with
  /// the body of a 2xx response, or the mapped error (AWS code, HTTP status, request id set).
  /// `filter`, if given, takes a 2xx response's body as it arrives (the ServiceResponse's body
  /// is then empty; see BodyFilter).
  void call_async(std::string_view operation, std::string body, Callback done,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0),
                  std::shared_ptr<BodyFilter> filter = nullptr);

  struct CallOptions {
    int max_attempts = 0;                          // 0 = config.max_attempts
    std::chrono::milliseconds attempt_timeout{0};  // 0 = config.request_timeout
    /// Total budget for all attempts and backoff waits; 0 = none. No retry starts after it.
    std::chrono::milliseconds deadline{0};
    /// Ends the call early with kCancelled (see CancelToken); null = not cancellable.
    const CancelToken* cancel = nullptr;
  };
  /// Blocking, with retries of retryable errors (RetryClass::kSameCall) up to
  /// config.max_attempts. Errors carry the operation name as context.
  Result<ServiceResponse> call(std::string_view operation, const std::string& body,
                               CallOptions options);
  Result<ServiceResponse> call(std::string_view operation, const std::string& body) {
    return call(operation, body, CallOptions{});
  }

  const Endpoint& endpoint() const noexcept { return endpoint_; }
  const std::string& region() const noexcept { return region_; }
  const std::shared_ptr<HttpClient>& http() const noexcept { return http_; }
  const AwsClientConfig& config() const noexcept { return config_; }
  void log(LogLevel level, std::string_view message) const;

 private:
  ServiceClient(const AwsClientConfig& config, const ServiceSpec& spec, Endpoint endpoint,
                std::string region, std::shared_ptr<CredentialsProvider> credentials,
                std::shared_ptr<HttpClient> http);
  Result<HttpRequest> build_request(std::string_view operation, std::string body,
                                    std::chrono::milliseconds timeout);

  AwsClientConfig config_;
  ServiceSpec spec_;
  Endpoint endpoint_;
  std::string region_;
  std::string url_;
  std::string path_;  // base path + "/": what is signed
  std::string authority_;
  std::shared_ptr<CredentialsProvider> credentials_;
  std::shared_ptr<HttpClient> http_;
  SigV4Signer signer_;
};

/// Options for an HTTP client built from an AwsClientConfig.
HttpClientOptions http_options_from(const AwsClientConfig& config);

/// While a CancelScope lives, the blocking calls this thread makes without a token of their own
/// (CallOptions::cancel null), and the waits between DynamoDB table polls, are cancelled by
/// `token`. It reaches calls behind interfaces that take no token: the worker wraps the lease
/// store's start-up (LeaseStore::initialize) in one, so a shutdown ends it at once. Scopes nest.
class CancelScope {
 public:
  explicit CancelScope(const CancelToken* token) noexcept;
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const CancelToken* previous_;
};

/// The token of this thread's innermost CancelScope, or null.
const CancelToken* scoped_cancel_token() noexcept;

}  // namespace shardline::detail
