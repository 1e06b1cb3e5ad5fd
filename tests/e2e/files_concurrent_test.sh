#!/usr/bin/env bash
# Issue 8, defects 3 and 4: two file subscriptions of one agent run at the same time (as two
# subscriptions both scheduled hourly :00 do), each with large files, so that their transfers
# interleave on the agent's one connection. Both runs must succeed the first time, and the
# bytes on the wire must be what was delivered (no transfer dropped and sent again). Then a
# third subscription into a folder inside another's is refused at apply with a clear error.
source "$(dirname "$0")/harness.sh"
harness_init files_concurrent
SHARED=$T/shared
mkdir -p "$T/src-a" "$T/src-b" "$SHARED"
for i in 1 2 3; do
  random_file "$T/src-a/视频$i.mp4" $((12 * 1024 * 1024))
  random_file "$T/src-b/课件$i.pptx" $((12 * 1024 * 1024))
done
echo "小文件" >"$T/src-a/说明.txt"
echo "小文件" >"$T/src-b/说明.txt"
backdate "$T/src-a"
backdate "$T/src-b"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 2"
start_scheduler
resource() {  # resource NAME DIRECTORY
  cat <<YAML
kind: FileResource
name: $1
provider: 市教委教研室
summary: 教学资源
share_type: unconditional
topic: institution
directory: $2
---
YAML
}
subscription() {  # subscription NAME ENTRY TARGET
  cat <<YAML
---
kind: Subscription
name: $1
agent: 徐汇区教育局
entry: $2
target_path: $3
YAML
}
{
  resource 市教委-视频资源 "$T/src-a"
  resource 市教委-课件资源 "$T/src-b"
  cat <<YAML
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
bandwidth_kbps: 48000
YAML
  subscription files-a 市教委-视频资源 教学资源/视频
  subscription files-b 市教委-课件资源 教学资源/课件
} >"$T/manifest.yaml"
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$SHARED"
wait_for 20 "agent online" agent_online 徐汇区教育局

# Both at once: each run takes about 6 s under the 6 MB/s cap, so they overlap throughout.
dxctl run files-a >/dev/null
dxctl run files-b >/dev/null
both_done() {
  [ "$(last_run_field files-a status)" != running ] && [ -n "$(last_run_field files-a status)" ] &&
    [ "$(last_run_field files-b status)" != running ] && [ -n "$(last_run_field files-b status)" ]
}
wait_for 50 "both runs" both_done
dxctl runs -n 10
for s in files-a files-b; do
  runs=$(sqlite3 "$T/scheduler.db" "SELECT count(*) FROM runs WHERE subscription='$s'")
  [ "$runs" = 1 ] && [ "$(last_run_field $s status)" = succeeded ] ||
    fail "$s needed $runs run(s); last: $(last_run_field $s status): $(last_run_field $s error)"
done
grep -q "transfers already in progress\|no transfer of" "$T/agent-a.log" && fail "the agent dropped a transfer"
cmp -s "$T/src-a/视频2.mp4" "$SHARED/教学资源/视频/视频2.mp4" || fail "files-a differs"
cmp -s "$T/src-b/课件3.pptx" "$SHARED/教学资源/课件/课件3.pptx" || fail "files-b differs"
[ "$(tree_digest "$T/src-a")" = "$(tree_digest "$SHARED/教学资源/视频")" ] || fail "tree a differs"
[ "$(tree_digest "$T/src-b")" = "$(tree_digest "$SHARED/教学资源/课件")" ] || fail "tree b differs"
wire=$(sqlite3 "$T/scheduler.db" "SELECT sum(bytes) FROM runs")
delivered=$(($(du -sb --apparent-size "$T/src-a" | cut -f1) + $(du -sb --apparent-size "$T/src-b" | cut -f1)))
echo "bytes on the wire: $wire; bytes delivered: $delivered"
[ "$wire" -le $((delivered + delivered / 100)) ] || fail "$wire bytes on the wire to deliver $delivered"
pass "two subscriptions at once on one agent: both runs succeeded the first time; $wire bytes on the wire for $delivered delivered"

# Defect 4: a subscription into the folder of another (or one inside it) is refused at apply.
{
  cat "$T/manifest.yaml"
  subscription files-c 市教委-课件资源 教学资源/视频/第二套
} >"$T/overlap.yaml"
set +e
out=$(dxctl apply -f "$T/overlap.yaml" 2>&1)
rc=$?
set -e
[ $rc = 2 ] || fail "an overlapping target was accepted (exit $rc): $out"
echo "$out" | grep -q "overlap.yaml:[0-9]*: key 'target_path'.*files-a" || fail "error: $out"
[ -z "$(dxctl --json subscriptions | grep files-c)" ] || fail "files-c was stored"
pass "overlapping target refused: $out"
