//! GGUF files: a small valid LLaMA file (which converts and loads), mutated.

use emsedit::llm::gguf::{GgufFile, convert_gguf};
use emsedit::{CausalLm, Cpu, cpu};
use proptest::prelude::*;

use crate::cases::{check, hostile_u64, scratch};

enum Meta {
    U32(u32),
    F32(f32),
    Str(&'static str),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

/// A LLaMA GGUF with 2 layers, width 8, 2 heads, a 6-token vocabulary, f32 tensors.
fn tiny_llama() -> Vec<u8> {
    let (d, ff, vocab, layers) = (8u64, 12u64, 6u64, 2usize);
    let tokens: Vec<String> = ["a", "b", "ab", "Ġ", "<s>", "</s>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let meta = vec![
        ("general.architecture", Meta::Str("llama")),
        ("llama.block_count", Meta::U32(layers as u32)),
        ("llama.context_length", Meta::U32(32)),
        ("llama.embedding_length", Meta::U32(d as u32)),
        ("llama.feed_forward_length", Meta::U32(ff as u32)),
        ("llama.attention.head_count", Meta::U32(2)),
        ("llama.attention.head_count_kv", Meta::U32(2)),
        ("llama.rope.freq_base", Meta::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("tokenizer.ggml.model", Meta::Str("gpt2")),
        ("tokenizer.ggml.pre", Meta::Str("smollm")),
        ("tokenizer.ggml.tokens", Meta::Strs(tokens)),
        (
            "tokenizer.ggml.token_type",
            Meta::I32s(vec![1, 1, 1, 1, 3, 3]),
        ),
        ("tokenizer.ggml.merges", Meta::Strs(vec!["a b".into()])),
        ("tokenizer.ggml.bos_token_id", Meta::U32(4)),
        ("tokenizer.ggml.eos_token_id", Meta::U32(5)),
    ];
    let mut tensors: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![d, vocab]),
        ("output_norm.weight".into(), vec![d]),
    ];
    for i in 0..layers {
        for (name, dims) in [
            ("attn_norm", vec![d]),
            ("ffn_norm", vec![d]),
            ("attn_q", vec![d, d]),
            ("attn_k", vec![d, d]),
            ("attn_v", vec![d, d]),
            ("attn_output", vec![d, d]),
            ("ffn_gate", vec![d, ff]),
            ("ffn_up", vec![d, ff]),
            ("ffn_down", vec![ff, d]),
        ] {
            tensors.push((format!("blk.{i}.{name}.weight"), dims));
        }
    }
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in &meta {
        put_str(&mut b, key);
        match value {
            Meta::U32(v) => {
                b.extend(4u32.to_le_bytes());
                b.extend(v.to_le_bytes());
            }
            Meta::F32(v) => {
                b.extend(6u32.to_le_bytes());
                b.extend(v.to_le_bytes());
            }
            Meta::Str(s) => {
                b.extend(8u32.to_le_bytes());
                put_str(&mut b, s);
            }
            Meta::Strs(items) => {
                b.extend(9u32.to_le_bytes());
                b.extend(8u32.to_le_bytes());
                b.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    put_str(&mut b, s);
                }
            }
            Meta::I32s(items) => {
                b.extend(9u32.to_le_bytes());
                b.extend(5u32.to_le_bytes());
                b.extend((items.len() as u64).to_le_bytes());
                for v in items {
                    b.extend(v.to_le_bytes());
                }
            }
        }
    }
    let mut offset = 0u64;
    let mut sizes = Vec::new();
    for (name, dims) in &tensors {
        put_str(&mut b, name);
        b.extend((dims.len() as u32).to_le_bytes());
        for x in dims {
            b.extend(x.to_le_bytes());
        }
        b.extend(0u32.to_le_bytes());
        b.extend(offset.to_le_bytes());
        let bytes = dims.iter().product::<u64>() * 4;
        sizes.push(bytes as usize);
        offset += bytes.div_ceil(32) * 32;
    }
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    for (i, size) in sizes.into_iter().enumerate() {
        b.extend((0..size / 4).flat_map(|j| (0.01 * ((i + j) % 7) as f32).to_le_bytes()));
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
    }
    b
}

/// Parses, converts and loads: each step may fail, none may panic or run away.
fn exercise(bytes: Vec<u8>) {
    let dir = scratch("gguf");
    let path = dir.join("m.gguf");
    std::fs::write(&path, &bytes).unwrap();
    if GgufFile::parse(&path, bytes).is_err() {
        return;
    }
    let out = dir.join("hf");
    if convert_gguf(&path, &out, &mut |_, _| {}).is_ok() {
        let _ = CausalLm::<Cpu>::load(&out, &cpu());
    }
}

#[test]
fn the_base_file_converts_and_loads() {
    let dir = scratch("gguf-base");
    let path = dir.join("m.gguf");
    std::fs::write(&path, tiny_llama()).unwrap();
    let out = dir.join("hf");
    convert_gguf(&path, &out, &mut |_, _| {}).unwrap();
    CausalLm::<Cpu>::load(&out, &cpu()).unwrap();
}

#[test]
fn mutated_gguf_files() {
    let base = tiny_llama();
    let len = base.len();
    let strategy = (
        0usize..3,
        any::<prop::sample::Index>(),
        hostile_u64(),
        any::<u8>(),
    );
    check(256, strategy, move |(how, at, number, byte)| {
        let mut bytes = base.clone();
        // Mutations aimed at the metadata and directory, where sizes live.
        let i = at.index(len.min(2048));
        match how {
            0 => bytes[i] = byte,
            1 => {
                let end = (i + 8).min(bytes.len());
                let n = end - i;
                bytes[i..end].copy_from_slice(&number.to_le_bytes()[..n]);
            }
            _ => bytes.truncate(at.index(len)),
        }
        exercise(bytes);
    });
}

#[test]
fn hostile_metadata_values() {
    let base = tiny_llama();
    let keys = [
        "llama.block_count",
        "llama.context_length",
        "llama.embedding_length",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "tokenizer.ggml.bos_token_id",
    ];
    check(
        64,
        (any::<prop::sample::Index>(), hostile_u64()),
        move |(key, number)| {
            // Rewrite the key's u32 value as a u64 (type 10) of the hostile number.
            let key = key.get(&keys);
            let mut name = (key.len() as u64).to_le_bytes().to_vec();
            name.extend(key.as_bytes());
            let Some(at) = base.windows(name.len()).position(|w| w == name.as_slice()) else {
                return;
            };
            let value = at + name.len();
            let mut bytes = base[..value].to_vec();
            bytes.extend(10u32.to_le_bytes());
            bytes.extend(number.to_le_bytes());
            bytes.extend(&base[value + 8..]);
            exercise(bytes);
        },
    );
}
