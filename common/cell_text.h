// CellText: the one text form a cell of each catalog type takes on the wire, whatever the
// source DBMS printed. Decimals become plain notation with exactly `scale` fraction digits
// (SQLite prints 12.5 or 1.0e-05, PostgreSQL and MariaDB 12.50); datetimes become
// "YYYY-MM-DD HH:MM:SS" with exactly the catalog's fractional digits (PostgreSQL drops
// trailing zeros, MariaDB prints six, SQLite keeps what was stored, maybe with a 'T').
// Digits beyond the catalog's precision are kept when they are not zeros: the target DBMS
// then rounds as it always does (docs/DECISIONS.md, "Exact values"). Text that is not a
// number or a timestamp is left as it is, for the target to accept or refuse.
#pragma once

#include <string>
#include <string_view>

#include "common/table_spec.h"

namespace dx {

// True when `column`'s values may need rewriting (decimal and datetime columns).
bool NeedsCanonicalText(const ColumnSpec& column);
// Writes the wire form of `raw` for `column` into `out`.
void CanonicalText(const ColumnSpec& column, std::string_view raw, std::string* out);

}  // namespace dx
