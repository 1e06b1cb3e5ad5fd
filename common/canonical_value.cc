#include "common/canonical_value.h"

#include <cstdlib>

namespace dx {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view TrimSpaces(std::string_view t) {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  return t;
}

// Exponents beyond this are not numbers a catalog column can hold; such text stays as it is.
constexpr long kMaxExponent = 400;

// A number in plain or exponent notation -> "[-]int[.frac]" without redundant zeros, rounded
// half away from zero to `scale` fraction digits when scale >= 0. False when `text` is not a
// number (the caller keeps it as it is).
bool CanonicalNumber(std::string_view text, int scale, std::string* out) {
  std::string_view t = TrimSpaces(text);
  size_t i = 0;
  bool negative = false;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) negative = t[i++] == '-';
  std::string digits;
  long point = -1;
  for (; i < t.size(); ++i) {
    if (IsDigit(t[i])) {
      digits.push_back(t[i]);
    } else if (t[i] == '.' && point < 0) {
      point = static_cast<long>(digits.size());
    } else {
      break;
    }
  }
  if (digits.empty()) return false;
  if (point < 0) point = static_cast<long>(digits.size());
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) exp_negative = t[i++] == '-';
    long exponent = 0;
    size_t start = i;
    for (; i < t.size() && IsDigit(t[i]); ++i) {
      exponent = exponent * 10 + (t[i] - '0');
      if (exponent > kMaxExponent) return false;
    }
    if (i == start) return false;
    point += exp_negative ? -exponent : exponent;
  }
  if (i != t.size()) return false;
  // Make `point` a position inside (or at the end of) `digits`.
  if (point < 0) {
    digits.insert(0, static_cast<size_t>(-point), '0');
    point = 0;
  }
  if (static_cast<size_t>(point) > digits.size()) {
    digits.append(static_cast<size_t>(point) - digits.size(), '0');
  }
  size_t p = static_cast<size_t>(point);
  if (scale >= 0 && digits.size() > p + static_cast<size_t>(scale)) {
    bool up = digits[p + static_cast<size_t>(scale)] >= '5';
    digits.resize(p + static_cast<size_t>(scale));
    if (up) {
      size_t j = digits.size();
      while (j > 0 && digits[j - 1] == '9') digits[--j] = '0';
      if (j == 0) {
        digits.insert(digits.begin(), '1');
        ++p;
      } else {
        ++digits[j - 1];
      }
    }
  }
  size_t int_begin = 0;
  while (int_begin < p && digits[int_begin] == '0') ++int_begin;
  size_t frac_end = digits.size();
  while (frac_end > p && digits[frac_end - 1] == '0') --frac_end;
  bool zero = int_begin == p && frac_end == p;
  if (negative && !zero) out->push_back('-');
  if (int_begin == p) {
    out->push_back('0');
  } else {
    out->append(digits, int_begin, p - int_begin);
  }
  if (frac_end > p) {
    out->push_back('.');
    out->append(digits, p, frac_end - p);
  }
  return true;
}

// Reads 1..max_digits digits at t[*i] into *v.
bool ReadNumber(std::string_view t, size_t* i, size_t max_digits, int* v) {
  size_t start = *i;
  int value = 0;
  while (*i < t.size() && IsDigit(t[*i]) && *i - start < max_digits) {
    value = value * 10 + (t[*i] - '0');
    ++*i;
  }
  if (*i == start) return false;
  *v = value;
  return true;
}

// Appends `v` (0 <= v < 10^width) as exactly `width` digits; wider values in full.
void AppendPadded(int v, int width, std::string* out) {
  char buf[12];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && n < 11);
  while (n < width) buf[n++] = '0';
  while (n > 0) out->push_back(buf[--n]);
}

// "YYYY-M-D" at the start of `t`; *i is left after it.
bool ReadDate(std::string_view t, size_t* i, std::string* out) {
  int y = 0, m = 0, d = 0;
  if (!ReadNumber(t, i, 4, &y) || *i >= t.size() || t[*i] != '-') return false;
  ++*i;
  if (!ReadNumber(t, i, 2, &m) || *i >= t.size() || t[*i] != '-') return false;
  ++*i;
  if (!ReadNumber(t, i, 2, &d)) return false;
  if (m < 1 || m > 12 || d < 1 || d > 31) return false;
  AppendPadded(y, 4, out);
  out->push_back('-');
  AppendPadded(m, 2, out);
  out->push_back('-');
  AppendPadded(d, 2, out);
  return true;
}

// Both write into `out` directly; on failure the caller drops what they appended.
bool CanonicalDate(std::string_view text, std::string* out) {
  std::string_view t = TrimSpaces(text);
  size_t i = 0;
  if (!ReadDate(t, &i, out)) return false;
  // A time part (a DATETIME read into a DATE column) is what every DBMS drops on the way in.
  return i == t.size() || t[i] == ' ' || t[i] == 'T';
}

bool CanonicalDatetime(std::string_view text, std::string* out) {
  std::string_view t = TrimSpaces(text);
  size_t i = 0;
  std::string& value = *out;
  if (!ReadDate(t, &i, &value)) return false;
  int hh = 0, mm = 0, ss = 0;
  std::string_view fraction;
  if (i < t.size()) {
    if (t[i] != ' ' && t[i] != 'T') return false;
    ++i;
    if (!ReadNumber(t, &i, 2, &hh) || i >= t.size() || t[i] != ':') return false;
    ++i;
    if (!ReadNumber(t, &i, 2, &mm)) return false;
    if (i < t.size() && t[i] == ':') {
      ++i;
      if (!ReadNumber(t, &i, 2, &ss)) return false;
      if (i < t.size() && t[i] == '.') {
        ++i;
        size_t start = i;
        while (i < t.size() && IsDigit(t[i])) ++i;
        fraction = t.substr(start, i - start);
        while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
      }
    }
    if (i != t.size() || hh > 23 || mm > 59 || ss > 60) return false;
  }
  value.push_back(' ');
  AppendPadded(hh, 2, &value);
  value.push_back(':');
  AppendPadded(mm, 2, &value);
  value.push_back(':');
  AppendPadded(ss, 2, &value);
  if (!fraction.empty()) {
    value.push_back('.');
    value.append(fraction);
  }
  return true;
}

// Compares two canonical numbers ("[-]int[.frac]"); false when either is not one.
bool CompareNumbers(std::string_view a, std::string_view b, int* result) {
  auto split = [](std::string_view v, bool* neg, std::string_view* ip, std::string_view* fp) {
    *neg = !v.empty() && v[0] == '-';
    if (*neg) v.remove_prefix(1);
    size_t dot = v.find('.');
    *ip = v.substr(0, dot);
    *fp = dot == std::string_view::npos ? std::string_view() : v.substr(dot + 1);
    if (ip->empty()) return false;
    for (char c : *ip) {
      if (!IsDigit(c)) return false;
    }
    for (char c : *fp) {
      if (!IsDigit(c)) return false;
    }
    return true;
  };
  bool na = false, nb = false;
  std::string_view ia, fa, ib, fb;
  if (!split(a, &na, &ia, &fa) || !split(b, &nb, &ib, &fb)) return false;
  if (na != nb) {
    *result = na ? -1 : 1;
    return true;
  }
  int magnitude = 0;
  if (ia.size() != ib.size()) {
    magnitude = ia.size() < ib.size() ? -1 : 1;
  } else if (int c = ia.compare(ib); c != 0) {
    magnitude = c;
  } else {
    magnitude = fa.compare(fb);  // canonical fractions carry no trailing zeros
  }
  *result = na ? -magnitude : magnitude;
  return true;
}

int Sign(int v) { return (v > 0) - (v < 0); }

// True when `t` is already canonical for an integer: digits without a leading zero, "0", or
// '-' and such digits (not "-0"). The common case, checked without parsing.
bool IsPlainInteger(std::string_view t) {
  size_t i = !t.empty() && t[0] == '-' ? 1 : 0;
  if (i == t.size() || (t[i] == '0' && t.size() > i + 1) || (i == 1 && t == "-0")) return false;
  for (; i < t.size(); ++i) {
    if (!IsDigit(t[i])) return false;
  }
  return true;
}

// True when `t` has exactly the shape of `pattern` ('9' a digit, anything else itself).
bool HasShape(std::string_view t, std::string_view pattern) {
  if (t.size() != pattern.size()) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (pattern[i] == '9' ? !IsDigit(t[i]) : t[i] != pattern[i]) return false;
  }
  return true;
}

}  // namespace

void AppendCanonical(const ColumnSpec& column, std::string_view text, std::string* out) {
  // Fast paths: values that are already in their canonical form (most of them) as they are.
  // A date or time with a field out of range is kept as it is by the full parse too.
  switch (column.type) {
    case ColumnType::kInteger:
    case ColumnType::kBigint:
    case ColumnType::kDecimal:
      if (IsPlainInteger(text)) return out->append(text), void();
      break;
    case ColumnType::kDate:
      if (HasShape(text, "9999-99-99")) return out->append(text), void();
      break;
    case ColumnType::kDatetime:
      if (HasShape(text, "9999-99-99 99:99:99")) return out->append(text), void();
      break;
    case ColumnType::kVarchar:
    case ColumnType::kText:
    case ColumnType::kBlob:
    case ColumnType::kVarbinary:
      return out->append(text), void();
    case ColumnType::kChar:
      break;
  }
  size_t mark = out->size();
  bool done = false;
  switch (column.type) {
    case ColumnType::kInteger:
    case ColumnType::kBigint:
      done = CanonicalNumber(text, -1, out);
      break;
    case ColumnType::kDecimal:
      done = CanonicalNumber(text, column.scale, out);
      break;
    case ColumnType::kChar: {
      std::string_view t = text;
      while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
      out->append(t);
      done = true;
      break;
    }
    case ColumnType::kDate:
      done = CanonicalDate(text, out);
      break;
    case ColumnType::kDatetime:
      done = CanonicalDatetime(text, out);
      break;
    case ColumnType::kVarchar:
    case ColumnType::kText:
    case ColumnType::kBlob:
    case ColumnType::kVarbinary:
      break;
  }
  if (!done) {
    out->resize(mark);
    out->append(text);
  }
}

std::string CanonicalValue(const ColumnSpec& column, std::string_view text) {
  std::string out;
  AppendCanonical(column, text, &out);
  return out;
}

int CompareCanonical(const ColumnSpec& column, std::string_view a, std::string_view b) {
  if (column.type == ColumnType::kInteger || column.type == ColumnType::kBigint ||
      column.type == ColumnType::kDecimal) {
    int result = 0;
    if (CompareNumbers(a, b, &result)) return Sign(result);
  }
  return Sign(a.compare(b));
}

bool KeyOrderIsBinaryText(const ColumnSpec& column) {
  switch (column.type) {
    case ColumnType::kInteger:
    case ColumnType::kBigint:
    case ColumnType::kDecimal:
    case ColumnType::kDate:
    case ColumnType::kDatetime:
    case ColumnType::kBlob:  // bytes are never keys (refused in manifests)
    case ColumnType::kVarbinary:
      return false;
    case ColumnType::kVarchar:
    case ColumnType::kChar:
    case ColumnType::kText:
      return true;
  }
  return true;
}

std::string KeyOrderExpression(const SqlDialect& dialect, const ColumnSpec& column) {
  std::string quoted = dialect.Quote(column.name);
  if (!KeyOrderIsBinaryText(column)) return quoted;
  switch (dialect.dbms()) {
    case Dbms::kSqlite:
      return quoted + " COLLATE BINARY";
    case Dbms::kPostgres:
      return quoted + " COLLATE \"C\"";
    case Dbms::kMysql:
      // Tables may be in another character set (GBK sources): compare the UTF-8 bytes.
      return "CONVERT(" + quoted + " USING utf8mb4) COLLATE utf8mb4_bin";
    case Dbms::kGeneric:
      return quoted;
  }
  return quoted;
}

}  // namespace dx
