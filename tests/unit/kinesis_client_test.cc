// The Kinesis client's request builders, response parsers and wire behaviour (against a
// scripted loopback server: no emulator needed).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "aws/event_stream.h"
#include "aws/service_client.h"
#include "core/digest.h"
#include "shardline/dynamodb.h"
#include "shardline/kinesis.h"
#include "support/loopback_http_server.h"
#include "support/test_util.h"

namespace shardline {
namespace {

using namespace std::chrono_literals;
using shardline::testing::LoopbackHttpServer;
using shardline::testing::LoopbackRequest;
using shardline::testing::LoopbackResponse;

TEST(StreamRef, NameOrArn) {
  const StreamRef a("events");
  EXPECT_EQ(a.name, "events");
  EXPECT_TRUE(a.arn.empty());
  const StreamRef b("arn:aws:kinesis:us-east-1:123456789012:stream/events");
  EXPECT_TRUE(b.name.empty());
  EXPECT_EQ(b.display(), "arn:aws:kinesis:us-east-1:123456789012:stream/events");
}

// A body with spare capacity is parsed in place; the result is the same as from a copy.
TEST(KinesisParse, GetRecordsParsedInPlaceWhenPadded) {
  std::string body;
  body.reserve(4096);
  body = R"({"Records":[{"Data":"aGVsbG8gd29ybGQ=","PartitionKey":"p","SequenceNumber":"1"}],)"
         R"("MillisBehindLatest":7,"NextShardIterator":"it"})";
  ASSERT_GE(body.capacity(), body.size() + 64);
  auto in_place = detail::parse_get_records(body, body.capacity());
  auto copied = detail::parse_get_records(body);
  ASSERT_TRUE(in_place.ok()) << in_place.status().to_string();
  ASSERT_TRUE(copied.ok());
  ASSERT_EQ(in_place->records.size(), 1u);
  EXPECT_EQ(in_place->records[0].data, "hello world");
  EXPECT_EQ(in_place->records[0].data, copied->records[0].data);
  EXPECT_EQ(in_place->millis_behind_latest, 7);
  EXPECT_EQ(in_place->next_shard_iterator, copied->next_shard_iterator);
}

// parse_get_records() decodes the Data strings straight from the body and gives the DOM parser
// the rest; on every body, ordinary or odd, its result (or its error) is the DOM parser's.
// Ordinary and odd GetRecords bodies: each one either compacts or needs the DOM parser.
const std::vector<std::string>& odd_bodies() {
  static const std::vector<std::string> bodies = {
      R"({"Records":[{"Data":"aGVsbG8=","PartitionKey":"p","SequenceNumber":"1"},)"
      R"({"SequenceNumber":"2","Data" : "d29ybGQ=" ,"PartitionKey":"pk\"Data\":\"x"}],)"
      R"("NextShardIterator":"it","MillisBehindLatest":3})",
      R"({"Records":[{"Data":"","PartitionKey":"e","SequenceNumber":"1"}]})",
      // An escaped slash in Data, Data that is not base64, Data that is not a string.
      R"({"Records":[{"Data":"aGVs\/bG8=","PartitionKey":"p","SequenceNumber":"1"}]})",
      R"({"Records":[{"Data":"!!!!","PartitionKey":"p","SequenceNumber":"1"}]})",
      R"({"Records":[{"Data":17,"PartitionKey":"p","SequenceNumber":"1"}]})",
      R"({"Records":[{"Data":"aGk=","Data":3,"PartitionKey":"p","SequenceNumber":"1"}]})",
      // A key that unescapes to Data, with a number or with base64.
      R"({"Records":[{"Dat\u0061":0,"PartitionKey":"p","SequenceNumber":"1"}]})",
      R"({"Records":[{"Dat\u0061":"aGk=","PartitionKey":"p","SequenceNumber":"1"}]})",
      // Repeated Data keys: the first counts, as in the DOM parser.
      R"({"Records":[{"Data":"aGk=","Data":"bG8=","PartitionKey":"p","SequenceNumber":"1"}]})",
      // Data elsewhere than in a record; strings that look like keys.
      R"({"Records":[{"Data":"aGk=","X":{"Data":"bG8="},"PartitionKey":"Data","SequenceNumber":"1"}],"Data":"eA=="})",
      // Malformed: unterminated, a missing comma, trailing garbage, a Data key in an array.
      R"({"Records":[{"Data":"aGk=,"PartitionKey":"p"}]})",
      R"({"Records":[{"Data":"aGk=" "PartitionKey":"p"}]})",
      R"({"Records":[{"Data":"aGk="12,"PartitionKey":"p"}]})",
      R"({"Records":[{"Data":"aGk="}]} x)",
      R"({"Records":["Data":"aGk="]})",
      R"({"Records":[{"Data":"aGk=","PartitionKey":"p\\","SequenceNumber":"1"}]})",
      R"({"Records":[{"Data":"aGk=","PartitionKey":"p\\\"","SequenceNumber":"1"}]})",
      R"("Data":"aGk=")",
      "",
      // Backslash runs before a quote, odd and even, in keys and values.
      R"({"Records":[{"Data":"aGk=","PartitionKey":"a\\\\","SequenceNumber":"1\\\""}]})",
      R"({"Records":[{"Data":"aGk=\\","PartitionKey":"p","SequenceNumber":"1"}]})",
      R"({"Records":[{"Data":"aG\"k=","PartitionKey":"p","SequenceNumber":"1"}]})",
  };
  return bodies;
}

void expect_same_result(const Result<GetRecordsResult>& got, const Result<GetRecordsResult>& want,
                        const std::string& body) {
  ASSERT_EQ(got.ok(), want.ok()) << body;
  if (!got.ok()) {
    EXPECT_EQ(got.status().to_string(), want.status().to_string()) << body;
    return;
  }
  ASSERT_EQ(got->records.size(), want->records.size()) << body;
  for (std::size_t i = 0; i < got->records.size(); ++i) {
    EXPECT_EQ(got->records[i].data, want->records[i].data) << body;
    EXPECT_EQ(got->records[i].partition_key, want->records[i].partition_key) << body;
    EXPECT_EQ(got->records[i].sequence_number, want->records[i].sequence_number) << body;
  }
  EXPECT_EQ(got->next_shard_iterator, want->next_shard_iterator) << body;
  EXPECT_EQ(got->millis_behind_latest, want->millis_behind_latest) << body;
}

TEST(KinesisParse, CompactedGetRecordsAgreeWithTheDomParser) {
  const std::vector<std::string>& bodies = odd_bodies();
  int compacted = 0;
  for (const std::string& body : bodies) {
    std::string json;
    std::vector<std::string> data;
    if (detail::compact_get_records(body, json, data) && !data.empty()) ++compacted;
    expect_same_result(detail::parse_get_records(body), detail::parse_get_records_dom(body), body);
  }
  EXPECT_GE(compacted, 8) << "the compaction should take the ordinary bodies";
}

// The compaction fed piece by piece, as the HTTP client feeds it: split at every position (and
// byte by byte), it produces what compact_get_records() produces from the whole body, and its
// parse agrees with the DOM parser's.
TEST(KinesisParse, StreamingCompactionMatchesTheWholeBodyOne) {
  std::vector<std::string> bodies = odd_bodies();
  // A long Data string, so that splits fall inside base64 too.
  bodies.push_back(R"({"Records":[{"Data":")" + detail::base64_encode(std::string(200, 'q')) +
                   R"(","PartitionKey":"p","SequenceNumber":"1"}],"MillisBehindLatest":5})");
  for (const std::string& body : bodies) {
    std::string whole_json;
    std::vector<std::string> whole_data;
    const bool ok = detail::compact_get_records(body, whole_json, whole_data);
    const auto want = detail::parse_get_records_dom(body);
    std::vector<std::vector<std::size_t>> splits;
    for (std::size_t at = 0; at <= body.size(); ++at) splits.push_back({at});
    std::vector<std::size_t> every;
    for (std::size_t at = 1; at < body.size(); ++at) every.push_back(at);
    if (!every.empty()) splits.push_back(every);
    for (const auto& cuts : splits) {
      detail::GetRecordsCompactor c;
      c.reset(body.size());
      std::size_t from = 0;
      for (std::size_t at : cuts) {
        c.feed(std::string_view(body).substr(from, at - from));
        from = at;
      }
      c.feed(std::string_view(body).substr(from));
      c.finish();
      const std::string where = body + " (split at " + std::to_string(cuts.front()) +
                                (cuts.size() > 1 ? ", every byte)" : ")");
      if (ok && !whole_data.empty()) {
        ASSERT_TRUE(c.compacted()) << where;
        EXPECT_EQ(c.json(), whole_json) << where;
        EXPECT_EQ(c.data(), whole_data) << where;
        EXPECT_EQ(c.original(), body) << where;
      } else {
        ASSERT_FALSE(c.compacted()) << where;
        EXPECT_EQ(c.json(), body) << where;  // these bodies' base64 is canonical
      }
      expect_same_result(detail::parse_get_records(c), want, where);
    }
  }
}

// The compaction itself: the DOM parser is left a few bytes per record, the base64 is decoded.
TEST(KinesisParse, CompactionTakesTheBase64Out) {
  const std::string payload(3000, 'z');
  const std::string b64 = detail::base64_encode(payload);
  const std::string body = R"({"Records":[{"Data":")" + b64 +
                           R"(","PartitionKey":"p","SequenceNumber":"1"}],"MillisBehindLatest":0})";
  std::string json;
  std::vector<std::string> data;
  ASSERT_TRUE(detail::compact_get_records(body, json, data));
  EXPECT_EQ(
      json,
      R"({"Records":[{"Data":0 ,"PartitionKey":"p","SequenceNumber":"1"}],"MillisBehindLatest":0})");
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0], payload);
  EXPECT_FALSE(detail::compact_get_records(R"({"Records":[{"Data":5}]})", json, data));
  EXPECT_FALSE(detail::compact_get_records(R"({"Records":[{"Da\u0074a":"eA=="}]})", json, data));
  EXPECT_FALSE(detail::compact_get_records(R"({"Records":[{"Data":"eA==)", json, data));
}

TEST(KinesisParse, GetRecordsWithChildShardsAndTimestamps) {
  const std::string body = R"({"Records":[
    {"Data":"aGVsbG8=","PartitionKey":"pk\"1","SequenceNumber":"4959","ApproximateArrivalTimestamp":1700000000.123,"EncryptionType":"KMS"},
    {"Data":"","PartitionKey":"p2","SequenceNumber":"4960","ApproximateArrivalTimestamp":1.7e9}],
    "MillisBehindLatest":42,
    "ChildShards":[{"ShardId":"shardId-000000000002","ParentShards":["shardId-000000000000"],
      "HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"99"}}]})";
  auto r = detail::parse_get_records(body);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->records.size(), 2u);
  EXPECT_EQ(r->records[0].data, "hello");
  EXPECT_EQ(r->records[0].partition_key, "pk\"1");
  EXPECT_EQ(r->records[0].approximate_arrival_timestamp_ms, 1700000000123);
  EXPECT_EQ(r->records[0].encryption_type, "KMS");
  EXPECT_EQ(r->records[1].data, "");
  EXPECT_EQ(r->records[1].approximate_arrival_timestamp_ms, 1700000000000);
  EXPECT_FALSE(r->next_shard_iterator.has_value()) << "a closed shard has no next iterator";
  EXPECT_EQ(r->millis_behind_latest, 42);
  ASSERT_EQ(r->child_shards.size(), 1u);
  EXPECT_EQ(r->child_shards[0].parent_shards, std::vector<std::string>{"shardId-000000000000"});
  EXPECT_EQ(r->child_shards[0].hash_key_range.end, HashKey(0, 99));
}

TEST(KinesisParse, NullNextIteratorMeansShardEnd) {
  auto r = detail::parse_get_records(
      R"({"Records":[],"NextShardIterator":null,"MillisBehindLatest":0})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->next_shard_iterator.has_value());
  auto open = detail::parse_get_records(
      R"({"Records":[],"NextShardIterator":"AAA","MillisBehindLatest":0})");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(*open->next_shard_iterator, "AAA");
}

TEST(KinesisParse, MalformedResponsesAreClearErrorsNotCrashes) {
  for (const char* bad : {"", "not json", "[1,2]", R"({"Records":[{"PartitionKey":"x"}]})",
                          R"({"Records":[{"Data":"!!notbase64","PartitionKey":"x"}]})"}) {
    auto r = detail::parse_get_records(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInternal);
    EXPECT_NE(r.status().message().find("malformed response"), std::string::npos);
  }
  EXPECT_FALSE(detail::parse_put_records(R"({"FailedRecordCount":0})").ok());
}

TEST(KinesisParse, PutRecordsEntries) {
  auto r = detail::parse_put_records(R"({"FailedRecordCount":1,"Records":[
    {"SequenceNumber":"1","ShardId":"shardId-000000000000"},
    {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"},
    {}]})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 3u);
  EXPECT_TRUE(r->records[0].ok());
  EXPECT_FALSE(r->records[1].ok());
  EXPECT_EQ(r->records[1].error_code, "ProvisionedThroughputExceededException");
  EXPECT_FALSE(r->records[2].ok())
      << "an entry with neither sequence number nor error is a failure";
}

TEST(KinesisBuild, PutRecordsBodyRoundTrips) {
  const std::string bin("\x00\xff\"\\\n", 5);
  const PutRecordsEntry entries[] = {{"pk-\"q\"", bin, ""}, {"a", "agg", "12345"}};
  const std::string body = detail::build_put_records(StreamRef("s"), entries);
  const auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["StreamName"], "s");
  ASSERT_EQ(j["Records"].size(), 2u);
  EXPECT_EQ(j["Records"][0]["PartitionKey"], "pk-\"q\"");
  EXPECT_EQ(*detail::base64_decode(j["Records"][0]["Data"].get<std::string>()), bin);
  EXPECT_FALSE(j["Records"][0].contains("ExplicitHashKey"));
  EXPECT_EQ(j["Records"][1]["ExplicitHashKey"], "12345");
  const std::string arn_body =
      detail::build_put_records(StreamRef("arn:aws:kinesis:us-east-1:1:stream/s"), entries);
  EXPECT_EQ(nlohmann::json::parse(arn_body)["StreamARN"], "arn:aws:kinesis:us-east-1:1:stream/s");
}

// The wire: signed JSON 1.1 requests, error mapping, retries, async single attempts.
class KinesisWire : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = LoopbackHttpServer::start([this](const LoopbackRequest& req) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
      return handler_(req);
    });
    ASSERT_TRUE(s.ok());
    server_ = std::move(*s);
    AwsClientConfig c = config("tok");
    c.retry_base = 1ms;
    c.retry_cap = 2ms;
    c.max_attempts = 3;
    auto k = KinesisClient::create(c);
    ASSERT_TRUE(k.ok()) << k.status().to_string();
    k_ = std::move(*k);
  }
  // The loopback server, static credentials (with a session token when `token` is set).
  AwsClientConfig config(const std::string& token = "") const {
    AwsClientConfig c;
    c.endpoint_url = server_->url("");
    c.region = "eu-west-1";
    c.credentials = make_static_credentials_provider({"AKIDWIRE", "wire-secret", token, {}, "t"});
    return c;
  }
  // Retrying slowly and long (30 attempts, backing off up to a second: about 25 s), for the
  // cancellation tests.
  AwsClientConfig slow_retry_config() const {
    AwsClientConfig c = config();
    c.retry_base = 200ms;
    c.retry_cap = 1000ms;
    c.max_attempts = 30;
    return c;
  }
  std::function<LoopbackResponse(const LoopbackRequest&)> handler_;
  std::mutex mu_;
  std::vector<LoopbackRequest> requests_;
  std::unique_ptr<LoopbackHttpServer> server_;
  std::unique_ptr<KinesisClient> k_;
};

TEST_F(KinesisWire, SendsSignedJson11Requests) {
  handler_ = [](const LoopbackRequest&) {
    return LoopbackResponse::text(200, R"({"ShardIterator":"IT-1"})");
  };
  auto it = k_->get_shard_iterator("s", "shardId-000000000001",
                                   {ShardIteratorType::kAtTimestamp, "", 1700000000123});
  ASSERT_TRUE(it.ok()) << it.status().to_string();
  EXPECT_EQ(*it, "IT-1");
  ASSERT_EQ(requests_.size(), 1u);
  const LoopbackRequest& r = requests_[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.header("x-amz-target"), "Kinesis_20131202.GetShardIterator");
  EXPECT_EQ(r.header("content-type"), "application/x-amz-json-1.1");
  EXPECT_EQ(r.header("x-amz-security-token"), "tok");
  const std::string auth(r.header("authorization"));
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDWIRE/", 0), 0u) << auth;
  EXPECT_NE(auth.find("/eu-west-1/kinesis/aws4_request"), std::string::npos);
  EXPECT_NE(
      auth.find("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"),
      std::string::npos)
      << auth;
  EXPECT_EQ(auth.find("wire-secret"), std::string::npos);
  EXPECT_FALSE(r.header("accept-encoding").size()) << "no gzip on the data plane";
  const auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["ShardIteratorType"], "AT_TIMESTAMP");
  EXPECT_EQ(j["Timestamp"].get<double>(), 1700000000.123);
}

TEST_F(KinesisWire, RetriesThrottlingThenSucceeds) {
  std::atomic<int> n{0};
  handler_ = [&n](const LoopbackRequest&) {
    if (n++ < 2) {
      return LoopbackResponse::text(
          400, R"({"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded"})");
    }
    return LoopbackResponse::text(200, R"({"StreamNames":["a","b"],"HasMoreStreams":false})");
  };
  auto r = k_->list_streams();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(n.load(), 3);
}

TEST_F(KinesisWire, DoesNotRetryNonRetryableErrors) {
  std::atomic<int> n{0};
  handler_ = [&n](const LoopbackRequest&) {
    ++n;
    LoopbackResponse r = LoopbackResponse::text(
        400, R"({"__type":"AccessDeniedException","message":"not allowed"})");
    r.headers.emplace_back("x-amzn-RequestId", "rid-7");
    return r;
  };
  auto r = k_->describe_stream_summary("s");
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().request_id(), "rid-7");
  EXPECT_EQ(n.load(), 1);
}

TEST_F(KinesisWire, GivesUpAfterMaxAttempts) {
  std::atomic<int> n{0};
  handler_ = [&n](const LoopbackRequest&) {
    ++n;
    return LoopbackResponse::text(500, R"({"__type":"InternalFailure"})");
  };
  auto r = k_->list_streams();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(n.load(), 3);
}

// A CancelToken ends a blocking call's retries: the call returns kCancelled long before its
// attempts (30, backing off up to a second: about 25 s) run out.
TEST_F(KinesisWire, CancelTokenEndsRetriesEarly) {
  auto k = KinesisClient::create(slow_retry_config());
  ASSERT_TRUE(k.ok());
  std::atomic<int> n{0};
  handler_ = [&n](const LoopbackRequest&) {
    ++n;
    return LoopbackResponse::text(500, R"({"__type":"InternalFailure"})");
  };
  CancelToken cancel;
  Result<std::vector<Shard>> r = Status::internal("not called");
  std::thread t([&] {
    ListShardsOptions o;
    o.cancel = &cancel;
    r = (*k)->list_shards("s", o);
  });
  ASSERT_TRUE(testing::poll_until([&] { return n.load() >= 2; }));
  cancel.cancel();
  t.join();
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().to_string();
  EXPECT_NE(r.status().message().find("InternalFailure"), std::string_view::npos)
      << "the last attempt's error is kept: " << r.status().to_string();
  EXPECT_LT(n.load(), 30);
  // Already cancelled: no attempt at all.
  const int before = n.load();
  auto again = (*k)->get_shard_iterator("s", "shardId-000000000000",
                                        {ShardIteratorType::kTrimHorizon, "", 0}, {}, &cancel);
  EXPECT_EQ(again.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(n.load(), before);
}

// A call made without a token inside a CancelScope (how the worker reaches the lease store's
// DynamoDB calls) is cancelled by the scope's token; outside the scope it is not.
TEST_F(KinesisWire, CancelScopeReachesCallsWithoutAToken) {
  auto ddb = DynamoDbClient::create(slow_retry_config());
  ASSERT_TRUE(ddb.ok()) << ddb.status().to_string();
  std::atomic<int> n{0};
  handler_ = [&n](const LoopbackRequest&) {
    ++n;
    return LoopbackResponse::text(500, R"({"__type":"InternalServerError"})");
  };
  CancelToken cancel;
  Result<TableDescription> r = Status::internal("not called");
  std::thread t([&] {
    detail::CancelScope scope(&cancel);
    r = (*ddb)->describe_table("leases");
  });
  ASSERT_TRUE(testing::poll_until([&] { return n.load() >= 2; }));
  cancel.cancel();
  t.join();
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().to_string();
  EXPECT_LT(n.load(), 30);
  // The token is cancelled now. Inside a scope on this thread a call makes no attempt; once the
  // scope has ended, the same call is made and answered.
  handler_ = [&n](const LoopbackRequest&) {
    ++n;
    return LoopbackResponse::text(
        400,
        R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"})");
  };
  const int before = n.load();
  {
    detail::CancelScope scope(&cancel);
    EXPECT_EQ((*ddb)->describe_table("leases").status().code(), StatusCode::kCancelled);
    EXPECT_EQ(n.load(), before);
  }
  EXPECT_EQ((*ddb)->describe_table("leases").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(n.load(), before + 1);
}

TEST_F(KinesisWire, AsyncMakesExactlyOneAttempt) {
  std::atomic<int> n{0};
  handler_ = [&n](const LoopbackRequest&) {
    ++n;
    return LoopbackResponse::text(500, R"({"__type":"InternalFailure"})");
  };
  std::promise<Result<PutRecordsResult>> p;
  const PutRecordsEntry e[] = {{"k", "v", ""}};
  k_->put_records_async("s", e, [&p](Result<PutRecordsResult> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(n.load(), 1);
}

TEST_F(KinesisWire, PutRecordsCountMismatchIsAnError) {
  handler_ = [](const LoopbackRequest&) {
    return LoopbackResponse::text(
        200, R"({"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"s"}]})");
  };
  const PutRecordsEntry e[] = {{"k", "v", ""}, {"k2", "v2", ""}};
  auto r = k_->put_records("s", e);
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("1 entries for 2 records"), std::string::npos);
}

TEST_F(KinesisWire, ListShardsFollowsNextToken) {
  handler_ = [](const LoopbackRequest& req) {
    const auto j = nlohmann::json::parse(req.body);
    if (!j.contains("NextToken")) {
      EXPECT_EQ(j["StreamName"], "s");
      return LoopbackResponse::text(200, R"({"Shards":[{"ShardId":"shardId-000000000000",
        "HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"10"},
        "SequenceNumberRange":{"StartingSequenceNumber":"1"}}],"NextToken":"T1"})");
    }
    EXPECT_FALSE(j.contains("StreamName")) << "AWS rejects StreamName with NextToken";
    return LoopbackResponse::text(200, R"({"Shards":[{"ShardId":"shardId-000000000001",
        "ParentShardId":"shardId-000000000000",
        "HashKeyRange":{"StartingHashKey":"11","EndingHashKey":"20"},
        "SequenceNumberRange":{"StartingSequenceNumber":"2","EndingSequenceNumber":"3"}}]})");
  };
  auto r = k_->list_shards("s");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE((*r)[0].is_open());
  EXPECT_FALSE((*r)[1].is_open());
  EXPECT_EQ((*r)[1].parent_shard_id, "shardId-000000000000");
  EXPECT_EQ((*r)[1].hash_key_range.start, HashKey(0, 11));
}

// ---- SubscribeToShard over a scripted event stream ----------------------------------------

std::string event_frame(const std::string& json) {
  return detail::encode_event_stream_message({{":message-type", "event"},
                                              {":event-type", "SubscribeToShardEvent"},
                                              {":content-type", "application/json"}},
                                             json);
}
std::string event_json(const std::string& data_b64, const std::string& seq,
                       const std::string& continuation) {
  return R"({"Records":[{"Data":")" + data_b64 + R"(","PartitionKey":"pk","SequenceNumber":")" +
         seq + R"(","ApproximateArrivalTimestamp":1700000000.5}],"ContinuationSequenceNumber":)" +
         (continuation.empty() ? std::string("null") : "\"" + continuation + "\"") +
         R"(,"MillisBehindLatest":42})";
}

struct SubscriptionRun {
  std::mutex mu;
  std::vector<SubscribeToShardEvent> events;
  std::promise<Status> done;
};

class KinesisSubscribe : public KinesisWire {
 protected:
  // Subscribes and waits for the end; the events seen are in `run`.
  Status subscribe(SubscriptionRun& run, const ShardIteratorStart& start = {}) {
    auto f = run.done.get_future();
    auto sub = k_->subscribe_to_shard(
        "arn:consumer", "shardId-000000000001", start,
        [&run](SubscribeToShardEvent&& e) {
          std::lock_guard lk(run.mu);
          run.events.push_back(std::move(e));
        },
        [&run](Status s) { run.done.set_value(std::move(s)); });
    EXPECT_EQ(f.wait_for(20s), std::future_status::ready);
    return f.get();
  }
  static LoopbackResponse stream(std::string body) {
    LoopbackResponse r;
    r.headers = {{"Content-Type", "application/vnd.amazon.eventstream"}};
    r.body = std::move(body);
    r.chunk_bytes = 7;  // split inside the frames
    return r;
  }
};

TEST_F(KinesisSubscribe, EventsInOrderAfterTheInitialResponseThenAnOrderlyEnd) {
  handler_ = [](const LoopbackRequest&) {
    return stream(detail::encode_event_stream_message(
                      {{":message-type", "event"}, {":event-type", "initial-response"}}, "{}") +
                  event_frame(event_json("b25l", "100", "100")) +
                  event_frame(event_json("dHdv", "101", "")));
  };
  SubscriptionRun run;
  const Status s = subscribe(run, {ShardIteratorType::kAfterSequenceNumber, "99", 0});
  EXPECT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.events[0].records.at(0).data, "one");
  EXPECT_EQ(run.events[0].records.at(0).sequence_number, "100");
  EXPECT_EQ(run.events[0].records.at(0).approximate_arrival_timestamp_ms, 1700000000500);
  EXPECT_EQ(run.events[0].continuation_sequence_number, "100");
  EXPECT_EQ(run.events[0].millis_behind_latest, 42);
  EXPECT_EQ(run.events[1].records.at(0).data, "two");
  EXPECT_EQ(run.events[1].continuation_sequence_number, "") << "null: the shard's end";
  // The request: signed, the operation, the consumer, shard and starting position.
  std::lock_guard lk(mu_);
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].header("x-amz-target"), "Kinesis_20131202.SubscribeToShard");
  EXPECT_NE(requests_[0].header("authorization").find("AKIDWIRE"), std::string_view::npos);
  const auto body = nlohmann::json::parse(requests_[0].body);
  EXPECT_EQ(body["ConsumerARN"], "arn:consumer");
  EXPECT_EQ(body["ShardId"], "shardId-000000000001");
  EXPECT_EQ(body["StartingPosition"]["Type"], "AFTER_SEQUENCE_NUMBER");
  EXPECT_EQ(body["StartingPosition"]["SequenceNumber"], "99");
}

TEST_F(KinesisSubscribe, AnExceptionInTheStreamEndsItWithTheAwsError) {
  handler_ = [](const LoopbackRequest&) {
    return stream(
        event_frame(event_json("b25l", "100", "100")) +
        detail::encode_event_stream_message({{":message-type", "exception"},
                                             {":exception-type", "ResourceInUseException"},
                                             {":content-type", "application/json"}},
                                            R"({"message":"Another active subscription exists"})") +
        event_frame(event_json("dHdv", "101", "101")));
  };
  SubscriptionRun run;
  const Status s = subscribe(run);
  EXPECT_EQ(s.aws_error_code(), "ResourceInUseException") << s.to_string();
  EXPECT_NE(s.message().find("Another active subscription"), std::string::npos);
  EXPECT_EQ(run.events.size(), 1u) << "nothing after the exception";
}

TEST_F(KinesisSubscribe, AnErrorResponseIsMappedAsAnyOther) {
  handler_ = [](const LoopbackRequest&) {
    return LoopbackResponse::text(
        400, R"({"__type":"ResourceNotFoundException","message":"no such shard"})");
  };
  SubscriptionRun run;
  const Status s = subscribe(run);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.to_string();
  EXPECT_TRUE(run.events.empty());
}

TEST_F(KinesisSubscribe, CorruptCutOrMalformedStreamsEndWithAnError) {
  std::string corrupt = event_frame(event_json("b25l", "100", "100"));
  corrupt[corrupt.size() - 2] ^= 1;
  const std::string whole = event_frame(event_json("b25l", "100", "100"));
  const std::string first = event_frame(event_json("b25l", "1", "1"));
  const struct {
    std::string body;
    StatusCode code;
    std::string says;
  } cases[] = {
      {first + corrupt, StatusCode::kDataLoss, "message CRC mismatch"},
      {first + whole.substr(0, whole.size() - 3), StatusCode::kDataLoss, "ended inside an event"},
      {first + event_frame(event_json("!!!", "1", "1")), StatusCode::kInternal, "not base64"},
      {first + event_frame("not json"), StatusCode::kInternal, "not JSON"},
  };
  for (const auto& c : cases) {
    handler_ = [&c](const LoopbackRequest&) { return stream(c.body); };
    SubscriptionRun run;
    const Status s = subscribe(run);
    EXPECT_EQ(s.code(), c.code) << s.to_string();
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.to_string();
    EXPECT_EQ(run.events.size(), 1u) << "the good event before the fault, nothing after";
  }
}

TEST_F(KinesisSubscribe, CancelEndsASilentStream) {
  handler_ = [](const LoopbackRequest&) {
    LoopbackResponse r;
    r.fault = testing::LoopbackFault::kBlackHole;
    return r;
  };
  SubscriptionRun run;
  auto f = run.done.get_future();
  auto sub = k_->subscribe_to_shard(
      "arn:consumer", "shardId-000000000001", {}, [](SubscribeToShardEvent&&) {},
      [&run](Status s) { run.done.set_value(std::move(s)); });
  ASSERT_TRUE(server_->wait_for_requests(1, 10s));
  EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout) << "still open";
  sub->cancel();
  sub->cancel();  // idempotent
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get().code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace shardline
