#!/usr/bin/env bash
# Trains two small ViTs on generated shapes (without and with 4 register
# tokens) and inspects each on its sample images: token norms, high-norm
# tokens, register neurons with a test-time register, and the quantization
# table with and without RegCache. Results: docs/results/vision.md.
# Usage: scripts/vision-study.sh [BUILD_DIR] [STEPS]   (about 10 minutes per model on one core)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-3000}
bin=$build/bin/sinklab
out=runs/vit
mkdir -p "$out"
for r in 0 4; do
  "$bin" train-vit --out "$out/shapes-r$r" --registers "$r" --steps "$steps" --log-every 250 -t 1 --force &
done
wait
for r in 0 4; do
  for s in 0 1; do
    "$bin" inspect -m "$out/shapes-r$r" --image "$out/shapes-r$r/sample-$s.png" --out "$out/inspect-r$r-s$s" --force \
      --test-time-register --quant
  done
done
