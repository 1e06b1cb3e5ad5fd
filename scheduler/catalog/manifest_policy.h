// GovernedApplyPolicy: a manifest applied by a signed-in user goes through the same workflow
// as the admin API. Sources need the technical admin; a catalog entry becomes that user's
// draft or submission (or, for the bootstrap admin with admin.bootstrap_direct, is published
// at once, said so in the outcome and the entry's history); an agent is registered for its
// organisation; a subscription is admitted by the SharingWorkflow (approval scope, masking).
#pragma once

#include "scheduler/access/authorizer.h"
#include "scheduler/catalog/catalog_workflow.h"
#include "scheduler/catalog/sharing_workflow.h"
#include "scheduler/manifest.h"

namespace dx::scheduler {

class GovernedApplyPolicy : public ApplyPolicy {
 public:
  GovernedApplyPolicy(const Authorizer& authz, CatalogWorkflow& catalog, SharingWorkflow& sharing,
                      Actor actor, EntryMode mode)
      : authz_(authz),
        catalog_(catalog),
        sharing_(sharing),
        actor_(std::move(actor)),
        mode_(mode) {}

  EntryMode entry_mode() const override { return mode_; }
  Status AdmitSource(const Source& source) override;
  Status AdmitEntry(const CatalogEntry& entry) override;
  Status AdmitAgent(AgentRecord* agent, const std::optional<AgentRecord>& stored) override;
  Status AdmitSubscription(Subscription* sub, const std::optional<Subscription>& stored,
                           const CatalogEntry& entry, const AgentRecord& agent) override;
  Result<ApplyOutcome> WriteEntry(const CatalogEntry& entry,
                                  const std::vector<Problem>& notes) override;

 private:
  const Authorizer& authz_;
  CatalogWorkflow& catalog_;
  SharingWorkflow& sharing_;
  const Actor actor_;
  const EntryMode mode_;
};

}  // namespace dx::scheduler
