#!/usr/bin/env bash
# Training throughput: `pare train` against PyTorch (Debian's python3-torch,
# tests/bench/torch_train.py) on lenet5 and resnet8 with BatchNorm, batch 64,
# the same thread count, measured in the same run and interleaved.
#
#   tests/bench/train_bench.sh [--pare PATH] [--iters 200] [--rounds 3]
#                              [--threads 2] [--write-docs] [--docs PATH]
#
# A pare figure is `pare train --iterations N --json`'s images_per_s: training
# steps only (forward in training mode, loss, backward, AdamW update), on
# Fashion-MNIST training images when present, else random data; the first
# step's planning is included. The PyTorch figure is torch_train.py's fastest
# round of the same number of steps after 10 warm-up steps, with AdamW. Each
# figure is the best of --rounds; the engine going first alternates. Without
# torch the PyTorch column says n/a. --write-docs replaces the "Training
# throughput" section of docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench_dir=$here
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
pare=$top/build/tui/pare iters=200 rounds=3 threads=2 write=0 docs=$top/docs/benchmarks.md
while [ $# -gt 0 ]; do
    case $1 in
    --pare) pare=$2; shift ;;
    --iters) iters=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --threads) threads=$2; shift ;;
    --write-docs) write=1 ;;
    --docs) docs=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
fmnist=${PARE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -f "$fmnist/train-images-idx3-ubyte.gz" ]; then
    data=fashion-mnist:train torch_data="--data fmnist --fmnist $fmnist"
else # random samples with labels, as an npz the data spec reads
    /usr/bin/python3 - "$tmp/rand.npz" <<'PY' 2>/dev/null || { echo "skipped: no data and no numpy"; exit 77; }
import sys, numpy as np
r = np.random.default_rng(1)
np.savez(sys.argv[1], x=r.standard_normal((4096, 1, 28, 28), dtype=np.float32), y=r.integers(0, 10, 4096))
PY
    data=npz:$tmp/rand.npz torch_data="--data random"
fi
have_torch=1
/usr/bin/python3 -c 'import torch' 2>/dev/null || have_torch=0

pare_ips() { # MODEL
    "$pare" train "$top/tests/data/$1.onnx" --data "$data" --iterations "$iters" --batch 64 \
        --threads "$threads" --optimizer adamw --last --json -o "$tmp/out.onnx" 2>/dev/null |
        grep -m1 '"images_per_s"' | sed 's/.*: *//; s/,$//'
}
torch_ips() { # MODEL (torch's name)
    [ $have_torch = 1 ] || { echo nan; return; }
    # shellcheck disable=SC2086
    /usr/bin/python3 "$here/torch_train.py" --models "$1" --iters "$iters" --rounds 1 \
        --threads "$threads" $torch_data 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["images_per_s"])'
}
best() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b + 0 > a + 0) print b; else print a }'; }

declare -A P T
for m in lenet5 resnet8_bn; do P[$m]=nan; T[$m]=nan; done
for r in $(seq 1 "$rounds"); do
    for m in lenet5 resnet8_bn; do
        tm=${m%_bn}
        if [ $((r % 2)) = 1 ]; then
            P[$m]=$(best "${P[$m]}" "$(pare_ips $m)"); T[$m]=$(best "${T[$m]}" "$(torch_ips $tm)")
        else
            T[$m]=$(best "${T[$m]}" "$(torch_ips $tm)"); P[$m]=$(best "${P[$m]}" "$(pare_ips $m)")
        fi
    done
done

table=$(
    echo "| model | pare img/s | PyTorch img/s | pare/PyTorch | target |"
    echo "|---|---:|---:|---:|---:|"
    for m in lenet5 resnet8_bn; do
        awk -v m="$m" -v p="${P[$m]}" -v t="${T[$m]}" 'BEGIN {
            r = (t == "nan" || t + 0 == 0) ? "n/a" : sprintf("%.2f", p / t)
            printf "| %s | %.0f | %s | %s | >= 0.8 |\n", m, p, (t == "nan" ? "n/a" : sprintf("%.0f", t)), r }'
    done
)
echo "$table"
if [ $write = 1 ]; then
    section=$(
        echo "## Training throughput"
        echo
        echo "Written by \`tests/bench/train_bench.sh --write-docs\` (batch 64, $threads threads, $iters steps,"
        echo "best of $rounds interleaved rounds; data: $data). pare trains resnet8_bn.onnx (BatchNorm in"
        echo "training mode), PyTorch the same architecture (torch_train.py). Date: $(date -u +%Y-%m-%dT%H:%M:%SZ);"
        echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
        echo
        echo "$table"
    )
    write_docs_section "$docs" "$section"
fi
