#!/usr/bin/env bash
# Builds every libFuzzer target with clang in build-fuzz/ and runs each for a
# short smoke (SECONDS_PER_TARGET, default 20) on its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_TARGET:-20}
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
CXX=clang++ cmake -S . -B build-fuzz "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DSINKLAB_FUZZ=ON \
  -DSINKLAB_PYTHON=OFF -DSINKLAB_BENCH=OFF -DSINKLAB_NATIVE=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers
for bin in build-fuzz/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
  echo "fuzz smoke: $name (${secs}s)"
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "$work" 2>&1 | tail -n 2
  rm -rf "$work"
done
