#!/usr/bin/env bash
# Builds pare and runs every test: the release build with warnings as errors
# (unit, conformance, e2e, tui, interop, bench smoke), the unit, conformance
# and tui tests again under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# ONNX loader fuzzer for FUZZ_SECONDS (default 60).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
stage() { echo "== $1 ($(( $(date +%s) - start )) s so far)"; }

bash .ci/install-deps.sh
if [ -x tests/interop/setup.sh ]; then
  bash tests/interop/setup.sh
fi

stage "release build (-Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPARE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" -LE bench
ctest --test-dir build --output-on-failure -L bench

stage "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPARE_WERROR=ON -DPARE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L 'unit|conformance|tui'

if [ -x tests/fuzz/run.sh ]; then
  stage "fuzzing the ONNX loader"
  bash tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
fi
stage "done"
