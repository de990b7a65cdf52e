#!/usr/bin/env bash
# Installs ONNX Runtime for node (onnxruntime-node, pinned by package-lock.json)
# into tests/interop/node_modules for the interop tests and the benchmark.
#
#   bash tests/interop/setup.sh
#
# Idempotent: does nothing when node_modules already matches package-lock.json
# (a stamp holds the lock file's checksum) and onnxruntime-node loads.
# ONNXRUNTIME_NODE_INSTALL=skip stops onnxruntime-node's install script from
# downloading GPU libraries (which fails offline); the CPU build ships in the
# npm package itself.
# Without node or npm it prints why and exits 0: the interop tests then report
# themselves skipped. A failed install exits 1, unless PARE_INTEROP_OPTIONAL=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "interop setup: node/npm not found; interop tests and the ORT side of the benchmark will be skipped"
  exit 0
fi

stamp=node_modules/.pare-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
loads() { node -e "require('./node_modules/onnxruntime-node')" >/dev/null 2>&1; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && loads; then
  echo "interop setup: onnxruntime-node already installed (node_modules matches package-lock.json)"
  exit 0
fi

echo "interop setup: npm ci (onnxruntime-node, CPU only)"
ok=0
for attempt in 1 2; do
  if ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error; then
    ok=1
    break
  fi
  echo "interop setup: npm ci failed (attempt $attempt)"
  sleep 3
done
if [ "$ok" = 1 ] && loads; then
  echo "$want" > "$stamp"
  node -e "console.log('interop setup: onnxruntime-node', require('./node_modules/onnxruntime-node').env.versions.node)"
  exit 0
fi
echo "interop setup: could not install onnxruntime-node"
if [ "${PARE_INTEROP_OPTIONAL:-0}" = 1 ]; then
  exit 0
fi
exit 1
