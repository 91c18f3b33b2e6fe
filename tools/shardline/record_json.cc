#include "record_json.h"

#include <simdjson.h>

namespace shardline::cli {

namespace {

using simdjson::ondemand::json_type;
using simdjson::ondemand::object;

enum class Field { kNone, kData, kPk, kEhk, kSeq, kKinesis };

Field classify(std::string_view k) {
  if (k == "data" || k == "Data") return Field::kData;
  if (k == "partitionKey" || k == "PartitionKey") return Field::kPk;
  if (k == "explicitHashKey" || k == "ExplicitHashKey") return Field::kEhk;
  if (k == "sequenceNumber" || k == "SequenceNumber") return Field::kSeq;
  if (k == "kinesis") return Field::kKinesis;
  return Field::kNone;
}

bool read_object(object obj, RecordFields& out, std::string& error, int depth) {
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) {
      error = "malformed JSON key";
      return false;
    }
    const Field f = classify(key);
    if (f == Field::kNone) continue;  // other fields are skipped unread
    auto value = field.value();
    json_type type;
    if (value.type().get(type)) {
      error = "malformed JSON value for '" + std::string(key) + "'";
      return false;
    }
    if (type == json_type::null) continue;
    if (f == Field::kKinesis) {
      if (type != json_type::object || depth > 0) continue;
      object inner;
      if (value.get_object().get(inner)) {
        error = "malformed 'kinesis' object";
        return false;
      }
      if (!read_object(inner, out, error, depth + 1)) return false;
      continue;
    }
    std::string_view s;
    if (type != json_type::string || value.get_string().get(s)) {
      error = "'" + std::string(key) + "' must be a string";
      return false;
    }
    switch (f) {
      case Field::kData:
        out.data = s;
        break;
      case Field::kPk:
        out.partition_key = s;
        break;
      case Field::kEhk:
        out.explicit_hash_key = s;
        break;
      case Field::kSeq:
        out.sequence_number = s;
        break;
      default:
        break;
    }
  }
  return true;
}

}  // namespace

struct RecordLineParser::Impl {
  simdjson::ondemand::parser parser;
};

RecordLineParser::RecordLineParser() : impl_(std::make_unique<Impl>()) {}
RecordLineParser::~RecordLineParser() = default;

bool RecordLineParser::parse(std::string_view line, RecordFields& out, std::string& error) {
  simdjson::ondemand::parser& parser = impl_->parser;
  out = RecordFields{};
  simdjson::ondemand::document doc;
  if (parser.iterate(line.data(), line.size(), line.size() + simdjson::SIMDJSON_PADDING).get(doc)) {
    error = "not valid JSON";
    return false;
  }
  object obj;
  if (doc.get_object().get(obj)) {
    error = "expected a JSON object";
    return false;
  }
  if (!read_object(obj, out, error, 0)) return false;
  // Anything after the object (e.g. "{}x") is an error.
  std::string_view rest = line;
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (rest.empty() || rest.back() != '}') {
    error = "trailing characters after the JSON object";
    return false;
  }
  return true;
}

}  // namespace shardline::cli
