"""Raw LLM passes in PyTorch on the same batch as `cargo bench -p emsedit-llm --bench smollm2`
(SmolLM2-135M) or `--bench gemma3` (Gemma-3-270M), by the model directory's `model_type`.

Times, on CPU with 2 threads, the forward (all logits, no grad) and the forward + backward
that an edit step runs: the mean cross-entropy of the labelled positions, gradients on the
edited weights of src/models.toml's sequential list only (12 on SmolLM2, 8 on Gemma-3).
Prints one JSON object: medians in seconds.

    scripts/bench-reference/run.sh [MODEL_DIR]
"""

import json
import resource
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

BATCH, TIME, ANSWER = 8, 11, 3
# The benches' edited modules and the model's name, by the config's `model_type`.
MODULES = {
    "llama": ("SmolLM2-135M", [f"model.layers.{i}.mlp.gate_proj" for i in range(10, 15)]
              + [f"model.layers.{i}.mlp.up_proj" for i in range(17, 24)]),
    "gemma3_text": ("Gemma-3-270M", [f"model.layers.{i}.mlp.{m}"
                                     for m in ("gate_proj", "up_proj") for i in range(14, 18)]),
}


def batch(vocab):
    """The bench's batch: deterministic ids; the last ANSWER positions of a row are labelled."""
    n = BATCH * TIME
    ids = [(i * 7919 + 13) % vocab for i in range(n)]
    labels = [
        ids[(i + 1) % n] if i % TIME >= TIME - ANSWER else -100 for i in range(n)
    ]
    return (
        torch.tensor(ids).reshape(BATCH, TIME),
        torch.tensor(labels).reshape(BATCH, TIME),
    )


def median_time(f, warmup=2, runs=10):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    torch.set_num_threads(2)
    try:
        model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
    except TypeError:  # transformers before 4.56 (the reference's venv) calls it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    kind = model.config.model_type
    if kind not in MODULES:
        raise SystemExit(f"{sys.argv[1]}: model_type {kind!r}; passes.py knows {', '.join(MODULES)}")
    name, modules = MODULES[kind]
    named = dict(model.named_modules())
    weights = [named[m].weight for m in modules]
    ids, labels = batch(model.config.vocab_size)

    def forward():
        with torch.no_grad():
            return model(input_ids=ids).logits

    def forward_backward():
        for w in weights:
            w.requires_grad_(True)
            w.grad = None
        logits = model(input_ids=ids).logits
        mask = labels != -100
        loss = torch.nn.functional.cross_entropy(logits[mask], labels[mask])
        loss.backward()
        for w in weights:
            w.requires_grad_(False)
        return loss

    out = {
        "model": name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "batch": [BATCH, TIME],
        "forward_s": median_time(forward),
        "forward_backward_s": median_time(forward_backward),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
