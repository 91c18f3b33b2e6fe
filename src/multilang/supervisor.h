// Internal: what the processors of one MultiLangDaemon share (MultiLangSupervisor::Impl).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "multilang/child_pump.h"
#include "shardline/multilang.h"

namespace shardline {

class MultiLangSupervisor::Impl {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Impl(MultiLangProcessorOptions o);
  ~Impl();

  void log(LogLevel level, const std::string& message) const;

  /// Clock::time_point::max() until begin_shutdown().
  Clock::time_point shutdown_deadline() const noexcept {
    return Clock::time_point(Clock::duration(deadline_ns_.load(std::memory_order_acquire)));
  }
  bool shutting_down() const noexcept { return shutting_down_.load(std::memory_order_acquire); }
  void begin_shutdown();
  /// Readable once the shutdown has begun (conversations poll it to learn the deadline).
  int shutdown_fd() const noexcept { return shutdown_pipe_[0]; }

  void add_live(detail::ChildProcess* c);
  void remove_live(detail::ChildProcess* c);
  void kill_all();
  std::size_t running() const;

  struct Counters {
    std::atomic<std::int64_t> children_started{0}, child_restarts{0}, child_timeouts{0},
        child_exits{0}, protocol_errors{0}, start_failures{0}, skipped_lines{0}, messages_sent{0},
        records_sent{0}, records_replayed{0}, bytes_sent{0}, checkpoints{0}, checkpoint_errors{0},
        leases_released{0}, stderr_lines{0};
  };

  const MultiLangProcessorOptions options;
  Counters counters;
  std::unique_ptr<detail::ChildPump> pump;

 private:
  std::atomic<bool> shutting_down_{false};
  std::atomic<Clock::rep> deadline_ns_{Clock::time_point::max().time_since_epoch().count()};
  int shutdown_pipe_[2] = {-1, -1};
  mutable std::mutex live_mu_;
  std::map<pid_t, detail::ChildProcess*> live_;
};

}  // namespace shardline
