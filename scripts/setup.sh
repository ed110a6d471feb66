#!/usr/bin/env bash
# Installs every build and test dependency of sinklab on Debian 12 with apt-get.
# Usage: scripts/setup.sh [--with-torch]   (torch: the test-only PyTorch reference)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
pkgs=(cmake g++ make ninja-build pkg-config
      libopenblas-openmp-dev nlohmann-json3-dev libcli11-dev
      libcpp-httplib-dev  # sinklab serve
      libgtest-dev libgmock-dev libbenchmark-dev
      libstb-dev  # image decoding (src/vision)
      pybind11-dev python3-dev python3-numpy python3-pytest
      python3-regex  # the reference regex engine the o200k split is tested against
      clang libclang-rt-14-dev libomp-14-dev
      libopenmpi-dev openmpi-bin
      chromium)
if [ "${1:-}" = "--with-torch" ]; then pkgs+=(python3-torch); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
