#!/usr/bin/env python3
"""Logits of models exported by emsedit, computed by Hugging Face transformers.

``cargo test -p emsedit-llm --test patch`` writes edited copies of the tiny GPT-2 (Conv1D)
and LLaMA (nn.Linear) fixtures with ``emsedit_llm::export::save_edited`` under
``target/tmp/export/<family>/``. This script loads each with
``AutoModelForCausalLM.from_pretrained`` and writes ``fixtures/export/<family>.json``: the
input ids and the logits at every position, which the Rust test compares with its own
(≤ 1e-4). Run it with the goldens venv (``scripts/goldens/run.sh`` makes it) from the
repository root:

    .venv/goldens/bin/python scripts/goldens/export_check.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

IDS = [1, 7, 42, 100, 3, 64, 9]


def main() -> None:
    torch.manual_seed(0)
    for family in ["gpt2", "llama"]:
        src = Path("target/tmp/export") / family
        model = transformers.AutoModelForCausalLM.from_pretrained(
            src, torch_dtype=torch.float32, attn_implementation="eager"
        ).eval()
        with torch.no_grad():
            logits = model(torch.tensor([IDS])).logits[0]
        out = {
            "family": family,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "ids": IDS,
            "vocab": logits.shape[-1],
            "logits": [float(x) for x in logits.flatten()],
        }
        path = Path("fixtures/export") / f"{family}.json"
        path.write_text(json.dumps(out) + "\n")
        print(f"{path}: {logits.shape[0]} positions x {logits.shape[1]}")


if __name__ == "__main__":
    main()
