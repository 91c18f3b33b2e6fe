// The MultiLangDaemon's record processor: one child process per lease acquisition, spoken to
// over its stdin/stdout with the KCL multi-language protocol (multilang/protocol.h).
//
// Every RecordProcessor call runs on the worker's processing pool and blocks while it talks to
// the child: it writes the message (non-blocking writes, reading the child's stdout meanwhile so
// neither pipe can fill up and deadlock), then reads lines until the status for that message,
// answering checkpoint requests with the worker's Checkpointer. Each wait is bounded by
// timeoutInSeconds (reset by every message from the child, as the Java daemon's per-message
// future) and, once the shutdown has begun, by the shutdown deadline.
//
// Failure and restart. A child that times out, exits, closes a pipe or answers for the wrong
// action is killed (SIGKILL to its process group) and the call fails, so the worker retries it
// (initialize, shard_ended: always; process_records: with processRecordsErrorPolicy=RETRY, the
// default) after its backoff. The retry starts a new child on the same shard, sends it
// initialize with the last checkpoint, then replays the records delivered since that checkpoint
// (kept as sent, per shard, up to replayBufferMaxBytes), then the call's own message: the new
// child sees exactly what follows the checkpoint, as if the daemon had restarted, and no other
// shard notices. Records at or before the checkpoint are never sent again. Why not give up the
// lease and let the worker start over from the checkpoint? It would work without a buffer, but
// the shard would wait for a lease expiry and a taker scan (seconds to tens of seconds) and
// could move to another worker on every child crash; the buffer restarts the shard in one
// backoff. When the buffer has had to drop records (a child that does not checkpoint for a long
// time), that is exactly what happens: the lease is released in the store, the worker sees it
// lost and the shard starts over from its checkpoint.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <new>
#include <span>
#include <utility>

#include "consumer/piecewise_processor.h"
#include "core/digest.h"
#include "core/text_buffer.h"
#include "multilang/child_process.h"
#include "multilang/protocol.h"
#include "multilang/supervisor.h"

namespace shardline {

namespace ml = detail::multilang;
using Steady = std::chrono::steady_clock;

// ---- the shared state ----------------------------------------------------------------------

MultiLangSupervisor::Impl::Impl(MultiLangProcessorOptions o) : options(std::move(o)) {
  if (::pipe2(shutdown_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    shutdown_pipe_[0] = shutdown_pipe_[1] = -1;
  }
  auto stderr_sink = options.child_stderr;
  pump = std::make_unique<detail::ChildPump>(
      [this, stderr_sink](const std::string& shard, long pid, std::string_view line) {
        counters.stderr_lines.fetch_add(1, std::memory_order_relaxed);
        if (stderr_sink) {
          stderr_sink(shard, pid, line);
        } else {
          log(LogLevel::kWarning,
              "shard " + shard + ": child " + std::to_string(pid) + ": " + std::string(line));
        }
      },
      [this](LogLevel level, std::string_view message) { log(level, std::string(message)); });
}

MultiLangSupervisor::Impl::~Impl() {
  kill_all();
  pump.reset();  // kills and reaps the retired children
  for (int fd : shutdown_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

void MultiLangSupervisor::Impl::log(LogLevel level, const std::string& message) const {
  const std::string text = "worker " + options.worker_id + " " + message;
  if (options.log) {
    options.log(level, text);
  } else if (level >= LogLevel::kInfo) {
    static const char* names[] = {"trace", "debug", "info", "warning", "error"};
    std::fprintf(stderr, "shardline: %s: %s\n", names[static_cast<int>(level)], text.c_str());
  }
}

void MultiLangSupervisor::Impl::begin_shutdown() {
  bool expected = false;
  if (!shutting_down_.compare_exchange_strong(expected, true)) return;
  deadline_ns_.store((Steady::now() + options.shutdown_grace).time_since_epoch().count(),
                     std::memory_order_release);
  if (shutdown_pipe_[1] >= 0) {
    const char c = 1;
    (void)!::write(shutdown_pipe_[1], &c, 1);
  }
}

void MultiLangSupervisor::Impl::add_live(detail::ChildProcess* c) {
  std::lock_guard lk(live_mu_);
  live_[c->pid()] = c;
}

void MultiLangSupervisor::Impl::remove_live(detail::ChildProcess* c) {
  std::lock_guard lk(live_mu_);
  live_.erase(c->pid());
}

void MultiLangSupervisor::Impl::kill_all() {
  {
    std::lock_guard lk(live_mu_);
    // A live child is never reaped before it leaves this map, so its pid is still its own.
    for (auto& [pid, c] : live_) c->kill(SIGKILL);
  }
  if (pump) pump->kill_retired();
}

std::size_t MultiLangSupervisor::Impl::running() const {
  std::size_t n;
  {
    std::lock_guard lk(live_mu_);
    n = live_.size();
  }
  return n + (pump ? pump->retired() : 0);
}

// ---- the processor -------------------------------------------------------------------------

namespace {

// Messages at least this large are written to the child without a copy (vmsplice). A judgement,
// not a measured crossover: small messages (initialize, checkpoint replies, short batches) gain
// little and are simplest copied; the benchmark's 3.6 MB messages are what was measured.
constexpr std::size_t kZeroCopyMinBytes = 64 * 1024;

// Records delivered to the child and acknowledged, not yet covered by a checkpoint: the
// processRecords messages as sent. Where each record's object is, and its sequence number, is
// found again in the text (split_record_objects, record_position) only when a restarted child
// needs part of a batch: keeping that per record cost the daemon a store per record of every
// batch, for a replay that is rare.
struct ReplayBatch {
  detail::TextBuffer text;
  std::size_t records_begin = 0, records_end = 0;  // the records array's contents in `text`
  std::size_t count = 0;
  ExtendedSequenceNumber first, last;  // of the first and the last record
  std::int64_t millis_behind_latest = 0;

  std::string_view records() const {
    return text.view().substr(records_begin, records_end - records_begin);
  }
};

class MultiLangProcessor final : public detail::PiecewiseRecordProcessor {
 public:
  MultiLangProcessor(std::shared_ptr<MultiLangSupervisor::Impl> sup, std::string shard_id)
      : sup_(std::move(sup)), shard_id_(std::move(shard_id)) {}

  ~MultiLangProcessor() override {
    if (child_) end_child();
  }

  Status initialize(const InitializationInput& in) override {
    shard_id_ = in.shard_id;
    initial_ = in.extended_sequence_number;
    if (child_) (void)kill_child("was replaced (initialize was called again)");
    const bool again = starts_ > 0;
    return start_child(initial_, nullptr, again);
  }

  Status process_records(const ProcessRecordsInput& in) override {
    std::int64_t data_bytes = 0;
    for (const ConsumerRecord& r : in.records)
      data_bytes += static_cast<std::int64_t>(r.data.size());
    begin_batch(data_bytes);
    add_records(in.records);
    return finish_batch(in);
  }

  // The worker hands batches over in pieces (piecewise_processor.h): the records are written
  // into batch_ as they come, and the message goes out in finish_batch().
  void begin_batch(std::int64_t data_bytes) noexcept override {
    batch_failed_ = false;
    try {
      // Room for the message at the text per data byte of the last one, plus an eighth: no
      // pass over the records to size it. batch_ grows (one copy) when records are larger.
      const auto estimate = 256 + static_cast<std::size_t>(static_cast<double>(data_bytes) *
                                                           text_per_data_byte_ * 1.125);
      if (batch_.capacity() < estimate && spare_.capacity() >= estimate) batch_.swap(spare_);
      batch_.clear();
      scratch_.clear();
      ml::append_process_records_begin(scratch_);
      batch_.reserve(std::max(estimate, scratch_.size()));
      batch_.append(scratch_);
    } catch (const std::bad_alloc&) {
      batch_failed_ = true;  // finish_batch() reports it
    }
    batch_records_begin_ = batch_.size();
    batch_count_ = 0;
    batch_data_bytes_ = data_bytes;
    writer_.begin_batch();
  }

  void add_records(std::span<const ConsumerRecord> piece) noexcept override {
    if (piece.empty() || batch_failed_) return;
    try {
      if (batch_count_ == 0) {
        batch_first_ = {std::string(piece.front().sequence_number),
                        piece.front().sub_sequence_number};
      }
      batch_last_sequence_number_ = piece.back().sequence_number;
      batch_last_sub_ = piece.back().sub_sequence_number;
      // The records are written straight into batch_'s room, which only grows when a record's
      // worst case (escaped keys) would not fit: no resize per record, and nothing zero-filled.
      char* p = batch_.end();
      while (!piece.empty()) {
        const std::size_t n =
            writer_.write_records(p, batch_.data() + batch_.capacity(), piece, batch_count_);
        piece = piece.subspan(n);
        batch_.set_size(static_cast<std::size_t>(p - batch_.data()));
        if (!piece.empty()) {
          const std::size_t need =
              1 + ml::RecordWriter::max_size(piece.front()) + ml::RecordWriter::kSlack;
          batch_.reserve(std::max(batch_.capacity() * 2, batch_.size() + need));
          p = batch_.end();
        }
      }
    } catch (const std::bad_alloc&) {
      batch_failed_ = true;
    }
  }

  Status finish_batch(const ProcessRecordsInput& in) override {
    if (batch_failed_) {
      return Status(StatusCode::kResourceExhausted,
                    "shard " + shard_id_ + ": out of memory writing the processRecords message");
    }
    SHARDLINE_RETURN_IF_ERROR(ensure_child(in.checkpointer));
    std::string_view records = batch_.view().substr(batch_records_begin_);
    if (batch_data_bytes_ > 0 && !records.empty()) {
      text_per_data_byte_ =
          static_cast<double>(records.size()) / static_cast<double>(batch_data_bytes_);
    }
    std::size_t sent = batch_count_;
    ExtendedSequenceNumber first = batch_first_;
    // After a restart the worker retries the batch that failed; the child has already seen
    // (in the replay) or checkpointed part of it. Send only what follows the checkpoint. (In
    // between, the worker never delivers a record twice.)
    if (restarted_ && sent != 0) {
      const ExtendedSequenceNumber last = in.checkpointer.last_checkpoint();
      if (!last.is_sentinel() && compare(first, last) <= 0) {
        SHARDLINE_ASSIGN_OR_RETURN(std::optional<After> after, records_after(records, last));
        if (!after) return {};  // all checkpointed already
        records = records.substr(after->offset);
        sent = after->count;
        first = std::move(after->first);
      }
    }
    if (records.size() == batch_.size() - batch_records_begin_) {
      msg_.swap(batch_);  // the whole batch: it goes out from where it was written
    } else {
      compose([](std::string& m) { ml::append_process_records_begin(m); });
      msg_.append(records);
    }
    const std::size_t records_end = msg_.size();
    const std::size_t records_begin = records_end - records.size();
    compose([&](std::string& m) { ml::append_process_records_end(m, in.millis_behind_latest); },
            /*append=*/true);
    sup_->counters.records_sent.fetch_add(static_cast<std::int64_t>(sent),
                                          std::memory_order_relaxed);
    SHARDLINE_RETURN_IF_ERROR(converse("processRecords", &in.checkpointer));
    restarted_ = false;
    if (sup_->options.replay_buffer_max_bytes > 0 && sent != 0) {
      ReplayBatch batch;
      batch.records_begin = records_begin;
      batch.records_end = records_end;
      batch.count = sent;
      batch.first = std::move(first);
      batch.last = {std::string(batch_last_sequence_number_), batch_last_sub_};
      batch.millis_behind_latest = in.millis_behind_latest;
      batch.text = std::exchange(msg_, detail::TextBuffer());
      add_to_replay(std::move(batch));
    } else if (msg_.capacity() > spare_.capacity()) {
      spare_.swap(msg_);  // read by the child by now: the next batch is written into it
    }
    trim_replay(in.checkpointer.last_checkpoint());
    return {};
  }

  Status shard_ended(Checkpointer& cp) override {
    SHARDLINE_RETURN_IF_ERROR(ensure_child(cp));
    compose([](std::string& m) { ml::append_action(m, "shardEnded"); });
    SHARDLINE_RETURN_IF_ERROR(converse("shardEnded", &cp));
    if (cp.last_checkpoint().sequence_number == kCheckpointShardEnd) {
      replay_.clear();
      replay_bytes_ = 0;
      end_child();
    } else {
      // The worker asks again after its backoff; the same child gets shardEnded again.
      sup_->log(LogLevel::kWarning, "shard " + shard_id_ + ": child " + pid_text() +
                                        " answered shardEnded without checkpointing; the "
                                        "child shards wait until it checkpoints");
    }
    return {};
  }

  Status lease_lost() override {
    if (!child_) return {};
    compose([](std::string& m) { ml::append_action(m, "leaseLost"); });
    // No retry could help: the lease is gone. A failed child has been killed already.
    (void)converse("leaseLost", nullptr);
    if (child_) end_child();
    return {};
  }

  Status shutdown_requested(Checkpointer& cp) override {
    sup_->begin_shutdown();  // the grace period counts from the first shutdownRequested
    if (!child_) return {};
    if (Steady::now() >= sup_->shutdown_deadline()) {
      return kill_child("was not sent shutdownRequested: shutdownGraceMillis (" +
                        std::to_string(sup_->options.shutdown_grace.count()) + " ms) had elapsed");
    }
    compose([](std::string& m) { ml::append_action(m, "shutdownRequested"); });
    return converse("shutdownRequested", &cp);
  }

 private:
  using Kind = ml::ChildMessage::Kind;

  std::string pid_text() const { return child_ ? std::to_string(child_->pid()) : "(none)"; }

  // Starts a child (again, when `restart`): initialize at `at`, then the replay.
  Status start_child(const ExtendedSequenceNumber& at, Checkpointer* cp, bool restart) {
    if (sup_->shutting_down()) {
      return Status(StatusCode::kCancelled,
                    "shard " + shard_id_ + ": the daemon is shutting down; no new child");
    }
    const auto& o = sup_->options;
    auto path = resolve_executable(o.command.front(), o.working_directory);
    Result<std::unique_ptr<detail::ChildProcess>> spawned =
        path.ok() ? detail::ChildProcess::spawn(*path, o.command, o.working_directory)
                  : Result<std::unique_ptr<detail::ChildProcess>>(path.status());
    if (!spawned.ok()) {
      sup_->counters.start_failures.fetch_add(1, std::memory_order_relaxed);
      Status s = spawned.status().with_context(
          "shard " + shard_id_ + ": starting executableName '" + o.command.front() + "'");
      sup_->log(LogLevel::kError, s.to_string());
      return s;
    }
    child_ = std::move(*spawned);
    ++starts_;
    if (restart) restarted_ = true;
    inbuf_.clear();
    inpos_ = 0;
    discarding_ = false;
    skipped_logged_ = 0;
    sup_->add_live(child_.get());
    sup_->pump->watch_stderr(child_->take_stderr(), shard_id_, child_->pid());
    sup_->counters.children_started.fetch_add(1, std::memory_order_relaxed);
    std::size_t replay_records = 0;
    for (const ReplayBatch& b : replay_) replay_records += b.count;
    if (restart) {
      sup_->counters.child_restarts.fetch_add(1, std::memory_order_relaxed);
      sup_->log(
          LogLevel::kWarning,
          "shard " + shard_id_ + ": restarted the child as " + pid_text() + " from checkpoint " +
              at.sequence_number + "/" + std::to_string(at.sub_sequence_number) +
              (replay_records
                   ? " (replaying " + std::to_string(replay_records) + " records delivered since)"
                   : ""));
    } else {
      sup_->log(LogLevel::kInfo, "shard " + shard_id_ + ": started child " + pid_text());
    }
    compose([&](std::string& m) { ml::append_initialize(m, shard_id_, at); });
    SHARDLINE_RETURN_IF_ERROR(converse("initialize", nullptr));
    if (cp != nullptr) SHARDLINE_RETURN_IF_ERROR(replay(*cp));
    return {};
  }

  Status ensure_child(Checkpointer& cp) {
    if (released_) {
      return Status(
          StatusCode::kFailedPrecondition,
          "shard " + shard_id_ + ": its lease was released to restart it from the checkpoint");
    }
    if (child_) return {};
    if (overflowed_) SHARDLINE_RETURN_IF_ERROR(release_for_restart(cp));
    return start_child(cp.last_checkpoint(), &cp, true);
  }

  // The replay buffer dropped records: a new child could not get everything after the
  // checkpoint. Give the lease up so that the shard starts over from the checkpoint.
  Status release_for_restart(Checkpointer& cp) {
    const ExtendedSequenceNumber c = cp.last_checkpoint();
    const std::string lost = "records after checkpoint " + c.sequence_number + "/" +
                             std::to_string(c.sub_sequence_number) + " up to " +
                             dropped_through_.sequence_number + "/" +
                             std::to_string(dropped_through_.sub_sequence_number);
    const auto& store = sup_->options.lease_store;
    if (!store) {
      sup_->log(LogLevel::kError, "shard " + shard_id_ + ": the replay buffer (" +
                                      std::to_string(sup_->options.replay_buffer_max_bytes) +
                                      " bytes) dropped " + lost +
                                      "; the restarted child does not see them");
      overflowed_ = false;
      return {};
    }
    auto got = store->get_lease(shard_id_);
    if (!got.ok()) return got.status().with_context("shard " + shard_id_ + ": reading its lease");
    if (!got->has_value() || (*got)->lease_owner != sup_->options.worker_id) {
      return Status(StatusCode::kFailedPrecondition,
                    "shard " + shard_id_ + ": the lease is not held any more");
    }
    Lease lease = **got;
    auto evicted = store->evict_lease(lease);
    if (!evicted.ok()) {
      return evicted.status().with_context("shard " + shard_id_ + ": releasing its lease");
    }
    if (!*evicted) {
      return Status(StatusCode::kAborted,
                    "shard " + shard_id_ + ": the lease changed while it was being released");
    }
    released_ = true;
    sup_->counters.leases_released.fetch_add(1, std::memory_order_relaxed);
    const std::string why = "shard " + shard_id_ +
                            ": released its lease so that the shard "
                            "restarts from its checkpoint (the replay buffer had dropped " +
                            lost + ")";
    sup_->log(LogLevel::kWarning, why);
    return Status(StatusCode::kFailedPrecondition, why);
  }

  Status replay(Checkpointer& cp) {
    const ExtendedSequenceNumber from = cp.last_checkpoint();
    // The child's checkpoints during the replay must not trim the buffer under this loop.
    replaying_ = true;
    struct Done {
      bool& flag;
      ~Done() { flag = false; }
    } done{replaying_};
    for (const ReplayBatch& b : replay_) {
      if (compare(b.last, from) <= 0) continue;
      std::string_view records = b.records();
      std::size_t n = b.count;
      if (compare(b.first, from) <= 0) {
        // The checkpoint falls inside this batch: from the first record after it.
        SHARDLINE_ASSIGN_OR_RETURN(std::optional<After> after, records_after(records, from));
        if (!after) continue;
        records = records.substr(after->offset);
        n = after->count;
      }
      compose([](std::string& m) { ml::append_process_records_begin(m); });
      msg_.append(records);
      compose([&](std::string& m) { ml::append_process_records_end(m, b.millis_behind_latest); },
              /*append=*/true);
      sup_->counters.records_sent.fetch_add(static_cast<std::int64_t>(n),
                                            std::memory_order_relaxed);
      sup_->counters.records_replayed.fetch_add(static_cast<std::int64_t>(n),
                                                std::memory_order_relaxed);
      SHARDLINE_RETURN_IF_ERROR(converse("processRecords", &cp));
    }
    replaying_ = false;
    trim_replay(cp.last_checkpoint());
    return {};
  }

  // The first record after `from` in a records array this processor wrote (a batch or a kept
  // one): where its object starts, how many records there are from it on, and its position;
  // nullopt when every record is at or before `from`. Found by reading the text again, which
  // only a restart needs.
  struct After {
    std::size_t offset = 0;
    std::size_t count = 0;
    ExtendedSequenceNumber first;
  };
  Result<std::optional<After>> records_after(std::string_view records,
                                             const ExtendedSequenceNumber& from) const {
    const std::vector<std::string_view> objects = ml::split_record_objects(records);
    for (std::size_t k = 0; k < objects.size(); ++k) {
      std::optional<ExtendedSequenceNumber> at = ml::record_position(objects[k]);
      if (!at) {
        return Status::internal("shard " + shard_id_ + ": record " + std::to_string(k) +
                                " of a batch has no sequence number; cannot resume after " +
                                from.sequence_number);
      }
      if (compare(*at, from) > 0) {
        return std::optional<After>(
            After{static_cast<std::size_t>(objects[k].data() - records.data()), objects.size() - k,
                  std::move(*at)});
      }
    }
    return std::optional<After>();
  }

  void add_to_replay(ReplayBatch batch) {
    replay_bytes_ += static_cast<std::int64_t>(batch.text.size());
    replay_.push_back(std::move(batch));
    const std::int64_t max = sup_->options.replay_buffer_max_bytes;
    bool dropped = false;
    while (replay_bytes_ > max && !replay_.empty()) {
      const ReplayBatch& front = replay_.front();
      dropped_through_ = front.last;
      replay_bytes_ -= static_cast<std::int64_t>(front.text.size());
      replay_.pop_front();
      dropped = true;
    }
    if (dropped && !overflowed_) {
      overflowed_ = true;
      sup_->log(LogLevel::kWarning,
                "shard " + shard_id_ + ": the child has not checkpointed for more than " +
                    std::to_string(max) +
                    " bytes of records (replayBufferMaxBytes); if it fails now, the shard's "
                    "lease is released so the shard restarts from its checkpoint");
    }
  }

  void trim_replay(const ExtendedSequenceNumber& checkpoint) {
    if (replaying_) return;
    if (checkpoint.is_sentinel() && checkpoint.sequence_number != kCheckpointShardEnd) return;
    while (!replay_.empty()) {
      ReplayBatch& front = replay_.front();
      if (compare(front.last, checkpoint) > 0) break;
      replay_bytes_ -= static_cast<std::int64_t>(front.text.size());
      // Its buffer makes the next message: no new allocation (and page faults) per batch.
      if (front.text.capacity() > spare_.capacity()) spare_.swap(front.text);
      replay_.pop_front();
    }
    if (overflowed_ && compare(checkpoint, dropped_through_) >= 0) overflowed_ = false;
  }

  // ---- talking to the child ----

  // msg_ becomes (or, with `append`, gets at its end) the text `build` appends to a string:
  // every message but the records of processRecords, which are written into msg_ directly.
  template <typename Build>
  void compose(Build build, bool append = false) {
    scratch_.clear();
    build(scratch_);
    if (!append) msg_.clear();
    msg_.append(scratch_);
  }

  // The deadline of the current wait: the response timeout, and the shutdown deadline.
  Steady::time_point wait_deadline(Steady::time_point response) const {
    return std::min(response, sup_->shutdown_deadline());
  }

  Steady::time_point response_deadline() const {
    const auto t = sup_->options.response_timeout;
    return t.count() > 0 ? Steady::now() + t : Steady::time_point::max();
  }

  // Sends msg_ and waits for the status of `action`, answering checkpoint requests.
  Status converse(std::string_view action, Checkpointer* cp) {
    if (!child_) return Status::unavailable("shard " + shard_id_ + ": no child");
    Steady::time_point deadline = response_deadline();
    SHARDLINE_RETURN_IF_ERROR(write_all(msg_, deadline, action, sup_->options.zero_copy_messages));
    for (;;) {
      std::string_view line;
      while (next_line(line)) {
        ml::ChildMessage m = ml::parse_child_line(line);
        switch (m.kind) {
          case Kind::kSkip:
            // The KCL clients write "\n<json>\n": blank lines are part of the protocol.
            if (!m.why.empty() && m.why != "empty line") skipped(line, m.why);
            break;
          case Kind::kCheckpoint:
            SHARDLINE_RETURN_IF_ERROR(answer_checkpoint(m, cp, action));
            deadline = response_deadline();
            break;
          case Kind::kStatus:
            if (m.response_for == action) {
              // The next message reuses the memory the child read this one from (zero copy).
              if (child_->stdin_drained()) return {};
              sup_->counters.protocol_errors.fetch_add(1, std::memory_order_relaxed);
              return kill_child("answered " + std::string(action) +
                                " before reading all of the message");
            }
            sup_->counters.protocol_errors.fetch_add(1, std::memory_order_relaxed);
            return kill_child("answered " + std::string(action) + " with a status for '" +
                              m.response_for + "'");
        }
        if (!child_) return Status::unavailable("shard " + shard_id_ + ": the child failed");
      }
      SHARDLINE_RETURN_IF_ERROR(read_more(deadline, action));
    }
  }

  Status answer_checkpoint(const ml::ChildMessage& m, Checkpointer* cp, std::string_view action) {
    sup_->counters.checkpoints.fetch_add(1, std::memory_order_relaxed);
    Status r;
    std::string_view error;
    if (!m.invalid.empty()) {
      r = Status::invalid_argument(m.invalid);
      error = "IllegalArgumentException";
    } else if (cp == nullptr) {
      // As the Java daemon: no checkpointer during initialize and leaseLost.
      r = Status::failed_precondition("no checkpointer during " + std::string(action));
      error = "InvalidStateException";
    } else {
      r = m.sequence_number ? cp->checkpoint(*m.sequence_number, m.sub_sequence_number.value_or(0))
                            : cp->checkpoint();
      error = checkpoint_error_name(r);
      if (r.ok()) trim_replay(cp->last_checkpoint());
    }
    if (!error.empty()) {
      sup_->counters.checkpoint_errors.fetch_add(1, std::memory_order_relaxed);
      sup_->log(error == "ShutdownException" ? LogLevel::kInfo : LogLevel::kWarning,
                "shard " + shard_id_ + ": checkpoint at " + m.sequence_number.value_or("(latest)") +
                    (m.sub_sequence_number ? "/" + std::to_string(*m.sub_sequence_number) : "") +
                    " during " + std::string(action) + " failed (" + std::string(error) +
                    "): " + r.to_string());
    }
    reply_.clear();
    ml::append_checkpoint_reply(reply_, m.sequence_number, m.sub_sequence_number, error);
    return write_all(reply_, response_deadline(), action);
  }

  void skipped(std::string_view line, const std::string& why) {
    sup_->counters.skipped_lines.fetch_add(1, std::memory_order_relaxed);
    constexpr int kLogged = 10;
    if (skipped_logged_ >= kLogged) return;
    ++skipped_logged_;
    std::string text(line.substr(0, 200));
    if (line.size() > 200) text += "...";
    sup_->log(LogLevel::kInfo, "shard " + shard_id_ + ": child " + pid_text() +
                                   ": skipping a line on stdout (" + why + "): " + text +
                                   (skipped_logged_ == kLogged ? " (further skipped lines of "
                                                                 "this child are not logged)"
                                                               : ""));
  }

  // The next complete line of stdout, if buffered.
  bool next_line(std::string_view& line) {
    for (;;) {
      const std::size_t nl = inbuf_.find('\n', inpos_);
      if (nl == std::string::npos) {
        if (inpos_ != 0) {
          inbuf_.erase(0, inpos_);
          inpos_ = 0;
        }
        constexpr std::size_t kMaxLine = 8u << 20;
        if (inbuf_.size() > kMaxLine) {  // no protocol message is this long: skip the line
          discarding_ = true;
          inbuf_.clear();
          skipped("(more than 8 MiB)", "a line without end");
        }
        return false;
      }
      line = std::string_view(inbuf_).substr(inpos_, nl - inpos_);
      inpos_ = nl + 1;
      if (discarding_) {  // the rest of an over-long line
        discarding_ = false;
        continue;
      }
      return true;
    }
  }

  // Reads what stdout has, waiting until `response` (or the shutdown deadline) for something.
  Status read_more(Steady::time_point response, std::string_view action) {
    for (;;) {
      const Steady::time_point until = wait_deadline(response);
      const auto now = Steady::now();
      if (now >= until) return timed_out(response, action);
      pollfd fds[2] = {{child_->stdout_fd(), POLLIN, 0}, {sup_->shutdown_fd(), POLLIN, 0}};
      const nfds_t n = sup_->shutting_down() || sup_->shutdown_fd() < 0 ? 1 : 2;
      const int r = ::poll(fds, n, poll_timeout(now, until));
      if (r < 0 && errno != EINTR) {
        return kill_child(std::string("could not be polled: ") + std::strerror(errno));
      }
      if (r <= 0 || fds[0].revents == 0) continue;
      std::size_t got_total = 0;
      for (;;) {
        char buf[65536];
        const ssize_t got = ::read(child_->stdout_fd(), buf, sizeof buf);
        if (got > 0) {
          inbuf_.append(buf, static_cast<std::size_t>(got));
          got_total += static_cast<std::size_t>(got);
          if (static_cast<std::size_t>(got) < sizeof buf) break;
          continue;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return child_gone(action);
      }
      if (got_total != 0) return {};
    }
  }

  static int poll_timeout(Steady::time_point now, Steady::time_point until) {
    if (until == Steady::time_point::max()) return -1;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1;
    return static_cast<int>(std::clamp<long long>(ms, 0, 60000));
  }

  // Writes all of `data`, reading stdout meanwhile. `zero_copy` (msg_ only): large messages go
  // to the pipe as references to msg_'s pages (vmsplice): the copy into the pipe and its page
  // allocations were a sixth of the daemon's CPU. msg_ is then not touched until the child has
  // read it all (checked at its status) or, if the child is killed first, it is handed to the
  // ChildProcess (hold_until_read) instead of being reused.
  Status write_all(std::string_view data, Steady::time_point response, std::string_view action,
                   bool zero_copy = false) {
    zero_copy = zero_copy && data.size() >= kZeroCopyMinBytes;
    sup_->counters.messages_sent.fetch_add(1, std::memory_order_relaxed);
    sup_->counters.bytes_sent.fetch_add(static_cast<std::int64_t>(data.size()),
                                        std::memory_order_relaxed);
    std::size_t off = 0;
    while (off < data.size()) {
      auto w = child_->write_some(data.substr(off), zero_copy);
      if (!w.ok()) return child_gone(action);
      off += *w;
      if (off == data.size()) break;
      const Steady::time_point until = wait_deadline(response);
      const auto now = Steady::now();
      if (now >= until) return timed_out(response, action);
      pollfd fds[3] = {{child_->stdin_fd(), POLLOUT, 0},
                       {child_->stdout_fd(), POLLIN, 0},
                       {sup_->shutdown_fd(), POLLIN, 0}};
      const nfds_t n = sup_->shutting_down() || sup_->shutdown_fd() < 0 ? 2 : 3;
      const int r = ::poll(fds, n, poll_timeout(now, until));
      if (r < 0 && errno != EINTR) {
        return kill_child(std::string("could not be polled: ") + std::strerror(errno));
      }
      if (r > 0 && fds[1].revents != 0) {
        char buf[65536];
        const ssize_t got = ::read(child_->stdout_fd(), buf, sizeof buf);
        if (got > 0) {
          inbuf_.append(buf, static_cast<std::size_t>(got));
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          return child_gone(action);
        }
      }
    }
    return {};
  }

  Status timed_out(Steady::time_point response, std::string_view action) {
    if (Steady::now() >= response) {
      sup_->counters.child_timeouts.fetch_add(1, std::memory_order_relaxed);
      return kill_child("did not answer " + std::string(action) + " within timeoutInSeconds (" +
                        std::to_string(sup_->options.response_timeout.count() / 1000.0) + " s)");
    }
    return kill_child("had not answered " + std::string(action) +
                      " when shutdownGraceMillis elapsed");
  }

  Status child_gone(std::string_view action) {
    sup_->counters.child_exits.fetch_add(1, std::memory_order_relaxed);
    // EOF on stdout usually means the child is exiting: give it a moment to say how.
    std::string how = "closed its stdin or stdout";
    const auto until = Steady::now() + std::chrono::milliseconds(200);
    for (;;) {
      // Not reaped here: until the pump reaps it, its pid cannot be reused under kill_all().
      if (auto ended = child_->peek_exit()) {
        how = *ended;
        break;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now());
      if (left.count() <= 0) break;
      if (child_->pidfd() >= 0) {
        pollfd pfd{child_->pidfd(), POLLIN, 0};
        (void)::poll(&pfd, 1, static_cast<int>(left.count()));
      } else {
        ::usleep(1000);
      }
    }
    return kill_child(how + " during " + std::string(action));
  }

  // Kills the child (its process group) and hands it to the reaper. The failed Status says so.
  Status kill_child(const std::string& why) {
    const std::string pid = pid_text();
    sup_->remove_live(child_.get());
    child_->kill(SIGKILL);
    child_->hold_until_read(std::exchange(msg_, detail::TextBuffer()));
    child_->close_stdin();
    sup_->pump->retire(std::move(child_), shard_id_, Steady::time_point::max());
    child_.reset();
    inbuf_.clear();
    inpos_ = 0;
    const std::string text = "shard " + shard_id_ + ": child " + pid + " " + why + "; killed it" +
                             (sup_->shutting_down() ? ""
                                                    : " (the next attempt restarts it from "
                                                      "the last checkpoint)");
    sup_->log(LogLevel::kError, text);
    return Status::unavailable(text);
  }

  // The conversation is over: EOF on stdin, and the reaper waits for the exit.
  void end_child() {
    sup_->remove_live(child_.get());
    // Normally a no-op: every message was read before its status (checked in converse()).
    child_->hold_until_read(std::exchange(msg_, detail::TextBuffer()));
    child_->close_stdin();
    sup_->pump->retire(std::move(child_), shard_id_,
                       Steady::now() + sup_->options.child_exit_timeout);
    child_.reset();
  }

  std::shared_ptr<MultiLangSupervisor::Impl> sup_;
  std::string shard_id_;
  ExtendedSequenceNumber initial_;
  std::unique_ptr<detail::ChildProcess> child_;
  int starts_ = 0;
  ml::RecordWriter writer_;
  // The batch being written (begin_batch .. finish_batch), where its records array starts, its
  // record count, first and last position, its data bytes, and what the text per data byte
  // of the last batch was (to size the next).
  detail::TextBuffer batch_;
  std::size_t batch_records_begin_ = 0;
  std::size_t batch_count_ = 0;
  ExtendedSequenceNumber batch_first_;
  std::string_view batch_last_sequence_number_;  // valid until finish_batch() returns
  std::int64_t batch_last_sub_ = 0;
  std::int64_t batch_data_bytes_ = 0;
  bool batch_failed_ = false;  // out of memory while writing it: finish_batch() fails
  double text_per_data_byte_ = 4.0;
  detail::TextBuffer msg_;    // the message being sent
  detail::TextBuffer spare_;  // a buffer for the next message
  std::string scratch_;       // small messages, composed before they go to msg_
  std::string reply_;         // a checkpoint reply
  std::string inbuf_;         // the child's stdout
  std::size_t inpos_ = 0;
  bool discarding_ = false;
  int skipped_logged_ = 0;
  std::deque<ReplayBatch> replay_;
  std::int64_t replay_bytes_ = 0;
  bool overflowed_ = false;                 // the buffer dropped records not yet checkpointed
  ExtendedSequenceNumber dropped_through_;  // the last record dropped
  bool released_ = false;                   // the lease was given up for a restart
  bool restarted_ = false;                  // a new child, and no batch delivered to it yet
  bool replaying_ = false;                  // replay() is iterating over replay_
};

}  // namespace

// ---- MultiLangSupervisor -------------------------------------------------------------------

Result<std::shared_ptr<MultiLangSupervisor>> MultiLangSupervisor::create(
    MultiLangProcessorOptions options) {
  if (options.command.empty() || options.command.front().empty()) {
    return Status::invalid_argument("executableName is required: the program to run per shard");
  }
  if (options.response_timeout.count() < 0 || options.shutdown_grace.count() < 0 ||
      options.child_exit_timeout.count() < 0 || options.replay_buffer_max_bytes < 0) {
    return Status::invalid_argument("negative multilang timeouts or sizes");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  return std::shared_ptr<MultiLangSupervisor>(new MultiLangSupervisor(std::move(impl)));
}

MultiLangSupervisor::MultiLangSupervisor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MultiLangSupervisor::~MultiLangSupervisor() { impl_->kill_all(); }

RecordProcessorFactory MultiLangSupervisor::factory() {
  std::shared_ptr<Impl> impl = impl_;
  return [impl](const std::string& shard_id) -> std::unique_ptr<RecordProcessor> {
    return std::make_unique<MultiLangProcessor>(impl, shard_id);
  };
}

void MultiLangSupervisor::begin_shutdown() { impl_->begin_shutdown(); }
void MultiLangSupervisor::kill_all() { impl_->kill_all(); }
std::size_t MultiLangSupervisor::running_children() const { return impl_->running(); }

bool MultiLangSupervisor::wait_children(std::chrono::milliseconds timeout) {
  const auto until = Steady::now() + timeout;
  // Live children end when their processors end them; retired ones when the pump reaps them.
  for (;;) {
    if (impl_->running() == 0) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now());
    if (left.count() <= 0) return false;
    (void)impl_->pump->wait_idle(std::min(left, std::chrono::milliseconds(20)));
  }
}

MultiLangMetrics MultiLangSupervisor::metrics() const {
  const auto& c = impl_->counters;
  auto g = [](const std::atomic<std::int64_t>& a) { return a.load(std::memory_order_relaxed); };
  MultiLangMetrics m;
  m.children_started = g(c.children_started);
  m.child_restarts = g(c.child_restarts);
  m.child_timeouts = g(c.child_timeouts);
  m.child_exits = g(c.child_exits);
  m.protocol_errors = g(c.protocol_errors);
  m.start_failures = g(c.start_failures);
  m.skipped_lines = g(c.skipped_lines);
  m.messages_sent = g(c.messages_sent);
  m.records_sent = g(c.records_sent);
  m.records_replayed = g(c.records_replayed);
  m.bytes_sent = g(c.bytes_sent);
  m.checkpoints = g(c.checkpoints);
  m.checkpoint_errors = g(c.checkpoint_errors);
  m.leases_released = g(c.leases_released);
  m.stderr_lines = g(c.stderr_lines);
  return m;
}

}  // namespace shardline
