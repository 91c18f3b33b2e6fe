// Internal: one child process of the MultiLangDaemon with pipes for stdin, stdout and stderr.
//
// Spawned with posix_spawn (safe with threads: no fork of a multi-threaded process), in a
// process group of its own (kill() signals the group, so wrappers such as `sh -c` and the
// child's own children go too), with SIGPIPE/SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGCHLD at their
// defaults and an empty signal mask, whatever the daemon does with them. Every pipe end is
// close-on-exec, so no child inherits another child's stdin (which would keep it from ever
// seeing EOF). The daemon's ends are non-blocking.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/text_buffer.h"
#include "shardline/result.h"

namespace shardline::detail {

class ChildProcess {
 public:
  /// Starts `argv` (argv[0] already resolved to a path, see resolve_executable) in
  /// `working_directory` ("" = the daemon's). A file the kernel cannot execute (ENOEXEC: a
  /// script without #!) is run with /bin/sh, as Java's ProcessBuilder does.
  static Result<std::unique_ptr<ChildProcess>> spawn(const std::string& path,
                                                     const std::vector<std::string>& argv,
                                                     const std::string& working_directory);
  /// Closes the daemon's ends. Does not kill or reap: hand the child to whoever reaps it.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  int stdin_fd() const noexcept { return in_; }
  int stdout_fd() const noexcept { return out_; }
  /// A pidfd (readable once the child exits), or -1 where the kernel has none.
  int pidfd() const noexcept { return pidfd_; }

  /// The stderr read end, now owned by the caller (-1 after the first call).
  int take_stderr() noexcept;
  /// EOF on the child's stdin.
  void close_stdin() noexcept;
  void close_stdout() noexcept;
  /// Signal the child's process group (the child itself if the group is gone).
  void kill(int signal) noexcept;
  /// Reap if it has exited: the wait status (again on later calls), or nullopt while it runs.
  /// Only whoever owns the child alone may reap it (the pid is free for reuse afterwards).
  std::optional<int> try_reap() noexcept;
  /// How the child ended ("exited with status 3"), without reaping it; nullopt while it runs.
  std::optional<std::string> peek_exit() const noexcept;
  bool reaped() const noexcept { return reaped_; }

  /// Writes all of `data` unless the child stops reading: on EPIPE (the child closed stdin or
  /// died) returns kUnavailable; SIGPIPE is never raised in the daemon. Non-blocking: returns
  /// the number of bytes written (maybe 0 when the pipe is full).
  ///
  /// `zero_copy`: hand the pages of `data` to the pipe (vmsplice) instead of copying them; the
  /// child then reads them from the daemon's memory. The caller must keep that memory alive and
  /// unchanged until stdin_drained() (the child has read everything) or, if the conversation
  /// ends first, hand it to hold_until_read(). Falls back to copying where vmsplice is refused.
  Result<std::size_t> write_some(std::string_view data, bool zero_copy = false) noexcept;
  /// True once nothing written with zero_copy is still waiting in the stdin pipe.
  bool stdin_drained() noexcept;
  /// Before close_stdin() of a child that is being killed: keeps `buffer` (the memory of the last
  /// zero-copy writes) alive until no process can read it from the pipe any more. Checked when
  /// this object is destroyed (after the reaper has reaped the child): freed if the pipe has no
  /// reader left or nothing unread, else deliberately never freed (a process outside the
  /// child's group still holds the pipe and could read whatever the memory held next).
  void hold_until_read(TextBuffer buffer) noexcept;

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  int err_ = -1;
  int pidfd_ = -1;
  int held_fd_ = -1;          // a duplicate of stdin's write end while held_ is kept
  TextBuffer held_;           // see hold_until_read()
  bool spliced_ = false;      // zero-copy bytes may still be in the pipe
  bool zero_copy_ok_ = true;  // false once vmsplice has been refused
  bool reaped_ = false;
  int status_ = 0;
};

/// "exited with status 3", "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

}  // namespace shardline::detail
