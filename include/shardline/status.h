// File: shardline/status.h
//
// The error vocabulary of shardline. Every fallible call returns a `Status` or a
// `Result<T>` (see result.h); the public API never throws for expected failures.
//
//   shardline::Status s = shardline::Status::invalid_argument("AggregationMaxSize: ...");
//   if (!s.ok()) std::cerr << s.to_string() << "\n";
//   if (s.retry() == shardline::RetryClass::kSameCall) { /* back off, then retry */ }
//
// Codes follow abseil's canonical codes and their meaning. The retry class says what a
// caller may do about the failure; retry decisions read it and never compare strings.
// An OK status allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace shardline {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kCancelled,           // the operation was cancelled (e.g. records still queued at close)
  kUnknown,             // an error with no better code
  kInvalidArgument,     // bad input from the caller: config, key, record, CLI argument
  kDeadlineExceeded,    // a timeout or an expired record TTL
  kNotFound,            // stream, shard, table or file does not exist
  kAlreadyExists,       // create of something that exists
  kPermissionDenied,    // AccessDenied and friends
  kResourceExhausted,   // throttled, or a local buffer is full
  kFailedPrecondition,  // the object is not in a state that allows the call
  kAborted,             // a conditional write lost a race; an iterator expired
  kOutOfRange,          // a value outside the allowed range
  kUnimplemented,       // the server does not support the operation
  kInternal,            // a broken invariant inside shardline or the server
  kUnavailable,         // transient: 5xx, connection reset, DNS
  kDataLoss,            // corrupt data that cannot be recovered (e.g. a broken aggregate)
  kUnauthenticated,     // missing or invalid credentials, bad signature
};

/// What a caller may do about a failure.
enum class RetryClass : std::uint8_t {
  kNone,      // do not retry: the same call fails again
  kSameCall,  // retry the same call after a backoff (throttling, 5xx, timeouts)
  kRestart,   // restart from a fresh state (new iterator, re-read the lease) then retry
};

/// The canonical name of a code, e.g. "INVALID_ARGUMENT".
std::string_view status_code_name(StatusCode code) noexcept;

/// The default retry class of a code when no AWS error table entry says otherwise.
RetryClass default_retry_class(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  /// OK. No allocation.
  Status() noexcept = default;
  Status(StatusCode code, std::string message);
  Status(StatusCode code, std::string message, RetryClass retry);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  bool ok() const noexcept { return rep_ == nullptr; }
  StatusCode code() const noexcept;
  std::string_view message() const noexcept;
  RetryClass retry() const noexcept;

  /// The AWS error code that caused this status ("ExpiredIteratorException"), or "".
  std::string_view aws_error_code() const noexcept;
  /// The HTTP status of the response that caused this status, or 0.
  int http_status() const noexcept;
  /// The x-amzn-RequestId of the failed call, or "".
  std::string_view request_id() const noexcept;

  /// Attach AWS details. No effect on an OK status.
  Status& set_aws(std::string aws_error_code, int http_status, std::string request_id);

  /// Prefix the message with context: "what: message". No effect on an OK status.
  Status with_context(std::string_view what) &&;
  Status with_context(std::string_view what) const&;

  /// "INVALID_ARGUMENT: message [aws=Code http=400 request-id=...]" or "OK".
  std::string to_string() const;

  // Constructors for the common codes.
  static Status invalid_argument(std::string message) {
    return {StatusCode::kInvalidArgument, std::move(message)};
  }
  static Status not_found(std::string message) {
    return {StatusCode::kNotFound, std::move(message)};
  }
  static Status out_of_range(std::string message) {
    return {StatusCode::kOutOfRange, std::move(message)};
  }
  static Status data_loss(std::string message) {
    return {StatusCode::kDataLoss, std::move(message)};
  }
  static Status internal(std::string message) {
    return {StatusCode::kInternal, std::move(message)};
  }
  static Status unavailable(std::string message) {
    return {StatusCode::kUnavailable, std::move(message)};
  }
  static Status failed_precondition(std::string message) {
    return {StatusCode::kFailedPrecondition, std::move(message)};
  }
  static Status resource_exhausted(std::string message) {
    return {StatusCode::kResourceExhausted, std::move(message)};
  }
  static Status deadline_exceeded(std::string message) {
    return {StatusCode::kDeadlineExceeded, std::move(message)};
  }
  static Status cancelled(std::string message) {
    return {StatusCode::kCancelled, std::move(message)};
  }

  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    RetryClass retry;
    int http_status = 0;
    std::string message;
    std::string aws_error_code;
    std::string request_id;
  };
  std::unique_ptr<Rep> rep_;
};

}  // namespace shardline

/// Evaluate `expr` (a Status); return it from the enclosing function if it is not OK.
#define SHARDLINE_RETURN_IF_ERROR(expr)                            \
  do {                                                             \
    ::shardline::Status shardline_status_tmp_ = (expr);            \
    if (!shardline_status_tmp_.ok()) return shardline_status_tmp_; \
  } while (0)
