// The admin API's request and response as plain values (no sockets), the caller of a route,
// and the helpers every route uses to answer.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "scheduler/access/principal.h"

namespace dx::scheduler {

struct ApiRequest {
  std::string method;  // GET, POST
  std::string path;    // percent-decoded, without the query
  std::map<std::string, std::string> query;
  std::string authorization;  // the Authorization header
  std::string body;
  std::string peer;      // client address, for the audit log
  std::string raw_path;  // as sent (percent-encoded); routes split it before decoding, so a
                         // name may hold any character. Empty: `path` is used.
};

struct ApiResponse {
  int status = 200;
  std::string body;  // JSON
  std::string content_type = "application/json";
  // For the audit log: the object acted on (default: the request path) and what became of it.
  std::string audit_target = {};
  std::string audit_note = {};
  std::string audit_action = {};  // instead of the route's action (e.g. a confirmed variant)
  bool audited = false;           // the handler wrote its own audit records
};

// One call of a route: the request, who makes it, and the route's path parameters.
struct Call {
  const ApiRequest& request;
  const Actor& actor;
  std::map<std::string, std::string> params;

  const std::string& Param(const std::string& name) const { return params.at(name); }
  // The query parameter, or `fallback`.
  std::string Query(const std::string& name, const std::string& fallback = "") const {
    auto it = request.query.find(name);
    return it == request.query.end() ? fallback : it->second;
  }
  // The body as a JSON object (an empty body is {}); throws (nlohmann::json::exception,
  // std::invalid_argument) when it is not one — AdminApi answers 400.
  nlohmann::json Body() const;
};

int HttpStatusFor(const Status& st);
ApiResponse JsonResponse(int status, const nlohmann::json& body);
ApiResponse ErrorResponse(int status, const std::string& message);
// The error for a failed Status (403 for a refusal, 404, 409, ...).
ApiResponse ErrorResponse(const Status& st);

}  // namespace dx::scheduler
