#!/usr/bin/env bash
# Bad input gets a clear error and changes nothing: bad configs exit 2 naming file, line and
# key; a bad manifest applies nothing; a wrong secret or an old protocol is refused and logged;
# a conflicting target table stops its subscription and stays untouched; a batch the target
# refuses is refused whole; an unreachable source is retried and never advances the watermark.
source "$(dirname "$0")/harness.sh"
harness_init bad_input

# Bad configs.
printf 'admin: {token: long-enough-token-0123}\nexchange:\n  window: 0\n' >"$T/bad.yaml"
set +e
out=$("$SCHEDULER_BIN" -c "$T/bad.yaml" 2>&1); rc=$?
set -e
[ $rc = 2 ] || fail "bad scheduler config exited $rc"
echo "$out" | grep -q "bad.yaml:3: key 'exchange.window': must be between 1 and 64" || fail "message: $out"
pass "bad scheduler config: exit 2, '$out'"
printf 'name: a\nsecret: s\nscheduler: 127.0.0.1:1\ntarget: {connection: x}\nreconnect: {max_ms: soon}\n' >"$T/bad-agent.yaml"
set +e
out=$("$AGENT_BIN" -c "$T/bad-agent.yaml" 2>&1); rc=$?
set -e
[ $rc = 2 ] && echo "$out" | grep -q "bad-agent.yaml:5: key 'reconnect.max_ms'" || fail "bad agent config: $rc $out"
pass "bad agent config: exit 2, '$out'"

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 3000 --sqlite "$SRC"
write_scheduler_config "safety_lag_s: 0, batch_rows: 100, window: 2, retry_min_s: 1, retry_max_s: 2"
start_scheduler
write_student_manifest "$(sqlite_conn "$SRC")"

# A bad manifest (the last document is wrong) applies nothing at all.
sed 's/schedule: manual$/schedule: every now and then/' "$T/manifest.yaml" >"$T/bad-manifest.yaml"
set +e
out=$(dxctl apply -f "$T/bad-manifest.yaml" 2>&1); rc=$?
set -e
[ $rc != 0 ] || fail "bad manifest accepted"
echo "$out" | grep -q "bad-manifest.yaml:[0-9]*: key 'schedule': bad schedule 'every now and then'" || fail "message: $out"
[ "$(dxctl --json catalog)" = "[]" ] || fail "a bad manifest left catalog entries behind"
pass "bad manifest: exit $rc, '$out', nothing applied"
dxctl apply -f "$T/manifest.yaml" >/dev/null

# A wrong secret is refused and logged; the agent stays offline.
start_agent wrong 徐汇区教育局 not-the-right-secret "$(sqlite_conn "$T/wrong.db")"
wait_for 20 "refusal logged" grep -q "refused agent '徐汇区教育局'.*wrong secret" "$T/scheduler.log"
agent_online 徐汇区教育局 && fail "an agent with a wrong secret is online"
grep -q "scheduler refused this agent: unknown agent or wrong secret" "$T/agent-wrong.log" || fail "agent did not log the refusal"
kill_agent wrong
pass "wrong secret refused and logged on both sides"

# An agent of another protocol version is told so.
python3 - "$AGENTS_PORT" "$T/tls.crt" >"$T/proto.out" <<'PY'
import socket, ssl, struct, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
                    server_hostname="127.0.0.1")
payload = bytes([99]) + b"\x05agent"           # varint version 99, then anything
s.sendall(struct.pack("<I", len(payload) + 1) + bytes([1]) + payload)
head = s.recv(5)
body = b""
while len(body) < struct.unpack("<I", head[:4])[0] - 1:
    body += s.recv(4096)
print(body.decode("utf-8", "replace"))
PY
grep -q "agent speaks protocol version 99, scheduler speaks 1" "$T/proto.out" || fail "protocol mismatch: $(cat "$T/proto.out")"
pass "protocol version mismatch is refused with its reason"

# TLS: an agent that does not speak TLS is refused at the handshake; an agent that does not
# trust the scheduler's certificate refuses to send its secret.
start_agent plain 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/plain.db")"
sed -i "/^tls:/d" "$T/agent-plain.yaml"
kill_agent plain; restart_agent plain
wait_for 20 "plain agent refused" grep -q "TLS handshake with .* failed" "$T/scheduler.log"
agent_online 徐汇区教育局 && fail "a plain-TCP agent is online"
kill_agent plain
make_tls_cert "$T/other"
start_agent mistrust 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/mistrust.db")"
sed -i "s#^tls: .*#tls: {ca: $T/other.crt}#" "$T/agent-mistrust.yaml"
kill_agent mistrust; restart_agent mistrust
wait_for 20 "untrusted certificate refused" grep -q "certificate does not verify" "$T/agent-mistrust.log"
agent_online 徐汇区教育局 && fail "an agent that does not trust the scheduler is online"
kill_agent mistrust
pass "TLS: a plain agent and an agent distrusting the certificate are both kept out"

# A table of the consumer's own under the target's name: the run fails with a clear error and
# the table is untouched (the agent touches only tables it created for the subscription).
sqlite3 "$T/a.db" "CREATE TABLE student (id INTEGER PRIMARY KEY, name INTEGER, keep TEXT); INSERT INTO student VALUES (1, 7, 'mine');"
before=$(sqlite3 "$T/a.db" "SELECT * FROM student")
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局
dxctl run sub-a --wait >/dev/null && fail "run into a conflicting table succeeded"
err=$(last_run_field sub-a error)
echo "$err" | grep -q "target table 'student' exists but was not created by DX for subscription 'sub-a'" || fail "error: $err"
[ "$(sqlite3 "$T/a.db" "SELECT * FROM student")" = "$before" ] || fail "conflicting table was changed"
pass "conflicting target table: run failed with '$err', table untouched"

# A batch the target refuses is refused whole and the run records why: DX created the table,
# then the consumer added a rule of its own (a trigger) that the next batches break.
kill_agent a
rm -f "$T"/a.db*
restart_agent a
wait_for 20 "agent a online" agent_online 徐汇区教育局
dxctl run sub-a --wait >/dev/null || fail "first load: $(last_run_field sub-a error)"
sqlite3 "$T/a.db" "CREATE TRIGGER no_guo BEFORE UPDATE ON student WHEN NEW.name LIKE '%国%' BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: no 国'); END;"
seq_before=$(sqlite3 "$T/a.db" "SELECT batch_seq FROM dx_ledger")
# 250 rows change at the source; the 151st (in the second batch of 100) breaks the rule.
sqlite3 "$SRC" "UPDATE student SET name = name || '改', updatetime = datetime('now', 'localtime') WHERE id IN (SELECT id FROM student WHERE $SUB_A_WHERE ORDER BY id LIMIT 250);
  UPDATE student SET name = '王国' WHERE id = (SELECT id FROM student WHERE $SUB_A_WHERE ORDER BY id LIMIT 1 OFFSET 150)"
next_second
dxctl run sub-a --wait >/dev/null && fail "a refused batch did not fail the run"
err=$(last_run_field sub-a error)
echo "$err" | grep -q "agent refused batch $((seq_before + 2)).*no 国" || fail "error: $err"
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM student WHERE name LIKE '%改'")" = 100 ] || fail "a refused batch was partly written"
[ "$(sqlite3 "$T/a.db" "SELECT batch_seq FROM dx_ledger")" = $((seq_before + 1)) ] || fail "ledger moved past the refused batch"
pass "refused batch: whole batch refused, run says '$err'"

# An unreachable source: the run fails as unavailable, is retried with back-off, and the
# watermark does not move. (The refused row stays at the source: were it fixed first, a retry
# of the refused run could deliver it before the source goes away.)
sed -i "s#connection: \".*\"#connection: \"Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=$(free_port);Database=none;Uid=x\"#" "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
dxctl run sub-a --wait >/dev/null && fail "run against an unreachable source succeeded"
err=$(last_run_field sub-a error)
echo "$err" | grep -qi "cannot connect" || fail "error: $err"
last_run_is_retry() { [ "$(last_run_field sub-a trigger)" = retry ]; }
wait_for 20 "automatic retry" last_run_is_retry
[ "$(sqlite3 "$T/a.db" "SELECT batch_seq FROM dx_ledger")" = $((seq_before + 1)) ] || fail "watermark moved without a source"
pass "unreachable source: '$err', retried with back-off, watermark unchanged"
dxctl audit-verify
