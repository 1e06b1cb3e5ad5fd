#!/usr/bin/env bash
# Installs dependencies (Debian packages) and builds DX into build/ (or $DX_BUILD_DIR).
# Extra arguments go to cmake, e.g. scripts/build.sh -DDX_SANITIZE=address,undefined
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${DX_BUILD_DIR:-$ROOT/build}
bash "$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD" -j2
