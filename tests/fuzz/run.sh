#!/usr/bin/env bash
# Builds the ONNX loader fuzzer (clang, libFuzzer, ASan + UBSan) and runs it
# for SECONDS (default 60). Replays tests/fuzz/regressions first. A crash
# leaves its input in $BUILD/fuzz-artifacts/; copy it to tests/fuzz/regressions/
# once fixed. Environment: PARE_FUZZ_BUILD (build folder, default build-fuzz),
# JOBS (build jobs, default 2).
set -euo pipefail
secs=${1:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${PARE_FUZZ_BUILD:-$top/build-fuzz}
testdata=/usr/share/libonnx-testdata/data/node

CC=clang cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPARE_FUZZ=ON -DPARE_SANITIZE=ON >/dev/null
cmake --build "$build" --target fuzz_onnx_load -j"${JOBS:-2}"
fuzzer=$build/tests/fuzz/fuzz_onnx_load

# Seeds: the committed corpus, the reference models, a few node test models
# with subgraphs, sequences and odd dtypes, and every past regression.
seeds=$build/fuzz-seeds
work=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
rm -rf "$seeds"
mkdir -p "$seeds" "$work" "$artifacts"
cp "$top"/tests/fuzz/corpus/* "$top"/tests/data/*.onnx "$seeds"/
cp "$top"/tests/fuzz/regressions/* "$seeds"/ 2>/dev/null || true
for t in if loop11 scan9_sum sequence_insert_at_back optional_get_element cast_FLOAT_to_FLOAT16 \
         constant conv_with_strides_padding gemm_default_scalar_bias reshape_reordered_all_dims \
         split_zero_size_splits castlike_FLOAT_to_STRING_expanded range_float_type_positive_delta_expanded; do
  if [ -f "$testdata/test_$t/model.onnx" ]; then
    cp "$testdata/test_$t/model.onnx" "$seeds/node_$t.onnx"
  fi
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== replaying tests/fuzz/regressions"
"$fuzzer" -runs=0 "$top/tests/fuzz/regressions"

echo "== fuzzing pare_graph_load_buffer for ${secs}s"
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$work" "$seeds"
