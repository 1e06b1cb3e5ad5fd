#!/usr/bin/env bash
# Reconciliation (对账) cost: 1,000,000 student rows at a SQLite source delivered to a
# PostgreSQL target; then 0.1 % of them changed, deleted or inserted behind DX's back on both
# sides (at the source without touching UPDATETIME, at the target by the consumer). Measured in
# the same run: a full resync of the table (the baseline: time and bytes), and a reconciliation
# from freshly started daemons (time, bytes both ways, peak RSS). Afterwards the target must
# equal the source, checked with sqlite3 and psql (not DX code).
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-reconcile
ROWS=${BENCH_ROWS:-1000000}
STEP=${BENCH_RECONCILE_STEP:-3000}   # one row in STEP per kind of damage, six kinds: 0.1 % each side

echo "generating $ROWS source rows"
gen_bench_source "$T/source.db" "$ROWS"
start_postgres "$T"
write_scheduler_config "safety_lag_s: 0, batch_rows: 5000, window: 4"
start_scheduler
write_scheduler_config "safety_lag_s: 0, batch_rows: 5000, window: 4"  # same ports on restart
write_bench_manifest "$(sqlite_conn "$T/source.db")"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent bench bench-agent bench-agent-secret-1 "$PG_CONN"
wait_for 30 "agent online" agent_online bench-agent
dxctl run bench --wait --timeout 1200 >/dev/null || echo "load failed: $(last_run_field bench error)" >&2

# Baseline: a full resync of the same table into the same target.
dxctl resync bench --wait --timeout 1200 >/dev/null || echo "resync failed: $(last_run_field bench error)" >&2
read -r resync_ms full_bytes resync_rows < <(dxctl --json runs -s bench -n 1 | python3 -c "
import json,sys; r=json.load(sys.stdin)[0]; print(r['duration_ms'], r['bytes'], r['rows'])")
echo "full resync: $resync_rows rows, $full_bytes bytes in $resync_ms ms"

# Damage behind DX's back, six disjoint kinds of 1/STEP of the rows each.
s_changed=$(sqlite3 "$T/source.db" "UPDATE student SET name = name || '改' WHERE id % $STEP = 1; SELECT changes();")
s_deleted=$(sqlite3 "$T/source.db" "DELETE FROM student WHERE id % $STEP = 2; SELECT changes();")
s_inserted=$(sqlite3 "$T/source.db" "INSERT INTO student SELECT id + 10000000, name, id_card, school_code, birth, gender,
  '2026-01-01 00:00:00' FROM student WHERE id % $STEP = 5; SELECT changes();")
t_changed=$(psql_dx -At -c "WITH u AS (UPDATE student SET name = '坏' WHERE id % $STEP = 3 RETURNING 1) SELECT count(*) FROM u")
t_deleted=$(psql_dx -At -c "WITH d AS (DELETE FROM student WHERE id % $STEP = 4 RETURNING 1) SELECT count(*) FROM d")
t_inserted=$(psql_dx -At -c "WITH i AS (INSERT INTO student SELECT id + 20000000, name, id_card, school_code, birth, gender,
  updatetime FROM student WHERE id % $STEP = 6 RETURNING 1) SELECT count(*) FROM i")
expected=$((s_changed + s_deleted + s_inserted + t_changed + t_deleted + t_inserted))
echo "damage: source changed $s_changed, deleted $s_deleted, inserted $s_inserted (old UPDATETIME); target changed $t_changed, deleted $t_deleted, inserted $t_inserted: $expected differences"

# Fresh daemons, so that their peak RSS is the reconciliation's.
stop_all; SCHEDULER_PID=""; AGENT_PIDS=()
start_scheduler
restart_agent bench
wait_for 30 "agent online" agent_online bench-agent
# CPU seconds of the PostgreSQL server: the postmaster, its live children and those it reaped.
pg_cpu_s() {
  local pm; pm=$(head -1 "$T/pg/data/postmaster.pid")
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
    for c in $(pgrep -P "$pm"); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null; done
  } | awk '{s += $1} END {printf "%.2f", s / 100}'
}
pg_before=$(pg_cpu_s)
dxctl --json reconcile bench --wait --timeout 1200 >"$T/reconcile.json" || echo "reconciliation failed: $(last_run_field bench error)" >&2
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
s_cpu=$(cpu_s "$SCHEDULER_PID")
a_cpu=$(cpu_s "${AGENT_PIDS[bench]}")
pg_cpu=$(python3 -c "print(f'{$(pg_cpu_s) - $pg_before:.2f}')")
s_rss=$(peak_rss_mb "$SCHEDULER_PID")
a_rss=$(peak_rss_mb "${AGENT_PIDS[bench]}")
read -r rec_status rec_ms rec_bytes compared missing extra changed repaired < <(python3 -c "
import json,sys; r=json.load(open(sys.argv[1])); c=r['reconcile']
print(r['status'], r['duration_ms'], r['bytes'], c['compared'], c['missing'], c['extra'], c['changed'], c['repaired'])" "$T/reconcile.json")
[ "$rec_status" = succeeded ] || echo "WARNING: the reconciliation $rec_status: $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['error'])" "$T/reconcile.json")" >&2
echo "reconciliation: $compared rows compared; missing $missing, extra $extra, changed $changed; repaired $repaired; $rec_bytes bytes in $rec_ms ms; peak RSS scheduler ${s_rss} MB, agent ${a_rss} MB; CPU scheduler ${s_cpu} s, agent ${a_cpu} s, PostgreSQL ${pg_cpu} s"

# The target against the source, with independent clients.
src_digest=$(sqlite3 -separator '|' "$T/source.db" "SELECT id, name, id_card, school_code, birth, gender, updatetime FROM student ORDER BY id" | md5sum)
dst_digest=$(psql_dx -At -F'|' -c "SELECT id, name, id_card, school_code, birth, gender, updatetime FROM student ORDER BY id" | md5sum)
identical=no
[ "$src_digest" = "$dst_digest" ] && identical=yes
echo "target identical to the source (sqlite3 vs psql): $identical"
[ "$identical" = yes ] || echo "WARNING: the target differs from the source" >&2
[ "$repaired" = "$expected" ] || echo "WARNING: repaired $repaired, expected $expected" >&2

ratio() { python3 -c "print(f'{$1 / max($2, 1):.4f}')"; }
echo "RESULT reconcile rows=$compared seconds=$(python3 -c "print(f'{$rec_ms / 1000:.2f}')") bytes_sent=$rec_bytes full_reload_bytes=$full_bytes bytes_ratio=$(ratio "$rec_bytes" "$full_bytes") speed_ratio=$(ratio "$rec_ms" "$resync_ms") differences_repaired=$repaired"
