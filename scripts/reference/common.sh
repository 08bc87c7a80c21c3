# Sourced by run.sh, paired.sh and side-by-side.sh: the venv with the reference's pins, and the
# reference's code in $CODE (at commit $COMMIT) from the copy $SRC names.
#
# PAIRED_MODEL picks the model of the paired runs: `smollm2` (default; the `parity` preset, the
# reference's own pins) or `gemma3` (the `parity-gemma3` preset). The reference pins
# transformers 4.49, which has no Gemma-3 (4.50 added it), so Gemma-3's venv pins 4.50.3 and
# nothing else differs (requirements-gemma3.txt).
PINNED=581521adeaff5357a85b279455886aa333ff7ffa
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
case "${PAIRED_MODEL:-smollm2}" in
  smollm2)
    VENV="$ROOT/.venv/reference" REQUIREMENTS="$HERE/requirements.txt"
    PRESET=parity MODEL_DIR=smollm2-135m BENCH=smollm2 ;;
  gemma3)
    VENV="$ROOT/.venv/reference-gemma3" REQUIREMENTS="$HERE/requirements-gemma3.txt"
    PRESET=parity-gemma3 MODEL_DIR=gemma3-270m BENCH=gemma3 ;;
  *)
    echo "PAIRED_MODEL must be smollm2 or gemma3, not '$PAIRED_MODEL'" >&2
    exit 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS"
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
export CUDA_VISIBLE_DEVICES="" TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
export REFERENCE_COMMIT="$COMMIT"
