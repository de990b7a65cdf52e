#!/usr/bin/env bash
# Reproduces the pruning-with-recovery figures of docs/pruning.md on the full
# Fashion-MNIST (many minutes; not a ctest): resnet8 cut to -50 % FLOPs with
# sensitivity-chosen vs uniform ratios, each fine-tuned with self-distillation
# from the unpruned model; unstructured global L1 50/70/90 % without and with
# one epoch of fine-tuning; 2:4 sparsity with fine-tuning.
# Usage: prune_recipes.sh PARE [OUTDIR] [THREADS]; WHAT="structured unstructured nm"
# (structured: METHOD=measured|budget|paddleslim, RECOVER="pare sens options",
# UNIFORM=ratio, FT_EPOCHS=n)
set -euo pipefail
PARE=${1:?usage: prune_recipes.sh PARE [OUTDIR] [THREADS]}
OUT=${2:-/tmp/pare-prune-recipes}
THREADS=${3:-2}
DATA=$(cd "$(dirname "$0")/../data" && pwd)
FT_EPOCHS=${FT_EPOCHS:-1}
mkdir -p "$OUT"
top1() { "$PARE" eval "$1" --data fashion-mnist:test --threads "$THREADS" --json |
         grep -m1 '"top1"' | sed 's/.*: *//; s/,$//'; }
pct() { awk -v t="$(top1 "$1")" 'BEGIN { printf "%.2f", 100 * t }'; }
quiet() { "$@" >"$OUT/last.log" 2>&1 || { cat "$OUT/last.log"; exit 1; }; }
ft() { # ft IN OUT [extra train args]: one epoch AdamW 1e-4, distilled from the original
    local in=$1 out=$2 orig=$3; shift 3
    quiet "$PARE" distill "$in" --teacher "$orig" --data fashion-mnist:train -o "$out" \
        --epochs "$FT_EPOCHS" --optimizer adamw --lr 1e-3 --weight-decay 1e-4 --schedule cosine \
        --temperature 4 --last --seed 1 --threads "$THREADS" "$@"
}
flops() { "$PARE" info "$1" --json | grep -m1 '"flops_per_sample"' | sed 's/.*: *//; s/,$//'; }
params() { "$PARE" info "$1" --json | sed -n '/"totals"/,/}/p' | grep -m1 '"params"' | sed 's/.*: *//; s/,$//'; }

for w in ${WHAT:-structured unstructured nm}; do
case $w in
structured)
    m=$DATA/resnet8.onnx
    # METHOD=budget RECOVER="--recover-steps 50 --ratios 0.2,0.4,0.6,0.8": the
    # recovery-aware sweep with the budgeted allocation (docs/pruning.md)
    # shellcheck disable=SC2086
    quiet "$PARE" sens "$m" --prune --data fashion-mnist:train --limit 1000 --threads "$THREADS" \
        --cache "$OUT/sens.cache" --target-flops 0.5 --method "${METHOD:-measured}" \
        ${RECOVER:-} --save "$OUT/sel.onnx"
    # the uniform ratio removing 50 % of resnet8's FLOPs (docs/pruning.md)
    quiet "$PARE" prune "$m" -o "$OUT/uni.onnx" --ratio "${UNIFORM:-0.289}"
    for v in ${VARIANTS:-sel uni}; do
        before=$(pct "$OUT/$v.onnx")
        ft "$OUT/$v.onnx" "$OUT/${v}_ft.onnx" "$m"
        echo "structured -50% FLOPs ($v): FLOPs $(flops "$m") -> $(flops "$OUT/$v.onnx"), params $(params "$m") -> $(params "$OUT/$v.onnx"), top1 $before -> $(pct "$OUT/${v}_ft.onnx") after $FT_EPOCHS epoch(s) of distillation"
    done
    ;;
unstructured)
    # resnet8_bn: conv weights as trained (BN separate), as PyTorch pruned them
    for model in ${MODELS:-lenet5 resnet8_bn}; do
        for r in 0.5 0.7 0.9; do
            quiet "$PARE" prune "$DATA/$model.onnx" -o "$OUT/${model}_u$r.onnx" --unstructured --ratio $r --global
            before=$(pct "$OUT/${model}_u$r.onnx")
            quiet "$PARE" train "$OUT/${model}_u$r.onnx" --data fashion-mnist:train -o "$OUT/${model}_u${r}_ft.onnx" \
                --epochs 1 --optimizer adamw --lr 1e-4 --keep-sparsity --last --seed 1 --threads "$THREADS"
            echo "unstructured global L1 $r $model: top1 $before -> $(pct "$OUT/${model}_u${r}_ft.onnx") (1 epoch AdamW 1e-4, zeros kept)"
            # the distillation recipe: AdamW 1e-3 cosine, T 4, from the unpruned model
            ft "$OUT/${model}_u$r.onnx" "$OUT/${model}_u${r}_kd.onnx" "$DATA/$model.onnx" --keep-sparsity
            echo "unstructured global L1 $r $model: top1 $before -> $(pct "$OUT/${model}_u${r}_kd.onnx") (1 epoch self-distillation AdamW 1e-3 cosine, zeros kept)"
        done
    done
    ;;
nm)
    quiet "$PARE" prune "$DATA/resnet8_bn.onnx" -o "$OUT/r8_24.onnx" --nm 2:4
    before=$(pct "$OUT/r8_24.onnx")
    quiet "$PARE" train "$OUT/r8_24.onnx" --data fashion-mnist:train -o "$OUT/r8_24_ft.onnx" \
        --epochs 1 --optimizer adamw --lr 1e-4 --keep-sparsity --last --seed 1 --threads "$THREADS"
    echo "2:4 resnet8_bn: top1 $before -> $(pct "$OUT/r8_24_ft.onnx") (1 epoch AdamW 1e-4, zeros kept)"
    ;;
esac
done
