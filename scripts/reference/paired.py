#!/usr/bin/env python3
"""The paired check against the reference code: reruns each cell that
``cargo xtask reproduce --export-reference INPUTS`` exported with the reference's own editor
class (xpq-tech/emsedit, unpatched: EMSEDIT, MALMEN, RLEDIT or MEND, by the cell's editor) from
the same state, and tabulates the paired differences.

Per cell (``INPUTS/<key>/``): ``case.json`` holds the editor's settings, the training batches
and the edit batches with the micro-batches that score them, as the Rust run used them;
``init.safetensors`` the untrained networks (the Rust checkpoint format). The reference then:

* builds the editor with an ``omegaconf`` config of those settings and loads the networks;
* trains as its ``run`` does on the training batches: EMSEDIT's ``train_seq`` (sequential) or
  ``train_batch`` (batch), the others' ``train`` (RLEDIT's loop over ``num_seq`` batches,
  MALMEN's and MEND's one-shot loop with ``max_steps`` the exported batches);
* resets the edited weights (its ``run`` reloads the model) and edits the edit batches one
  after another, K steps each (``cache``, ``predict_param_shifts``, ``edit_model``), as its
  ``sequential_valid`` does;
* scores every edit, paraphrase and neighbourhood prompt of the edited records with its own
  ``succ_ratios`` (CounterFact: the new target's token logits against the old one's, with the
  old labels as the cell's ``reference_quirks`` padded them).

Appends one line per cell to ``OUT/reference.jsonl`` (a rerun skips cells already there) and
writes ``OUT/paired.md``: per seed the Rust scores (``OUT/results.jsonl``) and the
reference's, and per metric the mean ± sd of the paired difference and its standard error.

Usage: paired.py REFERENCE_CODE OUT INPUTS
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers
from omegaconf import OmegaConf
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_step import a_by_b, param_names, set_params, stub_imports  # noqa: E402

METRICS = ("efficacy", "generalization", "specificity")
KINDS = {"edit": "efficacy", "equiv": "generalization", "unrel": "specificity"}
# Points. The reference's per-prompt ratios are float32 (`succ_ratios`), so its means differ
# from exact ones by ~1e-7 points; one prompt moves a score by ≥ 1/96 of 100 here.
ROUNDING = 1e-4


def models_path(path: str) -> Path:
    default = str(Path.home() / ".cache" / "emsedit" / "models")
    env = {**os.environ, "EMSEDIT_MODELS_DIR": os.environ.get("EMSEDIT_MODELS_DIR") or default}
    for k, v in env.items():
        path = path.replace("${" + k + "}", v)
    return Path(path)


def micro(m: dict, with_old: bool = False) -> dict:
    shape = (m["batch"], m["time"])
    t = {k: torch.tensor(m[k], dtype=torch.long).view(shape)
         for k in ("input_ids", "attention_mask", "labels")}
    if with_old and "old_labels" in m:
        t["old_labels"] = torch.tensor(m["old_labels"], dtype=torch.long).view(m["batch"], m["old_width"])
    return t


def tuples(batch: dict) -> dict:
    return {f"{k}_tuples": [micro(m) for m in batch[k]] for k in ("edit", "equiv", "unrel")}


# The Rust editor's name (its prefix) → the reference's module and class (the parity presets
# run all four).
CLASSES = {"EMSEdit": ("editor.emsedit", "EMSEDIT"), "MALMEN": ("editor.malmen", "MALMEN"),
           "RLEdit": ("editor.rledit", "RLEDIT"), "MEND": ("editor.mend", "MEND")}


def reference_class(ed: dict) -> tuple[str, str]:
    for prefix, found in CLASSES.items():
        if ed["name"].startswith(prefix):
            return found
    raise SystemExit(f"{ed['name']}: the paired check runs {', '.join(CLASSES)} only")


def config(case: dict, cache_dir: str):
    ed, sc = case["editor"], case["scenario"]
    locality = ed["locality"]
    back = ed.get("backtrack") or {}
    if reference_class(ed)[1] == "RLEDIT" and len(case["train"]) != sc["num_seq"]:
        raise SystemExit(f"{case['id']}: RLEdit trains on num_seq batches")
    return OmegaConf.create({
        "num_seq": sc["num_seq"], "glue_step": -1,
        "model_device": "cpu", "editor_device": "cpu",
        "model": {"name": "paired", "edit_modules": ed["modules"]},
        "dataset": {"name": "paired", "n_edits": sc["n_edits"], "batch_size": sc["chunk"]},
        "editor": {
            "name": ed["name"].lower(), "rank": ed["hyper"]["rank"],
            "n_blocks": ed["hyper"]["blocks"],
            "lr": ed["hyper"]["lr"], "meta_lr": ed["meta_lr"],
            "max_grad_norm": ed["max_grad_norm"], "n_epochs": 1, "batch_size": 128,
            "token": "ans", "cache_dir": cache_dir, "save_checkpoint": False,
            "load_checkpoint": False,
            "reg_coef": locality["L2"]["reg_coef"] if "L2" in locality else back.get("reg_coef", 0.0),
            "loc_coef": locality["Kl"]["loc_coef"] if "Kl" in locality else 0.0,
            "time_decay": back.get("decay", 0.0), "back_depth": back.get("depth", 0),
            # The one-shot loop (MALMEN, MEND) trains on exactly the exported batches.
            "full_curve": False, "max_steps": len(case["train"]), "iters": ed["steps"],
        },
    })


def train(ed, cfg, cls: str, batches: list) -> None:
    """The reference's own training entry for the editor class, as its `run` calls it."""
    if cls == "EMSEDIT":
        (ed.train_seq if cfg.num_seq > 1 else ed.train_batch)(batches)
    else:
        ed.train(batches)


def load_init(ed, path: Path, blocks: int) -> None:
    """The Rust checkpoint's `net.{k}.0.param.{i}` into the reference's step networks."""
    st = load_file(str(path))
    names = param_names(blocks)
    for k in sorted(ed.nets):
        if any(ed.nets[j] is ed.nets[k] for j in range(k)):
            continue  # a network shared by the steps (MALMEN), stored once
        (net,) = ed.nets[k].values()
        count = st[f"net.{k}.0.norm.count"]
        assert int(count.reshape(-1)[0]) == 0, "the exported networks are untrained"
        set_params(net, {n: st[f"net.{k}.0.param.{i}"] for i, n in enumerate(names)})


def run_case(mods, case_dir: Path, cache_dir: str) -> dict:
    from transformers import AutoModelForCausalLM

    case = json.loads((case_dir / "case.json").read_text())
    util = mods["util"]
    module, cls = reference_class(case["editor"])
    cfg = config(case, cache_dir)
    model = AutoModelForCausalLM.from_pretrained(str(models_path(case["model"])),
                                                 attn_implementation="eager",
                                                 torch_dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad = False
    modules = [util.get_module(model, m) for m in cfg.model.edit_modules]
    for m in modules:
        m.weight.requires_grad = True
    original = [m.weight.detach().clone() for m in modules]
    torch.manual_seed(0)  # the networks are overwritten below
    ed = getattr(mods[module], cls)(cfg, model)
    load_init(ed, case_dir / "init.safetensors", cfg.editor.n_blocks)
    util.empty_cache(cache_dir, cfg)
    start = time.perf_counter()
    batches = [tuples(b) for b in case["train"]]
    train(ed, cfg, cls, batches)
    train_seconds = time.perf_counter() - start
    with torch.no_grad():
        for m, w in zip(modules, original):
            m.weight.copy_(w)
    start = time.perf_counter()
    for b in case["eval"]:
        edit = tuples(b["batch"])["edit_tuples"]
        for net_id in range(cfg.editor.iters):
            ed.cache(edit, net_id)
            ed.edit_model(ed.predict_param_shifts(net_id), False)
    edit_seconds = time.perf_counter() - start
    scores = {metric: [] for metric in METRICS}
    for b in case["eval"]:
        for kind, metric in KINDS.items():
            for m in b["score"][kind]:
                t = micro(m, with_old=True)
                with torch.no_grad():
                    logits = ed.model(input_ids=t["input_ids"],
                                      attention_mask=t["attention_mask"])["logits"]
                scores[metric] += util.succ_ratios(logits, t["labels"], t.get("old_labels"))
    shifts = [a_by_b(m, m.weight.detach() - w).norm().item() for m, w in zip(modules, original)]
    return {
        "key": case["key"], "id": case["id"], "seed": case["scenario"]["seed"],
        "after": {k: sum(v) / len(v) for k, v in scores.items()},
        "train_seconds": train_seconds, "edit_seconds": edit_seconds,
        "train_records": sum(b["records"] for b in case["train"]),
        "edits": sum(b["batch"]["records"] for b in case["eval"]),
        "shift_norms": shifts,
        # The process's peak so far (Linux: KiB): every cell loads the model anew.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def section(pairs: list) -> list[str]:
    """One configuration's seeds: the scores side by side and the paired differences."""
    lines = [
        f"## `{pairs[0][0]['id'].rsplit(' | seed', 1)[0]}`", "",
        "| seed | Rust eff. | ref. eff. | Rust gen. | ref. gen. | Rust spe. | ref. spe. |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    diffs = {m: [] for m in METRICS}
    for ref_r, rust_r in pairs:
        row = [str(ref_r["seed"])]
        for m in METRICS:
            a, b = 100 * rust_r["report"]["after"][m], 100 * ref_r["after"][m]
            diffs[m].append(a - b)
            row += [f"{a:.1f}", f"{b:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    n = len(pairs)
    lines += ["", f"Paired difference Rust − reference over {n} seeds (points):", "",
              "| metric | mean | sd | standard error | mean within one SE of 0 |",
              "|---|---:|---:|---:|---|"]
    for m in METRICS:
        d = diffs[m]
        mean = sum(d) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else float("nan")
        se = sd / math.sqrt(n)
        ok = "yes" if abs(mean) <= max(se, ROUNDING) else "no"
        mean = 0.0 if abs(mean) < ROUNDING else mean
        lines.append(f"| {m} | {mean:+.2f} | {sd:.2f} | {se:.2f} | {ok} |")
    def median(xs: list[float]) -> float:
        xs = sorted(xs)
        return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2

    rust_train = median([1e3 * r["report"]["train_seconds_per_edit"] for _, r in pairs])
    rust_edit = median([1e3 * r["report"]["edit_seconds_per_edit"] for _, r in pairs])
    ref_train = median([1e3 * r["train_seconds"] / r["train_records"] for r, _ in pairs])
    ref_edit = median([1e3 * r["edit_seconds"] / r["edits"] for r, _ in pairs])
    lines += ["", "Time, median over the seeds (the two sides ran one after the other on the same "
              "machine, each alone):", "",
              "| | Rust | reference | Rust / reference |", "|---|---:|---:|---:|",
              f"| training, ms per record | {rust_train:.0f} | {ref_train:.0f} | "
              f"{rust_train / ref_train:.2f} |",
              f"| editing, ms per edit | {rust_edit:.0f} | {ref_edit:.0f} | "
              f"{rust_edit / ref_edit:.2f} |"]
    ref_peaks = [r["peak_rss_mib"] for r, _ in pairs if "peak_rss_mib" in r]
    if ref_peaks:
        rust_peak = max(r["report"]["peak_memory_bytes"] for _, r in pairs) / 2**20
        lines.append(f"| peak resident memory, MiB (Rust: per cell; reference: its process) | "
                     f"{rust_peak:.0f} | {max(ref_peaks):.0f} | {rust_peak / max(ref_peaks):.2f} |")
    return lines + [""]


# Raw passes: the criterion bench's name, passes.py's key for the same pass or the pass it
# saves work on, and whether PyTorch ran that same pass.
PASSES = [
    ("forward, every logit", "forward_all_logits", "forward_s", True),
    ("forward, head at the labelled positions", "forward_label_logits", "forward_s", False),
    ("forward + backward to the edited modules", "forward_backward_edit_hooks",
     "forward_backward_s", True),
    ("the same from the prefix cache", "forward_backward_edit_hooks_prefix_cached",
     "forward_backward_s", False),
    ("the same rows as two micro-batches of 4, one pass each (cached)",
     "two_micro_batches_of_4_prefix_cached", "forward_backward_s", False),
    ("those two micro-batches packed, a pass per core (cached; what the editors run)",
     "two_micro_batches_of_4_packed_prefix_cached", "forward_backward_s", False),
    ("the same without Γ (CACHE's pass: keys and output gradients)",
     "two_micro_batches_of_4_packed_prefix_cached_no_gamma", "forward_backward_s", False),
    ("those two micro-batches packed, one pass (cached)",
     "two_micro_batches_of_4_packed_one_pass", "forward_backward_s", False),
]


def raw_passes(out: Path) -> list[str]:
    """The raw-pass table, when side-by-side.sh left both sides' medians in OUT."""
    torch_file, rust_file = out / "passes-pytorch.json", out / "passes-rust.json"
    if not (torch_file.exists() and rust_file.exists()):
        return []
    py, rs = json.loads(torch_file.read_text()), json.loads(rust_file.read_text())
    model = py.get("model", "SmolLM2-135M")
    bench = "gemma3" if model.startswith("Gemma") else "smollm2"
    lines = ["## Raw passes", "",
             f"{model}, a batch of {py['batch'][0]} rows × {py['batch'][1]} tokens; Rust: "
             f"`cargo bench -p emsedit-llm --bench {bench}` (criterion's median); PyTorch "
             f"{py['torch']}: `scripts/bench-reference/passes.py` ({py['threads']} threads, "
             "median of 10). PyTorch's peak resident memory in that script: "
             f"{py['peak_rss_mib']:.0f} MiB.", "",
             "| pass | PyTorch, ms | Rust, ms | Rust / PyTorch |", "|---|---:|---:|---:|"]
    for name, bench, key, same in PASSES:
        if bench not in rs:
            continue
        r, base = 1e3 * rs[bench], 1e3 * py[key]
        if same:
            lines.append(f"| {name} | {base:.0f} | {r:.0f} | {r / base:.2f} |")
        else:
            lines.append(f"| {name} | — | {r:.0f} | {r / base:.2f} of PyTorch's full pass "
                         f"({base:.0f} ms) |")
    return lines + [""]


def table(out: Path) -> str:
    rust = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        rust[r["key"]] = r
    ref = [json.loads(l) for l in (out / "reference.jsonl").read_text().splitlines() if l.strip()]
    groups: dict[str, list] = {}
    for r in sorted(ref, key=lambda r: r["seed"]):
        if r["key"] in rust:
            groups.setdefault(rust[r["key"]]["cell"]["group"], []).append((r, rust[r["key"]]))
    preset = os.environ.get("PAIRED_PRESET", "parity")
    lines = [
        "# Paired check against the reference code", "",
        f"Rust (`cargo xtask reproduce --preset {preset}`) against the reference code's own",
        "editors started from the same untrained networks on the same batches",
        f"(`scripts/reference/paired.sh`; torch {torch.__version__}, transformers "
        f"{transformers.__version__}); scores in percent, on this machine's CPU.", "",
    ]
    for pairs in groups.values():
        lines += section(pairs)
    lines += raw_passes(out)
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    code, out, inputs = (Path(a).resolve() for a in sys.argv[1:])
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    stub_imports()
    sys.path.insert(0, str(code))
    import importlib

    mods = {name: importlib.import_module(name)
            for name in ("util", *sorted({m for m, _ in CLASSES.values()}))}
    done_path = out / "reference.jsonl"
    done = set()
    if done_path.exists():
        done = {json.loads(l)["key"] for l in done_path.read_text().splitlines() if l.strip()}
    # The cells of the Rust results only: inputs of cells no longer in the matrix stay unused.
    finished = {json.loads(l)["key"] for l in (out / "results.jsonl").read_text().splitlines()
                if l.strip()}
    cases = sorted(p for p in inputs.iterdir()
                   if (p / "case.json").exists() and p.name in finished)
    for i, case_dir in enumerate(cases):
        if case_dir.name in done:
            continue
        with tempfile.TemporaryDirectory(prefix="emsedit-paired-") as tmp:
            r = run_case(mods, case_dir, tmp)
        a = r["after"]
        print(f"[{i + 1}/{len(cases)}] {r['id']}: reference "
              + " / ".join(f"{100 * a[m]:.1f}" for m in METRICS)
              + f" in {r['train_seconds'] + r['edit_seconds']:.1f} s", flush=True)
        with done_path.open("a") as f:
            f.write(json.dumps(r) + "\n")
    text = table(out)
    (out / "paired.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
