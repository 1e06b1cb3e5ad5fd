#!/usr/bin/env bash
# Runs one benchmark: scripts/bench.sh NAME (table | latency | file | reconcile | gate | masking |
# realtime | fanout). Its last line is
#   RESULT NAME key=value ...
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=${1:-}
case $NAME in
  table|latency|file|reconcile|gate|masking|realtime|fanout) ;;
  *) echo "usage: scripts/bench.sh table|latency|file|reconcile|gate|masking|realtime|fanout" >&2; exit 2 ;;
esac
export DX_BUILD_DIR=${DX_BUILD_DIR:-$ROOT/build}
bash "$ROOT/scripts/build.sh" >/dev/null
exec bash "$ROOT/tests/bench/${NAME}_bench.sh"
