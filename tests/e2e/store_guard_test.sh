#!/usr/bin/env bash
# The scheduler's store (issue 9): created mode 0600 (it holds connection strings and personal
# data), -wal and -shm too; a store deleted or replaced under a running scheduler stops it with
# a clear error (exit code 3) instead of writes going into a file nobody can read again.
source "$(dirname "$0")/harness.sh"
harness_init store_guard

write_scheduler_config
start_scheduler
dxctl agents >/dev/null
for f in scheduler.db scheduler.db-wal scheduler.db-shm; do
  [ -e "$T/$f" ] || continue
  mode=$(stat -c %a "$T/$f")
  [ "$mode" = 600 ] || fail "$f has mode $mode"
done
pass "store files are 0600"

stopped() { ! kill -0 "$SCHEDULER_PID" 2>/dev/null; }
rm "$T/scheduler.db"
wait_for 15 "the scheduler to stop after its store was deleted" stopped
rc=0; wait "$SCHEDULER_PID" || rc=$?
SCHEDULER_PID=""
[ "$rc" = 3 ] || fail "exit code $rc after the store was deleted"
grep -q "was deleted while the scheduler had it open" "$T/scheduler.log" || fail "no clear error in the log"
pass "a deleted store stops the scheduler (exit 3, '$(grep -o 'the store .* was deleted[^;]*' "$T/scheduler.log" | head -1)')"

rm -f "$T/scheduler.db"*
start_scheduler
dxctl agents >/dev/null
cp "$T/scheduler.db" "$T/copy.db"
mv "$T/copy.db" "$T/scheduler.db"
wait_for 15 "the scheduler to stop after its store was replaced" stopped
rc=0; wait "$SCHEDULER_PID" || rc=$?
SCHEDULER_PID=""
[ "$rc" = 3 ] || fail "exit code $rc after the store was replaced"
grep -q "was replaced by another file" "$T/scheduler.log" || fail "no clear error in the log"
pass "a replaced store stops the scheduler (exit 3)"
