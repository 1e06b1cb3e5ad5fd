#!/usr/bin/env bash
# Agent identity on the link (issue 9): a second login with the same name and secret is
# refused and the first session kept (only it receives data); changing an agent's secret ends
# its session at once; a wrong-secret storm is backed off (guesses actually checked per second
# measured and bounded) and its refusals are rate-limited in the log; unknown and known names
# take the same time to refuse; a 10 MB name and a name with a newline never reach a log line
# or the audit log as they are.
source "$(dirname "$0")/harness.sh"
harness_init link_identity

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 2000 --sqlite "$SRC"
write_scheduler_config
start_scheduler
write_student_manifest "$(sqlite_conn "$SRC")"
sed -i '/filter: \[{column: district_code, op: "=", value: "310104"}\]/d' "$T/manifest.yaml"
for i in $(seq 1 16); do
  printf -- '---\nkind: Agent\nname: known-%d\nsecret: known-secret-%04d\n' "$i" "$i" >>"$T/manifest.yaml"
done
dxctl apply -f "$T/manifest.yaml" >/dev/null
PROBE="python3 $E2E_DIR/hello_probe.py $AGENTS_PORT"

# 1. One live session per agent: the second login is refused, the first kept.
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局
start_agent a2 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a2.db")"
wait_for 20 "the duplicate refused" grep -q "is already connected" "$T/agent-a2.log"
grep -q "already connected from 127.0.0.1" "$T/scheduler.log" || fail "the duplicate login was not logged"
dxctl run sub-a --wait >/dev/null
[ "$(sqlite3 "$T/a.db" 'SELECT count(*) FROM student')" = 2000 ] || fail "the first session did not get the load"
[ ! -s "$T/a2.db" ] || [ -z "$(sqlite3 "$T/a2.db" "SELECT name FROM sqlite_master WHERE name='student'")" ] ||
  fail "the duplicate agent received data"
[ "$(grep -c 'connected to scheduler' "$T/agent-a.log")" = 1 ] || fail "the first session was replaced"
pass "a second login as 徐汇区教育局 refused; the first session kept and alone received the load"
echo "[$SECONDS s]"
kill_agent a2

# 1b. Session credentials: the first login checked the secret (PBKDF2); after a scheduler
# restart the agent comes back on the credential it was given (a keyed hash, no PBKDF2).
grep -q "agent 徐汇区教育局 connected from 127.0.0.1:[0-9]* (sqlite; secret)" "$T/scheduler.log" ||
  fail "the first login was not logged as checked by its secret"
kill_scheduler
write_scheduler_config  # the same ports again
start_scheduler
wait_for 30 "agent a back after the restart" agent_online 徐汇区教育局
grep -q "agent 徐汇区教育局 connected from 127.0.0.1:[0-9]* (sqlite; session credential)" "$T/scheduler.log" ||
  fail "after the restart the agent did not log in on its session credential: $(grep 'connected from' "$T/scheduler.log")"
[ "$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM agent_sessions WHERE agent='徐汇区教育局' AND length(credential)=64")" = 1 ] ||
  fail "the store does not hold the agent's session credential"
pass "after a scheduler restart the agent logged in on its session credential"

# 2. A changed secret ends the session at once (and voids the session credential: the agent
# still presents it, with its old secret, and is refused).
sed -i 's/secret: agent-a-secret-0001/secret: agent-a-secret-CHANGED/' "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
offline() { ! agent_online 徐汇区教育局; }
wait_for 5 "agent a disconnected after its secret changed" offline
grep -q "disconnecting agent 徐汇区教育局: its secret changed" "$T/scheduler.log" ||
  fail "the disconnection was not logged"
wait_for 10 "agent a refused with the old secret" grep -q "unknown agent or wrong secret" "$T/agent-a.log"
pass "changing the secret disconnected the agent at once; the old secret is refused"
echo "[$SECONDS s]"
kill_agent a

# 3. A wrong-secret storm from one address is backed off; its refusals are rate-limited.
before=$(grep -c "refused agent" "$T/scheduler.log" || true)
storm=$($PROBE 127.0.5.1 --storm 6 浦东某中学 wrong-secret)
after=$(grep -c "refused agent" "$T/scheduler.log" || true)
checked=$(sed 's/.*checked=\([0-9]*\).*/\1/' <<<"$storm")
attempts=$(sed 's/.*attempts=\([0-9]*\).*/\1/' <<<"$storm")
echo "storm: $storm; log lines $((after - before))"
[ "$checked" -le 6 ] || fail "$checked wrong secrets were checked in 6 s ($storm)"
[ $((after - before)) -le 5 ] || fail "$((after - before)) log lines for one storm of $attempts attempts"
pass "wrong-secret storm: $attempts attempts, $checked checked ($(echo "scale=2; $checked / 6" | bc) guesses/s), $((after - before)) log lines"

# 4. Unknown and known names take the same time to refuse (each name once, from its own
# address, so no back-off is involved; known and unknown interleaved so that load on the
# machine affects both alike).
for i in $(seq 1 16); do printf 'known-%d\nnobody-%d\n' "$i" "$i"; done >"$T/names.txt"
$PROBE 127.0.6. --names "$T/names.txt" wrong-secret >"$T/names.times"
paste "$T/names.txt" "$T/names.times" >"$T/timing.txt"
grep -vq "wrong secret" "$T/names.times" && fail "unexpected answers: $(cat "$T/names.times")"
verdict=$(python3 - "$T/timing.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
# The lower quartile: robust against other work on a shared machine.
k = statistics.quantiles([float(r[2]) for r in rows if r[0].startswith("known")], n=4)[0]
u = statistics.quantiles([float(r[2]) for r in rows if r[0].startswith("nobody")], n=4)[0]
ratio = max(k, u) / min(k, u)
print("known=%.4f unknown=%.4f ratio=%.2f %s" % (k, u, ratio, "same" if ratio < 1.5 else "DIFFERENT"))
PY
)
[[ "$verdict" == *same ]] || fail "refusal time tells names apart: $verdict ($(cat "$T/timing.txt"))"
pass "refusal time: $verdict"
echo "[$SECONDS s]"

# 5. A 10 MB name and a name with a newline never reach the log or the audit as they are.
$PROBE 127.0.8.1 "@10485760" secret >"$T/huge.out"
grep -q '^0 ' "$T/huge.out" || fail "a Hello with a 10 MB name was not refused: $(cat "$T/huge.out")"
$PROBE 127.0.8.2 'evil\nFORGED LOG LINE' secret >"$T/newline.out"
$PROBE 127.0.8.3 "@300" secret >"$T/long.out"
grep -q "^FORGED" "$T/scheduler.log" && fail "a newline in an agent name forged a log line"
grep -q 'evil\\x0aFORGED LOG LINE' "$T/scheduler.log" || fail "the newline name was not logged escaped"
longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$T/scheduler.log")
[ "$longest" -lt 1000 ] || fail "a log line of $longest characters"
audit_max=$(sqlite3 "$T/scheduler.db" "SELECT max(length(actor) + length(target) + length(result)) FROM audit")
audit_nl=$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM audit WHERE instr(actor, char(10)) OR instr(target, char(10)) OR instr(result, char(10))")
[ "$audit_max" -lt 1000 ] || fail "an audit record of $audit_max characters"
[ "$audit_nl" = 0 ] || fail "$audit_nl audit records hold a newline"
pass "10 MB and newline names: escaped and cut (longest log line $longest, audit fields $audit_max characters, no newline)"
