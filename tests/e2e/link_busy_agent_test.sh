#!/usr/bin/env bash
# The agent's link lives on its own io thread, apart from the thread that writes into the
# local database (issue 9): while that thread waits on a lock a consumer holds (here six
# heartbeats and longer), the agent's heartbeats keep the scheduler's view of it fresh (neither
# side drops the link) and the run completes once the lock is released; and while it waits, a
# scheduler gone silent (SIGSTOP) is noticed within three heartbeats, before the lock is
# released, and the agent logs in again once the scheduler is back.
source "$(dirname "$0")/harness.sh"
harness_init link_busy_agent

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 2000 --sqlite "$SRC"
write_scheduler_config "safety_lag_s: 0, batch_rows: 500, retry_min_s: 1, retry_max_s: 2"
start_scheduler
write_student_manifest "$(sqlite_conn "$SRC")"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局
sqlite3 "$T/a.db" "PRAGMA journal_mode=WAL" >/dev/null

# hold_lock SECONDS: a consumer holds the database's write lock; $T/locked appears once it does.
hold_lock() {
  rm -f "$T/locked"
  python3 -c "import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE')
open(sys.argv[2], 'w').close(); time.sleep(float(sys.argv[3])); c.execute('COMMIT')" \
    "$T/a.db" "$T/locked" "$1" &
  LOCK_PID=$!
  wait_for 20 "the consumer's lock" test -e "$T/locked"
}
count() { grep -c "$1" "$2" || true; }

# 1. The apply thread waits 6 s (six heartbeats) on the lock; the link stays up.
hold_lock 6
dxctl run sub-a --wait --timeout 60 >/dev/null || fail "run beside a held lock: $(last_run_field sub-a error)"
wait "$LOCK_PID"
grep -q "another program holds a lock" "$T/agent-a.log" || fail "the agent did not wait for the lock"
waited=$(grep -o "done after waiting [0-9]* ms" "$T/agent-a.log" | tail -1 | grep -o "[0-9]*")
[ "${waited:-0}" -ge 3000 ] || fail "the apply thread waited only ${waited:-0} ms: not longer than three heartbeats"
[ "$(count "disconnected" "$T/scheduler.log")" = 0 ] ||
  fail "the scheduler dropped the agent while it was busy: $(grep disconnected "$T/scheduler.log" | head -1)"
[ "$(count "scheduler connection:" "$T/agent-a.log")" = 0 ] ||
  fail "the agent dropped the link while busy: $(grep "scheduler connection:" "$T/agent-a.log" | head -1)"
want=$(sqlite3 "$SRC" "SELECT count(*) FROM student WHERE $SUB_A_WHERE")
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM student")" = "$want" ] || fail "the load after the lock is incomplete"
pass "the apply thread waited $waited ms on a consumer's lock (1 s heartbeats): no side dropped the link, $want rows arrived"

# 2. While the apply thread waits again (8 s), the scheduler stops answering.
sqlite3 "$SRC" "UPDATE student SET name = name || '改', updatetime = datetime('now', 'localtime') WHERE $SUB_A_WHERE"
next_second
lock_waits=$(count "another program holds a lock" "$T/agent-a.log")
waiting_again() { [ "$(count "another program holds a lock" "$T/agent-a.log")" -gt "$lock_waits" ]; }
hold_lock 8
dxctl run sub-a >/dev/null
wait_for 20 "the apply thread to wait on the lock" waiting_again
kill -STOP "$SCHEDULER_PID"
wait_for 10 "the agent to notice the silent scheduler" grep -q "nothing heard from .* for 3 s" "$T/agent-a.log"
noticed_while_busy=no
kill -0 "$LOCK_PID" 2>/dev/null && noticed_while_busy=yes
kill -CONT "$SCHEDULER_PID"
[ "$noticed_while_busy" = yes ] || fail "the silent scheduler was noticed only after the lock was released"
wait "$LOCK_PID"
wait_for 30 "agent a online again" agent_online 徐汇区教育局
changed_rows() { [ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM student WHERE name LIKE '%改'")" = "$want" ]; }
# A run request is queued even while the interrupted run retries; it fails only for a
# subscription that is gone or not active, which would be a failure of this test.
dxctl run sub-a >/dev/null || fail "dxctl run sub-a was refused after the reconnect"
wait_for 60 "the changed rows" changed_rows
pass "a scheduler silent while the apply thread waited was noticed within three heartbeats ($(grep -o "nothing heard from .* for 3 s" "$T/agent-a.log" | tail -1)); the agent logged in again and the changes arrived"
