// TableSpec: the shape of a subscribed table as the catalog defines it and as it travels to the
// agent (column names, portable types, lengths, key and not-null flags).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace dx {

// Portable column types of the catalog (附件三 "类型及长度"); each DBMS maps them in SqlDialect.
enum class ColumnType : uint8_t {
  kInteger = 1,     // 32-bit integer
  kBigint = 2,      // 64-bit integer
  kDecimal = 3,     // decimal(length, scale)
  kVarchar = 4,     // varchar(length), length in characters
  kChar = 5,        // char(length)
  kText = 6,        // unbounded text
  kDate = 7,        // YYYY-MM-DD
  kDatetime = 8,    // YYYY-MM-DD HH:MM:SS[.f], `length` fractional digits (0-6): datetime(3)
  kBlob = 9,        // unbounded binary (照片, 附件); travels as raw bytes, bound as binary
  kVarbinary = 10,  // varbinary(length), length in bytes
};
// Largest fractional-second precision of datetime(p) (microseconds, as in every target DBMS).
inline constexpr int kMaxDatetimePrecision = 6;

struct ColumnSpec {
  std::string name;  // column name in source and target (字段名)
  ColumnType type = ColumnType::kText;
  // Characters for varchar/char, precision for decimal, bytes for varbinary, fractional
  // digits for datetime (0 = whole seconds).
  int length = 0;
  int scale = 0;  // decimal scale
  bool not_null = false;
  bool primary_key = false;
};

struct TableSpec {
  std::string table;                // target table name
  std::vector<ColumnSpec> columns;  // in wire order; primary key columns flagged

  std::vector<size_t> KeyIndexes() const;
};

// Parses "bigint", "varchar(30)", "decimal(10,2)", "date", "datetime(3)", "blob",
// "varbinary(16)", ... (case-insensitive).
Result<ColumnSpec> ParseColumnType(const std::string& text);
// The inverse of ParseColumnType: "varchar(30)".
std::string ColumnTypeName(const ColumnSpec& column);
bool IsIntegerType(ColumnType type);
// Binary columns travel as raw bytes and are read and bound as binary, never as text.
bool IsBinaryType(ColumnType type);
// True for a type code this version knows (a newer peer may send codes it does not).
bool IsKnownColumnType(uint8_t code);
// Identifiers must be plain ASCII names so they can be quoted safely in every dialect.
bool IsValidIdentifier(const std::string& name);

}  // namespace dx
