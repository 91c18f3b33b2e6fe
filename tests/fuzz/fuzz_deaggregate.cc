// Fuzzes the aggregated-record reader. Half the inputs are wrapped in a valid envelope (magic
// + MD5) so the protobuf parser is reached, not just the MD5 check. Invariants: no crash, no
// out-of-bounds view, a decoded aggregate re-encodes and decodes to the same user records.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/digest.h"
#include "fuzz_util.h"
#include "shardline/aggregation.h"

using namespace shardline;
using shardline::fuzz::require;

namespace {
bool inside(std::string_view view, std::string_view buf) {
  return view.empty() ||
         (view.data() >= buf.data() && view.data() + view.size() <= buf.data() + buf.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string blob;
  if (data[0] & 1) {
    const auto md5 = detail::md5(in);
    blob.append(kAggregationMagic).append(in).append(reinterpret_cast<const char*>(md5.data()), 16);
  } else {
    blob.assign(in);
  }
  DeaggregateOptions opts;
  if (data[0] & 2) opts.shard_range = even_split_range((data[0] >> 4) & 1, 2);
  opts.kcl_exact = (data[0] & 4) != 0;
  Deaggregator d(opts);
  std::vector<UserRecordView> out;
  const DecodeSummary s = d.decode({blob, "outer", std::nullopt}, out);
  if (s.kind != BlobKind::kAggregated) {
    require(out.size() == 1 && out[0].data == blob);
    return 0;
  }
  require(out.size() + s.filtered_out >= s.user_records || opts.kcl_exact);
  for (const auto& u : out) {
    require(inside(u.data, blob) && inside(u.partition_key, blob));
    if (u.explicit_hash_key) require(inside(*u.explicit_hash_key, blob));
  }
  if (opts.shard_range || out.size() < 2) return 0;
  // Re-encode what was decoded (when every EHK is a valid decimal) and decode it again.
  AggregateBuilder b(
      AggregationLimits{kLargestMaxRecordSize * 4, UINT64_MAX, kLargestMaxRecordSize * 4});
  for (const auto& u : out) {
    std::optional<HashKey> ehk;
    if (u.explicit_hash_key) {
      auto k = HashKey::parse_decimal(*u.explicit_hash_key);
      if (!k.ok()) return 0;
      ehk = *k;
    }
    b.add(u.partition_key, ehk, u.data);
  }
  const KinesisRecord k = b.build();
  require(k.data.size() == b.size());
  Deaggregator d2;
  std::vector<UserRecordView> again;
  require(d2.decode({k.data, k.partition_key, std::nullopt}, again).kind == BlobKind::kAggregated);
  require(again.size() == out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    require(again[i].data == out[i].data && again[i].partition_key == out[i].partition_key);
    require(again[i].explicit_hash_key.has_value() == out[i].explicit_hash_key.has_value());
  }
  return 0;
}
