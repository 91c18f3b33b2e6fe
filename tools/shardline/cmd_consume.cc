// shardline consume --stream NAME --application APP [--lease-table dynamodb:TABLE|sqlite:PATH]
//                   [--worker-id ID] [--initial-position TRIM_HORIZON|LATEST|AT_TIMESTAMP:<ms>]
//                   [--until-idle SECONDS] [--config kcl.properties] [--dynamodb-endpoint URL]
//                   [--metrics-file FILE]
//
// A KCL worker (shardline/consumer.h) that prints every user record as the JSON line of
// `shardline tail`, with leases and checkpoints in a lease store shared by every process of the
// application: several `consume` processes split the shards between them, and a restarted one
// resumes after its checkpoints.
//
// At-least-once: a batch is checkpointed only after its lines were written to stdout. The lines
// of one batch are written together under a process-wide lock (lines of different shards never
// interleave inside a line), then checkpointed. A write error (EPIPE, closed stdout) stops the
// worker without checkpointing anything not written, and the exit status is 1.
//
// SIGINT/SIGTERM (or --until-idle) shut the worker down gracefully: every processor checkpoints
// what it wrote and the leases are released, so other workers take them over at once.
// A one-line JSON summary goes to stderr at exit: {"worker", "records", "shards": [...]}.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aws_cli.h"
#include "commands.h"
#include "io.h"
#include "shardline/config.h"
#include "shardline/consumer.h"
#include "shardline/lease_store.h"

namespace shardline::cli {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct ConsumeArgs {
  AwsOptions aws;
  std::string stream;
  std::string application;
  std::string lease_table;
  std::string worker_id;
  std::string initial_position;
  std::string config_file;
  std::string dynamodb_endpoint;
  std::string metrics_file;
  double until_idle = 0;
};

// What the processors share with the main thread: stdout and the first write error.
class SharedOutput {
 public:
  // Writes `lines` (whole lines) to stdout now. False once stdout has failed: nothing more is
  // written and the main thread stops the worker.
  bool write(const std::string& lines) {
    std::lock_guard<std::mutex> lock(out_mu_);
    if (failed_.load()) return false;
    if (lines.empty()) return true;
    out_.buf().append(lines);
    const Status s = out_.flush();
    if (s.ok()) return true;
    error_ = std::string(s.message());
    failed_.store(true);
    notify();
    return false;
  }

  bool failed() const noexcept { return failed_.load(); }
  std::string error() const {
    std::lock_guard<std::mutex> lock(out_mu_);
    return error_;
  }

  // A checkpoint that failed for a reason other than a lost lease; the next batch or the
  // shutdown checkpoints again. The first few are shown.
  void checkpoint_warning(const std::string& shard_id, const Status& s) {
    constexpr int kShown = 10;
    const int n = checkpoint_warnings_.fetch_add(1);
    if (n < kShown) {
      std::fprintf(stderr, "shardline: warning: %s: checkpoint failed (%s); retried later%s\n",
                   shard_id.c_str(), s.to_string().c_str(),
                   n + 1 == kShown ? " (further checkpoint warnings not shown)" : "");
    }
  }

  // The main thread waits here for a stop condition.
  std::mutex mu;
  std::condition_variable cv;
  void notify() {
    { std::lock_guard<std::mutex> lock(mu); }
    cv.notify_all();
  }

 private:
  mutable std::mutex out_mu_;
  Output out_{1};
  std::atomic<bool> failed_{false};
  std::string error_;
  std::atomic<int> checkpoint_warnings_{0};
};

// Prints the records of one lease acquisition and checkpoints what has been written.
class PrintingProcessor : public RecordProcessor {
 public:
  explicit PrintingProcessor(std::shared_ptr<SharedOutput> out) : out_(std::move(out)) {}

  Status initialize(const InitializationInput& input) override {
    shard_id_ = input.shard_id;
    return {};
  }

  Status process_records(const ProcessRecordsInput& input) override {
    // After a write error nothing is printed or checkpointed: the next run sees these records.
    if (out_->failed()) return {};
    lines_.clear();
    const std::string_view shard_id = shard_id_;
    for (const ConsumerRecord& r : input.records) {
      RecordContext ctx;
      ctx.sequence_number = &r.sequence_number;
      ctx.shard_id = &shard_id;
      ctx.arrival_ms = &r.approximate_arrival_timestamp_ms;
      append_record_json(lines_, r.partition_key, r.explicit_hash_key, r.data,
                         static_cast<std::uint64_t>(r.sub_sequence_number), r.aggregated, ctx);
    }
    if (!out_->write(lines_)) return {};
    if (!input.records.empty()) {
      const ConsumerRecord& last = input.records.back();
      written_ =
          ExtendedSequenceNumber{std::string(last.sequence_number), last.sub_sequence_number};
    }
    // Everything delivered so far has been written (records filtered out of this shard's hash
    // range included: they are delivered to no one).
    note_checkpoint(input.checkpointer.checkpoint());
    return {};
  }

  Status shard_ended(Checkpointer& checkpointer) override {
    // SHARD_END would skip records that could not be written; the call is retried until the
    // worker stops.
    if (out_->failed()) return {};
    return checkpointer.checkpoint();
  }

  Status shutdown_requested(Checkpointer& checkpointer) override {
    if (!out_->failed()) {
      // Every record delivered has been written (process_records writes before returning).
      note_checkpoint(checkpointer.checkpoint());
    } else if (written_ && compare(*written_, checkpointer.last_checkpoint()) > 0) {
      note_checkpoint(
          checkpointer.checkpoint(written_->sequence_number, written_->sub_sequence_number));
    }
    return {};
  }

 private:
  void note_checkpoint(const Status& s) {
    // A lost lease is not a problem here: lease_lost() follows and the new owner resumes at the
    // last checkpoint.
    if (s.ok() || s.code() == StatusCode::kFailedPrecondition) return;
    out_->checkpoint_warning(shard_id_, s);
  }

  std::shared_ptr<SharedOutput> out_;
  std::string shard_id_;
  std::string lines_;
  std::optional<ExtendedSequenceNumber> written_;  // the last record written
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "shardline: error: %s\n", message.c_str());
  return 2;
}

// Applies --initial-position to `cfg`.
Status set_initial_position(const std::string& text, ConsumerConfig& cfg) {
  if (text == "TRIM_HORIZON" || text == "LATEST") {
    cfg.initial_position_in_stream = text;
    return {};
  }
  if (text.rfind("AT_TIMESTAMP:", 0) == 0) {
    const std::string ms = text.substr(13);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(ms.c_str(), &end, 10);
    if (ms.empty() || ms[0] == '-' || ms[0] == '+' || *end != '\0' || errno != 0 || v < 0) {
      return Status::invalid_argument(
          "--initial-position AT_TIMESTAMP:<epoch-ms> needs a millisecond epoch, got '" + ms + "'");
    }
    cfg.initial_position_in_stream = "AT_TIMESTAMP";
    cfg.initial_timestamp_millis = v;
    return {};
  }
  return Status::invalid_argument(
      "--initial-position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP:<epoch-ms>, got '" + text +
      "'");
}

// The settings: the CLI's default position, then --config, then the command-line flags.
// Returns 0 or the exit status of a usage error (already reported).
int build_config(const ConsumeArgs& a, ConsumerConfig& cfg) {
  // The library starts new shards at LATEST, like the KCL; the CLI reads what is already there,
  // so `put` then `consume` shows the data. A value in --config wins over this default.
  cfg.initial_position_in_stream = "TRIM_HORIZON";
  if (!a.config_file.empty()) {
    std::vector<std::string> warnings;
    const Status s = load_properties_file(a.config_file, cfg, &warnings);
    std::set<std::string> seen;
    for (const std::string& w : warnings) {
      if (seen.insert(w).second) std::fprintf(stderr, "shardline: warning: %s\n", w.c_str());
    }
    if (!s.ok()) return usage_error("--config: " + std::string(s.message()));
  }
  if (!a.stream.empty()) {
    // The flag wins over both keys of the file.
    if (a.stream.rfind("arn:", 0) == 0) {
      cfg.stream_arn = a.stream;
      cfg.stream_name.clear();
    } else {
      cfg.stream_name = a.stream;
      cfg.stream_arn.clear();
    }
  }
  if (!a.application.empty()) cfg.application_name = a.application;
  if (!a.worker_id.empty()) cfg.worker_id = a.worker_id;
  if (!a.lease_table.empty()) cfg.lease_store = a.lease_table;
  if (!a.initial_position.empty()) {
    const Status s = set_initial_position(a.initial_position, cfg);
    if (!s.ok()) return usage_error(std::string(s.message()));
  }
  if (!a.aws.region.empty()) cfg.region_name = a.aws.region;
  if (!a.aws.endpoint_url.empty()) cfg.kinesis_endpoint = a.aws.endpoint_url;
  if (!a.dynamodb_endpoint.empty()) cfg.dynamodb_endpoint = a.dynamodb_endpoint;
  if (a.aws.no_verify_ssl) cfg.verify_certificate = false;

  if (cfg.stream_name.empty() && cfg.stream_arn.empty()) {
    return usage_error("--stream is required (or streamName / streamArn in the --config file)");
  }
  if (cfg.application_name.empty()) {
    return usage_error("--application is required (or applicationName in the --config file)");
  }
  return 0;
}

void remove_if_empty(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
    ::unlink(path.c_str());
  }
}

// The one-line summary on stderr.
std::string summary_json(const std::string& worker_id, const WorkerMetrics& m) {
  std::string o = "{\"worker\":";
  append_json_string(o, worker_id);
  o += ",\"records\":" + std::to_string(m.records_processed) + ',';
  append_shards_json(o, m.shards);
  o += "}\n";
  return o;
}

int run(const ConsumeArgs& a) {
  // From the start: a signal during start-up is a graceful shutdown too.
  install_stop_signals();
  // A closed stdout must be a write error (EPIPE), not a silent death by SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  ConsumerConfig cfg;
  if (const int rc = build_config(a, cfg); rc != 0) return rc;

  // Kinesis: --endpoint-url (now also cfg.kinesis_endpoint, which the worker prefers).
  AwsClientConfig aws = make_aws_config(a.aws);
  // The lease store gets its own endpoint: --endpoint-url names the Kinesis server.
  AwsClientConfig store_aws = aws;
  store_aws.endpoint_url = cfg.dynamodb_endpoint;
  if (!cfg.region_name.empty()) store_aws.region = cfg.region_name;
  store_aws.verify_tls = aws.verify_tls && cfg.verify_certificate;
  store_aws.request_timeout = milliseconds(cfg.request_timeout_millis);

  const std::string spec =
      cfg.lease_store.empty() ? default_lease_table(cfg.application_name) : cfg.lease_store;
  // Opening a SQLite store creates its file. If this run creates it and then cannot start
  // (e.g. no region), it removes the file again: a usage error leaves nothing behind.
  std::string new_file;
  if (spec.rfind("sqlite:", 0) == 0) {
    struct stat st {};
    if (::stat(spec.c_str() + 7, &st) != 0 && errno == ENOENT) new_file = spec.substr(7);
  }
  auto store = open_lease_store(spec, cfg.application_name, store_aws);
  if (!store.ok()) return report_error("--lease-table", store.status());

  auto out = std::make_shared<SharedOutput>();
  WorkerOptions options;
  options.config = cfg;
  options.aws = aws;
  options.lease_store = std::shared_ptr<LeaseStore>(std::move(*store));
  const bool debug = a.aws.debug;
  options.log = [debug](LogLevel level, std::string_view message) {
    if (level < LogLevel::kWarning && !debug) return;
    const char* name = level >= LogLevel::kError     ? "error"
                       : level == LogLevel::kWarning ? "warning"
                       : level == LogLevel::kInfo    ? "info"
                                                     : "debug";
    std::fprintf(stderr, "shardline: %s: %.*s\n", name, static_cast<int>(message.size()),
                 message.data());
  };
  auto created = Worker::create(std::move(options), [out](const std::string&) {
    return std::make_unique<PrintingProcessor>(out);
  });
  if (!created.ok()) {
    if (!new_file.empty()) remove_if_empty(new_file);
    // Settings the worker cannot run with (also kUnimplemented: FANOUT) are usage errors.
    const Status& s = created.status();
    const int rc = report_error("configuration", s);
    return s.code() == StatusCode::kUnimplemented ? 2 : rc;
  }
  std::unique_ptr<Worker> worker = std::move(*created);

  Status run_status;
  bool run_done = false;
  std::thread runner([&] {
    Status s = worker->run();
    {
      std::lock_guard<std::mutex> lock(out->mu);
      run_status = std::move(s);
      run_done = true;
    }
    out->cv.notify_all();
  });

  // Wait for a reason to stop: the worker stopped on its own (a fatal error), a signal, a write
  // error, or --until-idle seconds without a delivered record or a newly taken lease. Signals
  // only set a flag, so wake up regularly to look at it.
  const auto idle_limit = std::chrono::duration<double>(a.until_idle);
  auto last_activity = SteadyClock::now();
  std::int64_t last_records = 0, last_taken = 0;
  {
    std::unique_lock<std::mutex> lock(out->mu);
    while (!run_done && !out->failed() && !stop_requested()) {
      if (a.until_idle > 0) {
        lock.unlock();
        const WorkerMetrics m = worker->metrics();
        const auto now = SteadyClock::now();
        lock.lock();
        if (m.records_processed != last_records || m.taken_leases != last_taken) {
          last_records = m.records_processed;
          last_taken = m.taken_leases;
          last_activity = now;
        } else if (now - last_activity >= idle_limit) {
          break;
        }
        if (run_done) break;
      }
      out->cv.wait_for(lock, milliseconds(100));
    }
  }
  worker->shutdown();  // graceful: checkpoints, then every lease is released
  runner.join();

  const WorkerMetrics m = worker->metrics();
  const std::string summary = summary_json(worker->worker_id(), m);
  std::fputs(summary.c_str(), stderr);

  int rc = 0;
  if (out->failed()) {
    std::fprintf(stderr, "shardline: error: writing to standard output: %s\n",
                 out->error().c_str());
    rc = 1;
  } else if (!run_status.ok()) {
    rc = report_error("consume", run_status);
  }
  if (!a.metrics_file.empty() &&
      !write_text_file(a.metrics_file, m.to_prometheus(worker->worker_id())) && rc == 0) {
    rc = 1;
  }
  return rc;
}

}  // namespace

Runner add_consume(CLI::App& app) {
  auto a = std::make_shared<ConsumeArgs>();
  CLI::App* sub = app.add_subcommand(
      "consume",
      "Consume a stream as a KCL application: leases and checkpoints shared by every worker, "
      "records printed as JSON lines.");
  add_aws_options(*sub, a->aws);
  sub->add_option("--stream", a->stream,
                  "Stream name or ARN (required unless streamName/streamArn is in --config)");
  sub->add_option("--application", a->application,
                  "Application name: workers of one application share the shards (required "
                  "unless applicationName is in --config)");
  sub->add_option("--lease-table", a->lease_table,
                  "dynamodb:TABLE or sqlite:PATH (default: leaseStore from --config, else "
                  "sqlite:APPLICATION.leases.db in the working directory)");
  sub->add_option("--worker-id", a->worker_id,
                  "This worker's id in the lease table (default: host name + random suffix)");
  sub->add_option("--initial-position", a->initial_position,
                  "Where a shard without a checkpoint starts: TRIM_HORIZON, LATEST or "
                  "AT_TIMESTAMP:<epoch-ms> (default: TRIM_HORIZON; the library's and the KCL's "
                  "default is LATEST)");
  sub->add_option("--until-idle", a->until_idle,
                  "Shut down gracefully after this many seconds in which no record was "
                  "delivered and no lease was taken (default: run until SIGINT/SIGTERM)")
      ->check(CLI::Range(0.0, 86400.0));
  sub->add_option("--config", a->config_file,
                  "KCL-style .properties file of consumer settings (see `shardline config "
                  "docs`); command-line flags win over its values");
  sub->add_option("--dynamodb-endpoint", a->dynamodb_endpoint,
                  "DynamoDB endpoint URL for a dynamodb: lease table, e.g. http://127.0.0.1:4568 "
                  "(--endpoint-url is the Kinesis endpoint; default: dynamoDBEndpoint from "
                  "--config, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL)");
  sub->add_option("--metrics-file", a->metrics_file,
                  "At exit, write the worker's metrics here (Prometheus text format)");
  sub->footer(
      "Output lines (stdout): the fields of `shardline deagg` plus sequenceNumber, shardId and\n"
      "approximateArrivalTimestamp (epoch ms), as `shardline tail` prints them.\n"
      "At-least-once: a batch is checkpointed after its lines are written to stdout.\n"
      "SIGINT/SIGTERM: graceful shutdown (checkpoint, release the leases), exit 0.\n"
      "At exit, one JSON line on stderr: worker, records, shards [{shardId, records,\n"
      "checkpoint, checkpointSubSequenceNumber}].\n"
      "Exit 0 after a graceful shutdown; 1 when stdout fails (e.g. a closed pipe) or another\n"
      "failure; 2 bad arguments or settings; 3 stream or lease table not found;\n"
      "4 authentication or permission; 5 throttled or unavailable.");
  return [a]() -> int { return run(*a); };
}

}  // namespace shardline::cli
