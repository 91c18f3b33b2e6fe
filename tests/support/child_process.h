// Test helper: run a child process (python scripts, fake servers) without a shell.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace shardline::testing {

struct ProcessResult {
  int exit_code = -1;  // -1: could not start, or killed by a signal
  std::string out;     // everything written to stdout
};

/// Run `argv` (argv[0] looked up in PATH) with `input` on stdin; stderr is inherited. Blocks
/// until the process exits.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {});

/// True when `python3 -c <snippet>` exits 0 (e.g. "import botocore").
bool python3_can(const std::string& snippet);

/// A long-running child that announces itself with one line on stdout (e.g. "PORT 12345").
/// Stopped by PID (SIGTERM, then SIGKILL) in the destructor, even when a test fails.
class BackgroundProcess {
 public:
  /// Starts `argv` and reads its first stdout line into `first_line`, waiting at most
  /// `timeout`. Returns nullptr (and stops the child) on failure.
  static std::unique_ptr<BackgroundProcess> start(const std::vector<std::string>& argv,
                                                  std::string& first_line,
                                                  std::chrono::milliseconds timeout);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }

 private:
  BackgroundProcess(pid_t pid, int out_fd) : pid_(pid), out_fd_(out_fd) {}
  pid_t pid_;
  int out_fd_;
};

}  // namespace shardline::testing
