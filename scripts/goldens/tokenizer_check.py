#!/usr/bin/env python3
"""Converted models' tokenizers in transformers encode as their tokenizer.json does.

``cargo xtask fetch-models`` writes ``tokenizer_config.json`` next to each converted
``tokenizer.json``. This loads every converted directory with ``AutoTokenizer`` and checks that
it encodes prompts (with special tokens) and targets (" " + target, without) exactly as the
``tokenizers`` library does on ``tokenizer.json`` (the library the Rust side uses on the same
file). Prompts come from the real data under ``$EMSEDIT_DATA_DIR``. Run with the goldens venv:

    .venv/goldens/bin/python scripts/goldens/tokenizer_check.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import tokenizers
import transformers

models = Path(os.environ.get("EMSEDIT_MODELS_DIR") or Path.home() / ".cache/emsedit/models")
data = Path(os.environ.get("EMSEDIT_DATA_DIR", "../shared/data"))
zsre = json.loads((data / "zsre/zsre_mend_eval-head.json").read_text())[:200]
cf = json.loads((data / "counterfact/counterfact-val.json").read_text())[:200]
prompts = [r["src"] for r in zsre] + [r["prompt"] for r in cf]
targets = [r["alt"] for r in zsre if r["alt"]] + [r["target_new"] for r in cf]

failed = 0
for name in ["smollm2-135m", "gemma3-270m"]:
    d = models / name
    hf = transformers.AutoTokenizer.from_pretrained(d)
    raw = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    bad = [p for p in prompts if hf(p)["input_ids"] != raw.encode(p).ids]
    bad += [t for t in targets
            if hf(" " + t, add_special_tokens=False)["input_ids"]
            != raw.encode(" " + t, add_special_tokens=False).ids]
    first = hf(prompts[0])["input_ids"][:3]
    print(f"{name}: {type(hf).__name__}, {len(prompts)} prompts and {len(targets)} targets, "
          f"{len(bad)} differ; first ids {first}, vocabulary {len(hf)}")
    failed += len(bad)
raise SystemExit(1 if failed else 0)
