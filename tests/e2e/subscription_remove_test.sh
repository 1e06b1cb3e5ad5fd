#!/usr/bin/env bash
# Removing a subscription (dxctl subscription remove), then its agent (dxctl agent remove),
# checked with sqlite3 on the scheduler's store and on the agent's database:
#  - refused while the subscription is active, for a consumer (admin only), and while it is
#    terminated but its agent (offline) has not confirmed the deletion of its rows: non-zero
#    exit, a message saying what to do, nothing changed;
#  - allowed for a terminated subscription that never ran, and for one whose agent confirmed
#    the deletion: its store rows go in one transaction, its run history stays (for the admin
#    only), it leaves `dxctl subscriptions`, and the dispatcher runs nothing for it any more;
#  - the agent that had subscriptions is refused removal (pointing to the new command) until
#    they are removed; then it is removed and disconnected at once;
#  - every removal and refusal is in the audit log, and the chain verifies.
source "$(dirname "$0")/harness.sh"
harness_init subscription_remove

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 3000 --sqlite "$SRC" >/dev/null
write_scheduler_config
start_scheduler
setup_sharing
apply_provider_source "$(sqlite_conn "$SRC")"
STU=市教委基础教育处-学生基本信息
student_entry_yaml "$STU" authorised 市教委数据中心 >"$T/stu.yaml"
dxctl apply -f "$T/stu.yaml" >/dev/null
consumer_agent_yaml 徐汇-lite agent-lite-secret-01 >"$T/agents.yaml"
as_user cons apply -f "$T/agents.yaml" >/dev/null
COLS=id,name,school_code,updatetime
APP=$(approved_application "$STU" "$COLS" district_code=310104)
subscribe() {  # subscribe NAME TABLE
  as_user cons subscribe "$1" --agent 徐汇-lite --entry "$STU" --application "$APP" \
    --columns "$COLS" --filter district_code=310104 --target-table "$2" --schedule "realtime 1s" >/dev/null
}
subscribe sub-a student_a
subscribe sub-b student_b
start_agent lite 徐汇-lite agent-lite-secret-01 "$(sqlite_conn "$T/lite.db")"
wait_for 20 "agent online" agent_online 徐汇-lite
for s in sub-a sub-b; do
  dxctl run "$s" --wait --timeout 30 >/dev/null || fail "run of $s failed: $(last_run_field "$s" error)"
done
# Subscribed after the agent is online but never run: paused (manual) at once.
as_user cons subscribe sub-never --agent 徐汇-lite --entry "$STU" --application "$APP" \
  --columns "$COLS" --filter district_code=310104 --target-table student_never >/dev/null
N=$(sqlite3 "$SRC" "SELECT count(*) FROM student WHERE district_code = '310104'")
lite_rows() { sqlite3 "$T/lite.db" "SELECT count(*) FROM $1" 2>/dev/null; }
[ "$(lite_rows student_a)" = "$N" ] && [ "$(lite_rows student_b)" = "$N" ] || fail "the subscriptions did not load"
store() { sqlite3 "$T/scheduler.db" "$1"; }
# The store's rows of SUBSCRIPTION (subscription, reconciliation state), and its runs.
store_rows() {
  store "SELECT (SELECT count(*) FROM subscriptions WHERE name = '$1') || ' ' ||
                (SELECT count(*) FROM reconcile_state WHERE subscription = '$1')"
}
store_runs() { store "SELECT count(*) FROM runs WHERE subscription = '$1'"; }
listed() { dxctl --json subscriptions | json_get "sorted(s['name'] for s in j)"; }
pass "three subscriptions of 徐汇-lite ($N rows in each of the two that ran)"

# --- refusals: nothing changes ---
expect_fail 4 "still has 3 subscription\(s\): sub-a, sub-b, sub-never.*dxctl subscription remove" \
  dxctl agent remove 徐汇-lite
dxctl reconcile sub-a --dry-run --wait --timeout 30 >/dev/null  # a reconciliation state row
[ "$(store_rows sub-a)" = "1 1" ] || fail "sub-a's reconciliation state is not in the store: $(store_rows sub-a)"
# Its definition and governance state (its schedule columns move with each realtime poll).
definition() {
  store "SELECT name, agent, entry, spec, status, application_id, halted_by, halt_reason,
                deletion_confirmed_at FROM subscriptions WHERE name = '$1'"
}
before=$(definition sub-a)
expect_fail 4 "subscription 'sub-a' is active: it must be terminated first .*dxctl terminate sub-a" \
  dxctl subscription remove sub-a
expect_fail 4 "not allowed|admin" as_user cons subscription remove sub-a
expect_fail 2 "no subscription named 'nobody'" dxctl subscription remove nobody
[ "$(definition sub-a)" = "$before" ] || fail "a refused removal changed sub-a's row"
[ "$(store_rows sub-a)" = "1 1" ] || fail "a refused removal changed the store: $(store_rows sub-a)"
[ "$(lite_rows student_a)" = "$N" ] || fail "a refused removal touched the agent's table"
[ "$(listed)" = "['sub-a', 'sub-b', 'sub-never']" ] || fail "listed: $(listed)"
pass "removal refused while active (exit 4, says to terminate first), for a consumer and for an unknown name; nothing changed"

# --- terminated while the agent is offline: not removable until the agent confirms ---
kill_agent lite
agent_offline() { ! agent_online "$1"; }
wait_for 20 "the agent offline" agent_offline 徐汇-lite
as_user cons terminate sub-a --reason "不再使用" >/dev/null
as_user cons terminate sub-never --reason "不再需要" >/dev/null
expect_fail 4 "terminated but agent '徐汇-lite' has not confirmed yet .*offline" dxctl subscription remove sub-a
[ "$(store_rows sub-a)" = "1 1" ] || fail "a refused removal changed the store: $(store_rows sub-a)"
[ "$(store "SELECT status FROM subscriptions WHERE name = 'sub-a'")" = terminated ] || fail "sub-a is not terminated"
[ "$(lite_rows student_a)" = "$N" ] || fail "the offline agent's table changed"
# One that never ran holds nothing at the agent: removable at once.
[ "$(store_runs sub-never)" = 0 ] || fail "sub-never ran"
dxctl subscription remove sub-never | grep -q "subscription sub-never removed" || fail "sub-never was not removed"
[ "$(store_rows sub-never)" = "0 0" ] || fail "sub-never's rows remain: $(store_rows sub-never)"
pass "terminated with its agent offline: removal refused (the deletion is not confirmed); a terminated subscription that never ran is removed"

# --- the agent comes back, deletes and confirms: removable ---
restart_agent lite
wait_for 30 "the agent to confirm the deletion of sub-a" deletion_confirmed sub-a
[ "$(sqlite3 "$T/lite.db" "SELECT count(*) FROM sqlite_master WHERE name = 'student_a'")" = 0 ] ||
  fail "the terminated subscription's table is still at the agent"
runs_a=$(store_runs sub-a)
[ "$runs_a" -ge 2 ] || fail "sub-a's runs: $runs_a"
dxctl subscription remove sub-a | grep -q "subscription sub-a removed" || fail "sub-a was not removed"
[ "$(store_rows sub-a)" = "0 0" ] || fail "sub-a's rows remain: $(store_rows sub-a)"
[ "$(store "SELECT count(*) FROM delivered_files WHERE subscription = 'sub-a'") $(store "SELECT count(*) FROM file_failures WHERE subscription = 'sub-a'")" = "0 0" ] ||
  fail "sub-a's file records remain"
[ "$(listed)" = "['sub-b']" ] || fail "listed after the removals: $(listed)"
expect_fail 2 "no subscription named 'sub-a'" dxctl describe sub-a
expect_fail 2 "no subscription named 'sub-a'" dxctl run sub-a
# The run history stays, for the admin only (the consumer no longer sees the subscription).
[ "$(dxctl --json runs -s sub-a -n 100 | json_get 'len(j)')" = "$runs_a" ] || fail "the admin cannot read sub-a's run history"
[ "$(as_user cons --json runs -s sub-a -n 100 | json_get 'len(j)')" = 0 ] || fail "the consumer reads a removed subscription's runs"
# The dispatcher runs nothing for it: no run, no deletion instruction (ten ticks and a second
# of its former realtime schedule).
deletes_a() { dxctl --json audit --what subscription.delete --target sub-a -n 1000 | json_get 'len(j)'; }
deletes_before=$(deletes_a)
sleep 1.5
[ "$(store_runs sub-a)" = "$runs_a" ] || fail "the dispatcher ran the removed subscription"
[ "$(deletes_a)" = "$deletes_before" ] || fail "the dispatcher kept telling the agent to delete sub-a"
dxctl run sub-b --wait --timeout 30 >/dev/null || fail "sub-b no longer runs"
[ "$(lite_rows student_b)" = "$N" ] || fail "the other subscription's table changed"
pass "confirmed by the agent: sub-a removed ($runs_a runs kept for the admin), gone from the list, runs nothing; sub-b still runs"

# --- the last subscription, then the agent ---
expect_fail 4 "still has 1 subscription\(s\): sub-b" dxctl agent remove 徐汇-lite
as_user cons terminate sub-b --reason "更换前置机" >/dev/null
wait_for 30 "the agent to confirm the deletion of sub-b" deletion_confirmed sub-b
dxctl subscription remove sub-b >/dev/null
[ "$(listed)" = "[]" ] || fail "listed: $(listed)"
dxctl agent remove 徐汇-lite | grep -q "agent 徐汇-lite removed" || fail "the agent was not removed"
[ "$(store "SELECT count(*) FROM agents WHERE name = '徐汇-lite'")" = 0 ] || fail "the agent's row remains"
[ "$(dxctl --json agents | json_get 'len(j)')" = 0 ] || fail "the agent is still listed"
grep -q "disconnecting agent 徐汇-lite: the agent was removed" "$T/scheduler.log" ||
  fail "the removed agent was not disconnected"
wait_for 15 "the removed agent refused" grep -q "scheduler refused this agent: unknown agent or wrong secret" "$T/agent-lite.log"
pass "with its subscriptions removed the agent is removed and disconnected at once"

# --- audited ---
audit=$(dxctl --json audit --what subscription.remove -n 100 | json_get "[(r['actor'], r['target'], r['result'].split(':')[0]) for r in j]")
for want in "('operator', 'subscription/sub-a', 'refused')" "('cons', 'subscription/sub-a', 'refused')" \
  "('operator', 'subscription/sub-never', 'ok')" "('operator', 'subscription/sub-a', 'ok')" \
  "('operator', 'subscription/sub-b', 'ok')"; do
  echo "$audit" | grep -qF "$want" || fail "not in the audit log: $want (it has $audit)"
done
dxctl audit-verify >/dev/null || fail "the audit chain does not verify"
pass "every removal and refusal is in the audit log; the chain verifies"
