#!/usr/bin/env bash
# Builds sinklab and runs the whole test suite (C++ unit tests, PyTorch
# reference checks, Python module tests) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
