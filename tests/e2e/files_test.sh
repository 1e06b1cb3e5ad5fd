#!/usr/bin/env bash
# File exchange (文件方式): 10,000 small files and one 2 GiB file delivered and verified into
# the agent's shared directory; incremental runs send only what changed; a renamed file is
# copied on the agent, not resent; deletions propagate only when asked; kill -9 of the agent
# during the large file resumes with at most one chunk re-sent of what it held; paths that
# would leave the shared root and a planted symbolic link are refused; a full disk fails the
# file cleanly and the transfer resumes when space returns.
# Two parts, each under a minute: `small` (10,000 files, incremental runs, deletions, links and
# hostile paths) and `large` (the 2 GiB file under kill -9, the bandwidth cap, a full disk).
source "$(dirname "$0")/harness.sh"
PART=${1:?usage: files_test.sh small|large}
harness_init "files_$PART"
SMALL=${FILES_TEST_SMALL:-10000}
[ "$PART" = small ] || SMALL=200
BIG_MB=${FILES_TEST_BIG_MB:-2048}

SRC=$T/provider
SHARED=$T/shared
mkdir -p "$SRC" "$SHARED"
python3 - "$SRC" "$SMALL" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(3)
for i in range(n):
    d = os.path.join(root, "课件", "高一 数学" if i % 3 == 0 else "初二 物理", "单元%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "讲义 %05d.txt" % i), "wb") as f:
        f.write(rng.randbytes(2048) + ("第%d页 " % i).encode() * 200)
PY
echo "scratch" >"$SRC/草稿.tmp"   # excluded by the resource's pattern

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"
start_scheduler
write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"   # keep these ports
write_file_manifest "$SRC"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$SHARED"
wait_for 20 "agent online" agent_online 徐汇区教育局
DST=$SHARED/教学资源
source_digest() { (cd "$SRC" && find . -type f ! -name '*.tmp' -print0 | sort -z | xargs -0 -r sha256sum) | md5sum | cut -d' ' -f1; }
same_tree() { [ "$(source_digest)" = "$(tree_digest "$DST")" ]; }

dxctl run files-a --wait >/dev/null || fail "first run: $(last_run_field files-a error)"
same_tree || fail "$SMALL small files not delivered identically"
[ ! -e "$DST/草稿.tmp" ] || fail "an excluded file was delivered"
[ "$(stat -c %a "$(find "$DST" -type f | head -1)")" = 640 ] || fail "file mode is not 0640"
[ -z "$(find "$SHARED" -name '*.dxpart')" ] || fail "partial files left behind"
pass "$SMALL small files delivered, verified, mode 0640 ($(last_run_field files-a duration_ms) ms)"


if [ "$PART" = small ]; then
# Incremental: nothing changed, nothing sent; a changed file is sent; a renamed one is copied.
dxctl run files-a --wait >/dev/null
[ "$(last_run_field files-a bytes)" = 0 ] || fail "an unchanged tree was sent again"
echo "修订版" >>"$SRC/课件/初二 物理/单元01/讲义 00001.txt"
mv "$SRC/课件/初二 物理/单元02/讲义 00002.txt" "$SRC/课件/初二 物理/单元02/讲义 00002 改名.txt"
dxctl run files-a --wait >/dev/null
run=$(last_run_field files-a id)
receipt=$(dxctl --json receipt "$run")
echo "$receipt" | grep -q '"outcome": "copied"' || fail "a renamed file was not copied: $receipt"
[ "$(echo "$receipt" | python3 -c 'import json,sys; print(sum(r["bytes_sent"] for r in json.load(sys.stdin) if r["outcome"]=="copied"))')" = 0 ] ||
  fail "the renamed file's bytes were sent"
# The old name is still at the consumer (deletions do not propagate by default), so the trees
# differ by exactly that file.
if same_tree; then fail "the consumer's tree equals the source although the old name should stay"; fi
[ -e "$DST/课件/初二 物理/单元02/讲义 00002.txt" ] || fail "a deletion propagated although it is off by default"
pass "incremental: unchanged tree sends 0 bytes; changed file sent; renamed file copied on the agent; deletion kept (default)"

sed -i 's/^propagate_deletes: false$/propagate_deletes: true/' "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
dxctl run files-a --wait >/dev/null || true
dxctl run files-a --wait >/dev/null || fail "run after enabling deletes: $(last_run_field files-a error)"
same_tree || fail "trees differ after delete propagation"
pass "with propagate_deletes the deletion reaches the agent"

# A symbolic link planted inside the target tree is refused, and nothing is written through it.
mkdir -p "$T/outside" "$SRC/链接"
echo "内容" >"$SRC/链接/note.txt"
ln -s "$T/outside" "$DST/链接"
set +e
run_json=$(dxctl --json run files-a --wait); rc=$?
set -e
[ $rc != 0 ] || fail "a run through a planted symlink succeeded"
run=$(echo "$run_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
err=$(echo "$run_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["error"])')
echo "$err" | grep -q "is a symbolic link inside the shared root" || fail "error: $err"
[ -z "$(ls -A "$T/outside")" ] || fail "a file was written through the symlink"
dxctl receipt "$run" | grep -q refused || fail "the receipt does not say refused"
pass "planted symlink refused: '$err'"
rm "$DST/链接" "$SRC/链接/note.txt"; rmdir "$SRC/链接"

# Paths from the wire that try to leave the shared root (a hostile peer speaking the protocol).
kill_agent a
python3 "$E2E_DIR/fake_scheduler.py" "$T/fake.port" "../escape.txt" "/tmp/abs.txt" "a/../../b.txt" "ok/正常.txt" >"$T/fake.out" &
fake=$!
wait_for 10 "fake scheduler" test -s "$T/fake.port"
sed -e "s/^scheduler: .*/scheduler: 127.0.0.1:$(cat "$T/fake.port")/" -e "/^tls:/d" "$T/agent-a.yaml" >"$T/agent-hostile.yaml"
"$AGENT_BIN" -c "$T/agent-hostile.yaml" >>"$T/agent-hostile.log" 2>&1 &
hostile=$!
wait "$fake" || fail "fake scheduler failed: $(cat "$T/fake.out")"
kill "$hostile"; wait "$hostile" || true
[ "$(grep -c "would leave the shared root" "$T/fake.out")" = 3 ] || fail "traversal not refused: $(cat "$T/fake.out")"
[ ! -e "$T/escape.txt" ] && [ ! -e /tmp/abs.txt ] && [ ! -e "$T/b.txt" ] || fail "a file escaped the shared root"
[ -f "$SHARED/ok/正常.txt" ] || fail "a good path next to them was not written"
pass "'..' and absolute paths from the wire refused and logged; nothing escaped"

else
# A 2 GiB file; kill -9 the agent at random points while it arrives.
CAP=$((BIG_MB * 1048576 * 8 / 1000 / 4))   # the large file takes ~4 s, so the kills land in it
sed -i "s/^bandwidth_kbps: 0$/bandwidth_kbps: $CAP/" "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
random_file "$SRC/视频/公开课 第一讲.mp4" $((BIG_MB * 1024 * 1024 + 4321))
BIG_SIZE=$(stat -c %s "$SRC/视频/公开课 第一讲.mp4")
before_bytes=$(sqlite3 "$T/scheduler.db" "SELECT coalesce(sum(bytes),0) FROM runs")
part_size() { stat -c %s "$DST"/视频/.*.dxpart 2>/dev/null | head -1 || echo 0; }
big_arrived() { [ -f "$DST/视频/公开课 第一讲.mp4" ]; }
part_grown() { big_arrived || [ "$(part_size)" -gt "${1:-0}" ] 2>/dev/null; }
dxctl run files-a >/dev/null
max_resend=0
held=0
for i in 1 2 3; do
  wait_for 60 "the large file to arrive" part_grown "$((held + 64 * 1024 * 1024))"
  sleep "0.$((RANDOM % 5))"
  big_arrived && break
  kill_agent a
  held=$(part_size)
  resumes=$(grep -c "resuming '教学资源/视频/公开课 第一讲.mp4'" "$T/agent-a.log" || true)
  restart_agent a
  resumed() { [ "$(grep -c "resuming '教学资源/视频/公开课 第一讲.mp4'" "$T/agent-a.log")" -gt "$resumes" ]; }
  wait_for 30 "the agent to resume" resumed
  offset=$(grep -o "resuming '教学资源/视频/公开课 第一讲.mp4' at byte [0-9]*" "$T/agent-a.log" | tail -1 | grep -o '[0-9]*$')
  resend=$((held - offset))
  [ $resend -le $((1024 * 1024)) ] || fail "resumed at $offset though the agent held $held bytes"
  [ $resend -gt $max_resend ] && max_resend=$resend
  echo "killed the agent (kill -9) holding $held bytes; resumed at byte $offset"
  kills=$i
done
[ "${kills:-0}" -ge 1 ] || fail "no kill landed during the large file"
big_done() { [ -f "$DST/视频/公开课 第一讲.mp4" ] && [ "$(last_run_field files-a status)" = succeeded ]; }
wait_for 120 "the large file" big_done
[ "$(sha256sum <"$DST/视频/公开课 第一讲.mp4")" = "$(sha256sum <"$SRC/视频/公开课 第一讲.mp4")" ] || fail "the large file differs"
[ -z "$(find "$SHARED" -name '*.dxpart')" ] || fail "partial files left behind"
sent=$(( $(sqlite3 "$T/scheduler.db" "SELECT coalesce(sum(bytes),0) FROM runs") - before_bytes ))
echo "large file: $BIG_SIZE bytes; scheduler sent $sent bytes over all attempts (in-flight data lost with each killed agent included); largest re-send of bytes the agent held: $max_resend"
pass "$((BIG_SIZE / 1048576)) MiB file identical after $kills kill -9 of the agent, at most one chunk of what it held re-sent"
# The cap paces a transfer: 20 MiB at 40,000 kbit/s (5 MB/s) cannot take less than ~4.2 s.
sed -i "s/^bandwidth_kbps: $CAP$/bandwidth_kbps: 40000/" "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
random_file "$SRC/限速/资料.bin" $((20 * 1024 * 1024))
started=$(date +%s%N)
dxctl run files-a --wait >/dev/null || fail "capped run: $(last_run_field files-a error)"
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
[ "$elapsed_ms" -ge 4000 ] || fail "20 MiB under a 40,000 kbit/s cap took only $elapsed_ms ms"
pass "bandwidth cap: 20 MiB at 40,000 kbit/s took $elapsed_ms ms"
sed -i "s/^bandwidth_kbps: 40000$/bandwidth_kbps: 0/" "$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null

# A full disk: a small tmpfs as the shared root fails the file cleanly, keeps the partial
# file, and the transfer resumes once there is space.
kill_agent a   # the agent comes back with the small shared root, under the same name
if [ "$(id -u)" -eq 0 ] && mkdir -p "$T/small" && mount -t tmpfs -o size=64m tmpfs "$T/small" 2>/dev/null; then
  MOUNTS+=("$T/small")
  mkdir -p "$T/full-src"
  random_file "$T/full-src/大文件.bin" $((100 * 1024 * 1024))
  sed -e "s#^directory: .*#directory: $T/full-src#" -e "s/^name: files-a$/name: files-full/" \
      -e "s/^propagate_deletes: true$/propagate_deletes: false/" "$T/manifest.yaml" >"$T/manifest-full.yaml"
  sed -i "s/^name: 市教委-教学资源文件$/name: 市教委-大文件/; s/^entry: 市教委-教学资源文件$/entry: 市教委-大文件/; s#^target_path: 教学资源\$#target_path: 大文件#" "$T/manifest-full.yaml"
  dxctl apply -f "$T/manifest-full.yaml" >/dev/null
  sed "s#shared_root: \"[^\"]*\"#shared_root: \"$T/small\"#" "$T/agent-a.yaml" >"$T/agent-full.yaml"
  "$AGENT_BIN" -c "$T/agent-full.yaml" >>"$T/agent-full.log" 2>&1 &
  AGENT_PIDS[full]=$!
  wait_for 20 "agent online" agent_online 徐汇区教育局
  dxctl run files-full --wait >/dev/null && fail "a file larger than the disk was delivered"
  err=$(last_run_field files-full error)
  echo "$err" | grep -q "No space left on device" || fail "error: $err"
  [ ! -e "$T/small/大文件/大文件.bin" ] || fail "a half file stands under its final name"
  [ -n "$(find "$T/small" -name '*.dxpart')" ] || fail "the partial file was not kept"
  pass "disk full: '$err'; partial file kept, no file under its final name"
  mount -o remount,size=256m "$T/small"
  dxctl run files-full --wait >/dev/null || fail "after space returned: $(last_run_field files-full error)"
  cmp -s "$T/small/大文件/大文件.bin" "$T/full-src/大文件.bin" || fail "file differs after the disk-full resume"
  grep -q "resuming '大文件/大文件.bin' at byte [1-9]" "$T/agent-full.log" || fail "did not resume"
  pass "space returned: the transfer resumed and the file is identical"
  kill_agent full
else
  echo "SKIP: disk-full case needs root to mount a small tmpfs"
fi
fi
dxctl runs -n 6
