// File: shardline/result.h
//
// `Result<T>`: a value or a non-OK Status.
//
//   shardline::Result<shardline::HashKey> k = shardline::HashKey::parse_decimal("42");
//   if (!k.ok()) return k.status();
//   use(*k);
#pragma once

#include <cstdlib>
#include <optional>
#include <utility>

#include "shardline/status.h"

namespace shardline {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    // A Result built from a Status must carry an error: an OK status with no value is a bug.
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result built from an OK status");
  }

  bool ok() const noexcept { return value_.has_value(); }
  const Status& status() const& noexcept { return status_; }
  Status status() && noexcept { return std::move(status_); }

  /// Preconditions: ok(). Calling these on an error aborts (a programmer error).
  T& value() & { return check(), *value_; }
  const T& value() const& { return check(), *value_; }
  T&& value() && { return check(), std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The value, or `fallback` on error.
  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }

 private:
  void check() const {
    if (!value_) std::abort();
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace shardline

#define SHARDLINE_CONCAT_INNER_(a, b) a##b
#define SHARDLINE_CONCAT_(a, b) SHARDLINE_CONCAT_INNER_(a, b)

/// `SHARDLINE_ASSIGN_OR_RETURN(auto x, expr);` where expr is a Result<T>.
#define SHARDLINE_ASSIGN_OR_RETURN(lhs, expr) \
  SHARDLINE_ASSIGN_OR_RETURN_IMPL_(SHARDLINE_CONCAT_(shardline_result_, __LINE__), lhs, expr)
#define SHARDLINE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return std::move(tmp).status();         \
  lhs = std::move(tmp).value()
