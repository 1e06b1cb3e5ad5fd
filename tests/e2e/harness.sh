# Shared helpers of the end-to-end tests: a temporary directory, a scheduler and agents on
# loopback, dxctl, and waits on conditions with deadlines (no blind sleeps).
# Usage: source this file, then call `harness_init NAME`.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
BUILD=${DX_BUILD_DIR:-$ROOT/build}
SCHEDULER_BIN=$BUILD/scheduler/dx-scheduler
AGENT_BIN=$BUILD/agent/dx-agent
DXCTL_BIN=$BUILD/scheduler/dxctl/dxctl
source "$ROOT/scripts/servers.sh"

TOKEN=e2e-operator-token-0123456789
declare -A AGENT_PIDS=()
SCHEDULER_PID=""

harness_init() {
  T=$(mktemp -d "/tmp/dx-e2e-$1.XXXXXX")
  chmod 755 "$T"
  trap harness_cleanup EXIT
  make_tls_cert "$T/tls"
  export DX_TOKEN=$TOKEN
  echo "== $1 (work dir $T)"
}

MOUNTS=()   # filesystems a test mounted; unmounted at exit
HELPER_PIDS=()   # background helpers a test started (writers, timers); killed at exit

harness_cleanup() {
  local rc=$? m
  [ ${#HELPER_PIDS[@]} -eq 0 ] || kill "${HELPER_PIDS[@]}" 2>/dev/null || true
  stop_all
  stop_servers
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  # Daemons built with a sanitizer report into their logs and carry on (TSAN_OPTIONS
  # halt_on_error=0): any report fails the test.
  if grep -l -E 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:' \
    "$T"/*.log 2>/dev/null; then
    echo "FAIL: a sanitizer reported in the logs above" >&2
    for f in "$T"/*.log; do
      grep -q -E 'ThreadSanitizer|AddressSanitizer|runtime error:' "$f" && sed -n '/WARNING: ThreadSanitizer\|ERROR: AddressSanitizer\|runtime error:/,+40p' "$f" | head -n 120
    done
    [ $rc -ne 0 ] || rc=1
  fi
  if [ $rc -ne 0 ]; then
    echo "---- logs of the failed test ----"
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
  fi
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
  exit $rc
}

# make_tls_cert PREFIX: a self-signed certificate for the scheduler at 127.0.0.1 (PREFIX.crt,
# PREFIX.key); the agents trust exactly this certificate.
make_tls_cert() {
  bash "$ROOT/scripts/make-cert.sh" -q -f -d 30 -o "$1" 127.0.0.1 localhost
}

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.1
  done
}

# write_scheduler_config [extra exchange yaml]: config with free ports chosen by the kernel.
write_scheduler_config() {
  cat >"$T/scheduler.yaml" <<YAML
store: {path: $T/scheduler.db}
listen: {agents: "127.0.0.1:${AGENTS_PORT:-0}", admin: "127.0.0.1:${ADMIN_PORT:-0}"}
tls: {cert: $T/tls.crt, key: $T/tls.key}
admin: {token: $TOKEN}
heartbeat_s: 1
tick_ms: 100
exchange: {${1:-safety_lag_s: 0, retry_max_s: 2}}
YAML
}

start_scheduler() {
  rm -f "$T/ports"
  "$SCHEDULER_BIN" -c "$T/scheduler.yaml" --ports-file "$T/ports" >>"$T/scheduler.log" 2>&1 &
  SCHEDULER_PID=$!
  wait_for 20 "scheduler ports" test -s "$T/ports"
  AGENTS_PORT=$(sed -n 's/^agents=//p' "$T/ports")
  ADMIN_PORT=$(sed -n 's/^admin=//p' "$T/ports")
  export DX_SERVER=http://127.0.0.1:$ADMIN_PORT
}

kill_scheduler() {
  [ -n "$SCHEDULER_PID" ] && kill -9 "$SCHEDULER_PID" 2>/dev/null && wait "$SCHEDULER_PID" 2>/dev/null || true
  SCHEDULER_PID=""
}

# start_agent ID NAME SECRET CONNECTION [SHARED_ROOT]
start_agent() {
  cat >"$T/agent-$1.yaml" <<YAML
name: $2
secret: $3
scheduler: 127.0.0.1:$AGENTS_PORT
target: {connection: "$4"}
files: {shared_root: "${5:-$T/shared-$1}", mode: "0640"}
tls: {ca: $T/tls.crt}
reconnect: {min_ms: 50, max_ms: 500}
YAML
  "$AGENT_BIN" -c "$T/agent-$1.yaml" >>"$T/agent-$1.log" 2>&1 &
  AGENT_PIDS[$1]=$!
}

restart_agent() {
  "$AGENT_BIN" -c "$T/agent-$1.yaml" >>"$T/agent-$1.log" 2>&1 &
  AGENT_PIDS[$1]=$!
}

kill_agent() {
  local pid=${AGENT_PIDS[$1]:-}
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  AGENT_PIDS[$1]=""
}

stop_all() {
  local id pids=()
  for id in "${!AGENT_PIDS[@]}"; do
    [ -n "${AGENT_PIDS[$id]}" ] && pids+=("${AGENT_PIDS[$id]}")
  done
  [ -n "$SCHEDULER_PID" ] && pids+=("$SCHEDULER_PID")
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  kill -CONT "${pids[@]}" 2>/dev/null || true   # one a test stopped (SIGSTOP) takes its TERM too
  wait "${pids[@]}" 2>/dev/null || true   # only our daemons: database servers are stopped apart
}

dxctl() { "$DXCTL_BIN" "$@"; }

agent_online() { dxctl --json agents | python3 -c "import json,sys; a=[x for x in json.load(sys.stdin) if x['name']==sys.argv[1]]; sys.exit(0 if a and a[0]['online'] else 1)" "$1"; }

# last_run_field SUBSCRIPTION FIELD
last_run_field() {
  dxctl --json runs -s "$1" -n 1 | python3 -c "import json,sys; r=json.load(sys.stdin); print(r[0][sys.argv[1]] if r else '')" "$2"
}

sqlite_conn() { echo "Driver=SQLite3;Database=$1;JournalMode=WAL;SyncPragma=NORMAL"; }

# A content digest of a query's rows (as text, sorted by the query).
digest_sqlite() { sqlite3 "$1" "$2" | md5sum | cut -d' ' -f1; }

# write_student_manifest SOURCE_CONNECTION [SCHEDULE_A] [SCHEDULE_B]: the student catalog entry,
# two agents (a, b) and two subscriptions of the same table with different columns and rows:
#   sub-a: district 310104, no ID numbers;  sub-b: district 310115 high/vocational, with ID.
write_student_manifest() {
  cat >"$T/manifest.yaml" <<YAML
kind: Source
name: src
connection: "$1"
---
kind: CatalogEntry
name: 市教委-学生基本信息
provider: 市教委基础教育处
summary: 全市在籍学生基本信息
share_type: authorised
topic: student
source: src
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true}
  - {item: 姓名, column: name, type: varchar(30), not_null: true}
  - {item: 证件号码, column: id_card, type: char(18)}
  - {item: 学校代码, column: school_code, type: varchar(10)}
  - {item: 区代码, column: district_code, type: varchar(6)}
  - {item: 学段, column: stage, type: varchar(10)}
  - {item: 出生日期, column: birth, type: date}
  - {item: 性别, column: gender, type: int}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
---
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
---
kind: Agent
name: 浦东某中学
secret: agent-b-secret-0002
---
kind: Subscription
name: sub-a
agent: 徐汇区教育局
entry: 市教委-学生基本信息
columns: [id, name, school_code, district_code, stage, gender, updatetime]
filter: [{column: district_code, op: "=", value: "310104"}]
target_table: student
schedule: ${2:-manual}
---
kind: Subscription
name: sub-b
agent: 浦东某中学
entry: 市教委-学生基本信息
columns: [id, name, id_card, school_code, stage, birth]
filter:
  - {column: district_code, op: "=", value: "310115"}
  - {column: stage, op: in, values: [高中, 中职]}
target_table: student
schedule: ${3:-manual}
YAML
}

SUB_A_COLS="id,name,school_code,district_code,stage,gender,updatetime"
SUB_A_WHERE="district_code='310104'"
SUB_B_COLS="id,name,id_card,school_code,stage,birth"
SUB_B_WHERE="district_code='310115' AND stage IN ('高中','中职')"

# Waits until the clock enters the next second: rows stamped in the current second are held
# back by the exclusive extraction bound until then.
next_second() {
  local s
  s=$(date +%s)
  while [ "$(date +%s)" = "$s" ]; do sleep 0.02; done
}

# write_file_manifest DIRECTORY [PROPAGATE_DELETES] [BANDWIDTH_KBPS]: a file resource over
# DIRECTORY, agent a, and subscription files-a delivering it into 教学资源 under the shared root.
write_file_manifest() {
  cat >"$T/manifest.yaml" <<YAML
kind: FileResource
name: 市教委-教学资源文件
provider: 市教委教研室
summary: 教学课件、视频与文档
share_type: unconditional
topic: institution
directory: $1
exclude: ["*.tmp"]
---
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
bandwidth_kbps: ${3:-0}
---
kind: Subscription
name: files-a
agent: 徐汇区教育局
entry: 市教委-教学资源文件
target_path: 教学资源
propagate_deletes: ${2:-false}
schedule: manual
YAML
}

# start_file_agent ID SHARED_ROOT: agent a (of write_file_manifest) with its shared root.
start_file_agent() {
  start_agent "$1" 徐汇区教育局 agent-a-secret-0001 "$(sqlite_conn "$T/$1.db")" "$2"
}

# random_file PATH BYTES: incompressible content, fast (AES-CTR keystream).
random_file() {
  mkdir -p "$(dirname "$1")"
  { openssl enc -aes-128-ctr -nosalt -pass "pass:$RANDOM$RANDOM" -in /dev/zero 2>/dev/null || true; } |
    head -c "$2" >"$1"
}

# tree_digest DIR: path, size and SHA-256 of every regular file, sorted (ignores .dxpart files).
tree_digest() {
  (cd "$1" && find . -type f ! -name '*.dxpart' -print0 | sort -z | xargs -0 -r sha256sum) | md5sum | cut -d' ' -f1
}

# --- governance (users, roles, tokens) ---

# make_user NAME ORGANISATION ROLE: creates the user (as the bootstrap admin) and its token in
# $T/NAME.token (mode 0600), for as_user.
make_user() {
  dxctl user add "$1" --org "$2" --role "$3" >/dev/null
  dxctl token issue --user "$1" --label e2e --out "$T/$1.token" >/dev/null
}

# as_user NAME DXCTL_ARGS...: dxctl signed in as NAME (its token file; never an argument).
as_user() {
  local who=$1; shift
  DX_TOKEN= DX_TOKEN_FILE="$T/$who.token" "$DXCTL_BIN" "$@"
}

# expect_fail CODE PATTERN COMMAND...: COMMAND exits with CODE and says PATTERN (grep -E).
expect_fail() {
  local code=$1 pattern=$2 out rc; shift 2
  set +e; out=$("$@" 2>&1); rc=$?; set -e
  [ "$rc" = "$code" ] || fail "expected exit $code from '$*', got $rc: $out"
  echo "$out" | grep -Eq -- "$pattern" || fail "'$*' did not say /$pattern/: $out"
  LAST_OUT=$out
}

# json_get PYTHON_EXPRESSION: evaluates it over the JSON on stdin (bound to j).
json_get() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# --- the data plane under the sharing workflow (masking, suspension, termination) ---

SHARE_PROV=市教委基础教育处
SHARE_CONS=徐汇区教育局
SHARE_COORD=市教委信息中心

# setup_sharing: the provider, consumer and coordinator organisations and their users prov,
# cons and coord (token files for as_user); the operator is the technical admin.
setup_sharing() {
  local org
  for org in "$SHARE_PROV" "$SHARE_CONS" "$SHARE_COORD"; do dxctl org add "$org" >/dev/null; done
  make_user prov "$SHARE_PROV" provider
  make_user cons "$SHARE_CONS" consumer
  make_user coord "$SHARE_COORD" coordinator
}

# apply_provider_source CONNECTION: the provider's source 市教委数据中心 (of $SHARE_PROV) at
# the ODBC CONNECTION, applied by the operator.
apply_provider_source() {
  printf 'kind: Source\nname: 市教委数据中心\norganisation: %s\nconnection: "%s"\n' \
    "$SHARE_PROV" "$1" >"$T/source.yaml"
  dxctl apply -f "$T/source.yaml" >/dev/null
}

# student_entry_yaml NAME SHARE_TYPE SOURCE: a catalog entry over the `student` table that
# scripts/gen_people.py writes, provided by $SHARE_PROV.
student_entry_yaml() {
  cat <<YAML
kind: CatalogEntry
name: $1
mounted: $1表
provider: $SHARE_PROV
summary: 全市在籍学生基本信息
data_format: 结构化数据库表
share_type: $2
security_level: 三级
update_frequency: 每天
provision: [库表]
time_range: 2015年至今
topic: student
stages: [小学, 中学, 高中, 中职]
source: $3
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true, meaning: 全市唯一学生编号}
  - {item: 姓名, column: name, type: varchar(30), not_null: true, meaning: 学生姓名}
  - {item: 证件号码, column: id_card, type: char(18), meaning: 居民身份证号码}
  - {item: 学校代码, column: school_code, type: varchar(10), meaning: 在籍学校代码}
  - {item: 区代码, column: district_code, type: varchar(6), meaning: 区行政区划代码}
  - {item: 学段, column: stage, type: varchar(10), meaning: 学段}
  - {item: 出生日期, column: birth, type: date, meaning: 出生日期}
  - {item: 性别, column: gender, type: int, meaning: 性别代码}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true, meaning: 最后修改时间}
YAML
}

# consumer_agent_yaml NAME SECRET: a front-end machine of $SHARE_CONS (applied by cons).
consumer_agent_yaml() {
  printf 'kind: Agent\nname: %s\nsecret: %s\n' "$1" "$2"
}

# approved_application ENTRY COLUMNS FILTER MASK...: cons applies for ENTRY (COLUMNS, one
# FILTER condition), prov approves with the masking rules MASK ("column=method"), the operator
# reviews it technically, coord approves; prints the application's id.
approved_application() {
  local entry=$1 columns=$2 filter=$3 app m; shift 3
  local masks=()
  for m in "$@"; do masks+=(--mask "$m"); done
  app=$(as_user cons --json app create --entry "$entry" --purpose 学籍管理 --scenario 区学籍系统 \
    --columns "$columns" --filter "$filter" --accept-agreement | json_get "j['id']")
  as_user prov app provider-decision "$app" --approve --reason 最小够用 "${masks[@]}" >/dev/null
  dxctl app tech-review "$app" --result exists >/dev/null
  as_user coord app coordinator-decision "$app" --approve --reason 同意 >/dev/null
  echo "$app"
}

# subscription_field SUBSCRIPTION PYTHON_EXPRESSION: over `dxctl --json describe` (bound to j).
subscription_field() { dxctl --json describe "$1" | json_get "$2"; }

# deletion_confirmed SUBSCRIPTION: the agent confirmed it deleted the subscription's data.
deletion_confirmed() { [ "$(subscription_field "$1" "j['deletion_confirmed_at_ms'] > 0")" = True ]; }

# masking_key_for ORGANISATION: the key hashed columns of ORGANISATION are made under, computed
# here (Python's hmac, not DX's code) from the scheduler's masking key file.
masking_key_for() {
  python3 - "$T/scheduler.db.masking-key" "$1" <<'PY'
import hashlib, hmac, sys
master = open(sys.argv[1]).readline().strip().encode()
print(hmac.new(master, ("dx masking key for organisation " + sys.argv[2]).encode(), hashlib.sha256).hexdigest())
PY
}
# start_scheduler_as USER: like start_scheduler, but the scheduler runs as USER (setpriv), so
# that files the test makes unreadable (mode 000) really are unreadable to it even when the
# test runs as root. The work directory and the TLS key are handed to USER.
start_scheduler_as() {
  chown "$1" "$T" "$T/tls.key" "$T/tls.crt"
  [ ! -e "$T/scheduler.db" ] || chown "$1" "$T"/scheduler.db*
  rm -f "$T/ports"
  setpriv --reuid="$1" --regid="$(id -g "$1")" --clear-groups \
    "$SCHEDULER_BIN" -c "$T/scheduler.yaml" --ports-file "$T/ports" >>"$T/scheduler.log" 2>&1 &
  SCHEDULER_PID=$!
  wait_for 20 "scheduler ports" test -s "$T/ports"
  AGENTS_PORT=$(sed -n 's/^agents=//p' "$T/ports")
  ADMIN_PORT=$(sed -n 's/^admin=//p' "$T/ports")
  export DX_SERVER=http://127.0.0.1:$ADMIN_PORT
}

# run_and_wait SUBSCRIPTION [DXCTL RUN OPTIONS...]: runs the subscription now and waits for the
# run; sets RUN_RC (dxctl's exit code: 0 only when it succeeded) and RUN (the run as JSON).
run_and_wait() {
  local sub=$1
  shift
  set +e
  RUN=$(dxctl --json run "$sub" --wait --timeout "${RUN_TIMEOUT:-60}" "$@")
  RUN_RC=$?
  set -e
}

# run_field FIELD: a field of $RUN (id, status, error, rows, bytes...).
run_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$RUN" "$1"; }

# receipt_line RUN_ID PATH: "OUTCOME<TAB>ERROR" of PATH in the run's receipt (empty if absent).
receipt_line() {
  dxctl --json receipt "$1" | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["path"] == sys.argv[1]:
        print(r["outcome"] + "\t" + r["error"])' "$2"
}

# backdate DIR: every file and folder below DIR modified a minute ago, so that no file counts
# as still being written (files.settle_ms) when a run reads it.
backdate() { find "$1" -exec touch -h -d '-1 minute' {} +; }

# part_files DIR: the part files (.dxpart) below DIR, one per line.
part_files() { find "$1" -name '*.dxpart'; }
