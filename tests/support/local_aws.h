// Helpers for tests against the local servers started by scripts/servers.
#pragma once

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <memory>
#include <vector>

#include "aws/http_client.h"
#include "shardline/aggregation.h"
#include "shardline/aws_client.h"
#include "shardline/credentials.h"
#include "shardline/kinesis.h"
#include "shardline/producer.h"
#include "support/test_util.h"

namespace shardline::testing {

/// The variable's value, or "" when it is unset.
inline std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

/// Client settings for a local server: its URL, a fixed region, fake static credentials and
/// short retry waits.
inline AwsClientConfig local_aws_config(const std::string& endpoint, int max_attempts = 8) {
  using namespace std::chrono_literals;
  AwsClientConfig c;
  c.endpoint_url = endpoint;
  c.region = "us-east-1";
  c.credentials = make_static_credentials_provider({"AKIDTEST", "test-secret", "", {}, "test"});
  c.retry_base = 10ms;
  c.retry_cap = 50ms;
  c.max_attempts = max_attempts;
  return c;
}

/// Before a test that checks aggregation: puts two records under one partition key through
/// `put_pair(round)` and flushes, round after round, until the producer has aggregated such a
/// pair, i.e. its shard map has arrived. One stored record does not show that: while the map
/// is pending a flush sends the waiting records unaggregated, as the KPL does, and a loaded
/// server can answer ListShards after the first records are stored. False on timeout.
inline bool warm_up_until_aggregating(
    Producer& p, const std::function<void(int)>& put_pair,
    std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  int round = 0;
  return poll_until(
      [&] {
        put_pair(round++);
        if (!p.flush_sync(std::chrono::seconds(30)).ok()) return false;
        return p.metrics().user_records_per_kinesis_record.max >= 2;
      },
      timeout);
}

/// Run a shell command; returns its stdout, and its exit status in `*rc` (-1 if signalled).
inline std::string run_command(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 65536> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

/// POST a JSON settings object to the fault proxy's control endpoint
/// (tests/servers/fault_proxy.js). Returns "" on success, else what went wrong.
inline std::string configure_fault_proxy(const std::string& proxy_url, const std::string& json) {
  static const std::unique_ptr<detail::HttpClient> http = [] {
    auto h = detail::HttpClient::create();
    return h.ok() ? std::move(*h) : nullptr;
  }();
  if (!http) return "cannot create an HTTP client";
  detail::HttpRequest req;
  req.method = "POST";
  req.url = proxy_url + "/__proxy/config";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = json;
  auto r = http->send(req);
  if (!r.ok()) return r.status().to_string();
  if (r->status != 200) return "HTTP " + std::to_string(r->status) + ": " + r->body;
  return "";
}

/// A user record as stored in a stream (after deaggregation).
struct StoredUserRecord {
  std::string shard_id;
  std::string partition_key;
  std::string data;
  bool aggregated = false;
};

/// Every user record in the stream: each shard from TRIM_HORIZON until an empty read or its
/// end, deaggregated (no range filtering). Sets `*error` on the first failure.
inline std::vector<StoredUserRecord> read_stream(KinesisClient& k, const std::string& stream,
                                                 std::string* error) {
  std::vector<StoredUserRecord> out;
  auto shards = k.list_shards(stream);
  if (!shards.ok()) {
    *error = shards.status().to_string();
    return out;
  }
  for (const Shard& sh : *shards) {
    auto it = k.get_shard_iterator(stream, sh.shard_id, {});
    if (!it.ok()) {
      *error = it.status().to_string();
      return out;
    }
    std::string iter = *it;
    for (int i = 0; i < 1000; ++i) {
      auto r = k.get_records(iter);
      if (!r.ok()) {
        *error = r.status().to_string();
        return out;
      }
      for (const auto& rec : r->records) {
        Deaggregator d;
        std::vector<UserRecordView> users;
        d.decode({rec.data, rec.partition_key, std::nullopt}, users);
        for (const auto& u : users) {
          out.push_back(
              {sh.shard_id, std::string(u.partition_key), std::string(u.data), u.aggregated});
        }
      }
      if (r->records.empty() || !r->next_shard_iterator) break;
      iter = *r->next_shard_iterator;
    }
  }
  return out;
}

}  // namespace shardline::testing
