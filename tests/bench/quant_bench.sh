#!/usr/bin/env bash
# PTQ cost and what it buys in ONNX Runtime: for each reference model, the
# wall time of `pare quant` (calibration on --batch-nums batches of 32
# Fashion-MNIST training images, hist, int8 per-channel) and ONNX Runtime's
# latency on the fp32 model and on three QDQ layouts pare writes: the default
# (S8S8, Q/DQ on quantized ops' inputs and outputs, Relu folded into the
# following Q), --uint8 (the same with uint8 activations: what ORT fuses
# end to end on x86) and --inputs-only (pairs only on quantized ops' inputs,
# the tensorrt layout). Latencies are tests/bench/ort_bench.js medians, the
# variants interleaved per round; the figure is the median over rounds.
#
#   tests/bench/quant_bench.sh [--pare PATH] [--models a,b] [--batch 64]
#       [--rounds 3] [--repeat 100] [--threads 2] [--write-docs] [--docs PATH]
#
# --write-docs replaces the "Quantization" section of docs/benchmarks.md.
# Needs node + onnxruntime-node (tests/interop/setup.sh); exits 77 without.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench_dir=$here
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
pare=$top/build/tui/pare models=lenet5,resnet8,resnet8_bn,tiny_vit batch=64 rounds=3
repeat=100 threads=2 write=0 docs=$top/docs/benchmarks.md
while [ $# -gt 0 ]; do
    case $1 in
    --pare) pare=$2; shift ;;
    --models) models=$2; shift ;;
    --batch) batch=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --repeat) repeat=$2; shift ;;
    --threads) threads=$2; shift ;;
    --write-docs) write=1 ;;
    --docs) docs=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v node >/dev/null 2>&1 || { echo "skipped: node not found"; exit 77; }
fmnist=${PARE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ -f "$fmnist/train-images-idx3-ubyte.gz" ]; then
    data=fashion-mnist:train
else
    s=$top/tests/data/fmnist-sample
    data="idx:$s/t10k-images-idx3-ubyte.gz,$s/t10k-labels-idx1-ubyte.gz"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT


rows=()
for m in ${models//,/ }; do
    src=$top/tests/data/$m.onnx
    t0=$(date +%s.%N)
    "$pare" quant "$src" --data "$data" -o "$tmp/$m.q.onnx" --threads "$threads" --batch-nums 10 >/dev/null
    t1=$(date +%s.%N)
    "$pare" quant "$src" --data "$data" -o "$tmp/$m.u.onnx" --threads "$threads" --batch-nums 10 --uint8 >/dev/null
    "$pare" quant "$src" --data "$data" -o "$tmp/$m.i.onnx" --threads "$threads" --batch-nums 10 --inputs-only >/dev/null
    ptq=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    f=() q=() u=() i=()
    for r in $(seq 1 "$rounds"); do
        a=$(ort_ms "$src"); [ "$a" = skip ] && { echo "skipped: onnxruntime-node not installed"; exit 77; }
        f+=("$a"); q+=("$(ort_ms "$tmp/$m.q.onnx")"); u+=("$(ort_ms "$tmp/$m.u.onnx")")
        i+=("$(ort_ms "$tmp/$m.i.onnx")")
    done
    fm=$(echo "${f[*]}" | median) qm=$(echo "${q[*]}" | median) um=$(echo "${u[*]}" | median)
    im=$(echo "${i[*]}" | median)
    rows+=("$(awk -v m="$m" -v p="$ptq" -v f="$fm" -v q="$qm" -v u="$um" -v i="$im" 'BEGIN {
        printf "| %s | %s | %.3f | %.3f | %.2fx | %.3f | %.2fx | %.3f | %.2fx |", m, p, f, q, f / q, u, f / u, i, f / i }')")
done
table=$(
    echo "| model | pare quant wall s | ORT fp32 ms | S8S8 default ms | speed-up | --uint8 ms | speed-up | --inputs-only ms | speed-up |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
)
echo "$table"
if [ $write = 1 ]; then
    section=$(
        echo "## Quantization"
        echo
        echo "Written by \`tests/bench/quant_bench.sh --write-docs\`: \`pare quant\` wall time (10 calibration"
        echo "batches of 32 from $data, hist, int8 per-channel, $threads threads, process start included) and"
        echo "ONNX Runtime latency at batch $batch ($threads threads, median over $rounds interleaved rounds of"
        echo "$repeat runs) on the fp32 model and three QDQ layouts. Date: $(date -u +%Y-%m-%dT%H:%M:%SZ);"
        echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
        echo
        echo "$table"
    )
    write_docs_section "$docs" "$section"
fi
