#!/usr/bin/env bash
# Does a model read published English with typographic punctuation as well as
# the same text in ASCII? Takes the first 60 KB of Pride and Prejudice from
# ../shared/assets (curly quotes, apostrophes, em-dashes), makes an ASCII copy,
# and prints the perplexity of each (first 3000 tokens, sink 4 + window 124)
# and their ratio. Usage: scripts/typographic-check.sh [MODEL] (default models/default).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-models/default}"
assets="${SINKLAB_ASSETS:-../shared/assets}"
src="$assets/text/pride_and_prejudice.txt"
[ -f "$src" ] || { echo "typographic-check: $src is missing (set SINKLAB_ASSETS)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$src" "$work" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
body = text[text.index("It is a truth"):][:60000]
open(sys.argv[2] + "/typographic.txt", "w", encoding="utf-8").write(body)
ascii_text = (body.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'")
              .replace("\u2019", "'").replace("\u2014", "--"))
open(sys.argv[2] + "/ascii.txt", "w", encoding="utf-8").write(ascii_text)
PY
declare -A ppl
for name in typographic ascii; do
  ppl[$name]=$(build/bin/sinklab ppl -m "$model" -f "$work/$name.txt" --max-tokens 3000 --cache sink --sink 4 \
               --window 124 -t 1 2>/dev/null | sed -n 's/^perplexity: \([0-9.]*\).*/\1/p')
  echo "$name: perplexity ${ppl[$name]}"
done
/usr/bin/python3 -c "a, b = $(echo ${ppl[typographic]}), $(echo ${ppl[ascii]}); print(f'ratio: {max(a, b) / min(a, b):.3f}')"
