// Approval scope (最小够用, 第五条(二)): a subscription made from an approved application may
// carry no column and no row beyond what was approved, and carries the approval's masking.
// Pure functions, shared by subscription creation (manifest and API) and the check before
// every run.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/catalog/records.h"

namespace dx::scheduler {

// Ok when every row that `condition` lets through is let through by `approved` (same column).
// Values compare as numbers when both sides are numbers, else as text (ISO dates and times
// order correctly as text).
bool Implies(const RowCondition& condition, const RowCondition& approved);

// Ok when `columns` are among `approved`, and `filter` selects no row outside `approved_filter`:
// every approved condition must be implied by a condition of the filter on the same column
// (extra conditions only narrow it). kPermissionDenied names the first excess.
Status CheckColumnsWithin(const std::vector<std::string>& columns,
                          const std::vector<std::string>& approved);
Status CheckRowsWithin(const std::vector<RowCondition>& filter,
                       const std::vector<RowCondition>& approved_filter);
Status CheckWithinScope(const Subscription& sub, const ApprovedScope& scope);

// Rules for masking a resource's columns: known methods, columns of the entry, at most one rule
// per column; a primary key is always kept; hash and partial apply to text.
Status ValidateMasking(const std::vector<MaskingRule>& rules, const CatalogEntry& entry);
// The approval's rules for `columns` (columns without a rule are kept and get none).
std::vector<MaskingRule> MaskingForColumns(const std::vector<MaskingRule>& rules,
                                           const std::vector<std::string>& columns);
// Parses "column=method" ("id_card=partial:3:4", "name=hash", "phone=drop").
Result<MaskingRule> ParseMaskingRule(const std::string& text);

}  // namespace dx::scheduler
