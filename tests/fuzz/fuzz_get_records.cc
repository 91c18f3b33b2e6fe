// Differential fuzzing of the GetRecords parser: parse_get_records() (the Data strings taken
// out and decoded by the compaction, the DOM parser given the rest) against
// parse_get_records_dom() (the DOM parser over the whole body). Same verdict, same error, same
// records, on any input. And the compaction fed in pieces (GetRecordsCompactor, as the HTTP
// client feeds it), split where the input's bytes say: the same document and strings as when
// it is fed the whole body, and the same parse.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "shardline/kinesis.h"

using namespace shardline;
using shardline::fuzz::require;

namespace {

void require_same(const Result<GetRecordsResult>& fast, const Result<GetRecordsResult>& dom) {
  require(fast.ok() == dom.ok());
  if (!fast.ok()) {
    require(fast.status().to_string() == dom.status().to_string());
    return;
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
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const auto dom = detail::parse_get_records_dom(body);
  require_same(detail::parse_get_records(body), dom);

  std::string json;
  std::vector<std::string> decoded;
  const bool whole = detail::compact_get_records(body, json, decoded) && !decoded.empty();
  detail::GetRecordsCompactor c;
  c.reset(size);
  // Piece lengths from the input's own bytes (1 to 16), so the fuzzer steers the splits.
  std::size_t at = 0, k = 0;
  while (at < size) {
    const std::size_t n = std::min<std::size_t>(size - at, 1 + (data[k++ % size] & 15u));
    c.feed(std::string_view(body).substr(at, n));
    at += n;
  }
  c.finish();
  require(c.compacted() == whole);
  if (whole) {
    require(c.json() == json && c.data() == decoded);
    // Rebuilt with canonical base64: the same strings again.
    std::string again;
    std::vector<std::string> again_data;
    require(detail::compact_get_records(c.original(), again, again_data));
    require(again_data == decoded);
  }
  require_same(detail::parse_get_records(c), dom);
  return 0;
}
