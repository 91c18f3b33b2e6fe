// Differential fuzzing of the GetRecords parser: parse_get_records() (the Data strings decoded
// straight from the body, the DOM parser given the rest) against parse_get_records_dom() (the
// DOM parser over the whole body). Same verdict, same error, same records, on any input.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "shardline/kinesis.h"

using namespace shardline;
using shardline::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  auto fast = detail::parse_get_records(body);
  auto dom = detail::parse_get_records_dom(body);
  require(fast.ok() == dom.ok());
  if (!fast.ok()) {
    require(fast.status().to_string() == dom.status().to_string());
    return 0;
  }
  require(fast->records.size() == dom->records.size());
  for (std::size_t i = 0; i < fast->records.size(); ++i) {
    const StreamRecord& a = fast->records[i];
    const StreamRecord& b = dom->records[i];
    require(a.data == b.data && a.partition_key == b.partition_key &&
            a.sequence_number == b.sequence_number &&
            a.approximate_arrival_timestamp_ms == b.approximate_arrival_timestamp_ms &&
            a.encryption_type == b.encryption_type);
  }
  require(fast->next_shard_iterator == dom->next_shard_iterator);
  require(fast->millis_behind_latest == dom->millis_behind_latest);
  require(fast->child_shards.size() == dom->child_shards.size());
  return 0;
}
