#include "scheduler/access/authorizer.h"

#include <vector>

namespace dx::scheduler {
namespace {

// How the caller must stand to the object for a grant to apply.
enum class Relation {
  kAny,             // any object
  kProviderOrg,     // the caller's organisation provides it
  kConsumerOrg,     // the caller's organisation receives it
  kSelf,            // it belongs to the caller (tokens, the user record)
  kHalter,          // the caller's organisation suspended it
  kProviderHalter,  // provides it and suspended it
  kConsumerHalter,  // receives it and suspended it
  kNotRefuser,      // the caller is not the user whose refusal is under arbitration
};

struct Grant {
  Role role;
  Relation relation;
};

struct Rule {
  Action action;
  const char* name;
  std::vector<Grant> grants;
};

constexpr Role P = Role::kProvider;
constexpr Role C = Role::kConsumer;
constexpr Role K = Role::kCoordinator;
constexpr Role A = Role::kAdmin;
constexpr Relation kAny = Relation::kAny;
constexpr Relation kProv = Relation::kProviderOrg;
constexpr Relation kCons = Relation::kConsumerOrg;
constexpr Relation kSelf = Relation::kSelf;

// Who may do what: the whole policy, one row per action.
const std::vector<Rule>& Rules() {
  static const auto* rules = new std::vector<Rule>{
      {Action::kOrganisationRead,
       "list organisations",
       {{P, kAny}, {C, kAny}, {K, kAny}, {A, kAny}}},
      {Action::kOrganisationManage, "manage organisations", {{A, kAny}}},
      {Action::kUserRead, "read user", {{A, kAny}, {K, kAny}, {P, kSelf}, {C, kSelf}}},
      {Action::kUserManage, "manage users", {{A, kAny}}},
      {Action::kTokenIssue,
       "issue API tokens for",
       {{A, kAny}, {K, kSelf}, {P, kSelf}, {C, kSelf}}},
      {Action::kTokenRead, "list API tokens of", {{A, kAny}, {K, kSelf}, {P, kSelf}, {C, kSelf}}},
      {Action::kTokenRevoke,
       "revoke API tokens of",
       {{A, kAny}, {K, kSelf}, {P, kSelf}, {C, kSelf}}},
      {Action::kSourceRead, "read source", {{A, kAny}, {P, kProv}}},
      {Action::kSourceManage, "define sources", {{A, kAny}}},
      {Action::kAgentRead, "see agent", {{A, kAny}, {K, kAny}, {C, kCons}}},
      {Action::kAgentRegister, "register agent", {{A, kAny}, {C, kCons}}},
      {Action::kAgentManage, "disable, enable or remove agent", {{A, kAny}}},
      {Action::kStatsRead, "read the scheduler's counters", {{A, kAny}}},
      {Action::kCatalogRead,
       "read the published catalog",
       {{P, kAny}, {C, kAny}, {K, kAny}, {A, kAny}}},
      {Action::kCatalogReadDraft,
       "read unpublished catalog entry",
       {{A, kAny}, {K, kAny}, {P, kProv}}},
      {Action::kCatalogEdit, "edit catalog entry", {{A, kAny}, {P, kProv}}},
      {Action::kCatalogSubmit, "submit catalog entry", {{A, kAny}, {P, kProv}}},
      {Action::kCatalogReview, "review catalog entry (technical review)", {{A, kAny}}},
      {Action::kCatalogPublish, "publish or return catalog entry", {{K, kAny}}},
      {Action::kApplicationCreate, "apply for data for", {{C, kCons}}},
      {Action::kApplicationRead,
       "read application",
       {{A, kAny}, {K, kAny}, {P, kProv}, {C, kCons}}},
      {Action::kProviderDecision, "decide as provider on application", {{P, kProv}}},
      {Action::kTechnicalReview, "review application (technical review)", {{A, kAny}}},
      {Action::kCoordinatorDecision, "decide as coordinator on application", {{K, kAny}}},
      {Action::kArbitrationRequest, "request arbitration of application", {{C, kCons}}},
      {Action::kArbitrationDecision, "arbitrate application", {{K, Relation::kNotRefuser}}},
      {Action::kSubscriptionRead,
       "read subscription",
       {{A, kAny}, {K, kAny}, {P, kProv}, {C, kCons}}},
      {Action::kSubscriptionCreate, "create or change subscription", {{A, kAny}, {C, kCons}}},
      {Action::kSubscriptionOperate, "run or resync subscription", {{A, kAny}, {C, kCons}}},
      {Action::kSubscriptionSuspend,
       "suspend subscription",
       {{A, kAny}, {K, kAny}, {P, kProv}, {C, kCons}}},
      {Action::kSubscriptionTerminate,
       "terminate subscription",
       {{K, kAny}, {P, kProv}, {C, kCons}}},
      {Action::kSubscriptionResume,
       "resume subscription",
       {{K, kAny},
        {A, Relation::kHalter},
        {P, Relation::kProviderHalter},
        {C, Relation::kConsumerHalter}}},
      {Action::kSubscriptionRemove, "remove subscription", {{A, kAny}}},
      {Action::kRunRead,
       "read runs of subscription",
       {{A, kAny}, {K, kAny}, {P, kProv}, {C, kCons}}},
      {Action::kDemandCreate, "file a data demand for", {{C, kCons}}},
      {Action::kDemandRead, "read demand", {{A, kAny}, {K, kAny}, {P, kProv}, {C, kCons}}},
      {Action::kDemandCompare, "record the field comparison of demand", {{A, kAny}}},
      {Action::kDemandNegotiate, "record the negotiated scope of demand", {{K, kAny}}},
      {Action::kDemandPlan, "write the sharing plan of demand", {{A, kAny}}},
      {Action::kDemandConfirm, "confirm the sharing plan of demand", {{P, kProv}, {C, kCons}}},
      {Action::kDemandIntegrate, "record the integration of demand", {{A, kAny}, {P, kProv}}},
      {Action::kDemandCatalogue, "record the catalog entry of demand", {{A, kAny}}},
      {Action::kDemandApply, "record the application of demand", {{C, kCons}}},
      {Action::kDemandClose, "close demand", {{K, kAny}}},
      {Action::kFeedbackCreate, "report a data error as", {{C, kCons}}},
      {Action::kFeedbackRead, "read error report", {{A, kAny}, {K, kAny}, {P, kProv}, {C, kCons}}},
      {Action::kFeedbackResolve, "resolve error report", {{P, kProv}}},
      {Action::kUsageRead, "read the usage of resources", {{A, kAny}, {K, kAny}, {P, kProv}}},
      {Action::kListsRead,
       "read the demand, responsibility and negative lists",
       {{A, kAny}, {K, kAny}}},
      {Action::kNoticeRead, "read notice", {{A, kAny}, {K, kAny}, {P, kCons}, {C, kCons}}},
      {Action::kAuditRead, "read the audit log", {{A, kAny}, {K, kAny}}},
      {Action::kAuditVerify, "verify the audit log", {{A, kAny}}},
  };
  return *rules;
}

const Rule* FindRule(Action action) {
  for (const Rule& r : Rules()) {
    if (r.action == action) return &r;
  }
  return nullptr;
}

bool Same(const std::string& a, const std::string& b) { return !a.empty() && a == b; }

bool Holds(Relation relation, const Principal& p, const Target& t) {
  switch (relation) {
    case Relation::kAny:
      return true;
    case Relation::kProviderOrg:
      return Same(p.organisation, t.provider_org);
    case Relation::kConsumerOrg:
      return Same(p.organisation, t.consumer_org);
    case Relation::kSelf:
      return Same(p.user, t.user);
    case Relation::kHalter:
      return Same(p.organisation, t.halted_by_org);
    case Relation::kProviderHalter:
      return Same(p.organisation, t.provider_org) && Same(p.organisation, t.halted_by_org);
    case Relation::kConsumerHalter:
      return Same(p.organisation, t.consumer_org) && Same(p.organisation, t.halted_by_org);
    case Relation::kNotRefuser:
      return p.user != t.refused_by;
  }
  return false;
}

// Why a grant of the caller's role did not apply, for the message.
std::string Why(Relation relation, const Principal& p, const Target& t) {
  switch (relation) {
    case Relation::kProviderOrg:
      return "it is provided by '" + t.provider_org + "', not by '" + p.organisation + "'";
    case Relation::kConsumerOrg:
      return "it belongs to '" + t.consumer_org + "', not to '" + p.organisation + "'";
    case Relation::kSelf:
      return "it belongs to user '" + t.user + "'";
    case Relation::kHalter:
    case Relation::kProviderHalter:
    case Relation::kConsumerHalter:
      return "it was suspended by '" + t.halted_by_org +
             "'; only that organisation or a coordinator may resume it";
    case Relation::kNotRefuser:
      return "'" + p.user + "' made the refusal under arbitration and may not arbitrate it";
    case Relation::kAny:
      break;
  }
  return "";
}

}  // namespace

const char* ActionName(Action action) {
  const Rule* rule = FindRule(action);
  return rule ? rule->name : "?";
}

bool Authorizer::RoleMayEver(Role role, Action action) const {
  const Rule* rule = FindRule(action);
  if (rule == nullptr) return false;
  for (const Grant& g : rule->grants) {
    if (g.role == role) return true;
  }
  return false;
}

Status Authorizer::Check(const Principal& who, Action action, const Target& target) const {
  const Rule* rule = FindRule(action);
  // The action's name says what kind of object it is ("publish or return catalog entry").
  const std::string object = target.name.empty() ? "" : " '" + target.name + "'";
  const std::string prefix = "user '" + who.user + "' (" + RoleName(who.role) + ", " +
                             who.organisation + ") may not " + (rule ? rule->name : "do that") +
                             object;
  if (rule == nullptr) return PermissionDenied(prefix);
  std::string why;
  bool role_granted = false;
  for (const Grant& g : rule->grants) {
    if (g.role != who.role) continue;
    role_granted = true;
    if (Holds(g.relation, who, target)) return Status::Ok();
    if (why.empty()) why = Why(g.relation, who, target);
  }
  if (!role_granted) {
    std::string roles;
    for (const Grant& g : rule->grants) {
      const std::string r = RoleName(g.role);
      if (roles.find(r) == std::string::npos) roles += (roles.empty() ? "" : ", ") + r;
    }
    return PermissionDenied(prefix + ": only " + roles + " may");
  }
  return PermissionDenied(prefix + ": " + why);
}

}  // namespace dx::scheduler
