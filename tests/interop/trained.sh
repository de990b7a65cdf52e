#!/bin/sh
# A model trained by pare runs in ONNX Runtime with pare's results: `pare
# train` fine-tunes MODEL for a few steps on the 256-image sample (BatchNorm
# running statistics and weights change), then interop.js checks the trained
# file (pare run vs ORT within 1e-4, identical argmax on every image).
#   trained.sh NODE INTEROP_DIR PARE MODEL WORKDIR SAMPLE_DIR
set -u
node=$1 dir=$2 pare=$3 model=$4 work=$5 sample=$6
rm -rf "$work" && mkdir -p "$work" || exit 1
spec="idx:$sample/t10k-images-idx3-ubyte.gz,$sample/t10k-labels-idx1-ubyte.gz"
"$pare" train "$model" --data "$spec" --mean 0.2860 --std 0.3530 -o "$work/trained.onnx" \
    --iterations 16 --batch 32 --optimizer adamw --lr 1e-4 --last --threads 2 --json \
    >"$work/train.json" || { echo "FAIL: pare train exited $?"; cat "$work/train.json"; exit 1; }
cmp -s "$model" "$work/trained.onnx" && { echo "FAIL: training changed nothing"; exit 1; }
exec "$node" "$dir/interop.js" --pare "$pare" --model "$work/trained.onnx" --workdir "$work/check" \
    --data-dir "$sample" --n 256 --tol 1e-4 --threads 2 --only run
