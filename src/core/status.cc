#include "shardline/status.h"

#include <string>

namespace shardline {

std::string_view status_code_name(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kCancelled:
      return "CANCELLED";
    case StatusCode::kUnknown:
      return "UNKNOWN";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kDataLoss:
      return "DATA_LOSS";
    case StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

RetryClass default_retry_class(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
    case StatusCode::kDeadlineExceeded:
      return RetryClass::kSameCall;
    case StatusCode::kAborted:
      return RetryClass::kRestart;
    default:
      return RetryClass::kNone;
  }
}

Status::Status(StatusCode code, std::string message)
    : Status(code, std::move(message), default_retry_class(code)) {}

Status::Status(StatusCode code, std::string message, RetryClass retry) {
  if (code == StatusCode::kOk) return;
  rep_ = std::make_unique<Rep>();
  rep_->code = code;
  rep_->retry = retry;
  rep_->message = std::move(message);
}

Status::Status(const Status& other)
    : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
  return *this;
}

StatusCode Status::code() const noexcept { return rep_ ? rep_->code : StatusCode::kOk; }
std::string_view Status::message() const noexcept {
  return rep_ ? std::string_view(rep_->message) : std::string_view();
}
RetryClass Status::retry() const noexcept { return rep_ ? rep_->retry : RetryClass::kNone; }
std::string_view Status::aws_error_code() const noexcept {
  return rep_ ? std::string_view(rep_->aws_error_code) : std::string_view();
}
int Status::http_status() const noexcept { return rep_ ? rep_->http_status : 0; }
std::string_view Status::request_id() const noexcept {
  return rep_ ? std::string_view(rep_->request_id) : std::string_view();
}

Status& Status::set_aws(std::string aws_error_code, int http_status, std::string request_id) {
  if (rep_) {
    rep_->aws_error_code = std::move(aws_error_code);
    rep_->http_status = http_status;
    rep_->request_id = std::move(request_id);
  }
  return *this;
}

Status Status::with_context(std::string_view what) && {
  if (rep_) {
    std::string m;
    m.reserve(what.size() + 2 + rep_->message.size());
    m.append(what).append(": ").append(rep_->message);
    rep_->message = std::move(m);
  }
  return std::move(*this);
}

Status Status::with_context(std::string_view what) const& {
  return Status(*this).with_context(what);
}

std::string Status::to_string() const {
  if (!rep_) return "OK";
  std::string s(status_code_name(rep_->code));
  s += ": ";
  s += rep_->message;
  if (!rep_->aws_error_code.empty() || rep_->http_status != 0 || !rep_->request_id.empty()) {
    s += " [";
    bool first = true;
    auto add = [&](std::string_view k, std::string_view v) {
      if (v.empty()) return;
      if (!first) s += ' ';
      first = false;
      s.append(k).append("=").append(v);
    };
    add("aws", rep_->aws_error_code);
    add("http", rep_->http_status ? std::to_string(rep_->http_status) : std::string());
    add("request-id", rep_->request_id);
    s += ']';
  }
  return s;
}

}  // namespace shardline
