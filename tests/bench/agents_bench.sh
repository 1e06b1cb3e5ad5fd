#!/usr/bin/env bash
# scripts/bench.sh agents: N simulated agents (tests/bench/agents_client.cc: the real protocol
# over TLS, Hello then heartbeats every 5 s) connect to one scheduler; then the scheduler is
# killed and restarted and every agent comes back by itself (full-jitter back-off).
#   RESULT agents n=N connect_s=S scheduler_rss_mb=N rss_per_agent_kb=N threads=N
#          threads_no_agents=N cpu_pct_idle=N reconnect_all_s=S
# rss_per_agent_kb is (RSS with N agents - RSS with none) / N; threads_no_agents is the
# baseline measured in the same run (threads independent of N when equal).
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench_lib.sh"
harness_init agents_bench
N=${BENCH_AGENTS:-10000}
ulimit -n "$(ulimit -Hn)"

scheduler_config() {
  write_scheduler_config
  sed -i 's/^heartbeat_s: 1$/heartbeat_s: 5/' "$T/scheduler.yaml"
  cat >>"$T/scheduler.yaml" <<YAML
agents: {max_connections: $((N + 1000)), max_connections_per_address: $((N + 1000)), handshake_timeout_s: 60}
YAML
}
scheduler_config
start_scheduler
# N agents sharing one secret hash (made here: hashing N secrets at apply would dominate).
python3 - "$N" >"$T/agents.yaml" <<'PY'
import hashlib, sys
salt = "00112233445566778899aabbccddeeff"
h = hashlib.pbkdf2_hmac("sha256", b"bench-secret-0001", salt.encode(), 20000).hex()
for i in range(1, int(sys.argv[1]) + 1):
    print("---\nkind: Agent\nname: sim-%d\nsecret_hash: pbkdf2-sha256$20000$%s$%s" % (i, salt, h))
PY
dxctl apply -f "$T/agents.yaml" >/dev/null || fail "apply of $N agents failed"

rss_kb() { awk '/^VmRSS/ {print $2}' /proc/"$SCHEDULER_PID"/status; }
threads() { awk '/^Threads/ {print $2}' /proc/"$SCHEDULER_PID"/status; }
cpu_ticks() { awk '{print $14 + $15}' /proc/"$SCHEDULER_PID"/stat; }
online() { tail -n 1 "$T/client.out" 2>/dev/null | sed -n 's/^online=//p'; }
all_online() { [ "$(online)" = "$N" ]; }
none_online() { [ "$(online)" = 0 ]; }
sleep 2
rss0=$(rss_kb)
threads0=$(threads)

t0=$(date +%s.%N)
"$BENCH_BIN/agents_client" 127.0.0.1 "$AGENTS_PORT" "$N" sim- bench-secret-0001 2 >"$T/client.out" 2>"$T/client.err" &
HELPER_PIDS+=($!)
wait_for 300 "$N agents online" all_online
connect_s=$(echo "$(date +%s.%N) - $t0" | bc)
echo "all $N agents online after $connect_s s"
sleep 6  # a heartbeat round
rss1=$(rss_kb)
threads1=$(threads)
# Idle CPU over 30 s: two periods of the last-seen flush (agents.last_seen_flush_s, 15 s).
c0=$(cpu_ticks)
sleep 30
c1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
cpu_idle=$(echo "scale=1; ($c1 - $c0) * 100 / $hz / 30" | bc)
per_agent=$(( (rss1 - rss0) / N ))
echo "RSS $((rss0 / 1024)) MB with no agents, $((rss1 / 1024)) MB with $N; threads $threads0 / $threads1; idle CPU $cpu_idle %"

kill_scheduler
wait_for 60 "agents noticed the scheduler's end" none_online
scheduler_config
t0=$(date +%s.%N)
start_scheduler
wait_for 300 "$N agents back online" all_online
reconnect_s=$(echo "$(date +%s.%N) - $t0" | bc)
echo "all $N agents back online $reconnect_s s after the restart"
echo "RESULT agents n=$N connect_s=$connect_s scheduler_rss_mb=$((rss1 / 1024)) rss_per_agent_kb=$per_agent threads=$threads1 threads_no_agents=$threads0 cpu_pct_idle=$cpu_idle reconnect_all_s=$reconnect_s"
