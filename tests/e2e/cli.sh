#!/usr/bin/env bash
# End-to-end tests of the `pare` command line: one case per ctest test.
#   cli.sh CASE
# Environment (set by tests/e2e/CMakeLists.txt): PARE (the binary), HELPER
# (tests/e2e/helper.c built), SRC (source tree), WORK (a scratch directory
# for this case), FMNIST (the Fashion-MNIST directory).
# Exit 0 = pass, 77 = skipped (data missing), anything else = fail.
set -u
case_name=${1:?usage: cli.sh CASE}
: "${HELPER:?}"
. "$(dirname "$0")/lib.sh"

case $case_name in
usage)
    run 2
    has err 'usage: pare COMMAND'
    run 0 --version
    has out '^pare [0-9]'
    run 0 --help
    has out 'eval'
    run 2 frobnicate
    has err "unknown command 'frobnicate'"
    run 2 evl
    has err "did you mean 'eval'"
    for cmd in info eval run convert bench ops tui; do
        run 0 "$cmd" --help
        has out "usage: pare $cmd"
        [ ! -s err ] || fail "$cmd --help wrote to stderr"
    done
    run 2 info
    has err 'missing MODEL'
    has err 'usage: pare info'
    run 2 info "$DATA/lenet5.onnx" --frob
    has err "unknown option '--frob'"
    has err 'usage: pare info'
    run 2 eval "$DATA/lenet5.onnx" --bach 3 --data fashion-mnist
    has err "did you mean '--batch'"
    run 2 eval "$DATA/lenet5.onnx"
    has err 'missing --data'
    run 2 eval "$DATA/lenet5.onnx" --data fashion-mnist --batch
    has err "'--batch' needs a value"
    run 2 eval "$DATA/lenet5.onnx" --data fashion-mnist --batch zero
    has err 'wants an integer'
    run 2 eval "$DATA/lenet5.onnx" --data fashion-mnist --batch 0
    run 2 bench "$DATA/lenet5.onnx" --batch 1,x
    run 2 bench "$DATA/lenet5.onnx" --repeat 2 --seconds 1
    run 2 run "$DATA/lenet5.onnx" --input x.npy
    has err 'missing --output'
    run 2 convert "$DATA/lenet5.onnx"
    has err 'missing OUT'
    run 2 info a.onnx b.onnx
    has err "unexpected argument 'b.onnx'"
    ;;

missing_file)
    run 2 info "$WORK/no-such-model.onnx"
    one_line_err
    has err "no-such-model.onnx"
    run 2 eval "$WORK/no-such-model.onnx" --data fashion-mnist
    one_line_err
    run 2 convert "$WORK/no-such-model.onnx" "$WORK/out.onnx"
    one_line_err
    [ ! -e "$WORK/out.onnx" ] || fail "convert wrote an output for a missing input"
    PARE_FASHION_MNIST=$WORK/nowhere run 2 eval "$DATA/lenet5.onnx" --data idx:"$WORK/none.gz"
    one_line_err
    ;;

garbage)
    head -c 4096 /dev/urandom >"$WORK/garbage.onnx"
    printf 'this is not a protobuf at all\n' >"$WORK/text.onnx"
    : >"$WORK/empty.onnx"
    for f in garbage text empty; do
        run 2 info "$WORK/$f.onnx"
        one_line_err
        has err "^pare: $WORK/$f.onnx"
        run 2 bench "$WORK/$f.onnx" --repeat 1
        one_line_err
    done
    ;;

unknown_op)
    node=$("$HELPER" bogus-op "$DATA/lenet5.onnx" "$WORK/bogus.onnx" FrobnicateOp) ||
        fail "helper could not build the model"
    [ -n "$node" ] || fail "no Relu node in lenet5"
    # Browsing works: shapes before the node, '?' after it.
    run 0 info "$WORK/bogus.onnx"
    has out 'FrobnicateOp'
    has out '(no kernel)'
    has out '\[batch, 6, 28, 28\]'
    has out ' ? '
    has out 'cannot run'
    has out '^params  *61,706'
    run 0 info "$WORK/bogus.onnx" --json
    has out '"runnable": false'
    has out '"has_kernel": false'
    # Running it fails with one line naming op and node.
    PARE_FASHION_MNIST=$SAMPLE run 2 eval "$WORK/bogus.onnx" --data fashion-mnist
    one_line_err
    has err "FrobnicateOp"
    has err "node '$node'"
    "$HELPER" make-npy "$WORK/x.npy" 2 || fail "helper make-npy"
    run 2 run "$WORK/bogus.onnx" --input "$WORK/x.npy" --output "$WORK/y.npz"
    one_line_err
    has err "FrobnicateOp"
    [ ! -e "$WORK/y.npz" ] || fail "run wrote an output for a model it cannot run"
    run 2 bench "$WORK/bogus.onnx" --repeat 1
    one_line_err
    ;;

info_lenet5 | info_resnet8 | info_resnet8_bn | info_tiny_vit)
    model=${case_name#info_}
    case $model in
    lenet5) layers=12 params=61706 shown=61,706 ;;
    resnet8) layers=22 params=77418 shown=77,418 ;;
    resnet8_bn) layers=33 params=78330 shown=78,330 ;;
    tiny_vit) layers=134 params=71946 shown=71,946 ;;
    esac
    run 0 info "$DATA/$model.onnx"
    has out '^ir version  *7'
    has out '^opsets  *ai.onnx 13'
    has out '^inputs  *input  *float32  *\[batch, 1, 28, 28\]'
    has out '^outputs  *logits  *float32  *\[batch, 10\]'
    has out "^layers  *$layers"
    has out "^params  *$shown "
    hasnt out '(no kernel)'
    hasnt out 'cannot run'
    # Every layer's output shape is known and the last one is the logits.
    n_rows=$(grep -cE '^ *[0-9]+  ' "$WORK/out")
    [ "$n_rows" -eq "$layers" ] || fail "table has $n_rows rows, expected $layers"
    grep -E '^ *[0-9]+  ' "$WORK/out" | grep -q ' ? ' && fail "a layer has an unknown shape"
    run 0 info "$DATA/$model.onnx" --json
    grep -q "\"layers\": $layers," "$WORK/out" || fail "json lacks total layers $layers"
    grep -q "\"params\": $params," "$WORK/out" || fail "json lacks total params $params"
    has out '"runnable": true'
    has out '"batch_dim": "batch"'
    flops=$(json_num out flops_per_sample)
    awk -v f="$flops" 'BEGIN { exit !(f > 1e5) }' || fail "implausible FLOPs per sample: $flops"
    ;;

info_flops)
    # lenet5 by hand: conv1 6*28*28*(2*25)+bias, conv2 16*10*10*(2*150), fc layers.
    run 0 info "$DATA/lenet5.onnx" --json
    flops=$(json_num out flops_per_sample)
    # Convs and Gemms alone: 2*MACs = 2*(117600 + 240000 + 48000 + 10080 + 840) = 833040
    awk -v f="$flops" 'BEGIN { exit !(f >= 833040 && f < 833040 * 1.1) }' ||
        fail "lenet5 FLOPs per sample $flops, expected about 833,040 plus element-wise work"
    # The batch dim follows the symbolic name through Flatten and Gemm.
    run 0 info "$DATA/lenet5.onnx"
    has out '\[batch, 400\]'
    has out '\[batch, 16, 5, 5\]'
    ;;

eval_sample)
    export PARE_FASHION_MNIST=$SAMPLE
    run 0 eval "$DATA/lenet5.onnx" --data fashion-mnist --json
    n=$(json_num out samples)
    [ "$n" = 256 ] || fail "expected the 256 sample images, got $n"
    top1=$(json_num out top1_correct)
    awk -v c="$top1" 'BEGIN { exit !(c >= 0.8 * 256) }' || fail "top-1 $top1/256 is implausibly low"
    # A batch that does not divide 256 (remainder plan) and batch 1 count the same.
    for b in 1 7 100 256 300; do
        run 0 eval "$DATA/lenet5.onnx" --data fashion-mnist --batch "$b" --json
        [ "$(json_num out top1_correct)" = "$top1" ] || fail "batch $b gives another top-1"
    done
    run 0 eval "$DATA/lenet5.onnx" --data fashion-mnist --limit 10
    has out 'top-1'
    has out '/ 10)'
    # The same through idx: with explicit normalisation equal to the defaults.
    run 0 eval "$DATA/lenet5.onnx" --json --data \
        "idx:$SAMPLE/t10k-images-idx3-ubyte.gz,$SAMPLE/t10k-labels-idx1-ubyte.gz" \
        --mean 0.2860 --std 0.3530 --scale 0.00392156862745098
    [ "$(json_num out top1_correct)" = "$top1" ] || fail "idx: spec gives another top-1"
    # Wrong normalisation must change the result (the options are used).
    run 0 eval "$DATA/lenet5.onnx" --json --data fashion-mnist --mean 0 --std 1 --scale 1
    [ "$(json_num out top1_correct)" != "$top1" ] || fail "--scale/--mean/--std had no effect"
    # Without a TTY on stderr there is no progress bar.
    run 0 eval "$DATA/lenet5.onnx" --data fashion-mnist
    [ ! -s err ] || fail "eval wrote to stderr without a TTY"
    has out 'images/s'
    ;;

eval_compare)
    export PARE_FASHION_MNIST=$SAMPLE
    run 0 eval "$DATA/resnet8.onnx" --data fashion-mnist --compare "$DATA/resnet8.onnx" --json --batch 30 --limit 100
    has out '"argmax_agree": 1$'
    has out '"max_abs_err": 0,'
    has out '"snr_db": "inf"'
    # resnet8_bn has the same weights with BatchNorm unfolded: near-identical
    # outputs (identical once pare folds the BNs as the exporter did).
    run 0 eval "$DATA/resnet8_bn.onnx" --data fashion-mnist --compare "$DATA/resnet8.onnx" --json --limit 100
    cos=$(json_num out cosine_mean)
    snr=$(json_num out snr_db)
    awk -v c="$cos" -v s="$snr" 'BEGIN { exit !(c > 0.99999 && (s == "\"inf\"" || s + 0 > 60)) }' ||
        fail "resnet8_bn vs resnet8: cosine $cos, SNR $snr dB"
    # Different models: similarity well below identity.
    run 0 eval "$DATA/lenet5.onnx" --data fashion-mnist --compare "$DATA/tiny_vit.onnx" --json --limit 100
    cos=$(json_num out cosine_mean)
    awk -v c="$cos" 'BEGIN { exit !(c < 0.999) }' || fail "lenet5 vs tiny_vit cosine $cos"
    run 0 eval "$DATA/lenet5.onnx" --data fashion-mnist --compare "$DATA/tiny_vit.onnx" --limit 20
    has out '^cosine'
    has out '^SNR'
    has out '^argmax same'
    # Unlabelled data: similarity only.
    "$HELPER" make-npy "$WORK/x.npy" 9 || fail "helper make-npy"
    run 0 eval "$DATA/lenet5.onnx" --data "npy:$WORK/x.npy" --compare "$DATA/lenet5.onnx" --batch 4
    hasnt out '^top-1'
    has out '^cosine'
    ;;

eval_bad_input)
    export PARE_FASHION_MNIST=$SAMPLE
    run 2 eval "$DATA/lenet5.onnx" --data fashon-mnist
    one_line_err
    has err "did you mean 'fashion-mnist'"
    # Samples that do not fit the model's input.
    "$HELPER" make-npy "$WORK/x.npy" 3 || fail "helper make-npy"
    run 2 eval "$DATA/lenet5.onnx" --data "npy:$WORK/x.npy,$WORK/x.npy"
    one_line_err
    ;;

eval_interrupt)
    need_fmnist
    export PARE_FASHION_MNIST=$FMNIST
    "$PARE" eval "$DATA/resnet8.onnx" --data fashion-mnist --batch 1 >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    sleep 1
    kill -INT "$pid"
    wait "$pid"
    code=$?
    [ "$code" -eq 1 ] || fail "interrupted eval exited $code, expected 1"
    has out '^interrupted  *after'
    has out '^top-1'
    ;;

accuracy_lenet5 | accuracy_resnet8 | accuracy_resnet8_bn | accuracy_tiny_vit)
    need_fmnist
    model=${case_name#accuracy_}
    case $model in
    lenet5) want=91.09 ;;
    resnet8 | resnet8_bn) want=92.19 ;;
    tiny_vit) want=88.19 ;;
    esac
    PARE_FASHION_MNIST=$FMNIST run 0 eval "$DATA/$model.onnx" --data fashion-mnist --json
    [ "$(json_num out samples)" = 10000 ] || fail "not the full test set"
    got=$(json_num out top1)
    awk -v g="$got" -v w="$want" 'BEGIN { d = g * 100 - w; if (d < 0) d = -d; exit !(d <= 0.05) }' ||
        fail "$model top-1 $got, expected $want % within 0.05 pp"
    echo "$model top-1 $got (README $want %)"
    ;;

run_taps)
    "$HELPER" make-npy "$WORK/x.npy" 4 || fail "helper make-npy"
    run 0 run "$DATA/lenet5.onnx" --input "$WORK/x.npy" --output "$WORK/y.npz" \
        --tap /relu1/Relu_output_0 /pool2/MaxPool_output_0 --tap conv1.weight
    "$HELPER" npz-list "$WORK/y.npz" >"$WORK/list" || fail "cannot read y.npz"
    cat "$WORK/list"
    grep -q '^logits float32 \[4, 10\] finite$' "$WORK/list" || fail "no logits [4, 10]"
    # Taps keep their exact ONNX names, '/' included (as numpy.savez allows).
    grep -q '^/relu1/Relu_output_0 float32 \[4, 6, 28, 28\] finite$' "$WORK/list" ||
        fail "no relu1 tap"
    grep -q '^/pool2/MaxPool_output_0 float32 \[4, 16, 5, 5\] finite$' "$WORK/list" ||
        fail "no pool2 tap"
    grep -q '^conv1.weight float32 \[6, 1, 5, 5\] finite$' "$WORK/list" || fail "no conv1.weight"
    [ "$(wc -l <"$WORK/list")" -eq 4 ] || fail "expected 4 arrays"
    # An .npz input with the array named as the input gives the same logits.
    "$HELPER" make-npz "$WORK/x.npz" input 4 || fail "helper make-npz"
    run 0 run "$DATA/lenet5.onnx" --input "$WORK/x.npz" --output "$WORK/y2.npz"
    "$HELPER" npz-equal "$WORK/y.npz" "$WORK/y2.npz" logits || fail "npz input gives other logits"
    # Batch consistency: the first image alone gives the same logits row as in the batch of 4
    # (checked via eval's similarity on the same data at batch 1 and 4).
    run 0 eval "$DATA/lenet5.onnx" --data "npy:$WORK/x.npy" --compare "$DATA/lenet5.onnx" --batch 1 --json
    has out '"max_abs_err": 0,'
    # A tap that does not exist: exit 2 with a suggestion, nothing written.
    run 2 run "$DATA/lenet5.onnx" --input "$WORK/x.npy" --output "$WORK/y3.npz" --tap /relu1/Relu_outpt_0
    one_line_err
    has err "did you mean '/relu1/Relu_output_0'"
    [ ! -e "$WORK/y3.npz" ] || fail "wrote an output despite the bad tap"
    # An .npz without the input's name: exit 2 naming it.
    "$HELPER" make-npz "$WORK/bad.npz" imput 2 || fail "helper make-npz"
    run 2 run "$DATA/lenet5.onnx" --input "$WORK/bad.npz" --output "$WORK/y4.npz"
    one_line_err
    has err "no array named 'input'"
    has err "did you mean 'imput'"
    ;;

convert)
    cp "$DATA/lenet5.onnx" "$WORK/in.onnx"
    sum_before=$(cksum <"$WORK/in.onnx")
    run 0 convert "$WORK/in.onnx" "$WORK/out.onnx"
    [ -s "$WORK/out.onnx" ] || fail "no output written"
    ls "$WORK" | grep -v -E '^(in|out)\.onnx$|^(out|err)$' && fail "convert left a temporary file"
    # The round trip evaluates identically.
    export PARE_FASHION_MNIST=$SAMPLE
    run 0 eval "$WORK/in.onnx" --data fashion-mnist --json
    a=$(json_num out top1_correct)
    run 0 eval "$WORK/out.onnx" --data fashion-mnist --compare "$WORK/in.onnx" --json
    [ "$(json_num out top1_correct)" = "$a" ] || fail "converted model has another accuracy"
    has out '"max_abs_err": 0,'
    run 0 info "$WORK/out.onnx" --json
    has out '"params": 61706,'
    # It refuses to overwrite its input: same path, another spelling, a hard link, a symlink.
    run 2 convert "$WORK/in.onnx" "$WORK/in.onnx"
    one_line_err
    has err 'refusing to overwrite the input'
    run 2 convert "$WORK/in.onnx" "$WORK/./in.onnx"
    ln "$WORK/in.onnx" "$WORK/hard.onnx"
    run 2 convert "$WORK/in.onnx" "$WORK/hard.onnx"
    ln -s in.onnx "$WORK/soft.onnx"
    run 2 convert "$WORK/soft.onnx" "$WORK/in.onnx"
    [ "$(cksum <"$WORK/in.onnx")" = "$sum_before" ] || fail "the input model changed"
    ;;

bench)
    run 0 bench "$DATA/lenet5.onnx" --batch 1,3 --repeat 4 --warmup 1 --threads 1 --json
    has out '"batch": 1,'
    has out '"batch": 3,'
    has out '"repeats": 4,'
    has out '"median":'
    has out '"p90":'
    has out '"max_rss_bytes":'
    has out '"threads": 1,'
    med=$(json_num out median)
    awk -v m="$med" 'BEGIN { exit !(m > 0 && m < 1000) }' || fail "median latency $med ms"
    run 0 bench "$DATA/tiny_vit.onnx" --batch 2 --seconds 0.2
    has out 'median ms'
    grep -qE '^ +2 ' "$WORK/out" || fail "no row for batch 2"
    ;;

ops)
    run 0 ops
    has out '^Conv '
    has out '^Gemm '
    has out ' ops$'
    run 0 ops --markdown
    has out '^| op | domain | opsets |'
    has out '^| Conv | ai.onnx |'
    ;;

config_doc)
    run 0 config --doc
    has out '^## Sections'
    has out '^## QuantPost'
    has out '| `weight_bits` |'
    [ -s "$WORK/err" ] && fail "stderr is not empty"
    # exactly one mode
    run 2 config
    has err 'missing --doc, --check FILE or --resolved FILE'
    run 2 config --doc --check x.yaml
    has err 'give only one of'
    ;;

config_check)
    cat >"$WORK/job.yaml" <<'YAML'
Global:
  model: tests/data/lenet5.onnx
  data: fashion-mnist
  save_dir: out/lenet5-ptq
QuantPost:
  algo: KL
  batch_num: 10
YAML
    run 0 config --check "$WORK/job.yaml"
    has out "job.yaml: ok, 2 sections (Global, QuantPost)"
    [ -s "$WORK/err" ] && fail "stderr is not empty"
    # --resolved: canonical spelling (batch_num -> batch_nums), defaults filled,
    # and the printed file is itself a valid job that resolves to the same text.
    run 0 config --resolved "$WORK/job.yaml"
    has out '^  batch_nums: 10$'
    has out '^  weight_bits: 8$'
    hasnt out 'batch_num:'
    cp "$WORK/out" "$WORK/resolved.yaml"
    run 0 config --resolved "$WORK/resolved.yaml"
    cmp -s "$WORK/out" "$WORK/resolved.yaml" || fail "resolving the resolved job changed it"
    # A typo'd key and a bad choice: both reported, located, with a suggestion; exit 2.
    cat >"$WORK/typo.yaml" <<'YAML'
Global:
  model: tests/data/lenet5.onnx
  save_dir: out/x
QuantPost:
  weight_bit: 8
  algo: kl
YAML
    run 2 config --check "$WORK/typo.yaml"
    has err "typo.yaml:5:3: unknown key 'weight_bit' in QuantPost (did you mean 'weight_bits'?)"
    has err "typo.yaml:6:9: .*got 'kl' (did you mean 'KL'?)"
    has err '^pare: 2 problems$'
    [ -s "$WORK/out" ] && fail "stdout is not empty"
    run 2 config --resolved "$WORK/typo.yaml"
    has err "did you mean 'weight_bits'?"
    [ -s "$WORK/out" ] && fail "--resolved printed a bad job"
    # Valid YAML that pare compress could not run: Global.model and save_dir missing.
    printf 'QuantPost:\n  algo: hist\n' >"$WORK/norun.yaml"
    run 2 config --check "$WORK/norun.yaml"
    has err "missing 'model' in Global"
    has err "missing 'save_dir' in Global"
    run 2 config --check "$WORK/nonexistent.yaml"
    one_line_err
    has err 'nonexistent.yaml'
    ;;

config_doc_current)
    # The generated part of docs/config.md (below the marker) is exactly
    # `pare config --doc`, so the reference cannot drift from the schema.
    mark='<!-- generated from the schema by pare_job_schema_markdown; do not edit below -->'
    grep -qxF -- "$mark" "$SRC/docs/config.md" || fail "docs/config.md lacks the marker line"
    run 0 config --doc
    awk -v m="$mark" 'found { print } $0 == m { found = 1 }' "$SRC/docs/config.md" >"$WORK/docpart"
    if ! cmp -s "$WORK/docpart" "$WORK/out"; then
        diff -u "$WORK/docpart" "$WORK/out" | head -40 >&2
        fail "docs/config.md is stale: replace the part below the marker with \`pare config --doc\`"
    fi
    ;;

*)
    echo "unknown case '$case_name'" >&2
    exit 2
    ;;
esac
echo "ok [$case_name]"
exit 0
