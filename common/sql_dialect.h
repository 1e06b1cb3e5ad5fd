// SqlDialect: how one DBMS spells the statements DX needs (quoting, column types, table
// creation, the fastest multi-row upsert its ODBC driver allows, "now" on its clock).
// Chosen from the DBMS name the ODBC driver reports (SQL_DBMS_NAME).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/table_spec.h"

namespace dx {

enum class Dbms { kSqlite, kPostgres, kMysql, kGeneric };

Dbms DbmsFromName(const std::string& dbms_name);
const char* DbmsLabel(Dbms dbms);

// How names from the catalog become table and column names in a target database.
enum class NameCase {
  kLower,     // student_no (PostgreSQL folds unquoted names so; consumers need no quotes)
  kUpper,     // STUDENT_NO (Oracle, DB2)
  kPreserve,  // exactly as the catalog spells them
};
// "lower", "upper", "preserve"; kInvalidArgument otherwise.
Result<NameCase> ParseNameCase(const std::string& text);
const char* NameCaseLabel(NameCase name_case);
// The case in which `dbms` keeps unquoted names: lower for PostgreSQL, preserve for SQLite and
// MariaDB/MySQL (both match names without regard to case or keep them as written).
// `driver_identifier_case` is SQLGetInfo(SQL_IDENTIFIER_CASE), used for other DBMS.
NameCase NaturalNameCase(Dbms dbms, int driver_identifier_case);
std::string ApplyNameCase(const std::string& name, NameCase name_case);

class SqlDialect {
 public:
  explicit SqlDialect(Dbms dbms) : dbms_(dbms) {}
  Dbms dbms() const { return dbms_; }

  std::string Quote(const std::string& identifier) const;
  std::string ColumnTypeSql(const ColumnSpec& column) const;
  std::string CreateTable(const TableSpec& spec) const;
  // A parameter marker for a value of `column`, with a cast where the DBMS needs one to infer
  // the type of a text parameter (PostgreSQL multi-row VALUES).
  std::string Placeholder(const ColumnSpec& column) const;
  // Upsert of `rows` rows by primary key in one statement. SQLite gets a leading dummy CTE so
  // that sqliteodbc keeps the statement prepared (limits.md quirk S3). Not for kGeneric.
  std::string Upsert(const TableSpec& spec, int rows) const;
  // True when Upsert is available; otherwise writers delete and insert by key.
  bool HasUpsert() const { return dbms_ != Dbms::kGeneric; }
  // How many rows one upsert statement carries for a table of `columns` columns: the fastest
  // shape, capped so that rows × columns stays within MaxParameters().
  int RowsPerStatement(size_t columns) const;
  // Bound parameters DX puts in one statement: what the DBMS's driver was measured to accept
  // (tests/bench/param_limits.sh; docs/PERFORMANCE.md), less a safety margin.
  size_t MaxParameters() const;
  // Statements run once per connection so that a lock wait lasts at most `lock_timeout_ms`
  // (MariaDB innodb_lock_wait_timeout, PostgreSQL lock_timeout).
  std::vector<std::string> SessionSetup(int lock_timeout_ms) const;
  // The connection-string option that bounds a lock wait where the driver owns it (SQLite:
  // sqliteodbc's Timeout), or "".
  std::string LockTimeoutOption(int lock_timeout_ms) const;
  // A query whose value is "0" when `table` is empty and a positive count otherwise, without
  // reading the whole table where the DBMS allows.
  std::string AnyRowQuery(const std::string& table) const;
  // A query returning the DBMS's current local time as text "YYYY-MM-DD HH:MM:SS".
  std::string NowQuery() const;
  // ODBC connection-string options DX adds for this DBMS's driver (streaming, protocol).
  static std::string ConnectionOptions(const std::string& driver_name);

 private:
  Dbms dbms_;
};

}  // namespace dx
