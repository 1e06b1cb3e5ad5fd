#!/usr/bin/env bash
# Issue 8, defect 10: target filesystems. On a FAT-formatted shared root (a FAT image made by
# the test with mkfs.vfat, mounted by the kernel's vfat, or by fusefat where the kernel has no
# vfat) file modes do not stick: an agent told to apply files.mode says so at once when it
# starts, instead of failing every file at run time; with files.mode: keep it delivers, small
# and large files alike. A shared root that is read-only is reported at start as well.
# (Names stay ASCII here: fusefat cannot store other names.)
source "$(dirname "$0")/harness.sh"
harness_init files_fat
if [ "$(id -u)" != 0 ] || ! command -v mkfs.vfat >/dev/null; then
  echo "SKIP: needs root and mkfs.vfat (dosfstools) to make and mount a FAT image"
  exit 0
fi
FAT=$T/fat
mkdir -p "$FAT" "$T/src/slides"
truncate -s 64M "$T/fat.img"
mkfs.vfat "$T/fat.img" >/dev/null
mount_fat() {  # mount_fat rw|ro
  if mount -t vfat -o "loop,$1" "$T/fat.img" "$FAT" 2>/dev/null; then
    HOW="kernel vfat"
  elif command -v fusefat >/dev/null; then
    fusefat -o "$([ "$1" = rw ] && echo rw+ || echo ro)" "$T/fat.img" "$FAT" >/dev/null 2>&1
    HOW=fusefat
  else
    echo "SKIP: the kernel has no vfat and fusefat is not installed"
    exit 0
  fi
  MOUNTS+=("$FAT")
}
mount_fat rw
echo "FAT image mounted with $HOW"
echo "notes" >"$T/src/notes.txt"
random_file "$T/src/slides/lesson1.pdf" $((3 * 1024 * 1024 + 17))
backdate "$T/src"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 2"
start_scheduler
cat >"$T/manifest.yaml" <<YAML
kind: FileResource
name: 市教委-英文资料
provider: 市教委教研室
summary: English teaching material
share_type: unconditional
topic: institution
directory: $T/src
---
kind: Agent
name: fat-agent
secret: fat-agent-secret-01
---
kind: Subscription
name: files-fat
agent: fat-agent
entry: 市教委-英文资料
target_path: resources
YAML
dxctl apply -f "$T/manifest.yaml" >/dev/null

# files.mode 0640 on FAT: the agent refuses to start, saying why.
start_agent fat fat-agent fat-agent-secret-01 "$(sqlite_conn "$T/fat-agent.db")" "$FAT"
pid=${AGENT_PIDS[fat]}
exited() { ! kill -0 "$pid" 2>/dev/null; }
wait_for 10 "the agent to refuse a shared root that does not keep modes" exited
set +e
wait "$pid"
rc=$?
set -e
AGENT_PIDS[fat]=""
msg=$(grep "dx-agent:" "$T/agent-fat.log" | tail -1)
[ "$rc" = 2 ] || fail "agent exit code $rc (log: $(tail -3 "$T/agent-fat.log"))"
echo "$msg" | grep -q "does not keep file modes (set files.mode: keep)" || fail "message: $msg"
[ -z "$(ls -A "$FAT")" ] || fail "the check left something in the shared root: $(ls -A "$FAT")"
pass "mode 0640 on FAT refused at start: $msg"

# files.mode: keep: files land.
sed -i 's/mode: "0640"/mode: keep/' "$T/agent-fat.yaml"
restart_agent fat
wait_for 20 "agent online" agent_online fat-agent
run_and_wait files-fat
[ "$RUN_RC" = 0 ] || fail "run into FAT: $(run_field status): $(run_field error)"
cmp -s "$T/src/notes.txt" "$FAT/resources/notes.txt" &&
  cmp -s "$T/src/slides/lesson1.pdf" "$FAT/resources/slides/lesson1.pdf" || fail "files differ on FAT"
[ -z "$(part_files "$FAT")" ] || fail "part files left on FAT"
pass "files.mode: keep delivers a small and a large file into FAT ($HOW)"

# A read-only shared root is reported at start.
kill_agent fat
umount "$FAT"
mount_fat ro
restart_agent fat
pid=${AGENT_PIDS[fat]}
wait_for 10 "the agent to refuse a read-only shared root" exited
set +e
wait "$pid"
rc=$?
set -e
AGENT_PIDS[fat]=""
msg=$(grep "dx-agent:" "$T/agent-fat.log" | tail -1)
[ "$rc" = 2 ] && echo "$msg" | grep -q "cannot create files in it" || fail "read-only root: exit $rc: $msg"
pass "a read-only shared root refused at start: $msg"
