#!/usr/bin/env bash
# File exchange throughput: a 2 GiB file and 10,000 files of 4 KiB from the scheduler's
# provider directory to an agent's shared directory over loopback, against plain baselines
# measured here on the same bytes and disk (see raw_file_baseline.cc).
source "$(dirname "$0")/bench_lib.sh"
harness_init bench-file
BIG_MB=${BENCH_FILE_MB:-2048}
SMALL=${BENCH_SMALL_FILES:-10000}

mkdir -p "$T/big" "$T/small" "$T/raw-small" "$T/shared"
random_file "$T/big/large.bin" $((BIG_MB * 1024 * 1024))
python3 - "$T/small" "$SMALL" <<'PY'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
sync

# The disk of this VM is bimodal and its speed for small files depends on the filesystem's
# recent history, so each baseline is measured before and after DX (into fresh directories)
# and DX is compared with their mean.
rate() { python3 -c "import sys; f=dict(x.split('=') for x in sys.argv[1].split()); print(f'{float(f[\"$2\"]) / float(f[\"seconds\"]) / $3:.1f}')" "$1"; }
raw_round() {  # raw_round N -> sets raw_mb_N and raw_files_N
  local large small
  mkdir -p "$T/raw-small-$1"
  large=$("$BENCH_BIN/raw_file_baseline" large "$T/big/large.bin" "$T/raw-large.bin")
  rm -f "$T/raw-large.bin"
  small=$("$BENCH_BIN/raw_file_baseline" small "$T/small" "$T/raw-small-$1")
  echo "raw large ($1): $large"
  echo "raw small ($1): $small"
  eval "raw_mb_$1=$(rate "$large" bytes 1e6)"
  eval "raw_files_$1=$(rate "$small" files 1)"
}
raw_round 1

write_scheduler_config "safety_lag_s: 0"
start_scheduler
dx_files() {  # dx_files DIRECTORY -> "seconds files"
  write_file_manifest "$1"
  dxctl apply -f "$T/manifest.yaml" >/dev/null
  dxctl resync files-a --wait --timeout 1200 >/dev/null || echo "run failed: $(last_run_field files-a error)" >&2
  dxctl --json runs -s files-a -n 1 | python3 -c "import json,sys; r=json.load(sys.stdin)[0]; print(r['duration_ms'] / 1000, r['rows'])"
}
write_file_manifest "$T/big"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$T/shared"
wait_for 20 "agent online" agent_online 徐汇区教育局
read -r big_s big_n < <(dx_files "$T/big")
cmp -s "$T/big/large.bin" "$T/shared/教学资源/large.bin" || echo "WARNING: large file differs"
read -r small_s small_n < <(dx_files "$T/small")
[ "$small_n" = "$SMALL" ] || echo "WARNING: $small_n of $SMALL small files"
agent_rss=$(peak_rss_mb "${AGENT_PIDS[a]}")
raw_round 2
raw_mb=$(python3 -c "print(f'{($raw_mb_1 + $raw_mb_2) / 2:.1f}')")
raw_files=$(python3 -c "print(f'{($raw_files_1 + $raw_files_2) / 2:.1f}')")
dx_mb=$(python3 -c "print(f'{$BIG_MB * 1048576 / $big_s / 1e6:.1f}')")
dx_files_s=$(python3 -c "print(f'{$small_n / $small_s:.1f}')")
echo "DX large: ${BIG_MB} MiB in ${big_s} s = $dx_mb MB/s; DX small: $small_n files in ${small_s} s = $dx_files_s files/s; agent peak RSS ${agent_rss} MB"
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "RESULT file_sync mb_per_s=$dx_mb raw_mb_per_s=$raw_mb ratio=$(ratio "$dx_mb" "$raw_mb") small_files_per_s=$dx_files_s raw_small_files_per_s=$raw_files small_ratio=$(ratio "$dx_files_s" "$raw_files") agent_rss_mb=$agent_rss"
