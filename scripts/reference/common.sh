# Sourced by run.sh and paired.sh: the venv with the reference's pins, and the reference's code
# in $CODE (at commit $COMMIT) from the copy $1 names.
PINNED=581521adeaff5357a85b279455886aa333ff7ffa
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.venv/reference"
PYTHON="${PYTHON:-python3}"

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
export CUDA_VISIBLE_DEVICES="" TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
export REFERENCE_COMMIT="$COMMIT"
