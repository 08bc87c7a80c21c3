//! `tokenizer.json` (the Hugging Face `tokenizers` format) rebuilt from a GGUF vocabulary, and
//! GPT-2's from OpenAI's `encoder.json` + `vocab.bpe`.
//!
//! - `tokenizer.ggml.model = "gpt2"` (byte-level BPE): the tokens are already in the byte-to-
//!   unicode alphabet and `tokenizer.ggml.merges` lists the merges in rank order; the
//!   pre-tokenizer follows `tokenizer.ggml.pre` (`smollm`: single digits, then GPT-2's regex;
//!   `gpt-2`: GPT-2's regex).
//! - `tokenizer.ggml.model = "llama"` (SentencePiece BPE, Gemma): spaces become `▁`, no
//!   pre-tokenization, merges derived from the pieces' scores as `tokenizers`' own
//!   SentencePiece converter does (every split of a piece into two pieces, ranked by the
//!   merged piece's score), byte fallback through the `<0xXX>` pieces.
//!
//! Tokens of type CONTROL (3) and USER_DEFINED (4) become added tokens (special for CONTROL);
//! `tokenizer.ggml.add_bos_token` decides whether prompts get the BOS token.

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::GgufError;
use super::reader::GgufFile;

/// GGUF token types.
const CONTROL: u64 = 3;
const USER_DEFINED: u64 = 4;

fn byte_level(trim_offsets: bool) -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": trim_offsets, "use_regex": true})
}

fn added_token(id: usize, content: &str, special: bool) -> Json {
    json!({
        "id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
        "normalized": false, "special": special,
    })
}

/// The BPE model section.
fn bpe_model(
    vocab: &[&str],
    merges: Vec<(String, String)>,
    unk: Option<&str>,
    byte_fallback: bool,
) -> Json {
    let vocab: serde_json::Map<String, Json> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    let merges: Vec<Json> = merges.into_iter().map(|(a, b)| json!([a, b])).collect();
    json!({
        "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
        "end_of_word_suffix": null, "fuse_unk": byte_fallback, "byte_fallback": byte_fallback,
        "ignore_merges": false, "vocab": vocab, "merges": merges,
    })
}

/// A post-processor adding `bos` in front of every sequence (or `fallback` without BOS).
fn post_processor(bos: Option<(&str, usize)>, fallback: Json) -> Json {
    match bos {
        None => fallback,
        Some((token, id)) => json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": token, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}
            ],
            "special_tokens": {token: {"id": token, "ids": [id], "tokens": [token]}},
        }),
    }
}

/// `tokenizer.json` for the vocabulary of a GGUF file.
pub fn from_gguf(g: &GgufFile) -> Result<Json, GgufError> {
    let model = g.str("tokenizer.ggml.model")?;
    let tokens = g.strings("tokenizer.ggml.tokens")?;
    let types = match g.get("tokenizer.ggml.token_type") {
        Some(_) => g.uints("tokenizer.ggml.token_type")?,
        None => vec![1; tokens.len()],
    };
    let bad = |key: &str, detail: String| GgufError::Metadata {
        path: g.path().to_path_buf(),
        key: key.to_string(),
        detail,
    };
    if types.len() != tokens.len() {
        return Err(bad(
            "tokenizer.ggml.token_type",
            format!("{} types for {} tokens", types.len(), tokens.len()),
        ));
    }
    let token_id = |key: &str| -> Result<Option<usize>, GgufError> {
        match g.get(key) {
            None => Ok(None),
            Some(_) => {
                let id = g.uint(key)? as usize;
                if id >= tokens.len() {
                    return Err(bad(
                        key,
                        format!("id {id} is outside the vocabulary of {}", tokens.len()),
                    ));
                }
                Ok(Some(id))
            }
        }
    };
    let bos = token_id("tokenizer.ggml.bos_token_id")?;
    let unk = token_id("tokenizer.ggml.unknown_token_id")?;
    let add_bos = g.bool_or("tokenizer.ggml.add_bos_token", false)?;
    let bos = match (add_bos, bos) {
        (true, Some(id)) => Some((tokens[id], id)),
        (true, None) => {
            return Err(GgufError::MissingKey {
                path: g.path().to_path_buf(),
                key: "tokenizer.ggml.bos_token_id".into(),
            });
        }
        (false, _) => None,
    };
    let added: Vec<Json> = types
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t == CONTROL || t == USER_DEFINED)
        .map(|(i, &t)| added_token(i, tokens[i], t == CONTROL))
        .collect();
    match model {
        "gpt2" => {
            let pre = g.str("tokenizer.ggml.pre")?;
            let pre_tokenizer = match pre {
                "smollm" => json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Digits", "individual_digits": true}, byte_level(true)
                ]}),
                "gpt-2" | "gpt2" | "default" => byte_level(true),
                other => {
                    return Err(GgufError::Unsupported {
                        path: g.path().to_path_buf(),
                        key: "tokenizer.ggml.pre".into(),
                        detail: format!(
                            "pre-tokenizer `{other}` is not supported (supported: smollm, gpt-2)"
                        ),
                    });
                }
            };
            let merges = g
                .strings("tokenizer.ggml.merges")?
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    m.split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| {
                            bad(
                                "tokenizer.ggml.merges",
                                format!("merge {i} ({m:?}) has no space"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({
                "version": "1.0", "truncation": null, "padding": null,
                "added_tokens": added,
                "normalizer": null,
                "pre_tokenizer": pre_tokenizer,
                "post_processor": post_processor(bos, byte_level(false)),
                "decoder": byte_level(true),
                "model": bpe_model(&tokens, merges, None, false),
            }))
        }
        "llama" => {
            let scores = g.floats("tokenizer.ggml.scores")?;
            if scores.len() != tokens.len() {
                return Err(bad(
                    "tokenizer.ggml.scores",
                    format!("{} scores for {} tokens", scores.len(), tokens.len()),
                ));
            }
            if g.bool_or("tokenizer.ggml.add_space_prefix", false)? {
                return Err(GgufError::Unsupported {
                    path: g.path().to_path_buf(),
                    key: "tokenizer.ggml.add_space_prefix".into(),
                    detail: "a dummy space prefix is not supported (only Gemma-style vocabularies)"
                        .into(),
                });
            }
            let merges = sentencepiece_merges(&tokens, &scores, &types);
            Ok(json!({
                "version": "1.0", "truncation": null, "padding": null,
                "added_tokens": added,
                "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
                "pre_tokenizer": null,
                "post_processor": post_processor(bos, Json::Null),
                "decoder": {"type": "Sequence", "decoders": [
                    {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                    {"type": "ByteFallback"},
                    {"type": "Fuse"}
                ]},
                "model": bpe_model(&tokens, merges, unk.map(|i| tokens[i]), true),
            }))
        }
        other => Err(GgufError::Unsupported {
            path: g.path().to_path_buf(),
            key: "tokenizer.ggml.model".into(),
            detail: format!("tokenizer model `{other}` is not supported (supported: gpt2, llama)"),
        }),
    }
}

/// The merges of a SentencePiece BPE vocabulary: every split of a normal piece into two
/// pieces of the vocabulary, ranked by the merged piece's score (highest first; ties keep
/// vocabulary order, then the split's left and right ids), as `tokenizers`'
/// `SentencePieceExtractor` does.
pub fn sentencepiece_merges(
    tokens: &[&str],
    scores: &[f64],
    types: &[u64],
) -> Vec<(String, String)> {
    // Only normal pieces (type 1) take part in merging; the first id of a duplicate wins.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        if types[i] == 1 {
            ids.entry(t).or_insert(i);
        }
    }
    let mut merges: Vec<(f64, usize, usize, usize)> = Vec::new();
    for (i, piece) in tokens.iter().enumerate() {
        if types[i] != 1 || ids.get(piece) != Some(&i) {
            continue;
        }
        let mut local = Vec::new();
        for (at, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(at);
            if let (Some(&a), Some(&b)) = (ids.get(l), ids.get(r)) {
                local.push((a, b));
            }
        }
        local.sort_unstable();
        merges.extend(local.into_iter().map(|(a, b)| (scores[i], i, a, b)));
    }
    // Stable: equal scores keep the order above.
    merges.sort_by(|x, y| y.0.total_cmp(&x.0));
    merges
        .into_iter()
        .map(|(_, _, a, b)| (tokens[a].to_string(), tokens[b].to_string()))
        .collect()
}

/// GPT-2's `tokenizer.json` (also GPT-J's) from OpenAI's `encoder.json` (token → id) and
/// `vocab.bpe` (a `#version` line, then one merge per line); errors name the file.
pub fn gpt2_from_openai(encoder_json: &str, vocab_bpe: &str) -> Result<Json, String> {
    let encoder: HashMap<String, usize> =
        serde_json::from_str(encoder_json).map_err(|e| format!("encoder.json: {e}"))?;
    let mut vocab: Vec<Option<&str>> = vec![None; encoder.len()];
    for (token, &id) in &encoder {
        match vocab.get_mut(id) {
            Some(slot @ None) => *slot = Some(token),
            Some(Some(other)) => {
                return Err(format!(
                    "encoder.json: id {id} is given to {other:?} and {token:?}"
                ));
            }
            None => {
                return Err(format!(
                    "encoder.json: id {id} of {token:?} is not below the vocabulary size {}",
                    encoder.len()
                ));
            }
        }
    }
    let vocab: Vec<&str> = vocab.into_iter().map(|t| t.unwrap_or_default()).collect();
    let merges = vocab_bpe
        .lines()
        .enumerate()
        .filter(|(i, line)| !(line.is_empty() || *i == 0 && line.starts_with("#version")))
        .map(|(i, line)| {
            line.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("vocab.bpe: line {}: {line:?} is not two tokens", i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let eot = "<|endoftext|>";
    let eot_id = *encoder
        .get(eot)
        .ok_or_else(|| format!("encoder.json: no {eot:?} token"))?;
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added_token(eot_id, eot, true)],
        "normalizer": null,
        "pre_tokenizer": byte_level(true),
        "post_processor": byte_level(false),
        "decoder": byte_level(true),
        "model": bpe_model(&vocab, merges, None, false),
    }))
}
