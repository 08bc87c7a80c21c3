#!/usr/bin/env bash
# The paired check against the reference code (issue #13; docs/numerics.md): runs the parity
# preset's cells in Rust (`parity-gemma3`'s with PAIRED_MODEL=gemma3, see common.sh), exporting
# each cell's batches and untrained networks, reruns every cell with the reference's own editor
# class from that state (paired.py), and writes OUT/paired.md.
# Resumable on both sides. Never run by CI.
#
# Arguments: the reference copy (as for run.sh) and the output folder (default
# docs/runs/<preset>). Needs `cargo xtask fetch-models` and EMSEDIT_DATA_DIR (default
# ../shared/data). Cells finished before without an export are not paired: remove their lines
# from OUT/results.jsonl to rerun them.
set -euo pipefail
SRC="${1:?usage: scripts/reference/paired.sh REFERENCE_COPY [OUT]}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
OUT="${2:-$ROOT/docs/runs/$PRESET}"
INPUTS="$ROOT/target/$PRESET/inputs"
export EMSEDIT_DATA_DIR="${EMSEDIT_DATA_DIR:-$(cd "$ROOT/.." && pwd)/shared/data}"
cd "$ROOT"
cargo run --release -p xtask -- reproduce --preset "$PRESET" --out "$OUT" --export-reference "$INPUTS"
PAIRED_PRESET="$PRESET" OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$VENV/bin/python" "$HERE/paired.py" "$CODE" "$OUT" "$INPUTS"
