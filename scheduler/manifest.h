// Manifest: catalog entries, sources, agents and subscriptions written as YAML documents and
// applied idempotently (dxctl apply -f). Every document is validated first (names, types,
// cross-references); if any is invalid nothing is applied and the error names file, line, key.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/store.h"

namespace dx::scheduler {

struct ApplyOutcome {
  std::string kind;  // Source | CatalogEntry | Agent | Subscription
  std::string name;
  std::string action;  // created | updated | unchanged
};

Result<std::vector<ApplyOutcome>> ApplyManifest(Store& store, const std::string& text,
                                                const std::string& source_name);

// Validates a subscription against its catalog entry (shared with run-time checks).
Status CheckSubscriptionAgainstEntry(const Subscription& sub, const CatalogEntry& entry);

}  // namespace dx::scheduler
