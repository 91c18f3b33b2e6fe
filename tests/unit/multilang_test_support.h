// Helpers of the MultiLangDaemon unit tests: scripted children (small Python programs written
// into a temporary directory by each test), a checkpointer that records its calls, and records
// whose views stay valid.
//
// A scripted child imports child_lib.py (kChildLib) and logs every event to the file named by
// its first argument, one JSON object per line: {"event":"start"|"recv"|"eof"|..., "pid": N,
// "raw": the line received}. The test reads that log to see exactly what each child (each
// "generation": the n-th child started with that log) was sent.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "shardline/consumer.h"
#include "shardline/multilang.h"
#include "support/test_util.h"

namespace shardline::testing {

inline constexpr const char* kChildLib = R"PY(
import json, os, sys, time
_log_path = sys.argv[1]
_log = open(_log_path, 'a')

def log(**kw):
    kw['pid'] = os.getpid()
    _log.write(json.dumps(kw) + '\n')
    _log.flush()

def generation():
    with open(_log_path) as f:
        return sum(1 for l in f if '"event": "start"' in l)

log(event='start')
GEN = generation()

def recv():
    while True:
        line = sys.stdin.readline()
        if not line:
            log(event='eof')
            return None
        if line.strip():
            log(event='recv', raw=line.rstrip('\n'))
            return json.loads(line)

def send_raw(text):
    sys.stdout.write(text + '\n')
    sys.stdout.flush()

def send(obj):
    send_raw(json.dumps(obj))

def status(action):
    send({'action': 'status', 'responseFor': action})

def checkpoint(seq=None, sub=None):
    send({'action': 'checkpoint', 'sequenceNumber': seq, 'subSequenceNumber': sub})
    return recv()

def checkpoint_raw(text):
    send_raw(text)
    return recv()

def hang():
    log(event='hang')
    time.sleep(3600)

def serve(handlers):
    # Each message goes to handlers[action](msg); None from the handler sends the status.
    while True:
        m = recv()
        if m is None:
            return
        h = handlers.get(m['action'])
        if h is None or h(m) is None:
            status(m['action'])
)PY";

/// Records the calls; returns `results` in order (OK when empty). Tracks last/largest as the
/// worker's checkpointer does (without range checks).
class FakeCheckpointer final : public Checkpointer {
 public:
  Status checkpoint() override {
    calls.push_back("()");
    return apply(largest);
  }
  Status checkpoint(std::string_view seq, std::int64_t sub) override {
    calls.push_back(std::string(seq) + "/" + std::to_string(sub));
    ExtendedSequenceNumber e{std::string(seq), sub};
    if (Status v = validate_extended_sequence_number(e); !v.ok()) return v;
    return apply(e);
  }
  Status prepare_checkpoint(std::string_view, std::int64_t, std::optional<std::string>) override {
    return {};
  }
  ExtendedSequenceNumber last_checkpoint() const override { return last; }
  ExtendedSequenceNumber largest_permitted() const override { return largest; }

  std::vector<std::string> calls;
  std::deque<Status> results;
  ExtendedSequenceNumber last{"TRIM_HORIZON", 0};
  ExtendedSequenceNumber largest{"TRIM_HORIZON", 0};

 private:
  Status apply(const ExtendedSequenceNumber& e) {
    Status s;
    if (!results.empty()) {
      s = results.front();
      results.pop_front();
    }
    if (s.ok()) last = e;
    return s;
  }
};

/// A batch of records owning their bytes.
struct Batch {
  struct Owned {
    std::string data, pk, seq;
    std::int64_t sub = 0;
    std::int64_t arrival = 0;
  };
  std::vector<Owned> owned;
  std::vector<ConsumerRecord> views;

  Batch& add(std::string seq, std::int64_t sub, std::string data, std::string pk = "pk",
             std::int64_t arrival = 1700000000123) {
    owned.push_back({std::move(data), std::move(pk), std::move(seq), sub, arrival});
    rebuild();
    return *this;
  }
  void rebuild() {
    views.clear();
    for (const Owned& o : owned) {
      views.push_back(
          ConsumerRecord{o.data, o.pk, std::nullopt, o.seq, o.sub, o.arrival, o.sub != 0});
    }
  }
  ProcessRecordsInput input(Checkpointer& cp, std::int64_t behind = 0) const {
    return ProcessRecordsInput{views, behind, cp};
  }
};

/// A 56-digit sequence number ending in `n`.
inline std::string seqno(int n) {
  std::string s = std::to_string(n);
  return std::string(56 - s.size(), '4') + s;
}

inline std::vector<nlohmann::json> read_json_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

inline bool process_alive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0; }

/// A temporary directory with child_lib.py, removed at the end.
class ChildDir {
 public:
  ChildDir() {
    char tmpl[] = "/tmp/shardline-mld-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    write("child_lib.py", kChildLib);
  }
  ~ChildDir() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  ChildDir(const ChildDir&) = delete;
  ChildDir& operator=(const ChildDir&) = delete;

  const std::string& path() const { return dir_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string write(const std::string& name, const std::string& text, bool executable = false) {
    const std::string p = path(name);
    std::ofstream(p, std::ios::binary) << text;
    if (executable) ::chmod(p.c_str(), 0755);
    return p;
  }
  /// A scripted child: child_lib, then `body`. Returns the argv to run it with its log.
  std::vector<std::string> child(const std::string& name, const std::string& body,
                                 const std::string& log = "child.log") {
    write(name, "import sys\nsys.path.insert(0, " + quoted(dir_) + ")\nfrom child_lib import *\n" +
                    body + "\n");
    return {"python3", path(name), path(log)};
  }

  /// The log's events.
  std::vector<nlohmann::json> events(const std::string& log = "child.log") const {
    return read_json_lines(path(log));
  }
  /// The pids of the children started with this log, in order.
  std::vector<long> starts(const std::string& log = "child.log") const {
    std::vector<long> pids;
    for (const auto& e : events(log)) {
      if (e.value("event", "") == "start") pids.push_back(e.value("pid", 0L));
    }
    return pids;
  }
  /// The lines the `generation`-th child (1-based) received.
  std::vector<std::string> received(int generation, const std::string& log = "child.log") const {
    const auto pids = starts(log);
    std::vector<std::string> out;
    if (generation < 1 || static_cast<std::size_t>(generation) > pids.size()) return out;
    const long pid = pids[static_cast<std::size_t>(generation - 1)];
    for (const auto& e : events(log)) {
      if (e.value("event", "") == "recv" && e.value("pid", 0L) == pid) {
        out.push_back(e.value("raw", ""));
      }
    }
    return out;
  }
  /// The "action" of each line the generation received.
  std::vector<std::string> actions(int generation, const std::string& log = "child.log") const {
    std::vector<std::string> out;
    for (const auto& raw : received(generation, log)) {
      out.push_back(nlohmann::json::parse(raw).value("action", "?"));
    }
    return out;
  }
  bool has_event(const std::string& event, long pid, const std::string& log = "child.log") const {
    for (const auto& e : events(log)) {
      if (e.value("event", "") == event && e.value("pid", 0L) == pid) return true;
    }
    return false;
  }

 private:
  static std::string quoted(const std::string& s) { return "'" + s + "'"; }
  std::string dir_;
};

/// Log lines and stderr lines collected from a supervisor (thread-safe).
struct Collected {
  std::mutex mu;
  std::vector<std::string> logs;
  struct StderrLine {
    std::string shard;
    long pid;
    std::string line;
  };
  std::vector<StderrLine> stderr_lines;

  LogSink log_sink() {
    return [this](LogLevel, std::string_view m) {
      std::lock_guard lk(mu);
      logs.emplace_back(m);
    };
  }
  ChildStderrSink stderr_sink() {
    return [this](std::string_view shard, long pid, std::string_view line) {
      std::lock_guard lk(mu);
      stderr_lines.push_back({std::string(shard), pid, std::string(line)});
    };
  }
  bool logged(const std::string& needle) {
    std::lock_guard lk(mu);
    for (const auto& l : logs) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::string all_logs() {
    std::lock_guard lk(mu);
    std::string s;
    for (const auto& l : logs) s += l + "\n";
    return s;
  }
};

}  // namespace shardline::testing
