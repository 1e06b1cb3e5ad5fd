#!/usr/bin/env bash
# A school on a slow, lossy link: the agent runs in a network namespace of its own, joined to
# the scheduler's through a third namespace where tests/e2e/lossy_bridge.py forwards every
# frame with 150 ms of delay each way (300 ms RTT), 2 % loss and 2 Mbit/s (this kernel has no
# netem). The addresses are private ones the test picks (10.77.N.1 and .2), not loopback.
#  1. A load of the 60-column table of every catalog type with an outage in its middle (the
#     bridge drops everything): both sides notice within three heartbeats, the load resumes
#     once the link is back and the target is identical to the source (checked by sqlite3
#     through tests/e2e/wide_table.py).
#  2. Rows changed and added: the incremental run completes identical.
# Sizes: SLOW_LINK_ROWS (default 600, ~2 MB on the wire; at 2 % loss and 300 ms RTT TCP moves ~40 KB/s, so the
# issue's 300,000 rows take hours and are left to a manual run), SLOW_LINK_OUTAGE_S (20).
# Needs root (namespaces); reported as skipped otherwise.
source "$(dirname "$0")/harness.sh"
harness_init slow_link
ROWS=${SLOW_LINK_ROWS:-600}
OUTAGE_S=${SLOW_LINK_OUTAGE_S:-20}
HEARTBEAT_S=3
GEN="python3 $E2E_DIR/wide_table.py"

if [ "$(id -u)" -ne 0 ] || ! ip netns add "dxprobe$$" 2>/dev/null; then
  echo "SKIP: network namespaces need root (and CAP_NET_ADMIN)"
  exit 77   # ctest reports the test as skipped (SKIP_RETURN_CODE)
fi
ip netns del "dxprobe$$"

ID=$(( $$ % 100000 ))
# A /24 of 10.77.0.0/16 that no interface here uses yet.
NET=""
for n in $(seq $(( $$ % 250 )) 254) $(seq 0 $(( $$ % 250 ))); do
  ip -br addr | grep -q " 10\.77\.$n\." || { NET=10.77.$n; break; }
done
[ -n "$NET" ] || fail "no free 10.77.N.0/24 network for the test"
NS_M=dxm$ID NS_B=dxb$ID
SCHED_IF=dxs$ID
# The namespaces go first (their interfaces vanish once the harness has stopped the processes
# in them); harness_cleanup then sees the test's exit status as its $?.
with_status() { return "$1"; }
slow_cleanup() {
  local rc=$?
  set +e
  ip netns del "$NS_M" 2>/dev/null
  ip netns del "$NS_B" 2>/dev/null
  with_status "$rc"
  harness_cleanup
}
trap slow_cleanup EXIT

# root (scheduler) <-veth-> M (bridge) <-veth-> B (agent)
ip netns add "$NS_M"
ip netns add "$NS_B"
ip link add "$SCHED_IF" type veth peer name m1 netns "$NS_M"
ip link add b0 netns "$NS_B" type veth peer name m2 netns "$NS_M"
ip addr add "$NET.1/24" dev "$SCHED_IF"
ip link set "$SCHED_IF" up
ip -n "$NS_B" addr add "$NET.2/24" dev b0
ip -n "$NS_B" link set b0 up
ip -n "$NS_B" link set lo up
for l in m1 m2; do ip -n "$NS_M" link set "$l" promisc on up; done
ip netns exec "$NS_M" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
# Whole frames with their checksums computed (no offloads) must cross the bridge.
ethtool -K "$SCHED_IF" tx off tso off gso off gro off >/dev/null 2>&1
for l in m1 m2; do ip netns exec "$NS_M" ethtool -K "$l" tx off tso off gso off gro off >/dev/null 2>&1; done
ip netns exec "$NS_B" ethtool -K b0 tx off tso off gso off gro off >/dev/null 2>&1
# nsenter execs the program itself (`ip netns exec` forks and waits), so $! of a command
# started with it is the program's pid.
in_ns() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" "$@"; }
nsenter --net="/var/run/netns/$NS_M" python3 "$E2E_DIR/lossy_bridge.py" m1 m2 --delay-ms 150 --loss 0.02 \
  --rate-bps 2000000 </dev/null >/dev/null 2>"$T/bridge.log" &
BRIDGE=$!
HELPER_PIDS+=("$BRIDGE")
rtt_ok() {
  local out
  out=$(in_ns "$NS_B" timeout 2 bash -c "exec 3<>/dev/tcp/$NET.1/9" 2>&1) && return 1
  [[ $out == *refused* ]]
}
wait_for 20 "the bridged link to carry a connection attempt" rtt_ok

# The scheduler's certificate names the address the agent dials.
bash "$ROOT/scripts/make-cert.sh" -q -f -d 30 -o "$T/tls" 127.0.0.1 localhost "$NET.1"
SRC_DB=$T/source.db DST_DB=$T/target.db
$GEN ddl sqlite | sqlite3 -bail "$SRC_DB"
$GEN load sqlite --rows "$ROWS" | sqlite3 -bail "$SRC_DB" >/dev/null
echo "source: $ROWS rows of 60 columns, $(du -k "$SRC_DB" | cut -f1) KiB"

write_scheduler_config "safety_lag_s: 0, batch_rows: 50, retry_min_s: 1, retry_max_s: 2"
sed -i -e "s/^listen: {agents: \"127.0.0.1:0\"/listen: {agents: \"$NET.1:0\"/" \
  -e "s/^heartbeat_s: .*/heartbeat_s: $HEARTBEAT_S/" "$T/scheduler.yaml"
start_scheduler
$GEN manifest --connection "$(sqlite_conn "$SRC_DB")" >"$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
cat >"$T/agent-w.yaml" <<YAML
name: wide-agent
secret: wide-agent-secret-0001
scheduler: $NET.1:$AGENTS_PORT
target: {connection: "$(sqlite_conn "$DST_DB")"}
tls: {ca: $T/tls.crt}
reconnect: {min_ms: 200, max_ms: 2000}
YAML
nsenter --net="/var/run/netns/$NS_B" "$AGENT_BIN" -c "$T/agent-w.yaml" >>"$T/agent-w.log" 2>&1 &
AGENT_PIDS[w]=$!
wait_for 60 "agent online over the slow link" agent_online wide-agent

check() {
  local sql
  sql=$($GEN select sqlite --names catalog --table wide_all)
  sqlite3 "$SRC_DB" "$sql" >"$T/source.dump" || fail "dumping the source"
  sqlite3 "$DST_DB" "$sql" >"$T/target.dump" || fail "dumping the target"
  local out
  out=$($GEN compare "$T/source.dump" "$T/target.dump") || { echo "$out"; fail "$1: target differs"; }
  pass "$1: $out"
}

# 1. A load with an outage in the middle: both sides notice within three heartbeats, and the
#    load resumes and completes identical once the link is back.
sched_lost() { grep -c "agent wide-agent disconnected" "$T/scheduler.log" || true; }
agent_lost() { grep -c "scheduler connection:" "$T/agent-w.log" || true; }
target_rows() { sqlite3 "$DST_DB" "SELECT count(*) FROM wide_all" 2>/dev/null || echo 0; }
s0=$(sched_lost) a0=$(agent_lost)
started=$(date +%s)
dxctl run wide >/dev/null
part_delivered() { [ "$(target_rows)" -ge $(( ROWS / 5 )) ]; }
wait_for 60 "the load to deliver a fifth of the rows" part_delivered
[ "$(target_rows)" -lt "$ROWS" ] || fail "the load finished before the outage could start"
kill -USR1 "$BRIDGE"
cut_at=$(date +%s%N)
echo "outage from $(target_rows) of $ROWS rows"
noticed() { [ "$(sched_lost)" -gt "$s0" ] && [ "$(agent_lost)" -gt "$a0" ]; }
wait_for $(( OUTAGE_S + 5 )) "both sides to notice the outage" noticed
# When each side noticed, from its own log line (local time of day, milliseconds).
noticed_after_ms() {
  python3 - "$1" "$2" "$cut_at" <<'PY'
import datetime, re, sys
path, pattern, cut_ns = sys.argv[1], sys.argv[2], int(sys.argv[3])
cut = datetime.datetime.fromtimestamp(cut_ns / 1e9)
for line in open(path, encoding="utf-8", errors="replace"):
    if pattern in line:
        t = datetime.datetime.combine(cut.date(), datetime.time.fromisoformat(line[:12]))
        if t >= cut - datetime.timedelta(seconds=1):
            print(int((t - cut).total_seconds() * 1000))
            break
PY
}
sched_ms=$(noticed_after_ms "$T/scheduler.log" "agent wide-agent disconnected")
agent_ms=$(noticed_after_ms "$T/agent-w.log" "scheduler connection:")
limit_ms=$(( 3 * HEARTBEAT_S * 1000 + 1000 ))
[ -n "$sched_ms" ] && [ "$sched_ms" -le "$limit_ms" ] ||
  fail "the scheduler noticed the outage after ${sched_ms:-?} ms (heartbeat ${HEARTBEAT_S} s)"
[ -n "$agent_ms" ] && [ "$agent_ms" -le "$limit_ms" ] ||
  fail "the agent noticed the outage after ${agent_ms:-?} ms (heartbeat ${HEARTBEAT_S} s)"
pass "outage noticed by the scheduler after $sched_ms ms and by the agent after $agent_ms ms (three heartbeats: $((3 * HEARTBEAT_S)) s)"
# The outage lasts OUTAGE_S in all.
rest_ms=$(( OUTAGE_S * 1000 - ($(date +%s%N) - cut_at) / 1000000 ))
[ "$rest_ms" -le 0 ] || sleep "$(awk -v ms="$rest_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
kill -USR2 "$BRIDGE"
load_done() {
  [ "$(target_rows)" = "$ROWS" ] && [ "$(last_run_field wide status)" = succeeded ]
}
wait_for 120 "the load to complete after the outage" load_done
check "load over 300 ms RTT, 2 % loss, 2 Mbit/s with a ${OUTAGE_S} s outage, $(( $(date +%s) - started )) s in all"

# 2. Rows changed and added: an incremental run over the slow link.
$GEN update sqlite --rows "$ROWS" | sqlite3 -bail "$SRC_DB" >/dev/null
next_second   # the changes are stamped now; a run takes rows stamped before its start
started=$(date +%s)
RUN_TIMEOUT=120 run_and_wait wide
[ "$RUN_RC" = 0 ] || fail "incremental run over the slow link: $(run_field status) $(run_field error)"
check "incremental run of $(run_field rows) changed rows in $(( $(date +%s) - started )) s ($(run_field bytes) bytes)"
kill "$BRIDGE"; wait "$BRIDGE" 2>/dev/null || true
cat "$T/bridge.log"
