#!/usr/bin/env bash
# File exchange throughput, from the scheduler's provider directories to an agent's shared
# directory over loopback TLS, against plain baselines measured in the same run on the same
# bytes and disk:
#   large: a 2 GiB file        vs one loopback TCP stream written with one final fsync
#   small: 10,000 files of 4 KiB vs the same files written, fsynced in parallel in groups of
#                                 32, renamed, one directory fsync per group (as the agent does)
#   mix:   2,000 files of 1 KB to 50 MB, about 1.6 GiB (gen_file_mix.py)
#                               vs rsync -a --whole-file to a local directory, then sync
# DX verifies (SHA-256 on both sides) and fsyncs every file. This VM's disk and page cache are
# noisy and bimodal, so every measurement runs BENCH_ROUNDS times (baseline and DX taking
# turns) and the medians are compared. Needs about 4 GiB plus 3.5 GiB per round in /tmp.
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-file
BIG_MB=${BENCH_FILE_MB:-2048}
SMALL=${BENCH_SMALL_FILES:-10000}
MIX_FILES=${BENCH_MIX_FILES:-2000}
MIX_MIB=${BENCH_MIX_MIB:-1638}
ROUNDS=${BENCH_ROUNDS:-3}

mkdir -p "$T/big" "$T/small" "$T/mix" "$T/shared"
random_file "$T/big/large.bin" $((BIG_MB * 1024 * 1024))
python3 - "$T/small" "$SMALL" <<'PY'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
python3 "$ROOT/tests/bench/gen_file_mix.py" "$T/mix" "$MIX_FILES" "$MIX_MIB"
find "$T/big" "$T/small" "$T/mix" -exec touch -h -d '-1 minute' {} +   # none is "being written"
sync

write_scheduler_config "safety_lag_s: 0"
start_scheduler
{
  for s in big small mix; do
    cat <<YAML
kind: FileResource
name: 基准-$s
provider: 基准
summary: 基准测试文件
share_type: unconditional
topic: institution
directory: $T/$s
---
kind: Subscription
name: files-$s
agent: 徐汇区教育局
entry: 基准-$s
target_path: $s
---
YAML
  done
  cat <<YAML
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
YAML
} >"$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$T/shared"
wait_for 20 "agent online" agent_online 徐汇区教育局

now_ns() { date +%s%N; }
seconds_since() { python3 -c "print(f'{($(now_ns) - $1) / 1e9:.3f}')"; }
field() { python3 -c "import sys; f=dict(x.split('=') for x in sys.argv[1].split()); print(f[sys.argv[2]])" "$1" "$2"; }
# Every round writes into new folders and nothing is deleted until the end: on this VM's ext4
# (no journal) creating files just after thousands were deleted is several times slower
# (recently_deleted() in the inode allocator), which would measure the deletions, not the copy.
# dx_run NAME ROUND: files-NAME delivered whole into NAME-ROUND (a new target path makes the
# scheduler reload the subscription); prints "seconds files".
dx_run() {
  local before
  before=$(last_run_field "files-$1" id)
  sed -i "s#^target_path: $1\(-[0-9]*\)\?\$#target_path: $1-$2#" "$T/manifest.yaml"
  sync
  dxctl apply -f "$T/manifest.yaml" >/dev/null
  reloaded() { [ "$(last_run_field "files-$1" id)" != "$before" ] && [ "$(last_run_field "files-$1" status)" != running ]; }
  wait_for 1200 "the reload of files-$1" reloaded "$1"
  [ "$(last_run_field "files-$1" status)" = succeeded ] || echo "run failed: $(last_run_field "files-$1" error)" >&2
  dxctl --json runs -s "files-$1" -n 1 | python3 -c "import json,sys; r=json.load(sys.stdin)[0]; print(r['duration_ms'] / 1000, r['rows'])"
}
declare -a raw_large dx_large raw_small dx_small rsync_mix dx_mix
for round in $(seq 1 "$ROUNDS"); do
  sync
  out=$("$BENCH_BIN/raw_file_baseline" large "$T/big/large.bin" "$T/raw-large-$round.bin")
  raw_large+=("$(field "$out" seconds)")
  read -r s n < <(dx_run big "$round")
  dx_large+=("$s")
  cmp -s "$T/big/large.bin" "$T/shared/big-$round/large.bin" || echo "WARNING: large file differs"
  rm -f "$T/raw-large-$round.bin" "$T/shared/big-$round/large.bin"   # one inode each: harmless

  mkdir -p "$T/raw-small-$round"
  sync
  out=$("$BENCH_BIN/raw_file_baseline" small "$T/small" "$T/raw-small-$round")
  raw_small+=("$(field "$out" seconds)")
  read -r s n < <(dx_run small "$round")
  dx_small+=("$s")
  [ "$n" = "$SMALL" ] || echo "WARNING: $n of $SMALL small files"

  sync
  started=$(now_ns)
  rsync -a --whole-file "$T/mix/" "$T/rsync-mix-$round/"
  sync
  rsync_mix+=("$(seconds_since "$started")")
  read -r s n < <(dx_run mix "$round")
  dx_mix+=("$s")
  [ "$n" = "$MIX_FILES" ] || echo "WARNING: $n of $MIX_FILES mix files"
  echo "round $round: large raw ${raw_large[-1]} s, DX ${dx_large[-1]} s; small raw ${raw_small[-1]} s, DX ${dx_small[-1]} s; mix rsync+sync ${rsync_mix[-1]} s, DX ${dx_mix[-1]} s"
done
[ "$(tree_digest "$T/mix")" = "$(tree_digest "$T/shared/mix-$ROUNDS")" ] || echo "WARNING: the mix tree differs"
agent_rss=$(peak_rss_mb "${AGENT_PIDS[a]}")
scheduler_rss=$(peak_rss_mb "$SCHEDULER_PID")
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
mix_bytes=$(du -sb --apparent-size "$T/mix" | cut -f1)
python3 - "$BIG_MB" "$SMALL" "$mix_bytes" "$agent_rss" "$scheduler_rss" \
  "$(median "${raw_large[@]}")" "$(median "${dx_large[@]}")" "$(median "${raw_small[@]}")" \
  "$(median "${dx_small[@]}")" "$(median "${rsync_mix[@]}")" "$(median "${dx_mix[@]}")" <<'PY'
import sys
big_mb, small, mix_bytes, agent_rss, sched_rss = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
raw_l, dx_l, raw_s, dx_s, rs_m, dx_m = (float(x) for x in sys.argv[6:12])
mb = big_mb * 1048576 / 1e6
print(f"medians: large raw {raw_l} s, DX {dx_l} s; small raw {raw_s} s, DX {dx_s} s; "
      f"mix rsync+sync {rs_m} s, DX {dx_m} s ({mix_bytes / 1e6:.0f} MB); "
      f"peak RSS agent {agent_rss} MB, scheduler {sched_rss} MB")
print(f"RESULT file_sync mb_per_s={mb / dx_l:.1f} raw_mb_per_s={mb / raw_l:.1f} ratio={raw_l / dx_l:.2f} "
      f"small_files_per_s={small / dx_s:.1f} raw_small_files_per_s={small / raw_s:.1f} "
      f"small_ratio={raw_s / dx_s:.2f} mix_s={dx_m:.2f} rsync_mix_s={rs_m:.2f} "
      f"mix_ratio={rs_m / dx_m:.2f} agent_rss_mb={agent_rss}")
PY
