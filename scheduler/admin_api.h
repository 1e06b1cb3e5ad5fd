// AdminApi: the scheduler's admin API under /api/v1 as a pure function from request to
// response (JSON), so it is tested without a socket. AdminServer puts it on HTTP.
// Every call but /healthz needs the operator token (Authorization: Bearer TOKEN).
#pragma once

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/clock.h"
#include "scheduler/agent_hub.h"
#include "scheduler/dispatcher.h"
#include "scheduler/store.h"

namespace dx::scheduler {

struct ApiRequest {
  std::string method;  // GET, POST
  std::string path;    // percent-decoded, without the query
  std::map<std::string, std::string> query;
  std::string authorization;  // the Authorization header
  std::string body;
  std::string peer;  // client address, for the audit log
};

struct ApiResponse {
  int status = 200;
  std::string body;  // JSON
  std::string content_type = "application/json";
};

class AdminApi {
 public:
  AdminApi(Store& store, AgentHub& hub, Dispatcher& dispatcher, const Clock& clock,
           std::string operator_token);
  ApiResponse Handle(const ApiRequest& request);

 private:
  ApiResponse Agents();
  ApiResponse Subscriptions();
  // One subscription with its state and the scheduler's clock (dxctl describe, dxctl wait).
  ApiResponse SubscriptionDetail(const std::string& name);
  nlohmann::json SubscriptionState(const Subscription& s);
  ApiResponse Runs(const ApiRequest& request);
  ApiResponse Catalog();
  ApiResponse Receipt(const std::string& run_id);
  ApiResponse Apply(const ApiRequest& request);
  ApiResponse Trigger(const ApiRequest& request, const std::string& name, bool resync);
  ApiResponse Reconcile(const ApiRequest& request, const std::string& name);
  void AuditCall(const ApiRequest& request, const std::string& action, const std::string& target,
                 const std::string& result);

  Store& store_;
  AgentHub& hub_;
  Dispatcher& dispatcher_;
  const Clock& clock_;
  const std::string token_;
};

// Decodes %XX escapes (UTF-8 names in paths); false when malformed.
bool PercentDecode(const std::string& in, std::string* out);

}  // namespace dx::scheduler
