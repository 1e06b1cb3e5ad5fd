#include "agent/table_shape.h"

#include <algorithm>
#include <sstream>

#include "common/ascii.h"

namespace dx::agent {
namespace {

enum class Family { kInteger, kNumeric, kText, kDate, kTime, kBinary, kOther };

// By ODBC SQL type code (sql.h values, kept here so the header stays free of it).
Family FamilyOf(int16_t sql_type) {
  switch (sql_type) {
    case 4:   // SQL_INTEGER
    case 5:   // SQL_SMALLINT
    case -5:  // SQL_BIGINT
    case -6:  // SQL_TINYINT
    case -7:  // SQL_BIT
      return Family::kInteger;
    case 2:  // SQL_NUMERIC
    case 3:  // SQL_DECIMAL
    case 6:  // SQL_FLOAT
    case 7:  // SQL_REAL
    case 8:  // SQL_DOUBLE
      return Family::kNumeric;
    case 1:    // SQL_CHAR
    case 12:   // SQL_VARCHAR
    case -1:   // SQL_LONGVARCHAR
    case -8:   // SQL_WCHAR
    case -9:   // SQL_WVARCHAR
    case -10:  // SQL_WLONGVARCHAR
      return Family::kText;
    case 9:   // SQL_DATE
    case 91:  // SQL_TYPE_DATE
      return Family::kDate;
    case 11:  // SQL_TIMESTAMP
    case 93:  // SQL_TYPE_TIMESTAMP
      return Family::kTime;
    case -2:  // SQL_BINARY
    case -3:  // SQL_VARBINARY
    case -4:  // SQL_LONGVARBINARY
      return Family::kBinary;
    default:
      return Family::kOther;
  }
}

bool Compatible(const ColumnSpec& want, const DbColumnInfo& have) {
  const Family f = FamilyOf(have.data_type);
  const std::string name = AsciiLower(have.type_name);
  if (f == Family::kOther) return true;  // a type we cannot judge: let the write decide
  switch (want.type) {
    case ColumnType::kInteger:
    case ColumnType::kBigint:
      return f == Family::kInteger || f == Family::kNumeric;
    case ColumnType::kDecimal:
      // sqliteodbc reports a DECIMAL(p,s) column as SQL_VARCHAR; SQLite keeps decimals wider
      // than 15 digits in TEXT columns.
      return f == Family::kNumeric || f == Family::kInteger || f == Family::kText;
    case ColumnType::kVarchar:
    case ColumnType::kChar:
    case ColumnType::kText:
      return f == Family::kText;
    case ColumnType::kDate:
      return f == Family::kDate || f == Family::kTime || f == Family::kText;
    case ColumnType::kDatetime:
      return f == Family::kTime || f == Family::kText;
    case ColumnType::kBlob:
    case ColumnType::kVarbinary:
      return f == Family::kBinary || name.find("blob") != std::string::npos ||
             name.find("bytea") != std::string::npos || name.find("binary") != std::string::npos;
  }
  return true;
}

struct RecordedColumn {
  std::string name;
  std::string type_name;
  std::string data_type;
  std::string size;
  std::string digits;
  std::string catalog_type;
};

std::vector<RecordedColumn> ParseShape(const std::string& text) {
  std::vector<RecordedColumn> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    size_t start = 0;
    while (true) {
      size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (f.size() == 6) out.push_back({f[0], f[1], f[2], f[3], f[4], f[5]});
  }
  return out;
}

std::string ShapeLine(const DbColumnInfo& c, const ColumnSpec& want) {
  return c.name + "\t" + c.type_name + "\t" + std::to_string(c.data_type) + "\t" +
         std::to_string(c.size) + "\t" + std::to_string(c.decimal_digits) + "\t" +
         ColumnTypeName(want);
}

// The column of `existing` that `name` means: the exact spelling, else the only one equal
// without regard to case. Null when there is none (or several).
const DbColumnInfo* FindColumn(const std::vector<DbColumnInfo>& existing, const std::string& name) {
  const DbColumnInfo* folded = nullptr;
  int folded_count = 0;
  for (const DbColumnInfo& c : existing) {
    if (c.name == name) return &c;
    if (AsciiLower(c.name) == AsciiLower(name)) {
      folded = &c;
      ++folded_count;
    }
  }
  return folded_count == 1 ? folded : nullptr;
}

}  // namespace

std::string RecordShape(const TableSpec& spec, const std::vector<DbColumnInfo>& reported) {
  std::string out;
  for (const ColumnSpec& want : spec.columns) {
    const DbColumnInfo* have = FindColumn(reported, want.name);
    if (have != nullptr) out += ShapeLine(*have, want) + "\n";
  }
  return out;
}

bool ShapeIsFor(const TableSpec& spec, const std::string& recorded_shape) {
  const std::vector<RecordedColumn> recorded = ParseShape(recorded_shape);
  if (recorded.size() != spec.columns.size()) return false;
  for (const ColumnSpec& want : spec.columns) {
    const bool found = std::any_of(recorded.begin(), recorded.end(), [&](const RecordedColumn& r) {
      return AsciiLower(r.name) == AsciiLower(want.name) && r.catalog_type == ColumnTypeName(want);
    });
    if (!found) return false;
  }
  return true;
}

Status CheckShape(const TableSpec& spec, const std::vector<DbColumnInfo>& existing,
                  const std::string& recorded_shape, TableSpec* resolved) {
  const std::vector<RecordedColumn> recorded = ParseShape(recorded_shape);
  *resolved = spec;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const ColumnSpec& want = spec.columns[i];
    const DbColumnInfo* have = FindColumn(existing, want.name);
    if (have == nullptr) {
      return FailedPrecondition("target table '" + spec.table + "' has no column '" + want.name +
                                "' required by the catalog");
    }
    resolved->columns[i].name = have->name;
    bool as_created = false;
    for (const RecordedColumn& r : recorded) {
      if (r.name == have->name) {
        as_created = ShapeLine(*have, want) == r.name + "\t" + r.type_name + "\t" + r.data_type +
                                                   "\t" + r.size + "\t" + r.digits + "\t" +
                                                   r.catalog_type;
        break;
      }
    }
    if (as_created) continue;  // exactly what the agent created for this catalog type
    if (!Compatible(want, *have)) {
      return FailedPrecondition("target table '" + spec.table + "' column '" + want.name + "' is " +
                                have->type_name + ", the catalog says " + ColumnTypeName(want));
    }
    bool sized = want.type == ColumnType::kVarchar || want.type == ColumnType::kChar ||
                 want.type == ColumnType::kVarbinary;
    if (sized && have->size > 0 && have->size < want.length) {
      return FailedPrecondition("target table '" + spec.table + "' column '" + want.name +
                                "' holds " + std::to_string(have->size) +
                                (want.type == ColumnType::kVarbinary ? " bytes" : " characters") +
                                ", the catalog says " + ColumnTypeName(want));
    }
  }
  return Status::Ok();
}

}  // namespace dx::agent
