#!/usr/bin/env bash
# The sinks study (docs/results/sinks-study.md): trains or reuses four attention
# variants with one budget and evaluates them. Needs scripts/build.sh first.
# Extra arguments go to scripts/sinks_study.py (--steps N, --threads N, --eval-only, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 scripts/sinks_study.py "$@"
