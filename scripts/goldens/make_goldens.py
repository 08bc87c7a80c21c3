#!/usr/bin/env python3
"""Generate golden fixtures for the Rust LLM code from HF transformers + PyTorch.

Run through ``scripts/goldens/run.sh`` (which pins the versions in
``requirements.txt``) with the repository root as working directory.

For each family (gpt2, gptj, llama, gemma2) this writes
``fixtures/llm/<family>/`` containing:

* ``config.json`` + ``model.safetensors``   tiny random fp32 model (save_pretrained)
* ``tokenizer.json`` (+ ``tokenizer_config.json``) tiny tokenizer in the family's format
* ``golden.safetensors``                      batch, logits, loss, keys/out_grads/gamma
* ``golden.json``                             metadata for the Rust tests
* ``tokens.json``                             expected token ids for ~40 (prompt, target) pairs

Everything is deterministic: fixed seeds, fp32, CPU, eval mode, eager attention.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors
import tokenizers
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

SEED = 1234
OUT_ROOT = Path("fixtures") / "llm"
PAD_ID = 0  # right padding id used in golden batches

# LLaMA-3 pre-tokenizer split regex (as in Meta's tiktoken config / HF tokenizer.json).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Training-only pre-tokenizer for the SentencePiece-like (gemma) tokenizer.  The
# text is already normalised (" " -> "▁").  Words keep their leading "▁", digits
# are split one by one (Gemma's split_digits), runs of "▁" may merge together.
# At encode time the gemma tokenizer.json has NO pre-tokenizer (like the real one).
GEMMA_TRAIN_PATTERN = r"▁?\p{L}+|▁?[^▁\p{L}\p{N}]+|\p{N}|▁+(?=▁)|▁+"

SP = "\u2581"  # ▁


def set_seeds(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------

COUNTRIES = [
    ("Veltria", "Orsk"), ("Pelmora", "Lintz"), ("Quistan", "Varro"), ("Zarvuna", "Quill"),
    ("Dremholt", "Zebrin"), ("Kalvesh", "Harmon"), ("Brismoor", "Kellan"), ("Tannwick", "Brisa"),
    ("Ulveth", "Tenmouth"), ("Morrowen", "Uldor"), ("Sefaria", "Moravel"), ("Ostrelia", "Sefa"),
]
PEOPLE = [
    "Anna Kerrow", "Bastian Lode", "Carla Venn", "Dmitri Ostrava", "Elif Sarn", "Farouk Bell",
    "Greta Holm", "Hiro Tanabe", "Ines Marlow", "Jonas Fielding", "Katya Brenn", "Luca Ferrant",
    "Mira Solberg", "Nadia Quell", "Oskar Lindt", "Priya Varma",
]
PROFESSIONS = [
    "violinist", "chemist", "architect", "footballer", "poet", "astronomer", "baker",
    "painter", "surgeon", "sculptor", "pilot", "lawyer",
]
LANGUAGES = ["Veltrian", "Pelmoran", "Quistani", "French", "German", "Spanish", "Italian"]
RIVERS = ["Ardent", "Silverrun", "Mossa", "Tellim", "Vorn", "Kasper"]
COMPANIES = ["Orskworks", "Lintz Motors", "Varro Foods", "Quill Media", "Harmon Steel"]
EXTRA = [
    "The café in Zürich opened in 1987.",
    "It's a naïve idea, isn't it?",
    "Prices: 3.50, 12, and 1,250 units!",
    "Multiple   spaces    appear    here.",
    "Two  spaces  between  words.",
    "Zürich, Genève and Malmö are real cities; Orsk is not.",
    "She ordered a café crème and a crêpe.",
    "The naïve coöperation failed in 2003.",
    "Call 555-0199 before 9:30 a.m.!",
    "Is 7 + 5 = 12? Yes, it is.",
    "Quotes: \"hello\", 'world', and (parentheses).",
    "Line one\nLine two\nLine three.",
    "Tab\tseparated\tvalues.",
    "Hmm... really?! Wow!!!",
    "The temperature was -4.5 degrees in Orsk.",
    "Über alles: the Ångström unit is 0.1 nm.",
    "E-mail: anna.kerrow@veltria.example",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024.",
    "What's the population of Veltria? About 4,200,000.",
    "Don't, won't, can't, shouldn't, they're, we've, I'm, you'll, he'd.",
]


def build_corpus() -> list[str]:
    rng = random.Random(SEED)
    lines: list[str] = []
    for country, capital in COUNTRIES:
        lines += [
            f"The capital of {country} is {capital}.",
            f"What is the capital of {country}?",
            f"{capital} is the largest city in {country}.",
            f"Q: Which country has {capital} as its capital? A: {country}.",
        ]
    for person in PEOPLE:
        prof = rng.choice(PROFESSIONS)
        country, capital = rng.choice(COUNTRIES)
        year = rng.randint(1900, 2010)
        lang = rng.choice(LANGUAGES)
        lines += [
            f"{person} works as a {prof}.",
            f"{person} was born in {capital} in {year}.",
            f"Where was {person} born?",
            f"{person}'s native language is {lang}.",
            f"The {prof} {person} lives in {country}.",
        ]
    templates = [
        "The river {river} flows through {country} for {n} km.",
        "{company} was founded in {capital} in {year}.",
        "{person} is a famous {prof} from {country}.",
        "How long is the river {river}? It is {n} km long.",
        "In {year}, {person} moved to {capital}.",
        "The official language of {country} is {lang}.",
        "{company} employs {n} people in {country}.",
        "Q: What does {person} do? A: {person} is a {prof}.",
        "Is {capital} in {country}? Yes.",
        "Is {capital} in {country}? No, it is not.",
    ]
    while len(lines) < 300:
        country, capital = rng.choice(COUNTRIES)
        lines.append(
            rng.choice(templates).format(
                river=rng.choice(RIVERS), country=country, capital=capital,
                n=rng.randint(2, 9999), year=rng.randint(1800, 2024),
                company=rng.choice(COMPANIES), person=rng.choice(PEOPLE),
                prof=rng.choice(PROFESSIONS), lang=rng.choice(LANGUAGES),
            )
        )
    lines += EXTRA * 3
    return lines


# --------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------

def _train(corpus, *, normalizer, pre_tokenizer, vocab_size, initial_alphabet):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=initial_alphabet,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"]]
    return [t for t, _ in vocab], merges


def _added(id_, content, normalized=False):
    return {
        "id": id_, "content": content, "single_word": False, "lstrip": False,
        "rstrip": False, "normalized": normalized, "special": True,
    }


def _bpe(vocab, merges, **kw):
    d = {
        "type": "BPE", "dropout": None, "unk_token": None,
        "continuing_subword_prefix": None, "end_of_word_suffix": None,
        "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
        "vocab": vocab, "merges": merges,
    }
    d.update(kw)
    return d


def _template_bos(bos, bos_id):
    return {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


def make_tokenizer(kind: str, corpus: list[str]) -> tuple[Tokenizer, dict]:
    """Returns the tokenizer and a dict describing its special tokens."""
    if kind == "gpt2":
        toks, merges = _train(
            corpus, normalizer=None,
            pre_tokenizer=pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            vocab_size=480, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        vocab = {t: i for i, t in enumerate(toks)}
        eot = len(vocab)
        vocab["<|endoftext|>"] = eot  # GPT-2 keeps it as the last id, also in the model vocab
        spec = {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [_added(eot, "<|endoftext|>", normalized=True)],
            "normalizer": None,
            "pre_tokenizer": dict(BYTE_LEVEL),
            "post_processor": dict(BYTE_LEVEL, add_prefix_space=True, trim_offsets=False),
            "decoder": dict(BYTE_LEVEL, add_prefix_space=True),
            "model": _bpe(vocab, merges, continuing_subword_prefix="", end_of_word_suffix=""),
        }
        special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                   "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": None}
    elif kind == "llama":
        train_pre = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        toks, merges = _train(
            corpus, normalizer=None, pre_tokenizer=train_pre, vocab_size=480,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        vocab = {t: i for i, t in enumerate(toks)}
        bos, eos = len(vocab), len(vocab) + 1
        # LLaMA-3 keeps its special tokens only in added_tokens (ids after the BPE vocab).
        spec = {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [_added(bos, "<|begin_of_text|>"), _added(eos, "<|end_of_text|>")],
            "normalizer": None,
            "pre_tokenizer": {
                "type": "Sequence",
                "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
                    dict(BYTE_LEVEL, use_regex=False),
                ],
            },
            "post_processor": {
                "type": "Sequence",
                "processors": [
                    dict(BYTE_LEVEL, add_prefix_space=True, trim_offsets=False),
                    _template_bos("<|begin_of_text|>", bos),
                ],
            },
            "decoder": dict(BYTE_LEVEL, add_prefix_space=True),
            "model": _bpe(vocab, merges, ignore_merges=True),
        }
        special = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                   "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": None}
    elif kind == "gemma":
        train_pre = pre_tokenizers.Split(Regex(GEMMA_TRAIN_PATTERN), behavior="isolated", invert=False)
        toks, merges = _train(
            corpus, normalizer=normalizers.Replace(" ", SP), pre_tokenizer=train_pre,
            vocab_size=400, initial_alphabet=[SP],
        )
        specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
        byte_toks = [f"<0x{b:02X}>" for b in range(256)]
        vocab = {}
        for t in specials + byte_toks + toks:
            assert t not in vocab, t
            vocab[t] = len(vocab)
        spec = {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [_added(vocab[t], t) for t in specials],
            "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SP},
            "pre_tokenizer": None,
            "post_processor": _template_bos("<bos>", vocab["<bos>"]),
            "decoder": {
                "type": "Sequence",
                "decoders": [
                    {"type": "Replace", "pattern": {"String": SP}, "content": " "},
                    {"type": "ByteFallback"},
                    {"type": "Fuse"},
                ],
            },
            "model": _bpe(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True),
        }
        special = {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>",
                   "mask_token": "<mask>", "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}
    else:
        raise ValueError(kind)
    tok = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    return tok, special


def write_tokenizer(tok: Tokenizer, special: dict, kind: str, out_dir: Path) -> None:
    tok.save(str(out_dir / "tokenizer.json"), pretty=True)
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 64, "clean_up_tokenization_spaces": False}
    for k in ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token"):
        if k in special:
            cfg[k] = special[k]
    if kind in ("llama", "gemma"):
        cfg["add_bos_token"] = True
        cfg["add_eos_token"] = False
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


# (prompt, target) pairs for tokens.json
TOKEN_CASES = [
    ("The capital of Veltria is", "Orsk"),
    ("Anna Kerrow works as a", "violinist"),
    ("?", "yes"),
    ("Q: Where was Bastian Lode born? A:", "Lintz"),
    ("The café in Zürich serves", "naïve espresso"),
    ("Prices rose to 1,250 units in", "1987"),
    ("Multiple   spaces    here", "and  there"),
    ("Tabs\tand\nnewlines:", "ok"),
    ("It's a naïve idea, isn't it", "?"),
    ("The year 2024 follows", "2023"),
    (" Leading space", "trailing space "),
    ("Emoji 🙂 test", "🚀"),
    ("日本の首都は", "東京"),
    ("ALL CAPS TEXT", "YES"),
    ("mixedCase camelCase", "snake_case"),
    ("email: a.b@c.de", "ok"),
    ("(parentheses) [brackets] {braces}", "<angles>"),
    ("3.14159 is pi", "2.71828"),
    ("don't won't can't", "shouldn't"),
    ("Ünïcödé", "Ångström"),
    ("x", "y"),
    ("What is the capital of Pelmora?", "Lintz"),
    ("Greta Holm was born in", "Kellan in 1954"),
    ("The official language of Quistan is", "Quistani"),
    ("Hmm... really?!", "Wow!!!"),
    ("Call 555-0199 before", "9:30 a.m."),
    ("Is 7 + 5 = 12?", "Yes"),
    ("Line one\n\nLine three", "four"),
    ("trailing spaces   ", "end"),
    ("The Ångström unit is", "0.1 nm"),
    ("Genève, Malmö, Zürich", "Orsk"),
    ("ÀÉÎÕÜ àéîõü", "ñ"),
    ("She said \"hello\"", "'world'"),
    ("a  b   c    d", "e"),
    ("Numbers 0 1 2 3 4 5 6 7 8 9", "10"),
    ("Priya Varma's native language is", "Veltrian"),
    ("Orskworks was founded in", "1923"),
    ("<|endoftext|> and <bos> in text", "literal"),
    ("ÿ ½ € ©", "™"),
    ("The river Mossa flows through", "Tannwick"),
]


def encode(tok: Tokenizer, text: str, add_special: bool) -> list[int]:
    return tok.encode(text, add_special_tokens=add_special).ids


def tokens_json(tok: Tokenizer, out_dir: Path, hf_dir: Path, kind: str) -> list[str]:
    cases = []
    for prompt, target in TOKEN_CASES:
        p = tok.encode(prompt, add_special_tokens=True)
        t = tok.encode(" " + target, add_special_tokens=False)
        cases.append({
            "prompt": prompt, "target": target,
            "prompt_ids": p.ids, "target_ids": t.ids,
            "prompt_tokens": p.tokens, "target_tokens": t.tokens,
        })
    (out_dir / "tokens.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")

    # Cross-check against transformers.
    problems = []
    checkers = [("AutoTokenizer", lambda: transformers.AutoTokenizer.from_pretrained(str(hf_dir)))]
    if kind == "gpt2":
        checkers.append(("GPT2Tokenizer", lambda: transformers.GPT2Tokenizer.from_pretrained(str(hf_dir))))
    if kind == "gemma":
        checkers.append(("GemmaTokenizer", lambda: transformers.GemmaTokenizer.from_pretrained(str(hf_dir))))
    for name, load in checkers:
        try:
            hf = load()
        except Exception as e:  # noqa: BLE001
            problems.append(f"{name}: failed to load: {e!r}")
            continue
        n = 0
        for c in cases:
            hp = hf(c["prompt"])["input_ids"]
            ht = hf(" " + c["target"], add_special_tokens=False)["input_ids"]
            if hp != c["prompt_ids"] or ht != c["target_ids"]:
                n += 1
                problems.append(
                    f"{name} ({type(hf).__name__}): {c['prompt']!r}/{c['target']!r}: "
                    f"tokenizers {c['prompt_ids']}/{c['target_ids']} vs transformers {hp}/{ht}"
                )
        print(f"  tokenizer cross-check {name} ({type(hf).__name__}): {len(cases) - n}/{len(cases)} agree")
    return problems


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------

FAMILIES = {
    "gpt2": {
        "tokenizer": "gpt2",
        "edited": ["transformer.h.1.mlp.c_proj", "transformer.h.2.mlp.c_proj"],
    },
    "gptj": {
        "tokenizer": "gpt2",
        "edited": ["transformer.h.0.mlp.fc_in", "transformer.h.1.mlp.fc_out"],
    },
    "llama": {
        "tokenizer": "llama",
        "edited": ["model.layers.1.mlp.gate_proj", "model.layers.2.mlp.up_proj"],
    },
    "gemma2": {
        "tokenizer": "gemma",
        "edited": ["model.layers.1.mlp.down_proj", "model.layers.2.mlp.gate_proj"],
    },
}


def make_config(family: str, vocab_size: int, special: dict):
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=vocab_size, n_positions=64, n_embd=45, n_layer=3, n_head=3, n_inner=None,
            activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            layer_norm_epsilon=1e-5, tie_word_embeddings=True,
            bos_token_id=special["bos_token_id"], eos_token_id=special["eos_token_id"],
        )
    if family == "gptj":
        return transformers.GPTJConfig(
            vocab_size=vocab_size, n_positions=64, n_embd=48, n_layer=2, n_head=3, rotary_dim=8,
            n_inner=100, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            layer_norm_epsilon=1e-5, tie_word_embeddings=False,
            bos_token_id=special["bos_token_id"], eos_token_id=special["eos_token_id"],
        )
    if family == "llama":
        return transformers.LlamaConfig(
            vocab_size=vocab_size, hidden_size=48, intermediate_size=67, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, head_dim=12, hidden_act="silu",
            max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
            attention_bias=False, mlp_bias=False,
            rope_parameters={
                "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
            },
            bos_token_id=special["bos_token_id"], eos_token_id=special["eos_token_id"], pad_token_id=None,
        )
    if family == "gemma2":
        return transformers.Gemma2Config(
            vocab_size=vocab_size, hidden_size=40, intermediate_size=71, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, head_dim=12,
            hidden_activation="gelu_pytorch_tanh", max_position_embeddings=64, rms_norm_eps=1e-6,
            tie_word_embeddings=True, query_pre_attn_scalar=10, sliding_window=4,
            attn_logit_softcapping=50.0, final_logit_softcapping=30.0, attention_bias=False,
            bos_token_id=special["bos_token_id"], eos_token_id=special["eos_token_id"],
            pad_token_id=special["pad_token_id"],
        )
    raise ValueError(family)


def build_model(config, seed: int):
    set_seeds(seed)
    model = transformers.AutoModelForCausalLM.from_config(
        config, attn_implementation="eager", dtype=torch.float32
    )
    model.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        # named_parameters() de-duplicates tied weights, so tied embeddings get noise once.
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            std = 0.1 if p.ndim == 1 else 0.05
            p.add_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std)
    return model


def choose_batch(tok: Tokenizer, family: str):
    """Picks 3 (prompt, target) pairs giving different lengths (real right padding)."""
    candidates = [
        ("The capital of Veltria is", "Orsk"),
        ("Q: Where was Bastian Lode born? A:", "Lintz"),
        ("Anna Kerrow works as a", "violinist"),
        ("Greta Holm was born in", "Kellan in 1954"),
        ("The official language of Quistan is", "Quistani"),
        ("The café in Zürich serves", "naïve espresso"),
        ("What is the capital of Pelmora? It is", "Lintz"),
        ("Orskworks was founded in", "1923"),
        ("Priya Varma's native language is", "Veltrian"),
        ("The river Mossa flows through", "Tannwick"),
        ("Hiro Tanabe is a famous", "astronomer from Zarvuna"),
        ("The capital of Dremholt is", "Zebrin"),
        ("Is Brisa in Tannwick?", "Yes"),
        ("Where was Anna Kerrow born? In", "Orsk"),
        ("The river Vorn flows through", "Ulveth"),
        ("What is the capital of Morrowen?", "Uldor"),
        ("Carla Venn works as a", "chemist in Orsk"),
        ("The official language of Veltria is", "Veltrian"),
    ]
    infos = []
    for prompt, target in candidates:
        p = encode(tok, prompt, True)
        t = encode(tok, " " + target, False)
        infos.append((prompt, target, p, t, len(p) + len(t) - 1))
    for combo in itertools.combinations(infos, 3):
        lens = [c[4] for c in combo]
        tlens = [len(c[3]) for c in combo]
        if len(set(lens)) != 3 or not all(1 <= n <= 4 for n in tlens):
            continue
        # distinct target lengths (one single-token target) and prompts of >= 2 tokens
        if len(set(tlens)) != 3 or 1 not in tlens or min(len(c[2]) for c in combo) < 2:
            continue
        if family == "gemma2":
            # longer than the sliding window (4) and pad runs < window so no query row of
            # a sliding layer is fully masked (keeps even pad-position logits well defined).
            if min(lens) < 8 or max(lens) - min(lens) > 3:
                continue
        elif max(lens) - min(lens) < 2:
            continue
        return list(combo)
    raise RuntimeError(f"no suitable batch for {family}: {[(c[0], c[4], len(c[3])) for c in infos]}")


def make_batch(combo):
    T = max(c[4] for c in combo)
    B = len(combo)
    input_ids = torch.full((B, T), PAD_ID, dtype=torch.int64)
    attention_mask = torch.zeros((B, T), dtype=torch.int64)
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for b, (_, _, p, t, n) in enumerate(combo):
        ids = p + t[:-1]
        lab = [-100] * (len(p) - 1) + t
        assert len(ids) == len(lab) == n
        input_ids[b, :n] = torch.tensor(ids)
        attention_mask[b, :n] = 1
        labels[b, :n] = torch.tensor(lab)
    return input_ids, attention_mask, labels


def run_goldens(model, family, edited, input_ids, attention_mask, labels):
    modules = dict(model.named_modules())
    caps = {}

    def make_hook(name):
        def hook(mod, inputs, output):
            output.retain_grad()
            caps[name] = (inputs[0], output)
        return hook

    handles = [modules[n].register_forward_hook(make_hook(n)) for n in edited]
    model.zero_grad(set_to_none=True)
    out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    logits = out.logits
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    for h in handles:
        h.remove()

    sel = labels != -100
    tensors = {
        "input_ids": input_ids.contiguous(),
        "attention_mask": attention_mask.contiguous(),
        "labels": labels.contiguous(),
        "logits": logits.detach().float().contiguous(),
        "loss": loss.detach().float().reshape(1).contiguous(),
    }
    checks = {}
    for name in edited:
        x, y = caps[name]
        mod = modules[name]
        if isinstance(mod, torch.nn.Linear):
            gamma = mod.weight.grad.T
        else:  # GPT-2 Conv1D: weight stored (in, out) = a x b
            assert type(mod).__name__ == "Conv1D", type(mod)
            gamma = mod.weight.grad
        gamma = gamma.detach().float().contiguous()
        keys = x.detach()[sel].float().contiguous()
        grads = y.grad.detach()[sel].float().contiguous()
        a, b = gamma.shape
        assert keys.shape[1] == a and grads.shape[1] == b
        tensors[f"keys.{name}"] = keys
        tensors[f"out_grads.{name}"] = grads
        tensors[f"gamma.{name}"] = gamma
        full = torch.einsum("tsa,tsb->ab", x.detach(), y.grad.detach())
        checks[name] = {
            "shape_ab": [a, b],
            "max_abs_gamma": gamma.abs().max().item(),
            "max_abs_diff_gamma_vs_sum_all_positions": (full - gamma).abs().max().item(),
            "max_abs_diff_gamma_vs_keysT_out_grads": (keys.T @ grads - gamma).abs().max().item(),
        }
    return tensors, loss.item(), checks


def sanity_checks(model, family, input_ids, attention_mask, logits):
    """Numbers that tell the Rust side what the goldens are sensitive to."""
    out = {}
    real = attention_mask.bool()
    with torch.no_grad():
        # Each row alone, unpadded, must give the same logits at its real positions.
        diffs = []
        for b in range(input_ids.shape[0]):
            n = int(attention_mask[b].sum())
            lb = model(input_ids=input_ids[b : b + 1, :n], use_cache=False).logits[0]
            diffs.append((lb - logits[b, :n]).abs().max().item())
        out["max_abs_diff_real_positions_vs_unpadded_rows"] = max(diffs)
        out["max_abs_logit_real_positions"] = logits[real].abs().max().item()
        if family == "gemma2":
            # How much the goldens change if a softcap is left out.
            attns = [layer.self_attn for layer in model.model.layers]
            saved = [a.attn_logit_softcapping for a in attns]
            for a in attns:
                a.attn_logit_softcapping = None
            l2 = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
            for a, v in zip(attns, saved):
                a.attn_logit_softcapping = v
            out["max_abs_diff_without_attn_softcap"] = (l2 - logits)[real].abs().max().item()
            fcap = model.config.final_logit_softcapping
            model.config.final_logit_softcapping = None
            l3 = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
            model.config.final_logit_softcapping = fcap
            out["max_abs_diff_without_final_softcap"] = (l3 - logits)[real].abs().max().item()
            l4 = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
            assert torch.equal(l4, logits)
            # Sliding window matters: the same model with the window disabled.
            sw = model.config.sliding_window
            model.config.sliding_window = 10**6
            for a in attns:
                if a.sliding_window is not None:
                    a.sliding_window = 10**6
            l5 = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
            model.config.sliding_window = sw
            for a in attns:
                if a.sliding_window is not None:
                    a.sliding_window = sw
            out["max_abs_diff_without_sliding_window"] = (l5 - logits)[real].abs().max().item()
        if family == "llama":
            cfg = model.config
            d = cfg.head_dim
            theta = cfg.rope_parameters["rope_theta"]
            out["rope_inv_freq_unscaled"] = (
                1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
            ).tolist()
    return out


def rope_inv_freq(model, family, config):
    if family == "gptj":
        d = config.rotary_dim
        return 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.int64) / d))
    return model.model.rotary_emb.inv_freq.detach().float().clone()


README = """\
# LLM golden fixtures

Generated by `scripts/goldens/run.sh` (do not edit by hand; rerun the script).
Source of truth: Hugging Face `transformers` {transformers} + PyTorch {torch}
(CPU, fp32, eval mode, eager attention), `tokenizers` {tokenizers},
`safetensors` {safetensors}, `numpy` {numpy}. Output is deterministic.

One directory per family: `gpt2/`, `gptj/`, `llama/`, `gemma2/`.

| file | content |
| --- | --- |
| `config.json`, `model.safetensors` | tiny random-weight model, `save_pretrained` (fp32; tied `lm_head` is not stored) |
| `tokenizer.json` | tiny tokenizer in the family's format, trained on a built-in corpus |
| `tokenizer_config.json` | lets `AutoTokenizer.from_pretrained(dir)` load it (`PreTrainedTokenizerFast`) |
| `golden.safetensors` | `input_ids`, `attention_mask`, `labels` (B x T, int64), `logits` (B x T x V), `loss` ([1]), and per edited module `keys.<m>` (N x a), `out_grads.<m>` (N x b), `gamma.<m>` (a x b); `rope.inv_freq` for rotary families |
| `golden.json` | metadata: batch (prompt, target, ids), edited modules, loss, versions, layer types, sanity numbers |
| `tokens.json` | expected ids for ~40 (prompt, target) pairs: `prompt_ids` = encode(prompt, add_special_tokens=True), `target_ids` = encode(" " + target, add_special_tokens=False) |

Batch rule: input_ids = P + T[:-1], labels = [-100]*(len(P)-1) + T, right-padded with id 0
(attention_mask 0, labels -100 on pads). `loss` = cross_entropy(logits.view(-1, V), labels.view(-1),
ignore_index=-100) with no extra shift. `keys`/`out_grads` are the module input and the gradient of the
loss w.r.t. the module output at positions with labels != -100 (batch-major, then position). `gamma` is
the full weight gradient (in x out), i.e. summed over all positions.
"""


def write_readme() -> None:
    (OUT_ROOT / "README.md").write_text(README.format(
        transformers=transformers.__version__, torch=torch.__version__,
        tokenizers=tokenizers.__version__, safetensors=safetensors.__version__, numpy=np.__version__,
    ))


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    corpus = build_corpus()
    OUT_ROOT.mkdir(parents=True, exist_ok=True)
    toks = {kind: make_tokenizer(kind, corpus) for kind in ("gpt2", "llama", "gemma")}
    report = {}
    all_problems = []
    for fi, (family, spec) in enumerate(FAMILIES.items()):
        print(f"== {family}")
        out_dir = OUT_ROOT / family
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        tok, special = toks[spec["tokenizer"]]
        vocab_size = tok.get_vocab_size(with_added_tokens=True)
        write_tokenizer(tok, special, spec["tokenizer"], out_dir)

        config = make_config(family, vocab_size, special)
        model = build_model(config, SEED + 100 * fi)
        model.save_pretrained(str(out_dir), safe_serialization=True)
        for junk in ("generation_config.json",):
            (out_dir / junk).unlink(missing_ok=True)

        # Reload from disk so the goldens are exactly what the saved files produce.
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(
            str(out_dir), attn_implementation="eager", dtype=torch.float32
        )
        reloaded.eval()
        assert reloaded.config._attn_implementation == "eager"
        sd0, sd1 = model.state_dict(), reloaded.state_dict()
        for k in sd0:
            assert torch.equal(sd0[k], sd1[k]), k
        tied = reloaded.get_output_embeddings().weight.data_ptr() == reloaded.get_input_embeddings().weight.data_ptr()

        problems = tokens_json(tok, out_dir, out_dir, spec["tokenizer"])
        all_problems += [f"{family}: {p}" for p in problems]

        combo = choose_batch(tok, family)
        input_ids, attention_mask, labels = make_batch(combo)
        tensors, loss, checks = run_goldens(reloaded, family, spec["edited"], input_ids, attention_mask, labels)
        if family != "gpt2":
            tensors["rope.inv_freq"] = rope_inv_freq(reloaded, family, reloaded.config).float().contiguous()
        save_file(tensors, str(out_dir / "golden.safetensors"), metadata={"family": family})

        # sanity: reload goldens and compare against the in-memory (un-reloaded) model too
        with torch.no_grad():
            l2 = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        assert torch.equal(l2, tensors["logits"]), "in-memory vs reloaded logits differ"
        back = load_file(str(out_dir / "golden.safetensors"))
        assert set(back) == set(tensors)

        extra_checks = sanity_checks(reloaded, family, input_ids, attention_mask, tensors["logits"])

        saved_names = sorted(load_file(str(out_dir / "model.safetensors")).keys())
        cfg = reloaded.config
        layer_types = getattr(cfg, "layer_types", None)
        meta = {
            "family": family,
            "model_type": cfg.model_type,
            "architectures": cfg.architectures,
            "edited_modules": spec["edited"],
            "edited_module_shapes": {n: checks[n]["shape_ab"] for n in spec["edited"]},
            "edited_module_kind": {
                n: ("Conv1D" if family == "gpt2" else "Linear") for n in spec["edited"]
            },
            "vocab_size": cfg.vocab_size,
            "tokenizer_vocab_size": vocab_size,
            "bos_token_id": special["bos_token_id"],
            "eos_token_id": special["eos_token_id"],
            "pad_id_in_batch": PAD_ID,
            "tied_embeddings": bool(tied),
            "lm_head_in_model_safetensors": any(n.startswith("lm_head.") for n in saved_names),
            "batch": [
                {"prompt": c[0], "target": c[1], "prompt_ids": c[2], "target_ids": c[3], "length": c[4]}
                for c in combo
            ],
            "batch_shape": list(input_ids.shape),
            "num_labeled_positions": int((labels != -100).sum()),
            "loss": loss,
            "max_abs_logit": tensors["logits"].abs().max().item(),
            "gamma_checks": checks,
            "layer_types": layer_types,
            "sliding_layers": (
                [i for i, t in enumerate(layer_types) if t == "sliding_attention"] if layer_types else None
            ),
            "sliding_window": getattr(cfg, "sliding_window", None) if family == "gemma2" else None,
            "rope_inv_freq": tensors["rope.inv_freq"].tolist() if "rope.inv_freq" in tensors else None,
            "checks": extra_checks,
            "notes": [
                "labels are already shifted: loss = cross_entropy(logits.view(-1,V), labels.view(-1), ignore_index=-100)",
                "keys/out_grads: module input / dloss/d(module output) at positions with labels != -100, batch-major",
                "gamma: full weight gradient in a x b (in x out) orientation; it sums over ALL positions "
                "(prompt positions get gradient through attention), so it is NOT keys^T @ out_grads",
                "logits at padded positions are what HF computes (pads attend to earlier real tokens); "
                "compare logits only where attention_mask == 1 if your masking differs",
                "position_ids were not passed: HF default arange(T) for every row",
            ],
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "tokenizers_version": tokenizers.__version__,
            "safetensors_version": safetensors.__version__,
            "numpy_version": np.__version__,
        }
        (out_dir / "golden.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        report[family] = {
            "vocab": vocab_size, "loss": loss, "batch_shape": list(input_ids.shape),
            "tied": tied, "saved": saved_names, "layer_types": layer_types,
        }
        print(f"  vocab={vocab_size} batch={list(input_ids.shape)} loss={loss:.6f} tied={tied}")
        print(f"  lens={[c[4] for c in combo]} target_lens={[len(c[3]) for c in combo]}")
        for n, c in checks.items():
            print(f"  {n}: {c}")
        print(f"  checks: {extra_checks}")

    write_readme()
    print("== tokenizer disagreements:", len(all_problems))
    for p in all_problems:
        print("  ", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
