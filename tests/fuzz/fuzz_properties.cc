// Fuzzes the .properties parser and the settings validation: no crash, no hang, and every
// error names a line or a key.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "shardline/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<shardline::Property> props;
  (void)shardline::parse_properties(text, props);
  shardline::ProducerConfig cfg;
  std::vector<std::string> warnings;
  const shardline::Status s = shardline::apply_properties(cfg, text, "fuzz", &warnings);
  if (!s.ok() && s.message().rfind("fuzz", 0) != 0) std::abort();
  return 0;
}
