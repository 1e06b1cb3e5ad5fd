#!/usr/bin/env bash
# A consumer program writes its own table in the database DX delivers into, all the time,
# while DX applies batches (a full load, then two rounds of changes to 50,000 and 12,500 rows in batches of 200):
# no stall (measured: the longest time DX's ledger did not move during a run, and the
# consumer's longest write), nothing lost on either side.
#   consumer_writes_test.sh sqlite | mariadb
# The consumer is Python's sqlite3 module for SQLite and the mariadb command-line client for
# MariaDB; each write is a short transaction of its own.
source "$(dirname "$0")/harness.sh"
KIND=${1:?usage: consumer_writes_test.sh sqlite|mariadb}
harness_init "consumer_writes_$KIND"
ROWS=${CONSUMER_ROWS:-50000}

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students "$ROWS" --sqlite "$SRC"
case $KIND in
  sqlite) TARGET=$(sqlite_conn "$T/target.db") ;;
  mariadb) start_mariadb "$T"; TARGET=$MARIADB_CONN ;;
  *) fail "unknown target $KIND" ;;
esac
write_scheduler_config "safety_lag_s: 0, batch_rows: 200, window: 4, retry_min_s: 1, retry_max_s: 2"
start_scheduler
write_student_manifest "$(sqlite_conn "$SRC")"
sed -i '/^filter: \[{column: district_code, op: "=", value: "310104"}\]$/d' "$T/manifest.yaml"  # sub-a: every row
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$TARGET"
wait_for 20 "agent a online" agent_online 徐汇区教育局
dxctl run sub-a --wait >/dev/null || fail "full load: $(last_run_field sub-a error)"

target_rows() {
  case $KIND in
    sqlite) sqlite3 "$T/target.db" "$1" ;;
    mariadb) mariadb_dx -N -B -e "$1" ;;
  esac
}

mariadb_consumer() {
  local n=0 s e out ok seq
  mariadb_dx -e "CREATE TABLE IF NOT EXISTS consumer_log (n INT PRIMARY KEY, note VARCHAR(50)) DEFAULT CHARSET=utf8mb4"
  while [ ! -e "$T/stop" ]; do
    n=$((n + 1))
    s=$(date +%s%3N)
    if out=$(mariadb_dx -N -B -e "START TRANSACTION; INSERT INTO consumer_log VALUES ($n, '本地写入 $n'); DO SLEEP(0.005); COMMIT;
        SELECT COALESCE((SELECT batch_seq FROM dx_ledger WHERE subscription = 'sub-a'), 0);" 2>&1); then
      ok=ok; seq=$(echo "$out" | tail -n 1)
    else
      ok=error; seq=0; echo "$out" >>"$T/consumer-errors.log"
    fi
    e=$(date +%s%3N)
    echo "$e $seq $((e - s)) $ok" >>"$T/consumer.samples"
    sleep 0.01
  done
}

# The consumer starts writing.
rm -f "$T/stop" "$T/consumer.samples"
case $KIND in
  sqlite) python3 "$E2E_DIR/consumer_writer.py" sqlite "$T/target.db" sub-a "$T/consumer.samples" "$T/stop" &
    CONSUMER_PID=$! ;;
  mariadb) mariadb_consumer & CONSUMER_PID=$! ;;
esac
# The consumer stops with the test, however it ends.
stop_consumer() {
  local rc=$?
  set +e
  touch "$T/stop"
  kill -0 "$CONSUMER_PID" 2>/dev/null && kill "$CONSUMER_PID" && wait "$CONSUMER_PID"
  (exit $rc)
  harness_cleanup
}
trap stop_consumer EXIT
consumer_started() { [ -s "$T/consumer.samples" ] && [ "$(wc -l <"$T/consumer.samples")" -ge 5 ]; }
wait_for 20 "the consumer to write" consumer_started

# Two rounds of changes at the source, each applied while the consumer writes.
stalls=()
for round in 1 2; do
  limit=$ROWS; [ $round = 2 ] && limit=$((ROWS / 4))
  sqlite3 "$SRC" "UPDATE student SET name = name || '$round', updatetime = datetime('now', 'localtime') WHERE id IN (SELECT id FROM student ORDER BY id LIMIT $limit)"
  next_second
  start=$(date +%s%3N)
  dxctl run sub-a --wait --timeout 60 >/dev/null || fail "round $round: $(last_run_field sub-a error)"
  end=$(date +%s%3N)
  figures=$(python3 "$E2E_DIR/consumer_writer.py" analyze "$T/consumer.samples" "$start" "$end")
  echo "round $round: run of $(last_run_field sub-a rows) rows took $((end - start)) ms; $figures"
  stalls+=("$(echo "$figures" | sed -n 's/.*dx_longest_stall_ms=\([0-9]*\).*/\1/p')")
done
touch "$T/stop"
wait "$CONSUMER_PID"

figures=$(python3 "$E2E_DIR/consumer_writer.py" analyze "$T/consumer.samples" 0 1)
failures=$(echo "$figures" | sed -n 's/.*consumer_failures=\([0-9]*\).*/\1/p')
writes=$(echo "$figures" | sed -n 's/.*consumer_writes=\([0-9]*\).*/\1/p')
longest_write=$(echo "$figures" | sed -n 's/.*consumer_longest_write_ms=\([0-9]*\).*/\1/p')
[ "$failures" = 0 ] || { cat "$T/consumer-errors.log" 2>/dev/null; fail "the consumer's writes failed $failures times"; }
[ "$(target_rows "SELECT count(*) FROM consumer_log")" = "$writes" ] || fail "the consumer lost rows of its own"
src=$(sqlite3 "$SRC" "SELECT $SUB_A_COLS FROM student ORDER BY id" | md5sum)
case $KIND in
  sqlite) dst=$(sqlite3 "$T/target.db" "SELECT $SUB_A_COLS FROM student ORDER BY id" | md5sum) ;;
  mariadb) dst=$(mariadb_dx -N -B -e "SELECT $SUB_A_COLS FROM student ORDER BY id" | tr '\t' '|' | md5sum) ;;
esac
[ "$src" = "$dst" ] || fail "the target differs from the source"
longest_stall=$(printf '%s\n' "${stalls[@]}" | sort -n | tail -n 1)
pass "$KIND target: $writes consumer writes, none failed or lost; DX's rows identical to the source"

# A consumer transaction that holds a lock DX needs for 3 s (SQLite: the database's write
# lock; MariaDB: the row DX must update): DX's waits are short (target.lock_timeout_ms) and
# retried, so the run waits it out instead of failing.
first=$(sqlite3 "$SRC" "SELECT min(id) FROM student")
case $KIND in
  sqlite)
    python3 -c "import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('BEGIN IMMEDIATE'); c.execute('INSERT INTO consumer_log VALUES (-1, \'held\')')
open(sys.argv[2], 'w').close(); time.sleep(3); c.execute('COMMIT')" "$T/target.db" "$T/locked" &
    HOLDER=$! ;;
  mariadb)
    mariadb_dx -e "START TRANSACTION; SELECT id FROM student WHERE id = $first FOR UPDATE; DO SLEEP(3); COMMIT;" >/dev/null &
    HOLDER=$!
    lock_held() { [ "$(mariadb_dx -N -B -e "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP%'")" -ge 1 ]; }
    wait_for 20 "the consumer's lock" lock_held
    touch "$T/locked" ;;
esac
wait_for 20 "the consumer's lock" test -e "$T/locked"
sqlite3 "$SRC" "UPDATE student SET name = '锁后', updatetime = datetime('now', 'localtime') WHERE id = $first"
next_second
start=$(date +%s%3N)
dxctl run sub-a --wait --timeout 60 >/dev/null || fail "run beside a held lock: $(last_run_field sub-a error)"
end=$(date +%s%3N)
wait "$HOLDER"
[ "$(target_rows "SELECT name FROM student WHERE id = $first")" = 锁后 ] || fail "the row behind the lock did not arrive"
grep -q "another program holds a lock" "$T/agent-a.log" || fail "the agent did not wait for the lock"
pass "a lock held 3 s by the consumer: DX waited and retried, the run took $((end - start)) ms and succeeded"
echo "FIGURES consumer_writes_$KIND dx_longest_stall_ms=$longest_stall consumer_longest_write_ms=$longest_write consumer_writes=$writes"
