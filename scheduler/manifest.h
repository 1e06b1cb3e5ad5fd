// Manifest: catalog entries, sources, agents and subscriptions written as YAML documents and
// applied idempotently (dxctl apply -f). Every document is validated first (names, types,
// cross-references); if any is invalid nothing is applied and the error names file, line, key.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/source_schema.h"
#include "scheduler/store.h"

namespace dx::scheduler {

struct ApplyOutcome {
  std::string kind;  // Source | CatalogEntry | Agent | Subscription
  std::string name;
  std::string action;     // created | updated | unchanged | resumed
  std::string note = {};  // e.g. "not checked: source unreachable", "resumed (was stopped: ...)"
};

// Applies a manifest. With a `reader`, every table catalog entry of the manifest (and every
// applied entry of a source the manifest redefines) is checked against its source first: a
// missing table or column, a type that does not fit, an UPDATETIME that cannot be compared
// refuse the whole manifest. An unreachable source does not: its entries are applied with a
// note, and every run checks again before it reads. A successful apply resumes the stopped
// subscriptions it concerns (named, or using an entry or source it names).
Result<std::vector<ApplyOutcome>> ApplyManifest(Store& store, const std::string& text,
                                                const std::string& source_name,
                                                SourceReader* reader = nullptr);

// Every key the manifest parser accepts, by kind ("Source", "CatalogEntry", "FileResource",
// "Agent", "Subscription") and nested list ("CatalogEntry.fields", "Subscription.filter");
// docs/MANIFEST.md documents each one (a unit test keeps them in step).
const std::map<std::string, std::vector<std::string>>& ManifestKeys();

// Refuses a table subscription whose agent already receives the same target table (compared
// ignoring case, as targets fold names) for another subscription in `all`: a resync of one
// would delete the other's rows.
Status CheckTargetTableFree(const Subscription& sub, const std::vector<Subscription>& all);

// Validates a subscription against its catalog entry (shared with run-time checks).
Status CheckSubscriptionAgainstEntry(const Subscription& sub, const CatalogEntry& entry);

}  // namespace dx::scheduler
