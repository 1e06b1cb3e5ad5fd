// Manifest: catalog entries, sources, agents and subscriptions written as YAML documents and
// applied idempotently (dxctl apply -f). Every document is validated first (names, types,
// cross-references); if any is invalid nothing is applied and the error names file, line, key.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/catalog/entry_validator.h"
#include "scheduler/source_schema.h"
#include "scheduler/store.h"

namespace dx::scheduler {

struct ApplyOutcome {
  std::string kind;  // Source | CatalogEntry | Agent | Subscription
  std::string name;
  std::string action;     // created | updated | unchanged | resumed
  std::string note = {};  // e.g. "not checked: source unreachable", "resumed (was stopped: ...)"
};

// How a manifest meets the sharing workflow: who may apply which document, and what applying a
// catalog entry means for them (catalog/manifest_policy.h). Without one, a manifest is applied
// as the first release did: entries published at once, subscriptions granted directly.
class ApplyPolicy {
 public:
  enum class EntryMode {
    kPublishDirect,  // the bootstrap admin's direct path: published at once
    kSubmit,         // saved and submitted for review; every description problem refuses
    kDraft,          // saved as a draft; description problems are notes
  };
  virtual ~ApplyPolicy() = default;
  virtual EntryMode entry_mode() const = 0;
  // Each document, before anything is applied: may the caller apply it? May fill in what the
  // workflow decides (an agent's organisation; a subscription's organisation and masking).
  virtual Status AdmitSource(const Source& source) = 0;
  virtual Status AdmitEntry(const CatalogEntry& entry) = 0;
  virtual Status AdmitAgent(AgentRecord* agent, const std::optional<AgentRecord>& stored) = 0;
  virtual Status AdmitSubscription(Subscription* sub, const std::optional<Subscription>& stored,
                                   const CatalogEntry& entry, const AgentRecord& agent) = 0;
  // Records an entry inside the apply's transaction (`notes`: its description problems that
  // did not refuse it); returns its outcome.
  virtual Result<ApplyOutcome> WriteEntry(const CatalogEntry& entry,
                                          const std::vector<Problem>& notes) = 0;
};

// Applies a manifest. With a `reader`, every table catalog entry of the manifest (and every
// applied entry of a source the manifest redefines) is checked against its source first: a
// missing table or column, a type that does not fit, an UPDATETIME that cannot be compared
// refuse the whole manifest. An unreachable source does not: its entries are applied with a
// note, and every run checks again before it reads. A successful apply resumes the stopped
// subscriptions it concerns (named, or using an entry or source it names). Every catalog
// entry's description is validated (EntryValidator) and every problem is reported at once,
// located by file and line; which problems refuse depends on the policy's entry mode.
Result<std::vector<ApplyOutcome>> ApplyManifest(Store& store, const std::string& text,
                                                const std::string& source_name,
                                                SourceReader* reader = nullptr,
                                                ApplyPolicy* policy = nullptr);

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
