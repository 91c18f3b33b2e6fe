// Internal: capped exponential backoff with full jitter, and a deadline-aware helper.
//
//   detail::Backoff backoff({.base = 100ms, .cap = 5s});
//   for (int attempt = 0;; ++attempt) {
//     Status s = call();
//     if (s.ok() || s.retry() != RetryClass::kSameCall) return s;
//     auto delay = backoff.next_delay(attempt, clock.now(), deadline);
//     if (!delay) return s;                  // the deadline would pass before the retry
//     wait(*delay);
//   }
//
// Full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015): the delay
// before retry `attempt` (0 = first retry) is uniform in [0, min(cap, base * 2^attempt)].
// It spreads retries of many clients that failed together, which is what throttling needs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

#include "shardline/clock.h"

namespace shardline::detail {

struct BackoffOptions {
  /// The ceiling of the first retry's delay.
  Clock::duration base = std::chrono::milliseconds(100);
  /// No delay exceeds this.
  Clock::duration cap = std::chrono::seconds(10);
};

/// Not thread-safe: it owns a random generator. Use one per thread (each retrier owns one).
class Backoff {
 public:
  /// Seeds from std::random_device.
  explicit Backoff(BackoffOptions options = {});
  /// A fixed seed gives a reproducible sequence of delays (for tests).
  Backoff(BackoffOptions options, std::uint64_t seed);

  /// min(cap, base * 2^attempt), without overflow. attempt < 0 counts as 0.
  Clock::duration ceiling(int attempt) const noexcept;

  /// A delay uniform in [0, ceiling(attempt)] (full jitter).
  Clock::duration delay(int attempt);

  /// delay(attempt), or nullopt when waiting it would reach or pass `deadline` (including
  /// when `now` is already at or past it). A caller that gets nullopt reports its last error
  /// instead of retrying.
  std::optional<Clock::duration> next_delay(int attempt, Clock::time_point now,
                                            Clock::time_point deadline);

  const BackoffOptions& options() const noexcept { return options_; }

 private:
  BackoffOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace shardline::detail
