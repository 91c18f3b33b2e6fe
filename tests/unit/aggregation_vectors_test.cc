// The KPL aggregation vectors (tests/testdata/kpl-aggregation): every vector decodes to its
// expected.json, and the real-KPL vectors 01 and 02 re-encode to identical bytes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/digest.h"
#include "shardline/aggregation.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using shardline::testing::read_file;
using shardline::testing::testdata;

struct Vector {
  std::string name;
  std::string blob;
  nlohmann::json expected;
};

Vector load(const std::string& name) {
  std::string b64 = read_file(testdata("kpl-aggregation/" + name + ".b64"));
  while (!b64.empty() && (b64.back() == '\n' || b64.back() == '\r')) b64.pop_back();
  auto blob = detail::base64_decode(b64);
  if (!blob) throw std::runtime_error("bad base64 in " + name);
  return {name, *blob,
          nlohmann::json::parse(read_file(testdata("kpl-aggregation/" + name + ".expected.json")))};
}

const std::vector<std::string> kVectors = {"01_kpl_4rec_with_ehk",
                                           "02_kpl_8rec_no_ehk",
                                           "03_kpl_via_kda_4rec_same_pk_ehk",
                                           "04_kpl_via_kda_non_aggregated",
                                           "05_java_sample_lambda_event_100rec",
                                           "06_fanout_0rec_empty_aggregate",
                                           "07_fanout_1rec",
                                           "08_fanout_2rec"};

class VectorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VectorTest, DecodesToExpected) {
  const Vector v = load(GetParam());
  const auto& e = v.expected;
  ASSERT_EQ(v.blob.size(), e["total_len"].get<std::size_t>());
  Deaggregator d;
  std::vector<UserRecordView> out;
  const DecodeSummary s = d.decode({v.blob, "outer-pk", std::nullopt}, out);
  if (!e["aggregated"].get<bool>()) {
    EXPECT_EQ(s.kind, BlobKind::kPlain);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FALSE(out[0].aggregated);
    EXPECT_EQ(out[0].data, v.blob);
    EXPECT_EQ(out[0].partition_key, "outer-pk");
    EXPECT_TRUE(s.status().ok());
    return;
  }
  ASSERT_EQ(s.kind, BlobKind::kAggregated) << s.detail;
  const auto& recs = e["records"];
  ASSERT_EQ(out.size(), recs.size());
  EXPECT_EQ(s.user_records, recs.size());
  EXPECT_EQ(detail::to_hex(
                reinterpret_cast<const unsigned char*>(v.blob.data()) + v.blob.size() - 16, 16),
            e["md5_hex"].get<std::string>());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& r = recs[i];
    SCOPED_TRACE("record " + std::to_string(i));
    EXPECT_TRUE(out[i].aggregated);
    EXPECT_EQ(out[i].sub_sequence_number, r["sub_sequence_number"].get<std::uint64_t>());
    EXPECT_EQ(out[i].partition_key, r["partition_key"].get<std::string>());
    if (r["explicit_hash_key"].is_null()) {
      EXPECT_FALSE(out[i].explicit_hash_key.has_value());
    } else {
      ASSERT_TRUE(out[i].explicit_hash_key.has_value());
      EXPECT_EQ(*out[i].explicit_hash_key, r["explicit_hash_key"].get<std::string>());
    }
    EXPECT_EQ(detail::base64_encode(out[i].data), r["data_b64"].get<std::string>());
    // The effective hash key: the EHK when present, else MD5 of the partition key.
    const HashKey effective = out[i].explicit_hash_key
                                  ? *HashKey::parse_decimal(*out[i].explicit_hash_key)
                                  : HashKey::from_partition_key(out[i].partition_key);
    EXPECT_EQ(effective.to_decimal(), r["effective_hash_key"].get<std::string>());
  }
  EXPECT_TRUE(is_aggregated(v.blob));
}

INSTANTIATE_TEST_SUITE_P(KplVectors, VectorTest, ::testing::ValuesIn(kVectors));

// Re-encode a vector's records with the writer and compare bytes with the real KPL output.
void expect_reencodes_identically(const std::string& name) {
  const Vector v = load(name);
  AggregateBuilder b;
  std::vector<std::string> pks, datas;
  for (const auto& r : v.expected["records"]) {
    pks.push_back(r["partition_key"].get<std::string>());
    datas.push_back(*detail::base64_decode(r["data_b64"].get<std::string>()));
  }
  std::size_t i = 0;
  HashKey first;
  for (const auto& r : v.expected["records"]) {
    std::optional<HashKey> ehk;
    if (!r["explicit_hash_key"].is_null())
      ehk = *HashKey::parse_decimal(r["explicit_hash_key"].get<std::string>());
    ASSERT_TRUE(b.fits(pks[i], ehk, datas[i].size()));
    b.add(pks[i], ehk, datas[i]);
    if (i == 0) first = ehk ? *ehk : HashKey::from_partition_key(pks[0]);
    ++i;
  }
  EXPECT_EQ(b.size(), v.blob.size());
  const KinesisRecord k = b.build();
  EXPECT_EQ(k.data, v.blob) << "writer output differs from the KPL's bytes for " << name;
  EXPECT_EQ(k.partition_key, "a");
  EXPECT_EQ(k.explicit_hash_key, first.to_decimal());
}

TEST(AggregateWriter, ReencodesKplVector01WithExplicitHashKeys) {
  expect_reencodes_identically("01_kpl_4rec_with_ehk");
}
TEST(AggregateWriter, ReencodesKplVector02WithoutExplicitHashKeys) {
  expect_reencodes_identically("02_kpl_8rec_no_ehk");
}
TEST(AggregateWriter, ReencodesSharedKeyVector03WithDedupedTables) {
  expect_reencodes_identically("03_kpl_via_kda_4rec_same_pk_ehk");
}
TEST(AggregateWriter, ReencodesTwoRecordVector08) {
  expect_reencodes_identically("08_fanout_2rec");
}

}  // namespace
}  // namespace shardline
