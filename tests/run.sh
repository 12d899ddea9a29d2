#!/usr/bin/env bash
# run.sh - the whole test suite (README command 2): installs what is missing, builds, runs ctest
# (labels unit, mpi, e2e) with 2 jobs, then the unit tests again under AddressSanitizer and
# UBSan. Exit status 0 only when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
. slurm/env.sh
jobs=$(nproc); [ "$jobs" -gt 2 ] && jobs=2
echo "== ctest (build/)"
(cd build && ctest -j "$jobs" --output-on-failure --timeout 900 "$@")

echo "== unit tests with -fsanitize=address,undefined (build-asan/)"
asan=$LP_ROOT/build-asan
[ -f "$asan/CMakeCache.txt" ] || cmake -S . -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DLP_SANITIZE=ON >"$asan.configure.log"
cmake --build "$asan" -j "$(nproc)" >"$asan.build.log" 2>&1 || { tail -40 "$asan.build.log"; exit 1; }
# Open MPI's own allocations are reported as leaks at exit; leaks are not what this run checks.
(cd "$asan" && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest -j "$jobs" -L unit --output-on-failure --timeout 900)
