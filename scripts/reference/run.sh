#!/usr/bin/env bash
# Runs the reference code (github.com/xpq-tech/emsedit, unpatched) on CPU beside the Rust
# editors and writes fixtures/reference/ (see reference_step.py). Never run by CI.
#
# Argument: a local copy of the reference code at the pinned commit below, either a checkout
# (git clone https://github.com/xpq-tech/emsedit && git -C emsedit checkout $PINNED) or a git
# directory holding that commit, from which the code is extracted (its data files, which the
# harness does not read, may be missing). Nothing is fetched at run time but the venv's wheels.
# SmolLM2's goldens need `cargo xtask fetch-models` first; without it they are skipped.
set -euo pipefail

PINNED=581521adeaff5357a85b279455886aa333ff7ffa
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.venv/reference"
PYTHON="${PYTHON:-python3}"
SRC="${1:?usage: scripts/reference/run.sh REFERENCE_COPY (a checkout or git directory of xpq-tech/emsedit at $PINNED)}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
fi

if [ -f "$SRC/editor/emsedit.py" ]; then
  CODE="$SRC"
  COMMIT="$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")"
else
  CODE="$(mktemp -d)"
  trap 'rm -rf "$CODE"' EXIT
  # File by file: a snapshot may lack the blobs of the data files, which `git archive` reports.
  git --git-dir="$SRC" ls-tree -r --name-only "$PINNED" -- editor nets.py util.py model.py |
    while read -r f; do
      mkdir -p "$CODE/$(dirname "$f")"
      git --git-dir="$SRC" show "$PINNED:$f" >"$CODE/$f"
    done
  COMMIT="$PINNED"
fi

cd "$ROOT"
export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
export REFERENCE_COMMIT="$COMMIT"
exec "$VENV/bin/python" "$HERE/reference_step.py" "$CODE"
