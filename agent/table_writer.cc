#include "agent/table_writer.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>
#include <string_view>
#include <thread>

#include "agent/table_shape.h"
#include "common/ascii.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/watermark.h"

namespace dx::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TableSpec LedgerSpec() {
  TableSpec spec;
  spec.table = kLedgerTable;
  spec.columns = {{"subscription", ColumnType::kVarchar, 200, 0, true, true},
                  {"batch_seq", ColumnType::kBigint, 0, 0, true, false},
                  {"watermark", ColumnType::kText, 0, 0, false, false},
                  {"updated_at", ColumnType::kVarchar, 32, 0, false, false},
                  // Added after the first version (older ledgers get it by ALTER TABLE).
                  {"rows_floor", ColumnType::kBigint, 0, 0, false, false}};
  return spec;
}

TableSpec FilesSpec() {
  TableSpec spec;
  spec.table = kFilesTable;
  spec.columns = {{"subscription", ColumnType::kVarchar, 150, 0, true, true},
                  // 150 + 600 characters keep the key within InnoDB's 3,072 bytes in utf8mb4.
                  {"path", ColumnType::kVarchar, 600, 0, true, true},
                  {"size", ColumnType::kBigint, 0, 0, true, false},
                  {"sha256", ColumnType::kChar, 64, 0, true, false},
                  {"received_at", ColumnType::kVarchar, 32, 0, true, false}};
  return spec;
}

TableSpec TablesSpec() {
  TableSpec spec;
  spec.table = kTablesTable;
  spec.columns = {{"subscription", ColumnType::kVarchar, 150, 0, true, true},
                  {"table_name", ColumnType::kVarchar, 200, 0, true, true},
                  {"origin", ColumnType::kVarchar, 16, 0, true, false},
                  {"created_at", ColumnType::kVarchar, 32, 0, true, false},
                  {"shape", ColumnType::kText, 0, 0, false, false}};
  return spec;
}

std::string Now() { return FormatLocalTime(ToUnixSeconds(std::chrono::system_clock::now())); }

// True when the batch after a ledger at `watermark` belongs to a full load, whose rows are
// distinct keys the table did not hold (it starts from an empty table, in key order).
bool FullLoadContinues(const std::string& watermark) {
  if (watermark.empty()) return true;
  auto w = Watermark::Decode(watermark);
  return w.ok() && (w->empty() || w->in_full_load());  // empty: right after a resync's reset
}

// True when a ledger at `watermark` says rows were delivered (a resync's reset alone is not).
bool Delivered(const std::string& watermark) {
  auto w = Watermark::Decode(watermark);
  return !w.ok() || !w->empty();
}

// A hash of row r's key cells.
uint64_t KeyHash(const RowBatch& rows, size_t r, const std::vector<size_t>& keys) {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (size_t k : keys) {
    const uint64_t cell = std::hash<std::string_view>{}(rows.Cell(r, k));
    h ^= cell + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  }
  return h;
}

// True when rows a and b have equal key cells.
bool SameKey(const RowBatch& rows, size_t a, size_t b, const std::vector<size_t>& keys) {
  for (size_t k : keys) {
    if (rows.Cell(a, k) != rows.Cell(b, k)) return false;
  }
  return true;
}

}  // namespace

bool IsReservedTableName(const std::string& name) { return AsciiLower(name).rfind("dx_", 0) == 0; }

std::vector<size_t> CollapseRepeatedKeys(const RowBatch& rows, const std::vector<size_t>& keys) {
  // Last occurrence wins: rows are taken from the end, into an open-addressing table of row
  // numbers (+1; 0 = empty) sized to at most half full.
  const size_t n = rows.rows();
  std::vector<size_t> order;
  order.reserve(n);
  size_t capacity = 16;
  while (capacity < 2 * n) capacity *= 2;
  std::vector<uint32_t> slots(capacity, 0);
  for (size_t r = n; r-- > 0;) {
    size_t i = static_cast<size_t>(KeyHash(rows, r, keys)) & (capacity - 1);
    bool repeated = false;
    for (; slots[i] != 0; i = (i + 1) & (capacity - 1)) {
      if (SameKey(rows, slots[i] - 1, r, keys)) {
        repeated = true;
        break;
      }
    }
    if (repeated) continue;
    slots[i] = static_cast<uint32_t>(r + 1);
    order.push_back(r);
  }
  std::reverse(order.begin(), order.end());
  return order;
}

TableWriter::TableWriter(std::string connection_string, std::unique_ptr<OdbcConnection> conn,
                         Dbms dbms, const TableWriterOptions& options)
    : connection_string_(std::move(connection_string)),
      options_(options),
      conn_(std::move(conn)),
      dialect_(dbms),
      name_case_(
          options.name_case.value_or(NaturalNameCase(dbms, conn_ ? conn_->identifier_case() : 0))),
      ledger_spec_(LedgerSpec()),
      files_spec_(FilesSpec()),
      tables_spec_(TablesSpec()) {}

Result<std::unique_ptr<TableWriter>> TableWriter::Open(const std::string& connection_string,
                                                       const TableWriterOptions& options) {
  DX_ASSIGN_OR_RETURN(auto conn, OdbcConnection::Open(connection_string));
  Dbms dbms = DbmsFromName(conn->dbms_name());
  // Where the driver owns lock waits, their bound goes into the connection string (unless
  // the operator set it there) and every reconnect uses the same string.
  std::string effective = connection_string;
  std::string lock_option = SqlDialect(dbms).LockTimeoutOption(options.lock_timeout_ms);
  if (!lock_option.empty()) {
    effective = WithConnectionOptions(connection_string, lock_option);
    if (effective != connection_string) {
      conn.reset();
      DX_ASSIGN_OR_RETURN(conn, OdbcConnection::Open(effective));
    }
  }
  std::unique_ptr<TableWriter> writer(new TableWriter(effective, std::move(conn), dbms, options));
  DX_RETURN_IF_ERROR(writer->PrepareSession());
  DX_RETURN_IF_ERROR(writer->LoadLedger());
  LOG_INFO("local database: " << writer->conn_->dbms_name() << " via "
                              << writer->conn_->driver_name() << " (dialect " << DbmsLabel(dbms)
                              << ", names " << NameCaseLabel(writer->name_case_) << "), "
                              << writer->ledger_.size() << " subscription(s) in the ledger");
  return writer;
}

Result<std::unique_ptr<TableWriter>> TableWriter::OpenWhenReachable(
    const std::string& connection_string, const TableWriterOptions& options, int min_backoff_ms,
    int max_backoff_ms, const std::atomic<bool>& stop) {
  int backoff_ms = min_backoff_ms;
  while (true) {
    auto writer = Open(connection_string, options);
    if (writer.ok() || !IsRetryable(writer.status()) || stop) return writer;
    LOG_WARN("local database unreachable (" << writer.status().message() << "); retrying in "
                                            << backoff_ms << " ms");
    for (int waited = 0; waited < backoff_ms && !stop; waited += 50) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    backoff_ms = std::min(backoff_ms * 2, max_backoff_ms);
  }
}

Status TableWriter::PrepareSession() {
  // Session settings are made with autocommit on, so that no rollback undoes them.
  DX_RETURN_IF_ERROR(conn_->SetAutocommit(true));
  for (const std::string& sql : dialect_.SessionSetup(options_.lock_timeout_ms)) {
    DX_RETURN_IF_ERROR(conn_->Execute(sql).Annotate("set up the local database session"));
  }
  if (dialect_.dbms() == Dbms::kPostgres) {
    DX_ASSIGN_OR_RETURN(schema_, conn_->QueryScalar("SELECT current_schema()"));
  }
  return conn_->SetAutocommit(false);
}

Status TableWriter::Check(Status st) {
  if (st.ok() || conn_ == nullptr) return st;
  (void)conn_->Rollback();
  bool alive = conn_->DriverSaysAlive();
  if (alive && dialect_.dbms() != Dbms::kGeneric) {
    // A statement error leaves the connection usable; a cheap probe tells them apart.
    alive = conn_->QueryScalar("SELECT 1").ok();
    (void)conn_->Rollback();
  }
  if (alive) return st;  // the statement's own failure: it belongs to its subscription
  broken_ = true;
  return Unavailable("lost the connection to the local database: " + st.message());
}

Status TableWriter::WithLockRetry(const std::string& what, const std::function<Status()>& attempt) {
  const auto deadline = steady_clock::now() + milliseconds(options_.lock_retry_ms);
  int backoff_ms = 50;
  bool warned = false;
  const auto started = steady_clock::now();
  while (true) {
    Status st = attempt();
    if (st.ok()) {
      if (warned) {
        LOG_INFO(
            what << ": done after waiting "
                 << std::chrono::duration_cast<milliseconds>(steady_clock::now() - started).count()
                 << " ms for locks");
      }
      return st;
    }
    (void)conn_->Rollback();
    if (!IsLockConflict(st) || steady_clock::now() + milliseconds(backoff_ms) > deadline) {
      return Check(st).Annotate(what);
    }
    if (!warned) {
      LOG_WARN(what << ": another program holds a lock (" << st.message() << "); retrying");
      warned = true;
    }
    std::this_thread::sleep_for(milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 1000);
  }
}

Status TableWriter::EnsureConnected() {
  if (!broken_) return Status::Ok();
  tables_.clear();
  ledger_upsert_.reset();
  file_upsert_.reset();
  file_delete_.reset();
  conn_.reset();
  DX_ASSIGN_OR_RETURN(conn_, OdbcConnection::Open(connection_string_));
  ledger_.clear();
  owned_.clear();
  counted_at_.clear();
  DX_RETURN_IF_ERROR(PrepareSession());
  DX_RETURN_IF_ERROR(LoadLedger());
  broken_ = false;
  LOG_INFO("reconnected to the local database");
  return Status::Ok();
}

Result<std::vector<DbColumnInfo>> TableWriter::TableColumns(const std::string& table) {
  return conn_->Columns(table, schema_);
}

Result<int64_t> TableWriter::CountRows(const std::string& table) {
  DX_ASSIGN_OR_RETURN(std::string n,
                      conn_->QueryScalar("SELECT COUNT(*) FROM " + dialect_.Quote(table)));
  return static_cast<int64_t>(std::atoll(n.c_str()));
}

Status TableWriter::LoadLedger() {
  // The agent's own tables; a ledger of an older agent gets the rows_floor column.
  for (const TableSpec* spec : {&ledger_spec_, &files_spec_, &tables_spec_}) {
    DX_ASSIGN_OR_RETURN(auto cols, TableColumns(spec->table));
    if (cols.empty()) {
      DX_RETURN_IF_ERROR(conn_->Execute(dialect_.CreateTable(*spec)));
      continue;
    }
    for (const ColumnSpec& c : spec->columns) {
      bool present = std::any_of(cols.begin(), cols.end(), [&](const DbColumnInfo& have) {
        return AsciiLower(have.name) == c.name;
      });
      if (!present && !c.not_null) {
        DX_RETURN_IF_ERROR(conn_->Execute("ALTER TABLE " + dialect_.Quote(spec->table) +
                                          " ADD COLUMN " + dialect_.Quote(c.name) + " " +
                                          dialect_.ColumnTypeSql(c)));
        LOG_INFO("added column " << c.name << " to " << spec->table);
      }
    }
  }
  DX_RETURN_IF_ERROR(conn_->Commit());
  DX_ASSIGN_OR_RETURN(auto stmt,
                      conn_->Prepare("SELECT subscription, batch_seq, watermark, rows_floor FROM " +
                                     dialect_.Quote(kLedgerTable)));
  DX_RETURN_IF_ERROR(stmt->Execute());
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, stmt->Fetch());
    if (!row) break;
    LedgerRow r;
    std::string seq;
    std::string floor;
    DX_RETURN_IF_ERROR(stmt->GetText(0, &r.entry.subscription).status());
    DX_RETURN_IF_ERROR(stmt->GetText(1, &seq).status());
    DX_RETURN_IF_ERROR(stmt->GetText(2, &r.entry.watermark).status());
    DX_ASSIGN_OR_RETURN(bool has_floor, stmt->GetText(3, &floor));
    r.entry.batch_seq = std::stoull(seq);
    if (has_floor) r.rows_floor = std::atoll(floor.c_str());
    ledger_[r.entry.subscription] = r;
  }
  stmt.reset();
  DX_ASSIGN_OR_RETURN(stmt, conn_->Prepare("SELECT subscription, table_name, origin, shape FROM " +
                                           dialect_.Quote(kTablesTable)));
  DX_RETURN_IF_ERROR(stmt->Execute());
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, stmt->Fetch());
    if (!row) break;
    OwnedTable t;
    DX_RETURN_IF_ERROR(stmt->GetText(0, &t.subscription).status());
    DX_RETURN_IF_ERROR(stmt->GetText(1, &t.table).status());
    DX_RETURN_IF_ERROR(stmt->GetText(2, &t.origin).status());
    DX_RETURN_IF_ERROR(stmt->GetText(3, &t.shape).status());
    owned_.push_back(std::move(t));
  }
  stmt.reset();
  DX_RETURN_IF_ERROR(conn_->Commit());  // ends the read: no snapshot stays open
  DX_ASSIGN_OR_RETURN(ledger_upsert_, conn_->Prepare(dialect_.Upsert(ledger_spec_, 1)));
  DX_RETURN_IF_ERROR(ledger_upsert_->DeclareParams(ledger_spec_.columns.size()));
  DX_ASSIGN_OR_RETURN(file_upsert_, conn_->Prepare(dialect_.Upsert(files_spec_, 1)));
  DX_RETURN_IF_ERROR(file_upsert_->DeclareParams(files_spec_.columns.size()));
  DX_ASSIGN_OR_RETURN(file_delete_, conn_->Prepare("DELETE FROM " + dialect_.Quote(kFilesTable) +
                                                   " WHERE " + dialect_.Quote("subscription") +
                                                   " = ? AND " + dialect_.Quote("path") + " = ?"));
  return file_delete_->DeclareParams(2);
}

std::vector<LedgerEntry> TableWriter::Ledger() const {
  std::vector<LedgerEntry> out;
  for (const auto& [name, row] : ledger_) out.push_back(row.entry);
  return out;
}

const TableWriter::OwnedTable* TableWriter::FindOwned(const std::string& table) const {
  for (const OwnedTable& t : owned_) {
    if (AsciiLower(t.table) == AsciiLower(table)) return &t;
  }
  return nullptr;
}

Status TableWriter::WriteOwned(const OwnedTable& owned) {
  DX_ASSIGN_OR_RETURN(auto stmt, conn_->Prepare(dialect_.Upsert(tables_spec_, 1)));
  DX_RETURN_IF_ERROR(stmt->DeclareParams(tables_spec_.columns.size()));
  const std::string values[] = {owned.subscription, owned.table, owned.origin, Now(), owned.shape};
  for (size_t i = 0; i < 5; ++i) DX_RETURN_IF_ERROR(stmt->SetParam(i, values[i]));
  return stmt->Execute();
}

Status TableWriter::ForgetOwned(const OwnedTable& owned) {
  DX_ASSIGN_OR_RETURN(auto stmt,
                      conn_->Prepare("DELETE FROM " + dialect_.Quote(kTablesTable) + " WHERE " +
                                     dialect_.Quote("subscription") + " = ? AND " +
                                     dialect_.Quote("table_name") + " = ?"));
  DX_RETURN_IF_ERROR(stmt->DeclareParams(2));
  DX_RETURN_IF_ERROR(stmt->SetParam(0, owned.subscription));
  DX_RETURN_IF_ERROR(stmt->SetParam(1, owned.table));
  DX_RETURN_IF_ERROR(stmt->Execute());
  return conn_->Commit();
}

Result<TableWriter::Damage> TableWriter::DamageOf(const std::string& subscription,
                                                  const std::string& table) {
  const LedgerRow& row = ledger_[subscription];
  if (!row.rows_floor || *row.rows_floor <= 0) return Damage{};
  const std::string floor = std::to_string(*row.rows_floor);
  DX_ASSIGN_OR_RETURN(std::string any, conn_->QueryScalar(dialect_.AnyRowQuery(table)));
  if (any == "0") {
    return Damage{"target table " + table + " was empty at the agent although " + floor +
                      " rows were delivered; reloading from scratch",
                  true};
  }
  auto counted = counted_at_.find(subscription);
  const auto now = steady_clock::now();
  if (counted != counted_at_.end() &&
      now - counted->second < std::chrono::seconds(options_.row_check_interval_s)) {
    return Damage{};
  }
  DX_ASSIGN_OR_RETURN(int64_t rows, CountRows(table));
  counted_at_[subscription] = now;
  if (rows < *row.rows_floor) {
    return Damage{"target table " + table + " held " + std::to_string(rows) +
                      " rows at the agent, fewer than the " + floor +
                      " delivered; a reconciliation repairs it",
                  false};
  }
  return Damage{};
}

Result<TableReady> TableWriter::BeginTable(const TableBegin& begin, bool for_repair) {
  if (Status st = EnsureConnected(); !st.ok()) return st;
  const TableSpec& spec = begin.spec;
  for (const ColumnSpec& c : spec.columns) {
    if (!IsValidIdentifier(c.name)) return InvalidArgument("bad column name '" + c.name + "'");
  }
  if (!IsValidIdentifier(spec.table)) {
    return InvalidArgument("bad target table name '" + spec.table + "'");
  }
  if (IsReservedTableName(spec.table)) {
    return InvalidArgument("target table name '" + spec.table +
                           "' is reserved: names starting with dx_ belong to the agent's own "
                           "tables (" +
                           kLedgerTable + ", " + kFilesTable + ", " + kTablesTable + ")");
  }
  if (spec.KeyIndexes().empty()) return InvalidArgument("table spec has no primary key");
  // The names the target uses, in its configured case.
  TableSpec target = spec;
  target.table = ApplyNameCase(spec.table, name_case_);
  std::set<std::string> seen;
  for (ColumnSpec& c : target.columns) {
    c.name = ApplyNameCase(c.name, name_case_);
    if (!seen.insert(AsciiLower(c.name)).second) {
      return InvalidArgument("table spec names column '" + c.name + "' twice");
    }
  }
  TableReady ready;
  ready.subscription = begin.subscription;
  ready.run_id = begin.run_id;
  Status prepared = WithLockRetry("prepare table " + target.table + " for " + begin.subscription,
                                  [&] { return PrepareTable(begin, target, for_repair, &ready); });
  if (!prepared.ok()) return prepared;
  return ready;
}

Status TableWriter::PrepareTable(const TableBegin& begin, const TableSpec& target, bool for_repair,
                                 TableReady* ready) {
  const std::string& sub = begin.subscription;
  auto in_ledger = ledger_.find(sub);
  const bool owns_any = std::any_of(owned_.begin(), owned_.end(),
                                    [&](const OwnedTable& t) { return t.subscription == sub; });
  // The table this subscription already owns under this name keeps the spelling it was
  // created with (name_case applies to tables created from now on).
  std::string name = target.table;
  const OwnedTable* mine = nullptr;
  for (const OwnedTable& t : owned_) {
    if (t.subscription == sub && AsciiLower(t.table) == AsciiLower(begin.spec.table)) {
      mine = &t;
      name = t.table;
    }
  }
  if (const OwnedTable* owner = FindOwned(name); owner != nullptr && owner->subscription != sub) {
    return FailedPrecondition("target table '" + name + "' belongs to subscription '" +
                              owner->subscription + "' on this agent; DX leaves it untouched");
  }
  DX_ASSIGN_OR_RETURN(auto existing, TableColumns(name));
  // An agent from before dx_tables delivered this subscription: it adopts the table its
  // ledger filled, spelt as the catalog spells it (older agents did not fold names).
  const bool adoptable = in_ledger != ledger_.end() && !owns_any;
  if (existing.empty() && adoptable && name != begin.spec.table) {
    DX_ASSIGN_OR_RETURN(auto legacy, TableColumns(begin.spec.table));
    if (!legacy.empty()) {
      name = begin.spec.table;
      existing = std::move(legacy);
    }
  }
  if (!existing.empty() && mine == nullptr && !adoptable) {
    return FailedPrecondition("target table '" + name +
                              "' exists but was not created by DX for subscription '" + sub +
                              "'; DX leaves it untouched (drop or rename it, or choose another "
                              "target_table)");
  }

  LedgerRow row = in_ledger != ledger_.end() ? in_ledger->second : LedgerRow{{sub, 0, ""}, 0};
  TableSpec want = target;
  want.table = name;
  TableSpec resolved;
  std::optional<OwnedTable> record;  // a dx_tables row written by this call
  std::string note;
  bool clear = begin.reset;
  if (begin.reset && !begin.reset_id.empty() && in_ledger != ledger_.end()) {
    // One clearing per resync request: its id is recorded with the clearing, so a resync
    // retried after a crash resumes its load instead of clearing the table again.
    auto held = Watermark::Decode(row.entry.watermark);
    if (held.ok() && held->resync == begin.reset_id) clear = false;
  }
  // A resync after the subscription's shape changed (its columns, or their masking: a hashed
  // column is wider, a dropped one is gone) recreates the table the agent created for it, so
  // that no column of the old shape, and none of its values, stays behind.
  if (!existing.empty() && clear && mine != nullptr && mine->origin == "created" &&
      !mine->shape.empty() && !ShapeIsFor(want, mine->shape)) {
    DX_RETURN_IF_ERROR(conn_->Execute("DROP TABLE " + dialect_.Quote(name)));
    existing.clear();
    LOG_INFO("resync of " << sub << ": the table's shape changed; recreating table " << name);
  }
  if (existing.empty()) {
    if (begin.reset) clear = true;  // a table created now starts from scratch
    if (in_ledger != ledger_.end() && !begin.reset &&
        (Delivered(row.entry.watermark) || row.rows_floor.value_or(0) > 0)) {
      note = "target table " + name + " was missing at the agent; reloading from scratch";
    }
    // The record goes first: MariaDB commits it at CREATE TABLE, so it is never missing
    // for a table the agent created.
    record = OwnedTable{sub, name, "created", ""};
    DX_RETURN_IF_ERROR(WriteOwned(*record));
    Status st = conn_->Execute(dialect_.CreateTable(want));
    if (!st.ok()) {
      (void)conn_->Rollback();
      (void)ForgetOwned(*record);
      return st.Annotate("create table " + name);
    }
    DX_ASSIGN_OR_RETURN(auto reported, TableColumns(name));
    record->shape = RecordShape(want, reported);
    DX_RETURN_IF_ERROR(WriteOwned(*record));
    DX_RETURN_IF_ERROR(CheckShape(want, reported, record->shape, &resolved));
    LOG_INFO("created table " << name << " for " << sub);
    if (!note.empty()) clear = true;
  } else {
    DX_RETURN_IF_ERROR(CheckShape(want, existing, mine ? mine->shape : "", &resolved));
    if (mine == nullptr) {  // adoptable
      record = OwnedTable{sub, name, "adopted", ""};
      DX_RETURN_IF_ERROR(WriteOwned(*record));
      if (!row.rows_floor) {
        DX_ASSIGN_OR_RETURN(int64_t rows, CountRows(name));
        row.rows_floor = rows;
      }
      LOG_INFO("adopted table " << name << " of " << sub << " (delivered by an older agent)");
    }
    if (!begin.reset && !for_repair && in_ledger != ledger_.end() && mine != nullptr) {
      DX_ASSIGN_OR_RETURN(Damage damage, DamageOf(sub, name));
      if (damage.reload) {
        note = damage.note;
      } else if (!damage.note.empty()) {
        ready->damaged = true;
        ready->note = damage.note;
      }
    }
    if (!note.empty()) clear = true;
    if (clear) DX_RETURN_IF_ERROR(conn_->Execute("DELETE FROM " + dialect_.Quote(name)));
  }
  if (clear) {
    Watermark cleared;
    if (begin.reset) cleared.resync = begin.reset_id;
    row.entry.watermark = cleared.Encode();
    row.rows_floor = 0;
  }
  if (clear || (record && in_ledger != ledger_.end())) DX_RETURN_IF_ERROR(WriteLedger(row));
  // Also after a read only: no transaction (and no SQLite snapshot) stays open.
  DX_RETURN_IF_ERROR(conn_->Commit());

  ledger_[sub] = row;
  if (record) {
    owned_.erase(std::remove_if(owned_.begin(), owned_.end(),
                                [&](const OwnedTable& t) {
                                  return t.subscription == sub && t.table == record->table;
                                }),
                 owned_.end());
    owned_.push_back(*record);
  }
  TableState& state = tables_[sub];
  state = TableState();
  state.spec = resolved;
  for (const ColumnSpec& c : resolved.columns) {
    state.kinds.push_back(IsBinaryType(c.type) ? ParamKind::kBinary : ParamKind::kText);
  }
  if (begin.reset) {
    LOG_INFO("resync of " << sub << (clear ? ": cleared table " : ": resuming the load of table ")
                          << name);
  }
  if (!note.empty()) LOG_WARN("subscription " << sub << ": " << note);
  if (ready->damaged) LOG_WARN("subscription " << sub << ": " << ready->note);
  ready->ledger = row.entry;
  if (!note.empty()) {
    ready->reloaded = true;
    ready->note = note;
  }
  return Status::Ok();
}

const TableSpec* TableWriter::TargetTable(const std::string& subscription) const {
  auto it = tables_.find(subscription);
  return it == tables_.end() ? nullptr : &it->second.spec;
}

Result<OdbcStatement*> TableWriter::UpsertStatement(TableState& state, int rows) {
  auto it = state.upserts.find(rows);
  if (it != state.upserts.end()) return it->second.get();
  DX_ASSIGN_OR_RETURN(auto stmt, conn_->Prepare(dialect_.Upsert(state.spec, rows)));
  std::vector<ParamKind> kinds;
  kinds.reserve(state.kinds.size() * static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) kinds.insert(kinds.end(), state.kinds.begin(), state.kinds.end());
  DX_RETURN_IF_ERROR(stmt->DeclareParams(kinds));
  OdbcStatement* raw = stmt.get();
  state.upserts[rows] = std::move(stmt);
  return raw;
}

Status TableWriter::WriteRows(TableState& state, const RowBatch& rows,
                              const std::vector<size_t>& order) {
  const size_t ncols = state.spec.columns.size();
  const size_t per_stmt = static_cast<size_t>(dialect_.RowsPerStatement(ncols));
  size_t done = 0;
  while (done < order.size()) {
    size_t n = std::min(per_stmt, order.size() - done);
    DX_ASSIGN_OR_RETURN(OdbcStatement * stmt, UpsertStatement(state, static_cast<int>(n)));
    size_t p = 0;
    for (size_t i = 0; i < n; ++i) {
      size_t r = order[done + i];
      for (size_t c = 0; c < ncols; ++c, ++p) {
        if (rows.IsNull(r, c)) {
          stmt->SetNull(p);
        } else {
          DX_RETURN_IF_ERROR(stmt->SetParam(p, rows.Cell(r, c)));
        }
      }
    }
    DX_RETURN_IF_ERROR(stmt->Execute());
    DX_RETURN_IF_ERROR(stmt->CloseCursor());
    done += n;
  }
  return Status::Ok();
}

Status TableWriter::WriteGeneric(TableState& state, const RowBatch& rows,
                                 const std::vector<size_t>& order) {
  const TableSpec& spec = state.spec;
  std::vector<size_t> keys = spec.KeyIndexes();
  if (!state.delete_by_key) {
    std::string where;
    std::vector<ParamKind> key_kinds;
    for (size_t k : keys) {
      where += (where.empty() ? "" : " AND ") + dialect_.Quote(spec.columns[k].name) + " = ?";
      key_kinds.push_back(state.kinds[k]);
    }
    DX_ASSIGN_OR_RETURN(
        state.delete_by_key,
        conn_->Prepare("DELETE FROM " + dialect_.Quote(spec.table) + " WHERE " + where));
    DX_RETURN_IF_ERROR(state.delete_by_key->DeclareParams(key_kinds));
    std::string cols;
    std::string marks;
    for (const ColumnSpec& c : spec.columns) {
      cols += (cols.empty() ? "" : ", ") + dialect_.Quote(c.name);
      marks += marks.empty() ? "?" : ", ?";
    }
    DX_ASSIGN_OR_RETURN(state.insert_row,
                        conn_->Prepare("INSERT INTO " + dialect_.Quote(spec.table) + " (" + cols +
                                       ") VALUES (" + marks + ")"));
    DX_RETURN_IF_ERROR(state.insert_row->DeclareParams(state.kinds));
  }
  for (size_t r : order) {
    for (size_t i = 0; i < keys.size(); ++i) {
      DX_RETURN_IF_ERROR(state.delete_by_key->SetParam(i, rows.Cell(r, keys[i])));
    }
    DX_RETURN_IF_ERROR(state.delete_by_key->Execute());
    for (size_t c = 0; c < spec.columns.size(); ++c) {
      if (rows.IsNull(r, c)) {
        state.insert_row->SetNull(c);
      } else {
        DX_RETURN_IF_ERROR(state.insert_row->SetParam(c, rows.Cell(r, c)));
      }
    }
    DX_RETURN_IF_ERROR(state.insert_row->Execute());
  }
  return Status::Ok();
}

Status TableWriter::WriteLedger(const LedgerRow& row) {
  const LedgerEntry& entry = row.entry;
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(0, entry.subscription));
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(1, std::to_string(entry.batch_seq)));
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(2, entry.watermark));
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(3, Now()));
  if (row.rows_floor) {
    DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(4, std::to_string(*row.rows_floor)));
  } else {
    ledger_upsert_->SetNull(4);
  }
  DX_RETURN_IF_ERROR(ledger_upsert_->Execute());
  return ledger_upsert_->CloseCursor();
}

Status TableWriter::RecordFiles(const std::vector<ReceivedFile>& files) {
  if (Status st = EnsureConnected(); !st.ok()) return st;
  return WithLockRetry("record received files", [&]() -> Status {
    for (const ReceivedFile& file : files) {
      if (file.deleted) {
        DX_RETURN_IF_ERROR(file_delete_->SetParam(0, file.subscription));
        DX_RETURN_IF_ERROR(file_delete_->SetParam(1, file.path));
        DX_RETURN_IF_ERROR(file_delete_->Execute());
        DX_RETURN_IF_ERROR(file_delete_->CloseCursor());
      } else {
        const std::string values[] = {file.subscription, file.path, std::to_string(file.size),
                                      file.sha256, Now()};
        for (size_t i = 0; i < 5; ++i) DX_RETURN_IF_ERROR(file_upsert_->SetParam(i, values[i]));
        DX_RETURN_IF_ERROR(file_upsert_->Execute());
        DX_RETURN_IF_ERROR(file_upsert_->CloseCursor());
      }
    }
    return conn_->Commit();
  });
}

Result<ApplyOutcome> TableWriter::ApplyBatch(const std::string& subscription, uint64_t seq,
                                             const std::string& watermark, const RowBatch& rows) {
  if (broken_) {
    return Unavailable("the local database connection was lost; the next run prepares again");
  }
  auto table = tables_.find(subscription);
  if (table == tables_.end()) {
    return FailedPrecondition("batch for " + subscription + " before its table was prepared");
  }
  TableState& state = table->second;
  LedgerRow& row = ledger_[subscription];
  ApplyOutcome outcome;
  if (seq <= row.entry.batch_seq) {
    outcome.duplicate = true;
    return outcome;
  }
  if (seq != row.entry.batch_seq + 1) {
    return DataLoss("batch " + std::to_string(seq) + " for " + subscription + " arrived but " +
                    std::to_string(row.entry.batch_seq + 1) + " is next");
  }
  if (rows.columns() != state.spec.columns.size()) {
    return InvalidArgument("batch has " + std::to_string(rows.columns()) + " columns, table " +
                           state.spec.table + " expects " +
                           std::to_string(state.spec.columns.size()));
  }
  std::vector<size_t> order = CollapseRepeatedKeys(rows, state.spec.KeyIndexes());
  LedgerRow next = row;
  next.entry.batch_seq = seq;
  next.entry.watermark = watermark;
  if (next.rows_floor && FullLoadContinues(row.entry.watermark)) {
    *next.rows_floor += static_cast<int64_t>(order.size());
  }
  Status applied =
      WithLockRetry("apply batch " + std::to_string(seq) + " of " + subscription, [&]() -> Status {
        DX_RETURN_IF_ERROR(dialect_.HasUpsert() ? WriteRows(state, rows, order)
                                                : WriteGeneric(state, rows, order));
        DX_RETURN_IF_ERROR(WriteLedger(next));
        return conn_->Commit();
      });
  if (!applied.ok()) return applied;
  row = next;
  outcome.rows_written = order.size();
  return outcome;
}

Status TableWriter::ReadLocal(
    const std::function<Status(OdbcConnection&, const SqlDialect&)>& read) {
  DX_RETURN_IF_ERROR(Check(EnsureConnected()));
  // Writes are always committed at once, so a transaction open here is a read left open (e.g.
  // by SQLColumns with autocommit off): end it, or the read would see that old snapshot.
  DX_RETURN_IF_ERROR(Check(conn_->Rollback()));
  Status st = read(*conn_, dialect_);
  Status ended = conn_->Rollback();
  if (st.ok()) st = ended;
  return Check(st);
}

Result<ApplyOutcome> TableWriter::ApplyRepair(const std::string& subscription, uint64_t seq,
                                              const RowBatch& rows, const RowBatch& delete_keys) {
  if (broken_) {
    return Unavailable("the local database connection was lost; the next run prepares again");
  }
  auto table = tables_.find(subscription);
  if (table == tables_.end()) {
    return FailedPrecondition("repair for " + subscription + " before its table was prepared");
  }
  TableState& state = table->second;
  LedgerRow& row = ledger_[subscription];
  ApplyOutcome outcome;
  if (seq <= row.entry.batch_seq) {
    outcome.duplicate = true;
    return outcome;
  }
  if (seq != row.entry.batch_seq + 1) {
    return DataLoss("repair " + std::to_string(seq) + " for " + subscription + " arrived but " +
                    std::to_string(row.entry.batch_seq + 1) + " is next");
  }
  const std::vector<size_t> keys = state.spec.KeyIndexes();
  if ((rows.rows() > 0 && rows.columns() != state.spec.columns.size()) ||
      (delete_keys.rows() > 0 && delete_keys.columns() != keys.size())) {
    return InvalidArgument("repair for " + subscription + " does not fit table " +
                           state.spec.table);
  }
  LedgerRow next = row;
  next.entry.batch_seq = seq;  // the watermark stays: a repair never moves it
  // Rows deleted on purpose lower the count the table must hold at least (each key deletes at
  // most one row), so that the damage check does not take them for the consumer's loss.
  if (next.rows_floor) {
    *next.rows_floor =
        std::max<int64_t>(0, *next.rows_floor - static_cast<int64_t>(delete_keys.rows()));
  }
  std::vector<size_t> order = CollapseRepeatedKeys(rows, keys);
  Status applied =
      WithLockRetry("apply repair " + std::to_string(seq) + " of " + subscription, [&]() -> Status {
        if (delete_keys.rows() > 0) {
          std::string where;
          for (size_t k : keys) {
            const ColumnSpec& c = state.spec.columns[k];
            where += (where.empty() ? "" : " AND ") + dialect_.Quote(c.name) + " = " +
                     dialect_.Placeholder(c);
          }
          DX_ASSIGN_OR_RETURN(auto del,
                              conn_->Prepare("DELETE FROM " + dialect_.Quote(state.spec.table) +
                                             " WHERE " + where));
          DX_RETURN_IF_ERROR(del->DeclareParams(keys.size()));
          for (size_t r = 0; r < delete_keys.rows(); ++r) {
            for (size_t k = 0; k < keys.size(); ++k) {
              DX_RETURN_IF_ERROR(del->SetParam(k, delete_keys.Cell(r, k)));
            }
            DX_RETURN_IF_ERROR(del->Execute());
            DX_RETURN_IF_ERROR(del->CloseCursor());
          }
        }
        if (!order.empty()) {
          DX_RETURN_IF_ERROR(dialect_.HasUpsert() ? WriteRows(state, rows, order)
                                                  : WriteGeneric(state, rows, order));
        }
        DX_RETURN_IF_ERROR(WriteLedger(next));
        return conn_->Commit();
      });
  if (!applied.ok()) return applied;
  row = next;
  outcome.rows_written = order.size() + delete_keys.rows();
  return outcome;
}

Result<std::vector<std::string>> TableWriter::FilesOf(const std::string& subscription) {
  DX_RETURN_IF_ERROR(Check(EnsureConnected()));
  std::vector<std::string> paths;
  Status st = [&]() -> Status {
    DX_RETURN_IF_ERROR(conn_->Rollback());  // a fresh read, not an old snapshot
    DX_ASSIGN_OR_RETURN(auto stmt, conn_->Prepare("SELECT " + dialect_.Quote("path") + " FROM " +
                                                  dialect_.Quote(kFilesTable) + " WHERE " +
                                                  dialect_.Quote("subscription") + " = ?"));
    DX_RETURN_IF_ERROR(stmt->DeclareParams(1));
    DX_RETURN_IF_ERROR(stmt->SetParam(0, subscription));
    DX_RETURN_IF_ERROR(stmt->Execute());
    while (true) {
      DX_ASSIGN_OR_RETURN(bool row, stmt->Fetch());
      if (!row) break;
      std::string path;
      DX_RETURN_IF_ERROR(stmt->GetText(0, &path).status());
      paths.push_back(std::move(path));
    }
    stmt.reset();
    return conn_->Rollback();
  }();
  DX_RETURN_IF_ERROR(Check(st).Annotate("list the files of " + subscription));
  return paths;
}

Result<ForgottenTables> TableWriter::ForgetSubscription(const std::string& subscription) {
  DX_RETURN_IF_ERROR(Check(EnsureConnected()));
  const bool sqlite = dialect_.dbms() == Dbms::kSqlite;
  std::vector<OwnedTable> tables;
  for (const OwnedTable& t : owned_) {
    if (t.subscription == subscription) tables.push_back(t);
  }
  tables_.erase(subscription);  // its prepared statements go before its table does
  auto delete_where = [&](const char* table, const std::vector<std::string>& values) -> Status {
    std::string sql = "DELETE FROM " + dialect_.Quote(table) + " WHERE " +
                      dialect_.Quote("subscription") + " = ?";
    if (values.size() > 1) sql += " AND " + dialect_.Quote("table_name") + " = ?";
    DX_ASSIGN_OR_RETURN(auto stmt, conn_->Prepare(sql));
    DX_RETURN_IF_ERROR(stmt->DeclareParams(values.size()));
    for (size_t i = 0; i < values.size(); ++i) DX_RETURN_IF_ERROR(stmt->SetParam(i, values[i]));
    return stmt->Execute();
  };
  ForgottenTables out;
  if (sqlite) DX_RETURN_IF_ERROR(Check(conn_->Execute("PRAGMA secure_delete = ON")));
  for (const OwnedTable& t : tables) {
    std::string how = "dropped";
    int64_t rows = 0;
    bool present = false;
    Status st = WithLockRetry("delete table " + t.table + " of " + subscription, [&]() -> Status {
      DX_ASSIGN_OR_RETURN(auto columns, TableColumns(t.table));
      present = !columns.empty();
      if (present) {
        DX_ASSIGN_OR_RETURN(rows, CountRows(t.table));
        Status dropped = conn_->Execute("DROP TABLE " + dialect_.Quote(t.table));
        if (!dropped.ok()) {
          if (IsLockConflict(dropped)) return dropped;
          // The database refuses the drop (e.g. a view of the consumer's depends on it): the
          // rows still go. A failed statement may have ended the transaction: start again.
          Status checked = Check(dropped);  // rolls back; kUnavailable: the connection is lost
          if (broken_) return checked;
          how = "emptied (the database refused to drop it: " + dropped.message() + ")";
          DX_RETURN_IF_ERROR(conn_->Execute("DELETE FROM " + dialect_.Quote(t.table)));
        }
      }
      DX_RETURN_IF_ERROR(delete_where(kTablesTable, {subscription, t.table}));
      return conn_->Commit();
    });
    if (!st.ok()) {
      if (sqlite) (void)conn_->Execute("PRAGMA secure_delete = OFF");
      return st;
    }
    owned_.erase(std::remove_if(owned_.begin(), owned_.end(),
                                [&](const OwnedTable& o) {
                                  return o.subscription == subscription && o.table == t.table;
                                }),
                 owned_.end());
    if (!present) continue;  // gone already (an earlier attempt, or the consumer dropped it)
    out.tables.push_back(t.table);
    out.rows += rows;
    out.detail += (out.detail.empty() ? "" : "; ") + how + " table " + t.table + " (" +
                  std::to_string(rows) + " rows)";
    LOG_INFO("subscription " << subscription << ": " << how << " table " << t.table << " (" << rows
                             << " rows)");
  }
  Status records = WithLockRetry("delete the records of " + subscription, [&]() -> Status {
    DX_RETURN_IF_ERROR(delete_where(kFilesTable, {subscription}));
    DX_RETURN_IF_ERROR(delete_where(kLedgerTable, {subscription}));
    return conn_->Commit();
  });
  if (sqlite) {
    Status off = conn_->Execute("PRAGMA secure_delete = OFF");
    if (records.ok()) records = Check(off);
  }
  DX_RETURN_IF_ERROR(records);
  ledger_.erase(subscription);
  counted_at_.erase(subscription);
  if (out.detail.empty()) out.detail = "no table held";
  return out;
}

}  // namespace dx::agent
