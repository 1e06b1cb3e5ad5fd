#include "agent/table_writer.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>
#include <unordered_set>

#include "common/ascii.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/watermark.h"

namespace dx::agent {
namespace {

// ODBC SQL type codes (from sql.h), kept here so the header stays free of it.
enum TypeFamily {
  kFamilyInteger,
  kFamilyNumeric,
  kFamilyText,
  kFamilyDate,
  kFamilyTime,
  kFamilyOther
};

TypeFamily FamilyOf(int16_t sql_type) {
  switch (sql_type) {
    case 4:
    case 5:
    case -5:
    case -6:
    case -7:
      return kFamilyInteger;
    case 2:
    case 3:
    case 6:
    case 7:
    case 8:
      return kFamilyNumeric;
    case 1:
    case 12:
    case -1:
    case -8:
    case -9:
    case -10:
      return kFamilyText;
    case 9:
    case 91:
      return kFamilyDate;
    case 11:
    case 93:
      return kFamilyTime;
    default:
      return kFamilyOther;
  }
}

bool Compatible(const ColumnSpec& want, const DbColumnInfo& have) {
  TypeFamily f = FamilyOf(have.data_type);
  if (f == kFamilyOther) return true;  // a type we cannot judge: let the write decide
  switch (want.type) {
    case ColumnType::kInteger:
    case ColumnType::kBigint:
      return f == kFamilyInteger || f == kFamilyNumeric;
    case ColumnType::kDecimal:
      return f == kFamilyNumeric || f == kFamilyInteger;
    case ColumnType::kVarchar:
    case ColumnType::kChar:
    case ColumnType::kText:
      return f == kFamilyText;
    case ColumnType::kDate:
      return f == kFamilyDate || f == kFamilyTime || f == kFamilyText;
    case ColumnType::kDatetime:
      return f == kFamilyTime || f == kFamilyText;
  }
  return true;
}

TableSpec LedgerSpec() {
  TableSpec spec;
  spec.table = kLedgerTable;
  ColumnSpec sub{"subscription", ColumnType::kVarchar, 200, 0, true, true};
  ColumnSpec seq{"batch_seq", ColumnType::kBigint, 0, 0, true, false};
  ColumnSpec wm{"watermark", ColumnType::kText, 0, 0, false, false};
  ColumnSpec at{"updated_at", ColumnType::kVarchar, 32, 0, false, false};
  spec.columns = {sub, seq, wm, at};
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

}  // namespace

std::vector<size_t> CollapseRepeatedKeys(const RowBatch& rows, const std::vector<size_t>& keys) {
  std::vector<size_t> order;
  order.reserve(rows.rows());
  std::unordered_set<std::string> seen;
  seen.reserve(rows.rows() * 2);
  std::string key;
  for (size_t r = rows.rows(); r-- > 0;) {
    key.clear();
    for (size_t k : keys) {
      std::string_view cell = rows.Cell(r, k);
      key += std::to_string(cell.size());
      key += ':';
      key.append(cell.data(), cell.size());
    }
    if (seen.insert(key).second) order.push_back(r);
  }
  std::reverse(order.begin(), order.end());
  return order;
}

TableWriter::TableWriter(std::string connection_string, std::unique_ptr<OdbcConnection> conn,
                         Dbms dbms)
    : connection_string_(std::move(connection_string)),
      conn_(std::move(conn)),
      dialect_(dbms),
      ledger_spec_(LedgerSpec()),
      files_spec_(FilesSpec()) {}

Result<std::unique_ptr<TableWriter>> TableWriter::Open(const std::string& connection_string) {
  DX_ASSIGN_OR_RETURN(auto conn, OdbcConnection::Open(connection_string));
  Dbms dbms = DbmsFromName(conn->dbms_name());
  std::unique_ptr<TableWriter> writer(new TableWriter(connection_string, std::move(conn), dbms));
  DX_RETURN_IF_ERROR(writer->LoadLedger());
  LOG_INFO("local database: " << writer->conn_->dbms_name() << " via "
                              << writer->conn_->driver_name() << " (dialect " << DbmsLabel(dbms)
                              << "), " << writer->ledger_.size()
                              << " subscription(s) in the ledger");
  return writer;
}

Result<std::unique_ptr<TableWriter>> TableWriter::OpenWhenReachable(
    const std::string& connection_string, int min_backoff_ms, int max_backoff_ms,
    const std::atomic<bool>& stop) {
  int backoff_ms = min_backoff_ms;
  while (true) {
    auto writer = Open(connection_string);
    if (writer.ok() || !IsRetryable(writer.status()) || stop) return writer;
    LOG_WARN("local database unreachable (" << writer.status().message() << "); retrying in "
                                            << backoff_ms << " ms");
    for (int waited = 0; waited < backoff_ms && !stop; waited += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff_ms = std::min(backoff_ms * 2, max_backoff_ms);
  }
}

Status TableWriter::Check(Status st) {
  if (st.code() == StatusCode::kUnavailable) broken_ = true;
  return st;
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
  DX_RETURN_IF_ERROR(LoadLedger());
  broken_ = false;
  LOG_INFO("reconnected to the local database");
  return Status::Ok();
}

Status TableWriter::LoadLedger() {
  DX_ASSIGN_OR_RETURN(auto cols, conn_->Columns(kLedgerTable));
  if (cols.empty()) {
    DX_RETURN_IF_ERROR(conn_->Execute(dialect_.CreateTable(ledger_spec_)));
  }
  DX_ASSIGN_OR_RETURN(auto file_cols, conn_->Columns(kFilesTable));
  if (file_cols.empty()) {
    DX_RETURN_IF_ERROR(conn_->Execute(dialect_.CreateTable(files_spec_)));
  }
  DX_RETURN_IF_ERROR(conn_->SetAutocommit(false));
  DX_ASSIGN_OR_RETURN(auto stmt, conn_->Prepare("SELECT subscription, batch_seq, watermark FROM " +
                                                dialect_.Quote(kLedgerTable)));
  DX_RETURN_IF_ERROR(stmt->Execute());
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, stmt->Fetch());
    if (!row) break;
    LedgerEntry e;
    std::string seq;
    DX_RETURN_IF_ERROR(stmt->GetText(0, &e.subscription).status());
    DX_RETURN_IF_ERROR(stmt->GetText(1, &seq).status());
    DX_RETURN_IF_ERROR(stmt->GetText(2, &e.watermark).status());
    e.batch_seq = std::stoull(seq);
    ledger_[e.subscription] = e;
  }
  stmt.reset();
  DX_RETURN_IF_ERROR(conn_->Commit());
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
  for (const auto& [name, entry] : ledger_) out.push_back(entry);
  return out;
}

Status TableWriter::CheckColumns(const TableSpec& spec, const std::vector<DbColumnInfo>& existing) {
  for (const ColumnSpec& want : spec.columns) {
    auto it = std::find_if(existing.begin(), existing.end(), [&](const DbColumnInfo& c) {
      return AsciiLower(c.name) == AsciiLower(want.name);
    });
    if (it == existing.end()) {
      return FailedPrecondition("target table '" + spec.table + "' has no column '" + want.name +
                                "' required by the catalog");
    }
    if (!Compatible(want, *it)) {
      return FailedPrecondition("target table '" + spec.table + "' column '" + want.name + "' is " +
                                it->type_name + ", the catalog says " + ColumnTypeName(want));
    }
    bool text = want.type == ColumnType::kVarchar || want.type == ColumnType::kChar;
    if (text && it->size > 0 && it->size < want.length) {
      return FailedPrecondition("target table '" + spec.table + "' column '" + want.name +
                                "' holds " + std::to_string(it->size) +
                                " characters, the catalog says " + ColumnTypeName(want));
    }
  }
  return Status::Ok();
}

Result<LedgerEntry> TableWriter::BeginTable(const TableBegin& begin) {
  DX_RETURN_IF_ERROR(Check(EnsureConnected()));
  for (const ColumnSpec& c : begin.spec.columns) {
    if (!IsValidIdentifier(c.name)) return InvalidArgument("bad column name '" + c.name + "'");
  }
  if (!IsValidIdentifier(begin.spec.table) || begin.spec.table == kLedgerTable) {
    return InvalidArgument("bad target table name '" + begin.spec.table + "'");
  }
  if (begin.spec.KeyIndexes().empty()) return InvalidArgument("table spec has no primary key");
  auto columns = conn_->Columns(begin.spec.table);
  if (!columns.ok()) return Check(columns.status());
  const std::vector<DbColumnInfo>& existing = columns.value();
  Status st;
  if (existing.empty()) {
    st = conn_->Execute(dialect_.CreateTable(begin.spec));
    if (st.ok()) st = conn_->Commit();
    if (!st.ok()) {
      (void)conn_->Rollback();
      return Check(st).Annotate("create table " + begin.spec.table);
    }
    LOG_INFO("created table " << begin.spec.table << " for " << begin.subscription);
  } else {
    DX_RETURN_IF_ERROR(CheckColumns(begin.spec, existing));
  }
  TableState& state = tables_[begin.subscription];
  state = TableState();
  state.spec = begin.spec;
  LedgerEntry& entry = ledger_[begin.subscription];
  entry.subscription = begin.subscription;
  if (begin.reset) {
    // One clearing per resync request: the id is recorded with it, so a resync retried after
    // a crash resumes its load (unless the table had to be created again).
    auto held = Watermark::Decode(entry.watermark);
    if (!begin.reset_id.empty() && !existing.empty() && held.ok() &&
        held->resync == begin.reset_id) {
      LOG_INFO("resync of " << begin.subscription << ": table " << begin.spec.table
                            << " already cleared for this request; resuming its load");
      return entry;
    }
    LedgerEntry reset = entry;
    Watermark cleared;
    cleared.resync = begin.reset_id;
    reset.watermark = cleared.Encode();
    st = conn_->Execute("DELETE FROM " + dialect_.Quote(begin.spec.table));
    if (st.ok()) st = WriteLedger(reset);
    if (st.ok()) st = conn_->Commit();
    if (!st.ok()) {
      (void)conn_->Rollback();
      return Check(st).Annotate("reset " + begin.spec.table);
    }
    entry = reset;
    LOG_INFO("resync of " << begin.subscription << ": cleared table " << begin.spec.table);
  }
  return entry;
}

Result<OdbcStatement*> TableWriter::UpsertStatement(TableState& state, int rows) {
  auto it = state.upserts.find(rows);
  if (it != state.upserts.end()) return it->second.get();
  DX_ASSIGN_OR_RETURN(auto stmt, conn_->Prepare(dialect_.Upsert(state.spec, rows)));
  DX_RETURN_IF_ERROR(stmt->DeclareParams(state.spec.columns.size() * rows));
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
    for (size_t k : keys) {
      where += (where.empty() ? "" : " AND ") + dialect_.Quote(spec.columns[k].name) + " = ?";
    }
    DX_ASSIGN_OR_RETURN(
        state.delete_by_key,
        conn_->Prepare("DELETE FROM " + dialect_.Quote(spec.table) + " WHERE " + where));
    DX_RETURN_IF_ERROR(state.delete_by_key->DeclareParams(keys.size()));
    std::string cols;
    std::string marks;
    for (const ColumnSpec& c : spec.columns) {
      cols += (cols.empty() ? "" : ", ") + dialect_.Quote(c.name);
      marks += marks.empty() ? "?" : ", ?";
    }
    DX_ASSIGN_OR_RETURN(state.insert_row,
                        conn_->Prepare("INSERT INTO " + dialect_.Quote(spec.table) + " (" + cols +
                                       ") VALUES (" + marks + ")"));
    DX_RETURN_IF_ERROR(state.insert_row->DeclareParams(spec.columns.size()));
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

Status TableWriter::WriteLedger(const LedgerEntry& entry) {
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(0, entry.subscription));
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(1, std::to_string(entry.batch_seq)));
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(2, entry.watermark));
  DX_RETURN_IF_ERROR(ledger_upsert_->SetParam(
      3, FormatLocalTime(ToUnixSeconds(std::chrono::system_clock::now()))));
  DX_RETURN_IF_ERROR(ledger_upsert_->Execute());
  return ledger_upsert_->CloseCursor();
}

Status TableWriter::RecordFiles(const std::vector<ReceivedFile>& files) {
  DX_RETURN_IF_ERROR(Check(EnsureConnected()));
  Status st;
  for (const ReceivedFile& file : files) {
    if (!st.ok()) break;
    if (file.deleted) {
      st = file_delete_->SetParam(0, file.subscription);
      if (st.ok()) st = file_delete_->SetParam(1, file.path);
      if (st.ok()) st = file_delete_->Execute();
      if (st.ok()) st = file_delete_->CloseCursor();
    } else {
      const std::string values[] = {
          file.subscription, file.path, std::to_string(file.size), file.sha256,
          FormatLocalTime(ToUnixSeconds(std::chrono::system_clock::now()))};
      for (size_t i = 0; i < 5 && st.ok(); ++i) st = file_upsert_->SetParam(i, values[i]);
      if (st.ok()) st = file_upsert_->Execute();
      if (st.ok()) st = file_upsert_->CloseCursor();
    }
  }
  if (st.ok()) st = conn_->Commit();
  if (!st.ok()) {
    (void)conn_->Rollback();
    return Check(st).Annotate("record received files");
  }
  return Status::Ok();
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
  LedgerEntry& entry = ledger_[subscription];
  ApplyOutcome outcome;
  if (seq <= entry.batch_seq) {
    outcome.duplicate = true;
    return outcome;
  }
  if (seq != entry.batch_seq + 1) {
    return DataLoss("batch " + std::to_string(seq) + " for " + subscription + " arrived but " +
                    std::to_string(entry.batch_seq + 1) + " is next");
  }
  if (rows.columns() != state.spec.columns.size()) {
    return InvalidArgument("batch has " + std::to_string(rows.columns()) + " columns, table " +
                           state.spec.table + " expects " +
                           std::to_string(state.spec.columns.size()));
  }
  std::vector<size_t> order = CollapseRepeatedKeys(rows, state.spec.KeyIndexes());
  LedgerEntry next = entry;
  next.batch_seq = seq;
  next.watermark = watermark;
  Status st =
      dialect_.HasUpsert() ? WriteRows(state, rows, order) : WriteGeneric(state, rows, order);
  if (st.ok()) st = WriteLedger(next);
  if (st.ok()) st = conn_->Commit();
  if (!st.ok()) {
    (void)conn_->Rollback();
    return Check(st).Annotate("apply batch " + std::to_string(seq) + " of " + subscription);
  }
  entry = next;
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
  LedgerEntry& entry = ledger_[subscription];
  ApplyOutcome outcome;
  if (seq <= entry.batch_seq) {
    outcome.duplicate = true;
    return outcome;
  }
  if (seq != entry.batch_seq + 1) {
    return DataLoss("repair " + std::to_string(seq) + " for " + subscription + " arrived but " +
                    std::to_string(entry.batch_seq + 1) + " is next");
  }
  const std::vector<size_t> keys = state.spec.KeyIndexes();
  if ((rows.rows() > 0 && rows.columns() != state.spec.columns.size()) ||
      (delete_keys.rows() > 0 && delete_keys.columns() != keys.size())) {
    return InvalidArgument("repair for " + subscription + " does not fit table " +
                           state.spec.table);
  }
  LedgerEntry next = entry;
  next.batch_seq = seq;  // the watermark stays: a repair never moves it
  Status st;
  if (delete_keys.rows() > 0) {
    std::string where;
    for (size_t k : keys) {
      const ColumnSpec& c = state.spec.columns[k];
      where +=
          (where.empty() ? "" : " AND ") + dialect_.Quote(c.name) + " = " + dialect_.Placeholder(c);
    }
    auto del =
        conn_->Prepare("DELETE FROM " + dialect_.Quote(state.spec.table) + " WHERE " + where);
    st = del.status();
    if (st.ok()) st = (*del)->DeclareParams(keys.size());
    for (size_t r = 0; st.ok() && r < delete_keys.rows(); ++r) {
      for (size_t k = 0; st.ok() && k < keys.size(); ++k) {
        st = (*del)->SetParam(k, delete_keys.Cell(r, k));
      }
      if (st.ok()) st = (*del)->Execute();
      if (st.ok()) st = (*del)->CloseCursor();
    }
  }
  std::vector<size_t> order = CollapseRepeatedKeys(rows, keys);
  if (st.ok() && !order.empty()) {
    st = dialect_.HasUpsert() ? WriteRows(state, rows, order) : WriteGeneric(state, rows, order);
  }
  if (st.ok()) st = WriteLedger(next);
  if (st.ok()) st = conn_->Commit();
  if (!st.ok()) {
    (void)conn_->Rollback();
    return Check(st).Annotate("apply repair " + std::to_string(seq) + " of " + subscription);
  }
  entry = next;
  outcome.rows_written = order.size() + delete_keys.rows();
  return outcome;
}

}  // namespace dx::agent
