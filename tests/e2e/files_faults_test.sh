#!/usr/bin/env bash
# Issue 8, defect 2: one unreadable or vanished entry does not stop a resource. The scheduler
# runs as 'nobody' (setpriv), so that mode 000 really makes a file or folder unreadable to it
# (root reads anything). A file it cannot read, a folder it cannot list, and a file deleted
# between the listing and the reading each get their reason in the receipt; everything else
# arrives; the run is "partial" and says how many files are missing; nothing below the folder
# it could not list is deleted at the consumer; and the failed files wait on their own
# back-off instead of the run being retried every second.
source "$(dirname "$0")/harness.sh"
harness_init files_faults
id nobody >/dev/null 2>&1 || { echo "SKIP: no user 'nobody' to run the scheduler as"; exit 0; }
SRC=$T/provider
SHARED=$T/shared
DST=$SHARED/教学资源
mkdir -p "$SRC/课件" "$SRC/保密" "$SHARED"
for i in 1 2 3 4 5; do echo "课件 $i" >"$SRC/课件/第$i课.txt"; done
echo "机密" >"$SRC/保密/名单.txt"
echo "锁定前" >"$SRC/课件/锁定.pdf"
backdate "$SRC"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"
start_scheduler_as nobody
write_file_manifest "$SRC" true 32000   # 4 MB/s, so the test can act during a run
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$SHARED"
wait_for 20 "agent online" agent_online 徐汇区教育局
run_and_wait files-a
[ "$RUN_RC" = 0 ] || fail "first run: $(run_field error)"

# Now: a delivered file and a new one made unreadable, a delivered folder made unlistable,
# a new file that should arrive, and a file that vanishes while the run is under way.
chmod 000 "$SRC/课件/锁定.pdf" "$SRC/保密"
echo "新的锁定" >"$SRC/课件/锁定2.pdf"
chmod 000 "$SRC/课件/锁定2.pdf"
echo "新课" >"$SRC/课件/新课.txt"
# 0-大文件.bin is sent first (about 4 s; a large file goes out once the next one is offered,
# hence 1-第二个.bin), then the small files are read: the test acts in between.
random_file "$SRC/0-大文件.bin" $((16 * 1024 * 1024))
random_file "$SRC/1-第二个.bin" $((2 * 1024 * 1024))
echo "将删除" >"$SRC/课件/将删除.txt"
backdate "$SRC"
runs_before=$(dxctl --json runs -s files-a -n 100 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
dxctl run files-a >/dev/null
part_past() { [ "$(stat -c %s "$DST"/.*.dxpart 2>/dev/null | head -1 || echo 0)" -gt "$1" ] 2>/dev/null; }
wait_for 30 "the large file to be under way" part_past $((2 * 1024 * 1024))
rm "$SRC/课件/将删除.txt"
run_over() { [ "$(last_run_field files-a status)" != running ] && [ "$(last_run_field files-a id)" -gt 1 ]; }
wait_for 40 "the second run" run_over
run=$(last_run_field files-a id)
status=$(last_run_field files-a status)
error=$(last_run_field files-a error)
echo "run $run: $status: $error"
dxctl receipt "$run"

cmp -s "$SRC/课件/新课.txt" "$DST/课件/新课.txt" || fail "a readable new file did not arrive"
cmp -s "$SRC/0-大文件.bin" "$DST/0-大文件.bin" || fail "the large file did not arrive"
[ "$status" = partial ] || fail "run status '$status', expected partial"
echo "$error" | grep -q "^3 of 12 file(s) not delivered" || fail "run error does not count the missing files: $error"
receipt_line "$run" 课件/锁定2.pdf | grep -q "^failed.*Permission denied" || fail "unreadable new file: $(receipt_line "$run" 课件/锁定2.pdf)"
receipt_line "$run" 课件/锁定.pdf | grep -q "^failed.*Permission denied" || fail "unreadable delivered file: $(receipt_line "$run" 课件/锁定.pdf)"
receipt_line "$run" 保密/ | grep -q "^failed.*cannot list the folder: Permission denied" || fail "unlistable folder: $(receipt_line "$run" 保密/)"
receipt_line "$run" 课件/将删除.txt | grep -q "^vanished" || fail "vanished file: $(receipt_line "$run" 课件/将删除.txt)"
pass "unreadable file, unlistable folder and vanished file each reported on its own; the rest arrived; run partial: $error"

[ -f "$DST/保密/名单.txt" ] || fail "a file below the unlistable folder was deleted at the consumer"
[ -f "$DST/课件/锁定.pdf" ] || fail "the unreadable file was deleted at the consumer"
pass "nothing below the folder that could not be listed was deleted"

# No retry storm: with retry_max_s 1, a failed run would come back every second. The failed
# files wait on their own back-off (files.retry_min_s, 60 s) instead.
sleep 5   # the absence of runs over some seconds is what is checked
runs_after=$(dxctl --json runs -s files-a -n 100 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$runs_after" = $((runs_before + 1)) ] || fail "$((runs_after - runs_before)) runs in 5 s after a partial run: $(dxctl runs -s files-a -n 5)"
next_due=$(dxctl --json subscriptions | python3 -c 'import json,sys; print([s for s in json.load(sys.stdin) if s["name"]=="files-a"][0]["next_due"])')
[ $((next_due - $(date +%s))) -ge 45 ] || fail "the next attempt is due in $((next_due - $(date +%s))) s"
pass "no retry storm: 1 run in 5 s; the failed files are retried in $((next_due - $(date +%s))) s"

# Fixed at the provider: an operator's run delivers them (their back-off does not apply).
chmod 644 "$SRC/课件/锁定.pdf" "$SRC/课件/锁定2.pdf"
chmod 755 "$SRC/保密"
echo "名单二" >"$SRC/保密/名单2.txt"
backdate "$SRC"
run_and_wait files-a
[ "$RUN_RC" = 0 ] || fail "run after the fix: $(run_field status): $(run_field error)"
for f in 课件/锁定.pdf 课件/锁定2.pdf 保密/名单2.txt; do
  cmp -s "$SRC/$f" "$DST/$f" || fail "$f not delivered after the fix"
done
pass "after the fix every file arrives and the run succeeds"
