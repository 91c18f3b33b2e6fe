// Extended sequence numbers: the KCL's order, validation, checkpoint error names.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shardline/consumer.h"
#include "shardline/lease_store.h"

namespace shardline {
namespace {

ExtendedSequenceNumber esn(std::string s, std::int64_t sub = 0) { return {std::move(s), sub}; }

// compare() is a total order: antisymmetric, and equal means equal both ways.
void expect_less(const ExtendedSequenceNumber& a, const ExtendedSequenceNumber& b) {
  EXPECT_LT(compare(a, b), 0) << a.sequence_number << "/" << a.sub_sequence_number << " < "
                              << b.sequence_number << "/" << b.sub_sequence_number;
  EXPECT_GT(compare(b, a), 0) << b.sequence_number << "/" << b.sub_sequence_number << " > "
                              << a.sequence_number << "/" << a.sub_sequence_number;
}
void expect_equal(const ExtendedSequenceNumber& a, const ExtendedSequenceNumber& b) {
  EXPECT_EQ(compare(a, b), 0) << a.sequence_number << "/" << a.sub_sequence_number
                              << " == " << b.sequence_number << "/" << b.sub_sequence_number;
  EXPECT_EQ(compare(b, a), 0);
}

TEST(SequenceNumberOrder, SentinelsAroundSequenceNumbersAsTheKcl) {
  // AT_TIMESTAMP < TRIM_HORIZON < LATEST < any sequence number < SHARD_END.
  const std::vector<ExtendedSequenceNumber> ordered = {
      esn(std::string(kCheckpointAtTimestamp)),
      esn(std::string(kCheckpointTrimHorizon)),
      esn(std::string(kCheckpointLatest)),
      esn("0"),
      esn("1"),
      esn("49590338271490256608559692538361571095921575989136588898"),
      esn(std::string(129, '9')),
      esn(std::string(kCheckpointShardEnd)),
  };
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    expect_equal(ordered[i], ordered[i]);
    for (std::size_t j = i + 1; j < ordered.size(); ++j) expect_less(ordered[i], ordered[j]);
  }
  // A sentinel's sub-sequence number does not lift it past the next rank.
  expect_less(esn(std::string(kCheckpointLatest), 999), esn("0"));
  expect_less(esn(std::string(kCheckpointTrimHorizon), 5), esn(std::string(kCheckpointLatest)));
  expect_less(esn(std::string(129, '9'), 7), esn(std::string(kCheckpointShardEnd)));
}

TEST(SequenceNumberOrder, NumericAcrossLengthsAndLeadingZeros) {
  expect_less(esn("9"), esn("10"));
  expect_less(esn("99"), esn("100"));
  expect_less(esn("0"), esn("1"));
  // Lexical order would get these wrong.
  expect_less(esn("2"), esn("11"));
  expect_less(esn("4959033827149025660855969253836157109592157598913658889"),
              esn("49590338271490256608559692538361571095921575989136588898"));
  expect_less(esn("49590338271490256608559692538361571095921575989136588898"),
              esn("49590338271490256608559692538361571095921575989136588899"));
  // Leading zeros do not change the value.
  expect_equal(esn("0007"), esn("7"));
  expect_equal(esn("000"), esn("0"));
  expect_less(esn("0009"), esn("10"));
  expect_less(esn("9"), esn("00010"));
  expect_less(esn("00000000000000000000000000000001"), esn("2"));
}

TEST(SequenceNumberOrder, SubSequenceBreaksTies) {
  expect_less(esn("5", 0), esn("5", 1));
  expect_less(esn("5", 1), esn("5", 2));
  expect_equal(esn("5", 3), esn("5", 3));
  expect_equal(esn("005", 3), esn("5", 3));
  // The sequence number decides first.
  expect_less(esn("5", 1000), esn("6", 0));
  expect_less(esn("10", 0), esn("11", 0));
  expect_less(esn(std::string(kCheckpointShardEnd), 0), esn(std::string(kCheckpointShardEnd), 1));
}

TEST(SequenceNumberOrder, SentinelDetection) {
  EXPECT_TRUE(esn("TRIM_HORIZON").is_sentinel());
  EXPECT_TRUE(esn("LATEST").is_sentinel());
  EXPECT_TRUE(esn("AT_TIMESTAMP").is_sentinel());
  EXPECT_TRUE(esn("SHARD_END").is_sentinel());
  EXPECT_FALSE(esn("12345").is_sentinel());
  EXPECT_FALSE(esn("latest").is_sentinel());
  EXPECT_FALSE(esn("").is_sentinel());
}

TEST(SequenceNumberValidation, AcceptsSentinelsAndDecimals) {
  for (const char* s : {"TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "SHARD_END", "0", "1", "007",
                        "49590338271490256608559692538361571095921575989136588898"}) {
    EXPECT_TRUE(validate_extended_sequence_number(esn(s)).ok()) << s;
    EXPECT_TRUE(validate_extended_sequence_number(esn(s, 12)).ok()) << s;
  }
  // Kinesis' pattern is 0|([1-9]\d{0,128}): up to 129 digits.
  EXPECT_TRUE(validate_extended_sequence_number(esn(std::string(129, '9'))).ok());
}

TEST(SequenceNumberValidation, RejectsMalformed) {
  for (const std::string& s :
       {std::string(), std::string("abc"), std::string("12a"), std::string(" 1"), std::string("1 "),
        std::string("-1"), std::string("+1"), std::string("1.0"), std::string("0x10"),
        std::string("latest"), std::string("Shard_End"), std::string(130, '9'),
        std::string("1\n")}) {
    Status st = validate_extended_sequence_number(esn(s));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << "'" << s << "'";
  }
  EXPECT_EQ(validate_extended_sequence_number(esn("12", -1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(validate_extended_sequence_number(esn("LATEST", -1)).code(),
            StatusCode::kInvalidArgument);
}

TEST(CheckpointErrorName, MapsStatusCodesToTheKclExceptions) {
  EXPECT_EQ(checkpoint_error_name(Status()), "");
  EXPECT_EQ(checkpoint_error_name(Status::failed_precondition("not held")), "ShutdownException");
  EXPECT_EQ(checkpoint_error_name(Status::resource_exhausted("throttled")), "ThrottlingException");
  EXPECT_EQ(checkpoint_error_name(Status::not_found("no table")), "InvalidStateException");
  EXPECT_EQ(checkpoint_error_name(Status::invalid_argument("bad")), "IllegalArgumentException");
  EXPECT_EQ(checkpoint_error_name(Status::out_of_range("bad")), "IllegalArgumentException");
  EXPECT_EQ(checkpoint_error_name(Status::unavailable("down")),
            "KinesisClientLibDependencyException");
  EXPECT_EQ(checkpoint_error_name(Status::internal("broken")),
            "KinesisClientLibDependencyException");
}

}  // namespace
}  // namespace shardline
