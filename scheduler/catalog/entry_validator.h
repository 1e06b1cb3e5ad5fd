// EntryValidator: checks a catalog entry's description against 第十五至十七条 and 附件三 and
// reports every problem at once, each with the field it concerns ("security_level",
// "fields[2].type"). Problems that would break an exchange (no key, no usable UPDATETIME, a
// bad name) are `blocking`; the rest make the description incomplete for review. Used by
// manifests and by the admin API alike.
#pragma once

#include <string>
#include <vector>

#include "scheduler/model.h"

namespace dx::scheduler {

struct Problem {
  std::string field;  // key path in the entry, e.g. "fields[1].type"; "" for the whole entry
  std::string message;
  bool blocking = false;  // true: the exchange could not work with it
};

// Every problem of `entry`, in the order of the fields.
std::vector<Problem> ValidateEntry(const CatalogEntry& entry);

// The stage codes of 附件三's 约束范围 and update frequencies of 数据接入频率, with their
// Chinese names; Canonical*() maps either form to the code ("" when unknown).
std::string CanonicalStage(const std::string& text);
std::string CanonicalProvision(const std::string& text);
bool IsKnownUpdateFrequency(const std::string& text);

// "field: message" lines.
std::string FormatProblems(const std::vector<Problem>& problems);

}  // namespace dx::scheduler
