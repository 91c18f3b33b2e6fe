// Internal: AWS error responses and transport failures → Status, from ONE table
// (aws_errors.def).
//
//   // After an HTTP response with a non-2xx status:
//   Status s = detail::aws_error_status(resp.status, resp.body, resp.header("x-amzn-errortype"),
//                                    resp.header("x-amzn-requestid"));
//   // s.code() == StatusCode::kResourceExhausted, s.retry() == RetryClass::kSameCall,
//   // s.aws_error_code() == "ProvisionedThroughputExceededException", s.http_status() == 400
//
// Retry decisions read `Status::retry()`; nothing outside this file compares error strings.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shardline/status.h"

namespace shardline::detail {

/// One row of the AWS error-code table.
struct AwsErrorInfo {
  std::string_view code;      // "ProvisionedThroughputExceededException"
  std::string_view services;  // "Kinesis, DynamoDB" or "common"
  StatusCode status_code;
  RetryClass retry;
  std::string_view description;
};

/// One row of the HTTP status fallback table (used when a response names no known code).
struct HttpStatusInfo {
  int first;
  int last;
  StatusCode status_code;
  RetryClass retry;
  std::string_view description;
};

/// A failure below HTTP: no response was received.
enum class TransportError : std::uint8_t {
#define SHARDLINE_TRANSPORT_ERROR(name, status, retry, description) name,
#include "aws/aws_errors.def"
};

struct TransportErrorInfo {
  TransportError error;
  std::string_view name;  // "kTimeout"
  StatusCode status_code;
  RetryClass retry;
  std::string_view description;
};

/// The tables, in the order of aws_errors.def.
std::span<const AwsErrorInfo> aws_error_table() noexcept;
std::span<const HttpStatusInfo> http_status_table() noexcept;
std::span<const TransportErrorInfo> transport_error_table() noexcept;

/// The row for an AWS error code (exact, case-sensitive, already normalized), or nullptr.
const AwsErrorInfo* find_aws_error(std::string_view code) noexcept;

/// The first HTTP status row whose range holds `http_status` (there is always one).
const HttpStatusInfo& classify_http_status(int http_status) noexcept;

const TransportErrorInfo& transport_error_info(TransportError error) noexcept;

/// Normalizes an AWS error type as found in `__type` or `x-amzn-ErrorType`: keeps the part
/// after the last '#' and before the first ':', trimmed.
///   "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException" → "ConditionalCheck..."
///   "ValidationException:http://internal.amazon.com/coral/..."          → "ValidationException"
std::string_view normalize_aws_error_type(std::string_view type) noexcept;

/// The Status for an AWS error response.
///
/// The code comes from, in order: the JSON 1.0/1.1 body's `__type` (also inside a coral
/// `{"Output":{...}}` wrapper), an XML body's `<Code>` or root element, the
/// `x-amzn-ErrorType` header; the message from the body's `message` or `Message`. Bodies that
/// are empty or not JSON (kinesalite's bare 413, moto's HTML 500) are tolerated. A known code
/// takes its row; otherwise the HTTP status row decides (5xx → kUnavailable/kSameCall,
/// 413 → kInvalidArgument "request too large", 429 → kResourceExhausted/kSameCall,
/// other 4xx → kInvalidArgument).
///
/// The result carries the AWS code (as normalized), `http_status` and `request_id` via
/// Status::set_aws. A 2xx status with no error code in the body returns OK.
/// Never copies a non-JSON body into the message (it may echo the request).
Status aws_error_status(int http_status, std::string_view body,
                        std::string_view amzn_error_type_header, std::string_view request_id);

/// The Status for a transport failure: "<description> (host <host>)[: <detail>]".
/// `host` is "host:port" only, never a URL (query strings can carry credentials); `detail`
/// must not contain request headers.
Status transport_error_status(TransportError error, std::string_view host, std::string_view detail);

/// "none", "same call" or "restart".
std::string_view retry_class_name(RetryClass retry) noexcept;

/// Markdown for docs/ERRORS.md: the AWS code table, the HTTP fallback table and the
/// transport-failure table.
std::string aws_errors_markdown();

}  // namespace shardline::detail
