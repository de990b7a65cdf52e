#!/usr/bin/env bash
# Installs what pare needs, builds it and opens the bundled demo model:
# its layers, then its accuracy on the Fashion-MNIST test set.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash .ci/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target pare
./build/tui/pare info tests/data/resnet8.onnx
./build/tui/pare eval tests/data/resnet8.onnx --data fashion-mnist
