#!/usr/bin/env bash
# Masking (脱敏) applied at the scheduler, checked in the agents' tables with psql and sqlite3
# against values computed here from the source (Python's hmac, not DX's code):
#  - a PostgreSQL agent: Chinese names hashed (HMAC-SHA256 under the consumer organisation's
#    key), ID numbers shown as 310***********1234, the birth date dropped from the table;
#  - a SQLite agent: names masked by character (张*丰), ID numbers hashed, school codes dropped;
#    its filter on the ID number selects by the raw values, at the source;
#  - no raw ID number or name is anywhere in the SQLite agent's database files or its log;
#  - reconciliation of a masked subscription finds no false difference, and repairs real ones
#    (rows deleted and renamed at the source, a masked value damaged and a row added at the
#    agent);
#  - an approval may not mask a primary key; a subscription's masking changed through the API
#    reloads it: the table is recreated in its new shape, no old value stays.
source "$(dirname "$0")/harness.sh"
harness_init masking
start_postgres "$T"

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 20000 --sqlite "$SRC" >/dev/null
write_scheduler_config
start_scheduler
setup_sharing
apply_provider_source "$(sqlite_conn "$SRC")"
STU=市教委基础教育处-学生基本信息
student_entry_yaml "$STU" authorised 市教委数据中心 >"$T/stu.yaml"
dxctl apply -f "$T/stu.yaml" >/dev/null
{ consumer_agent_yaml 徐汇-pg agent-pg-secret-0001; echo ---; consumer_agent_yaml 徐汇-lite agent-lite-secret-01; } >"$T/agents.yaml"
as_user cons apply -f "$T/agents.yaml" >/dev/null
[ -f "$T/scheduler.db.masking-key" ] && [ "$(stat -c %a "$T/scheduler.db.masking-key")" = 600 ] ||
  fail "the masking key file was not created 0600 beside the store"
KEY=$(masking_key_for "$SHARE_CONS")

COLS=id,name,id_card,school_code,district_code,stage,birth,updatetime
APP_X=$(as_user cons --json app create --entry "$STU" --purpose 学籍管理 --scenario 区学籍系统 \
  --columns "$COLS" --filter district_code=310104 --accept-agreement | json_get "j['id']")
expect_fail 2 "the primary key is delivered as it is.*reconciliation" \
  as_user prov app provider-decision "$APP_X" --approve --reason x --mask id=hash
expect_fail 2 "hash applies to text columns, not date" \
  as_user prov app provider-decision "$APP_X" --approve --reason x --mask birth=hash
pass "an approval masking the primary key (or hashing a date) is refused, saying why"

APP1=$(approved_application "$STU" "$COLS" district_code=310104 name=hash id_card=partial:3:4 birth=drop)
APP2=$(approved_application "$STU" "$COLS" district_code=310104 name=partial:1:1 id_card=hash school_code=drop)
as_user cons subscribe sub-pg --agent 徐汇-pg --entry "$STU" --application "$APP1" \
  --columns id,name,id_card,school_code,stage,birth,updatetime --filter district_code=310104 \
  --target-table student >/dev/null
# The ID number filter is on raw values: it runs at the source, before masking.
as_user cons subscribe sub-lite --agent 徐汇-lite --entry "$STU" --application "$APP2" \
  --columns id,name,id_card,school_code,stage,updatetime --filter district_code=310104 \
  --filter "id_card>=3101042010" --target-table student >/dev/null
start_agent pg 徐汇-pg agent-pg-secret-0001 "$PG_CONN"
start_agent lite 徐汇-lite agent-lite-secret-01 "$(sqlite_conn "$T/lite.db")"
wait_for 20 "agents online" agent_online 徐汇-pg
wait_for 20 "agents online" agent_online 徐汇-lite
for s in sub-pg sub-lite; do
  dxctl run "$s" --wait --timeout 60 >/dev/null || fail "run of $s failed: $(last_run_field "$s" error)"
done

# expected WHERE SPEC...: the source's rows as the agent must hold them, tab-separated, by id;
# SPEC is a column, or column=hash | column=partial:FIRST:LAST.
expected() {
  local where=$1 cols=() spec; shift
  for spec in "$@"; do cols+=("${spec%%=*}"); done
  sqlite3 -separator $'\t' "$SRC" "SELECT $(IFS=,; echo "${cols[*]}") FROM student WHERE $where ORDER BY id" |
    python3 "$ROOT/tests/e2e/mask_rows.py" "$KEY" "$@"
}
pg_rows() { psql_dx -At -F $'\t' -c "SELECT $1 FROM student ORDER BY id"; }
lite_rows() { sqlite3 -separator $'\t' "$T/lite.db" "SELECT $1 FROM student ORDER BY id"; }
pg_columns() {
  psql_dx -At -c "SELECT string_agg(column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', ''), ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'student'"
}
WHERE="district_code = '310104'"

[ "$(pg_columns)" = "id bigint, name character(64), id_card character(18), school_code character varying(10), stage character varying(10), updatetime timestamp without time zone" ] ||
  fail "the PostgreSQL table's columns: $(pg_columns)"
[ "$(pg_rows "id, name, id_card, school_code, stage, updatetime" | md5sum)" = \
  "$(expected "$WHERE" id name=hash id_card=partial:3:4 school_code stage updatetime | md5sum)" ] ||
  fail "the PostgreSQL table does not hold the masked rows: $(pg_rows 'id, name, id_card' | sed -n 1,3p)"
N_PG=$(pg_rows id | wc -l)
[ "$N_PG" -gt 500 ] || fail "too few rows at the PostgreSQL agent: $N_PG"
sample=$(pg_rows "name, id_card" | sed -n 1p)
echo "$sample" | grep -Eq $'^[0-9a-f]{64}\t310\\*{11}[0-9]{3}[0-9X]$' || fail "a masked row looks like: $sample"
pass "PostgreSQL agent, checked with psql: $N_PG rows with Chinese names hashed, ID numbers as ${sample#*$'\t'}, birth dropped"

[ "$(sqlite3 "$T/lite.db" "SELECT group_concat(name || ' ' || type, ', ') FROM pragma_table_info('student')")" = \
  "id INTEGER, name VARCHAR(30), id_card CHAR(64), stage VARCHAR(10), updatetime DATETIME" ] ||
  fail "the SQLite table's columns: $(sqlite3 "$T/lite.db" "SELECT group_concat(name || ' ' || type) FROM pragma_table_info('student')")"
LITE_WHERE="$WHERE AND id_card >= '3101042010'"
[ "$(lite_rows "id, name, id_card, stage, updatetime" | md5sum)" = \
  "$(expected "$LITE_WHERE" id name=partial:1:1 id_card=hash stage updatetime | md5sum)" ] ||
  fail "the SQLite table does not hold the masked rows of the raw filter"
N_LITE=$(lite_rows id | wc -l)
[ "$N_LITE" -gt 0 ] && [ "$N_LITE" -lt "$N_PG" ] || fail "the raw-value filter selected $N_LITE of $N_PG rows"
three=$(sqlite3 "$T/lite.db" "SELECT name FROM student WHERE length(name) = 3 LIMIT 1")
echo "$three" | grep -Eq '^.\*.$' || fail "a three-character name masked as: $three"
pass "SQLite agent, checked with sqlite3: names by character ($three), ID numbers hashed, school code dropped; the ID-number filter ran on raw values ($N_LITE rows)"

# Nothing the agent stores holds a raw ID number or name of the rows it received: not its
# database (with its WAL), not its log. The positive control: a masked value is found.
# The agent is stopped first and the control value read before the files are listed: the last
# connection to close (the agent's, or sqlite3's) checkpoints the WAL into the database and
# removes it, which must not happen between listing the files and reading them.
kill_agent lite
one_hash=$(sqlite3 "$T/lite.db" "SELECT id_card FROM student LIMIT 1")
sqlite3 "$SRC" "SELECT id_card FROM student WHERE $LITE_WHERE" >"$T/raw.txt"
sqlite3 "$SRC" "SELECT name FROM student WHERE $LITE_WHERE AND length(name) = 3" >>"$T/raw.txt"
[ "$(wc -l <"$T/raw.txt")" -gt "$N_LITE" ] || fail "no raw values to look for"
stored=("$T"/lite.db*)
hits=$(cat "${stored[@]}" "$T/agent-lite.log" | grep -a -c -F -f "$T/raw.txt" || true)
[ "$hits" = 0 ] || fail "$hits places in the SQLite agent's files hold raw values"
[ -n "$one_hash" ] || fail "no masked value to look for"
# (grep reads the files itself: `cat | grep -q` fails under pipefail when grep stops early.)
grep -a -q -F "$one_hash" "${stored[@]}" || fail "the control value is not found: the search is broken"
pass "no raw ID number or name in the SQLite agent's database files or log (${#stored[@]} files searched; a masked value is found)"

# --- reconciliation of a masked subscription ---
counts() {
  python3 -c "import json,sys; r=json.load(sys.stdin); c=r['reconcile']; print(c['missing'], c['extra'], c['changed'], c['repaired'], r['status'])"
}
got=$(dxctl --json reconcile sub-pg --dry-run --wait | counts)
[ "$got" = "0 0 0 0 succeeded" ] || fail "a dry run of the masked subscription found differences: $got"
# Source: a row deleted, a name changed without touching UPDATETIME (incremental runs miss
# both). Agent: a masked ID number damaged, a row added.
ids=($(sqlite3 "$SRC" "SELECT id FROM student WHERE $WHERE ORDER BY id LIMIT 3 OFFSET 10"))
sqlite3 "$SRC" "DELETE FROM student WHERE id = ${ids[0]}; UPDATE student SET name = '更正后' WHERE id = ${ids[1]}"
psql_dx -c "UPDATE student SET id_card = '310***********0000' WHERE id = ${ids[2]};
  INSERT INTO student VALUES (99999999, repeat('0', 64), '310***********9999', '3101040001', '小学', '2026-01-01 00:00:00')"
got=$(dxctl --json reconcile sub-pg --wait | counts)
[ "$got" = "0 2 2 4 succeeded" ] || fail "the reconciliation reported '$got' (missing extra changed repaired)"
[ "$(pg_rows "id, name, id_card, school_code, stage, updatetime" | md5sum)" = \
  "$(expected "$WHERE" id name=hash id_card=partial:3:4 school_code stage updatetime | md5sum)" ] ||
  fail "the repaired table does not hold the masked rows"
got=$(dxctl --json reconcile sub-pg --dry-run --wait | counts)
[ "$got" = "0 0 0 0 succeeded" ] || fail "differences after the repair: $got"
pass "reconciling the masked subscription: no false difference; the real ones (2 changed, 2 extra) repaired to the masked values"

# --- a change of masking reloads the subscription (through the API: dxctl subscribe) ---
APP3=$(approved_application "$STU" "$COLS" district_code=310104 name=partial:1:1 id_card=hash)
as_user cons subscribe sub-pg --agent 徐汇-pg --entry "$STU" --application "$APP3" \
  --columns id,name,id_card,school_code,stage,birth,updatetime --filter district_code=310104 \
  --target-table student >/dev/null
reloaded() {
  [ "$(subscription_field sub-pg "str(j['resync_pending']) + ' ' + j['last_run']['status'] + ' ' + j['last_run']['trigger']")" = "False succeeded resync" ]
}
wait_for 60 "the reload after the masking change" reloaded
[ "$(pg_columns)" = "id bigint, name character varying(30), id_card character(64), school_code character varying(10), stage character varying(10), birth date, updatetime timestamp without time zone" ] ||
  fail "the reloaded table's columns: $(pg_columns)"
[ "$(pg_rows "id, name, id_card, school_code, stage, birth, updatetime" | md5sum)" = \
  "$(expected "$WHERE" id name=partial:1:1 id_card=hash school_code stage birth updatetime | md5sum)" ] ||
  fail "the reloaded table does not hold the rows under the new masking"
[ "$(psql_dx -At -c "SELECT count(*) FROM student WHERE id_card LIKE '310*%' OR length(name) = 64")" = 0 ] ||
  fail "values masked the old way stayed"
three=$(psql_dx -At -c "SELECT name FROM student WHERE length(name) = 3 LIMIT 1")
pass "a masking change through the API reloaded the subscription into a recreated table: names by character ($three), ID numbers hashed (char(64)), birth back; no old value stays"
