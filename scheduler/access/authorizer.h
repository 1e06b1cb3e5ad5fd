// Authorizer: the one place that decides who may do what to which object. Every admin-API
// route and every manifest document asks it, naming an Action and describing the object by
// the organisations it belongs to (a Target); the answer depends only on the caller's role,
// organisation and user name and on those facts, from one table of grants (authorizer.cc).
// Workflow rules (e.g. "only a submitted entry can be reviewed") are not decided here: they
// belong to the workflows in catalog/.
#pragma once

#include <string>

#include "common/status.h"
#include "scheduler/access/principal.h"

namespace dx::scheduler {

enum class Action {
  // identities
  kOrganisationRead,
  kOrganisationManage,
  kUserRead,
  kUserManage,
  kTokenIssue,   // target.user: whose token
  kTokenRead,    // target.user
  kTokenRevoke,  // target.user
  // platform
  kSourceRead,
  kSourceManage,
  kAgentRead,      // target.consumer_org: the agent's organisation
  kAgentRegister,  // target.consumer_org
  kAgentManage,    // disable, enable, remove: the technical admin only
  kStatsRead,      // the scheduler's own counters (polls, reads): the technical admin
  // catalog (第十三、十四、二十一条)
  kCatalogRead,       // published entries: everyone
  kCatalogReadDraft,  // unpublished versions: target.provider_org
  kCatalogEdit,       // create or change a draft: target.provider_org
  kCatalogSubmit,
  kCatalogReview,   // technical review (数据技术管理部门)
  kCatalogPublish,  // publish or return (数据管理协调部门)
  // applications (第二十五条, 附件四)
  kApplicationCreate,  // target.consumer_org: the applicant
  kApplicationRead,    // target.provider_org and target.consumer_org
  kProviderDecision,
  kTechnicalReview,
  kCoordinatorDecision,
  kArbitrationRequest,
  kArbitrationDecision,  // target.refused_by: the user who refused (recuses)
  // subscriptions
  kSubscriptionRead,
  kSubscriptionCreate,   // target.consumer_org: the agent's organisation
  kSubscriptionOperate,  // run, resync
  kSubscriptionSuspend,
  kSubscriptionTerminate,
  kSubscriptionResume,  // target.halted_by_org: who suspended it
  kSubscriptionRemove,  // a terminated one whose deletion is confirmed: the technical admin only
  kRunRead,
  // demand for data not in the catalog (第二十六条, 附件五): one action per step
  kDemandCreate,
  kDemandRead,
  kDemandCompare,    // (一) field comparison with the technical admin
  kDemandNegotiate,  // (二) the coordinator agrees scope and method
  kDemandPlan,       // (三) the technical admin writes the sharing plan
  kDemandConfirm,    // (三) provider and consumer confirm the plan
  kDemandIntegrate,  // (四) integration done
  kDemandCatalogue,  // (五) the catalog entry made
  kDemandApply,      // (六) the consumer applies for it
  kDemandClose,      // no agreement: the coordinator closes it
  // feedback and oversight
  kFeedbackCreate,
  kFeedbackRead,
  kFeedbackResolve,
  kUsageRead,  // target.provider_org
  kListsRead,  // the three lists of the governance plan
  kNoticeRead,
  kAuditRead,
  kAuditVerify,
};

// The facts about an object that decide who may act on it.
struct Target {
  std::string kind;           // for messages: "catalog entry", "application", ...
  std::string name;           // for messages
  std::string provider_org;   // the organisation that provides the data
  std::string consumer_org;   // the organisation that receives it (applicant, agent owner)
  std::string user;           // the user an identity record or token belongs to
  std::string halted_by_org;  // resume: the organisation that suspended
  std::string refused_by;     // arbitration: the user whose refusal is arbitrated
};

class Authorizer {
 public:
  // Ok, or kPermissionDenied with a message naming the caller, the action and the object.
  Status Check(const Principal& who, Action action, const Target& target = {}) const;
  bool Allows(const Principal& who, Action action, const Target& target = {}) const {
    return Check(who, action, target).ok();
  }
  // Whether some object exists on which `who`'s role may perform `action` (routes refuse
  // a caller whose role can never do it before reading anything).
  bool RoleMayEver(Role role, Action action) const;
};

// A short verb phrase for messages and the audit log, e.g. "publish catalog entries".
const char* ActionName(Action action);

}  // namespace dx::scheduler
