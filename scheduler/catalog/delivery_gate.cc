#include "scheduler/catalog/delivery_gate.h"

#include <nlohmann/json.hpp>

#include "scheduler/catalog/approval_scope.h"

namespace dx::scheduler {
namespace {

Status Halted(const Subscription& sub) {
  std::string who = sub.halted_by.empty() ? ""
                                          : " by " + sub.halted_by + " (" + sub.halted_role + ", " +
                                                sub.halted_org + ")";
  std::string why = sub.halt_reason.empty() ? "" : ": " + sub.halt_reason;
  return Unavailable("delivery halted: subscription '" + sub.name + "' was " + sub.status + who +
                     why);
}

}  // namespace

Status CheckStillActive(Store& store, const std::string& subscription) {
  DX_ASSIGN_OR_RETURN(auto sub, store.GetSubscription(subscription));
  if (!sub) return FailedPrecondition("subscription '" + subscription + "' no longer exists");
  if (sub->status != "active") return Halted(*sub);
  return Status::Ok();
}

Status CheckDeliveryAllowed(Store& store, const Subscription& given, const CatalogEntry& entry) {
  // Its state now, not the one the run started from; its scope as the run will deliver it.
  DX_ASSIGN_OR_RETURN(auto latest, store.GetSubscription(given.name));
  if (!latest) return FailedPrecondition("subscription '" + given.name + "' no longer exists");
  if (latest->status != "active") return Halted(*latest);
  const Subscription& sub = given;
  if (entry.share_type == "not_shared") {
    return FailedPrecondition("catalog entry '" + entry.name +
                              "' is not shared (negative list): nothing may be delivered");
  }
  if (!sub.organisation.empty()) {
    DX_ASSIGN_OR_RETURN(auto agent, store.GetAgent(sub.agent));
    if (!agent || agent->organisation != sub.organisation) {
      return PermissionDenied("agent '" + sub.agent + "' no longer belongs to '" +
                              sub.organisation + "', the subscriber");
    }
  }
  if (sub.application_id == 0) {
    if (entry.share_type == "authorised" && !sub.direct) {
      return PermissionDenied("catalog entry '" + entry.name +
                              "' is authorised (第二十五条) and subscription '" + sub.name +
                              "' has no approved application");
    }
    if (!sub.masking.empty() && !sub.direct) {
      return FailedPrecondition("subscription '" + sub.name +
                                "' carries masking without an approval");
    }
    return Status::Ok();
  }
  DX_ASSIGN_OR_RETURN(auto app, store.GetApplication(sub.application_id));
  const std::string which = "application " + std::to_string(sub.application_id);
  if (!app) return PermissionDenied(which + " of subscription '" + sub.name + "' does not exist");
  if (app->state != "approved") {
    return PermissionDenied(which + " of subscription '" + sub.name + "' is " + app->state +
                            ", not approved");
  }
  if (app->entry != sub.entry || app->organisation != sub.organisation) {
    return PermissionDenied(which + " approves '" + app->entry + "' for '" + app->organisation +
                            "', not '" + sub.entry + "' for '" + sub.organisation + "'");
  }
  Status scope = CheckWithinScope(sub, app->approved);
  if (!scope.ok()) return scope.Annotate("subscription '" + sub.name + "' against " + which);
  const std::vector<MaskingRule> want = MaskingForColumns(app->approved.masking, sub.columns);
  nlohmann::json a = nlohmann::json::array();
  nlohmann::json b = nlohmann::json::array();
  for (const MaskingRule& m : want) a.push_back(ToJson(m));
  for (const MaskingRule& m : MaskingForColumns(sub.masking, sub.columns)) b.push_back(ToJson(m));
  if (a != b) {
    return PermissionDenied("subscription '" + sub.name + "' does not carry the masking " + which +
                            " requires: " + a.dump());
  }
  return Status::Ok();
}

}  // namespace dx::scheduler
