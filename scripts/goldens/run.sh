#!/usr/bin/env bash
# Regenerates the golden fixtures in fixtures/llm/ and fixtures/meta/ from Hugging
# Face transformers + PyTorch (CPU, fp32). Idempotent: reuses .venv/goldens.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.venv/goldens"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"

cd "$ROOT"
export CUDA_VISIBLE_DEVICES=""
export TOKENIZERS_PARALLELISM=false
export PYTHONHASHSEED=0
"$VENV/bin/python" "$HERE/make_goldens.py" "$@"
# The meta-step goldens (fixtures/meta/) run on the GPT-2 fixture written above.
exec "$VENV/bin/python" "$HERE/meta_step.py"
