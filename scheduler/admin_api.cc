#include "scheduler/admin_api.h"

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "common/log.h"
#include "scheduler/manifest.h"

namespace dx::scheduler {
namespace {

using nlohmann::json;

// The error text of a response made by ErrorResponse.
std::string ErrorText(const ApiResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"];
  return "status " + std::to_string(r.status);
}

}  // namespace

AdminApi::AdminApi(Store& store, AgentHub& hub, Dispatcher& dispatcher, const Clock& clock,
                   std::string operator_token, GovernanceOptions options)
    : store_(store),
      hub_(hub),
      dispatcher_(dispatcher),
      clock_(clock),
      governance_(store, clock, options),
      authenticator_(store, clock, std::move(operator_token), options.bootstrap_organisation) {
  AddRoutes();
}

void AdminApi::AuditCall(const ApiRequest& request, const Principal& who, const std::string& action,
                         const std::string& target, const std::string& result) {
  AuditEvent e{ToUnixMillis(clock_.Now()), who.user, action, target, result, request.peer};
  e.role = who.user.empty() ? "" : RoleName(who.role);
  e.organisation = who.organisation;
  (void)store_.Audit(e);
}

void AdminApi::AddRoutes() {
  const std::string v1 = "/api/v1";
  router_.Add({"GET", v1 + "/agents", "", [this](const Call& c) { return Agents(c); }});
  router_.Add(
      {"GET", v1 + "/subscriptions", "", [this](const Call& c) { return Subscriptions(c); }});
  router_.Add({"GET", v1 + "/subscriptions/{name}", "",
               [this](const Call& c) { return SubscriptionDetail(c); }});
  router_.Add({"POST", v1 + "/subscriptions", "",
               [this](const Call& c) { return Apply(c, "Subscription", false); }});
  router_.Add({"DELETE", v1 + "/subscriptions/{name}", "subscription.remove",
               [this](const Call& c) { return RemoveSubscription(c); }});
  router_.Add({"POST", v1 + "/subscriptions/{name}/run", "run",
               [this](const Call& c) { return Trigger(c, false); }});
  router_.Add({"POST", v1 + "/subscriptions/{name}/resync", "resync",
               [this](const Call& c) { return Trigger(c, true); }});
  router_.Add({"POST", v1 + "/subscriptions/{name}/reconcile", "reconcile",
               [this](const Call& c) { return Reconcile(c); }});
  router_.Add({"GET", v1 + "/runs", "", [this](const Call& c) { return Runs(c); }});
  router_.Add({"GET", v1 + "/runs/{id}/receipt", "", [this](const Call& c) { return Receipt(c); }});
  router_.Add({"GET", v1 + "/catalog", "", [this](const Call& c) { return Catalog(c); }});
  router_.Add({"POST", v1 + "/catalog", "", [this](const Call& c) {
                 return Apply(c, "CatalogEntry", c.Query("submit") != "1");
               }});
  router_.Add({"POST", v1 + "/apply", "",
               [this](const Call& c) { return Apply(c, "", c.Query("draft") == "1"); }});
  router_.Add(
      {"GET", v1 + "/audit/verify", "", [this](const Call& c) {
         Status allowed = governance_.authz.Check(c.actor.who, Action::kAuditVerify);
         if (!allowed.ok()) return ErrorResponse(allowed);
         Status st = store_.VerifyAudit();
         return st.ok() ? JsonResponse(200, json{{"ok", true}}) : ErrorResponse(500, st.message());
       }});
  router_.Add({"POST", v1 + "/agents/{name}/disable", "agent.disable",
               [this](const Call& c) { return ManageAgent(c, "disable"); }});
  router_.Add({"POST", v1 + "/agents/{name}/enable", "agent.enable",
               [this](const Call& c) { return ManageAgent(c, "enable"); }});
  router_.Add({"DELETE", v1 + "/agents/{name}", "agent.remove",
               [this](const Call& c) { return ManageAgent(c, "remove"); }});
  router_.Add({"GET", v1 + "/stats", "stats.read", [this](const Call& c) { return Stats(c); }});
  AddGovernanceRoutes(router_, governance_, store_);
}

ApiResponse AdminApi::Stats(const Call& call) {
  Status allowed = governance_.authz.Check(call.actor.who, Action::kStatsRead);
  if (!allowed.ok()) return ErrorResponse(allowed);
  const ExchangeCounters& c = dispatcher_.counters();
  return JsonResponse(200, json{{"polls", c.polls.load()},
                                {"source_reads", c.source_reads.load()},
                                {"announcements", c.announcements.load()},
                                {"group_runs", c.group_runs.load()},
                                {"running", dispatcher_.active_runs()}});
}

ApiResponse AdminApi::Handle(const ApiRequest& request) {
  if (request.path == "/healthz") return JsonResponse(200, json{{"ok", true}});
  Principal nobody;  // before authentication: the audit log records an empty actor
  nobody.user = "";
  for (const char* key : {"token", "access_token"}) {
    if (request.query.count(key)) {
      AuditCall(request, nobody, "api.auth", request.path, "refused: a token in the URL");
      return ErrorResponse(400, "tokens travel in the Authorization header, never in a URL");
    }
  }
  auto who = authenticator_.Authenticate(request.authorization);
  if (!who.ok()) {
    AuditCall(request, nobody, "api.auth", request.path, "refused: " + who.status().message());
    return ErrorResponse(401, who.status().message());
  }
  const std::string& raw = request.raw_path.empty() ? request.path : request.raw_path;
  if (raw.rfind("/api/v1/", 0) != 0) return ErrorResponse(404, "no such endpoint: " + request.path);
  std::map<std::string, std::string> params;
  std::vector<std::string> methods;
  const Route* route = router_.Match(request.method, raw, &params, &methods);
  if (route == nullptr) {
    if (!methods.empty()) {
      std::string allowed;
      for (const std::string& m : std::set<std::string>(methods.begin(), methods.end())) {
        allowed += (allowed.empty() ? "" : ", ") + m;
      }
      return ErrorResponse(405, "method " + request.method + " not allowed on " + request.path +
                                    " (" + allowed + ")");
    }
    return ErrorResponse(404, "no such endpoint: " + request.method + " " + request.path);
  }
  const Actor actor{who.value(), request.peer};
  Call call{request, actor, std::move(params)};
  ApiResponse r;
  try {
    r = route->handler(call);
  } catch (const std::exception& e) {
    r = ErrorResponse(400, std::string("bad request: ") + e.what());
  }
  // Every change and every refusal goes to the audit log (reads only when refused).
  const bool change = request.method != "GET";
  if (!r.audited && (change || r.status == 403)) {
    const std::string action = !r.audit_action.empty()        ? r.audit_action
                               : !route->audit_action.empty() ? route->audit_action
                               : change                       ? "api.call"
                                                              : "read";
    const std::string target = r.audit_target.empty() ? request.path.substr(8) : r.audit_target;
    std::string result;
    if (r.status < 300) {
      result = "ok" + (r.audit_note.empty() ? "" : ": " + r.audit_note);
    } else {
      result = (r.status >= 500 ? "failed: " : "refused: ") + ErrorText(r);
    }
    AuditCall(request, actor.who, action, target, result);
  }
  // A change (a manifest applied, a subscription resumed or granted) is looked at at once,
  // not on the dispatcher's next tick.
  if (change && r.status < 300) dispatcher_.Wake();
  return r;
}

Result<Subscription> AdminApi::SubscriptionFor(const Call& call, const std::string& name,
                                               Action action) {
  DX_ASSIGN_OR_RETURN(auto sub, store_.GetSubscription(name));
  if (!sub) return NotFound("no subscription named '" + name + "'");
  DX_ASSIGN_OR_RETURN(Target t, governance_.sharing.SubscriptionTarget(*sub));
  DX_RETURN_IF_ERROR(governance_.authz.Check(call.actor.who, action, t));
  return std::move(*sub);
}

namespace {

// A list page: `limit` (1..10000, default 1000) entries after `after` (a name; a run id for
// runs). Sets `*error` when the query is malformed.
bool PageOf(const Call& call, int* limit, std::string* after, ApiResponse* error) {
  *limit = 1000;
  if (std::string l = call.Query("limit"); !l.empty()) {
    try {
      size_t used = 0;
      *limit = std::stoi(l, &used);
      if (used != l.size()) throw std::invalid_argument(l);
    } catch (...) {
      *error = ErrorResponse(400, "limit must be a number, got '" + l + "'");
      return false;
    }
    if (*limit < 1 || *limit > 10000) {
      *error = ErrorResponse(400, "limit must be between 1 and 10000");
      return false;
    }
  }
  *after = call.Query("after");
  return true;
}

}  // namespace

ApiResponse AdminApi::Agents(const Call& call) {
  int limit = 0;
  std::string after;
  ApiResponse bad;
  if (!PageOf(call, &limit, &after, &bad)) return bad;
  auto agents = store_.ListAgentsPage(after, limit);
  if (!agents.ok()) return ErrorResponse(agents.status());
  json out = json::array();
  for (const AgentRecord& a : agents.value()) {
    Target t;
    t.kind = "agent";
    t.name = a.name;
    t.consumer_org = a.organisation;
    if (!governance_.authz.Allows(call.actor.who, Action::kAgentRead, t)) continue;
    json j = ToJson(a);
    auto session = hub_.Find(a.name);
    if (session) j["last_seen"] = std::max(a.last_seen, session->last_heard());
    j["online"] = session != nullptr;
    out.push_back(j);
  }
  return JsonResponse(200, out);
}

ApiResponse AdminApi::ManageAgent(const Call& call, const std::string& verb) {
  const std::string& name = call.Param("name");
  // Admin only: refused before anything is read, so a refusal tells nothing about the name.
  Status allowed = governance_.authz.Check(call.actor.who, Action::kAgentManage);
  if (!allowed.ok()) return ErrorResponse(allowed);
  auto agent = store_.GetAgent(name);
  if (!agent.ok()) return ErrorResponse(agent.status());
  if (!agent.value()) return ErrorResponse(404, "no agent named '" + name + "'");
  if (verb == "remove") {
    auto subs = store_.ListSubscriptionsOfAgent(name);
    if (!subs.ok()) return ErrorResponse(subs.status());
    if (!subs.value().empty()) {
      std::string names;
      for (const Subscription& s : subs.value()) names += (names.empty() ? "" : ", ") + s.name;
      return ErrorResponse(
          409, "agent '" + name + "' still has " + std::to_string(subs.value().size()) +
                   " subscription(s): " + names +
                   "; each must be terminated (dxctl terminate NAME --reason ...: its consumer, "
                   "provider or a coordinator) and, once the agent confirmed the deletion of its "
                   "data, removed (dxctl subscription remove NAME)");
    }
    Status st = store_.DeleteAgent(name);
    if (!st.ok()) return ErrorResponse(st);
    hub_.Disconnect(name, "the agent was removed");
    return JsonResponse(200, json{{"name", name}, {"removed", true}});
  }
  const bool disable = verb == "disable";
  Status st = store_.SetAgentDisabled(name, disable);
  if (!st.ok()) return ErrorResponse(st);
  if (disable) hub_.Disconnect(name, "the agent was disabled");
  return JsonResponse(200, json{{"name", name}, {"disabled", disable}});
}

ApiResponse AdminApi::RemoveSubscription(const Call& call) {
  const std::string& name = call.Param("name");
  auto answer = [&](ApiResponse r) {
    r.audit_target = "subscription/" + name;
    return r;
  };
  // Admin only: refused before anything is read, so a refusal tells nothing about the name.
  Status allowed = governance_.authz.Check(call.actor.who, Action::kSubscriptionRemove);
  if (!allowed.ok()) return answer(ErrorResponse(allowed));
  // A run under way (an exchange stopping at its next batch, a deletion at the agent) ends
  // first. Nothing starts one afterwards for a subscription that passes the checks below: the
  // dispatcher runs nothing for a terminated one, and tells its agent to delete only while the
  // deletion is unconfirmed (for one that never ran, the agent then deletes nothing).
  if (dispatcher_.IsRunning(name)) {
    return answer(ErrorResponse(
        409, "a run of subscription '" + name + "' is under way; try again when it has ended"));
  }
  // Whether its agent is online, for the message (the hub is not asked inside the store's
  // transaction).
  std::string agent;
  bool online = false;
  if (auto before = store_.GetSubscription(name); before.ok() && before.value()) {
    online = hub_.Find(before.value()->agent) != nullptr;
  }
  Status st = store_.InTransaction([&]() -> Status {
    DX_ASSIGN_OR_RETURN(auto sub, store_.GetSubscription(name));
    if (!sub) return NotFound("no subscription named '" + name + "'");
    agent = sub->agent;
    if (sub->status != "terminated") {
      return FailedPrecondition("subscription '" + name + "' is " + sub->status +
                                ": it must be terminated first (by its consumer, its provider or a "
                                "coordinator: dxctl terminate " +
                                name + " --reason ...), then removed once agent '" + sub->agent +
                                "' confirmed the deletion of its rows and files");
    }
    if (sub->deletion_confirmed_at == 0) {
      DX_ASSIGN_OR_RETURN(auto last, store_.LastRun(name));
      if (last) {
        return FailedPrecondition(
            "subscription '" + name + "' is terminated but agent '" + sub->agent +
            "' has not confirmed yet that it deleted the subscription's rows and files (" +
            (online ? "it is being told" : "the agent is offline; it is told when it connects") +
            "); remove it once dxctl describe " + name + " shows the deletion confirmed");
      }
    }
    return store_.DeleteSubscription(name);
  });
  if (!st.ok()) return answer(ErrorResponse(st));  // 409 for a refusal, nothing changed
  LOG_INFO("subscription " << name << " (agent " << agent << ") removed by "
                           << call.actor.who.user);
  return answer(JsonResponse(200, json{{"name", name}, {"agent", agent}, {"removed", true}}));
}

json AdminApi::SubscriptionState(const Subscription& s) {
  auto last = store_.LastRun(s.name);
  return SubscriptionState(s, last.ok() && last.value() ? &*last.value() : nullptr);
}

json AdminApi::SubscriptionState(const Subscription& s, const RunRecord* last_run) {
  const int64_t now = ToUnixSeconds(clock_.Now());
  json j = ToJson(s);
  j["next_due"] = s.next_due;
  j["failures"] = s.failures;
  j["acked_seq"] = s.acked_seq;
  j["watermark"] = s.watermark;
  j["running"] = dispatcher_.IsRunning(s.name);
  j["resync_pending"] = s.resync_pending;
  j["manual_pending"] = s.manual_pending;
  j["last_ok_at"] = s.last_ok_at;
  j["lag_s"] = s.last_ok_at > 0 ? json(now - s.last_ok_at) : json(nullptr);
  j["stopped"] = s.stopped();
  j["stopped_error"] = s.stopped_error;
  j["stopped_at"] = s.stopped_at;
  j["caught_up_ms"] = s.caught_up_ms;
  j["halted_by"] = s.halted_by;
  j["halted_org"] = s.halted_org;
  j["halted_role"] = s.halted_role;
  j["halt_reason"] = s.halt_reason;
  j["halted_at"] = s.halted_at;
  j["deletion_confirmed_at_ms"] = s.deletion_confirmed_at;
  j["deletion_detail"] = s.deletion_detail;
  j["last_run"] = last_run != nullptr ? ToJson(*last_run) : json(nullptr);
  return j;
}

ApiResponse AdminApi::Subscriptions(const Call& call) {
  int limit = 0;
  std::string after;
  ApiResponse bad;
  if (!PageOf(call, &limit, &after, &bad)) return bad;
  auto subs = store_.ListSubscriptionsPage(after, limit);
  if (!subs.ok()) return ErrorResponse(subs.status());
  auto targets = governance_.sharing.SubscriptionTargets(subs.value());
  if (!targets.ok()) return ErrorResponse(targets.status());
  std::vector<std::string> names;
  for (const Subscription& s : subs.value()) names.push_back(s.name);
  auto last_runs = store_.LastRuns(names);
  if (!last_runs.ok()) return ErrorResponse(last_runs.status());
  json out = json::array();
  for (size_t i = 0; i < subs->size(); ++i) {
    if (governance_.authz.Allows(call.actor.who, Action::kSubscriptionRead, targets->at(i))) {
      auto last = last_runs->find(subs->at(i).name);
      out.push_back(
          SubscriptionState(subs->at(i), last == last_runs->end() ? nullptr : &last->second));
    }
  }
  return JsonResponse(200, out);
}

ApiResponse AdminApi::SubscriptionDetail(const Call& call) {
  auto sub = SubscriptionFor(call, call.Param("name"), Action::kSubscriptionRead);
  if (!sub.ok()) return ErrorResponse(sub.status());
  json j = SubscriptionState(sub.value());
  j["now_ms"] = ToUnixMillis(clock_.Now());  // the scheduler's clock, for dxctl wait
  return JsonResponse(200, j);
}

ApiResponse AdminApi::Runs(const Call& call) {
  const std::string sub = call.Query("subscription");
  int limit = 20;
  if (std::string l = call.Query("limit"); !l.empty()) {
    try {
      limit = std::stoi(l);
    } catch (...) {
      return ErrorResponse(400, "limit must be a number");
    }
    if (limit < 1 || limit > 10000) return ErrorResponse(400, "limit must be between 1 and 10000");
  }
  // Paging: runs older than `after` (a run id), newest first.
  int64_t before = 0;
  if (std::string a = call.Query("after"); !a.empty()) {
    try {
      size_t used = 0;
      before = std::stoll(a, &used);
      if (used != a.size() || before < 1) throw std::invalid_argument(a);
    } catch (...) {
      return ErrorResponse(400, "after must be a run id, got '" + a + "'");
    }
  }
  // Runs of the subscriptions the caller may read.
  std::set<std::string> visible;
  bool all = governance_.authz.Allows(call.actor.who, Action::kRunRead, Target{});
  if (!sub.empty()) {
    auto s = SubscriptionFor(call, sub, Action::kRunRead);
    if (!s.ok() && s.status().code() != StatusCode::kNotFound) return ErrorResponse(s.status());
    // The history of a removed subscription (or of none) only for those who read every run.
    if (s.ok()) all = true;
  } else if (!all) {
    auto subs = store_.ListSubscriptions();
    if (!subs.ok()) return ErrorResponse(subs.status());
    auto targets = governance_.sharing.SubscriptionTargets(subs.value());
    if (!targets.ok()) return ErrorResponse(targets.status());
    for (size_t i = 0; i < subs->size(); ++i) {
      if (governance_.authz.Allows(call.actor.who, Action::kRunRead, targets->at(i))) {
        visible.insert(subs->at(i).name);
      }
    }
  }
  auto runs = store_.ListRunsBefore(sub, before, all ? limit : 10000);
  if (!runs.ok()) return ErrorResponse(runs.status());
  json out = json::array();
  for (const RunRecord& r : runs.value()) {
    if (!all && !visible.count(r.subscription)) continue;
    if (static_cast<int>(out.size()) >= limit) break;
    out.push_back(ToJson(r));
    if (r.trigger != "reconcile") continue;
    auto counts = store_.GetReconcileCounts(r.id);
    if (counts.ok() && counts.value()) out.back()["reconcile"] = ToJson(*counts.value());
  }
  return JsonResponse(200, out);
}

ApiResponse AdminApi::Receipt(const Call& call) {
  const std::string& run_id = call.Param("id");
  int64_t id = 0;
  try {
    id = std::stoll(run_id);
  } catch (...) {
    return ErrorResponse(400, "run id must be a number, got '" + run_id + "'");
  }
  auto run = store_.GetRun(id);
  if (!run.ok()) return ErrorResponse(run.status());
  if (run.value()) {
    auto sub = SubscriptionFor(call, run.value()->subscription, Action::kRunRead);
    if (!sub.ok() && sub.status().code() != StatusCode::kNotFound)
      return ErrorResponse(sub.status());
    // A run of a removed subscription: only for those who read every run.
    if (!sub.ok() && !governance_.authz.Allows(call.actor.who, Action::kRunRead, Target{}))
      return ErrorResponse(404, "no run " + run_id);
  } else if (!governance_.authz.Allows(call.actor.who, Action::kRunRead, Target{})) {
    return ErrorResponse(404, "no run " + run_id);
  }
  auto receipts = store_.ListReceipts(id);
  if (!receipts.ok()) return ErrorResponse(receipts.status());
  json out = json::array();
  for (const FileReceipt& r : receipts.value()) {
    out.push_back({{"path", r.path},
                   {"size", r.size},
                   {"sha256", r.sha256},
                   {"outcome", r.outcome},
                   {"error", r.error},
                   {"bytes_sent", r.bytes_sent}});
  }
  return JsonResponse(200, out);
}

ApiResponse AdminApi::Catalog(const Call& call) {
  auto entries = store_.ListCatalogEntries();
  if (!entries.ok()) return ErrorResponse(entries.status());
  json out = json::array();
  for (const CatalogEntry& e : entries.value()) out.push_back(ToJson(e));
  if (call.Query("all") == "1") {  // with the versions under way the caller may see
    auto versions = store_.ListCatalogVersions("");
    if (!versions.ok()) return ErrorResponse(versions.status());
    for (const CatalogVersion& v : versions.value()) {
      if (!v.open() ||
          !governance_.authz.Allows(call.actor.who, Action::kCatalogReadDraft,
                                    CatalogWorkflow::EntryTarget(v.name, v.organisation))) {
        continue;
      }
      json j = ToJson(v.entry);
      j["status"] = v.status;
      j["version"] = v.version;
      j["reasons"] = v.reasons;
      out.push_back(j);
    }
  }
  return JsonResponse(200, out);
}

ApiResponse AdminApi::Apply(const Call& call, const std::string& default_kind, bool draft) {
  const ApiRequest& request = call.request;
  std::string name = call.Query("file", "manifest");
  std::string text = request.body;
  std::string audit_target = name;
  if (!default_kind.empty()) {  // one document as JSON (the API's subscription or entry)
    json doc = call.Body();
    if (!doc.contains("kind")) doc["kind"] = default_kind;
    text = doc.dump(2);
    name = "request";
    audit_target = doc.value("kind", default_kind) + "/" + doc.value("name", "");
  }
  // Entries are checked against their sources (the scheduler holds the connection strings).
  OdbcSourceReader sources;
  auto policy = governance_.PolicyFor(call.actor, draft);
  auto outcomes = ApplyManifest(store_, text, name, &sources, policy.get());
  ApiResponse r;
  r.audited = true;
  if (!outcomes.ok()) {
    const bool failed = outcomes.status().code() == StatusCode::kInternal ||
                        outcomes.status().code() == StatusCode::kUnavailable;
    AuditCall(request, call.actor.who, "apply", audit_target,
              (failed ? "failed: " : "refused: ") + outcomes.status().message());
    r = ErrorResponse(outcomes.status());
    r.audited = true;
    return r;
  }
  json out = json::array();
  for (const ApplyOutcome& o : outcomes.value()) {
    out.push_back({{"kind", o.kind}, {"name", o.name}, {"action", o.action}, {"note", o.note}});
    const std::string result = "ok" + (o.note.empty() ? "" : ": " + o.note);
    if (o.action != "unchanged") {
      AuditCall(request, call.actor.who, "apply." + o.action, o.kind + "/" + o.name, result);
    }
    if (o.action != "resumed" && o.note.rfind("resumed", 0) == 0)
      AuditCall(request, call.actor.who, "apply.resumed", o.kind + "/" + o.name, "ok");
    // A changed secret ends the agent's session at once.
    if (o.kind == "Agent" && o.action == "updated") hub_.Revalidate(o.name);
  }
  r = JsonResponse(200, out);
  r.audited = true;
  return r;
}

ApiResponse AdminApi::Trigger(const Call& call, bool resync) {
  const std::string& name = call.Param("name");
  // `allow_mass_delete`: this one run of a file subscription may delete more than its
  // max_delete_percent of the delivered files (the operator checked the provider's share).
  const std::string flag = call.Query("allow_mass_delete");
  bool mass_delete = false;
  if (flag == "1" || flag == "true") {
    mass_delete = true;
  } else if (!flag.empty() && flag != "0" && flag != "false") {
    ApiResponse e =
        ErrorResponse(400, "allow_mass_delete must be true or false, got '" + flag + "'");
    e.audit_target = name;
    return e;
  }
  auto sub = SubscriptionFor(call, name, Action::kSubscriptionOperate);
  if (!sub.ok()) {
    ApiResponse e = ErrorResponse(sub.status());
    e.audit_target = name;
    return e;
  }
  // Allowed before the request, so the run it starts sees it.
  if (mass_delete) dispatcher_.AllowMassDelete(name, true);
  auto last = dispatcher_.Trigger(name, resync);
  if (!last.ok()) {
    if (mass_delete) dispatcher_.AllowMassDelete(name, false);
    ApiResponse e = ErrorResponse(last.status());
    e.audit_target = name;
    return e;
  }
  ApiResponse r = JsonResponse(
      202, json{{"subscription", name}, {"queued", true}, {"after_run_id", last.value()}});
  r.audit_target = name;
  // The confirmation is an action of its own in the audit log.
  if (mass_delete)
    r.audit_action = resync ? "resync --allow-mass-delete" : "run --allow-mass-delete";
  return r;
}

ApiResponse AdminApi::Reconcile(const Call& call) {
  const std::string& name = call.Param("name");
  const std::string flag = call.Query("dry_run");
  bool dry_run = false;
  if (flag == "1" || flag == "true") {
    dry_run = true;
  } else if (!flag.empty() && flag != "0" && flag != "false") {
    ApiResponse e = ErrorResponse(400, "dry_run must be true or false, got '" + flag + "'");
    e.audit_target = name;
    return e;
  }
  auto sub = SubscriptionFor(call, name, Action::kSubscriptionOperate);
  auto last =
      sub.ok() ? dispatcher_.TriggerReconcile(name, dry_run) : Result<int64_t>(sub.status());
  if (!last.ok()) {
    ApiResponse e = ErrorResponse(last.status());
    e.audit_target = name;
    return e;
  }
  ApiResponse r = JsonResponse(202, json{{"subscription", name},
                                         {"queued", true},
                                         {"dry_run", dry_run},
                                         {"after_run_id", last.value()}});
  r.audit_target = name;
  if (dry_run) r.audit_note = "dry run";
  return r;
}

}  // namespace dx::scheduler
