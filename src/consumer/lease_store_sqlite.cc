// The embedded lease store: one SQLite file, shared by the worker processes of one host.
//
// Schema (user_version 1): one table for every application,
//
//   CREATE TABLE shardline_leases (
//     application TEXT NOT NULL, lease_key TEXT NOT NULL,
//     lease_owner TEXT NOT NULL DEFAULT '',          -- '' = unowned
//     lease_counter INTEGER NOT NULL,
//     checkpoint TEXT NOT NULL DEFAULT '',
//     checkpoint_sub_sequence_number INTEGER NOT NULL DEFAULT 0,
//     pending_checkpoint TEXT,                       -- NULL = none
//     pending_checkpoint_sub_sequence_number INTEGER NOT NULL DEFAULT 0,
//     pending_checkpoint_state BLOB,                 -- NULL = none
//     owner_switches_since_checkpoint INTEGER NOT NULL DEFAULT 0,
//     parent_shard_ids TEXT NOT NULL DEFAULT '',     -- sorted, newline-joined ('' = none)
//     child_shard_ids TEXT NOT NULL DEFAULT '',
//     starting_hash_key TEXT, ending_hash_key TEXT,  -- decimal; NULL = no range
//     checkpoint_owner TEXT NOT NULL DEFAULT '',     -- '' = none
//     PRIMARY KEY (application, lease_key)) WITHOUT ROWID;
//
// Concurrency. The file is in WAL mode (readers never block the writer), every connection
// waits up to kBusyTimeout for a lock, and a statement that still finds the database busy is
// retried until that budget is spent. Every conditional write is ONE statement,
//   UPDATE ... WHERE application = ? AND lease_key = ? AND lease_counter = ? [AND lease_owner = ?]
//   RETURNING <the lease>
// so the check and the write are atomic across processes: the row comes back (and
// sqlite3_changes() is 1) exactly when the condition held. Creation is
// INSERT ... ON CONFLICT DO NOTHING. One connection per store object, guarded by a mutex;
// statements are prepared once and cached.
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardline/lease_store.h"

#if SQLITE_VERSION_NUMBER < 3035000
#error "the SQLite lease store needs SQLite 3.35 or later (UPDATE ... RETURNING)"
#endif

namespace shardline {
namespace {

constexpr int kSchemaVersion = 1;
constexpr std::chrono::milliseconds kBusyTimeout{5000};

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE IF NOT EXISTS shardline_leases (
  application TEXT NOT NULL,
  lease_key TEXT NOT NULL,
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_counter INTEGER NOT NULL,
  checkpoint TEXT NOT NULL DEFAULT '',
  checkpoint_sub_sequence_number INTEGER NOT NULL DEFAULT 0,
  pending_checkpoint TEXT,
  pending_checkpoint_sub_sequence_number INTEGER NOT NULL DEFAULT 0,
  pending_checkpoint_state BLOB,
  owner_switches_since_checkpoint INTEGER NOT NULL DEFAULT 0,
  parent_shard_ids TEXT NOT NULL DEFAULT '',
  child_shard_ids TEXT NOT NULL DEFAULT '',
  starting_hash_key TEXT,
  ending_hash_key TEXT,
  checkpoint_owner TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (application, lease_key)
) WITHOUT ROWID)sql";

// The lease columns, in the order read_lease() expects them.
#define SHARDLINE_LEASE_COLUMNS                                                             \
  "lease_key, lease_owner, lease_counter, checkpoint, checkpoint_sub_sequence_number, "     \
  "pending_checkpoint, pending_checkpoint_sub_sequence_number, pending_checkpoint_state, "  \
  "owner_switches_since_checkpoint, parent_shard_ids, child_shard_ids, starting_hash_key, " \
  "ending_hash_key, checkpoint_owner"

// Parameters: ?1 application, ?2 lease key, ?3 the caller's counter, then per statement.
#define SHARDLINE_WHERE_COUNTER "WHERE application = ?1 AND lease_key = ?2 AND lease_counter = ?3"

enum StatementId : std::size_t {
  kList,
  kGet,
  kInsert,
  kRenew,
  kTake,
  kEvict,
  kCheckpoint,
  kPrepare,
  kMetadata,
  kDelete,
  kStatementCount,
};

constexpr std::array<const char*, kStatementCount> kStatements = {
    // kList: ?1
    "SELECT " SHARDLINE_LEASE_COLUMNS
    " FROM shardline_leases WHERE application = ?1 ORDER BY lease_key",
    // kGet: ?1 ?2
    "SELECT " SHARDLINE_LEASE_COLUMNS
    " FROM shardline_leases WHERE application = ?1 AND lease_key = ?2",
    // kInsert: ?1 application, ?2.. the columns in order.
    "INSERT INTO shardline_leases (application, " SHARDLINE_LEASE_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    " ON CONFLICT DO NOTHING",
    // kRenew: ?4 = 1 when the caller's lease has a checkpoint owner (then a pending handoff
    // does not stop the renewal, as in the KCL).
    "UPDATE shardline_leases SET lease_counter = lease_counter + 1 " SHARDLINE_WHERE_COUNTER
    " AND (?4 OR checkpoint_owner = '') RETURNING " SHARDLINE_LEASE_COLUMNS,
    // kTake: ?4 new owner, ?5 1 when the owner changes.
    "UPDATE shardline_leases SET lease_counter = lease_counter + 1, lease_owner = ?4,"
    " owner_switches_since_checkpoint = owner_switches_since_checkpoint + ?5,"
    " checkpoint_owner = '' " SHARDLINE_WHERE_COUNTER " RETURNING " SHARDLINE_LEASE_COLUMNS,
    // kEvict: ?4 the caller's owner.
    "UPDATE shardline_leases SET lease_counter = lease_counter + 1, lease_owner = '',"
    " checkpoint_owner = '' " SHARDLINE_WHERE_COUNTER
    " AND lease_owner = ?4 RETURNING " SHARDLINE_LEASE_COLUMNS,
    // kCheckpoint: ?4 the caller's owner, ?5 checkpoint, ?6 sub-sequence number.
    "UPDATE shardline_leases SET lease_counter = lease_counter + 1, checkpoint = ?5,"
    " checkpoint_sub_sequence_number = ?6, owner_switches_since_checkpoint = 0,"
    " pending_checkpoint = NULL, pending_checkpoint_sub_sequence_number = 0,"
    " pending_checkpoint_state = NULL " SHARDLINE_WHERE_COUNTER
    " AND lease_owner = ?4 RETURNING " SHARDLINE_LEASE_COLUMNS,
    // kPrepare: ?4 the caller's owner, ?5 pending checkpoint, ?6 its sub-sequence number,
    // ?7 state (NULL = none).
    "UPDATE shardline_leases SET lease_counter = lease_counter + 1, pending_checkpoint = ?5,"
    " pending_checkpoint_sub_sequence_number = ?6, pending_checkpoint_state = "
    "?7 " SHARDLINE_WHERE_COUNTER " AND lease_owner = ?4 RETURNING " SHARDLINE_LEASE_COLUMNS,
    // kMetadata: ?3 child ids, ?4 start, ?5 end; NULL = keep the stored value.
    "UPDATE shardline_leases SET child_shard_ids = COALESCE(?3, child_shard_ids),"
    " starting_hash_key = COALESCE(?4, starting_hash_key),"
    " ending_hash_key = COALESCE(?5, ending_hash_key)"
    " WHERE application = ?1 AND lease_key = ?2",
    // kDelete: ?1 ?2
    "DELETE FROM shardline_leases WHERE application = ?1 AND lease_key = ?2",
};

#undef SHARDLINE_WHERE_COUNTER
#undef SHARDLINE_LEASE_COLUMNS

bool is_busy(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) {
    if (!out.empty()) out += '\n';
    out += id;
  }
  return out;
}

std::vector<std::string> split_ids(std::string_view text) {
  std::vector<std::string> ids;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view id = text.substr(0, nl);
    if (!id.empty()) ids.emplace_back(id);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return ids;
}

Status check_checkpoint_args(const std::string& checkpoint, std::int64_t sub_sequence_number) {
  if (checkpoint.empty()) return Status::invalid_argument("the checkpoint is empty");
  if (sub_sequence_number < 0) {
    return Status::invalid_argument("sub-sequence number " + std::to_string(sub_sequence_number) +
                                    " is negative");
  }
  return {};
}

// The caller's lease can be the base of a conditional write: a key, and a counter that can
// be incremented (SQLite would turn an overflowing integer into a REAL).
Status check_writable(const Lease& lease, std::string_view op) {
  if (lease.lease_key.empty()) {
    return Status::invalid_argument(std::string(op) + ": the lease key is empty");
  }
  if (lease.lease_counter < 0 || lease.lease_counter == INT64_MAX) {
    return Status::out_of_range(std::string(op) + "(" + lease.lease_key + "): leaseCounter " +
                                std::to_string(lease.lease_counter) + " cannot be incremented");
  }
  return {};
}

// Binds values to a statement by position.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Binder& text(int i, std::string_view s) {
    note(sqlite3_bind_text64(stmt_, i, s.empty() ? "" : s.data(), s.size(), SQLITE_TRANSIENT,
                             SQLITE_UTF8));
    return *this;
  }
  Binder& optional_text(int i, const std::optional<std::string>& s) {
    return s ? text(i, *s) : null(i);
  }
  Binder& blob(int i, const std::optional<std::string>& b) {
    if (!b) return null(i);
    // A non-null pointer, so that an empty state is an empty BLOB, not NULL.
    note(sqlite3_bind_blob64(stmt_, i, b->empty() ? "" : b->data(), b->size(), SQLITE_TRANSIENT));
    return *this;
  }
  Binder& integer(int i, std::int64_t v) {
    note(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Binder& null(int i) {
    note(sqlite3_bind_null(stmt_, i));
    return *this;
  }
  int rc() const { return rc_; }

 private:
  void note(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
  }
  sqlite3_stmt* stmt_;
  int rc_ = SQLITE_OK;
};

class SqliteLeaseStore final : public LeaseStore {
 public:
  SqliteLeaseStore(sqlite3* db, std::string path, std::string application)
      : db_(db), path_(std::move(path)), application_(std::move(application)) {}

  ~SqliteLeaseStore() override {
    for (sqlite3_stmt*& s : statements_) {
      sqlite3_finalize(s);
      s = nullptr;
    }
    sqlite3_close_v2(db_);
  }
  SqliteLeaseStore(const SqliteLeaseStore&) = delete;
  SqliteLeaseStore& operator=(const SqliteLeaseStore&) = delete;

  // Opens (creating) the file and configures the connection. The schema waits for
  // initialize().
  static Result<std::unique_ptr<LeaseStore>> open(const std::string& path,
                                                  const std::string& application) {
    sqlite3* db = nullptr;
    const int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return Status::unavailable("sqlite:" + path + ": cannot open the lease store: " + message);
    }
    auto store = std::make_unique<SqliteLeaseStore>(db, path, application);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(kBusyTimeout.count()));
    {
      std::lock_guard lock(store->mu_);
      // Durable against a crash of the process; a power loss may lose the last writes (a
      // replay of records, never a corrupt file).
      SHARDLINE_RETURN_IF_ERROR(store->exec("PRAGMA synchronous = NORMAL", "open"));
    }
    return std::unique_ptr<LeaseStore>(std::move(store));
  }

  Status initialize(std::chrono::milliseconds /*timeout*/) override {
    std::lock_guard lock(mu_);
    // Persistent in the file; readers then never block the writer (other processes).
    SHARDLINE_RETURN_IF_ERROR(exec("PRAGMA journal_mode = WAL", "initialize"));
    SHARDLINE_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE", "initialize"));
    Status s = create_schema();
    if (!s.ok()) {
      (void)exec("ROLLBACK", "initialize");
      return s;
    }
    return exec("COMMIT", "initialize");
  }

  Result<std::vector<Lease>> list_leases() override {
    std::lock_guard lock(mu_);
    SHARDLINE_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(kList, "list_leases"));
    Reset reset(stmt);
    Binder b(stmt);
    b.text(1, application_);
    if (b.rc() != SQLITE_OK) return error(b.rc(), "list_leases");
    std::vector<Lease> leases;
    for (int rc = step(stmt);; rc = sqlite3_step(stmt)) {
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return error(rc, "list_leases");
      SHARDLINE_ASSIGN_OR_RETURN(Lease l, read_lease(stmt, "list_leases"));
      leases.push_back(std::move(l));
    }
    return leases;
  }

  Result<std::optional<Lease>> get_lease(const std::string& lease_key) override {
    if (lease_key.empty()) return Status::invalid_argument("get_lease: the lease key is empty");
    std::lock_guard lock(mu_);
    SHARDLINE_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(kGet, "get_lease"));
    Reset reset(stmt);
    Binder b(stmt);
    b.text(1, application_).text(2, lease_key);
    if (b.rc() != SQLITE_OK) return error(b.rc(), "get_lease", lease_key);
    const int rc = step(stmt);
    if (rc == SQLITE_DONE) return std::optional<Lease>();
    if (rc != SQLITE_ROW) return error(rc, "get_lease", lease_key);
    SHARDLINE_ASSIGN_OR_RETURN(Lease l, read_lease(stmt, "get_lease"));
    return std::optional<Lease>(std::move(l));
  }

  Result<bool> create_lease_if_not_exists(const Lease& lease) override {
    SHARDLINE_RETURN_IF_ERROR(validate_lease(lease));
    const Lease l = normalize_lease(lease);
    std::lock_guard lock(mu_);
    const char* op = "create_lease_if_not_exists";
    SHARDLINE_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(kInsert, op));
    Reset reset(stmt);
    Binder b(stmt);
    b.text(1, application_)
        .text(2, l.lease_key)
        .text(3, l.lease_owner)
        .integer(4, l.lease_counter)
        .text(5, l.checkpoint)
        .integer(6, l.checkpoint_sub_sequence_number)
        .optional_text(7, l.pending_checkpoint)
        .integer(8, l.pending_checkpoint_sub_sequence_number)
        .blob(9, l.pending_checkpoint_state)
        .integer(10, l.owner_switches_since_checkpoint)
        .text(11, join_ids(l.parent_shard_ids))
        .text(12, join_ids(l.child_shard_ids));
    if (l.hash_key_range) {
      b.text(13, l.hash_key_range->start.to_decimal()).text(14, l.hash_key_range->end.to_decimal());
    } else {
      b.null(13).null(14);
    }
    b.text(15, l.checkpoint_owner);
    if (b.rc() != SQLITE_OK) return error(b.rc(), op, l.lease_key);
    const int rc = step(stmt);
    if (rc != SQLITE_DONE) return error(rc, op, l.lease_key);
    return sqlite3_changes(db_) == 1;
  }

  Result<bool> renew_lease(Lease& lease) override {
    return conditional_update(lease, kRenew, "renew_lease", [&](Binder& b) {
      b.integer(4, lease.checkpoint_owner.empty() ? 0 : 1);
    });
  }

  Result<bool> take_lease(Lease& lease, const std::string& owner) override {
    if (owner.empty()) return Status::invalid_argument("take_lease: the new owner is empty");
    // Like the KCL: a switch is from one owner to another, as the caller's copy has it
    // (taking an unowned lease is not one).
    const bool owner_changes = !lease.lease_owner.empty() && owner != lease.lease_owner;
    return conditional_update(lease, kTake, "take_lease", [&](Binder& b) {
      b.text(4, owner).integer(5, owner_changes ? 1 : 0);
    });
  }

  Result<bool> evict_lease(Lease& lease) override {
    return conditional_update(lease, kEvict, "evict_lease",
                              [&](Binder& b) { b.text(4, lease.lease_owner); });
  }

  Result<bool> update_checkpoint(Lease& lease, const std::string& checkpoint,
                                 std::int64_t sub_sequence_number) override {
    SHARDLINE_RETURN_IF_ERROR(
        check_checkpoint_args(checkpoint, sub_sequence_number).with_context("update_checkpoint"));
    return conditional_update(lease, kCheckpoint, "update_checkpoint", [&](Binder& b) {
      b.text(4, lease.lease_owner).text(5, checkpoint).integer(6, sub_sequence_number);
    });
  }

  Result<bool> prepare_checkpoint(Lease& lease, const std::string& pending_checkpoint,
                                  std::int64_t sub_sequence_number,
                                  std::optional<std::string> state) override {
    SHARDLINE_RETURN_IF_ERROR(check_checkpoint_args(pending_checkpoint, sub_sequence_number)
                                  .with_context("prepare_checkpoint"));
    return conditional_update(lease, kPrepare, "prepare_checkpoint", [&](Binder& b) {
      b.text(4, lease.lease_owner)
          .text(5, pending_checkpoint)
          .integer(6, sub_sequence_number)
          .blob(7, state);
    });
  }

  Status update_lease_metadata(const Lease& lease) override {
    SHARDLINE_RETURN_IF_ERROR(validate_lease(lease).with_context("update_lease_metadata"));
    const Lease l = normalize_lease(lease);
    std::lock_guard lock(mu_);
    const char* op = "update_lease_metadata";
    SHARDLINE_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(kMetadata, op));
    Reset reset(stmt);
    Binder b(stmt);
    b.text(1, application_).text(2, l.lease_key);
    if (l.child_shard_ids.empty()) {
      b.null(3);
    } else {
      b.text(3, join_ids(l.child_shard_ids));
    }
    if (l.hash_key_range) {
      b.text(4, l.hash_key_range->start.to_decimal()).text(5, l.hash_key_range->end.to_decimal());
    } else {
      b.null(4).null(5);
    }
    if (b.rc() != SQLITE_OK) return error(b.rc(), op, l.lease_key);
    const int rc = step(stmt);
    if (rc != SQLITE_DONE) return error(rc, op, l.lease_key);
    if (sqlite3_changes(db_) != 1) {
      return Status::not_found(describe() + ": " + op + "(" + l.lease_key +
                               "): there is no such lease");
    }
    return {};
  }

  Status delete_lease(const std::string& lease_key) override {
    if (lease_key.empty()) return Status::invalid_argument("delete_lease: the lease key is empty");
    std::lock_guard lock(mu_);
    SHARDLINE_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(kDelete, "delete_lease"));
    Reset reset(stmt);
    Binder b(stmt);
    b.text(1, application_).text(2, lease_key);
    if (b.rc() != SQLITE_OK) return error(b.rc(), "delete_lease", lease_key);
    const int rc = step(stmt);
    if (rc != SQLITE_DONE) return error(rc, "delete_lease", lease_key);
    return {};
  }

  std::string describe() const override { return "sqlite:" + path_; }

 private:
  // Resets a cached statement and clears its bindings when the operation ends.
  class Reset {
   public:
    explicit Reset(sqlite3_stmt* stmt) : stmt_(stmt) {}
    ~Reset() {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    Reset(const Reset&) = delete;
    Reset& operator=(const Reset&) = delete;

   private:
    sqlite3_stmt* stmt_;
  };

  // One conditional UPDATE ... RETURNING: true (and the caller's lease replaced by the stored
  // row) when the row matched, false when the condition did not hold.
  template <class BindExtra>
  Result<bool> conditional_update(Lease& lease, StatementId id, const char* op,
                                  BindExtra bind_extra) {
    SHARDLINE_RETURN_IF_ERROR(check_writable(lease, op));
    std::lock_guard lock(mu_);
    SHARDLINE_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(id, op));
    Reset reset(stmt);
    Binder b(stmt);
    b.text(1, application_).text(2, lease.lease_key).integer(3, lease.lease_counter);
    bind_extra(b);
    if (b.rc() != SQLITE_OK) return error(b.rc(), op, lease.lease_key);
    int rc = step(stmt);
    if (rc == SQLITE_DONE) return false;  // the condition did not hold: nothing written
    if (rc != SQLITE_ROW) return error(rc, op, lease.lease_key);
    Result<Lease> stored = read_lease(stmt, op);
    // Run the statement to completion: the write is committed when it is DONE.
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return error(rc, op, lease.lease_key);
    if (sqlite3_changes(db_) != 1) {
      return Status::internal(describe() + ": " + op + "(" + lease.lease_key +
                              "): " + std::to_string(sqlite3_changes(db_)) + " rows changed");
    }
    if (!stored.ok()) return std::move(stored).status();
    lease = std::move(stored).value();
    return true;
  }

  // The cached statement `id`, prepared on first use.
  Result<sqlite3_stmt*> statement(StatementId id, std::string_view op) {
    sqlite3_stmt*& cached = statements_[id];
    if (cached != nullptr) return cached;
    int rc = SQLITE_OK;
    const auto deadline = std::chrono::steady_clock::now() + kBusyTimeout;
    for (int pause_ms = 1;; pause_ms = std::min(pause_ms * 2, 50)) {
      rc =
          sqlite3_prepare_v3(db_, kStatements[id], -1, SQLITE_PREPARE_PERSISTENT, &cached, nullptr);
      if (!is_busy(rc) || std::chrono::steady_clock::now() >= deadline) break;
      sqlite3_sleep(pause_ms);
    }
    if (rc != SQLITE_OK) {
      Status s = error(rc, op);
      sqlite3_finalize(cached);
      cached = nullptr;
      return s;
    }
    return cached;
  }

  // The first sqlite3_step() of a statement, retried while the database stays busy (SQLite
  // already waited kBusyTimeout in its busy handler, except for the cases where it returns
  // SQLITE_BUSY at once to avoid a deadlock).
  int step(sqlite3_stmt* stmt) {
    const auto deadline = std::chrono::steady_clock::now() + kBusyTimeout;
    for (int pause_ms = 1;; pause_ms = std::min(pause_ms * 2, 50)) {
      const int rc = sqlite3_step(stmt);
      if (!is_busy(rc) || std::chrono::steady_clock::now() >= deadline) return rc;
      sqlite3_reset(stmt);
      sqlite3_sleep(pause_ms);
    }
  }

  // Runs one statement that returns nothing the caller needs (pragmas, transactions).
  Status exec(const char* sql, std::string_view op) {
    sqlite3_stmt* stmt = nullptr;
    int rc = SQLITE_OK;
    const auto deadline = std::chrono::steady_clock::now() + kBusyTimeout;
    for (int pause_ms = 1;; pause_ms = std::min(pause_ms * 2, 50)) {
      rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
      if (!is_busy(rc) || std::chrono::steady_clock::now() >= deadline) break;
      sqlite3_sleep(pause_ms);
    }
    if (rc != SQLITE_OK) {
      Status s = error(rc, op);
      sqlite3_finalize(stmt);
      return s;
    }
    rc = step(stmt);
    while (rc == SQLITE_ROW) rc = sqlite3_step(stmt);
    Status s = rc == SQLITE_DONE ? Status() : error(rc, op);
    sqlite3_finalize(stmt);
    return s;
  }

  // Inside BEGIN IMMEDIATE: checks the schema version and creates the table.
  Status create_schema() {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return error(rc, "initialize");
    rc = step(stmt);
    const std::int64_t version = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    if (rc != SQLITE_ROW) {
      Status s = error(rc, "initialize");
      sqlite3_finalize(stmt);
      return s;
    }
    sqlite3_finalize(stmt);
    if (version > kSchemaVersion) {
      return Status::failed_precondition(
          describe() + ": schema version " + std::to_string(version) + " is newer than " +
          std::to_string(kSchemaVersion) + ", the one this shardline knows: upgrade shardline");
    }
    SHARDLINE_RETURN_IF_ERROR(exec(kCreateSchema, "initialize"));
    if (version < kSchemaVersion) {
      SHARDLINE_RETURN_IF_ERROR(exec("PRAGMA user_version = 1", "initialize"));
    }
    return {};
  }

  // The lease in the current row of a statement that selects the lease columns.
  Result<Lease> read_lease(sqlite3_stmt* stmt, std::string_view op) {
    auto text = [stmt](int col) {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      const int n = sqlite3_column_bytes(stmt, col);
      return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(n));
    };
    auto is_null = [stmt](int col) { return sqlite3_column_type(stmt, col) == SQLITE_NULL; };
    Lease l;
    l.lease_key = text(0);
    auto malformed = [&](std::string_view what) {
      return Status::internal(describe() + ": " + std::string(op) + ": lease '" + l.lease_key +
                              "': " + std::string(what));
    };
    for (int col : {2, 4, 6, 8}) {
      if (sqlite3_column_type(stmt, col) != SQLITE_INTEGER) {
        return malformed(std::string(sqlite3_column_name(stmt, col)) + " is not an integer");
      }
    }
    l.lease_owner = text(1);
    l.lease_counter = sqlite3_column_int64(stmt, 2);
    l.checkpoint = text(3);
    l.checkpoint_sub_sequence_number = sqlite3_column_int64(stmt, 4);
    if (!is_null(5)) l.pending_checkpoint = text(5);
    l.pending_checkpoint_sub_sequence_number = sqlite3_column_int64(stmt, 6);
    if (!is_null(7)) {
      const void* p = sqlite3_column_blob(stmt, 7);
      const int n = sqlite3_column_bytes(stmt, 7);
      l.pending_checkpoint_state =
          p == nullptr ? std::string()
                       : std::string(static_cast<const char*>(p), static_cast<std::size_t>(n));
    }
    l.owner_switches_since_checkpoint = sqlite3_column_int64(stmt, 8);
    l.parent_shard_ids = split_ids(text(9));
    l.child_shard_ids = split_ids(text(10));
    if (!is_null(11) && !is_null(12)) {
      Result<HashKey> start = HashKey::parse_decimal(text(11));
      Result<HashKey> end = HashKey::parse_decimal(text(12));
      if (!start.ok() || !end.ok()) {
        return malformed("bad hash key range '" + text(11) + "'..'" + text(12) + "'");
      }
      l.hash_key_range = HashKeyRange{*start, *end};
    }
    l.checkpoint_owner = text(13);
    return normalize_lease(std::move(l));
  }

  // The Status for a failed SQLite call: the file, the operation and SQLite's message.
  Status error(int rc, std::string_view op, std::string_view key = {}) const {
    std::string message = describe() + ": " + std::string(op);
    if (!key.empty()) message += "(" + std::string(key) + ")";
    message += ": ";
    message += sqlite3_errmsg(db_);
    message += " (";
    message += sqlite3_errstr(rc);
    message += ")";
    switch (rc & 0xff) {
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return {StatusCode::kUnavailable, std::move(message), RetryClass::kSameCall};
      case SQLITE_CANTOPEN:
      case SQLITE_IOERR:
      case SQLITE_PROTOCOL:
        return Status::unavailable(std::move(message));
      case SQLITE_FULL:
      case SQLITE_NOMEM:
        return Status::resource_exhausted(std::move(message));
      case SQLITE_READONLY:
      case SQLITE_PERM:
      case SQLITE_AUTH:
        return {StatusCode::kPermissionDenied, std::move(message)};
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
        return Status::data_loss(std::move(message));
      case SQLITE_ERROR:
        if (std::string_view(sqlite3_errmsg(db_)).starts_with("no such table")) {
          return Status::not_found(std::move(message) + "; initialize() creates the table");
        }
        return Status::internal(std::move(message));
      default:
        return Status::internal(std::move(message));
    }
  }

  std::mutex mu_;
  sqlite3* db_;
  const std::string path_;
  const std::string application_;
  std::array<sqlite3_stmt*, kStatementCount> statements_{};
};

}  // namespace

Result<std::unique_ptr<LeaseStore>> make_sqlite_lease_store(const std::string& path,
                                                            const std::string& application) {
  if (path.empty()) return Status::invalid_argument("the SQLite lease store needs a file path");
  if (application.empty()) {
    return Status::invalid_argument("sqlite:" + path + ": the application name is empty");
  }
  return SqliteLeaseStore::open(path, application);
}

}  // namespace shardline
