#!/usr/bin/env bash
# Suspension and termination delete what the agent holds (附件一 第二条(四), 第九条(三)), checked
# with sqlite3, psql, mariadb and find, not DX's code:
#  - suspension: the SQLite agent drops the subscription's table and its records and confirms;
#    resumption reloads the table from scratch;
#  - termination of a file subscription: its files and the folders they leave empty go; the
#    consumer's own file in that folder, and another subscription's files, stay;
#  - termination while the MariaDB agent is offline: its table stays until it reconnects, then
#    goes, and the confirmation is recorded;
#  - kill -9 of the PostgreSQL agent mid-deletion (a consumer's lock holds the DROP back): the
#    next connection finishes; the consumer's view on the table makes PostgreSQL refuse the
#    drop, so the table is emptied instead; another subscription's table is untouched;
#  - the instruction and each confirmation are in the audit log and shown by dxctl describe.
source "$(dirname "$0")/harness.sh"
harness_init termination
start_postgres "$T"
start_mariadb "$T"

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 20000 --sqlite "$SRC" >/dev/null
mkdir -p "$T/files/课件/高一 数学" "$T/files/课件/高二 物理" "$T/files/视频" "$T/files/空目录/更深" "$T/files2/通知"
for i in $(seq 1 20); do echo "第${i}课" >"$T/files/课件/高一 数学/第${i}课.txt"; done
for i in $(seq 1 10); do echo "第${i}课" >"$T/files/课件/高二 物理/第${i}课.txt"; done
random_file "$T/files/视频/公开课.mp4" 3000000
for i in 1 2 3; do echo "通知 $i" >"$T/files2/通知/通知$i.txt"; done
write_scheduler_config
start_scheduler
setup_sharing
apply_provider_source "$(sqlite_conn "$SRC")"
STU=市教委基础教育处-学校学生名册
student_entry_yaml "$STU" unconditional 市教委数据中心 >"$T/stu.yaml"
file_entry() {  # file_entry NAME DIRECTORY
  cat <<YAML
kind: FileResource
name: $1
provider: $SHARE_PROV
summary: 教学资源文件
data_format: 文件
share_type: unconditional
security_level: 一级
update_frequency: 每周
provision: [文件]
time_range: 2020年至今
topic: institution
stages: [高中]
directory: $2
YAML
}
{ cat "$T/stu.yaml"; echo ---; file_entry 市教委基础教育处-教学资源 "$T/files"; echo ---;
  file_entry 市教委基础教育处-通知文件 "$T/files2"; } >"$T/entries.yaml"
dxctl apply -f "$T/entries.yaml" >/dev/null
{ consumer_agent_yaml 徐汇-pg agent-pg-secret-0001; echo ---
  consumer_agent_yaml 徐汇-lite agent-lite-secret-01; echo ---
  consumer_agent_yaml 徐汇-maria agent-maria-secret-1; } >"$T/agents.yaml"
as_user cons apply -f "$T/agents.yaml" >/dev/null
table_sub() {  # table_sub NAME AGENT DISTRICT TABLE
  as_user cons subscribe "$1" --agent "$2" --entry "$STU" --columns id,name,school_code,updatetime \
    --filter "district_code=$3" --target-table "$4" >/dev/null
}
table_sub pg-stu 徐汇-pg 310104 student_t
table_sub pg-keep 徐汇-pg 310115 student_keep
table_sub lite-stu 徐汇-lite 310104 student
table_sub maria-stu 徐汇-maria 310104 student
as_user cons subscribe pg-files --agent 徐汇-pg --entry 市教委基础教育处-教学资源 --target-path 教学资源 >/dev/null
as_user cons subscribe pg-files-keep --agent 徐汇-pg --entry 市教委基础教育处-通知文件 --target-path 通知 >/dev/null
start_agent pg 徐汇-pg agent-pg-secret-0001 "$PG_CONN"
start_agent lite 徐汇-lite agent-lite-secret-01 "$(sqlite_conn "$T/lite.db")"
start_agent maria 徐汇-maria agent-maria-secret-1 "$MARIADB_CONN"
for a in 徐汇-pg 徐汇-lite 徐汇-maria; do wait_for 20 "agent $a online" agent_online "$a"; done
for s in pg-stu pg-keep lite-stu maria-stu pg-files pg-files-keep; do
  dxctl run "$s" --wait --timeout 60 >/dev/null || fail "run of $s failed: $(last_run_field "$s" error)"
done
src_count() { sqlite3 "$SRC" "SELECT count(*) FROM student WHERE district_code = '$1'"; }
N104=$(src_count 310104)
N115=$(src_count 310115)
[ "$(psql_dx -At -c 'SELECT count(*) FROM student_t')" = "$N104" ] || fail "pg-stu did not load"
[ "$(mariadb_dx -N -e 'SELECT count(*) FROM student')" = "$N104" ] || fail "maria-stu did not load"
[ "$(tree_digest "$T/shared-pg/教学资源")" = "$(tree_digest "$T/files")" ] || fail "pg-files did not arrive"
# The consumer's own things: a view on a delivered table, a note in a delivered folder.
psql_dx -c "CREATE VIEW my_view AS SELECT id, name FROM student_t"
mkdir -p "$T/shared-pg/教学资源/自己的"
echo "我的笔记" >"$T/shared-pg/教学资源/自己的/笔记.txt"
pass "six subscriptions delivered to PostgreSQL, SQLite and MariaDB agents ($N104 rows of 310104, $(find "$T/files" -type f | wc -l) files)"

# --- suspension deletes; resumption reloads from scratch ---
as_user cons suspend lite-stu --reason "数据核查期间暂停共享" >/dev/null
wait_for 30 "the SQLite agent to confirm the deletion" deletion_confirmed lite-stu
[ "$(sqlite3 "$T/lite.db" "SELECT count(*) FROM sqlite_master WHERE name = 'student'")" = 0 ] ||
  fail "the suspended subscription's table is still at the agent"
[ "$(sqlite3 "$T/lite.db" "SELECT (SELECT count(*) FROM dx_ledger) + (SELECT count(*) FROM dx_tables)")" = 0 ] ||
  fail "the agent kept records of the suspended subscription"
detail=$(subscription_field lite-stu "j['deletion_detail']")
[ "$detail" = "dropped table student ($N104 rows)" ] || fail "the confirmation says: $detail"
expect_fail 1 "is suspended" as_user cons run lite-stu
as_user cons resume lite-stu --reason 核查完毕 >/dev/null
resynced() {
  [ "$(subscription_field lite-stu "str(j['resync_pending']) + ' ' + str(j['deletion_confirmed_at_ms']) + ' ' + j['last_run']['trigger'] + ' ' + j['last_run']['status']")" = "False 0 resync succeeded" ]
}
wait_for 60 "the resumed subscription to reload" resynced
[ "$(digest_sqlite "$T/lite.db" "SELECT id, name, school_code, updatetime FROM student ORDER BY id")" = \
  "$(digest_sqlite "$SRC" "SELECT id, name, school_code, updatetime FROM student WHERE district_code = '310104' ORDER BY id")" ] ||
  fail "the resumed subscription's table differs from the source"
pass "suspension: the agent dropped the table and its records and confirmed ($detail); resumption reloaded all $N104 rows"

# A manifest's `status: suspended` is a suspension too; lifting it by the manifest reloads, and
# the next suspension deletes again (not taken for done by the old confirmation).
manifest_status() {
  cat <<YAML
kind: Subscription
name: lite-stu
agent: 徐汇-lite
entry: $STU
columns: [id, name, school_code, updatetime]
filter: [{column: district_code, value: "310104"}]
target_table: student
status: $1
YAML
}
lite_table() { sqlite3 "$T/lite.db" "SELECT count(*) FROM sqlite_master WHERE name = 'student'"; }
manifest_status suspended >"$T/lite-suspended.yaml"
as_user cons apply -f "$T/lite-suspended.yaml" >/dev/null
wait_for 30 "the deletion after the manifest's suspension" deletion_confirmed lite-stu
[ "$(lite_table)" = 0 ] || fail "the manifest's suspension left the table"
manifest_status active >"$T/lite-active.yaml"
as_user cons apply -f "$T/lite-active.yaml" >/dev/null
wait_for 60 "the reload after the manifest lifted its suspension" resynced
[ "$(sqlite3 "$T/lite.db" 'SELECT count(*) FROM student')" = "$N104" ] || fail "not reloaded"
as_user cons suspend lite-stu --reason "再次暂停" >/dev/null
wait_for 30 "the deletion after the second suspension" deletion_confirmed lite-stu
[ "$(lite_table)" = 0 ] || fail "the second suspension was taken for deleted by the first one's confirmation"
as_user cons resume lite-stu --reason 恢复 >/dev/null
wait_for 60 "the reload after resuming again" resynced
pass "a manifest's suspension deletes, lifting it reloads, and the next suspension deletes again"

# --- termination of a file subscription: its files, part files and folders go, nothing else ---
[ -d "$T/shared-pg/教学资源/空目录/更深" ] || fail "the provider's empty folders were not delivered"
# A part file of an interrupted transfer, a consumer's own empty folder inside the
# subscription's folder and a consumer's file beside it.
echo partial >"$T/shared-pg/教学资源/视频/.dx-0123456789abcdef-fedcba9876543210.dxpart"
mkdir -p "$T/shared-pg/教学资源/自己的空夹" "$T/shared-pg/自己的文件"
echo mine >"$T/shared-pg/自己的文件/.dx-0123456789abcdef-0123456789abcdef.dxpart"
as_user cons terminate pg-files --reason "不再使用" >/dev/null
wait_for 30 "the deletion of pg-files" deletion_confirmed pg-files
left=$(cd "$T/shared-pg/教学资源" && find . | sort | tr '\n' ' ')
[ "$left" = ". ./自己的 ./自己的/笔记.txt ./自己的空夹 " ] || fail "after the termination the folder holds: $left"
[ -f "$T/shared-pg/自己的文件/.dx-0123456789abcdef-0123456789abcdef.dxpart" ] ||
  fail "a file outside the subscription's folder was deleted"
[ "$(tree_digest "$T/shared-pg/通知")" = "$(tree_digest "$T/files2")" ] || fail "another subscription's files were touched"
[ "$(psql_dx -At -c "SELECT subscription, count(*) FROM dx_files GROUP BY subscription")" = "pg-files-keep|3" ] ||
  fail "dx_files: $(psql_dx -At -c 'SELECT subscription, count(*) FROM dx_files GROUP BY subscription')"
detail=$(subscription_field pg-files "j['deletion_detail']")
echo "$detail" | grep -q "deleted 31 file(s) and 6 emptied folder(s); removed 1 part file(s)" || fail "the confirmation says: $detail"
pass "termination of a file subscription: its 31 files, its part file, the 2 folders it created and the 4 its deletions left empty deleted; the consumer's note, folder and files and the other subscription's files kept ($detail)"

# --- a suspended file subscription: its files go; resumed, every file comes back ---
# A file that cannot be delivered (its name is not UTF-8) waits on its own back-off.
BAD_NAME=$(printf '%s/通知/\xff.txt' "$T/files2")
echo bad >"$BAD_NAME"
backdate "$T/files2"
run_and_wait pg-files-keep
[ "$(run_field status)" = partial ] || fail "the run with an undeliverable file: $RUN"
store_failures() { sqlite3 "$T/scheduler.db" "SELECT count(*) FROM file_failures WHERE subscription = 'pg-files-keep'"; }
[ "$(store_failures)" = 1 ] || fail "the undeliverable file is not in file_failures"
as_user cons suspend pg-files-keep --reason "核查" >/dev/null
wait_for 30 "the deletion of pg-files-keep" deletion_confirmed pg-files-keep
[ ! -e "$T/shared-pg/通知" ] || fail "the suspended file subscription's files remain: $(find "$T/shared-pg/通知")"
[ "$(psql_dx -At -c "SELECT count(*) FROM dx_files")" = 0 ] || fail "dx_files kept records of pg-files-keep"
[ "$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM delivered_files WHERE subscription = 'pg-files-keep'") $(store_failures)" = "0 0" ] ||
  fail "the scheduler kept delivered_files or file_failures of the deleted subscription"
rm "$BAD_NAME"
as_user cons resume pg-files-keep --reason 核查完毕 >/dev/null
files_back() { [ "$(tree_digest "$T/shared-pg/通知" 2>/dev/null)" = "$(tree_digest "$T/files2")" ]; }
wait_for 60 "the resumed file subscription to deliver every file again" files_back
wait_for 20 "the agent to record them" test "$(psql_dx -At -c "SELECT subscription, count(*) FROM dx_files GROUP BY subscription")" = "pg-files-keep|3"
pass "suspension of a file subscription deleted its 3 files and cleared the scheduler's delivered files and failures; resumption delivered all of them again"

# --- termination while the agent is offline: deleted when it reconnects ---
kill_agent maria
agent_offline() { ! agent_online "$1"; }
wait_for 20 "the MariaDB agent offline" agent_offline 徐汇-maria
as_user cons terminate maria-stu --reason "违反保密协议" >/dev/null
sleep 1  # ten dispatcher ticks: nothing can be deleted while the agent is away
[ "$(subscription_field maria-stu "j['deletion_confirmed_at_ms']")" = 0 ] || fail "a deletion was confirmed by an offline agent"
dxctl describe maria-stu | grep -q "to be deleted (the agent is told when it is online)" || fail "describe does not say the deletion waits"
[ "$(mariadb_dx -N -e 'SELECT count(*) FROM student')" = "$N104" ] || fail "the offline agent's table changed"
restart_agent maria
wait_for 30 "the MariaDB agent to delete on reconnecting" deletion_confirmed maria-stu
[ "$(mariadb_dx -N -e "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'dx' AND table_name = 'student'")" = 0 ] ||
  fail "the terminated subscription's table is still in MariaDB"
[ "$(mariadb_dx -N -e "SELECT (SELECT count(*) FROM dx_ledger) + (SELECT count(*) FROM dx_tables)")" = 0 ] ||
  fail "the MariaDB agent kept its records of the subscription"
pass "termination while the MariaDB agent was offline: nothing deleted meanwhile, deleted and confirmed when it reconnected"

# --- kill -9 of the agent mid-deletion ---
# A consumer's transaction holds a lock on the table: the agent's DROP waits for it.
psql_dx -c "BEGIN; LOCK TABLE student_t IN ACCESS SHARE MODE; SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 &
LOCKER=$!
locked() { [ "$(psql_dx -At -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'student_t' AND l.granted")" -gt 0 ]; }
wait_for 10 "the consumer's lock" locked
as_user cons terminate pg-stu --reason "协议终止" >/dev/null
waiting_drop() {
  [ "$(psql_dx -At -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'student_t' AND NOT l.granted")" -gt 0 ]
}
wait_for 30 "the agent's DROP to wait for the lock" waiting_drop
kill_agent pg
kill "$LOCKER" 2>/dev/null; wait "$LOCKER" 2>/dev/null || true
psql_dx -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()" >/dev/null
[ "$(subscription_field pg-stu "j['deletion_confirmed_at_ms']")" = 0 ] || fail "confirmed before the agent finished"
[ "$(psql_dx -At -c 'SELECT count(*) FROM student_t')" = "$N104" ] || fail "the killed deletion left a half-deleted table"
restart_agent pg
wait_for 60 "the deletion to finish after kill -9" deletion_confirmed pg-stu
[ "$(psql_dx -At -c 'SELECT count(*) FROM student_t')" = 0 ] || fail "rows of the terminated subscription remain"
[ "$(psql_dx -At -c 'SELECT count(*) FROM my_view')" = 0 ] || fail "the consumer's view shows rows"
[ "$(psql_dx -At -c "SELECT count(*) FROM dx_tables WHERE subscription = 'pg-stu'") $(psql_dx -At -c "SELECT count(*) FROM dx_ledger WHERE subscription = 'pg-stu'")" = "0 0" ] ||
  fail "the agent kept its records of pg-stu"
[ "$(psql_dx -At -c 'SELECT count(*) FROM student_keep')" = "$N115" ] || fail "another subscription's table was touched"
detail=$(subscription_field pg-stu "j['deletion_detail']")
echo "$detail" | grep -q "emptied (the database refused to drop it: .*depend" || fail "the confirmation says: $detail"
pass "kill -9 mid-deletion: the next connection finished it; PostgreSQL refused the drop (the consumer's view), so the $N104 rows were deleted and the table left empty; pg-keep untouched"

# --- shown and audited ---
dxctl describe pg-stu | grep -q "^data at agent: *deleted, confirmed by the agent at .*emptied" ||
  fail "describe does not show the confirmation: $(dxctl describe pg-stu)"
audit=$(dxctl --json audit --what subscription.delet --target pg-stu | json_get "[(r['action'], r['actor'], r['result'].split(':')[0]) for r in j]")
echo "$audit" | grep -q "('subscription.delete', 'scheduler', 'sent')" || fail "no instruction in the audit: $audit"
echo "$audit" | grep -q "('subscription.deletion', '徐汇-pg', 'ok')" || fail "no confirmation in the audit: $audit"
dxctl audit-verify >/dev/null || fail "the audit chain does not verify"
pass "describe shows each confirmation; the audit log records every instruction and the agent's confirmations"
