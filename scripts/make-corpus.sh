#!/usr/bin/env bash
# Builds a public-domain English training corpus from Debian packages:
# the King James Bible (bible-kjv) and Jane Austen's six novels
# (r-cran-janeaustenr, read from R's lazy-load database without R).
# Usage: scripts/make-corpus.sh [OUT_DIR]   (default data/corpus)
# Writes OUT_DIR/train.txt, OUT_DIR/valid.txt (last ~2% of each book/novel)
# and OUT_DIR/manifest.json (bytes, lines, sha256); work already done is skipped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-data/corpus}"
py=/usr/bin/python3
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ -f "$out/manifest.json" ] && "$py" "$here/corpus_text.py" verify "$out"; then
  echo "corpus in $out is up to date (train.txt and valid.txt match manifest.json)"
  exit 0
fi
mkdir -p "$out/sources/kjv" "$out/sources/austen" "$out/sources/download"

# King James Bible: `bible` prints it; corpus_text.py removes the references.
if [ ! -f "$out/sources/kjv/66-Revelation.txt" ]; then
  if ! command -v bible >/dev/null; then
    echo "installing bible-kjv with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends bible-kjv >/dev/null \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends bible-kjv >/dev/null; }
  fi
  bible 'gen1:1-rev22:21' > "$out/sources/download/kjv_raw.txt"
  "$py" "$here/corpus_text.py" kjv "$out/sources/download/kjv_raw.txt" "$out/sources/kjv"
else
  echo "  kjv: already extracted"
fi

# Jane Austen: the .deb is downloaded (not installed) and unpacked in place.
novels=(prideprejudice sensesensibility mansfieldpark emma northangerabbey persuasion)
if [ ! -f "$out/sources/austen/persuasion.txt" ]; then
  dl="$out/sources/download"
  if ! ls "$dl"/r-cran-janeaustenr_*.deb >/dev/null 2>&1; then
    echo "downloading r-cran-janeaustenr with apt-get download"
    (cd "$dl" && apt-get download r-cran-janeaustenr 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
    ls "$dl"/r-cran-janeaustenr_*.deb >/dev/null 2>&1 \
      || { echo "make-corpus: apt-get download r-cran-janeaustenr failed (run apt-get update?)" >&2; exit 1; }
  fi
  rm -rf "$dl/janeaustenr"
  dpkg-deb -x "$dl"/r-cran-janeaustenr_*.deb "$dl/janeaustenr"
  db="$dl/janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata"
  for n in "${novels[@]}"; do
    "$py" "$here/rdata_reader.py" "$db" "$n" > "$dl/$n.raw.txt"
    "$py" "$here/corpus_text.py" clean "$dl/$n.raw.txt" "$out/sources/austen/$n.txt"
  done
  echo "  austen: ${#novels[@]} novels -> $out/sources/austen"
else
  echo "  austen: already extracted"
fi

austen_files=()
for n in "${novels[@]}"; do austen_files+=("$out/sources/austen/$n.txt"); done
"$py" "$here/corpus_text.py" split "$out" --lines "$out"/sources/kjv/*.txt --paragraphs "${austen_files[@]}"
echo "corpus written to $out (manifest: $out/manifest.json)"
