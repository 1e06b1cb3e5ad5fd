// Table shapes: whether an existing target table can take a subscription's columns. When the
// agent creates a table it records what the driver then reports for each column (type code,
// type name, size); later runs compare with that record, so every driver is judged by what it
// really says about what the agent itself made (sqliteodbc reports DECIMAL(5,1) as VARCHAR).
// Tables without a record (adopted from an older agent, or a catalog type that changed since)
// are judged by type families, by code and by name.
#pragma once

#include <string>
#include <vector>

#include "common/odbc.h"
#include "common/table_spec.h"

namespace dx::agent {

// The record of `reported` (SQLColumns of a table just created from `spec`).
std::string RecordShape(const TableSpec& spec, const std::vector<DbColumnInfo>& reported);

// True when `recorded_shape` (RecordShape of a table the agent created) has exactly the columns
// of `spec` with the same catalog types (names compared without regard to case). A resync whose
// table shape changed (the subscription's columns or masking did) recreates the table.
bool ShapeIsFor(const TableSpec& spec, const std::string& recorded_shape);

// Checks `existing` against `spec` and fills `resolved` with `spec` under the names the table
// really has (a column matches by exact name, else by name without regard to case).
// kFailedPrecondition names the table, column, what it is and what the catalog says.
Status CheckShape(const TableSpec& spec, const std::vector<DbColumnInfo>& existing,
                  const std::string& recorded_shape, TableSpec* resolved);

}  // namespace dx::agent
