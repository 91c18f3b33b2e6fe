// Metric exports: Prometheus text and CloudWatch embedded metric format (EMF).
#include <cstdio>
#include <string>

#include "aws/json_writer.h"
#include "shardline/producer.h"

namespace shardline {

namespace {

void metric(std::string& out, const char* type, const char* name, const char* help,
            std::uint64_t v) {
  const std::string n = std::string("shardline_producer_") + name;
  out += "# HELP " + n + " " + help + "\n# TYPE " + n + " " + type + "\n";
  out += n + " " + std::to_string(v) + "\n";
}
void counter(std::string& out, const char* name, const char* help, std::uint64_t v) {
  metric(out, "counter", name, help, v);
}
void gauge(std::string& out, const char* name, const char* help, std::uint64_t v) {
  metric(out, "gauge", name, help, v);
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void summary(std::string& out, const char* name, const char* help, const MetricStat& s) {
  const std::string n = std::string("shardline_producer_") + name;
  out += "# HELP " + n + " " + help + "\n# TYPE " + n + " summary\n";
  out += n + "_sum " + num(s.sum) + "\n" + n + "_count " + std::to_string(s.count) + "\n";
}

}  // namespace

std::string ProducerMetrics::to_prometheus() const {
  std::string o;
  counter(o, "user_records_received_total", "User records accepted by put().",
          user_records_received);
  gauge(o, "user_records_pending", "User records accepted and not yet resolved.",
        user_records_pending);
  counter(o, "user_records_put_total", "User records stored in Kinesis.", user_records_put);
  counter(o, "user_records_failed_total", "User records that failed (any reason).",
          user_records_failed);
  counter(o, "user_records_data_put_bytes_total", "User data bytes stored.", user_records_data_put);
  counter(o, "user_record_expired_total", "User records that failed by RecordTtl.",
          user_record_expired);
  counter(o, "kinesis_records_put_total", "Kinesis records stored.", kinesis_records_put);
  counter(o, "kinesis_records_data_put_bytes_total", "Kinesis record bytes stored.",
          kinesis_records_data_put);
  counter(o, "put_records_requests_total", "PutRecords calls made.", put_records_requests);
  counter(o, "all_errors_total", "Failed Kinesis records and failed calls.", all_errors);
  counter(o, "retries_total", "Attempts beyond the first, over all user records.", retries);
  o += "# HELP shardline_producer_errors_total Errors by code.\n# TYPE "
       "shardline_producer_errors_total counter\n";
  for (const auto& [code, n] : errors_by_code) {
    o += "shardline_producer_errors_total{code=\"" + code + "\"} " + std::to_string(n) + "\n";
  }
  summary(o, "retries_per_record", "Retries per resolved user record.", retries_per_record);
  summary(o, "buffering_time_ms", "Time from arrival or last attempt to send.", buffering_time_ms);
  summary(o, "request_time_ms", "PutRecords call duration.", request_time_ms);
  summary(o, "user_records_per_kinesis_record", "Aggregation factor.",
          user_records_per_kinesis_record);
  summary(o, "kinesis_records_per_put_records_request", "Batching factor.",
          kinesis_records_per_put_records_request);
  summary(o, "user_records_per_put_records_request", "User records per call.",
          user_records_per_put_records_request);
  return o;
}

std::string ProducerMetrics::to_emf(std::string_view metrics_namespace,
                                    std::int64_t timestamp_ms) const {
  struct Value {
    const char* name;
    const char* unit;
    double value;
  };
  const Value values[] = {
      {"UserRecordsReceived", "Count", static_cast<double>(user_records_received)},
      {"UserRecordsPending", "Count", static_cast<double>(user_records_pending)},
      {"UserRecordsPut", "Count", static_cast<double>(user_records_put)},
      {"UserRecordsDataPut", "Bytes", static_cast<double>(user_records_data_put)},
      {"UserRecordExpired", "Count", static_cast<double>(user_record_expired)},
      {"KinesisRecordsPut", "Count", static_cast<double>(kinesis_records_put)},
      {"KinesisRecordsDataPut", "Bytes", static_cast<double>(kinesis_records_data_put)},
      {"AllErrors", "Count", static_cast<double>(all_errors)},
      {"RetriesPerRecord", "Count", retries_per_record.mean()},
      {"BufferingTime", "Milliseconds", buffering_time_ms.mean()},
      {"RequestTime", "Milliseconds", request_time_ms.mean()},
      {"UserRecordsPerKinesisRecord", "Count", user_records_per_kinesis_record.mean()},
      {"KinesisRecordsPerPutRecordsRequest", "Count",
       kinesis_records_per_put_records_request.mean()},
      {"UserRecordsPerPutRecordsRequest", "Count", user_records_per_put_records_request.mean()},
  };
  detail::JsonWriter w;
  w.begin_object().key("_aws").begin_object().key("Timestamp").number(timestamp_ms);
  w.key("CloudWatchMetrics").begin_array().begin_object();
  w.key("Namespace").string(metrics_namespace);
  w.key("Dimensions").begin_array().begin_array().end_array().end_array();
  w.key("Metrics").begin_array();
  for (const Value& v : values) {
    w.begin_object().key("Name").string(v.name).key("Unit").string(v.unit).end_object();
  }
  w.end_array().end_object().end_array().end_object();
  for (const Value& v : values) w.key(v.name).raw(num(v.value));
  for (const auto& [code, n] : errors_by_code)
    w.key("ErrorsByCode." + code).number(static_cast<std::int64_t>(n));
  w.end_object();
  return std::move(w).take();
}

}  // namespace shardline
