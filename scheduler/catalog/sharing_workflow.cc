#include "scheduler/catalog/sharing_workflow.h"

#include <algorithm>
#include <map>

#include "scheduler/catalog/approval_scope.h"

namespace dx::scheduler {
namespace {

struct Transition {
  ApplicationOp op;
  std::vector<std::string> from;
  const char* to;  // "" : decided by the refused step
  const char* what;
};

const std::vector<Transition>& Transitions() {
  static const auto* t = new std::vector<Transition>{
      {ApplicationOp::kProviderApprove,
       {"submitted"},
       "provider_approved",
       "approved by the provider"},
      {ApplicationOp::kProviderRefuse, {"submitted"}, "refused", "refused by the provider"},
      {ApplicationOp::kFoundExisting, {"provider_approved"}, "reviewed", "technically reviewed"},
      {ApplicationOp::kFoundPartly, {"provider_approved"}, "integrating", "technically reviewed"},
      {ApplicationOp::kFoundMissing, {"provider_approved"}, "integrating", "technically reviewed"},
      {ApplicationOp::kIntegrated, {"integrating"}, "reviewed", "marked integrated"},
      {ApplicationOp::kCoordinatorApprove, {"reviewed"}, "approved", "approved by the coordinator"},
      {ApplicationOp::kCoordinatorRefuse, {"reviewed"}, "refused", "refused by the coordinator"},
      {ApplicationOp::kRequestArbitration, {"refused"}, "arbitration", "taken to arbitration"},
      {ApplicationOp::kArbitrationPass, {"arbitration"}, "", "passed in arbitration"},
      {ApplicationOp::kArbitrationFail, {"arbitration"}, "closed", "failed in arbitration"},
      {ApplicationOp::kWithdraw,
       {"submitted", "provider_approved", "integrating", "reviewed", "refused", "arbitration"},
       "withdrawn",
       "withdrawn"},
  };
  return *t;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The columns and rows of a request against the entry: fields, the key included.
Status CheckRequestShape(const CatalogEntry& entry, const std::vector<std::string>& columns,
                         const std::vector<RowCondition>& filter) {
  if (entry.is_file()) {
    if (!columns.empty() || !filter.empty()) {
      return InvalidArgument("'" + entry.name + "' is a file resource: request no columns or rows");
    }
    return Status::Ok();
  }
  if (columns.empty()) return InvalidArgument("the columns wanted are required (最小够用)");
  for (const std::string& c : columns) {
    if (entry.FindField(c) == nullptr) {
      return InvalidArgument("column '" + c + "' is not a field of '" + entry.name + "'");
    }
  }
  for (const Field& f : entry.fields) {
    if (f.column.primary_key && !Contains(columns, f.column.name)) {
      return InvalidArgument("the columns must include the primary key '" + f.column.name + "'");
    }
  }
  for (const RowCondition& c : filter) {
    if (entry.FindField(c.column) == nullptr) {
      return InvalidArgument("filter column '" + c.column + "' is not a field of '" + entry.name +
                             "'");
    }
    static const std::vector<std::string> kOps = {"=", "!=", "<", "<=", ">", ">=", "in"};
    if (!Contains(kOps, c.op)) {
      return InvalidArgument("filter on '" + c.column + "': op '" + c.op +
                             "' is not one of = != < <= > >= in");
    }
    if (c.values.empty() || (c.op != "in" && c.values.size() != 1)) {
      return InvalidArgument("filter on '" + c.column + "': " +
                             (c.op == "in" ? "'in' needs values" : "needs exactly one value"));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> NextApplicationState(ApplicationOp op, const std::string& state,
                                         const std::string& refused_step) {
  for (const Transition& t : Transitions()) {
    if (t.op != op) continue;
    if (!Contains(t.from, state)) {
      return FailedPrecondition(std::string("cannot be ") + t.what + " while it is " + state +
                                " (only when " + Join(t.from) + ")");
    }
    if (*t.to != '\0') return std::string(t.to);
    return std::string(refused_step == "coordinator" ? "approved" : "provider_approved");
  }
  return Internal("unknown application operation");
}

Target SharingWorkflow::ApplicationTarget(const Application& a) {
  Target t;
  t.kind = "application";
  t.name = std::to_string(a.id) + " (" + a.entry + ")";
  t.provider_org = a.provider;
  t.consumer_org = a.organisation;
  t.refused_by = a.refused_by;
  return t;
}

Result<Target> SharingWorkflow::SubscriptionTarget(const Subscription& sub) {
  Target t;
  t.kind = "subscription";
  t.name = sub.name;
  t.consumer_org = sub.organisation;
  if (t.consumer_org.empty()) {
    DX_ASSIGN_OR_RETURN(auto agent, store_.GetAgent(sub.agent));
    if (agent) t.consumer_org = agent->organisation;
  }
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(sub.entry));
  if (entry) t.provider_org = entry->provider;
  t.halted_by_org = sub.halted_org;
  return t;
}

Result<std::vector<Target>> SharingWorkflow::SubscriptionTargets(
    const std::vector<Subscription>& subs) {
  DX_ASSIGN_OR_RETURN(auto entries, store_.ListCatalogEntries());
  DX_ASSIGN_OR_RETURN(auto agents, store_.ListAgents());
  std::map<std::string, std::string> provider;
  std::map<std::string, std::string> agent_org;
  for (const CatalogEntry& e : entries) provider[e.name] = e.provider;
  for (const AgentRecord& a : agents) agent_org[a.name] = a.organisation;
  std::vector<Target> out;
  for (const Subscription& sub : subs) {
    Target t;
    t.kind = "subscription";
    t.name = sub.name;
    t.consumer_org = sub.organisation.empty() ? agent_org[sub.agent] : sub.organisation;
    t.provider_org = provider[sub.entry];
    t.halted_by_org = sub.halted_org;
    out.push_back(std::move(t));
  }
  return out;
}

Result<Application> SharingWorkflow::Load(int64_t id) {
  DX_ASSIGN_OR_RETURN(auto a, store_.GetApplication(id));
  if (!a) return NotFound("no application " + std::to_string(id));
  return std::move(*a);
}

Result<Application> SharingWorkflow::Get(const Actor& actor, int64_t id) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kApplicationRead, ApplicationTarget(a)));
  return a;
}

Result<Application> SharingWorkflow::Step(const Actor& actor, Application a, ApplicationOp op,
                                          const std::string& action, const std::string& note) {
  DX_ASSIGN_OR_RETURN(std::string next, NextApplicationState(op, a.state, a.refused_step));
  a.state = next;
  a.updated_at = ToUnixSeconds(clock_.Now());
  a.history.push_back({a.updated_at, actor.who.user, RoleName(actor.who.role),
                       actor.who.organisation, action, note});
  DX_RETURN_IF_ERROR(store_.PutApplication(a));
  return a;
}

Result<Application> SharingWorkflow::Apply(const Actor& actor, const ApplicationRequest& r) {
  Target target;
  target.kind = "organisation";
  target.name = actor.who.organisation;
  target.consumer_org = actor.who.organisation;
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kApplicationCreate, target));
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(r.entry));
  if (!entry) return NotFound("no published catalog entry named '" + r.entry + "'");
  if (entry->share_type == "not_shared") {
    return FailedPrecondition("catalog entry '" + r.entry +
                              "' is not shared (it is on the negative list): it cannot be applied "
                              "for");
  }
  if (entry->share_type == "unconditional") {
    return FailedPrecondition("catalog entry '" + r.entry +
                              "' is shared unconditionally (第二十四条): subscribe to it directly, "
                              "no application is needed");
  }
  if (r.purpose.empty() || r.scenario.empty()) {
    return InvalidArgument("an application states its purpose and its scenario (按需申请, 第五条)");
  }
  if (!r.accept_agreement) {
    return InvalidArgument(std::string("the confidentiality agreement must be accepted: ") +
                           kAgreementText);
  }
  DX_RETURN_IF_ERROR(CheckRequestShape(*entry, r.columns, r.filter));
  DX_ASSIGN_OR_RETURN(auto version, store_.GetCatalogVersion(r.entry, 0));
  const int64_t now = ToUnixSeconds(clock_.Now());
  Application a;
  a.entry = r.entry;
  a.entry_version = version && version->status == "published" ? version->version : 0;
  a.provider = entry->provider;
  a.organisation = actor.who.organisation;
  a.applicant = actor.who.user;
  a.purpose = r.purpose;
  a.scenario = r.scenario;
  a.columns = r.columns;
  a.filter = r.filter;
  a.agreement = {kAgreementText, actor.who.user, actor.who.organisation, now, actor.from};
  a.state = "submitted";
  a.created_at = now;
  a.updated_at = now;
  a.history.push_back({now, actor.who.user, RoleName(actor.who.role), actor.who.organisation,
                       "applied", "accepted " + std::string(kAgreementText)});
  DX_ASSIGN_OR_RETURN(a.id, store_.AddApplication(a));
  return a;
}

Status SharingWorkflow::Narrow(const Application& a, const Decision& d, ApprovedScope* scope) {
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(a.entry));
  if (!entry) return FailedPrecondition("catalog entry '" + a.entry + "' is no longer published");
  if (d.columns) {
    Status within = CheckColumnsWithin(*d.columns, scope->columns);
    if (!within.ok()) return InvalidArgument("an approval may only narrow: " + within.message());
    scope->columns = *d.columns;
  }
  for (const RowCondition& c : d.extra_filter) scope->filter.push_back(c);
  DX_RETURN_IF_ERROR(CheckRequestShape(*entry, scope->columns, scope->filter));
  if (d.masking) {
    DX_RETURN_IF_ERROR(ValidateMasking(*d.masking, *entry));
    scope->masking = *d.masking;
  }
  return Status::Ok();
}

Result<Application> SharingWorkflow::ProviderDecision(const Actor& actor, int64_t id,
                                                      const Decision& d) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kProviderDecision, ApplicationTarget(a)));
  if (!d.approve) {
    if (d.reason.empty()) return InvalidArgument("a refusal states its reason");
    DX_RETURN_IF_ERROR(NextApplicationState(ApplicationOp::kProviderRefuse, a.state).status());
    a.refused_by = actor.who.user;
    a.refused_step = "provider";
    return Step(actor, std::move(a), ApplicationOp::kProviderRefuse, "provider_refused", d.reason);
  }
  DX_RETURN_IF_ERROR(NextApplicationState(ApplicationOp::kProviderApprove, a.state).status());
  ApprovedScope scope{a.columns, a.filter, {}};
  DX_RETURN_IF_ERROR(Narrow(a, d, &scope));
  a.approved = scope;
  return Step(actor, std::move(a), ApplicationOp::kProviderApprove, "provider_approved", d.reason);
}

Result<Application> SharingWorkflow::TechnicalReview(const Actor& actor, int64_t id,
                                                     const std::string& result,
                                                     const std::string& note) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kTechnicalReview, ApplicationTarget(a)));
  ApplicationOp op;
  if (result == "exists") {
    op = ApplicationOp::kFoundExisting;
  } else if (result == "partly_exists") {
    op = ApplicationOp::kFoundPartly;
  } else if (result == "missing") {
    op = ApplicationOp::kFoundMissing;
  } else {
    return InvalidArgument(
        "technical review result '" + result +
        "': expected exists, partly_exists or missing (数据已存在/部分存在/不存在)");
  }
  if (op != ApplicationOp::kFoundExisting && note.empty()) {
    return InvalidArgument("data that " +
                           std::string(result == "missing" ? "does not exist" : "partly exists") +
                           " needs an integration task: say what must be integrated");
  }
  a.technical_result = result;
  if (op != ApplicationOp::kFoundExisting) a.integration_task = note;
  return Step(actor, std::move(a), op, "technical_review_" + result, note);
}

Result<Application> SharingWorkflow::IntegrationDone(const Actor& actor, int64_t id,
                                                     const std::string& note) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kTechnicalReview, ApplicationTarget(a)));
  return Step(actor, std::move(a), ApplicationOp::kIntegrated, "integrated", note);
}

Result<Application> SharingWorkflow::CoordinatorDecision(const Actor& actor, int64_t id,
                                                         const Decision& d) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kCoordinatorDecision, ApplicationTarget(a)));
  if (!d.approve) {
    if (d.reason.empty()) return InvalidArgument("a refusal states its reason");
    DX_RETURN_IF_ERROR(NextApplicationState(ApplicationOp::kCoordinatorRefuse, a.state).status());
    a.refused_by = actor.who.user;
    a.refused_step = "coordinator";
    return Step(actor, std::move(a), ApplicationOp::kCoordinatorRefuse, "coordinator_refused",
                d.reason);
  }
  DX_RETURN_IF_ERROR(NextApplicationState(ApplicationOp::kCoordinatorApprove, a.state).status());
  ApprovedScope scope = a.approved;
  DX_RETURN_IF_ERROR(Narrow(a, d, &scope));
  a.approved = scope;
  return Step(actor, std::move(a), ApplicationOp::kCoordinatorApprove, "coordinator_approved",
              d.reason);
}

Result<Application> SharingWorkflow::RequestArbitration(const Actor& actor, int64_t id,
                                                        const std::string& reason) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kArbitrationRequest, ApplicationTarget(a)));
  if (reason.empty()) return InvalidArgument("a request for arbitration states its grounds");
  a.arbitration_reason = reason;
  return Step(actor, std::move(a), ApplicationOp::kRequestArbitration, "arbitration_requested",
              reason);
}

Result<Application> SharingWorkflow::Arbitrate(const Actor& actor, int64_t id, const Decision& d) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kArbitrationDecision, ApplicationTarget(a)));
  if (d.reason.empty()) return InvalidArgument("an arbitration decision states its reason");
  if (!d.approve) {
    return Step(actor, std::move(a), ApplicationOp::kArbitrationFail, "arbitration_failed",
                d.reason);
  }
  DX_RETURN_IF_ERROR(NextApplicationState(ApplicationOp::kArbitrationPass, a.state).status());
  // A provider's refusal overturned: the scope is what was asked for, narrowed here.
  ApprovedScope scope =
      a.refused_step == "provider" ? ApprovedScope{a.columns, a.filter, {}} : a.approved;
  DX_RETURN_IF_ERROR(Narrow(a, d, &scope));
  a.approved = scope;
  return Step(actor, std::move(a), ApplicationOp::kArbitrationPass, "arbitration_passed", d.reason);
}

Result<Application> SharingWorkflow::Withdraw(const Actor& actor, int64_t id,
                                              const std::string& reason) {
  DX_ASSIGN_OR_RETURN(Application a, Load(id));
  // Only the applicant's organisation withdraws what it applied for.
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kApplicationCreate, ApplicationTarget(a)));
  return Step(actor, std::move(a), ApplicationOp::kWithdraw, "withdrawn", reason);
}

Status SharingWorkflow::AdmitSubscription(const Actor& actor, Subscription* sub,
                                          const std::optional<Subscription>& stored,
                                          const CatalogEntry& entry, const AgentRecord& agent,
                                          bool direct) {
  Target t;
  t.kind = "subscription";
  t.name = sub->name;
  t.provider_org = entry.provider;
  t.consumer_org = agent.organisation;
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kSubscriptionCreate, t));
  if (stored) {
    Target before = t;
    before.consumer_org = stored->organisation;
    if (!stored->organisation.empty()) {
      DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kSubscriptionCreate, before));
    }
    if (stored->status == "terminated") {
      return FailedPrecondition("subscription '" + sub->name + "' was terminated by " +
                                stored->halted_by + ": " + stored->halt_reason +
                                "; a new grant needs a new subscription name");
    }
    // A workflow suspension is lifted by resuming, never by re-applying a definition.
    if (!stored->halted_by.empty()) sub->status = stored->status;
  }
  if (sub->status == "terminated") {
    return InvalidArgument(
        "a subscription is terminated with dxctl terminate, not by its definition");
  }
  if (agent.organisation.empty() && actor.who.role != Role::kAdmin) {
    return PermissionDenied("agent '" + agent.name + "' belongs to no organisation");
  }
  sub->organisation = agent.organisation;
  sub->masking.clear();
  sub->direct = false;
  if (entry.share_type == "not_shared") {
    return PermissionDenied("catalog entry '" + entry.name +
                            "' is not shared (negative list): it cannot be subscribed");
  }
  if (sub->application_id == 0) {
    if (entry.share_type == "unconditional") return Status::Ok();  // 第二十四条
    if (direct && actor.who.bootstrap) {
      sub->direct = true;
      return Status::Ok();
    }
    return PermissionDenied("catalog entry '" + entry.name +
                            "' is authorised (第二十五条): the subscription needs an approved "
                            "application (application: ID)");
  }
  DX_ASSIGN_OR_RETURN(auto app, store_.GetApplication(sub->application_id));
  const std::string which = "application " + std::to_string(sub->application_id);
  if (!app) return NotFound("no " + which);
  if (app->state != "approved") {
    return PermissionDenied(which + " is " + app->state + ", not approved");
  }
  if (app->entry != entry.name) {
    return PermissionDenied(which + " is for '" + app->entry + "', not '" + entry.name + "'");
  }
  if (app->organisation != agent.organisation) {
    return PermissionDenied(which + " was granted to '" + app->organisation + "', and agent '" +
                            agent.name + "' belongs to '" + agent.organisation + "'");
  }
  Status scope = CheckWithinScope(*sub, app->approved);
  if (!scope.ok()) {
    return PermissionDenied("subscription '" + sub->name + "' is wider than " + which + ": " +
                            scope.message());
  }
  sub->masking = MaskingForColumns(app->approved.masking, sub->columns);
  // The entry may have changed since the approval (a new key, a retyped column): masking that
  // can no longer apply is refused now rather than at the first run.
  Status masking = ValidateMasking(sub->masking, entry);
  if (!masking.ok()) {
    return FailedPrecondition("subscription '" + sub->name + "': the masking of " + which +
                              " cannot apply to '" + entry.name +
                              "' as published: " + masking.message());
  }
  return Status::Ok();
}

Result<Subscription> SharingWorkflow::Halt(const Actor& actor, const std::string& name,
                                           const std::string& status, const std::string& reason) {
  DX_ASSIGN_OR_RETURN(auto sub, store_.GetSubscription(name));
  if (!sub) return NotFound("no subscription named '" + name + "'");
  DX_ASSIGN_OR_RETURN(Target t, SubscriptionTarget(*sub));
  const Action action = status == "suspended"    ? Action::kSubscriptionSuspend
                        : status == "terminated" ? Action::kSubscriptionTerminate
                                                 : Action::kSubscriptionResume;
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, action, t));
  if (reason.empty()) return InvalidArgument("state the reason (it is recorded and shown)");
  const std::string& from = sub->status;
  const bool allowed = (status == "suspended" && from == "active") ||
                       (status == "terminated" && (from == "active" || from == "suspended")) ||
                       (status == "active" && from == "suspended");
  if (!allowed) {
    return FailedPrecondition("subscription '" + name + "' is " + from + ": it cannot be " +
                              (status == "active" ? "resumed" : status));
  }
  const int64_t now = ToUnixSeconds(clock_.Now());
  Status written = store_.InTransaction([&]() -> Status {
    DX_RETURN_IF_ERROR(store_.SetSubscriptionStatus(name, status, actor.who, reason, now));
    // A suspension or termination: the dispatcher tells the agent to delete the rows and files
    // it holds for the subscription (DeletionRun) until the agent confirms. Resumed: the data
    // was deleted (or is about to be), so it reloads from scratch at once, whatever its
    // schedule; the earlier confirmation no longer describes it.
    if (status == "active") {
      DX_RETURN_IF_ERROR(store_.SetSchedule(name, now, 0));
      DX_RETURN_IF_ERROR(store_.RecordDeletionConfirmation(name, 0, ""));
      DX_RETURN_IF_ERROR(store_.RequestResync(name, /*manual=*/false));
    }
    return Status::Ok();
  });
  DX_RETURN_IF_ERROR(written);
  DX_ASSIGN_OR_RETURN(auto updated, store_.GetSubscription(name));
  return std::move(*updated);
}

Result<Subscription> SharingWorkflow::Suspend(const Actor& actor, const std::string& name,
                                              const std::string& reason) {
  return Halt(actor, name, "suspended", reason);
}

Result<Subscription> SharingWorkflow::Terminate(const Actor& actor, const std::string& name,
                                                const std::string& reason) {
  return Halt(actor, name, "terminated", reason);
}

Result<Subscription> SharingWorkflow::Resume(const Actor& actor, const std::string& name,
                                             const std::string& reason) {
  return Halt(actor, name, "active", reason);
}

}  // namespace dx::scheduler
