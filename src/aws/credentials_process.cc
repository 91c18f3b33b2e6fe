// credential_process and the JSON documents credential sources return.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

#include "aws/aws_time.h"
#include "aws/credentials_internal.h"

extern char** environ;

namespace shardline::detail {

namespace {

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<Credentials> parse_credentials_json(std::string_view json, CredentialsJsonFormat format) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
    return Status::invalid_argument("credentials response is not valid JSON");
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    return Status::invalid_argument("credentials response is not a JSON object");
  }
  auto string_field = [&](const char* key, std::string& out, bool required) -> Status {
    simdjson::dom::element e;
    if (obj.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) {
      if (!required) return Status();
      return Status::invalid_argument(std::string("credentials JSON has no ") + key);
    }
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) {
      return Status::invalid_argument(std::string("credentials JSON: ") + key + " is not a string");
    }
    if (required && v.empty()) {
      return Status::invalid_argument(std::string("credentials JSON: ") + key + " is empty");
    }
    out.assign(v);
    return Status();
  };
  if (format == CredentialsJsonFormat::kProcess) {
    std::int64_t version = 0;
    if (obj.at_key("Version").get_int64().get(version) != simdjson::SUCCESS) {
      return Status::invalid_argument("credential_process output has no numeric Version");
    }
    if (version != 1) {
      return Status::invalid_argument("credential_process output has unsupported Version " +
                                      std::to_string(version) + " (expected 1)");
    }
  } else {
    std::string code;
    SHARDLINE_RETURN_IF_ERROR(string_field("Code", code, false));
    if (!code.empty() && code != "Success") {
      // The Code is an enumeration ("Success", "Failure", ...): safe to quote, but bounded.
      if (code.size() > 64) code.resize(64);
      return Status::unavailable("credentials endpoint reported Code '" + code + "'");
    }
  }
  Credentials c;
  SHARDLINE_RETURN_IF_ERROR(string_field("AccessKeyId", c.access_key_id, true));
  SHARDLINE_RETURN_IF_ERROR(string_field("SecretAccessKey", c.secret_access_key, true));
  SHARDLINE_RETURN_IF_ERROR(
      string_field(format == CredentialsJsonFormat::kProcess ? "SessionToken" : "Token",
                   c.session_token, false));
  std::string expiration;
  SHARDLINE_RETURN_IF_ERROR(string_field("Expiration", expiration, false));
  if (!expiration.empty()) {
    c.expiration = parse_iso8601(expiration);
    if (!c.expiration) {
      return Status::invalid_argument("credentials JSON: Expiration is not an ISO 8601 timestamp");
    }
  } else if (format == CredentialsJsonFormat::kMetadata && !c.session_token.empty()) {
    return Status::invalid_argument("credentials JSON has a Token but no Expiration");
  }
  return c;
}

Result<std::string> run_credential_process(const std::string& command,
                                           std::chrono::milliseconds timeout) {
  int fds[2];
  // O_CLOEXEC: a child spawned concurrently by another thread must not inherit the pipe (it
  // would hold the write end open and hide EOF). dup2 onto stdout clears the flag in ours.
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Status::internal("credential_process: pipe failed");
  }
  Fd read_end{fds[0]};
  Fd write_end{fds[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.fd, STDOUT_FILENO);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  // posix_spawn's argv is char* const[] for historical reasons; it does not modify the strings.
  const int rc =
      ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::internal("credential_process: cannot start /bin/sh");
  ::close(write_end.fd);
  write_end.fd = -1;

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  bool timed_out = false;
  bool too_big = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (n == 0) continue;  // re-check the deadline
    char buf[4096];
    const ssize_t got = ::read(read_end.fd, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF (or error): the process closed stdout
    out.append(buf, static_cast<std::size_t>(got));
    if (out.size() > (1 << 20)) {
      too_big = true;
      break;
    }
  }
  if (timed_out || too_big) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::deadline_exceeded("credential_process did not finish within " +
                                     std::to_string(timeout.count()) + " ms (killed)");
  }
  if (too_big) return Status::invalid_argument("credential_process output exceeds 1 MiB");
  if (WIFSIGNALED(wstatus)) {
    return Status(StatusCode::kUnauthenticated,
                  "credential_process killed by signal " + std::to_string(WTERMSIG(wstatus)));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    // Not quoting the output: it may contain a partial secret. The process's stderr is the
    // user's terminal.
    return Status(StatusCode::kUnauthenticated,
                  "credential_process exited with status " + std::to_string(WEXITSTATUS(wstatus)));
  }
  return out;
}

}  // namespace shardline::detail
