#!/usr/bin/env bash
# One agent stopped (SIGSTOP) while a table run and a file run wait on it: the other agents'
# table and file runs complete, and the admin API (dxctl agents, runs, subscriptions,
# /healthz) answers within a generous bound (2 s each, measured and asserted) the whole time.
# After SIGCONT the stopped agent's runs complete with exactly the source's rows and files.
source "$(dirname "$0")/harness.sh"
harness_init sigstop

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 20000 --sqlite "$SRC"
mkdir -p "$T/files"
for i in $(seq 1 200); do random_file "$T/files/d$((i % 10))/f$i.bin" 2000; done
backdate "$T/files"

# A long heartbeat: the stopped agent stays "online" for the whole test, so its runs really
# wait on it (instead of failing when its session is dropped).
write_scheduler_config "safety_lag_s: 0, batch_rows: 200, window: 2, workers: 4, retry_max_s: 2"
sed -i 's/^heartbeat_s: 1$/heartbeat_s: 60/' "$T/scheduler.yaml"
start_scheduler
cat >"$T/manifest.yaml" <<YAML
kind: Source
name: src
connection: "$(sqlite_conn "$SRC")"
---
kind: CatalogEntry
name: 市教委-学生基本信息
provider: 市教委基础教育处
summary: 学生
share_type: unconditional
topic: student
source: src
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true}
  - {item: 姓名, column: name, type: varchar(30), not_null: true}
  - {item: 区代码, column: district_code, type: varchar(6)}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
---
kind: FileResource
name: 市教委-教学资源文件
provider: 市教委教研室
summary: 教学资源
share_type: unconditional
topic: institution
directory: $T/files
---
YAML
for x in a b c; do
  cat >>"$T/manifest.yaml" <<YAML
kind: Agent
name: agent-$x
secret: agent-$x-secret-0001
---
kind: Subscription
name: table-$x
agent: agent-$x
entry: 市教委-学生基本信息
columns: [id, name, district_code, updatetime]
target_table: student
schedule: manual
---
kind: Subscription
name: files-$x
agent: agent-$x
entry: 市教委-教学资源文件
target_path: 资源
schedule: manual
---
YAML
done
sed -i '$ d' "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
for x in a b c; do
  start_agent "$x" "agent-$x" "agent-$x-secret-0001" "$(sqlite_conn "$T/$x.db")" "$T/shared-$x"
done
for x in a b c; do wait_for 20 "agent-$x online" agent_online "agent-$x"; done

# Agent a stops answering; its table and file runs start and wait on it.
kill -STOP "${AGENT_PIDS[a]}"
dxctl run table-a >/dev/null
dxctl run files-a >/dev/null
running() {
  [ "$(dxctl --json runs -s "$1" -n 1 | json_get "j[0]['status'] if j else ''")" = running ]
}
wait_for 20 "table-a's run under way" running table-a
wait_for 20 "files-a's run under way" running files-a
pass "agent a stopped (SIGSTOP) with a table run and a file run waiting on it"

# The admin API answers quickly while those runs wait (asserted: 2 s each).
timed() {  # timed WHAT COMMAND...: runs COMMAND, fails when it takes 2 s or more
  local what=$1 start end ms; shift
  start=$(date +%s%N)
  "$@" >/dev/null || fail "$what failed"
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  [ "$ms" -lt 2000 ] || fail "$what took ${ms} ms while agent a is stopped"
  MAX_MS=$(( ms > MAX_MS ? ms : MAX_MS ))
}
MAX_MS=0
probe() {
  timed "dxctl agents" dxctl agents
  timed "dxctl runs" dxctl runs -n 50
  timed "dxctl subscriptions" dxctl subscriptions
  timed "/healthz" curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz"
}
probe

# The other agents' runs complete meanwhile (the stopped agent's runs hold two of 4 workers).
for x in b c; do
  run_and_wait "table-$x"
  [ "$RUN_RC" = 0 ] || fail "table-$x did not complete while agent a is stopped: $RUN"
  probe
  run_and_wait "files-$x"
  [ "$RUN_RC" = 0 ] || fail "files-$x did not complete while agent a is stopped: $RUN"
  probe
done
src=$(digest_sqlite "$SRC" "SELECT id, name, district_code, updatetime FROM student ORDER BY id")
for x in b c; do
  [ "$(digest_sqlite "$T/$x.db" "SELECT id, name, district_code, updatetime FROM student ORDER BY id")" = "$src" ] ||
    fail "agent $x's table differs from the source"
  [ "$(tree_digest "$T/shared-$x/资源")" = "$(tree_digest "$T/files")" ] ||
    fail "agent $x's files differ from the source"
done
running table-a || fail "table-a's run ended while agent a was stopped"
running files-a || fail "files-a's run ended while agent a was stopped"
pass "agents b and c received their tables and files while agent a was stopped; slowest admin answer ${MAX_MS} ms"

# Agent a resumes: its runs complete, identical.
kill -CONT "${AGENT_PIDS[a]}"
done_ok() { [ "$(dxctl --json runs -s "$1" -n 1 | json_get "j[0]['status'] if j else ''")" = succeeded ]; }
wait_for 60 "table-a's run to complete" done_ok table-a
wait_for 60 "files-a's run to complete" done_ok files-a
[ "$(digest_sqlite "$T/a.db" "SELECT id, name, district_code, updatetime FROM student ORDER BY id")" = "$src" ] ||
  fail "agent a's table differs from the source after SIGCONT"
[ "$(tree_digest "$T/shared-a/资源")" = "$(tree_digest "$T/files")" ] ||
  fail "agent a's files differ from the source after SIGCONT"
pass "agent a resumed: its table and file runs completed, identical"
