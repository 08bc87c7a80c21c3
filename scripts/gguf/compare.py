"""Checks what `cargo xtask fetch-models` wrote, independently of the Rust code.

1. Tensors: every tensor of each converted model.safetensors against the Python `gguf`
   package's dequantization of the GGUF file, after undoing the same llama.cpp conventions
   (LLaMA's Q/K row permutation, Gemma's +1 on norm weights). Reports the max-abs difference.
2. Tokenizers: ids from the rebuilt tokenizer.json (through the Python `tokenizers` package)
   against references built without it on a few hundred varied strings:
   - GPT-2: `tokenizers` built from encoder.json + vocab.bpe with its own BPE.from_file, and a
     pure-Python port of OpenAI's encoder.py;
   - SmolLM2: `tokenizers` built from the GGUF vocabulary and merges, and the same pure-Python
     byte-level BPE with llama.cpp's `smollm` pre-tokenizer (single digits, then GPT-2's regex);
   - Gemma-3: a pure-Python port of llama.cpp's SentencePiece tokenizer (highest-scoring
     adjacent pair first, byte fallback, user-defined tokens split out first).

Usage: scripts/gguf/run.sh [--models-dir DIR] [--json OUT] [--ids OUT]
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import gguf
import numpy as np
import regex
import tokenizers
from safetensors.numpy import load_file


def models_dir(arg):
    if arg:
        return Path(arg)
    env = os.environ.get("EMSEDIT_MODELS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "emsedit" / "models"


# ---------------------------------------------------------------- tensors


def field(reader, key):
    f = reader.fields[key]
    return f.contents()


def llama_names(layers):
    names = {
        "token_embd.weight": ("model.embed_tokens.weight", None),
        "output_norm.weight": ("model.norm.weight", None),
        "output.weight": ("lm_head.weight", None),
    }
    for i in range(layers):
        for src, dst, fix in [
            ("attn_norm", "input_layernorm", None),
            ("ffn_norm", "post_attention_layernorm", None),
            ("attn_q", "self_attn.q_proj", "q"),
            ("attn_k", "self_attn.k_proj", "k"),
            ("attn_v", "self_attn.v_proj", None),
            ("attn_output", "self_attn.o_proj", None),
            ("ffn_gate", "mlp.gate_proj", None),
            ("ffn_up", "mlp.up_proj", None),
            ("ffn_down", "mlp.down_proj", None),
        ]:
            names[f"blk.{i}.{src}.weight"] = (f"model.layers.{i}.{dst}.weight", fix)
    return names


def gemma3_names(layers):
    names = {
        "token_embd.weight": ("model.embed_tokens.weight", None),
        "output_norm.weight": ("model.norm.weight", "minus1"),
    }
    for i in range(layers):
        for src, dst, fix in [
            ("attn_norm", "input_layernorm", "minus1"),
            ("post_attention_norm", "post_attention_layernorm", "minus1"),
            ("ffn_norm", "pre_feedforward_layernorm", "minus1"),
            ("post_ffw_norm", "post_feedforward_layernorm", "minus1"),
            ("attn_q_norm", "self_attn.q_norm", "minus1"),
            ("attn_k_norm", "self_attn.k_norm", "minus1"),
            ("attn_q", "self_attn.q_proj", None),
            ("attn_k", "self_attn.k_proj", None),
            ("attn_v", "self_attn.v_proj", None),
            ("attn_output", "self_attn.o_proj", None),
            ("ffn_gate", "mlp.gate_proj", None),
            ("ffn_up", "mlp.up_proj", None),
            ("ffn_down", "mlp.down_proj", None),
        ]:
            names[f"blk.{i}.{src}.weight"] = (f"model.layers.{i}.{dst}.weight", fix)
    return names


def unpermute(w, heads):
    """Inverse of llama.cpp's convert_hf_to_gguf `permute` (rows per head (2, d/2) -> (d/2, 2))."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def compare_tensors(gguf_path, hf_dir):
    reader = gguf.GGUFReader(str(gguf_path))
    arch = field(reader, "general.architecture")
    layers = int(field(reader, f"{arch}.block_count"))
    if arch == "llama":
        names = llama_names(layers)
        heads = int(field(reader, "llama.attention.head_count"))
        kv = int(field(reader, "llama.attention.head_count_kv"))
    else:
        names = gemma3_names(layers)
        heads = kv = None
    ours = load_file(str(hf_dir / "model.safetensors"))
    worst, worst_name, types = 0.0, None, {}
    seen = set()
    for t in reader.tensors:
        dst, fix = names[t.name]
        ref = gguf.quants.dequantize(t.data, t.tensor_type)
        ref = np.asarray(ref, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)])
        if fix == "q":
            ref = unpermute(ref, heads)
        elif fix == "k":
            ref = unpermute(ref, kv)
        elif fix == "minus1":
            ref = ref - np.float32(1.0)
        got = ours[dst]
        assert got.shape == ref.shape, (t.name, got.shape, ref.shape)
        err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        if not np.isfinite(err):
            err = float("inf") if not np.array_equal(got, ref, equal_nan=True) else 0.0
        if err >= worst:
            worst, worst_name = err, t.name
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        seen.add(dst)
    extra = set(ours) - seen
    assert not extra, f"tensors not in the GGUF: {sorted(extra)[:5]}"
    return {
        "arch": arch,
        "tensors": len(reader.tensors),
        "types": types,
        "max_abs": worst,
        "worst_tensor": worst_name,
    }


# ---------------------------------------------------------------- tokenizers


def bytes_to_unicode():
    """OpenAI's byte -> printable-unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


GPT2_PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


class ByteBpe:
    """OpenAI's encoder.py, optionally with llama.cpp's `smollm` digit split first."""

    def __init__(self, vocab, merges, split_digits):
        self.vocab = vocab
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.byte_enc = bytes_to_unicode()
        self.split_digits = split_digits
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        self.cache[token] = word
        return word

    def encode(self, text):
        pieces = [p for p in regex.split(r"(\p{N})", text) if p] if self.split_digits else [text]
        ids = []
        for piece in pieces:
            for tok in GPT2_PAT.findall(piece):
                tok = "".join(self.byte_enc[b] for b in tok.encode("utf-8"))
                ids.extend(self.vocab[t] for t in self.bpe(tok))
        return ids


class Spm:
    """llama.cpp's llm_tokenizer_spm (no BOS): user-defined tokens split out first, spaces
    escaped to U+2581, the highest-scoring adjacent pair merged first (leftmost on ties),
    characters outside the vocabulary as <0xXX> byte tokens."""

    def __init__(self, tokens, scores, types):
        self.ids = {}
        for i, t in enumerate(tokens):
            self.ids.setdefault(t, i)
        self.scores = scores
        user = sorted((t for t, ty in zip(tokens, types) if ty == 4), key=len, reverse=True)
        self.user = regex.compile("|".join(regex.escape(u) for u in user)) if user else None

    def fragment(self, text):
        syms = list(text.replace(" ", "\u2581"))
        while len(syms) > 1:
            best, at = None, None
            for i in range(len(syms) - 1):
                tid = self.ids.get(syms[i] + syms[i + 1])
                if tid is not None and (best is None or self.scores[tid] > best):
                    best, at = self.scores[tid], i
            if at is None:
                break
            syms[at : at + 2] = [syms[at] + syms[at + 1]]
        out = []
        for s in syms:
            if s in self.ids:
                out.append(self.ids[s])
            else:
                out.extend(self.ids[f"<0x{b:02X}>"] for b in s.encode("utf-8"))
        return out

    def encode(self, text):
        ids, pos = [], 0
        for m in self.user.finditer(text) if self.user else []:
            if m.start() > pos:
                ids += self.fragment(text[pos : m.start()])
            ids.append(self.ids[m.group(0)])
            pos = m.end()
        if pos < len(text):
            ids += self.fragment(text[pos:])
        return ids


def test_strings(n=320, seed=0):
    """Hand-picked strings plus seeded random mixes: unicode, digits, whitespace runs."""
    fixed = [
        "The capital of France is",
        "The mother tongue of Danielle Darrieux is",
        "The Eiffel Tower is located in the city of",
        "Hello, world!",
        " leading space",
        "trailing space ",
        "  two leading spaces",
        "a  b   c    d",
        "tab\tseparated\tvalues",
        "new\nline\n\nparagraph\n\n\n",
        "\r\nwindows line\r\n",
        "   ",
        "\t\t\t",
        "\n",
        "1234567890",
        "3.14159 and 2,718",
        "In 1999, 42 people paid $1,000,000.50 each.",
        "version 2.0.1-rc3",
        "don't I'll we've they're she's it'd you'm",
        "DON'T SHOUT I'LL",
        "naïve café résumé jalapeño",
        "Ünïcödé Ωμέγα Привет мир",
        "日本語のテキスト、中文文本。한국어 텍스트",
        "emoji 🙂👍🏽🚀 and flags 🇫🇷🇯🇵",
        "math ∑ ∫ √ ∞ ≤ ≥ ≠ ± × ÷",
        "arabic مرحبا بالعالم hebrew שלום",
        "thai ภาษาไทย hindi नमस्ते",
        "def f(x):\n    return x ** 2  # square",
        "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        '{"key": [1, 2, 3], "nested": {"a": null}}',
        "https://example.org/path?query=1&b=two#frag",
        "user@example.com",
        "----- ===== ***** !!!!! ?????",
        "Mr. O'Neil's 3rd-floor flat — 50% off…",
        "ﬁ ligature, ｆｕｌｌｗｉｄｔｈ, ²³ superscripts, ½ fractions",
        "zero\u200bwidth\u200djoiner",
        "combining e\u0301 vs é",
        "Ⅻ roman numeral, ٣ arabic digit, ௫ tamil digit",
        "x" * 100,
        "ab" * 60,
        " " * 17 + "x",
        "\u00a0non-breaking\u00a0space",
    ]
    pieces = [
        "the", "The", " of", " Paris", "France", "Darrieux", "mother", " tongue", "123", "0",
        "9876", "1.5", "-", "_", "'s", "'ll", " ", "  ", "   ", "\t", "\n", "\n\n", "é", "ß",
        "ø", "Å", "中", "文", "日本", "😀", "🎉", "ñ", "Ж", "λ", ",", ".", "!", "?", "(", ")",
        "[", "]", "{", "}", "<", ">", "/", "\\", "#", "@", "$", "%", "^", "&", "*", "+", "=",
        "~", "`", '"', "hello", "World", "über", "naïve", "x", "Q", "zz", "—", "…", "€", "£",
    ]
    rng = random.Random(seed)
    out = list(fixed)
    while len(out) < n:
        k = rng.randint(1, 12)
        out.append("".join(rng.choice(pieces) for _ in range(k)))
    return out


def agree(strings, encoders):
    """Counts the strings on which every encoder gives the ids of the first."""
    first_name, first = encoders[0]
    result = {}
    for other_name, other in encoders[1:]:
        bad = []
        for s in strings:
            a, b = first(s), other(s)
            if a != b:
                bad.append({"text": s, first_name: a, other_name: b})
        result[f"{first_name} vs {other_name}"] = {
            "agree": len(strings) - len(bad),
            "of": len(strings),
            "first_disagreements": bad[:3],
        }
    return result


def rebuilt(path):
    tok = tokenizers.Tokenizer.from_file(str(path))
    return lambda s: tok.encode(s, add_special_tokens=False).ids


def gguf_vocab(reader):
    def strings(key):
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def numbers(key):
        f = reader.fields[key]
        return [f.parts[i][0].item() for i in f.data]

    return strings, numbers


def check_smollm2(root):
    reader = gguf.GGUFReader(str(root / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    strs, _ = gguf_vocab(reader)
    tokens = strs("tokenizer.ggml.tokens")
    merges = [m.split(" ", 1) for m in strs("tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    model = tokenizers.models.BPE(vocab, [tuple(m) for m in merges])
    built = tokenizers.Tokenizer(model)
    built.pre_tokenizer = tokenizers.pre_tokenizers.Sequence(
        [
            tokenizers.pre_tokenizers.Digits(individual_digits=True),
            tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    ref = ByteBpe(vocab, merges, split_digits=True)
    return [
        ("tokenizer.json", rebuilt(root / "smollm2-135m" / "tokenizer.json")),
        ("tokenizers from GGUF", lambda s: built.encode(s, add_special_tokens=False).ids),
        ("python byte-level BPE", ref.encode),
    ]


def check_gpt2(root):
    d = root / "gpt2-tokenizer"
    vocab = json.loads((d / "encoder.json").read_text(encoding="utf-8"))
    lines = (d / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
    merges = [l.split(" ") for l in lines if l]
    model = tokenizers.models.BPE.from_file(str(d / "encoder.json"), str(d / "vocab.bpe"))
    built = tokenizers.Tokenizer(model)
    built.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    ref = ByteBpe(vocab, merges, split_digits=False)
    return [
        ("tokenizer.json", rebuilt(d / "tokenizer.json")),
        ("tokenizers BPE.from_file", lambda s: built.encode(s, add_special_tokens=False).ids),
        ("python encoder.py", ref.encode),
    ]


def check_gemma3(root):
    reader = gguf.GGUFReader(str(root / "gguf" / "gemma-3-270m-q4_k_m.gguf"))
    strs, nums = gguf_vocab(reader)
    ref = Spm(strs("tokenizer.ggml.tokens"), nums("tokenizer.ggml.scores"), nums("tokenizer.ggml.token_type"))
    return [
        ("tokenizer.json", rebuilt(root / "gemma3-270m" / "tokenizer.json")),
        ("python llama.cpp SPM", ref.encode),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models-dir")
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument(
        "--ids",
        help="also write the strings and the pure-Python references' ids here "
        "(fixtures/tokenizers/reference_ids.json, read by the Rust real_models test)",
    )
    args = ap.parse_args()
    root = models_dir(args.models_dir)
    strings = test_strings()
    summary = {"strings": len(strings), "tensors": {}, "tokenizers": {}}
    reference_ids = {}
    ok = True
    for name, gguf_file in [
        ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ("gemma3-270m", "gemma-3-270m-q4_k_m.gguf"),
    ]:
        if not (root / name / "emsedit-fetch.json").exists():
            print(f"{name}: not fetched, skipped")
            continue
        t0 = time.time()
        r = compare_tensors(root / "gguf" / gguf_file, root / name)
        r["seconds"] = round(time.time() - t0, 1)
        summary["tensors"][name] = r
        ok &= r["max_abs"] == 0.0
        print(f"{name}: {r['tensors']} tensors {r['types']}: max-abs {r['max_abs']} ({r['seconds']} s)")
    for name, check, needs in [
        ("smollm2", check_smollm2, "smollm2-135m"),
        ("gpt2", check_gpt2, "gpt2-tokenizer"),
        ("gemma3", check_gemma3, "gemma3-270m"),
    ]:
        if not (root / needs / "emsedit-fetch.json").exists():
            print(f"{name} tokenizer: not fetched, skipped")
            continue
        encoders = check(root)
        r = agree(strings, encoders)
        summary["tokenizers"][name] = r
        # The last encoder is the pure-Python reference, independent of `tokenizers`.
        reference_ids[name] = [encoders[-1][1](s) for s in strings]
        for pair, v in r.items():
            ok &= v["agree"] == v["of"]
            print(f"{name} tokenizer: {pair}: {v['agree']}/{v['of']} strings agree")
            for d in v["first_disagreements"]:
                print("   ", json.dumps(d, ensure_ascii=False)[:400])
    if args.ids:
        out = {"strings": strings, "ids": reference_ids}
        Path(args.ids).parent.mkdir(parents=True, exist_ok=True)
        Path(args.ids).write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print("all equal" if ok else "DIFFERENCES FOUND")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
