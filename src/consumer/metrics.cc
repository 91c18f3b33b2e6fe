// WorkerMetrics exports: Prometheus text and CloudWatch embedded-metric-format lines.
#include <string>

#include "aws/json_writer.h"
#include "shardline/consumer.h"

namespace shardline {
namespace {

struct Row {
  const char* kcl_name;  // EMF
  const char* prom_name;
  const char* type;
  const char* help;
  std::int64_t WorkerMetrics::*value;
  const char* unit;
};

constexpr Row kRows[] = {
    {"RecordsProcessed", "records_processed_total", "counter", "User records given to processors.",
     &WorkerMetrics::records_processed, "Count"},
    {"DataBytesProcessed", "data_bytes_processed_total", "counter",
     "User record data bytes given to processors.", &WorkerMetrics::data_bytes_processed, "Bytes"},
    {"MillisBehindLatest", "millis_behind_latest", "gauge",
     "Largest MillisBehindLatest over the held shards.", &WorkerMetrics::millis_behind_latest,
     "Milliseconds"},
    {"CurrentLeases", "current_leases", "gauge", "Leases held.", &WorkerMetrics::current_leases,
     "Count"},
    {"LostLeases", "lost_leases_total", "counter", "Leases lost to other workers or expiry.",
     &WorkerMetrics::lost_leases, "Count"},
    {"TakenLeases", "taken_leases_total", "counter", "Leases taken (including stolen).",
     &WorkerMetrics::taken_leases, "Count"},
    {"StolenLeases", "stolen_leases_total", "counter", "Leases stolen from busier workers.",
     &WorkerMetrics::stolen_leases, "Count"},
    {"ReleasedLeases", "released_leases_total", "counter",
     "Leases given up (shutdown, shard end, STOP policy).", &WorkerMetrics::released_leases,
     "Count"},
    {"ExpiredIterator", "expired_iterators_total", "counter", "Shard iterators that expired.",
     &WorkerMetrics::expired_iterators, "Count"},
    {"GetRecords.Success", "get_records_calls_total", "counter", "Successful GetRecords calls.",
     &WorkerMetrics::get_records_calls, "Count"},
    {"GetRecords.Failure", "get_records_failures_total", "counter", "Failed GetRecords calls.",
     &WorkerMetrics::get_records_failures, "Count"},
    {"GetRecords.Throttled", "throttled_reads_total", "counter", "Throttled GetRecords calls.",
     &WorkerMetrics::throttled_reads, "Count"},
    {"ProcessRecords.Failure", "process_records_failures_total", "counter",
     "Failed process_records calls.", &WorkerMetrics::process_records_failures, "Count"},
    {"RecordsSkipped", "records_skipped_total", "counter",
     "User records skipped after a failed process_records (SKIP policy).",
     &WorkerMetrics::records_skipped, "Count"},
    {"RecordsFiltered", "records_filtered_total", "counter",
     "Aggregated user records outside the shard's hash range (not this shard's).",
     &WorkerMetrics::records_filtered, "Count"},
    {"CorruptAggregates", "corrupt_aggregates_total", "counter",
     "Aggregates with a broken record table, delivered raw.", &WorkerMetrics::corrupt_aggregates,
     "Count"},
    {"UpdateLease.Success", "checkpoints_total", "counter", "Checkpoints written.",
     &WorkerMetrics::checkpoints, "Count"},
    {"UpdateLease.Failure", "checkpoint_failures_total", "counter",
     "Checkpoints refused or failed.", &WorkerMetrics::checkpoint_failures, "Count"},
    {"LeaseStoreCalls", "lease_store_calls_total", "counter", "Calls to the lease store.",
     &WorkerMetrics::lease_store_calls, "Count"},
    {"RenewLease.Success", "renewals_total", "counter", "Lease renewals.", &WorkerMetrics::renewals,
     "Count"},
    {"CreateLease.Success", "leases_created_total", "counter", "Leases created.",
     &WorkerMetrics::leases_created, "Count"},
    {"DeleteLease.Success", "leases_deleted_total", "counter", "Finished leases cleaned up.",
     &WorkerMetrics::leases_deleted, "Count"},
    {"HashRangeHoles", "hash_range_holes_total", "counter",
     "Table scans that found a hash-range hole.", &WorkerMetrics::hash_range_holes, "Count"},
};

std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string WorkerMetrics::to_prometheus(std::string_view worker_id) const {
  std::string o;
  const std::string w = "{worker=\"" + label(worker_id) + "\"}";
  for (const Row& r : kRows) {
    std::string n = std::string("shardline_consumer_") + r.prom_name;
    o += "# HELP " + n + " " + r.help + "\n# TYPE " + n + " " + r.type + "\n";
    o += n + w + " " + std::to_string(this->*r.value) + "\n";
  }
  o += "# HELP shardline_consumer_shard_records_processed_total User records processed per "
       "shard.\n# TYPE shardline_consumer_shard_records_processed_total counter\n";
  for (const ShardStatus& s : shards) {
    o += "shardline_consumer_shard_records_processed_total{worker=\"" + label(worker_id) +
         "\",shard=\"" + label(s.shard_id) + "\"} " + std::to_string(s.records_processed) + "\n";
  }
  o += "# HELP shardline_consumer_shard_millis_behind_latest MillisBehindLatest per shard.\n"
       "# TYPE shardline_consumer_shard_millis_behind_latest gauge\n";
  for (const ShardStatus& s : shards) {
    o += "shardline_consumer_shard_millis_behind_latest{worker=\"" + label(worker_id) +
         "\",shard=\"" + label(s.shard_id) + "\"} " + std::to_string(s.millis_behind_latest) + "\n";
  }
  return o;
}

std::string WorkerMetrics::to_emf(std::string_view application, std::string_view worker_id,
                                  std::int64_t timestamp_ms) const {
  detail::JsonWriter w;
  w.begin_object().key("_aws").begin_object().key("Timestamp").number(timestamp_ms);
  w.key("CloudWatchMetrics").begin_array().begin_object();
  w.key("Namespace").string(application);
  w.key("Dimensions")
      .begin_array()
      .begin_array()
      .string("WorkerIdentifier")
      .end_array()
      .end_array();
  w.key("Metrics").begin_array();
  for (const Row& r : kRows) {
    w.begin_object().key("Name").string(r.kcl_name).key("Unit").string(r.unit).end_object();
  }
  w.end_array().end_object().end_array().end_object();
  w.key("WorkerIdentifier").string(worker_id);
  for (const Row& r : kRows) w.key(r.kcl_name).number(this->*r.value);
  w.end_object();
  return std::move(w).take();
}

}  // namespace shardline
