#!/usr/bin/env bash
# The sharing workflow end to end, with one user per role and the refused paths: a provider
# registers entries (every description problem listed at once; another organisation's entry
# refused), the technical admin reviews, the coordinator publishes; a consumer applies
# (confidentiality agreement), may not approve its own application, the approvals narrow and
# mask, a subscription wider than its approval is refused, the subscription runs and the
# consumer's local table is checked with sqlite3 (id_card masked); not-shared and unconditional resources;
# arbitration (with recusal); suspension stops a run at a batch boundary, the dispatcher
# starts none and the agent deletes the rows, resumption reloads, termination deletes too; error reports, usage, the three
# lists, a breaking change noticed; the demand's six steps; token expiry and revocation; the
# audit log filtered by who, what and when.
source "$(dirname "$0")/harness.sh"
harness_init governance

SRC=$T/source.db
python3 "$ROOT/scripts/gen_people.py" students 20000 --sqlite "$SRC" >/dev/null
python3 "$ROOT/scripts/gen_people.py" teachers 300 --sqlite "$SRC" >/dev/null
# Small batches, one in flight: a run of the whole table takes long enough to be suspended.
write_scheduler_config "safety_lag_s: 0, retry_max_s: 2, batch_rows: 5, window: 1"
start_scheduler

# --- identities: the bootstrap admin (operator token) creates organisations and users ---
PROV=市教委基础教育处 PROV2=市教委人事处 CONS=徐汇区教育局 CONS2=浦东新区教育局 CENTRE=市教委信息中心
for org in "$PROV" "$PROV2" "$CONS" "$CONS2" "$CENTRE"; do dxctl org add "$org" >/dev/null; done
make_user prov "$PROV" provider
make_user prov2 "$PROV2" provider
make_user cons "$CONS" consumer
make_user cons2 "$CONS2" consumer
make_user coord "$CENTRE" coordinator
make_user coord2 "$CENTRE" coordinator
make_user tech "$CENTRE" admin
[ "$(stat -c %a "$T/cons.token")" = 600 ] || fail "token file is not 0600"
[ "$(as_user cons --json whoami | json_get "j['role'] + ' ' + j['organisation']")" = "consumer $CONS" ] ||
  fail "whoami of cons"
expect_fail 4 "only admin may" as_user coord user add intruder --org "$CONS" --role admin
expect_fail 4 "may not manage users" as_user cons user add intruder --org "$CONS" --role admin
pass "organisations and users with one role each; tokens in 0600 files; only the admin manages users"

# The technical admin defines the source, assigned to the providing organisation.
cat >"$T/source.yaml" <<YAML
kind: Source
name: 市教委数据中心
organisation: $PROV
connection: "$(sqlite_conn "$SRC")"
YAML
expect_fail 4 "only admin may" as_user prov apply -f "$T/source.yaml"
as_user tech apply -f "$T/source.yaml" >/dev/null

# --- the catalog lifecycle ---
entry_yaml() {  # entry_yaml NAME SHARE_TYPE FIELDS_WITHOUT [EXTRA_KEY_LINE]
  cat <<YAML
kind: CatalogEntry
name: $1
mounted: $1表
provider: $PROV
summary: 全市在籍学生基本信息
data_format: 结构化数据库表
share_type: $2
security_level: 三级
update_frequency: 每天
provision: [库表]
time_range: 2015年至今
topic: student
stages: [小学, 中学, 高中, 中职]
source: 市教委数据中心
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true, meaning: 全市唯一学生编号}
  - {item: 姓名, column: name, type: varchar(30), not_null: true, meaning: 学生姓名}
  - {item: 证件号码, column: id_card, type: char(18), meaning: 居民身份证号码}
  - {item: 学校代码, column: school_code, type: varchar(10), meaning: 在籍学校代码}
  - {item: 区代码, column: district_code, type: varchar(6), meaning: 区行政区划代码}
  - {item: 学段, column: stage, type: varchar(10), meaning: 学段}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true, meaning: 最后修改时间}
YAML
}
STU=市教委基础教育处-学生基本信息
entry_yaml "$STU" authorised >"$T/stu.yaml"

# Every problem of an incomplete entry at once, each with its key and line.
cat >"$T/bad.yaml" <<YAML
kind: CatalogEntry
name: 学生基本信息
provider: $PROV
share_type: authorised
topic: student
source: 市教委数据中心
source_table: student
updatetime_column: updatetime
fields:
  - {item: 学生编号, column: id, type: bigint, primary_key: true}
  - {item: 证件号码, column: id_card, type: char(18), primary_key: true}
  - {item: 出生, column: birth, type: dat}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
YAML
expect_fail 2 "bad.yaml:2: key 'name'" as_user prov apply -f "$T/bad.yaml"
for key in "'summary'" "'security_level'" "'fields\[2\].type': unknown column type 'dat'" \
  "'fields': 2 fields are marked primary_key" "'fields\[0\].meaning'" "'stages'" "'provision'"; do
  echo "$LAST_OUT" | grep -q "key $key" || fail "the problems do not name key $key: $LAST_OUT"
done
[ "$(echo "$LAST_OUT" | grep -c "bad.yaml:")" -ge 12 ] || fail "not every problem listed: $LAST_OUT"
[ "$(as_user tech --json catalog --all | json_get 'len(j)')" = 0 ] || fail "a refused entry was kept"
pass "an incomplete entry is refused listing all $(echo "$LAST_OUT" | grep -c "bad.yaml:") problems, each with key and line"

as_user prov apply -f "$T/stu.yaml" | grep -q submitted || fail "the provider's entry was not submitted"
[ "$(as_user cons --json catalog | json_get 'len(j)')" = 0 ] || fail "a consumer sees an unpublished entry"
expect_fail 1 "while it is submitted" as_user coord entry publish "$STU"
expect_fail 4 "only admin may" as_user prov entry review "$STU" --pass
as_user tech entry review "$STU" --return --reason "证件号码的业务含义写明为居民身份证号码（18位）" >/dev/null
[ "$(as_user prov --json entry show "$STU" | json_get "j['versions'][-1]['status']")" = returned ] || fail "not returned"
sed -i 's/meaning: 居民身份证号码}/meaning: 居民身份证号码（18位）}/' "$T/stu.yaml"
as_user prov apply -f "$T/stu.yaml" | grep -q submitted || fail "not resubmitted"
as_user tech entry review "$STU" --pass >/dev/null
expect_fail 4 "only coordinator may" as_user tech entry publish "$STU"
as_user coord entry publish "$STU" >/dev/null
[ "$(as_user cons --json catalog | json_get "[e['name'] for e in j]")" = "['$STU']" ] || fail "not published"
hist=$(as_user prov --json entry show "$STU" | json_get "[h['action'] for h in j['versions'][-1]['history']]")
[ "$hist" = "['drafted', 'submitted', 'returned', 'changed', 'submitted', 'reviewed', 'published']" ] ||
  fail "history: $hist"
pass "draft → submitted → returned with reasons → resubmitted → reviewed → published; each step by its role"

# A provider may not take over, or register for, another organisation.
entry_yaml "$STU" authorised | sed "s/^provider: .*/provider: $PROV2/" >"$T/steal.yaml"
expect_fail 4 "provided by '$PROV'" as_user prov2 apply -f "$T/steal.yaml"
entry_yaml 市教委人事处-学生信息 authorised >"$T/other.yaml"
expect_fail 4 "provided by '$PROV'.*not by '$PROV2'" as_user prov2 apply -f "$T/other.yaml"
pass "a provider editing another organisation's resource is refused"

# --- agents: each consumer registers its front-end machine ---
cat >"$T/agent-a.yaml" <<YAML
kind: Agent
name: 徐汇区教育局前置机
secret: agent-a-secret-0001
YAML
sed -e 's/徐汇区教育局前置机/浦东新区教育局前置机/' -e 's/agent-a-secret/agent-b-secret/' "$T/agent-a.yaml" >"$T/agent-b.yaml"
as_user cons apply -f "$T/agent-a.yaml" >/dev/null
as_user cons2 apply -f "$T/agent-b.yaml" >/dev/null
[ "$(as_user cons --json agents | json_get "[(a['name'], a['organisation']) for a in j]")" = "[('徐汇区教育局前置机', '$CONS')]" ] ||
  fail "agents a consumer sees"
expect_fail 4 "belongs to '$CONS'" as_user cons2 apply -f "$T/agent-a.yaml"

# --- an application (第二十五条, 附件四) ---
apply_for() {  # apply_for USER -> application id
  as_user "$1" --json app create --entry "$STU" --purpose 学籍统计与控辍保学 --scenario 区教育局学籍管理系统 \
    --columns id,name,id_card,school_code,district_code,stage,updatetime \
    --filter district_code=310104 --accept-agreement | json_get "j['id']"
}
expect_fail 2 "confidentiality agreement must be accepted" as_user cons app create --entry "$STU" \
  --purpose p --scenario s --columns id,name
APP=$(apply_for cons)
acc=$(as_user cons --json app show "$APP" | json_get "j['agreement']['accepted_by'] + ' ' + j['agreement']['organisation'] + ' ' + str(j['agreement']['accepted_at'] > 0)")
[ "$acc" = "cons $CONS True" ] || fail "agreement acceptance: $acc"
expect_fail 4 "only provider may" as_user cons app provider-decision "$APP" --approve
expect_fail 4 "provided by '$PROV', not by '$PROV2'" as_user prov2 app provider-decision "$APP" --approve
expect_fail 4 "only coordinator may" as_user cons app coordinator-decision "$APP" --approve
pass "a consumer approving its own application is refused (provider and coordinator steps)"
as_user prov app provider-decision "$APP" --approve --reason 最小够用 \
  --columns id,name,id_card,school_code,stage,updatetime --filter "stage in 小学,初中" \
  --mask id_card=partial:3:4 >/dev/null
as_user tech app tech-review "$APP" --result partly_exists --note "学段字段需从学籍系统接入" >/dev/null
[ "$(as_user cons --json app show "$APP" | json_get "j['state']")" = integrating ] || fail "no integration task"
as_user tech app integrated "$APP" --note 已接入 >/dev/null
as_user coord app coordinator-decision "$APP" --approve --reason 同意 >/dev/null
[ "$(as_user cons --json app show "$APP" | json_get "j['state']")" = approved ] || fail "not approved"
pass "application $APP: provider narrows and masks, technical review (partly exists → integration), coordinator approves"

# --- subscriptions bounded by the approval (最小够用) ---
sub() {  # sub USER NAME AGENT COLUMNS FILTER... -> dxctl subscribe
  local who=$1 name=$2 agent=$3 cols=$4; shift 4
  local args=()
  for f in "$@"; do args+=(--filter "$f"); done
  as_user "$who" subscribe "$name" --agent "$agent" --entry "$STU" --application "$APP" \
    --columns "$cols" "${args[@]}" --target-table student
}
expect_fail 4 "column 'district_code' was not approved" sub cons xh-stu 徐汇区教育局前置机 \
  id,name,district_code,updatetime district_code=310104 "stage in 小学,初中"
expect_fail 4 "rows beyond the approval.*stage in" sub cons xh-stu 徐汇区教育局前置机 \
  id,name,updatetime district_code=310104
expect_fail 4 "rows beyond the approval.*district_code = 310104" sub cons xh-stu 徐汇区教育局前置机 \
  id,name,updatetime "stage in 小学,初中"
expect_fail 4 "granted to '$CONS'" sub cons2 pd-stu 浦东新区教育局前置机 id,name,updatetime \
  district_code=310104 "stage in 小学,初中"
expect_fail 4 "belongs to '$CONS'" sub cons2 xh-stu 徐汇区教育局前置机 id,name,updatetime \
  district_code=310104 "stage in 小学,初中"
# Through a manifest too, and an authorised entry without an application.
cat >"$T/wide.yaml" <<YAML
kind: Subscription
name: xh-stu
agent: 徐汇区教育局前置机
entry: $STU
application: $APP
columns: [id, name, id_card, birth]
filter: [{column: district_code, value: "310104"}, {column: stage, op: in, values: [小学, 初中]}]
target_table: student
YAML
expect_fail 2 "column 'birth' is not a field" as_user cons apply -f "$T/wide.yaml"
sed -i 's/columns: \[id, name, id_card, birth\]/columns: [id, name, id_card, school_code, stage, updatetime]/' "$T/wide.yaml"
sed '/^application:/d' "$T/wide.yaml" >"$T/noapp.yaml"
expect_fail 4 "needs an approved application" as_user cons apply -f "$T/noapp.yaml"
sed 's/value: "310104"/op: in, values: ["310104", "310105"]/' "$T/wide.yaml" >"$T/wider.yaml"
expect_fail 4 "rows beyond the approval" as_user cons apply -f "$T/wider.yaml"
# Narrower than approved (one stage only) is fine.
sed 's/values: \[小学, 初中\]/values: [小学]/' "$T/wide.yaml" >"$T/narrow.yaml"
as_user cons apply -f "$T/narrow.yaml" | grep -q created || fail "the approved subscription was refused"
mask=$(as_user cons --json describe xh-stu | json_get "[(m['column'], m['method'], m['keep_first'], m['keep_last']) for m in j['masking']]")
[ "$mask" = "[('id_card', 'partial', 3, 4)]" ] || fail "the approval's masking does not travel: $mask"
pass "a subscription wider than its approval is refused (columns, rows; API and manifest); the approved one carries the masking"

# --- the exchange ---
start_agent a 徐汇区教育局前置机 agent-a-secret-0001 "$(sqlite_conn "$T/a.db")"
wait_for 20 "agent a online" agent_online 徐汇区教育局前置机
WHERE="district_code='310104' AND stage IN ('小学')"
as_user cons run xh-stu --wait --timeout 60 >/dev/null || fail "run failed: $(last_run_field xh-stu error)"
[ "$(digest_sqlite "$SRC" "SELECT id, name, school_code, stage, updatetime FROM student WHERE $WHERE ORDER BY id")" = \
  "$(digest_sqlite "$T/a.db" "SELECT id, name, school_code, stage, updatetime FROM student ORDER BY id")" ] ||
  fail "the consumer's table differs from the approved rows and columns"
# id_card arrives masked as the approval says (partial:3:4).
[ "$(digest_sqlite "$SRC" "SELECT id, substr(id_card, 1, 3) || '***********' || substr(id_card, 15, 4) FROM student WHERE $WHERE ORDER BY id")" = \
  "$(digest_sqlite "$T/a.db" "SELECT id, id_card FROM student ORDER BY id")" ] ||
  fail "id_card is not masked as approved: $(sqlite3 "$T/a.db" 'SELECT id_card FROM student LIMIT 1')"
[ "$(sqlite3 "$T/a.db" "SELECT group_concat(name) FROM pragma_table_info('student')")" = \
  "id,name,id_card,school_code,stage,updatetime" ] || fail "the consumer's table has other columns than approved"
ROWS=$(sqlite3 "$T/a.db" "SELECT count(*) FROM student")
[ "$ROWS" -gt 0 ] || fail "no rows"
pass "the subscription ran: $ROWS approved rows at the consumer, id_card masked, checked with sqlite3"

# --- not shared, unconditional ---
entry_yaml 市教委基础教育处-学生心理健康档案 not_shared >"$T/ns.yaml"
entry_yaml 市教委基础教育处-学校学生名册 unconditional >"$T/un.yaml"
dxctl apply -f "$T/ns.yaml" | grep -q "published directly by the bootstrap admin" || fail "direct path not said"
dxctl apply -f "$T/un.yaml" >/dev/null
expect_fail 1 "not shared.*cannot be applied for" as_user cons app create --entry 市教委基础教育处-学生心理健康档案 \
  --purpose p --scenario s --columns id,name,updatetime --accept-agreement
expect_fail 2 "is not shared" as_user cons subscribe ns --agent 徐汇区教育局前置机 \
  --entry 市教委基础教育处-学生心理健康档案 --columns id,name --target-table ns
expect_fail 1 "subscribe to it directly" as_user cons app create --entry 市教委基础教育处-学校学生名册 \
  --purpose p --scenario s --columns id,name,updatetime --accept-agreement
as_user cons subscribe xh-roster --agent 徐汇区教育局前置机 --entry 市教委基础教育处-学校学生名册 \
  --columns id,name,school_code --filter district_code=310104 --target-table roster >/dev/null
as_user cons run xh-roster --wait --timeout 60 >/dev/null || fail "the unconditional subscription failed"
pass "a not-shared resource cannot be applied for or subscribed; an unconditional one is subscribed at once"

# --- arbitration (附件四) ---
A2=$(apply_for cons2)
expect_fail 2 "states its reason" as_user prov app provider-decision "$A2" --refuse
as_user prov app provider-decision "$A2" --refuse --reason "浦东新区不在本资源的共享范围" >/dev/null
as_user cons2 app arbitrate "$A2" --reason "区级控辍保学需要" >/dev/null
as_user coord app arbitration-decision "$A2" --fail --reason "理由不充分" >/dev/null
[ "$(as_user cons2 --json app show "$A2" | json_get "j['state']")" = closed ] || fail "failed arbitration"
A3=$(apply_for cons2)
as_user prov app provider-decision "$A3" --approve --reason ok >/dev/null
as_user tech app tech-review "$A3" --result exists >/dev/null
as_user coord app coordinator-decision "$A3" --refuse --reason "暂缓" >/dev/null
expect_fail 4 "made the refusal under arbitration" as_user coord app arbitration-decision "$A3" --pass --reason x
as_user cons2 app arbitrate "$A3" --reason "区级控辍保学需要" >/dev/null
expect_fail 4 "made the refusal under arbitration" as_user coord app arbitration-decision "$A3" --pass --reason x
as_user coord2 app arbitration-decision "$A3" --pass --reason "仲裁通过" >/dev/null
[ "$(as_user cons2 --json app show "$A3" | json_get "j['state']")" = approved ] || fail "passed arbitration"
pass "arbitration: a refusal fails in arbitration (closed) or passes (approved); the refusing coordinator recuses"

# --- suspension at a batch boundary, resumption, termination ---
cat >"$T/big.yaml" <<YAML
kind: Subscription
name: xh-all
agent: 徐汇区教育局前置机
entry: 市教委基础教育处-学校学生名册
columns: [id, name, school_code, updatetime]
target_table: all_students
YAML
as_user cons apply -f "$T/big.yaml" >/dev/null
as_user cons run xh-all >/dev/null
all_rows() { sqlite3 "$T/a.db" 'SELECT count(*) FROM all_students' 2>/dev/null || echo 0; }
delivering() { [ "$(all_rows)" -gt 0 ]; }
run_failed() { [ "$(last_run_field xh-all status)" = failed ]; }
wait_for 30 "the big run to deliver" delivering
as_user prov suspend xh-all --reason "数据核查期间暂停共享" >/dev/null
wait_for 30 "the run to stop" run_failed
err=$(last_run_field xh-all error)
echo "$err" | grep -q "delivery halted: subscription 'xh-all' was suspended by prov (provider, $PROV): 数据核查期间暂停共享" ||
  fail "the run did not stop at a batch boundary for the suspension: $err"
held=$(last_run_field xh-all rows)
[ "$held" -lt 20000 ] || fail "the whole table arrived before the suspension ($held rows): make the run longer"
# The suspension also deletes what the agent holds, and the agent confirms.
wait_for 30 "the agent to delete the suspended subscription's rows" deletion_confirmed xh-all
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM sqlite_master WHERE name = 'all_students'")" = 0 ] ||
  fail "the suspended subscription's table is still at the agent"
expect_fail 1 "is suspended" as_user cons run xh-all
runs_before=$(as_user cons --json runs -s xh-all -n 100 | json_get 'len(j)')
sleep 1.5   # several dispatcher ticks (100 ms): none may start a run of a suspended subscription
[ "$(as_user cons --json runs -s xh-all -n 100 | json_get 'len(j)')" = "$runs_before" ] || fail "a run started while suspended"
expect_fail 4 "suspended by '$PROV'" as_user cons resume xh-all --reason "我们需要"
as_user prov resume xh-all --reason "核查完毕" >/dev/null
as_user cons run xh-all --wait --timeout 60 >/dev/null || fail "the resumed run failed: $(last_run_field xh-all error)"
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM all_students")" = 20000 ] || fail "the resumed run did not complete"
pass "a suspension stops a run at the next batch ($held of 20000 rows), deletes the rows at the agent, starts no run; the suspender resumes it (a reload)"
expect_fail 4 "may not terminate" as_user tech terminate xh-all --reason x
as_user prov terminate xh-all --reason "违反保密协议第七条" >/dev/null
expect_fail 1 "cannot be resumed" as_user coord resume xh-all --reason x
expect_fail 1 "was terminated by prov" as_user cons apply -f "$T/big.yaml"
st=$(as_user cons --json describe xh-all | json_get "j['status'] + '|' + j['halted_by'] + '|' + j['halted_role'] + '|' + j['halt_reason']")
[ "$st" = "terminated|prov|provider|违反保密协议第七条" ] || fail "termination record: $st"
wait_for 30 "the agent to delete the terminated subscription's rows" deletion_confirmed xh-all
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM sqlite_master WHERE name = 'all_students'")" = 0 ] ||
  fail "the terminated subscription's table is still at the agent"
[ "$(sqlite3 "$T/a.db" "SELECT count(*) FROM dx_ledger WHERE subscription = 'xh-all'")" = 0 ] ||
  fail "the agent kept the terminated subscription's ledger"
pass "termination by the provider, recorded with who and why, deleted at the agent and confirmed; it cannot be resumed or re-applied"

# --- error reports (第九条), usage (附件一 第三条(七)), the three lists ---
expect_fail 1 "has no subscription" as_user cons2 feedback report --entry "$STU" --text "姓名有误"
FB=$(as_user cons --json feedback report --entry "$STU" --subscription xh-stu --text "学生 1 的学校代码有误" | json_get "j['id']")
[ "$(as_user prov --json feedback list --state open | json_get "[f['id'] for f in j]")" = "[$FB]" ] || fail "provider's queue"
expect_fail 4 "only provider may" as_user cons feedback resolve "$FB" --corrected --note x
as_user prov feedback resolve "$FB" --corrected --note "已更正学校代码" >/dev/null
[ "$(as_user cons --json feedback list | json_get "j[0]['state']")" = corrected ] || fail "feedback state"
usage=$(as_user prov --json usage | json_get "[(u['consumer'], u['rows']) for u in j if u['entry'] == '$STU']")
[ "$usage" = "[('$CONS', $ROWS)]" ] || fail "usage: $usage"
expect_fail 4 "only admin, coordinator, provider may" as_user cons usage
expect_fail 4 "only admin, coordinator may" as_user prov lists
lists=$(as_user coord --json lists --org "$PROV" | json_get "(sorted(n['entry'] for n in j[0]['negative']), sorted(r['what'] for r in j[0]['responsibility']))")
[ "$lists" = "(['市教委基础教育处-学生心理健康档案'], ['市教委基础教育处-学校学生名册', '$STU'])" ] || fail "lists: $lists"
[ "$(as_user coord --json lists --org "$CONS2" | json_get "sorted(d['id'] for d in j[0]['demand'])")" = "[$A2, $A3]" ] || fail "demand list"
pass "error report corrected by the provider; usage per consumer ($ROWS rows); negative, responsibility and demand lists"

# --- the demand's six steps (第二十六条, 附件五) ---
D=$(as_user cons --json demand file --title 学生体质健康测试成绩 --description "各区学生体质健康标准测试成绩" \
  --purpose 区级体育工作评估 --method table --frequency 每学期 --item "测试成绩:总分:数字" --item "测试日期" | json_get "j['id']")
expect_fail 4 "only admin may" as_user cons demand step "$D" compare --note x
expect_fail 1 "follows 'compared'" as_user coord demand step "$D" negotiate --provider "$PROV" --scope 全市 --method table
as_user tech demand step "$D" compare --note "现有目录无该数据项" >/dev/null
as_user coord demand step "$D" negotiate --provider "$PROV" --scope "全市中小学，2020年起" --method table --note 三方会商 >/dev/null
as_user tech demand step "$D" plan --note "从体质健康系统库表接入，每学期同步" >/dev/null
as_user prov demand step "$D" confirm >/dev/null
[ "$(as_user cons --json demand show "$D" | json_get "j['state']")" = planned ] || fail "one confirmation moved it on"
as_user cons demand step "$D" confirm >/dev/null
as_user prov demand step "$D" integrate --note "已集成" >/dev/null
cat >"$T/tz.yaml" <<YAML
$(entry_yaml 市教委基础教育处-学生体质健康测试 authorised)
YAML
as_user prov apply -f "$T/tz.yaml" >/dev/null
as_user tech demand step "$D" catalogue --entry 市教委基础教育处-学生体质健康测试 >/dev/null
expect_fail 1 "not published yet" as_user cons demand step "$D" apply --application 1
as_user tech entry review 市教委基础教育处-学生体质健康测试 --pass >/dev/null
as_user coord entry publish 市教委基础教育处-学生体质健康测试 >/dev/null
TA=$(as_user cons --json app create --entry 市教委基础教育处-学生体质健康测试 --purpose 体育评估 --scenario 区级评估 \
  --columns id,name,updatetime --accept-agreement | json_get "j['id']")
as_user cons demand step "$D" apply --application "$TA" >/dev/null
steps=$(as_user tech --json demand show "$D" | json_get "j['state'] + ' ' + ','.join(h['action'] for h in j['history'])")
[ "$steps" = "applied filed,compare,negotiate,plan,confirm,confirm,integrate,catalogue,apply" ] || fail "demand: $steps"
pass "a demand moved through its six steps to a new catalog entry and an application; wrong role and order refused"

# --- a published change that breaks a subscriber is flagged ---
entry_yaml "$STU" authorised | sed '/column: id_card/d' >"$T/stu2.yaml"
as_user prov apply -f "$T/stu2.yaml" | grep -q submitted || fail "v2 not submitted"
as_user tech entry review "$STU" --pass >/dev/null
as_user coord entry publish "$STU" >/dev/null
notice=$(as_user cons --json notices | json_get "[n['subscription'] + ': ' + n['text'] for n in j]")
echo "$notice" | grep -q "xh-stu: version 2 of '$STU' published by coord breaks subscription 'xh-stu': column 'id_card' was removed" ||
  fail "the subscriber was not told: $notice"
[ "$(as_user tech --json notices | json_get 'len(j)')" -ge 1 ] || fail "the technical admin was not told"
[ "$(as_user cons2 --json notices | json_get 'len(j)')" = 0 ] || fail "another organisation saw the notice"
pass "publishing a version that removes a subscribed column leaves a notice for the subscriber and the admins"

# --- tokens: expiry and revocation ---
as_user tech token issue --user cons --seconds 2 --out "$T/short.token" >/dev/null
DX_TOKEN= DX_TOKEN_FILE="$T/short.token" "$DXCTL_BIN" whoami >/dev/null || fail "a fresh token was refused"
short_expired() { ! DX_TOKEN= DX_TOKEN_FILE="$T/short.token" "$DXCTL_BIN" whoami; }
wait_for 10 "the short token to expire" short_expired
expect_fail 1 "expired at" env DX_TOKEN= DX_TOKEN_FILE="$T/short.token" "$DXCTL_BIN" whoami
as_user cons token issue --label spare --out "$T/spare.token" >/dev/null
SPARE=$(as_user cons --json token list | json_get "[k['id'] for k in j if k['label'] == 'spare'][0]")
expect_fail 4 "belongs to user 'cons'" as_user cons2 token revoke "$SPARE"
as_user cons token revoke "$SPARE" >/dev/null
expect_fail 1 "was revoked by cons" env DX_TOKEN= DX_TOKEN_FILE="$T/spare.token" "$DXCTL_BIN" whoami
chmod 644 "$T/cons.token"
expect_fail 2 "mode 0644: others may read it" as_user cons whoami
chmod 600 "$T/cons.token"
pass "an expired token and a revoked token are refused; a token file readable by others is not used"

# --- the audit log, filtered by who, what and when ---
as_user cons --json audit >/dev/null 2>&1 && fail "a consumer read the audit log"
a=$(as_user tech --json audit --who cons --what application. | json_get "sorted(set(r['action'] + ' ' + r['result'].split(':')[0] for r in j))")
[ "$a" = "['application.coordinator-decision refused', 'application.create ok', 'application.create refused', 'application.provider-decision refused']" ] ||
  fail "audit by who/what: $a"
a=$(as_user tech --json audit --what subscription.suspend --since 1h | json_get "[(r['actor'], r['role'], r['organisation'], r['target'], r['result']) for r in j]")
[ "$a" = "[('prov', 'provider', '$PROV', 'subscription/xh-all', 'ok: 数据核查期间暂停共享')]" ] || fail "audit of the suspension: $a"
[ "$(as_user tech --json audit --what subscription.suspend --until 2000-01-01 | json_get 'len(j)')" = 0 ] || fail "--until"
a=$(as_user coord --json audit --what subscription.resume | json_get "[(r['actor'], r['result'][:8]) for r in j]")
[ "$a" = "[('cons', 'refused:'), ('prov', 'ok: 核查完毕'), ('coord', 'refused:')]" ] || fail "refusals in the audit: $a"
from=$(as_user tech --json audit --what catalog.publish -n 1 | json_get "j[0]['from']")
echo "$from" | grep -q "^127.0.0.1:" || fail "no address in the audit: $from"
as_user tech audit-verify >/dev/null || fail "the audit chain does not verify"
pass "the audit log holds who, role, organisation, what, target, address and outcome; filters by who, what and when"

# --- the catalog examples of the three topic libraries (conf/catalog/) ---
PLAN=市教委发展规划处
dxctl org add "$PLAN" >/dev/null
make_user prov3 "$PLAN" provider
sqlite3 "$SRC" "CREATE TABLE XS_JBXX (XSID BIGINT PRIMARY KEY, XJH VARCHAR(19) NOT NULL,
  XM VARCHAR(30) NOT NULL, XBM CHAR(1), CSRQ DATE, SFZJH CHAR(18), MZM CHAR(2),
  XXDM VARCHAR(10) NOT NULL, QXDM CHAR(6) NOT NULL, XD VARCHAR(10), NJ VARCHAR(10), BJ VARCHAR(20),
  UPDATETIME DATETIME NOT NULL)"
sqlite3 "$T/hr.db" "CREATE TABLE JZG_JBXX (JZGH VARCHAR(20) PRIMARY KEY, XM VARCHAR(30) NOT NULL,
  XBM CHAR(1), CSRQ DATE, SFZJH CHAR(18), XXDM VARCHAR(10) NOT NULL, RZZT VARCHAR(10),
  ZYJSZW VARCHAR(20), RJXK VARCHAR(20), CJGZNY CHAR(7), UPDATETIME DATETIME NOT NULL)"
sqlite3 "$T/stat.db" "CREATE TABLE XX_JBXX (XXDM VARCHAR(10) PRIMARY KEY, XXMC VARCHAR(60) NOT NULL,
  XXBXLXM CHAR(3), XXJBZM CHAR(3), QXDM CHAR(6) NOT NULL, XXDZ VARCHAR(120), LXDH VARCHAR(20),
  JXNY CHAR(7), UPDATETIME DATETIME NOT NULL);
  INSERT INTO XX_JBXX VALUES ('3101040001', '上海市徐汇区第一中学', '311', '821', '310104',
    '上海市徐汇区某路 100 号', '021-64000000', '1952-09', '2024-09-01 08:00:00'),
   ('3101150002', '上海市浦东新区某小学', '211', '821', '310115', NULL, NULL, '1998-09',
    '2024-09-01 08:00:00');
  CREATE TABLE XX_ZSTJ (TJID BIGINT PRIMARY KEY, XN CHAR(9) NOT NULL, QXDM CHAR(6) NOT NULL,
  XD VARCHAR(10), JHRS INT, LQRS INT, UPDATETIME DATETIME NOT NULL)"
cat >"$T/sources.yaml" <<YAML
kind: Source
name: 市教委人事数据库
organisation: $PROV2
connection: "$(sqlite_conn "$T/hr.db")"
---
kind: Source
name: 市教委事业统计库
organisation: $PLAN
connection: "$(sqlite_conn "$T/stat.db")"
YAML
as_user tech apply -f "$T/sources.yaml" >/dev/null
as_user prov apply -f "$ROOT/conf/catalog/students.yaml" | grep -q submitted || fail "students.yaml"
as_user prov2 apply -f "$ROOT/conf/catalog/teachers.yaml" | grep -q submitted || fail "teachers.yaml"
[ "$(as_user prov3 --json apply -f "$ROOT/conf/catalog/institutions.yaml" | json_get "[o['action'] for o in j]")" = \
  "['submitted', 'submitted']" ] || fail "institutions.yaml"
for e in 市教委基础教育处-学生基本信息 市教委人事处-教职工基本信息 市教委发展规划处-学校基本信息 市教委发展规划处-分区招生统计; do
  as_user tech entry review "$e" --pass >/dev/null
  as_user coord entry publish "$e" >/dev/null
done
as_user cons subscribe xh-schools --agent 徐汇区教育局前置机 --entry 市教委发展规划处-学校基本信息 \
  --columns XXDM,XXMC,QXDM,UPDATETIME --target-table schools >/dev/null
as_user cons run xh-schools --wait --timeout 60 >/dev/null || fail "the institutions example did not run"
[ "$(sqlite3 "$T/a.db" "SELECT group_concat(XXMC, '|') FROM (SELECT XXMC FROM schools ORDER BY XXDM)")" = \
  "上海市徐汇区第一中学|上海市浦东新区某小学" ] || fail "the schools did not arrive"
[ "$(as_user coord --json lists --org "$PLAN" | json_get "[n['entry'] for n in j[0]['negative']]")" = \
  "['市教委发展规划处-分区招生统计']" ] || fail "the example's not-shared entry is not on the negative list"
pass "conf/catalog: the student, teacher and institution examples pass review and publish; the schools arrive"
