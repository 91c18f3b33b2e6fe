// Capped exponential backoff with full jitter (src/aws/backoff.h). Seeded: deterministic.
#include "aws/backoff.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace shardline {
namespace {

using detail::Backoff;
using detail::BackoffOptions;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Backoff, CeilingDoublesFromBaseUntilCap) {
  Backoff b({.base = milliseconds(100), .cap = seconds(1)}, 1);
  EXPECT_EQ(b.ceiling(0), milliseconds(100));
  EXPECT_EQ(b.ceiling(1), milliseconds(200));
  EXPECT_EQ(b.ceiling(2), milliseconds(400));
  EXPECT_EQ(b.ceiling(3), milliseconds(800));
  EXPECT_EQ(b.ceiling(4), seconds(1));
  EXPECT_EQ(b.ceiling(5), seconds(1));
}

TEST(Backoff, CeilingNeverOverflows) {
  Backoff b({.base = milliseconds(250), .cap = std::chrono::hours(24 * 365)}, 1);
  for (int attempt : {30, 40, 62, 63, 64, 100, 1000, 1 << 30}) {
    EXPECT_EQ(b.ceiling(attempt), std::chrono::hours(24 * 365)) << attempt;
  }
  EXPECT_EQ(b.ceiling(-5), milliseconds(250));
}

TEST(Backoff, CapBelowBaseAndZeroBase) {
  Backoff small_cap({.base = seconds(2), .cap = seconds(1)}, 1);
  EXPECT_EQ(small_cap.ceiling(0), seconds(1));
  EXPECT_LE(small_cap.delay(3), seconds(1));
  Backoff zero({.base = Clock::duration::zero(), .cap = seconds(1)}, 1);
  for (int attempt = 0; attempt < 10; ++attempt)
    EXPECT_EQ(zero.delay(attempt), Clock::duration::zero());
}

TEST(Backoff, DelayStaysWithinZeroAndCeiling) {
  Backoff b({.base = milliseconds(10), .cap = seconds(5)}, 42);
  for (int attempt = 0; attempt < 20; ++attempt) {
    for (int i = 0; i < 500; ++i) {
      Clock::duration d = b.delay(attempt);
      ASSERT_GE(d, Clock::duration::zero());
      ASSERT_LE(d, b.ceiling(attempt));
    }
  }
}

TEST(Backoff, FullJitterCoversTheWholeRange) {
  // Full jitter draws from [0, ceiling]: over many draws the smallest is near 0, the largest
  // near the ceiling, and the mean near the middle. The seed makes this deterministic.
  Backoff b({.base = seconds(1), .cap = seconds(1)}, 7);
  const auto top = static_cast<double>(b.ceiling(0).count());
  double sum = 0, lo = top, hi = 0;
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) {
    const auto d = static_cast<double>(b.delay(0).count());
    sum += d;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, top * 0.01);
  EXPECT_GT(hi, top * 0.99);
  EXPECT_NEAR(sum / kDraws / top, 0.5, 0.02);
}

TEST(Backoff, SameSeedSameSequenceDifferentSeedDifferent) {
  BackoffOptions o{.base = milliseconds(100), .cap = seconds(20)};
  Backoff a(o, 123), b(o, 123), c(o, 124);
  std::vector<Clock::duration> sa, sb, sc;
  for (int attempt = 0; attempt < 16; ++attempt) {
    sa.push_back(a.delay(attempt));
    sb.push_back(b.delay(attempt));
    sc.push_back(c.delay(attempt));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(Backoff, NextDelayIsNulloptAtOrPastTheDeadline) {
  Backoff b({.base = milliseconds(100), .cap = seconds(1)}, 5);
  const Clock::time_point now{seconds(1000)};
  EXPECT_FALSE(b.next_delay(0, now, now).has_value());
  EXPECT_FALSE(b.next_delay(0, now, now - milliseconds(1)).has_value());
}

TEST(Backoff, NextDelayIsTheJitteredDelayWhenItFitsBeforeTheDeadline) {
  // A twin with the same seed draws the same delays, so each answer can be checked exactly.
  const BackoffOptions o{.base = milliseconds(100), .cap = seconds(10)};
  Backoff b(o, 99), twin(o, 99);
  const Clock::time_point now{seconds(1000)};
  int retried = 0, gave_up = 0;
  for (int i = 0; i < 2000; ++i) {
    const int attempt = i % 8;
    const Clock::time_point deadline = now + milliseconds(50 + (i * 37) % 3000);
    const std::optional<Clock::duration> d = b.next_delay(attempt, now, deadline);
    const Clock::duration expected = twin.delay(attempt);
    if (expected < deadline - now) {
      ASSERT_TRUE(d.has_value()) << i;
      EXPECT_EQ(*d, expected);
      EXPECT_LT(now + *d, deadline);
      ++retried;
    } else {
      EXPECT_FALSE(d.has_value()) << i;
      ++gave_up;
    }
  }
  // Both branches were exercised.
  EXPECT_GT(retried, 0);
  EXPECT_GT(gave_up, 0);
}

TEST(Backoff, FarDeadlineAlwaysRetries) {
  Backoff b({.base = milliseconds(100), .cap = seconds(1)}, 3);
  const Clock::time_point now{seconds(5)};
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto d = b.next_delay(attempt, now, now + seconds(2));
    ASSERT_TRUE(d.has_value());
    EXPECT_LE(*d, seconds(1));
  }
}

}  // namespace
}  // namespace shardline
