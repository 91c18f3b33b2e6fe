// Helpers shared by the tests.
#pragma once

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace shardline::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string testdata(const std::string& rel) {
  return std::string(SHARDLINE_TESTDATA_DIR) + "/" + rel;
}

/// Polls `done` until it holds or `timeout` passes; returns whether it held. For state a test
/// cannot be notified of (another process, a remote server); never asserts a duration.
template <class F>
bool poll_until(F done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace shardline::testing
