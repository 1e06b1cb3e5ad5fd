// SourceSchema: a provider's table as its DBMS really has it, read through the ODBC driver's
// catalog functions (SQLTables, SQLColumns), and the check of a catalog entry against it.
//
// Names are resolved the way the source folds them: the exact spelling first, else the one
// name that matches ignoring case (PostgreSQL folds unquoted DDL to lower case, so the
// catalog's XS_JBXX is the source's xs_jbxx); two names that match ignoring case and neither
// exactly are ambiguous. Every column a run uses must exist at the source with a type whose
// values fit the catalog's: a source column widened behind the catalog's back (varchar(30) →
// varchar(60), int → bigint) would be cut short or refused at the target, and a misspelled or
// dropped column would be read by SQLite as a string literal (its own name). UPDATETIME must be
// a date-time the watermark can be compared with. Every failure is kFailedPrecondition and
// names the entry, the column and what the source has.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/odbc.h"
#include "common/sql_dialect.h"
#include "scheduler/model.h"

namespace dx::scheduler {

// One column as the source's driver describes it.
struct SourceColumn {
  std::string name;         // the source's spelling
  int16_t data_type = 0;    // SQL_* type code
  std::string type_name;    // as the driver reports it, e.g. "varchar", "DECIMAL(5,1)"
  int64_t size = 0;         // COLUMN_SIZE: characters, digits or bytes
  int decimal_digits = -1;  // scale of numeric columns; -1 when not reported
  std::string charset;      // MariaDB/MySQL: the column's character set; empty elsewhere
};

struct SourceTable {
  std::string name;  // the source's spelling
  std::vector<SourceColumn> columns;
};

// What a catalog entry's names are at the source, for the columns that were checked.
struct ResolvedSource {
  std::string table;                            // the source's spelling
  std::map<std::string, SourceColumn> columns;  // by catalog column name
  // The source's spelling of catalog column `name` (the name itself when it was not checked).
  std::string Column(const std::string& name) const;
};

// Resolves `wanted` among `names` (exact, else the unique case-insensitive match). Returns the
// index into `names`; kFailedPrecondition naming `what` when there is none or it is ambiguous.
Result<size_t> ResolveName(const std::vector<std::string>& names, const std::string& wanted,
                           const std::string& what);

// Reads table `name` (resolved as above) with its columns.
Result<SourceTable> ReadSourceTable(OdbcConnection& conn, Dbms dbms, const std::string& name);

// Checks catalog column `want` against source column `have` (type and size); the message says
// what the source has and why it does not fit. `is_updatetime` also requires a comparable
// date-time.
Status CheckColumnType(const ColumnSpec& want, const SourceColumn& have, Dbms dbms,
                       bool is_updatetime);

// Checks the catalog fields `columns` of `entry` (empty: every field) against `table`.
Result<ResolvedSource> CheckEntryColumns(const CatalogEntry& entry, const SourceTable& table,
                                         Dbms dbms, const std::vector<std::string>& columns);

// ReadSourceTable + CheckEntryColumns.
Result<ResolvedSource> CheckEntryAgainstSource(OdbcConnection& conn, Dbms dbms,
                                               const CatalogEntry& entry,
                                               const std::vector<std::string>& columns);

// The catalog columns a run of `sub` reads at the source: the delivered columns, UPDATETIME
// and the filter columns.
std::vector<std::string> ColumnsUsedBy(const Subscription& sub, const CatalogEntry& entry);

// Reads a table at a source, for the checks `dxctl apply` makes before anything is applied.
class SourceReader {
 public:
  virtual ~SourceReader() = default;
  // kUnavailable when the source cannot be reached now; kFailedPrecondition when the table
  // does not exist or its name is ambiguous.
  virtual Result<std::pair<Dbms, SourceTable>> ReadTable(const Source& source,
                                                         const std::string& table) = 0;
};

// SourceReader through ODBC: one connection per source, kept for the reader's life (one apply).
class OdbcSourceReader : public SourceReader {
 public:
  Result<std::pair<Dbms, SourceTable>> ReadTable(const Source& source,
                                                 const std::string& table) override;

 private:
  std::map<std::string, std::unique_ptr<OdbcConnection>> connections_;  // by connection string
};

}  // namespace dx::scheduler
