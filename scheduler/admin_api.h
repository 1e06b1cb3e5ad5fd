// AdminApi: the scheduler's admin API under /api/v1 as a pure function from request to
// response (JSON), so it is tested without a socket. AdminServer puts it on HTTP(S).
// Every call but /healthz is authenticated (the operator token of scheduler.yaml, or a user's
// API token: Authorization: Bearer TOKEN), routed through one table (api/router.h), and
// decided by one Authorizer; every change and every refusal goes to the audit log with who,
// role, organisation, what, when, from where and the outcome.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/clock.h"
#include "scheduler/access/user_directory.h"
#include "scheduler/agent_hub.h"
#include "scheduler/api/api_types.h"
#include "scheduler/api/governance.h"
#include "scheduler/api/router.h"
#include "scheduler/dispatcher.h"
#include "scheduler/store.h"

namespace dx::scheduler {

class AdminApi {
 public:
  AdminApi(Store& store, AgentHub& hub, Dispatcher& dispatcher, const Clock& clock,
           std::string operator_token, GovernanceOptions options = {});
  ApiResponse Handle(const ApiRequest& request);
  // Whether an Authorization header authenticates someone (the server reads no request body
  // for anyone else).
  bool Authenticates(const std::string& authorization) const {
    return authenticator_.Authenticate(authorization).ok();
  }
  // Every route served (the OpenAPI document is checked against it).
  const Router& router() const { return router_; }

 private:
  void AddRoutes();
  ApiResponse Agents(const Call& call);
  // Disables or enables an agent ("disable" | "enable") or removes it ("remove", refused while
  // subscriptions name it); disabling and removing end its session at once.
  // The scheduler's counters since it started (table polls, source reads, announcements).
  ApiResponse Stats(const Call& call);
  ApiResponse ManageAgent(const Call& call, const std::string& verb);
  // DELETE /api/v1/subscriptions/{name} (admin only): removes a terminated subscription whose
  // agent confirmed the deletion of its rows and files (or that never ran); refuses (409,
  // nothing changed) one that is active or suspended, whose deletion is not confirmed yet, or
  // that has a run under way.
  ApiResponse RemoveSubscription(const Call& call);
  ApiResponse Subscriptions(const Call& call);
  // One subscription with its state and the scheduler's clock (dxctl describe, dxctl wait).
  ApiResponse SubscriptionDetail(const Call& call);
  nlohmann::json SubscriptionState(const Subscription& s);
  // The same with its latest run already read (a list page reads them in one query).
  nlohmann::json SubscriptionState(const Subscription& s, const RunRecord* last_run);
  ApiResponse Runs(const Call& call);
  ApiResponse Catalog(const Call& call);
  ApiResponse Receipt(const Call& call);
  ApiResponse Apply(const Call& call, const std::string& default_kind, bool draft);
  ApiResponse Trigger(const Call& call, bool resync);
  // Queues a reconciliation (对账); ?dry_run=true only reports.
  ApiResponse Reconcile(const Call& call);
  // The subscription if `call`'s caller may do `action` to it; else the response refusing it.
  Result<Subscription> SubscriptionFor(const Call& call, const std::string& name, Action action);
  void AuditCall(const ApiRequest& request, const Principal& who, const std::string& action,
                 const std::string& target, const std::string& result);

  Store& store_;
  AgentHub& hub_;
  Dispatcher& dispatcher_;
  const Clock& clock_;
  Governance governance_;
  Authenticator authenticator_;
  Router router_;
};

}  // namespace dx::scheduler
