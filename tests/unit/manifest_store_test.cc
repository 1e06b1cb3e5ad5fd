#include <doctest/doctest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "scheduler/manifest.h"
#include "scheduler/secret.h"
#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using testing::TempDir;

const char* kManifest = R"(kind: Source
name: src
connection: "Driver=SQLite3;Database=/tmp/none.db"
---
kind: CatalogEntry
name: 教委-学生基本信息
provider: 教委
summary: 学生
share_type: authorised
topic: student
source: src
source_table: student
updatetime_column: updatetime
fields:
  - {item: 编号, column: id, type: bigint, primary_key: true}
  - {item: 姓名, column: name, type: varchar(30)}
  - {item: 区, column: district_code, type: varchar(6)}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
---
kind: Agent
name: school
secret: school-secret-123
---
kind: Subscription
name: s1
agent: school
entry: 教委-学生基本信息
columns: [id, name]
filter: [{column: district_code, value: "310104"}]
target_table: student
schedule: daily 02:00
)";

TEST_CASE("manifests apply idempotently") {
  TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  auto first = ApplyManifest(**store, kManifest, "m.yaml");
  REQUIRE(first.ok());
  REQUIRE(first->size() == 4);
  for (const auto& o : first.value()) CHECK(o.action == "created");
  auto second = ApplyManifest(**store, kManifest, "m.yaml");
  REQUIRE(second.ok());
  for (const auto& o : second.value()) CHECK(o.action == "unchanged");

  auto agent = (*store)->GetAgent("school");
  REQUIRE(agent.ok());
  REQUIRE(agent.value().has_value());
  CHECK(agent.value()->secret_hash.find("school-secret-123") == std::string::npos);
  CHECK(VerifySecret("school-secret-123", agent.value()->secret_hash));
  CHECK(agent.value()->bandwidth_kbps == 0);

  // A bandwidth cap is part of the agent's definition and survives the store.
  std::string capped = kManifest;
  capped.replace(capped.find("secret: school-secret-123"), 25,
                 "secret: school-secret-123\nbandwidth_kbps: 800");
  auto with_cap = ApplyManifest(**store, capped, "m.yaml");
  REQUIRE(with_cap.ok());
  CHECK(with_cap->at(2).action == "updated");
  CHECK((*store)->GetAgent("school").value()->bandwidth_kbps == 800);
  CHECK((*store)->ListAgents().value().at(0).bandwidth_kbps == 800);
  CHECK_FALSE(VerifySecret("school-secret-124", agent.value()->secret_hash));

  // Narrowing the columns changes the subscription and asks for a reload from scratch.
  std::string narrowed = kManifest;
  narrowed.replace(narrowed.find("columns: [id, name]"), 19, "columns: [id]      ");
  auto third = ApplyManifest(**store, narrowed, "m.yaml");
  REQUIRE(third.ok());
  CHECK(third->back().action == "updated");
  auto sub = (*store)->GetSubscription("s1");
  REQUIRE(sub.ok());
  CHECK(sub.value()->resync_pending);
}

struct BadManifest {
  const char* from;
  const char* to;
  const char* expected;
};

TEST_CASE("a bad manifest names file, line and key and applies nothing") {
  const BadManifest cases[] = {
      {"name: 教委-学生基本信息\nprovider", "name: 学生基本信息\nprovider",
       "m.yaml:6: key 'name': '学生基本信息' must be named 机构名称-数据基本信息"},
      {"type: varchar(30)", "type: varchar(abc)", "key 'fields[1].type': bad length"},
      {"columns: [id, name]", "columns: [id, name, salary]", "column 'salary' is not a field"},
      {"columns: [id, name]", "columns: [name]", "columns must include the primary key 'id'"},
      {"agent: school", "agent: nobody", "key 'agent': no agent named 'nobody'"},
      {"schedule: daily 02:00", "schedule: daily 26:00", "key 'schedule': bad schedule"},
      {"share_type: authorised", "share_type: maybe", "key 'share_type': expected"},
      {"updatetime_column: updatetime", "updatetime_column: name", "must be a not-null datetime"},
      {"kind: Agent", "kind: Robot", "unknown kind 'Robot'"},
      {"target_table: student", "target_table: \"student; DROP\"", "not a valid table name"},
      {"column: id, type: bigint", "column: id, type: varbinary(16)",
       "a varbinary(16) column cannot be part of the primary key"},
  };
  for (const BadManifest& c : cases) {
    CAPTURE(c.to);
    TempDir dir;
    auto store = SqliteStore::Open(dir.File("s.db"));
    REQUIRE(store.ok());
    std::string text = kManifest;
    size_t at = text.find(c.from);
    REQUIRE(at != std::string::npos);
    text.replace(at, std::string(c.from).size(), c.to);
    auto applied = ApplyManifest(**store, text, "m.yaml");
    REQUIRE_FALSE(applied.ok());
    CHECK(applied.status().message().find(c.expected) != std::string::npos);
    CHECK(applied.status().message().rfind("m.yaml:", 0) == 0);
    CHECK((*store)->ListSources().value().empty());
    CHECK((*store)->ListAgents().value().empty());
    CHECK((*store)->ListSubscriptions().value().empty());
  }
}

TEST_CASE("the audit log is append-only and tamper-evident") {
  TempDir dir;
  {
    auto store = SqliteStore::Open(dir.File("s.db"));
    REQUIRE(store.ok());
    for (int i = 0; i < 3; ++i) {
      REQUIRE((*store)->Audit({1000 + i, "operator", "run", "s1", "ok", "127.0.0.1"}).ok());
    }
    CHECK((*store)->VerifyAudit().ok());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.File("s.db").c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "UPDATE audit SET result='x'", nullptr, nullptr, nullptr) != SQLITE_OK);
  // Someone with file access drops the guard and rewrites history: the chain tells.
  REQUIRE(sqlite3_exec(db,
                       "DROP TRIGGER audit_no_update; UPDATE audit SET actor='mallory' WHERE id=2",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  Status st = (*store)->VerifyAudit();
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("audit record 2") != std::string::npos);
}

TEST_CASE("runs left running by a killed scheduler are marked interrupted") {
  TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  RunRecord run;
  run.subscription = "s1";
  run.trigger = "manual";
  run.status = "running";
  run.started_at = 1;
  auto id = (*store)->StartRun(run);
  REQUIRE(id.ok());
  auto n = (*store)->MarkInterruptedRuns(2);
  REQUIRE(n.ok());
  CHECK(n.value() == 1);
  CHECK((*store)->LastRun("s1").value()->status == "interrupted");
}

}  // namespace
}  // namespace dx::scheduler

namespace dx::scheduler {
namespace {

using testing::TempDir;

AgentRecord Agent(const std::string& name, const std::string& secret) {
  AgentRecord a;
  a.name = name;
  a.secret_hash = HashSecret(secret);
  return a;
}

int ColumnCount(const std::string& path, const std::string& table, const std::string& column) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, ("PRAGMA table_info(" + table + ")").c_str(), -1, &q, nullptr) ==
          SQLITE_OK);
  int n = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    if (column == reinterpret_cast<const char*>(sqlite3_column_text(q, 1))) ++n;
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

TEST_CASE("an agent's disabled flag is added to an older store once, kept, and removable") {
  TempDir dir;
  const std::string path = dir.File("s.db");
  {
    auto store = SqliteStore::Open(path);
    REQUIRE(store.ok());
    REQUIRE((*store)->PutAgent(Agent("school", "school-secret-123")).ok());
  }
  // A store written before the flag existed.
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "ALTER TABLE agents DROP COLUMN disabled", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  REQUIRE(ColumnCount(path, "agents", "disabled") == 0);
  for (int open = 0; open < 2; ++open) {  // the migration runs again without harm
    auto store = SqliteStore::Open(path);
    REQUIRE(store.ok());
    CHECK(ColumnCount(path, "agents", "disabled") == 1);
    auto agent = (*store)->GetAgent("school");
    REQUIRE(agent.ok());
    REQUIRE(agent.value());
    CHECK(agent.value()->disabled == (open == 1));
    if (open == 0) REQUIRE((*store)->SetAgentDisabled("school", true).ok());
  }
  auto store = SqliteStore::Open(path);
  REQUIRE(store.ok());
  auto listed = (*store)->ListAgents();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().disabled);
  CHECK(ToJson(listed->front()).at("disabled").get<bool>());
  // Re-registering (PutAgent) keeps the operator's flag.
  REQUIRE((*store)->PutAgent(Agent("school", "other-secret-456")).ok());
  CHECK((*store)->GetAgent("school").value()->disabled);
  REQUIRE((*store)->SetAgentDisabled("school", false).ok());
  CHECK_FALSE((*store)->GetAgent("school").value()->disabled);
  CHECK((*store)->SetAgentDisabled("nobody", true).code() == StatusCode::kNotFound);
  CHECK((*store)->DeleteAgent("nobody").code() == StatusCode::kNotFound);
  REQUIRE((*store)->DeleteAgent("school").ok());
  CHECK_FALSE((*store)->GetAgent("school").value());
}

TEST_CASE("an agent's session credential is kept only for the agent and secret it was made for") {
  TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  REQUIRE((*store)->PutAgent(Agent("school", "school-secret-123")).ok());
  const std::string hash = (*store)->GetAgent("school").value()->secret_hash;
  CHECK((*store)->GetAgentSessionCredential("school").value().empty());
  REQUIRE((*store)->SetAgentSessionCredential("school", hash, "c1").ok());
  CHECK((*store)->GetAgentSessionCredential("school").value() == "c1");
  REQUIRE((*store)->SetAgentSessionCredential("school", hash, "c2").ok());
  CHECK((*store)->GetAgentSessionCredential("school").value() == "c2");
  // A login that checked an older secret, or raced the agent's removal, records nothing.
  REQUIRE((*store)->SetAgentSessionCredential("school", "pbkdf2-sha256$1$00$00", "old").ok());
  CHECK((*store)->GetAgentSessionCredential("school").value() == "c2");
  REQUIRE((*store)->DeleteAgent("school").ok());
  CHECK((*store)->GetAgentSessionCredential("school").value().empty());
  REQUIRE((*store)->SetAgentSessionCredential("school", hash, "late").ok());
  CHECK((*store)->GetAgentSessionCredential("school").value().empty());
}

TEST_CASE("a manifest's disabled key sets the flag; left out, the flag is kept") {
  TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  const std::string base = "kind: Agent\nname: school\nsecret: school-secret-123\n";
  auto disabled = [&] { return (*store)->GetAgent("school").value()->disabled; };
  REQUIRE(ApplyManifest(**store, base + "disabled: true\n", "m.yaml").ok());
  CHECK(disabled());
  auto again = ApplyManifest(**store, base, "m.yaml");
  REQUIRE(again.ok());
  CHECK(again->front().action == "unchanged");
  CHECK(disabled());
  auto enabled = ApplyManifest(**store, base + "disabled: false\n", "m.yaml");
  REQUIRE(enabled.ok());
  CHECK(enabled->front().action == "updated");
  CHECK_FALSE(disabled());
  auto bad = ApplyManifest(**store, base + "disabled: perhaps\n", "m.yaml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("disabled") != std::string::npos);
  CHECK_FALSE(disabled());
}

}  // namespace
}  // namespace dx::scheduler
