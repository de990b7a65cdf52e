# Shared by the benchmark scripts (sourced): ONNX Runtime timing, medians and
# rewriting one section of docs/benchmarks.md.

# ort_ms MODEL: tests/bench/ort_bench.js median latency in ms at $batch with
# $threads threads over $repeat runs, or "skip" without ONNX Runtime.
ort_ms() {
    local out rc=0
    out=$(node "$bench_dir/ort_bench.js" --model "$1" --batch "$batch" --threads "$threads" \
        --warmup 10 --repeat "$repeat" 2>/dev/null) || rc=$?
    [ $rc -eq 77 ] && { echo skip; return; }
    [ $rc -eq 0 ] || { echo "ort_bench failed on $1" >&2; exit 1; }
    echo "$out" | grep -o '"median_ms": *[0-9.e-]*' | sed 's/.*: *//'
}

# median: of the whitespace-separated numbers on stdin.
median() {
    tr ' ' '\n' | grep -v '^$' | sort -g |
        awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# write_docs_section DOCS TEXT: replaces the section of DOCS whose heading is
# TEXT's first line (up to the next "## "), or appends TEXT.
write_docs_section() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
heading = section.split("\n", 1)[0]
text = open(path).read()
pat = re.compile(re.escape(heading) + r"\n.*?(?=\n## |\Z)", re.S)
text = pat.sub(lambda m: section + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
}
