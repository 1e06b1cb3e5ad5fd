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
    case ColumnType::kDatetime:
      if (dbms_ == Dbms::kSqlite || dbms_ == Dbms::kMysql) return "DATETIME";
      return "TIMESTAMP";
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
  // Stay well below every driver's parameter limit (SQLite 32766, PostgreSQL 65535).
  int by_params = static_cast<int>(30000 / columns);
  return std::max(1, std::min(limit, by_params));
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
