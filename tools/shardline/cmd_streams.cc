// shardline streams create NAME --shards N | delete NAME | describe NAME | list
//                   | split NAME SHARD [--at HASHKEY] | merge NAME SHARD ADJACENT
#include <cstdio>
#include <string>

#include "aws_cli.h"
#include "commands.h"
#include "core/uint128.h"
#include "io.h"
#include "shardline/kinesis.h"

namespace shardline::cli {

namespace {

struct StreamsArgs {
  AwsOptions aws;
  std::string stream;
  int shards = 0;
  bool on_demand = false;
  bool no_wait = false;
  int wait_seconds = 120;
  std::string shard;
  std::string adjacent;
  std::string at;
};

std::string json_str(std::string_view s) {
  std::string o;
  append_json_string(o, s);
  return o;
}

void print_shard(const Shard& s, bool last) {
  std::printf(
      "    {\"shardId\": %s, \"parentShardId\": %s, \"adjacentParentShardId\": %s, "
      "\"startingHashKey\": \"%s\", \"endingHashKey\": \"%s\", \"startingSequenceNumber\": %s, "
      "\"endingSequenceNumber\": %s}%s\n",
      json_str(s.shard_id).c_str(),
      s.parent_shard_id.empty() ? "null" : json_str(s.parent_shard_id).c_str(),
      s.adjacent_parent_shard_id.empty() ? "null" : json_str(s.adjacent_parent_shard_id).c_str(),
      s.hash_key_range.start.to_decimal().c_str(), s.hash_key_range.end.to_decimal().c_str(),
      json_str(s.starting_sequence_number).c_str(),
      s.ending_sequence_number.empty() ? "null" : json_str(s.ending_sequence_number).c_str(),
      last ? "" : ",");
}

int describe(KinesisClient& k, const std::string& stream) {
  auto sum = k.describe_stream_summary(stream);
  if (!sum.ok()) return report_error("stream " + stream, sum.status());
  auto shards = k.list_shards(stream);
  if (!shards.ok()) return report_error("stream " + stream, shards.status());
  std::printf("{\n  \"streamName\": %s,\n  \"streamARN\": %s,\n  \"status\": %s,\n",
              json_str(sum->name).c_str(), json_str(sum->arn).c_str(),
              json_str(sum->status).c_str());
  std::printf("  \"streamMode\": %s,\n  \"openShardCount\": %d,\n  \"retentionPeriodHours\": %d,\n",
              sum->stream_mode.empty() ? "null" : json_str(sum->stream_mode).c_str(),
              sum->open_shard_count, sum->retention_period_hours);
  std::printf("  \"shards\": [\n");
  for (std::size_t i = 0; i < shards->size(); ++i)
    print_shard((*shards)[i], i + 1 == shards->size());
  std::printf("  ]\n}\n");
  return 0;
}

// The midpoint of a shard's range: where `split` cuts when --at is not given.
Result<HashKey> midpoint(KinesisClient& k, const std::string& stream, const std::string& shard_id) {
  auto shards = k.list_shards(stream);
  if (!shards.ok()) return std::move(shards).status();
  for (const Shard& s : *shards) {
    if (s.shard_id != shard_id) continue;
    if (!s.is_open()) return Status::failed_precondition("shard " + shard_id + " is closed");
    const detail::u128 lo = detail::to_u128(s.hash_key_range.start);
    const detail::u128 hi = detail::to_u128(s.hash_key_range.end);
    if (hi == lo) return Status::failed_precondition("shard " + shard_id + " has one hash key");
    // The upper child starts just past the middle: [0, 2^128-1] splits at 2^127, as AWS does.
    return detail::from_u128(lo + (hi - lo) / 2 + 1);
  }
  return Status::not_found("shard " + shard_id + " not found in stream " + stream);
}

}  // namespace

Runner add_streams(CLI::App& app) {
  auto a = std::make_shared<StreamsArgs>();
  CLI::App* sub = app.add_subcommand("streams", "Create, inspect and reshard Kinesis streams.");
  sub->require_subcommand(1);
  sub->fallthrough();  // AWS options may follow the action: `streams list --region x`
  add_aws_options(*sub, a->aws);

  CLI::App* create = sub->add_subcommand("create", "Create a stream and wait until it is ACTIVE.");
  create->add_option("name", a->stream, "Stream name")->required();
  auto* shards_opt =
      create->add_option("--shards", a->shards, "Number of shards")->check(CLI::Range(1, 100000));
  auto* od = create->add_flag("--on-demand", a->on_demand, "Create an ON_DEMAND stream");
  shards_opt->excludes(od);
  create->add_flag("--no-wait", a->no_wait, "Return without waiting for ACTIVE");
  create->add_option("--wait-seconds", a->wait_seconds, "How long to wait for ACTIVE")
      ->check(CLI::Range(1, 3600));

  CLI::App* del = sub->add_subcommand("delete", "Delete a stream.");
  del->add_option("name", a->stream, "Stream name or ARN")->required();

  CLI::App* desc = sub->add_subcommand("describe", "Print a stream's summary and shards (JSON).");
  desc->add_option("name", a->stream, "Stream name or ARN")->required();

  CLI::App* list = sub->add_subcommand("list", "List stream names.");

  CLI::App* split = sub->add_subcommand("split", "Split a shard (at its midpoint by default).");
  split->add_option("name", a->stream, "Stream name or ARN")->required();
  split->add_option("shard", a->shard, "Shard to split")->required();
  split->add_option("--at", a->at, "New starting hash key of the upper child (decimal)");

  CLI::App* merge = sub->add_subcommand("merge", "Merge two adjacent shards.");
  merge->add_option("name", a->stream, "Stream name or ARN")->required();
  merge->add_option("shard", a->shard, "Shard to merge")->required();
  merge->add_option("adjacent", a->adjacent, "The adjacent shard")->required();

  return [a, create, del, desc, list, split, merge]() -> int {
    if (create->parsed() && a->shards == 0 && !a->on_demand) {
      std::fprintf(
          stderr,
          "shardline: error: streams create needs --shards N or --on-demand (see --help)\n");
      return 2;
    }
    std::optional<HashKey> at;
    if (split->parsed() && !a->at.empty()) {
      auto k = HashKey::parse_decimal(a->at);
      if (!k.ok()) {
        std::fprintf(stderr, "shardline: error: --at: %s\n",
                     std::string(k.status().message()).c_str());
        return 2;
      }
      at = *k;
    }
    auto client = KinesisClient::create(make_aws_config(a->aws));
    if (!client.ok()) return report_error("configuration", client.status());
    KinesisClient& k = **client;
    if (create->parsed()) {
      std::optional<int> n;
      if (!a->on_demand) n = a->shards;
      Status s = k.create_stream(a->stream, n);
      if (!s.ok()) return report_error("stream " + a->stream, s);
      if (!a->no_wait) {
        s = k.wait_for_stream_active(a->stream, std::chrono::seconds(a->wait_seconds));
        if (!s.ok()) return report_error("waiting for " + a->stream, s);
        return describe(k, a->stream);
      }
      std::printf("{\"streamName\": %s, \"status\": \"CREATING\"}\n", json_str(a->stream).c_str());
      return 0;
    }
    if (del->parsed()) {
      const Status s = k.delete_stream(a->stream);
      if (!s.ok()) return report_error("stream " + a->stream, s);
      return 0;
    }
    if (desc->parsed()) return describe(k, a->stream);
    if (list->parsed()) {
      auto names = k.list_streams();
      if (!names.ok()) return report_error("list", names.status());
      for (const auto& n : *names) std::printf("%s\n", n.c_str());
      return 0;
    }
    if (split->parsed()) {
      if (!at) {
        auto m = midpoint(k, a->stream, a->shard);
        if (!m.ok()) return report_error("split " + a->shard, m.status());
        at = *m;
      }
      const Status s = k.split_shard(a->stream, a->shard, *at);
      if (!s.ok()) return report_error("shard " + a->shard, s);
      std::printf("{\"splitShard\": %s, \"newStartingHashKey\": \"%s\"}\n",
                  json_str(a->shard).c_str(), at->to_decimal().c_str());
      return 0;
    }
    if (merge->parsed()) {
      const Status s = k.merge_shards(a->stream, a->shard, a->adjacent);
      if (!s.ok()) return report_error("shard " + a->shard, s);
      return 0;
    }
    return 2;
  };
}

}  // namespace shardline::cli
