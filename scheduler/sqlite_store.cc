#include "scheduler/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>

#include "common/log.h"
#include "scheduler/secret.h"

namespace dx::scheduler {

using nlohmann::json;

// Prepared statements kept for reuse, by SQL text: preparing one costs more than running most
// of the store's statements. A statement serves one Query at a time; at most kMaxIdle are kept.
class SqliteStore::Statements {
 public:
  explicit Statements(sqlite3* db) : db_(db) {}
  ~Statements() {
    for (auto& [sql, list] : idle_) {
      for (sqlite3_stmt* stmt : list) sqlite3_finalize(stmt);
    }
  }
  Statements(const Statements&) = delete;
  Statements& operator=(const Statements&) = delete;

  sqlite3* db() const { return db_; }
  // A statement for `sql` (a kept one, or prepared now): an SQLite result code.
  int Take(const std::string& sql, sqlite3_stmt** out) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = idle_.find(sql);
      if (it != idle_.end() && !it->second.empty()) {
        *out = it->second.back();
        it->second.pop_back();
        --idle_count_;
        return SQLITE_OK;
      }
    }
    return sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, out, nullptr);
  }
  // Takes back a statement from Take, reset and without bindings.
  void Give(const std::string& sql, sqlite3_stmt* stmt) {
    if (stmt == nullptr) return;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_count_ >= kMaxIdle) {
      sqlite3_finalize(stmt);
      return;
    }
    idle_[sql].push_back(stmt);
    ++idle_count_;
  }

 private:
  static constexpr size_t kMaxIdle = 256;
  sqlite3* db_;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle_;  // guarded by mu_
  size_t idle_count_ = 0;                                             // guarded by mu_
};

// A prepared statement with positional binding and typed column reads.
class SqliteStore::Query {
 public:
  Query(Statements& statements, const char* sql)
      : statements_(statements), db_(statements.db()), sql_(sql) {
    rc_ = statements_.Take(sql_, &stmt_);
  }
  ~Query() { statements_.Give(sql_, stmt_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query& Bind(const std::string& v) {
    sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& Bind(int64_t v) {
    sqlite3_bind_int64(stmt_, ++n_, v);
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false, else error.
  Result<bool> Step() {
    if (rc_ != SQLITE_OK) return Error();
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Error();
  }
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }
  std::string Text(int i) {
    const unsigned char* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string();
  }
  int64_t Int(int i) { return sqlite3_column_int64(stmt_, i); }

 private:
  Status Error() {
    std::string msg = std::string("store: ") + sqlite3_errmsg(db_);
    int code = sqlite3_errcode(db_);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return Unavailable(msg);
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return DataLoss(msg);
    return Internal(msg);
  }
  Statements& statements_;
  sqlite3* db_;
  std::string sql_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
  int n_ = 0;
};

namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS sources (
  name TEXT PRIMARY KEY, spec TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS catalog_entries (
  name TEXT PRIMARY KEY, status TEXT NOT NULL, spec TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
  name TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  online INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,
  address TEXT NOT NULL DEFAULT '', version TEXT NOT NULL DEFAULT '',
  target_dbms TEXT NOT NULL DEFAULT '', bandwidth_kbps INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS agent_sessions (
  agent TEXT PRIMARY KEY, credential TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
  name TEXT PRIMARY KEY, agent TEXT NOT NULL, entry TEXT NOT NULL, spec TEXT NOT NULL,
  status TEXT NOT NULL, next_due INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0, resync_pending INTEGER NOT NULL DEFAULT 0,
  manual_pending INTEGER NOT NULL DEFAULT 0, acked_seq INTEGER NOT NULL DEFAULT 0,
  watermark TEXT NOT NULL DEFAULT '', last_ok_at INTEGER NOT NULL DEFAULT 0,
  application_id TEXT);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL, trigger TEXT NOT NULL,
  status TEXT NOT NULL, started_at INTEGER NOT NULL, finished_at INTEGER NOT NULL DEFAULT 0,
  rows INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS runs_by_subscription ON runs(subscription, id);
CREATE TABLE IF NOT EXISTS delivered_files (
  subscription TEXT NOT NULL, path TEXT NOT NULL, agent TEXT NOT NULL, agent_path TEXT NOT NULL,
  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
  PRIMARY KEY (subscription, path));
CREATE INDEX IF NOT EXISTS delivered_by_content ON delivered_files(agent, sha256);
CREATE TABLE IF NOT EXISTS file_receipts (
  run_id INTEGER NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
  outcome TEXT NOT NULL, error TEXT NOT NULL, bytes_sent INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS receipts_by_run ON file_receipts(run_id);
CREATE INDEX IF NOT EXISTS delivered_by_size ON delivered_files(agent, size);
CREATE TABLE IF NOT EXISTS file_failures (
  subscription TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
  error TEXT NOT NULL, attempts INTEGER NOT NULL, next_try_ms INTEGER NOT NULL,
  PRIMARY KEY (subscription, path));
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL, origin TEXT NOT NULL,
  prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
)SQL";

// Reconciliation (对账): state per subscription, counts per run.
constexpr const char* kReconcileSchema = R"SQL(
CREATE TABLE IF NOT EXISTS reconcile_state (
  subscription TEXT PRIMARY KEY, pending INTEGER NOT NULL DEFAULT 0,
  next_due INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
  requested_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS reconcile_runs (
  run_id INTEGER PRIMARY KEY, dry_run INTEGER NOT NULL, compared INTEGER NOT NULL,
  target_rows INTEGER NOT NULL, missing INTEGER NOT NULL, extra INTEGER NOT NULL,
  changed INTEGER NOT NULL, repaired INTEGER NOT NULL);
)SQL";

// The governance records (issue 7): identities, catalog versions, applications, demands,
// error reports and notices. Each keeps its record as JSON with the columns it is looked up by.
constexpr const char* kGovernanceSchema = R"SQL(
CREATE TABLE IF NOT EXISTS organisations (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, organisation TEXT NOT NULL, role TEXT NOT NULL, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens (
  id TEXT PRIMARY KEY, user TEXT NOT NULL, secret_hash TEXT NOT NULL, spec TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS api_tokens_by_user ON api_tokens(user);
CREATE TABLE IF NOT EXISTS catalog_versions (
  name TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
  organisation TEXT NOT NULL, spec TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS applications (
  id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL, organisation TEXT NOT NULL,
  state TEXT NOT NULL, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS demands (
  id INTEGER PRIMARY KEY AUTOINCREMENT, organisation TEXT NOT NULL, state TEXT NOT NULL,
  spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL, state TEXT NOT NULL,
  spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notices (
  id INTEGER PRIMARY KEY AUTOINCREMENT, organisation TEXT NOT NULL, spec TEXT NOT NULL);
)SQL";

int64_t NowSeconds() { return static_cast<int64_t>(time(nullptr)); }

std::string AuditText(int64_t at, const AuditEvent& e, const std::string& prev) {
  return std::to_string(at) + "\x1f" + e.actor + "\x1f" + e.action + "\x1f" + e.target + "\x1f" +
         e.result + "\x1f" + e.from + "\x1f" + prev;
}

// Records written since the chain is keyed also cover the actor's role and organisation.
// Schemes: "" (first release: AuditText, SHA-256), "sha256" (AuditTextV2, SHA-256: a store
// opened without a key, tests and tools), "hmac" (AuditTextV2, HMAC-SHA256 under the key).
std::string AuditTextV2(const AuditEvent& e, const std::string& prev) {
  return AuditText(e.at_ms, e, prev) + "\x1f" + e.role + "\x1f" + e.organisation;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  // Create the file ourselves, 0600: SQLite would use 0644, and gives its -wal and -shm files
  // the database file's mode.
  const bool on_disk = path != ":memory:" && path.rfind("file:", 0) != 0;
  struct stat st {};
  if (on_disk) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return InvalidArgument("cannot open store " + path + ": " + std::strerror(errno));
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
      LOG_WARN("store " << path << " was readable by group or others; now mode 0600");
      (void)fchmod(fd, 0600);
    }
    ::close(fd);
    for (const char* suffix : {"-wal", "-shm"}) {
      std::string side = path + suffix;
      if (::stat(side.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
        (void)::chmod(side.c_str(), 0600);
      }
    }
  }
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return InvalidArgument("cannot open store " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  DX_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  DX_RETURN_IF_ERROR(store->Migrate());
  if (!on_disk) return store;
  store->path_ = path;
  if (::stat(path.c_str(), &st) != 0) {
    return InvalidArgument("cannot stat store " + path + ": " + std::strerror(errno));
  }
  store->dev_ = st.st_dev;
  store->ino_ = st.st_ino;
  return store;
}

Status SqliteStore::CheckFileIdentity() const {
  if (path_.empty()) return Status::Ok();
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return DataLoss("the store " + path_ + " was deleted while the scheduler had it open (" +
                    std::strerror(errno) + ")");
  }
  if (static_cast<uint64_t>(st.st_dev) != dev_ || static_cast<uint64_t>(st.st_ino) != ino_) {
    return DataLoss("the store " + path_ +
                    " was replaced by another file while the scheduler had it open");
  }
  return Status::Ok();
}

SqliteStore::SqliteStore(sqlite3* db) : db_(db), statements_(std::make_unique<Statements>(db)) {}

SqliteStore::~SqliteStore() {
  statements_.reset();  // finalized before the connection closes
  sqlite3_close(db_);
}

Status SqliteStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return Internal("store: " + msg);
  }
  return Status::Ok();
}

Status SqliteStore::Migrate() {
  DX_RETURN_IF_ERROR(Exec(kSchema));
  DX_RETURN_IF_ERROR(Exec(kReconcileSchema));
  // Subscription state added after the first release.
  DX_RETURN_IF_ERROR(
      AddColumnIfMissing("subscriptions", "stopped_error", "TEXT NOT NULL DEFAULT ''"));
  DX_RETURN_IF_ERROR(
      AddColumnIfMissing("subscriptions", "stopped_at", "INTEGER NOT NULL DEFAULT 0"));
  DX_RETURN_IF_ERROR(AddColumnIfMissing("subscriptions", "resync_id", "TEXT NOT NULL DEFAULT ''"));
  DX_RETURN_IF_ERROR(
      AddColumnIfMissing("subscriptions", "caught_up_ms", "INTEGER NOT NULL DEFAULT 0"));
  DX_RETURN_IF_ERROR(AddColumnIfMissing("runs", "note", "TEXT NOT NULL DEFAULT ''"));
  DX_RETURN_IF_ERROR(
      AddColumnIfMissing("delivered_files", "ctime_ns", "INTEGER NOT NULL DEFAULT 0"));
  DX_RETURN_IF_ERROR(AddColumnIfMissing("delivered_files", "inode", "INTEGER NOT NULL DEFAULT 0"));
  DX_RETURN_IF_ERROR(MigrateGovernance());
  DX_RETURN_IF_ERROR(AddColumnIfMissing("agents", "disabled", "INTEGER NOT NULL DEFAULT 0"));
  return Status::Ok();
}

Status SqliteStore::MigrateGovernance() {
  DX_RETURN_IF_ERROR(Exec(kGovernanceSchema));
  DX_RETURN_IF_ERROR(AddColumnIfMissing("agents", "organisation", "TEXT NOT NULL DEFAULT ''"));
  for (const char* column :
       {"halted_by", "halted_org", "halted_role", "halt_reason", "deletion_detail"}) {
    DX_RETURN_IF_ERROR(AddColumnIfMissing("subscriptions", column, "TEXT NOT NULL DEFAULT ''"));
  }
  for (const char* column : {"halted_at", "deletion_confirmed_at"}) {
    DX_RETURN_IF_ERROR(AddColumnIfMissing("subscriptions", column, "INTEGER NOT NULL DEFAULT 0"));
  }
  for (const char* column : {"role", "organisation", "scheme"}) {
    DX_RETURN_IF_ERROR(AddColumnIfMissing("audit", column, "TEXT NOT NULL DEFAULT ''"));
  }
  return Status::Ok();
}

Status SqliteStore::AddColumnIfMissing(const std::string& table, const std::string& column,
                                       const std::string& declaration) {
  {
    Query q(*statements_,
            ("SELECT count(*) FROM pragma_table_info('" + table + "') WHERE name = ?").c_str());
    q.Bind(column);
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row && q.Int(0) > 0) return Status::Ok();
  }
  return Exec("ALTER TABLE " + table + " ADD COLUMN " + column + " " + declaration);
}

Status SqliteStore::InTransaction(const std::function<Status()>& body) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (tx_depth_ > 0) return body();
  DX_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  ++tx_depth_;
  Status st = body();
  --tx_depth_;
  if (st.ok()) {
    st = Exec("COMMIT");
    if (st.ok()) {
      WriteAuditHead();  // the audit records of the transaction are durable now
      PublishChanges();  // the dispatcher sees the transaction's changes together
      return st;
    }
  }
  (void)Exec("ROLLBACK");
  pending_head_.reset();
  tx_changed_.clear();
  tx_changed_all_ = false;
  return st;
}

Status SqliteStore::PutSource(const Source& s) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO sources(name, spec, updated_at) VALUES(?,?,?) "
               "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec, updated_at=excluded.updated_at")
      .Bind(s.name)
      .Bind(ToJson(s).dump())
      .Bind(NowSeconds())
      .Run();
}

Result<std::optional<Source>> SqliteStore::GetSource(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM sources WHERE name=?");
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<Source>();
  Source s;
  FromJson(json::parse(q.Text(0)), &s);
  return std::optional<Source>(s);
}

Result<std::vector<Source>> SqliteStore::ListSources() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM sources ORDER BY name");
  std::vector<Source> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Source s;
    FromJson(json::parse(q.Text(0)), &s);
    out.push_back(s);
  }
  return out;
}

Status SqliteStore::PutCatalogEntry(const CatalogEntry& e) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO catalog_entries(name, status, spec, updated_at) VALUES(?,?,?,?) "
               "ON CONFLICT(name) DO UPDATE SET status=excluded.status, spec=excluded.spec, "
               "updated_at=excluded.updated_at")
      .Bind(e.name)
      .Bind(e.status)
      .Bind(ToJson(e).dump())
      .Bind(NowSeconds())
      .Run();
}

Result<std::optional<CatalogEntry>> SqliteStore::GetCatalogEntry(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM catalog_entries WHERE name=?");
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<CatalogEntry>();
  CatalogEntry e;
  if (!FromJson(json::parse(q.Text(0)), &e)) return DataLoss("store: bad catalog entry " + name);
  return std::optional<CatalogEntry>(e);
}

Result<std::vector<CatalogEntry>> SqliteStore::ListCatalogEntries() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM catalog_entries ORDER BY name");
  std::vector<CatalogEntry> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    CatalogEntry e;
    FromJson(json::parse(q.Text(0)), &e);
    out.push_back(e);
  }
  return out;
}

namespace {
constexpr const char* kAgentColumns =
    "name, secret_hash, description, online, last_seen, address, version, target_dbms, "
    "bandwidth_kbps, organisation, disabled";
}

Status SqliteStore::PutAgent(const AgentRecord& a) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO agents(name, secret_hash, description, bandwidth_kbps, organisation) "
               "VALUES(?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
               "secret_hash=excluded.secret_hash, description=excluded.description, "
               "bandwidth_kbps=excluded.bandwidth_kbps, organisation=excluded.organisation")
      .Bind(a.name)
      .Bind(a.secret_hash)
      .Bind(a.description)
      .Bind(a.bandwidth_kbps)
      .Bind(a.organisation)
      .Run();
}

Result<std::optional<AgentRecord>> SqliteStore::GetAgent(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          (std::string("SELECT ") + kAgentColumns + " FROM agents WHERE name=?").c_str());
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<AgentRecord>();
  AgentRecord a{q.Text(0), q.Text(1), q.Text(2), q.Int(3) != 0, q.Int(4),      q.Text(5),
                q.Text(6), q.Text(7), q.Int(8),  q.Text(9),     q.Int(10) != 0};
  return std::optional<AgentRecord>(a);
}

Result<std::vector<AgentRecord>> SqliteStore::ListAgents() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          (std::string("SELECT ") + kAgentColumns + " FROM agents ORDER BY name").c_str());
  std::vector<AgentRecord> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(AgentRecord{q.Text(0), q.Text(1), q.Text(2), q.Int(3) != 0, q.Int(4), q.Text(5),
                              q.Text(6), q.Text(7), q.Int(8), q.Text(9), q.Int(10) != 0});
  }
  return out;
}

Status SqliteStore::SetAgentOnline(const std::string& name, bool online, int64_t seen_at,
                                   const std::string& address, const std::string& version,
                                   const std::string& target_dbms) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "UPDATE agents SET online=?, last_seen=?, address=?, version=?, "
               "target_dbms=? WHERE name=?")
      .Bind(online ? 1 : 0)
      .Bind(seen_at)
      .Bind(address)
      .Bind(version)
      .Bind(target_dbms)
      .Bind(name)
      .Run();
}

Status SqliteStore::TouchAgent(const std::string& name, int64_t seen_at) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "UPDATE agents SET last_seen=? WHERE name=?")
      .Bind(seen_at)
      .Bind(name)
      .Run();
}

Status SqliteStore::TouchAgents(const std::vector<std::pair<std::string, int64_t>>& seen) {
  return InTransaction([&]() -> Status {
    for (const auto& [name, at] : seen) DX_RETURN_IF_ERROR(TouchAgent(name, at));
    return Status::Ok();
  });
}

Status SqliteStore::MarkAllAgentsOffline() { return Exec("UPDATE agents SET online=0"); }

Status SqliteStore::SetAgentDisabled(const std::string& name, bool disabled) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  DX_RETURN_IF_ERROR(Query(*statements_, "UPDATE agents SET disabled=? WHERE name=?")
                         .Bind(disabled ? 1 : 0)
                         .Bind(name)
                         .Run());
  if (sqlite3_changes(db_) == 0) return NotFound("no agent named '" + name + "'");
  return Status::Ok();
}

Status SqliteStore::DeleteAgent(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return InTransaction([&]() -> Status {
    DX_RETURN_IF_ERROR(Query(*statements_, "DELETE FROM agents WHERE name=?").Bind(name).Run());
    if (sqlite3_changes(db_) == 0) return NotFound("no agent named '" + name + "'");
    return Query(*statements_, "DELETE FROM agent_sessions WHERE agent=?").Bind(name).Run();
  });
}

Result<std::string> SqliteStore::GetAgentSessionCredential(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT credential FROM agent_sessions WHERE agent=?");
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Text(0) : std::string();
}

Status SqliteStore::SetAgentSessionCredential(const std::string& name,
                                              const std::string& secret_hash,
                                              const std::string& credential) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO agent_sessions(agent, credential) SELECT ?, ? WHERE EXISTS "
               "(SELECT 1 FROM agents WHERE name=? AND secret_hash=?) "
               "ON CONFLICT(agent) DO UPDATE SET credential=excluded.credential")
      .Bind(name)
      .Bind(credential)
      .Bind(name)
      .Bind(secret_hash)
      .Run();
}

Status SqliteStore::PutSubscriptionDefinition(const Subscription& s) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(s.name);
  return Query(*statements_,
               "INSERT INTO subscriptions(name, agent, entry, spec, status) VALUES(?,?,?,?,?) "
               "ON CONFLICT(name) DO UPDATE SET agent=excluded.agent, entry=excluded.entry, "
               "spec=excluded.spec, status=excluded.status")
      .Bind(s.name)
      .Bind(s.agent)
      .Bind(s.entry)
      .Bind(ToJson(s).dump())
      .Bind(s.status)
      .Run();
}

namespace {
constexpr const char* kSubscriptionColumns =
    "spec, next_due, failures, resync_pending, manual_pending, acked_seq, watermark, last_ok_at, "
    "stopped_error, stopped_at, resync_id, caught_up_ms, halted_by, halted_org, halted_role, "
    "halt_reason, halted_at, deletion_confirmed_at, deletion_detail";

Subscription ReadSubscription(const std::string& spec, int64_t next_due, int64_t failures,
                              int64_t resync, int64_t manual, int64_t acked,
                              const std::string& watermark, int64_t last_ok) {
  Subscription s;
  FromJson(json::parse(spec), &s);
  s.next_due = next_due;
  s.failures = static_cast<int>(failures);
  s.resync_pending = resync != 0;
  s.manual_pending = manual != 0;
  s.acked_seq = static_cast<uint64_t>(acked);
  s.watermark = watermark;
  s.last_ok_at = last_ok;
  return s;
}
}  // namespace

Result<std::optional<Subscription>> SqliteStore::GetSubscription(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(
      *statements_,
      (std::string("SELECT ") + kSubscriptionColumns + " FROM subscriptions WHERE name=?").c_str());
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<Subscription>();
  Subscription s = ReadSubscription(q.Text(0), q.Int(1), q.Int(2), q.Int(3), q.Int(4), q.Int(5),
                                    q.Text(6), q.Int(7));
  s.stopped_error = q.Text(8);
  s.stopped_at = q.Int(9);
  s.resync_id = q.Text(10);
  s.caught_up_ms = q.Int(11);
  ReadGovernanceState(q, 12, &s);
  return std::optional<Subscription>(std::move(s));
}

Result<std::vector<Subscription>> SqliteStore::ListSubscriptions() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          (std::string("SELECT ") + kSubscriptionColumns + " FROM subscriptions ORDER BY name")
              .c_str());
  std::vector<Subscription> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Subscription s = ReadSubscription(q.Text(0), q.Int(1), q.Int(2), q.Int(3), q.Int(4), q.Int(5),
                                      q.Text(6), q.Int(7));
    s.stopped_error = q.Text(8);
    s.stopped_at = q.Int(9);
    s.resync_id = q.Text(10);
    s.caught_up_ms = q.Int(11);
    ReadGovernanceState(q, 12, &s);
    out.push_back(std::move(s));
  }
  return out;
}

Status SqliteStore::SetSchedule(const std::string& name, int64_t next_due, int failures) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_, "UPDATE subscriptions SET next_due=?, failures=? WHERE name=?")
      .Bind(next_due)
      .Bind(static_cast<int64_t>(failures))
      .Bind(name)
      .Run();
}

Status SqliteStore::SetPending(const std::string& name, bool manual, bool resync) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_,
               "UPDATE subscriptions SET manual_pending=?, resync_pending=? WHERE name=?")
      .Bind(manual ? 1 : 0)
      .Bind(resync ? 1 : 0)
      .Bind(name)
      .Run();
}

Status SqliteStore::SetProgress(const std::string& name, uint64_t acked_seq,
                                const std::string& watermark) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_, "UPDATE subscriptions SET acked_seq=?, watermark=? WHERE name=?")
      .Bind(static_cast<int64_t>(acked_seq))
      .Bind(watermark)
      .Bind(name)
      .Run();
}

Status SqliteStore::SetLastSuccess(const std::string& name, int64_t at) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_, "UPDATE subscriptions SET last_ok_at=? WHERE name=?")
      .Bind(at)
      .Bind(name)
      .Run();
}

Status SqliteStore::SetStopped(const std::string& name, const std::string& error, int64_t at) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_, "UPDATE subscriptions SET stopped_error=?, stopped_at=? WHERE name=?")
      .Bind(error)
      .Bind(error.empty() ? int64_t{0} : at)
      .Bind(name)
      .Run();
}

Status SqliteStore::RequestResync(const std::string& name, bool manual) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_,
               "UPDATE subscriptions SET resync_pending=1, manual_pending=?, "
               "resync_id=lower(hex(randomblob(8))) WHERE name=?")
      .Bind(manual ? 1 : 0)
      .Bind(name)
      .Run();
}

Status SqliteStore::ClearManualPending(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_, "UPDATE subscriptions SET manual_pending=0 WHERE name=?")
      .Bind(name)
      .Run();
}

Status SqliteStore::FinishResync(const std::string& name, const std::string& resync_id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_,
               "UPDATE subscriptions SET resync_pending=0 WHERE name=? AND resync_id=?")
      .Bind(name)
      .Bind(resync_id)
      .Run();
}

Status SqliteStore::SetCaughtUp(const std::string& name, int64_t run_started_ms) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  return Query(*statements_,
               "UPDATE subscriptions SET caught_up_ms=max(caught_up_ms, ?) WHERE name=?")
      .Bind(run_started_ms)
      .Bind(name)
      .Run();
}

Result<int64_t> SqliteStore::StartRun(const RunRecord& r) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  DX_RETURN_IF_ERROR(Query(*statements_,
                           "INSERT INTO runs(subscription, trigger, status, started_at) "
                           "VALUES(?,?,?,?)")
                         .Bind(r.subscription)
                         .Bind(r.trigger)
                         .Bind(r.status)
                         .Bind(r.started_at)
                         .Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status SqliteStore::FinishRun(const RunRecord& r) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "UPDATE runs SET status=?, finished_at=?, rows=?, bytes=?, batches=?, "
               "error=?, note=? WHERE id=?")
      .Bind(r.status)
      .Bind(r.finished_at)
      .Bind(r.rows)
      .Bind(r.bytes)
      .Bind(r.batches)
      .Bind(r.error)
      .Bind(r.note)
      .Bind(r.id)
      .Run();
}

namespace {
constexpr const char* kRunColumns =
    "id, subscription, trigger, status, started_at, finished_at, rows, bytes, batches, error, "
    "note";
}  // namespace

RunRecord SqliteStore::RunFrom(Query& q) {
  return RunRecord{q.Int(0), q.Text(1), q.Text(2), q.Text(3), q.Int(4),  q.Int(5),
                   q.Int(6), q.Int(7),  q.Int(8),  q.Text(9), q.Text(10)};
}

Result<std::vector<RunRecord>> SqliteStore::ListRuns(const std::string& subscription, int limit) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs" +
                    (subscription.empty() ? "" : " WHERE subscription=?") +
                    " ORDER BY id DESC LIMIT ?";
  Query q(*statements_, sql.c_str());
  if (!subscription.empty()) q.Bind(subscription);
  q.Bind(static_cast<int64_t>(limit));
  std::vector<RunRecord> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(RunFrom(q));
  }
  return out;
}

Result<std::optional<RunRecord>> SqliteStore::LastRun(const std::string& subscription) {
  DX_ASSIGN_OR_RETURN(auto runs, ListRuns(subscription, 1));
  if (runs.empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(runs[0]);
}

Result<std::optional<RunRecord>> SqliteStore::GetRun(int64_t id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, (std::string("SELECT ") + kRunColumns + " FROM runs WHERE id=?").c_str());
  q.Bind(id);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<RunRecord>();
  return std::optional<RunRecord>(RunFrom(q));
}

Result<int> SqliteStore::MarkInterruptedRuns(int64_t now_ms) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged("");
  // A manual run cut off by the stop runs again: its request was cleared when it started.
  DX_RETURN_IF_ERROR(
      Exec("UPDATE subscriptions SET manual_pending=1 WHERE name IN (SELECT subscription FROM runs "
           "WHERE status='running' AND trigger='manual')"));
  DX_RETURN_IF_ERROR(Query(*statements_,
                           "UPDATE runs SET status='interrupted', finished_at=?, "
                           "error='scheduler stopped during the run' WHERE status='running'")
                         .Bind(now_ms)
                         .Run());
  return sqlite3_changes(db_);
}

Result<std::vector<DeliveredFile>> SqliteStore::ListDeliveredFiles(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT subscription, path, agent_path, size, mtime_ns, sha256, ctime_ns, inode "
          "FROM delivered_files WHERE subscription=? ORDER BY path");
  q.Bind(sub);
  std::vector<DeliveredFile> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(
        {q.Text(0), q.Text(1), q.Text(2), q.Int(3), q.Int(4), q.Text(5), q.Int(6), q.Int(7)});
  }
  return out;
}

Result<std::optional<DeliveredFile>> SqliteStore::FindDeliveredContent(const std::string& agent,
                                                                       const std::string& sha) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT subscription, path, agent_path, size, mtime_ns, sha256 FROM delivered_files "
          "WHERE agent=? AND sha256=? LIMIT 1");
  q.Bind(agent).Bind(sha);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<DeliveredFile>();
  return std::optional<DeliveredFile>(
      DeliveredFile{q.Text(0), q.Text(1), q.Text(2), q.Int(3), q.Int(4), q.Text(5)});
}

Result<bool> SqliteStore::HasDeliveredLike(const std::string& agent, int64_t size,
                                           int64_t mtime_ns) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT 1 FROM delivered_files WHERE agent=? AND size=? AND mtime_ns=? LIMIT 1");
  q.Bind(agent).Bind(size).Bind(mtime_ns);
  return q.Step();
}

Status SqliteStore::PutDeliveredFile(const std::string& agent, const DeliveredFile& f) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO delivered_files(subscription, path, agent, agent_path, size, "
               "mtime_ns, sha256, ctime_ns, inode) VALUES(?,?,?,?,?,?,?,?,?) "
               "ON CONFLICT(subscription, path) DO "
               "UPDATE SET agent=excluded.agent, agent_path=excluded.agent_path, "
               "size=excluded.size, mtime_ns=excluded.mtime_ns, sha256=excluded.sha256, "
               "ctime_ns=excluded.ctime_ns, inode=excluded.inode")
      .Bind(f.subscription)
      .Bind(f.path)
      .Bind(agent)
      .Bind(f.agent_path)
      .Bind(f.size)
      .Bind(f.mtime_ns)
      .Bind(f.sha256)
      .Bind(f.ctime_ns)
      .Bind(f.inode)
      .Run();
}

Status SqliteStore::DeleteDeliveredFile(const std::string& sub, const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "DELETE FROM delivered_files WHERE subscription=? AND path=?")
      .Bind(sub)
      .Bind(path)
      .Run();
}

Status SqliteStore::ClearDeliveredFiles(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "DELETE FROM delivered_files WHERE subscription=?").Bind(sub).Run();
}

Status SqliteStore::AddReceipt(int64_t run_id, const FileReceipt& r) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO file_receipts(run_id, path, size, sha256, outcome, error, "
               "bytes_sent) VALUES(?,?,?,?,?,?,?)")
      .Bind(run_id)
      .Bind(r.path)
      .Bind(r.size)
      .Bind(r.sha256)
      .Bind(r.outcome)
      .Bind(r.error)
      .Bind(r.bytes_sent)
      .Run();
}

Result<std::vector<FileReceipt>> SqliteStore::ListReceipts(int64_t run_id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT path, size, sha256, outcome, error, bytes_sent FROM file_receipts "
          "WHERE run_id=? ORDER BY rowid");
  q.Bind(run_id);
  std::vector<FileReceipt> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Text(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Int(5)});
  }
  return out;
}

Result<std::vector<ReconcileState>> SqliteStore::ListReconcileStates() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT subscription, pending, next_due, failures, requested_at FROM reconcile_state");
  std::vector<ReconcileState> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(
        {q.Text(0), static_cast<int>(q.Int(1)), q.Int(2), static_cast<int>(q.Int(3)), q.Int(4)});
  }
  return out;
}

Result<std::vector<FileFailure>> SqliteStore::ListFileFailures(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT subscription, path, size, mtime_ns, ctime_ns, inode, error, attempts, "
          "next_try_ms FROM file_failures WHERE subscription=? ORDER BY path");
  q.Bind(sub);
  std::vector<FileFailure> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Text(0), q.Text(1), q.Int(2), q.Int(3), q.Int(4), q.Int(5), q.Text(6),
                   static_cast<int>(q.Int(7)), q.Int(8)});
  }
  return out;
}

Status SqliteStore::PutReconcileState(const ReconcileState& s) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(s.subscription);
  return Query(*statements_,
               "INSERT INTO reconcile_state(subscription, pending, next_due, failures, "
               "requested_at) VALUES(?,?,?,?,?) ON CONFLICT(subscription) DO UPDATE SET "
               "pending=excluded.pending, next_due=excluded.next_due, "
               "failures=excluded.failures, requested_at=excluded.requested_at")
      .Bind(s.subscription)
      .Bind(static_cast<int64_t>(s.pending))
      .Bind(s.next_due)
      .Bind(static_cast<int64_t>(s.failures))
      .Bind(s.requested_at)
      .Run();
}

Status SqliteStore::PutReconcileCounts(const ReconcileCounts& c) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT OR REPLACE INTO reconcile_runs(run_id, dry_run, compared, target_rows, "
               "missing, extra, changed, repaired) VALUES(?,?,?,?,?,?,?,?)")
      .Bind(c.run_id)
      .Bind(static_cast<int64_t>(c.dry_run ? 1 : 0))
      .Bind(c.compared)
      .Bind(c.target_rows)
      .Bind(c.missing)
      .Bind(c.extra)
      .Bind(c.changed)
      .Bind(c.repaired)
      .Run();
}

Result<std::optional<ReconcileCounts>> SqliteStore::GetReconcileCounts(int64_t run_id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT dry_run, compared, target_rows, missing, extra, changed, repaired "
          "FROM reconcile_runs WHERE run_id=?");
  q.Bind(run_id);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<ReconcileCounts>();
  return std::optional<ReconcileCounts>(ReconcileCounts{run_id, q.Int(0) != 0, q.Int(1), q.Int(2),
                                                        q.Int(3), q.Int(4), q.Int(5), q.Int(6)});
}

Status SqliteStore::PutFileFailure(const FileFailure& f) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO file_failures(subscription, path, size, mtime_ns, ctime_ns, inode, "
               "error, attempts, next_try_ms) VALUES(?,?,?,?,?,?,?,?,?) "
               "ON CONFLICT(subscription, path) DO UPDATE SET size=excluded.size, "
               "mtime_ns=excluded.mtime_ns, ctime_ns=excluded.ctime_ns, inode=excluded.inode, "
               "error=excluded.error, attempts=excluded.attempts, "
               "next_try_ms=excluded.next_try_ms")
      .Bind(f.subscription)
      .Bind(f.path)
      .Bind(f.size)
      .Bind(f.mtime_ns)
      .Bind(f.ctime_ns)
      .Bind(f.inode)
      .Bind(f.error)
      .Bind(static_cast<int64_t>(f.attempts))
      .Bind(f.next_try_ms)
      .Run();
}

Status SqliteStore::DeleteFileFailure(const std::string& sub, const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "DELETE FROM file_failures WHERE subscription=? AND path=?")
      .Bind(sub)
      .Bind(path)
      .Run();
}

Status SqliteStore::ClearFileFailures(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "DELETE FROM file_failures WHERE subscription=?").Bind(sub).Run();
}

Status SqliteStore::Audit(const AuditEvent& e) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query last(*statements_, "SELECT hash FROM audit ORDER BY id DESC LIMIT 1");
  DX_ASSIGN_OR_RETURN(bool has_last, last.Step());
  std::string prev = has_last ? last.Text(0) : "";
  const bool keyed = !audit_key_.empty();
  const std::string text = AuditTextV2(e, prev);
  std::string hash = keyed ? HmacSha256Hex(audit_key_, text) : Sha256Hex(text);
  DX_RETURN_IF_ERROR(Query(*statements_,
                           "INSERT INTO audit(at_ms, actor, action, target, result, origin, "
                           "prev_hash, hash, role, organisation, scheme) "
                           "VALUES(?,?,?,?,?,?,?,?,?,?,?)")
                         .Bind(e.at_ms)
                         .Bind(e.actor)
                         .Bind(e.action)
                         .Bind(e.target)
                         .Bind(e.result)
                         .Bind(e.from)
                         .Bind(prev)
                         .Bind(hash)
                         .Bind(e.role)
                         .Bind(e.organisation)
                         .Bind(std::string(keyed ? "hmac" : "sha256"))
                         .Run());
  if (!audit_head_path_.empty()) {
    pending_head_ = std::make_pair(static_cast<int64_t>(sqlite3_last_insert_rowid(db_)), hash);
    if (tx_depth_ == 0) WriteAuditHead();
  }
  return Status::Ok();
}

void SqliteStore::SetAuditKey(const std::string& key, const std::string& head_path) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  audit_key_ = key;
  audit_head_path_ = head_path;
  if (head_path.empty() || std::ifstream(head_path).good()) return;
  // The first keyed start: the head starts at the newest record there is.
  Query last(*statements_, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1");
  auto row = last.Step();
  if (row.ok() && row.value()) {
    pending_head_ = std::make_pair(last.Int(0), last.Text(1));
    WriteAuditHead();
  }
}

void SqliteStore::WriteAuditHead() {
  if (!pending_head_ || audit_head_path_.empty()) return;
  const std::string tmp = audit_head_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << pending_head_->first << " " << pending_head_->second << "\n";
    if (!out.flush()) {
      LOG_ERROR("cannot write the audit head " << tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), audit_head_path_.c_str()) != 0) {
    LOG_ERROR("cannot replace the audit head " << audit_head_path_);
    return;
  }
  pending_head_.reset();
}

Status SqliteStore::VerifyAudit() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT id, at_ms, actor, action, target, result, origin, prev_hash, hash, role, "
          "organisation, scheme FROM audit ORDER BY id");
  std::string prev;
  bool keyed_seen = false;
  int64_t last_id = 0;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    const int64_t id = q.Int(0);
    AuditEvent e{q.Int(1),  q.Text(2), q.Text(3), q.Text(4),
                 q.Text(5), q.Text(6), q.Text(9), q.Text(10)};
    const std::string scheme = q.Text(11);
    const std::string where = "audit record " + std::to_string(id);
    std::string want;
    if (scheme.empty()) {
      want = Sha256Hex(AuditText(e.at_ms, e, prev));
    } else if (scheme == "sha256") {
      want = Sha256Hex(AuditTextV2(e, prev));
    } else if (scheme == "hmac") {
      if (audit_key_.empty()) {
        return FailedPrecondition(where + " is keyed, and this store was opened without the key");
      }
      want = HmacSha256Hex(audit_key_, AuditTextV2(e, prev));
      keyed_seen = true;
    } else {
      return DataLoss(where + " has an unknown scheme '" + scheme + "'");
    }
    if (keyed_seen && scheme != "hmac") {
      return DataLoss(where + " is not keyed but follows keyed records: it was inserted by hand");
    }
    if (last_id != 0 && id != last_id + 1) {
      return DataLoss("audit records " + std::to_string(last_id + 1) + " to " +
                      std::to_string(id - 1) + " were deleted");
    }
    if (q.Text(7) != prev || want != q.Text(8)) {
      return DataLoss(where + " does not match the chain: it or the one before it was edited");
    }
    prev = q.Text(8);
    last_id = id;
  }
  // The newest record written, as noted outside the store: records deleted from the end of
  // the log leave the chain intact, but not the head.
  if (!audit_head_path_.empty()) {
    std::ifstream in(audit_head_path_);
    int64_t head_id = 0;
    std::string head_hash;
    if (in >> head_id >> head_hash) {
      if (head_id > last_id) {
        return DataLoss("audit records after " + std::to_string(last_id) + " (up to " +
                        std::to_string(head_id) + ", the newest written) were deleted");
      }
      Query head(*statements_, "SELECT hash FROM audit WHERE id=?");
      head.Bind(head_id);
      DX_ASSIGN_OR_RETURN(bool found, head.Step());
      if (!found || head.Text(0) != head_hash) {
        return DataLoss("audit record " + std::to_string(head_id) +
                        " is not the one written (the head kept outside the store differs)");
      }
    }
  }
  return Status::Ok();
}

// ---- Governance (issue 7) ----

void SqliteStore::ReadGovernanceState(Query& q, int first, Subscription* s) {
  s->halted_by = q.Text(first);
  s->halted_org = q.Text(first + 1);
  s->halted_role = q.Text(first + 2);
  s->halt_reason = q.Text(first + 3);
  s->halted_at = q.Int(first + 4);
  s->deletion_confirmed_at = q.Int(first + 5);
  s->deletion_detail = q.Text(first + 6);
}

template <typename T>
Result<std::vector<T>> SqliteStore::ReadSpecs(Query& q, const char* what) {
  std::vector<T> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    T item;
    json j = json::parse(q.Text(0), nullptr, false);
    if (!FromJson(j, &item)) return DataLoss(std::string("store: a bad ") + what + " record");
    out.push_back(std::move(item));
  }
  return out;
}

template <typename T>
Result<std::optional<T>> SqliteStore::ReadSpec(Query& q, const char* what) {
  DX_ASSIGN_OR_RETURN(auto all, ReadSpecs<T>(q, what));
  if (all.empty()) return std::optional<T>();
  return std::optional<T>(std::move(all.front()));
}

Result<std::vector<AuditRecord>> SqliteStore::ListAudit(const AuditFilter& f) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::string sql =
      "SELECT id, at_ms, actor, action, target, result, origin, role, organisation FROM audit "
      "WHERE 1=1";
  if (!f.actor.empty()) sql += " AND actor=?";
  if (!f.action.empty()) sql += " AND substr(action, 1, length(?))=?";
  if (!f.target.empty()) sql += " AND instr(target, ?) > 0";
  if (!f.organisation.empty()) sql += " AND organisation=?";
  if (f.since_ms > 0) sql += " AND at_ms >= ?";
  if (f.until_ms > 0) sql += " AND at_ms < ?";
  sql += " ORDER BY id DESC LIMIT ?";
  Query q(*statements_, sql.c_str());
  if (!f.actor.empty()) q.Bind(f.actor);
  if (!f.action.empty()) q.Bind(f.action).Bind(f.action);
  if (!f.target.empty()) q.Bind(f.target);
  if (!f.organisation.empty()) q.Bind(f.organisation);
  if (f.since_ms > 0) q.Bind(f.since_ms);
  if (f.until_ms > 0) q.Bind(f.until_ms);
  q.Bind(static_cast<int64_t>(f.limit));
  std::vector<AuditRecord> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Int(0), AuditEvent{q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5),
                                        q.Text(6), q.Text(7), q.Text(8)}});
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Status SqliteStore::PutOrganisation(const Organisation& o) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO organisations(name, spec) VALUES(?,?) "
               "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec")
      .Bind(o.name)
      .Bind(ToJson(o).dump())
      .Run();
}

Result<std::optional<Organisation>> SqliteStore::GetOrganisation(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM organisations WHERE name=?");
  q.Bind(name);
  return ReadSpec<Organisation>(q, "organisation");
}

Result<std::vector<Organisation>> SqliteStore::ListOrganisations() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM organisations ORDER BY name");
  return ReadSpecs<Organisation>(q, "organisation");
}

Status SqliteStore::PutUser(const User& u) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO users(name, organisation, role, spec) VALUES(?,?,?,?) "
               "ON CONFLICT(name) DO UPDATE SET organisation=excluded.organisation, "
               "role=excluded.role, spec=excluded.spec")
      .Bind(u.name)
      .Bind(u.organisation)
      .Bind(std::string(RoleName(u.role)))
      .Bind(ToJson(u).dump())
      .Run();
}

Result<std::optional<User>> SqliteStore::GetUser(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM users WHERE name=?");
  q.Bind(name);
  return ReadSpec<User>(q, "user");
}

Result<std::vector<User>> SqliteStore::ListUsers() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM users ORDER BY organisation, name");
  return ReadSpecs<User>(q, "user");
}

Status SqliteStore::PutApiToken(const ApiTokenRecord& t) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO api_tokens(id, user, secret_hash, spec) VALUES(?,?,?,?) "
               "ON CONFLICT(id) DO UPDATE SET spec=excluded.spec")
      .Bind(t.id)
      .Bind(t.user)
      .Bind(t.secret_hash)
      .Bind(ToJson(t).dump())
      .Run();
}

namespace {
Result<std::vector<ApiTokenRecord>> ReadTokens(Result<std::vector<ApiTokenRecord>> specs,
                                               std::vector<std::string> hashes) {
  if (!specs.ok()) return specs;
  for (size_t i = 0; i < specs->size() && i < hashes.size(); ++i) {
    (*specs)[i].secret_hash = hashes[i];
  }
  return specs;
}
}  // namespace

Result<std::optional<ApiTokenRecord>> SqliteStore::GetApiToken(const std::string& id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query hash(*statements_, "SELECT secret_hash FROM api_tokens WHERE id=?");
  hash.Bind(id);
  DX_ASSIGN_OR_RETURN(bool found, hash.Step());
  if (!found) return std::optional<ApiTokenRecord>();
  Query q(*statements_, "SELECT spec FROM api_tokens WHERE id=?");
  q.Bind(id);
  DX_ASSIGN_OR_RETURN(auto tokens,
                      ReadTokens(ReadSpecs<ApiTokenRecord>(q, "token"), {hash.Text(0)}));
  if (tokens.empty()) return std::optional<ApiTokenRecord>();
  return std::optional<ApiTokenRecord>(tokens.front());
}

Result<std::vector<ApiTokenRecord>> SqliteStore::ListApiTokens(const std::string& user) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  const std::string where = user.empty() ? "" : " WHERE user=?";
  Query q(*statements_, ("SELECT spec FROM api_tokens" + where + " ORDER BY rowid DESC").c_str());
  if (!user.empty()) q.Bind(user);
  return ReadSpecs<ApiTokenRecord>(q, "token");  // without the hashes: listings need none
}

Status SqliteStore::PutCatalogVersion(const CatalogVersion& v) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_,
               "INSERT INTO catalog_versions(name, version, status, organisation, spec) "
               "VALUES(?,?,?,?,?) ON CONFLICT(name, version) DO UPDATE SET "
               "status=excluded.status, organisation=excluded.organisation, spec=excluded.spec")
      .Bind(v.name)
      .Bind(static_cast<int64_t>(v.version))
      .Bind(v.status)
      .Bind(v.organisation)
      .Bind(ToJson(v).dump())
      .Run();
}

Result<std::optional<CatalogVersion>> SqliteStore::GetCatalogVersion(const std::string& name,
                                                                     int version) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, version > 0 ? "SELECT spec FROM catalog_versions WHERE name=? AND version=?"
                                    : "SELECT spec FROM catalog_versions WHERE name=? "
                                      "ORDER BY version DESC LIMIT 1");
  q.Bind(name);
  if (version > 0) q.Bind(static_cast<int64_t>(version));
  return ReadSpec<CatalogVersion>(q, "catalog version");
}

Result<std::vector<CatalogVersion>> SqliteStore::ListCatalogVersions(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, name.empty()
                            ? "SELECT spec FROM catalog_versions ORDER BY name, version"
                            : "SELECT spec FROM catalog_versions WHERE name=? ORDER BY version");
  if (!name.empty()) q.Bind(name);
  return ReadSpecs<CatalogVersion>(q, "catalog version");
}

Result<int64_t> SqliteStore::AddApplication(const Application& a) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  DX_RETURN_IF_ERROR(Query(*statements_,
                           "INSERT INTO applications(entry, organisation, state, spec) "
                           "VALUES(?,?,?,'{}')")
                         .Bind(a.entry)
                         .Bind(a.organisation)
                         .Bind(a.state)
                         .Run());
  Application stored = a;
  stored.id = sqlite3_last_insert_rowid(db_);
  DX_RETURN_IF_ERROR(PutApplication(stored));
  return stored.id;
}

Status SqliteStore::PutApplication(const Application& a) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "UPDATE applications SET state=?, spec=? WHERE id=?")
      .Bind(a.state)
      .Bind(ToJson(a).dump())
      .Bind(a.id)
      .Run();
}

Result<std::optional<Application>> SqliteStore::GetApplication(int64_t id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM applications WHERE id=?");
  q.Bind(id);
  return ReadSpec<Application>(q, "application");
}

Result<std::vector<Application>> SqliteStore::ListApplications() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM applications ORDER BY id");
  return ReadSpecs<Application>(q, "application");
}

Result<int64_t> SqliteStore::AddDemand(const Demand& d) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  DX_RETURN_IF_ERROR(
      Query(*statements_, "INSERT INTO demands(organisation, state, spec) VALUES(?,?,'{}')")
          .Bind(d.organisation)
          .Bind(d.state)
          .Run());
  Demand stored = d;
  stored.id = sqlite3_last_insert_rowid(db_);
  DX_RETURN_IF_ERROR(PutDemand(stored));
  return stored.id;
}

Status SqliteStore::PutDemand(const Demand& d) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "UPDATE demands SET state=?, spec=? WHERE id=?")
      .Bind(d.state)
      .Bind(ToJson(d).dump())
      .Bind(d.id)
      .Run();
}

Result<std::optional<Demand>> SqliteStore::GetDemand(int64_t id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM demands WHERE id=?");
  q.Bind(id);
  return ReadSpec<Demand>(q, "demand");
}

Result<std::vector<Demand>> SqliteStore::ListDemands() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM demands ORDER BY id");
  return ReadSpecs<Demand>(q, "demand");
}

Result<int64_t> SqliteStore::AddFeedback(const Feedback& f) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  DX_RETURN_IF_ERROR(
      Query(*statements_, "INSERT INTO feedback(entry, state, spec) VALUES(?,?,'{}')")
          .Bind(f.entry)
          .Bind(f.state)
          .Run());
  Feedback stored = f;
  stored.id = sqlite3_last_insert_rowid(db_);
  DX_RETURN_IF_ERROR(PutFeedback(stored));
  return stored.id;
}

Status SqliteStore::PutFeedback(const Feedback& f) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(*statements_, "UPDATE feedback SET state=?, spec=? WHERE id=?")
      .Bind(f.state)
      .Bind(ToJson(f).dump())
      .Bind(f.id)
      .Run();
}

Result<std::optional<Feedback>> SqliteStore::GetFeedback(int64_t id) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM feedback WHERE id=?");
  q.Bind(id);
  return ReadSpec<Feedback>(q, "feedback");
}

Result<std::vector<Feedback>> SqliteStore::ListFeedback() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM feedback ORDER BY id");
  return ReadSpecs<Feedback>(q, "feedback");
}

Result<int64_t> SqliteStore::AddNotice(const Notice& n) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  DX_RETURN_IF_ERROR(Query(*statements_, "INSERT INTO notices(organisation, spec) VALUES(?,'{}')")
                         .Bind(n.organisation)
                         .Run());
  Notice stored = n;
  stored.id = sqlite3_last_insert_rowid(db_);
  DX_RETURN_IF_ERROR(Query(*statements_, "UPDATE notices SET spec=? WHERE id=?")
                         .Bind(ToJson(stored).dump())
                         .Bind(stored.id)
                         .Run());
  return stored.id;
}

Result<std::vector<Notice>> SqliteStore::ListNotices() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, "SELECT spec FROM notices ORDER BY id");
  return ReadSpecs<Notice>(q, "notice");
}

Status SqliteStore::SetSubscriptionStatus(const std::string& name, const std::string& status,
                                          const Principal& by, const std::string& reason,
                                          int64_t at) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  const bool resumed = status == "active";
  DX_RETURN_IF_ERROR(Query(*statements_,
                           "UPDATE subscriptions SET status=?, spec=json_set(spec, '$.status', ?), "
                           "halted_by=?, halted_org=?, halted_role=?, halt_reason=?, halted_at=? "
                           "WHERE name=?")
                         .Bind(status)
                         .Bind(status)
                         .Bind(resumed ? std::string() : by.user)
                         .Bind(resumed ? std::string() : by.organisation)
                         .Bind(resumed ? std::string() : std::string(RoleName(by.role)))
                         .Bind(resumed ? std::string() : reason)
                         .Bind(resumed ? int64_t{0} : at)
                         .Bind(name)
                         .Run());
  if (sqlite3_changes(db_) == 0) return NotFound("no subscription named '" + name + "'");
  return Status::Ok();
}

Status SqliteStore::RecordDeletionConfirmation(const std::string& name, int64_t at_ms,
                                               const std::string& detail) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  MarkChanged(name);
  DX_RETURN_IF_ERROR(Query(*statements_,
                           "UPDATE subscriptions SET deletion_confirmed_at=?, deletion_detail=? "
                           "WHERE name=?")
                         .Bind(at_ms)
                         .Bind(detail)
                         .Bind(name)
                         .Run());
  if (sqlite3_changes(db_) == 0) return NotFound("no subscription named '" + name + "'");
  return Status::Ok();
}

Status SqliteStore::DeleteSubscription(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return InTransaction([&]() -> Status {
    DX_RETURN_IF_ERROR(
        Query(*statements_, "DELETE FROM subscriptions WHERE name=?").Bind(name).Run());
    if (sqlite3_changes(db_) == 0) return NotFound("no subscription named '" + name + "'");
    for (const char* table : {"reconcile_state", "delivered_files", "file_failures"}) {
      const std::string sql = std::string("DELETE FROM ") + table + " WHERE subscription=?";
      DX_RETURN_IF_ERROR(Query(*statements_, sql.c_str()).Bind(name).Run());
    }
    MarkChanged(name);
    return Status::Ok();
  });
}

Result<std::vector<DeliveryTotals>> SqliteStore::ListDeliveryTotals() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_,
          "SELECT subscription, count(*), sum(rows), sum(bytes), max(finished_at) FROM runs "
          "WHERE status IN ('succeeded', 'partial') AND rows > 0 GROUP BY subscription "
          "ORDER BY subscription");
  std::vector<DeliveryTotals> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Text(0), q.Int(1), q.Int(2), q.Int(3), q.Int(4)});
  }
  return out;
}

}  // namespace dx::scheduler

namespace dx::scheduler {

void SqliteStore::MarkChanged(const std::string& name) {
  if (tx_depth_ > 0) {  // published when the transaction commits (callers hold mu_)
    if (name.empty()) {
      tx_changed_all_ = true;
    } else {
      tx_changed_.insert(name);
    }
    return;
  }
  std::lock_guard<std::mutex> lock(changed_mu_);
  if (name.empty()) {
    changed_all_ = true;
  } else if (!changed_all_) {
    changed_.insert(name);
  }
}

void SqliteStore::PublishChanges() {
  {
    std::lock_guard<std::mutex> lock(changed_mu_);
    changed_all_ = changed_all_ || tx_changed_all_;
    if (!changed_all_) changed_.insert(tx_changed_.begin(), tx_changed_.end());
  }
  tx_changed_.clear();
  tx_changed_all_ = false;
}

std::vector<std::string> SqliteStore::TakeChangedSubscriptions(bool* all) {
  std::lock_guard<std::mutex> lock(changed_mu_);
  *all = changed_all_;
  changed_all_ = false;
  std::vector<std::string> out(changed_.begin(), changed_.end());
  changed_.clear();
  return out;
}

Result<std::vector<Subscription>> SqliteStore::ListSubscriptionsOfAgent(const std::string& agent) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, (std::string("SELECT ") + kSubscriptionColumns +
                         " FROM subscriptions WHERE agent=? ORDER BY name")
                            .c_str());
  q.Bind(agent);
  return ReadSubscriptions(q);
}

Result<std::vector<Subscription>> SqliteStore::ReadSubscriptions(Query& q) {
  std::vector<Subscription> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    Subscription s = ReadSubscription(q.Text(0), q.Int(1), q.Int(2), q.Int(3), q.Int(4), q.Int(5),
                                      q.Text(6), q.Int(7));
    s.stopped_error = q.Text(8);
    s.stopped_at = q.Int(9);
    s.resync_id = q.Text(10);
    s.caught_up_ms = q.Int(11);
    ReadGovernanceState(q, 12, &s);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<Subscription>> SqliteStore::ListSubscriptionsPage(const std::string& after,
                                                                     int limit) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(*statements_, (std::string("SELECT ") + kSubscriptionColumns +
                         " FROM subscriptions WHERE name > ? ORDER BY name LIMIT ?")
                            .c_str());
  q.Bind(after);
  q.Bind(static_cast<int64_t>(limit > 0 ? limit : -1));
  return ReadSubscriptions(q);
}

Result<std::vector<RunRecord>> SqliteStore::ListRunsBefore(const std::string& subscription,
                                                           int64_t before, int limit) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs WHERE id < ?" +
                    (subscription.empty() ? "" : " AND subscription=?") +
                    " ORDER BY id DESC LIMIT ?";
  Query q(*statements_, sql.c_str());
  q.Bind(before > 0 ? before : INT64_MAX);
  if (!subscription.empty()) q.Bind(subscription);
  q.Bind(static_cast<int64_t>(limit));
  std::vector<RunRecord> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(RunFrom(q));
  }
  return out;
}

Result<std::map<std::string, RunRecord>> SqliteStore::LastRuns(
    const std::vector<std::string>& subscriptions) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::map<std::string, RunRecord> out;
  if (subscriptions.empty()) return out;
  // The names go in as one JSON array: one statement whatever their number.
  json names = subscriptions;
  Query q(*statements_, (std::string("SELECT ") + kRunColumns +
                         " FROM runs WHERE id IN (SELECT max(id) FROM runs WHERE subscription IN "
                         "(SELECT value FROM json_each(?)) GROUP BY subscription)")
                            .c_str());
  q.Bind(names.dump());
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    RunRecord r = RunFrom(q);
    out[r.subscription] = std::move(r);
  }
  return out;
}

}  // namespace dx::scheduler
