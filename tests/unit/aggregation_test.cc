// Writer and reader behaviour beyond the published vectors: negative vectors derived from the
// real ones, limits, hash-range filtering, and size accounting.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "aggregation/proto_wire.h"
#include "core/digest.h"
#include "shardline/aggregation.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using shardline::testing::read_file;
using shardline::testing::testdata;

std::string vector_blob(const std::string& name) {
  std::string b64 = read_file(testdata("kpl-aggregation/" + name + ".b64"));
  while (!b64.empty() && (b64.back() == '\n' || b64.back() == '\r')) b64.pop_back();
  return *detail::base64_decode(b64);
}

// magic + proto + MD5(proto): a well-formed envelope around arbitrary protobuf bytes.
std::string envelope(const std::string& proto) {
  const auto d = detail::md5(proto);
  return std::string(kAggregationMagic) + proto + std::string(d.begin(), d.end());
}

std::string proto_of(const std::string& blob) { return blob.substr(4, blob.size() - 20); }

// Views in `out` point into `blob`: temporaries are refused so a view can never dangle.
DecodeSummary decode(const std::string&& blob, std::vector<UserRecordView>& out,
                     DeaggregateOptions opts = {}) = delete;
DecodeSummary decode(const std::string& blob, std::vector<UserRecordView>& out,
                     DeaggregateOptions opts = {}) {
  Deaggregator d(opts);
  out.clear();
  return d.decode({blob, "outer", std::string_view("42")}, out);
}

void expect_raw_pass_through(const std::vector<UserRecordView>& out, const std::string& blob) {
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].aggregated);
  EXPECT_EQ(out[0].data, blob);
  EXPECT_EQ(out[0].partition_key, "outer");
  ASSERT_TRUE(out[0].explicit_hash_key.has_value());
  EXPECT_EQ(*out[0].explicit_hash_key, "42");
}

// ---- negative vectors ----------------------------------------------------------------------

TEST(Deaggregator, BadMd5PassesThroughRaw) {
  std::string blob = vector_blob("08_fanout_2rec");
  blob.back() = static_cast<char>(blob.back() ^ 0x01);
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out);
  EXPECT_EQ(s.kind, BlobKind::kInvalidAggregate);
  EXPECT_EQ(s.detail, "md5 mismatch");
  EXPECT_TRUE(s.status().ok());
  expect_raw_pass_through(out, blob);
  EXPECT_FALSE(is_aggregated(blob));
}

TEST(Deaggregator, TruncationInsideARecordPassesThroughRaw) {
  // Cut the last record's data short and fix the MD5, so only the protobuf is broken.
  std::string proto = proto_of(vector_blob("08_fanout_2rec"));
  proto.resize(proto.size() - 5);
  const std::string blob = envelope(proto);
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out);
  EXPECT_EQ(s.kind, BlobKind::kInvalidAggregate);
  EXPECT_EQ(s.detail, "protobuf parse error");
  expect_raw_pass_through(out, blob);
}

TEST(Deaggregator, TruncatedBlobWithoutFixedMd5PassesThrough) {
  const std::string full = vector_blob("01_kpl_4rec_with_ehk");
  for (std::size_t cut : {full.size() - 1, full.size() / 2, std::size_t{21}}) {
    const std::string blob = full.substr(0, cut);
    std::vector<UserRecordView> out;
    const auto s = decode(blob, out);
    EXPECT_EQ(s.kind, BlobKind::kInvalidAggregate) << cut;
    expect_raw_pass_through(out, blob);
  }
}

TEST(Deaggregator, BadWireTypePassesThroughRaw) {
  // A field with wire type 7 (invalid) ahead of a valid table entry.
  const std::string proto = std::string("\x0F\x01", 2) + std::string("\x0A\x01k", 3);
  const std::string blob = envelope(proto);
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out);
  EXPECT_EQ(s.kind, BlobKind::kInvalidAggregate);
  expect_raw_pass_through(out, blob);
}

TEST(Deaggregator, PartitionKeyIndexOutOfRangeIsDataLoss) {
  // pk table ["k"], one record with partition_key_index = 5.
  const std::string rec = std::string("\x08\x05\x1A\x01x", 5);
  const std::string proto = std::string("\x0A\x01k", 3) + "\x1A" + char(rec.size()) + rec;
  const std::string blob = envelope(proto);
  for (bool kcl_exact : {false, true}) {
    std::vector<UserRecordView> out;
    DeaggregateOptions o;
    o.kcl_exact = kcl_exact;
    const auto s = decode(blob, out, o);
    EXPECT_EQ(s.kind, BlobKind::kCorruptAggregate);
    EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(s.status().message().find("partition key index out of range"), std::string::npos);
    // Never a silent truncation: the whole Kinesis record comes back raw.
    expect_raw_pass_through(out, blob);
  }
}

TEST(Deaggregator, ExplicitHashKeyIndexOutOfRangeIsDataLoss) {
  const std::string rec = std::string("\x08\x00\x10\x03\x1A\x01x", 7);
  const std::string proto =
      std::string("\x0A\x01k\x12\x01\x37", 6) + "\x1A" + char(rec.size()) + rec;
  const std::string blob = envelope(proto);
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out);
  EXPECT_EQ(s.kind, BlobKind::kCorruptAggregate);
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
  expect_raw_pass_through(out, blob);
}

TEST(Deaggregator, MissingRequiredDataIsDataLossOrPlainInKclExactMode) {
  const std::string rec = std::string("\x08\x00", 2);  // no data field
  const std::string proto = std::string("\x0A\x01k", 3) + "\x1A" + char(rec.size()) + rec;
  const std::string blob = envelope(proto);
  std::vector<UserRecordView> out;
  auto s = decode(blob, out);
  EXPECT_EQ(s.kind, BlobKind::kCorruptAggregate);
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
  expect_raw_pass_through(out, blob);
  DeaggregateOptions kcl;
  kcl.kcl_exact = true;
  s = decode(blob, out, kcl);  // Java's parser rejects it, so the KCL passes it through
  EXPECT_EQ(s.kind, BlobKind::kInvalidAggregate);
  expect_raw_pass_through(out, blob);
}

TEST(Deaggregator, MissingPartitionKeyIndexIsDataLoss) {
  const std::string rec = std::string("\x1A\x01x", 3);
  const std::string proto = std::string("\x0A\x01k", 3) + "\x1A" + char(rec.size()) + rec;
  const std::string blob = envelope(proto);
  std::vector<UserRecordView> out;
  EXPECT_EQ(decode(blob, out).kind, BlobKind::kCorruptAggregate);
}

TEST(Deaggregator, ZeroRecordAggregateYieldsNothing) {
  // A valid aggregate (more than 16 bytes after the magic) that holds only a key table.
  const std::string blob = envelope(std::string("\x0A\x01k", 3));
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out);
  EXPECT_EQ(s.kind, BlobKind::kAggregated);
  EXPECT_EQ(s.user_records, 0u);
  EXPECT_TRUE(out.empty());
}

TEST(Deaggregator, TwentyByteBlobIsPlain) {
  const std::string blob = vector_blob("06_fanout_0rec_empty_aggregate");
  ASSERT_EQ(blob.size(), 20u);
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out);
  EXPECT_EQ(s.kind, BlobKind::kPlain);
  expect_raw_pass_through(out, blob);
}

TEST(Deaggregator, ShortAndEmptyDataArePlain) {
  for (std::string blob :
       {std::string(), std::string("\xF3\x89", 2), std::string(kAggregationMagic)}) {
    std::vector<UserRecordView> out;
    EXPECT_EQ(decode(blob, out).kind, BlobKind::kPlain);
    expect_raw_pass_through(out, blob);
  }
}

TEST(Deaggregator, RecordWithoutEhkIndexHasNoExplicitHashKeyEvenWhenTableIsNonEmpty) {
  // Python/Node attribute ehk_table[0] (the proto default) here; the KCL and we do not.
  AggregateBuilder b;
  const std::string d1 = "one", d2 = "two";
  b.add("pk-1", HashKey(0, 7), d1);
  b.add("pk-2", std::nullopt, d2);
  const KinesisRecord k = b.build();
  std::vector<UserRecordView> out;
  ASSERT_EQ(decode(k.data, out).kind, BlobKind::kAggregated);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].explicit_hash_key.has_value());
  EXPECT_EQ(*out[0].explicit_hash_key, "7");
  EXPECT_FALSE(out[1].explicit_hash_key.has_value());
}

TEST(Deaggregator, UnknownFieldsAndTagsAreSkipped) {
  // Record with a tag (field 4) and an unknown varint field 9; top-level unknown fixed64.
  const std::string tag = std::string("\x0A\x02tk\x12\x02tv", 8);
  const std::string rec =
      std::string("\x08\x00\x1A\x01x\x22", 6) + char(tag.size()) + tag + std::string("\x48\x01", 2);
  const std::string proto = std::string("\x0A\x01k", 3) + "\x1A" + char(rec.size()) + rec +
                            std::string("\x21", 1) + std::string(8, '\x01');
  const std::string blob = envelope(proto);
  std::vector<UserRecordView> out;
  ASSERT_EQ(decode(blob, out).kind, BlobKind::kAggregated);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, "x");
}

TEST(Deaggregator, TagWithoutKeyIsAMissingRequiredField) {
  const std::string tag = std::string("\x12\x02tv", 4);
  const std::string rec = std::string("\x08\x00\x1A\x01x\x22", 6) + char(tag.size()) + tag;
  const std::string proto = std::string("\x0A\x01k", 3) + "\x1A" + char(rec.size()) + rec;
  const std::string blob = envelope(proto);
  std::vector<UserRecordView> out;
  EXPECT_EQ(decode(blob, out).kind, BlobKind::kCorruptAggregate);
}

// ---- hash-range filtering ------------------------------------------------------------------

struct FilterFixture : ::testing::Test {
  void SetUp() override {
    // Two user records on opposite halves of the hash space.
    b.add("low", HashKey(0, 10), d1);
    b.add("high", HashKey::max(), d2);
    blob = b.build().data;
  }
  AggregateBuilder b;
  std::string d1 = "low-data", d2 = "high-data", blob;
};

TEST_F(FilterFixture, PerRecordFilterKeepsInRangeRecords) {
  DeaggregateOptions o;
  o.shard_range = even_split_range(0, 2);
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out, o);
  EXPECT_EQ(s.kind, BlobKind::kAggregated);
  EXPECT_EQ(s.filtered_out, 1u);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, "low-data");
  EXPECT_EQ(out[0].sub_sequence_number, 0u);
}

TEST_F(FilterFixture, KclExactFilterDropsTheWholeAggregate) {
  DeaggregateOptions o;
  o.shard_range = even_split_range(1, 2);
  o.kcl_exact = true;
  std::vector<UserRecordView> out;
  const auto s = decode(blob, out, o);
  EXPECT_EQ(s.filtered_out, 2u);
  EXPECT_TRUE(out.empty());
  o.kcl_exact = false;
  decode(blob, out, o);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, "high-data");
  EXPECT_EQ(out[0].sub_sequence_number, 1u);
}

TEST(DeaggregatorFilter, RepeatedKeysAreDecidedPerKeyAndAcrossAggregates) {
  // Many user records share a few partition keys and explicit hash keys (indexed tables); the
  // filter decides each key once per aggregate, and a second aggregate with other tables
  // must not reuse the first one's decisions.
  const HashKeyRange low = even_split_range(0, 2);
  std::vector<std::string> keys = {"user-1", "user-2", "user-3", "user-4", "user-5", "user-6"};
  std::vector<std::string> data;
  for (int i = 0; i < 60; ++i) data.push_back("d" + std::to_string(i));
  Deaggregator d({low, false});  // one reader for both aggregates, as a shard consumer uses it
  auto expect_filtered = [&](const std::string& blob, std::size_t want_kept,
                             const std::vector<bool>& in_low) {
    std::vector<UserRecordView> out;
    const auto s = d.decode({blob, "a", std::nullopt}, out);
    EXPECT_EQ(out.size(), want_kept);
    EXPECT_EQ(out.size() + s.filtered_out, in_low.size());
    std::size_t j = 0;
    for (std::size_t i = 0; i < in_low.size(); ++i) {
      if (!in_low[i]) continue;
      ASSERT_LT(j, out.size());
      EXPECT_EQ(out[j++].sub_sequence_number, i);
    }
  };
  for (int round = 0; round < 2; ++round) {
    AggregateBuilder b;
    std::vector<bool> in_low;
    std::size_t kept = 0;
    for (int i = 0; i < 60; ++i) {
      const auto& pk = keys[static_cast<std::size_t>((i + round) % 6)];
      std::optional<HashKey> ehk;
      if (i % 5 == 0) ehk = (i % 10 == 0) ? HashKey(1, 0) : HashKey::max();
      b.add(pk, ehk, data[static_cast<std::size_t>(i)]);
      const bool in = low.contains(ehk ? *ehk : HashKey::from_partition_key(pk));
      in_low.push_back(in);
      kept += in ? 1 : 0;
    }
    expect_filtered(b.build().data, kept, in_low);
  }
}

TEST_F(FilterFixture, FullRangeKeepsEverything) {
  DeaggregateOptions o;
  o.shard_range = HashKeyRange{};
  std::vector<UserRecordView> out;
  EXPECT_EQ(decode(blob, out, o).filtered_out, 0u);
  EXPECT_EQ(out.size(), 2u);
}

TEST(Deaggregator, FilterUsesMd5OfPartitionKeyWithoutEhk) {
  // "abcd" hashes to 0xE2FC...: in the upper half of a 2-shard stream.
  AggregateBuilder b;
  const std::string d = "x";
  b.add("abcd", std::nullopt, d);
  b.add("abcd", std::nullopt, d);
  const std::string blob = b.build().data;
  DeaggregateOptions o;
  o.shard_range = even_split_range(0, 2);
  std::vector<UserRecordView> out;
  EXPECT_EQ(decode(blob, out, o).filtered_out, 2u);
  o.shard_range = even_split_range(1, 2);
  EXPECT_EQ(decode(blob, out, o).filtered_out, 0u);
}

// ---- writer ----------------------------------------------------------------------------------

TEST(AggregateWriter, SingleRecordIsSentPlainWithItsOwnKeys) {
  AggregateBuilder b;
  const std::string data = "payload";
  b.add("abcd", std::nullopt, data);
  EXPECT_EQ(b.size(), data.size());
  const KinesisRecord k = b.build();
  EXPECT_EQ(k.data, data);
  EXPECT_EQ(k.partition_key, "abcd");
  EXPECT_EQ(k.explicit_hash_key, "301716283811389038011477436469853762335");
  AggregateBuilder e;
  e.add("pk", HashKey(0, 123), data);
  EXPECT_EQ(e.build().explicit_hash_key, "123");
}

TEST(AggregateWriter, NormalisesExplicitHashKeysToCanonicalDecimal) {
  AggregateBuilder b;
  const std::string d = "x";
  b.add("p", *HashKey::parse_decimal("000123"), d);
  b.add("q", *HashKey::parse_decimal("123"), d);
  const std::string blob = b.build().data;
  std::vector<UserRecordView> out;
  decode(blob, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(*out[0].explicit_hash_key, "123");
  EXPECT_EQ(out[0].explicit_hash_key->data(), out[1].explicit_hash_key->data())
      << "equal keys share one table entry";
}

TEST(AggregateWriter, DedupsPartitionKeysInFirstUseOrder) {
  AggregateBuilder b;
  const std::string d = "x";
  for (const char* pk : {"b", "a", "b", "c", "a"}) b.add(pk, std::nullopt, d);
  const std::string proto = proto_of(b.build().data);
  // Table: "b", "a", "c" then records.
  EXPECT_EQ(proto.substr(0, 9), std::string("\x0A\x01"
                                            "b\x0A\x01"
                                            "a\x0A\x01"
                                            "c",
                                            9));
}

TEST(AggregateWriter, SizeIsExactForRandomRecords) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    AggregateBuilder b(AggregationLimits{10485760, 1000000, kLargestMaxRecordSize});
    std::vector<std::string> keys, datas;
    const int n = 2 + static_cast<int>(rng() % 300);
    keys.reserve(n);
    datas.reserve(n);
    for (int i = 0; i < n; ++i) {
      keys.push_back("k" + std::to_string(rng() % 50));
      datas.push_back(std::string(rng() % (trial % 3 == 0 ? 40000 : 200), 'd'));
      std::optional<HashKey> ehk;
      if (rng() % 3 == 0) ehk = HashKey(rng() % 4 == 0 ? 0 : rng(), rng());
      b.add(keys.back(), ehk, datas.back());
      if (i < 4 || i % 29 == 0 || i == n - 1)  // every size class, without O(n^2) rebuilding
        ASSERT_EQ(b.size(), b.build().data.size()) << "trial " << trial << " record " << i;
    }
  }
}

TEST(AggregateWriter, NeverExceedsMaxSize) {
  for (std::size_t max : {64u, 200u, 1000u, 51200u}) {
    AggregateBuilder b(AggregationLimits{max, 4294967295ULL, kDefaultMaxRecordSize});
    std::mt19937 rng(static_cast<unsigned>(max));
    std::vector<std::string> datas;
    datas.reserve(5000);
    std::size_t emitted = 0;
    for (int i = 0; i < 5000; ++i) {
      datas.push_back(std::string(rng() % 60, 'z'));
      const std::string_view pk = i % 2 ? "even" : "odd";
      if (!b.fits(pk, std::nullopt, datas.back().size())) {
        // fits() is exact both ways: adding the record would really break the limit.
        AggregateBuilder probe = b;
        probe.add(pk, std::nullopt, datas.back());
        EXPECT_GT(probe.aggregated_size(), max);
        const KinesisRecord k = b.build();
        if (b.count() > 1) EXPECT_LE(k.data.size(), max);
        ++emitted;
        b.clear();
      }
      b.add(pk, std::nullopt, datas.back());
    }
    EXPECT_GT(emitted, 0u);
  }
}

TEST(AggregateWriter, HonoursMaxCount) {
  AggregateBuilder b(AggregationLimits{51200, 3, kDefaultMaxRecordSize});
  const std::string d = "x";
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.fits("k", std::nullopt, 1));
    b.add("k", std::nullopt, d);
  }
  EXPECT_FALSE(b.fits("k", std::nullopt, 1));
}

TEST(AggregateWriter, HonoursTheStreamRecordLimitWithTheOuterKey) {
  // max_size allows 10 MiB, but the stream takes 1 MiB including the outer key "a".
  AggregateBuilder b(AggregationLimits{kLargestMaxRecordSize, 100, kDefaultMaxRecordSize});
  const std::string half(kDefaultMaxRecordSize / 2, 'h');
  b.add("k", std::nullopt, half);
  EXPECT_FALSE(b.fits("k", std::nullopt, half.size()));
  const std::size_t room = kDefaultMaxRecordSize - 1 - b.aggregated_size();
  // Find the largest data size that fits and check it lands exactly on the limit.
  std::size_t lo = 0, hi = room;
  while (lo < hi) {
    const std::size_t mid = (lo + hi + 1) / 2;
    if (b.fits("k", std::nullopt, mid))
      lo = mid;
    else
      hi = mid - 1;
  }
  const std::string fill(lo, 'f');
  b.add("k", std::nullopt, fill);
  EXPECT_LE(b.size() + 1, kDefaultMaxRecordSize);
  EXPECT_GT(b.size() + 1 + 1, kDefaultMaxRecordSize - 4) << "packing should be tight";
}

TEST(AggregateWriter, OuterHashKeyIsTheFirstRecordsKey) {
  AggregateBuilder b;
  const std::string d = "x";
  b.add("abcd", std::nullopt, d);
  b.add("other", HashKey(1, 2), d);
  const KinesisRecord k = b.build();
  EXPECT_EQ(k.partition_key, "a");
  EXPECT_EQ(k.explicit_hash_key, "301716283811389038011477436469853762335");
}

TEST(AggregateWriter, ClearResetsEverything) {
  AggregateBuilder b;
  const std::string d = "x";
  b.add("p", HashKey(0, 1), d);
  b.add("q", std::nullopt, d);
  b.clear();
  EXPECT_TRUE(b.empty());
  b.add("r", std::nullopt, d);
  b.add("s", std::nullopt, d);
  const std::string blob = b.build().data;
  std::vector<UserRecordView> out;
  decode(blob, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].partition_key, "r");
  EXPECT_FALSE(out[0].explicit_hash_key.has_value());
}

// ---- validation ------------------------------------------------------------------------------

TEST(ValidateUserRecord, AcceptsAndReturnsTheHashKey) {
  auto k = validate_user_record("abcd", std::nullopt, 10);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->to_decimal(), "301716283811389038011477436469853762335");
  auto e = validate_user_record("abcd", std::string_view("0123"), 10);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->to_decimal(), "123") << "leading zeros are decimal, never octal";
}

// check_user_record: the same verdicts as validate_user_record, and only an explicit hash key
// comes back (the producer hashes partition keys later, in bulk).
TEST(ValidateUserRecord, CheckAgreesWithValidateAndReturnsOnlyTheExplicitKey) {
  const std::string long_key(257, 'k');
  const std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
      {"abcd", std::nullopt},
      {"abcd", "0123"},
      {"", std::nullopt},
      {long_key, std::nullopt},
      {"bad\xC3", std::nullopt},
      {"k", "0x10"},
      {"k", "340282366920938463463374607431768211455"}};
  for (const auto& [pk, ehk] : cases) {
    const auto ehk_view = ehk ? std::optional<std::string_view>(*ehk) : std::nullopt;
    auto v = validate_user_record(pk, ehk_view, 10);
    auto c = check_user_record(pk, ehk_view, 10);
    ASSERT_EQ(v.ok(), c.ok()) << pk;
    if (!v.ok()) {
      EXPECT_EQ(v.status().message(), c.status().message());
      continue;
    }
    EXPECT_EQ(c->has_value(), ehk.has_value());
    if (*c) EXPECT_EQ(**c, *v);
  }
  EXPECT_FALSE(check_user_record("k", std::nullopt, 11, 10).ok()) << "over the record size";
}

TEST(ValidateUserRecord, RejectsBadPartitionKeys) {
  EXPECT_EQ(validate_user_record("", std::nullopt, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(validate_user_record(std::string(256, 'k'), std::nullopt, 1).ok());
  EXPECT_FALSE(validate_user_record(std::string(257, 'k'), std::nullopt, 1).ok());
  // 128 four-byte characters are 256 UTF-16 units; 129 are too many.
  std::string emoji;
  for (int i = 0; i < 128; ++i) emoji += "\xF0\x9F\x98\x80";
  EXPECT_TRUE(validate_user_record(emoji, std::nullopt, 1).ok());
  EXPECT_FALSE(validate_user_record(emoji + "\xF0\x9F\x98\x80", std::nullopt, 1).ok());
  EXPECT_FALSE(validate_user_record("bad\xC3", std::nullopt, 1).ok());
  EXPECT_FALSE(validate_user_record("\xC0\x80", std::nullopt, 1).ok()) << "overlong";
  EXPECT_FALSE(validate_user_record("\xED\xA0\x80", std::nullopt, 1).ok()) << "surrogate";
}

TEST(ValidateUserRecord, RejectsBadExplicitHashKeys) {
  for (const char* bad :
       {"0x10", "-1", "1.0", " 1", "1 ", "", "abc", "340282366920938463463374607431768211456"}) {
    EXPECT_FALSE(validate_user_record("k", std::string_view(bad), 1).ok()) << bad;
  }
  EXPECT_TRUE(
      validate_user_record("k", std::string_view("340282366920938463463374607431768211455"), 1)
          .ok());
}

TEST(ValidateUserRecord, ChecksPartitionKeyPlusDataAgainstTheRecordLimit) {
  EXPECT_TRUE(validate_user_record("kk", std::nullopt, kDefaultMaxRecordSize - 2).ok());
  const auto s = validate_user_record("kk", std::nullopt, kDefaultMaxRecordSize - 1);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("1048576"), std::string::npos);
  EXPECT_TRUE(validate_user_record("kk", std::nullopt, 5 * 1048576, kLargestMaxRecordSize).ok());
}

}  // namespace
}  // namespace shardline
