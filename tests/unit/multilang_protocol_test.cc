// The MultiLangDaemon's messages, byte for byte as the Java daemon writes them, the parsing of
// what children write (every message form, and the lines the Java daemon skips), the
// executableName split and the executable lookup.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <span>

#include "multilang/protocol.h"
#include "shardline/multilang.h"
#include "support/scoped_env.h"
#include "unit/multilang_test_support.h"

namespace shardline {
namespace {

namespace ml = detail::multilang;
using Kind = ml::ChildMessage::Kind;
using nlohmann::json;

std::string json_string(std::string_view s) {
  std::string out;
  ml::append_json_string(out, s);
  return out;
}

TEST(MultiLangProtocol, JsonStringsEscapeAndReplaceInvalidUtf8) {
  EXPECT_EQ(json_string("plain"), R"("plain")");
  EXPECT_EQ(json_string("q\"b\\n\n\r\t\b\f\x01"), R"("q\"b\\n\n\r\t\b\f\u0001")");
  // Well-formed UTF-8 passes through: 2, 3 and 4 byte sequences.
  EXPECT_EQ(json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  // Bytes that are not UTF-8 become U+FFFD (a stray continuation, a truncated sequence, an
  // overlong form, a surrogate, a code point above U+10FFFF).
  EXPECT_EQ(json_string("a\x80z"), R"("a\ufffdz")");
  EXPECT_EQ(json_string("\xc3"), R"("\ufffd")");
  EXPECT_EQ(json_string("\xe2\x82"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xc0\xaf"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xe0\x80\x80"), R"("\ufffd\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xf0\x80\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");
  // Whatever the input, the output parses as JSON.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_FALSE(json::parse(json_string(all), nullptr, false).is_discarded());
}

TEST(MultiLangProtocol, InitializeMessage) {
  std::string out;
  ml::append_initialize(out, "shardId-000000000001", {"TRIM_HORIZON", 0});
  EXPECT_EQ(
      out,
      R"({"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})"
      "\n");
  out.clear();
  ml::append_initialize(out, "shardId-1", {"456", 7});
  EXPECT_EQ(
      out,
      R"({"action":"initialize","shardId":"shardId-1","sequenceNumber":"456","subSequenceNumber":7})"
      "\n");
}

TEST(MultiLangProtocol, ProcessRecordsMessage) {
  testing::Batch b;
  b.add("456", 0, "meow", "cat", 1476889707000);
  b.add("456", 1, std::string("\x00\xff", 2), "k\"\xc3\xa9", 0);
  std::string out;
  ml::append_process_records_begin(out);
  ml::append_record(out, b.views[0]);
  out += ',';
  ml::append_record(out, b.views[1]);
  ml::append_process_records_end(out, 1476889708000);
  EXPECT_EQ(
      out,
      R"({"action":"processRecords","records":[)"
      R"({"action":"record","data":"bWVvdw==","partitionKey":"cat","sequenceNumber":"456","subSequenceNumber":0,"approximateArrivalTimestamp":1476889707000},)"
      R"({"action":"record","data":"AP8=","partitionKey":"k\")"
      "\xc3\xa9"
      R"(","sequenceNumber":"456","subSequenceNumber":1,"approximateArrivalTimestamp":null})"
      R"(],"millisBehindLatest":1476889708000})"
      "\n");
  // The fields the PY and JS client libraries read, with the types they expect.
  const json j = json::parse(out);
  EXPECT_EQ(j["action"], "processRecords");
  EXPECT_EQ(j["millisBehindLatest"], 1476889708000);
  ASSERT_EQ(j["records"].size(), 2u);
  EXPECT_EQ(j["records"][0]["action"], "record");
  EXPECT_EQ(j["records"][0]["data"], "bWVvdw==");
  EXPECT_TRUE(j["records"][1]["approximateArrivalTimestamp"].is_null());

  out.clear();
  ml::append_process_records_begin(out);
  ml::append_process_records_end(out, 0);
  EXPECT_EQ(out, R"({"action":"processRecords","records":[],"millisBehindLatest":0})"
                 "\n");
}

// The batch writer (text around the sub-sequence number built once per aggregate) writes
// exactly what append_record() writes, whatever changes from one record to the next.
TEST(MultiLangProtocol, RecordWriterMatchesAppendRecord) {
  testing::Batch b;
  b.add("4501", 0, "a", "k1", 1700000000001)
      .add("4501", 1, "b", "k2", 1700000000001)
      .add("4501", 2, "c", "k\"3", 1700000000001)
      .add("4502", 0, "d", "k4", 1700000000001)  // next aggregate
      .add("4502", 1, "e", "k5", 1700000000002)  // another arrival time
      .add("4503", 0, "f", "k6", 0)              // no arrival time: null
      .add("4503", 1, std::string(5000, 'x'), "k7", 0)
      .add("4501", 0, "", "", 1700000000001);  // back to an earlier one
  // Data lengths around the 48-byte blocks of the vector base64 encoder, binary bytes, and
  // keys that need escaping (non-ASCII, control characters).
  for (std::size_t len = 0; len <= 150; ++len) {
    std::string data(len, '\0');
    for (std::size_t i = 0; i < len; ++i) data[i] = static_cast<char>(i * 37 + len);
    b.add("4504", static_cast<std::int64_t>(len), data,
          len % 3 == 0 ? "k\u00e9" : (len % 3 == 1 ? "k\x01" : "key"), 1700000000003);
  }
  ml::RecordWriter w;
  std::string a, want;
  for (const ConsumerRecord& r : b.views) {
    w.append(a, r);
    ml::append_record(want, r);
  }
  EXPECT_EQ(a, want);

  // A batch as the worker delivers it: the user records of an aggregate share one sequence
  // number string (which the writer recognises by its address), written back to back.
  std::map<std::string, std::string> shared;
  std::vector<ConsumerRecord> views = b.views;
  for (ConsumerRecord& r : views) {
    r.sequence_number =
        shared.emplace(std::string(r.sequence_number), r.sequence_number).first->second;
  }
  std::string batch(1 << 20, '\0');
  char* p = batch.data();
  w.begin_batch();
  for (const ConsumerRecord& r : views) p = w.write(p, r);
  batch.resize(static_cast<std::size_t>(p - batch.data()));
  EXPECT_EQ(batch, want);

  // The same through write_records() (the batch path: AVX-512 VBMI where the CPU has it), with
  // the room running out now and then: it stops before a record that might not fit, and goes
  // on from there once there is room.
  std::string joined;
  for (std::size_t i = 0; i < views.size(); ++i) {
    if (i) joined += ',';
    ml::append_record(joined, b.views[i]);
  }
  for (const std::size_t room : {std::size_t{1} << 20, std::size_t{700}, std::size_t{6000}}) {
    std::string out(joined.size() + 2 * room, '\0');
    char* q = out.data();
    std::size_t written = 0, calls = 0;
    std::span<const ConsumerRecord> rest(views);
    w.begin_batch();
    while (!rest.empty()) {
      ASSERT_LT(++calls, 10 * views.size()) << "no progress with room " << room;
      const std::size_t n = w.write_records(q, q + room, rest, written);
      rest = rest.subspan(n);
      if (n == 0) {
        ASSERT_LT(room, 1 + ml::RecordWriter::max_size(rest.front()) + ml::RecordWriter::kSlack);
        break;  // this record never fits in `room`: write it on its own
      }
    }
    for (const ConsumerRecord& r : rest) {
      if (written++ != 0) *q++ = ',';
      q = w.write(q, r);
    }
    out.resize(static_cast<std::size_t>(q - out.data()));
    EXPECT_EQ(out, joined) << "room " << room;
    EXPECT_EQ(written, views.size());
  }
}

// The replay finds the records after a checkpoint again in a kept batch's text: every object
// of the array, whatever its keys hold (quotes, backslashes, braces, brackets, commas), with
// its sequence number and sub-sequence number; compared with an independent JSON parser.
TEST(MultiLangProtocol, SplitsKeptRecordsAndReadsTheirPositions) {
  testing::Batch b;
  b.add("4501", 0, "a", "plain", 1700000000001)
      .add("4501", 1, "b", "q\"uo}te{", 1700000000001)
      .add("4501", 2, "c", "back\\", 1700000000001)
      .add("4502", 0, "d", "\\\"},{\"action\":\"record\"", 0)
      .add("4502", 7, "e", "[],:\\\\", 1700000000002)
      .add("4503", 0, std::string(300, '\xff'), "\x01\x1f", 1700000000003);
  std::string records;
  for (std::size_t i = 0; i < b.views.size(); ++i) {
    if (i) records += ',';
    ml::append_record(records, b.views[i]);
  }
  const json parsed = json::parse("[" + records + "]");
  const std::vector<std::string_view> objects = ml::split_record_objects(records);
  ASSERT_EQ(objects.size(), b.views.size());
  for (std::size_t i = 0; i < objects.size(); ++i) {
    EXPECT_EQ(json::parse(objects[i]), parsed[i]) << i;
    const auto at = ml::record_position(objects[i]);
    ASSERT_TRUE(at.has_value()) << objects[i];
    EXPECT_EQ(at->sequence_number, b.views[i].sequence_number);
    EXPECT_EQ(at->sub_sequence_number, b.views[i].sub_sequence_number);
  }
  EXPECT_TRUE(ml::split_record_objects("").empty());
  EXPECT_FALSE(ml::record_position("{\"sequenceNumber\":\"1\"}").has_value());
  EXPECT_FALSE(ml::record_position("not json").has_value());
}

TEST(MultiLangProtocol, ActionsAndCheckpointReplies) {
  std::string out;
  ml::append_action(out, "leaseLost");
  ml::append_action(out, "shardEnded");
  ml::append_action(out, "shutdownRequested");
  EXPECT_EQ(out,
            "{\"action\":\"leaseLost\"}\n{\"action\":\"shardEnded\"}\n"
            "{\"action\":\"shutdownRequested\"}\n");
  out.clear();
  ml::append_checkpoint_reply(out, std::string("456"), 0, "");
  EXPECT_EQ(out,
            R"({"action":"checkpoint","sequenceNumber":"456","subSequenceNumber":0,"error":null})"
            "\n");
  out.clear();
  ml::append_checkpoint_reply(out, std::nullopt, std::nullopt, "ShutdownException");
  EXPECT_EQ(
      out,
      R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"})"
      "\n");
  out.clear();
  ml::append_checkpoint_reply(out, std::string("9"), std::nullopt, "ThrottlingException");
  EXPECT_EQ(
      out,
      R"({"action":"checkpoint","sequenceNumber":"9","subSequenceNumber":null,"error":"ThrottlingException"})"
      "\n");
}

TEST(MultiLangProtocol, ParsesStatusAndCheckpointMessages) {
  ml::ChildMessage m = ml::parse_child_line(R"({"action": "status", "responseFor": "initialize"})");
  EXPECT_EQ(m.kind, Kind::kStatus);
  EXPECT_EQ(m.response_for, "initialize");
  // A status without responseFor (or not a string) answers nothing: "" never matches.
  EXPECT_EQ(ml::parse_child_line(R"({"action":"status"})").response_for, "");
  EXPECT_EQ(ml::parse_child_line(R"({"action":"status","responseFor":3})").response_for, "");
  // Trailing '\r' and unknown extra fields are fine.
  m = ml::parse_child_line("{\"action\":\"status\",\"responseFor\":\"shardEnded\",\"x\":1}\r");
  EXPECT_EQ(m.kind, Kind::kStatus);
  EXPECT_EQ(m.response_for, "shardEnded");

  // The checkpoint forms of the PY and JS libraries (§7.4 of the reference).
  m = ml::parse_child_line(
      R"({"action": "checkpoint", "sequenceNumber": "456", "subSequenceNumber": null})");
  EXPECT_EQ(m.kind, Kind::kCheckpoint);
  EXPECT_EQ(m.sequence_number, std::optional<std::string>("456"));
  EXPECT_FALSE(m.sub_sequence_number.has_value());
  m = ml::parse_child_line(
      R"({"action": "checkpoint", "sequenceNumber": null, "subSequenceNumber": null})");
  EXPECT_FALSE(m.sequence_number.has_value());
  m = ml::parse_child_line(R"({"action":"checkpoint"})");  // JS: checkpoint(cb) with undefined
  EXPECT_EQ(m.kind, Kind::kCheckpoint);
  EXPECT_FALSE(m.sequence_number.has_value());
  EXPECT_TRUE(m.invalid.empty());
  m = ml::parse_child_line(
      R"({"action":"checkpoint","sequenceNumber":"456","subSequenceNumber":3})");
  EXPECT_EQ(m.sub_sequence_number, std::optional<std::int64_t>(3));
  // Jackson coerces a numeric string to the Long field and a number to the String field.
  m = ml::parse_child_line(
      R"({"action":"checkpoint","sequenceNumber":456,"subSequenceNumber":"5"})");
  EXPECT_EQ(m.sequence_number, std::optional<std::string>("456"));
  EXPECT_EQ(m.sub_sequence_number, std::optional<std::int64_t>(5));
  EXPECT_TRUE(m.invalid.empty());
  // Wrong types are answered with IllegalArgumentException rather than left unanswered.
  for (const char* bad :
       {R"({"action":"checkpoint","sequenceNumber":true})",
        R"({"action":"checkpoint","sequenceNumber":4.5e60})",
        R"({"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":"x"})",
        R"({"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":1.5})",
        R"({"action":"checkpoint","sequenceNumber":"1","subSequenceNumber":""})"}) {
    m = ml::parse_child_line(bad);
    EXPECT_EQ(m.kind, Kind::kCheckpoint) << bad;
    EXPECT_FALSE(m.invalid.empty()) << bad;
  }
}

TEST(MultiLangProtocol, SkipsWhatIsNotAMessage) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty line"},
      {"   ", "empty line"},
      {"hello from the child", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {"{not json", "not valid JSON"},
      {R"({"action":"status","responseFor":"x")", "not valid JSON"},
      {R"({"foo":1})", "no \"action\""},
      {R"({"action":5})", "no \"action\""},
      {R"({"action":"initialize","shardId":"s"})", "unknown action 'initialize'"},
      {R"({"action":"record"})", "unknown action 'record'"},
  };
  for (const auto& [line, why] : cases) {
    const ml::ChildMessage m = ml::parse_child_line(line);
    EXPECT_EQ(m.kind, Kind::kSkip) << line;
    EXPECT_EQ(m.why, why) << line;
  }
}

TEST(MultiLangProtocol, SplitsExecutableNameLikeTheJavaDaemon) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_executable_name("python3 app.py"), (V{"python3", "app.py"}));
  EXPECT_EQ(split_executable_name("  node   app.js  --x=1 "), (V{"node", "app.js", "--x=1"}));
  EXPECT_EQ(split_executable_name("a\tb"), (V{"a\tb"}));  // " +": spaces only
  EXPECT_EQ(split_executable_name(""), V{});
  EXPECT_EQ(split_executable_name("   "), V{});
}

TEST(MultiLangProtocol, ResolvesExecutablesAsProcessBuilderDoes) {
  testing::ChildDir dir;
  std::filesystem::create_directories(dir.path("bin"));
  dir.write("bin/tool", "#!/bin/sh\n", true);
  dir.write("bin/plain", "data\n", false);
  dir.write("local-tool", "#!/bin/sh\n", true);
  testing::ScopedEnv env({"PATH"});

  env.set("PATH", "/nonexistent:" + dir.path("bin"));
  auto r = resolve_executable("tool");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, dir.path("bin") + "/tool");
  // Found, but not executable.
  EXPECT_EQ(resolve_executable("plain").status().code(), StatusCode::kPermissionDenied);
  r = resolve_executable("no-such-tool");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("not found in PATH"), std::string_view::npos);
  // A name without '/' is not looked up in the working directory (unless PATH says so)...
  EXPECT_EQ(resolve_executable("local-tool", dir.path()).status().code(), StatusCode::kNotFound);
  // ... an empty PATH entry is the working directory.
  env.set("PATH", "/nonexistent::/also-not");
  r = resolve_executable("local-tool", dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, dir.path() + "/./local-tool");
  // A path with '/' is used as is, relative to the working directory.
  r = resolve_executable("./local-tool", dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, dir.path() + "/./local-tool");
  EXPECT_EQ(resolve_executable("bin/missing", dir.path()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(resolve_executable(dir.path("bin")).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(resolve_executable("").status().code(), StatusCode::kInvalidArgument);
  // PATH unset: Java's default ":/bin:/usr/bin".
  env.unset("PATH");
  r = resolve_executable("sh");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "/bin/sh");
}

}  // namespace
}  // namespace shardline
