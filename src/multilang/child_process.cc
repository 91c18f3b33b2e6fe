#include "multilang/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/signals.h"
#include "shardline/multilang.h"

extern char** environ;

namespace shardline {

std::vector<std::string> split_executable_name(std::string_view executable_name) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < executable_name.size()) {
    while (i < executable_name.size() && executable_name[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < executable_name.size() && executable_name[i] != ' ') ++i;
    if (i > start) out.emplace_back(executable_name.substr(start, i - start));
  }
  return out;
}

namespace {

std::string join_path(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

// Relative paths are relative to the working directory the child will have.
std::string in_working_directory(std::string_view path, std::string_view working_directory) {
  if (path.empty() || path.front() == '/' || working_directory.empty()) return std::string(path);
  return join_path(working_directory, path);
}

// 0 if `path` is an executable regular file, else the errno exec would fail with.
int executable_error(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return EACCES;
  if (::access(path.c_str(), X_OK) != 0) return errno;
  return 0;
}

}  // namespace

Result<std::string> resolve_executable(std::string_view name, std::string_view working_directory) {
  if (name.empty()) return Status::invalid_argument("the executable name is empty");
  if (name.find('/') != std::string_view::npos) {
    const std::string path = in_working_directory(name, working_directory);
    const int e = executable_error(path);
    if (e == 0) return path;
    if (e == EACCES) {
      return Status(StatusCode::kPermissionDenied,
                    "'" + path + "' is not an executable file (" + std::strerror(e) + ")");
    }
    return Status::not_found("'" + path + "': " + std::strerror(e));
  }
  // Java's ProcessBuilder searches the daemon's PATH; unset means ":/bin:/usr/bin" (an empty
  // entry is the working directory).
  const char* env = std::getenv("PATH");
  const std::string path_var = env != nullptr ? env : ":/bin:/usr/bin";
  bool denied = false;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t colon = path_var.find(':', pos);
    std::string dir = path_var.substr(pos, colon == std::string::npos ? colon : colon - pos);
    if (dir.empty()) dir = ".";
    const std::string candidate = in_working_directory(join_path(dir, name), working_directory);
    const int e = executable_error(candidate);
    if (e == 0) return candidate;
    if (e == EACCES) denied = true;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  if (denied) {
    return Status(StatusCode::kPermissionDenied,
                  "'" + std::string(name) + "' was found in PATH but is not executable");
  }
  return Status::not_found("'" + std::string(name) + "' was not found in PATH (" + path_var + ")");
}

namespace detail {

namespace {

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void set_nonblocking(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int pidfd_for(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);  // close-on-exec by definition
  return fd >= 0 ? static_cast<int>(fd) : -1;
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "was killed by signal " + std::to_string(sig) +
           (name ? std::string(" (") + name + ")" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const std::string& path,
                                                          const std::vector<std::string>& argv,
                                                          const std::string& working_directory) {
  if (argv.empty()) return Status::invalid_argument("an empty command");
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
  };
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    close_all();
    return Status::unavailable(std::string("cannot create pipes for a child: ") + std::strerror(e));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
  if (!working_directory.empty()) {
    posix_spawn_file_actions_addchdir_np(&fa, working_directory.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                     POSIX_SPAWN_SETSIGMASK));
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM,
                SIGTSTP, SIGTTIN, SIGTTOU}) {
    sigaddset(&defaults, s);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);

  auto run = [&](const std::string& program, const std::vector<std::string>& args, pid_t* pid) {
    std::vector<char*> cargs;
    cargs.reserve(args.size() + 1);
    for (const std::string& a : args) cargs.push_back(const_cast<char*>(a.c_str()));
    cargs.push_back(nullptr);
    return ::posix_spawn(pid, program.c_str(), &fa, &attr, cargs.data(), environ);
  };
  pid_t pid = -1;
  int rc = run(path, argv, &pid);
  if (rc == ENOEXEC) {
    // Not a binary and no #! line: Java runs such a file with /bin/sh.
    std::vector<std::string> sh{"/bin/sh", path};
    sh.insert(sh.end(), argv.begin() + 1, argv.end());
    rc = run("/bin/sh", sh, &pid);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  if (rc != 0) {
    close_all();
    const StatusCode code = rc == ENOENT   ? StatusCode::kNotFound
                            : rc == EACCES ? StatusCode::kPermissionDenied
                                           : StatusCode::kUnavailable;
    return Status(code, "cannot start '" + path + "': " + std::strerror(rc));
  }
  std::unique_ptr<ChildProcess> c(new ChildProcess());
  c->pid_ = pid;
  c->in_ = in[1];
  c->out_ = out[0];
  c->err_ = err[0];
  set_nonblocking(c->in_);
  set_nonblocking(c->out_);
  set_nonblocking(c->err_);
#ifdef F_SETPIPE_SZ
  // Fewer wake-ups per multi-megabyte processRecords message; the default (64 KiB) is fine too.
  (void)::fcntl(c->in_, F_SETPIPE_SZ, 1 << 20);
#endif
  c->pidfd_ = pidfd_for(pid);
  return c;
}

ChildProcess::~ChildProcess() {
  if (held_fd_ >= 0) {
    // Safe to free once no reader is left (POLLERR on the write end) or nothing is unread.
    pollfd p{held_fd_, POLLOUT, 0};
    int unread = 0;
    const bool no_reader = ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
    const bool empty = ::ioctl(held_fd_, FIONREAD, &unread) == 0 && unread == 0;
    if (!no_reader && !empty) {
      // Deliberately leaked: freeing it would let that reader see the memory's next contents.
      new TextBuffer(std::move(held_));  // NOLINT: never freed, on purpose
    }
  }
  close_fd(held_fd_);
  close_fd(in_);
  close_fd(out_);
  close_fd(err_);
  close_fd(pidfd_);
}

int ChildProcess::take_stderr() noexcept {
  const int fd = err_;
  err_ = -1;
  return fd;
}

void ChildProcess::close_stdin() noexcept { close_fd(in_); }
void ChildProcess::close_stdout() noexcept { close_fd(out_); }

void ChildProcess::kill(int signal) noexcept {
  if (reaped_ || pid_ <= 0) return;
  // The pid (and so the group id) is ours until we reap it.
  if (::kill(-pid_, signal) != 0) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::try_reap() noexcept {
  if (reaped_) return status_;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = status;
      return status;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {  // ECHILD: reaped elsewhere (a SIGCHLD handler set to SIG_IGN)
      reaped_ = true;
      return 0;
    }
    return std::nullopt;
  }
}

std::optional<std::string> ChildProcess::peek_exit() const noexcept {
  if (reaped_) return describe_wait_status(status_);
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != pid_) {
    return std::nullopt;
  }
  if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
  const char* name = ::strsignal(info.si_status);
  return "was killed by signal " + std::to_string(info.si_status) +
         (name ? std::string(" (") + name + ")" : "");
}

bool ChildProcess::stdin_drained() noexcept {
  if (!spliced_) return true;
  int unread = 0;
  if (in_ < 0 || ::ioctl(in_, FIONREAD, &unread) != 0 || unread != 0) return false;
  spliced_ = false;
  return true;
}

void ChildProcess::hold_until_read(TextBuffer buffer) noexcept {
  if (!spliced_ || in_ < 0 || stdin_drained()) return;  // nothing of it left in the pipe
  if (held_fd_ < 0) held_fd_ = ::fcntl(in_, F_DUPFD_CLOEXEC, 0);
  if (held_fd_ < 0) {
    new TextBuffer(std::move(buffer));  // NOLINT: cannot watch the pipe: never freed
    return;
  }
  held_ = std::move(buffer);
}

Result<std::size_t> ChildProcess::write_some(std::string_view data, bool zero_copy) noexcept {
  if (in_ < 0) return Status::unavailable("the child's stdin is closed");
  // A write to a pipe whose reader is gone raises SIGPIPE, which would end the daemon unless it
  // ignores the signal (core/signals.h). The worker's threads block it for good; on any other
  // thread it is blocked around the write, and the one the write raised is consumed, so the
  // library is safe whatever the application does with SIGPIPE.
  const bool blocked = sigpipe_blocked_in_this_thread();
  sigset_t pipe_set, old_mask, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  bool was_pending = false;
  if (!blocked) {
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE) == 1;
  }
  ssize_t w;
  for (;;) {
    if (zero_copy && zero_copy_ok_) {
      iovec iov{const_cast<char*>(data.data()), data.size()};
      w = ::vmsplice(in_, &iov, 1, SPLICE_F_NONBLOCK);
      if (w > 0) spliced_ = true;
      if (w < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM)) {
        zero_copy_ok_ = false;  // e.g. a seccomp filter: copy from now on
        continue;
      }
    } else {
      w = ::write(in_, data.data(), data.size());
    }
    if (w >= 0 || errno != EINTR) break;
  }
  const int e = errno;
  if (w < 0 && e == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    (void)sigtimedwait(&pipe_set, nullptr, &zero);
  }
  if (!blocked) pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (w >= 0) return static_cast<std::size_t>(w);
  if (e == EAGAIN || e == EWOULDBLOCK) return std::size_t{0};
  return Status::unavailable(std::string("writing to the child failed: ") + std::strerror(e));
}

}  // namespace detail
}  // namespace shardline
