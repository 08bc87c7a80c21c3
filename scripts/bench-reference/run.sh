#!/usr/bin/env bash
# Times PyTorch's raw passes on SmolLM2-135M beside `cargo bench -p emsedit-llm --bench smollm2`
# (or on Gemma-3-270M beside `--bench gemma3`; docs/performance.md). Reuses the goldens venv
# (scripts/goldens/requirements.txt); never run by CI. Argument: the converted model directory
# (default: the models cache's smollm2-135m; `.../gemma3-270m` for Gemma-3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.venv/goldens"
PYTHON="${PYTHON:-python3}"
MODELS="${EMSEDIT_MODELS_DIR:-$HOME/.cache/emsedit/models}"
MODEL="${1:-$MODELS/smollm2-135m}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/scripts/goldens/requirements.txt"
fi
export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
exec "$VENV/bin/python" "$HERE/passes.py" "$MODEL"
