#!/usr/bin/env bash
# What channel pruning buys in ONNX Runtime: for each model and uniform
# ratio, `pare prune --ratio R` with and without --round-to N, then ORT's
# latency (tests/bench/ort_bench.js median; all variants of a model
# interleaved per round; the figure is the median over rounds) next to the
# params and FLOPs pare reports. Channel counts matter to ORT's blocked
# (NCHWc) kernels, so a cut that leaves odd counts can save FLOPs and no time.
#
#   tests/bench/prune_ort_bench.sh [--pare PATH] [--models a,b] [--ratios 0.25,0.5]
#       [--round-to 8] [--batch 64] [--rounds 3] [--repeat 100] [--threads 2]
#       [--write-docs] [--docs PATH]
#
# --write-docs replaces the "Pruning in ONNX Runtime" section of
# docs/benchmarks.md. Needs node + onnxruntime-node; exits 77 without.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench_dir=$here
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
pare=$top/build/tui/pare models=resnet8 ratios=0.25,0.289,0.5,0.75 round=8 batch=64
rounds=3 repeat=100 threads=2 write=0 docs=$top/docs/benchmarks.md
while [ $# -gt 0 ]; do
    case $1 in
    --pare) pare=$2; shift ;;
    --models) models=$2; shift ;;
    --ratios) ratios=$2; shift ;;
    --round-to) round=$2; shift ;;
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

info() { # MODEL -> "params flops"
    local j
    j=$("$pare" info "$1" --json)
    echo "$(echo "$j" | sed -n '/"totals"/,/}/p' | grep -m1 '"params"' | sed 's/.*: *//; s/,$//')" \
         "$(echo "$j" | grep -m1 '"flops_per_sample"' | sed 's/.*: *//; s/,$//')"
}
channels() { # MODEL -> the distinct output channel counts of its Convs, in order, joined by /
    "$pare" info "$1" --json | tr -d '\n ' | grep -o '"op":"Conv"[^}]*"shape":\["batch",[0-9]*' |
        sed 's/.*,//' | awk '!s[$0]++' | paste -sd/ -
}

rows=()
for m in ${models//,/ }; do
    src=$top/tests/data/$m.onnx
    names=(fp32) files=("$src")
    for r in ${ratios//,/ }; do
        "$pare" prune "$src" -o "$tmp/$m.$r.onnx" --ratio "$r" >/dev/null
        names+=("$r"); files+=("$tmp/$m.$r.onnx")
        "$pare" prune "$src" -o "$tmp/$m.$r.r.onnx" --ratio "$r" --round-to "$round" >/dev/null
        names+=("$r, round-to $round"); files+=("$tmp/$m.$r.r.onnx")
    done
    declare -A lat=()
    for k in $(seq 1 "$rounds"); do
        for i in "${!files[@]}"; do
            a=$(ort_ms "${files[$i]}")
            [ "$a" = skip ] && { echo "skipped: onnxruntime-node not installed"; exit 77; }
            lat[$i]="${lat[$i]:-} $a"
        done
    done
    read -r p0 f0 <<<"$(info "$src")"
    base=$(echo "${lat[0]}" | median)
    for i in "${!files[@]}"; do
        read -r p f <<<"$(info "${files[$i]}")"
        ms=$(echo "${lat[$i]}" | median)
        rows+=("$(awk -v m="$m" -v n="${names[$i]}" -v c="$(channels "${files[$i]}")" -v p="$p" -v f="$f" \
            -v p0="$p0" -v f0="$f0" -v ms="$ms" -v b="$base" 'BEGIN {
            printf "| %s | %s | %s | %d | %.1f %% | %.2f M | %.1f %% | %.3f | %.2fx |", m, n, c, p,
                100 * (1 - p / p0), f / 1e6, 100 * (1 - f / f0), ms, b / ms }')")
    done
    unset lat
done
table=$(
    echo "| model | ratio | Conv output channels | params | params removed | FLOPs/sample | FLOPs removed | ORT ms | speed-up |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
)
echo "$table"
if [ $write = 1 ]; then
    section=$(
        echo "## Pruning in ONNX Runtime"
        echo
        echo "Written by \`tests/bench/prune_ort_bench.sh --write-docs\`: uniform channel pruning"
        echo "(\`pare prune --ratio R\`, l1_norm, with and without \`--round-to $round\`) and ONNX Runtime's"
        echo "latency at batch $batch ($threads threads, median over $rounds interleaved rounds of $repeat runs)."
        echo "Date: $(date -u +%Y-%m-%dT%H:%M:%SZ); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
        echo
        echo "$table"
    )
    write_docs_section "$docs" "$section"
fi
