// Reconciliation's scheduler records: the `reconcile` key of subscriptions (validated like a
// schedule, table subscriptions only), and the state and counts kept in the store.
#include <doctest/doctest.h>

#include <string>

#include "scheduler/manifest.h"
#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using testing::TempDir;

std::string Manifest(const std::string& reconcile) {
  return R"(kind: Source
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
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
---
kind: FileResource
name: 教委-教学资源
provider: 教委
summary: 课件
share_type: unconditional
topic: institution
directory: /tmp
---
kind: Agent
name: school
secret: school-secret-123
---
kind: Subscription
name: s1
agent: school
entry: 教委-学生基本信息
columns: [id, updatetime]
target_table: student
)" + reconcile;
}

TEST_CASE("the reconcile key: schedule syntax, stored with the definition, tables only") {
  TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  struct Case {
    const char* yaml;
    bool ok;
    const char* error_part;
  };
  const Case cases[] = {
      {"", true, ""},
      {"reconcile: daily 03:00\n", true, ""},
      {"reconcile: weekly sun 04:00\n", true, ""},
      {"reconcile: manual\n", true, ""},
      {"reconcile: sometimes\n", false, "key 'reconcile'"},
      {"reconcile: daily 25:00\n", false, "key 'reconcile'"},
      {"reconcile: daily 03:00\n---\nkind: Subscription\nname: f1\nagent: school\n"
       "entry: 教委-教学资源\ntarget_path: x\nreconcile: daily 03:00\n",
       false, "reconcile is for table subscriptions"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    auto applied = ApplyManifest(**store, Manifest(c.yaml), "m.yaml");
    CHECK(applied.ok() == c.ok);
    if (!c.ok) CHECK(applied.status().message().find(c.error_part) != std::string::npos);
  }
  REQUIRE(ApplyManifest(**store, Manifest("reconcile: daily 03:00\n"), "m.yaml").ok());
  auto sub = (*store)->GetSubscription("s1");
  REQUIRE(sub.ok());
  REQUIRE(sub.value());
  CHECK(sub.value()->reconcile == "daily 03:00");
  // Changing only when to reconcile does not ask for a reload of what the agent holds.
  CHECK_FALSE(sub.value()->resync_pending);
}

TEST_CASE("reconcile state and counts survive a reopen of the store") {
  TempDir dir;
  {
    auto store = SqliteStore::Open(dir.File("s.db"));
    REQUIRE(store.ok());
    REQUIRE((*store)->PutReconcileState({"s1", 2, 1700000000, 3, 1700000000123}).ok());
    REQUIRE((*store)->PutReconcileState({"s1", 1, 1700000100, 0, 1700000000456}).ok());
    REQUIRE((*store)->PutReconcileCounts({42, true, 1000, 1002, 3, 5, 7, 0}).ok());
  }
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  auto states = (*store)->ListReconcileStates();
  REQUIRE(states.ok());
  REQUIRE(states->size() == 1);
  CHECK(states->at(0).pending == 1);
  CHECK(states->at(0).next_due == 1700000100);
  CHECK(states->at(0).failures == 0);
  CHECK(states->at(0).requested_at == 1700000000456);
  auto counts = (*store)->GetReconcileCounts(42);
  REQUIRE(counts.ok());
  REQUIRE(counts.value());
  CHECK(counts.value()->dry_run);
  CHECK(counts.value()->target_rows == 1002);
  CHECK(counts.value()->changed == 7);
  auto none = (*store)->GetReconcileCounts(43);
  REQUIRE(none.ok());
  CHECK_FALSE(none.value());
}

}  // namespace
}  // namespace dx::scheduler
