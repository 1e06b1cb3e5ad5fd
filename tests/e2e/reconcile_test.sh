#!/usr/bin/env bash
# Reconciliation (对账) on SQLite, PostgreSQL and MariaDB targets of one SQLite source:
#  - a row committed late (UPDATETIME older than the watermark) is skipped by runs and arrives
#    by reconciliation;
#  - rows hard-deleted or changed in place at the source, and rows deleted, changed and
#    inserted by the consumer in its local copy, are found by kind;
#  - --dry-run reports the exact counts and changes nothing (target digest before and after);
#  - reconciliation repairs everything (compared with sqlite3 / psql / mariadb, not DX code),
#    keeps the row filter, never moves the watermark, and a second pass finds nothing.
source "$(dirname "$0")/harness.sh"
harness_init reconcile
start_postgres "$T"
start_mariadb "$T"

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 20000 --sqlite "$SRC"
COLS="id,name,id_card,school_code,district_code,stage,birth,gender,updatetime"
FILTER="district_code='310104'"

write_scheduler_config "safety_lag_s: 0, batch_rows: 500, retry_max_s: 2"
start_scheduler
cat >"$T/manifest.yaml" <<YAML
kind: Source
name: src
connection: "$(sqlite_conn "$SRC")"
---
kind: CatalogEntry
name: 市教委-学生基本信息
provider: 市教委基础教育处
summary: 全市在籍学生基本信息
share_type: authorised
topic: student
source: src
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true}
  - {item: 姓名, column: name, type: varchar(30), not_null: true}
  - {item: 证件号码, column: id_card, type: char(18)}
  - {item: 学校代码, column: school_code, type: varchar(10)}
  - {item: 区代码, column: district_code, type: varchar(6)}
  - {item: 学段, column: stage, type: varchar(10)}
  - {item: 出生日期, column: birth, type: date}
  - {item: 性别, column: gender, type: int}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
YAML
for t in sq pg my; do
  cat >>"$T/manifest.yaml" <<YAML
---
kind: Agent
name: agent-$t
secret: agent-$t-secret-0001
---
kind: Subscription
name: sub-$t
agent: agent-$t
entry: 市教委-学生基本信息
columns: [${COLS//,/, }]
target_table: student
schedule: manual
reconcile: daily 03:00
YAML
done
# The SQLite target may hold one district only: reconciliation must keep to the row filter.
python3 - "$T/manifest.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace("name: sub-sq\n", "name: sub-sq\nfilter: [{column: district_code, op: \"=\", value: \"310104\"}]\n")
open(p, "w").write(s)
PY
dxctl apply -f "$T/manifest.yaml" >/dev/null
sed 's/reconcile: daily 03:00/reconcile: sometimes/' "$T/manifest.yaml" >"$T/bad.yaml"
out=$(dxctl apply -f "$T/bad.yaml" 2>&1) && fail "a bad reconcile schedule was accepted"
grep -q "reconcile" <<<"$out" || fail "the error does not name the key: $out"
pass "bad reconcile schedule refused: $out"

start_agent sq agent-sq agent-sq-secret-0001 "$(sqlite_conn "$T/sq.db")"
start_agent pg agent-pg agent-pg-secret-0001 "$PG_CONN"
start_agent my agent-my agent-my-secret-0001 "$MARIADB_CONN"
for t in sq pg my; do wait_for 20 "agent-$t online" agent_online agent-$t; done
for t in sq pg my; do dxctl run sub-$t --wait >/dev/null || fail "load sub-$t: $(last_run_field sub-$t error)"; done

src_rows() {  # src_rows [WHERE]
  sqlite3 -separator '|' "$SRC" "SELECT $COLS FROM student ${1:+WHERE $1} ORDER BY id"
}
target_rows() {  # target_rows sq|pg|my
  case $1 in
    sq) sqlite3 -separator '|' "$T/sq.db" "SELECT $COLS FROM student ORDER BY id" ;;
    pg) psql_dx -At -F'|' -c "SELECT $COLS FROM student ORDER BY id" ;;
    my) mariadb_dx -N -B -r -e "SELECT $COLS FROM student ORDER BY id" | tr '\t' '|' ;;
  esac
}
target_sql() {  # target_sql sq|pg|my SQL
  case $1 in
    sq) sqlite3 "$T/sq.db" "$2" ;;
    pg) psql_dx -At -c "$2" ;;
    my) mariadb_dx -N -B -e "$2" ;;
  esac
}
src_for() { [ "$1" = sq ] && src_rows "$FILTER" || src_rows; }
same_as_source() { [ "$(src_for "$1" | md5sum)" = "$(target_rows "$1" | md5sum)" ]; }
for t in sq pg my; do same_as_source $t || fail "sub-$t differs after the load"; done
pass "loaded: SQLite $(target_sql sq 'SELECT count(*) FROM student'), PostgreSQL $(target_sql pg 'SELECT count(*) FROM student'), MariaDB $(target_sql my 'SELECT count(*) FROM student') rows"

# Keys in the filtered district, so that every target sees the same damage.
mapfile -t K < <(sqlite3 "$SRC" "SELECT id FROM student WHERE $FILTER ORDER BY id LIMIT 10")
OTHER=$(sqlite3 "$SRC" "SELECT id FROM student WHERE district_code <> '310104' ORDER BY id LIMIT 1")

# At the source: a row committed late (stamped long before the watermark), rows hard-deleted,
# rows changed by a job that did not touch UPDATETIME.
# The late row's text is awkward on purpose (quotes, comma, backslash, parentheses, spaces; an
# empty string beside NULLs), as the agent reads rows back packed into one value.
LATE_NAME="迟到 O''Brien \"x\", a\\b (y) "
sqlite3 "$SRC" "INSERT INTO student VALUES (900001, '$LATE_NAME', '310104200801011234', '', '310104', '高中', '2008-01-01', 1, '2026-01-05 10:00:00');
  DELETE FROM student WHERE id IN (${K[0]}, ${K[1]}, ${K[2]});
  UPDATE student SET name = name || '改' WHERE id IN (${K[3]}, ${K[4]});"
for t in sq pg my; do dxctl run sub-$t --wait >/dev/null || fail "run sub-$t"; done
[ "$(target_sql pg 'SELECT count(*) FROM student WHERE id = 900001')" = 0 ] ||
  fail "the late row arrived by an ordinary run: this test no longer shows the defect"
pass "an ordinary run skips the late row (UPDATETIME older than the watermark) and the deletes"

# At each agent: the consumer deletes, changes and inserts rows of its own copy.
for t in sq pg my; do
  target_sql $t "DELETE FROM student WHERE id IN (${K[5]}, ${K[6]})" >/dev/null
  target_sql $t "UPDATE student SET name = 'X' WHERE id IN (${K[7]}, ${K[8]}, ${K[9]})" >/dev/null
  target_sql $t "INSERT INTO student VALUES (800001, '多余甲', NULL, NULL, '310104', NULL, NULL, NULL, '2026-02-02 02:02:02')" >/dev/null
  target_sql $t "INSERT INTO student VALUES (800002, '多余乙', NULL, NULL, '310104', NULL, NULL, NULL, '2026-02-02 02:02:02')" >/dev/null
done
# A row outside the SQLite subscription's filter, although it exists at the source.
target_sql sq "INSERT INTO student VALUES ($OTHER, '越界', NULL, NULL, '310115', NULL, NULL, NULL, '2026-02-02 02:02:02')" >/dev/null

counts() {  # counts RUN_JSON -> "missing extra changed repaired dry_run"
  python3 -c "import json,sys; r=json.load(sys.stdin); c=r['reconcile']; print(c['missing'], c['extra'], c['changed'], c['repaired'], str(c['dry_run']).lower(), r['status'])"
}
ledger_wm() { target_sql "$1" "SELECT watermark FROM dx_ledger WHERE subscription = 'sub-$1'"; }
ledger_seq() { target_sql "$1" "SELECT batch_seq FROM dx_ledger WHERE subscription = 'sub-$1'"; }
for t in sq pg my; do
  extra=5
  [ $t = sq ] && extra=6
  before=$(target_rows $t | md5sum)
  got=$(dxctl --json reconcile sub-$t --dry-run --wait | counts) || fail "dry run of sub-$t failed: $(last_run_field sub-$t error)"
  [ "$got" = "3 $extra 5 0 true succeeded" ] || fail "dry run of sub-$t reported '$got', expected '3 $extra 5 0 true succeeded'"
  [ "$(target_rows $t | md5sum)" = "$before" ] || fail "the dry run of sub-$t changed the target"
  pass "sub-$t dry run: missing 3, extra $extra, changed 5; target unchanged"

  wm_before=$(ledger_wm $t)
  seq_before=$(ledger_seq $t)
  got=$(dxctl --json reconcile sub-$t --wait | counts) || fail "reconcile sub-$t failed: $(last_run_field sub-$t error)"
  [ "$got" = "3 $extra 5 $((3 + extra + 5)) false succeeded" ] || fail "reconcile sub-$t reported '$got'"
  same_as_source $t || { diff <(src_for $t) <(target_rows $t) | head; fail "sub-$t differs from the source after reconciliation"; }
  [ "$(ledger_wm $t)" = "$wm_before" ] || fail "reconciliation moved the watermark of sub-$t"
  [ "$(ledger_seq $t)" -gt "$seq_before" ] || fail "repairs of sub-$t were not ledgered"
  [ "$(target_sql $t "SELECT count(*) FROM student WHERE id = 900001 AND school_code = ''")" = 1 ] ||
    fail "late row missing at sub-$t"
  pass "sub-$t reconciled: $((3 + extra + 5)) rows repaired, identical to the source (checked with the $t client), watermark kept"

  got=$(dxctl --json reconcile sub-$t --wait | counts)
  [ "$got" = "0 0 0 0 false succeeded" ] || fail "a second reconciliation of sub-$t found '$got'"
done
pass "second reconciliations find nothing"

dxctl runs -n 4
dxctl --json subscriptions | python3 -c "import json,sys; s=[x for x in json.load(sys.stdin) if x['name']=='sub-pg'][0]; sys.exit(0 if s['reconcile']=='daily 03:00' else 1)" ||
  fail "the reconcile schedule is not shown"
grep -q '"reconcile"' <(dxctl --json runs -n 1) || fail "runs --json carries no reconcile counts"

# On a schedule: with `reconcile: realtime 1s`, damage is repaired without anyone asking.
sed 's/reconcile: daily 03:00/reconcile: realtime 1s/' "$T/manifest.yaml" >"$T/scheduled.yaml"
dxctl apply -f "$T/scheduled.yaml" >/dev/null
target_sql sq "DELETE FROM student WHERE id = ${K[9]}" >/dev/null
target_sql pg "UPDATE student SET name = '又坏了' WHERE id = ${K[8]}" >/dev/null
wait_for 30 "scheduled reconciliation of sub-sq" same_as_source sq
wait_for 30 "scheduled reconciliation of sub-pg" same_as_source pg
pass "scheduled reconciliations repaired new damage on their own"
