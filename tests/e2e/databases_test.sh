#!/usr/bin/env bash
# PostgreSQL as a source and as a target (psqlODBC), MariaDB as a target (MariaDB ODBC), each
# server started here on a loopback port: full load, then inserts and updates, with the target
# tables created from the catalog and Chinese text round-tripping exactly.
source "$(dirname "$0")/harness.sh"
harness_init databases
start_postgres "$T"
start_mariadb "$T"

python3 "$ROOT/scripts/gen_people.py" students 20000 >"$T/students.tsv"
psql_dx -c "CREATE TABLE student (id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL,
  id_card CHAR(18), school_code VARCHAR(10), district_code VARCHAR(6), stage VARCHAR(10),
  birth DATE, gender INT, updatetime TIMESTAMP NOT NULL);
  CREATE INDEX student_ut ON student (updatetime, id);"
psql_dx -c "\\copy student FROM '$T/students.tsv'"

write_scheduler_config "safety_lag_s: 0, batch_rows: 3000, window: 4, retry_max_s: 2"
start_scheduler
write_student_manifest "$PG_CONN"
sed -i 's/^target_table: student$/target_table: student_copy/' "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_agent a 徐汇区教育局 agent-a-secret-0001 "$PG_CONN"
start_agent b 浦东某中学 agent-b-secret-0002 "$MARIADB_CONN"
wait_for 20 "agent a online" agent_online 徐汇区教育局
wait_for 20 "agent b online" agent_online 浦东某中学

pg_rows() { psql_dx -At -F'|' -c "$1"; }
maria_rows() { mariadb_dx -N -B -e "$1" | tr '\t' '|'; }
check() {
  local a_src a_dst b_src b_dst
  a_src=$(pg_rows "SELECT $SUB_A_COLS FROM student WHERE $SUB_A_WHERE ORDER BY id" | md5sum)
  a_dst=$(pg_rows "SELECT $SUB_A_COLS FROM student_copy ORDER BY id" | md5sum)
  b_src=$(pg_rows "SELECT $SUB_B_COLS FROM student WHERE $SUB_B_WHERE ORDER BY id" | md5sum)
  b_dst=$(maria_rows "SELECT $SUB_B_COLS FROM student_copy ORDER BY id" | md5sum)
  [ "$a_src" = "$a_dst" ] || { diff <(pg_rows "SELECT $SUB_A_COLS FROM student WHERE $SUB_A_WHERE ORDER BY id") <(pg_rows "SELECT $SUB_A_COLS FROM student_copy ORDER BY id") | head -5; dxctl runs -n 4; }; [ "$a_src" = "$a_dst" ] || fail "$1: PostgreSQL target differs from the PostgreSQL source"
  [ "$b_src" = "$b_dst" ] || fail "$1: MariaDB target differs from the PostgreSQL source"
  pass "$1: PostgreSQL target $(pg_rows 'SELECT count(*) FROM student_copy') rows, MariaDB target $(maria_rows 'SELECT count(*) FROM student_copy') rows, identical to the source"
}

dxctl run sub-a --wait >/dev/null || fail "run sub-a: $(last_run_field sub-a error)"
dxctl run sub-b --wait >/dev/null || fail "run sub-b: $(last_run_field sub-b error)"
check "full load"
mariadb_dx -N -e "SHOW CREATE TABLE student_copy" | grep -q "utf8mb4" || fail "MariaDB table is not utf8mb4"

psql_dx -c "UPDATE student SET name = '诸葛' || name, updatetime = date_trunc('second', LOCALTIMESTAMP)
              WHERE id IN (SELECT id FROM student WHERE district_code IN ('310104','310115') ORDER BY id LIMIT 40);
            INSERT INTO student VALUES (900001, '上官婉儿', '310115200801011234', '3101150001', '310115', '高中', '2008-01-01', 2, date_trunc('second', LOCALTIMESTAMP)),
                                       (900002, '司马光', '310104201501011234', '3101040001', '310104', '小学', '2015-01-01', 1, date_trunc('second', LOCALTIMESTAMP));"
next_second
dxctl run sub-a --wait >/dev/null || fail "run sub-a: $(last_run_field sub-a error)"
dxctl run sub-b --wait >/dev/null || fail "run sub-b: $(last_run_field sub-b error)"
check "after inserts and updates"
[ "$(maria_rows "SELECT name FROM student_copy WHERE id = 900001")" = "上官婉儿" ] || fail "Chinese text in MariaDB"
dxctl runs -n 4

# The PostgreSQL server (source, and agent a's local database) goes away and comes back: runs
# fail and are retried with back-off, the agent reconnects by itself, nothing is lost.
stop_postgres
dxctl run sub-a --wait >/dev/null && fail "a run without its database succeeded"
pass "database down: run failed with '$(last_run_field sub-a error)'"
resume_postgres
psql_dx -c "UPDATE student SET name = '欧阳' || name, updatetime = date_trunc('second', LOCALTIMESTAMP) WHERE id IN (SELECT id FROM student WHERE $SUB_A_WHERE ORDER BY id DESC LIMIT 3)"
next_second
a_synced() { [ "$(pg_rows "SELECT count(*) FROM student_copy WHERE name LIKE '欧阳%'")" -ge 3 ]; }
dxctl run sub-a >/dev/null
wait_for 60 "agent a to catch up after the database came back" a_synced
check "after the database restart"
grep -q "reconnected to the local database" "$T/agent-a.log" || fail "agent a did not reconnect"

# Files to an agent whose local database is PostgreSQL: its record of received files lives there.
mkdir -p "$T/provider/课件"
for i in 1 2 3; do echo "第${i}课" >"$T/provider/课件/第${i}课.txt"; done
write_file_manifest "$T/provider"
dxctl apply -f "$T/manifest.yaml" >/dev/null
kill_agent a
restart_agent a   # its shared root is $T/shared-a (harness default)
wait_for 20 "agent a online" agent_online 徐汇区教育局
dxctl run files-a --wait >/dev/null || fail "file run: $(last_run_field files-a error)"
[ "$(cat "$T/shared-a/教学资源/课件/第2课.txt")" = "第2课" ] || fail "file not delivered"
[ "$(pg_rows "SELECT count(*) FROM dx_files WHERE subscription = 'files-a'")" = 3 ] || fail "dx_files in PostgreSQL"
pass "files delivered to a PostgreSQL-backed agent, recorded in its dx_files table"
