// The admin API in process (no socket): authentication with the operator token and with
// users' API tokens (expiry on a fake clock, revocation, disabled users), tokens never in a
// URL, routing (404, 405), what each organisation sees, and the audit of refusals.
#include "scheduler/admin_api.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::TempDir;

const std::string kOperator = "unit-operator-token-0123456789";

struct Api {
  TempDir dir;
  FakeClock clock;
  std::unique_ptr<SqliteStore> store = SqliteStore::Open(dir.File("s.db")).value();
  SchedulerConfig config;
  AgentHub hub{*store, clock, 5};
  Dispatcher dispatcher{*store, hub, config, clock};
  AdminApi api{*store, hub, dispatcher, clock, kOperator};

  ApiResponse Call(const std::string& method, const std::string& path, const std::string& token,
                   const json& body = nullptr, std::map<std::string, std::string> query = {}) {
    ApiRequest r;
    r.method = method;
    r.path = path;
    r.query = std::move(query);
    r.authorization = token.empty() ? "" : "Bearer " + token;
    r.body = body.is_null() ? "" : body.dump();
    r.peer = "127.0.0.1:9";
    return api.Handle(r);
  }
  json Ok(const std::string& method, const std::string& path, const std::string& token,
          const json& body = nullptr) {
    ApiResponse r = Call(method, path, token, body);
    CAPTURE(path);
    CAPTURE(r.body);
    REQUIRE(r.status < 300);
    return json::parse(r.body);
  }
  // A user with a token; returns the token.
  std::string User(const std::string& name, const std::string& org, const std::string& role,
                   int64_t lifetime_s = 3600) {
    Ok("POST", "/api/v1/organisations", kOperator, {{"name", org}});
    Ok("POST", "/api/v1/users", kOperator, {{"name", name}, {"organisation", org}, {"role", role}});
    return Ok("POST", "/api/v1/tokens", kOperator,
              {{"user", name}, {"expires_in_s", lifetime_s}})["token"];
  }
};

TEST_CASE("tokens: issued once, stored hashed, expired, revoked, refused for disabled users") {
  Api a;
  CHECK(a.Call("GET", "/api/v1/whoami", "").status == 401);
  CHECK(a.Call("GET", "/api/v1/whoami", "wrong-token-0123456789").status == 401);
  CHECK(a.Ok("GET", "/api/v1/whoami", kOperator)["user"] == "operator");
  const std::string cons = a.User("cons", "徐汇区教育局", "consumer", 60);
  json me = a.Ok("GET", "/api/v1/whoami", cons);
  CHECK(me["user"] == "cons");
  CHECK(me["role"] == "consumer");
  CHECK(me["organisation"] == "徐汇区教育局");
  // Only the hash is kept: the token's text appears nowhere in the store or the listing.
  auto tokens = a.store->ListApiTokens("cons").value();
  REQUIRE(tokens.size() == 1);
  CHECK(cons.find(tokens[0].id) != std::string::npos);
  CHECK(a.store->GetApiToken(tokens[0].id).value()->secret_hash.size() == 64);
  CHECK(cons.find(a.store->GetApiToken(tokens[0].id).value()->secret_hash) == std::string::npos);
  CHECK(a.Call("GET", "/api/v1/tokens", cons).body.find(cons.substr(21)) == std::string::npos);
  // A forged secret for a real id is refused.
  std::string forged = cons;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  CHECK(a.Call("GET", "/api/v1/whoami", forged).status == 401);

  a.clock.Advance(std::chrono::seconds(61));
  ApiResponse expired = a.Call("GET", "/api/v1/whoami", cons);
  CHECK(expired.status == 401);
  CHECK(expired.body.find("expired at") != std::string::npos);

  const std::string second = a.Ok("POST", "/api/v1/tokens", kOperator, {{"user", "cons"}})["token"];
  CHECK(a.Call("GET", "/api/v1/whoami", second).status == 200);
  const std::string id = second.substr(4, 16);
  a.Ok("POST", "/api/v1/tokens/" + id + "/revoke", second);
  ApiResponse revoked = a.Call("GET", "/api/v1/whoami", second);
  CHECK(revoked.status == 401);
  CHECK(revoked.body.find("revoked by cons") != std::string::npos);

  const std::string third = a.Ok("POST", "/api/v1/tokens", kOperator, {{"user", "cons"}})["token"];
  a.Ok("POST", "/api/v1/users/cons/disable", kOperator);
  CHECK(a.Call("GET", "/api/v1/whoami", third).body.find("disabled") != std::string::npos);
  CHECK(a.Call("POST", "/api/v1/tokens", kOperator, {{"user", "cons"}, {"expires_in_days", 400}})
            .status == 409);
  a.Ok("POST", "/api/v1/users/cons/enable", kOperator);
  CHECK(a.Call("POST", "/api/v1/tokens", kOperator, {{"user", "cons"}, {"expires_in_days", 400}})
            .status == 400);
  CHECK(a.Call("POST", "/api/v1/tokens", kOperator, {{"user", "operator"}}).status == 404);
}

TEST_CASE("a token in a URL is refused; unknown paths and methods are told apart") {
  Api a;
  ApiResponse r = a.Call("GET", "/api/v1/agents", kOperator, nullptr, {{"token", kOperator}});
  CHECK(r.status == 400);
  CHECK(r.body.find("never in a URL") != std::string::npos);
  CHECK(a.Call("GET", "/api/v1/nothing", kOperator).status == 404);
  CHECK(a.Call("DELETE", "/api/v1/agents", kOperator).status == 405);
  CHECK(a.Call("GET", "/api/v1/applications/abc", kOperator).status == 400);
  CHECK(a.Call("POST", "/api/v1/organisations", kOperator, json::array()).status == 400);
  auto audit = a.store->ListAudit({"", "api.auth"}).value();
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].event.result == "refused: a token in the URL");
}

TEST_CASE("each organisation sees its own agents and subscriptions; refusals are audited") {
  Api a;
  const std::string x = a.User("cx", "徐汇区教育局", "consumer");
  const std::string p = a.User("cp", "浦东新区教育局", "consumer");
  const std::string k = a.User("k", "市教委信息中心", "coordinator");
  AgentRecord agent;
  agent.name = "xuhui";
  agent.secret_hash = "h";
  agent.organisation = "徐汇区教育局";
  REQUIRE(a.store->PutAgent(agent).ok());
  Subscription sub;
  sub.name = "s1";
  sub.agent = "xuhui";
  sub.entry = "e";
  sub.organisation = "徐汇区教育局";
  REQUIRE(a.store->PutSubscriptionDefinition(sub).ok());
  CHECK(a.Ok("GET", "/api/v1/agents", x).size() == 1);
  CHECK(a.Ok("GET", "/api/v1/agents", p).empty());
  CHECK(a.Ok("GET", "/api/v1/subscriptions", x).size() == 1);
  CHECK(a.Ok("GET", "/api/v1/subscriptions", p).empty());
  CHECK(a.Ok("GET", "/api/v1/subscriptions", k).size() == 1);
  ApiResponse other = a.Call("GET", "/api/v1/subscriptions/s1", p);
  CHECK(other.status == 403);
  CHECK(a.Call("POST", "/api/v1/subscriptions/s1/run", p).status == 403);
  auto refused = a.store->ListAudit({"cp"}).value();
  REQUIRE(refused.size() == 2);
  CHECK(refused[0].event.action == "read");
  CHECK(refused[0].event.role == "consumer");
  CHECK(refused[0].event.organisation == "浦东新区教育局");
  CHECK(refused[0].event.from == "127.0.0.1:9");
  CHECK(refused[1].event.action == "run");
  CHECK(refused[1].event.result.rfind("refused: user 'cp' (consumer, 浦东新区教育局) may not run",
                                      0) == 0);
}

TEST_CASE("names with any character route by path segment") {
  Api a;
  Subscription sub;
  sub.name = "徐汇/学生 a?b";
  sub.agent = "x";
  sub.entry = "e";
  REQUIRE(a.store->PutSubscriptionDefinition(sub).ok());
  ApiRequest r;
  r.method = "GET";
  r.raw_path = "/api/v1/subscriptions/%E5%BE%90%E6%B1%87%2F%E5%AD%A6%E7%94%9F%20a%3Fb";
  r.path = "/api/v1/subscriptions/徐汇/学生 a?b";
  r.authorization = "Bearer " + kOperator;
  ApiResponse got = a.api.Handle(r);
  CHECK(got.status == 200);
  CHECK(json::parse(got.body)["name"] == "徐汇/学生 a?b");
}

}  // namespace
}  // namespace dx::scheduler

namespace dx::scheduler {
namespace {

TEST_CASE("list endpoints answer in pages: ?limit=&after=") {
  Api a;
  for (const char* name : {"ag-a", "ag-b", "ag-c", "ag-d", "ag-e"}) {
    AgentRecord agent;
    agent.name = name;
    REQUIRE(a.store->PutAgent(agent).ok());
    Subscription s;
    s.name = std::string("sub-") + name;
    s.agent = name;
    s.entry = "e";
    s.target_table = "t";
    REQUIRE(a.store->PutSubscriptionDefinition(s).ok());
    RunRecord run;
    run.subscription = s.name;
    run.trigger = "manual";
    run.status = "succeeded";
    REQUIRE(a.store->StartRun(run).ok());
    REQUIRE(a.store->StartRun(run).ok());
  }
  auto names = [](const json& page) {
    std::vector<std::string> out;
    for (const json& j : page) out.push_back(j["name"]);
    return out;
  };
  auto get = [&](const std::string& path, std::map<std::string, std::string> query) {
    ApiResponse r = a.Call("GET", path, kOperator, nullptr, std::move(query));
    CAPTURE(r.body);
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  };
  CHECK(names(get("/api/v1/agents", {{"limit", "2"}})) == std::vector<std::string>{"ag-a", "ag-b"});
  CHECK(names(get("/api/v1/agents", {{"limit", "2"}, {"after", "ag-b"}})) ==
        std::vector<std::string>{"ag-c", "ag-d"});
  CHECK(names(get("/api/v1/agents", {{"limit", "2"}, {"after", "ag-d"}})) ==
        std::vector<std::string>{"ag-e"});
  CHECK(get("/api/v1/agents", {}).size() == 5);
  json subs = get("/api/v1/subscriptions", {{"limit", "3"}, {"after", "sub-ag-a"}});
  CHECK(names(subs) == std::vector<std::string>{"sub-ag-b", "sub-ag-c", "sub-ag-d"});
  // Each with its latest run (read for the whole page at once).
  REQUIRE(subs[0]["last_run"].is_object());
  CHECK(subs[0]["last_run"]["subscription"] == "sub-ag-b");
  CHECK(subs[0]["last_run"]["id"] == 4);
  // Runs: newest first, the next page below the last id seen.
  json runs = get("/api/v1/runs", {{"limit", "4"}});
  REQUIRE(runs.size() == 4);
  CHECK(runs[0]["id"] == 10);
  json next = get("/api/v1/runs", {{"limit", "4"}, {"after", "7"}});
  REQUIRE(next.size() == 4);
  CHECK(next[0]["id"] == 6);
  CHECK(next[3]["id"] == 3);
  // Bad paging gets a clear error.
  CHECK(a.Call("GET", "/api/v1/agents", kOperator, nullptr, {{"limit", "0"}}).status == 400);
  CHECK(a.Call("GET", "/api/v1/subscriptions", kOperator, nullptr, {{"limit", "x"}})
            .body.find("limit must be a number") != std::string::npos);
  CHECK(a.Call("GET", "/api/v1/runs", kOperator, nullptr, {{"after", "-3"}}).status == 400);
}

}  // namespace
}  // namespace dx::scheduler

namespace dx::scheduler {
namespace {

// Removing a subscription (DELETE /api/v1/subscriptions/{name}): admin only; refused (409,
// nothing changed) until it is terminated and its agent confirmed the deletion, unless it never
// ran; its state rows go, its run history stays for those who read every run.
TEST_CASE("a subscription is removed once terminated and its deletion confirmed") {
  Api a;
  const std::string cons = a.User("cons", "徐汇区教育局", "consumer");
  const std::string k = a.User("k", "市教委信息中心", "coordinator");
  AgentRecord agent;
  agent.name = "xuhui";
  agent.secret_hash = "h";
  agent.organisation = "徐汇区教育局";
  REQUIRE(a.store->PutAgent(agent).ok());
  for (const char* name : {"ran", "never"}) {
    Subscription sub;
    sub.name = name;
    sub.agent = "xuhui";
    sub.entry = "e";
    sub.target_table = std::string("t_") + name;
    sub.organisation = "徐汇区教育局";
    REQUIRE(a.store->PutSubscriptionDefinition(sub).ok());
  }
  RunRecord run;
  run.subscription = "ran";
  run.trigger = "manual";
  run.status = "succeeded";
  const int64_t run_id = a.store->StartRun(run).value();
  REQUIRE(a.store->AddReceipt(run_id, {"a.txt", 1, "00", "sent", "", 1}).ok());
  ReconcileState rs;
  rs.subscription = "ran";
  rs.pending = 1;
  REQUIRE(a.store->PutReconcileState(rs).ok());
  DeliveredFile f;
  f.subscription = "ran";
  f.path = "a.txt";
  f.agent_path = "a.txt";
  REQUIRE(a.store->PutDeliveredFile("xuhui", f).ok());
  const std::string path = "/api/v1/subscriptions/ran";
  auto status_of = [&](const std::string& name) {
    auto s = a.store->GetSubscription(name).value();
    return s ? s->status : std::string("absent");
  };

  // Not an admin: refused before anything is read.
  CHECK(a.Call("DELETE", path, cons).status == 403);
  CHECK(a.Call("DELETE", "/api/v1/subscriptions/nobody", cons).status == 403);
  CHECK(a.Call("DELETE", "/api/v1/subscriptions/nobody", kOperator).status == 404);
  ApiResponse active = a.Call("DELETE", path, kOperator);
  CHECK(active.status == 409);
  CHECK(active.body.find("is active: it must be terminated first") != std::string::npos);
  CHECK(status_of("ran") == "active");
  // The agent must be removed after its subscriptions, and is told how.
  ApiResponse agent_first = a.Call("DELETE", "/api/v1/agents/xuhui", kOperator);
  CHECK(agent_first.status == 409);
  CHECK(agent_first.body.find("dxctl subscription remove NAME") != std::string::npos);

  Principal by;
  by.user = "cons";
  by.organisation = "徐汇区教育局";
  by.role = Role::kConsumer;
  REQUIRE(a.store->SetSubscriptionStatus("ran", "suspended", by, "check", 1).ok());
  CHECK(a.Call("DELETE", path, kOperator).body.find("is suspended") != std::string::npos);
  REQUIRE(a.store->SetSubscriptionStatus("ran", "terminated", by, "done", 2).ok());
  REQUIRE(a.store->SetSubscriptionStatus("never", "terminated", by, "done", 2).ok());
  ApiResponse unconfirmed = a.Call("DELETE", path, kOperator);
  CHECK(unconfirmed.status == 409);
  CHECK(unconfirmed.body.find("agent 'xuhui' has not confirmed yet") != std::string::npos);
  CHECK(unconfirmed.body.find("offline") != std::string::npos);
  CHECK(status_of("ran") == "terminated");
  CHECK(a.store->ListReconcileStates().value().size() == 1);
  CHECK(a.store->ListDeliveredFiles("ran").value().size() == 1);

  // One that never ran holds nothing at its agent.
  CHECK(a.Ok("DELETE", "/api/v1/subscriptions/never", kOperator)["removed"] == true);
  CHECK(status_of("never") == "absent");

  REQUIRE(a.store->RecordDeletionConfirmation("ran", 3000, "dropped table t_ran (1 rows)").ok());
  json removed = a.Ok("DELETE", path, kOperator);
  CHECK(removed["agent"] == "xuhui");
  CHECK(status_of("ran") == "absent");
  CHECK(a.store->ListReconcileStates().value().empty());
  CHECK(a.store->ListDeliveredFiles("ran").value().empty());
  CHECK(a.store->ListSubscriptions().value().empty());
  CHECK(a.Call("DELETE", path, kOperator).status == 404);
  CHECK(a.store->DeleteSubscription("ran").code() == StatusCode::kNotFound);

  // The run history stays: the admin and coordinators read it, the consumer no longer does.
  CHECK(a.store->ListRuns("ran", 10).value().size() == 1);
  auto runs_query = std::map<std::string, std::string>{{"subscription", "ran"}};
  CHECK(json::parse(a.Call("GET", "/api/v1/runs", kOperator, nullptr, runs_query).body).size() ==
        1);
  CHECK(json::parse(a.Call("GET", "/api/v1/runs", k, nullptr, runs_query).body).size() == 1);
  CHECK(json::parse(a.Call("GET", "/api/v1/runs", cons, nullptr, runs_query).body).empty());
  const std::string receipt = "/api/v1/runs/" + std::to_string(run_id) + "/receipt";
  CHECK(a.Ok("GET", receipt, kOperator).size() == 1);
  CHECK(a.Call("GET", receipt, cons).status == 404);

  // Now the agent goes.
  a.Ok("DELETE", "/api/v1/agents/xuhui", kOperator);
  CHECK_FALSE(a.store->GetAgent("xuhui").value());

  std::vector<std::string> audit;
  const std::vector<AuditRecord> records = a.store->ListAudit({"", "subscription.remove"}).value();
  for (const AuditRecord& r : records)
    audit.push_back(r.event.actor + " " + r.event.target + " " +
                    r.event.result.substr(0, r.event.result.find(':')));
  CHECK(audit == std::vector<std::string>{
                     "cons subscription/ran refused", "cons subscription/nobody refused",
                     "operator subscription/nobody refused", "operator subscription/ran refused",
                     "operator subscription/ran refused", "operator subscription/ran refused",
                     "operator subscription/never ok", "operator subscription/ran ok",
                     "operator subscription/ran refused"});
}

}  // namespace
}  // namespace dx::scheduler
