// File: shardline/multilang.h
//
// A JVM-free KCL MultiLangDaemon: a Worker (shardline/consumer.h) whose record processors are
// child processes speaking the KCL multi-language protocol (newline-delimited JSON on the
// child's stdin and stdout, exactly as the Java daemon writes and reads it), so the official
// KCL client libraries for Python, Node.js, Ruby, ... and any program following the protocol
// run unchanged, without Java.
//
//   shardline::ConsumerConfig kcl;
//   shardline::MultiLangConfig mld;
//   std::vector<std::string> warnings;
//   SHARDLINE_RETURN_IF_ERROR(
//       shardline::load_properties_file("sample.properties", kcl, mld, &warnings));
//   auto daemon = shardline::MultiLangDaemon::create({.consumer = kcl, .multilang = mld});
//   if (!daemon.ok()) return daemon.status();          // kInvalidArgument names the key
//   std::thread stopper([&] { wait_for_sigterm(); (*daemon)->stop(); });
//   shardline::Status s = (*daemon)->run();            // until stop() completes
//
// One child per held lease, started by initialize() with the executable and working directory
// the Java daemon would use. Messages (daemon -> child): initialize, processRecords,
// shardEnded, leaseLost, shutdownRequested, and checkpoint replies carrying the KCL exception
// class name in "error"; (child -> daemon): status {responseFor} and checkpoint requests. Lines
// of the child's stdout that are not a known message are skipped, as the Java daemon does. The
// child's stderr is forwarded line by line with worker, shard and pid.
//
// Where it differs from the Java daemon (which exits the whole JVM on any child failure):
//  - a child that does not answer within timeoutInSeconds, exits, or breaks the protocol is
//    killed; the shard's next attempt starts a new child, sends it initialize with the last
//    checkpoint and then every record delivered since that checkpoint (kept, as sent, in a
//    per-shard replay buffer of replayBufferMaxBytes), so it resumes exactly where the
//    checkpoint says. Other shards are not affected. When the buffer had to drop records, the
//    shard's lease is released instead, and the shard restarts from the checkpoint by being
//    taken again;
//  - checkpoint requests with a subSequenceNumber checkpoint inside a KPL aggregate;
//  - graceful shutdown sends shutdownRequested (then leaseLost) to every child, waits up to
//    shutdownGraceMillis (default 5000; the Java daemon's default is 0) in all, and releases
//    the leases so other workers take the shards at once;
//  - children run in their own process group (a terminal's Ctrl-C reaches only the daemon,
//    which shuts them down in order), with default signal dispositions.
//
// Threads. Each child conversation runs on the worker's processing pool and blocks that thread
// until the child answers (poll() with the timeout); one thread per child at a time, never
// more, so a small pool cannot deadlock. One more thread forwards every child's stderr and
// reaps children whose conversation is over.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shardline/aws_client.h"
#include "shardline/config.h"
#include "shardline/consumer.h"
#include "shardline/credentials.h"
#include "shardline/lease_store.h"
#include "shardline/result.h"

namespace shardline {

/// Receives each line a child writes to stderr (without the newline), from the forwarding
/// thread. Must be thread-safe.
using ChildStderrSink =
    std::function<void(std::string_view shard_id, long pid, std::string_view line)>;

/// Counters of a daemon's children since it started.
struct MultiLangMetrics {
  std::int64_t children_started = 0;   // every start, restarts included
  std::int64_t child_restarts = 0;     // starts after a failed child on the same shard
  std::int64_t child_timeouts = 0;     // killed: no answer within timeoutInSeconds
  std::int64_t child_exits = 0;        // exited (or closed stdout) in the middle of a message
  std::int64_t protocol_errors = 0;    // a status for the wrong action
  std::int64_t start_failures = 0;     // the executable could not be started
  std::int64_t skipped_lines = 0;      // stdout lines that are not a known message
  std::int64_t messages_sent = 0;      // messages to children, checkpoint replies included
  std::int64_t records_sent = 0;       // records in processRecords messages (replays included)
  std::int64_t records_replayed = 0;   // sent again to a restarted child
  std::int64_t bytes_sent = 0;         // bytes written to children's stdin
  std::int64_t checkpoints = 0;        // checkpoint requests from children
  std::int64_t checkpoint_errors = 0;  // ... answered with an error
  std::int64_t leases_released = 0;    // restarts by releasing the lease (replay buffer full)
  std::int64_t stderr_lines = 0;       // lines forwarded from children's stderr
};

/// What the record processors of one daemon share: the child command and the protocol limits.
struct MultiLangProcessorOptions {
  /// The child's argv (split_executable_name(executableName)); argv[0] is resolved as the Java
  /// daemon does (resolve_executable()).
  std::vector<std::string> command;
  /// The children's working directory; "" = the daemon's.
  std::string working_directory;
  /// timeoutInSeconds: the longest wait for one answer; 0 = no limit.
  std::chrono::milliseconds response_timeout{0};
  /// shutdownGraceMillis: from the first shutdownRequested, the time left to every child.
  std::chrono::milliseconds shutdown_grace{5000};
  /// childExitTimeoutMillis: after stdin is closed, the time a child has to exit.
  std::chrono::milliseconds child_exit_timeout{5000};
  /// replayBufferMaxBytes, per shard; 0 = no replay.
  std::int64_t replay_buffer_max_bytes = 64 << 20;
  /// zeroCopyMessages: large messages reach the child's stdin by vmsplice (no copy).
  bool zero_copy_messages = true;
  /// For log lines.
  std::string worker_id;
  /// Restarts that cannot replay release the lease here (the worker's store); null = restart
  /// anyway, logging which records the new child does not see.
  std::shared_ptr<LeaseStore> lease_store;
  /// Log lines (any thread); null = stderr at info and above.
  LogSink log;
  /// Children's stderr lines; null = `log` at kWarning with worker, shard and pid.
  ChildStderrSink child_stderr;
};

/// The state shared by a daemon's processors: the stderr-forwarding and reaping thread, the
/// shutdown deadline, the live children and the counters.
class MultiLangSupervisor {
 public:
  /// Checks the options (a command is required) and starts the forwarding thread. Does not
  /// start a child.
  static Result<std::shared_ptr<MultiLangSupervisor>> create(MultiLangProcessorOptions options);
  /// SIGKILL to every child still running (destroy the worker first). Children are reaped
  /// when the last processor is gone.
  ~MultiLangSupervisor();
  MultiLangSupervisor(const MultiLangSupervisor&) = delete;
  MultiLangSupervisor& operator=(const MultiLangSupervisor&) = delete;

  /// The worker's factory: one processor (and, from its initialize(), one child) per lease.
  RecordProcessorFactory factory();

  /// Starts the shutdown clock (idempotent): every conversation from now on ends by
  /// now + shutdown_grace (the child is killed then), and no child is started any more. The
  /// first shutdown_requested() starts it too.
  void begin_shutdown();
  /// SIGKILL to every child's process group; conversations in progress fail at once.
  void kill_all();
  /// Waits until every child has exited and been reaped, up to `timeout`.
  bool wait_children(std::chrono::milliseconds timeout);
  /// Children started and not yet reaped.
  std::size_t running_children() const;

  MultiLangMetrics metrics() const;

  class Impl;

 private:
  explicit MultiLangSupervisor(std::unique_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

struct MultiLangDaemonOptions {
  /// The KCL keys of the properties file (applicationName, streamName, ...).
  ConsumerConfig consumer;
  /// The daemon's keys (executableName, timeoutInSeconds, AwsCredentialsProvider, ...).
  MultiLangConfig multilang;
  /// Region, profile, TLS for Kinesis. Credentials: null = from AwsCredentialsProvider.
  AwsClientConfig aws;
  /// The lease store; null = consumer.lease_store, else the DynamoDB table tableName (or
  /// applicationName), as the Java daemon, with AwsCredentialsProviderDynamoDB and
  /// dynamoDBEndpoint.
  std::shared_ptr<LeaseStore> lease_store;
  /// The Kinesis API (tests); null = a KinesisClient on `aws`.
  std::shared_ptr<ConsumerKinesisApi> kinesis;
  /// The children's working directory; "" = the daemon's.
  std::string working_directory;
  /// Log lines; null = stderr at info and above.
  LogSink log;
  /// Children's stderr lines; null = `log` at kWarning with worker, shard and pid.
  ChildStderrSink child_stderr;
  /// Warnings found while building (credentials providers that cannot be mapped, ...) are
  /// appended here as well as logged.
  std::vector<std::string>* warnings = nullptr;
};

class MultiLangDaemon {
 public:
  /// Validates the settings (kInvalidArgument naming the key: executableName missing or not
  /// found, applicationName, streamName, ...), maps the credentials providers and opens the
  /// lease store. No child is started and no request is made yet.
  static Result<std::unique_ptr<MultiLangDaemon>> create(MultiLangDaemonOptions options);
  ~MultiLangDaemon();  // stop()
  MultiLangDaemon(const MultiLangDaemon&) = delete;
  MultiLangDaemon& operator=(const MultiLangDaemon&) = delete;

  /// Starts the worker (lease table, first shard sync); returns when it runs.
  Status start();
  /// start(), then blocks until stop() completes; the worker's fatal error, if any.
  Status run();
  /// Graceful shutdown, blocking and bounded: shutdownRequested and leaseLost to every child
  /// within shutdownGraceMillis, leases released, children reaped (killed after
  /// childExitTimeoutMillis). Idempotent; safe from a signal-handling thread.
  void stop();
  /// Asynchronous stop(): starts the shutdown and returns.
  void request_stop();
  bool stopped() const;

  WorkerMetrics worker_metrics() const;
  MultiLangMetrics metrics() const;
  const std::string& worker_id() const;
  /// "dynamodb:TABLE" or "sqlite:PATH".
  std::string lease_store() const;

 private:
  class Impl;
  explicit MultiLangDaemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// executableName as the Java daemon splits it (on runs of spaces; tabs are kept).
std::vector<std::string> split_executable_name(std::string_view executable_name);

/// The program a child runs, found as the Java daemon's ProcessBuilder finds it: a name with a
/// '/' is taken as is (relative to `working_directory`, "" = the current one); otherwise the
/// directories of PATH in order (an empty entry means the working directory; PATH unset means
/// "/bin:/usr/bin"). kNotFound names the name and where it looked; kPermissionDenied when
/// found but not executable.
Result<std::string> resolve_executable(std::string_view name,
                                       std::string_view working_directory = {});

/// The credentials of an AwsCredentialsProvider value in the KCL's syntax (see the key in
/// docs/CONFIGURATION.md). Returns null for the SDK's default chain (AwsClientConfig's
/// default). Providers that cannot be mapped are skipped with a warning; when none is left the
/// default chain is used (also with a warning). kInvalidArgument for a malformed provider
/// (an assume-role provider without a role ARN, a bad nested property).
Result<std::shared_ptr<CredentialsProvider>> credentials_provider_from_kcl(
    std::string_view value, const CredentialsOptions& options,
    std::vector<std::string>* warnings = nullptr);

}  // namespace shardline
