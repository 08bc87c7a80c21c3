#!/usr/bin/env bash
# Checks the models converted by `cargo xtask fetch-models` against the Python `gguf` package
# (every tensor, max-abs difference) and their tokenizer.json files against independent
# references on a few hundred strings. Idempotent: reuses .venv/gguf. Never run by CI.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.venv/gguf"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
exec "$VENV/bin/python" "$HERE/compare.py" "$@"
