#!/bin/sh
# Drives the real `pare tui` in a detached 80x24 tmux session and asserts on
# the captured screen. Usage: tmux.sh PARE TESTDATA [FASHION_MNIST_DIR].
# Exit 77 (skip) without tmux. Every scenario runs on its own tmux server.
set -u
PARE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
DATA=$(cd "$2" && pwd)
FMNIST=${3:-}
command -v tmux >/dev/null 2>&1 || { echo "tmux not found: skipped"; exit 77; }

SOCK=pare-tui-test-$$
T="tmux -L $SOCK"
fail=0
cleanup() { $T kill-server 2>/dev/null; }
trap cleanup EXIT
trap 'exit 1' INT TERM

screen() { $T capture-pane -p -t tui 2>/dev/null; }
alive() { $T has-session -t tui 2>/dev/null; }
# wait_for TEXT [SECONDS]: polls the screen (default ~10 s)
wait_for() {
    i=0
    n=$(( ${2:-10} * 10 ))
    while [ $i -lt $n ]; do
        if screen | grep -qF -- "$1"; then return 0; fi
        alive || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
check() { # check DESCRIPTION TEXT [SECONDS]
    if wait_for "$2" "${3:-10}"; then
        echo "ok: $1"
    else
        echo "FAIL: $1: '$2' not on screen:"; screen; fail=1
    fi
}
check_absent() { # check_absent DESCRIPTION TEXT (after the screen settled)
    sleep 0.3
    if screen | grep -qF -- "$2"; then
        echo "FAIL: $1: '$2' still on screen:"; screen; fail=1
    else
        echo "ok: $1"
    fi
}
keys() { $T send-keys -t tui "$@"; }

$T new-session -d -s tui -x 80 -y 24 "env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen $PARE tui $DATA/lenet5.onnx; sleep 30" || exit 1

check "title shows the model" "pare  lenet5.onnx  params 61,706"
check "layers table" "/conv1/Conv"
check "totals line" "total 12 layers  params 61,706"
check "key bar" "? Help  q Quit"
keys j j
check "cursor moves" "row 3/12"
keys / g e m m Enter
check "search jumps to the first match" "row 8/12"
keys n
check "n goes to the next match" "row 10/12"
keys Enter
check "Enter opens Inspect" "Inspect  /fc2/Gemm (Gemm)"
check "weight statistics" "fc2.weight  float32 [84, 120]  10,080 values"
check "channel norms" "per-output-channel L1 norm (84 channels)"
keys q
check "q goes back to Layers" "row 10/12"
keys ?
check "help overlay" "Help: Layers keys"
keys s o r t
check "help filters as you type" "filter: sort"
check_absent "filter hides other keys" "next screen"
keys Escape
check_absent "Esc closes help" "Help: Layers keys"
keys Tab Tab
check "Tab walks the screens" "[3 Sens]"
keys BTab BTab
check "Shift-Tab goes back" "[1 Layers]"
keys 8
check "8 shows the Log" "opened lenet5.onnx: 12 layers"
keys q
check "q goes back from the Log" "[1 Layers]"
$T resize-window -t tui -x 50 -y 12 2>/dev/null && {
    check "too small notice" "terminal too small: 50x12"
    $T resize-window -t tui -x 80 -y 24
    check "redraws after resize" "total 12 layers"
}
keys q
# the pane's shell sleeps on after pare exits: the table must be gone
check_absent "q quits and restores the screen" "total 12 layers"
# a fresh server: the old one exits when its last session ends, and a
# new-session racing that exit fails with "server exited unexpectedly"
$T kill-server 2>/dev/null
SOCK=pare-tui-test-$$-demo
T="tmux -L $SOCK"

# `pare` with no arguments opens the demo model (resnet8); SIGTERM ends it cleanly
$T new-session -d -s tui -x 80 -y 24 "env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen PARE_DEMO_MODEL=$DATA/resnet8.onnx $PARE; echo exit=\$?; sleep 30" || exit 1
check "no arguments: the demo model" "pare  resnet8.onnx"
check "demo data set is noted" "data fashion-mnist:test"
pid=$(pgrep -P "$($T display -p -t tui '#{pane_pid}')" -x pare)
[ -n "$pid" ] && kill -TERM "$pid"
check "SIGTERM exits cleanly" "exit=0"
$T kill-server 2>/dev/null

# ---- the workbench flow on resnet8: inspect, sweep, plan, quant, distill,
# save, compress, jobs. Data: the 256-image sample (sweeps, evaluation).
SOCK=pare-tui-test-$$-flow
T="tmux -L $SOCK"
TMP=${TMPDIR:-/tmp}/pare-tui-test-$$
rm -rf "$TMP" && mkdir -p "$TMP" || exit 1
trap 'cleanup; rm -rf "$TMP"' EXIT
$T new-session -d -s tui -x 80 -y 24 "cd $TMP && env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen PARE_FASHION_MNIST=$DATA/fmnist-sample $PARE tui $DATA/resnet8.onnx --data fashion-mnist:test; echo exit=\$?; sleep 60" || exit 1
check "resnet8 opens with its data" "data fashion-mnist:test"
keys / l a y e r 1 / c o n v 1 Enter
check "search moves to the conv" "row 3/22"
keys Enter
check "Inspect the conv" "Inspect  /layer1/conv1/Conv (Conv)  output [batch, 16, 28, 28]"
# Inspect's tensors add up to the params `pare info --json` gives the layer
if command -v python3 >/dev/null 2>&1; then
    want=$($PARE info "$DATA/resnet8.onnx" --json | python3 -c 'import json,sys
l=[x for x in json.load(sys.stdin)["layers"] if x["name"]=="/layer1/conv1/Conv"][0]
print(l["params"], l["flops"])')
    # the weight at the top, the bias at the end
    got=$( (screen; keys G; sleep 0.5; screen; keys g) | grep 'float32 \[' | sort -u |
        sed -n 's/.*float32 \[.*\]  \([0-9,]*\) values.*/\1/p' | tr -d , | awk '{s+=$1} END {print s}')
    if [ "${want%% *}" = "$got" ]; then echo "ok: Inspect values = pare info params ($got)"
    else echo "FAIL: Inspect values $got, pare info params ${want%% *}"; screen; fail=1; fi
fi
check "weight statistics" "min -0."
keys q : l i m i t Space 6 4 Enter
check ":limit sets the samples" "samples per job: 64"
keys 3 r
check "the sweep runs as a job" "sweep running"
# resize while the job runs: the UI redraws and the job goes on
$T resize-window -t tui -x 100 -y 30 2>/dev/null
check "resized mid-job" "[3 Sens]"
$T resize-window -t tui -x 80 -y 24 2>/dev/null
check "sweep table" "baseline top-1" 180
check "a group's row in the heat table" "/layer1/conv1/Conv "
check "the selected group's curve" "curve /stem/stem.0/Conv:"
keys t 0 . 3 Enter
check "ratios for a FLOPs target" "target -30% FLOPs"
keys 4 j 0 . 5 Enter
check "Plan: a ratio typed" "16   0.50     8"
flops1=$(screen | grep -o 'FLOPs 18.77 M->[0-9.]* M')
keys j j . 3 Enter
check "Plan: a second ratio" "32   0.30    22"
sleep 0.3
flops2=$(screen | grep -o 'FLOPs 18.77 M->[0-9.]* M')
if [ -n "$flops1" ] && [ -n "$flops2" ] && [ "$flops1" != "$flops2" ]; then
    echo "ok: the FLOPs total changes ($flops1, then $flops2)"
else
    echo "FAIL: FLOPs total did not change: '$flops1' '$flops2'"; screen; fail=1
fi
check "the plan shows in the title" "FLOPs 18.77 M"
# digits type on Plan: 5 opens the ratio prompt, it does not switch screens
keys 5
check "Plan: a digit types a ratio" "ratio for /layer2/conv2/Conv"
keys Escape
check "Plan: Esc drops the typed ratio" "[4 Plan]"
check "Plan: the predicted drop is labelled" "(sum of single-group drops)"
keys m
check "Plan: m measures the plan" "(no fine-tune)" 120
check "Plan: the measurement is a job" "measure of the pruned plan"
$T resize-window -t tui -x 60 -y 16 2>/dev/null && {
    check "Plan at 60x16" "plan: params 77,418"
    $T resize-window -t tui -x 80 -y 24
}
# screens from Plan and Quant: F1-F8 and Alt+digit
keys F5 Space Space
check "Quant: two tensors skipped" "2 skipped"
keys M-6 G Enter Enter
check "Distill: a pair" "pairs 1"
check "pair compatibility" "same shape [batch, 10]"
keys : i t e r s Space 3 Enter : w Space p l a n . y a m l Enter
check "the plan is saved" "saved plan.yaml"
keys 1
check "Layers shows ratio, quant and KD" "0.50 int8"
if [ -f "$TMP/plan.yaml" ] && $PARE config --check "$TMP/plan.yaml" >/dev/null 2>&1; then
    echo "ok: pare config --check accepts the saved plan"
else
    echo "FAIL: pare config --check rejects the saved plan"; cat "$TMP/plan.yaml"; fail=1
fi
if [ -n "$FMNIST" ] && [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] && $PARE compress --help >/dev/null 2>&1; then
    if (cd "$TMP" && PARE_FASHION_MNIST=$FMNIST $PARE compress -c plan.yaml >compress.log 2>&1) &&
        grep -q "params        77,418 -> " "$TMP/compress.log"; then
        echo "ok: pare compress -c runs the saved plan"
    else
        echo "FAIL: pare compress -c plan.yaml:"; cat "$TMP/compress.log"; fail=1
    fi
else
    echo "skip: pare compress (no Fashion-MNIST train split): config --check only"
fi
keys 7 e G
check "Jobs: an evaluation" "eval of the pruned plan"
check "the evaluation finishes" "evaluation on 64 samples of fashion-mnist:test" 120
keys Enter
check "Enter shows before/after" "before          after"
check "the before/after table" "top-1 "
keys Escape : l i m i t Space 2 5 6 Enter 3 r
check "a second sweep runs" "sweep running" 30
keys q q
check "q asks while a job runs" "a job is running: quit anyway? (y/n)"
keys n
check "n stays" "not quitting"
keys 7 G c
check "c cancels the job" "cancelled" 60
keys 1 q
check_absent "q quits once no job runs" "[1 Layers]"
check "exit status 0" "exit=0"
exit $fail
