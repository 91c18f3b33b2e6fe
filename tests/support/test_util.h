// Helpers shared by the tests.
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

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

}  // namespace shardline::testing
