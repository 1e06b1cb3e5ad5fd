#!/usr/bin/env bash
# The demo: a scheduler and two agents on loopback in a temporary directory. A SQLite source
# (through unixODBC) holds a few thousand students and teachers; two front-end machines
# subscribe to different columns and rows. The exchange runs, some source rows change, it
# runs again, and the script shows what each agent's local database holds and the history.
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

step "1. A provider's source database: students and teachers (SQLite through unixODBC)"
python3 "$ROOT/scripts/gen_people.py" students 4000 --sqlite "$T/source.db"
python3 "$ROOT/scripts/gen_people.py" teachers 600 --sqlite "$T/source.db"
sqlite3 -header -column "$T/source.db" \
  "SELECT id, name, id_card, school_code, district_code, stage, updatetime FROM student LIMIT 3"
echo "students: $(sqlite3 "$T/source.db" 'SELECT count(*) FROM student'), teachers: $(sqlite3 "$T/source.db" 'SELECT count(*) FROM teacher')"

mkdir -p "$T/provider-files/课件/高一 数学" "$T/provider-files/视频"
for i in 1 2 3; do
  printf '第%s课 函数与图像\n' "$i" >"$T/provider-files/课件/高一 数学/第${i}课 教案.txt"
done
head -c 3000000 /dev/urandom >"$T/provider-files/视频/公开课.mp4"
echo "files: $(find "$T/provider-files" -type f | wc -l) teaching resources in $T/provider-files"

step "2. Start dx-scheduler (store, agent port and admin API on loopback)"
TOKEN=demo-operator-token-$RANDOM$RANDOM
# The agent port speaks TLS with a certificate made for this demo (scripts/make-cert.sh): it
# names the address the agents dial, and the agents trust exactly it.
show bash "$ROOT/scripts/make-cert.sh" -d 1 -o "$T/tls" 127.0.0.1
cat >"$T/scheduler.yaml" <<YAML
store: {path: $T/scheduler.db}
listen: {agents: "127.0.0.1:0", admin: "127.0.0.1:0"}
tls: {cert: $T/tls.crt, key: $T/tls.key}
admin: {token: $TOKEN}
exchange: {safety_lag_s: 1}
YAML
"$BIN/scheduler/dx-scheduler" -c "$T/scheduler.yaml" --ports-file "$T/ports" >"$T/scheduler.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$T/ports" ] && break; sleep 0.1; done
AGENTS_PORT=$(sed -n 's/^agents=//p' "$T/ports")
export DX_SERVER=http://127.0.0.1:$(sed -n 's/^admin=//p' "$T/ports") DX_TOKEN=$TOKEN
dxctl() { "$BIN/scheduler/dxctl/dxctl" "$@"; }
echo "scheduler: agents dial 127.0.0.1:$AGENTS_PORT, admin API $DX_SERVER"

step "3. Apply the catalog (数据资源目录), two agents and three subscriptions"
sed -e "s#@SOURCE_DB@#$T/source.db#" -e "s#@FILES_DIR@#$T/provider-files#" \
  "$ROOT/conf/demo/manifest.yaml" >"$T/manifest.yaml"
show dxctl apply -f "$T/manifest.yaml"
show dxctl catalog

step "4. Start two dx-agents; each dials the scheduler over TLS and writes into its own SQLite database"
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

step "5. The first exchange: new subscriptions run (full load) as soon as their agent is online"
for _ in $(seq 1 300); do
  [ "$(count_json subscriptions "x['last_run'] and x['last_run']['status'] == 'succeeded'")" = 4 ] && break
  sleep 0.1
done
show dxctl runs

step "6. What each front-end machine now holds"
echo "徐汇区教育局 (district 310104, no ID numbers):"
sqlite3 -header -column "$T/xuhui.db" "SELECT * FROM student ORDER BY id LIMIT 5"
echo "rows: $(sqlite3 "$T/xuhui.db" 'SELECT count(*) FROM student')   source rows of 310104: $(sqlite3 "$T/source.db" "SELECT count(*) FROM student WHERE district_code='310104'")"
echo
echo "浦东新区某中学 (district 310115, 高中 and 中职 only, with ID numbers):"
sqlite3 -header -column "$T/pudong.db" "SELECT * FROM student ORDER BY id LIMIT 5"
echo "rows: $(sqlite3 "$T/pudong.db" 'SELECT count(*) FROM student'), teachers: $(sqlite3 "$T/pudong.db" 'SELECT count(*) FROM teacher')"

echo
echo "徐汇区教育局's shared directory (文件方式), and the receipt (回执) of that run:"
(cd "$T/xuhui-shared" && find . -type f ! -name '*.dxpart' | sort | sed 's/^/  /')
dxctl receipt "$(dxctl --json runs -s 徐汇-教学资源 -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"

step "7. The provider changes data: renames three 徐汇 students, enrols two new ones"
NOW=$(date '+%Y-%m-%d %H:%M:%S')
sqlite3 "$T/source.db" "
  UPDATE student SET name = name || '（更正）', updatetime = '$NOW'
   WHERE id IN (SELECT id FROM student WHERE district_code = '310104' ORDER BY id LIMIT 3);
  INSERT INTO student VALUES (990001, '欧阳新生', '310104201509011234', '3101040001', '310104', '小学', '2015-09-01', 1, '$NOW');
  INSERT INTO student VALUES (990002, '司马新生', '310115200909011234', '3101150001', '310115', '高中', '2009-09-01', 2, '$NOW');"
# Rows wait until they are older than the safety lag (1 s here) on the source's clock, so that
# transactions still in flight at the source are never skipped.
until [ "$(date +%s)" -ge "$(( $(date -d "$NOW" +%s) + 2 ))" ]; do sleep 0.1; done
for s in 徐汇-学生 浦东-高中学生; do dxctl run "$s" --wait >/dev/null || true; done
echo "徐汇区教育局 now:"
sqlite3 -header -column "$T/xuhui.db" "SELECT id, name, school_code, updatetime FROM student WHERE updatetime = '$NOW' ORDER BY id"
echo "浦东新区某中学 now:"
sqlite3 -header -column "$T/pudong.db" "SELECT id, name, id_card, stage FROM student WHERE id = 990002"

step "8. Run history and subscription state"
show dxctl runs
show dxctl subscriptions
step "9. Each agent's ledger: (subscription, batch sequence, watermark), committed with the rows"
sqlite3 -header -column "$T/xuhui.db" "SELECT * FROM dx_ledger"
sqlite3 -header -column "$T/pudong.db" "SELECT * FROM dx_ledger"
echo
echo "Demo finished. Logs were in $T (removed on exit; KEEP_DEMO=1 keeps them)."
