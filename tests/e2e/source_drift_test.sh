#!/usr/bin/env bash
# Schema drift at the source stops the subscription instead of corrupting it: on a SQLite and a
# PostgreSQL source, a column renamed, dropped, widened, and the UPDATETIME column renamed each
# fail the run with an error naming the column, put the subscription in the stopped state
# (shown by dxctl, not retried by the dispatcher), leave the target untouched, and re-applying
# the manifest once the source is fixed resumes it.
source "$(dirname "$0")/harness.sh"
harness_init source_drift
start_postgres "$T"

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 2000 --sqlite "$SRC"
python3 "$ROOT/scripts/gen_people.py" students 2000 >"$T/students.tsv"
psql_dx -c "CREATE TABLE student (id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL,
  id_card CHAR(18), school_code VARCHAR(10), district_code VARCHAR(6), stage VARCHAR(10),
  birth DATE, gender INT, updatetime TIMESTAMP NOT NULL)"
psql_dx -c "\\copy student FROM '$T/students.tsv'"
psql_dx -c "CREATE TABLE student_bak AS SELECT id, school_code FROM student"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"
start_scheduler
entry() {  # entry NAME SOURCE
  cat <<YAML
---
kind: CatalogEntry
name: $1
provider: 市教委基础教育处
summary: 全市在籍学生基本信息
share_type: authorised
topic: student
source: $2
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
}
subscription() {  # subscription NAME ENTRY TARGET
  cat <<YAML
---
kind: Subscription
name: $1
agent: 徐汇区教育局
entry: $2
columns: [id, name, id_card, school_code, district_code, stage, birth, gender, updatetime]
target_table: $3
schedule: realtime 1s
YAML
}
{
  printf 'kind: Source\nname: lite\nconnection: "%s"\n---\nkind: Source\nname: pg\nconnection: "%s"\n' \
    "$(sqlite_conn "$SRC")" "$PG_CONN"
  entry 市教委-学生基本信息 lite
  entry 市教委-学生基本信息副本 pg
  printf -- '---\nkind: Agent\nname: 徐汇区教育局\nsecret: agent-a-secret-0001\n'
  subscription s-lite 市教委-学生基本信息 student_lite
  subscription s-pg 市教委-学生基本信息副本 student_pg
} >"$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局

COLS="id,name,id_card,school_code,district_code,stage,birth,gender,updatetime"
lite_synced() {
  [ "$(digest_sqlite "$SRC" "SELECT $COLS FROM student ORDER BY id")" = \
    "$(digest_sqlite "$T/a.db" "SELECT $COLS FROM student_lite ORDER BY id")" ]
}
pg_synced() {
  [ "$(psql_dx -At -F'|' -c "SELECT $COLS FROM student ORDER BY id" | md5sum)" = \
    "$(sqlite3 "$T/a.db" "SELECT $COLS FROM student_pg ORDER BY id" | md5sum)" ]
}
wait_for 30 "SQLite source loaded" lite_synced
wait_for 30 "PostgreSQL source loaded" pg_synced
pass "both sources loaded: 2000 rows each"

sub_field() {  # sub_field SUBSCRIPTION FIELD (from dxctl describe --json)
  dxctl --json describe "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$2"
}
is_stopped() { [ "$(sub_field "$1" stopped)" = True ]; }
runs_of() { sqlite3 "$T/scheduler.db" "SELECT count(*) FROM runs WHERE subscription='$1'"; }
polls_since() {  # polls_since SUBSCRIPTION LAST_OK: the subscription succeeded twice more
  [ "$(sub_field "$1" last_ok_at)" -ge $(($2 + 2)) ]
}

# drift NAME SUBSCRIPTION OTHER_SUBSCRIPTION TARGET COLUMN_IN_ERROR: the source has just
# drifted; a run must fail naming the column and stop the subscription; the dispatcher does
# not retry it (the other subscription keeps polling meanwhile); the target is untouched.
drift() {
  local what=$1 sub=$2 other=$3 target=$4 column=$5 before err runs last_ok
  before=$(digest_sqlite "$T/a.db" "SELECT $COLS FROM $target ORDER BY id")
  dxctl run "$sub" --wait >/dev/null && fail "$what: the run succeeded"
  err=$(sub_field "$sub" stopped_error)
  echo "$err" | grep -q "'$column'" || fail "$what: error does not name column '$column': $err"
  is_stopped "$sub" || fail "$what: $sub is not stopped"
  dxctl subscriptions | grep "^$sub " | grep -q stopped || fail "$what: dxctl subscriptions does not show it stopped"
  runs=$(runs_of "$sub")
  last_ok=$(sub_field "$other" last_ok_at)
  wait_for 20 "$other to poll twice more" polls_since "$other" "$last_ok"
  [ "$(runs_of "$sub")" = "$runs" ] || fail "$what: the dispatcher retried a stopped subscription"
  [ "$(digest_sqlite "$T/a.db" "SELECT $COLS FROM $target ORDER BY id")" = "$before" ] ||
    fail "$what: the target changed"
  pass "$what: stopped with '$err'; not retried; target untouched"
}

# resume NAME SUBSCRIPTION SYNCED: the source is fixed; re-applying the manifest resumes it.
resume() {
  local out
  out=$(dxctl apply -f "$T/manifest.yaml")
  echo "$out" | grep -q "resumed" || fail "$1: apply did not resume $2: $out"
  dxctl wait "$2" --timeout 30 >/dev/null || fail "$1: $2 did not catch up after the fix"
  "$3" || fail "$1: target differs from the source after the fix"
}

# SQLite reads an unknown double-quoted column as a string: the renamed column would arrive as
# its own name without the check.
sqlite3 "$SRC" "ALTER TABLE student RENAME COLUMN name TO student_name"
drift "SQLite column renamed" s-lite s-pg student_lite name
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM student_lite WHERE name = 'name'")" = 0 ] || fail "column name arrived as data"
sqlite3 "$SRC" "ALTER TABLE student RENAME COLUMN student_name TO name"
resume "SQLite column renamed" s-lite lite_synced

sqlite3 "$SRC" ".backup $T/source.bak"
sqlite3 "$SRC" "ALTER TABLE student DROP COLUMN school_code"
drift "SQLite column dropped" s-lite s-pg student_lite school_code
sqlite3 "$SRC" ".restore $T/source.bak"
resume "SQLite column dropped" s-lite lite_synced

redeclare() {  # redeclare FILE OLD NEW: rebuilds table student with a changed declaration
  python3 - "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'student'").fetchone()[0]
assert sys.argv[2] in sql, sql
db.executescript("BEGIN; ALTER TABLE student RENAME TO student_old; %s; "
                 "INSERT INTO student SELECT * FROM student_old; DROP TABLE student_old; "
                 "CREATE INDEX student_ut ON student(updatetime, id); COMMIT;"
                 % sql.replace(sys.argv[2], sys.argv[3]))
PY
}
redeclare "$SRC" "name VARCHAR(30)" "name VARCHAR(60)"
drift "SQLite column widened" s-lite s-pg student_lite name
redeclare "$SRC" "name VARCHAR(60)" "name VARCHAR(30)"
resume "SQLite column widened" s-lite lite_synced

sqlite3 "$SRC" "ALTER TABLE student RENAME COLUMN updatetime TO update_time"
drift "SQLite UPDATETIME renamed" s-lite s-pg student_lite updatetime
sqlite3 "$SRC" "ALTER TABLE student RENAME COLUMN update_time TO updatetime"
resume "SQLite UPDATETIME renamed" s-lite lite_synced

# The same on PostgreSQL.
psql_dx -c "ALTER TABLE student RENAME COLUMN name TO student_name"
drift "PostgreSQL column renamed" s-pg s-lite student_pg name
psql_dx -c "ALTER TABLE student RENAME COLUMN student_name TO name"
resume "PostgreSQL column renamed" s-pg pg_synced

psql_dx -c "ALTER TABLE student DROP COLUMN school_code"
drift "PostgreSQL column dropped" s-pg s-lite student_pg school_code
psql_dx -c "ALTER TABLE student ADD COLUMN school_code VARCHAR(10);
  UPDATE student SET school_code = b.school_code FROM student_bak b WHERE b.id = student.id"
resume "PostgreSQL column dropped" s-pg pg_synced

psql_dx -c "ALTER TABLE student ALTER COLUMN gender TYPE BIGINT"
drift "PostgreSQL column widened (int to bigint)" s-pg s-lite student_pg gender
psql_dx -c "ALTER TABLE student ALTER COLUMN gender TYPE INT"
resume "PostgreSQL column widened" s-pg pg_synced

psql_dx -c "ALTER TABLE student RENAME COLUMN updatetime TO update_time"
drift "PostgreSQL UPDATETIME renamed" s-pg s-lite student_pg updatetime
psql_dx -c "ALTER TABLE student RENAME COLUMN update_time TO updatetime"
resume "PostgreSQL UPDATETIME renamed" s-pg pg_synced

# Changes made after all this still arrive, on both.
sqlite3 "$SRC" "UPDATE student SET name = '欧阳' || name, updatetime = datetime('now','localtime') WHERE id <= 5"
psql_dx -c "UPDATE student SET name = '欧阳' || name, updatetime = date_trunc('second', LOCALTIMESTAMP) WHERE id <= 5"
next_second
wait_for 30 "SQLite changes delivered" lite_synced
wait_for 30 "PostgreSQL changes delivered" pg_synced
grep -q "stopped until an operator acts" "$T/scheduler.log" || fail "the stop was not logged"
dxctl audit-verify >/dev/null
pass "after every drift was fixed both subscriptions deliver again; nothing was lost"
