// File: shardline/aws_client.h
//
// Settings shared by the AWS service clients (Kinesis, DynamoDB): region, endpoint,
// credentials, TLS, timeouts and retries. Unset fields follow the AWS SDK conventions.
//
//   shardline::AwsClientConfig cfg;
//   cfg.endpoint_url = "http://127.0.0.1:4567";   // a local kinesalite
//   auto kinesis = shardline::KinesisClient::create(cfg);
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "shardline/credentials.h"

namespace shardline {

enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarning, kError };

/// Receives log lines. Called from any thread; must be thread-safe and must not call back into
/// the client. Messages never contain credentials.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

/// Lets another thread end a blocking client call early (e.g. a worker shutting down while
/// ListShards retries against an unreachable endpoint): the call makes no further attempt,
/// stops waiting for the one in flight (which completes in the background) and returns
/// kCancelled. Once cancelled it stays cancelled. Thread-safe; must outlive the calls given it.
class CancelToken {
 public:
  void cancel() noexcept {
    {
      std::lock_guard<std::mutex> lk(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }
  bool cancelled() const noexcept {
    std::lock_guard<std::mutex> lk(mu_);
    return cancelled_;
  }
  /// Sleeps up to `d`; returns false, at once, when cancelled.
  bool sleep_for(std::chrono::nanoseconds d) const {
    std::unique_lock<std::mutex> lk(mu_);
    return !cv_.wait_for(lk, d, [&] { return cancelled_; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool cancelled_ = false;
};

struct AwsClientConfig {
  /// "" = AWS_REGION, AWS_DEFAULT_REGION, then the profile's region (see aws_config.h). For a
  /// local endpoint with no region configured, "us-east-1" is used.
  std::string region;
  /// Shared-file profile; "" = AWS_PROFILE, else "default".
  std::string profile;
  /// "" = AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, then the regional AWS endpoint.
  /// http:// is allowed (local servers).
  std::string endpoint_url;
  /// null = the SDKs' default chain (environment, web identity, profile, container, IMDS).
  std::shared_ptr<CredentialsProvider> credentials;

  /// TLS certificate verification. Turning it off logs a warning.
  bool verify_tls = true;
  std::string ca_file;
  std::string ca_path;
  std::string proxy_host;  // "" = no proxy
  int proxy_port = 8080;
  std::string proxy_user;
  std::string proxy_password;  // never logged

  std::chrono::milliseconds connect_timeout{6000};
  /// Timeout of one HTTP attempt.
  std::chrono::milliseconds request_timeout{10000};
  /// Open connections per host; 0 = no limit.
  int max_connections = 24;
  /// Speak HTTP/2: negotiated by ALPN on https:// endpoints (falling back to HTTP/1.1), with
  /// prior knowledge (h2c) on http:// ones. SubscribeToShard (enhanced fan-out) needs it on
  /// AWS; everything else works either way.
  bool http2 = false;

  /// Blocking calls retry throttling, 5xx, timeouts and connection failures with capped
  /// exponential backoff and full jitter, up to this many attempts in all.
  int max_attempts = 8;
  std::chrono::milliseconds retry_base{100};
  std::chrono::milliseconds retry_cap{5000};

  /// Log sink; null = warnings and errors to stderr.
  LogSink log;
};

}  // namespace shardline
