#!/usr/bin/env bash
# Reproduces the training figures of docs/training.md on the full Fashion-MNIST
# (minutes, not a ctest): fine-tuning each model for one epoch at a small rate,
# lenet5 from scratch with the models README's recipe, and lenet5 distilled from
# resnet8. Usage: train_recipes.sh PARE [OUTDIR] [THREADS]; prints one line per
# run with the 10k test top-1 of the saved model.
set -euo pipefail
PARE=${1:?usage: train_recipes.sh PARE [OUTDIR] [THREADS]}
OUT=${2:-/tmp/pare-train-recipes}
THREADS=${3:-2}
DATA=$(cd "$(dirname "$0")/../data" && pwd)
mkdir -p "$OUT"
top1() { "$PARE" eval "$1" --data fashion-mnist:test --threads "$THREADS" --json |
         grep -m1 '"top1"' | sed 's/.*: *//; s/,$//'; }
report() { # report NAME MODEL SECONDS
    printf '%-28s top1 %.2f%%  (%s s)\n' "$1" "$(awk -v t="$(top1 "$2")" 'BEGIN { print 100 * t }')" "$3"
}
timed() { local t0=$SECONDS; "$@" >"$OUT/last.log" 2>&1 || { cat "$OUT/last.log"; exit 1; }; echo $((SECONDS - t0)); }

what=${WHAT:-finetune scratch distill}
for w in $what; do
case $w in
finetune)
    for m in lenet5 resnet8 resnet8_bn tiny_vit; do
        report "before: $m" "$DATA/$m.onnx" 0
        s=$(timed "$PARE" train "$DATA/$m.onnx" --data fashion-mnist:train -o "$OUT/ft_$m.onnx" \
            --epochs 1 --optimizer adamw --lr 1e-4 --weight-decay 1e-4 --last --seed 1 \
            --threads "$THREADS")
        report "fine-tune 1 epoch: $m" "$OUT/ft_$m.onnx" "$s"
    done
    ;;
scratch)
    s=$(timed "$PARE" train "$DATA/lenet5.onnx" --reinit --data fashion-mnist:train \
        -o "$OUT/scratch_lenet5.onnx" --epochs 8 --batch 64 --optimizer adamw --lr 2e-3 \
        --weight-decay 1e-4 --schedule onecycle --pct-start 0.2 --last --seed 20240601 \
        --threads "$THREADS")
    report "lenet5 from scratch, 8 ep" "$OUT/scratch_lenet5.onnx" "$s"
    ;;
distill)
    s=$(timed "$PARE" distill "$DATA/lenet5.onnx" --reinit --teacher "$DATA/resnet8.onnx" \
        --data fashion-mnist:train -o "$OUT/kd_lenet5.onnx" --epochs 8 --batch 64 \
        --optimizer adamw --lr 2e-3 --weight-decay 1e-4 --schedule onecycle --pct-start 0.2 \
        --pair logits:logits:soft_label:0.5 --temperature 4 --task-weight 0.5 --last \
        --seed 20240601 --threads "$THREADS")
    report "lenet5 KD T=4 0.5/0.5, 8 ep" "$OUT/kd_lenet5.onnx" "$s"
    ;;
esac
done
