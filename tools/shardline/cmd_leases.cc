// shardline leases --application APP [--lease-table dynamodb:TABLE|sqlite:PATH] [--json]
//                  [--sample SECONDS]
//
// An operator's view of an application's lease table: one row per lease (shard, owner,
// counter, checkpoint, parents, children, age). Read-only: it never creates a table or a file.
//
// Age. The lease table holds no clock time (the KCL's expiry is judged from counter changes,
// never from clocks), so age is observed: with --sample S the table is read every 200 ms for S
// seconds, and a lease's age is the time since its counter last moved ("1.2s"), or ">S s" when
// it did not move at all (a live owner renews every failoverTimeMillis/3: 3.3 s by default, so
// a sample of 4 s tells live leases from stalled ones).
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "aws_cli.h"
#include "commands.h"
#include "io.h"
#include "shardline/lease_store.h"

namespace shardline::cli {

namespace {

struct LeasesArgs {
  AwsOptions aws;
  std::string application;
  std::string lease_table;
  bool json = false;
  double sample = 0;
};

// Age observed while sampling: time since the counter last moved, or at least the sample.
struct Age {
  double seconds = 0;
  bool at_least = false;  // the counter did not move during the sample
};
using Ages = std::map<std::string, Age>;

std::string age_text(const std::optional<Age>& a) {
  if (!a) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, a->at_least ? ">%.1fs" : "%.1fs", a->seconds);
  return buf;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += ',';
    s += x;
  }
  return s.empty() ? "-" : s;
}

std::optional<Age> age_of(const Ages* ages, const std::string& key) {
  if (ages == nullptr) return std::nullopt;
  auto it = ages->find(key);
  if (it == ages->end()) return std::nullopt;
  return it->second;
}

void print_json(const std::vector<Lease>& leases, const Ages* ages) {
  std::string o;
  for (const Lease& l : leases) {
    o += "{\"leaseKey\":";
    append_json_string(o, l.lease_key);
    o += ",\"leaseOwner\":";
    if (l.lease_owner.empty()) {
      o += "null";
    } else {
      append_json_string(o, l.lease_owner);
    }
    o += ",\"leaseCounter\":" + std::to_string(l.lease_counter) + ",\"checkpoint\":";
    append_json_string(o, l.checkpoint);
    o += ",\"checkpointSubSequenceNumber\":" + std::to_string(l.checkpoint_sub_sequence_number);
    o += ",\"ownerSwitchesSinceCheckpoint\":" + std::to_string(l.owner_switches_since_checkpoint);
    for (const auto& [name, ids] : {std::pair{"parentShardIds", &l.parent_shard_ids},
                                    std::pair{"childShardIds", &l.child_shard_ids}}) {
      o += ",\"";
      o += name;
      o += "\":[";
      for (std::size_t i = 0; i < ids->size(); ++i) {
        if (i) o += ',';
        append_json_string(o, (*ids)[i]);
      }
      o += ']';
    }
    if (auto age = age_of(ages, l.lease_key)) {
      o += age->at_least ? ",\"ageMsAtLeast\":" : ",\"ageMs\":";
      o += std::to_string(static_cast<long long>(age->seconds * 1000));
    }
    o += "}\n";
  }
  std::fwrite(o.data(), 1, o.size(), stdout);
}

void print_table(const std::vector<Lease>& leases, const Ages* ages) {
  std::printf("%-24s %-24s %10s %7s  %-58s %6s %6s  %-24s %s\n", "SHARD", "OWNER", "COUNTER", "AGE",
              "CHECKPOINT", "SUBSEQ", "SWITCH", "PARENTS", "CHILDREN");
  std::map<std::string, int> per_owner;
  int unowned = 0;
  for (const Lease& l : leases) {
    std::printf("%-24s %-24s %10lld %7s  %-58s %6lld %6lld  %-24s %s\n", l.lease_key.c_str(),
                l.lease_owner.empty() ? "-" : l.lease_owner.c_str(),
                static_cast<long long>(l.lease_counter),
                age_text(age_of(ages, l.lease_key)).c_str(),
                l.checkpoint.empty() ? "-" : l.checkpoint.c_str(),
                static_cast<long long>(l.checkpoint_sub_sequence_number),
                static_cast<long long>(l.owner_switches_since_checkpoint),
                join(l.parent_shard_ids).c_str(), join(l.child_shard_ids).c_str());
    if (l.lease_owner.empty()) {
      ++unowned;
    } else {
      ++per_owner[l.lease_owner];
    }
  }
  std::printf("\n%zu leases, %zu owners, %d unowned", leases.size(), per_owner.size(), unowned);
  for (const auto& [owner, n] : per_owner) std::printf("; %s: %d", owner.c_str(), n);
  std::printf("\n");
}

}  // namespace

/// The default lease store of an application: a SQLite file named after it, in the working
/// directory.
std::string default_lease_table(const std::string& application) {
  return "sqlite:" + application + ".leases.db";
}

Runner add_leases(CLI::App& app) {
  auto a = std::make_shared<LeasesArgs>();
  CLI::App* sub = app.add_subcommand("leases", "Show an application's leases and checkpoints.");
  add_aws_options(*sub, a->aws);
  sub->add_option("--application", a->application, "Application name")->required();
  sub->add_option("--lease-table", a->lease_table,
                  "dynamodb:TABLE or sqlite:PATH (default: sqlite:APPLICATION.leases.db)");
  sub->add_flag("--json", a->json, "One JSON line per lease instead of a table");
  sub->add_option("--sample", a->sample,
                  "Watch the table this many seconds to show each lease's age (time since its "
                  "counter moved); 4 tells live leases from stalled ones")
      ->check(CLI::Range(0.0, 600.0));
  return [a]() -> int {
    const std::string spec =
        a->lease_table.empty() ? default_lease_table(a->application) : a->lease_table;
    // Read-only: a missing SQLite file is an error, not something to create.
    const bool sqlite = spec.rfind("sqlite:", 0) == 0;
    if (sqlite || spec.find(':') == std::string::npos) {  // other schemes: the store decides
      const std::string path = sqlite ? spec.substr(7) : spec;
      struct stat st {};
      if (!path.empty() && ::stat(path.c_str(), &st) != 0) {
        std::fprintf(stderr, "shardline: error: no lease store at '%s' (see --lease-table)\n",
                     path.c_str());
        return 3;
      }
    }
    auto store = open_lease_store(spec, a->application, make_aws_config(a->aws));
    if (!store.ok()) return report_error("lease store " + spec, store.status());
    auto leases = (*store)->list_leases();
    if (!leases.ok()) return report_error((*store)->describe(), leases.status());
    std::optional<Ages> ages;
    if (a->sample > 0) {
      install_stop_signals();  // Ctrl-C ends the sample early and still prints
      // Watch the counters; the last read is the one shown.
      using Clock = std::chrono::steady_clock;
      const auto start = Clock::now();
      const auto end = start + std::chrono::duration<double>(a->sample);
      std::map<std::string, std::pair<std::int64_t, Clock::time_point>> seen;  // counter, when
      for (const Lease& l : *leases) seen[l.lease_key] = {l.lease_counter, Clock::time_point{}};
      while (Clock::now() < end && !stop_requested()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        auto again = (*store)->list_leases();
        if (!again.ok()) return report_error((*store)->describe(), again.status());
        const auto now = Clock::now();
        for (const Lease& l : *again) {
          auto it = seen.find(l.lease_key);
          if (it == seen.end()) {
            seen[l.lease_key] = {l.lease_counter, now};  // created meanwhile
          } else if (it->second.first != l.lease_counter) {
            it->second = {l.lease_counter, now};
          }
        }
        *leases = std::move(*again);
      }
      const auto now = Clock::now();
      ages.emplace();
      for (const auto& [key, c] : seen) {
        if (c.second == Clock::time_point{}) {
          (*ages)[key] = {std::chrono::duration<double>(now - start).count(), true};
        } else {
          (*ages)[key] = {std::chrono::duration<double>(now - c.second).count(), false};
        }
      }
    }
    const Ages* ap = ages ? &*ages : nullptr;
    if (a->json) {
      print_json(*leases, ap);
    } else {
      print_table(*leases, ap);
    }
    return 0;
  };
}

}  // namespace shardline::cli
