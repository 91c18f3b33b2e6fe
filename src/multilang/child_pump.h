// Internal: the one thread of a MultiLangSupervisor. It forwards every child's stderr line by
// line, and takes over children whose conversation is over ("retired"): it drains their stdout
// (a child blocked on a full stdout pipe would never exit), waits for them to exit, kills their
// process group at a deadline, and reaps them. One poll() over all of it: the thread count does
// not grow with the number of children.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "multilang/child_process.h"
#include "shardline/aws_client.h"

namespace shardline::detail {

class ChildPump {
 public:
  using LineSink =
      std::function<void(const std::string& shard_id, long pid, std::string_view line)>;
  using Clock = std::chrono::steady_clock;

  /// `on_line` gets each stderr line; `log` the exit of each retired child.
  ChildPump(LineSink on_line, LogSink log);
  /// Kills and reaps every retired child, closes every stderr pipe, joins the thread.
  ~ChildPump();
  ChildPump(const ChildPump&) = delete;
  ChildPump& operator=(const ChildPump&) = delete;

  /// Forward the lines of `fd` (a child's stderr, now owned by the pump) until EOF.
  void watch_stderr(int fd, std::string shard_id, long pid);
  /// Take over `child` (stdin already closed or about to be): drain its stdout, wait for its
  /// exit, SIGKILL its group at `kill_at`, reap it and log how it ended.
  void retire(std::unique_ptr<ChildProcess> child, std::string shard_id, Clock::time_point kill_at);
  /// Retired children not yet reaped.
  std::size_t retired() const;
  /// Waits until every retired child is reaped and every stderr pipe is at EOF (or timeout).
  bool wait_idle(std::chrono::milliseconds timeout);
  /// SIGKILL every retired child now.
  void kill_retired();

 private:
  struct Err {
    int fd;
    std::string shard_id;
    long pid;
    std::string partial;
  };
  struct Retired {
    std::unique_ptr<ChildProcess> child;
    std::string shard_id;
    Clock::time_point kill_at;
    bool killed = false;
  };

  void loop();
  void wake();
  void read_stderr(Err& e, bool* eof);
  void emit(const Err& e, std::string_view line);

  LineSink on_line_;
  LogSink log_;
  int wake_[2] = {-1, -1};

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  bool stopping_ = false;
  bool kill_all_ = false;
  std::vector<Err> new_err_;
  std::vector<Retired> new_retired_;
  std::size_t retired_count_ = 0;  // retired, not reaped (incl. new_retired_)
  std::size_t err_count_ = 0;      // stderr pipes open (incl. new_err_)
  std::thread thread_;
};

}  // namespace shardline::detail
