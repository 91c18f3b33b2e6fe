#include "aws/backoff.h"

namespace shardline::detail {
namespace {

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Backoff::Backoff(BackoffOptions options) : Backoff(options, random_seed()) {}

Backoff::Backoff(BackoffOptions options, std::uint64_t seed) : options_(options), rng_(seed) {
  if (options_.base < Clock::duration::zero()) options_.base = Clock::duration::zero();
  if (options_.cap < Clock::duration::zero()) options_.cap = Clock::duration::zero();
}

Clock::duration Backoff::ceiling(int attempt) const noexcept {
  const Clock::duration::rep base = options_.base.count();
  const Clock::duration::rep cap = options_.cap.count();
  if (base <= 0) return Clock::duration::zero();
  if (base >= cap) return options_.cap;
  if (attempt <= 0) return options_.base;
  // base * 2^attempt <= cap  ⇔  base <= cap >> attempt; shifting by 63 or more leaves 0.
  if (attempt >= 63 || base > (cap >> attempt)) return options_.cap;
  return Clock::duration(base << attempt);
}

Clock::duration Backoff::delay(int attempt) {
  const auto top = static_cast<std::uint64_t>(ceiling(attempt).count());
  if (top == 0) return Clock::duration::zero();
  // Uniform in [0, top] by the multiply-shift method: the same sequence for the same seed on
  // every standard library (std::uniform_int_distribution's algorithm is unspecified).
  const unsigned __int128 product =
      static_cast<unsigned __int128>(rng_()) * (static_cast<unsigned __int128>(top) + 1);
  return Clock::duration(static_cast<Clock::duration::rep>(product >> 64));
}

std::optional<Clock::duration> Backoff::next_delay(int attempt, Clock::time_point now,
                                                   Clock::time_point deadline) {
  if (now >= deadline) return std::nullopt;
  const Clock::duration d = delay(attempt);
  if (d >= deadline - now) return std::nullopt;
  return d;
}

}  // namespace shardline::detail
