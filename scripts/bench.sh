#!/usr/bin/env bash
# Runs one benchmark: scripts/bench.sh NAME (table | latency | file | reconcile | gate | masking |
# realtime | fanout | agents). Its last line is
#   RESULT NAME key=value ...
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=${1:-}
case $NAME in
  table|latency|file|reconcile|gate|masking|realtime|fanout|agents) ;;
  *) echo "usage: scripts/bench.sh table|latency|file|reconcile|gate|masking|realtime|fanout|agents" >&2; exit 2 ;;
esac
export DX_BUILD_DIR=${DX_BUILD_DIR:-$ROOT/build}
bash "$ROOT/scripts/build.sh" >/dev/null
exec bash "$ROOT/tests/bench/${NAME}_bench.sh"
