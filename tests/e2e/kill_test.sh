#!/usr/bin/env bash
# Nothing lost, nothing doubled: kill -9 the agent at random points during a 200,000-row load,
# and the scheduler during a run; after restarts the target equals the source (row count and
# a content checksum) with no duplicate and no gap.
source "$(dirname "$0")/harness.sh"
harness_init kill

SRC=$T/source.db
ROWS=${KILL_TEST_ROWS:-200000}
python3 "$ROOT/scripts/gen_people.py" students "$ROWS" --sqlite "$SRC"
sqlite3 "$SRC" "UPDATE student SET district_code='310104'"   # sub-a takes every row

write_scheduler_config "safety_lag_s: 0, batch_rows: 250, window: 4, retry_min_s: 1, retry_max_s: 1"
start_scheduler
# Restarts must come back on the same ports, where the agent keeps dialling.
write_scheduler_config "safety_lag_s: 0, batch_rows: 250, window: 4, retry_min_s: 1, retry_max_s: 1"
write_student_manifest "$(sqlite_conn "$SRC")" "realtime 1s"
dxctl apply -f "$T/manifest.yaml" >/dev/null

SRC_DIGEST=$(digest_sqlite "$SRC" "SELECT $SUB_A_COLS FROM student ORDER BY id")
target_rows() { sqlite3 "$T/a.db" "SELECT count(*) FROM student" 2>/dev/null || echo 0; }
PREV=0
target_progressed() { local n; n=$(target_rows); [ "$n" -gt "$PREV" ] || [ "$n" -ge "$ROWS" ]; }
target_partial() { local n; n=$(target_rows); [ "$n" -gt 0 ] && [ "$n" -lt "$ROWS" ]; }
target_complete() {
  [ "$(digest_sqlite "$T/a.db" "SELECT $SUB_A_COLS FROM student ORDER BY id" 2>/dev/null)" = "$SRC_DIGEST" ]
}

start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
kills=0
for i in 1 2 3 4 5 6; do
  # Wait until the load makes progress again, then kill at a random moment.
  wait_for 30 "agent to write more rows" target_progressed
  sleep "0.0$((RANDOM % 10))"
  target_complete && break
  kill_agent a
  kills=$((kills + 1))
  PREV=$(target_rows)
  echo "killed the agent (kill -9) with $PREV of $ROWS rows committed"
  restart_agent a
done
wait_for 120 "target identical to source after $kills agent kills" target_complete
pass "after $kills kill -9 of the agent: $(target_rows) rows, identical to the source"
seq_a=$(sqlite3 "$T/a.db" "SELECT batch_seq FROM dx_ledger WHERE subscription='sub-a'")
echo "agent ledger: sub-a at batch $seq_a"

# Now the scheduler: reload everything (resync) and kill the scheduler mid-run, twice.
dxctl resync sub-a >/dev/null
for i in 1 2; do
  wait_for 30 "resync under way" target_partial
  sleep "0.$((RANDOM % 3))"
  kill_scheduler
  echo "killed the scheduler (kill -9) with $(target_rows) rows at the agent"
  start_scheduler
done
wait_for 120 "target identical to source after scheduler kills" target_complete
pass "after kill -9 of the scheduler during a resync: identical to the source"
dxctl runs -s sub-a -n 50 | awk 'NR==1 || /interrupted|resync/' | head -8
grep -q interrupted <(dxctl runs -s sub-a -n 50) || fail "the killed run was not marked interrupted"
overlaps=$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM runs a JOIN runs b ON a.subscription = b.subscription
  AND a.id < b.id AND b.started_at < a.finished_at")
[ "$overlaps" = 0 ] || fail "$overlaps runs of one subscription overlapped"
pass "no two runs of the subscription overlapped (realtime 1s polls during multi-second loads)"
