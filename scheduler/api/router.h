// Router: the admin API's table of routes. Each route names its method, its path pattern
// ("/api/v1/catalog/{name}/submit"), what it is called in the audit log, and its handler; the
// table is what the OpenAPI document (docs/openapi.yaml) is checked against.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "scheduler/api/api_types.h"

namespace dx::scheduler {

struct Route {
  std::string method;
  std::string pattern;
  // The audit log's name for a call that changes something (e.g. "catalog.submit"); reads
  // leave "" and are audited only when refused.
  std::string audit_action;
  std::function<ApiResponse(const Call&)> handler;
};

class Router {
 public:
  void Add(Route route);
  const std::vector<Route>& routes() const { return routes_; }
  // The route serving `method` on `raw_path` (percent-encoded; each segment is decoded after
  // splitting) with its parameters; nullptr when none. `methods` receives the methods the path
  // is served with, when it is served at all.
  const Route* Match(const std::string& method, const std::string& raw_path,
                     std::map<std::string, std::string>* params,
                     std::vector<std::string>* methods) const;

 private:
  std::vector<Route> routes_;
};

// Decodes %XX escapes (UTF-8 names in paths); false when malformed.
bool PercentDecode(const std::string& in, std::string* out);

}  // namespace dx::scheduler
