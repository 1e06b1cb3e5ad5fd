#!/usr/bin/env bash
# Resync: a failing resync backs off like any failed run (it used to be retried on every tick),
# and a resync interrupted by kill -9 of the scheduler or of the agent resumes its load from
# the agent's ledger instead of clearing the table again: the resumed runs send only the rows
# the agent did not have, and the target ends identical to the source. `dxctl resync --wait`
# outlives the scheduler's restart and reports the resync's success.
source "$(dirname "$0")/harness.sh"
harness_init resync

SRC=$T/source.db
ROWS=${RESYNC_TEST_ROWS:-120000}
python3 "$ROOT/scripts/gen_people.py" students "$ROWS" --sqlite "$SRC"
sqlite3 "$SRC" "UPDATE student SET district_code='310104'"   # sub-a takes every row
SRC_DIGEST=$(digest_sqlite "$SRC" "SELECT $SUB_A_COLS FROM student ORDER BY id")

CONFIG="safety_lag_s: 0, batch_rows: 250, window: 4, retry_min_s: 1, retry_max_s: 2"
write_scheduler_config "$CONFIG"
start_scheduler
write_scheduler_config "$CONFIG"   # restarts come back on the same ports
write_student_manifest "$(sqlite_conn "$SRC")"
GOOD=$T/manifest.yaml
sed "s#connection: \".*\"#connection: \"Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=$(free_port);Database=x;Uid=x\"#" \
  "$GOOD" >"$T/down.yaml"
dxctl apply -f "$T/down.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局

# 1. A resync that keeps failing (the source is unreachable) waits out its back-off between
#    attempts: 1 s, then 2 s (retry_min_s 1, retry_max_s 2), not one tick (100 ms).
dxctl resync sub-a >/dev/null
failed_resyncs() { sqlite3 "$T/scheduler.db" "SELECT count(*) FROM runs WHERE subscription='sub-a' AND trigger='resync' AND status='failed'"; }
four_failed() { [ "$(failed_resyncs)" -ge 4 ]; }
wait_for 30 "four failed resync attempts" four_failed
gaps=$(sqlite3 "$T/scheduler.db" "SELECT group_concat(gap, ' ') FROM (SELECT started_at - lag(started_at) OVER (ORDER BY id) AS gap FROM runs WHERE subscription='sub-a' AND trigger='resync' ORDER BY id LIMIT 4) WHERE gap IS NOT NULL")
echo "gaps between failed resync attempts (ms): $gaps"
read -r g1 g2 g3 <<<"$gaps"
[ "$g1" -ge 1000 ] && [ "$g2" -ge 2000 ] && [ "$g3" -ge 2000 ] || fail "a failing resync did not back off: gaps $gaps ms"
pass "a failing resync backs off: $gaps ms between attempts"

# The source comes back: the pending resync loads everything.
dxctl apply -f "$GOOD" >/dev/null
target_rows() { sqlite3 "$T/a.db" "SELECT count(*) FROM student" 2>/dev/null || echo 0; }
target_complete() {
  [ "$(digest_sqlite "$T/a.db" "SELECT $SUB_A_COLS FROM student ORDER BY id" 2>/dev/null)" = "$SRC_DIGEST" ]
}
wait_for 60 "the resync to load the table" target_complete
pass "the source came back: the pending resync loaded $(target_rows) rows"

cleared() { grep -c "resync of sub-a: cleared table student" "$T/agent-a.log" || true; }
last_run_id() { sqlite3 "$T/scheduler.db" "SELECT coalesce(max(id), 0) FROM runs WHERE subscription='sub-a'"; }
rows_sent_after() { sqlite3 "$T/scheduler.db" "SELECT coalesce(sum(rows), 0) FROM runs WHERE subscription='sub-a' AND id > $1"; }
# Freezes the agent (SIGSTOP) once a reload under way holds between a quarter and all but the
# last batch of the table, so that a kill lands mid-load however fast this machine loads (a
# whole reload takes well under a second): polls without sleeping, for up to 60 s.
freeze_agent_mid_load() {
  local deadline=$((SECONDS + 60)) n
  while [ $SECONDS -lt $deadline ]; do
    n=$(target_rows)
    if [ "$n" -ge $((ROWS / 4)) ] && [ "$n" -lt $((ROWS - 1000)) ]; then
      kill -STOP "${AGENT_PIDS[a]}"
      return 0
    fi
  done
  fail "timed out after 60s waiting for the reload to reach a quarter of the table"
}
# The agent may hold up to a window of batches more than the resumed run must send.
SLACK=$((250 * 4 + 250))

# 2. kill -9 of the scheduler in the middle of a resync, while an operator waits for it.
cleared_before=$(cleared)
dxctl resync sub-a --wait --timeout 120 >"$T/resync-wait.out" 2>&1 &
WAITER=$!
freeze_agent_mid_load
lost_before=$(grep -c "scheduler connection:" "$T/agent-a.log" || true)
kill_scheduler
kill -CONT "${AGENT_PIDS[a]}"
run_at_kill=$(last_run_id)
# Once the agent has noticed, it has finished the batch it was applying.
lost() { [ "$(grep -c "scheduler connection:" "$T/agent-a.log" || true)" -gt "$lost_before" ]; }
wait_for 20 "the agent to notice the scheduler is gone" lost
held=$(target_rows)
echo "killed the scheduler (kill -9) with $held of $ROWS rows reloaded at the agent"
start_scheduler
wait_for 120 "target identical to source after the scheduler's restart" target_complete
wait "$WAITER" || fail "dxctl resync --wait failed across the restart: $(cat "$T/resync-wait.out")"
grep -q succeeded "$T/resync-wait.out" || fail "dxctl resync --wait: $(cat "$T/resync-wait.out")"
sent=$(rows_sent_after "$run_at_kill")
echo "the resumed resync sent $sent rows (the agent held $held of $ROWS)"
[ "$sent" -le $((ROWS - held + SLACK)) ] || fail "the resumed resync re-sent rows the agent held: $sent sent, $((ROWS - held)) missing"
[ "$(($(cleared) - cleared_before))" = 1 ] || fail "the table was cleared $(($(cleared) - cleared_before)) times for one resync"
pass "scheduler kill -9 during a resync: resumed with $sent rows (not $ROWS), cleared once, identical; dxctl resync --wait succeeded across the restart"

# 3. kill -9 of the agent in the middle of a resync.
cleared_before=$(cleared)
dxctl resync sub-a >/dev/null
freeze_agent_mid_load
kill_agent a
run_at_kill=$(last_run_id)
held=$(target_rows)
echo "killed the agent (kill -9) with $held of $ROWS rows reloaded"
restart_agent a
wait_for 120 "target identical to source after the agent's restart" target_complete
wait_for 20 "the resync to be recorded as done" test "$(dxctl --json describe sub-a | python3 -c 'import json,sys; print(json.load(sys.stdin)["resync_pending"])')" = False
sent=$(rows_sent_after "$run_at_kill")
echo "runs after the kill sent $sent rows (the agent held $held of $ROWS)"
[ "$sent" -le $((ROWS - held + SLACK)) ] || fail "the resumed resync re-sent rows the agent held: $sent sent, $((ROWS - held)) missing"
[ "$(($(cleared) - cleared_before))" = 1 ] || fail "the table was cleared $(($(cleared) - cleared_before)) times for one resync"
pass "agent kill -9 during a resync: resumed with $sent rows (not $ROWS), cleared once, identical"
dxctl runs -s sub-a -n 6
