// CanonicalValue: one spelling for each value of a catalog column, whatever DBMS it was read back
// from. Reconciliation (对账) hashes rows on the scheduler (as read from the source) and on the
// agent (as read from the local copy); the same value comes back as "12.50", "12.5" or
// "1.25e+01", "2026-01-01T08:00:00" or "2026-01-01 08:00:00.000", "ab" or "ab   ", and must
// hash the same. The forms, per type (docs/RECONCILIATION.md lists them with examples):
//   int, bigint    optional '-', digits without leading zeros; "+7", "007", "7.0" -> "7"; "-0" ->
//   "0" decimal(p,s)   plain notation (no exponent), rounded half away from zero to s places, then
//                  trailing fraction zeros and a bare point dropped: "12.50" -> "12.5", "3e2" ->
//                  "300"
//   varchar, text  the bytes as they are (UTF-8): case, spaces and the empty string all count
//   char(n)        trailing spaces dropped (SQL's pad semantics: "ab  " equals "ab")
//   blob, varbinary the bytes as they are (read as bytes on both sides, never as text)
//   date           YYYY-MM-DD, zero-padded; a midnight time part is dropped
//   datetime       YYYY-MM-DD HH:MM:SS, then '.' and the fraction without trailing zeros when
//                  it is not zero; 'T' separators read as a space
// Text that does not parse as its type is kept as it is, so a real difference still shows.
// A new ColumnType gets its case in AppendCanonical (and, when its order is not bytewise on the
// canonical text, in CompareCanonical); unknown types fall back to the exact bytes.
#pragma once

#include <string>
#include <string_view>

#include "common/sql_dialect.h"
#include "common/table_spec.h"

namespace dx {

// Appends the canonical form of `text`, a non-NULL value of `column` read as text, to `out`.
void AppendCanonical(const ColumnSpec& column, std::string_view text, std::string* out);
std::string CanonicalValue(const ColumnSpec& column, std::string_view text);

// Orders two canonical values of `column` as reconciliation's key order does: integers and
// decimals numerically, dates and datetimes chronologically, text bytewise (UTF-8 code-point
// order, i.e. binary collation). Returns <0, 0 or >0.
int CompareCanonical(const ColumnSpec& column, std::string_view a, std::string_view b);

// True when the key order of `column` is bytewise text order, so that SQL must sort and compare
// it with a binary collation for every DBMS to agree with CompareCanonical.
bool KeyOrderIsBinaryText(const ColumnSpec& column);
// The SQL expression to sort and compare key column `column` by in `dialect` so that the
// DBMS agrees with CompareCanonical: the quoted column, with a binary collation for text.
std::string KeyOrderExpression(const SqlDialect& dialect, const ColumnSpec& column);

}  // namespace dx
