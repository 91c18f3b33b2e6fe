// Shared by the differential fuzz targets.
#pragma once

#include <cstdlib>

namespace shardline::fuzz {

/// A differential check: a mismatch aborts, which libFuzzer reports as a crash with the input.
inline void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace shardline::fuzz
