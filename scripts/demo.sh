#!/usr/bin/env bash
# The demo: the sharing workflow as people use it, on loopback in a temporary directory. The
# technical admin sets up organisations and users; a provider registers its student data in
# the catalog, the technical admin reviews it and the coordinator publishes it; a district
# applies for it (accepting the confidentiality agreement), the provider approves a narrower
# scope with masking, the technical review and the coordinator approve, and the district's
# subscription runs into its front-end machine's database, its ID numbers masked at the
# scheduler. A school subscribes to an unconditional file resource at once. Data changes and
# flows again; the provider sees the usage, the coordinator the three lists, the admin the
# audit trail; the provider terminates the district's subscription and its front-end machine
# deletes the data and confirms.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export DX_BUILD_DIR=${DX_BUILD_DIR:-$ROOT/build}
bash "$ROOT/scripts/build.sh"
BIN=$DX_BUILD_DIR

T=$(mktemp -d /tmp/dx-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP_DEMO:-0}" = 1 ] && echo "(kept $T)" || rm -rf "$T"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A provider's source database of students (SQLite through unixODBC) and its teaching files"
python3 "$ROOT/scripts/gen_people.py" students 4000 --sqlite "$T/source.db"
sqlite3 -header -column "$T/source.db" \
  "SELECT id, name, id_card, school_code, district_code, stage, updatetime FROM student LIMIT 3"
echo "students: $(sqlite3 "$T/source.db" 'SELECT count(*) FROM student')"

mkdir -p "$T/provider-files/课件/高一 数学" "$T/provider-files/视频"
for i in 1 2 3; do
  printf '第%s课 函数与图像\n' "$i" >"$T/provider-files/课件/高一 数学/第${i}课 教案.txt"
done
head -c 3000000 /dev/urandom >"$T/provider-files/视频/公开课.mp4"
echo "files: $(find "$T/provider-files" -type f | wc -l) teaching resources in $T/provider-files"

step "2. Start dx-scheduler; the operator token of scheduler.yaml is the bootstrap technical admin"
TOKEN=demo-operator-token-$RANDOM$RANDOM
# The agent port speaks TLS with a certificate made for this demo (scripts/make-cert.sh): it
# names the address the agents dial, and the agents trust exactly it.
show bash "$ROOT/scripts/make-cert.sh" -d 1 -o "$T/tls" 127.0.0.1
# bootstrap_direct: false: even the operator's catalog entries go through review.
cat >"$T/scheduler.yaml" <<YAML
store: {path: $T/scheduler.db}
listen: {agents: "127.0.0.1:0", admin: "127.0.0.1:0"}
tls: {cert: $T/tls.crt, key: $T/tls.key}
admin: {token: $TOKEN, bootstrap_direct: false, organisation: 市教委信息中心}
audit: {key_file: $T/audit.key}
exchange: {safety_lag_s: 1}
YAML
"$BIN/scheduler/dx-scheduler" -c "$T/scheduler.yaml" --ports-file "$T/ports" >"$T/scheduler.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$T/ports" ] && break; sleep 0.1; done
AGENTS_PORT=$(sed -n 's/^agents=//p' "$T/ports")
export DX_SERVER=http://127.0.0.1:$(sed -n 's/^admin=//p' "$T/ports") DX_TOKEN=$TOKEN
dxctl() { "$BIN/scheduler/dxctl/dxctl" "$@"; }
# Each person signs in with a token file of mode 0600 (never a command-line argument).
as() { local who=$1; shift; printf '[%s] $ dxctl %s\n' "$who" "$*"; DX_TOKEN= DX_TOKEN_FILE="$T/$who.token" dxctl "$@"; }
# A step that must be refused: the demo stops if it is not.
refused() { if "$@"; then echo "demo: that should have been refused" >&2; exit 1; fi; echo "(refused, as it should be)"; }
echo "scheduler: agents dial 127.0.0.1:$AGENTS_PORT, admin API $DX_SERVER"

step "3. The technical admin (数据技术管理部门) sets up organisations, users and the source"
show dxctl org add 市教委基础教育处 --description 数据提供部门 --file-root "$T/provider-files"
show dxctl org add 徐汇区教育局 --description 数据使用部门
show dxctl org add 浦东新区某中学 --description 数据使用部门
show dxctl org add 市教委信息中心 --description "数据管理协调部门 / 数据技术管理部门"
for u in "jiaoyu 市教委基础教育处 provider" "xuhui 徐汇区教育局 consumer" "pudong 浦东新区某中学 consumer" \
         "xietiao 市教委信息中心 coordinator" "jishu 市教委信息中心 admin"; do
  set -- $u
  dxctl user add "$1" --org "$2" --role "$3" >/dev/null
  dxctl token issue --user "$1" --label demo --days 1 --out "$T/$1.token" >/dev/null
done
show dxctl user list
cat >"$T/source.yaml" <<YAML
kind: Source
name: 市教委数据中心
organisation: 市教委基础教育处
connection: Driver=SQLite3;Database=$T/source.db;JournalMode=WAL
YAML
as jishu apply -f "$T/source.yaml"

step "4. The provider (数据提供部门) registers its resources in the catalog (第十三条)"
sed -e "s#@FILES_DIR@#$T/provider-files#" "$ROOT/conf/demo/provider-entries.yaml" >"$T/entries.yaml"
echo "A first draft without its description is refused with every problem at once:"
sed -n '1,/^security_level/p' "$T/entries.yaml" | grep -v -e '^security_level' -e '^data_format' -e '^time_range' >"$T/incomplete.yaml"
cat >>"$T/incomplete.yaml" <<YAML
source: 市教委数据中心
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
YAML
refused as jiaoyu apply -f "$T/incomplete.yaml"
as jiaoyu apply -f "$T/entries.yaml"

step "5. Technical review (数据技术管理部门) and publication (数据管理协调部门, 第二十一条)"
as jishu entry review 市教委基础教育处-学生基本信息 --pass
as jishu entry review 市教委基础教育处-教学资源文件 --pass
as xietiao entry publish 市教委基础教育处-学生基本信息
as xietiao entry publish 市教委基础教育处-教学资源文件
as xuhui catalog

step "6. A district applies for the authorised student data (第二十五条, 附件四)"
cat >"$T/xuhui-agent.yaml" <<YAML
kind: Agent
name: 徐汇区教育局
secret: xuhui-front-end-secret-2026
description: 徐汇区教育局前置机
YAML
as xuhui apply -f "$T/xuhui-agent.yaml"
as xuhui agreement
APP=$(DX_TOKEN= DX_TOKEN_FILE="$T/xuhui.token" dxctl --json app create --entry 市教委基础教育处-学生基本信息 \
  --purpose 学籍管理与控辍保学 --scenario 徐汇区学籍管理系统 \
  --columns id,name,id_card,school_code,district_code,stage,gender,updatetime \
  --filter district_code=310104 --accept-agreement | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "application $APP submitted; the district may not approve it itself:"
refused as xuhui app provider-decision "$APP" --approve
echo "The provider approves the minimum sufficient (最小够用): no district column, ID numbers masked:"
as jiaoyu app provider-decision "$APP" --approve --reason 按最小够用原则 \
  --columns id,name,id_card,school_code,stage,gender,updatetime --mask id_card=partial:3:4
as jishu app tech-review "$APP" --result exists
as xietiao app coordinator-decision "$APP" --approve --reason 同意共享
as xuhui app show "$APP"

step "7. The district subscribes its front-end machine, within the approval"
echo "Wider than approved (the district column) is refused:"
refused as xuhui subscribe 徐汇-学生 --agent 徐汇区教育局 --entry 市教委基础教育处-学生基本信息 --application "$APP" \
  --columns id,name,district_code --filter district_code=310104 --target-table student
as xuhui subscribe 徐汇-学生 --agent 徐汇区教育局 --entry 市教委基础教育处-学生基本信息 --application "$APP" \
  --columns id,name,id_card,school_code,stage,gender,updatetime --filter district_code=310104 \
  --target-table student --schedule "realtime 2s"
as xuhui describe 徐汇-学生

step "8. A school subscribes to the unconditional teaching resources at once (第二十四条)"
sed -e 's/徐汇区教育局/浦东新区某中学/g' -e 's/xuhui-front-end/pudong-school/' "$T/xuhui-agent.yaml" >"$T/pudong-agent.yaml"
as pudong apply -f "$T/pudong-agent.yaml"
as pudong subscribe 浦东-教学资源 --agent 浦东新区某中学 --entry 市教委基础教育处-教学资源文件 \
  --target-path 教学资源 --schedule "hourly :00"

step "9. Start the two dx-agents; each dials the scheduler over TLS and writes into its own SQLite database"
start_agent() {  # id name secret
  cat >"$T/agent-$1.yaml" <<YAML
name: $2
secret: $3
scheduler: 127.0.0.1:$AGENTS_PORT
target: {connection: "Driver=SQLite3;Database=$T/$1.db;JournalMode=WAL;SyncPragma=NORMAL"}
files: {shared_root: "$T/$1-shared"}
tls: {ca: $T/tls.crt}
YAML
  "$BIN/agent/dx-agent" -c "$T/agent-$1.yaml" >"$T/agent-$1.log" 2>&1 &
  PIDS+=($!)
}
start_agent xuhui 徐汇区教育局 xuhui-front-end-secret-2026
start_agent pudong 浦东新区某中学 pudong-school-secret-2026
count_json() {  # count_json COMMAND PYTHON_CONDITION: items of dxctl --json COMMAND matching
  dxctl --json "$1" | python3 -c "import json,sys; print(sum(1 for x in json.load(sys.stdin) if $2))"
}
for _ in $(seq 1 200); do [ "$(count_json agents "x['online']")" = 2 ] && break; sleep 0.1; done
show dxctl agents
for _ in $(seq 1 300); do
  [ "$(count_json subscriptions "x['last_run'] and x['last_run']['status'] == 'succeeded'")" = 2 ] && break
  sleep 0.1
done
show dxctl runs

step "10. What each front-end machine now holds"
echo "徐汇区教育局 (district 310104, the approved columns; no district column):"
sqlite3 -header -column "$T/xuhui.db" "SELECT * FROM student ORDER BY id LIMIT 5"
echo "rows: $(sqlite3 "$T/xuhui.db" 'SELECT count(*) FROM student')   source rows of 310104: $(sqlite3 "$T/source.db" "SELECT count(*) FROM student WHERE district_code='310104'")"
echo
echo "The ID numbers were masked at the scheduler (脱敏, the approval's rule id_card=partial:3:4)"
echo "before they left it. The same students at the provider and at 徐汇区教育局:"
sqlite3 -header -column "$T/source.db" \
  "SELECT id, name, id_card AS 'id_card at the provider' FROM student WHERE district_code = '310104' ORDER BY id LIMIT 3"
sqlite3 -header -column "$T/xuhui.db" "SELECT id, name, id_card AS 'id_card at 徐汇区教育局' FROM student ORDER BY id LIMIT 3"
sqlite3 "$T/source.db" "SELECT id_card FROM student WHERE district_code = '310104'" >"$T/raw-ids.txt"
echo "raw ID numbers found in 徐汇区教育局's database files: $(cat "$T"/xuhui.db* | grep -a -c -F -f "$T/raw-ids.txt" || true)"
echo
echo "浦东新区某中学's shared directory (文件方式), and the receipt (回执) of that run:"
(cd "$T/pudong-shared" && find . -type f ! -name '*.dxpart' | sort | sed 's/^/  /')
dxctl receipt "$(dxctl --json runs -s 浦东-教学资源 -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"

step "11. The provider changes data: renames three 徐汇 students, enrols a new one; it flows in"
NOW=$(date '+%Y-%m-%d %H:%M:%S')
sqlite3 "$T/source.db" "
  UPDATE student SET name = name || '（更正）', updatetime = '$NOW'
   WHERE id IN (SELECT id FROM student WHERE district_code = '310104' ORDER BY id LIMIT 3);
  INSERT INTO student VALUES (990001, '欧阳新生', '310104201509011234', '3101040001', '310104', '小学', '2015-09-01', 1, '$NOW');"
until [ "$(date +%s)" -ge "$(( $(date -d "$NOW" +%s) + 2 ))" ]; do sleep 0.1; done
as xuhui wait 徐汇-学生 --timeout 60
sqlite3 -header -column "$T/xuhui.db" "SELECT id, name, school_code, updatetime FROM student WHERE updatetime = '$NOW' ORDER BY id"

step "12. Oversight: the provider's usage, a reported error, the coordinator's lists, the audit trail"
as xuhui feedback report --entry 市教委基础教育处-学生基本信息 --subscription 徐汇-学生 --text "学生 990001 的学校代码应为 3101040002"
as jiaoyu feedback list
as jiaoyu feedback resolve 1 --corrected --note 已在学籍系统更正
as jiaoyu usage
as xietiao lists
as jishu audit --what application.
as jishu audit-verify

step "13. The provider terminates the district's subscription (附件一 第二条(四)); the agent deletes the data and confirms"
echo "徐汇区教育局's tables before: $(sqlite3 "$T/xuhui.db" '.tables')"
as jiaoyu terminate 徐汇-学生 --reason "协议期满，终止共享"
for _ in $(seq 1 300); do
  [ "$(dxctl --json describe 徐汇-学生 | python3 -c 'import json,sys; print(json.load(sys.stdin)["deletion_confirmed_at_ms"] > 0)')" = True ] && break
  sleep 0.1
done
as xuhui describe 徐汇-学生
echo "徐汇区教育局's tables after:  $(sqlite3 "$T/xuhui.db" '.tables')   (student is gone; dx_* are the agent's own records)"
echo "its ledger entries for 徐汇-学生: $(sqlite3 "$T/xuhui.db" "SELECT count(*) FROM dx_ledger WHERE subscription = '徐汇-学生'")"
as jishu audit --what subscription.delet

step "14. Run history and subscription state"
show dxctl runs
show dxctl subscriptions
echo
echo "Demo finished. Logs were in $T (removed on exit; KEEP_DEMO=1 keeps them)."
