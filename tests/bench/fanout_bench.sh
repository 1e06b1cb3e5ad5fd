#!/usr/bin/env bash
# Many subscribers of one table, each with its own district filter (issue 9): how many rows does
# the source read, and how long do N agents take compared with one agent taking the whole table.
#   BENCH_FANOUT_ROWS (200000) rows, 16 districts, in PostgreSQL (which counts the rows it
#   reads: pg_stat_user_tables seq_tup_read + idx_tup_fetch, scans: seq_scan + idx_scan);
#   BENCH_FANOUT_NS ("1 32 128"): numbers of real dx-agent processes, each subscribing to one
#   district (agent i: district i mod 16); before them, one agent receives the whole table (the
#   reference for ratio_to_single). A fresh scheduler and fresh agents per N. The agents are
#   applied and connected first; then one manifest adds every subscription (one transaction,
#   schedule daily: due at once), as a city's daily deliveries fall due together.
#   BENCH_FANOUT_REPEAT (3) rounds; the figures are their medians.
#   BENCH_FANOUT_PERF=N records a perf profile of the run of N agents (BENCH_FANOUT_PERF_OPTS,
#   default the whole system; @SCHEDULER@ is the scheduler's pid, @AGENTS@ the agents'; KEEP_TMP=1
#   keeps it).
#   BENCH_FANOUT_AGENT_PRIORITY (idle): the CPU policy of the agent processes once they are
#   online. `idle` (SCHED_IDLE) lets them use only the CPU that the scheduler and PostgreSQL
#   leave, as 128 front-end machines of their own would; `normal` runs them like the scheduler.
#   On this 2-core machine, at normal priority, the 128 agents applying a round of batches are
#   128 runnable processes against the scheduler's one read thread: the kernel gives that thread
#   about 1/65 of a core until they are done, the agents then wait for the next round, and the
#   run alternates between the two instead of overlapping them (docs/PERFORMANCE.md).
#   The single-agent reference runs under the same policy. The RESULT line names it.
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-fanout
ROWS=${BENCH_FANOUT_ROWS:-200000}
NS=${BENCH_FANOUT_NS:-1 32 128}
REPEAT=${BENCH_FANOUT_REPEAT:-3}
AGENT_PRIORITY=${BENCH_FANOUT_AGENT_PRIORITY:-idle}
case "$AGENT_PRIORITY" in
  idle | normal) ;;
  *) fail "BENCH_FANOUT_AGENT_PRIORITY is '$AGENT_PRIORITY'; use idle or normal" ;;
esac

start_postgres "$T"
psql_dx -c "CREATE TABLE pupil (id bigint PRIMARY KEY, name varchar(30) NOT NULL,
    district_code varchar(6) NOT NULL, school_code varchar(10) NOT NULL, updatetime timestamp NOT NULL);
  INSERT INTO pupil SELECT g, '学生' || g, (310101 + g % 16)::text, (3101010000 + g % 1500)::text,
    now() - interval '1 day' FROM generate_series(1, $ROWS) g;
  ANALYZE pupil;"

manifest() {  # manifest N FILTERED: $T/agents.yaml (source, entry, agents), $T/subs.yaml
  python3 - "$T" "$PG_CONN" "$1" "$2" <<'PY'
import sys
t, conn, n, filtered = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
out = [f'''kind: Source
name: fsrc
connection: "{conn}"
---
kind: CatalogEntry
name: 基准-学生名册
provider: 基准
summary: 扇出基准
share_type: unconditional
topic: student
source: fsrc
source_table: pupil
updatetime_column: updatetime
fields:
  - {{item: 编号, column: id, type: bigint, primary_key: true}}
  - {{item: 姓名, column: name, type: varchar(30), not_null: true}}
  - {{item: 区代码, column: district_code, type: varchar(6), not_null: true}}
  - {{item: 学校代码, column: school_code, type: varchar(10), not_null: true}}
  - {{item: 更新时间, column: updatetime, type: datetime, not_null: true}}
''']
subs = []
for i in range(n):
    f = f'filter: [{{column: district_code, op: "=", value: "{310101 + i % 16}"}}]\n' if filtered else ""
    out.append(f'''kind: Agent
name: fan-{i}
secret: fan-agent-secret-{i:04d}
''')
    subs.append(f'''kind: Subscription
name: fan-{i}
agent: fan-{i}
entry: 基准-学生名册
columns: [id, name, district_code, school_code, updatetime]
{f}target_table: pupil
schedule: daily 03:00
''')
open(t + "/agents.yaml", "w").write("---\n".join(out))
open(t + "/subs.yaml", "w").write("---\n".join(subs))
PY
}

usage_of() { awk '{print $14 + $15, $10}' "/proc/$1/stat" 2>/dev/null; }  # "CPU_TICKS MINOR_FAULTS"

agents_usage() {  # the same, of every agent process together
  local pid ticks=0 faults=0 t f
  for pid in "${AGENT_PIDS[@]}"; do
    read -r t f < <(usage_of "$pid") || continue
    ticks=$((ticks + t)); faults=$((faults + f))
  done
  echo "$ticks $faults"
}

# measure N FILTERED: writes "seconds rows_read reads scheduler_cpu_s rows_delivered
# agents_cpu_s agents_page_faults" to $T/result.txt
measure() {
  local n=$1 i
  rm -rf "$T/scheduler.db"* "$T"/fan-*.db* "$T/scheduler.log"
  write_scheduler_config "safety_lag_s: 0, workers: 16, retry_max_s: 5"
  # Every agent dials in from 127.0.0.1: lift the per-address cap (64 by default).
  echo "agents: {max_connections_per_address: 1000}" >>"$T/scheduler.yaml"
  start_scheduler
  manifest "$n" "$2"
  dxctl apply -f "$T/agents.yaml" >/dev/null || fail "apply"
  for i in $(seq 0 $((n - 1))); do
    start_agent "f$i" "fan-$i" "fan-agent-secret-$(printf %04d "$i")" "$(sqlite_conn "$T/fan-$i.db")"
  done
  for i in $(seq 0 $((n - 1))); do wait_for 120 "agent fan-$i online" agent_online "fan-$i"; done
  if [ "$AGENT_PRIORITY" = idle ]; then
    local pid
    for pid in "${AGENT_PIDS[@]}"; do chrt --all-tasks --idle --pid 0 "$pid" >/dev/null; done
  fi
  psql_dx -c "SELECT pg_stat_reset()" >/dev/null
  local cpu0 t0 t1 agents_cpu0 agents_faults0 perf_pid=""
  read -r cpu0 _ < <(usage_of "$SCHEDULER_PID")
  read -r agents_cpu0 agents_faults0 < <(agents_usage)
  if [ -n "${BENCH_FANOUT_PERF:-}" ] && [ "$n" = "$BENCH_FANOUT_PERF" ]; then
    local opts=${BENCH_FANOUT_PERF_OPTS:--a -g -F 499} agent_pids
    agent_pids=$(IFS=,; echo "${AGENT_PIDS[*]}")
    opts=${opts//@SCHEDULER@/$SCHEDULER_PID}
    # shellcheck disable=SC2086  # options as words
    perf record ${opts//@AGENTS@/$agent_pids} -o "$T/perf.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  t0=$(date +%s.%N)
  dxctl apply -f "$T/subs.yaml" >/dev/null || fail "apply of the subscriptions"
  # One process polls the admin API every 50 ms until every run succeeded and prints when it
  # saw that (a dxctl and a python3 started per poll cost a good share of a core at N = 128,
  # taken from the agents being measured). It polls the scheduler's counters (a few numbers)
  # and lists the subscriptions only once no run is under way: a list of 128 subscriptions
  # every 50 ms took a tenth of the scheduler's CPU from the runs measured.
  t1=$(python3 - "$DX_SERVER" "$DX_TOKEN" <<'PY'
import json, sys, time, urllib.request
server, token = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(server + path, headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req, timeout=30))
deadline = time.time() + 1800
while time.time() < deadline:
    stats = get("/api/v1/stats")
    if stats["group_runs"] > 0 and stats["running"] == 0:
        seen = time.time()
        subs = get("/api/v1/subscriptions?limit=10000")
        if subs and all(x["last_run"] and x["last_run"]["status"] == "succeeded" for x in subs):
            print("%.3f" % seen)
            sys.exit(0)
    time.sleep(0.05)
sys.exit("timed out waiting for all runs")
PY
  ) || fail "all $n runs did not succeed"
  local cpu1 delivered agents_cpu1 agents_faults1
  read -r cpu1 _ < <(usage_of "$SCHEDULER_PID")
  read -r agents_cpu1 agents_faults1 < <(agents_usage)
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid"
    echo "perf profile of n=$n: $T/perf.data (kept with KEEP_TMP=1)"
  fi
  delivered=$(dxctl --json subscriptions | python3 -c "import json,sys; print(sum(x['last_run']['rows'] for x in json.load(sys.stdin)))")
  stop_all; SCHEDULER_PID=""; AGENT_PIDS=()   # sessions closed: PostgreSQL flushes its counters
  sleep 1
  local counts
  counts=$(psql_dx -At -c "SELECT coalesce(seq_tup_read,0) + coalesce(idx_tup_fetch,0), coalesce(seq_scan,0) + coalesce(idx_scan,0) FROM pg_stat_user_tables WHERE relname='pupil'")
  python3 -c "print(round($t1 - $t0, 2), '${counts%%|*}', '${counts##*|}', round(($cpu1 - $cpu0) / $(getconf CLK_TCK), 2), $delivered, round(($agents_cpu1 - $agents_cpu0) / $(getconf CLK_TCK), 2), $agents_faults1 - $agents_faults0)" >"$T/result.txt"
}

# Each figure is the median of BENCH_FANOUT_REPEAT rounds; a round measures the single-agent
# reference and then each N, so that the machine's drift (on this VM the same work took up to
# two thirds more CPU in one run than in another) reaches both sides of the ratio alike.
median() { python3 -c "import statistics, sys; print(round(statistics.median(map(float, sys.argv[1:])), 2))" "$@"; }
declare -A took=() cpus=() agent_cpus=() reads_of=() scans_of=()
singles=()
for round in $(seq 1 "$REPEAT"); do
  measure 1 0
  read -r single_s single_read single_reads single_cpu single_rows single_agents_cpu single_faults <"$T/result.txt"
  echo "round $round: one agent, whole table: $single_rows rows in ${single_s} s; source read $single_read rows in $single_reads scans; scheduler CPU ${single_cpu} s, agent's CPU ${single_agents_cpu} s, its page faults $single_faults"
  singles+=("$single_s")
  for n in $NS; do
    measure "$n" 1
    read -r s read reads cpu rows agents_cpu faults <"$T/result.txt"
    echo "round $round: n=$n: $rows rows delivered in ${s} s; source read $read rows in $reads scans; scheduler CPU ${cpu} s, agents' CPU ${agents_cpu} s, their page faults $faults"
    took[$n]+=" $s"; cpus[$n]+=" $cpu"; agent_cpus[$n]+=" $agents_cpu"
    # The source figures are the largest of the rounds (the target bounds every run).
    reads_of[$n]=$(( ${reads_of[$n]:-0} > read ? ${reads_of[$n]:-0} : read ))
    scans_of[$n]=$(( ${scans_of[$n]:-0} > reads ? ${scans_of[$n]:-0} : reads ))
  done
done
single=$(median "${singles[@]}")
echo "one agent, whole table: median ${single} s of $REPEAT rounds (${singles[*]})"
for n in $NS; do
  # shellcheck disable=SC2086  # the rounds' figures as words
  s=$(median ${took[$n]}); cpu=$(median ${cpus[$n]}); agents_cpu=$(median ${agent_cpus[$n]})
  ratio=$(python3 -c "print(round($s / $single, 2))")
  echo "n=$n: median ${s} s of $REPEAT rounds (${took[$n]# }) = x$ratio of one agent"
  echo "RESULT fanout n=$n seconds=$s source_rows_read=${reads_of[$n]} source_reads=${scans_of[$n]} ratio_to_single=$ratio scheduler_cpu_s=$cpu agents_cpu_s=$agents_cpu single_s=$single rounds=$REPEAT rows=$ROWS agent_priority=$AGENT_PRIORITY"
done
