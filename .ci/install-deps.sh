#!/usr/bin/env bash
# Installs everything pare needs to build and test on Debian 12.
# Safe to run repeatedly; skips apt-get when every package is present.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config
  libopenblas-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  libyaml-dev liblua5.4-dev libncurses-dev libcmocka-dev zlib1g-dev
  libonnx-testdata dataset-fashion-mnist
  clang libclang-rt-14-dev tmux
)
# Node.js only runs the ONNX Runtime interop tests; keep an existing install
# (a NodeSource nodejs ships its own npm and conflicts with Debian's).
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi
