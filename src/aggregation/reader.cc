// The aggregated-record reader. The "is aggregated" rule is the KCL's (AggregatorUtil):
// magic, more than 16 bytes after it, MD5 of the protobuf matches, protobuf parses. Parsing
// follows protobuf's rules (unknown fields and known fields with a foreign wire type are
// skipped; a repeated scalar keeps its last value; required fields are checked), so it accepts
// exactly what libprotobuf accepts; a differential test holds it to that.
#include <cstring>

#include "aggregation/proto_wire.h"
#include "core/digest.h"
#include "shardline/aggregation.h"

namespace shardline {

using detail::WireReader;

Status DecodeSummary::status() const {
  if (kind != BlobKind::kCorruptAggregate) return {};
  return Status::data_loss(std::string("corrupt aggregated record: ") + std::string(detail));
}

Deaggregator::Deaggregator(DeaggregateOptions options) : options_(std::move(options)) {
  // A range covering every key filters nothing: skip hashing each user record's key.
  filter_ = options_.shard_range && !(options_.shard_range->start == HashKey() &&
                                      options_.shard_range->end == HashKey::max());
}

namespace {

enum class Parse { kOk, kWireError, kMissingRequired };

// A Tag message: required string key = 1; optional string value = 2.
Parse parse_tag(std::string_view msg) {
  WireReader r(msg);
  bool has_key = false;
  while (!r.done()) {
    std::uint32_t f, w;
    if (!r.tag(f, w)) return Parse::kWireError;
    if ((f == 1 || f == 2) && w == 2) {
      std::string_view s;
      if (!r.bytes(s)) return Parse::kWireError;
      if (f == 1) has_key = true;
    } else if (!r.skip_field(f, w)) {
      return Parse::kWireError;
    }
  }
  return has_key ? Parse::kOk : Parse::kMissingRequired;
}

// One Record message. Wire errors fail it; a missing required field (partition_key_index,
// data, or a tag's key) is reported separately.
Parse parse_record(std::string_view msg, detail::RecordSpan& rs) {
  WireReader r(msg);
  bool missing = false;
  while (!r.done()) {
    std::uint32_t f, w;
    if (!r.tag(f, w)) return Parse::kWireError;
    if (f == 1 && w == 0) {
      if (!r.varint(rs.pk_index)) return Parse::kWireError;
      rs.has_pk = true;
    } else if (f == 2 && w == 0) {
      if (!r.varint(rs.ehk_index)) return Parse::kWireError;
      rs.has_ehk = true;
    } else if (f == 3 && w == 2) {
      if (!r.bytes(rs.data)) return Parse::kWireError;
      rs.has_data = true;
    } else if (f == 4 && w == 2) {
      std::string_view tag;
      if (!r.bytes(tag)) return Parse::kWireError;
      const Parse t = parse_tag(tag);
      if (t == Parse::kWireError) return t;
      if (t == Parse::kMissingRequired) missing = true;
    } else if (!r.skip_field(f, w)) {
      return Parse::kWireError;
    }
  }
  if (!rs.has_pk || !rs.has_data) missing = true;
  return missing ? Parse::kMissingRequired : Parse::kOk;
}

// A varint of one or two bytes at p (before end): its value and size, or 0 if it is longer or
// truncated (the general parser decides then).
inline std::size_t short_varint(const unsigned char* p, const unsigned char* end,
                                std::uint64_t& v) noexcept {
  if (p < end && p[0] < 0x80) {
    v = p[0];
    return 1;
  }
  if (end - p >= 2 && p[1] < 0x80) {
    v = (p[0] & 0x7Fu) | (static_cast<std::uint64_t>(p[1]) << 7);
    return 2;
  }
  return 0;
}

// A Record as the KPL writes it when it has no explicit hash key and no tags:
// 08 <partition_key_index> 1A <length> <data>, nothing else, varints of one or two bytes.
// parse_record() gives the same span for these bytes; this only takes the generic loop's
// branches out of the common case.
bool kpl_record(std::string_view msg, detail::RecordSpan& rs) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(msg.data());
  const auto* end = p + msg.size();
  std::uint64_t pk, len;
  if (end - p < 4 || p[0] != 0x08) return false;
  std::size_t n = short_varint(p + 1, end, pk);
  if (n == 0) return false;
  p += 1 + n;
  if (p == end || p[0] != 0x1A) return false;
  n = short_varint(p + 1, end, len);
  if (n == 0) return false;
  p += 1 + n;
  if (len != static_cast<std::uint64_t>(end - p)) return false;
  rs.pk_index = pk;
  rs.has_pk = true;
  rs.data = std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
  rs.has_data = true;
  return true;
}

}  // namespace

DecodeSummary Deaggregator::decode(const KinesisRecordView& rec, std::vector<UserRecordView>& out) {
  DecodeSummary sum;
  auto pass_through = [&](BlobKind kind, std::string_view why) {
    sum.kind = kind;
    sum.detail = why;
    out.push_back(UserRecordView{rec.partition_key, rec.explicit_hash_key, rec.data, 0, false});
    return sum;
  };

  const std::string_view data = rec.data;
  if (data.size() < kAggregationMagic.size() ||
      std::memcmp(data.data(), kAggregationMagic.data(), kAggregationMagic.size()) != 0) {
    return pass_through(BlobKind::kPlain, "no magic");
  }
  if (data.size() - kAggregationMagic.size() <= 16) {
    return pass_through(BlobKind::kPlain, "16 bytes or fewer after the magic");
  }
  const std::string_view proto = data.substr(4, data.size() - kAggregationOverhead);
  bool md5_ok = false;
  bool predigested = false;
  while (predigest_next_ < predigested_.size()) {
    const Predigested& p = predigested_[predigest_next_++];
    if (p.data == data.data() && p.size == data.size()) {
      md5_ok = p.md5_ok;
      predigested = true;
      break;
    }
  }
  if (!predigested) {
    const detail::Md5Digest md5 = detail::md5(proto);
    md5_ok = std::memcmp(md5.data(), data.data() + data.size() - 16, 16) == 0;
  }
  if (!md5_ok) return pass_through(BlobKind::kInvalidAggregate, "md5 mismatch");

  pk_table_.clear();
  ehk_table_.clear();
  records_.clear();
  Parse result = Parse::kOk;
  {
    // Parse the whole message at the wire level first: a wire error anywhere makes protobuf
    // parsers reject it, and wins over a missing required field.
    WireReader r(proto);
    while (!r.done()) {
      // The aggregate is usually out of cache by now (its MD5 was checked with the batch's
      // other aggregates, and the records written since have pushed it out): ask for the bytes
      // a few records ahead, as the hardware prefetcher does not keep up here. A prefetch past
      // the end is harmless.
      __builtin_prefetch(r.position() + 1024);
      __builtin_prefetch(r.position() + 1088);
      std::uint32_t f, w;
      if (!r.tag(f, w)) {
        result = Parse::kWireError;
        break;
      }
      if (w != 2 || f < 1 || f > 3) {
        if (!r.skip_field(f, w)) {
          result = Parse::kWireError;
          break;
        }
        continue;
      }
      std::string_view s;
      if (!r.bytes(s)) {
        result = Parse::kWireError;
        break;
      }
      if (f == 1) {
        pk_table_.push_back(s);
      } else if (f == 2) {
        ehk_table_.push_back(s);
      } else {
        detail::RecordSpan rs{0, 0, {}, false, false, false};
        if (!kpl_record(s, rs)) {
          const Parse p = parse_record(s, rs);
          if (p == Parse::kWireError) {
            result = Parse::kWireError;
            break;
          }
          if (p == Parse::kMissingRequired) result = Parse::kMissingRequired;
        }
        records_.push_back(rs);
      }
    }
  }

  if (result == Parse::kWireError) {
    return pass_through(BlobKind::kInvalidAggregate, "protobuf parse error");
  }
  if (result == Parse::kMissingRequired) {
    if (options_.kcl_exact) {
      return pass_through(BlobKind::kInvalidAggregate, "required field missing");
    }
    return pass_through(BlobKind::kCorruptAggregate,
                        "a record lacks its required partition_key_index or data");
  }
  for (const detail::RecordSpan& rs : records_) {
    if (rs.pk_index >= pk_table_.size()) {
      return pass_through(BlobKind::kCorruptAggregate, "partition key index out of range");
    }
    if (rs.has_ehk && rs.ehk_index >= ehk_table_.size()) {
      return pass_through(BlobKind::kCorruptAggregate, "explicit hash key index out of range");
    }
  }

  sum.kind = BlobKind::kAggregated;
  sum.user_records = records_.size();
  const std::size_t first_out = out.size();
  if (filter_) {
    // Keys repeat inside an aggregate (the table is indexed): decide each key once, and hash
    // the partition keys together.
    pk_in_range_.assign(pk_table_.size(), kUnknown);
    ehk_in_range_.assign(ehk_table_.size(), kUnknown);
    if (pk_table_.size() > 1) {
      digest_out_.resize(pk_table_.size());
      detail::md5_many(pk_table_, digest_out_);
      for (std::size_t i = 0; i < pk_table_.size(); ++i) {
        pk_in_range_[i] =
            options_.shard_range->contains(HashKey::from_big_endian(digest_out_[i].data())) ? kIn
                                                                                            : kOut;
      }
    }
  }
  for (std::size_t i = 0; i < records_.size(); ++i) {
    const detail::RecordSpan& rs = records_[i];
    UserRecordView u;
    u.partition_key = pk_table_[rs.pk_index];
    if (rs.has_ehk) u.explicit_hash_key = ehk_table_[rs.ehk_index];
    u.data = rs.data;
    u.sub_sequence_number = i;
    u.aggregated = true;
    if (filter_) {
      std::uint8_t& known = rs.has_ehk ? ehk_in_range_[rs.ehk_index] : pk_in_range_[rs.pk_index];
      if (known == kUnknown) {
        bool yes;
        if (u.explicit_hash_key) {
          // A key that is not a valid decimal cannot be placed; keep it rather than lose it.
          auto k = HashKey::parse_decimal(*u.explicit_hash_key);
          yes = !k.ok() || options_.shard_range->contains(*k);
        } else {
          yes = options_.shard_range->contains(HashKey::from_partition_key(u.partition_key));
        }
        known = yes ? kIn : kOut;
      }
      const bool in_range = known == kIn;
      if (!in_range) {
        if (options_.kcl_exact) {
          // The KCL drops every user record of an aggregate with one out-of-range record.
          sum.filtered_out = records_.size();
          out.resize(first_out);
          return sum;
        }
        ++sum.filtered_out;
        continue;
      }
    }
    out.push_back(u);
  }
  return sum;
}

void Deaggregator::predigest(std::span<const std::string_view> datas) {
  predigested_.clear();
  predigest_next_ = 0;
  digest_in_.clear();
  for (std::string_view d : datas) {
    if (d.size() <= kAggregationOverhead ||
        std::memcmp(d.data(), kAggregationMagic.data(), kAggregationMagic.size()) != 0)
      continue;
    predigested_.push_back(Predigested{d.data(), d.size(), false});
    digest_in_.push_back(d.substr(4, d.size() - kAggregationOverhead));
  }
  digest_out_.resize(digest_in_.size());
  detail::md5_many(digest_in_, digest_out_);
  for (std::size_t i = 0; i < predigested_.size(); ++i) {
    const Predigested& p = predigested_[i];
    predigested_[i].md5_ok = std::memcmp(digest_out_[i].data(), p.data + p.size - 16, 16) == 0;
  }
}

bool is_aggregated(std::string_view data) {
  Deaggregator d;
  std::vector<UserRecordView> out;
  return d.decode(KinesisRecordView{data, {}, std::nullopt}, out).kind == BlobKind::kAggregated;
}

}  // namespace shardline
