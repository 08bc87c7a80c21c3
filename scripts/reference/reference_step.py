#!/usr/bin/env python3
"""Runs the reference code's own editors (xpq-tech/emsedit, unpatched) for one training run
and one edit, deterministically beside the Rust editors.

Two setups, each written as ``fixtures/reference/<setup>.json`` + ``.safetensors`` in the format
of the meta-step goldens (``scripts/goldens/meta_step.py``), which the Rust test
``crates/emsedit-meta/tests/reference_goldens.rs`` reads:

* ``gpt2``: the tiny GPT-2 fixture (Conv1D modules) with the meta-step goldens' modules, token
  batches and hypernetwork initialisations (``fixtures/meta/``), so that the reference, the
  project's re-derivation and the Rust editors start from one state;
* ``smollm2``: SmolLM2-135M from the models cache (``cargo xtask fetch-models``), four LLaMA
  ``nn.Linear`` modules in one shape group, the same records in its tokenizer, and
  initialisations drawn here. Its tensors are stored as sketches (see ``sketch``).

Cases (``CASES``): MALMEN, EMSEdit batch and sequential, RLEdit and RLEdit2 (their training),
UltraEdit and UltraEdit2 (two edits in turn). The reference's editors are built with an
``omegaconf`` config, their networks' parameters are overwritten with the initialisation, and
their own ``train`` / ``train_batch`` / ``train_seq`` run on the batches. Two imports training
never calls are stubbed: the ``swanlab`` tracker and ``glue_eval.glue_eval`` (needs
``datasets``). The key cache (``torch.save`` per micro-batch) goes to a temporary directory.

Recorded per case: each step's Δ (``predict_param_shifts``), Γ (the edited weights' ``.grad``
at the hypernetwork update), raw meta-gradient (the networks' ``.grad`` just before
``clip_grad_norm_``, less what was there after the previous clip), each Adam update's clipped
gradient and updated parameters, and the shifts of one edit of the next batch with the trained
networks (after the reset of the model that the reference's ``run`` does).

The reference is run as it is, so every case is a ``reference_quirks`` case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "goldens"))
from meta_step import Store  # noqa: E402  (the meta-step goldens' tensor store and names)

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "fixtures" / "meta"
OUT = ROOT / "fixtures" / "reference"
PINNED = "581521adeaff5357a85b279455886aa333ff7ffa"


def stub_imports() -> None:
    swanlab = types.ModuleType("swanlab")
    swanlab.log = lambda *args, **kwargs: None
    sys.modules["swanlab"] = swanlab
    glue = types.ModuleType("glue_eval.glue_eval")
    glue.GLUEEval = None
    sys.modules["glue_eval.glue_eval"] = glue


def reference_commit(ref: Path) -> str:
    """The checkout's commit; run.sh names it when it extracted the code from a git directory."""
    if os.environ.get("REFERENCE_COMMIT"):
        return os.environ["REFERENCE_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(ref), "rev-parse", "HEAD"], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def param_names(blocks: int) -> list[str]:
    names = [f"{p}{l}" for l in range(blocks) for p in ("a", "b", "bias", "scale", "shift")]
    return names + ["eta", "log_ridge"]


def gpt2_setup() -> dict:
    """The meta-step goldens' model, modules, batches and initialisations."""
    meta = json.loads((META / "meta_step.json").read_text())
    tensors = load_file(str(META / "meta_step.safetensors"))
    inits = {name: {n: tensors[meta["aliases"].get(f"init.{name}.{n}", f"init.{name}.{n}")]
                    for n in meta["params"]}
             for name in ("spec", "perturbed", "perturbed_half")}
    setup = {k: meta[k] for k in ("model", "modules", "rank", "blocks", "meta_lr",
                                  "max_grad_norm", "reg_coef", "loc_coef", "params", "batches")}
    return {**setup, "name": "gpt2", "dir": ROOT / meta["model"], "inits": inits, "probe": None}


def models_dir() -> Path:
    env = os.environ.get("EMSEDIT_MODELS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "emsedit" / "models"


def model_setup(name: str, d: Path, modules: list[str], seed: int, **extra) -> dict:
    """A real model: the meta-step goldens' records in its tokenizer, one shape group of
    `modules`, initialisations drawn here, and every tensor but the initialisations stored as
    a sketch (see `sketch`)."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM
    from meta_step import edit_batches

    probe_model = AutoModelForCausalLM.from_pretrained(str(d), torch_dtype=torch.float32)
    shapes = {tuple(probe_model.get_submodule(m).weight.shape) for m in modules}
    assert len(shapes) == 1, f"{name}: one shape group expected, found {shapes}"
    module = probe_model.get_submodule(modules[0])
    a, b = module.weight.shape[::-1] if isinstance(module, torch.nn.Linear) else module.weight.shape
    del probe_model
    n, rank, blocks = len(modules), 4, 1
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape, std=1.0):
        return torch.randn(*shape, generator=gen) * std

    # The biases alternate ±6 by column and B is small, so that every pre-activation Z sits far
    # from the clamp's kink: where it is near, the last bits of the LLM's arithmetic (in which
    # burn and torch differ) flip the clamp's mask and move the meta-gradients of A, B and β by
    # 1e-3 and more, in the reference against itself too (eager against SDPA attention, on
    # SmolLM2). The GPT-2 fixture's goldens keep the spec's Z ≡ 0 start.
    signs = torch.tensor([6.0 if c % 2 == 0 else -6.0 for c in range(a + b)]).reshape(1, -1)

    def init(r: int) -> dict:
        t = {}
        for l in range(blocks):
            t[f"a{l}"] = normal(a + b, r)
            t[f"b{l}"] = normal(r, a + b, std=0.01)
            t[f"bias{l}"] = signs + normal(1, a + b, std=0.1)
            t[f"scale{l}"] = 1 + normal(n, a + b, std=0.1)
            t[f"shift{l}"] = normal(n, a + b, std=0.1)
        t["eta"] = 1e-3 * (1 + 0.5 * torch.rand(n, 1, generator=gen))
        t["log_ridge"] = normal(n, 1, std=0.3)
        return t

    return {
        "name": name, "dir": d, "modules": modules, "rank": rank, "blocks": blocks,
        "meta_lr": 1e-3, "max_grad_norm": 1.0, "reg_coef": 0.5, "loc_coef": 0.6,
        "params": param_names(blocks),
        "batches": edit_batches(Tokenizer.from_file(str(d / "tokenizer.json"))),
        "inits": {"perturbed": init(rank), "perturbed_half": init(rank // 2)},
        # EMSEdit batch starts from "spec" on the GPT-2 fixture, here from "perturbed".
        "init_alias": {"spec": "perturbed"},
        "probe": normal(a + b, 8),
        **extra,
    }


def default_setup() -> dict:
    """The embedded default model (a GPT-2 of width 128, `fixtures/model/`) with the main job's
    modules, `transformer.h.{2,3}.mlp.c_proj`."""
    modules = [f"transformer.h.{l}.mlp.c_proj" for l in (2, 3)]
    # Its passes agree with torch to ~1e-5, but the sketches of Δ and Γ (a Frobenius-like
    # measure, stricter than the largest entry's) of the last module to ~1.4e-4.
    return model_setup("default", ROOT / "fixtures" / "model", modules, 2026,
                       model="fixtures/model", tolerance=1e-3)


def smollm2_setup() -> dict | None:
    """SmolLM2-135M (`cargo xtask fetch-models`) with four LLaMA modules of one shape group
    (nn.Linear: keys and gradients transposed against Conv1D)."""
    d = models_dir() / "smollm2-135m"
    if not (d / "emsedit-fetch.json").exists():
        print(f"skipped SmolLM2: {d} has not been fetched (cargo xtask fetch-models)")
        return None
    modules = [f"model.layers.{l}.mlp.{m}" for m, ls in (("gate_proj", (10, 11)), ("up_proj", (17, 18)))
               for l in ls]
    # SmolLM2's Γ agree between burn and torch to ~6e-5 relative (the GPT-2 fixture's to
    # ~1e-6); the ridge solves, Adam's division by |g| + ε and the edit that follows carry that
    # to ≤ 6e-4. The Rust test's tolerance for these goldens (1e-4 for the GPT-2 fixture's).
    return model_setup("smollm2", d, modules, 2025, model_cache="smollm2-135m", tolerance=1e-3)


def tuples_of(batch: dict) -> dict:
    def micro(m: dict) -> dict:
        shape = (m["batch"], m["time"])
        return {k: torch.tensor(m[k], dtype=torch.long).view(shape)
                for k in ("input_ids", "attention_mask", "labels")}

    return {f"{k}_tuples": [micro(m) for m in batch[k]] for k in ("edit", "equiv", "unrel")}


# Every case: the Rust editor it is checked against, the reference's class and training
# method, K, the number of training batches (num_seq > 1 selects the sequential code paths)
# and the initialisation of each step's network. UltraEdit trains nothing: its case edits the
# first two batches in turn, as the reference's sequential_valid does.
CASES = [
    {"name": "malmen_quirks", "editor": "malmen", "module": "editor.malmen", "class": "MALMEN",
     "train": "train", "steps": 1, "batches": 1, "num_seq": 1, "init": ["perturbed"]},
    {"name": "emsedit_batch_quirks", "editor": "emsedit_batch", "module": "editor.emsedit",
     "class": "EMSEDIT", "train": "train_batch", "steps": 2, "batches": 1, "num_seq": 1,
     "init": ["spec", "spec"]},
    {"name": "emsedit_seq_quirks", "editor": "emsedit_sequential", "module": "editor.emsedit",
     "class": "EMSEDIT", "train": "train_seq", "steps": 2, "batches": 2, "num_seq": 2,
     "init": ["perturbed", "perturbed_half"]},
    {"name": "rledit_quirks", "editor": "rledit", "module": "editor.rledit", "class": "RLEDIT",
     "train": "train", "steps": 1, "batches": 2, "num_seq": 2, "init": ["perturbed"]},
    {"name": "rledit2_quirks", "editor": "rledit", "module": "editor.rledit", "class": "RLEDIT",
     "train": "train", "steps": 2, "batches": 2, "num_seq": 2,
     "init": ["perturbed", "perturbed_half"]},
    {"name": "ultraedit_quirks", "editor": "ultraedit", "module": "editor.ultraedit",
     "class": "ULTRAEDIT", "train": None, "steps": 1, "batches": 2, "num_seq": 2, "init": []},
    {"name": "ultraedit2_quirks", "editor": "ultraedit", "module": "editor.ultraedit",
     "class": "ULTRAEDIT", "train": None, "steps": 2, "batches": 2, "num_seq": 2, "init": []},
]
# RLEdit's backtracking and UltraEdit's η (the reference's defaults; UltraEdit's η is raised
# so that its shifts are far above rounding).
TIME_DECAY, BACK_DEPTH, RLEDIT_REG = 0.95, 10, 1e-4
ULTRAEDIT_LR = 1e-2


def config(setup: dict, case: dict, cache_dir: str):
    n_edits = setup["batches"][0]["records"]
    chunk = max(m["batch"] for m in setup["batches"][0]["edit"])
    rledit = case["editor"] == "rledit"
    return OmegaConf.create({
        "num_seq": case["num_seq"],
        "glue_step": -1,
        "model_device": "cpu",
        "editor_device": "cpu",
        "model": {"name": setup["name"], "edit_modules": setup["modules"]},
        "dataset": {"name": "goldens", "n_edits": n_edits, "batch_size": chunk},
        "editor": {
            "name": case["name"],
            "rank": setup["rank"],
            "n_blocks": setup["blocks"],
            # The networks' η is overwritten by the stored initialisation.
            "lr": ULTRAEDIT_LR if case["editor"] == "ultraedit" else 1e-6,
            "meta_lr": setup["meta_lr"],
            "max_grad_norm": setup["max_grad_norm"],
            "n_epochs": 1,
            "batch_size": 128,
            "token": "ans",
            "cache_dir": cache_dir,
            "save_checkpoint": False,
            "load_checkpoint": False,
            "reg_coef": RLEDIT_REG if rledit else setup["reg_coef"],
            "loc_coef": setup["loc_coef"],
            "time_decay": TIME_DECAY,
            "back_depth": BACK_DEPTH,
            "full_curve": False,
            "max_steps": 1,
            "iters": case["steps"],
        },
    })


def set_params(net, init: dict) -> None:
    """Our flat parameter list (a0, b0, bias0, scale0, shift0, …, eta, log_ridge) into the
    reference's HyperNet modules."""
    with torch.no_grad():
        for l, block in enumerate(net.blocks):
            block.A.copy_(init[f"a{l}"])
            block.B.copy_(init[f"b{l}"])
            block.bias.copy_(init[f"bias{l}"].reshape(-1))
            block.scale.weight.copy_(init[f"scale{l}"])
            block.shift.weight.copy_(init[f"shift{l}"])
        net.lr.weight.copy_(init["eta"])
        net.lamda.weight.copy_(init["log_ridge"])
    assert len(init) == 5 * len(net.blocks) + 2


def params_of(net, of=lambda p: p) -> list[torch.Tensor]:
    out = []
    for block in net.blocks:
        out += [of(block.A), of(block.B), of(block.bias).reshape(1, -1),
                of(block.scale.weight), of(block.shift.weight)]
    out += [of(net.lr.weight), of(net.lamda.weight)]
    return [t.detach().clone() for t in out]


def grads_of(net) -> list[torch.Tensor]:
    return params_of(net, lambda p: p.grad if p.grad is not None else torch.zeros_like(p))


def a_by_b(module, t: torch.Tensor) -> torch.Tensor:
    return t.T if isinstance(module, torch.nn.Linear) else t


class Recorder:
    """Wraps the editor's methods and the module-level clip_grad_norm_ to record a trace."""

    def __init__(self, ed, patched: list, util) -> None:
        self.ed, self.util = ed, util
        self.steps: list[dict] = []
        self.updates: list[dict] = []
        self.after_clip: dict[int, list[torch.Tensor]] = {}
        self.nets = []
        for i in sorted(ed.nets):
            for net in ed.nets[i].values():
                if all(net is not n for n in self.nets):
                    self.nets.append(net)
        predict, clip = ed.predict_param_shifts, torch.nn.utils.clip_grad_norm_
        step, zero_grad = ed.opt.step, ed.opt.zero_grad

        def recorded_predict(net_id):
            shifts = predict(net_id)
            self.steps.append({
                "net": self.index(net_id),
                "deltas": [shifts[m].detach().clone() for m in ed.config.model.edit_modules],
            })
            return shifts

        def recorded_clip(params, max_norm, *args, **kwargs):
            self.before_clip()
            out = clip(params, max_norm, *args, **kwargs)
            self.after_clip = {i: grads_of(n) for i, n in enumerate(self.nets)}
            return out

        def recorded_step(*args, **kwargs):
            handed = [grads_of(n) for n in self.nets]
            out = step(*args, **kwargs)
            self.updates.append({"grads": handed, "params": [params_of(n) for n in self.nets]})
            return out

        def recorded_zero_grad(*args, **kwargs):
            self.after_clip = {}
            return zero_grad(*args, **kwargs)

        ed.predict_param_shifts = recorded_predict
        ed.opt.step, ed.opt.zero_grad = recorded_step, recorded_zero_grad
        self.restore = [(m, m.clip_grad_norm_) for m in patched if hasattr(m, "clip_grad_norm_")]
        for m, _ in self.restore:
            m.clip_grad_norm_ = recorded_clip

    def close(self) -> None:
        for m, clip in self.restore:
            m.clip_grad_norm_ = clip

    def index(self, net_id: int) -> int:
        net = self.ed.nets[net_id][next(iter(self.ed.nets[net_id]))]
        return next(i for i, n in enumerate(self.nets) if n is net)

    def gammas(self) -> list[torch.Tensor]:
        ms = [self.util.get_module(self.ed.model, m) for m in self.ed.config.model.edit_modules]
        return [a_by_b(m, m.weight.grad).detach().clone() for m in ms]

    def before_clip(self) -> None:
        """Called at every clip: the steps since the last clip whose gradient is not yet
        recorded belong to the networks that now carry new gradient."""
        gammas = self.gammas()
        for step in self.steps:
            if "grads" in step:
                continue
            n = step["net"]
            now = grads_of(self.nets[n])
            prev = self.after_clip.get(n, [torch.zeros_like(t) for t in now])
            step["gammas"] = gammas
            step["grads"] = [a - b for a, b in zip(now, prev)]
            # Only the first pending step of this clip: one network's backward per clip.
            break


def run_case(ref_modules, setup: dict, case: dict, cache_dir: str) -> dict:
    from transformers import AutoModelForCausalLM

    editor_module, util = ref_modules[case["module"]], ref_modules["util"]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(setup["dir"]), attn_implementation="eager",
                                                 torch_dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad = False
    modules = [util.get_module(model, m) for m in setup["modules"]]
    for m in modules:
        m.weight.requires_grad = True
    original = [m.weight.detach().clone() for m in modules]
    cfg = config(setup, case, cache_dir)
    ed = getattr(editor_module, case["class"])(cfg, model)
    util.empty_cache(cache_dir, cfg)
    rec = None
    if case["train"] is not None:
        for i, init in enumerate(inits_of(setup, case)):
            (net,) = ed.nets[i].values()
            set_params(net, setup["inits"][init])
        rec = Recorder(ed, [ref_modules["editor.base"], editor_module], util)
        train = [tuples_of(b) for b in setup["batches"][: case["batches"]]]
        try:
            getattr(ed, case["train"])(train)
        finally:
            rec.close()
        # The reference's run() reloads the model after training (reset_model); then one edit
        # of the next batch, as its valid / sequential_valid do.
        with torch.no_grad():
            for m, w in zip(modules, original):
                m.weight.copy_(w)
        edits = [case["batches"] % len(setup["batches"])]
    else:
        edits = list(range(case["batches"]))
    for e in edits:
        tuples = tuples_of(setup["batches"][e])
        for net_id in range(cfg.editor.iters):
            ed.cache(tuples["edit_tuples"], net_id)
            ed.edit_model(ed.predict_param_shifts(net_id), False)
    shifts = [a_by_b(m, m.weight.detach() - w) for m, w in zip(modules, original)]
    if rec is None:
        return {"steps": [], "updates": [], "shifts": shifts, "edits": edits}
    steps = rec.steps[: len(rec.steps) - cfg.editor.iters]  # the edit's predictions come last
    assert all("grads" in s for s in steps), "a step without a recorded meta-gradient"
    return {"steps": steps, "updates": rec.updates, "shifts": shifts, "edits": edits}


SKETCH_ABOVE = 64


def sketch(t: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """Pᵀ t P, each side only where the tensor has more than SKETCH_ABOVE rows / columns, with
    P the probe's leading rows: a few numbers whose relative error tracks the tensor's
    (Frobenius) relative error. The Rust test applies the same map."""
    t = t.float()
    if t.shape[0] > SKETCH_ABOVE:
        t = probe[: t.shape[0]].T @ t
    if t.shape[1] > SKETCH_ABOVE:
        t = t @ probe[: t.shape[1]]
    return t


def inits_of(setup: dict, case: dict) -> list[str]:
    alias = setup.get("init_alias", {})
    return [alias.get(name, name) for name in case["init"]]


def store_case(store, setup: dict, name: str, trace: dict) -> None:
    """The meta-step goldens' names; with a probe, every tensor as its sketch."""
    probe = setup["probe"]
    small = (lambda t: t.float()) if probe is None else (lambda t: sketch(t, probe))

    def put_params(prefix: str, params: list[torch.Tensor]) -> None:
        for n, t in zip(setup["params"], params):
            store.put(f"{prefix}.{n}", small(t))

    for s, step in enumerate(trace["steps"]):
        for m, (d, g) in enumerate(zip(step["deltas"], step["gammas"])):
            store.put(f"{name}.step{s}.delta.{m}", small(d))
            store.put(f"{name}.step{s}.gamma.{m}", small(g))
        put_params(f"{name}.step{s}.grad.0", step["grads"])
    for u, upd in enumerate(trace["updates"]):
        for i, (grads, params) in enumerate(zip(upd["grads"], upd["params"])):
            put_params(f"{name}.update{u}.grad.{i}", grads)
            put_params(f"{name}.update{u}.param.{i}", params)
    for m, shift in enumerate(trace["shifts"]):
        store.put(f"{name}.shift.{m}", small(shift))


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} REFERENCE_CHECKOUT", file=sys.stderr)
        return 2
    ref = Path(sys.argv[1]).resolve()
    commit = reference_commit(ref)
    if not commit.startswith(PINNED):
        print(f"warning: the reference checkout is at {commit}, the goldens were made at {PINNED}",
              file=sys.stderr)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.use_deterministic_algorithms(True)
    stub_imports()
    sys.path.insert(0, str(ref))
    import importlib

    mods = {name: importlib.import_module(name) for name in
            ("util", "nets", "editor.base", *sorted({c["module"] for c in CASES}))}
    OUT.mkdir(parents=True, exist_ok=True)
    for setup in (gpt2_setup(), default_setup(), smollm2_setup()):
        if setup is None:
            continue
        store = Store()
        for init, tensors in setup["inits"].items():
            for n in setup["params"]:
                store.put(f"init.{init}.{n}", tensors[n])
        if setup["probe"] is not None:
            store.put("probe", setup["probe"])
        written = []
        with tempfile.TemporaryDirectory(prefix="emsedit-reference-") as tmp:
            for case in CASES:
                print(f"== {setup['name']} {case['name']}: reference {case['class']}.{case['train']}")
                trace = run_case(mods, setup, case, tmp)
                store_case(store, setup, case["name"], trace)
                print(f"   {len(trace['steps'])} steps, {len(trace['updates'])} Adam updates, "
                      f"{len(trace['edits'])} edits")
                written.append({
                    **{k: case[k] for k in ("name", "editor", "steps", "batches", "train")},
                    "reference": f"{case['module']}.{case['class']}",
                    "init": list(dict.fromkeys(inits_of(setup, case))),
                    "quirks": True,
                    "n_steps": len(trace["steps"]),
                    "n_updates": len(trace["updates"]),
                    "edits": trace["edits"],
                })
        out = {k: setup[k] for k in ("modules", "rank", "blocks", "meta_lr", "max_grad_norm",
                                     "reg_coef", "loc_coef", "params", "batches")}
        out.update({k: setup[k] for k in ("model", "model_cache", "tolerance") if k in setup})
        out.update({
            "about": "The reference code's own editors (scripts/reference/reference_step.py, "
                     "see its docstring).",
            "reference": {"repository": "github.com/xpq-tech/emsedit", "commit": commit},
            "rledit": {"time_decay": TIME_DECAY, "back_depth": BACK_DEPTH, "reg_coef": RLEDIT_REG},
            "ultraedit_lr": ULTRAEDIT_LR,
            "sketch_above": SKETCH_ABOVE if setup["probe"] is not None else None,
            "cases": written,
            "aliases": store.aliases,
            "versions": {"torch": torch.__version__,
                         "transformers": __import__("transformers").__version__},
        })
        stem = OUT / setup["name"]
        save_file(store.tensors, str(stem.with_suffix(".safetensors")))
        stem.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
        size = sum(stem.with_suffix(x).stat().st_size for x in (".safetensors", ".json"))
        print(f"wrote {stem.relative_to(ROOT)}.*: {len(store.tensors)} tensors, "
              f"{len(store.aliases)} aliases, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
