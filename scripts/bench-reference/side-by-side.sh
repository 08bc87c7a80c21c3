#!/usr/bin/env bash
# Issue #14's side-by-side run on this machine's CPU, one step after the other: PyTorch's raw
# passes (passes.py in the reference's venv), Rust's (`cargo bench -p emsedit-llm --bench
# smollm2`, or `--bench gemma3` with PAIRED_MODEL=gemma3: see ../reference/common.sh), then the
# paired run of the reference code's editors against ours on the parity preset's cells
# (scripts/reference/paired.sh). Writes OUT/paired.md: scores, time per
# training record and per edit, peak memory and the raw passes, each with its ratio.
# Never run by CI. Arguments: the reference copy (as for scripts/reference/run.sh) and the
# output folder (default target/side-by-side; it must not hold an earlier run's records).
# Needs `cargo xtask fetch-models`.
set -euo pipefail
SRC="${1:?usage: scripts/bench-reference/side-by-side.sh REFERENCE_COPY [OUT]}"
source "$(dirname "${BASH_SOURCE[0]}")/../reference/common.sh"
OUT="${2:-$ROOT/target/side-by-side}"
MODELS="${EMSEDIT_MODELS_DIR:-$HOME/.cache/emsedit/models}"
# A timing run starts empty: paired.sh resumes from the records it finds, which would put an
# older run's (or older code's) times into this table. SIDE_BY_SIDE_RESUME=1 resumes anyway,
# e.g. after an interrupted run on the same code.
if [[ "${SIDE_BY_SIDE_RESUME:-0}" != 1 ]] && [[ -e "$OUT/results.jsonl" || -e "$OUT/reference.jsonl" ]]; then
  echo "side-by-side.sh: $OUT holds records of an earlier run; give a fresh folder" \
    "(or SIDE_BY_SIDE_RESUME=1 to resume it)" >&2
  exit 2
fi
mkdir -p "$OUT"
cd "$ROOT"
OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 "$VENV/bin/python" \
  "$ROOT/scripts/bench-reference/passes.py" "$MODELS/$MODEL_DIR" >"$OUT/passes-pytorch.json"
# Criterion keeps every case it ever ran under the group: start empty, so that the medians
# read below are this run's.
rm -rf "$ROOT/target/criterion/${BENCH}_b8x11"
cargo bench -p emsedit-llm --bench "$BENCH" -- --noplot
# criterion's medians, in seconds, by bench name.
"$VENV/bin/python" - "$ROOT/target/criterion/${BENCH}_b8x11" >"$OUT/passes-rust.json" <<'PY'
import json, sys
from pathlib import Path
out = {}
for f in sorted(Path(sys.argv[1]).glob("*/new/estimates.json")):
    out[f.parent.parent.name] = json.loads(f.read_text())["median"]["point_estimate"] / 1e9
print(json.dumps(out))
PY
"$ROOT/scripts/reference/paired.sh" "$SRC" "$OUT"
