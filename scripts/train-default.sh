#!/usr/bin/env bash
# Trains the default model (configs/default.json) and installs it in
# models/default/: model.safetensors, config.json, tokenizer.json, README.md.
# Needs scripts/build.sh first. Extra arguments go to `sinklab train`
# (e.g. -t THREADS). A finished run in runs/default is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/make-corpus.sh data/corpus
build/bin/sinklab train --config configs/default.json "$@"
mkdir -p models/default
for f in model.safetensors config.json tokenizer.json; do cp runs/default/$f models/default/$f; done
/usr/bin/python3 - <<'PY'
import json
log = [json.loads(l) for l in open("runs/default/log.jsonl")]
evals = [l for l in log if "eval_loss" in l]
cfg = json.load(open("configs/default.json"))
m, t = cfg["model"], cfg["train"]
last = log[-1]
with open("models/default/README.md", "w") as f:
    f.write(f"""# The default model

A {m['n_layers']}-layer, dim-{m['dim']} decoder ({m['n_heads']} heads, {m.get('n_kv_heads', m['n_heads'])} kv heads,
training length {m['seq_len']}) with a learnable sink token (`{m['variant']}`), trained by
`scripts/train-default.sh` from `configs/default.json` on the public-domain corpus of
`scripts/make-corpus.sh` (King James Bible + Jane Austen's novels, from Debian packages).

- steps: {last['step']} of {t['batch_size']} x {m['seq_len']} tokens ({last['step'] * t['batch_size'] * m['seq_len'] / 1e6:.2f}M tokens), {last['seconds'] / 60:.0f} minutes
- final training loss: {last['loss']:.3f}; held-out loss: {evals[-1]['eval_loss']:.3f} (perplexity {2.718281828 ** evals[-1]['eval_loss']:.1f})
- files: model.safetensors (float32, Hugging Face Llama names), config.json (`model_type: llama`), tokenizer.json
  (byte-level BPE, 4096 tokens; `<|sink|>` is the BOS every sinklab command prepends)

Try: `build/bin/sinklab generate -m models/default -p "It is a truth" -n 80`
""")
PY
ls -l models/default
