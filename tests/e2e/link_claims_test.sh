#!/usr/bin/env bash
# The agent port against peers that know little or claim much (issue 9, review limits):
# someone who knows only an agent's name, failing from another address, does not lock that
# agent out (back-off per name and address, per address, and a rate-limited real check for a
# name); logged-in agents that start frames claiming 64 MiB and send 10 bytes cost the
# scheduler almost nothing (its buffers grow as bytes arrive).
source "$(dirname "$0")/harness.sh"
harness_init link_claims

write_scheduler_config
start_scheduler
for i in $(seq 1 6); do
  printf -- '---\nkind: Agent\nname: known-%d\nsecret: known-secret-%04d\n' "$i" "$i" >>"$T/manifest.yaml"
done
dxctl apply -f "$T/manifest.yaml" >/dev/null
PROBE="python3 $E2E_DIR/hello_probe.py $AGENTS_PORT"

# 1. A fresh scheduler (no secret verified yet). Someone knowing only the name fails four
# times from 127.0.9.1, each time the back-off lets it (0.5 + 1 + 2 s), so that the name would
# back off for 8 s.
failures=0
deadline=$((SECONDS + 30))
while [ $failures -lt 4 ]; do
  [ $SECONDS -lt $deadline ] || fail "only $failures wrong secrets were checked in 30 s"
  out=$($PROBE 127.0.9.1 known-1 wrong-secret)
  case "$out" in
    *"wrong secret"*) failures=$((failures + 1)) ;;
    *"retry later"*) sleep 0.2 ;;  # backing off: the attacker waits, as a patient one would
    *) fail "unexpected answer to a wrong secret: $out" ;;
  esac
done
# The attacker's own address (and the pair) is still backing off...
out=$($PROBE 127.0.9.1 known-1 wrong-secret)
[[ "$out" == "0 "*"retry later"* ]] || fail "the failing address was not backed off: $out"
# ...but the real agent, from an address that has not failed, gets in at its first try.
out=$($PROBE 127.0.9.2 known-1 known-secret-0001)
[[ "$out" == "1 "* ]] || fail "the real agent was locked out by another address's failures: $out"
pass "4 wrong secrets for known-1 from 127.0.9.1: that address backs off, the real agent from 127.0.9.2 gets in at once"
# A name under attack from many addresses is still protected: a real check for it is
# rate-limited (one per second), so a second fresh address right after is refused unchecked.
a=$($PROBE 127.0.9.3 known-2 wrong-secret)
b=$($PROBE 127.0.9.4 known-2 wrong-secret)
c=$($PROBE 127.0.9.5 known-2 wrong-secret)
[[ "$a" == *"wrong secret"* ]] || fail "first wrong secret for known-2: $a"
[[ "$b$c" == *"retry later"* ]] || fail "wrong secrets for one name from fresh addresses were all checked: $b / $c"
pass "wrong secrets for known-2 from fresh addresses: real checks rate-limited ($b / $c)"
echo "[$SECONDS s]"

# 2. Four logged-in agents each start a frame claiming 64 MiB and send 10 bytes of it.
creds=()
for i in 3 4 5 6; do creds+=("known-$i:known-secret-000$i"); done
res=$(python3 "$E2E_DIR/claim_clients.py" "$AGENTS_PORT" "$SCHEDULER_PID" $((64 << 20)) 2 "${creds[@]}")
echo "claims: $res"
growth=$(sed 's/.*growth_kib=\([0-9-]*\).*/\1/' <<<"$res")
[[ "$res" == "logged_in=4 "* ]] || fail "the agents did not log in: $res"
[ "$growth" -lt $((16 << 10)) ] || fail "four 64 MiB claims grew the scheduler by $((growth >> 10)) MiB"
pass "four logged-in agents claiming 64 MiB frames (10 bytes sent): scheduler grew $((growth >> 10)) MiB"
kill -0 "$SCHEDULER_PID" || fail "the scheduler died"

# 3. A logged-in agent that trickles one byte of a frame every half second meets a deadline
# that only asks for some progress: the scheduler wants at least 1 KiB per heartbeat period
# (here 1 s) of a frame it has begun, measured over three periods, and drops it.
res=$(python3 "$E2E_DIR/trickle_client.py" "$AGENTS_PORT" known-1 known-secret-0001 0.5 12)
echo "trickle: $res"
[[ "$res" == closed_after_s=* ]] || fail "a peer trickling a byte every 0.5 s kept its link: $res"
secs=$(sed 's/closed_after_s=\([0-9]*\).*/\1/' <<<"$res")
[ "$secs" -le 9 ] || fail "the trickling peer was dropped only after $secs s: $res"
grep -q "known-1 disconnected: .*bytes of a frame" "$T/scheduler.log" ||
  fail "the drop of the trickling peer was not logged with its reason"
pass "a peer trickling one byte per 0.5 s was dropped after $secs s"
