#!/usr/bin/env bash
# An operator disables, enables and removes agents (issue 9 item 5): disabling ends the
# agent's session at once and refuses its logins (the agent hears only "refused", the
# scheduler's log says why); enabling lets it back in and data flows again; an agent that
# still has subscriptions is not removed; a removed agent is disconnected and cannot log in;
# `disabled: true` in a manifest disconnects too; only the admin may do any of it.
source "$(dirname "$0")/harness.sh"
harness_init agent_control

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 2000 --sqlite "$SRC"
write_scheduler_config
start_scheduler
write_student_manifest "$(sqlite_conn "$SRC")"
printf -- '---\nkind: Agent\nname: spare-agent\nsecret: spare-secret-0003\n' >>"$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
A=徐汇区教育局
B=浦东某中学
offline() { ! agent_online "$1"; }
agent_field() {
  dxctl --json agents | python3 -c "import json,sys; a=[x for x in json.load(sys.stdin) if x['name']==sys.argv[1]]; print(a[0][sys.argv[2]] if a else 'absent')" "$1" "$2"
}
count() { grep -c -- "$2" "$1" || true; }

start_agent a "$A" agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online "$A"
dxctl run sub-a --wait >/dev/null
want=$(sqlite3 "$SRC" "SELECT count(*) FROM student WHERE $SUB_A_WHERE")
[ "$(sqlite3 "$T/a.db" 'SELECT count(*) FROM student')" = "$want" ] || fail "the first load did not arrive"
[ "$(agent_field "$A" disabled)" = False ] || fail "a new agent is listed as disabled"

# 1. Only the admin may disable, enable or remove; unknown names are exit 2.
dxctl org add "$SHARE_CONS" >/dev/null
make_user cons "$SHARE_CONS" consumer
expect_fail 4 "disable, enable or remove agent" as_user cons agent disable "$A"
expect_fail 4 "disable, enable or remove agent" as_user cons agent remove spare-agent
agent_online "$A" || fail "a refused disable disconnected the agent"
expect_fail 2 "no agent named 'nobody'" dxctl agent disable nobody
expect_fail 2 "no agent named 'nobody'" dxctl agent remove nobody
pass "a consumer is refused (exit 4); unknown agents are exit 2"

# 2. Disabling ends the session at once; its reconnects are refused while it stays disabled.
refusals_before=$(count "$T/agent-a.log" "scheduler refused this agent")
dxctl agent disable "$A" | grep -q "agent $A disabled" || fail "dxctl agent disable said nothing"
wait_for 5 "agent a disconnected after disable" offline "$A"
grep -q "disconnecting agent $A: the agent was disabled" "$T/scheduler.log" ||
  fail "the disconnection was not logged"
[ "$(agent_field "$A" disabled)" = True ] || fail "dxctl agents does not show the agent disabled"
dxctl agents | grep "$A" | grep -qw disabled || fail "the agents table does not say disabled"
refused_twice() { [ "$(count "$T/agent-a.log" "scheduler refused this agent: refused")" -ge $((refusals_before + 2)) ]; }
wait_for 15 "agent a's reconnects refused twice" refused_twice
grep -q "refused agent '$A' from 127.0.0.1: the agent is disabled" "$T/scheduler.log" ||
  fail "the scheduler's log does not say the agent is disabled"
grep -qi "disabled" "$T/agent-a.log" && fail "the agent was told more than \"refused\""
offline "$A" || fail "a disabled agent is online"
# Its refusals back off its name only: another agent at the same address logs in at once.
start_agent b "$B" agent-b-secret-0002 "$(sqlite_conn "$T/b.db")"
wait_for 20 "agent b online" agent_online "$B"
grep -q "refused agent '$B' .*backing off" "$T/scheduler.log" &&
  fail "the disabled agent's refusals held back another agent at the same address"
[ "$(count "$T/agent-a.log" "connected to scheduler")" = 1 ] || fail "a disabled agent got a session"
[ "$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM audit WHERE action='agent.disable' AND result='ok'")" = 1 ] ||
  fail "the disable was not audited"
pass "disable: disconnected within 5 s, reconnects refused (the agent hears \"refused\", the log says disabled), audited; another agent at its address not held back"

# 3. Enabling lets it back in, and a run delivers again.
dxctl agent enable "$A" >/dev/null
wait_for 20 "agent a online after enable" agent_online "$A"
[ "$(agent_field "$A" disabled)" = False ] || fail "still listed disabled after enable"
sqlite3 "$SRC" "UPDATE student SET name = name || '改', updatetime = datetime('now', 'localtime') WHERE id IN (SELECT id FROM student WHERE $SUB_A_WHERE ORDER BY id LIMIT 20)"
next_second
dxctl run sub-a --wait >/dev/null || fail "the run after enable failed"
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM student WHERE name LIKE '%改'")" = 20 ] ||
  fail "the changed rows did not arrive after enable"
pass "enable: the agent is back online and a run delivered the 20 changed rows"

# 4. An agent with subscriptions is not removed; the refusal names them.
expect_fail 4 "still has 1 subscription\\(s\\): sub-a; .*dxctl subscription remove" dxctl agent remove "$A"
agent_online "$A" || fail "a refused remove disconnected the agent"
[ "$(agent_field "$A" name)" = "$A" ] || fail "a refused remove deleted the agent"
pass "remove of an agent with subscriptions refused (exit 4), naming sub-a; nothing changed"

# 5. Removing an agent without subscriptions disconnects it; it cannot log in again.
start_agent s spare-agent spare-secret-0003 "$(sqlite_conn "$T/s.db")"
wait_for 20 "spare agent online" agent_online spare-agent
dxctl agent remove spare-agent | grep -q "agent spare-agent removed" || fail "dxctl agent remove said nothing"
gone() { [ "$(agent_field spare-agent name)" = absent ]; }
wait_for 5 "spare agent gone from the list" gone
grep -q "disconnecting agent spare-agent: the agent was removed" "$T/scheduler.log" ||
  fail "the removed agent was not disconnected"
wait_for 15 "the removed agent refused" grep -q "scheduler refused this agent: unknown agent or wrong secret" "$T/agent-s.log"
[ "$(count "$T/agent-s.log" "connected to scheduler")" = 1 ] || fail "a removed agent logged in again"
[ "$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM agents WHERE name='spare-agent'")" = 0 ] ||
  fail "the agent's row is still in the store"
expect_fail 2 "no agent named 'spare-agent'" dxctl agent remove spare-agent
kill_agent s
pass "remove: disconnected at once, row deleted, its logins refused as unknown"

# 6. `disabled: true` in a manifest disconnects; `disabled: false` lets it back.
printf 'kind: Agent\nname: %s\nsecret: agent-b-secret-0002\ndisabled: true\n' "$B" >"$T/b.yaml"
expect_fail 4 "disable, enable or remove agent" as_user cons apply -f "$T/b.yaml"
sed -i 's/^secret: agent-b-secret-0002$/secret: agent-b-secret-0002\ndisabled: true/' "$T/manifest.yaml"
grep -q "^disabled: true" "$T/manifest.yaml" || fail "the manifest edit did not happen"
agent_online "$B" || fail "a refused manifest disconnected agent b"
dxctl apply -f "$T/manifest.yaml" >/dev/null
wait_for 5 "agent b disconnected by its manifest" offline "$B"
grep -q "disconnecting agent $B: the agent was disabled" "$T/scheduler.log" ||
  fail "the manifest's disable was not logged"
wait_for 15 "agent b refused" grep -q "scheduler refused this agent: refused" "$T/agent-b.log"
[ "$(agent_field "$A" disabled)" = False ] || fail "re-applying the manifest changed agent a's flag"
sed -i 's/^disabled: true$/disabled: false/' "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
wait_for 20 "agent b online after disabled: false" agent_online "$B"
pass "manifest: disabled: true disconnected 浦东某中学 (a consumer may not), disabled: false let it back"
