#!/usr/bin/env bash
# Installs what pare needs, builds it and opens the bundled demo model in the
# workbench (in a terminal); without a terminal, prints its layers and its
# accuracy on the Fashion-MNIST test set instead.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash .ci/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target pare
if [ -t 0 ] && [ -t 1 ]; then
  exec ./build/tui/pare tui tests/data/resnet8.onnx --data fashion-mnist
fi
./build/tui/pare info tests/data/resnet8.onnx
./build/tui/pare eval tests/data/resnet8.onnx --data fashion-mnist
