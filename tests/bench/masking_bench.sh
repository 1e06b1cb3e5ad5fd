#!/usr/bin/env bash
# What masking (脱敏) costs a run. (1) The scheduler's read of a subscription through
# SubscriptionReader, whole table: without masking, with name hashed and id_card partial:3:4,
# and with birth dropped too; and the masking transform alone (tests/bench/masking_cost.cc).
# (2) Whole DX loads (resyncs), SQLite source to a SQLite agent over TLS loopback, of two
# subscriptions of one approved resource that differ only in their application's masking (none;
# name hashed and id_card partial:3:4), alternating, in the same run. Medians of BENCH_ROUNDS.
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-masking
ROWS=${BENCH_ROWS:-200000}
ROUNDS=${BENCH_ROUNDS:-5}

gen_bench_source "$T/source.db" "$ROWS"
micro=$("$BENCH_BIN/masking_cost" --source "$(sqlite_conn "$T/source.db")" --rounds "$ROUNDS")
echo "scheduler read, $ROWS rows: $micro"
field() { echo "$micro" | sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
plain_read=$(field plain_read_rows_per_s)
masked_read=$(field masked_read_rows_per_s)
dropped_read=$(field masked_dropped_read_rows_per_s)
mask_ns=$(field mask_ns_per_row)
keyed_ns=$(field keyed_hash_ns)
oneshot_ns=$(field oneshot_hmac_ns)

write_scheduler_config "safety_lag_s: 0, batch_rows: 5000, window: 4"
start_scheduler
setup_sharing
cat >"$T/bench.yaml" <<YAML
kind: Source
name: bench
organisation: $SHARE_PROV
connection: "$(sqlite_conn "$T/source.db")"
---
kind: CatalogEntry
name: 市教委基础教育处-基准学生信息
provider: $SHARE_PROV
summary: 基准测试学生数据
share_type: authorised
topic: student
source: bench
source_table: student
updatetime_column: updatetime
fields:
  - {item: 编号, column: id, type: bigint, primary_key: true}
  - {item: 姓名, column: name, type: varchar(30), not_null: true}
  - {item: 证件号码, column: id_card, type: char(18)}
  - {item: 学校代码, column: school_code, type: varchar(10)}
  - {item: 出生日期, column: birth, type: date}
  - {item: 性别, column: gender, type: int}
  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}
YAML
dxctl apply -f "$T/bench.yaml" >/dev/null
consumer_agent_yaml bench-agent bench-agent-secret-1 >"$T/agent.yaml"
as_user cons apply -f "$T/agent.yaml" >/dev/null
ENTRY=市教委基础教育处-基准学生信息
COLS=id,name,id_card,school_code,birth,gender,updatetime
PLAIN=$(approved_application "$ENTRY" "$COLS" "gender in 1,2")
MASKED=$(approved_application "$ENTRY" "$COLS" "gender in 1,2" name=hash id_card=partial:3:4)
for s in plain masked; do
  app=$PLAIN; [ $s = masked ] && app=$MASKED
  as_user cons subscribe "bench-$s" --agent bench-agent --entry "$ENTRY" --application "$app" \
    --columns "$COLS" --filter "gender in 1,2" --target-table "student_$s" >/dev/null
done
start_agent bench bench-agent bench-agent-secret-1 "$(sqlite_conn "$T/target.db")"
wait_for 20 "bench agent online" agent_online bench-agent
plain_rps=()
masked_rps=()
for r in $(seq 1 "$ROUNDS"); do
  for s in plain masked; do
    dxctl resync "bench-$s" --wait --timeout 1200 >/dev/null || echo "bench-$s failed: $(last_run_field "bench-$s" error)" >&2
    rps=$(run_rows_per_s_of "bench-$s")
    if [ $s = plain ]; then plain_rps+=("$rps"); else masked_rps+=("$rps"); fi
  done
done
run_bytes() { dxctl --json runs -s "$1" -n 1 | json_get "j[0]['bytes']"; }
bytes_plain=$(run_bytes bench-plain)
bytes_masked=$(run_bytes bench-masked)
echo "bytes on the wire per load: plain $bytes_plain, masked $bytes_masked"
echo "checks: $(sqlite3 "$T/target.db" "SELECT (SELECT count(*) FROM student_plain), (SELECT count(*) FROM student_masked), (SELECT id_card FROM student_masked LIMIT 1)")"
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
load_plain=$(median "${plain_rps[@]}")
load_masked=$(median "${masked_rps[@]}")
echo "DX load rows/s, plain: ${plain_rps[*]}; masked: ${masked_rps[*]}"
read_ratio=$(python3 -c "print(round($masked_read / $plain_read, 3))")
load_ratio=$(python3 -c "print(round($load_masked / $load_plain, 3))")
share=$(python3 -c "print(round($mask_ns / (1e9 / $load_plain) * 100, 2))")
echo "masking alone: ${mask_ns} ns/row = ${share}% of a row's time in the plain load"
echo "RESULT masking rows=$ROWS plain_read_rows_per_s=$plain_read masked_read_rows_per_s=$masked_read masked_dropped_read_rows_per_s=$dropped_read read_ratio=$read_ratio mask_ns_per_row=$mask_ns load_plain_rows_per_s=$load_plain load_masked_rows_per_s=$load_masked load_ratio=$load_ratio mask_share_of_load_pct=$share keyed_hash_ns=$keyed_ns oneshot_hmac_ns=$oneshot_ns wire_bytes_plain=$bytes_plain wire_bytes_masked=$bytes_masked"
