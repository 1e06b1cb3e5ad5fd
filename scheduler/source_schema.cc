#include "scheduler/source_schema.h"

#include <algorithm>
#include <cstdlib>

#include "common/ascii.h"

namespace dx::scheduler {
namespace {

// What a source column can hold, in the terms the catalog's types are checked in.
enum class Family { kInteger, kDecimal, kFloat, kText, kDate, kDatetime, kBinary, kOther };

struct SourceType {
  Family family = Family::kOther;
  int integer_bits = 0;   // kInteger
  int64_t precision = 0;  // kDecimal
  int scale = 0;          // kDecimal
  int64_t length = 0;     // kText: characters; 0 = no limit the driver reports
};

// "decimal(5,1)" / "NUMERIC(10)" as sqliteodbc reports declared types (it calls them VARCHAR).
bool ParseDeclaredDecimal(const std::string& type_name, int64_t* precision, int* scale) {
  std::string t = AsciiLower(type_name);
  size_t open = t.find('(');
  if (open == std::string::npos || t.back() != ')') return false;
  std::string base = t.substr(0, open);
  while (!base.empty() && base.back() == ' ') base.pop_back();
  if (base != "decimal" && base != "numeric") return false;
  std::string args = t.substr(open + 1, t.size() - open - 2);
  char* end = nullptr;
  *precision = std::strtoll(args.c_str(), &end, 10);
  *scale = 0;
  if (end != nullptr && *end == ',') *scale = static_cast<int>(std::strtol(end + 1, &end, 10));
  return *precision > 0;
}

SourceType Classify(const SourceColumn& c) {
  SourceType t;
  if (ParseDeclaredDecimal(c.type_name, &t.precision, &t.scale)) {
    t.family = Family::kDecimal;
    return t;
  }
  switch (c.data_type) {
    case -7:  // BIT
    case -6:  // TINYINT
      t.family = Family::kInteger;
      t.integer_bits = 8;
      break;
    case 5:  // SMALLINT
      t.family = Family::kInteger;
      t.integer_bits = 16;
      break;
    case 4:  // INTEGER
      t.family = Family::kInteger;
      t.integer_bits = 32;
      break;
    case -5:  // BIGINT
      t.family = Family::kInteger;
      t.integer_bits = 64;
      break;
    case 2:  // NUMERIC
    case 3:  // DECIMAL
      t.family = Family::kDecimal;
      t.precision = c.size;
      t.scale = std::max(0, c.decimal_digits);
      break;
    case 6:  // FLOAT
    case 7:  // REAL
    case 8:  // DOUBLE
      t.family = Family::kFloat;
      break;
    case 1:   // CHAR
    case 12:  // VARCHAR
    case -8:  // WCHAR
    case -9:  // WVARCHAR
      t.family = Family::kText;
      t.length = c.size;
      break;
    case -1:   // LONGVARCHAR: text without a declared limit
    case -10:  // WLONGVARCHAR
      t.family = Family::kText;
      t.length = 0;
      break;
    case 9:
    case 91:
      t.family = Family::kDate;
      break;
    case 11:
    case 93:
      t.family = Family::kDatetime;
      break;
    case -2:
    case -3:
    case -4:
      t.family = Family::kBinary;
      break;
    default:
      t.family = Family::kOther;
  }
  return t;
}

// How the source's type reads in a message, e.g. "varchar(60)", "int8", "DECIMAL(5,1)".
std::string Describe(const SourceColumn& c) {
  std::string name = c.type_name.empty() ? "type " + std::to_string(c.data_type) : c.type_name;
  if (name.find('(') != std::string::npos) return name;
  SourceType t = Classify(c);
  if (t.family == Family::kText && t.length > 0) return name + "(" + std::to_string(t.length) + ")";
  if (t.family == Family::kDecimal) {
    return name + "(" + std::to_string(t.precision) + "," + std::to_string(t.scale) + ")";
  }
  return name;
}

// Decimal digits an integer of `bits` needs.
int64_t DigitsOf(int bits) {
  switch (bits) {
    case 8:
      return 3;
    case 16:
      return 5;
    case 32:
      return 10;
    default:
      return 19;
  }
}

std::string NamesOf(const SourceTable& table) {
  std::string out;
  size_t shown = 0;
  for (const SourceColumn& c : table.columns) {
    if (shown == 20) {
      out += ", ... (" + std::to_string(table.columns.size()) + " columns)";
      break;
    }
    out += (out.empty() ? "" : ", ") + c.name;
    ++shown;
  }
  return out;
}

}  // namespace

std::string ResolvedSource::Column(const std::string& name) const {
  auto it = columns.find(name);
  return it == columns.end() ? name : it->second.name;
}

Result<size_t> ResolveName(const std::vector<std::string>& names, const std::string& wanted,
                           const std::string& what) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == wanted) return i;
  }
  const std::string lower = AsciiLower(wanted);
  std::vector<size_t> matches;
  for (size_t i = 0; i < names.size(); ++i) {
    if (AsciiLower(names[i]) == lower &&
        std::none_of(matches.begin(), matches.end(),
                     [&](size_t m) { return names[m] == names[i]; }))
      matches.push_back(i);
  }
  if (matches.size() == 1) return matches[0];
  if (matches.size() > 1) {
    return FailedPrecondition(what + " '" + wanted + "' is ambiguous at the source: both '" +
                              names[matches[0]] + "' and '" + names[matches[1]] +
                              "' match it ignoring case, neither exactly");
  }
  return NotFound(what + " '" + wanted + "' does not exist at the source");
}

Result<SourceTable> ReadSourceTable(OdbcConnection& conn, Dbms dbms, const std::string& name) {
  SourceTable table;
  auto read_columns = [&](const std::string& spelling) -> Status {
    table.name = spelling;
    table.columns.clear();
    DX_ASSIGN_OR_RETURN(auto columns, conn.Columns(spelling));
    for (const DbColumnInfo& c : columns) {
      // Table names are search patterns ('_' matches any character): keep the table's own.
      if (!c.table.empty() && c.table != spelling) continue;
      table.columns.push_back({c.name, c.data_type, c.type_name, c.size, c.decimal_digits, ""});
    }
    return Status::Ok();
  };
  // The exact spelling first (one catalog call, the usual case); else every table's name.
  DX_RETURN_IF_ERROR(read_columns(name));
  if (table.columns.empty()) {
    DX_ASSIGN_OR_RETURN(auto tables, conn.Tables());
    const std::string catalog = conn.CurrentCatalog();
    std::vector<std::string> names;
    for (const DbTableInfo& t : tables) {
      // MariaDB lists other databases' tables too; a run reads the current one.
      if (!catalog.empty() && !t.catalog.empty() && t.catalog != catalog) continue;
      names.push_back(t.name);
    }
    auto index = ResolveName(names, name, "table");
    if (!index.ok()) return FailedPrecondition(index.status().message());
    DX_RETURN_IF_ERROR(read_columns(names[index.value()]));
  }
  if (table.columns.empty()) {
    return FailedPrecondition("table '" + table.name + "' has no columns the driver can list");
  }
  if (dbms == Dbms::kMysql) {
    // Character sets are not in SQLColumns; the name is a validated identifier.
    DX_ASSIGN_OR_RETURN(
        auto stmt, conn.Prepare("SELECT COLUMN_NAME, CHARACTER_SET_NAME FROM "
                                "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
                                "TABLE_NAME = '" +
                                table.name + "'"));
    DX_RETURN_IF_ERROR(stmt->Execute());
    std::string column;
    std::string charset;
    while (true) {
      DX_ASSIGN_OR_RETURN(bool row, stmt->Fetch());
      if (!row) break;
      DX_RETURN_IF_ERROR(stmt->GetText(0, &column).status());
      DX_ASSIGN_OR_RETURN(bool has_charset, stmt->GetText(1, &charset));
      for (SourceColumn& c : table.columns) {
        if (c.name == column && has_charset) c.charset = AsciiLower(charset);
      }
    }
  }
  return table;
}

Status CheckColumnType(const ColumnSpec& want, const SourceColumn& have, Dbms dbms,
                       bool is_updatetime) {
  const SourceType t = Classify(have);
  // SQLite has no date type: dates are text in ISO form, which compares and converts as such.
  const bool sqlite_text = dbms == Dbms::kSqlite && t.family == Family::kText;
  const std::string catalog_type = ColumnTypeName(want);
  auto refuse = [&](const std::string& why) {
    return FailedPrecondition("is " + Describe(have) + " at the source, the catalog says " +
                              catalog_type + ": " + why);
  };
  if (is_updatetime && t.family != Family::kDatetime && !sqlite_text) {
    return refuse(t.family == Family::kDate ? "a date cannot order the changes made within one day"
                                            : "it cannot be compared with a date-time watermark");
  }
  if (t.family == Family::kOther) return Status::Ok();  // a type we cannot judge
  switch (want.type) {
    case ColumnType::kInteger:
    case ColumnType::kBigint: {
      const int bits = want.type == ColumnType::kInteger ? 32 : 64;
      if (t.family == Family::kInteger) {
        if (t.integer_bits <= bits) return Status::Ok();
        return refuse("its values would not fit a " + std::to_string(bits) + "-bit integer");
      }
      if (t.family == Family::kDecimal && t.scale == 0 && t.precision > 0 &&
          t.precision < DigitsOf(bits))
        return Status::Ok();
      return refuse("its values are not integers that fit");
    }
    case ColumnType::kDecimal: {
      const int64_t want_int_digits = want.length - want.scale;
      if (t.family == Family::kInteger) {
        if (DigitsOf(t.integer_bits) <= want_int_digits) return Status::Ok();
        return refuse("its values would not fit " + catalog_type);
      }
      if (t.family == Family::kDecimal) {
        if (t.scale <= want.scale && t.precision - t.scale <= want_int_digits) return Status::Ok();
        return refuse("its values would not fit " + catalog_type);
      }
      // SQLite keeps a decimal wider than 15 digits exactly only as text (a NUMERIC column
      // would round it to a double); the target checks each value as it writes it.
      if (sqlite_text) return Status::Ok();
      return refuse("its values are not exact numbers");
    }
    case ColumnType::kVarchar:
    case ColumnType::kChar: {
      if (t.family != Family::kText) return refuse("its values are not text");
      if (t.length == 0) {
        return refuse("text without a length limit could be cut short or refused at the target");
      }
      if (t.length > want.length) {
        return refuse("values up to " + std::to_string(t.length) +
                      " characters could be cut short or refused at the target");
      }
      return Status::Ok();
    }
    case ColumnType::kText:
      if (t.family != Family::kText) return refuse("its values are not text");
      return Status::Ok();
    case ColumnType::kDate:
      if (t.family == Family::kDate || sqlite_text) return Status::Ok();
      if (t.family == Family::kDatetime) {
        return refuse("its values carry a time of day that a date would drop");
      }
      return refuse("its values are not dates");
    case ColumnType::kDatetime:
      if (t.family == Family::kDatetime || t.family == Family::kDate || sqlite_text) {
        return Status::Ok();
      }
      return refuse("its values are not date-times");
    default:
      return Status::Ok();  // types checked by the target's writer
  }
}

Result<ResolvedSource> CheckEntryColumns(const CatalogEntry& entry, const SourceTable& table,
                                         Dbms dbms, const std::vector<std::string>& columns) {
  const std::string prefix = "catalog entry '" + entry.name + "': ";
  ResolvedSource resolved;
  resolved.table = table.name;
  std::vector<std::string> names;
  for (const SourceColumn& c : table.columns) names.push_back(c.name);
  for (const Field& field : entry.fields) {
    const std::string& name = field.column.name;
    if (!columns.empty() && std::find(columns.begin(), columns.end(), name) == columns.end()) {
      continue;
    }
    const bool is_updatetime = name == entry.updatetime_column;
    const std::string label = is_updatetime ? "UPDATETIME column '" : "column '";
    auto index = ResolveName(names, name, "column");
    if (!index.ok()) {
      if (index.status().code() == StatusCode::kFailedPrecondition) {
        return FailedPrecondition(prefix + "source table '" + table.name +
                                  "': " + index.status().message());
      }
      return FailedPrecondition(prefix + "source table '" + table.name + "' has no " + label +
                                name + "' (it has: " + NamesOf(table) + ")");
    }
    const SourceColumn& have = table.columns[index.value()];
    Status st = CheckColumnType(field.column, have, dbms, is_updatetime);
    if (!st.ok()) {
      return FailedPrecondition(prefix + label + name + "' of source table '" + table.name + "' " +
                                st.message());
    }
    resolved.columns[name] = have;
  }
  return resolved;
}

Result<ResolvedSource> CheckEntryAgainstSource(OdbcConnection& conn, Dbms dbms,
                                               const CatalogEntry& entry,
                                               const std::vector<std::string>& columns) {
  auto table = ReadSourceTable(conn, dbms, entry.source_table);
  if (!table.ok()) {
    if (table.status().code() != StatusCode::kFailedPrecondition) return table.status();
    return FailedPrecondition("catalog entry '" + entry.name + "': source '" + entry.source +
                              "': " + table.status().message());
  }
  return CheckEntryColumns(entry, table.value(), dbms, columns);
}

Result<std::pair<Dbms, SourceTable>> OdbcSourceReader::ReadTable(const Source& source,
                                                                 const std::string& table) {
  auto it = connections_.find(source.connection);
  if (it == connections_.end()) {
    DX_ASSIGN_OR_RETURN(auto conn, OdbcConnection::Open(source.connection));
    it = connections_.emplace(source.connection, std::move(conn)).first;
  }
  OdbcConnection& conn = *it->second;
  const Dbms dbms = DbmsFromName(conn.dbms_name());
  DX_ASSIGN_OR_RETURN(SourceTable t, ReadSourceTable(conn, dbms, table));
  return std::make_pair(dbms, std::move(t));
}

std::vector<std::string> ColumnsUsedBy(const Subscription& sub, const CatalogEntry& entry) {
  std::vector<std::string> used = sub.columns;
  auto add = [&](const std::string& c) {
    if (std::find(used.begin(), used.end(), c) == used.end()) used.push_back(c);
  };
  add(entry.updatetime_column);
  for (const RowCondition& c : sub.filter) add(c.column);
  return used;
}

}  // namespace dx::scheduler
