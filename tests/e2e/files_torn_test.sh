#!/usr/bin/env bash
# Issue 8, defects 1 and 10 (FIFO): a file is delivered only as a state it really had at the
# provider. While a large file is being sent (under a bandwidth cap, so the test can act during
# it): the large file itself is rewritten in place, a small file is rewritten larger, a file is
# swapped for a FIFO, and another file keeps being appended to. The large file must arrive as
# its new content (never old head + new tail), the small one whole, the FIFO must not hang the
# run, the ever-changing file must fail with its reason, and the rest must arrive.
source "$(dirname "$0")/harness.sh"
harness_init files_torn
SRC=$T/provider
SHARED=$T/shared
DST=$SHARED/教学资源
mkdir -p "$SRC" "$SHARED"
# Files are read in path order, and a large file is offered one large file ahead of its
# chunks: 0/先行.bin is sent first (about 2 s), then the small files are read, then 1/公开课.mp4.
random_file "$SRC/0/先行.bin" $((16 * 1024 * 1024))
random_file "$SRC/1/公开课.mp4" $((32 * 1024 * 1024))
python3 -c 'import sys; open(sys.argv[1], "w").write("第一版讲义。" * 500)' "$SRC/2-讲义.txt"
echo "资料" >"$SRC/3-资料.pdf"
echo "一直在写" >"$SRC/4-日志.log"
echo "后续" >"$SRC/5-后续.txt"
backdate "$SRC"
OLD_SHA=$(sha256sum <"$SRC/1/公开课.mp4")

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 2"
start_scheduler
write_file_manifest "$SRC" false 64000   # 8 MB/s: the large file takes about 4 s
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$SHARED"
wait_for 20 "agent online" agent_online 徐汇区教育局

part_size() { stat -c %s "$DST/$1"/.*.dxpart 2>/dev/null | head -1 || echo 0; }
part_past() { [ "$(part_size "$1")" -gt "$2" ] 2>/dev/null; }
dxctl run files-a >/dev/null
wait_for 30 "the first large file to be under way" part_past 0 $((2 * 1024 * 1024))
# Before the scheduler reaches them: a small file rewritten larger, a file swapped for a FIFO,
# a file that keeps changing; then the second large file rewritten in place during its own
# transfer (head and tail).
python3 -c 'import sys; open(sys.argv[1], "w").write("第二版，长得多的讲义。" * 30000)' "$SRC/2-讲义.txt"
rm "$SRC/3-资料.pdf"
mkfifo "$SRC/3-资料.pdf"
(while :; do echo "一行" >>"$SRC/4-日志.log"; sleep 0.05; done) &
writer=$!
HELPER_PIDS+=("$writer")
wait_for 30 "the second large file to be under way" part_past 1 $((8 * 1024 * 1024))
dd if=/dev/urandom of="$SRC/1/公开课.mp4" bs=1M count=2 conv=notrunc status=none
dd if=/dev/urandom of="$SRC/1/公开课.mp4" bs=1M seek=28 count=2 conv=notrunc status=none
NEW_SHA=$(sha256sum <"$SRC/1/公开课.mp4")
# Should open() of the FIFO block the scheduler (the defect), a writer releases it after the
# deadline so that the scheduler can stop.
(sleep 45; timeout 2 bash -c "echo >'$SRC/3-资料.pdf'") >/dev/null 2>&1 &
releaser=$!   # (not killed at exit: should the FIFO block the scheduler, it lets it stop)
finished() { ! dxctl --json subscriptions | grep -q '"running": true'; }
wait_for 40 "the run to finish (an open() of the FIFO must not block it)" finished
kill "$writer" "$releaser"
wait "$writer" "$releaser" 2>/dev/null || true   # both end by the kill
run=$(last_run_field files-a id)
echo "run $run: $(last_run_field files-a status): $(last_run_field files-a error)"

got=$(sha256sum <"$DST/1/公开课.mp4")
[ "$got" != "$OLD_SHA" ] || echo "note: the old state arrived (also a real state)"
[ "$got" = "$NEW_SHA" ] || fail "1/公开课.mp4 arrived torn: neither its old nor its new content"
case "$(receipt_line "$run" 1/公开课.mp4)" in
  sent* | resumed*) ;;
  *) fail "receipt of the large file: $(receipt_line "$run" 1/公开课.mp4)" ;;
esac
grep -q "1/公开课.mp4 was modified while it was read" "$T/scheduler.log" ||
  fail "the change of the large file during its transfer went unnoticed"
pass "a large file rewritten in place during its transfer was withdrawn and sent again whole"

cmp -s "$SRC/2-讲义.txt" "$DST/2-讲义.txt" ||
  fail "the small file rewritten larger arrived as $(stat -c %s "$DST/2-讲义.txt" 2>/dev/null) of $(stat -c %s "$SRC/2-讲义.txt") bytes"
pass "a small file rewritten larger after the listing arrived whole ($(stat -c %s "$DST/2-讲义.txt") bytes)"

fifo=$(receipt_line "$run" 3-资料.pdf)
echo "$fifo" | grep -q "^failed.*FIFO" || fail "receipt of the file swapped for a FIFO: '$fifo'"
[ ! -e "$DST/3-资料.pdf" ] || fail "something was delivered for the FIFO"
line=$(receipt_line "$run" 4-日志.log)
echo "$line" | grep -q "^failed.*still being written" || fail "receipt of the ever-changing file: '$line'"
cmp -s "$SRC/5-后续.txt" "$DST/5-后续.txt" || fail "the file after them did not arrive"
[ "$(last_run_field files-a status)" = partial ] || fail "run status $(last_run_field files-a status)"
last_run_field files-a error | grep -q "^2 of 6 file(s) not delivered" || fail "run error: $(last_run_field files-a error)"
[ -z "$(part_files "$SHARED")" ] || fail "part files left: $(part_files "$SHARED")"
pass "FIFO refused without blocking ('${fifo#*	}'); ever-changing file failed ('${line#*	}'); the rest arrived; run partial"

# Once the provider is quiet again, an operator's run delivers the rest.
rm "$SRC/3-资料.pdf"
echo "资料" >"$SRC/3-资料.pdf"
backdate "$SRC"
run_and_wait files-a
[ "$RUN_RC" = 0 ] || fail "run after the provider settled: $(run_field status): $(run_field error)"
same_tree() { [ "$(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum | md5sum)" = "$(cd "$DST" && find . -type f -print0 | sort -z | xargs -0 sha256sum | md5sum)" ]; }
same_tree || fail "trees differ after the provider settled"
pass "after the provider settled the tree is identical"
