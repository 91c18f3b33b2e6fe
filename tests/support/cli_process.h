// Test helper: the shardline CLI (SHARDLINE_CLI_PATH) as a child process, for integration
// tests. stdin from a descriptor or /dev/null, stdout to a file or a descriptor, stderr to a
// file; killed (SIGKILL) in the destructor if it is still running, even when a test fails.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "support/test_util.h"

extern char** environ;

namespace shardline::testing {

struct CliResult {
  int rc = -1;  // exit status; -1 killed by a signal, -2 did not exit in time (then killed)
  std::string out, err;
};

/// The last non-empty line of `text` ("" if none).
inline std::string last_line(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

class CliProcess {
 public:
  /// Starts `SHARDLINE_CLI_PATH args...`. stdout goes to `out_path` unless `stdout_fd` >= 0.
  CliProcess(const std::vector<std::string>& args, std::string out_path, std::string err_path,
             int stdin_fd = -1, int stdout_fd = -1)
      : out_path_(std::move(out_path)), err_path_(std::move(err_path)) {
    std::vector<std::string> argv{SHARDLINE_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (stdin_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
    } else {
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    if (stdout_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
    } else {
      posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                       0644);
    }
    posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~CliProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  pid_t pid() const { return pid_; }

  /// Waits for the exit (polling with a deadline), then reads stdout (when it went to a file)
  /// and stderr.
  CliResult wait(std::chrono::milliseconds timeout = std::chrono::seconds(180)) {
    CliResult r;
    int status = 0;
    const bool exited =
        pid_ > 0 && poll_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
    if (!exited) {
      r.rc = -2;
    } else {
      pid_ = -1;
      r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (std::filesystem::exists(out_path_)) r.out = read_file(out_path_);
    r.err = read_file(err_path_);
    return r;
  }

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
};

}  // namespace shardline::testing
