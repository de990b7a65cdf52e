#!/usr/bin/env bash
# pare vs ONNX Runtime latency benchmark: every reference model at batch 1 and
# 64 with 2 threads, both engines measured in the same run, interleaved.
#
#   tests/bench/run.sh [--pare PATH] [--models a,b] [--batches 1,64] [--threads 2]
#                      [--warmup 20] [--repeat 200] [--rounds 3]
#                      [--write-docs] [--docs PATH] [--json PATH]
#
# Prints a table (model, batch, pare ms, ORT ms, pare/ORT, target, pass/miss);
# --write-docs also writes it, with the machine and versions, to
# docs/benchmarks.md. Needs node and tests/interop/setup.sh (onnxruntime-node).
# bench.js describes the method; docs/benchmarks.md shows the last results.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "skipped: node not found (install nodejs, then run tests/interop/setup.sh)"
  exit 77
fi
exec node "$here/bench.js" "$@"
