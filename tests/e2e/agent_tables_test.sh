#!/usr/bin/env bash
# The agent's tables on a consumer's SQLite database, as a consumer damages them:
#  - a subscription whose target is named like the agent's own tables (any case) is refused;
#  - a table the consumer dropped or emptied is reloaded from scratch, one it cut short is
#    repaired by a reconciliation, and the run history says why;
#  - one subscription whose batches the consumer's own rule refuses does not stop another
#    subscription of the same agent in the middle of its run;
#  - a resync into a table of the consumer's own (not created by DX) is refused untouched.
source "$(dirname "$0")/harness.sh"
harness_init agent_tables

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 3000 --sqlite "$SRC"
write_scheduler_config "safety_lag_s: 0, batch_rows: 10, window: 4, retry_min_s: 30, retry_max_s: 60"
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
share_type: unconditional
topic: student
source: src
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true}
  - {item: 姓名, column: name, type: varchar(30), not_null: true}
  - {item: 学校代码, column: school_code, type: varchar(10)}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
---
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
YAML
for sub in "sub-a student" "sub-b student_b" "sub-ledger DX_LEDGER" "sub-files Dx_Files" \
  "sub-c timetable"; do
  set -- $sub
  cat >>"$T/manifest.yaml" <<YAML
---
kind: Subscription
name: $1
agent: 徐汇区教育局
entry: 市教委-学生基本信息
columns: [id, name, school_code, updatetime]
target_table: $2
schedule: manual
YAML
done
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局
COLS="id, name, school_code, updatetime"
same_as_source() {
  [ "$(sqlite3 "$SRC" "SELECT $COLS FROM student ORDER BY id" | md5sum)" = \
    "$(sqlite3 "$T/a.db" "SELECT $COLS FROM $1 ORDER BY id" | md5sum)" ]
}

# Names of the agent's own tables, in any case, are refused; its records stay as they were.
dxctl run sub-a --wait >/dev/null || fail "first load: $(last_run_field sub-a error)"
ledger_before=$(sqlite3 "$T/a.db" "SELECT subscription, batch_seq, watermark FROM dx_ledger ORDER BY 1")
for sub in sub-ledger sub-files; do
  dxctl run $sub --wait >/dev/null && fail "$sub: a target named like the agent's tables was accepted"
  err=$(last_run_field $sub error)
  echo "$err" | grep -q "is reserved: names starting with dx_ belong to the agent's own tables" || fail "$sub: $err"
done
[ "$(sqlite3 "$T/a.db" "SELECT subscription, batch_seq, watermark FROM dx_ledger ORDER BY 1")" = "$ledger_before" ] ||
  fail "the agent's ledger changed"
pass "targets DX_LEDGER and Dx_Files refused: '$err'"

# The consumer drops the table: the next run reloads it, and says why.
sqlite3 "$T/a.db" "DROP TABLE student"
dxctl run sub-a --wait >/dev/null || fail "run after drop: $(last_run_field sub-a error)"
note=$(last_run_field sub-a note)
[ "$note" = "target table student was missing at the agent; reloading from scratch" ] || fail "note: '$note'"
same_as_source student || fail "after the drop the table differs from the source"
dxctl runs -s sub-a -n 1 | grep -q "note: target table student was missing" || fail "dxctl runs does not show the note"
pass "dropped table reloaded ($(last_run_field sub-a rows) rows), history says '$note'"

# The consumer empties it.
sqlite3 "$T/a.db" "DELETE FROM student"
dxctl run sub-a --wait >/dev/null || fail "run after delete: $(last_run_field sub-a error)"
note=$(last_run_field sub-a note)
echo "$note" | grep -q "target table student was empty at the agent although 3000 rows were delivered" || fail "note: '$note'"
same_as_source student || fail "after emptying the table differs from the source"
pass "emptied table reloaded, history says '$note'"

# The consumer deletes most of it; the agent counts its rows when it starts (and every
# row_check_s after), finds fewer than it delivered, and says so; the scheduler has a
# reconciliation put back exactly the missing rows (the other 1000 do not move again).
sqlite3 "$T/a.db" "DELETE FROM student WHERE id % 3 <> 0"
kill_agent a
restart_agent a
wait_for 20 "agent a online" agent_online 徐汇区教育局
dxctl run sub-a --wait >/dev/null || fail "run after partial delete: $(last_run_field sub-a error)"
note=$(dxctl --json runs -s sub-a -n 5 | python3 -c "import json,sys; print([r for r in json.load(sys.stdin) if r['trigger'] != 'reconcile'][0]['note'])")
echo "$note" | grep -q "target table student held 1000 rows at the agent, fewer than the 3000 delivered; a reconciliation repairs it" || fail "note: '$note'"
wait_for 30 "the reconciliation to repair the table" same_as_source student
repaired=$(dxctl --json runs -s sub-a -n 5 | python3 -c "import json,sys; r=[x for x in json.load(sys.stdin) if x['trigger']=='reconcile' and x['status']=='succeeded']; c=r[0]['reconcile']; print(c['missing'], c['repaired'])")
[ "$repaired" = "2000 2000" ] || fail "the reconciliation reported missing/repaired '$repaired', expected 2000 2000"
pass "table cut short: history says '$note'; a reconciliation put back exactly the 2000 missing rows"

# A later run over an intact table reloads nothing.
dxctl run sub-a --wait >/dev/null || fail "quiet run: $(last_run_field sub-a error)"
[ -z "$(last_run_field sub-a note)" ] || fail "an intact table was reloaded: $(last_run_field sub-a note)"

# sub-b's batches are refused by a rule of the consumer's (a trigger with its own message,
# which no classifier knows) while sub-a reloads in 300 batches: sub-a must finish. A slow
# trigger of the consumer's on student (about 2 ms per row) keeps sub-a's reload going for
# a few seconds, so that sub-b fails in the middle of it.
dxctl run sub-b --wait >/dev/null || fail "sub-b first load: $(last_run_field sub-b error)"
sqlite3 "$T/a.db" "CREATE TRIGGER consumer_rule BEFORE UPDATE ON student_b BEGIN SELECT RAISE(ABORT, 'consumer rule 7: student_b is read-only today'); END;
  CREATE TRIGGER consumer_slow AFTER INSERT ON student BEGIN SELECT length(hex(zeroblob(1000000))); END;"
sqlite3 "$SRC" "UPDATE student SET name = name || '改', updatetime = datetime('now', 'localtime') WHERE id % 100 = 1"
next_second
dxctl resync sub-a >/dev/null
sub_a_running() { [ "$(last_run_field sub-a status)" = running ]; }
wait_for 20 "sub-a's resync to start" sub_a_running
resync_run=$(last_run_field sub-a id)
dxctl run sub-b --wait >/dev/null && fail "sub-b's refused batch did not fail its run"
err_b=$(last_run_field sub-b error)
echo "$err_b" | grep -q "consumer rule 7" || fail "sub-b: $err_b"
b_finished=$(last_run_field sub-b finished_at_ms)
# run_field SUBSCRIPTION RUN FIELD: a field of one run of the history.
run_field() {
  dxctl --json runs -s "$1" -n 50 | python3 -c "import json,sys; r=[x for x in json.load(sys.stdin) if x['id']==int(sys.argv[1])]; print(r[0][sys.argv[2]] if r else '')" "$2" "$3"
}
sub_a_done() { [ "$(run_field sub-a "$resync_run" status)" != running ]; }
wait_for 60 "sub-a's resync to end" sub_a_done
[ "$(run_field sub-a "$resync_run" status)" = succeeded ] || fail "sub-a failed beside sub-b: $(run_field sub-a "$resync_run" error)"
[ "$b_finished" -lt "$(run_field sub-a "$resync_run" finished_at_ms)" ] || fail "test setup: sub-a finished before sub-b failed"
same_as_source student || fail "sub-a's table differs from the source"
pass "sub-b refused ('$err_b') while sub-a's resync of $(last_run_field sub-a rows) rows went on and succeeded"

# The consumer has a table of its own under a subscription's target name: a resync (which
# would delete its rows) is refused and the table stays as it was. Last, because the scheduler
# keeps retrying a failed resync.
sqlite3 "$T/a.db" "CREATE TABLE timetable (id INTEGER PRIMARY KEY, name TEXT, school_code TEXT, updatetime TEXT);
  INSERT INTO timetable VALUES (1, '第一节 语文', '3101040001', '2026-09-01 08:00:00');"
before=$(sqlite3 "$T/a.db" "SELECT * FROM timetable")
dxctl resync sub-c --wait >/dev/null && fail "a resync into the consumer's own table succeeded"
err=$(last_run_field sub-c error)
echo "$err" | grep -q "target table 'timetable' exists but was not created by DX for subscription 'sub-c'" || fail "sub-c: $err"
[ "$(sqlite3 "$T/a.db" "SELECT * FROM timetable")" = "$before" ] || fail "the consumer's table was changed"
pass "resync into the consumer's own table refused ('$err'), its rows untouched"
