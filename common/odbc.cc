#include "common/odbc.h"

#include <sql.h>
#include <sqlext.h>

#include <algorithm>
#include <cstring>

#include "common/ascii.h"
#include "common/sql_dialect.h"

namespace dx {
namespace {

// Collects the diagnostic records of a handle into one message and a status code.
Status Diagnose(SQLSMALLINT handle_type, SQLHANDLE handle, const std::string& what) {
  std::string message;
  std::string first_state;
  SQLCHAR state[6];
  SQLCHAR text[1024];
  SQLINTEGER native = 0;
  SQLSMALLINT len = 0;
  for (SQLSMALLINT i = 1; i <= 5; ++i) {
    SQLRETURN rc = SQLGetDiagRec(handle_type, handle, i, state, &native, text, sizeof(text), &len);
    if (!SQL_SUCCEEDED(rc)) break;
    if (first_state.empty()) first_state = reinterpret_cast<char*>(state);
    if (!message.empty()) message += "; ";
    message +=
        std::string("[") + reinterpret_cast<char*>(state) + "] " + reinterpret_cast<char*>(text);
  }
  if (message.empty()) message = "unknown ODBC error";
  // One line per event in logs and run history: drivers' multi-line messages are folded.
  for (char& c : message) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!message.empty() && message.back() == ' ') message.pop_back();
  return Status(CodeForSqlState(first_state, message), what + ": " + message);
}

std::string GetInfoString(SQLHDBC dbc, SQLUSMALLINT info) {
  char buf[256] = {0};
  SQLSMALLINT len = 0;
  if (!SQL_SUCCEEDED(SQLGetInfo(dbc, info, buf, sizeof(buf), &len))) return "";
  return std::string(buf);
}

}  // namespace

std::string WithConnectionOptions(const std::string& conn, const std::string& options) {
  std::string out = conn;
  std::string lower = AsciiLower(conn);
  size_t start = 0;
  while (start < options.size()) {
    size_t end = options.find(';', start);
    if (end == std::string::npos) end = options.size();
    std::string opt = options.substr(start, end - start);
    std::string key = AsciiLower(opt.substr(0, opt.find('=')));
    if (lower.find(key + "=") == std::string::npos) {
      if (!out.empty() && out.back() != ';') out += ";";
      out += opt;
    }
    start = end + 1;
  }
  return out;
}

StatusCode CodeForSqlState(const std::string& sqlstate, const std::string& message) {
  std::string m = AsciiLower(message);
  if (sqlstate.rfind("08", 0) == 0 || sqlstate == "HYT00" || sqlstate == "HYT01" ||
      sqlstate == "40001" || sqlstate == "40P01" ||
      m.find("database is locked") != std::string::npos ||
      m.find("could not connect") != std::string::npos ||
      m.find("can't connect") != std::string::npos ||
      m.find("connection refused") != std::string::npos ||
      m.find("server closed the connection") != std::string::npos ||
      m.find("lost connection") != std::string::npos || m.find("gone away") != std::string::npos ||
      m.find("disk i/o error") != std::string::npos) {
    return StatusCode::kUnavailable;
  }
  // Data and constraint errors; sqliteodbc reports them all as HY000, so the text decides.
  if (sqlstate.rfind("22", 0) == 0 || sqlstate.rfind("23", 0) == 0 ||
      sqlstate.rfind("42", 0) == 0 || m.find("constraint failed") != std::string::npos ||
      m.find("datatype mismatch") != std::string::npos ||
      m.find("syntax error") != std::string::npos) {
    return StatusCode::kInvalidArgument;
  }
  // Unknown failures at a database are treated as transient: retrying is safe because nothing
  // is acknowledged until it is committed.
  return StatusCode::kUnavailable;
}

bool IsLockConflict(const Status& status) {
  if (status.ok()) return false;
  const std::string m = AsciiLower(status.message());
  for (const char* sign : {"database is locked", "database table is locked", "lock wait timeout",
                           "deadlock", "lock timeout", "[40001]", "[40p01]", "[55p03]"}) {
    if (m.find(sign) != std::string::npos) return true;
  }
  return false;
}

Result<std::unique_ptr<OdbcConnection>> OdbcConnection::Open(const std::string& conn_str,
                                                             bool add_driver_options) {
  std::unique_ptr<OdbcConnection> conn(new OdbcConnection());
  DX_RETURN_IF_ERROR(conn->Connect(conn_str));
  if (!add_driver_options) return conn;
  std::string options = SqlDialect::ConnectionOptions(conn->driver_name_);
  if (!options.empty()) {
    std::string tuned = WithConnectionOptions(conn_str, options);
    if (tuned != conn_str) {
      conn->Disconnect();
      DX_RETURN_IF_ERROR(conn->Connect(tuned));
    }
  }
  return conn;
}

Status OdbcConnection::Connect(const std::string& conn_str) {
  if (env_ == nullptr) {
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env_))) {
      return Internal("cannot allocate ODBC environment");
    }
    SQLSetEnvAttr(env_, SQL_ATTR_ODBC_VERSION, reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0);
  }
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, env_, &dbc_))) {
    return Internal("cannot allocate ODBC connection");
  }
  SQLSetConnectAttr(dbc_, SQL_ATTR_LOGIN_TIMEOUT, reinterpret_cast<SQLPOINTER>(10), 0);
  SQLCHAR out[1024];
  SQLSMALLINT out_len = 0;
  SQLRETURN rc = SQLDriverConnect(dbc_, nullptr,
                                  reinterpret_cast<SQLCHAR*>(const_cast<char*>(conn_str.c_str())),
                                  SQL_NTS, out, sizeof(out), &out_len, SQL_DRIVER_NOPROMPT);
  if (!SQL_SUCCEEDED(rc)) {
    Status st = Diagnose(SQL_HANDLE_DBC, dbc_, "cannot connect");
    SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
    dbc_ = nullptr;
    // A missing driver or DSN is a configuration error, not something to retry.
    if (st.message().find("IM002") != std::string::npos) return InvalidArgument(st.message());
    return Unavailable(st.message());
  }
  connected_ = true;
  dbms_name_ = GetInfoString(dbc_, SQL_DBMS_NAME);
  driver_name_ = GetInfoString(dbc_, SQL_DRIVER_NAME);
  SQLUSMALLINT ic = 0;
  if (SQL_SUCCEEDED(SQLGetInfo(dbc_, SQL_IDENTIFIER_CASE, &ic, sizeof(ic), nullptr))) {
    identifier_case_ = ic;
  }
  return Status::Ok();
}

bool OdbcConnection::DriverSaysAlive() {
  if (!connected_) return false;
  SQLUINTEGER dead = SQL_CD_FALSE;
  SQLRETURN rc = SQLGetConnectAttr(dbc_, SQL_ATTR_CONNECTION_DEAD, &dead, 0, nullptr);
  return !SQL_SUCCEEDED(rc) || dead != SQL_CD_TRUE;
}

void OdbcConnection::Disconnect() {
  if (dbc_ != nullptr) {
    if (connected_) SQLDisconnect(dbc_);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
    dbc_ = nullptr;
  }
  connected_ = false;
}

OdbcConnection::~OdbcConnection() {
  Disconnect();
  if (env_ != nullptr) SQLFreeHandle(SQL_HANDLE_ENV, env_);
}

Status OdbcConnection::SetAutocommit(bool on) {
  SQLRETURN rc = SQLSetConnectAttr(
      dbc_, SQL_ATTR_AUTOCOMMIT,
      reinterpret_cast<SQLPOINTER>(on ? SQL_AUTOCOMMIT_ON : SQL_AUTOCOMMIT_OFF), 0);
  if (!SQL_SUCCEEDED(rc)) return Diagnose(SQL_HANDLE_DBC, dbc_, "set autocommit");
  return Status::Ok();
}

Status OdbcConnection::Commit() {
  if (!SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, dbc_, SQL_COMMIT))) {
    return Diagnose(SQL_HANDLE_DBC, dbc_, "commit");
  }
  return Status::Ok();
}

Status OdbcConnection::Rollback() {
  if (!SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, dbc_, SQL_ROLLBACK))) {
    return Diagnose(SQL_HANDLE_DBC, dbc_, "rollback");
  }
  return Status::Ok();
}

Status OdbcConnection::Execute(const std::string& sql) {
  SQLHSTMT stmt = nullptr;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc_, &stmt))) {
    return Diagnose(SQL_HANDLE_DBC, dbc_, "allocate statement");
  }
  SQLRETURN rc =
      SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(const_cast<char*>(sql.c_str())), SQL_NTS);
  Status st;
  if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) st = Diagnose(SQL_HANDLE_STMT, stmt, "execute");
  SQLFreeHandle(SQL_HANDLE_STMT, stmt);
  return st;
}

Result<std::unique_ptr<OdbcStatement>> OdbcConnection::Prepare(const std::string& sql) {
  SQLHSTMT stmt = nullptr;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc_, &stmt))) {
    return Diagnose(SQL_HANDLE_DBC, dbc_, "allocate statement");
  }
  std::unique_ptr<OdbcStatement> s(new OdbcStatement(this, stmt));
  SQLRETURN rc = SQLPrepare(stmt, reinterpret_cast<SQLCHAR*>(const_cast<char*>(sql.c_str())),
                            static_cast<SQLINTEGER>(sql.size()));
  if (!SQL_SUCCEEDED(rc)) return Diagnose(SQL_HANDLE_STMT, stmt, "prepare");
  return s;
}

Result<std::string> OdbcConnection::QueryScalar(const std::string& sql) {
  DX_ASSIGN_OR_RETURN(auto stmt, Prepare(sql));
  DX_RETURN_IF_ERROR(stmt->Execute());
  DX_ASSIGN_OR_RETURN(bool has_row, stmt->Fetch());
  std::string value;
  if (has_row) {
    DX_ASSIGN_OR_RETURN(bool not_null, stmt->GetText(0, &value));
    (void)not_null;
  }
  return value;
}

Result<std::vector<DbColumnInfo>> OdbcConnection::Columns(const std::string& table,
                                                          const std::string& schema) {
  SQLHSTMT stmt = nullptr;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc_, &stmt))) {
    return Diagnose(SQL_HANDLE_DBC, dbc_, "allocate statement");
  }
  std::unique_ptr<OdbcStatement> s(new OdbcStatement(this, stmt));
  SQLRETURN rc =
      SQLColumns(stmt, nullptr, 0, nullptr, 0,
                 reinterpret_cast<SQLCHAR*>(const_cast<char*>(table.c_str())), SQL_NTS, nullptr, 0);
  if (!SQL_SUCCEEDED(rc)) return Diagnose(SQL_HANDLE_STMT, stmt, "list columns of " + table);
  std::vector<DbColumnInfo> exact;
  std::vector<DbColumnInfo> folded;
  std::string folded_table;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, s->Fetch());
    if (!row) break;
    DbColumnInfo info;
    std::string text;
    std::string table_schema;
    std::string table_name;
    if (!s->GetText(1, &table_schema).ok()) table_schema.clear();
    DX_RETURN_IF_ERROR(s->GetText(2, &table_name).status());
    if (!schema.empty() && table_schema != schema) continue;
    DX_ASSIGN_OR_RETURN(bool has_name, s->GetText(3, &info.name));
    (void)has_name;
    if (s->GetText(4, &text).ok()) info.data_type = static_cast<int16_t>(std::atoi(text.c_str()));
    if (!s->GetText(5, &info.type_name).ok()) info.type_name.clear();
    if (s->GetText(6, &text).ok()) info.size = std::atoll(text.c_str());
    info.table = table_name;
    auto digits = s->GetText(8, &text);
    if (digits.ok() && digits.value() && !text.empty()) {
      info.decimal_digits = std::atoi(text.c_str());
    }
    if (table_name == table) {
      exact.push_back(std::move(info));
    } else if (AsciiLower(table_name) == AsciiLower(table)) {
      // One table only: a second spelling means the DBMS holds both; neither is meant.
      if (folded_table.empty()) folded_table = table_name;
      if (table_name == folded_table) folded.push_back(std::move(info));
    }
  }
  return exact.empty() ? folded : exact;
}

Result<std::vector<DbTableInfo>> OdbcConnection::Tables() {
  SQLHSTMT stmt = nullptr;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc_, &stmt))) {
    return Diagnose(SQL_HANDLE_DBC, dbc_, "allocate statement");
  }
  std::unique_ptr<OdbcStatement> s(new OdbcStatement(this, stmt));
  char all[] = "%";
  char types[] = "TABLE,VIEW";
  SQLRETURN rc = SQLTables(stmt, nullptr, 0, nullptr, 0, reinterpret_cast<SQLCHAR*>(all), SQL_NTS,
                           reinterpret_cast<SQLCHAR*>(types), SQL_NTS);
  if (!SQL_SUCCEEDED(rc)) return Diagnose(SQL_HANDLE_STMT, stmt, "list tables");
  std::vector<DbTableInfo> tables;
  while (true) {
    DX_ASSIGN_OR_RETURN(bool row, s->Fetch());
    if (!row) break;
    DbTableInfo info;
    if (!s->GetText(0, &info.catalog).ok()) info.catalog.clear();
    if (!s->GetText(1, &info.schema).ok()) info.schema.clear();
    DX_RETURN_IF_ERROR(s->GetText(2, &info.name).status());
    tables.push_back(std::move(info));
  }
  return tables;
}

std::string OdbcConnection::CurrentCatalog() {
  char buf[256] = {0};
  SQLINTEGER len = 0;
  if (!SQL_SUCCEEDED(SQLGetConnectAttr(dbc_, SQL_ATTR_CURRENT_CATALOG, buf, sizeof(buf) - 1, &len)))
    return "";
  return std::string(buf);
}

OdbcStatement::~OdbcStatement() {
  if (stmt_ != nullptr) SQLFreeHandle(SQL_HANDLE_STMT, stmt_);
}

Status OdbcStatement::DeclareParams(size_t count) {
  return DeclareParams(std::vector<ParamKind>(count, ParamKind::kText));
}

Status OdbcStatement::DeclareParams(const std::vector<ParamKind>& kinds) {
  if (kinds.size() > 65535) return InvalidArgument("more than 65,535 parameters in a statement");
  slots_.clear();
  slots_.resize(kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    slots_[i].buffer.resize(64);
    slots_[i].indicator = SQL_NULL_DATA;
    slots_[i].kind = kinds[i];
    DX_RETURN_IF_ERROR(BindSlot(i));
  }
  return Status::Ok();
}

Status OdbcStatement::BindSlot(size_t i) {
  Slot& slot = slots_[i];
  // Binary goes as SQL_VARBINARY: psqlODBC would take SQL_LONGVARBINARY for a large object.
  const bool binary = slot.kind == ParamKind::kBinary;
  SQLRETURN rc = SQLBindParameter(
      stmt_, static_cast<SQLUSMALLINT>(i + 1), SQL_PARAM_INPUT, binary ? SQL_C_BINARY : SQL_C_CHAR,
      binary ? SQL_VARBINARY : SQL_VARCHAR, slot.buffer.size(), 0, slot.buffer.data(),
      static_cast<SQLLEN>(slot.buffer.size()), reinterpret_cast<SQLLEN*>(&slot.indicator));
  if (!SQL_SUCCEEDED(rc)) return Diagnose(SQL_HANDLE_STMT, stmt_, "bind parameter");
  return Status::Ok();
}

Status OdbcStatement::SetParam(size_t i, std::string_view value) {
  Slot& slot = slots_[i];
  if (value.size() + 1 > slot.buffer.size()) {
    slot.buffer.resize(std::max(value.size() + 1, slot.buffer.size() * 2));
    DX_RETURN_IF_ERROR(BindSlot(i));
  }
  if (!value.empty()) std::memcpy(slot.buffer.data(), value.data(), value.size());
  slot.buffer[value.size()] = '\0';
  if (slot.kind == ParamKind::kBinary) {
    slot.indicator = static_cast<int64_t>(value.size());
    return BindSlot(i);
  }
  // Text without a NUL goes as a terminated string (SQL_NTS): sqliteodbc copies a value given
  // with its length into a buffer of its own, for every parameter of every execution.
  const bool has_nul = std::memchr(value.data(), '\0', value.size()) != nullptr;
  slot.indicator = has_nul ? static_cast<int64_t>(value.size()) : SQL_NTS;
  return Status::Ok();
}

void OdbcStatement::SetNull(size_t i) { slots_[i].indicator = SQL_NULL_DATA; }

Status OdbcStatement::Execute() {
  SQLRETURN rc = SQLExecute(stmt_);
  if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) return Diagnose(SQL_HANDLE_STMT, stmt_, "execute");
  return Status::Ok();
}

Status OdbcStatement::CloseCursor() {
  SQLFreeStmt(stmt_, SQL_CLOSE);
  return Status::Ok();
}

Result<size_t> OdbcStatement::ColumnCount() {
  SQLSMALLINT n = 0;
  if (!SQL_SUCCEEDED(SQLNumResultCols(stmt_, &n))) {
    return Diagnose(SQL_HANDLE_STMT, stmt_, "count columns");
  }
  return static_cast<size_t>(n);
}

Result<bool> OdbcStatement::Fetch() {
  SQLRETURN rc = SQLFetch(stmt_);
  if (rc == SQL_NO_DATA) return false;
  if (!SQL_SUCCEEDED(rc)) return Diagnose(SQL_HANDLE_STMT, stmt_, "fetch");
  return true;
}

Result<bool> OdbcStatement::GetText(size_t index, std::string* out) {
  return GetData(index, false, out);
}

Result<bool> OdbcStatement::GetBytes(size_t index, std::string* out) {
  return GetData(index, true, out);
}

Result<bool> OdbcStatement::GetData(size_t index, bool binary, std::string* out) {
  out->clear();
  if (read_buffer_.empty()) read_buffer_.resize(4096);
  auto col = static_cast<SQLUSMALLINT>(index + 1);
  // The first part is read into 256 bytes only: sqliteodbc fills the whole buffer it is given
  // (strncpy) on every call, which for 4 KiB cost more than the rest of reading a short cell
  // (reconcile benchmark, perf). Longer values continue in 4 KiB parts.
  size_t part = 256;
  while (true) {
    SQLLEN ind = 0;
    SQLRETURN rc = SQLGetData(stmt_, col, binary ? SQL_C_BINARY : SQL_C_CHAR, read_buffer_.data(),
                              static_cast<SQLLEN>(part), &ind);
    if (rc == SQL_NO_DATA) return true;
    if (!SQL_SUCCEEDED(rc)) return Diagnose(SQL_HANDLE_STMT, stmt_, "read column");
    if (ind == SQL_NULL_DATA) return false;
    // Room for the value in this part: text leaves one byte for the terminator.
    size_t avail = part - (binary ? 0 : 1);
    if (rc == SQL_SUCCESS_WITH_INFO && (ind == SQL_NO_TOTAL || static_cast<size_t>(ind) > avail)) {
      out->append(read_buffer_.data(), avail);  // truncated: more parts follow
      part = read_buffer_.size();
      continue;
    }
    out->append(read_buffer_.data(), static_cast<size_t>(ind));
    return true;
  }
}

}  // namespace dx
