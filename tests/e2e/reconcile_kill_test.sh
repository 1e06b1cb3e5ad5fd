#!/usr/bin/env bash
# kill -9 during a reconciliation (对账): the consumer damaged most of its copy; the agent is
# killed while repairs are being applied, then the scheduler is; the next reconciliation (for
# the scheduler: the one it resumes by itself after the restart) finishes the job, and the
# target equals the source (checked with sqlite3). Runs of the subscription never overlap.
source "$(dirname "$0")/harness.sh"
harness_init reconcile-kill

SRC=$T/source.db
ROWS=${RECONCILE_KILL_ROWS:-200000}
python3 "$ROOT/scripts/gen_people.py" students "$ROWS" --sqlite "$SRC"
sqlite3 "$SRC" "UPDATE student SET district_code='310104'"   # sub-a takes every row

write_scheduler_config "safety_lag_s: 0, batch_rows: 250, window: 4, retry_min_s: 1, retry_max_s: 1"
start_scheduler
# Restarts must come back on the same ports, where the agent keeps dialling.
write_scheduler_config "safety_lag_s: 0, batch_rows: 250, window: 4, retry_min_s: 1, retry_max_s: 1"
write_student_manifest "$(sqlite_conn "$SRC")" "realtime 1s"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent online" agent_online 徐汇区教育局

SRC_DIGEST=$(digest_sqlite "$SRC" "SELECT $SUB_A_COLS FROM student ORDER BY id")
target_rows() { sqlite3 "$T/a.db" "SELECT count(*) FROM student" 2>/dev/null || echo 0; }
target_complete() {
  [ "$(digest_sqlite "$T/a.db" "SELECT $SUB_A_COLS FROM student ORDER BY id" 2>/dev/null)" = "$SRC_DIGEST" ]
}
wait_for 60 "first load" target_complete

# The consumer deletes four rows in five and changes some of the rest.
damage() {
  sqlite3 "$T/a.db" "DELETE FROM student WHERE id % 5 <> 0; UPDATE student SET name = '坏' WHERE id % 35 = 0;"
  DAMAGED=$(target_rows)
}
repairing() { local n; n=$(target_rows); [ "$n" -gt "$DAMAGED" ] && [ "$n" -lt "$ROWS" ]; }

damage
kills=0
for i in 1 2 3; do
  dxctl reconcile sub-a >/dev/null
  wait_for 30 "repairs under way" repairing
  sleep "0.0$((RANDOM % 5))"
  repairing || continue
  kill_agent a
  kills=$((kills + 1))
  echo "killed the agent (kill -9) during reconciliation with $(target_rows) of $ROWS rows"
  restart_agent a
  wait_for 20 "agent back" agent_online 徐汇区教育局
  DAMAGED=$(target_rows)
done
[ "$kills" -gt 0 ] || fail "no kill landed during the repairs"
dxctl reconcile sub-a --wait --timeout 60 >/dev/null || fail "reconciliation after the kills: $(last_run_field sub-a error)"
target_complete || fail "the target differs from the source after $kills agent kills"
pass "after $kills kill -9 of the agent during reconciliation: the next one finished the job"

damage
dxctl reconcile sub-a >/dev/null
wait_for 30 "repairs under way" repairing
kill_scheduler
echo "killed the scheduler (kill -9) during reconciliation with $(target_rows) of $ROWS rows"
start_scheduler
wait_for 60 "the reconciliation resumed after the restart to finish" target_complete
pass "after kill -9 of the scheduler: the pending reconciliation resumed and finished the job"
wait_for 20 "the resumed reconciliation recorded" bash -c \
  "$DXCTL_BIN --json runs -s sub-a -n 5 | python3 -c \"import json,sys; r=[x for x in json.load(sys.stdin) if x['trigger']=='reconcile']; sys.exit(0 if r and r[0]['status']=='succeeded' else 1)\""
dxctl runs -s sub-a -n 50 | awk 'NR==1 || /reconcile/' | head -8
grep -q "reconcile  interrupted" <(dxctl runs -s sub-a -n 50) || fail "the killed reconciliation was not marked interrupted"
overlaps=$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM runs a JOIN runs b ON a.subscription = b.subscription
  AND a.id < b.id AND b.started_at < a.finished_at")
[ "$overlaps" = 0 ] || fail "$overlaps runs of one subscription overlapped"
pass "no run of the subscription overlapped a reconciliation (realtime 1s polls meanwhile)"
