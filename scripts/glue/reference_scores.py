"""General-capability goldens: the reference's GLUE scoring, run with transformers on CPU.

Writes ``fixtures/glue/<task>.json`` (GLUE-shaped records written here: ten few-shot
records the reference skips, then test records) and ``fixtures/glue/golden-<model>.json``:
for every test record, the mean log-probability of each answer word after the prompt,
computed as ``xpq-tech/emsedit``'s ``glue_eval/*_eval.py`` compute it (``tokenizer(f"{prompt}
{word}")``, ``log_softmax`` of the logits at the answer positions, mean over the answer's
tokens; the prompt builders are copied from those files).

    scripts/glue/run.sh [MODEL_DIR]     # default: the models cache's smollm2-135m
"""

import json
import sys
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "glue"
FEW_SHOT = 10

SENTENCES = [
    "the film was a joy from start to end",
    "a dull and tired story with no heart",
    "the cat sat on the mat",
    "him the ball gave she",
    "the river flows into the sea",
    "paris is the capital of france",
]


def records():
    """Small GLUE-shaped records per task (few-shot head first)."""
    s = SENTENCES
    head = lambda make: [make(i) for i in range(FEW_SHOT)]
    return {
        "sst2": head(lambda i: {"sentence": f"filler {i}", "label": i % 2})
        + [{"sentence": s[0], "label": 1}, {"sentence": s[1], "label": 0}],
        "cola": head(lambda i: {"sentence": f"filler {i}", "label": i % 2})
        + [{"sentence": s[2], "label": 1}, {"sentence": s[3], "label": 0}],
        "mrpc": head(lambda i: {"sentence1": "a", "sentence2": "b", "label": i % 2})
        + [
            {"sentence1": s[4], "sentence2": "the river runs into the sea", "label": 1},
            {"sentence1": s[2], "sentence2": s[5], "label": 0},
        ],
        "rte": head(lambda i: {"sentence1": "a", "sentence2": "b", "label": i % 2})
        + [
            {"sentence1": s[5], "sentence2": "paris is in france", "label": 1},
            {"sentence1": s[2], "sentence2": "the dog ran away", "label": 0},
        ],
        "nli": head(lambda i: {"sentence1": "a", "sentence2": "b", "label": "entailment"})
        + [
            {"sentence1": s[5], "sentence2": "paris is in france", "label": "entailment"},
            {"sentence1": s[4], "sentence2": "the sea is dry", "label": "not_entailment"},
        ],
        "mmlu": head(lambda i: {"question": "q", "choices": ["a", "b", "c", "d"], "answer": 0})
        + [
            {
                "question": "What is the capital of France?",
                "choices": ["Berlin", "Paris", "Rome", "Madrid"],
                "answer": 1,
            },
            {
                "question": "How many legs does a cat have?",
                "choices": ["two", "six", "four", "eight"],
                "answer": 2,
            },
        ],
    }


# The reference's zero-shot prompts (glue_eval/*_eval.py, _create_prompt) and answer words
# (evaluate's suffixes), in class order.
def prompt(task, r):
    if task == "sst2":
        return "Review :" + r["sentence"] + "\nSentiment :", ["negative", "positive"]
    if task == "cola":
        return (
            "Is this sentence linguistically acceptable?\n" + "Sentence: " + r["sentence"] + "\n" + "Answer: ",
            ["No", "Yes"],
        )
    if task == "mrpc":
        p = "Sentence 1: " + r["sentence1"] + "\n" + "Sentence 2: " + r["sentence2"] + "\n"
        return "Are the sentences paraphrases of each other.\n" + p + "Answer:", ["No", "Yes"]
    if task == "rte":
        p = r["sentence1"] + "\n" + "question: " + r["sentence2"] + " True or False?" + "\n"
        return p + "answer:", ["False", "True"]
    if task == "nli":
        return f'{r["sentence1"]} entails the {r["sentence2"]} True or False? Answer:', ["False", "True"]
    if task == "mmlu":
        q = "Question: " + r["question"] + "\n"
        for letter, c in zip("ABCD", r["choices"]):
            q += f"({letter}) {c}\n"
        return q + "Answer:", ["A", "B", "C", "D"]
    raise ValueError(task)


def mean_logprob(model, tok, text, word, bos):
    """The reference's loop body for one answer word."""
    word_ids = tok(f" {word}")["input_ids"]
    prefix_len = len(tok(text)["input_ids"])
    if bos:
        word_ids = word_ids[1:]
        prefix_len -= 1
    ids = tok([f"{text} {word}"], return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    if bos:
        logits = logits[:, 1:, :]
    total = 0.0
    for j, t in enumerate(word_ids):
        total += torch.log_softmax(logits[0, prefix_len + j - 1, :], dim=0)[t].item()
    return total / len(word_ids)


def main():
    default = Path.home() / ".cache" / "emsedit" / "models" / "smollm2-135m"
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    torch.manual_seed(0)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    # The reference strips a leading BOS for LLaMA tokenizers ('llama' in the model name);
    # here: whenever the tokenizer adds one.
    bos = tok(" x")["input_ids"][0] == tok.bos_token_id if tok.bos_token_id is not None else False
    OUT.mkdir(parents=True, exist_ok=True)
    golden = {"model": model_dir.name, "transformers": transformers.__version__, "torch": torch.__version__, "tasks": {}}
    for task, recs in records().items():
        (OUT / f"{task}.json").write_text(json.dumps(recs, indent=1) + "\n")
        rows = []
        for r in recs[FEW_SHOT:]:
            text, words = prompt(task, r)
            rows.append({"prompt": text, "scores": [mean_logprob(model, tok, text, w, bos) for w in words]})
        golden["tasks"][task] = rows
    path = OUT / f"golden-{model_dir.name}.json"
    path.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
