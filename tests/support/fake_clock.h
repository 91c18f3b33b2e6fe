// A clock that moves only when a test advances it.
#pragma once

#include <atomic>

#include "shardline/clock.h"

namespace shardline::testing {

class FakeClock final : public Clock {
 public:
  time_point now() const override { return time_point(duration(now_ns_.load())); }
  std::int64_t wall_ms() const override { return 1700000000000 + now_ns_.load() / 1000000; }
  void advance(duration d) { now_ns_ += d.count(); }

 private:
  std::atomic<std::int64_t> now_ns_{1000000000};  // start at 1 s, not at the epoch
};

}  // namespace shardline::testing
