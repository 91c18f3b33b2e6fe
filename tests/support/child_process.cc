#include "support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace shardline::testing {

namespace {

struct Spawned {
  pid_t pid = -1;
  int in_fd = -1;   // parent's end of the child's stdin, or -1
  int out_fd = -1;  // parent's end of the child's stdout
};

Spawned spawn(const std::vector<std::string>& argv, bool with_stdin) {
  Spawned s;
  int out[2];
  int in[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0) return s;
  if (with_stdin && ::pipe2(in, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return s;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  if (with_stdin) posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (with_stdin) ::close(in[0]);
  if (rc != 0) {
    ::close(out[0]);
    if (with_stdin) ::close(in[1]);
    return s;
  }
  s.pid = pid;
  s.out_fd = out[0];
  s.in_fd = with_stdin ? in[1] : -1;
  return s;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input) {
  ProcessResult r;
  // A child that exits before reading its stdin must not kill the test with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  Spawned s = spawn(argv, true);
  if (s.pid < 0) return r;
  std::size_t written = 0;
  // Non-blocking stdin: a large write must not block while the child waits for us to read.
  ::fcntl(s.in_fd, F_SETFL, ::fcntl(s.in_fd, F_GETFL) | O_NONBLOCK);
  if (input.empty()) {
    ::close(s.in_fd);
    s.in_fd = -1;
  }
  // Write stdin and read stdout together so that neither pipe can fill up and deadlock.
  while (s.out_fd >= 0) {
    pollfd fds[2];
    int n = 0;
    fds[n++] = {s.out_fd, POLLIN, 0};
    if (s.in_fd >= 0) fds[n++] = {s.in_fd, POLLOUT, 0};
    if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t w = ::write(s.in_fd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(s.in_fd);
        s.in_fd = -1;
      }
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[8192];
      const ssize_t got = ::read(s.out_fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        ::close(s.out_fd);
        s.out_fd = -1;
      } else {
        r.out.append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  if (s.in_fd >= 0) ::close(s.in_fd);
  r.exit_code = wait_exit(s.pid);
  return r;
}

bool python3_can(const std::string& snippet) {
  return run_process({"python3", "-c", snippet}).exit_code == 0;
}

std::unique_ptr<BackgroundProcess> BackgroundProcess::start(const std::vector<std::string>& argv,
                                                            std::string& first_line,
                                                            std::chrono::milliseconds timeout) {
  Spawned s = spawn(argv, false);
  if (s.pid < 0) return nullptr;
  std::unique_ptr<BackgroundProcess> p(new BackgroundProcess(s.pid, s.out_fd));
  first_line.clear();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return nullptr;  // the destructor stops the child
    pollfd pfd{s.out_fd, POLLIN, 0};
    const int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char c;
    const ssize_t got = ::read(s.out_fd, &c, 1);
    if (got <= 0) return nullptr;
    if (c == '\n') return p;
    first_line += c;
  }
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    // Poll for the exit with a deadline; escalate to SIGKILL if the child ignores SIGTERM.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      ::usleep(2000);
    }
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

}  // namespace shardline::testing
