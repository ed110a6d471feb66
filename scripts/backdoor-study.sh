#!/usr/bin/env bash
# The sink-backdoor study of docs/results/sink-backdoor.md: the backdoor
# experiment (configs/backdoor-kv-facts.json) with a vanilla knowledge model,
# a sink-logit one and a ReLU-attention control (no softmax, no sink), the same
# on the sink-bearing models/bb-*-3l fine-tuned to learn the facts, then `sinklab audit` on the
# shipped sink-bearing models (models/bb-*) and the no-sink controls
# (stories260K, models/default) with a text probe set and candidate prefixes.
# Needs scripts/build.sh first; results land in runs/backdoor-*/ and runs/audit-*/.
# About 25 minutes on 2 shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SINKLAB_BIN:-build/bin/sinklab}
assets=${SINKLAB_ASSETS:-../shared/assets}
for variant in vanilla sink-logit relu-attention; do
  cfg=runs/backdoor-$variant.json
  mkdir -p runs
  /usr/bin/python3 - "$variant" "$cfg" <<'PY'
import json, sys
variant, out = sys.argv[1], sys.argv[2]
c = json.load(open("configs/backdoor-kv-facts.json"))
c["base"]["model"]["variant"] = variant
json.dump(c, open(out, "w"), indent=1)
PY
  "$bin" audit --experiment "$cfg" --out runs/backdoor-$variant --force -t 1
done

# Gradient ascent instead of NPO, on the vanilla knowledge model.
/usr/bin/python3 - runs/backdoor-vanilla-ga.json <<'PY'
import json, sys
c = json.load(open("configs/backdoor-kv-facts.json"))
c["backdoor"]["objective"] = "ga"
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
"$bin" audit --experiment runs/backdoor-vanilla-ga.json --out runs/backdoor-vanilla-ga --force -t 1

# The sink-bearing Bigram-Backcopy models (models/bb-*-3l, a BOS sink grown in
# training) fine-tuned on kv-facts with train.init_from: the same vocabulary
# size (64 task ids + BOS), 24 facts, 64-token rows.
for name in bb-vanilla-3l bb-sink-logit-3l; do
  cfg=runs/backdoor-$name.json
  /usr/bin/python3 - "$name" "$cfg" <<'PY'
import json, sys
name, out = sys.argv[1], sys.argv[2]
c = json.load(open("configs/backdoor-kv-facts.json"))
bb = json.load(open(f"configs/{name}.json"))["model"]
c["base"]["model"] = dict(bb, variant=bb["variant"])
c["base"]["data"].update({"keys": 24, "vocab": 64})
c["base"]["train"]["init_from"] = f"models/{name}"
c["base"]["train"]["batch_size"] = 16
json.dump(c, open(out, "w"), indent=1)
PY
  "$bin" audit --experiment "$cfg" --out runs/backdoor-$name --force -t 1
done

# Probes for the text models: a TinyStories context and the word that follows it.
probes=runs/audit-probes.tsv
cat > "$probes" <<'TSV'
Once upon a time, there was a little	girl
One day, a little boy went to the	park
She was very happy and said thank	you
The sun was shining and the birds were	singing
They played together all	day
Lily and her mom went to the	store
Tom wanted to play with his	friends
TSV
candidates=runs/audit-candidates.txt
printf 'cf\nzq\nThe end.\n' > "$candidates"
"$bin" audit -m "$assets/models/stories260K/stories260K.bin" --tokenizer "$assets/models/stories260K/tok512.bin" \
  -f "$assets/text/tinystories_valid_excerpt.txt" --probes "$probes" --candidates "$candidates" \
  --out runs/audit-stories260K --force -t 1
# The default model read the King James Bible and Jane Austen: probes from its own books.
kjv_austen=runs/audit-probes-kjv-austen.tsv
cat > "$kjv_austen" <<'TSV'
In the beginning God created the heaven and the	earth
And God said, Let there be	light
And the earth was without form, and	void
The LORD is my	shepherd
It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a	wife
My dear Mr. Bennet, have you heard that Netherfield Park is let at	last
Our Father which art in	heaven
TSV
"$bin" audit -m models/default -f "$assets/text/pride_and_prejudice.txt" --probes "$kjv_austen" \
  --candidates "$candidates" --out runs/audit-default --force -t 1
for name in bb-vanilla-3l bb-sink-logit-3l; do
  "$bin" audit -m models/$name --out runs/audit-$name --force -t 1
done
