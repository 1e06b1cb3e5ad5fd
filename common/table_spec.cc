#include "common/table_spec.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "common/ascii.h"

namespace dx {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool ParseInt(const std::string& s, int* out) {
  std::string t = Trim(s);
  if (t.empty() || t.size() > 6) return false;
  for (char c : t) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  *out = std::atoi(t.c_str());
  return true;
}

}  // namespace

std::vector<size_t> TableSpec::KeyIndexes() const {
  std::vector<size_t> keys;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].primary_key) keys.push_back(i);
  }
  return keys;
}

Result<ColumnSpec> ParseColumnType(const std::string& text) {
  std::string t = AsciiLower(Trim(text));
  std::string base = t;
  std::vector<int> args;
  size_t open = t.find('(');
  if (open != std::string::npos) {
    if (t.back() != ')') return InvalidArgument("bad column type '" + text + "'");
    base = Trim(t.substr(0, open));
    std::string inner = t.substr(open + 1, t.size() - open - 2);
    size_t start = 0;
    while (true) {
      size_t comma = inner.find(',', start);
      int v = 0;
      bool zero_ok = base == "datetime" || base == "timestamp";  // datetime(0): whole seconds
      if (!ParseInt(inner.substr(start, comma - start), &v) ||
          (args.empty() && v <= 0 && !(zero_ok && v == 0))) {
        return InvalidArgument("bad length in column type '" + text + "'");
      }
      args.push_back(v);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  ColumnSpec c;
  auto want_args = [&](size_t lo, size_t hi) { return args.size() >= lo && args.size() <= hi; };
  if ((base == "int" || base == "integer") && want_args(0, 0)) {
    c.type = ColumnType::kInteger;
  } else if (base == "bigint" && want_args(0, 0)) {
    c.type = ColumnType::kBigint;
  } else if ((base == "decimal" || base == "numeric") && want_args(1, 2)) {
    c.type = ColumnType::kDecimal;
    c.length = args[0];
    c.scale = args.size() > 1 ? args[1] : 0;
    if (c.scale > c.length)
      return InvalidArgument("decimal scale exceeds precision in '" + text + "'");
  } else if (base == "varchar" && want_args(1, 1)) {
    c.type = ColumnType::kVarchar;
    c.length = args[0];
  } else if (base == "char" && want_args(1, 1)) {
    c.type = ColumnType::kChar;
    c.length = args[0];
  } else if (base == "text" && want_args(0, 0)) {
    c.type = ColumnType::kText;
  } else if (base == "date" && want_args(0, 0)) {
    c.type = ColumnType::kDate;
  } else if ((base == "datetime" || base == "timestamp") && want_args(0, 1)) {
    c.type = ColumnType::kDatetime;
    c.length = args.empty() ? 0 : args[0];
    if (c.length > kMaxDatetimePrecision) {
      return InvalidArgument("fractional seconds beyond 6 digits in '" + text + "'");
    }
  } else if (base == "blob" && want_args(0, 0)) {
    c.type = ColumnType::kBlob;
  } else if (base == "varbinary" && want_args(1, 1)) {
    c.type = ColumnType::kVarbinary;
    c.length = args[0];
  } else {
    return InvalidArgument("unknown column type '" + text +
                           "' (expected int, bigint, decimal(p,s), varchar(n), char(n), text, "
                           "date, datetime, datetime(p), blob or varbinary(n))");
  }
  return c;
}

std::string ColumnTypeName(const ColumnSpec& c) {
  switch (c.type) {
    case ColumnType::kInteger:
      return "int";
    case ColumnType::kBigint:
      return "bigint";
    case ColumnType::kDecimal:
      return "decimal(" + std::to_string(c.length) + "," + std::to_string(c.scale) + ")";
    case ColumnType::kVarchar:
      return "varchar(" + std::to_string(c.length) + ")";
    case ColumnType::kChar:
      return "char(" + std::to_string(c.length) + ")";
    case ColumnType::kText:
      return "text";
    case ColumnType::kDate:
      return "date";
    case ColumnType::kDatetime:
      return c.length > 0 ? "datetime(" + std::to_string(c.length) + ")" : "datetime";
    case ColumnType::kBlob:
      return "blob";
    case ColumnType::kVarbinary:
      return "varbinary(" + std::to_string(c.length) + ")";
  }
  return "text";
}

bool IsIntegerType(ColumnType type) {
  return type == ColumnType::kInteger || type == ColumnType::kBigint;
}

bool IsBinaryType(ColumnType type) {
  return type == ColumnType::kBlob || type == ColumnType::kVarbinary;
}

bool IsKnownColumnType(uint8_t code) {
  return code >= static_cast<uint8_t>(ColumnType::kInteger) &&
         code <= static_cast<uint8_t>(ColumnType::kVarbinary);
}

bool IsValidIdentifier(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::isalpha(static_cast<unsigned char>(name[0])) && name[0] != '_') return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

}  // namespace dx
