#!/usr/bin/env bash
# End-to-end tests of `pare compress` (the YAML job runner): one case per
# ctest test (tests/e2e/compress.cmake).
#   compress.sh CASE
# Cases named after a file in configs/ run that job (Fashion-MNIST train and
# test splits needed: skipped with 77 without them) and assert its accuracy,
# its outputs and that `pare eval` of the written model.onnx gives the top-1
# the report claims (and ONNX Runtime too, when node and onnxruntime-node are
# installed). The other cases pin error paths on a tiny job over the
# 256-image sample in tests/data/fmnist-sample.
# Environment: PARE, SRC, WORK, FMNIST as for cli.sh; NODE (optional) runs
# tests/interop/compress.js for the ONNX Runtime case.
# Exit 0 = pass, 77 = skipped, anything else = fail.
set -u
case_name=${1:?usage: compress.sh CASE}
export PARE_THREADS=${PARE_THREADS:-2}
. "$(dirname "$0")/lib.sh"
# a job that fails its checks does so before evaluating anything
hasnt_eval() { ! grep -q -- "eval" "$WORK/err" || fail "the job ran before failing its checks"; }
# json_num PATH KEY (overrides lib.sh's, which reads $WORK/FILE): the first
# number after "KEY": in a JSON file
json_num() { grep -o "\"$2\": *[-0-9.e]*" "$1" | head -1 | sed 's/.*: *//'; }
# both splits (lib.sh's checks only the test split)
need_fmnist() {
    [ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] && [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] ||
        { echo "SKIP: no Fashion-MNIST train and test splits in $FMNIST"; exit 77; }
}
# at_least VALUE MIN WHAT
at_least() {
    awk -v v="$1" -v m="$2" 'BEGIN { exit !(v + 0 >= m + 0) }' || fail "$3 is $1, expected >= $2"
}

# A small job on the 256-image sample: QuantPost on LeNet-5.
tiny_job() {
    cat >"$WORK/job.yaml" <<EOF
Global:
  model: $DATA/lenet5.onnx
  data: fashion-mnist:test
  batch_size: 32
  save_dir: $WORK/out_dir
${1:-QuantPost:
  batch_nums: 2}
EOF
}

# run_config NAME MIN_TOP1 [MIN_SPARSITY]: runs configs/NAME.yaml into $WORK/out_dir.
run_config() {
    local name=$1 min=$2 minsp=${3:-}
    need_fmnist
    export PARE_FASHION_MNIST=$FMNIST
    local t0=$SECONDS
    run 0 compress -c "$SRC/configs/$name.yaml" --save-dir "$WORK/out_dir" --json
    local secs=$((SECONDS - t0))
    local dir=$WORK/out_dir
    for f in model.onnx config.resolved.yaml report.json report.md; do
        [ -s "$dir/$f" ] || fail "$dir/$f missing"
    done
    ls "$WORK" | grep -q 'out_dir\.tmp' && fail "a temporary directory was left behind"
    cmp -s "$WORK/out" "$dir/report.json" || fail "--json output differs from report.json"
    local before after n
    before=$(json_num "$dir/report.json" before)
    after=$(grep -o '"after": *[-0-9.e]*' "$dir/report.json" | head -1 | sed 's/.*: *//')
    n=$(json_num "$dir/report.json" samples)
    at_least "$after" "$min" "top-1 after"
    # the written model gives the top-1 the report claims
    "$PARE" eval "$dir/model.onnx" --data fashion-mnist:test --limit "$n" --json >"$WORK/eval.json" 2>"$WORK/err" ||
        fail "pare eval of the written model failed"
    local got
    got=$(json_num "$WORK/eval.json" top1)
    awk -v a="$after" -v b="$got" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-9) }' ||
        fail "report says top-1 $after, pare eval of model.onnx gives $got"
    # the resolved config runs again from anywhere (paths resolved)
    (cd / && "$PARE" compress -c "$dir/config.resolved.yaml" --dry-run --save-dir "$WORK/again") \
        >/dev/null 2>"$WORK/err" || fail "config.resolved.yaml does not run again"
    [ ! -e "$WORK/again" ] || fail "--dry-run wrote a directory"
    # ONNX Runtime runs the written model with the same top-1 (when node and
    # onnxruntime-node are installed; compress.js exits 77 otherwise)
    if [ -n "${NODE:-}" ] && [ -x "$NODE" ]; then
        "$NODE" "$SRC/tests/interop/compress.js" --dir "$dir" --data-dir "$FMNIST" --threads 2 \
            --tol-pp 0.1 >"$WORK/ort" 2>&1
        local ort=$?
        [ "$ort" -eq 0 ] || [ "$ort" -eq 77 ] || { cat "$WORK/ort" >&2; fail "ONNX Runtime check failed"; }
        cat "$WORK/ort"
    fi
    if [ -n "$minsp" ]; then
        at_least "$(json_num "$dir/report.json" sparsity)" "$minsp" "sparsity"
    fi
    echo "$name: top-1 $before -> $after on $n samples, ${secs} s"
}

case $case_name in
ptq_resnet8)
    run_config ptq_resnet8 0.91
    grep -q 'QuantizeLinear' "$WORK/out_dir/model.onnx" || fail "no QuantizeLinear in the model"
    [ "$(grep -vc '^#' "$WORK/out_dir/calibration_table.txt")" -gt 0 ] || fail "empty calibration table"
    ;;
ptq_abs_max | ptq_hist | ptq_kl | ptq_mse | weight_only)
    run_config "$case_name" 0.90
    grep -q 'QuantizeLinear\|DequantizeLinear' "$WORK/out_dir/model.onnx" || fail "no Q/DQ in the model"
    ;;
ptq_bias_correction | ptq_layerwise_recon) run_config "$case_name" 0.89 ;;
ptq_regionwise_recon)
    run_config ptq_regionwise_recon 0.90
    grep -q 'region-wise reconstruction' "$WORK/out_dir/report.md" ||
        fail "report.md does not mention region-wise reconstruction"
    ;;
qat_distill | fleetx_compress)
    run_config "$case_name" 0.89
    grep -q 'QuantizeLinear' "$WORK/out_dir/model.onnx" || fail "no QuantizeLinear in the model"
    ;;
ptq_hpo_lenet5)
    run_config ptq_hpo_lenet5 0.90
    [ "$(grep -c '"algo"' "$WORK/out_dir/report.json")" -eq 6 ] || fail "report.json lacks 6 trials"
    grep -q '(best)' "$WORK/out_dir/report.md" || fail "report.md marks no best trial"
    ;;
qat_lenet5)
    run_config qat_lenet5 0.90
    [ -s "$WORK/out_dir/calibration_table.txt" ] || fail "no calibration table"
    ;;
qat_pact_lenet5)
    run_config qat_pact_lenet5 0.89
    grep -q '_pact_max' "$WORK/out_dir/model.onnx" || fail "no PACT clip in the model"
    ;;
prune_channel_resnet8)
    run_config prune_channel_resnet8 0.84
    p0=$(grep -o '"params": {"before": [0-9]*, "after": [0-9]*' "$WORK/out_dir/report.json" | head -1)
    b=$(echo "$p0" | sed 's/.*before": \([0-9]*\).*/\1/')
    a=$(echo "$p0" | sed 's/.*after": //')
    [ "$a" -lt "$b" ] || fail "params did not shrink: $p0"
    ;;
prune_layers_resnet8) run_config prune_layers_resnet8 0.85 ;;
prune_unstructured_lenet5) run_config prune_unstructured_lenet5 0.88 0.74 ;;
prune_asp_resnet8) run_config prune_asp_resnet8 0.89 0.45 ;;
prune_transformer_tiny_vit)
    run_config prune_transformer_tiny_vit 0.83
    has out '"name": "/layers.0/attn/qkv/MatMul", "op": "MatMul", "channels": {"before": 192, "after": 96}'
    ;;
prune_distill_ptq_resnet8) run_config prune_distill_ptq_resnet8 0.87 ;;
unstructured_qat_lenet5) run_config unstructured_qat_lenet5 0.89 0.49 ;;
gmp_qat_lenet5)
    # GMP masks on the float weights behind the fake-quant pairs: the exported
    # int8 weights (the report's per-layer table reads the written model) hold
    # the masks' 60 % of zeros over all pruned layers
    run_config gmp_qat_lenet5 0.88 0.59
    grep -q 'QuantizeLinear' "$WORK/out_dir/model.onnx" || fail "no QuantizeLinear in the model"
    sp=$(grep '"op": "\(Conv\|Gemm\)"' "$WORK/out_dir/report.json" |
        sed 's/.*"after": \([0-9]*\)}, "sparsity": \([-0-9.e]*\), "quantized": \(true\|false\).*/\1 \2 \3/' |
        awk '$3 != "true" { bad = 1 } { z += $1 * $2; n += $1 } END { if (bad || !n) print -1; else print z / n }')
    at_least "$sp" 0.59 "sparsity of the exported int8 weights"
    ;;

tensor_bits)
    # QuantPost.tensor_bits: a named weight at 4 bits, an unknown name warned
    # about with a hint; the mapping is saved back in config.resolved.yaml
    tiny_job "QuantPost:
  batch_nums: 2
  tensor_bits:
    conv2.weight: 4
    fc9.weight: 4"
    PARE_FASHION_MNIST=$SAMPLE run 0 compress -c "$WORK/job.yaml"
    has err "tensor_bits: 'fc9.weight' is not a value or node of the model (did you mean 'fc1.weight'?)"
    grep -q "fc9.weight" "$WORK/out_dir/report.json" || fail "report.json lacks the warning"
    grep -q "^    conv2.weight: 4$" "$WORK/out_dir/config.resolved.yaml" ||
        fail "config.resolved.yaml lacks tensor_bits"
    # the same mapping in QuantAware is checked by its schema
    tiny_job "QuantPost:
  tensor_bits: {conv2.weight: 9}"
    PARE_FASHION_MNIST=$SAMPLE run 2 compress -c "$WORK/job.yaml"
    has err "job.yaml:7:31: 'conv2.weight' in 'tensor_bits' in QuantPost must be in \[2, 8\], got 9"
    ;;

ptq_ort)
    # The PTQ job's model runs in ONNX Runtime with the top-1 of its report.
    need_fmnist
    [ -n "${NODE:-}" ] && [ -x "$NODE" ] || { echo "SKIP: node not found"; exit 77; }
    export PARE_FASHION_MNIST=$FMNIST
    run 0 compress -c "$SRC/configs/ptq_resnet8.yaml" --save-dir "$WORK/out_dir"
    "$NODE" "$SRC/tests/interop/compress.js" --dir "$WORK/out_dir" --data-dir "$FMNIST" \
        --threads 2 --tol-pp 0.1
    exit $?
    ;;

bad_yaml)
    # every problem with file:line:column and a hint; exit 2; nothing written
    tiny_job "QuantPost:
  weight_bit: 8
  algo: kl"
    run 2 compress -c "$WORK/job.yaml"
    has err "job.yaml:7:3: unknown key 'weight_bit' in QuantPost"
    has err "did you mean 'weight_bits'?"
    has err "job.yaml:8:9: .*did you mean 'KL'?"
    [ ! -e "$WORK/out_dir" ] || fail "a bad job wrote save_dir"
    printf 'Global: {model: %s}\n' "$DATA/lenet5.onnx" >"$WORK/nosave.yaml"
    run 2 compress -c "$WORK/nosave.yaml"
    has err "save_dir"
    run 2 compress
    has err "missing -c"
    run 2 compress -c "$WORK/no-such.yaml"
    ;;

save_dir_exists)
    tiny_job
    export PARE_FASHION_MNIST=$SAMPLE
    mkdir -p "$WORK/out_dir"
    echo keep >"$WORK/out_dir/sentinel"
    run 2 compress -c "$WORK/job.yaml"
    has err "out_dir: output directory already exists (pass --force"
    [ -f "$WORK/out_dir/sentinel" ] || fail "the existing save_dir was touched"
    [ ! -e "$WORK/out_dir/model.onnx" ] || fail "wrote into the existing save_dir"
    # --force replaces only an earlier job's output (report.json) or an empty directory
    run 2 compress -c "$WORK/job.yaml" --force
    has err "not the output of an earlier job"
    [ -f "$WORK/out_dir/sentinel" ] || fail "--force removed a directory that is not a job's output"
    : >"$WORK/out_dir/report.json"
    run 0 compress -c "$WORK/job.yaml" --force
    [ -s "$WORK/out_dir/model.onnx" ] || fail "--force wrote no model"
    [ ! -e "$WORK/out_dir/sentinel" ] || fail "--force kept the old directory's files"
    run 0 compress -c "$WORK/job.yaml" --force   # replacing a job's output again
    # a save_dir holding the input model is never replaced
    cp "$DATA/lenet5.onnx" "$WORK/out_dir/in.onnx"
    sed -i "s#model: .*#model: $WORK/out_dir/in.onnx#" "$WORK/job.yaml"
    run 2 compress -c "$WORK/job.yaml" --force
    has err "save_dir holds the input model"
    cmp -s "$DATA/lenet5.onnx" "$WORK/out_dir/in.onnx" || fail "the input model changed"
    ;;

cancel)
    # Ctrl-C during training: exit 1, no save_dir, no temporary directory.
    tiny_job "TrainConfig:
  train_iter: 1000000
  batch_size: 8"
    PARE_FASHION_MNIST=$SAMPLE "$PARE" compress -c "$WORK/job.yaml" >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    for _ in $(seq 1 100); do
        grep -q 'train' "$WORK/err" 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.5
    kill -INT "$pid"
    wait "$pid"
    code=$?
    [ "$code" -eq 1 ] || fail "interrupted compress exited $code, expected 1"
    has err "interrupted; nothing was written"
    [ ! -e "$WORK/out_dir" ] || fail "a canceled job left save_dir"
    ls "$WORK" | grep -q 'out_dir\.' && fail "a canceled job left a temporary directory"
    exit 0
    ;;

dry_run)
    tiny_job "ChannelPrune:
  pruned_ratio: 0.3
TrainConfig:
  train_iter: 10
QuantPost:
  batch_nums: 2"
    PARE_FASHION_MNIST=$SAMPLE run 0 compress -c "$WORK/job.yaml" --dry-run
    has out "^prune .*planned: 4 of 5 groups"
    has out "^train .*planned"
    has out "^calibrate .*planned"
    [ ! -e "$WORK/out_dir" ] || fail "--dry-run wrote save_dir"
    ;;

unsupported)
    tiny_job "TransformerPrune:
  pruned_ratio: 0.2"
    PARE_FASHION_MNIST=$SAMPLE run 2 compress -c "$WORK/job.yaml"
    has err "job.yaml:7:[0-9]*: TransformerPrune: .* has no attention block pare can prune"
    # a region naming a value the model lacks: its place in the file and a hint
    tiny_job "QuantPost:
  batch_nums: 2
  recon_level: region-wise
  regions: [[[/relu1/Relu_output], [/conv2/Conv_output_0]]]"
    PARE_FASHION_MNIST=$SAMPLE run 2 compress -c "$WORK/job.yaml"
    has err "job.yaml:9:13: region 1: '/relu1/Relu_output' is not a value of the model"
    has err "did you mean '/relu1/Relu_output_0'?"
    [ ! -e "$WORK/out_dir" ] || fail "a failed job wrote save_dir"
    tiny_job "Layers:
  /conv9/Conv: 0.5"
    PARE_FASHION_MNIST=$SAMPLE run 2 compress -c "$WORK/job.yaml"
    has err "job.yaml:7:[0-9]*: Layers: no prune group '/conv9/Conv'"
    has err "show-groups"
    hasnt_eval
    [ ! -e "$WORK/out_dir" ] || fail "a failed job wrote save_dir"
    ;;

relative_paths)
    # model and data files relative to the job file, save_dir to the cwd
    mkdir -p "$WORK/jobs/models" "$WORK/run"
    cp "$DATA/lenet5.onnx" "$WORK/jobs/models/"
    cp "$SAMPLE"/t10k-*.gz "$WORK/jobs/"
    cat >"$WORK/jobs/job.yaml" <<EOF
Global:
  model: models/lenet5.onnx
  data: idx:t10k-images-idx3-ubyte.gz,t10k-labels-idx1-ubyte.gz
  batch_size: 32
  save_dir: result
QuantPost:
  batch_nums: 2
EOF
    cd "$WORK/run" || fail "cd"
    run 0 compress -c ../jobs/job.yaml
    [ -s "$WORK/run/result/model.onnx" ] || fail "save_dir is not relative to the cwd"
    has out "idx:"
    ;;

*)
    echo "unknown case '$case_name'" >&2
    exit 2
    ;;
esac
exit 0
