# Helpers of the benchmark scripts: a scheduler and one agent on loopback, a bench manifest,
# peak RSS of the daemons, and figures out of the run history.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/e2e/harness.sh"
set +e  # benchmarks report what they can

BENCH_BIN=$BUILD/tests

gen_bench_source() {  # gen_bench_source FILE ROWS
  rm -f "$1" "$1"-wal "$1"-shm
  sqlite3 "$1" -cmd ".parameter set :rows $2" <"$ROOT/tests/bench/gen_students.sql" >/dev/null
}

write_bench_manifest() {  # write_bench_manifest SOURCE_CONN SCHEDULE
  cat >"$T/manifest.yaml" <<YAML
kind: Source
name: bench
connection: "$1"
---
kind: CatalogEntry
name: 基准-学生信息
provider: 基准
summary: 基准测试学生数据
share_type: unconditional
topic: student
source: bench
source_table: student
updatetime_column: updatetime
fields:
  - {item: 编号, column: id, type: bigint, primary_key: true}
  - {item: 姓名, column: name, type: varchar(30), not_null: true}
  - {item: 证件号码, column: id_card, type: char(18)}
  - {item: 学校代码, column: school_code, type: varchar(10)}
  - {item: 出生日期, column: birth, type: date}
  - {item: 性别, column: gender, type: int}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
---
kind: Agent
name: bench-agent
secret: bench-agent-secret-1
---
kind: Subscription
name: bench
agent: bench-agent
entry: 基准-学生信息
columns: [id, name, id_card, school_code, birth, gender, updatetime]
target_table: student
schedule: ${2:-manual}
YAML
}

peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

# run_rows_per_s: rows / duration of the last run of "bench".
run_rows_per_s() {
  dxctl --json runs -s bench -n 1 | python3 -c "
import json,sys; r=json.load(sys.stdin)[0]
print(int(r['rows'] / max(r['duration_ms'], 1) * 1000) if r['status']=='succeeded' else 0)"
}

# dx_load SOURCE_FILE TARGET_CONN: a fresh scheduler and agent; one full run; prints
# "rows_per_s scheduler_rss_mb agent_rss_mb".
dx_load() {
  rm -f "$T"/scheduler.db*
  AGENTS_PORT=0 ADMIN_PORT=0
  write_scheduler_config "safety_lag_s: 0, batch_rows: ${BATCH_ROWS:-5000}, window: ${WINDOW:-4}"
  start_scheduler
  write_bench_manifest "$(sqlite_conn "$1")"
  dxctl apply -f "$T/manifest.yaml" >/dev/null
  start_agent bench bench-agent bench-agent-secret-1 "$2"
  wait_for 20 "bench agent online" agent_online bench-agent
  dxctl run bench --wait --timeout 1200 >/dev/null || echo "bench run failed: $(last_run_field bench error)" >&2
  local rps srss arss
  rps=$(run_rows_per_s)
  srss=$(peak_rss_mb "$SCHEDULER_PID")
  arss=$(peak_rss_mb "${AGENT_PIDS[bench]}")
  stop_all; SCHEDULER_PID=""; AGENT_PIDS=()
  echo "$rps $srss $arss"
}

# run_rows_per_s_of SUBSCRIPTION: rows / duration of its last run (0 if it failed).
run_rows_per_s_of() {
  dxctl --json runs -s "$1" -n 1 | python3 -c "
import json,sys; r=json.load(sys.stdin)[0]
print(int(r['rows'] / max(r['duration_ms'], 1) * 1000) if r['status']=='succeeded' else 0)"
}

# dx_load_manifest MANIFEST SUBSCRIPTION AGENT SECRET TARGET_CONN: like dx_load, with a
# manifest of its own; prints "rows_per_s scheduler_rss_mb agent_rss_mb".
dx_load_manifest() {
  rm -f "$T"/scheduler.db*
  AGENTS_PORT=0 ADMIN_PORT=0
  write_scheduler_config "safety_lag_s: 0, batch_rows: ${BATCH_ROWS:-5000}, window: ${WINDOW:-4}"
  start_scheduler
  dxctl apply -f "$1" >/dev/null
  start_agent "$3" "$3" "$4" "$5"
  wait_for 20 "agent $3 online" agent_online "$3"
  dxctl run "$2" --wait --timeout 1200 >/dev/null || echo "bench run failed: $(last_run_field "$2" error)" >&2
  local rps srss arss
  rps=$(run_rows_per_s_of "$2")
  srss=$(peak_rss_mb "$SCHEDULER_PID")
  arss=$(peak_rss_mb "${AGENT_PIDS[$3]}")
  stop_all; SCHEDULER_PID=""; AGENT_PIDS=()
  echo "$rps $srss $arss"
}
