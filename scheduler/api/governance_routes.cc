// The admin API's governance routes. Each parses its body, asks the workflow (which asks the
// Authorizer), and answers with the record; the router audits what changed and what was
// refused.
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "scheduler/api/governance.h"
#include "scheduler/catalog/approval_scope.h"
#include "scheduler/manifest.h"

namespace dx::scheduler {
namespace {

using nlohmann::json;

int64_t ParseId(const std::string& text, const char* what) {
  size_t used = 0;
  int64_t id = 0;
  try {
    id = std::stoll(text, &used);
  } catch (...) {
    used = 0;
  }
  if (used != text.size() || id <= 0) {
    throw std::invalid_argument(std::string(what) + " must be a positive number, got '" + text +
                                "'");
  }
  return id;
}

std::vector<std::string> Strings(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return {};
  return body[key].get<std::vector<std::string>>();
}

std::vector<RowCondition> Conditions(const json& body, const char* key) {
  std::vector<RowCondition> out;
  if (!body.contains(key) || body[key].is_null()) return out;
  for (const json& c : body.at(key)) {
    RowCondition cond;
    cond.column = c.at("column").get<std::string>();
    cond.op = c.value("op", "=");
    if (c.contains("values")) cond.values = c["values"].get<std::vector<std::string>>();
    if (c.contains("value")) cond.values.insert(cond.values.begin(), c["value"].get<std::string>());
    out.push_back(std::move(cond));
  }
  return out;
}

// Masking rules as objects ({column, method, keep_first, keep_last}) or "column=method" text.
Result<std::vector<MaskingRule>> Masking(const json& list) {
  std::vector<MaskingRule> out;
  for (const json& m : list) {
    if (m.is_string()) {
      DX_ASSIGN_OR_RETURN(MaskingRule rule, ParseMaskingRule(m.get<std::string>()));
      out.push_back(rule);
      continue;
    }
    MaskingRule rule;
    if (!FromJson(m, &rule)) return InvalidArgument("a masking rule is {column, method, ...}");
    out.push_back(rule);
  }
  return out;
}

Result<Decision> ParseDecision(const json& body, const char* verdict) {
  Decision d;
  d.approve = body.at(verdict).get<bool>();
  d.reason = body.value("reason", "");
  if (body.contains("columns") && !body["columns"].is_null()) d.columns = Strings(body, "columns");
  d.extra_filter = Conditions(body, "filter");
  if (body.contains("masking") && !body["masking"].is_null()) {
    DX_ASSIGN_OR_RETURN(d.masking, Masking(body["masking"]));
  }
  return d;
}

template <typename T>
json ToJsonList(const std::vector<T>& items) {
  json out = json::array();
  for (const T& item : items) out.push_back(ToJson(item));
  return out;
}

// The answer for a workflow result: the record as JSON, audited as `target` with `note`.
template <typename T>
ApiResponse Answer(const Result<T>& r, const std::string& target, const std::string& note,
                   int status = 200) {
  if (!r.ok()) {
    ApiResponse e = ErrorResponse(r.status());
    e.audit_target = target;
    return e;
  }
  ApiResponse a = JsonResponse(status, ToJson(r.value()));
  a.audit_target = target;
  a.audit_note = note;
  return a;
}

json UsageJson(const UsageRow& u) {
  return {{"entry", u.entry},       {"provider", u.provider},
          {"consumer", u.consumer}, {"subscriptions", u.subscriptions},
          {"rows", u.rows},         {"files", u.files},
          {"bytes", u.bytes},       {"last_delivery_ms", u.last_delivery_ms}};
}

}  // namespace

void AddGovernanceRoutes(Router& router, Governance& g, Store& store) {
  const std::string v1 = "/api/v1";

  // --- who am I, organisations, users, tokens ---
  router.Add({"GET", v1 + "/whoami", "", [&g](const Call& c) {
                const Principal& p = c.actor.who;
                return JsonResponse(
                    200, {{"user", p.user},
                          {"role", RoleName(p.role)},
                          {"organisation", p.organisation},
                          {"bootstrap", p.bootstrap},
                          {"bootstrap_direct", p.bootstrap && g.options.bootstrap_direct},
                          {"token_id", p.token_id}});
              }});
  router.Add({"GET", v1 + "/organisations", "", [&g](const Call& c) {
                auto orgs = g.users.Organisations(c.actor);
                return orgs.ok() ? JsonResponse(200, ToJsonList(orgs.value()))
                                 : ErrorResponse(orgs.status());
              }});
  router.Add({"POST", v1 + "/organisations", "organisation.put", [&g](const Call& c) {
                json b = c.Body();
                Organisation o;
                o.name = b.value("name", "");
                o.description = b.value("description", "");
                o.file_roots = Strings(b, "file_roots");
                return Answer(g.users.PutOrganisation(c.actor, o), "organisation/" + o.name, "");
              }});
  router.Add({"GET", v1 + "/users", "", [&g](const Call& c) {
                auto users = g.users.Users(c.actor);
                return users.ok() ? JsonResponse(200, ToJsonList(users.value()))
                                  : ErrorResponse(users.status());
              }});
  router.Add({"POST", v1 + "/users", "user.add", [&g](const Call& c) {
                json b = c.Body();
                User u;
                u.name = b.value("name", "");
                u.display_name = b.value("display_name", "");
                u.organisation = b.value("organisation", "");
                const std::string role = b.value("role", "");
                if (!ParseRole(role, &u.role)) {
                  return ErrorResponse(
                      400,
                      "role '" + role + "': expected provider, consumer, coordinator or admin");
                }
                return Answer(g.users.AddUser(c.actor, u), "user/" + u.name,
                              std::string(RoleName(u.role)) + " of " + u.organisation, 201);
              }});
  for (bool disable : {true, false}) {
    router.Add({"POST", v1 + "/users/{name}/" + (disable ? "disable" : "enable"),
                disable ? "user.disable" : "user.enable", [&g, disable](const Call& c) {
                  return Answer(g.users.SetDisabled(c.actor, c.Param("name"), disable),
                                "user/" + c.Param("name"), "");
                }});
  }
  router.Add({"GET", v1 + "/tokens", "", [&g](const Call& c) {
                const std::string user =
                    c.Query("all") == "1" ? "" : c.Query("user", c.actor.who.user);
                auto tokens = g.users.Tokens(c.actor, user);
                return tokens.ok() ? JsonResponse(200, ToJsonList(tokens.value()))
                                   : ErrorResponse(tokens.status());
              }});
  router.Add({"POST", v1 + "/tokens", "token.issue", [&g](const Call& c) {
                json b = c.Body();
                const std::string user = b.value("user", c.actor.who.user);
                int64_t lifetime = kDefaultTokenLifetimeS;
                if (b.contains("expires_in_s")) lifetime = b["expires_in_s"].get<int64_t>();
                if (b.contains("expires_in_days"))
                  lifetime = b["expires_in_days"].get<int64_t>() * 86400;
                ApiTokenRecord record;
                auto token =
                    g.users.IssueToken(c.actor, user, b.value("label", ""), lifetime, &record);
                if (!token.ok()) {
                  ApiResponse e = ErrorResponse(token.status());
                  e.audit_target = "user/" + user;
                  return e;
                }
                // The token's only copy: shown once, never logged or stored.
                ApiResponse r = JsonResponse(201, {{"id", record.id},
                                                   {"user", record.user},
                                                   {"label", record.label},
                                                   {"expires_at", record.expires_at},
                                                   {"token", token->text}});
                r.audit_target = "token/" + record.id;
                r.audit_note = "for " + user + ", expires " + FormatLocalTime(record.expires_at);
                return r;
              }});
  router.Add({"POST", v1 + "/tokens/{id}/revoke", "token.revoke", [&g](const Call& c) {
                return Answer(g.users.RevokeToken(c.actor, c.Param("id")), "token/" + c.Param("id"),
                              "");
              }});

  // --- the catalog lifecycle ---
  router.Add(
      {"GET", v1 + "/catalog/{name}", "", [&g, &store](const Call& c) {
         const std::string& name = c.Param("name");
         auto published = store.GetCatalogEntry(name);
         if (!published.ok()) return ErrorResponse(published.status());
         auto versions = g.catalog.Versions(c.actor, name);
         if (!versions.ok()) return ErrorResponse(versions.status());
         if (!published.value() && versions->empty()) {
           return ErrorResponse(404, "no catalog entry named '" + name + "' that you may see");
         }
         return JsonResponse(
             200, {{"name", name},
                   {"published", published.value() ? ToJson(*published.value()) : json(nullptr)},
                   {"versions", ToJsonList(versions.value())}});
       }});
  router.Add({"POST", v1 + "/catalog/{name}/submit", "catalog.submit", [&g](const Call& c) {
                return Answer(g.catalog.Submit(c.actor, c.Param("name")),
                              "catalog/" + c.Param("name"), "submitted");
              }});
  router.Add({"POST", v1 + "/catalog/{name}/review", "catalog.review", [&g](const Call& c) {
                json b = c.Body();
                const bool pass = b.at("pass").get<bool>();
                return Answer(
                    g.catalog.Review(c.actor, c.Param("name"), pass, Strings(b, "reasons")),
                    "catalog/" + c.Param("name"), pass ? "passed" : "returned");
              }});
  router.Add({"POST", v1 + "/catalog/{name}/publish", "catalog.publish", [&g](const Call& c) {
                return Answer(g.catalog.Publish(c.actor, c.Param("name")),
                              "catalog/" + c.Param("name"), "published");
              }});
  router.Add({"POST", v1 + "/catalog/{name}/return", "catalog.return", [&g](const Call& c) {
                return Answer(g.catalog.ReturnToProvider(c.actor, c.Param("name"),
                                                         Strings(c.Body(), "reasons")),
                              "catalog/" + c.Param("name"), "returned");
              }});

  // --- applications (附件四) ---
  router.Add({"GET", v1 + "/agreement", "", [](const Call&) {
                return JsonResponse(
                    200,
                    {{"agreement", kAgreementText},
                     {"obligations",
                      {"use the data only for the stated purpose and duties (第六条(二))",
                       "keep it confidential; give it to no third party without the provider's "
                       "written consent; only masked data for third-party analysis (第七条)",
                       "no commercial use (第六条(四))",
                       "report use of the data to the provider regularly (第三条(七))",
                       "delete the data and its copies when the provider suspends or "
                       "terminates sharing (第九条(三))"}}});
              }});
  router.Add({"GET", v1 + "/applications", "", [&g, &store](const Call& c) {
                auto all = store.ListApplications();
                if (!all.ok()) return ErrorResponse(all.status());
                json out = json::array();
                const std::string state = c.Query("state");
                for (const Application& a : all.value()) {
                  if (!state.empty() && a.state != state) continue;
                  if (g.authz.Allows(c.actor.who, Action::kApplicationRead,
                                     SharingWorkflow::ApplicationTarget(a))) {
                    out.push_back(ToJson(a));
                  }
                }
                return JsonResponse(200, out);
              }});
  router.Add({"POST", v1 + "/applications", "application.create", [&g](const Call& c) {
                json b = c.Body();
                ApplicationRequest r;
                r.entry = b.value("entry", "");
                r.purpose = b.value("purpose", "");
                r.scenario = b.value("scenario", "");
                r.columns = Strings(b, "columns");
                r.filter = Conditions(b, "filter");
                r.accept_agreement = b.value("accept_agreement", false);
                auto a = g.sharing.Apply(c.actor, r);
                return Answer(
                    a, a.ok() ? "application/" + std::to_string(a->id) : "catalog/" + r.entry,
                    "for " + r.entry + "; accepted " +
                        (r.accept_agreement ? kAgreementText : "nothing"),
                    201);
              }});
  router.Add({"GET", v1 + "/applications/{id}", "", [&g](const Call& c) {
                return Answer(g.sharing.Get(c.actor, ParseId(c.Param("id"), "application id")), "",
                              "");
              }});
  auto decision_route =
      [&](const std::string& verb, const char* verdict,
          std::function<Result<Application>(const Actor&, int64_t, const Decision&)> fn) {
        router.Add({"POST", v1 + "/applications/{id}/" + verb, "application." + verb,
                    [fn, verdict](const Call& c) {
                      const int64_t id = ParseId(c.Param("id"), "application id");
                      auto d = ParseDecision(c.Body(), verdict);
                      if (!d.ok()) return ErrorResponse(d.status());
                      auto a = fn(c.actor, id, d.value());
                      return Answer(
                          a, "application/" + std::to_string(id),
                          a.ok() ? "now " + a->state + (d->reason.empty() ? "" : ": " + d->reason)
                                 : "");
                    }});
      };
  decision_route("provider-decision", "approve",
                 [&g](const Actor& a, int64_t id, const Decision& d) {
                   return g.sharing.ProviderDecision(a, id, d);
                 });
  decision_route("coordinator-decision", "approve",
                 [&g](const Actor& a, int64_t id, const Decision& d) {
                   return g.sharing.CoordinatorDecision(a, id, d);
                 });
  decision_route("arbitration-decision", "pass",
                 [&g](const Actor& a, int64_t id, const Decision& d) {
                   return g.sharing.Arbitrate(a, id, d);
                 });
  router.Add({"POST", v1 + "/applications/{id}/technical-review", "application.technical-review",
              [&g](const Call& c) {
                const int64_t id = ParseId(c.Param("id"), "application id");
                json b = c.Body();
                const std::string result = b.value("result", "");
                auto a = g.sharing.TechnicalReview(c.actor, id, result, b.value("note", ""));
                return Answer(a, "application/" + std::to_string(id), "data " + result);
              }});
  router.Add({"POST", v1 + "/applications/{id}/integration-done", "application.integration-done",
              [&g](const Call& c) {
                const int64_t id = ParseId(c.Param("id"), "application id");
                return Answer(g.sharing.IntegrationDone(c.actor, id, c.Body().value("note", "")),
                              "application/" + std::to_string(id), "integrated");
              }});
  router.Add({"POST", v1 + "/applications/{id}/arbitration", "application.arbitration",
              [&g](const Call& c) {
                const int64_t id = ParseId(c.Param("id"), "application id");
                return Answer(
                    g.sharing.RequestArbitration(c.actor, id, c.Body().value("reason", "")),
                    "application/" + std::to_string(id), "arbitration requested");
              }});
  router.Add(
      {"POST", v1 + "/applications/{id}/withdraw", "application.withdraw", [&g](const Call& c) {
         const int64_t id = ParseId(c.Param("id"), "application id");
         return Answer(g.sharing.Withdraw(c.actor, id, c.Body().value("reason", "")),
                       "application/" + std::to_string(id), "withdrawn");
       }});

  // --- subscription states (附件一 第二条(四), 第九条(三)) ---
  for (const char* verb : {"suspend", "terminate", "resume"}) {
    router.Add({"POST", v1 + "/subscriptions/{name}/" + verb, std::string("subscription.") + verb,
                [&g, verb](const Call& c) {
                  const std::string& name = c.Param("name");
                  const std::string reason = c.Body().value("reason", "");
                  const std::string v = verb;
                  auto sub = v == "suspend"     ? g.sharing.Suspend(c.actor, name, reason)
                             : v == "terminate" ? g.sharing.Terminate(c.actor, name, reason)
                                                : g.sharing.Resume(c.actor, name, reason);
                  return Answer(sub, "subscription/" + name, reason);
                }});
  }

  // --- demands (第二十六条, 附件五) ---
  router.Add(
      {"GET", v1 + "/demands", "", [&g, &store](const Call& c) {
         auto all = store.ListDemands();
         if (!all.ok()) return ErrorResponse(all.status());
         json out = json::array();
         for (const Demand& d : all.value()) {
           if (g.authz.Allows(c.actor.who, Action::kDemandRead, DemandWorkflow::DemandTarget(d))) {
             out.push_back(ToJson(d));
           }
         }
         return JsonResponse(200, out);
       }});
  router.Add({"POST", v1 + "/demands", "demand.file", [&g](const Call& c) {
                json b = c.Body();
                Demand d;
                d.title = b.value("title", "");
                d.description = b.value("description", "");
                d.purpose = b.value("purpose", "");
                d.method = b.value("method", "table");
                d.frequency = b.value("frequency", "");
                d.time_range = b.value("time_range", "");
                d.scope = b.value("scope", "");
                d.contact = b.value("contact", "");
                for (const json& item : b.value("items", json::array())) {
                  d.items.push_back({item.value("item", ""), item.value("meaning", ""),
                                     item.value("format", ""), item.value("example", "")});
                }
                auto filed = g.demands.File(c.actor, d);
                return Answer(filed, filed.ok() ? "demand/" + std::to_string(filed->id) : "demand",
                              d.title, 201);
              }});
  router.Add({"GET", v1 + "/demands/{id}", "", [&g](const Call& c) {
                return Answer(g.demands.Get(c.actor, ParseId(c.Param("id"), "demand id")), "", "");
              }});
  router.Add({"POST", v1 + "/demands/{id}/steps", "demand.step", [&g](const Call& c) {
                const int64_t id = ParseId(c.Param("id"), "demand id");
                json b = c.Body();
                DemandStepInput in;
                in.step = b.value("step", "");
                in.note = b.value("note", "");
                in.provider = b.value("provider", "");
                in.scope = b.value("scope", "");
                in.method = b.value("method", "");
                in.entry = b.value("entry", "");
                in.application_id = b.value("application", int64_t{0});
                in.subscription = b.value("subscription", "");
                auto d = g.demands.Advance(c.actor, id, in);
                return Answer(d, "demand/" + std::to_string(id),
                              in.step + (d.ok() ? ": now " + d->state : ""));
              }});

  // --- feedback, usage, lists, notices ---
  router.Add({"GET", v1 + "/feedback", "", [&g](const Call& c) {
                auto all = g.oversight.Feedbacks(c.actor);
                if (!all.ok()) return ErrorResponse(all.status());
                json out = json::array();
                const std::string state = c.Query("state");
                for (const Feedback& f : all.value()) {
                  if (state.empty() || f.state == state) out.push_back(ToJson(f));
                }
                return JsonResponse(200, out);
              }});
  router.Add(
      {"POST", v1 + "/feedback", "feedback.report", [&g](const Call& c) {
         json b = c.Body();
         auto f = g.oversight.Report(c.actor, b.value("entry", ""), b.value("subscription", ""),
                                     b.value("description", ""));
         return Answer(
             f, f.ok() ? "feedback/" + std::to_string(f->id) : "catalog/" + b.value("entry", ""),
             "on " + b.value("entry", ""), 201);
       }});
  router.Add({"POST", v1 + "/feedback/{id}/resolve", "feedback.resolve", [&g](const Call& c) {
                const int64_t id = ParseId(c.Param("id"), "error report id");
                json b = c.Body();
                return Answer(
                    g.oversight.Resolve(c.actor, id, b.value("state", ""), b.value("note", "")),
                    "feedback/" + std::to_string(id), b.value("state", ""));
              }});
  router.Add({"GET", v1 + "/usage", "", [&g](const Call& c) {
                auto rows = g.oversight.Usage(c.actor);
                if (!rows.ok()) return ErrorResponse(rows.status());
                json out = json::array();
                for (const UsageRow& u : rows.value()) out.push_back(UsageJson(u));
                return JsonResponse(200, out);
              }});
  router.Add({"GET", v1 + "/lists", "", [&g](const Call& c) {
                auto lists = g.oversight.Lists(c.actor, c.Query("organisation"));
                return lists.ok() ? JsonResponse(200, lists.value())
                                  : ErrorResponse(lists.status());
              }});
  router.Add({"GET", v1 + "/notices", "", [&g](const Call& c) {
                auto notices = g.oversight.Notices(c.actor);
                return notices.ok() ? JsonResponse(200, ToJsonList(notices.value()))
                                    : ErrorResponse(notices.status());
              }});

  // --- the audit log ---
  router.Add({"GET", v1 + "/audit", "", [&g, &store](const Call& c) {
                Status allowed = g.authz.Check(c.actor.who, Action::kAuditRead);
                if (!allowed.ok()) return ErrorResponse(allowed);
                AuditFilter f;
                f.actor = c.Query("actor");
                f.action = c.Query("action");
                f.target = c.Query("target");
                f.organisation = c.Query("organisation");
                f.since_ms = std::stoll(c.Query("since", "0"));
                f.until_ms = std::stoll(c.Query("until", "0"));
                f.limit = std::stoi(c.Query("limit", "100"));
                if (f.limit < 1 || f.limit > 100000)
                  return ErrorResponse(400, "limit must be between 1 and 100000");
                auto records = store.ListAudit(f);
                if (!records.ok()) return ErrorResponse(records.status());
                json out = json::array();
                for (const AuditRecord& r : records.value()) {
                  const AuditEvent& e = r.event;
                  out.push_back({{"id", r.id},
                                 {"at_ms", e.at_ms},
                                 {"actor", e.actor},
                                 {"role", e.role},
                                 {"organisation", e.organisation},
                                 {"action", e.action},
                                 {"target", e.target},
                                 {"result", e.result},
                                 {"from", e.from}});
                }
                return JsonResponse(200, out);
              }});
}

}  // namespace dx::scheduler
