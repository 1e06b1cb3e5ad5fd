#!/usr/bin/env bash
# Apply checks the catalog against the sources and the agents' tables, and runs read the
# source under its own spelling of names:
#  - a PostgreSQL table created with unquoted DDL (folded to lower case) serves an upper-case
#    catalog entry; two names that match it only ignoring case are refused as ambiguous;
#  - a misspelled table or column, a source column wider than the catalog's, an UPDATETIME that
#    cannot be compared each refuse the whole manifest, naming the entry, the field and what
#    the source has; an unreachable source is applied with a note;
#  - two subscriptions writing one table at one agent are refused (in one manifest, and against
#    the store, whatever the case of the name);
#  - a conflicting target table and a schedule that never fires stop their subscription.
source "$(dirname "$0")/harness.sh"
harness_init source_check
start_postgres "$T"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"
start_scheduler

# refused MANIFEST PATTERN: apply must fail, say PATTERN, and change nothing.
refused() {
  local before out rc
  before=$(sqlite3 "$T/scheduler.db" "SELECT group_concat(name) FROM (SELECT name FROM catalog_entries UNION ALL SELECT name FROM subscriptions UNION ALL SELECT name FROM sources ORDER BY 1)")
  set +e
  out=$(dxctl apply -f "$1" 2>&1); rc=$?
  set -e
  [ $rc != 0 ] || fail "apply of $(basename "$1") succeeded: $out"
  echo "$out" | grep -q -- "$2" || fail "apply of $(basename "$1"): message lacks '$2': $out"
  [ "$(sqlite3 "$T/scheduler.db" "SELECT group_concat(name) FROM (SELECT name FROM catalog_entries UNION ALL SELECT name FROM subscriptions UNION ALL SELECT name FROM sources ORDER BY 1)")" = "$before" ] ||
    fail "a refused manifest changed the store"
  pass "refused: $out"
}

# 1. Names folded by PostgreSQL.
psql_dx -c "CREATE TABLE XS_JBXX (XH VARCHAR(20) PRIMARY KEY, XM VARCHAR(30) NOT NULL, XB INT,
  GXSJ TIMESTAMP NOT NULL);
  INSERT INTO XS_JBXX SELECT 'S' || lpad(i::text, 6, '0'), '学生' || i, 1 + i % 2,
    TIMESTAMP '2026-01-01 08:00:00' + i * INTERVAL '1 minute' FROM generate_series(1, 500) i"
cat >"$T/pg.yaml" <<YAML
kind: Source
name: pg
connection: "$PG_CONN"
---
kind: CatalogEntry
name: 某区教育局-学生学籍
provider: 某区教育局
summary: 学籍
share_type: unconditional
topic: student
source: pg
source_table: XS_JBXX
updatetime_column: GXSJ
fields:
  - {item: 学号, column: XH, type: varchar(20), primary_key: true}
  - {item: 姓名, column: XM, type: varchar(30), not_null: true}
  - {item: 性别, column: XB, type: int}
  - {item: 更新时间, column: GXSJ, type: datetime, not_null: true}
---
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
---
kind: Subscription
name: xj
agent: 徐汇区教育局
entry: 某区教育局-学生学籍
columns: [XH, XM, XB, GXSJ]
target_table: XS_JBXX
YAML
dxctl apply -f "$T/pg.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局
dxctl run xj --wait >/dev/null || fail "run against lower-case PostgreSQL names: $(last_run_field xj error)"
[ "$(psql_dx -At -F'|' -c "SELECT xh, xm, xb, gxsj FROM xs_jbxx ORDER BY xh" | md5sum)" = \
  "$(sqlite3 "$T/a.db" "SELECT XH, XM, XB, GXSJ FROM XS_JBXX ORDER BY XH" | md5sum)" ] ||
  fail "rows differ from the source"
pass "upper-case catalog over a lower-case PostgreSQL table: $(sqlite3 "$T/a.db" "SELECT count(*) FROM XS_JBXX") rows delivered"

psql_dx -c 'CREATE TABLE "Xs_Jbxx" (a INT)'
refused "$T/pg.yaml" "table 'XS_JBXX' is ambiguous at the source: both '.*' and '.*' match it ignoring case"
dxctl run xj --wait >/dev/null && fail "a run over an ambiguous name succeeded"
err=$(last_run_field xj error)
echo "$err" | grep -q "'xs_jbxx'" && echo "$err" | grep -q "'Xs_Jbxx'" || fail "run error does not name both: $err"
psql_dx -c 'DROP TABLE "Xs_Jbxx"'
pass "an ambiguous source name stops the run too"

# 2. Apply checks the entries against their SQLite source.
SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 100 --sqlite "$SRC"
sqlite3 "$SRC" "CREATE TABLE epoch (id INTEGER PRIMARY KEY, name VARCHAR(30), updatetime INTEGER NOT NULL)"
write_student_manifest "$(sqlite_conn "$SRC")"
good=$T/manifest.yaml
sed 's/^source_table: student$/source_table: studnet/' "$good" >"$T/bad-table.yaml"
refused "$T/bad-table.yaml" "key 'source_table'.*table 'studnet' does not exist at the source"
sed 's/column: name, type/column: nmae, type/' "$good" | sed 's/columns: \[id, name,/columns: [id, nmae,/' >"$T/bad-column.yaml"
refused "$T/bad-column.yaml" "source table 'student' has no column 'nmae' (it has: id, name, id_card"
sed 's/column: name, type: varchar(30)/column: name, type: varchar(10)/' "$good" >"$T/narrow.yaml"
refused "$T/narrow.yaml" "column 'name' of source table 'student' is VARCHAR(30) at the source, the catalog says varchar(10)"
sed -e 's/^source_table: student$/source_table: epoch/' -e '/column: \(id_card\|school_code\|district_code\|stage\|birth\|gender\)/d' \
  -e 's/columns: \[.*\]/columns: [id, name, updatetime]/' -e '/^filter:/d' -e '/- {column: /d' "$good" >"$T/epoch.yaml"
refused "$T/epoch.yaml" "UPDATETIME column 'updatetime' of source table 'epoch' is INTEGER at the source.*cannot be compared"
dxctl apply -f "$good" >/dev/null
pass "the corrected manifest applies"

# An unreachable source: applied, with a note; runs check before they read.
sed "s#connection: \".*\"#connection: \"Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=$(free_port);Database=x;Uid=x\"#" "$good" >"$T/down.yaml"
out=$(dxctl apply -f "$T/down.yaml") || fail "apply with an unreachable source failed: $out"
echo "$out" | grep -q "not checked: source 'src' is unreachable" || fail "no note: $out"
pass "unreachable source: applied with a note"
dxctl apply -f "$good" >/dev/null

# 3. Two subscriptions writing one table at one agent.
cat >"$T/twice.yaml" <<YAML
kind: Subscription
name: sub-c
agent: 徐汇区教育局
entry: 市教委-学生基本信息
columns: [id, name, updatetime]
target_table: STUDENT
YAML
refused "$T/twice.yaml" "subscription 'sub-a' already writes table 'student' at agent '徐汇区教育局'"
cat >"$T/both.yaml" <<YAML
kind: Agent
name: 新学校
secret: agent-n-secret-0003
---
kind: Subscription
name: x1
agent: 新学校
entry: 市教委-学生基本信息
columns: [id, name, updatetime]
target_table: t1
---
kind: Subscription
name: x2
agent: 新学校
entry: 市教委-学生基本信息
columns: [id, name, updatetime]
target_table: T1
YAML
refused "$T/both.yaml" "subscription 'x2' already writes table 'T1' at agent '新学校'"
sed 's/^target_table: STUDENT$/target_table: student_c/' "$T/twice.yaml" >"$T/other-table.yaml"
dxctl apply -f "$T/other-table.yaml" >/dev/null
sed 's/^agent: 徐汇区教育局$/agent: 浦东某中学/' "$T/twice.yaml" | sed 's/^name: sub-c$/name: sub-d/' >"$T/other-agent.yaml"
refused "$T/other-agent.yaml" "subscription 'sub-b' already writes table 'student' at agent '浦东某中学'"
sed -i 's/^target_table: STUDENT$/target_table: student_d/' "$T/other-agent.yaml"
dxctl apply -f "$T/other-agent.yaml" >/dev/null
pass "one table, one subscription per agent: other tables and other agents are accepted"

# Permanent failures stop a subscription: a target table the agent did not create...
sub_field() { dxctl --json describe "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$2"; }
stopped() { [ "$(sub_field "$1" stopped)" = True ]; }
sqlite3 "$T/a.db" "CREATE TABLE student (id INTEGER PRIMARY KEY, name INTEGER)"
dxctl run sub-a --wait >/dev/null && fail "a run into a conflicting table succeeded"
stopped sub-a || fail "a conflicting target table did not stop sub-a"
sub_field sub-a stopped_error | grep -q "target table 'student' exists but was not created by DX" || fail "error: $(sub_field sub-a stopped_error)"
pass "conflicting target table: sub-a stopped with '$(sub_field sub-a stopped_error)'"
# ... and a schedule that never fires, left in the store by an older version.
sqlite3 "$T/scheduler.db" ".timeout 5000" "UPDATE subscriptions SET spec = json_set(spec, '\$.schedule', 'cron 0 0 31 2 *'), next_due = 0 WHERE name = 'sub-c'"
wait_for 20 "sub-c to stop" stopped sub-c
sub_field sub-c stopped_error | grep -q "never fires" || fail "error: $(sub_field sub-c stopped_error)"
pass "a schedule that never fires: sub-c ran once, then stopped with '$(sub_field sub-c stopped_error)'"
