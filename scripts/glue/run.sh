#!/usr/bin/env bash
# Writes fixtures/glue/ with the reference's GLUE scoring on CPU (transformers + PyTorch in
# the goldens venv, scripts/goldens/requirements.txt). Usage: scripts/glue/run.sh [MODEL_DIR]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.venv/goldens"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/scripts/goldens/requirements.txt"
fi
export CUDA_VISIBLE_DEVICES="" TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
exec "$VENV/bin/python" "$HERE/reference_scores.py" "$@"
