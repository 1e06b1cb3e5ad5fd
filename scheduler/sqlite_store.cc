#include "scheduler/sqlite_store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "scheduler/secret.h"

namespace dx::scheduler {

using nlohmann::json;

// A prepared statement with positional binding and typed column reads.
class SqliteStore::Query {
 public:
  Query(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Query() { sqlite3_finalize(stmt_); }
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
  sqlite3* db_;
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

int64_t NowSeconds() { return static_cast<int64_t>(time(nullptr)); }

std::string AuditText(int64_t at, const AuditEvent& e, const std::string& prev) {
  return std::to_string(at) + "\x1f" + e.actor + "\x1f" + e.action + "\x1f" + e.target + "\x1f" +
         e.result + "\x1f" + e.from + "\x1f" + prev;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
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
  return store;
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

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
  DX_RETURN_IF_ERROR(
      AddColumnIfMissing("delivered_files", "ctime_ns", "INTEGER NOT NULL DEFAULT 0"));
  return AddColumnIfMissing("delivered_files", "inode", "INTEGER NOT NULL DEFAULT 0");
}

Status SqliteStore::AddColumnIfMissing(const std::string& table, const std::string& column,
                                       const std::string& declaration) {
  Query q(db_, ("SELECT 1 FROM pragma_table_info('" + table + "') WHERE name=?").c_str());
  q.Bind(column);
  DX_ASSIGN_OR_RETURN(bool has, q.Step());
  if (has) return Status::Ok();
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
    if (st.ok()) return st;
  }
  (void)Exec("ROLLBACK");
  return st;
}

Status SqliteStore::PutSource(const Source& s) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_,
               "INSERT INTO sources(name, spec, updated_at) VALUES(?,?,?) "
               "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec, updated_at=excluded.updated_at")
      .Bind(s.name)
      .Bind(ToJson(s).dump())
      .Bind(NowSeconds())
      .Run();
}

Result<std::optional<Source>> SqliteStore::GetSource(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_, "SELECT spec FROM sources WHERE name=?");
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<Source>();
  Source s;
  FromJson(json::parse(q.Text(0)), &s);
  return std::optional<Source>(s);
}

Result<std::vector<Source>> SqliteStore::ListSources() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_, "SELECT spec FROM sources ORDER BY name");
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
  return Query(db_,
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
  Query q(db_, "SELECT spec FROM catalog_entries WHERE name=?");
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<CatalogEntry>();
  CatalogEntry e;
  if (!FromJson(json::parse(q.Text(0)), &e)) return DataLoss("store: bad catalog entry " + name);
  return std::optional<CatalogEntry>(e);
}

Result<std::vector<CatalogEntry>> SqliteStore::ListCatalogEntries() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_, "SELECT spec FROM catalog_entries ORDER BY name");
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
    "bandwidth_kbps";
}

Status SqliteStore::PutAgent(const AgentRecord& a) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_,
               "INSERT INTO agents(name, secret_hash, description, bandwidth_kbps) "
               "VALUES(?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
               "secret_hash=excluded.secret_hash, description=excluded.description, "
               "bandwidth_kbps=excluded.bandwidth_kbps")
      .Bind(a.name)
      .Bind(a.secret_hash)
      .Bind(a.description)
      .Bind(a.bandwidth_kbps)
      .Run();
}

Result<std::optional<AgentRecord>> SqliteStore::GetAgent(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_, (std::string("SELECT ") + kAgentColumns + " FROM agents WHERE name=?").c_str());
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<AgentRecord>();
  AgentRecord a{q.Text(0), q.Text(1), q.Text(2), q.Int(3) != 0, q.Int(4),
                q.Text(5), q.Text(6), q.Text(7), q.Int(8)};
  return std::optional<AgentRecord>(a);
}

Result<std::vector<AgentRecord>> SqliteStore::ListAgents() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_, (std::string("SELECT ") + kAgentColumns + " FROM agents ORDER BY name").c_str());
  std::vector<AgentRecord> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(AgentRecord{q.Text(0), q.Text(1), q.Text(2), q.Int(3) != 0, q.Int(4), q.Text(5),
                              q.Text(6), q.Text(7), q.Int(8)});
  }
  return out;
}

Status SqliteStore::SetAgentOnline(const std::string& name, bool online, int64_t seen_at,
                                   const std::string& address, const std::string& version,
                                   const std::string& target_dbms) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_,
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
  return Query(db_, "UPDATE agents SET last_seen=? WHERE name=?").Bind(seen_at).Bind(name).Run();
}

Status SqliteStore::MarkAllAgentsOffline() { return Exec("UPDATE agents SET online=0"); }

Status SqliteStore::PutSubscriptionDefinition(const Subscription& s) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_,
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
    "spec, next_due, failures, resync_pending, manual_pending, acked_seq, watermark, last_ok_at";

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
      db_,
      (std::string("SELECT ") + kSubscriptionColumns + " FROM subscriptions WHERE name=?").c_str());
  q.Bind(name);
  DX_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<Subscription>();
  return std::optional<Subscription>(ReadSubscription(q.Text(0), q.Int(1), q.Int(2), q.Int(3),
                                                      q.Int(4), q.Int(5), q.Text(6), q.Int(7)));
}

Result<std::vector<Subscription>> SqliteStore::ListSubscriptions() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_, (std::string("SELECT ") + kSubscriptionColumns + " FROM subscriptions ORDER BY name")
                   .c_str());
  std::vector<Subscription> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ReadSubscription(q.Text(0), q.Int(1), q.Int(2), q.Int(3), q.Int(4), q.Int(5),
                                   q.Text(6), q.Int(7)));
  }
  return out;
}

Status SqliteStore::SetSchedule(const std::string& name, int64_t next_due, int failures) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_, "UPDATE subscriptions SET next_due=?, failures=? WHERE name=?")
      .Bind(next_due)
      .Bind(static_cast<int64_t>(failures))
      .Bind(name)
      .Run();
}

Status SqliteStore::SetPending(const std::string& name, bool manual, bool resync) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_, "UPDATE subscriptions SET manual_pending=?, resync_pending=? WHERE name=?")
      .Bind(manual ? 1 : 0)
      .Bind(resync ? 1 : 0)
      .Bind(name)
      .Run();
}

Status SqliteStore::SetProgress(const std::string& name, uint64_t acked_seq,
                                const std::string& watermark) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_, "UPDATE subscriptions SET acked_seq=?, watermark=? WHERE name=?")
      .Bind(static_cast<int64_t>(acked_seq))
      .Bind(watermark)
      .Bind(name)
      .Run();
}

Status SqliteStore::SetLastSuccess(const std::string& name, int64_t at) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_, "UPDATE subscriptions SET last_ok_at=? WHERE name=?").Bind(at).Bind(name).Run();
}

Result<int64_t> SqliteStore::StartRun(const RunRecord& r) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  DX_RETURN_IF_ERROR(Query(db_,
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
  return Query(db_,
               "UPDATE runs SET status=?, finished_at=?, rows=?, bytes=?, batches=?, "
               "error=? WHERE id=?")
      .Bind(r.status)
      .Bind(r.finished_at)
      .Bind(r.rows)
      .Bind(r.bytes)
      .Bind(r.batches)
      .Bind(r.error)
      .Bind(r.id)
      .Run();
}

namespace {
constexpr const char* kRunColumns =
    "id, subscription, trigger, status, started_at, finished_at, rows, bytes, batches, error";
}

Result<std::vector<RunRecord>> SqliteStore::ListRuns(const std::string& subscription, int limit) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs" +
                    (subscription.empty() ? "" : " WHERE subscription=?") +
                    " ORDER BY id DESC LIMIT ?";
  Query q(db_, sql.c_str());
  if (!subscription.empty()) q.Bind(subscription);
  q.Bind(static_cast<int64_t>(limit));
  std::vector<RunRecord> out;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(RunRecord{q.Int(0), q.Text(1), q.Text(2), q.Text(3), q.Int(4), q.Int(5), q.Int(6),
                            q.Int(7), q.Int(8), q.Text(9)});
  }
  return out;
}

Result<std::optional<RunRecord>> SqliteStore::LastRun(const std::string& subscription) {
  DX_ASSIGN_OR_RETURN(auto runs, ListRuns(subscription, 1));
  if (runs.empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(runs[0]);
}

Result<int> SqliteStore::MarkInterruptedRuns(int64_t now_ms) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  // A manual run cut off by the stop runs again: its request was cleared when it started.
  DX_RETURN_IF_ERROR(
      Exec("UPDATE subscriptions SET manual_pending=1 WHERE name IN (SELECT subscription FROM runs "
           "WHERE status='running' AND trigger='manual')"));
  DX_RETURN_IF_ERROR(Query(db_,
                           "UPDATE runs SET status='interrupted', finished_at=?, "
                           "error='scheduler stopped during the run' WHERE status='running'")
                         .Bind(now_ms)
                         .Run());
  return sqlite3_changes(db_);
}

Result<std::vector<DeliveredFile>> SqliteStore::ListDeliveredFiles(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_,
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
  Query q(db_,
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
  Query q(db_, "SELECT 1 FROM delivered_files WHERE agent=? AND size=? AND mtime_ns=? LIMIT 1");
  q.Bind(agent).Bind(size).Bind(mtime_ns);
  return q.Step();
}

Status SqliteStore::PutDeliveredFile(const std::string& agent, const DeliveredFile& f) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_,
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
  return Query(db_, "DELETE FROM delivered_files WHERE subscription=? AND path=?")
      .Bind(sub)
      .Bind(path)
      .Run();
}

Status SqliteStore::ClearDeliveredFiles(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_, "DELETE FROM delivered_files WHERE subscription=?").Bind(sub).Run();
}

Status SqliteStore::AddReceipt(int64_t run_id, const FileReceipt& r) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_,
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
  Query q(db_,
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

Result<std::vector<FileFailure>> SqliteStore::ListFileFailures(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_,
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

Status SqliteStore::PutFileFailure(const FileFailure& f) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_,
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
  return Query(db_, "DELETE FROM file_failures WHERE subscription=? AND path=?")
      .Bind(sub)
      .Bind(path)
      .Run();
}

Status SqliteStore::ClearFileFailures(const std::string& sub) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return Query(db_, "DELETE FROM file_failures WHERE subscription=?").Bind(sub).Run();
}

Status SqliteStore::Audit(const AuditEvent& e) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query last(db_, "SELECT hash FROM audit ORDER BY id DESC LIMIT 1");
  DX_ASSIGN_OR_RETURN(bool has_last, last.Step());
  std::string prev = has_last ? last.Text(0) : "";
  std::string hash = Sha256Hex(AuditText(e.at_ms, e, prev));
  return Query(db_,
               "INSERT INTO audit(at_ms, actor, action, target, result, origin, prev_hash, "
               "hash) VALUES(?,?,?,?,?,?,?,?)")
      .Bind(e.at_ms)
      .Bind(e.actor)
      .Bind(e.action)
      .Bind(e.target)
      .Bind(e.result)
      .Bind(e.from)
      .Bind(prev)
      .Bind(hash)
      .Run();
}

Status SqliteStore::VerifyAudit() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Query q(db_,
          "SELECT id, at_ms, actor, action, target, result, origin, prev_hash, hash "
          "FROM audit ORDER BY id");
  std::string prev;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    AuditEvent e{q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5), q.Text(6)};
    if (q.Text(7) != prev || Sha256Hex(AuditText(e.at_ms, e, prev)) != q.Text(8)) {
      return DataLoss("audit record " + std::to_string(q.Int(0)) + " does not match the chain");
    }
    prev = q.Text(8);
  }
  return Status::Ok();
}

}  // namespace dx::scheduler
