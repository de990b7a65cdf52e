#!/usr/bin/env bash
# End-to-end tests of `pare train` and `pare distill`: one case per ctest test.
#   train.sh CASE
# Exit 0 = pass, 77 = skipped (data missing), anything else = fail.
set -u
case_name=${1:?usage: train.sh CASE}
. "$(dirname "$0")/lib.sh"
SAMPLE_SPEC="idx:$SAMPLE/t10k-images-idx3-ubyte.gz,$SAMPLE/t10k-labels-idx1-ubyte.gz"
UNLABELLED="idx:$SAMPLE/t10k-images-idx3-ubyte.gz"

case $case_name in
train_finetune)
    # Fine-tuning on the 256-image sample: the input model is untouched, the
    # output has the structure of the input, and `pare eval` on it gives the
    # accuracy `pare train` reported for its saved (best) weights.
    train=$SAMPLE_SPEC
    cp "$DATA/lenet5.onnx" in.onnx
    before=$(md5sum <in.onnx)
    run 0 train in.onnx --data "$train" --eval-data "$train" -o out.onnx --iterations 12 \
        --batch 32 --lr 1e-3 --eval-every 4 --json
    [ "$(md5sum <in.onnx)" = "$before" ] || fail "the input model changed"
    [ -s out.onnx ] || fail "no output model"
    [ "$(json_num out steps)" = 12 ] || fail "expected 12 steps"
    best=$(json_num out metric_best)
    first=$(json_num out first_loss)
    awk -v b="$best" 'BEGIN { exit !(b >= 0.8) }' || fail "best top-1 $best is implausibly low"
    cp out train.json
    run 0 eval out.onnx --data "$train" --json
    got=$(json_num out top1)
    awk -v g="$got" -v b="$best" 'BEGIN { d = g - b; if (d < 0) d = -d; exit !(d < 1e-9) }' ||
        fail "pare eval says $got, pare train reported $best"
    run 0 info out.onnx --json
    run 0 info in.onnx --json
    echo "fine-tune on the sample: best top-1 $best, first loss $first"
    ;;

train_deterministic)
    # Same seed and threads: identical weights; 6 steps + resume for 6 more
    # equals 12 steps in one go (bit for bit).
    train=$SAMPLE_SPEC
    common=(--data "$train" --eval-data "$train" --eval-limit 64 --batch 16 --lr 1e-3 --last --seed 5)
    run 0 train "$DATA/resnet8_bn.onnx" "${common[@]}" --iterations 12 -o a.onnx
    run 0 train "$DATA/resnet8_bn.onnx" "${common[@]}" --iterations 12 -o b.onnx
    cmp -s a.onnx b.onnx || fail "two runs with the same seed differ"
    run 0 train "$DATA/resnet8_bn.onnx" "${common[@]}" --iterations 6 --checkpoint ck -o half.onnx
    [ -s ck/model.onnx ] && [ -s ck/state.npz ] || fail "no checkpoint written"
    run 0 train "$DATA/resnet8_bn.onnx" "${common[@]}" --iterations 12 --resume ck -o c.onnx
    cmp -s a.onnx c.onnx || fail "resumed run differs from the uninterrupted one"
    cmp -s a.onnx "$DATA/resnet8_bn.onnx" && fail "training changed nothing"
    ;;

train_interrupt)
    need_fmnist
    cp "$DATA/resnet8.onnx" in.onnx
    before=$(md5sum <in.onnx)
    PARE_FASHION_MNIST=$FMNIST "$PARE" train in.onnx --data fashion-mnist:train -o out.onnx \
        --checkpoint ck >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    sleep 3
    kill -INT "$pid"
    wait "$pid"
    code=$?
    [ "$code" -eq 1 ] || fail "interrupted training exited $code, expected 1"
    has err 'stopped at step'
    has err 'resume with --resume ck'
    [ -s ck/model.onnx ] && [ -s ck/state.npz ] || fail "no checkpoint after Ctrl-C"
    [ ! -e out.onnx ] || fail "an interrupted run wrote its output"
    [ "$(md5sum <in.onnx)" = "$before" ] || fail "the input model changed"
    # the checkpoint continues
    PARE_FASHION_MNIST=$FMNIST run 0 train in.onnx --data fashion-mnist:train --limit 2048 \
        -o out.onnx --resume ck --iterations 40 --json
    [ -s out.onnx ] || fail "no output after resuming"
    ;;

train_bad_input)
    train=$SAMPLE_SPEC
    unlabelled=$UNLABELLED
    run 2 train "$DATA/lenet5.onnx" --data "$train" -o "$DATA/lenet5.onnx"
    has err 'refusing to overwrite an input model'
    run 2 train "$DATA/lenet5.onnx" -o x.onnx
    has err '\-\-data is required'
    run 2 train "$DATA/lenet5.onnx" --data "$unlabelled" -o x.onnx
    one_line_err
    has err 'no labels and there is no teacher'
    run 2 distill "$DATA/lenet5.onnx" --data "$unlabelled" --task-weight 1 -o x.onnx
    has err 'has no labels, so there is no task loss'
    run 2 distill "$DATA/lenet5.onnx" --teacher "$DATA/resnet8.onnx" --data "$train" -o x.onnx \
        --pair logits:logitz
    has err "the student has no value named 'logitz'"
    has err "did you mean 'logits'?"
    run 2 distill "$DATA/lenet5.onnx" --teacher "$DATA/resnet8.onnx" --data "$train" -o x.onnx \
        --pair logits:/fc2/Gemm_output_0
    has err "teacher value 'logits' is \[64, 10\] but student value '/fc2/Gemm_output_0' is \[64, 84\]"
    has err "an adapter"
    run 2 distill "$DATA/lenet5.onnx" --data "$train" -o x.onnx --pair a:b:kl
    has err "unknown loss 'kl'"
    run 1 train "$DATA/lenet5.onnx" --data "$train" -o x.onnx --lr 1e12 --optimizer sgd --iterations 20
    has err 'is not finite at step'
    [ ! -e x.onnx ] || fail "a failed run wrote its output"
    ;;

distill_teacher)
    # lenet5 from scratch learning from resnet8 (soft_label, T = 4) on the
    # sample, and label-free self-distillation (cosine to the teacher).
    train=$SAMPLE_SPEC
    run 0 distill "$DATA/lenet5.onnx" --teacher "$DATA/resnet8.onnx" --data "$train" \
        --eval-data "$train" --reinit --pair logits:logits:soft_label:1 --temperature 4 \
        --task-weight 0.5 --iterations 24 --batch 32 --lr 2e-3 -o kd.onnx --json
    has out '"metric": "top1"'
    [ -s kd.onnx ] || fail "no output"
    run 0 distill "$DATA/lenet5.onnx" --data "idx:$SAMPLE/t10k-images-idx3-ubyte.gz" \
        --eval-data "idx:$SAMPLE/t10k-images-idx3-ubyte.gz" --iterations 8 --batch 32 -o self.onnx --json
    has out '"metric": "cosine"'
    cos=$(json_num out metric_best)
    awk -v c="$cos" 'BEGIN { exit !(c > 0.99) }' || fail "self-distillation cosine $cos"
    # an adapter bridges different widths: resnet8's 16-channel stem output
    # taught to lenet5's 6-channel conv1 output (both 28x28) is refused
    # without --adapter and trains with it
    pair="/stem/stem.2/Relu_output_0:/relu1/Relu_output_0:l2:0.5"
    run 2 distill "$DATA/lenet5.onnx" --teacher "$DATA/resnet8.onnx" --data "$train" \
        --pair "$pair" --iterations 2 --batch 32 -o ad.onnx
    has err "is \[32, 16, 28, 28\] but student value"
    run 0 distill "$DATA/lenet5.onnx" --teacher "$DATA/resnet8.onnx" --data "$train" \
        --pair "$pair" --pair logits:logits --adapter --iterations 4 --batch 32 -o ad.onnx --json
    [ "$(json_num out steps)" = 4 ] || fail "adapter run did not finish"
    [ -s ad.onnx ] || fail "no output with an adapter"
    ;;

*)
    echo "unknown case '$case_name'" >&2
    exit 2
    ;;
esac
exit 0
