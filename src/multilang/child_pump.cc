#include "multilang/child_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace shardline::detail {

namespace {
constexpr std::size_t kMaxLine = 64 * 1024;  // longer stderr lines are forwarded in pieces
}  // namespace

ChildPump::ChildPump(LineSink on_line, LogSink log)
    : on_line_(std::move(on_line)), log_(std::move(log)) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake_[0] = wake_[1] = -1;
  }
  thread_ = std::thread([this] { loop(); });
}

ChildPump::~ChildPump() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void ChildPump::wake() {
  if (wake_[1] >= 0) {
    const char c = 1;
    (void)!::write(wake_[1], &c, 1);
  }
}

void ChildPump::watch_stderr(int fd, std::string shard_id, long pid) {
  if (fd < 0) return;
  {
    std::lock_guard lk(mu_);
    new_err_.push_back(Err{fd, std::move(shard_id), pid, {}});
    ++err_count_;
  }
  wake();
}

void ChildPump::retire(std::unique_ptr<ChildProcess> child, std::string shard_id,
                       Clock::time_point kill_at) {
  if (!child) return;
  {
    std::lock_guard lk(mu_);
    new_retired_.push_back(Retired{std::move(child), std::move(shard_id), kill_at, false});
    ++retired_count_;
  }
  wake();
}

std::size_t ChildPump::retired() const {
  std::lock_guard lk(mu_);
  return retired_count_;
}

bool ChildPump::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return idle_cv_.wait_for(lk, timeout, [&] { return retired_count_ == 0 && err_count_ == 0; });
}

void ChildPump::kill_retired() {
  {
    std::lock_guard lk(mu_);
    kill_all_ = true;
  }
  wake();
}

void ChildPump::emit(const Err& e, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (on_line_) on_line_(e.shard_id, e.pid, line);
}

void ChildPump::read_stderr(Err& e, bool* eof) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(e.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      if (!e.partial.empty()) emit(e, e.partial);
      e.partial.clear();
      *eof = true;
      return;
    }
    std::string_view chunk(buf, static_cast<std::size_t>(n));
    while (!chunk.empty()) {
      const std::size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        e.partial.append(chunk);
        if (e.partial.size() >= kMaxLine) {
          emit(e, e.partial);
          e.partial.clear();
        }
        break;
      }
      if (e.partial.empty()) {
        emit(e, chunk.substr(0, nl));
      } else {
        e.partial.append(chunk.substr(0, nl));
        emit(e, e.partial);
        e.partial.clear();
      }
      chunk.remove_prefix(nl + 1);
    }
    if (static_cast<std::size_t>(n) < sizeof buf) return;
  }
}

void ChildPump::loop() {
  std::vector<Err> errs;
  std::vector<Retired> retired;
  std::vector<pollfd> fds;
  for (;;) {
    bool stopping, kill_all;
    {
      std::lock_guard lk(mu_);
      for (auto& e : new_err_) errs.push_back(std::move(e));
      new_err_.clear();
      for (auto& r : new_retired_) retired.push_back(std::move(r));
      new_retired_.clear();
      stopping = stopping_;
      kill_all = kill_all_;
      kill_all_ = false;
    }
    const auto now = Clock::now();
    for (Retired& r : retired) {
      if (!r.killed && (stopping || kill_all || now >= r.kill_at)) {
        r.child->kill(SIGKILL);
        r.killed = true;
      }
    }
    std::size_t reaped = 0;
    for (auto it = retired.begin(); it != retired.end();) {
      const auto st = it->child->try_reap();
      if (!st) {
        ++it;
        continue;
      }
      if (log_) {
        log_(it->killed ? LogLevel::kWarning : LogLevel::kInfo,
             "shard " + it->shard_id + ": child " + std::to_string(it->child->pid()) + " " +
                 describe_wait_status(*st) +
                 (it->killed ? " (killed: it did not exit after its stdin was closed)" : ""));
      }
      it = retired.erase(it);
      ++reaped;
    }
    if (reaped != 0) {
      std::lock_guard lk(mu_);
      retired_count_ -= reaped;
    }
    if (stopping && retired.empty()) {
      // Forward what the pipes hold now, then stop.
      for (Err& e : errs) {
        bool eof = false;
        read_stderr(e, &eof);
        if (!e.partial.empty()) emit(e, e.partial);
        ::close(e.fd);
      }
      std::lock_guard lk(mu_);
      err_count_ = 0;
      idle_cv_.notify_all();
      return;
    }
    {
      std::lock_guard lk(mu_);
      if (retired_count_ == 0 && err_count_ == 0) idle_cv_.notify_all();
    }

    // Wait for output, an exit, a deadline or new work.
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    for (const Err& e : errs) fds.push_back({e.fd, POLLIN, 0});
    int timeout_ms = -1;
    for (const Retired& r : retired) {
      if (r.child->stdout_fd() >= 0) fds.push_back({r.child->stdout_fd(), POLLIN, 0});
      if (r.child->pidfd() >= 0) {
        fds.push_back({r.child->pidfd(), POLLIN, 0});
      } else {
        timeout_ms = timeout_ms < 0 ? 10 : std::min(timeout_ms, 10);  // poll waitpid
      }
      if (!r.killed) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(r.kill_at - now).count() + 1;
        const int l = static_cast<int>(std::clamp<long long>(left, 0, 60000));
        timeout_ms = timeout_ms < 0 ? l : std::min(timeout_ms, l);
      }
    }
    if (stopping) timeout_ms = timeout_ms < 0 ? 10 : std::min(timeout_ms, 10);
    const int n = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), timeout_ms);
    if (n < 0 && errno != EINTR) continue;
    if (n <= 0) continue;
    if (fds[0].revents != 0) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    std::size_t i = 1;
    std::size_t closed = 0;
    for (auto it = errs.begin(); it != errs.end(); ++i) {
      if (fds[i].revents == 0) {
        ++it;
        continue;
      }
      bool eof = false;
      read_stderr(*it, &eof);
      if (eof) {
        ::close(it->fd);
        it = errs.erase(it);
        ++closed;
      } else {
        ++it;
      }
    }
    if (closed != 0) {
      std::lock_guard lk(mu_);
      err_count_ -= closed;
    }
    for (Retired& r : retired) {
      if (r.child->stdout_fd() >= 0) {
        if (fds[i].revents != 0) {
          // Whatever the child still writes after its last message is not for anyone.
          char buf[16384];
          ssize_t got;
          while ((got = ::read(r.child->stdout_fd(), buf, sizeof buf)) > 0) {
          }
          if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) r.child->close_stdout();
        }
        ++i;
      }
      if (r.child->pidfd() >= 0) ++i;  // an exit: reaped at the top of the loop
    }
  }
}

}  // namespace shardline::detail
