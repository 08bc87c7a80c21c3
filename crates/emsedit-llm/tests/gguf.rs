//! The GGUF reader, dequantization and converter on inputs built by hand: one block of each
//! quant type with known values, malformed files, and a tiny LLaMA written as GGUF the way
//! llama.cpp does (Q/K rows permuted) and converted back.

use std::path::{Path, PathBuf};

use emsedit_llm::gguf::quant::{GgmlType, dequantize};
use emsedit_llm::gguf::{GgufError, GgufFile, convert_gguf};
use emsedit_llm::{Batch, CausalLm, IGNORE, LmTokenizer};
use emsedit_tensor::{Cpu, cpu};
use half::f16;
use safetensors::SafeTensors;

fn h(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

/// Packs 32 4-bit values as ggml does: low nibbles hold values 0..16, high nibbles 16..32.
fn pack_nibbles(q: &[u8; 32]) -> [u8; 16] {
    std::array::from_fn(|j| q[j] | (q[j + 16] << 4))
}

/// Checks `dequantize(ty, block) == want` exactly, and that a partial block is refused.
fn check(ty: GgmlType, block: &[u8], want: &[f64]) {
    assert_eq!(block.len(), ty.type_size(), "{ty:?} block size");
    let got = dequantize(ty, block).unwrap();
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_eq!(got, want, "{ty:?}");
    // Every expected value is exactly representable, so f64 and f32 agree.
    assert!(
        want.iter()
            .zip(&got)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert!(dequantize(ty, &block[..block.len() - 1]).is_none());
}

#[test]
fn float_types_dequantize_exactly() {
    let vals = [1.5f32, -2.25, 0.0, 65504.0];
    let f32_bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(dequantize(GgmlType::F32, &f32_bytes).unwrap(), vals);
    let f16_bytes: Vec<u8> = vals.iter().flat_map(|&v| h(v)).collect();
    assert_eq!(dequantize(GgmlType::F16, &f16_bytes).unwrap(), vals);
    let bf16_bytes: Vec<u8> = [1.5f32, -2.25, 0.0, 3.0e38]
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    let got = dequantize(GgmlType::BF16, &bf16_bytes).unwrap();
    assert_eq!(&got[..3], &[1.5, -2.25, 0.0]);
}

#[test]
fn q4_0_block() {
    let q: [u8; 32] = std::array::from_fn(|i| (i % 16) as u8);
    let mut b = h(0.5).to_vec();
    b.extend(pack_nibbles(&q));
    let want: Vec<f64> = q.iter().map(|&q| (q as f64 - 8.0) * 0.5).collect();
    check(GgmlType::Q4_0, &b, &want);
}

#[test]
fn q4_1_block() {
    let q: [u8; 32] = std::array::from_fn(|i| (15 - i % 16) as u8);
    let mut b = h(0.25).to_vec();
    b.extend(h(-1.5));
    b.extend(pack_nibbles(&q));
    let want: Vec<f64> = q.iter().map(|&q| q as f64 * 0.25 - 1.5).collect();
    check(GgmlType::Q4_1, &b, &want);
}

/// The 4 + 16 bytes after the scales of a Q5 block: the fifth bits (bit i of a u32 is value
/// i's), then the packed low nibbles.
fn pack_q5(q: &[u8; 32]) -> Vec<u8> {
    let high = (0..32).fold(0u32, |acc, i| acc | (((q[i] >> 4) as u32) << i));
    let low: [u8; 32] = std::array::from_fn(|i| q[i] & 0x0F);
    let mut b = high.to_le_bytes().to_vec();
    b.extend(pack_nibbles(&low));
    b
}

#[test]
fn q5_0_block() {
    let q: [u8; 32] = std::array::from_fn(|i| ((i * 7) % 32) as u8);
    let mut b = h(0.125).to_vec();
    b.extend(pack_q5(&q));
    let want: Vec<f64> = q.iter().map(|&q| (q as f64 - 16.0) * 0.125).collect();
    check(GgmlType::Q5_0, &b, &want);
}

#[test]
fn q5_1_block() {
    let q: [u8; 32] = std::array::from_fn(|i| (31 - i) as u8);
    let mut b = h(0.5).to_vec();
    b.extend(h(2.0));
    b.extend(pack_q5(&q));
    let want: Vec<f64> = q.iter().map(|&q| q as f64 * 0.5 + 2.0).collect();
    check(GgmlType::Q5_1, &b, &want);
}

#[test]
fn q8_0_block() {
    let q: [i8; 32] = std::array::from_fn(|i| (i as i32 * 9 - 128) as i8);
    let mut b = h(0.0625).to_vec();
    b.extend(q.iter().map(|&q| q as u8));
    let want: Vec<f64> = q.iter().map(|&q| q as f64 * 0.0625).collect();
    check(GgmlType::Q8_0, &b, &want);
}

/// The 12 packed bytes of eight 6-bit scales and minima (inverse of `get_scale_min_k4`).
fn pack_k_scales(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
    }
    s
}

const K_SC: [u8; 8] = [3, 11, 19, 27, 35, 43, 51, 63];
const K_M: [u8; 8] = [63, 58, 53, 48, 17, 9, 1, 0];

/// Values of a Q4_K/Q5_K block: sub-block j = i / 32 has scale d·sc[j] and minimum dmin·m[j].
fn k_want(q: &[u8], d: f64, dmin: f64) -> Vec<f64> {
    q.iter()
        .enumerate()
        .map(|(i, &q)| d * K_SC[i / 32] as f64 * q as f64 - dmin * K_M[i / 32] as f64)
        .collect()
}

#[test]
fn q4_k_block() {
    let q: Vec<u8> = (0..256).map(|i| ((i * 5 + i / 32) % 16) as u8).collect();
    let mut b = h(0.5).to_vec();
    b.extend(h(0.25));
    b.extend(pack_k_scales(&K_SC, &K_M));
    // 32-byte chunk c: low nibbles are sub-block 2c, high nibbles sub-block 2c + 1.
    for c in 0..4 {
        b.extend((0..32).map(|l| q[64 * c + l] | (q[64 * c + 32 + l] << 4)));
    }
    check(GgmlType::Q4_K, &b, &k_want(&q, 0.5, 0.25));
}

#[test]
fn q5_k_block() {
    let q: Vec<u8> = (0..256).map(|i| ((i * 11 + i / 32) % 32) as u8).collect();
    let mut b = h(0.25).to_vec();
    b.extend(h(0.5));
    b.extend(pack_k_scales(&K_SC, &K_M));
    // qh[l] bit j is the fifth bit of sub-block j's value l.
    b.extend((0..32).map(|l| (0..8).fold(0u8, |acc, j| acc | ((q[32 * j + l] >> 4) << j))));
    for c in 0..4 {
        b.extend((0..32).map(|l| (q[64 * c + l] & 0x0F) | ((q[64 * c + 32 + l] & 0x0F) << 4)));
    }
    check(GgmlType::Q5_K, &b, &k_want(&q, 0.25, 0.5));
}

#[test]
fn q6_k_block() {
    let q: Vec<u8> = (0..256).map(|i| ((i * 13 + i / 64) % 64) as u8).collect();
    let sc: [i8; 16] = std::array::from_fn(|k| (k as i32 * 9 - 70) as i8);
    let (mut ql, mut qh) = (vec![0u8; 128], vec![0u8; 64]);
    // Value 128h + 32g + l: low bits in ql[64h + l + 32(g % 2)] (low nibble for g < 2),
    // top bits at bit 2g of qh[32h + l].
    for (v, &q) in q.iter().enumerate() {
        let (half, g, l) = (v / 128, (v % 128) / 32, v % 32);
        let byte = 64 * half + l + 32 * (g % 2);
        ql[byte] |= if g < 2 { q & 0x0F } else { (q & 0x0F) << 4 };
        qh[32 * half + l] |= (q >> 4) << (2 * g);
    }
    let mut b = ql;
    b.extend(qh);
    b.extend(sc.iter().map(|&s| s as u8));
    b.extend(h(0.25));
    let want: Vec<f64> = q
        .iter()
        .enumerate()
        .map(|(v, &q)| 0.25 * sc[v / 16] as f64 * (q as f64 - 32.0))
        .collect();
    check(GgmlType::Q6_K, &b, &want);
}

#[test]
fn several_blocks_concatenate() {
    let block = |d: f32| {
        let mut b = h(d).to_vec();
        b.extend([0x21u8; 32]);
        b
    };
    let mut two = block(1.0);
    two.extend(block(-2.0));
    let got = dequantize(GgmlType::Q8_0, &two).unwrap();
    assert_eq!(got.len(), 64);
    assert!(got[..32].iter().all(|&v| v == 33.0));
    assert!(got[32..].iter().all(|&v| v == -66.0));
}

// ------------------------------------------------------------------ a GGUF writer for tests

enum Meta {
    U32(u32),
    U64(u64),
    F32(f32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

/// A GGUF v3 file: metadata, then tensors as (name, dims fastest-first, type id, raw bytes).
fn gguf_bytes(meta: &[(&str, Meta)], tensors: &[(String, Vec<u64>, u32, Vec<u8>)]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in meta {
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
            Meta::U64(v) => {
                b.extend(10u32.to_le_bytes());
                b.extend(v.to_le_bytes());
            }
            Meta::Bool(v) => {
                b.extend(7u32.to_le_bytes());
                b.push(*v as u8);
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
    let mut offsets = Vec::new();
    for (name, dims, ty, data) in tensors {
        put_str(&mut b, name);
        b.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(ty.to_le_bytes());
        b.extend(offset.to_le_bytes());
        offsets.push(offset);
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    for (_, _, _, data) in tensors {
        b.extend(data);
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
    }
    b
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-gguf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn small_file() -> Vec<u8> {
    let q8 = {
        let mut b = h(0.5).to_vec();
        b.extend((0..32).map(|i| i as u8));
        b
    };
    gguf_bytes(
        &[
            ("general.architecture", Meta::Str("llama".into())),
            ("llama.block_count", Meta::U32(2)),
        ],
        &[
            (
                "a.weight".into(),
                vec![2, 2],
                0,
                [1.0f32, 2.0, 3.0, 4.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            ("b.weight".into(), vec![32], 8, q8),
        ],
    )
}

fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::parse(Path::new("model.gguf"), bytes)
}

#[test]
fn reads_metadata_and_tensors() {
    let g = parse(small_file()).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.str("general.architecture").unwrap(), "llama");
    assert_eq!(g.uint("llama.block_count").unwrap(), 2);
    assert_eq!(g.tensors().len(), 2);
    assert_eq!(g.tensor("a.weight").unwrap().shape(), vec![2, 2]);
    assert_eq!(g.dequantize("a.weight").unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    let b = g.dequantize("b.weight").unwrap();
    assert_eq!(b[3], 1.5);
    // Wrong types and absent keys name the key.
    let e = g.str("llama.block_count").unwrap_err();
    assert!(matches!(e, GgufError::Metadata { .. }), "{e}");
    assert!(e.to_string().contains("`llama.block_count`"), "{e}");
    let e = g.uint("llama.context_length").unwrap_err();
    assert!(e.to_string().contains("model.gguf") && e.to_string().contains("llama.context_length"));
    let e = g.dequantize("c.weight").unwrap_err();
    assert!(matches!(e, GgufError::MissingTensor { .. }) && e.to_string().contains("c.weight"));
}

#[test]
fn bad_magic_is_named() {
    let mut bytes = small_file();
    bytes[..4].copy_from_slice(b"GGML");
    let e = parse(bytes).unwrap_err();
    assert!(matches!(e, GgufError::BadMagic { .. }), "{e}");
    assert!(
        e.to_string().contains("model.gguf") && e.to_string().contains("GGML"),
        "{e}"
    );
    let e = parse(b"GG".to_vec()).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
}

#[test]
fn unsupported_version_is_named() {
    let mut bytes = small_file();
    bytes[4..8].copy_from_slice(&7u32.to_le_bytes());
    let e = parse(bytes).unwrap_err();
    assert!(matches!(e, GgufError::Version { version: 7, .. }), "{e}");
}

#[test]
fn truncation_anywhere_is_an_error_naming_what_was_read() {
    let full = small_file();
    for cut in 0..full.len() {
        // The tail past the last tensor's data is padding only.
        let e = match parse(full[..cut].to_vec()) {
            Err(e) => e,
            Ok(_) => {
                assert!(
                    cut >= full.len() - 30,
                    "cut at {cut} of {} parsed",
                    full.len()
                );
                continue;
            }
        };
        assert!(matches!(e, GgufError::Truncated { .. }), "cut {cut}: {e}");
        assert!(e.to_string().contains("model.gguf"), "{e}");
    }
    // Cut inside the metadata value: the message names the key.
    let at = full
        .windows(17)
        .position(|w| w == b"llama.block_count")
        .unwrap()
        + 17
        + 4
        + 2;
    let e = parse(full[..at].to_vec()).unwrap_err();
    assert!(e.to_string().contains("`llama.block_count`"), "{e}");
    // Cut inside the tensor data: the message names the tensor.
    let e = parse(full[..full.len() - 40].to_vec()).unwrap_err();
    assert!(e.to_string().contains("b.weight"), "{e}");
}

#[test]
fn huge_lengths_are_refused_without_allocating() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend(u64::MAX.to_le_bytes()); // key length
    let e = parse(bytes).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("key of metadata entry 0"), "{e}");
}

fn with_tensor_type(id: u32) -> Vec<u8> {
    gguf_bytes(&[], &[("odd.weight".into(), vec![256], id, vec![0u8; 256])])
}

#[test]
fn unknown_and_unsupported_tensor_types_are_named() {
    let e = parse(with_tensor_type(99)).unwrap_err();
    assert!(matches!(e, GgufError::TensorType { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("odd.weight") && msg.contains("unknown tensor type id 99"),
        "{msg}"
    );
    let e = parse(with_tensor_type(10)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("odd.weight") && msg.contains("Q2_K"), "{msg}");
}

#[test]
fn unknown_metadata_type_and_bad_shapes_are_named() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    put_str(&mut bytes, "general.odd");
    bytes.extend(42u32.to_le_bytes());
    let e = parse(bytes).unwrap_err();
    assert!(
        e.to_string().contains("`general.odd`") && e.to_string().contains("42"),
        "{e}"
    );
    // 40 values are not a whole number of Q8_0 blocks.
    let e = parse(gguf_bytes(&[], &[("w".into(), vec![40], 8, vec![0u8; 68])])).unwrap_err();
    assert!(
        e.to_string().contains("`w`") && e.to_string().contains("blocks"),
        "{e}"
    );
}

// ------------------------------------------------------------------ converting a tiny LLaMA

fn fixture(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/llm")
        .join(family)
}

/// llama.cpp's `permute` (convert_hf_to_gguf.py): rows (heads, 2, d/2) → (heads, d/2, 2).
fn permute(w: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let hd = rows / heads;
    let mut out = vec![0.0; w.len()];
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..hd / 2 {
                let (src, dst) = (h * hd + j * hd / 2 + i, h * hd + 2 * i + j);
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn tiny_llama_round_trips_through_gguf() {
    let src = std::fs::read(fixture("llama").join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&src).unwrap();
    let (heads, kv_heads, layers, vocab) = (4usize, 2usize, 3usize, 482usize);
    let hf_to_gguf = |name: &str| -> String {
        let map = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
        ];
        if let Some((_, g)) = map.iter().find(|(h, _)| *h == name) {
            return g.to_string();
        }
        let rest = name.strip_prefix("model.layers.").unwrap();
        let (i, rest) = rest.split_once('.').unwrap();
        let part = match rest {
            "input_layernorm.weight" => "attn_norm",
            "post_attention_layernorm.weight" => "ffn_norm",
            "self_attn.q_proj.weight" => "attn_q",
            "self_attn.k_proj.weight" => "attn_k",
            "self_attn.v_proj.weight" => "attn_v",
            "self_attn.o_proj.weight" => "attn_output",
            "mlp.gate_proj.weight" => "ffn_gate",
            "mlp.up_proj.weight" => "ffn_up",
            "mlp.down_proj.weight" => "ffn_down",
            other => panic!("unexpected {other}"),
        };
        format!("blk.{i}.{part}.weight")
    };
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let mut data = f32s(view.data());
        if name.ends_with("q_proj.weight") {
            data = permute(&data, shape[0], shape[1], heads);
        } else if name.ends_with("k_proj.weight") {
            data = permute(&data, shape[0], shape[1], kv_heads);
        }
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((hf_to_gguf(&name), dims, 0u32, bytes));
    }
    // A byte-level vocabulary: "a", "b", the merge "a b", then fillers and two controls.
    let mut tokens: Vec<String> = vec!["a".into(), "b".into(), "ab".into(), "Ġ".into()];
    tokens.extend((tokens.len()..vocab - 2).map(|i| format!("t{i}")));
    tokens.extend(["<s>".to_string(), "</s>".to_string()]);
    let mut types = vec![1; vocab - 2];
    types.extend([3, 3]);
    let meta = [
        ("general.architecture", Meta::Str("llama".into())),
        ("llama.block_count", Meta::U32(layers as u32)),
        ("llama.context_length", Meta::U32(64)),
        ("llama.embedding_length", Meta::U32(48)),
        ("llama.feed_forward_length", Meta::U32(67)),
        ("llama.attention.head_count", Meta::U32(heads as u32)),
        ("llama.attention.head_count_kv", Meta::U32(kv_heads as u32)),
        ("llama.rope.dimension_count", Meta::U32(12)),
        ("llama.rope.freq_base", Meta::F32(500000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("tokenizer.ggml.model", Meta::Str("gpt2".into())),
        ("tokenizer.ggml.pre", Meta::Str("smollm".into())),
        ("tokenizer.ggml.tokens", Meta::Strs(tokens)),
        ("tokenizer.ggml.token_type", Meta::I32s(types)),
        ("tokenizer.ggml.merges", Meta::Strs(vec!["a b".into()])),
        ("tokenizer.ggml.bos_token_id", Meta::U32(480)),
        ("tokenizer.ggml.eos_token_id", Meta::U32(481)),
        ("tokenizer.ggml.add_bos_token", Meta::Bool(true)),
    ];
    let dir = scratch("llama");
    let path = dir.join("tiny.gguf");
    std::fs::write(&path, gguf_bytes(&meta, &tensors)).unwrap();
    let out = dir.join("hf");
    let mut calls = 0;
    let converted = convert_gguf(&path, &out, &mut |_, _| calls += 1).unwrap();
    assert_eq!(converted.arch, "llama");
    assert_eq!(converted.tensors, st.len());
    assert_eq!(calls, st.len());

    // Every tensor comes back bit for bit, Q/K rows in HF order again.
    let back = std::fs::read(out.join("model.safetensors")).unwrap();
    let back = SafeTensors::deserialize(&back).unwrap();
    for (name, view) in st.tensors() {
        let got = back.tensor(&name).unwrap();
        assert_eq!(got.shape(), view.shape(), "{name}");
        assert_eq!(got.data(), view.data(), "{name}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["rms_norm_eps"], serde_json::json!(1e-5));
    assert_eq!(config["tie_word_embeddings"], serde_json::json!(false));
    assert_eq!(config["num_key_value_heads"], serde_json::json!(2));
    // transformers reads the tokenizer as tokenizer.json encodes, with its special tokens.
    let side = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let tc = side("tokenizer_config.json");
    assert_eq!(tc["tokenizer_class"], "PreTrainedTokenizerFast");
    assert_eq!(
        (tc["bos_token"].as_str(), tc["eos_token"].as_str()),
        (Some("<s>"), Some("</s>"))
    );
    assert_eq!(tc["add_bos_token"], true);
    assert_eq!(side("generation_config.json")["eos_token_id"], 481);

    // The converted directory loads; with the fixture's config (llama3 rope scaling) its logits
    // equal the fixture's.
    std::fs::copy(
        fixture("llama").join("config.json"),
        out.join("config.json"),
    )
    .unwrap();
    let batch = Batch {
        batch: 1,
        time: 5,
        input_ids: vec![1, 7, 42, 480, 3],
        attention_mask: vec![1; 5],
        labels: vec![IGNORE; 5],
    };
    let logits = |dir: &Path| -> Vec<f32> {
        let lm = CausalLm::<Cpu>::load(dir, &cpu()).unwrap();
        lm.forward(&batch)
            .unwrap()
            .into_data()
            .into_vec::<f32>()
            .unwrap()
    };
    assert_eq!(logits(&out), logits(&fixture("llama")));

    // The rebuilt tokenizer: the merge applies, BOS is added to prompts.
    let tok = LmTokenizer::load_dir(&out).unwrap();
    assert_eq!(tok.encode_prompt("ab").unwrap(), vec![480, 2]);
    assert_eq!(tok.encode_target("ab").unwrap(), vec![3, 2]);
    assert_eq!(tok.decode(&[480, 2, 0]).unwrap(), "aba");
}

#[test]
fn unsupported_architecture_and_tensor_are_named() {
    let dir = scratch("arch");
    let path = dir.join("x.gguf");
    std::fs::write(
        &path,
        gguf_bytes(&[("general.architecture", Meta::Str("mamba".into()))], &[]),
    )
    .unwrap();
    let e = convert_gguf(&path, &dir.join("out"), &mut |_, _| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("x.gguf") && msg.contains("general.architecture") && msg.contains("mamba"),
        "{msg}"
    );
    let e = convert_gguf(&dir.join("absent.gguf"), &dir.join("out"), &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(e, GgufError::Io { .. }) && e.to_string().contains("absent.gguf"),
        "{e}"
    );
}

#[test]
fn gemma3_config_reads_both_rope_spellings() {
    use emsedit_llm::ModelConfig;
    let dir = scratch("gemma3cfg");
    let base = serde_json::json!({
        "model_type": "gemma3_text", "vocab_size": 16, "hidden_size": 8, "intermediate_size": 12,
        "num_hidden_layers": 7, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
        "max_position_embeddings": 32, "query_pre_attn_scalar": 4, "sliding_window": 4,
    });
    let load = |extra: serde_json::Value| {
        let mut json = base.clone();
        json.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let path = dir.join("config.json");
        std::fs::write(&path, json.to_string()).unwrap();
        ModelConfig::load(&path)
    };
    let v4 = load(serde_json::json!({"rope_theta": 1e6, "rope_local_base_freq": 1e4})).unwrap();
    let v5 = load(serde_json::json!({"rope_parameters": {
        "full_attention": {"rope_type": "default", "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
    }}))
    .unwrap();
    for config in [v4, v5] {
        let ModelConfig::Gemma2(c) = config else {
            panic!("not a Gemma config")
        };
        assert!(c.gemma3);
        assert_eq!(c.rope().rope_theta, Some(1e6));
        assert_eq!(c.local_rope().rope_theta, Some(1e4));
        // Without layer_types every sixth layer is global.
        let sliding: Vec<bool> = (0..7).map(|i| c.is_sliding(i)).collect();
        assert_eq!(sliding, [true, true, true, true, true, false, true]);
    }
    let e = load(serde_json::json!({"rope_scaling": {"rope_type": "linear", "factor": 8.0}}))
        .unwrap_err();
    assert!(e.to_string().contains("rope_scaling"), "{e}");
}

/// The metadata of a small LLaMA GGUF with one key replaced, and one tensor.
fn llama_meta_file(tag: &str, key: &str, value: Meta, arch: &str) -> PathBuf {
    let k = |s: &str| format!("{arch}.{s}");
    let mut meta: Vec<(String, Meta)> = vec![
        ("general.architecture".into(), Meta::Str(arch.into())),
        (k("block_count"), Meta::U32(1)),
        (k("context_length"), Meta::U32(64)),
        (k("embedding_length"), Meta::U32(48)),
        (k("feed_forward_length"), Meta::U32(67)),
        (k("attention.head_count"), Meta::U32(4)),
        (k("attention.head_count_kv"), Meta::U32(2)),
        (k("attention.key_length"), Meta::U32(12)),
        (k("attention.sliding_window"), Meta::U32(4)),
        (k("rope.freq_base"), Meta::F32(10000.0)),
        (k("attention.layer_norm_rms_epsilon"), Meta::F32(1e-5)),
        (k("vocab_size"), Meta::U32(4)),
    ];
    match meta.iter_mut().find(|(name, _)| name == key) {
        Some(slot) => slot.1 = value,
        None => meta.push((key.to_string(), value)),
    }
    let meta: Vec<(&str, Meta)> = meta.into_iter().map(|(k, v)| (&*k.leak(), v)).collect();
    let tensor = ("token_embd.weight".to_string(), vec![4], 0, vec![0u8; 16]);
    let dir = scratch(tag);
    let path = dir.join("m.gguf");
    std::fs::write(&path, gguf_bytes(&meta, &[tensor])).unwrap();
    path
}

#[test]
fn counts_and_numbers_from_metadata_are_bounded_and_checked() {
    let cases = [
        ("llama", "llama.block_count", Meta::U64(u64::MAX), "layers"),
        (
            "llama",
            "llama.block_count",
            Meta::U64(1_000_000_000_000),
            "layers",
        ),
        (
            "gemma3",
            "gemma3.block_count",
            Meta::U64(2_000_000_000_000_000_000),
            "layers",
        ),
        (
            "gemma3",
            "gemma3.block_count",
            Meta::U64(u64::MAX),
            "layers",
        ),
        (
            "llama",
            "llama.rope.freq_base",
            Meta::F32(f32::NAN),
            "finite and positive",
        ),
        (
            "llama",
            "llama.attention.layer_norm_rms_epsilon",
            Meta::F32(-1e-5),
            "finite and positive",
        ),
        (
            "gemma3",
            "gemma3.rope.freq_base",
            Meta::F32(0.0),
            "finite and positive",
        ),
    ];
    for (i, (arch, key, value, expect)) in cases.into_iter().enumerate() {
        let path = llama_meta_file(&format!("bounds-{i}"), key, value, arch);
        let out = path.with_extension("hf");
        let err = convert_gguf(&path, &out, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains(key) && err.contains(expect), "{key}: {err}");
    }
}

#[test]
fn long_scalar_arrays_cost_what_the_file_does() {
    // 40 M u8 items: 40 MB in the file, kept as 40 MB of bytes (not 40 M enum values).
    let n = 40_000_000usize;
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    put_str(&mut b, "big");
    b.extend(9u32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend((n as u64).to_le_bytes());
    b.extend(std::iter::repeat_n(7u8, n));
    let g = parse(b).unwrap();
    let arr = g.array("big").unwrap();
    assert_eq!(arr.len(), n);
    match arr {
        emsedit_llm::gguf::Array::Scalars { bytes, .. } => assert_eq!(bytes.len(), n),
        other => panic!("{other:?}"),
    }
    assert_eq!(g.uints("big").unwrap()[n - 1], 7);
    assert!(
        g.strings("big")
            .unwrap_err()
            .to_string()
            .contains("array of u8")
    );
}

#[test]
fn non_utf8_names_the_key_once() {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    put_str(&mut b, "general.name");
    b.extend(8u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend([0xff, 0xfe]);
    let err = parse(b).unwrap_err().to_string();
    assert_eq!(err.matches("general.name").count(), 1, "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
}
