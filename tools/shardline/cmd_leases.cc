// shardline leases --application APP [--lease-table dynamodb:TABLE|sqlite:PATH] [--json]
//
// An operator's view of an application's lease table: one row per lease (shard, owner,
// counter, checkpoint, parents, children). Read-only: it never creates a table or a file.
#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <string>
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
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += ',';
    s += x;
  }
  return s.empty() ? "-" : s;
}

void print_json(const std::vector<Lease>& leases) {
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
    o += "}\n";
  }
  std::fwrite(o.data(), 1, o.size(), stdout);
}

void print_table(const std::vector<Lease>& leases) {
  std::printf("%-24s %-24s %10s  %-58s %6s %6s  %-24s %s\n", "SHARD", "OWNER", "COUNTER",
              "CHECKPOINT", "SUBSEQ", "SWITCH", "PARENTS", "CHILDREN");
  std::map<std::string, int> per_owner;
  int unowned = 0;
  for (const Lease& l : leases) {
    std::printf("%-24s %-24s %10lld  %-58s %6lld %6lld  %-24s %s\n", l.lease_key.c_str(),
                l.lease_owner.empty() ? "-" : l.lease_owner.c_str(),
                static_cast<long long>(l.lease_counter),
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
    if (a->json) {
      print_json(*leases);
    } else {
      print_table(*leases);
    }
    return 0;
  };
}

}  // namespace shardline::cli
