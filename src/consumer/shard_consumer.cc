#include "consumer/shard_consumer.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "consumer/piecewise_processor.h"
#include "consumer/shard_sync.h"
#include "core/string_pool.h"

namespace shardline::detail {
namespace {

ShardIteratorStart start_for(const ExtendedSequenceNumber& esn, std::int64_t timestamp_ms) {
  ShardIteratorStart s;
  if (esn.sequence_number == kCheckpointTrimHorizon) {
    s.type = ShardIteratorType::kTrimHorizon;
  } else if (esn.sequence_number == kCheckpointLatest) {
    s.type = ShardIteratorType::kLatest;
  } else if (esn.sequence_number == kCheckpointAtTimestamp) {
    s.type = ShardIteratorType::kAtTimestamp;
    s.timestamp_ms = timestamp_ms;
  } else {
    s.type = ShardIteratorType::kAtSequenceNumber;
    s.sequence_number = esn.sequence_number;
  }
  return s;
}

std::chrono::milliseconds backoff_for(int failures, std::chrono::milliseconds base,
                                      std::chrono::milliseconds cap) {
  auto d = base;
  for (int i = 1; i < failures && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

}  // namespace

// ---- checkpointer ------------------------------------------------------------------------

class ShardConsumer::CheckpointerImpl final : public Checkpointer {
 public:
  CheckpointerImpl(ConsumerContext& ctx, std::string key, std::uint64_t token)
      : ctx_(ctx), key_(std::move(key)), token_(token) {}

  void reset(const ExtendedSequenceNumber& last) {
    std::lock_guard lk(mu_);
    last_ = last;
    largest_ = last;
  }
  void set_largest(ExtendedSequenceNumber e) {
    std::lock_guard lk(mu_);
    largest_ = std::move(e);
  }
  void enter_shard_end() {
    std::lock_guard lk(mu_);
    if (!shard_end_) last_delivered_ = largest_;
    shard_end_ = true;
    largest_ = {std::string(kCheckpointShardEnd), 0};
  }

  Status checkpoint() override {
    std::lock_guard lk(mu_);
    return write_locked(largest_);
  }
  Status checkpoint(std::string_view sequence_number, std::int64_t sub) override {
    ExtendedSequenceNumber e{std::string(sequence_number), sub};
    SHARDLINE_RETURN_IF_ERROR(validate_extended_sequence_number(e));
    std::lock_guard lk(mu_);
    // The last record of a finished shard means SHARD_END (the KCL's bug #211 loses this).
    if (shard_end_ && !last_delivered_.is_sentinel() && compare(e, last_delivered_) == 0) {
      e = {std::string(kCheckpointShardEnd), 0};
    }
    return write_locked(e);
  }
  Status prepare_checkpoint(std::string_view sequence_number, std::int64_t sub,
                            std::optional<std::string> state) override {
    ExtendedSequenceNumber e{std::string(sequence_number), sub};
    SHARDLINE_RETURN_IF_ERROR(validate_extended_sequence_number(e));
    std::lock_guard lk(mu_);
    SHARDLINE_RETURN_IF_ERROR(in_range_locked(e));
    Status s = ctx_.coordinator->prepare_checkpoint(key_, token_, e.sequence_number,
                                                    e.sub_sequence_number, std::move(state));
    count(s);
    return s;
  }
  ExtendedSequenceNumber last_checkpoint() const override {
    std::lock_guard lk(mu_);
    return last_;
  }
  ExtendedSequenceNumber largest_permitted() const override {
    std::lock_guard lk(mu_);
    return largest_;
  }

 private:
  Status in_range_locked(const ExtendedSequenceNumber& e) const {
    if (compare(last_, e) <= 0 && compare(e, largest_) <= 0) return {};
    return Status(
        StatusCode::kInvalidArgument,
        "checkpoint " + e.sequence_number + "/" + std::to_string(e.sub_sequence_number) + " of " +
            key_ + " did not fall into acceptable range between the last checkpoint " +
            last_.sequence_number + "/" + std::to_string(last_.sub_sequence_number) +
            " and the greatest extended sequence number passed to this record "
            "processor " +
            largest_.sequence_number + "/" + std::to_string(largest_.sub_sequence_number));
  }
  Status write_locked(const ExtendedSequenceNumber& e) {
    SHARDLINE_RETURN_IF_ERROR(in_range_locked(e));
    if (compare(e, last_) == 0) return {};  // nothing new: no write (as the KCL)
    Status s = ctx_.coordinator->checkpoint(key_, token_, e.sequence_number, e.sub_sequence_number);
    count(s);
    if (s.ok()) last_ = e;
    return s;
  }
  void count(const Status& s) {
    (s.ok() ? ctx_.counters->checkpoints : ctx_.counters->checkpoint_failures)
        .fetch_add(1, std::memory_order_relaxed);
  }

  ConsumerContext& ctx_;
  const std::string key_;
  const std::uint64_t token_;
  mutable std::mutex mu_;
  ExtendedSequenceNumber last_{std::string(kCheckpointTrimHorizon), 0};
  ExtendedSequenceNumber largest_{std::string(kCheckpointTrimHorizon), 0};
  ExtendedSequenceNumber last_delivered_{std::string(kCheckpointTrimHorizon), 0};
  bool shard_end_ = false;
};

// ---- consumer ----------------------------------------------------------------------------

ShardConsumer::ShardConsumer(ConsumerContext& ctx, std::string shard_id, std::uint64_t token)
    : ctx_(ctx),
      shard_id_(std::move(shard_id)),
      token_(token),
      checkpointer_(std::make_shared<CheckpointerImpl>(ctx, shard_id_, token)) {}

ShardConsumer::~ShardConsumer() = default;

const char* ShardConsumer::state_name(State s) noexcept {
  switch (s) {
    case State::kWaitingOnParents:
      return "WAITING_ON_PARENT_SHARDS";
    case State::kInitializing:
      return "INITIALIZING";
    case State::kProcessing:
      return "PROCESSING";
    case State::kShardEnding:
      return "SHARD_END";
    case State::kShuttingDown:
      return "SHUTTING_DOWN";
    case State::kDone:
      return "STOPPED";
  }
  return "?";
}

void ShardConsumer::log(LogLevel level, const std::string& message) const {
  if (ctx_.log) {
    ctx_.log(level, "worker " + ctx_.worker_id + " stream " + ctx_.stream + " shard " + shard_id_ +
                        ": " + message);
  }
}

ShardConsumer::State ShardConsumer::state() const {
  std::lock_guard lk(mu_);
  return state_;
}

bool ShardConsumer::finished() const {
  std::lock_guard lk(mu_);
  return state_ == State::kDone && !fetch_in_flight_ && !step_scheduled_;
}

ShardStatus ShardConsumer::status() const {
  ShardStatus st;
  st.shard_id = shard_id_;
  st.checkpoint = checkpointer_->last_checkpoint();
  std::lock_guard lk(mu_);
  st.state = state_name(state_);
  st.records_processed = records_processed_;
  st.millis_behind_latest = millis_behind_latest_;
  return st;
}

void ShardConsumer::lease_lost() {
  {
    std::lock_guard lk(mu_);
    if (state_ == State::kDone) return;
    lease_lost_ = true;
    fetching_enabled_ = false;
  }
  schedule_step();
}

void ShardConsumer::request_shutdown() {
  {
    std::lock_guard lk(mu_);
    if (state_ == State::kDone) return;
    shutdown_requested_ = true;
    fetching_enabled_ = false;
  }
  schedule_step();
}

void ShardConsumer::recheck_parents() {
  {
    std::lock_guard lk(mu_);
    if (state_ != State::kWaitingOnParents) return;
    not_before_ = {};
  }
  schedule_step();
}

void ShardConsumer::poll() {
  schedule_step();
  maybe_fetch();
}

ShardConsumer::Action ShardConsumer::next_action_locked(Clock::time_point now) {
  if (state_ == State::kDone) return Action::kNone;
  if (lease_lost_) {
    return (failures_ == 0 || now >= not_before_) ? Action::kLeaseLost : Action::kNone;
  }
  if (shutdown_requested_) return Action::kShutdownRequested;
  if (now < not_before_) return Action::kNone;
  switch (state_) {
    case State::kWaitingOnParents:
      return Action::kCheckParents;
    case State::kInitializing:
      return Action::kInitialize;
    case State::kProcessing:
      if (!queue_.empty()) return Action::kProcess;
      if (shard_end_reached_ && !fetch_in_flight_) return Action::kCheckpointShardEnd;
      return Action::kNone;
    case State::kShardEnding:
      return Action::kCheckpointShardEnd;
    default:
      return Action::kNone;
  }
}

void ShardConsumer::schedule_step() {
  {
    std::lock_guard lk(mu_);
    if (step_scheduled_ || state_ == State::kDone) return;
    if (next_action_locked(ctx_.clock->now()) == Action::kNone) return;
    step_scheduled_ = true;
  }
  ctx_.pool->post([self = shared_from_this()] { self->step(); });
}

void ShardConsumer::step() {
  // A bounded amount of work per turn keeps the pool fair across shards.
  for (int i = 0; i < 4; ++i) {
    Action a;
    {
      std::lock_guard lk(mu_);
      a = next_action_locked(ctx_.clock->now());
    }
    if (a == Action::kNone) break;
    run_action(a);
  }
  {
    std::lock_guard lk(mu_);
    step_scheduled_ = false;
  }
  schedule_step();
  maybe_fetch();
}

void ShardConsumer::run_action(Action a) {
  switch (a) {
    case Action::kCheckParents:
      do_check_parents();
      break;
    case Action::kInitialize:
      do_initialize();
      break;
    case Action::kProcess:
      do_process();
      break;
    case Action::kCheckpointShardEnd:
      do_shard_end();
      break;
    case Action::kShutdownRequested:
      do_shutdown_requested();
      break;
    case Action::kLeaseLost:
      do_lease_lost();
      break;
    case Action::kNone:
      break;
  }
}

Status ShardConsumer::call(const char* what, const std::function<Status()>& fn) {
  Status s;
  try {
    s = fn();
  } catch (const std::exception& e) {
    s = Status(StatusCode::kUnknown, std::string(what) + " threw: " + e.what());
  } catch (...) {
    s = Status(StatusCode::kUnknown, std::string(what) + " threw a non-standard exception");
  }
  return s;
}

void ShardConsumer::backoff_locked(Clock::time_point now) {
  ++failures_;
  not_before_ = now + backoff_for(failures_, ctx_.task_backoff, ctx_.max_backoff);
}

void ShardConsumer::do_check_parents() {
  auto held = ctx_.coordinator->held(shard_id_);
  if (!held || held->token != token_) {
    std::lock_guard lk(mu_);
    lease_lost_ = true;
    return;
  }
  for (const std::string& parent : held->lease.parent_shard_ids) {
    ctx_.counters->lease_store_calls.fetch_add(1, std::memory_order_relaxed);
    auto p = ctx_.store->get_lease(parent);
    auto now = ctx_.clock->now();
    if (!p.ok()) {
      log(LogLevel::kWarning,
          "reading parent lease " + parent + " failed: " + p.status().to_string());
      std::lock_guard lk(mu_);
      backoff_locked(now);
      return;
    }
    if (p->has_value() && (*p)->checkpoint != kCheckpointShardEnd) {
      std::lock_guard lk(mu_);
      not_before_ = now + ctx_.parent_poll_interval;
      return;
    }
  }
  std::lock_guard lk(mu_);
  state_ = State::kInitializing;
  failures_ = 0;
}

void ShardConsumer::do_initialize() {
  auto held = ctx_.coordinator->held(shard_id_);
  if (!held || held->token != token_) {
    std::lock_guard lk(mu_);
    lease_lost_ = true;
    return;
  }
  const Lease& lease = held->lease;
  ExtendedSequenceNumber start{lease.checkpoint, lease.checkpoint_sub_sequence_number};
  if (start.sequence_number.empty()) start.sequence_number = std::string(kCheckpointTrimHorizon);
  if (Status v = validate_extended_sequence_number(start); !v.ok()) {
    log(LogLevel::kError, "the lease's checkpoint is not usable: " + v.to_string());
    std::lock_guard lk(mu_);
    backoff_locked(ctx_.clock->now());
    return;
  }
  range_ = lease.hash_key_range;
  if (!range_ && ctx_.find_range) range_ = ctx_.find_range(shard_id_);
  deaggregator_ = Deaggregator(DeaggregateOptions{range_, ctx_.kcl_exact});
  checkpointer_->reset(start);
  if (start.sequence_number == kCheckpointShardEnd) {
    // Finished by an earlier owner that stopped before cleaning up: no processor needed.
    std::lock_guard lk(mu_);
    state_ = State::kShardEnding;
    start_position_ = start;
    return;
  }
  if (!processor_) {
    Status made = call("the processor factory", [&] {
      processor_ = ctx_.factory(shard_id_);
      piecewise_ = dynamic_cast<PiecewiseRecordProcessor*>(processor_.get());
      return processor_ ? Status() : Status(StatusCode::kInternal, "the factory returned null");
    });
    if (!made.ok()) {
      log(LogLevel::kError, made.to_string());
      std::lock_guard lk(mu_);
      backoff_locked(ctx_.clock->now());
      return;
    }
  }
  InitializationInput in;
  in.shard_id = shard_id_;
  in.extended_sequence_number = start;
  if (lease.pending_checkpoint) {
    in.pending_checkpoint = ExtendedSequenceNumber{*lease.pending_checkpoint,
                                                   lease.pending_checkpoint_sub_sequence_number};
  }
  in.pending_checkpoint_state = lease.pending_checkpoint_state;
  Status s = call("initialize", [&] { return processor_->initialize(in); });
  std::lock_guard lk(mu_);
  if (!s.ok()) {
    log(LogLevel::kWarning, "initialize failed (will retry): " + s.to_string());
    backoff_locked(ctx_.clock->now());
    return;
  }
  log(LogLevel::kInfo,
      "initialized at " + start.sequence_number + "/" + std::to_string(start.sub_sequence_number));
  initialized_ = true;
  failures_ = 0;
  state_ = State::kProcessing;
  start_position_ = start;
  filtering_checkpoint_ = !start.is_sentinel();
  initial_start_ = start_for(start, ctx_.initial_timestamp_ms);
  iterator_.clear();
  fetching_enabled_ = !lease_lost_ && !shutdown_requested_;
}

// A piecewise processor gets the records once this many are decoded (and the rest at the end):
// every aggregate of a few hundred records, plain records a few hundred at a time.
constexpr std::size_t kPieceRecords = 256;

void ShardConsumer::do_process() {
  Batch* batch;
  {
    std::lock_guard lk(mu_);
    if (queue_.empty()) return;
    batch = &queue_.front();  // stable: only step() removes batches
  }
  records_.clear();
  std::int64_t bytes = 0;
  std::int64_t n = 0;
  // The last record delivered, for the checkpointer: its sequence number stays valid (it is
  // the batch's) after its ConsumerRecord was handed over in a piece.
  std::string_view last_sequence_number;
  std::int64_t last_sub = 0;
  // Counts records_ as delivered; a piecewise processor gets them now (and records_ is reused).
  auto take_records = [&] {
    n += static_cast<std::int64_t>(records_.size());
    last_sequence_number = records_.back().sequence_number;
    last_sub = records_.back().sub_sequence_number;
    if (piecewise_) {
      piecewise_->add_records(records_);
      records_.clear();
    }
  };
  if (piecewise_) piecewise_->begin_batch(batch->bytes);
  // Committed only when the batch is done with: a retried batch is filtered the same way again.
  bool filtering = filtering_checkpoint_;
  // The batch's aggregates are digested together (several per GetRecords answer).
  digest_views_.clear();
  for (const StreamRecord& rec : batch->result.records) digest_views_.push_back(rec.data);
  deaggregator_.predigest(digest_views_);
  for (const StreamRecord& rec : batch->result.records) {
    int cmp = 1;
    if (filtering) {
      cmp = compare({rec.sequence_number, 0}, {start_position_.sequence_number, 0});
      if (cmp < 0) continue;
      if (cmp > 0) filtering = false;
    }
    views_.clear();
    DecodeSummary sum = deaggregator_.decode({rec.data, rec.partition_key, std::nullopt}, views_);
    if (sum.filtered_out != 0) {
      ctx_.counters->records_filtered.fetch_add(static_cast<std::int64_t>(sum.filtered_out),
                                                std::memory_order_relaxed);
    }
    if (sum.kind == BlobKind::kCorruptAggregate) {
      ctx_.counters->corrupt_aggregates.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::kError,
          "record " + rec.sequence_number +
              " is a corrupt aggregate (delivered raw): " + std::string(sum.detail));
    }
    for (const UserRecordView& v : views_) {
      auto sub = static_cast<std::int64_t>(v.sub_sequence_number);
      if (cmp == 0 && sub <= start_position_.sub_sequence_number) continue;
      records_.push_back(ConsumerRecord{v.data, v.partition_key, v.explicit_hash_key,
                                        rec.sequence_number, sub,
                                        rec.approximate_arrival_timestamp_ms, v.aggregated});
      bytes += static_cast<std::int64_t>(v.data.size());
    }
    // An aggregate's records (or a few hundred plain ones) at a time, while in cache.
    if (piecewise_ && records_.size() >= kPieceRecords) take_records();
  }
  if (!records_.empty()) take_records();
  Status s;
  if (n != 0 || ctx_.call_process_records_even_for_empty) {
    if (n != 0) checkpointer_->set_largest({std::string(last_sequence_number), last_sub});
    ProcessRecordsInput in{records_, batch->result.millis_behind_latest, *checkpointer_};
    s = call("process_records", [&] {
      return piecewise_ ? piecewise_->finish_batch(in) : processor_->process_records(in);
    });
  }
  bool stop = false;
  std::vector<StreamRecord> done_records;
  {
    std::lock_guard lk(mu_);
    auto now = ctx_.clock->now();
    millis_behind_latest_ = batch->result.millis_behind_latest;
    bool pop = true;
    if (!s.ok()) {
      ctx_.counters->process_records_failures.fetch_add(1, std::memory_order_relaxed);
      switch (ctx_.error_policy) {
        case ErrorPolicy::kRetry:
          backoff_locked(now);
          log(LogLevel::kWarning, "process_records failed (attempt " + std::to_string(failures_) +
                                      ", retrying the same " + std::to_string(n) +
                                      " records): " + s.to_string());
          pop = false;
          break;
        case ErrorPolicy::kSkip:
          ctx_.counters->records_skipped.fetch_add(n, std::memory_order_relaxed);
          log(LogLevel::kError, "process_records failed; skipping " + std::to_string(n) +
                                    " records (processRecordsErrorPolicy=SKIP): " + s.to_string());
          break;
        case ErrorPolicy::kStop:
          log(LogLevel::kError,
              "process_records failed; stopping the shard and releasing its lease "
              "(processRecordsErrorPolicy=STOP): " +
                  s.to_string());
          pop = false;
          stop = true;
          break;
      }
    }
    if (pop) {
      if (s.ok()) {
        failures_ = 0;
        records_processed_ += n;
        ctx_.counters->records_processed.fetch_add(n, std::memory_order_relaxed);
        ctx_.counters->data_bytes_processed.fetch_add(bytes, std::memory_order_relaxed);
      }
      filtering_checkpoint_ = filtering;
      done_records = std::move(batch->result.records);
      queued_records_ -= batch->records;
      queued_bytes_ -= batch->bytes;
      const auto before =
          ctx_.counters->prefetch_bytes.fetch_sub(batch->bytes, std::memory_order_relaxed);
      queue_.pop_front();
      // Other shards may be waiting for room in the worker-wide budget: tick now.
      if (before >= ctx_.max_prefetch_bytes_total && ctx_.wake) ctx_.wake();
    }
  }
  records_.clear();
  // The decoded data's memory goes back for the next responses (see StringPool).
  for (StreamRecord& rec : done_records) detail::StringPool::records().give(std::move(rec.data));
  if (stop) {
    ctx_.coordinator->exclude(shard_id_);
    Status r = ctx_.coordinator->release(shard_id_, token_);
    if (!r.ok()) log(LogLevel::kWarning, "releasing the lease failed: " + r.to_string());
    std::lock_guard lk(mu_);
    lease_lost_ = true;
    fetching_enabled_ = false;
  }
}

void ShardConsumer::do_shard_end() {
  {
    std::lock_guard lk(mu_);
    state_ = State::kShardEnding;
    fetching_enabled_ = false;
  }
  auto held = ctx_.coordinator->held(shard_id_);
  if (!held || held->token != token_) {
    std::lock_guard lk(mu_);
    lease_lost_ = true;
    return;
  }
  auto fail = [&](const std::string& why) {
    log(LogLevel::kWarning, why + " (will retry)");
    std::lock_guard lk(mu_);
    backoff_locked(ctx_.clock->now());
  };
  std::vector<ChildShard> children;
  bool gone;
  {
    std::lock_guard lk(mu_);
    children = child_shards_;
    gone = resource_gone_;
  }
  if (children.empty() && !held->lease.child_shard_ids.empty() && !gone) {
    // Recorded by an earlier owner: the leases exist or were created then.
    for (const auto& c : held->lease.child_shard_ids) children.push_back({c, {shard_id_}, {}});
  } else if (children.empty() && !gone && ctx_.find_children) {
    auto found = ctx_.find_children(shard_id_);
    if (!found.ok()) return fail("finding the child shards failed: " + found.status().to_string());
    children = std::move(*found);
    if (children.empty()) {
      // Normal for a moment after a reshard: ListShards lags the closing of the parent.
      log(LogLevel::kInfo, "the shard is closed but no child shard is listed yet (will retry)");
      std::lock_guard lk(mu_);
      backoff_locked(ctx_.clock->now());
      return;
    }
  }
  std::vector<std::string> child_ids;
  for (const ChildShard& c : children) {
    child_ids.push_back(c.shard_id);
    if (c.parent_shards.empty() || held->lease.child_shard_ids.size() == children.size()) continue;
    ctx_.counters->lease_store_calls.fetch_add(1, std::memory_order_relaxed);
    auto created = ctx_.store->create_lease_if_not_exists(child_lease(c));
    if (!created.ok())
      return fail("creating the lease of child " + c.shard_id +
                  " failed: " + created.status().to_string());
    if (*created) {
      ctx_.counters->leases_created.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::kInfo, "created the lease of child shard " + c.shard_id);
    }
  }
  if (!child_ids.empty() && held->lease.child_shard_ids.empty()) {
    Lease meta;
    meta.lease_key = shard_id_;
    meta.child_shard_ids = child_ids;
    ctx_.counters->lease_store_calls.fetch_add(1, std::memory_order_relaxed);
    Status m = ctx_.store->update_lease_metadata(meta);
    if (!m.ok() && m.code() != StatusCode::kNotFound) {
      return fail("recording child shards failed: " + m.to_string());
    }
  }
  bool have_processor;
  {
    std::lock_guard lk(mu_);
    have_processor = initialized_ && processor_ != nullptr;
  }
  if (have_processor) {
    checkpointer_->enter_shard_end();
    Status s = call("shard_ended", [&] { return processor_->shard_ended(*checkpointer_); });
    if (!s.ok()) return fail("shard_ended failed: " + s.to_string());
    if (checkpointer_->last_checkpoint().sequence_number != kCheckpointShardEnd) {
      return fail(
          "the processor did not checkpoint at the end of the shard (call checkpoint() in "
          "shard_ended); the child shards wait until it does");
    }
  }
  log(LogLevel::kInfo,
      "reached the end of the shard; children: " + std::to_string(child_ids.size()));
  finish(true);
  if (ctx_.on_shard_finished) ctx_.on_shard_finished(shard_id_);
}

void ShardConsumer::do_shutdown_requested() {
  bool have_processor;
  {
    std::lock_guard lk(mu_);
    state_ = State::kShuttingDown;
    have_processor = initialized_ && processor_ != nullptr;
  }
  if (have_processor) {
    Status s =
        call("shutdown_requested", [&] { return processor_->shutdown_requested(*checkpointer_); });
    if (!s.ok()) log(LogLevel::kWarning, "shutdown_requested failed: " + s.to_string());
  }
  Status r = ctx_.coordinator->release(shard_id_, token_);
  if (!r.ok()) log(LogLevel::kWarning, "releasing the lease failed: " + r.to_string());
  if (have_processor) {
    Status s = call("lease_lost", [&] { return processor_->lease_lost(); });
    if (!s.ok()) log(LogLevel::kWarning, "lease_lost failed: " + s.to_string());
  }
  finish(false);
}

void ShardConsumer::do_lease_lost() {
  bool have_processor;
  {
    std::lock_guard lk(mu_);
    have_processor = initialized_ && processor_ != nullptr;
    fetching_enabled_ = false;
    drop_queue_locked();
  }
  if (have_processor) {
    Status s = call("lease_lost", [&] { return processor_->lease_lost(); });
    if (!s.ok()) {
      log(LogLevel::kWarning, "lease_lost failed (will retry): " + s.to_string());
      std::lock_guard lk(mu_);
      backoff_locked(ctx_.clock->now());
      return;
    }
  }
  log(LogLevel::kInfo, "stopped: the lease was lost");
  finish(false);
}

void ShardConsumer::finish(bool release_lease) {
  if (release_lease) {
    Status r = ctx_.coordinator->release(shard_id_, token_);
    if (!r.ok()) log(LogLevel::kWarning, "releasing the lease failed: " + r.to_string());
  } else {
    ctx_.coordinator->drop(shard_id_, token_);
  }
  std::unique_ptr<RecordProcessor> p;
  {
    std::lock_guard lk(mu_);
    state_ = State::kDone;
    fetching_enabled_ = false;
    drop_queue_locked();
    p = std::move(processor_);
    piecewise_ = nullptr;
  }
  p.reset();
}

void ShardConsumer::drop_queue_locked() {
  for (const Batch& b : queue_) {
    ctx_.counters->prefetch_bytes.fetch_sub(b.bytes, std::memory_order_relaxed);
  }
  queue_.clear();
  queued_records_ = 0;
  queued_bytes_ = 0;
}

// ---- fetching ----------------------------------------------------------------------------

bool ShardConsumer::fetch_allowed_locked(Clock::time_point now) const {
  return fetching_enabled_ && state_ == State::kProcessing && !fetch_in_flight_ &&
         !shard_end_reached_ && !lease_lost_ && !shutdown_requested_ &&
         queue_.size() < ctx_.max_pending_batches && queued_records_ < ctx_.max_prefetch_records &&
         queued_bytes_ < ctx_.max_prefetch_bytes &&
         ctx_.counters->prefetch_bytes.load(std::memory_order_relaxed) <
             ctx_.max_prefetch_bytes_total &&
         now >= next_fetch_at_;
}

void ShardConsumer::maybe_fetch() {
  {
    std::lock_guard lk(mu_);
    if (fetch_loop_active_) {
      refetch_ = true;
      return;
    }
    fetch_loop_active_ = true;
  }
  for (;;) {
    bool go;
    {
      std::lock_guard lk(mu_);
      refetch_ = false;
      go = fetch_allowed_locked(ctx_.clock->now());
      if (go) {
        fetch_in_flight_ = true;
        // Reserve the expected response size in the worker-wide budget, so that many shards
        // starting calls at once cannot overshoot it with what is in flight.
        fetch_reservation_ = std::min(expected_batch_bytes_, ctx_.max_prefetch_bytes);
        ctx_.counters->prefetch_bytes.fetch_add(fetch_reservation_, std::memory_order_relaxed);
      }
    }
    if (go) start_fetch();
    std::lock_guard lk(mu_);
    if (!refetch_) {
      fetch_loop_active_ = false;
      return;
    }
  }
}

ShardIteratorStart ShardConsumer::restart_position_locked() const {
  if (last_fetched_sequence_.empty()) return initial_start_;
  ShardIteratorStart s;
  s.type = ShardIteratorType::kAfterSequenceNumber;
  s.sequence_number = last_fetched_sequence_;
  return s;
}

void ShardConsumer::start_fetch() {
  std::string iterator;
  {
    std::lock_guard lk(mu_);
    iterator = iterator_;
  }
  auto self = shared_from_this();
  auto issue = [self](const std::string& it) {
    auto started = self->ctx_.clock->now();
    self->ctx_.kinesis->get_records(
        it, self->ctx_.max_records,
        [self, started](Result<GetRecordsResult> r) { self->on_records(std::move(r), started); });
  };
  if (!iterator.empty()) {
    issue(iterator);
    return;
  }
  // GetShardIterator blocks: run it on the pool, never on the scheduler or HTTP thread.
  ctx_.pool->post([self, issue] {
    ShardIteratorStart start;
    {
      std::lock_guard lk(self->mu_);
      start = self->restart_position_locked();
    }
    auto it = self->ctx_.kinesis->get_shard_iterator(self->shard_id_, start, self->ctx_.cancel);
    if (!it.ok()) {
      self->on_records(it.status(), self->ctx_.clock->now());
      return;
    }
    {
      std::lock_guard lk(self->mu_);
      self->iterator_ = *it;
      if (!self->fetching_enabled_) {
        self->fetch_in_flight_ = false;
        self->ctx_.counters->prefetch_bytes.fetch_sub(self->fetch_reservation_,
                                                      std::memory_order_relaxed);
        self->fetch_reservation_ = 0;
        return;
      }
    }
    issue(*it);
  });
}

void ShardConsumer::on_records(Result<GetRecordsResult> r, Clock::time_point started) {
  {
    std::lock_guard lk(mu_);
    fetch_in_flight_ = false;
    ctx_.counters->prefetch_bytes.fetch_sub(fetch_reservation_, std::memory_order_relaxed);
    fetch_reservation_ = 0;
    auto now = ctx_.clock->now();
    if (r.ok()) {
      ctx_.counters->get_records_calls.fetch_add(1, std::memory_order_relaxed);
    } else {
      ctx_.counters->get_records_failures.fetch_add(1, std::memory_order_relaxed);
    }
    if (!fetching_enabled_ || state_ == State::kDone) {
      // Stopped meanwhile: drop the result.
    } else if (r.ok()) {
      fetch_failures_ = 0;
      next_fetch_at_ = started + ctx_.idle_between_reads;
      GetRecordsResult& res = *r;
      millis_behind_latest_ = res.millis_behind_latest;
      if (!res.records.empty()) last_fetched_sequence_ = res.records.back().sequence_number;
      if (res.next_shard_iterator) {
        iterator_ = std::move(*res.next_shard_iterator);
      } else {
        iterator_.clear();
        shard_end_reached_ = true;
        child_shards_ = res.child_shards;
      }
      if (!res.records.empty() || ctx_.call_process_records_even_for_empty) {
        Batch b;
        b.records = static_cast<std::int64_t>(res.records.size());
        for (const auto& rec : res.records) {
          b.bytes += static_cast<std::int64_t>(rec.data.size() + rec.partition_key.size() +
                                               rec.sequence_number.size());
        }
        expected_batch_bytes_ = std::max<std::int64_t>(b.bytes, 64 * 1024);
        b.result = std::move(res);
        queued_records_ += b.records;
        queued_bytes_ += b.bytes;
        ctx_.counters->prefetch_bytes.fetch_add(b.bytes, std::memory_order_relaxed);
        queue_.push_back(std::move(b));
      }
    } else {
      const Status& s = r.status();
      ++fetch_failures_;
      auto backoff = backoff_for(fetch_failures_, ctx_.task_backoff, ctx_.max_backoff);
      if ((s.aws_error_code() == "ExpiredIteratorException" || s.retry() == RetryClass::kRestart) &&
          !iterator_.empty()) {
        ctx_.counters->expired_iterators.fetch_add(1, std::memory_order_relaxed);
        log(LogLevel::kInfo, "the shard iterator expired; restarting after the last record read");
        iterator_.clear();
        fetch_failures_ = 0;
        next_fetch_at_ = now;
      } else if (s.code() == StatusCode::kNotFound) {
        log(LogLevel::kWarning,
            "the shard no longer exists (" + s.to_string() + "); treating it as finished");
        shard_end_reached_ = true;
        resource_gone_ = true;
        child_shards_.clear();
      } else if (s.code() == StatusCode::kResourceExhausted) {
        ctx_.counters->throttled_reads.fetch_add(1, std::memory_order_relaxed);
        next_fetch_at_ = now + std::max<Clock::duration>(ctx_.idle_between_reads, backoff);
        log(fetch_failures_ > 5 ? LogLevel::kError : LogLevel::kWarning,
            "GetRecords throttled " + std::to_string(fetch_failures_) + " times in a row");
      } else {
        if (s.code() == StatusCode::kInvalidArgument) iterator_.clear();
        next_fetch_at_ = now + backoff;
        log(LogLevel::kWarning, "reading records failed: " + s.to_string());
      }
    }
  }
  schedule_step();
  maybe_fetch();
}

}  // namespace shardline::detail
