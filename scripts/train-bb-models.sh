#!/usr/bin/env bash
# Trains the sink-bearing Bigram-Backcopy models (configs/bb-*-3l.json) and
# installs them in models/bb-*-3l/: model.safetensors, config.json, task.json,
# probes.json, probes.html (the emergence curves) and README.md. Needs
# scripts/build.sh first; about two minutes per model on one core. Extra
# arguments go to `sinklab train`. A finished run in runs/ is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
for name in bb-vanilla-3l bb-sink-logit-3l; do
  build/bin/sinklab train --config configs/$name.json -q "$@"
  mkdir -p models/$name
  for f in model.safetensors config.json task.json probes.json probes.html; do cp runs/$name/$f models/$name/$f; done
  build/bin/sinklab inspect -m models/$name --force --out /tmp/sinklab-$name-inspect > models/$name/inspect.txt
  /usr/bin/python3 - "$name" <<'PY'
import json, sys
name = sys.argv[1]
cfg = json.load(open(f"configs/{name}.json"))
m, t, d = cfg["model"], cfg["train"], cfg["data"]
rec = json.load(open(f"models/{name}/probes.json"))["records"]
last = rec[-1]
inspect = open(f"models/{name}/inspect.txt").read()
with open(f"models/{name}/README.md", "w") as f:
    f.write(f"""# {name}: a sink grown here

A {m['n_layers']}-layer, dim-{m['dim']}, {m['n_heads']}-head decoder (`{m['variant']}` attention, RoPE) trained by
`scripts/train-bb-models.sh` from `configs/{name}.json` on the synthetic Bigram-Backcopy task
(`{d['task']}`: {d['vocab']} tokens in a fixed random bigram chain, seed {d['chain_seed']}; after one of the
{d['triggers']} most frequent tokens the next token copies the token before it; BOS only at position 0).

- {t['steps']} steps of {t['batch_size']} x {m['seq_len']} tokens ({t['steps'] * t['batch_size'] * m['seq_len'] / 1e6:.1f}M tokens),
  AdamW at a constant lr {t['lr']} (warm-up {t['warmup_steps']}), init std {m['init_std']}, weight decay {t['weight_decay']}, seed {t['seed']}
- final training loss {last['loss']:.3f}
- `probes.json` / `probes.html`: the sink probes every {t['probe_every']} steps (attention on BOS from trigger
  and non-trigger queries, value drain, residual-norm ratio per layer)
- `task.json`: the task, so `sinklab inspect -m models/{name}` and `sinklab ppl -m models/{name} --task-stream N`
  generate its sequences

`sinklab inspect -m models/{name}` (the task's 8 probe sequences):

```
{inspect.strip()}
```
""")
PY
  rm -f models/$name/inspect.txt
done
