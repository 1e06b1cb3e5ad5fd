#include "scheduler/catalog/demand_workflow.h"

#include <vector>

namespace dx::scheduler {
namespace {

struct StepRow {
  const char* step;
  const char* from;
  const char* to;
  Action action;
};

// The six steps of 第二十六条 in order ("confirm" stays in "planned" until both confirmed).
const std::vector<StepRow>& Steps() {
  static const auto* rows = new std::vector<StepRow>{
      {"compare", "filed", "compared", Action::kDemandCompare},
      {"negotiate", "compared", "negotiated", Action::kDemandNegotiate},
      {"plan", "negotiated", "planned", Action::kDemandPlan},
      {"confirm", "planned", "confirmed", Action::kDemandConfirm},
      {"integrate", "confirmed", "integrated", Action::kDemandIntegrate},
      {"catalogue", "integrated", "catalogued", Action::kDemandCatalogue},
      {"apply", "catalogued", "applied", Action::kDemandApply},
  };
  return *rows;
}

bool Final(const std::string& state) { return state == "applied" || state == "closed"; }

}  // namespace

Result<DemandStepRule> DemandStep(const std::string& step, const std::string& state) {
  if (step == "close") {
    if (Final(state)) return FailedPrecondition("the demand is " + state + " already");
    return DemandStepRule{Action::kDemandClose, "closed"};
  }
  for (const StepRow& r : Steps()) {
    if (step != r.step) continue;
    if (state != r.from) {
      return FailedPrecondition("step '" + step + "' follows '" + r.from + "'; the demand is " +
                                state);
    }
    return DemandStepRule{r.action, r.to};
  }
  return InvalidArgument("unknown step '" + step +
                         "' (compare, negotiate, plan, confirm, integrate, catalogue, apply, "
                         "close)");
}

Target DemandWorkflow::DemandTarget(const Demand& d) {
  Target t;
  t.kind = "demand";
  t.name = std::to_string(d.id) + " (" + d.title + ")";
  t.consumer_org = d.organisation;
  t.provider_org = d.provider;
  return t;
}

Result<Demand> DemandWorkflow::File(const Actor& actor, Demand d) {
  Target t;
  t.kind = "organisation";
  t.name = actor.who.organisation;
  t.consumer_org = actor.who.organisation;
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kDemandCreate, t));
  if (d.title.empty() || d.description.empty() || d.purpose.empty()) {
    return InvalidArgument(
        "a demand (附件五) states the data wanted (title), a description and "
        "its purpose");
  }
  if (d.method != "table" && d.method != "file" && d.method != "interface") {
    return InvalidArgument("method '" + d.method +
                           "': expected table, file or interface (数据接入方式)");
  }
  if (d.items.empty()) return InvalidArgument("a demand lists the data items wanted (需求明细)");
  for (const DemandItem& item : d.items) {
    if (item.item.empty()) return InvalidArgument("every data item needs its name (数据项名称)");
  }
  const int64_t now = ToUnixSeconds(clock_.Now());
  d.id = 0;
  d.organisation = actor.who.organisation;
  d.requester = actor.who.user;
  d.state = "filed";
  d.created_at = now;
  d.updated_at = now;
  d.history = {
      {now, actor.who.user, RoleName(actor.who.role), actor.who.organisation, "filed", ""}};
  DX_ASSIGN_OR_RETURN(d.id, store_.AddDemand(d));
  return d;
}

Result<Demand> DemandWorkflow::Get(const Actor& actor, int64_t id) {
  DX_ASSIGN_OR_RETURN(auto d, store_.GetDemand(id));
  if (!d) return NotFound("no demand " + std::to_string(id));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kDemandRead, DemandTarget(*d)));
  return std::move(*d);
}

Result<Demand> DemandWorkflow::Advance(const Actor& actor, int64_t id, const DemandStepInput& in) {
  DX_ASSIGN_OR_RETURN(auto found, store_.GetDemand(id));
  if (!found) return NotFound("no demand " + std::to_string(id));
  Demand d = std::move(*found);
  DX_ASSIGN_OR_RETURN(DemandStepRule rule, DemandStep(in.step, d.state));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, rule.action, DemandTarget(d)));
  std::string to = rule.to;
  const std::string& step = in.step;
  if (step == "compare" || step == "plan" || step == "integrate" || step == "close") {
    if (in.note.empty()) return InvalidArgument("step '" + step + "' records a note");
  }
  if (step == "compare") {
    d.comparison = in.note;
  } else if (step == "negotiate") {
    if (in.provider.empty() || in.scope.empty() || in.method.empty()) {
      return InvalidArgument(
          "the negotiation (二) records the providing organisation, the "
          "agreed scope and the method");
    }
    DX_ASSIGN_OR_RETURN(auto org, store_.GetOrganisation(in.provider));
    if (!org) return NotFound("no organisation named '" + in.provider + "'");
    d.provider = in.provider;
    d.agreed_scope = in.scope;
    d.agreed_method = in.method;
  } else if (step == "plan") {
    d.plan = in.note;
  } else if (step == "confirm") {
    // Both sides confirm the plan (三); the demand moves on once both have.
    if (actor.who.organisation == d.provider && actor.who.role == Role::kProvider) {
      d.provider_confirmed = true;
    }
    if (actor.who.organisation == d.organisation && actor.who.role == Role::kConsumer) {
      d.consumer_confirmed = true;
    }
    if (!(d.provider_confirmed && d.consumer_confirmed)) to = d.state;
  } else if (step == "integrate") {
    d.integration = in.note;
  } else if (step == "catalogue") {
    DX_ASSIGN_OR_RETURN(auto version, store_.GetCatalogVersion(in.entry, 0));
    DX_ASSIGN_OR_RETURN(auto published, store_.GetCatalogEntry(in.entry));
    if (!version && !published) return NotFound("no catalog entry named '" + in.entry + "'");
    const std::string provider = version ? version->organisation : published->provider;
    if (provider != d.provider) {
      return FailedPrecondition("catalog entry '" + in.entry + "' is provided by '" + provider +
                                "', not by '" + d.provider + "' as agreed");
    }
    d.entry = in.entry;
  } else if (step == "apply") {
    DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(d.entry));
    if (!entry) {
      return FailedPrecondition("catalog entry '" + d.entry + "' is not published yet");
    }
    if (entry->share_type == "authorised") {
      DX_ASSIGN_OR_RETURN(auto app, store_.GetApplication(in.application_id));
      if (!app || app->entry != d.entry || app->organisation != d.organisation) {
        return InvalidArgument("'" + d.entry + "' is authorised: name the application " +
                               d.organisation + " made for it");
      }
      d.application_id = in.application_id;
    } else {
      DX_ASSIGN_OR_RETURN(auto sub, store_.GetSubscription(in.subscription));
      if (!sub || sub->entry != d.entry || sub->organisation != d.organisation) {
        return InvalidArgument("'" + d.entry +
                               "' is shared unconditionally: name the "
                               "subscription " +
                               d.organisation + " made of it");
      }
      d.subscription = in.subscription;
    }
  } else if (step == "close") {
    d.closed_reason = in.note;
  }
  d.state = to;
  d.updated_at = ToUnixSeconds(clock_.Now());
  d.history.push_back({d.updated_at, actor.who.user, RoleName(actor.who.role),
                       actor.who.organisation, step, in.note});
  DX_RETURN_IF_ERROR(store_.PutDemand(d));
  return d;
}

}  // namespace dx::scheduler
