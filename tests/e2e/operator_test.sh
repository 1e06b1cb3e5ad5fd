#!/usr/bin/env bash
# What a new operator trips on: the certificate script and that the certificate must name the
# address agents dial; a tables-only agent without a files section; a SQLite target in a
# missing directory; whole error messages (dxctl subscriptions --wide, dxctl describe);
# dxctl wait (caught up, its exit codes, and a scheduler restart while waiting).
source "$(dirname "$0")/harness.sh"
harness_init operator

# make-cert.sh: usage errors, the names in the certificate, the key's mode, no overwrite.
set +e
bash "$ROOT/scripts/make-cert.sh" -o "$T/c" >/dev/null 2>&1; rc_none=$?
bash "$ROOT/scripts/make-cert.sh" -o "$T/tls" 127.0.0.1 >/dev/null 2>&1; rc_exists=$?
set -e
[ $rc_none = 2 ] || fail "make-cert.sh without an address exited $rc_none"
[ $rc_exists = 2 ] || fail "make-cert.sh overwrote an existing certificate (exit $rc_exists)"
bash "$ROOT/scripts/make-cert.sh" -q -o "$T/wrong" dx.example.invalid
openssl x509 -in "$T/tls.crt" -noout -ext subjectAltName | grep -q "IP Address:127.0.0.1" || fail "no IP in the certificate"
[ "$(stat -c %a "$T/tls.key")" = 600 ] || fail "the key is not 0600"
pass "make-cert.sh: names the addresses, key 0600, refuses to overwrite or to run without an address"

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 2000 --sqlite "$SRC"
write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"
start_scheduler
write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"   # same ports on restart
write_student_manifest "$(sqlite_conn "$SRC")" "realtime 1s"
dxctl apply -f "$T/manifest.yaml" >/dev/null

# An agent whose scheduler certificate names another address refuses it.
start_agent wrong 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/wrong.db")"
sed -i "s#^tls: .*#tls: {ca: $T/wrong.crt}#" "$T/agent-wrong.yaml"
kill_agent wrong; restart_agent wrong
wait_for 20 "the agent to refuse a certificate for another address" grep -q "certificate does not verify" "$T/agent-wrong.log"
kill_agent wrong
pass "a certificate that does not name the dialled address is refused by the agent"

# A SQLite target in a directory that does not exist: the agent says so and exits 2.
start_agent missing 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/no/such/dir/a.db")"
kill_agent missing   # run it again in the foreground: it must exit by itself
set +e; timeout 10 "$AGENT_BIN" -c "$T/agent-missing.yaml" >"$T/agent-missing.log" 2>&1; rc=$?; set -e
[ $rc = 2 ] || fail "the agent with a missing database directory exited $rc (124: still retrying after 10 s)"
grep -q "key 'target.connection': the directory '$T/no/such/dir' of the SQLite database does not exist" "$T/agent-missing.log" ||
  fail "message: $(cat "$T/agent-missing.log")"
pass "missing SQLite directory: exit 2, '$(tail -1 "$T/agent-missing.log")'"

# A tables-only agent: no files section at all.
start_agent a 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
sed -i '/^files:/d' "$T/agent-a.yaml"
kill_agent a; restart_agent a
wait_for 20 "agent a online" agent_online 徐汇区教育局
grep -q "takes tables only" "$T/agent-a.log" || fail "the agent did not say it takes tables only"
dxctl wait sub-a --timeout 30 >/dev/null || fail "sub-a did not catch up: $(last_run_field sub-a error)"
[ "$(digest_sqlite "$SRC" "SELECT $SUB_A_COLS FROM student WHERE $SUB_A_WHERE ORDER BY id")" = \
  "$(digest_sqlite "$T/a.db" "SELECT $SUB_A_COLS FROM student ORDER BY id")" ] || fail "tables-only agent: rows differ"
mkdir -p "$T/provider"; echo "第1课" >"$T/provider/a.txt"
cat >"$T/files.yaml" <<YAML
kind: FileResource
name: 市教委-教学资源文件
provider: 市教委教研室
summary: 教学课件
share_type: unconditional
topic: institution
directory: $T/provider
---
kind: Subscription
name: files-a
agent: 徐汇区教育局
entry: 市教委-教学资源文件
target_path: 教学资源
YAML
dxctl apply -f "$T/files.yaml" >/dev/null
dxctl run files-a --wait >/dev/null && fail "a file reached an agent without a shared root"
last_run_field files-a error | grep -q "this agent takes no files: its config has no files.shared_root" ||
  fail "file run error: $(last_run_field files-a error)"
pass "tables-only agent: starts without a files section, delivers tables, refuses files with '$(last_run_field files-a error)'"

# dxctl wait: a change made before the call is at the agent when it returns 0.
sqlite3 "$SRC" "UPDATE student SET name = '诸葛' || name, updatetime = datetime('now', 'localtime') WHERE id IN (SELECT id FROM student WHERE $SUB_A_WHERE LIMIT 3)"
next_second
dxctl wait sub-a --timeout 30 || fail "dxctl wait"
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM student WHERE name LIKE '诸葛%'")" = 3 ] || fail "dxctl wait returned before the change arrived"
pass "dxctl wait: returned once the change made before the call was at the agent"

# sub-c polls for an agent that never connects.
cat >"$T/sub-c.yaml" <<YAML
kind: Subscription
name: sub-c
agent: 浦东某中学
entry: 市教委-学生基本信息
columns: [id, name, updatetime]
target_table: student_c
schedule: realtime 1s
YAML
dxctl apply -f "$T/sub-c.yaml" >/dev/null
set +e
dxctl wait no-such-subscription --timeout 5 >/dev/null 2>&1; rc_unknown=$?
dxctl wait sub-b --timeout 5 >/dev/null 2>"$T/wait-b.err"; rc_manual=$?
dxctl wait sub-c --timeout 3 >/dev/null 2>"$T/wait-c.err"; rc_timeout=$?
set -e
[ $rc_unknown = 2 ] || fail "dxctl wait on an unknown subscription exited $rc_unknown"
[ $rc_manual = 2 ] || fail "dxctl wait on an idle manual subscription exited $rc_manual: $(cat "$T/wait-b.err")"
[ $rc_timeout = 1 ] || fail "dxctl wait past its timeout exited $rc_timeout: $(cat "$T/wait-c.err")"
pass "dxctl wait exit codes: unknown 2, idle manual 2 ('$(cat "$T/wait-b.err")'), timed out 1 ('$(cat "$T/wait-c.err")')"

# Whole error messages: a long error is cut in the table, whole with --wide and in describe.
sqlite3 "$SRC" "ALTER TABLE student RENAME COLUMN school_code TO school_code_renamed_by_the_provider"
dxctl run sub-a --wait >/dev/null && fail "run after the rename succeeded"
err=$(dxctl --json describe sub-a | python3 -c "import json,sys; print(json.load(sys.stdin)['stopped_error'])")
[ ${#err} -gt 60 ] || fail "expected a long error: $err"
dxctl subscriptions | grep "^sub-a " | grep -q "\.\.\.$" || fail "the table did not shorten the error"
dxctl subscriptions --wide | grep "^sub-a " | grep -qF "$err" || fail "--wide does not show the whole error"
dxctl describe sub-a | grep -qF "stopped by:     $err" || fail "describe does not show the whole error: $(dxctl describe sub-a)"
set +e; dxctl wait sub-a --timeout 5 >/dev/null 2>&1; rc_stopped=$?; set -e
[ $rc_stopped = 3 ] || fail "dxctl wait on a stopped subscription exited $rc_stopped"
pass "long errors: shortened in the table, whole in --wide and describe; dxctl wait on a stopped subscription exits 3"
dxctl describe sub-a

# dxctl wait outlives a scheduler restart.
sqlite3 "$SRC" "ALTER TABLE student RENAME COLUMN school_code_renamed_by_the_provider TO school_code"
dxctl apply -f "$T/manifest.yaml" >/dev/null   # resumes sub-a
kill_scheduler
sqlite3 "$SRC" "UPDATE student SET name = '司马' || name, updatetime = datetime('now', 'localtime') WHERE id IN (SELECT id FROM student WHERE $SUB_A_WHERE LIMIT 2)"
next_second
dxctl wait sub-a --timeout 60 >"$T/wait.out" 2>&1 &
WAITER=$!
wait_for 10 "dxctl wait to notice the scheduler is down" grep -q "retrying until the deadline" "$T/wait.out"
start_scheduler
wait "$WAITER" || fail "dxctl wait across a restart: $(cat "$T/wait.out")"
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM student WHERE name LIKE '司马%'")" = 2 ] || fail "wait returned before the change arrived"
pass "dxctl wait across a scheduler restart: '$(tail -1 "$T/wait.out")'"
