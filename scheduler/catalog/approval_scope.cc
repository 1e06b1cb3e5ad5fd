#include "scheduler/catalog/approval_scope.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <set>

namespace dx::scheduler {
namespace {

bool AsNumber(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(text.c_str(), &end);
  return errno == 0 && end == text.c_str() + text.size();
}

// <0, 0, >0 like strcmp.
int Compare(const std::string& a, const std::string& b) {
  double x = 0;
  double y = 0;
  if (AsNumber(a, &x) && AsNumber(b, &y)) return x < y ? -1 : (x > y ? 1 : 0);
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

// Whether the single value `v` passes `c`.
bool Passes(const std::string& v, const RowCondition& c) {
  if (c.values.empty()) return false;
  const std::string& w = c.values.front();
  if (c.op == "=") return Compare(v, w) == 0;
  if (c.op == "!=") return Compare(v, w) != 0;
  if (c.op == "<") return Compare(v, w) < 0;
  if (c.op == "<=") return Compare(v, w) <= 0;
  if (c.op == ">") return Compare(v, w) > 0;
  if (c.op == ">=") return Compare(v, w) >= 0;
  if (c.op == "in") {
    return std::any_of(c.values.begin(), c.values.end(),
                       [&](const std::string& x) { return Compare(v, x) == 0; });
  }
  return false;
}

std::string Describe(const RowCondition& c) {
  std::string values;
  for (const std::string& v : c.values) values += (values.empty() ? "" : ", ") + v;
  return c.column + " " + c.op + " " + (c.op == "in" ? "[" + values + "]" : values);
}

}  // namespace

bool Implies(const RowCondition& c, const RowCondition& a) {
  if (c.column != a.column || c.values.empty() || a.values.empty()) return false;
  // A finite set of values: each must pass.
  if (c.op == "=" || c.op == "in") {
    return std::all_of(c.values.begin(), c.values.end(),
                       [&](const std::string& v) { return Passes(v, a); });
  }
  const std::string& v = c.values.front();
  const std::string& w = a.values.front();
  if (c.op == "!=") return a.op == "!=" && Compare(v, w) == 0;
  const bool c_upper = c.op == "<" || c.op == "<=";
  const bool a_upper = a.op == "<" || a.op == "<=";
  if ((a.op != "<" && a.op != "<=" && a.op != ">" && a.op != ">=") || c_upper != a_upper) {
    return false;  // an open range never fits in a set, a "!=" or the opposite range
  }
  const int cmp = Compare(v, w);
  if (c_upper) {  // c: x < v (or <=) ; a: x < w (or <=)
    if (a.op == "<=") return cmp <= 0;
    return c.op == "<" ? cmp <= 0 : cmp < 0;
  }
  if (a.op == ">=") return cmp >= 0;
  return c.op == ">" ? cmp >= 0 : cmp > 0;
}

Status CheckColumnsWithin(const std::vector<std::string>& columns,
                          const std::vector<std::string>& approved) {
  for (const std::string& c : columns) {
    if (std::find(approved.begin(), approved.end(), c) == approved.end()) {
      return PermissionDenied("column '" + c + "' was not approved (最小够用); approved: " + [&] {
        std::string s;
        for (const std::string& a : approved) s += (s.empty() ? "" : ", ") + a;
        return s;
      }());
    }
  }
  return Status::Ok();
}

Status CheckRowsWithin(const std::vector<RowCondition>& filter,
                       const std::vector<RowCondition>& approved_filter) {
  for (const RowCondition& a : approved_filter) {
    const bool covered = std::any_of(filter.begin(), filter.end(),
                                     [&](const RowCondition& c) { return Implies(c, a); });
    if (!covered) {
      return PermissionDenied("rows beyond the approval: the approved rows are limited by '" +
                              Describe(a) + "', and the filter does not keep within it (最小够用)");
    }
  }
  return Status::Ok();
}

Status CheckWithinScope(const Subscription& sub, const ApprovedScope& scope) {
  DX_RETURN_IF_ERROR(CheckColumnsWithin(sub.columns, scope.columns));
  return CheckRowsWithin(sub.filter, scope.filter);
}

Status ValidateMasking(const std::vector<MaskingRule>& rules, const CatalogEntry& entry) {
  std::set<std::string> seen;
  for (const MaskingRule& m : rules) {
    const Field* f = entry.FindField(m.column);
    const std::string at = "masking of '" + m.column + "': ";
    if (f == nullptr) return InvalidArgument(at + "not a field of '" + entry.name + "'");
    if (!seen.insert(m.column).second) return InvalidArgument(at + "given twice");
    if (m.method != "keep" && m.method != "hash" && m.method != "partial" && m.method != "drop") {
      return InvalidArgument(at + "'" + m.method + "': expected keep, hash, partial or drop");
    }
    if (f->column.primary_key && m.method != "keep") {
      return InvalidArgument(
          at +
          "the primary key is delivered as it is: the agent finds, updates and deletes rows "
          "by it, and reconciliation compares key ranges in the source's key order (a hashed "
          "key loses that order, a partial mask makes keys collide, a dropped key leaves "
          "nothing to find rows by); mask other columns, or share a surrogate key");
    }
    const ColumnType t = f->column.type;
    const bool text = t == ColumnType::kVarchar || t == ColumnType::kChar || t == ColumnType::kText;
    if ((m.method == "hash" || m.method == "partial") && !text) {
      return InvalidArgument(at + m.method + " applies to text columns, not " +
                             ColumnTypeName(f->column));
    }
    if (m.method == "partial" &&
        (m.keep_first < 0 || m.keep_last < 0 || m.keep_first + m.keep_last == 0 ||
         (f->column.length > 0 && m.keep_first + m.keep_last >= f->column.length))) {
      return InvalidArgument(at + "partial keeps " + std::to_string(m.keep_first) + " + " +
                             std::to_string(m.keep_last) +
                             " characters: give a positive total that hides at least one");
    }
  }
  return Status::Ok();
}

std::vector<MaskingRule> MaskingForColumns(const std::vector<MaskingRule>& rules,
                                           const std::vector<std::string>& columns) {
  std::vector<MaskingRule> out;
  for (const MaskingRule& m : rules) {
    if (m.method != "keep" &&
        std::find(columns.begin(), columns.end(), m.column) != columns.end()) {
      out.push_back(m);
    }
  }
  return out;
}

Result<MaskingRule> ParseMaskingRule(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument("masking '" + text + "': expected COLUMN=keep|hash|drop|partial:N:M");
  }
  MaskingRule m;
  m.column = text.substr(0, eq);
  std::string method = text.substr(eq + 1);
  if (method.rfind("partial", 0) == 0) {
    m.method = "partial";
    int first = -1;
    int last = -1;
    char extra = 0;
    if (std::sscanf(method.c_str(), "partial:%d:%d%c", &first, &last, &extra) != 2) {
      return InvalidArgument("masking '" + text + "': partial needs :FIRST:LAST, e.g. partial:3:4");
    }
    m.keep_first = first;
    m.keep_last = last;
  } else {
    m.method = method;
  }
  return m;
}

}  // namespace dx::scheduler
