#!/usr/bin/env bash
# Latency of a realtime subscription polling every second: from a row's commit at the SQLite
# source to the row being visible in the agent's SQLite table (through ODBC on both sides).
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-latency
SAMPLES=${BENCH_LATENCY_SAMPLES:-40}

gen_bench_source "$T/source.db" 10000
write_scheduler_config "safety_lag_s: 0"
start_scheduler
write_bench_manifest "$(sqlite_conn "$T/source.db")" "realtime 1s"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent bench bench-agent bench-agent-secret-1 "$(sqlite_conn "$T/target.db")"
loaded() { [ "$(sqlite3 "$T/target.db" 'SELECT count(*) FROM student' 2>/dev/null)" = 10000 ]; }
wait_for 60 "initial load" loaded
python3 "$ROOT/tests/bench/latency_probe.py" "$T/source.db" "$T/target.db" "$SAMPLES" >"$T/latency.txt"
python3 - "$T/latency.txt" <<'PY'
import sys
v = sorted(int(x) for x in open(sys.argv[1]))
pct = lambda p: v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"{len(v)} samples: min {v[0]} ms, p50 {pct(50)} ms, p90 {pct(90)} ms, p99 {pct(99)} ms, max {v[-1]} ms")
print(f"RESULT table_latency p50_ms={pct(50)} p99_ms={pct(99)}")
PY
