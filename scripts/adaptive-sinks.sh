#!/usr/bin/env bash
# The tables of docs/results/adaptive-sinks.md: fixed sink 4+W, window-only,
# adaptive sinks, H2O heavy hitters (and SnapKV prompt compression) at equal
# KV budgets, each `sinklab ppl` run comparing them on one stream against
# dense (KL to the first cache, dense). Writes one text table per run under
# OUT (default docs/results/adaptive-sinks/). Needs a built sinklab
# (SINKLAB_BIN, default build/bin/sinklab) and ../shared/assets.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SINKLAB_BIN:-build/bin/sinklab}
ASSETS=${SINKLAB_ASSETS:-../shared/assets}
OUT=${OUT:-docs/results/adaptive-sinks}
mkdir -p "$OUT"

# caches B: the five policies at a KV budget of B tokens (adaptive and sink keep 4 sinks).
caches() {
  local b=$1
  echo "dense,window:window=$b,sink:sink=4,window=$((b - 4)),adaptive:sink=4,budget=$b,heavy:budget=$b"
}

# table NAME ARGS...: one ppl run, its command and table kept in OUT/NAME.txt.
table() {
  local name=$1
  shift
  echo "== $name" >&2
  { echo "\$ sinklab ppl $*"; "$BIN" ppl "$@" -t 1 2>/dev/null; } > "$OUT/$name.txt"
  cat "$OUT/$name.txt"
}

STORIES=$ASSETS/models/stories260K/stories260K.bin
STORIES_TEXT=$ASSETS/text/tinystories_sample.txt
for b in 16 32 48; do
  for m in bb-vanilla-3l bb-sink-logit-3l; do
    table "$m-b$b" -m models/$m --task-stream 4096 --cache "$(caches $b)"
  done
done
for b in 64 128 256; do
  table "stories260k-b$b" -m "$STORIES" -f "$STORIES_TEXT" --max-tokens 4000 --cache "$(caches $b)"
  table "default-b$b" -m models/default -f data/corpus/valid.txt --max-tokens 4096 --cache "$(caches $b)"
done

# Prompt compression: a prompt of P = 3G tokens, then G more; the caches hold B
# tokens after the prompt (snapkv holds the whole prompt until it ends). Runs
# differ in the prompt too (the others evict there), so the continuation (the
# targets after token P, chunk 3 of G) is summarised on its own from the JSON.
snap() {
  local p=$1 b=$2
  echo "dense,snapkv:prompt=$p,budget=$b,window=$((b / 4)),window:window=$b,sink:sink=4,window=$((b - 4)),adaptive:sink=4,budget=$b,heavy:budget=$b"
}
continuation() {
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
print("continuation only (chunk 3):")
print(f"{'cache':44s} {'tokens':>6s} {'ppl':>9s} {'KL to first':>12s}")
for r in runs:
    c = r["chunks"][3]
    print(f"{r['cache']:44s} {c['tokens']:6d} {c['ppl']:9.4f} {c['kl']:12.6f}")
PY
}
snap_table() {
  local name=$1 g=$2
  shift 2
  table "$name" "$@" --chunk "$g" --json "$OUT/$name.json" --force
  continuation "$OUT/$name.json" | tee -a "$OUT/$name.txt"
}
for b in 16 32; do
  snap_table "snapkv-bb-vanilla-3l-b$b" 16 -m models/bb-vanilla-3l --task-stream 64 --cache "$(snap 48 $b)"
done
for b in 64 128; do
  snap_table "snapkv-stories260k-b$b" 128 -m "$STORIES" -f "$STORIES_TEXT" --max-tokens 512 --cache "$(snap 384 $b)"
  snap_table "snapkv-default-b$b" 64 -m models/default -f data/corpus/valid.txt --max-tokens 256 --cache "$(snap 192 $b)"
done

# Speed: the same runs three times (tok/s counts each cache's own steps; the
# machine is shared, so the best of three is kept).
for rep in 1 2 3; do
  table "speed-stories260k-b128-$rep" -m "$STORIES" -f "$STORIES_TEXT" --max-tokens 4000 \
    --cache "window:window=128,sink:sink=4,window=124,adaptive:sink=4,budget=128,heavy:budget=128"
done

# One sink slot: does the attention find the sink token by itself?
table "one-slot-bb-vanilla-3l-b16" -m models/bb-vanilla-3l --task-stream 4096 \
  --cache "dense,window:window=16,sink:sink=1,window=15,adaptive:sink=1,budget=16,heavy:heavy=1,window=15"
table "one-slot-stories260k-b64" -m "$STORIES" -f "$STORIES_TEXT" --max-tokens 4000 \
  --cache "dense,window:window=64,sink:sink=1,window=63,adaptive:sink=1,budget=64,heavy:heavy=1,window=63"
# One sink slot per layer: adaptive-layer stores L*S + W tokens, each layer sees S + W.
table "per-layer-bb-vanilla-3l-b16" -m models/bb-vanilla-3l --task-stream 4096 \
  --cache "dense,sink:sink=1,window=15,adaptive:sink=1,budget=16,adaptive-layer:sink=1,budget=16,adaptive:sink=4,budget=16,adaptive-layer:sink=4,budget=16"
