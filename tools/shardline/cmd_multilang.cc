// shardline multilang [--properties] FILE [--lease-table dynamodb:TABLE|sqlite:PATH]
//                     [--worker-id ID] [--dynamodb-endpoint URL] [--metrics-file FILE] [--check]
//
// The KCL MultiLangDaemon without Java (shardline/multilang.h): reads an existing daemon
// properties file unchanged (executableName, applicationName, streamName, ...; see
// docs/CONFIGURATION.md) and runs one child process per held lease, speaking the KCL
// multi-language protocol to it. It replaces
//   java -cp <jars>:<dir> software.amazon.kinesis.multilang.MultiLangDaemon
//        [-p|--properties-file] sample.properties [-l logback.xml]
// and accepts the same argument forms (-l is accepted and ignored: logs go to stderr).
//
// Leases: the DynamoDB table tableName (else applicationName), as the Java daemon, so a Java
// daemon fleet's table is taken over as it is; `leaseStore = sqlite:PATH` in the file or
// --lease-table for the embedded store.
//
// SIGINT/SIGTERM: graceful shutdown bounded by shutdownGraceMillis (default 5000):
// shutdownRequested then leaseLost to every child, leases released, children reaped; exit 0.
// Logs (warnings and errors; everything with --debug) and every child's stderr lines, prefixed
// with worker, shard and pid, go to stderr; at exit one JSON summary line:
// {"worker", "records", "children": {...}, "shards": [...]}.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aws_cli.h"
#include "commands.h"
#include "io.h"
#include "shardline/config.h"
#include "shardline/multilang.h"

namespace shardline::cli {

namespace {

struct MultiLangArgs {
  AwsOptions aws;
  std::vector<std::string> positional;
  std::string properties;
  std::string log_configuration;
  std::string lease_table;
  std::string worker_id;
  std::string dynamodb_endpoint;
  std::string metrics_file;
  bool check = false;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "shardline: error: %s\n", message.c_str());
  return 2;
}

// One stderr line at a time, whole: children's lines and the daemon's never interleave inside
// a line.
std::mutex g_stderr_mu;
void print_line(const std::string& line) {
  std::lock_guard lk(g_stderr_mu);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void print_warning(const std::string& w) { print_line("shardline: warning: " + w + "\n"); }

// The properties file as the Java daemon picks it: one positional argument, or
// -p/--properties-file (which wins, with a warning, when both are given).
int properties_path(const MultiLangArgs& a, std::string& path) {
  if (a.positional.size() > 1) {
    std::string list;
    for (const auto& p : a.positional) list += (list.empty() ? "" : ", ") + p;
    return usage_error("expected a single properties file, got " +
                       std::to_string(a.positional.size()) + ": " + list);
  }
  if (!a.positional.empty()) path = a.positional.front();
  if (!a.properties.empty()) {
    if (!path.empty() && path != a.properties) {
      print_warning("overriding the properties file '" + path + "' with --properties '" +
                    a.properties + "'");
    }
    path = a.properties;
  }
  if (path.empty()) {
    return usage_error("a properties file is required: shardline multilang --properties FILE");
  }
  return 0;
}

int build_config(const MultiLangArgs& a, const std::string& path, ConsumerConfig& c,
                 MultiLangConfig& ml) {
  std::vector<std::string> warnings;
  const Status s = load_properties_file(path, c, ml, &warnings);
  std::set<std::string> seen;
  for (const std::string& w : warnings) {
    if (seen.insert(w).second) print_warning(w);
  }
  if (!s.ok()) return usage_error(std::string(s.message()));
  if (!a.log_configuration.empty()) {
    print_warning("--log-configuration '" + a.log_configuration +
                  "' ignored: logs go to stderr (--debug for more)");
  }
  if (!a.lease_table.empty()) c.lease_store = a.lease_table;
  if (!a.worker_id.empty()) c.worker_id = a.worker_id;
  if (!a.aws.region.empty()) c.region_name = a.aws.region;
  if (!a.aws.endpoint_url.empty()) c.kinesis_endpoint = a.aws.endpoint_url;
  if (!a.dynamodb_endpoint.empty()) c.dynamodb_endpoint = a.dynamodb_endpoint;
  if (a.aws.no_verify_ssl) c.verify_certificate = false;
  if (ml.executable_name.empty()) {
    return usage_error(path +
                       ": executableName is required (the program run for each shard, "
                       "e.g. executableName = python3 app.py)");
  }
  if (c.application_name.empty()) return usage_error(path + ": applicationName is required");
  if (c.stream_name.empty() && c.stream_arn.empty()) {
    return usage_error(path + ": streamName or streamArn is required");
  }
  return 0;
}

std::string summary_json(const std::string& worker_id, const WorkerMetrics& m,
                         const MultiLangMetrics& ml) {
  std::string o = "{\"worker\":";
  append_json_string(o, worker_id);
  o += ",\"records\":" + std::to_string(m.records_processed);
  o += ",\"children\":{\"started\":" + std::to_string(ml.children_started) +
       ",\"restarts\":" + std::to_string(ml.child_restarts) +
       ",\"timeouts\":" + std::to_string(ml.child_timeouts) +
       ",\"unexpectedExits\":" + std::to_string(ml.child_exits) +
       ",\"protocolErrors\":" + std::to_string(ml.protocol_errors) +
       ",\"startFailures\":" + std::to_string(ml.start_failures) +
       ",\"checkpoints\":" + std::to_string(ml.checkpoints) +
       ",\"checkpointErrors\":" + std::to_string(ml.checkpoint_errors) +
       ",\"recordsReplayed\":" + std::to_string(ml.records_replayed) +
       ",\"skippedLines\":" + std::to_string(ml.skipped_lines) + "}";
  o += ',';
  append_shards_json(o, m.shards);
  o += "}\n";
  return o;
}

std::string prometheus(const std::string& worker_id, const WorkerMetrics& m,
                       const MultiLangMetrics& ml) {
  std::string o = m.to_prometheus(worker_id);
  const std::pair<const char*, std::int64_t> rows[] = {
      {"children_started_total", ml.children_started},
      {"child_restarts_total", ml.child_restarts},
      {"child_timeouts_total", ml.child_timeouts},
      {"child_exits_total", ml.child_exits},
      {"protocol_errors_total", ml.protocol_errors},
      {"start_failures_total", ml.start_failures},
      {"skipped_lines_total", ml.skipped_lines},
      {"messages_sent_total", ml.messages_sent},
      {"records_sent_total", ml.records_sent},
      {"records_replayed_total", ml.records_replayed},
      {"bytes_sent_total", ml.bytes_sent},
      {"checkpoints_total", ml.checkpoints},
      {"checkpoint_errors_total", ml.checkpoint_errors},
      {"leases_released_total", ml.leases_released},
      {"stderr_lines_total", ml.stderr_lines},
  };
  for (const auto& [name, value] : rows) {
    o += "# TYPE shardline_multilang_" + std::string(name) + " counter\n";
    o += "shardline_multilang_" + std::string(name) + "{worker=\"" + worker_id + "\"} " +
         std::to_string(value) + "\n";
  }
  return o;
}

// --check: the settings as the daemon would use them, without starting anything.
int check(const std::string& path, const ConsumerConfig& c, const MultiLangConfig& ml,
          const AwsOptions& aws) {
  if (Status s = validate_config(c); !s.ok()) return usage_error(std::string(s.message()));
  if (Status s = validate_config(ml); !s.ok()) return usage_error(std::string(s.message()));
  const std::vector<std::string> argv = split_executable_name(ml.executable_name);
  if (argv.empty()) return usage_error(path + ": executableName is required");
  auto resolved = resolve_executable(argv.front());
  if (!resolved.ok()) {
    return usage_error("executableName '" + ml.executable_name +
                       "': " + std::string(resolved.status().message()));
  }
  CredentialsOptions copts;
  copts.profile = aws.profile;
  std::vector<std::string> warnings;
  auto creds = credentials_provider_from_kcl(ml.aws_credentials_provider, copts, &warnings);
  for (const auto& w : warnings) print_warning(w);
  if (!creds.ok()) return usage_error(std::string(creds.status().message()));
  const std::string store =
      !c.lease_store.empty()
          ? c.lease_store
          : "dynamodb:" + (c.table_name.empty() ? c.application_name : c.table_name);
  std::printf("%s: OK\n", path.c_str());
  std::printf("  child:       %s", resolved->c_str());
  for (std::size_t i = 1; i < argv.size(); ++i) std::printf(" %s", argv[i].c_str());
  std::printf("\n  application: %s\n  stream:      %s\n  lease store: %s\n",
              c.application_name.c_str(),
              (c.stream_arn.empty() ? c.stream_name : c.stream_arn).c_str(), store.c_str());
  std::printf("  credentials: %s\n", *creds ? (*creds)->name().c_str() : "the default chain");
  if (c.retrieval_mode == "FANOUT") {
    std::printf("  retrieval:   enhanced fan-out, consumer %s\n",
                !c.consumer_arn.empty()    ? c.consumer_arn.c_str()
                : !c.consumer_name.empty() ? c.consumer_name.c_str()
                                           : c.application_name.c_str());
  } else {
    std::printf("  retrieval:   polling, GetRecords every %lld ms\n",
                static_cast<long long>(c.idle_time_between_reads_in_millis));
  }
  return 0;
}

int run(const MultiLangArgs& a) {
  install_stop_signals();
  // A child that closes its stdin must be a write error, not a SIGPIPE to the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  std::string path;
  if (const int rc = properties_path(a, path); rc != 0) return rc;
  ConsumerConfig c;
  MultiLangConfig ml;
  if (const int rc = build_config(a, path, c, ml); rc != 0) return rc;
  if (a.check) return check(path, c, ml, a.aws);

  const bool debug = a.aws.debug;
  MultiLangDaemonOptions o;
  o.consumer = c;
  o.multilang = ml;
  o.aws = make_aws_config(a.aws);
  std::vector<std::string> warnings;
  o.warnings = &warnings;
  o.log = [debug](LogLevel level, std::string_view message) {
    if (level < LogLevel::kWarning && !debug) return;
    const char* name = level >= LogLevel::kError     ? "error"
                       : level == LogLevel::kWarning ? "warning"
                       : level == LogLevel::kInfo    ? "info"
                                                     : "debug";
    print_line("shardline: " + std::string(name) + ": " + std::string(message) + "\n");
  };
  auto worker_id = std::make_shared<std::string>();
  o.child_stderr = [worker_id](std::string_view shard, long pid, std::string_view line) {
    print_line("shardline: worker " + *worker_id + " shard " + std::string(shard) + " child " +
               std::to_string(pid) + ": " + std::string(line) + "\n");
  };
  auto created = MultiLangDaemon::create(std::move(o));
  if (!created.ok()) {
    const Status& s = created.status();
    if (s.code() == StatusCode::kUnimplemented || s.code() == StatusCode::kInvalidArgument) {
      return usage_error(std::string(s.message()));
    }
    return report_error("multilang", s);
  }
  std::unique_ptr<MultiLangDaemon> daemon = std::move(*created);
  *worker_id = daemon->worker_id();
  if (debug) {
    print_line("shardline: info: worker " + daemon->worker_id() + ": running '" +
               ml.executable_name + "' per shard, leases in " + daemon->lease_store() + "\n");
  }

  std::mutex mu;
  std::condition_variable cv;
  Status run_status;
  bool run_done = false;
  std::thread runner([&] {
    Status s = daemon->run();
    {
      std::lock_guard lk(mu);
      run_status = std::move(s);
      run_done = true;
    }
    cv.notify_all();
  });
  {
    // Signals only set a flag: look at it regularly.
    std::unique_lock lk(mu);
    while (!run_done && !stop_requested()) cv.wait_for(lk, std::chrono::milliseconds(50));
  }
  if (stop_requested() && debug) {
    print_line("shardline: info: worker " + daemon->worker_id() +
               ": shutting down (shutdownGraceMillis " + std::to_string(ml.shutdown_grace_millis) +
               ")\n");
  }
  daemon->stop();
  runner.join();

  const WorkerMetrics m = daemon->worker_metrics();
  const MultiLangMetrics mm = daemon->metrics();
  print_line(summary_json(daemon->worker_id(), m, mm));
  int rc = 0;
  if (!run_status.ok()) rc = report_error("multilang", run_status);
  if (!a.metrics_file.empty() &&
      !write_text_file(a.metrics_file, prometheus(daemon->worker_id(), m, mm)) && rc == 0) {
    rc = 1;
  }
  return rc;
}

}  // namespace

Runner add_multilang(CLI::App& app) {
  auto a = std::make_shared<MultiLangArgs>();
  CLI::App* sub = app.add_subcommand(
      "multilang",
      "Run a KCL MultiLangDaemon application without Java: one child process per leased "
      "shard, the KCL multi-language protocol on its stdin/stdout.");
  add_aws_options(*sub, a->aws);
  sub->add_option("properties_file", a->positional,
                  "The daemon's .properties file (as `java ... MultiLangDaemon FILE`)");
  sub->add_option("-p,--properties,--properties-file", a->properties,
                  "The daemon's .properties file (wins over the positional form)");
  sub->add_option("-l,--log-configuration", a->log_configuration,
                  "Accepted for compatibility (logback.xml) and ignored: logs go to stderr");
  sub->add_option("--lease-table", a->lease_table,
                  "dynamodb:TABLE or sqlite:PATH (default: leaseStore from the file, else the "
                  "DynamoDB table tableName or applicationName, as the Java daemon)");
  sub->add_option("--worker-id", a->worker_id,
                  "This worker's id in the lease table (default: workerId from the file, else "
                  "host name + random suffix)");
  sub->add_option("--dynamodb-endpoint", a->dynamodb_endpoint,
                  "DynamoDB endpoint URL for the lease table (default: dynamoDBEndpoint from the "
                  "file, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL); --endpoint-url is Kinesis "
                  "(default: kinesisEndpoint from the file)");
  sub->add_option("--metrics-file", a->metrics_file,
                  "At exit, write the worker's and the children's metrics here (Prometheus "
                  "text format)");
  sub->add_flag("--check", a->check,
                "Check the properties file (keys, executable, credentials providers) and print "
                "what would run; start nothing");
  sub->footer(
      "Children: executableName split on spaces, found in PATH like the Java daemon does, run\n"
      "in the daemon's working directory, one per held lease. A child that does not answer\n"
      "within timeoutInSeconds, exits or breaks the protocol is killed and restarted on its\n"
      "shard from the last checkpoint; the other shards go on.\n"
      "SIGINT/SIGTERM: shutdownRequested and leaseLost to every child within\n"
      "shutdownGraceMillis (default 5000), leases released, exit 0.\n"
      "At exit, one JSON line on stderr: worker, records, children {started, restarts,\n"
      "timeouts, unexpectedExits, ...}, shards [{shardId, records, checkpoint, ...}].\n"
      "Exit 0 after a graceful shutdown; 2 bad arguments or settings; 3 stream or lease table\n"
      "not found; 4 authentication or permission; 5 throttled or unavailable; 1 otherwise.");
  return [a]() -> int { return run(*a); };
}

}  // namespace shardline::cli
