#!/usr/bin/env bash
# Issue 8, defect 8: leftovers and bookkeeping. A folder replaced by a file (and the reverse)
# converges; the receipt of a run cut off by a killed agent lists every file the agent
# recorded; a manual run cut off by a killed scheduler runs again by itself and resumes the
# large file where the agent's part file ends; and the part file of a transfer that can no
# longer resume (the file was deleted at the provider) does not stay after later runs.
# (Empty and emptied folders: files_names_test.sh.)
source "$(dirname "$0")/harness.sh"
harness_init files_leftovers
SRC=$T/provider
SHARED=$T/shared
DST=$SHARED/教学资源
mkdir -p "$SRC/单元1" "$SHARED"
echo a >"$SRC/单元1/a.txt"
echo b >"$SRC/单元1/b.txt"
echo 2 >"$SRC/单元2"
mkdir -p "$SRC/其他"
for i in 1 2 3 4 5 6 7 8; do echo "$i" >"$SRC/其他/$i.txt"; done   # (deleting 3 of 3 would trip the mass-delete guard)
backdate "$SRC"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"
start_scheduler
write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 1"   # keep these ports
write_file_manifest "$SRC" true 0
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$SHARED"
wait_for 20 "agent online" agent_online 徐汇区教育局
set_cap() {
  sed -i "s/^bandwidth_kbps: .*/bandwidth_kbps: $1/" "$T/manifest.yaml"
  dxctl apply -f "$T/manifest.yaml" >/dev/null
}
same_tree() { [ "$(tree_digest "$SRC")" = "$(tree_digest "$DST")" ]; }
run_and_wait files-a
[ "$RUN_RC" = 0 ] || fail "first run: $(run_field error)"

# A folder replaced by a file, and a file replaced by a folder.
rm -r "$SRC/单元1" "$SRC/单元2"
echo "现在是文件" >"$SRC/单元1"
mkdir "$SRC/单元2"
echo c >"$SRC/单元2/c.txt"
backdate "$SRC"
run_and_wait files-a
[ "$RUN_RC" = 0 ] || fail "run after swapping folder and file: $(run_field status): $(run_field error)"
[ -f "$DST/单元1" ] && [ -f "$DST/单元2/c.txt" ] && same_tree || fail "folder/file swap did not converge: $(find "$DST")"
pass "a folder replaced by a file and a file replaced by a folder converge in one run"

# A run cut off by a killed agent: its receipt lists every file the agent recorded.
mkdir -p "$SRC/小文件"
python3 -c '
import os, sys
for i in range(1500):
    open(os.path.join(sys.argv[1], "f%04d.txt" % i), "wb").write(os.urandom(4096))' "$SRC/小文件"
backdate "$SRC"
set_cap 8000   # 1 MB/s: 6 MB take about 6 s
dxctl run files-a >/dev/null
some_arrived() { [ "$(find "$DST/小文件" -type f 2>/dev/null | wc -l)" -ge 300 ]; }
wait_for 30 "files to arrive" some_arrived
kill_agent a
run_failed() { [ "$(last_run_field files-a status)" = failed ]; }
wait_for 30 "the run to fail" run_failed
run=$(last_run_field files-a id)
dxctl --json receipt "$run" >"$T/receipt.json"
missing=$(python3 - "$T/a.db" "$T/receipt.json" <<'PY'
import json, sqlite3, sys
held = {r[0] for r in sqlite3.connect(sys.argv[1]).execute(
    "SELECT path FROM dx_files WHERE subscription='files-a' AND path LIKE '教学资源/小文件/%'")}
listed = {"教学资源/" + r["path"] for r in json.load(open(sys.argv[2]))
          if r["outcome"] in ("sent", "unconfirmed")}
print(len(held), len(listed), len(held - listed))
PY
)
read -r held listed lost <<<"$missing"
echo "agent recorded $held files; the receipt of run $run lists $listed as sent or unconfirmed"
[ "$lost" = 0 ] || fail "$lost files the agent recorded are missing from the receipt of the cut-off run"
[ "$held" -gt 0 ] || fail "the agent recorded nothing before it was killed"
pass "the receipt of a run cut off by kill -9 of the agent lists all $held files the agent recorded"
restart_agent a
set_cap 0
# Changing the agent's record refuses a login in flight (the agent retries at once): the run
# waits until the agent is back.
wait_for 20 "agent back" agent_online 徐汇区教育局
run_and_wait files-a
same_tree || fail "trees differ after the agent came back"

# A manual run cut off by a killed scheduler runs again by itself and resumes.
set_cap 40000   # 5 MB/s
random_file "$SRC/视频/大文件.bin" $((48 * 1024 * 1024))
backdate "$SRC"
part_size() { stat -c %s "$DST"/视频/.*.dxpart 2>/dev/null | head -1 || echo 0; }
part_past() { [ "$(part_size)" -gt "$1" ] 2>/dev/null; }
dxctl run files-a >/dev/null
wait_for 30 "the large file to be under way" part_past $((12 * 1024 * 1024))
before=$(last_run_field files-a id)
kill_scheduler
start_scheduler
grep -q "run(s) were interrupted by the last stop; they resume" "$T/scheduler.log" || fail "no interruption noted"
resumed_run() { [ "$(last_run_field files-a id)" -gt "$before" ] && [ "$(last_run_field files-a status)" = succeeded ]; }
wait_for 40 "the interrupted manual run to run again" resumed_run
grep -q "resuming '教学资源/视频/大文件.bin' at byte [1-9]" "$T/agent-a.log" || fail "the large file started over"
cmp -s "$SRC/视频/大文件.bin" "$DST/视频/大文件.bin" || fail "the resumed file differs"
pass "an interrupted manual run ran again by itself and $(grep -o "resuming '教学资源/视频/大文件.bin' at byte [0-9]*" "$T/agent-a.log" | tail -1)"

# A transfer cut off, then its file deleted at the provider: the part file does not stay.
random_file "$SRC/视频/第二个.bin" $((40 * 1024 * 1024))
backdate "$SRC"
dxctl run files-a >/dev/null
wait_for 30 "the second large file to be under way" part_past $((8 * 1024 * 1024))
kill_agent a
rm "$SRC/视频/第二个.bin"
[ -n "$(part_files "$DST")" ] || fail "no part file to leave behind"
restart_agent a
later=$(last_run_field files-a id)
clean() { [ "$(last_run_field files-a id)" -gt "$later" ] && [ "$(last_run_field files-a status)" = succeeded ]; }
wait_for 30 "a later successful run" clean
[ -z "$(part_files "$SHARED")" ] || fail "part files stayed after a later successful run: $(part_files "$SHARED" | xargs ls -la)"
same_tree || fail "trees differ at the end"
pass "the part file of a transfer that can no longer resume was removed by the next successful run"
