#!/usr/bin/env bash
# End-to-end tests of "which layer hurts": `pare quant --error-table` and
# `pare sens --quant` (tests/e2e/quant_sens.cmake), one case per ctest test.
#   quant_sens.sh CASE
# Cases run on the 256-image sample in tests/data/fmnist-sample unless named
# *_fmnist (full Fashion-MNIST test split; skipped with 77 without it).
# Environment: PARE, SRC, WORK, FMNIST as for cli.sh.
# Exit 0 = pass, 77 = skipped, anything else = fail.
set -u
case_name=${1:?usage: quant_sens.sh CASE}
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
export PARE_FASHION_MNIST=$SAMPLE
# the YAML skip-list snippet `pare sens --quant --target-drop` prints, in a job
job_with_snippet() {
    sed -n '/^QuantPost:/,/skip_tensor_list/p' "$WORK/out" >"$WORK/snippet"
    [ "$(wc -l <"$WORK/snippet")" -eq 2 ] || fail "no QuantPost snippet in the output"
    {
        printf 'Global:\n  model: %s\n  data: fashion-mnist\n  save_dir: %s/job-out\n\n' \
            "$DATA/lenet5.onnx" "$WORK"
        cat "$WORK/snippet"
        printf '  algo: hist\n  batch_nums: 2\n'
    } >"$WORK/job.yaml"
}

case $case_name in
error_table)
    # explicit N, CSV and JSON
    run 0 quant "$DATA/lenet5.onnx" --data fashion-mnist -o q.onnx --bits 4 --error-table 2 \
        --error-csv err.csv
    has out '^error table  *[0-9]* rows, 2 batches (64 samples)'
    has out 'SQNR dB'
    has out '^weight  *conv1.weight'
    has out '^output  *'
    has out '^activation  *'
    head -1 err.csv | grep -q '^kind,name,node,bits,sqnr_db,mse,cosine,n_values$' || fail "CSV header"
    rows=$(($(wc -l <err.csv) - 1))
    [ "$rows" -ge 15 ] || fail "CSV has $rows rows, expected >= 15 (5 weights, 5 activations, 5 outputs)"
    # worst first: the SQNR column ascends
    tail -n +2 err.csv | cut -d, -f5 | grep -v inf | sort -g -c || fail "CSV not sorted by SQNR"
    # a bare --error-table takes --batch-nums batches; the JSON has the rows as an array
    run 0 quant "$DATA/lenet5.onnx" --data fashion-mnist -o q.onnx --batch-nums 3 --error-table --json
    has out '"error_table": \['
    has out '"sqnr_db":'
    has out '"error_table_batches": 3'
    run 0 quant "$DATA/lenet5.onnx" --error-table --data fashion-mnist -o q.onnx --json
    has out '"error_table_batches": 8' # 256 samples: 8 batches of 32
    # without the flag: null
    run 0 quant "$DATA/lenet5.onnx" --data fashion-mnist -o q.onnx --json
    has out '"error_table": null'
    # the CSV never overwrites the input model
    cp "$DATA/lenet5.onnx" m.onnx
    run 2 quant m.onnx --data fashion-mnist -o q2.onnx --error-csv m.onnx
    has err 'refusing to overwrite the input model'
    cmp -s m.onnx "$DATA/lenet5.onnx" || fail "the input model changed"
    ;;

sens_lenet5)
    run 0 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --bits 2 --target-drop 3 \
        --cache c.txt -o qs.csv --json qs.json
    has out '^metric top-1 % on 256 samples: fp32 90.62'
    has out 'only this layer quantized (PaddleSlim AnalysisPTQ)'
    has out 'all but this layer quantized (NNCF revert-one)'
    has out '^   1  /conv2/Conv'
    has out '^met: '
    has out '^  skip_tensor_list: \["'
    head -1 qs.csv | grep -q '^node,op_type,skip_name,metric,fp32,full,only,only_drop,all_but,recovery' ||
        fail "CSV header"
    [ "$(($(wc -l <qs.csv) - 1))" -eq 5 ] || fail "CSV should have 5 layers"
    grep -q '"by_recovery": \[' qs.json || fail "JSON lacks by_recovery"
    grep -q '"skip_tensor_list": \[' qs.json || fail "JSON lacks the target's skip list"
    n=$(grep -c '^q1' c.txt)
    [ "$n" -ge 12 ] || fail "cache has $n points"
    # the snippet is a valid job section
    job_with_snippet
    run 0 config --check job.yaml
    # everything from the cache the second time
    run 0 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --bits 2 --target-drop 3 --cache c.txt
    has out '^0 points measured, [0-9]* from cache'
    # another bit width is not taken from the cache
    run 0 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --bits 8 --cache c.txt --limit 64
    has out ' 0 from cache'
    ;;

sens_target_none)
    # a drop full quantization already meets: an empty skip list
    run 0 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --target-drop 50 --limit 128
    has out '^met: 0 of 5 layers reverted'
    has out '^  skip_tensor_list: \[\]$'
    job_with_snippet
    run 0 config --check job.yaml
    ;;

sens_cosine)
    # unlabelled data: cosine similarity to the fp32 outputs
    run 0 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --metric cosine --bits 3 --limit 64
    has out '^metric cosine x100 on 64 samples: fp32 100.00'
    ;;

sens_usage)
    run 2 sens "$DATA/lenet5.onnx" --quant
    has err 'missing --data'
    run 2 sens "$DATA/lenet5.onnx" --quant --prune --data fashion-mnist
    has err 'give one'
    run 2 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --bits 9
    run 2 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --algo kll
    has err "did you mean"
    run 2 sens "$DATA/lenet5.onnx" --quant --data fashion-mnist --target-drop -1
    run 2 sens "$DATA/lenet5.onnx" --data fashion-mnist
    has err '--prune or --quant'
    ;;

sens_interrupt)
    # Ctrl-C between points: exit 1, the points so far stay in the cache, a rerun resumes
    "$PARE" sens "$DATA/resnet8.onnx" --quant --data fashion-mnist --bits 4 --cache c.txt \
        >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    for _ in $(seq 600); do
        [ -f c.txt ] && [ "$(grep -c '^q1' c.txt)" -ge 3 ] && break
        sleep 0.1
    done
    kill -INT "$pid"
    wait "$pid"
    code=$?
    [ "$code" -eq 1 ] || fail "interrupted sens exited $code, expected 1"
    has err 'canceled'
    has err 'run again to resume'
    n=$(grep -c '^q1' c.txt)
    run 0 sens "$DATA/resnet8.onnx" --quant --data fashion-mnist --bits 4 --cache c.txt
    from=$(sed -n 's/^[0-9]* points measured, \([0-9]*\) from cache.*/\1/p' out)
    [ "$from" -ge "$n" ] || fail "resumed run took $from points from the cache, expected >= $n"
    ;;

resnet8_fmnist)
    need_fmnist
    export PARE_FASHION_MNIST=$FMNIST
    run 0 sens "$DATA/resnet8.onnx" --quant --data fashion-mnist --limit 500 --json qs.json
    has out '^metric top-1 % on 500 samples'
    [ "$(grep -c '"node":' qs.json)" -eq 10 ] || fail "resnet8 should have 10 quantizable layers"
    run 0 quant "$DATA/resnet8.onnx" --data fashion-mnist -o q.onnx --error-table 2
    # 8-bit weights are clean: every weight row above 30 dB
    awk '$1 == "weight" && $5 + 0 <= 30 { bad = 1 } END { exit bad }' out ||
        fail "an 8-bit weight at or below 30 dB"
    ;;

*)
    echo "unknown case $case_name" >&2
    exit 2
    ;;
esac
exit 0
