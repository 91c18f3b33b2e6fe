// File: shardline/clock.h
//
// Time as shardline sees it. Everything that waits or stamps deadlines takes a `Clock&`, so
// unit tests drive time with `FakeClock::advance()` instead of sleeping.
//
//   shardline::SteadyClock clock;
//   auto deadline = clock.now() + std::chrono::milliseconds(100);
#pragma once

#include <chrono>
#include <cstdint>

namespace shardline {

class Clock {
 public:
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<std::chrono::steady_clock, duration>;

  virtual ~Clock() = default;
  /// Monotonic time, for deadlines and lease expiry.
  virtual time_point now() const = 0;
  /// Wall-clock time in milliseconds since the Unix epoch, for timestamps sent to AWS.
  virtual std::int64_t wall_ms() const = 0;
};

/// The production clock: std::chrono::steady_clock and system_clock. Thread-safe.
class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  std::int64_t wall_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  /// A process-wide instance.
  static SteadyClock& instance() {
    static SteadyClock c;
    return c;
  }
};

}  // namespace shardline
