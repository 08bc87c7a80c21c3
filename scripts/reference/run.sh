#!/usr/bin/env bash
# Runs the reference code (github.com/xpq-tech/emsedit, unpatched) on CPU beside the Rust
# editors and writes fixtures/reference/ (see reference_step.py). Never run by CI.
#
# Argument: a local copy of the reference code at the pinned commit (common.sh), either a
# checkout (git clone https://github.com/xpq-tech/emsedit && git -C emsedit checkout 581521a)
# or a git directory holding that commit, from which the code is extracted (its data files,
# which the harness does not read, may be missing). Nothing is fetched at run time but the
# venv's wheels. SmolLM2's goldens need `cargo xtask fetch-models` first; without it they are
# skipped.
set -euo pipefail
SRC="${1:?usage: scripts/reference/run.sh REFERENCE_COPY (a checkout or git directory of xpq-tech/emsedit at 581521a)}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
export OMP_NUM_THREADS=1
exec "$VENV/bin/python" "$HERE/reference_step.py" "$CODE"
