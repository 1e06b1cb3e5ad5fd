#include "common/sql_dialect.h"

#include <algorithm>
#include <cctype>

#include "common/ascii.h"

namespace dx {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

Dbms DbmsFromName(const std::string& dbms_name) {
  std::string n = AsciiLower(dbms_name);
  if (Contains(n, "sqlite")) return Dbms::kSqlite;
  if (Contains(n, "postgres")) return Dbms::kPostgres;
  if (Contains(n, "mysql") || Contains(n, "mariadb")) return Dbms::kMysql;
  return Dbms::kGeneric;
}

const char* DbmsLabel(Dbms dbms) {
  switch (dbms) {
    case Dbms::kSqlite:
      return "sqlite";
    case Dbms::kPostgres:
      return "postgresql";
    case Dbms::kMysql:
      return "mysql";
    case Dbms::kGeneric:
      return "generic";
  }
  return "generic";
}

Result<NameCase> ParseNameCase(const std::string& text) {
  std::string t = AsciiLower(text);
  if (t == "lower") return NameCase::kLower;
  if (t == "upper") return NameCase::kUpper;
  if (t == "preserve") return NameCase::kPreserve;
  return InvalidArgument("expected lower, upper or preserve, not '" + text + "'");
}

const char* NameCaseLabel(NameCase name_case) {
  switch (name_case) {
    case NameCase::kLower:
      return "lower";
    case NameCase::kUpper:
      return "upper";
    case NameCase::kPreserve:
      return "preserve";
  }
  return "preserve";
}

NameCase NaturalNameCase(Dbms dbms, int driver_identifier_case) {
  switch (dbms) {
    case Dbms::kPostgres:
      return NameCase::kLower;
    case Dbms::kSqlite:
    case Dbms::kMysql:
      return NameCase::kPreserve;
    case Dbms::kGeneric:
      break;
  }
  // SQL_IC_UPPER = 1, SQL_IC_LOWER = 2 (sqlext.h).
  if (driver_identifier_case == 1) return NameCase::kUpper;
  if (driver_identifier_case == 2) return NameCase::kLower;
  return NameCase::kPreserve;
}

std::string ApplyNameCase(const std::string& name, NameCase name_case) {
  std::string out = name;
  for (char& c : out) {
    if (name_case == NameCase::kLower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name_case == NameCase::kUpper)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string SqlDialect::Quote(const std::string& identifier) const {
  // Identifiers are validated (IsValidIdentifier) before they reach SQL; quoting keeps case.
  if (dbms_ == Dbms::kMysql) return "`" + identifier + "`";
  return "\"" + identifier + "\"";
}

std::string SqlDialect::ColumnTypeSql(const ColumnSpec& c) const {
  const std::string len = std::to_string(c.length);
  switch (c.type) {
    case ColumnType::kInteger:
      return dbms_ == Dbms::kSqlite ? "INTEGER" : "INT";
    case ColumnType::kBigint:
      return dbms_ == Dbms::kSqlite ? "INTEGER" : "BIGINT";
    case ColumnType::kDecimal:
      // SQLite's numeric affinity keeps 15 significant digits: wider decimals stay text,
      // exactly as they travel (docs/DECISIONS.md, "Exact values").
      if (dbms_ == Dbms::kSqlite && c.length > 15) return "TEXT";
      return (dbms_ == Dbms::kPostgres ? "NUMERIC(" : "DECIMAL(") + len + "," +
             std::to_string(c.scale) + ")";
    case ColumnType::kVarchar:
      return "VARCHAR(" + len + ")";
    case ColumnType::kChar:
      return "CHAR(" + len + ")";
    case ColumnType::kText:
      if (dbms_ == Dbms::kMysql) return "LONGTEXT";
      if (dbms_ == Dbms::kGeneric) return "VARCHAR(4000)";
      return "TEXT";
    case ColumnType::kDate:
      return "DATE";
    case ColumnType::kDatetime: {
      // Without a precision PostgreSQL keeps microseconds and MariaDB whole seconds; a
      // catalog precision is passed on (docs/DECISIONS.md, "Exact values").
      const std::string p = c.length > 0 ? "(" + len + ")" : "";
      if (dbms_ == Dbms::kSqlite) return "DATETIME";
      if (dbms_ == Dbms::kMysql) return "DATETIME" + p;
      return "TIMESTAMP" + p;
    }
    case ColumnType::kBlob:
      if (dbms_ == Dbms::kPostgres) return "BYTEA";
      if (dbms_ == Dbms::kMysql) return "LONGBLOB";
      return "BLOB";
    case ColumnType::kVarbinary:
      if (dbms_ == Dbms::kPostgres) return "BYTEA";
      if (dbms_ == Dbms::kSqlite) return "BLOB";  // "VARBINARY" would get numeric affinity
      return "VARBINARY(" + len + ")";
  }
  return "TEXT";
}

std::string SqlDialect::CreateTable(const TableSpec& spec) const {
  std::string sql = "CREATE TABLE " + Quote(spec.table) + " (";
  std::string keys;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const ColumnSpec& c = spec.columns[i];
    if (i > 0) sql += ", ";
    sql += Quote(c.name) + " " + ColumnTypeSql(c);
    if (c.not_null || c.primary_key) sql += " NOT NULL";
    if (c.primary_key) keys += (keys.empty() ? "" : ", ") + Quote(c.name);
  }
  if (!keys.empty()) sql += ", PRIMARY KEY (" + keys + ")";
  sql += ")";
  if (dbms_ == Dbms::kMysql) sql += " DEFAULT CHARSET=utf8mb4";
  return sql;
}

std::string SqlDialect::Placeholder(const ColumnSpec& c) const {
  if (dbms_ != Dbms::kPostgres) return "?";
  switch (c.type) {
    case ColumnType::kInteger:
      return "CAST(? AS INT)";
    case ColumnType::kBigint:
      return "CAST(? AS BIGINT)";
    case ColumnType::kDecimal:
      return "CAST(? AS NUMERIC)";
    case ColumnType::kDate:
      return "CAST(? AS DATE)";
    case ColumnType::kDatetime:
      return "CAST(? AS TIMESTAMP)";
    case ColumnType::kBlob:
    case ColumnType::kVarbinary:
      return "CAST(? AS BYTEA)";
    default:
      return "?";
  }
}

std::string SqlDialect::Upsert(const TableSpec& spec, int rows) const {
  std::string cols;
  std::string tuple = "(";
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    if (i > 0) {
      cols += ", ";
      tuple += ", ";
    }
    cols += Quote(spec.columns[i].name);
    tuple += Placeholder(spec.columns[i]);
  }
  tuple += ")";
  std::string sql;
  if (dbms_ == Dbms::kSqlite) sql = "WITH _dx AS (SELECT 1) ";
  sql += "INSERT INTO " + Quote(spec.table) + " (" + cols + ") VALUES ";
  sql.reserve(sql.size() + (tuple.size() + 1) * rows + 200);
  for (int r = 0; r < rows; ++r) {
    if (r > 0) sql += ",";
    sql += tuple;
  }
  std::string keys;
  std::string updates;
  for (const ColumnSpec& c : spec.columns) {
    if (c.primary_key) {
      keys += (keys.empty() ? "" : ", ") + Quote(c.name);
    } else if (dbms_ == Dbms::kMysql) {
      updates += (updates.empty() ? "" : ", ") + Quote(c.name) + "=VALUES(" + Quote(c.name) + ")";
    } else {
      updates += (updates.empty() ? "" : ", ") + Quote(c.name) + "=excluded." + Quote(c.name);
    }
  }
  if (dbms_ == Dbms::kMysql) {
    // With only key columns there is nothing to update; a no-op assignment keeps it an upsert.
    if (updates.empty())
      updates = keys.substr(0, keys.find(',')) + "=" + keys.substr(0, keys.find(','));
    sql += " ON DUPLICATE KEY UPDATE " + updates;
  } else if (updates.empty()) {
    sql += " ON CONFLICT (" + keys + ") DO NOTHING";
  } else {
    sql += " ON CONFLICT (" + keys + ") DO UPDATE SET " + updates;
  }
  return sql;
}

int SqlDialect::RowsPerStatement(size_t columns) const {
  if (columns == 0) return 1;
  int limit = 1;
  switch (dbms_) {
    case Dbms::kSqlite:
      limit = 100;
      break;  // limits.md: 100-tuple VALUES is the best shape
    case Dbms::kPostgres:
      limit = 1000;
      break;  // limits.md P3: 1000-tuple VALUES
    case Dbms::kMysql:
      limit = 500;
      break;
    case Dbms::kGeneric:
      limit = 1;
      break;
  }
  int by_params = static_cast<int>(MaxParameters() / columns);
  return std::max(1, std::min(limit, by_params));
}

size_t SqlDialect::MaxParameters() const {
  switch (dbms_) {
    case Dbms::kPostgres:
      // psqlODBC 13.02 with server-side prepare loses synchronisation above 7,498 parameters
      // (its ParameterDescription message passes 30,000 bytes), whatever the types.
      return 6500;
    case Dbms::kMysql:
      // MariaDB Connector/ODBC 3.1: "Memory allocation error" above 32,767.
      return 28000;
    case Dbms::kSqlite:
      // unixODBC numbers parameters in 16 bits (65,535); SQLite builds other than Debian's
      // stop at 32,766 (SQLITE_MAX_VARIABLE_NUMBER).
      return 28000;
    case Dbms::kGeneric:
      break;
  }
  return 1000;
}

std::vector<std::string> SqlDialect::SessionSetup(int lock_timeout_ms) const {
  const std::string ms = std::to_string(std::max(1, lock_timeout_ms));
  switch (dbms_) {
    case Dbms::kSqlite:
      return {};  // sqliteodbc waits in its own loop: see LockTimeoutOption
    case Dbms::kPostgres:
      return {"SET lock_timeout = " + ms};
    case Dbms::kMysql:
      // Whole seconds, at least one.
      return {"SET SESSION innodb_lock_wait_timeout = " +
              std::to_string(std::max(1, (lock_timeout_ms + 999) / 1000))};
    case Dbms::kGeneric:
      break;
  }
  return {};
}

std::string SqlDialect::LockTimeoutOption(int lock_timeout_ms) const {
  // sqliteodbc retries a busy database in its own loop (100,000 ms by default), whatever
  // PRAGMA busy_timeout says, and a statement waits about twice its Timeout (measured:
  // Timeout=300 gave up after 640 ms, Timeout=1000 after 2,050 ms).
  if (dbms_ == Dbms::kSqlite) {
    return "Timeout=" + std::to_string(std::max(1, lock_timeout_ms / 2));
  }
  return "";
}

std::string SqlDialect::AnyRowQuery(const std::string& table) const {
  if (dbms_ == Dbms::kGeneric) return "SELECT COUNT(*) FROM " + Quote(table);
  return "SELECT COUNT(*) FROM (SELECT 1 FROM " + Quote(table) + " LIMIT 1) dx_any";
}

std::string SqlDialect::NowQuery() const {
  switch (dbms_) {
    case Dbms::kSqlite:
      return "SELECT datetime('now','localtime')";
    case Dbms::kPostgres:
      return "SELECT to_char(LOCALTIMESTAMP, 'YYYY-MM-DD HH24:MI:SS')";
    case Dbms::kMysql:
      return "SELECT DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s')";
    case Dbms::kGeneric:
      return "SELECT CURRENT_TIMESTAMP";
  }
  return "SELECT CURRENT_TIMESTAMP";
}

std::string SqlDialect::ConnectionOptions(const std::string& driver_name) {
  std::string d = AsciiLower(driver_name);
  // psqlODBC: stream SELECT results through a cursor instead of fetching them whole
  // (limits.md P1), and use transaction-level rollback to avoid a savepoint per execute.
  if (Contains(d, "psqlodbc")) return "UseDeclareFetch=1;Fetch=2000;Protocol=7.4-1;CommLog=0";
  // sqliteodbc: without StepAPI a SELECT is materialised whole (sqlite3_get_table).
  if (Contains(d, "sqlite")) return "StepAPI=1";
  return "";
}

}  // namespace dx
