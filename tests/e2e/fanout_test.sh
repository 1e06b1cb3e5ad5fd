#!/usr/bin/env bash
# Shared extraction (共享抽取, issue 9): the subscriptions of one catalog entry that are due
# together are served by one read of the source, each through its own columns, filter, masking,
# watermark and window.
#  - six subscribers of a PostgreSQL table (three on one district, one of them with fewer
#    columns, one with the same columns, filter and masking as another, so that its batches go
#    with the other's encoding; one on another district with a hashed name; one taking every
#    row into a PostgreSQL target, one taking every row unmasked as well, into SQLite) load
#    with one read: PostgreSQL's own counters show at most 2 x the table's rows read, where a
#    read per subscriber reads 6 x;
#  - each target holds exactly its rows, masked as approved, checked with sqlite3 and psql
#    against the source's rows masked by Python;
#  - a seventh subscriber (a school of the first district) whose agent comes late catches up
#    on its own; changes at the source then reach all seven;
#  - an agent stopped with SIGSTOP during a shared read leaves it after straggler_s: the others
#    get their rows while it is stopped; resumed, it catches up and holds exactly its rows.
#    Its s0 takes every row unmasked, as s3 does: the two share one batch, s0's (the first
#    member), which s3 must still get in full after s0 has left the read.
source "$(dirname "$0")/harness.sh"
harness_init fanout
start_postgres "$T"
ROWS=20000

python3 "$ROOT/scripts/gen_people.py" students "$ROWS" >"$T/students.tsv"
psql_dx -c "CREATE TABLE student (id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL,
  id_card CHAR(18), school_code VARCHAR(10), district_code VARCHAR(6), stage VARCHAR(10),
  birth DATE, gender INT, updatetime TIMESTAMP NOT NULL)"
psql_dx -c "\\copy student FROM '$T/students.tsv'"
psql_dx -c "CREATE DATABASE t3"
T3_CONN=${PG_CONN/Database=dx/Database=t3}
SCHOOL=$(psql_dx -At -c "SELECT school_code FROM student WHERE district_code = '310104'
  GROUP BY school_code ORDER BY count(*) DESC LIMIT 1")

# Small batches and one batch in flight, so that a stopped agent fills its window at once.
write_scheduler_config "safety_lag_s: 0, batch_rows: 200, window: 1, straggler_s: 1, retry_min_s: 1, retry_max_s: 2"
start_scheduler
setup_sharing
apply_provider_source "$PG_CONN"
STU=市教委基础教育处-学生基本信息
student_entry_yaml "$STU" authorised 市教委数据中心 >"$T/stu.yaml"
dxctl apply -f "$T/stu.yaml" >/dev/null
for i in 1 2 3 4 5; do
  [ "$i" = 1 ] || echo ---
  consumer_agent_yaml "fan-$i" "fan-agent-secret-000$i"
done >"$T/agents.yaml"
as_user cons apply -f "$T/agents.yaml" >/dev/null
KEY=$(masking_key_for "$SHARE_CONS")
COLS=id,name,id_card,school_code,district_code,stage,birth,updatetime
APP1=$(approved_application "$STU" "$COLS" district_code=310104 id_card=partial:3:4)
APP2=$(approved_application "$STU" "$COLS" district_code=310115 name=hash)
APP3=$(as_user cons --json app create --entry "$STU" --purpose 学籍统计 --scenario 全市汇总 \
  --columns "$COLS" --accept-agreement | json_get "j['id']")
as_user prov app provider-decision "$APP3" --approve --reason 最小够用 >/dev/null
dxctl app tech-review "$APP3" --result exists >/dev/null
as_user coord app coordinator-decision "$APP3" --approve --reason 同意 >/dev/null

start_agent 1 fan-1 fan-agent-secret-0001 "$(sqlite_conn "$T/t1.db")"
start_agent 2 fan-2 fan-agent-secret-0002 "$(sqlite_conn "$T/t2.db")"
start_agent 3 fan-3 fan-agent-secret-0003 "$T3_CONN"
start_agent 5 fan-5 fan-agent-secret-0005 "$(sqlite_conn "$T/t5.db")"
for i in 1 2 3 5; do wait_for 20 "agent fan-$i online" agent_online "fan-$i"; done

# One manifest (one transaction): the subscriptions are due in the same tick.
subscription() {  # NAME AGENT APP COLUMNS FILTER...
  local name=$1 agent=$2 app=$3 columns=$4 f filters=""; shift 4
  for f in "$@"; do
    filters+="${filters:+, }{column: ${f%%=*}, op: \"=\", value: \"${f#*=}\"}"
  done
  printf -- '---\nkind: Subscription\nname: %s\nagent: %s\nentry: %s\napplication: %s\n' \
    "$name" "$agent" "$STU" "$app"
  printf 'columns: [%s]\n' "$columns"
  [ -z "$filters" ] || printf 'filter: [%s]\n' "$filters"
  printf 'target_table: %s\nschedule: realtime 2s\n' "${TARGET:-student}"
}
{
  # Every row, unmasked, like s3: s0 (the first member of each read) and s3 share one batch.
  TARGET=student_all subscription s0 fan-5 "$APP3" "$COLS"
  subscription s1 fan-1 "$APP1" "$COLS" district_code=310104
  subscription s2 fan-2 "$APP2" "id,name,district_code,stage,updatetime" district_code=310115
  subscription s3 fan-3 "$APP3" "$COLS"
  subscription s4 fan-4 "$APP1" "$COLS" district_code=310104 "school_code=$SCHOOL"
  subscription s5 fan-5 "$APP1" "id,name,id_card,school_code,updatetime" district_code=310104
  # The same columns, filter and masking as s1 (a second table at fan-1): its batches are
  # equal to s1's and go with the same encoding.
  TARGET=student_copy subscription s6 fan-1 "$APP1" "$COLS" district_code=310104
} >"$T/subs.yaml"
psql_dx -c "SELECT pg_stat_reset()" >/dev/null
as_user cons apply -f "$T/subs.yaml" >/dev/null || fail "the subscriptions were not applied"
succeeded() { [ "$(last_run_field "$1" status)" = succeeded ]; }
for s in s0 s1 s2 s3 s5 s6; do wait_for 60 "the first run of $s" succeeded "$s"; done

# expected WHERE SPEC...: the source's rows as an agent must hold them, tab-separated, by id;
# SPEC is a column, or column=hash | column=partial:FIRST:LAST.
expected() {
  local where=$1 cols=() spec; shift
  for spec in "$@"; do cols+=("${spec%%=*}"); done
  psql_dx -At -F $'\t' -c "SELECT $(IFS=,; echo "${cols[*]}") FROM student WHERE $where ORDER BY id" |
    python3 "$ROOT/tests/e2e/mask_rows.py" "$KEY" "$@"
}
lite_rows() { sqlite3 -separator $'\t' "$T/t$1.db" "SELECT $2 FROM ${3:-student} ORDER BY id"; }
t3_rows() {
  psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U dx -d t3 -At -F $'\t' -c "SELECT $1 FROM student ORDER BY id"
}
D1="district_code = '310104'"
check_s1() { [ "$(lite_rows 1 "id,name,id_card,school_code,district_code,stage,birth,updatetime" | md5sum)" = \
  "$(expected "$D1" id name id_card=partial:3:4 school_code district_code stage birth updatetime | md5sum)" ]; }
check_s2() { [ "$(lite_rows 2 "id,name,district_code,stage,updatetime" | md5sum)" = \
  "$(expected "district_code = '310115'" id name=hash district_code stage updatetime | md5sum)" ]; }
check_s3() { [ "$(t3_rows "id,name,id_card,school_code,district_code,stage,birth,updatetime" | md5sum)" = \
  "$(expected "1 = 1" id name id_card school_code district_code stage birth updatetime | md5sum)" ]; }
check_s4() { [ "$(lite_rows 4 "id,name,id_card,school_code,district_code,stage,birth,updatetime" | md5sum)" = \
  "$(expected "$D1 AND school_code = '$SCHOOL'" id name id_card=partial:3:4 school_code district_code stage birth updatetime | md5sum)" ]; }
check_s6() { [ "$(lite_rows 1 "id,name,id_card,school_code,district_code,stage,birth,updatetime" student_copy | md5sum)" = \
  "$(expected "$D1" id name id_card=partial:3:4 school_code district_code stage birth updatetime | md5sum)" ]; }
check_s0() { [ "$(lite_rows 5 "id,name,id_card,school_code,district_code,stage,birth,updatetime" student_all | md5sum)" = \
  "$(expected "1 = 1" id name id_card school_code district_code stage birth updatetime | md5sum)" ]; }
check_s5() { [ "$(lite_rows 5 "id,name,id_card,school_code,updatetime" | md5sum)" = \
  "$(expected "$D1" id name id_card=partial:3:4 school_code updatetime | md5sum)" ]; }

# PostgreSQL's counters reach its statistics when the scheduler's sessions end.
kill_scheduler
sleep 1
read -r rows_read scans < <(psql_dx -At -F ' ' -c "SELECT coalesce(seq_tup_read,0) + coalesce(idx_tup_fetch,0),
  coalesce(seq_scan,0) + coalesce(idx_scan,0) FROM pg_stat_user_tables WHERE relname = 'student'")
echo "six subscribers' full loads read $rows_read rows in $scans scans at the source ($ROWS rows)"
[ "$rows_read" -le $((2 * ROWS)) ] ||
  fail "six subscribers' loads read $rows_read rows at the source (more than 2 x $ROWS): not one shared read"
for s in 0 1 2 3 5 6; do "check_s$s" || fail "subscriber s$s does not hold exactly its rows"; done
pass "one read of $rows_read rows served six subscribers, each holding exactly its rows (checked with sqlite3 and psql; masking per approval; s6 equal to s1, s0 to s3)"

write_scheduler_config "safety_lag_s: 0, batch_rows: 200, window: 1, straggler_s: 1, retry_min_s: 1, retry_max_s: 2"
# A dead link is noticed after three heartbeats (15 s here): the straggler leaves the read
# well before its agent is dropped.
sed -i 's/^heartbeat_s: 1$/heartbeat_s: 5/' "$T/scheduler.yaml"
start_scheduler
start_agent 4 fan-4 fan-agent-secret-0004 "$(sqlite_conn "$T/t4.db")"
wait_for 60 "the late subscriber's load" check_s4
pass "a subscriber whose agent came late caught up on its own ($(lite_rows 4 id | wc -l) rows of school $SCHOOL)"

next_second
psql_dx -c "UPDATE student SET stage = '高中', updatetime = now() WHERE id % 7 = 0"
for s in 0 1 2 3 4 5 6; do wait_for 60 "s$s to get the changes" "check_s$s"; done
pass "changes at the source reached all seven subscribers"

# A straggler: fan-5 stops taking batches during a shared read of many changed rows.
kill -STOP "${AGENT_PIDS[5]}"
next_second
psql_dx -c "UPDATE student SET stage = '中职', updatetime = now()"
t0=$(date +%s)
for s in 1 2 3 4 6; do wait_for 60 "s$s to get the changes while fan-5 is stopped" "check_s$s"; done
echo "the other five held every change $(($(date +%s) - t0)) s after it, fan-5 stopped"
check_s5 && fail "fan-5 holds the changes although it was stopped"
check_s0 && fail "fan-5 holds the changes in student_all although it was stopped"
grep -q "s5: left a shared read" "$T/scheduler.log" ||
  fail "the scheduler did not log that s5 left the shared read"
kill -CONT "${AGENT_PIDS[5]}"
wait_for 60 "the straggler to catch up" check_s5
wait_for 60 "the straggler's s0 to catch up" check_s0
pass "a stopped agent's subscribers left the shared read without holding the others back (s3 got the batch it shared with s0 in full), then caught up"

# The scheduler's counters (admin only) while nothing changes: the polls share source reads
# and announce nothing to the agents.
stats() {
  curl -sf -H "Authorization: Bearer $TOKEN" "$DX_SERVER/api/v1/stats" |
    json_get "j['polls'], j['source_reads'], j['announcements']" | tr -d '(),'
}
read -r polls0 reads0 ann0 < <(stats)
more_polls() { local p; read -r p _ _ < <(stats); [ "$p" -ge $((polls0 + 30)) ]; }
wait_for 60 "30 more polls" more_polls
read -r polls1 reads1 ann1 < <(stats)
polls=$((polls1 - polls0)); reads=$((reads1 - reads0)); announced=$((ann1 - ann0))
echo "quiet window: $polls polls in $reads source reads, $announced tables announced"
[ "$reads" -le $((polls / 2)) ] || fail "quiet polls did not share source reads: $polls polls, $reads reads"
[ "$announced" = 0 ] || fail "quiet polls announced $announced tables to agents"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$T/cons.token")" "$DX_SERVER/api/v1/stats")
[ "$code" = 403 ] || fail "a consumer read the scheduler's counters (HTTP $code)"
pass "GET /api/v1/stats: $polls quiet polls in $reads source reads, none announced; consumers are refused"
stop_all
