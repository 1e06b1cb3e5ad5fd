// SqlDialect: how one DBMS spells the statements DX needs (quoting, column types, table
// creation, the fastest multi-row upsert its ODBC driver allows, "now" on its clock).
// Chosen from the DBMS name the ODBC driver reports (SQL_DBMS_NAME).
#pragma once

#include <string>

#include "common/table_spec.h"

namespace dx {

enum class Dbms { kSqlite, kPostgres, kMysql, kGeneric };

Dbms DbmsFromName(const std::string& dbms_name);
const char* DbmsLabel(Dbms dbms);

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
  // How many rows one upsert statement carries for a table of `columns` columns.
  int RowsPerStatement(size_t columns) const;
  // A query returning the DBMS's current local time as text "YYYY-MM-DD HH:MM:SS".
  std::string NowQuery() const;
  // ODBC connection-string options DX adds for this DBMS's driver (streaming, protocol).
  static std::string ConnectionOptions(const std::string& driver_name);

 private:
  Dbms dbms_;
};

}  // namespace dx
