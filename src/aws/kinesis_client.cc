// The Kinesis client: JSON 1.1 request builders and simdjson (DOM, runtime-dispatched SIMD)
// response parsers. GetRecords responses carry up to 10 MiB of base64: parsing is one simdjson
// pass plus one base64 decode per record, no intermediate copies.
#include "shardline/kinesis.h"

#include <simdjson.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <future>
#include <thread>

#include "aws/aws_errors.h"
#include "aws/event_stream.h"
#include "aws/json_writer.h"
#include "aws/service_client.h"
#include "core/digest.h"
#include "core/string_pool.h"

namespace shardline {

using detail::JsonWriter;
using detail::ServiceClient;
using detail::ServiceResponse;
namespace dom = simdjson::dom;

std::string_view shard_iterator_type_name(ShardIteratorType t) noexcept {
  switch (t) {
    case ShardIteratorType::kTrimHorizon:
      return "TRIM_HORIZON";
    case ShardIteratorType::kLatest:
      return "LATEST";
    case ShardIteratorType::kAtSequenceNumber:
      return "AT_SEQUENCE_NUMBER";
    case ShardIteratorType::kAfterSequenceNumber:
      return "AFTER_SEQUENCE_NUMBER";
    case ShardIteratorType::kAtTimestamp:
      return "AT_TIMESTAMP";
  }
  return "TRIM_HORIZON";
}

StreamRef::StreamRef(std::string name_or_arn) {
  if (name_or_arn.rfind("arn:", 0) == 0) {
    arn = std::move(name_or_arn);
  } else {
    name = std::move(name_or_arn);
  }
}

namespace {

void write_stream(JsonWriter& w, const StreamRef& s) {
  if (!s.arn.empty()) {
    w.key("StreamARN").string(s.arn);
  } else {
    w.key("StreamName").string(s.name);
  }
}

// Epoch milliseconds as the JSON number of seconds AWS expects (e.g. 1700000000.123).
std::string epoch_seconds(std::int64_t ms) {
  char buf[32];
  const long long secs = static_cast<long long>(ms / 1000);
  const int frac = static_cast<int>(ms % 1000);
  std::snprintf(buf, sizeof buf, "%lld.%03d", secs, frac < 0 ? -frac : frac);
  return buf;
}

// A per-thread DOM parser: it keeps its buffers between calls.
dom::parser& parser() {
  thread_local dom::parser p;
  return p;
}

Status bad_response(std::string_view what, std::string_view detail = {}) {
  std::string m = "malformed response: ";
  m.append(what);
  if (!detail.empty()) m.append(" (").append(detail).append(")");
  return Status(StatusCode::kInternal, std::move(m), RetryClass::kSameCall);
}

// `readable`: how many bytes from json.data() may be read; with SIMDJSON_PADDING to spare the
// document is parsed in place rather than copied into a padded buffer first.
Result<dom::element> parse_doc(std::string_view json, std::size_t readable = 0) {
  dom::element doc;
  const bool padded = readable >= json.size() + simdjson::SIMDJSON_PADDING;
  const auto err = parser().parse(json.data(), json.size(), !padded).get(doc);
  if (err) return bad_response("not JSON", simdjson::error_message(err));
  if (!doc.is_object()) return bad_response("not a JSON object");
  return doc;
}

std::string_view str(dom::element el, std::string_view key) {
  std::string_view v;
  if (el.at_key(key).get_string().get(v)) return {};
  return v;
}

std::int64_t i64(dom::element el, std::string_view key) {
  dom::element v;
  if (el.at_key(key).get(v)) return 0;
  std::int64_t i;
  if (!v.get_int64().get(i)) return i;
  double d;
  if (!v.get_double().get(d)) return static_cast<std::int64_t>(d);
  return 0;
}

// AWS sends timestamps as epoch seconds with a fraction.
std::int64_t epoch_ms(dom::element el, std::string_view key) {
  dom::element v;
  if (el.at_key(key).get(v)) return 0;
  double d;
  if (!v.get_double().get(d)) return static_cast<std::int64_t>(std::llround(d * 1000.0));
  return 0;
}

HashKeyRange parse_range(dom::element el) {
  HashKeyRange r;
  dom::element range;
  if (el.at_key("HashKeyRange").get(range)) return r;
  auto s = HashKey::parse_decimal(str(range, "StartingHashKey"));
  auto e = HashKey::parse_decimal(str(range, "EndingHashKey"));
  if (s.ok()) r.start = *s;
  if (e.ok()) r.end = *e;
  return r;
}

Result<Shard> parse_shard(dom::element el) {
  Shard s;
  s.shard_id = std::string(str(el, "ShardId"));
  if (s.shard_id.empty()) return bad_response("shard without ShardId");
  s.parent_shard_id = std::string(str(el, "ParentShardId"));
  s.adjacent_parent_shard_id = std::string(str(el, "AdjacentParentShardId"));
  s.hash_key_range = parse_range(el);
  dom::element seq;
  if (!el.at_key("SequenceNumberRange").get(seq)) {
    s.starting_sequence_number = std::string(str(seq, "StartingSequenceNumber"));
    s.ending_sequence_number = std::string(str(seq, "EndingSequenceNumber"));
  }
  return s;
}

StreamConsumer parse_consumer(dom::element el) {
  StreamConsumer c;
  c.name = std::string(str(el, "ConsumerName"));
  c.arn = std::string(str(el, "ConsumerARN"));
  c.status = std::string(str(el, "ConsumerStatus"));
  c.creation_timestamp_ms = epoch_ms(el, "ConsumerCreationTimestamp");
  return c;
}

}  // namespace

namespace detail {

namespace {
constexpr bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

// The whole body through the same compactor the HTTP client feeds chunk by chunk.
bool compact_get_records(std::string_view body, std::string& json, std::vector<std::string>& data) {
  GetRecordsCompactor c;
  c.reset(body.size());
  c.feed(body);
  c.finish();
  json.clear();
  data.clear();
  if (!c.compacted()) return !c.failed();
  json = std::move(c.json());
  data = std::move(c.data());
  return true;
}

void GetRecordsCompactor::reset(std::size_t expected) {
  state_ = State::kScan;
  finished_ = failed_ = false;
  str_len_ = 0;
  str_backslash_ = odd_backslashes_ = false;
  value_.clear();
  json_.clear();
  index_at_.clear();
  data_.clear();
  if (expected > 0) json_.reserve(expected / 8 + 64 + simdjson::SIMDJSON_PADDING);
}

// Each "Data" string is replaced by its index in data_, which gets the decoded bytes. A
// GetRecords body is almost all base64: the DOM parser would index every byte and copy every
// string into its own buffer before the decoder reads it again; this way it parses a document
// of a few hundred bytes per record and the base64 is read once, by the decoder. Only strings
// are lexed (memchr from quote to quote, a quote escaped when an odd run of backslashes
// precedes it); the structure is left to the DOM parser. What the lexer looks at across a
// piece's end is kept in the state: the string being read (its length, first bytes,
// backslashes) or the Data string so far. The body goes to the DOM parser as it is (fail())
// for an unterminated string, a key with an escape (it might unescape to "Data") or a Data
// value that is not a string; a Data string with an escape or that is not base64 stays in
// place, for the DOM path to decode or reject.
void GetRecordsCompactor::feed(std::string_view piece) {
  const char* c = piece.data();
  const std::size_t n = piece.size();
  std::size_t k = 0;
  while (k < n) {
    switch (state_) {
      case State::kFailed:
        json_.append(c + k, n - k);
        return;
      case State::kScan: {
        const void* q = std::memchr(c + k, '"', n - k);
        if (q == nullptr) {
          json_.append(c + k, n - k);
          return;
        }
        const auto at = static_cast<std::size_t>(static_cast<const char*>(q) - c);
        json_.append(c + k, at + 1 - k);
        k = at + 1;
        state_ = State::kString;
        str_len_ = 0;
        str_backslash_ = odd_backslashes_ = false;
        break;
      }
      case State::kString: {
        const void* q = std::memchr(c + k, '"', n - k);
        const std::size_t end = q ? static_cast<std::size_t>(static_cast<const char*>(q) - c) : n;
        const std::size_t seg = end - k;
        for (std::size_t i = 0; i < seg && str_len_ + i < sizeof str_head_; ++i) {
          str_head_[str_len_ + i] = c[k + i];
        }
        if (seg > 0) {
          if (std::memchr(c + k, '\\', seg) != nullptr) str_backslash_ = true;
          std::size_t b = 0;
          while (b < seg && c[end - 1 - b] == '\\') ++b;
          // All backslashes: they continue the run the previous piece ended with.
          odd_backslashes_ = b == seg ? odd_backslashes_ != (b % 2 == 1) : b % 2 == 1;
        }
        json_.append(c + k, seg);
        str_len_ += seg;
        k = end;
        if (q == nullptr) return;
        json_.push_back('"');
        ++k;
        if (odd_backslashes_) {  // an escaped quote: the string goes on
          if (str_len_ < sizeof str_head_) str_head_[str_len_] = '"';
          ++str_len_;
          odd_backslashes_ = false;
        } else {
          state_ = State::kAfterString;
        }
        break;
      }
      case State::kAfterString: {
        while (k < n && json_space(c[k])) json_.push_back(c[k++]);
        if (k == n) return;
        if (c[k] != ':') {  // a value, not a key: c[k] is looked at again
          state_ = State::kScan;
          break;
        }
        if (str_backslash_) {
          fail();
          break;
        }
        json_.push_back(':');
        ++k;
        state_ = str_len_ == 4 && std::memcmp(str_head_, "Data", 4) == 0 ? State::kAfterColon
                                                                         : State::kScan;
        break;
      }
      case State::kAfterColon: {
        while (k < n && json_space(c[k])) json_.push_back(c[k++]);
        if (k == n) return;
        if (c[k] != '"') {
          fail();
          break;
        }
        ++k;
        value_.clear();
        state_ = State::kDataValue;
        break;
      }
      case State::kDataValue: {
        const void* q = std::memchr(c + k, '"', n - k);
        const std::size_t end = q ? static_cast<std::size_t>(static_cast<const char*>(q) - c) : n;
        value_.append(c + k, end - k);
        k = end;
        if (q == nullptr) return;
        ++k;
        std::size_t b = 0;
        while (b < value_.size() && value_[value_.size() - 1 - b] == '\\') ++b;
        if (b % 2 == 1) {  // an escaped quote
          value_.push_back('"');
          break;
        }
        std::string decoded = StringPool::records().take();
        if (value_.find('\\') == std::string::npos && base64_decode(value_, decoded)) {
          char index[24];
          char* e = std::to_chars(index, index + sizeof index - 1, data_.size()).ptr;
          *e++ = ' ';  // as in compact_get_records()
          index_at_.push_back(json_.size());
          json_.append(index, e);
          data_.push_back(std::move(decoded));
        } else {  // left as it is, for the DOM path
          json_.push_back('"');
          json_.append(value_);
          json_.push_back('"');
        }
        state_ = State::kScan;
        break;
      }
    }
  }
}

void GetRecordsCompactor::finish() {
  // An unterminated string, or "Data": with no string after it: the DOM parser's case.
  if (state_ == State::kString || state_ == State::kAfterColon || state_ == State::kDataValue) {
    fail();
  }
  finished_ = true;
  json_.reserve(json_.size() + simdjson::SIMDJSON_PADDING);
}

void GetRecordsCompactor::fail() {
  if (state_ == State::kDataValue) {  // its opening quote and what came of it so far
    json_.push_back('"');
    json_.append(value_);
  }
  if (!data_.empty()) json_ = original();
  data_.clear();
  index_at_.clear();
  failed_ = true;
  state_ = State::kFailed;
}

std::string GetRecordsCompactor::original() const {
  if (data_.empty()) return json_;
  std::size_t size = json_.size() + simdjson::SIMDJSON_PADDING;
  for (const std::string& d : data_) size += base64_encoded_size(d.size()) + 2;
  std::string out;
  out.reserve(size);
  std::size_t from = 0;
  for (std::size_t i = 0; i < index_at_.size(); ++i) {
    out.append(json_, from, index_at_[i] - from);
    out.push_back('"');
    base64_append(out, data_[i]);
    out.push_back('"');
    from = json_.find(' ', index_at_[i]) + 1;  // past the index and its space
  }
  out.append(json_, from);
  return out;
}

namespace {

// `decoded`: the Data strings compact_get_records() took out (a Data value that is a number is
// an index in it), or null for an original body.
Result<GetRecordsResult> get_records_from(dom::element doc, std::vector<std::string>* decoded) {
  GetRecordsResult out;
  // (record, index in `decoded`): `decoded` is left whole if the document fails, for the
  // caller to rebuild the body from.
  std::vector<std::pair<std::size_t, std::size_t>> taken;
  dom::array records;
  if (!doc.at_key("Records").get_array().get(records)) {
    out.records.reserve(records.size());
    for (dom::element r : records) {
      StreamRecord rec;
      dom::element d;
      std::string_view data;
      std::uint64_t at = 0;
      if (r.at_key("Data").get(d)) return bad_response("record without Data");
      if (decoded != nullptr && !d.get_uint64().get(at) && at < decoded->size()) {
        taken.emplace_back(out.records.size(), at);  // moved once all records parsed
      } else if (d.get_string().get(data)) {
        return bad_response("record without Data");
      } else if (!base64_decode(data, rec.data)) {
        return bad_response("record Data is not base64");
      }
      rec.sequence_number = std::string(str(r, "SequenceNumber"));
      rec.partition_key = std::string(str(r, "PartitionKey"));
      rec.approximate_arrival_timestamp_ms = epoch_ms(r, "ApproximateArrivalTimestamp");
      const std::string_view enc = str(r, "EncryptionType");
      if (!enc.empty()) rec.encryption_type = std::string(enc);
      out.records.push_back(std::move(rec));
    }
  }
  for (const auto& [record, at] : taken) out.records[record].data = std::move((*decoded)[at]);
  std::string_view next;
  if (!doc.at_key("NextShardIterator").get_string().get(next) && !next.empty()) {
    out.next_shard_iterator = std::string(next);
  }
  out.millis_behind_latest = i64(doc, "MillisBehindLatest");
  dom::array children;
  if (!doc.at_key("ChildShards").get_array().get(children)) {
    for (dom::element c : children) {
      ChildShard cs;
      cs.shard_id = std::string(str(c, "ShardId"));
      dom::array parents;
      if (!c.at_key("ParentShards").get_array().get(parents)) {
        for (dom::element p : parents) {
          std::string_view ps;
          if (!p.get_string().get(ps)) cs.parent_shards.emplace_back(ps);
        }
      }
      cs.hash_key_range = parse_range(c);
      out.child_shards.push_back(std::move(cs));
    }
  }
  return out;
}

}  // namespace

Result<GetRecordsResult> parse_get_records(std::string_view json, std::size_t readable) {
  thread_local GetRecordsCompactor compactor;  // its buffers are kept for the next body
  compactor.reset(json.size());
  compactor.feed(json);
  compactor.finish();
  // Nothing taken out: the body itself goes to the DOM parser, in place when it is padded.
  if (!compactor.compacted()) return parse_get_records_dom(json, readable);
  return parse_get_records(compactor);
}

Result<GetRecordsResult> parse_get_records(GetRecordsCompactor& compactor) {
  std::string& json = compactor.json();
  if (!compactor.compacted()) return parse_get_records_dom(json, json.capacity());
  auto doc = parse_doc(json, json.capacity());
  if (doc.ok()) {
    auto r = get_records_from(*doc, &compactor.data());
    if (r.ok()) return r;
  }
  // As in parse_get_records(): an error is the DOM parser's, over the body.
  const std::string body = compactor.original();
  return parse_get_records_dom(body, body.capacity());
}

Result<GetRecordsResult> parse_get_records_dom(std::string_view json, std::size_t readable) {
  auto doc = parse_doc(json, readable);
  if (!doc.ok()) return std::move(doc).status();
  return get_records_from(*doc, nullptr);
}

Result<PutRecordsResult> parse_put_records(std::string_view json) {
  auto doc = parse_doc(json);
  if (!doc.ok()) return std::move(doc).status();
  PutRecordsResult out;
  out.failed_record_count = static_cast<int>(i64(*doc, "FailedRecordCount"));
  out.encryption_type = std::string(str(*doc, "EncryptionType"));
  dom::array records;
  if (doc->at_key("Records").get_array().get(records)) return bad_response("no Records array");
  out.records.reserve(records.size());
  for (dom::element r : records) {
    PutRecordsResultEntry e;
    e.sequence_number = std::string(str(r, "SequenceNumber"));
    e.shard_id = std::string(str(r, "ShardId"));
    e.error_code = std::string(str(r, "ErrorCode"));
    e.error_message = std::string(str(r, "ErrorMessage"));
    if (e.error_code.empty() && e.sequence_number.empty()) {
      e.error_code = "MissingSequenceNumber";
      e.error_message = "the response entry has neither a sequence number nor an error code";
    }
    out.records.push_back(std::move(e));
  }
  return out;
}

std::string build_put_records(const StreamRef& stream, std::span<const PutRecordsEntry> records) {
  std::size_t reserve = 64 + stream.display().size();
  for (const auto& r : records) {
    reserve +=
        64 + r.partition_key.size() + r.explicit_hash_key.size() + (r.data.size() + 2) / 3 * 4;
  }
  JsonWriter w(reserve);
  w.begin_object();
  write_stream(w, stream);
  w.key("Records").begin_array();
  for (const auto& r : records) {
    w.begin_object().key("Data").base64(r.data).key("PartitionKey").string(r.partition_key);
    if (!r.explicit_hash_key.empty()) w.key("ExplicitHashKey").string(r.explicit_hash_key);
    w.end_object();
  }
  w.end_array().end_object();
  return std::move(w).take();
}

}  // namespace detail

Result<std::unique_ptr<KinesisClient>> KinesisClient::create(const AwsClientConfig& config) {
  auto svc = ServiceClient::create(config, detail::kKinesisSpec);
  if (!svc.ok()) return std::move(svc).status();
  return std::unique_ptr<KinesisClient>(new KinesisClient(std::move(*svc)));
}

KinesisClient::KinesisClient(std::shared_ptr<ServiceClient> service)
    : service_(std::move(service)) {}
KinesisClient::~KinesisClient() = default;

std::string KinesisClient::endpoint_url() const { return service_->endpoint().url(); }

Status KinesisClient::create_stream(std::string_view name, std::optional<int> shard_count) {
  JsonWriter w;
  w.begin_object().key("StreamName").string(name);
  if (shard_count) {
    w.key("ShardCount").number(*shard_count);
  } else {
    w.key("StreamModeDetails").begin_object().key("StreamMode").string("ON_DEMAND").end_object();
  }
  w.end_object();
  auto r = service_->call("CreateStream", w.str());
  return r.ok() ? Status() : std::move(r).status();
}

Status KinesisClient::delete_stream(const StreamRef& stream, bool enforce_consumer_deletion) {
  JsonWriter w;
  w.begin_object();
  write_stream(w, stream);
  if (enforce_consumer_deletion) w.key("EnforceConsumerDeletion").boolean(true);
  w.end_object();
  auto r = service_->call("DeleteStream", w.str());
  return r.ok() ? Status() : std::move(r).status();
}

Result<StreamSummary> KinesisClient::describe_stream_summary(const StreamRef& stream) {
  JsonWriter w;
  w.begin_object();
  write_stream(w, stream);
  w.end_object();
  auto r = service_->call("DescribeStreamSummary", w.str());
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_doc(r->body);
  if (!doc.ok()) return std::move(doc).status();
  dom::element d;
  if (doc->at_key("StreamDescriptionSummary").get(d)) {
    return bad_response("no StreamDescriptionSummary");
  }
  StreamSummary s;
  s.name = std::string(str(d, "StreamName"));
  s.arn = std::string(str(d, "StreamARN"));
  s.status = std::string(str(d, "StreamStatus"));
  dom::element mode;
  if (!d.at_key("StreamModeDetails").get(mode))
    s.stream_mode = std::string(str(mode, "StreamMode"));
  s.open_shard_count = static_cast<int>(i64(d, "OpenShardCount"));
  s.retention_period_hours = static_cast<int>(i64(d, "RetentionPeriodHours"));
  s.encryption_type = std::string(str(d, "EncryptionType"));
  s.consumer_count = static_cast<int>(i64(d, "ConsumerCount"));
  s.creation_timestamp_ms = epoch_ms(d, "StreamCreationTimestamp");
  return s;
}

Status KinesisClient::wait_for_stream_active(const StreamRef& stream,
                                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(20);
  while (true) {
    auto s = describe_stream_summary(stream);
    if (!s.ok()) return std::move(s).status();
    if (s->status == "ACTIVE") return {};
    if (std::chrono::steady_clock::now() + delay > deadline) {
      return Status::deadline_exceeded("stream " + stream.display() + " is still " + s->status +
                                       " after " + std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(delay);  // polling a remote state; no event to wait on
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
}

Result<std::vector<std::string>> KinesisClient::list_streams() {
  std::vector<std::string> names;
  std::string next_token, last_name;
  for (int page = 0; page < 10000; ++page) {
    JsonWriter w;
    w.begin_object();
    if (!next_token.empty()) {
      w.key("NextToken").string(next_token);
    } else if (!last_name.empty()) {
      w.key("ExclusiveStartStreamName").string(last_name);
    }
    w.end_object();
    auto r = service_->call("ListStreams", w.str());
    if (!r.ok()) return std::move(r).status();
    auto doc = parse_doc(r->body);
    if (!doc.ok()) return std::move(doc).status();
    dom::array arr;
    std::size_t added = 0;
    if (!doc->at_key("StreamNames").get_array().get(arr)) {
      for (dom::element e : arr) {
        std::string_view n;
        if (!e.get_string().get(n)) {
          names.emplace_back(n);
          ++added;
        }
      }
    }
    bool more = false;
    if (doc->at_key("HasMoreStreams").get_bool().get(more) || !more || added == 0) break;
    next_token = std::string(str(*doc, "NextToken"));
    last_name = names.back();
  }
  return names;
}

Result<std::vector<Shard>> KinesisClient::list_shards(const StreamRef& stream,
                                                      const ListShardsOptions& options) {
  std::vector<Shard> shards;
  std::string next_token;
  for (int page = 0; page < 100000; ++page) {
    JsonWriter w;
    w.begin_object();
    if (!next_token.empty()) {
      // With NextToken, AWS rejects the stream name and the filters.
      w.key("NextToken").string(next_token);
    } else {
      write_stream(w, stream);
      if (!options.exclusive_start_shard_id.empty()) {
        w.key("ExclusiveStartShardId").string(options.exclusive_start_shard_id);
      }
      if (!options.filter_type.empty()) {
        w.key("ShardFilter").begin_object().key("Type").string(options.filter_type);
        if (!options.filter_shard_id.empty()) w.key("ShardId").string(options.filter_shard_id);
        if (options.filter_timestamp_ms != 0) {
          w.key("Timestamp").raw(epoch_seconds(options.filter_timestamp_ms));
        }
        w.end_object();
      }
    }
    w.key("MaxResults").number(options.max_results_per_page);
    w.end_object();
    ServiceClient::CallOptions call_options;
    call_options.cancel = options.cancel;
    auto r = service_->call("ListShards", w.str(), call_options);
    if (!r.ok()) return std::move(r).status();
    auto doc = parse_doc(r->body);
    if (!doc.ok()) return std::move(doc).status();
    dom::array arr;
    if (!doc->at_key("Shards").get_array().get(arr)) {
      for (dom::element e : arr) {
        auto s = parse_shard(e);
        if (!s.ok()) return std::move(s).status();
        shards.push_back(std::move(*s));
      }
    }
    next_token = std::string(str(*doc, "NextToken"));
    if (next_token.empty()) break;
  }
  return shards;
}

Result<KinesisClient::PutRecordResult> KinesisClient::put_record(
    const StreamRef& stream, std::string_view partition_key, std::string_view data,
    std::string_view explicit_hash_key) {
  JsonWriter w;
  w.begin_object();
  write_stream(w, stream);
  w.key("Data").base64(data).key("PartitionKey").string(partition_key);
  if (!explicit_hash_key.empty()) w.key("ExplicitHashKey").string(explicit_hash_key);
  w.end_object();
  auto r = service_->call("PutRecord", w.str());
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_doc(r->body);
  if (!doc.ok()) return std::move(doc).status();
  PutRecordResult out{std::string(str(*doc, "ShardId")), std::string(str(*doc, "SequenceNumber"))};
  if (out.sequence_number.empty()) return bad_response("PutRecord without SequenceNumber");
  return out;
}

Result<PutRecordsResult> KinesisClient::put_records(const StreamRef& stream,
                                                    std::span<const PutRecordsEntry> records) {
  auto r = service_->call("PutRecords", detail::build_put_records(stream, records));
  if (!r.ok()) return std::move(r).status();
  auto out = detail::parse_put_records(r->body);
  if (out.ok() && out->records.size() != records.size()) {
    return Status(StatusCode::kInternal,
                  "PutRecords answered " + std::to_string(out->records.size()) + " entries for " +
                      std::to_string(records.size()) + " records",
                  RetryClass::kNone);
  }
  return out;
}

void KinesisClient::put_records_async(const StreamRef& stream,
                                      std::span<const PutRecordsEntry> records,
                                      std::function<void(Result<PutRecordsResult>)> done) {
  service_->call_async("PutRecords", detail::build_put_records(stream, records),
                       [done = std::move(done)](Result<ServiceResponse> r) {
                         if (!r.ok()) return done(std::move(r).status());
                         done(detail::parse_put_records(r->body));
                       });
}

Result<std::string> KinesisClient::get_shard_iterator(const StreamRef& stream,
                                                      std::string_view shard_id,
                                                      const ShardIteratorStart& start,
                                                      std::chrono::milliseconds attempt_timeout,
                                                      const CancelToken* cancel) {
  JsonWriter w;
  w.begin_object();
  write_stream(w, stream);
  w.key("ShardId")
      .string(shard_id)
      .key("ShardIteratorType")
      .string(shard_iterator_type_name(start.type));
  if (start.type == ShardIteratorType::kAtSequenceNumber ||
      start.type == ShardIteratorType::kAfterSequenceNumber) {
    w.key("StartingSequenceNumber").string(start.sequence_number);
  }
  if (start.type == ShardIteratorType::kAtTimestamp) {
    w.key("Timestamp").raw(epoch_seconds(start.timestamp_ms));
  }
  w.end_object();
  ServiceClient::CallOptions opts;
  opts.cancel = cancel;
  if (attempt_timeout.count() > 0) {
    opts.max_attempts = 1;
    opts.attempt_timeout = attempt_timeout;
  }
  auto r = service_->call("GetShardIterator", w.str(), opts);
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_doc(r->body);
  if (!doc.ok()) return std::move(doc).status();
  std::string it(str(*doc, "ShardIterator"));
  if (it.empty()) return bad_response("no ShardIterator");
  return it;
}

namespace {
std::string get_records_body(std::string_view iterator, int limit, const StreamRef* stream) {
  JsonWriter w(iterator.size() + 96);
  w.begin_object().key("ShardIterator").string(iterator).key("Limit").number(limit);
  if (stream != nullptr && !stream->arn.empty()) w.key("StreamARN").string(stream->arn);
  w.end_object();
  return std::move(w).take();
}
}  // namespace

Result<GetRecordsResult> KinesisClient::get_records(std::string_view shard_iterator, int limit,
                                                    const StreamRef* stream) {
  auto r = service_->call("GetRecords", get_records_body(shard_iterator, limit, stream));
  if (!r.ok()) return std::move(r).status();
  return detail::parse_get_records(r->body, r->body.capacity());
}

namespace {
// Compacts a GetRecords body chunk by chunk as it arrives (see GetRecordsCompactor): the
// body is never copied whole, and each chunk is lexed while it is in the cache.
// Compactors whose buffers (the compacted document, the Data string being read) have grown to
// a response's size, kept for the next responses on the same thread: allocating them anew for
// every call page-faulted them in again, which cost more than the compaction saved.
std::vector<std::unique_ptr<detail::GetRecordsCompactor>>& compactor_pool() {
  thread_local std::vector<std::unique_ptr<detail::GetRecordsCompactor>> pool;
  return pool;
}

class GetRecordsFilter final : public detail::BodyFilter {
 public:
  ~GetRecordsFilter() override { release(); }
  void begin(std::size_t expected) override {
    if (!compactor) {
      auto& pool = compactor_pool();
      if (pool.empty()) {
        compactor = std::make_unique<detail::GetRecordsCompactor>();
      } else {
        compactor = std::move(pool.back());
        pool.pop_back();
      }
    }
    compactor->reset(expected);
  }
  void feed(std::string_view chunk) override { compactor->feed(chunk); }
  void end() override { compactor->finish(); }
  // Back to the pool of the calling thread (a few per thread: one per transfer in progress).
  void release() {
    if (!compactor) return;
    auto& pool = compactor_pool();
    if (pool.size() < 8) pool.push_back(std::move(compactor));
    compactor.reset();
  }
  std::unique_ptr<detail::GetRecordsCompactor> compactor;  // set once a 2xx body began
};
}  // namespace

void KinesisClient::get_records_async(std::string_view shard_iterator, int limit,
                                      std::function<void(Result<GetRecordsResult>)> done) {
  auto filter = std::make_shared<GetRecordsFilter>();
  service_->call_async(
      "GetRecords", get_records_body(shard_iterator, limit, nullptr),
      [done = std::move(done), filter](Result<ServiceResponse> r) {
        if (!r.ok()) return done(std::move(r).status());
        if (!filter->compactor) {
          return done(detail::parse_get_records(r->body, r->body.capacity()));
        }
        Result<GetRecordsResult> parsed = detail::parse_get_records(*filter->compactor);
        filter->release();
        done(std::move(parsed));
      },
      std::chrono::milliseconds(0), filter);
}

Status KinesisClient::split_shard(const StreamRef& stream, std::string_view shard_id,
                                  const HashKey& new_starting_hash_key) {
  JsonWriter w;
  w.begin_object();
  write_stream(w, stream);
  w.key("ShardToSplit")
      .string(shard_id)
      .key("NewStartingHashKey")
      .string(new_starting_hash_key.to_decimal());
  w.end_object();
  auto r = service_->call("SplitShard", w.str());
  return r.ok() ? Status() : std::move(r).status();
}

Status KinesisClient::merge_shards(const StreamRef& stream, std::string_view shard_id,
                                   std::string_view adjacent_shard_id) {
  JsonWriter w;
  w.begin_object();
  write_stream(w, stream);
  w.key("ShardToMerge").string(shard_id).key("AdjacentShardToMerge").string(adjacent_shard_id);
  w.end_object();
  auto r = service_->call("MergeShards", w.str());
  return r.ok() ? Status() : std::move(r).status();
}

Status KinesisClient::update_shard_count(const StreamRef& stream, int target_shard_count) {
  JsonWriter w;
  w.begin_object();
  write_stream(w, stream);
  w.key("TargetShardCount").number(target_shard_count).key("ScalingType").string("UNIFORM_SCALING");
  w.end_object();
  auto r = service_->call("UpdateShardCount", w.str());
  return r.ok() ? Status() : std::move(r).status();
}

Result<StreamConsumer> KinesisClient::register_stream_consumer(std::string_view stream_arn,
                                                               std::string_view consumer_name) {
  JsonWriter w;
  w.begin_object().key("StreamARN").string(stream_arn).key("ConsumerName").string(consumer_name);
  w.end_object();
  auto r = service_->call("RegisterStreamConsumer", w.str());
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_doc(r->body);
  if (!doc.ok()) return std::move(doc).status();
  dom::element c;
  if (doc->at_key("Consumer").get(c)) return bad_response("no Consumer");
  return parse_consumer(c);
}

namespace {
// A consumer named by its ARN, or by its stream's ARN and its name.
std::string consumer_body(std::string_view stream_arn, std::string_view consumer_name,
                          std::string_view consumer_arn) {
  JsonWriter w;
  w.begin_object();
  if (!consumer_arn.empty()) {
    w.key("ConsumerARN").string(consumer_arn);
  } else {
    w.key("StreamARN").string(stream_arn).key("ConsumerName").string(consumer_name);
  }
  w.end_object();
  return std::move(w).take();
}
}  // namespace

Result<StreamConsumer> KinesisClient::describe_stream_consumer(std::string_view stream_arn,
                                                               std::string_view consumer_name,
                                                               std::string_view consumer_arn) {
  auto r = service_->call("DescribeStreamConsumer",
                          consumer_body(stream_arn, consumer_name, consumer_arn));
  if (!r.ok()) return std::move(r).status();
  auto doc = parse_doc(r->body);
  if (!doc.ok()) return std::move(doc).status();
  dom::element c;
  if (doc->at_key("ConsumerDescription").get(c)) return bad_response("no ConsumerDescription");
  return parse_consumer(c);
}

Status KinesisClient::deregister_stream_consumer(std::string_view stream_arn,
                                                 std::string_view consumer_name,
                                                 std::string_view consumer_arn) {
  auto r = service_->call("DeregisterStreamConsumer",
                          consumer_body(stream_arn, consumer_name, consumer_arn));
  return r.ok() ? Status() : std::move(r).status();
}

// ---- SubscribeToShard ---------------------------------------------------------------------

namespace detail {

Result<SubscribeToShardEvent> parse_subscribe_to_shard_event(std::string_view json) {
  auto doc = parse_doc(json);
  if (!doc.ok()) return std::move(doc).status();
  auto r = get_records_from(*doc, nullptr);
  if (!r.ok()) return std::move(r).status();
  SubscribeToShardEvent e;
  e.records = std::move(r->records);
  e.millis_behind_latest = r->millis_behind_latest;
  e.child_shards = std::move(r->child_shards);
  e.continuation_sequence_number = std::string(str(*doc, "ContinuationSequenceNumber"));
  return e;
}

}  // namespace detail

namespace {

// The response body of one SubscribeToShard call, decoded as it arrives. Event-loop thread,
// except cancel().
class Subscription final : public detail::BodyFilter, public ShardSubscription {
 public:
  explicit Subscription(std::function<void(SubscribeToShardEvent&&)> on_event)
      : on_event_(std::move(on_event)) {}

  void cancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  void begin(std::size_t) override {}
  void feed(std::string_view chunk) override {
    if (!error_.ok() || cancelled()) return;
    Status s = decoder_.feed(chunk, [this](detail::EventStreamMessage&& m) { on_message(m); });
    if (!s.ok() && error_.ok()) error_ = std::move(s).with_context("SubscribeToShard");
  }
  void end() override {
    if (error_.ok() && decoder_.buffered() != 0) {
      error_ = Status::data_loss("SubscribeToShard: the stream ended inside an event");
    }
  }
  bool keep_going() override { return error_.ok() && !cancelled(); }
  bool unbounded() const override { return true; }

  // Why the call ended, given the HTTP layer's verdict.
  Status outcome(const Result<detail::ServiceResponse>& r) const {
    if (cancelled()) return Status::cancelled("SubscribeToShard: cancelled");
    if (!error_.ok()) return error_;
    if (!r.ok()) return r.status().with_context("SubscribeToShard");
    return Status();
  }

 private:
  void on_message(const detail::EventStreamMessage& m) {
    if (!error_.ok() || cancelled()) return;
    const std::string_view type = m.header(":message-type");
    if (type == "exception") {
      // An AWS error inside the 200: the same classification as an error response.
      error_ = detail::aws_error_status(400, m.payload, m.header(":exception-type"), "")
                   .with_context("SubscribeToShard");
      return;
    }
    if (type == "error") {
      error_ = Status::unavailable("SubscribeToShard: stream error " +
                                   std::string(m.header(":error-code")) + ": " +
                                   std::string(m.header(":error-message")));
      return;
    }
    // "initial-response" (AWS sends one first; kinesis-mock does not) and unknown events
    // carry no records.
    if (type != "event" || m.header(":event-type") != "SubscribeToShardEvent") return;
    auto e = detail::parse_subscribe_to_shard_event(m.payload);
    if (!e.ok()) {
      error_ = std::move(e).status().with_context("SubscribeToShard event");
      return;
    }
    on_event_(std::move(*e));
  }

  std::function<void(SubscribeToShardEvent&&)> on_event_;
  detail::EventStreamDecoder decoder_;
  Status error_;
  std::atomic<bool> cancelled_{false};
};

// AWS ends a subscription after 5 minutes; the request's own limit is a little longer.
constexpr std::chrono::milliseconds kSubscriptionTimeout{330000};

}  // namespace

std::shared_ptr<ShardSubscription> KinesisClient::subscribe_to_shard(
    std::string_view consumer_arn, std::string_view shard_id, const ShardIteratorStart& start,
    std::function<void(SubscribeToShardEvent&&)> on_event, std::function<void(Status)> done) {
  JsonWriter w;
  w.begin_object().key("ConsumerARN").string(consumer_arn).key("ShardId").string(shard_id);
  w.key("StartingPosition").begin_object().key("Type").string(shard_iterator_type_name(start.type));
  if (start.type == ShardIteratorType::kAtSequenceNumber ||
      start.type == ShardIteratorType::kAfterSequenceNumber) {
    w.key("SequenceNumber").string(start.sequence_number);
  } else if (start.type == ShardIteratorType::kAtTimestamp) {
    w.key("Timestamp").raw(epoch_seconds(start.timestamp_ms));
  }
  w.end_object().end_object();
  auto sub = std::make_shared<Subscription>(std::move(on_event));
  service_->call_async(
      "SubscribeToShard", std::move(w).take(),
      [sub, done = std::move(done)](Result<detail::ServiceResponse> r) { done(sub->outcome(r)); },
      kSubscriptionTimeout, sub);
  return sub;
}

}  // namespace shardline
