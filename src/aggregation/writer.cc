// The aggregated-record writer. Byte layout as the KPL's KinesisRecord::serialize()
// (aws/kinesis/core/kinesis_record.cc): all partition_key_table entries, then all
// explicit_hash_key_table entries, then all records, each record as fields 1, 2 (only when the
// user gave an explicit hash key), 3. Keys are deduplicated in first-use order. Unlike the KPL,
// sizes are tracked exactly rather than estimated, so no trimming pass is needed.
#include <algorithm>
#include <cstring>

#include "aggregation/proto_wire.h"
#include "core/digest.h"
#include "shardline/aggregation.h"

namespace shardline {

using detail::bytes_field_size;
using detail::varint_size;

namespace {

// Length of a UTF-8 string in UTF-16 code units; -1 when it is not valid UTF-8.
long utf16_length(std::string_view s) {
  long n = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      ++n;
      continue;
    }
    int len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (end - p < len) return -1;
    for (int i = 1; i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) return -1;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF are not valid UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return -1;
    n += (cp >= 0x10000) ? 2 : 1;
    p += len;
  }
  return n;
}

}  // namespace

Result<std::optional<HashKey>> check_user_record(std::string_view partition_key,
                                                 std::optional<std::string_view> explicit_hash_key,
                                                 std::size_t data_size,
                                                 std::size_t max_record_size) {
  if (partition_key.empty()) return Status::invalid_argument("partition key is empty");
  const long units = utf16_length(partition_key);
  if (units < 0) return Status::invalid_argument("partition key is not valid UTF-8");
  if (units > 256) {
    return Status::invalid_argument("partition key has " + std::to_string(units) +
                                    " characters; the limit is 256");
  }
  if (partition_key.size() + data_size > max_record_size) {
    return Status::invalid_argument("record too large: partition key (" +
                                    std::to_string(partition_key.size()) + " bytes) + data (" +
                                    std::to_string(data_size) + " bytes) exceeds the stream's " +
                                    std::to_string(max_record_size) + "-byte record limit");
  }
  if (!explicit_hash_key) return std::optional<HashKey>();
  auto k = HashKey::parse_decimal(*explicit_hash_key);
  if (!k.ok()) return std::move(k).status();
  return std::optional<HashKey>(*k);
}

Result<HashKey> validate_user_record(std::string_view partition_key,
                                     std::optional<std::string_view> explicit_hash_key,
                                     std::size_t data_size, std::size_t max_record_size) {
  auto checked = check_user_record(partition_key, explicit_hash_key, data_size, max_record_size);
  if (!checked.ok()) return std::move(checked).status();
  if (*checked) return **checked;
  return HashKey::from_partition_key(partition_key);
}

AggregateBuilder::AggregateBuilder(AggregationLimits limits) : limits_(limits) {
  pk_index_.resize(64);
  ehk_index_.resize(16);
}

namespace {
// Eight bytes at a time, then a final mix: fast for the short keys of partition key tables
// (a byte-at-a-time FNV-1a cost a serial multiply per byte).
std::uint64_t hash_bytes(std::string_view s) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  if (n) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}
std::uint64_t mix_hash_key(const HashKey& k) noexcept {
  std::uint64_t h = k.hi() * 0x9E3779B97F4A7C15ULL ^ k.lo();
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 32);
}
}  // namespace

std::int64_t AggregateBuilder::find_pk(std::string_view pk, std::uint64_t hash,
                                       std::size_t& slot) const noexcept {
  const std::size_t mask = pk_index_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = pk_index_[i];
    if (s.generation != generation_) {
      slot = i;
      return -1;
    }
    if (s.hash == hash && pk_at(s.index) == pk) {
      slot = i;
      return s.index;
    }
  }
}

std::int64_t AggregateBuilder::find_ehk(const HashKey& k, std::uint64_t hash,
                                        std::size_t& slot) const noexcept {
  const std::size_t mask = ehk_index_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = ehk_index_[i];
    if (s.generation != generation_) {
      slot = i;
      return -1;
    }
    if (s.hash == hash && ehk_keys_[s.index] == k) {
      slot = i;
      return s.index;
    }
  }
}

// Double the index and re-insert the live entries (load factor stays at or below 1/2).
void AggregateBuilder::grow_index(std::vector<Slot>& index) {
  std::vector<Slot> old;
  old.swap(index);
  index.assign(old.size() * 2, Slot{});
  const std::size_t mask = index.size() - 1;
  for (const Slot& s : old) {
    if (s.generation != generation_) continue;
    std::size_t i = s.hash & mask;
    while (index[i].generation == generation_) i = (i + 1) & mask;
    index[i] = s;
  }
}

std::size_t AggregateBuilder::size() const noexcept {
  if (count_ == 1) return first_.data.size();
  return kAggregationOverhead + proto_size_;
}

// Where a record's keys are (or would go) in the tables, and the bytes it adds.
AggregateBuilder::Placement AggregateBuilder::place(std::string_view partition_key,
                                                    const std::optional<HashKey>& explicit_hash_key,
                                                    std::size_t data_size) const noexcept {
  Placement p;
  p.pk_hash = hash_bytes(partition_key);
  p.pk_found = find_pk(partition_key, p.pk_hash, p.pk_slot);
  p.pk_index = p.pk_found >= 0 ? static_cast<std::size_t>(p.pk_found) : pk_table_.size();
  if (p.pk_found < 0) p.added += bytes_field_size(partition_key.size());
  if (explicit_hash_key) {
    p.ehk_hash = mix_hash_key(*explicit_hash_key);
    p.ehk_found = find_ehk(*explicit_hash_key, p.ehk_hash, p.ehk_slot);
    if (p.ehk_found >= 0) {
      p.ehk_index = p.ehk_found;
    } else {
      p.ehk_index = static_cast<std::int64_t>(ehk_table_.size());
      p.digits_len = explicit_hash_key->to_chars(p.digits);
      p.added += bytes_field_size(p.digits_len);
    }
  }
  p.record_inner = 1 + varint_size(p.pk_index) + bytes_field_size(data_size);
  if (p.ehk_index >= 0) p.record_inner += 1 + varint_size(static_cast<std::uint64_t>(p.ehk_index));
  p.record_size = bytes_field_size(p.record_inner);
  p.added += p.record_size;
  return p;
}

// Whether a record placed as `p` joins a non-empty aggregate within the limits.
bool AggregateBuilder::room_for(const Placement& p) const noexcept {
  if (count_ >= limits_.max_count) return false;
  const std::size_t new_size = kAggregationOverhead + proto_size_ + p.added;
  // The aggregate travels with partition key "a" (1 byte), which counts toward the record limit.
  return new_size <= limits_.max_size && new_size + 1 <= limits_.max_record_size;
}

bool AggregateBuilder::fits(std::string_view partition_key,
                            const std::optional<HashKey>& explicit_hash_key,
                            std::size_t data_size) const {
  return count_ == 0 || room_for(place(partition_key, explicit_hash_key, data_size));
}

void AggregateBuilder::add(std::string_view partition_key,
                           const std::optional<HashKey>& explicit_hash_key, std::string_view data) {
  add(partition_key, explicit_hash_key, data,
      explicit_hash_key ? *explicit_hash_key : HashKey::from_partition_key(partition_key));
}

void AggregateBuilder::add(std::string_view partition_key,
                           const std::optional<HashKey>& explicit_hash_key, std::string_view data,
                           const HashKey& hash_key) {
  (void)insert(partition_key, explicit_hash_key, data, hash_key, /*check_fit=*/false);
}

bool AggregateBuilder::try_add(std::string_view partition_key,
                               const std::optional<HashKey>& explicit_hash_key,
                               std::string_view data, const HashKey& hash_key) {
  return insert(partition_key, explicit_hash_key, data, hash_key, /*check_fit=*/true);
}

// One lookup per table serves both the size check and the insertion. The record is encoded
// here, while its bytes are still in cache; build() then only concatenates and digests.
bool AggregateBuilder::insert(std::string_view partition_key,
                              const std::optional<HashKey>& explicit_hash_key,
                              std::string_view data, const HashKey& hash_key, bool check_fit) {
  const Placement p = place(partition_key, explicit_hash_key, data.size());
  if (check_fit && count_ != 0 && !room_for(p)) return false;
  const std::size_t pk_index = p.pk_index;
  const std::int64_t ehk_index = p.ehk_index;
  if (p.pk_found < 0) {
    pk_index_[p.pk_slot] = Slot{p.pk_hash, static_cast<std::uint32_t>(pk_index), generation_};
    const std::size_t at = pk_buf_.size();
    pk_buf_.resize(at + bytes_field_size(partition_key.size()));
    char* end = detail::put_bytes_field(pk_buf_.data() + at, 0x0A, partition_key);
    pk_table_.push_back(KeySpan{static_cast<std::uint32_t>(end - pk_buf_.data()) -
                                    static_cast<std::uint32_t>(partition_key.size()),
                                static_cast<std::uint32_t>(partition_key.size())});
    if (pk_table_.size() * 2 > pk_index_.size()) grow_index(pk_index_);
  }
  if (explicit_hash_key && p.ehk_found < 0) {
    ehk_index_[p.ehk_slot] = Slot{p.ehk_hash, static_cast<std::uint32_t>(ehk_index), generation_};
    ehk_keys_.push_back(*explicit_hash_key);
    ehk_table_.emplace_back(p.digits, p.digits_len);
    if (ehk_table_.size() * 2 > ehk_index_.size()) grow_index(ehk_index_);
  }
  // The Record message: field 1 (pk index), field 2 (ehk index, only with an EHK), field 3.
  const std::size_t at = rec_buf_.size();
  rec_buf_.resize(at + p.record_size);
  char* w = rec_buf_.data() + at;
  *w++ = 0x1A;
  w = detail::put_varint(w, p.record_inner);
  *w++ = 0x08;
  w = detail::put_varint(w, pk_index);
  if (ehk_index >= 0) {
    *w++ = 0x10;
    w = detail::put_varint(w, static_cast<std::uint64_t>(ehk_index));
  }
  detail::put_bytes_field(w, 0x1A, data);
  proto_size_ += p.added;
  if (count_ == 0) first_ = First{partition_key, data, hash_key};
  ++count_;
  return true;
}

void AggregateBuilder::serialize_aggregate(std::string& out, bool digest) const {
  const std::size_t start = out.size();
  out.resize(start + kAggregationOverhead + proto_size_);
  char* const base = out.data() + start;
  std::memcpy(base, kAggregationMagic.data(), kAggregationMagic.size());
  char* p = base + kAggregationMagic.size();
  char* const proto_begin = p;
  std::memcpy(p, pk_buf_.data(), pk_buf_.size());
  p += pk_buf_.size();
  for (const std::string& ehk : ehk_table_) p = detail::put_bytes_field(p, 0x12, ehk);
  std::memcpy(p, rec_buf_.data(), rec_buf_.size());
  p += rec_buf_.size();
  if (!digest) {
    std::memset(p, 0, 16);
    return;
  }
  const detail::Md5Digest d =
      detail::md5(std::string_view(proto_begin, static_cast<std::size_t>(p - proto_begin)));
  std::memcpy(p, d.data(), d.size());
}

void AggregateBuilder::digest_aggregates(std::span<std::string* const> aggregates) {
  constexpr std::size_t kMagic = kAggregationMagic.size();
  std::vector<std::string_view> protos;
  protos.reserve(aggregates.size());
  for (const std::string* a : aggregates)
    protos.emplace_back(a->data() + kMagic, a->size() - kAggregationOverhead);
  std::vector<detail::Md5Digest> digests(protos.size());
  detail::md5_many(protos, digests);
  for (std::size_t i = 0; i < aggregates.size(); ++i)
    std::memcpy(aggregates[i]->data() + aggregates[i]->size() - 16, digests[i].data(), 16);
}

KinesisRecord AggregateBuilder::build(bool digest) const {
  KinesisRecord r;
  if (count_ == 1) {
    // The KPL never emits a one-record aggregate: the record goes out as itself.
    r.partition_key.assign(first_.partition_key);
    r.explicit_hash_key = first_.hash_key.to_decimal();
    r.data.assign(first_.data);
    return r;
  }
  r.partition_key = "a";
  r.explicit_hash_key = first_.hash_key.to_decimal();
  r.data.reserve(kAggregationOverhead + proto_size_);
  serialize_aggregate(r.data, digest);
  return r;
}

void AggregateBuilder::clear() noexcept {
  count_ = 0;
  first_ = First{};
  pk_table_.clear();
  pk_buf_.clear();
  rec_buf_.clear();
  ehk_table_.clear();
  ehk_keys_.clear();
  // Empty both indexes in O(1): slots of older generations count as free.
  if (++generation_ == 0) {
    std::fill(pk_index_.begin(), pk_index_.end(), Slot{});
    std::fill(ehk_index_.begin(), ehk_index_.end(), Slot{});
    generation_ = 1;
  }
  proto_size_ = 0;
}

}  // namespace shardline
