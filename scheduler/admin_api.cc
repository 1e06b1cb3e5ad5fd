#include "scheduler/admin_api.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "scheduler/manifest.h"

namespace dx::scheduler {
namespace {

using nlohmann::json;

// Bytes that are not UTF-8 (a file name from a share in another encoding) are replaced
// rather than failing the whole reply.
ApiResponse Json(int status, const json& body) {
  return {status, body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json"};
}
ApiResponse Error(int status, const std::string& message) {
  return Json(status, json{{"error", message}});
}

int HttpStatusFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

}  // namespace

bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    out->push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
    i += 2;
  }
  return true;
}

AdminApi::AdminApi(Store& store, AgentHub& hub, Dispatcher& dispatcher, const Clock& clock,
                   std::string operator_token)
    : store_(store),
      hub_(hub),
      dispatcher_(dispatcher),
      clock_(clock),
      token_(std::move(operator_token)) {}

void AdminApi::AuditCall(const ApiRequest& request, const std::string& action,
                         const std::string& target, const std::string& result) {
  (void)store_.Audit(
      {ToUnixMillis(clock_.Now()), "operator", action, target, result, request.peer});
}

ApiResponse AdminApi::Handle(const ApiRequest& request) {
  if (request.path == "/healthz") return Json(200, json{{"ok", true}});
  const std::string want = "Bearer " + token_;
  if (request.authorization.size() != want.size() ||
      CRYPTO_memcmp(request.authorization.data(), want.data(), want.size()) != 0) {
    AuditCall(request, "api.auth", request.path, "refused: bad or missing token");
    return Error(401, "missing or wrong operator token (Authorization: Bearer TOKEN)");
  }
  const std::string prefix = "/api/v1/";
  if (request.path.rfind(prefix, 0) != 0) return Error(404, "no such endpoint: " + request.path);
  std::string rest = request.path.substr(prefix.size());
  if (request.method == "GET") {
    if (rest == "agents") return Agents();
    if (rest == "subscriptions") return Subscriptions();
    if (rest == "runs") return Runs(request);
    if (rest == "catalog") return Catalog();
    const std::string runs = "runs/";
    if (rest.rfind(runs, 0) == 0 && rest.size() > runs.size() + 8 &&
        rest.compare(rest.size() - 8, 8, "/receipt") == 0) {
      return Receipt(rest.substr(runs.size(), rest.size() - runs.size() - 8));
    }
    if (rest == "audit/verify") {
      Status st = store_.VerifyAudit();
      return st.ok() ? Json(200, json{{"ok", true}}) : Error(500, st.message());
    }
  } else if (request.method == "POST") {
    if (rest == "apply") return Apply(request);
    const std::string subs = "subscriptions/";
    if (rest.rfind(subs, 0) == 0) {
      std::string tail = rest.substr(subs.size());
      size_t slash = tail.rfind('/');
      if (slash != std::string::npos) {
        std::string name = tail.substr(0, slash);
        std::string verb = tail.substr(slash + 1);
        if (verb == "run") return Trigger(request, name, false);
        if (verb == "resync") return Trigger(request, name, true);
      }
    }
  } else {
    return Error(405, "method " + request.method + " not allowed");
  }
  return Error(404, "no such endpoint: " + request.method + " " + request.path);
}

ApiResponse AdminApi::Agents() {
  auto agents = store_.ListAgents();
  if (!agents.ok()) return Error(500, agents.status().message());
  json out = json::array();
  for (const AgentRecord& a : agents.value()) {
    json j = ToJson(a);
    auto session = hub_.Find(a.name);
    if (session) j["last_seen"] = std::max(a.last_seen, session->last_heard());
    j["online"] = session != nullptr;
    out.push_back(j);
  }
  return Json(200, out);
}

ApiResponse AdminApi::Subscriptions() {
  auto subs = store_.ListSubscriptions();
  if (!subs.ok()) return Error(500, subs.status().message());
  const int64_t now = ToUnixSeconds(clock_.Now());
  json out = json::array();
  for (const Subscription& s : subs.value()) {
    json j = ToJson(s);
    j["next_due"] = s.next_due;
    j["failures"] = s.failures;
    j["acked_seq"] = s.acked_seq;
    j["watermark"] = s.watermark;
    j["running"] = dispatcher_.IsRunning(s.name);
    j["resync_pending"] = s.resync_pending;
    j["last_ok_at"] = s.last_ok_at;
    j["lag_s"] = s.last_ok_at > 0 ? json(now - s.last_ok_at) : json(nullptr);
    auto last = store_.LastRun(s.name);
    j["last_run"] = last.ok() && last.value() ? ToJson(*last.value()) : json(nullptr);
    out.push_back(j);
  }
  return Json(200, out);
}

ApiResponse AdminApi::Runs(const ApiRequest& request) {
  std::string sub;
  int limit = 20;
  if (auto it = request.query.find("subscription"); it != request.query.end()) sub = it->second;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    try {
      limit = std::stoi(it->second);
    } catch (...) {
      return Error(400, "limit must be a number");
    }
    if (limit < 1 || limit > 10000) return Error(400, "limit must be between 1 and 10000");
  }
  auto runs = store_.ListRuns(sub, limit);
  if (!runs.ok()) return Error(500, runs.status().message());
  json out = json::array();
  for (const RunRecord& r : runs.value()) out.push_back(ToJson(r));
  return Json(200, out);
}

ApiResponse AdminApi::Receipt(const std::string& run_id) {
  int64_t id = 0;
  try {
    id = std::stoll(run_id);
  } catch (...) {
    return Error(400, "run id must be a number, got '" + run_id + "'");
  }
  auto receipts = store_.ListReceipts(id);
  if (!receipts.ok()) return Error(500, receipts.status().message());
  json out = json::array();
  for (const FileReceipt& r : receipts.value()) {
    out.push_back({{"path", r.path},
                   {"size", r.size},
                   {"sha256", r.sha256},
                   {"outcome", r.outcome},
                   {"error", r.error},
                   {"bytes_sent", r.bytes_sent}});
  }
  return Json(200, out);
}

ApiResponse AdminApi::Catalog() {
  auto entries = store_.ListCatalogEntries();
  if (!entries.ok()) return Error(500, entries.status().message());
  json out = json::array();
  for (const CatalogEntry& e : entries.value()) out.push_back(ToJson(e));
  return Json(200, out);
}

ApiResponse AdminApi::Apply(const ApiRequest& request) {
  std::string name = "manifest";
  if (auto it = request.query.find("file"); it != request.query.end()) name = it->second;
  auto outcomes = ApplyManifest(store_, request.body, name);
  if (!outcomes.ok()) {
    AuditCall(request, "apply", name, "refused: " + outcomes.status().message());
    return Error(HttpStatusFor(outcomes.status()), outcomes.status().message());
  }
  json out = json::array();
  for (const ApplyOutcome& o : outcomes.value()) {
    out.push_back({{"kind", o.kind}, {"name", o.name}, {"action", o.action}});
    if (o.action != "unchanged")
      AuditCall(request, "apply." + o.action, o.kind + "/" + o.name, "ok");
  }
  return Json(200, out);
}

ApiResponse AdminApi::Trigger(const ApiRequest& request, const std::string& name, bool resync) {
  auto allow = request.query.find("allow_mass_delete");
  const bool mass_delete =
      allow != request.query.end() && allow->second != "0" && allow->second != "false";
  // Allowed before the request, so the run it starts sees it.
  if (mass_delete) dispatcher_.AllowMassDelete(name, true);
  auto last = dispatcher_.Trigger(name, resync);
  if (!last.ok() && mass_delete) dispatcher_.AllowMassDelete(name, false);
  const char* action = mass_delete
                           ? (resync ? "resync --allow-mass-delete" : "run --allow-mass-delete")
                       : resync ? "resync"
                                : "run";
  if (!last.ok()) {
    AuditCall(request, action, name, "refused: " + last.status().message());
    return Error(HttpStatusFor(last.status()), last.status().message());
  }
  AuditCall(request, action, name, "ok");
  return Json(202, json{{"subscription", name}, {"queued", true}, {"after_run_id", last.value()}});
}

}  // namespace dx::scheduler
