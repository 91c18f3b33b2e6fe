// Internal: a continuous-refill token bucket (the KPL's limiter, with a rate factor that
// throttling feedback lowers and successes restore).
#pragma once

#include <algorithm>

#include "shardline/clock.h"

namespace shardline::detail {

class TokenBucket {
 public:
  TokenBucket() = default;
  /// Starts full, as the KPL's buckets do.
  TokenBucket(double capacity, double rate_per_second, Clock::time_point now)
      : capacity_(capacity), rate_(rate_per_second), tokens_(capacity), last_(now) {}

  /// Take `n` tokens if available now.
  bool try_take(double n, Clock::time_point now, double rate_factor) {
    refill(now, rate_factor);
    if (tokens_ + 1e-9 < n) return false;
    tokens_ -= n;
    return true;
  }
  /// How long until `n` tokens are available (zero if they are).
  Clock::duration wait_for(double n, Clock::time_point now, double rate_factor) {
    refill(now, rate_factor);
    if (tokens_ >= n) return Clock::duration::zero();
    const double secs = (n - tokens_) / (rate_ * rate_factor);
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs)) +
           std::chrono::microseconds(1);
  }
  double tokens() const noexcept { return tokens_; }

 private:
  void refill(Clock::time_point now, double rate_factor) {
    if (now > last_) {
      const double secs = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(capacity_, tokens_ + secs * rate_ * rate_factor);
      last_ = now;
    }
  }
  double capacity_ = 0;
  double rate_ = 0;
  double tokens_ = 0;
  Clock::time_point last_{};
};

}  // namespace shardline::detail
