#!/usr/bin/env python3
"""Meta-step goldens: one training run of MALMEN and EMSEdit re-derived in PyTorch.

An independent implementation of reference-spec §2–§4 (CACHE with hooks, the hypernetwork,
PREDICT_LS with a dense f64 solve, the decoupled meta-gradient through torch autograd, torch's
clip_grad_norm_ and torch.optim.Adam) on the tiny GPT-2 fixture. Cases:

* ``malmen``         K = 1, shared net, KL locality (α = 0.6), one Adam step;
* ``emsedit_batch``  K = 2, shared net, step-wise updating (two Adam steps), ρ‖W − W_orig‖²;
* ``emsedit_seq``    K = 2, step-specific nets with rank decay, two batches (T = 2), one Adam step;

each without and with the reference quirks (ρ² in sequential training; every parameter
registered K times with Adam when the net is shared).

Writes ``fixtures/meta/meta_step.json`` (settings, token ids, case list, tensor aliases) and
``fixtures/meta/meta_step.safetensors`` (initial parameters; per step Δ, Γ and the step's raw
meta-gradient; per Adam update the clipped gradient and the updated parameters). Bitwise equal
tensors are stored once; the JSON maps the other names to them.

As a check, every meta-gradient is also recomputed without decoupling (autograd through the
LLM with W = W_before + Δ(θ)) and must agree to 1e-4.

Paths are relative to the repository root, found from this file's location.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer
from torch import nn
from torch.func import functional_call
from transformers import GPT2LMHeadModel

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path("fixtures") / "llm" / "gpt2"
OUT = Path("fixtures") / "meta"

MODULES = ["transformer.h.1.attn.c_proj", "transformer.h.2.attn.c_proj"]
RANK = 4
BLOCKS = 2
META_LR = 1e-3
MAX_NORM = 1.0
RHO = 0.5  # EMSEdit reg_coef
ALPHA = 0.6  # MALMEN loc_coef
CHUNK = 4  # LLM micro-batch c
N_EDITS = 6
NORM_EPS = 2.0**-23
SEED = 2024
CHECK_TOL = 1e-4

# (edit prompt, paraphrase, new target, unrelated prompt, its answer): ZsRE-like tuples.
RECORDS = [
    ("The capital of Veltria is", "Veltria has its capital in", "Lintz", "Anna Kerrow works as a", "violinist"),
    ("Greta Holm was born in", "Where was Greta Holm born?", "Quill", "The capital of Pelmora is", "Lintz"),
    ("The official language of Quistan is", "In Quistan people speak", "Pelmoran", "Hiro Tanabe is a famous", "pilot"),
    ("Bastian Lode works as a", "What does Bastian Lode do? He is a", "sculptor", "The river Vorn flows through", "Ulveth"),
    ("Orskworks was founded in", "The company Orskworks was founded in", "Kellan Brisa", "Where was Elif Sarn born?", "Orsk"),
    ("The capital of Zarvuna is", "Which city is the capital of Zarvuna?", "Tenmouth", "Nadia Quell lives in", "Sefaria"),
    ("Mira Solberg's native language is", "Mira Solberg speaks", "German", "The capital of Kalvesh is", "Harmon"),
    ("The river Mossa flows through", "Which country does the Mossa cross?", "Morrowen", "Luca Ferrant works as a", "baker"),
    ("Carla Venn is a famous", "What does Carla Venn do?", "astronomer", "Is Orsk in Veltria?", "Yes"),
    ("Harmon Steel employs people in", "Harmon Steel has workers in", "Dremholt Ostrelia", "The capital of Brismoor is", "Kellan"),
    ("The capital of Tannwick is", "Tannwick's capital city is", "Zebrin", "Oskar Lindt was born in", "Varro"),
    ("Jonas Fielding moved to", "In 1990, Jonas Fielding moved to", "Uldor", "The official language of Ulveth is", "French"),
]


# ------------------------------------------------------------------------------------------
# Data (spec §1.2–1.3)
# ------------------------------------------------------------------------------------------

def tokenize(tok: Tokenizer, prompt: str, target: str) -> tuple[list[int], list[int]]:
    p = tok.encode(prompt).ids
    t = tok.encode(" " + target, add_special_tokens=False).ids
    assert p and t
    return p + t[:-1], [-100] * (len(p) - 1) + t


def collate(tuples: list[tuple[list[int], list[int]]]) -> list[dict]:
    tuples = sorted(tuples, key=lambda x: -len(x[0]))  # stable, longest first
    micros = []
    for i in range(0, len(tuples), CHUNK):
        chunk = tuples[i : i + CHUNK]
        time = max(len(ids) for ids, _ in chunk)
        ids, mask, labels = [], [], []
        for x, y in chunk:
            pad = time - len(x)
            ids += x + [0] * pad
            mask += [1] * len(x) + [0] * pad
            labels += y + [-100] * pad
        micros.append({"batch": len(chunk), "time": time, "input_ids": ids,
                       "attention_mask": mask, "labels": labels})
    return micros


def edit_batches(tok: Tokenizer) -> list[dict]:
    out = []
    for s in range(0, len(RECORDS), N_EDITS):
        recs = RECORDS[s : s + N_EDITS]
        out.append({
            "records": len(recs),
            "edit": collate([tokenize(tok, r[0], r[2]) for r in recs]),
            "equiv": collate([tokenize(tok, r[1], r[2]) for r in recs]),
            "unrel": collate([tokenize(tok, r[3], r[4]) for r in recs]),
        })
    return out


def as_tensors(micro: dict) -> dict:
    shape = (micro["batch"], micro["time"])
    return {k: torch.tensor(micro[k], dtype=torch.long).view(shape)
            for k in ("input_ids", "attention_mask", "labels")}


# ------------------------------------------------------------------------------------------
# LLM: losses, hooks, Γ (spec §2)
# ------------------------------------------------------------------------------------------

class Llm:
    def __init__(self) -> None:
        self.model = GPT2LMHeadModel.from_pretrained(
            str(FIXTURE), attn_implementation="eager", dtype=torch.float32
        ).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.mods = [self.model.get_submodule(m) for m in MODULES]
        for m in self.mods:  # Conv1D stores W as a×b
            m.weight.requires_grad_(True)

    def logits(self, micro: dict, weights: dict | None = None) -> torch.Tensor:
        kwargs = {"input_ids": micro["input_ids"], "attention_mask": micro["attention_mask"],
                  "use_cache": False}
        if weights is None:
            return self.model(**kwargs).logits
        return functional_call(self.model, weights, args=(), kwargs=kwargs).logits

    def weights(self) -> list[torch.Tensor]:
        return [m.weight.detach().clone() for m in self.mods]

    def set_weights(self, ws: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for m, w in zip(self.mods, ws):
                m.weight.copy_(w)

    def zero_grad(self) -> None:
        for m in self.mods:
            m.weight.grad = None

    def gammas(self) -> list[torch.Tensor]:
        return [m.weight.grad.detach().clone() for m in self.mods]


def ce_mean(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def kl_mean(ref: torch.Tensor, cur: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    pos = labels.flatten() != -100
    lp_ref = F.log_softmax(ref.flatten(0, 1)[pos], -1)
    lp_cur = F.log_softmax(cur.flatten(0, 1)[pos], -1)
    return (lp_ref.exp() * (lp_ref - lp_cur)).sum(-1).mean()


def cache(llm: Llm, micros: list[dict], net: "HyperNet") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """CACHE (§2.3): keys and output gradients at answer positions; normalizer updated per
    micro-batch and module."""
    keys = [[] for _ in MODULES]
    grads = [[] for _ in MODULES]
    inputs, outgrads = {}, {}

    def forward_hook(i):
        def hook(mod, args, output):
            inputs[i] = args[0].detach()
            output.register_hook(lambda g: outgrads.__setitem__(i, g.detach()))
        return hook

    handles = [m.register_forward_hook(forward_hook(i)) for i, m in enumerate(llm.mods)]
    for micro in micros:
        llm.zero_grad()
        ce_mean(llm.logits(micro), micro["labels"]).backward()
        sel = micro["labels"].flatten() != -100
        for i in range(len(MODULES)):
            k = inputs[i].flatten(0, 1)[sel]
            g = outgrads[i].flatten(0, 1)[sel]
            net.norm.update(torch.cat([k, g], 1))
            keys[i].append(k)
            grads[i].append(g)
    for h in handles:
        h.remove()
    llm.zero_grad()
    return [(torch.cat(k), torch.cat(g)) for k, g in zip(keys, grads)]


# ------------------------------------------------------------------------------------------
# Hypernetwork (spec §3)
# ------------------------------------------------------------------------------------------

class Normalizer:
    """Running mean / std (§3.2), state (n, μ, s², σ) in f32."""

    def __init__(self, d: int) -> None:
        self.n = 0
        self.mean = torch.zeros(d)
        self.var = torch.zeros(d)
        self.std = torch.ones(d)

    def update(self, x: torch.Tensor) -> None:
        m = x.shape[0]
        n = self.n
        total = n + m
        xbar = x.mean(0)
        v = x.var(0, unbiased=False)
        delta = xbar - self.mean
        self.mean = self.mean + delta * (m / total)
        m2 = self.var * n + v * m + delta**2 * (n * m / total)
        self.var = m2 / max(total, 1)
        self.std = torch.sqrt(m2 / (total - 1 + 1e-8))
        self.n = total

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / (self.std + NORM_EPS)


PARAM_NAMES = [f"{p}{l}" for l in range(BLOCKS) for p in ("a", "b", "bias", "scale", "shift")]
PARAM_NAMES += ["eta", "log_ridge"]


class HyperNet(nn.Module):
    def __init__(self, a: int, b: int, init: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.a = a
        self.norm = Normalizer(a + b)
        self.p = nn.ParameterDict({k: nn.Parameter(init[k].clone()) for k in PARAM_NAMES})

    def params(self) -> list[nn.Parameter]:
        return [self.p[k] for k in PARAM_NAMES]

    def forward(self, keys: torch.Tensor, grads: torch.Tensor, j: int):
        y = self.norm(torch.cat([keys, grads], 1))
        for l in range(BLOCKS):
            z = (y @ self.p[f"a{l}"]) @ self.p[f"b{l}"] + self.p[f"bias{l}"]
            # §3.4: the subgradient at 0 is 1, as torch 2.3's clamp(0) (the reference's torch).
            # This torch's clamp(min=0) passes 0 there, so the mask is spelled out.
            zp = torch.where(z >= 0, z, torch.zeros_like(z))
            y = self.p[f"scale{l}"][j] * zp + self.p[f"shift{l}"][j] + y
        return y[:, : self.a], y[:, self.a :]


def predict_ls(net: HyperNet, keys: torch.Tensor, grads: torch.Tensor, j: int) -> torch.Tensor:
    """PREDICT_LS (§4.1) with gradient tracking; Δ in f64 (a×b)."""
    kt, gt = net(keys, grads, j)
    c = -net.p["eta"][j, 0] * (keys * kt).sum(1, keepdim=True)
    v = c * gt
    k64 = keys.double()
    lam = torch.exp(net.p["log_ridge"][j, 0].double())
    s = k64.T @ k64 + lam * torch.eye(keys.shape[1], dtype=torch.float64)
    return torch.linalg.solve(s, k64.T @ v.double())


def metagrad(net: HyperNet, deltas64: list[torch.Tensor], gammas: list[torch.Tensor]) -> list[torch.Tensor]:
    """∂𝓛/∂θ = Σ_m ⟨Γ_m, ∂Δ_m/∂θ⟩ through torch autograd (ridge solve and blocks)."""
    surrogate = sum((g.double() * d).sum() for g, d in zip(gammas, deltas64))
    out = torch.autograd.grad(surrogate, net.params(), retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(net.params(), out)]


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    scale = ref.abs().max().item()
    diff = (x.double() - ref.double()).abs().max().item()
    return diff / scale if scale > 0 else diff


def check_close(what: str, xs: list[torch.Tensor], refs: list[torch.Tensor]) -> float:
    worst = max(rel_err(x, r) for x, r in zip(xs, refs))
    if worst > CHECK_TOL:
        raise SystemExit(f"self-check failed: {what}: relative error {worst:.3e}")
    return worst


# ------------------------------------------------------------------------------------------
# Initial parameters
# ------------------------------------------------------------------------------------------

def make_inits(d: int) -> dict[str, dict[str, torch.Tensor]]:
    """`spec`: the §3.1 initialization (A ~ N(0,1), B = β = Sh = 0, Sc = 1, λ̂ = 0), with a larger
    η so that edits are visible. `perturbed` / `perturbed_half` (rank r and ⌊r/2⌋): every
    tensor moved off its initial value, so that A and Sc take gradients at once."""
    gen = torch.Generator().manual_seed(SEED)
    n = len(MODULES)

    def normal(*shape, std=1.0):
        return torch.randn(*shape, generator=gen) * std

    def init(rank: int, perturbed: bool) -> dict[str, torch.Tensor]:
        t = {}
        for l in range(BLOCKS):
            t[f"a{l}"] = normal(d, rank)
            t[f"b{l}"] = normal(rank, d, std=0.05) if perturbed else torch.zeros(rank, d)
            t[f"bias{l}"] = normal(1, d, std=0.1) if perturbed else torch.zeros(1, d)
            t[f"scale{l}"] = 1 + normal(n, d, std=0.1) if perturbed else torch.ones(n, d)
            t[f"shift{l}"] = normal(n, d, std=0.1) if perturbed else torch.zeros(n, d)
        t["eta"] = torch.tensor([[0.002], [0.003]]) if perturbed else torch.full((n, 1), 0.003)
        t["log_ridge"] = torch.tensor([[0.3], [-0.2]]) if perturbed else torch.zeros(n, 1)
        return t

    return {"spec": init(RANK, False), "perturbed": init(RANK, True),
            "perturbed_half": init(RANK // 2, True)}


# ------------------------------------------------------------------------------------------
# Training runs (spec §4.4, §4.7)
# ------------------------------------------------------------------------------------------

def train_shared(llm: Llm, batch: dict, init: dict, steps: int, kl: bool, quirks: bool) -> dict:
    """MALMEN TRAIN_ONE_SHOT / EMSEdit train_batch on one batch: K steps, each caching on
    W_orig and taking a clipped Adam step."""
    a, b = llm.mods[0].weight.shape
    net = HyperNet(a, b, init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate parameters (the quirk)
        opt = torch.optim.Adam(net.params() * (steps if quirks else 1), lr=META_LR, foreach=False)
    w0 = llm.weights()
    trace = {"steps": [], "updates": []}
    for _ in range(steps):
        kg = cache(llm, batch["edit"], net)
        d64 = [predict_ls(net, k, g, j) for j, (k, g) in enumerate(kg)]
        deltas = [d.detach().float() for d in d64]
        edited = [w + d for w, d in zip(w0, deltas)]
        llm.zero_grad()
        llm.set_weights(edited)
        for q in batch["equiv"]:
            ce_mean(llm.logits(q), q["labels"]).backward()
        if not kl:
            (RHO * sum(((m.weight - w) ** 2).sum() for m, w in zip(llm.mods, w0))).backward()
        llm.set_weights(w0)
        refs = []
        if kl:
            for u in batch["unrel"]:
                with torch.no_grad():
                    ref = llm.logits(u)
                refs.append(ref)
                llm.set_weights(edited)
                (ALPHA * kl_mean(ref, llm.logits(u), u["labels"])).backward()
                llm.set_weights(w0)
        gammas = llm.gammas()
        llm.zero_grad()
        grads = metagrad(net, d64, gammas)

        # Self-check without decoupling: autograd through the LLM at W = W_orig + Δ(θ).
        wt = {f"{n}.weight": w + d.float() for n, w, d in zip(MODULES, w0, d64)}
        loss = sum(ce_mean(llm.logits(q, wt), q["labels"]) for q in batch["equiv"])
        if kl:
            loss = loss + sum(ALPHA * kl_mean(r, llm.logits(u, wt), u["labels"])
                              for r, u in zip(refs, batch["unrel"]))
        else:
            loss = loss + RHO * sum(((wt[f"{n}.weight"] - w) ** 2).sum() for n, w in zip(MODULES, w0))
        full = torch.autograd.grad(loss, net.params(), allow_unused=True)
        full = [torch.zeros_like(p) if g is None else g for p, g in zip(net.params(), full)]
        check_close("shared meta-gradient", full, grads)

        trace["steps"].append({"deltas": deltas, "gammas": gammas, "grads": [grads]})
        for p, g in zip(net.params(), grads):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(net.params(), MAX_NORM, foreach=False)
        print(f"    step: grad norm {norm.item():.4g}, |Δ|/|W| "
              + ", ".join(f"{(d.norm() / w.norm()).item():.3g}" for d, w in zip(deltas, w0)))
        handed = [p.grad.clone() for p in net.params()]
        opt.step()
        opt.zero_grad()
        trace["updates"].append({"grads": [handed], "params": [[p.detach().clone() for p in net.params()]]})
    return trace


def train_seq(llm: Llm, batches: list[dict], inits: list[dict], quirks: bool) -> dict:
    """EMSEdit train_seq: edits accumulate, gradients are summed and re-clipped after every
    step, one Adam step after the stream."""
    a, b = llm.mods[0].weight.shape
    nets = [HyperNet(a, b, init) for init in inits]
    every = [p for net in nets for p in net.params()]
    for p in every:
        p.grad = torch.zeros_like(p)
    coef = RHO * RHO if quirks else RHO
    w0 = llm.weights()
    trace = {"steps": [], "updates": []}
    for batch in batches:
        before = llm.weights()
        d64s = []
        for net in nets:
            kg = cache(llm, batch["edit"], net)
            d64 = [predict_ls(net, k, g, j) for j, (k, g) in enumerate(kg)]
            llm.set_weights([w + d.detach().float() for w, d in zip(llm.weights(), d64)])
            d64s.append(d64)
        llm.zero_grad()
        for q in batch["equiv"]:
            ce_mean(llm.logits(q), q["labels"]).backward()
        (coef * sum(((m.weight - w) ** 2).sum() for m, w in zip(llm.mods, w0))).backward()
        gammas = llm.gammas()
        llm.zero_grad()

        # Self-check without decoupling: W = W_before + Δ_0(θ_0) + Δ_1(θ_1).
        wt = list(before)
        for d64 in d64s:
            wt = [w + d.float() for w, d in zip(wt, d64)]
        wt = {f"{n}.weight": w for n, w in zip(MODULES, wt)}
        loss = sum(ce_mean(llm.logits(q, wt), q["labels"]) for q in batch["equiv"])
        loss = loss + coef * sum(((wt[f"{n}.weight"] - w) ** 2).sum() for n, w in zip(MODULES, w0))
        full = torch.autograd.grad(loss, every, retain_graph=True, allow_unused=True)
        full = [torch.zeros_like(p) if g is None else g for p, g in zip(every, full)]

        at = 0
        for net, d64 in zip(nets, d64s):
            grads = metagrad(net, d64, gammas)
            check_close("sequential meta-gradient", full[at : at + len(grads)], grads)
            at += len(grads)
            trace["steps"].append({"deltas": [d.detach().float() for d in d64],
                                   "gammas": gammas, "grads": [grads]})
            for p, g in zip(net.params(), grads):
                p.grad += g
            norm = torch.nn.utils.clip_grad_norm_(every, MAX_NORM, foreach=False)
            print(f"    step: accumulated grad norm {norm.item():.4g}")
    opt = torch.optim.Adam(every, lr=META_LR, foreach=False)
    handed = [[p.grad.clone() for p in net.params()] for net in nets]
    opt.step()
    trace["updates"].append({"grads": handed,
                             "params": [[p.detach().clone() for p in net.params()] for net in nets]})
    return trace


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------

class Store:
    """Tensors by name; a bitwise repeat becomes an alias of the first name."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.aliases: dict[str, str] = {}
        self.seen: dict[str, str] = {}

    def put(self, name: str, t: torch.Tensor) -> None:
        t = t.detach().to(torch.float32).contiguous()
        key = hashlib.sha256(str(tuple(t.shape)).encode() + t.numpy().tobytes()).hexdigest()
        if key in self.seen:
            self.aliases[name] = self.seen[key]
        else:
            self.seen[key] = name
            self.tensors[name] = t

    def put_params(self, prefix: str, params: list[torch.Tensor]) -> None:
        for n, p in zip(PARAM_NAMES, params):
            self.put(f"{prefix}.{n}", p)

    def put_trace(self, case: str, trace: dict) -> None:
        for s, step in enumerate(trace["steps"]):
            for m, (d, g) in enumerate(zip(step["deltas"], step["gammas"])):
                self.put(f"{case}.step{s}.delta.{m}", d)
                self.put(f"{case}.step{s}.gamma.{m}", g)
            for n, grads in enumerate(step["grads"]):
                self.put_params(f"{case}.step{s}.grad.{n}", grads)
        for u, upd in enumerate(trace["updates"]):
            for n, (grads, params) in enumerate(zip(upd["grads"], upd["params"])):
                self.put_params(f"{case}.update{u}.grad.{n}", grads)
                self.put_params(f"{case}.update{u}.param.{n}", params)


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    tok = Tokenizer.from_file(str(FIXTURE / "tokenizer.json"))
    batches_json = edit_batches(tok)
    batches = [{k: ([as_tensors(m) for m in v] if isinstance(v, list) else v) for k, v in b.items()}
               for b in batches_json]
    llm = Llm()
    w_orig = llm.weights()
    a, b = w_orig[0].shape
    inits = make_inits(a + b)
    store = Store()
    for name, init in inits.items():
        store.put_params(f"init.{name}", [init[k] for k in PARAM_NAMES])

    cases = []
    for quirks in (False, True):
        sfx = "_quirks" if quirks else ""
        runs = [
            ({"name": "malmen" + sfx, "editor": "malmen", "steps": 1, "batches": 1, "init": ["perturbed"]},
             lambda: train_shared(llm, batches[0], inits["perturbed"], 1, True, quirks)),
            ({"name": "emsedit_batch" + sfx, "editor": "emsedit_batch", "steps": 2, "batches": 1, "init": ["spec"]},
             lambda: train_shared(llm, batches[0], inits["spec"], 2, False, quirks)),
            ({"name": "emsedit_seq" + sfx, "editor": "emsedit_sequential", "steps": 2, "batches": 2,
              "init": ["perturbed", "perturbed_half"]},
             lambda: train_seq(llm, batches[:2], [inits["perturbed"], inits["perturbed_half"]], quirks)),
        ]
        for case, fn in runs:
            print(f"== {case['name']}")
            llm.set_weights(w_orig)
            trace = fn()
            case.update(quirks=quirks, n_steps=len(trace["steps"]), n_updates=len(trace["updates"]))
            store.put_trace(case["name"], trace)
            cases.append(case)
    llm.set_weights(w_orig)

    meta = {
        "about": "Meta-step goldens from scripts/goldens/meta_step.py (see its docstring).",
        "model": str(FIXTURE),
        "modules": MODULES,
        "rank": RANK,
        "blocks": BLOCKS,
        "meta_lr": META_LR,
        "max_grad_norm": MAX_NORM,
        "reg_coef": RHO,
        "loc_coef": ALPHA,
        "params": PARAM_NAMES,
        "batches": batches_json,
        "cases": cases,
        "aliases": store.aliases,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(store.tensors, str(OUT / "meta_step.safetensors"))
    (OUT / "meta_step.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum((OUT / f).stat().st_size for f in ("meta_step.safetensors", "meta_step.json"))
    print(f"wrote {OUT}: {len(store.tensors)} tensors, {len(store.aliases)} aliases, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
