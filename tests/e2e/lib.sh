# Shared by the e2e scripts (cli.sh style): sourced after `case_name` is set.
# Environment: PARE, HELPER, SRC, WORK, FMNIST (see tests/e2e/CMakeLists.txt).
: "${PARE:?}" "${SRC:?}" "${WORK:?}" "${FMNIST:?}"
DATA=$SRC/tests/data
SAMPLE=$DATA/fmnist-sample
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
unset PARE_FASHION_MNIST
# One thread: fastest on the shared, loaded machines tests run on; override to test more.
export PARE_THREADS=${PARE_THREADS:-1}

fail() {
    echo "FAIL [$case_name]: $*" >&2
    for f in out err; do
        if [ -s "$WORK/$f" ]; then
            echo "--- $f:" >&2
            head -c 4000 "$WORK/$f" >&2
        fi
    done
    exit 1
}

# run EXPECTED_CODE ARGS...: runs pare with stdout/stderr in $WORK/out, $WORK/err.
run() {
    local want=$1
    shift
    "$PARE" "$@" >"$WORK/out" 2>"$WORK/err"
    local got=$?
    [ "$got" -eq "$want" ] || fail "pare $* exited $got, expected $want"
}

has() { grep -q -- "$2" "$WORK/$1" || fail "$1 lacks '$2'"; }
hasnt() { ! grep -q -- "$2" "$WORK/$1" || fail "$1 has '$2'"; }
one_line_err() {
    local n
    n=$(wc -l <"$WORK/err")
    [ "$n" -eq 1 ] || fail "stderr has $n lines, expected exactly one"
    grep -q '^pare: ' "$WORK/err" || fail "stderr does not start with 'pare: '"
}
# json_num FILE KEY: the first number after "KEY": in a pretty JSON file
json_num() { grep -m1 "\"$2\":" "$WORK/$1" | sed 's/.*": *//; s/,$//'; }
need_fmnist() {
    [ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST in $FMNIST"; exit 77; }
}

