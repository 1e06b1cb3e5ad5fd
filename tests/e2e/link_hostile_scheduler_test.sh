#!/usr/bin/env bash
# A hostile or broken scheduler cannot take an agent down (issue 9): a zstd bomb, a batch whose
# rows x columns overflow, a FilePut and a FileOffer claiming 2^40 bytes, a frame header
# claiming 4 GiB and a flood of unsolicited acks are each refused; a frame claiming 64 MiB
# that brings 10 bytes costs the agent almost nothing (its buffer grows as bytes arrive); a
# frame trickled a byte at a time is dropped after three heartbeats; the agent stays up, dials
# again, and its RSS stays under RSS_BOUND_MB.
source "$(dirname "$0")/harness.sh"
harness_init link_hostile_scheduler
RSS_BOUND_MB=${DX_AGENT_RSS_MB:-300}

mkdir -p "$T/shared"
cat >"$T/agent-h.yaml" <<YAML
name: 徐汇区教育局
secret: agent-a-secret-0001
scheduler: 127.0.0.1:PORT
target: {connection: "$(sqlite_conn "$T/a.db")"}
files: {shared_root: "$T/shared"}
reconnect: {min_ms: 50, max_ms: 200}
YAML
# The fake needs the agent's pid to read its RSS: start the agent first, dialing a port that
# the fake then takes over (the agent retries until it answers).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/PORT/$port/" "$T/agent-h.yaml"
"$AGENT_BIN" -c "$T/agent-h.yaml" >>"$T/agent-h.log" 2>&1 &
AGENT_PIDS[h]=$!
python3 "$E2E_DIR/hostile_scheduler.py" "$T/fake.port" "${AGENT_PIDS[h]}" "$port" >"$T/fake.out" 2>"$T/fake.log" ||
  fail "the fake scheduler failed: $(tail -3 "$T/fake.log")"
cat "$T/fake.out"
field() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$T/fake.out"; }
[ -n "$(field alive 2)" ] || fail "the agent did not log in again after the attacks"
kill -0 "${AGENT_PIDS[h]}" || fail "the agent died"
[[ "$(field bomb 2)" == *"larger than allowed"* ]] || fail "zstd bomb: $(field bomb 2)"
[[ "$(field overflow 2)" == *"more cells than it holds"* ]] || fail "overflowing batch: $(field overflow 2)"
[[ "$(field fileput 2)" == *"1099511627776"* ]] || fail "2^40-byte FilePut: $(field fileput 2)"
[ "$(field offer 2)" != dropped ] || fail "2^40-byte FileOffer took the link down"
[ "$(field header 2)" = dropped ] || fail "a 4 GiB frame header was not refused"
[ "$(field acks 2)" = dropped ] || fail "unsolicited acks were not refused"
grep -q "frame of 4294967295 bytes" "$T/agent-h.log" || fail "the 4 GiB frame header was not logged"
# A byte every 0.5 s meets a deadline that only asks for progress; the agent wants 3 KiB of a
# begun frame per three heartbeats (here 1 s each).
[[ "$(field trickle 2)" == "dropped after "* ]] || fail "a scheduler trickling a frame: $(field trickle 2)"
[ "$(field trickle 2 | cut -d' ' -f3 | cut -d. -f1)" -le 9 ] ||
  fail "a scheduler trickling a frame was dropped only $(field trickle 2)"
grep -q "bytes of a frame in 3 s" "$T/agent-h.log" || fail "the agent did not log why it dropped the trickle"
[ "$(field claim 2)" -lt $((16 << 10)) ] ||
  fail "a frame claiming 64 MiB (10 bytes sent) grew the agent by $(($(field claim 2) >> 10)) MiB"
max=0
for n in bomb overflow fileput offer header acks claim trickle; do
  v=$(field $n 3); [ "$v" -gt "$max" ] && max=$v
done
v=$(field alive 2); [ "$v" -gt "$max" ] && max=$v
[ $((max / 1024)) -le "$RSS_BOUND_MB" ] || fail "agent RSS reached $((max / 1024)) MB (bound $RSS_BOUND_MB MB)"
pass "bomb, overflow, 2^40-byte FilePut and FileOffer, 4 GiB header, ack flood: each refused; a 64 MiB claim grew the agent $(($(field claim 2) >> 10)) MiB; a trickled frame $(field trickle 2); agent up, RSS at most $((max / 1024)) MB (bound $RSS_BOUND_MB MB)"
