#!/usr/bin/env bash
# Trains the default model (configs/default.json: natural text with every lever
# that helps a sink form) and installs it in models/default/: model.safetensors,
# config.json, tokenizer.json, probes.json + probes.html (the sink probes taken
# while it trained) and README.md. About an hour on one core. Needs
# scripts/build.sh first. Extra arguments go to `sinklab train` (e.g. -t
# THREADS). A finished run in runs/default is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/make-corpus.sh data/corpus
build/bin/sinklab train --config configs/default.json "$@"
mkdir -p models/default
for f in model.safetensors config.json tokenizer.json probes.json probes.html; do cp runs/default/$f models/default/$f; done
/usr/bin/python3 - <<'PY'
import json
log = [json.loads(l) for l in open("runs/default/log.jsonl")]
evals = [l for l in log if "eval_loss" in l]
cfg = json.load(open("configs/default.json"))
m, t = cfg["model"], cfg["train"]
last = log[-1]
probes = json.load(open("runs/default/probes.json"))
H = probes["n_heads"]
rec = probes["records"][-1]["emergence"]
alpha = max(rec["alpha_free"])
where = rec["alpha_free"].index(alpha)
with open("models/default/README.md", "w") as f:
    f.write(f"""# The default model

A {m['n_layers']}-layer, dim-{m['dim']} decoder ({m['n_heads']} heads, {m.get('n_kv_heads', m['n_heads'])} kv heads,
training length {m['seq_len']}) with a learnable sink token (`{m['variant']}`: `<|sink|>` opens every training
window), trained by `scripts/train-default.sh` from `configs/default.json` on the public-domain corpus of
`scripts/make-corpus.sh` (King James Bible + Jane Austen's novels, from Debian packages; every other paragraph
set in typographic punctuation, so the model reads curly quotes and em-dashes as well as ASCII ones), with the
levers that help a sink form (Gu et al. 2025, "When Attention Sink Emerges in Language Models"): the fixed first token, weight decay {t['weight_decay']},
lr {t['lr']}, context {m['seq_len']}.

- steps: {last['step']} of {t['batch_size']} x {m['seq_len']} tokens ({last['step'] * t['batch_size'] * m['seq_len'] / 1e6:.2f}M tokens), {last['seconds'] / 60:.0f} minutes on one core
- final training loss: {last['loss']:.3f}; held-out loss: {evals[-1]['eval_loss']:.3f} (perplexity {2.718281828 ** evals[-1]['eval_loss']:.1f})
- sink: the largest mean attention on the sink token (token 0) of any head at the last probe is
  {alpha:.3f} (layer {where // H}, head {where % H}); `probes.html` draws it over training
- files: model.safetensors (float32, Hugging Face Llama names), config.json (`model_type: llama`), tokenizer.json
  (byte-level BPE, 4096 tokens; `<|sink|>` is the BOS every sinklab command prepends), probes.json / probes.html

Try: `build/bin/sinklab generate -m models/default -p "It is a truth" -n 80`
""")
PY
ls -l models/default
