#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds with warnings as errors, runs the unit
# and end-to-end tests (SQLite, PostgreSQL and MariaDB through unixODBC, real loopback TCP),
# then the unit tests and a set of end-to-end tests under ThreadSanitizer (DX_SKIP_SANITIZERS=1
# skips them); DX_ASAN=1 adds the unit tests under AddressSanitizer and UBSan.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export DX_BUILD_DIR=${DX_BUILD_DIR:-$ROOT/build}
bash scripts/build.sh -DDX_WERROR=ON
ctest --test-dir "$DX_BUILD_DIR" --output-on-failure -j1 "$@"

if [ "${DX_SKIP_SANITIZERS:-0}" != 1 ]; then
  # ThreadSanitizer: the unit tests, and the end-to-end tests labelled `tsan` run against
  # daemons built with it (the harness fails a test whose logs hold a report).
  echo "== unit and end-to-end tests under ThreadSanitizer"
  cmake -S "$ROOT" -B "$ROOT/build-tsan" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DDX_WERROR=ON -DDX_SANITIZE=thread >/dev/null
  cmake --build "$ROOT/build-tsan" -j2 --target dx_unit_tests dx-scheduler dx-agent dxctl
  TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1" \
    ctest --test-dir "$ROOT/build-tsan" --output-on-failure -j1 -L 'unit|tsan'

fi

# AddressSanitizer and UBSan over the unit tests: another whole build (about five minutes on
# two cores), so it is left to DX_ASAN=1 to keep the default run (and CI) near 25 minutes.
if [ "${DX_ASAN:-0}" = 1 ]; then
  echo "== unit tests under address,undefined sanitizers"
  cmake -S "$ROOT" -B "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DDX_WERROR=ON \
    -DDX_SANITIZE=address,undefined >/dev/null
  cmake --build "$ROOT/build-asan" -j2 --target dx_unit_tests
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$ROOT/build-asan" --output-on-failure -L unit
fi
