#include "consumer/fanout.h"

#include "aws/service_client.h"

#include <thread>
#include <utility>
#include <vector>

namespace shardline::detail {
namespace {

constexpr std::string_view kPrefix = "shardline-efo|";

}  // namespace

std::string FanOutKinesisApi::position(const std::string& shard_id,
                                       const ShardIteratorStart& start) {
  std::string out(kPrefix);
  out += shard_id;
  out += '|';
  out += shard_iterator_type_name(start.type);
  out += '|';
  if (start.type == ShardIteratorType::kAtTimestamp) {
    out += std::to_string(start.timestamp_ms);
  } else {
    out += start.sequence_number;
  }
  return out;
}

bool FanOutKinesisApi::parse_position(const std::string& it, std::string& shard_id,
                                      ShardIteratorStart& start) {
  if (it.rfind(kPrefix, 0) != 0) return false;
  const std::size_t a = kPrefix.size();
  const std::size_t b = it.find('|', a);
  if (b == std::string::npos || b == a) return false;
  const std::size_t c = it.find('|', b + 1);
  if (c == std::string::npos) return false;
  shard_id = it.substr(a, b - a);
  const std::string_view type(it.data() + b + 1, c - b - 1);
  const std::string value = it.substr(c + 1);
  start = ShardIteratorStart{};
  for (ShardIteratorType t :
       {ShardIteratorType::kTrimHorizon, ShardIteratorType::kLatest,
        ShardIteratorType::kAtSequenceNumber, ShardIteratorType::kAfterSequenceNumber,
        ShardIteratorType::kAtTimestamp}) {
    if (type != shard_iterator_type_name(t)) continue;
    start.type = t;
    if (t == ShardIteratorType::kAtTimestamp) {
      if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
        return false;
      }
      start.timestamp_ms = std::stoll(value);
    } else if (t == ShardIteratorType::kAtSequenceNumber ||
               t == ShardIteratorType::kAfterSequenceNumber) {
      if (value.empty()) return false;
      start.sequence_number = value;
    } else if (!value.empty()) {
      return false;
    }
    return true;
  }
  return false;
}

FanOutKinesisApi::FanOutKinesisApi(std::shared_ptr<ConsumerKinesisApi> shards,
                                   FanOutOptions options)
    : shards_api_(std::move(shards)), options_(std::move(options)) {
  consumer_arn_ = options_.consumer_arn;
  if (options_.max_buffered_events == 0) options_.max_buffered_events = 1;
  guard_ = std::make_shared<Guard>();
  guard_->self = this;
  timer_ = std::thread([this] { timer_loop(); });
}

FanOutKinesisApi::~FanOutKinesisApi() {
  {
    std::lock_guard g(guard_->mu);  // waits for a callback in progress
    guard_->self = nullptr;
  }
  std::vector<std::shared_ptr<ShardSubscription>> subs;
  std::vector<Done> waiting;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    for (auto& [id, st] : shards_) {
      if (st.sub) subs.push_back(std::move(st.sub));
      st.generation = 0;  // late events and ends are dropped
      if (st.waiting) waiting.push_back(std::move(st.waiting));
    }
  }
  cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  for (auto& s : subs) s->cancel();
  for (auto& d : waiting) d(Status::cancelled("enhanced fan-out reader closed"));
}

void FanOutKinesisApi::log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, message);
}

Result<std::vector<Shard>> FanOutKinesisApi::list_shards(const CancelToken* cancel) {
  return shards_api_->list_shards(cancel);
}

Result<std::string> FanOutKinesisApi::get_shard_iterator(const std::string& shard_id,
                                                         const ShardIteratorStart& start,
                                                         const CancelToken* cancel) {
  // The consumer is found (or registered) once, on the first shard that needs it.
  {
    std::lock_guard rl(resolve_mu_);
    bool known = false;
    {
      std::lock_guard lk(mu_);
      known = !consumer_arn_.empty();
    }
    if (!known) {
      if (!options_.resolve_consumer) {
        return Status::invalid_argument("enhanced fan-out needs consumerArn or consumerName");
      }
      Result<std::string> arn = options_.resolve_consumer(cancel);
      if (!arn.ok()) return std::move(arn).status();
      std::lock_guard lk(mu_);
      consumer_arn_ = *arn;
    }
  }
  return position(shard_id, start);
}

FanOutKinesisApi::ShardState* FanOutKinesisApi::current_locked(const std::string& shard_id,
                                                               std::uint64_t generation) {
  auto it = shards_.find(shard_id);
  if (it == shards_.end() || it->second.generation != generation || stopping_) return nullptr;
  return &it->second;
}

FanOutKinesisApi::Start FanOutKinesisApi::subscribe_locked(const std::string& shard_id,
                                                           ShardState& st,
                                                           const std::string& from) {
  if (st.sub) st.sub->cancel();
  st.sub.reset();
  st.generation = next_generation_++;
  st.cancelled_when_full = false;
  st.ended.reset();
  st.tail = from;
  return Start{shard_id, from, st.generation};
}

void FanOutKinesisApi::start(std::optional<Start> s) {
  if (!s) return;
  std::string shard;
  ShardIteratorStart from;
  if (!parse_position(s->from, shard, from)) {
    on_end(s->shard_id, s->generation, Status::internal("bad enhanced fan-out position"));
    return;
  }
  std::string arn;
  {
    std::lock_guard lk(mu_);
    arn = consumer_arn_;
  }
  const std::uint64_t gen = s->generation;
  const std::string id = s->shard_id;
  // The callbacks may outlive this object (the HTTP thread): they go through the guard.
  auto guard = guard_;
  auto sub = options_.subscribe(
      arn, id, from,
      [guard, id, gen](SubscribeToShardEvent&& e) {
        std::lock_guard g(guard->mu);
        if (guard->self != nullptr) guard->self->on_event(id, gen, std::move(e));
      },
      [guard, id, gen](Status st) {
        std::lock_guard g(guard->mu);
        if (guard->self != nullptr) guard->self->on_end(id, gen, std::move(st));
      });
  bool cancel = true;  // unless it is still the shard's current subscription
  {
    std::lock_guard lk(mu_);
    if (ShardState* st = current_locked(id, gen)) {
      st->sub = sub;
      cancel = st->cancelled_when_full;
    }
  }
  if (cancel && sub) sub->cancel();
}

Result<GetRecordsResult> FanOutKinesisApi::take_locked(ShardState& st) {
  Event e = std::move(st.buffered.front());
  st.buffered.pop_front();
  GetRecordsResult r;
  r.records = std::move(e.event.records);
  r.millis_behind_latest = e.event.millis_behind_latest;
  st.millis_behind = r.millis_behind_latest;
  if (e.next.empty()) {
    r.child_shards = std::move(e.event.child_shards);  // the shard's end
  } else {
    r.next_shard_iterator = e.next;
  }
  st.expected = e.next;
  return r;
}

std::optional<FanOutKinesisApi::Completion> FanOutKinesisApi::serve_locked(ShardState& st) {
  if (!st.waiting) return std::nullopt;
  if (!st.buffered.empty()) {
    Completion c{std::move(st.waiting), take_locked(st)};
    st.waiting = nullptr;
    return c;
  }
  if (st.ended && !st.sub) {
    Status s = std::move(*st.ended);
    st.ended.reset();
    if (s.ok() || (s.code() == StatusCode::kCancelled && st.cancelled_when_full)) {
      return std::nullopt;  // the caller resumes the subscription
    }
    Completion c{std::move(st.waiting), std::move(s)};
    st.waiting = nullptr;
    return c;
  }
  return std::nullopt;
}

void FanOutKinesisApi::get_records(const std::string& shard_iterator, int limit, Done done) {
  (void)limit;  // an event carries what the service pushed
  std::string shard_id;
  ShardIteratorStart from;
  if (!parse_position(shard_iterator, shard_id, from)) {
    done(Status::invalid_argument("not an enhanced fan-out position: " + shard_iterator));
    return;
  }
  std::vector<Completion> run;
  std::optional<Start> to_start;
  {
    std::lock_guard lk(mu_);
    if (stopping_) {
      run.push_back({std::move(done), Status::cancelled("enhanced fan-out reader closed")});
    } else {
      ShardState& st = shards_[shard_id];
      if (st.waiting) {
        // A reader that moved on (a new lease on the shard): its read ends empty.
        GetRecordsResult empty;
        empty.next_shard_iterator = st.waiting_at;
        run.push_back({std::move(st.waiting), std::move(empty)});
        st.waiting = nullptr;
      }
      st.waiting = std::move(done);
      st.waiting_at = shard_iterator;
      st.waiting_since = std::chrono::steady_clock::now();
      if (shard_iterator != st.expected) {
        // Elsewhere than the buffered events continue: start over from there.
        st.buffered.clear();
        st.expected = shard_iterator;
        to_start = subscribe_locked(shard_id, st, shard_iterator);
      } else if (auto c = serve_locked(st)) {
        run.push_back(std::move(*c));
      } else if (!st.sub && st.buffered.empty()) {
        // Never subscribed, ended (5 minutes up), or cancelled when full: resume.
        to_start = subscribe_locked(shard_id, st, st.expected);
      }
    }
  }
  start(std::move(to_start));
  for (auto& c : run) c.done(std::move(c.result));
}

void FanOutKinesisApi::on_event(const std::string& shard_id, std::uint64_t generation,
                                SubscribeToShardEvent&& e) {
  std::optional<Completion> c;
  std::shared_ptr<ShardSubscription> to_cancel;
  {
    std::lock_guard lk(mu_);
    ShardState* current = current_locked(shard_id, generation);
    if (current == nullptr) return;
    ShardState& st = *current;
    if (st.cancelled_when_full) return;  // in flight when it was cancelled: read again later
    Event ev;
    if (!e.continuation_sequence_number.empty()) {
      ev.next = position(
          shard_id, {ShardIteratorType::kAfterSequenceNumber, e.continuation_sequence_number, 0});
    }
    ev.event = std::move(e);
    st.tail = ev.next;
    st.buffered.push_back(std::move(ev));
    c = serve_locked(st);
    if (st.buffered.size() >= options_.max_buffered_events) {
      st.cancelled_when_full = true;
      to_cancel = st.sub;  // null if start() has not stored it yet: start() cancels it
    }
  }
  if (to_cancel) to_cancel->cancel();
  if (c) c->done(std::move(c->result));
}

void FanOutKinesisApi::on_end(const std::string& shard_id, std::uint64_t generation, Status s) {
  std::optional<Completion> c;
  std::optional<Start> to_start;
  {
    std::lock_guard lk(mu_);
    ShardState* current = current_locked(shard_id, generation);
    if (current == nullptr) return;
    ShardState& st = *current;
    st.sub.reset();
    const bool full = st.cancelled_when_full && s.code() == StatusCode::kCancelled;
    // The reader logs the failures it is given, with its worker and stream.
    if (!s.ok() && !full) {
      log(LogLevel::kDebug,
          "shard " + shard_id + ": enhanced fan-out subscription ended: " + s.to_string());
    }
    if (s.code() == StatusCode::kNotFound) {
      // The consumer or the shard is gone. Not the shard's end: a deregistered consumer would
      // otherwise end every open shard for good. The reader drops its position and asks for
      // a new one, which finds (or registers) the consumer again; a shard that is really gone
      // keeps failing, visibly.
      log(LogLevel::kWarning,
          "shard " + shard_id + ": " + s.to_string() + "; finding the consumer again");
      if (options_.consumer_arn.empty() && options_.resolve_consumer) consumer_arn_.clear();
      s = Status::invalid_argument(std::string(s.message()) +
                                   " (the stream consumer or the shard is gone)");
    }
    st.ended = std::move(s);
    c = serve_locked(st);
    if (!c && st.waiting && st.buffered.empty()) {
      // Ended in order (or cancelled when full) with a reader waiting: resume at once.
      const std::string from = st.tail.empty() ? st.expected : st.tail;
      to_start = subscribe_locked(shard_id, st, from);
    }
  }
  start(std::move(to_start));
  if (c) c->done(std::move(c->result));
}

void FanOutKinesisApi::timer_loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, std::chrono::milliseconds(100));
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    std::vector<Completion> run;
    for (auto& [id, st] : shards_) {
      if (!st.waiting || now - st.waiting_since < options_.max_wait) continue;
      GetRecordsResult empty;
      empty.next_shard_iterator = st.waiting_at;
      empty.millis_behind_latest = st.millis_behind;
      run.push_back({std::move(st.waiting), std::move(empty)});
      st.waiting = nullptr;
    }
    if (run.empty()) continue;
    lk.unlock();
    for (auto& c : run) c.done(std::move(c.result));
    lk.lock();
  }
}

Result<std::string> find_or_register_consumer(KinesisClient& client,
                                              const ConsumerRegistration& reg,
                                              const CancelToken* cancel) {
  CancelScope scope(cancel);  // the blocking calls below end when the worker shuts down
  auto wait = [&]() -> bool {
    if (cancel != nullptr) return cancel->sleep_for(reg.backoff);
    std::this_thread::sleep_for(reg.backoff);
    return true;
  };
  auto say = [&](LogLevel level, const std::string& m) {
    if (reg.log) reg.log(level, m);
  };
  const std::string what = "consumer '" + reg.consumer_name + "' of stream " + reg.stream.display();
  // The stream's ARN.
  std::string stream_arn = reg.stream.arn;
  Status last;
  for (int i = 0; stream_arn.empty() && i < std::max(1, reg.describe_stream_attempts); ++i) {
    if (i > 0 && !wait()) return Status::cancelled("enhanced fan-out: cancelled");
    auto sum = client.describe_stream_summary(reg.stream);
    if (sum.ok()) {
      stream_arn = sum->arn;
    } else {
      last = sum.status();
      if (last.code() == StatusCode::kNotFound || last.code() == StatusCode::kCancelled) break;
    }
  }
  if (stream_arn.empty()) {
    return last.ok() ? Status::not_found("enhanced fan-out: no ARN for " + reg.stream.display())
                     : std::move(last).with_context("enhanced fan-out: DescribeStreamSummary");
  }
  // Registered already? Else register it (another worker may be registering it too:
  // ResourceInUse is fine). Then wait for ACTIVE.
  auto d = client.describe_stream_consumer(stream_arn, reg.consumer_name);
  if (!d.ok() && d.status().code() == StatusCode::kNotFound) {
    for (int i = 0; i < std::max(1, reg.register_attempts); ++i) {
      if (i > 0 && !wait()) return Status::cancelled("enhanced fan-out: cancelled");
      auto r = client.register_stream_consumer(stream_arn, reg.consumer_name);
      if (r.ok() || r.status().aws_error_code() == "ResourceInUseException") {
        say(LogLevel::kInfo, "enhanced fan-out: registered " + what);
        break;
      }
      if (r.status().code() == StatusCode::kCancelled || r.status().retry() == RetryClass::kNone ||
          i + 1 == std::max(1, reg.register_attempts)) {
        return std::move(r).status().with_context("enhanced fan-out: RegisterStreamConsumer");
      }
    }
    d = client.describe_stream_consumer(stream_arn, reg.consumer_name);
  }
  for (int i = 1;; ++i) {
    if (d.ok() && d->status == "ACTIVE") {
      say(LogLevel::kInfo, "enhanced fan-out: " + what + " is ACTIVE: " + d->arn);
      return d->arn;
    }
    if (i >= reg.describe_consumer_attempts) break;
    if ((!d.ok() && d.status().code() == StatusCode::kCancelled) || !wait()) {
      return Status::cancelled("enhanced fan-out: cancelled");
    }
    d = client.describe_stream_consumer(stream_arn, reg.consumer_name);
  }
  return d.ok() ? Status::unavailable("enhanced fan-out: " + what + " is " + d->status +
                                      ", not ACTIVE")
                : std::move(d).status().with_context("enhanced fan-out: " + what + " not ACTIVE");
}

Result<std::shared_ptr<ConsumerKinesisApi>> make_fanout_kinesis_api(
    std::shared_ptr<KinesisClient> control, std::shared_ptr<ConsumerKinesisApi> shards,
    const AwsClientConfig& aws, std::string consumer_arn, ConsumerRegistration reg) {
  AwsClientConfig f = aws;
  f.http2 = aws.endpoint_url.rfind("http://", 0) != 0;
  f.max_connections = 0;
  auto created = KinesisClient::create(f);
  if (!created.ok()) return std::move(created).status();
  std::shared_ptr<KinesisClient> streaming(std::move(*created));
  FanOutOptions o;
  o.consumer_arn = std::move(consumer_arn);
  o.log = reg.log;
  o.resolve_consumer = [control, reg = std::move(reg)](const CancelToken* cancel) {
    return find_or_register_consumer(*control, reg, cancel);
  };
  o.subscribe = [streaming](const std::string& arn, const std::string& shard,
                            const ShardIteratorStart& start,
                            std::function<void(SubscribeToShardEvent &&)> on_event,
                            std::function<void(Status)> done) {
    return streaming->subscribe_to_shard(arn, shard, start, std::move(on_event), std::move(done));
  };
  return std::shared_ptr<ConsumerKinesisApi>(
      std::make_shared<FanOutKinesisApi>(std::move(shards), std::move(o)));
}

}  // namespace shardline::detail
