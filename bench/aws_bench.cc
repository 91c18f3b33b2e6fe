// shardline_aws_bench: the cost of the AWS layer (issue 3), against shardline_stub_kinesis.
//
// End to end, through KinesisClient against the stub (a separate process, ideally on another
// core), with K requests in flight:
//   - PutRecords of 500 x 100-byte records (put_records_async): signed requests/s, user
//     records/s, and process CPU per call (getrusage RUSAGE_SELF: the calling thread and the
//     HTTP event-loop thread together);
//   - PutRecords of one 100-byte record: the rate of small signed requests;
//   - GetRecords answering 10,000 records (get_records_async): responses/s and CPU per response.
// In process, one thread, CPU time per call (median of --reps runs):
//   - floor_put: OpenSSL base64 of the 500 payloads + SHA-256 over a body of the request's size
//     (what any client must do to send them);
//   - build_put_records, sign (SigV4 as the client signs: payload hash, canonical request,
//     HMAC), parse_put_records on the stub's canned 500-entry response;
//   - floor_get: OpenSSL base64 decode of the 10,000 Data strings of the stub's canned
//     GetRecords response + SHA-256 of the GetRecords request body;
//   - parse_get_records on that same body.
//
// Usage: shardline_aws_bench --endpoint http://127.0.0.1:PORT [--stub-pid PID]
//          [--duration SECONDS] [--reps N] [--inflight 1,8,32] [--get-inflight 1,4]
//          [--max-other FRACTION] [--json]
// --stub-pid adds the stub's CPU utilisation during each end-to-end phase (from /proc), to show
// that the stub was not the bottleneck, and the CPU other processes used meanwhile (/proc/stat
// busy time minus client and stub; per CPU when both are pinned), to show whether anything else
// competed. A measured run during which others used more than --max-other (default 0.05) of a
// CPU is repeated, up to 5 x --reps runs in all (-1 keeps every run); the JSON says how many
// runs were discarded and whether enough clean ones were found. Exit status 1 when any call
// failed.
#include <openssl/evp.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <semaphore>
#include <string>
#include <string_view>
#include <vector>

#include "aws/service_client.h"
#include "aws/sigv4.h"
#include "shardline/credentials.h"
#include "shardline/kinesis.h"

namespace {

using namespace shardline;
using Clock = std::chrono::steady_clock;

// ---- clocks ----

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; }

double process_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

double thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// User + system CPU seconds of another process, or -1.
double other_process_cpu(int pid) {
  if (pid <= 0) return -1;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return -1;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The one CPU a process (0 = this one) is pinned to (taskset -c N), or -1.
int pinned_cpu(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, pid == 0 ? "/proc/self/status" : "/proc/%d/status", pid);
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char line[512];
  int cpu = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "Cpus_allowed_list:", 18) != 0) continue;
    char* end = nullptr;
    const long v = std::strtol(line + 18, &end, 10);
    if (end != line + 18 && (*end == '\n' || *end == '\0')) cpu = static_cast<int>(v);
  }
  std::fclose(f);
  return cpu;
}

// Seconds one CPU (or the whole machine for cpu = -1) spent running tasks since boot (user,
// nice, system and a hypervisor's steal; not interrupts: loopback networking is mostly softirq
// time that no process is charged for), from /proc/stat; -1 if unknown.
double cpu_busy(int cpu) {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return -1;
  char want[16] = "cpu ";
  if (cpu >= 0) std::snprintf(want, sizeof want, "cpu%d ", cpu);
  const std::size_t want_len = std::strlen(want);
  char line[512];
  double busy = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, want, want_len) != 0) continue;
    unsigned long long v[8] = {};
    if (std::sscanf(line + want_len, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                    &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
      // user nice system idle iowait irq softirq steal
      busy = static_cast<double>(v[0] + v[1] + v[2] + v[7]) /
             static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    break;
  }
  std::fclose(f);
  return busy;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- workload ----

struct Workload {
  std::vector<std::string> keys;
  std::vector<std::string> datas;
  std::vector<PutRecordsEntry> entries;  // 500 x 100 bytes
  std::vector<PutRecordsEntry> one;      // the first record alone
};

Workload make_workload(int n, int size) {
  Workload w;
  std::mt19937_64 rng(42);
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < n; ++i) {
    std::string k(36, '-');
    for (int j = 0; j < 36; ++j) {
      if (j != 8 && j != 13 && j != 18 && j != 23) k[static_cast<std::size_t>(j)] = hex[rng() % 16];
    }
    std::string d(static_cast<std::size_t>(size), '\0');
    for (char& c : d) c = static_cast<char>(rng());
    w.keys.push_back(std::move(k));
    w.datas.push_back(std::move(d));
  }
  for (int i = 0; i < n; ++i) {
    w.entries.push_back(
        {w.keys[static_cast<std::size_t>(i)], w.datas[static_cast<std::size_t>(i)], {}});
  }
  w.one.push_back(w.entries.front());
  return w;
}

// The base64 strings of every "Data" value in a GetRecords body.
std::vector<std::string_view> data_strings(std::string_view body) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while ((pos = body.find("\"Data\":\"", pos)) != std::string_view::npos) {
    pos += 8;
    const std::size_t end = body.find('"', pos);
    out.push_back(body.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

// ---- OpenSSL floor ----

void sha256(std::string_view bytes, unsigned char* out) {
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), out, &n, EVP_sha256(), nullptr);
}

// ---- interference ----

// Settings shared by every measurement.
int g_stub_pid = 0;
double g_max_other = 0.05;  // a sample with more of the machine used by others is repeated

// CPU used over an interval by this process, the stub, and by everything else (other
// processes, a hypervisor's steal). With the client and the stub each pinned to its own CPU,
// "other" is split: on the client's CPU it competed with the measurement; on the stub's CPU it
// could delay the stub. Unpinned, "other" is the rest of the whole machine. Runs are repeated
// when the two together exceed g_max_other of a CPU.
struct Meter {
  struct Cpus {
    int client = pinned_cpu(0);
    int stub = g_stub_pid > 0 ? pinned_cpu(g_stub_pid) : -1;
    bool split() const { return client >= 0 && stub >= 0 && client != stub; }
  };
  static const Cpus& cpus() {
    static const Cpus c;
    return c;
  }

  Clock::time_point wall0 = Clock::now();
  double cpu0 = process_cpu();
  double stub0 = other_process_cpu(g_stub_pid);
  double busy0 = cpu_busy(cpus().split() ? cpus().client : -1);
  double stub_busy0 = cpus().split() ? cpu_busy(cpus().stub) : -1;

  struct Use {
    double wall = 0, cpu = 0;
    double stub = -1, other = -1, other_stub_cpu = -1;  // seconds, -1 if unknown
    // Both CPUs' others: what competed with the client or could delay the stub.
    double other_share() const {
      return (std::max(0.0, other) + std::max(0.0, other_stub_cpu)) / wall;
    }
  };
  Use stop() const {
    Use u;
    u.wall = std::chrono::duration<double>(Clock::now() - wall0).count();
    u.cpu = process_cpu() - cpu0;
    if (stub0 >= 0) u.stub = other_process_cpu(g_stub_pid) - stub0;
    const double stub = std::max(0.0, u.stub);
    if (cpus().split()) {
      u.other = std::max(0.0, cpu_busy(cpus().client) - busy0 - u.cpu);
      u.other_stub_cpu = std::max(0.0, cpu_busy(cpus().stub) - stub_busy0 - stub);
    } else if (busy0 >= 0) {
      u.other = std::max(0.0, cpu_busy(-1) - busy0 - u.cpu - stub);
    }
    return u;
  }
};

// Runs `sample()` until `reps` samples had at most g_max_other of a CPU used by others,
// or 5 x reps attempts. Returns `reps` samples: the clean ones, or if too few were clean
// (clean = false) the least disturbed.
template <class Sample, class F>
std::vector<Sample> clean_samples(int reps, int& discarded, bool& clean, F&& sample) {
  std::vector<Sample> all;
  int ok = 0;
  for (int attempt = 0; attempt < 5 * reps && ok < reps; ++attempt) {
    all.push_back(sample());
    if (g_max_other < 0 || all.back().use.other_share() <= g_max_other) ++ok;
  }
  clean = ok >= reps;
  discarded = static_cast<int>(all.size()) - reps;
  if (g_max_other >= 0) {
    std::stable_sort(all.begin(), all.end(), [](const Sample& a, const Sample& b) {
      return a.use.other_share() < b.use.other_share();
    });
  }
  all.resize(static_cast<std::size_t>(reps));
  return all;
}

// ---- micro-benchmarks ----

std::atomic<std::size_t> g_sink{0};  // keeps results alive

struct MicroResult {
  std::string name;
  std::string what;
  double ns = 0;  // median CPU ns per call
  int discarded = 0;
  bool clean = true;
};

// Runs `f` repeatedly for `min_seconds` of this thread's CPU time, `reps` times; the median
// CPU time per call.
MicroResult micro(std::string name, std::string what, double min_seconds, int reps,
                  const std::function<void()>& f) {
  f();  // warm caches and lazily-built state
  struct Sample {
    double ns;
    Meter::Use use;
  };
  MicroResult r{std::move(name), std::move(what)};
  auto samples = clean_samples<Sample>(reps, r.discarded, r.clean, [&] {
    std::uint64_t n = 0;
    const Meter meter;
    const double t0 = thread_cpu();
    double t = t0;
    while (t - t0 < min_seconds) {
      f();
      ++n;
      t = thread_cpu();
    }
    return Sample{(t - t0) / static_cast<double>(n) * 1e9, meter.stop()};
  });
  std::vector<double> per_call;
  for (const auto& x : samples) per_call.push_back(x.ns);
  r.ns = median(per_call);
  return r;
}

// ---- end to end ----

struct E2eResult {
  std::string name;
  int inflight = 0;
  int records_per_call = 0;
  double calls_per_s = 0;
  double cpu_us_per_call = 0;       // process CPU (all threads) per call
  double client_util = 0;           // process CPU / wall
  double stub_util = -1;            // stub CPU / wall, -1 if unknown
  double other_util = -1;           // others on the client's CPU (or machine) / wall, -1 if unknown
  double other_stub_cpu_util = -1;  // others on the stub's CPU / wall, -1 if unknown
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
  int discarded = 0;  // samples repeated because others used the machine
  bool clean = true;
  std::string first_error;
};

// Free in-flight slots. Global so that a completion callback still returning from release()
// never touches a destroyed semaphore; it is back at 0 between phases.
std::counting_semaphore<4096> g_slots(0);

struct Sample {
  std::uint64_t calls = 0;
  Meter::Use use;
};

// Keeps `k` calls of `start` in flight for `duration`; `start(done)` must call done(ok, error)
// exactly once. Returns the sample measured after a short warm-up.
template <class Start>
Sample run_closed_loop(int k, double duration, std::atomic<std::uint64_t>& errors,
                       std::string& first_error, std::mutex& mu, Start&& start) {
  auto& slots = g_slots;
  auto done = [&](bool ok, std::string err) {
    if (!ok) {
      if (errors.fetch_add(1) == 0) {
        std::lock_guard<std::mutex> lock(mu);
        first_error = std::move(err);
      }
    }
    slots.release();
  };
  auto loop = [&](double secs, std::uint64_t& issued) {
    slots.release(k);
    const auto end = Clock::now() + std::chrono::duration<double>(secs);
    while (Clock::now() < end) {
      slots.acquire();
      start(done);
      ++issued;
    }
    for (int i = 0; i < k; ++i) slots.acquire();  // drain: every call has completed
  };
  std::uint64_t warm = 0;
  loop(std::min(0.5, duration / 4), warm);
  Sample s;
  const Meter meter;
  loop(duration, s.calls);
  s.use = meter.stop();
  return s;
}

template <class Start>
E2eResult e2e(std::string name, int k, int records_per_call, double duration, int reps,
              Start&& start) {
  E2eResult r;
  r.name = std::move(name);
  r.inflight = k;
  r.records_per_call = records_per_call;
  std::atomic<std::uint64_t> errors{0};
  std::mutex mu;
  auto samples = clean_samples<Sample>(reps, r.discarded, r.clean, [&] {
    return run_closed_loop(k, duration, errors, r.first_error, mu, start);
  });
  std::vector<double> rate, cpu, util, stub, other, other_stub;
  for (const Sample& s : samples) {
    const Meter::Use& u = s.use;
    r.calls += s.calls;
    rate.push_back(static_cast<double>(s.calls) / u.wall);
    cpu.push_back(u.cpu / static_cast<double>(s.calls) * 1e6);
    util.push_back(u.cpu / u.wall);
    stub.push_back(u.stub < 0 ? -1 : u.stub / u.wall);
    other.push_back(u.other < 0 ? -1 : u.other / u.wall);
    other_stub.push_back(u.other_stub_cpu < 0 ? -1 : u.other_stub_cpu / u.wall);
  }
  r.calls_per_s = median(rate);
  r.cpu_us_per_call = median(cpu);
  r.client_util = median(util);
  r.stub_util = median(stub);
  r.other_util = median(other);
  r.other_stub_cpu_util = median(other_stub);
  r.errors = errors.load();
  return r;
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  while (*s != '\0') {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end == s) break;
    out.push_back(static_cast<int>(v));
    s = *end == ',' ? end + 1 : end;
  }
  return out;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

int usage() {
  std::fprintf(stderr,
               "usage: shardline_aws_bench --endpoint URL [--stub-pid PID] [--duration S] "
               "[--reps N] [--inflight 1,8,32] [--get-inflight 1,4] [--max-other F] [--json]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint;
  int reps = 3;
  double duration = 2.0;
  std::vector<int> inflight{1, 8, 32}, get_inflight{1, 4};
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    const char* v = argv[++i];
    if (a == "--endpoint") {
      endpoint = v;
    } else if (a == "--stub-pid") {
      g_stub_pid = std::atoi(v);
    } else if (a == "--max-other") {
      g_max_other = std::atof(v);
    } else if (a == "--duration") {
      duration = std::atof(v);
    } else if (a == "--reps") {
      reps = std::max(1, std::atoi(v));
    } else if (a == "--inflight") {
      inflight = parse_list(v);
    } else if (a == "--get-inflight") {
      get_inflight = parse_list(v);
    } else {
      return usage();
    }
  }
  if (endpoint.empty()) return usage();

  constexpr int kRecords = 500, kRecordSize = 100;
  const Workload w = make_workload(kRecords, kRecordSize);
  const StreamRef stream("bench");
  const int max_k = std::max(*std::max_element(inflight.begin(), inflight.end()),
                             *std::max_element(get_inflight.begin(), get_inflight.end()));

  AwsClientConfig cfg;
  cfg.endpoint_url = endpoint;
  cfg.region = "us-east-1";
  cfg.max_connections = max_k;
  cfg.max_attempts = 1;
  Credentials creds;
  creds.access_key_id = "AKIDEXAMPLE";
  creds.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  cfg.credentials = make_static_credentials_provider(creds);

  // The stub's canned bodies, fetched through the service layer (which returns raw bodies).
  const std::string put_body = detail::build_put_records(stream, w.entries);
  std::string put_response, get_response, get_request, iterator;
  {
    auto svc = detail::ServiceClient::create(cfg, detail::kKinesisSpec);
    if (!svc.ok()) {
      std::fprintf(stderr, "client: %s\n", svc.status().to_string().c_str());
      return 1;
    }
    auto p = (*svc)->call("PutRecords", put_body);
    auto it = (*svc)->call("GetShardIterator",
                           R"({"StreamName":"bench","ShardId":"shardId-000000000000",)"
                           R"("ShardIteratorType":"TRIM_HORIZON"})");
    if (!p.ok() || !it.ok()) {
      std::fprintf(stderr, "stub: %s\n", (!p.ok() ? p.status() : it.status()).to_string().c_str());
      return 1;
    }
    put_response = p->body;
    const std::size_t q = it->body.find(":\"") + 2;
    iterator = it->body.substr(q, it->body.find('"', q) - q);
    get_request = R"({"ShardIterator":")" + iterator + R"(","Limit":10000})";
    auto g = (*svc)->call("GetRecords", get_request);
    if (!g.ok()) {
      std::fprintf(stderr, "stub: %s\n", g.status().to_string().c_str());
      return 1;
    }
    get_response = g->body;
  }
  const auto get_data = data_strings(get_response);
  const int get_records = static_cast<int>(get_data.size());

  auto client_or = KinesisClient::create(cfg);
  if (!client_or.ok()) {
    std::fprintf(stderr, "client: %s\n", client_or.status().to_string().c_str());
    return 1;
  }
  KinesisClient& client = **client_or;
  // The control-plane calls a producer and a consumer make first: the stub must answer them.
  {
    auto summary = client.describe_stream_summary(stream);
    auto shards = client.list_shards(stream);
    if (!summary.ok() || summary->status != "ACTIVE" || !shards.ok() || shards->empty()) {
      std::fprintf(stderr, "stub: DescribeStreamSummary/ListShards failed\n");
      return 1;
    }
  }

  // ---- micro ----
  const double micro_secs = std::max(0.2, duration / 4);
  std::vector<MicroResult> micros;
  {
    std::string b64(static_cast<std::size_t>(kRecords) * 140, '\0');
    std::string body_sized(put_body.size(), 'x');
    micros.push_back(micro("floor_put",
                           "OpenSSL base64 of 500 x 100 B + SHA-256 of a " +
                               std::to_string(put_body.size()) + "-byte body",
                           micro_secs, reps, [&] {
                             auto* out = reinterpret_cast<unsigned char*>(b64.data());
                             for (const auto& e : w.entries) {
                               out += EVP_EncodeBlock(
                                   out, reinterpret_cast<const unsigned char*>(e.data.data()),
                                   static_cast<int>(e.data.size()));
                             }
                             unsigned char md[32];
                             sha256(body_sized, md);
                             g_sink += md[0];
                           }));
  }
  {
    std::string b64(static_cast<std::size_t>(kRecords) * 140, '\0');
    micros.push_back(
        micro("floor_put_base64", "OpenSSL base64 of 500 x 100 B", micro_secs, reps, [&] {
          auto* out = reinterpret_cast<unsigned char*>(b64.data());
          for (const auto& e : w.entries) {
            out += EVP_EncodeBlock(out, reinterpret_cast<const unsigned char*>(e.data.data()),
                                   static_cast<int>(e.data.size()));
          }
          g_sink += static_cast<std::size_t>(out[-1]);
        }));
    micros.push_back(micro("floor_put_sha256",
                           "OpenSSL SHA-256 of " + std::to_string(put_body.size()) + " bytes",
                           micro_secs, reps, [&] {
                             unsigned char md[32];
                             sha256(put_body, md);
                             g_sink += md[0];
                           }));
  }
  micros.push_back(micro("build_put_records", "detail::build_put_records, 500 x 100 B", micro_secs,
                         reps,
                         [&] { g_sink += detail::build_put_records(stream, w.entries).size(); }));
  {
    detail::SigV4Signer signer("us-east-1", "kinesis");
    const std::string authority = cfg.endpoint_url.substr(cfg.endpoint_url.find("//") + 2);
    const detail::SigV4Header headers[] = {{"Host", authority},
                                           {"Content-Type", "application/x-amz-json-1.1"},
                                           {"X-Amz-Target", "Kinesis_20131202.PutRecords"}};
    detail::SigV4Result out;
    micros.push_back(micro(
        "sign", "SigV4 of the PutRecords request (payload hash included)", micro_secs, reps, [&] {
          detail::SigV4Request req;
          req.method = "POST";
          req.path = "/";
          req.headers = headers;
          req.payload = put_body;
          const Status s = signer.sign(req, creds, std::chrono::system_clock::now(), out);
          g_sink += s.ok() ? out.authorization.size() : 0;
        }));
  }
  micros.push_back(
      micro("parse_put_records", "detail::parse_put_records, 500 entries", micro_secs, reps, [&] {
        auto r = detail::parse_put_records(put_response);
        g_sink += r.ok() ? r->records.size() : 0;
      }));
  {
    std::string out(200, '\0');
    micros.push_back(micro("floor_get",
                           "OpenSSL base64 decode of " + std::to_string(get_records) +
                               " Data strings + SHA-256 of the request body",
                           micro_secs, reps, [&] {
                             auto* o = reinterpret_cast<unsigned char*>(out.data());
                             for (std::string_view d : get_data) {
                               g_sink += static_cast<std::size_t>(EVP_DecodeBlock(
                                   o, reinterpret_cast<const unsigned char*>(d.data()),
                                   static_cast<int>(d.size())));
                             }
                             unsigned char md[32];
                             sha256(get_request, md);
                             g_sink += md[0];
                           }));
  }
  micros.push_back(micro("parse_get_records",
                         "detail::parse_get_records, " + std::to_string(get_records) +
                             " records (" + std::to_string(get_response.size()) + " bytes)",
                         micro_secs, reps, [&] {
                           auto r = detail::parse_get_records(get_response);
                           g_sink += r.ok() ? r->records.size() : 0;
                         }));

  // ---- end to end ----
  std::vector<E2eResult> runs;
  auto put_phase = [&](const std::vector<PutRecordsEntry>& entries, const char* name, int k) {
    const std::span<const PutRecordsEntry> span(entries);
    const std::size_t n = entries.size();
    runs.push_back(e2e(name, k, static_cast<int>(n), duration, reps, [&](auto& done) {
      client.put_records_async(stream, span, [&done, n](Result<PutRecordsResult> r) {
        if (!r.ok()) return done(false, r.status().to_string());
        if (r->records.size() != n || r->failed_record_count != 0) {
          return done(false,
                      "PutRecords answered " + std::to_string(r->records.size()) + " entries");
        }
        done(true, {});
      });
    }));
  };
  for (int k : inflight) put_phase(w.entries, "put_records", k);
  for (int k : {1, max_k}) put_phase(w.one, "put_records_1", k);
  for (int k : get_inflight) {
    runs.push_back(e2e("get_records", k, get_records, duration, reps, [&](auto& done) {
      client.get_records_async(iterator, 10000, [&done, get_records](Result<GetRecordsResult> r) {
        if (!r.ok()) return done(false, r.status().to_string());
        if (static_cast<int>(r->records.size()) != get_records || !r->next_shard_iterator) {
          return done(false,
                      "GetRecords returned " + std::to_string(r->records.size()) + " records");
        }
        done(true, {});
      });
    }));
  }

  std::uint64_t errors = 0;
  for (const auto& r : runs) {
    errors += r.errors;
    if (r.errors != 0) {
      std::fprintf(stderr, "%s K=%d: %llu failed calls, first: %s\n", r.name.c_str(), r.inflight,
                   static_cast<unsigned long long>(r.errors), r.first_error.c_str());
    }
  }

  if (json) {
    std::printf("{\"put_body_bytes\":%zu,\"put_response_bytes\":%zu,\"get_response_bytes\":%zu,",
                put_body.size(), put_response.size(), get_response.size());
    std::printf("\"get_records_per_response\":%d,\"micro\":[", get_records);
    for (std::size_t i = 0; i < micros.size(); ++i) {
      std::printf("%s{\"name\":\"%s\",\"what\":\"%s\",\"ns\":%.1f,\"discarded\":%d,\"clean\":%s}",
                  i ? "," : "", micros[i].name.c_str(), json_escape(micros[i].what).c_str(),
                  micros[i].ns, micros[i].discarded, micros[i].clean ? "true" : "false");
    }
    std::printf("],\"e2e\":[");
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const auto& r = runs[i];
      std::printf(
          "%s{\"name\":\"%s\",\"inflight\":%d,\"records_per_call\":%d,\"calls_per_s\":%.2f,"
          "\"cpu_us_per_call\":%.2f,\"client_util\":%.3f,\"stub_util\":%.3f,\"other_util\":%.3f,"
          "\"other_stub_cpu_util\":%.3f,"
          "\"calls\":%llu,"
          "\"errors\":%llu,\"discarded\":%d,\"clean\":%s}",
          i ? "," : "", r.name.c_str(), r.inflight, r.records_per_call, r.calls_per_s,
          r.cpu_us_per_call, r.client_util, r.stub_util, r.other_util, r.other_stub_cpu_util,
          static_cast<unsigned long long>(r.calls), static_cast<unsigned long long>(r.errors),
          r.discarded, r.clean ? "true" : "false");
    }
    std::printf("]}\n");
  } else {
    std::printf("PutRecords body %zu bytes; GetRecords response %zu bytes, %d records\n",
                put_body.size(), get_response.size(), get_records);
    std::printf("%-20s %12s  %s\n", "micro", "CPU us/call", "what");
    for (const auto& m : micros) {
      std::printf("%-20s %12.2f  %s\n", m.name.c_str(), m.ns / 1000, m.what.c_str());
    }
    std::printf("%-16s %4s %10s %12s %12s %7s %7s\n", "end to end", "K", "calls/s", "records/s",
                "CPU us/call", "client", "stub");
    for (const auto& r : runs) {
      std::printf("%-16s %4d %10.1f %12.0f %12.1f %6.0f%% %6.0f%%\n", r.name.c_str(), r.inflight,
                  r.calls_per_s, r.calls_per_s * r.records_per_call, r.cpu_us_per_call,
                  r.client_util * 100, r.stub_util * 100);
    }
  }
  return errors == 0 ? 0 : 1;
}
