// shardline tail --stream NAME [--from TRIM_HORIZON|LATEST|AT_TIMESTAMP:<epoch-ms>]
//                [--until-idle SECONDS] [--max-records N]
//
// Reads every shard without leases, parents before children: a child shard starts when all of
// its parents are read to their end (children are found from ChildShards, or from ListShards
// where the server does not send them). Records are deaggregated (per-user-record shard-range
// filtering) and printed as the JSON lines of `deagg` plus shardId, sequenceNumber and
// approximateArrivalTimestamp.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aws_cli.h"
#include "commands.h"
#include "io.h"
#include "shardline/aggregation.h"
#include "shardline/kinesis.h"

namespace shardline::cli {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct TailArgs {
  AwsOptions aws;
  std::string stream;
  std::string from = "TRIM_HORIZON";
  double until_idle = 0;
  std::uint64_t max_records = 0;
  int limit = 10000;
};

struct Cursor {
  Shard shard;
  std::string iterator;
  std::string last_sequence;  // last Kinesis record read
  Clock::time_point next_read;
  int throttled = 0;
};

// Parse --from.
Result<ShardIteratorStart> parse_from(const std::string& from) {
  ShardIteratorStart s;
  if (from == "TRIM_HORIZON") {
    s.type = ShardIteratorType::kTrimHorizon;
  } else if (from == "LATEST") {
    s.type = ShardIteratorType::kLatest;
  } else if (from.rfind("AT_TIMESTAMP:", 0) == 0) {
    s.type = ShardIteratorType::kAtTimestamp;
    const std::string ms = from.substr(13);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(ms.c_str(), &end, 10);
    if (ms.empty() || *end != '\0' || errno != 0 || v < 0) {
      return Status::invalid_argument(
          "--from AT_TIMESTAMP:<epoch-ms> needs a millisecond epoch, got '" + ms + "'");
    }
    s.timestamp_ms = v;
  } else {
    return Status::invalid_argument(
        "--from must be TRIM_HORIZON, LATEST or AT_TIMESTAMP:<epoch-ms>, got '" + from + "'");
  }
  return s;
}

class Tail {
 public:
  Tail(KinesisClient& k, const TailArgs& a, ShardIteratorStart start)
      : k_(k), a_(a), start_(start) {}

  int run() {
    auto shards = k_.list_shards(a_.stream);
    if (!shards.ok()) return report_error("stream " + a_.stream, shards.status());
    for (const Shard& s : *shards) known_[s.shard_id] = s;
    // Where to begin: LATEST reads only open shards; otherwise begin at the roots (shards
    // whose parents are gone) and reach the rest through their parents.
    for (const Shard& s : *shards) {
      if (start_.type == ShardIteratorType::kLatest) {
        if (s.is_open()) {
          const Status st = open_cursor(s, start_);
          if (!st.ok()) return report_error("shard " + s.shard_id, st);
        }
      } else if (!has_known_parent(s)) {
        const Status st = open_cursor(s, start_);
        if (!st.ok()) return report_error("shard " + s.shard_id, st);
      }
    }
    last_activity_ = Clock::now();
    while (!stop_requested()) {
      if (cursors_.empty()) break;  // every shard read to its end
      if (a_.max_records && printed_ >= a_.max_records) break;
      auto it = std::min_element(
          cursors_.begin(), cursors_.end(),
          [](const Cursor& x, const Cursor& y) { return x.next_read < y.next_read; });
      const auto now = Clock::now();
      if (a_.until_idle > 0 &&
          now - last_activity_ > std::chrono::duration<double>(a_.until_idle)) {
        break;
      }
      if (it->next_read > now) {
        // Polling a remote service: nothing to wait on but time. Wake at least every 100 ms
        // to notice signals and the idle limit.
        std::this_thread::sleep_for(
            std::min<Clock::duration>(it->next_read - now, milliseconds(100)));
        continue;
      }
      const int rc = read_once(*it);
      if (rc != 0) return rc;
    }
    out_.flush().ok();
    return out_.failed() ? 1 : 0;
  }

 private:
  bool has_known_parent(const Shard& s) const {
    return (!s.parent_shard_id.empty() && known_.count(s.parent_shard_id)) ||
           (!s.adjacent_parent_shard_id.empty() && known_.count(s.adjacent_parent_shard_id));
  }

  Status open_cursor(const Shard& s, const ShardIteratorStart& from) {
    if (started_.count(s.shard_id)) return {};
    started_.insert(s.shard_id);
    auto it = k_.get_shard_iterator(
        a_.stream, s.shard_id, from,
        from.type == ShardIteratorType::kAtTimestamp ? milliseconds(5000) : milliseconds(0));
    if (!it.ok() && from.type == ShardIteratorType::kAtTimestamp &&
        it.status().code() == StatusCode::kDeadlineExceeded) {
      // Some servers (kinesalite) never answer AT_TIMESTAMP when no record is at or after the
      // timestamp; then LATEST is the same position.
      std::fprintf(stderr,
                   "shardline: warning: %s: AT_TIMESTAMP got no answer; reading from LATEST\n",
                   s.shard_id.c_str());
      it = k_.get_shard_iterator(a_.stream, s.shard_id,
                                 ShardIteratorStart{ShardIteratorType::kLatest, {}, 0});
    }
    if (!it.ok()) return std::move(it).status();
    cursors_.push_back(Cursor{s, std::move(*it), {}, Clock::now(), 0});
    return {};
  }

  int read_once(Cursor& c) {
    auto r = k_.get_records(c.iterator, a_.limit);
    if (!r.ok()) {
      const Status& s = r.status();
      if (s.aws_error_code() == "ExpiredIteratorException") {
        // Resume right after the last record read.
        ShardIteratorStart from{ShardIteratorType::kTrimHorizon, {}, 0};
        if (!c.last_sequence.empty())
          from = {ShardIteratorType::kAfterSequenceNumber, c.last_sequence, 0};
        auto it = k_.get_shard_iterator(a_.stream, c.shard.shard_id, from);
        if (!it.ok()) return report_error("shard " + c.shard.shard_id, it.status());
        c.iterator = std::move(*it);
        return 0;
      }
      if (s.retry() == RetryClass::kSameCall) {
        // Throttled or unavailable after the client's own retries: back off this shard.
        c.next_read =
            Clock::now() + milliseconds(std::min(10000, 500 << std::min(c.throttled++, 4)));
        return 0;
      }
      return report_error("shard " + c.shard.shard_id, s);
    }
    c.throttled = 0;
    print(c, *r);
    if (!r->next_shard_iterator) {
      // The shard is closed and read to its end: start children whose parents are all done.
      finished_.insert(c.shard.shard_id);
      const Shard done = c.shard;
      std::vector<ChildShard> children = r->child_shards;
      cursors_.erase(cursors_.begin() + (&c - cursors_.data()));
      return start_children(done, children);
    }
    c.iterator = std::move(*r->next_shard_iterator);
    const bool behind =
        r->millis_behind_latest > 0 || static_cast<int>(r->records.size()) == a_.limit;
    // Kinesis allows 5 GetRecords per second per shard.
    c.next_read = Clock::now() + (r->records.empty() ? milliseconds(500)
                                  : behind           ? milliseconds(200)
                                                     : milliseconds(250));
    return 0;
  }

  int start_children(const Shard& parent, const std::vector<ChildShard>& from_response) {
    std::vector<std::string> candidates;
    for (const auto& c : from_response) candidates.push_back(c.shard_id);
    if (candidates.empty()) {
      // No ChildShards (kinesalite, older servers): find children with ListShards.
      auto shards = k_.list_shards(a_.stream);
      if (!shards.ok()) return report_error("stream " + a_.stream, shards.status());
      for (const Shard& s : *shards) known_[s.shard_id] = s;
      for (const Shard& s : *shards) {
        if (s.parent_shard_id == parent.shard_id || s.adjacent_parent_shard_id == parent.shard_id)
          candidates.push_back(s.shard_id);
      }
    }
    for (const std::string& id : candidates) {
      if (!known_.count(id)) {
        auto shards = k_.list_shards(a_.stream);
        if (!shards.ok()) return report_error("stream " + a_.stream, shards.status());
        for (const Shard& s : *shards) known_[s.shard_id] = s;
        if (!known_.count(id)) continue;
      }
      const Shard& child = known_[id];
      const bool parents_done =
          (child.parent_shard_id.empty() || finished_.count(child.parent_shard_id) ||
           !known_.count(child.parent_shard_id)) &&
          (child.adjacent_parent_shard_id.empty() ||
           finished_.count(child.adjacent_parent_shard_id) ||
           !known_.count(child.adjacent_parent_shard_id));
      if (!parents_done) continue;  // the other parent will start it when it ends
      const Status s =
          open_cursor(child, ShardIteratorStart{ShardIteratorType::kTrimHorizon, {}, 0});
      if (!s.ok()) return report_error("shard " + id, s);
    }
    return 0;
  }

  void print(Cursor& c, const GetRecordsResult& r) {
    DeaggregateOptions opts;
    opts.shard_range = c.shard.hash_key_range;
    Deaggregator deagg(opts);
    std::string& o = out_.buf();
    const std::string_view shard_id = c.shard.shard_id;
    for (const StreamRecord& rec : r.records) {
      users_.clear();
      const DecodeSummary sum =
          deagg.decode(KinesisRecordView{rec.data, rec.partition_key, std::nullopt}, users_);
      if (sum.kind == BlobKind::kCorruptAggregate || sum.kind == BlobKind::kInvalidAggregate) {
        std::fprintf(stderr,
                     "shardline: warning: %s %s: %s aggregated record (%.*s); passed through raw\n",
                     c.shard.shard_id.c_str(), rec.sequence_number.c_str(),
                     sum.kind == BlobKind::kCorruptAggregate ? "corrupt" : "invalid",
                     static_cast<int>(sum.detail.size()), sum.detail.data());
      }
      const std::string_view seq = rec.sequence_number;
      RecordContext ctx;
      ctx.sequence_number = &seq;
      ctx.shard_id = &shard_id;
      ctx.arrival_ms = &rec.approximate_arrival_timestamp_ms;
      for (const UserRecordView& u : users_) {
        if (a_.max_records && printed_ >= a_.max_records) break;
        append_record_json(o, u.partition_key, u.explicit_hash_key, u.data, u.sub_sequence_number,
                           u.aggregated, ctx);
        ++printed_;
      }
      c.last_sequence = rec.sequence_number;
      out_.line_done();
    }
    if (!r.records.empty()) {
      last_activity_ = Clock::now();
      out_.flush().ok();  // tail is interactive: show records as they arrive
    }
  }

  KinesisClient& k_;
  const TailArgs& a_;
  ShardIteratorStart start_;
  std::map<std::string, Shard> known_;
  std::set<std::string> started_, finished_;
  std::vector<Cursor> cursors_;
  std::vector<UserRecordView> users_;
  Output out_;
  std::uint64_t printed_ = 0;
  Clock::time_point last_activity_;
};

}  // namespace

Runner add_tail(CLI::App& app) {
  auto a = std::make_shared<TailArgs>();
  CLI::App* sub = app.add_subcommand(
      "tail", "Print a stream's records (all shards, parents before children, deaggregated).");
  add_aws_options(*sub, a->aws);
  sub->add_option("--stream", a->stream, "Stream name or ARN")->required();
  sub->add_option("--from", a->from, "TRIM_HORIZON, LATEST or AT_TIMESTAMP:<epoch-ms>")
      ->default_val("TRIM_HORIZON");
  sub->add_option("--until-idle", a->until_idle,
                  "Exit after this many seconds without a new record (default: run until all "
                  "shards are closed and read, or SIGINT)")
      ->check(CLI::Range(0.0, 86400.0));
  sub->add_option("--max-records", a->max_records, "Exit after printing this many user records");
  sub->add_option("--limit", a->limit, "GetRecords Limit per call")->check(CLI::Range(1, 10000));
  sub->footer(
      "Output lines: the fields of `shardline deagg` plus shardId, sequenceNumber and "
      "approximateArrivalTimestamp (epoch ms).");
  return [a]() -> int {
    auto start = parse_from(a->from);
    if (!start.ok()) {
      std::fprintf(stderr, "shardline: error: %s\n", std::string(start.status().message()).c_str());
      return 2;
    }
    auto client = KinesisClient::create(make_aws_config(a->aws));
    if (!client.ok()) return report_error("configuration", client.status());
    install_stop_signals();
    Tail t(**client, *a, *start);
    return t.run();
  };
}

}  // namespace shardline::cli
