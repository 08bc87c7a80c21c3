//! A small, deterministic byte-level BPE trainer (GPT-2's scheme) that writes a Hugging Face
//! `tokenizer.json`, for the embedded default model.
//!
//! Merges are learned greedily: the most frequent adjacent pair over the pre-tokenized words,
//! ties broken by the smaller pair, so the same texts always give the same file.

use std::collections::BTreeMap;

use serde_json::json;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use crate::LlmError;

/// The end-of-text token, last in the vocabulary as in GPT-2.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// GPT-2's byte-to-character table, in GPT-2's vocabulary order (printable bytes first).
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut order: Vec<(u32, char)> = Vec::with_capacity(256);
    let mut extra = 0;
    for b in 0..256u32 {
        if printable(b) {
            order.push((b, char::from_u32(b).expect("a Latin-1 code point")));
        }
    }
    for b in 0..256u32 {
        if !printable(b) {
            order.push((b, char::from_u32(256 + extra).expect("a valid code point")));
            extra += 1;
        }
    }
    order.into_iter().map(|(_, c)| c).collect()
}

fn pre_tokenize(text: &str) -> Result<Vec<String>, LlmError> {
    let mut pre = PreTokenizedString::from(text);
    ByteLevel::new(false, true, true)
        .pre_tokenize(&mut pre)
        .map_err(|e| LlmError::Batch(format!("cannot pre-tokenize {text:?}: {e}")))?;
    Ok(pre
        .get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(s, _, _)| s.to_string())
        .collect())
}

/// Learns a byte-level BPE of at most `vocab_size` tokens (256 bytes, the merges, and
/// [`END_OF_TEXT`]) from `texts`, and returns the `tokenizer.json` text. Merging stops early
/// when no pair occurs twice.
pub fn train(texts: &[&str], vocab_size: usize) -> Result<String, LlmError> {
    if vocab_size < 257 {
        return Err(LlmError::Batch(format!(
            "a byte-level BPE needs a vocabulary of at least 257 tokens, not {vocab_size}"
        )));
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for text in texts {
        for word in pre_tokenize(text)? {
            *counts.entry(word).or_default() += 1;
        }
    }
    let mut words: Vec<(Vec<String>, u64)> = counts
        .into_iter()
        .map(|(w, n)| (w.chars().map(String::from).collect(), n))
        .collect();
    let mut vocab: Vec<String> = byte_chars().into_iter().map(String::from).collect();
    let mut merges: Vec<(String, String)> = Vec::new();
    while vocab.len() + 1 < vocab_size {
        let mut pairs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (symbols, n) in &words {
            for w in symbols.windows(2) {
                *pairs.entry((&w[0], &w[1])).or_default() += n;
            }
        }
        // The first maximum in pair order.
        let Some(((a, b), count)) = pairs.into_iter().fold(
            None,
            |best: Option<((&str, &str), u64)>, (p, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((p, n)),
            },
        ) else {
            break;
        };
        if count < 2 {
            break;
        }
        let (a, b) = (a.to_string(), b.to_string());
        let merged = format!("{a}{b}");
        for (symbols, _) in &mut words {
            let mut out = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if i + 1 < symbols.len() && symbols[i] == a && symbols[i + 1] == b {
                    out.push(merged.clone());
                    i += 2;
                } else {
                    out.push(std::mem::take(&mut symbols[i]));
                    i += 1;
                }
            }
            *symbols = out;
        }
        vocab.push(merged);
        merges.push((a, b));
    }
    let eot = vocab.len();
    vocab.push(END_OF_TEXT.to_string());
    let ids: BTreeMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let byte_level = |add_prefix_space: bool, trim_offsets: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space,
               "trim_offsets": trim_offsets, "use_regex": true})
    };
    let file = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{
            "id": eot, "content": END_OF_TEXT, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": true, "special": true
        }],
        "normalizer": null,
        "pre_tokenizer": byte_level(false, true),
        "post_processor": byte_level(true, false),
        "decoder": byte_level(true, true),
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false,
            "vocab": ids,
            "merges": merges.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>(),
        }
    });
    Ok(serde_json::to_string_pretty(&file).expect("a JSON value serializes") + "\n")
}
