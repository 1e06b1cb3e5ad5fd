#!/usr/bin/env bash
# Issue 8, defect 9: a provider share that goes missing (its folder empty, as when a network
# share did not mount) must not delete every file at the consumer. A run that would delete
# more than max_delete_percent (default 50 %) of a subscription's delivered files stops with a
# clear error and deletes nothing; new files still arrive; an operator confirms with
# `dxctl run SUB --allow-mass-delete`; deletions below the limit go through as before.
source "$(dirname "$0")/harness.sh"
harness_init files_guard
SRC=$T/provider
SHARED=$T/shared
DST=$SHARED/教学资源
mkdir -p "$SRC/课件" "$SHARED"
for i in $(seq -w 1 20); do echo "课件 $i" >"$SRC/课件/第${i}课.txt"; done
backdate "$SRC"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 2"
start_scheduler
write_file_manifest "$SRC" true
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$SHARED"
wait_for 20 "agent online" agent_online 徐汇区教育局
run_and_wait files-a
[ "$RUN_RC" = 0 ] && [ "$(find "$DST" -type f | wc -l)" = 20 ] || fail "first run: $(run_field error)"

# The share "did not mount": its folder is there but empty.
mv "$SRC" "$T/provider.unmounted"
mkdir "$SRC"
run_and_wait files-a
echo "run: $(run_field status): $(run_field error)"
[ "$RUN_RC" != 0 ] && [ "$(run_field status)" = failed ] || fail "a run emptying the consumer succeeded"
run_field error | grep -q "refusing to delete 20 of 20 files at the consumer (more than 50%): the provider directory .* is empty - is its share mounted?.*dxctl run files-a --allow-mass-delete" ||
  fail "error: $(run_field error)"
[ "$(find "$DST" -type f | wc -l)" = 20 ] || fail "files were deleted at the consumer: $(find "$DST" -type f | wc -l) left"
pass "an empty provider folder deleted nothing: $(run_field error)"

# Most of the share gone (12 of 20): refused too; a new file still arrives.
rmdir "$SRC"
mv "$T/provider.unmounted" "$SRC"
rm "$SRC"/课件/第0{1,2,3,4,5,6,7,8,9}课.txt "$SRC"/课件/第1{0,1,2}课.txt
echo "新课" >"$SRC/课件/新课.txt"
backdate "$SRC"
run_and_wait files-a
run_field error | grep -q "refusing to delete 12 of 20" || fail "12 of 20: $(run_field status): $(run_field error)"
[ "$(find "$DST/课件" -name '第*' | wc -l)" = 20 ] || fail "files were deleted"
cmp -s "$SRC/课件/新课.txt" "$DST/课件/新课.txt" || fail "the new file did not arrive while deletions were held"
pass "12 of 20 deletions held, the new file delivered"

# The operator confirms.
run_and_wait files-a --allow-mass-delete
[ "$RUN_RC" = 0 ] || fail "confirmed run: $(run_field status): $(run_field error)"
[ "$(tree_digest "$SRC")" = "$(tree_digest "$DST")" ] || fail "trees differ after the confirmed run"
receipts=$(dxctl --json receipt "$(run_field id)" | python3 -c 'import json,sys; print(sum(r["outcome"]=="deleted" for r in json.load(sys.stdin)))')
[ "$receipts" = 12 ] || fail "$receipts deletions in the receipt"
sqlite3 "$T/scheduler.db" "SELECT action FROM audit WHERE action LIKE 'run%'" | grep -q "run --allow-mass-delete" ||
  fail "the confirmation is not in the audit log"
pass "dxctl run --allow-mass-delete deleted the 12 files (audited)"

# Below the limit (2 of 9), deletions go through without asking; and the confirmation was for
# one run only.
rm "$SRC/课件/第13课.txt" "$SRC/课件/第14课.txt"
run_and_wait files-a
[ "$RUN_RC" = 0 ] && [ ! -e "$DST/课件/第13课.txt" ] || fail "2 of 9: $(run_field status): $(run_field error)"
mv "$SRC" "$T/provider.unmounted"
mkdir "$SRC"
run_and_wait files-a
[ "$RUN_RC" != 0 ] && [ "$(find "$DST" -type f | wc -l)" = 7 ] || fail "the confirmation outlived its run"
pass "deletions under the limit propagate; the confirmation held for one run only"
