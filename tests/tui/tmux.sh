#!/bin/sh
# Drives the real `pare tui` in a detached 80x24 tmux session and asserts on
# the captured screen. Usage: tmux.sh PARE TESTDATA. Exit 77 (skip) without tmux.
set -u
PARE=$1
DATA=$2
command -v tmux >/dev/null 2>&1 || { echo "tmux not found: skipped"; exit 77; }

SOCK=pare-tui-test-$$
T="tmux -L $SOCK"
fail=0
cleanup() { $T kill-server 2>/dev/null; }
trap cleanup EXIT INT TERM

screen() { $T capture-pane -p -t tui; }
# wait_for TEXT: polls the screen up to ~5 s
wait_for() {
    i=0
    while [ $i -lt 50 ]; do
        if screen | grep -qF -- "$1"; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
check() { # check DESCRIPTION TEXT
    if wait_for "$2"; then
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
check "Tab reaches the Log" "opened lenet5.onnx: 12 layers"
keys BTab BTab
check "Shift-Tab goes back" "[Layers]"
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
exit $fail
