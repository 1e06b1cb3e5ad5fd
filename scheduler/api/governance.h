// Governance: the sharing workflow's parts wired together — one Authorizer, the identities,
// the catalog lifecycle, applications and subscriptions, demands, oversight — shared by the
// admin API's routes and by manifests, so both follow the same rules.
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "scheduler/access/authorizer.h"
#include "scheduler/access/user_directory.h"
#include "scheduler/api/router.h"
#include "scheduler/catalog/catalog_workflow.h"
#include "scheduler/catalog/demand_workflow.h"
#include "scheduler/catalog/manifest_policy.h"
#include "scheduler/catalog/oversight.h"
#include "scheduler/catalog/sharing_workflow.h"

namespace dx::scheduler {

struct GovernanceOptions {
  // The organisation of the bootstrap technical admin (the operator token's holder).
  std::string bootstrap_organisation = "数据技术管理部门";
  // The bootstrap admin's manifests are applied as the first release did: catalog entries
  // published without review and subscriptions granted without an application (each said so
  // in the outcome and the audit log). scheduler.yaml: admin.bootstrap_direct.
  bool bootstrap_direct = true;
};

class Governance {
 public:
  Governance(Store& store, const Clock& clock, GovernanceOptions opts)
      : options(std::move(opts)),
        users(store, authz, clock),
        catalog(store, authz, clock),
        sharing(store, authz, clock),
        demands(store, authz, clock),
        oversight(store, authz, clock) {}

  // How a manifest applied by `actor` goes through the workflow: the bootstrap admin's direct
  // path when allowed, else entries drafted (`draft`) or submitted for review.
  std::unique_ptr<GovernedApplyPolicy> PolicyFor(const Actor& actor, bool draft) {
    using Mode = ApplyPolicy::EntryMode;
    const Mode mode = actor.who.bootstrap && options.bootstrap_direct ? Mode::kPublishDirect
                      : draft                                         ? Mode::kDraft
                                                                      : Mode::kSubmit;
    return std::make_unique<GovernedApplyPolicy>(authz, catalog, sharing, actor, mode);
  }

  const GovernanceOptions options;
  const Authorizer authz{};
  UserDirectory users;
  CatalogWorkflow catalog;
  SharingWorkflow sharing;
  DemandWorkflow demands;
  Oversight oversight;
};

// Adds the governance routes (identities, catalog lifecycle, applications, subscription
// states, demands, feedback, usage, lists, notices, audit) to `router`.
void AddGovernanceRoutes(Router& router, Governance& governance, Store& store);

}  // namespace dx::scheduler
