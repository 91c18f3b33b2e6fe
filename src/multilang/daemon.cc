// MultiLangDaemon: the settings of a KCL MultiLangDaemon properties file turned into a Worker
// whose processors are child processes (MultiLangSupervisor), and its bounded graceful stop.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "shardline/multilang.h"

namespace shardline {

namespace {

// The worker's own format (host name + random suffix): the daemon needs the id before the
// worker exists (a restart that releases a lease checks that the lease is still ours).
std::string default_worker_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "worker");
  }
  std::random_device rd;
  char suffix[20];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return std::string(host) + "-" + suffix;
}

// The KCL 1.x properties name endpoints as host names ("kinesis.us-east-1.amazonaws.com").
std::string with_scheme(const std::string& endpoint) {
  if (endpoint.empty() || endpoint.find("://") != std::string::npos) return endpoint;
  return "https://" + endpoint;
}

}  // namespace

class MultiLangDaemon::Impl {
 public:
  Impl(std::shared_ptr<MultiLangSupervisor> sup, std::unique_ptr<Worker> worker,
       std::shared_ptr<LeaseStore> store, MultiLangConfig ml, LogSink log)
      : sup_(std::move(sup)),
        worker_(std::move(worker)),
        store_(std::move(store)),
        ml_(std::move(ml)),
        log_(std::move(log)) {}

  ~Impl() {
    stop();
    worker_.reset();
    sup_->kill_all();
    sup_->wait_children(std::chrono::seconds(5));
  }

  Status start() {
    Status s = worker_->start();
    if (!s.ok()) start_failed_ = true;
    return s;
  }
  Status run() {
    Status s = worker_->run();
    // run() returns early only when its start() failed: the worker never ran (and its wait()
    // would not return true), so stop() has no worker to wait for.
    if (!s.ok() && !worker_->stopped()) start_failed_ = true;
    return s;
  }

  void request_stop() {
    sup_->begin_shutdown();
    worker_->shutdown();
  }

  void stop() {
    std::lock_guard lk(stop_mu_);
    if (stopped_) return;
    request_stop();
    if (start_failed_) {
      stopped_ = true;
      return;  // no worker thread and no child ever ran
    }
    const auto grace = std::chrono::milliseconds(ml_.shutdown_grace_millis);
    const auto exit_wait = std::chrono::milliseconds(ml_.child_exit_timeout_millis);
    // Every conversation ends by the grace deadline (its child is killed then); the slack
    // covers the lease releases after it.
    if (!worker_->wait(grace + std::chrono::seconds(5))) {
      log(LogLevel::kWarning, "the worker had not stopped " +
                                  std::to_string((grace + std::chrono::seconds(5)).count()) +
                                  " ms after the shutdown began; killing every child");
      sup_->kill_all();
      (void)worker_->wait(std::chrono::seconds(10));
    }
    if (!sup_->wait_children(exit_wait + std::chrono::milliseconds(500))) {
      sup_->kill_all();
      (void)sup_->wait_children(std::chrono::seconds(5));
    }
    stopped_ = true;
  }

  bool stopped() const { return start_failed_ || worker_->stopped(); }

  void log(LogLevel level, const std::string& m) const {
    const std::string text = "worker " + worker_->worker_id() + ": " + m;
    if (log_) {
      log_(level, text);
    } else if (level >= LogLevel::kInfo) {
      std::fprintf(stderr, "shardline: %s\n", text.c_str());
    }
  }

  std::shared_ptr<MultiLangSupervisor> sup_;
  std::unique_ptr<Worker> worker_;
  std::shared_ptr<LeaseStore> store_;
  MultiLangConfig ml_;
  LogSink log_;
  std::mutex stop_mu_;
  bool stopped_ = false;
  std::atomic<bool> start_failed_{false};
};

Result<std::unique_ptr<MultiLangDaemon>> MultiLangDaemon::create(MultiLangDaemonOptions o) {
  ConsumerConfig& c = o.consumer;
  const MultiLangConfig& ml = o.multilang;
  SHARDLINE_RETURN_IF_ERROR(validate_config(ml));
  std::vector<std::string> command = split_executable_name(ml.executable_name);
  if (command.empty()) {
    return Status::invalid_argument(
        "executableName is required: the program the daemon runs for each shard, e.g. "
        "executableName = python3 app.py");
  }
  if (auto path = resolve_executable(command.front(), o.working_directory); !path.ok()) {
    return Status::invalid_argument("executableName '" + ml.executable_name +
                                    "': " + std::string(path.status().message()));
  }
  if (c.application_name.empty()) return Status::invalid_argument("applicationName is required");
  if (c.stream_name.empty() && c.stream_arn.empty()) {
    return Status::invalid_argument("streamName or streamArn is required");
  }
  // Every child conversation holds a processing thread while it waits for the child.
  if (c.processing_threads == 0) {
    c.processing_threads =
        ml.max_active_threads > 0 ? std::min<std::int64_t>(ml.max_active_threads, 1024) : 64;
  }
  if (c.worker_id.empty()) c.worker_id = default_worker_id();
  c.kinesis_endpoint = with_scheme(c.kinesis_endpoint);
  c.dynamodb_endpoint = with_scheme(c.dynamodb_endpoint);

  LogSink log = o.log;
  auto warn = [&](const std::string& w) {
    if (o.warnings != nullptr) o.warnings->push_back(w);
    if (log) {
      log(LogLevel::kWarning, w);
    } else {
      std::fprintf(stderr, "shardline: warning: %s\n", w.c_str());
    }
  };

  CredentialsOptions copts;
  copts.profile = o.aws.profile;
  copts.region = c.region_name.empty() ? o.aws.region : c.region_name;
  std::shared_ptr<CredentialsProvider> ddb_credentials = o.aws.credentials;
  if (!o.aws.credentials) {
    std::vector<std::string> w;
    auto p = credentials_provider_from_kcl(ml.aws_credentials_provider, copts, &w);
    for (const auto& x : w) warn(x);
    if (!p.ok()) return p.status();
    o.aws.credentials = *p;
    ddb_credentials = *p;
    if (!ml.aws_credentials_provider_dynamodb.empty()) {
      w.clear();
      auto d = credentials_provider_from_kcl(ml.aws_credentials_provider_dynamodb, copts, &w);
      for (const auto& x : w) warn("(DynamoDB) " + x);
      if (!d.ok()) return d.status().with_context("AwsCredentialsProviderDynamoDB");
      ddb_credentials = *d;
    }
  }

  std::shared_ptr<LeaseStore> store = o.lease_store;
  if (!store) {
    // As the Java daemon: the DynamoDB table tableName, else applicationName.
    const std::string spec =
        !c.lease_store.empty()
            ? c.lease_store
            : "dynamodb:" + (c.table_name.empty() ? c.application_name : c.table_name);
    AwsClientConfig d = o.aws;
    d.credentials = ddb_credentials;
    d.endpoint_url = c.dynamodb_endpoint;
    if (!c.region_name.empty()) d.region = c.region_name;
    if (!c.verify_certificate) d.verify_tls = false;
    d.request_timeout = std::chrono::milliseconds(c.request_timeout_millis);
    if (!d.log) d.log = log;
    auto opened = open_lease_store(spec, c.application_name, d);
    if (!opened.ok()) return opened.status().with_context("lease store " + spec);
    store = std::shared_ptr<LeaseStore>(std::move(*opened));
  }

  MultiLangProcessorOptions po;
  po.command = std::move(command);
  po.working_directory = o.working_directory;
  po.response_timeout = std::chrono::seconds(ml.timeout_in_seconds);
  po.shutdown_grace = std::chrono::milliseconds(ml.shutdown_grace_millis);
  po.child_exit_timeout = std::chrono::milliseconds(ml.child_exit_timeout_millis);
  po.replay_buffer_max_bytes = ml.replay_buffer_max_bytes;
  po.zero_copy_messages = ml.zero_copy_messages;
  po.worker_id = c.worker_id;
  po.lease_store = store;
  po.log = log;
  po.child_stderr = o.child_stderr;
  auto sup = MultiLangSupervisor::create(std::move(po));
  if (!sup.ok()) return sup.status();

  WorkerOptions wo;
  wo.config = c;
  wo.aws = o.aws;
  wo.lease_store = store;
  wo.kinesis = o.kinesis;
  wo.log = log;
  auto worker = Worker::create(std::move(wo), (*sup)->factory());
  if (!worker.ok()) return worker.status();
  return std::unique_ptr<MultiLangDaemon>(
      new MultiLangDaemon(std::make_unique<Impl>(*sup, std::move(*worker), store, ml, log)));
}

MultiLangDaemon::MultiLangDaemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MultiLangDaemon::~MultiLangDaemon() = default;
Status MultiLangDaemon::start() { return impl_->start(); }
Status MultiLangDaemon::run() { return impl_->run(); }
void MultiLangDaemon::stop() { impl_->stop(); }
void MultiLangDaemon::request_stop() { impl_->request_stop(); }
bool MultiLangDaemon::stopped() const { return impl_->stopped(); }
WorkerMetrics MultiLangDaemon::worker_metrics() const { return impl_->worker_->metrics(); }
MultiLangMetrics MultiLangDaemon::metrics() const { return impl_->sup_->metrics(); }
const std::string& MultiLangDaemon::worker_id() const { return impl_->worker_->worker_id(); }
std::string MultiLangDaemon::lease_store() const { return impl_->store_->describe(); }

}  // namespace shardline
