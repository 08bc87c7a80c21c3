//! One tuple → input ids and already-shifted labels (spec §1.2).

use emsedit_llm::{IGNORE, LmTokenizer};

use crate::DataError;
use crate::data::records::Tuple;

/// A tokenized tuple, unpadded. `labels[i]` is what the logits at position i must predict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedTuple {
    /// `P ⊕ T[..A−1]`: the last target token is never fed in.
    pub input_ids: Vec<i64>,
    /// `[IGNORE] × (|P|−1) ⊕ T`, the same length as `input_ids`.
    pub labels: Vec<i64>,
    /// `[IGNORE] × (|P|−1) ⊕ O` for CounterFact's old target (its own length).
    pub old_labels: Option<Vec<i64>>,
}

impl TokenizedTuple {
    /// Unpadded length L = |P| + A − 1.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Never true: a tuple has at least one prompt token.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    /// Number of target tokens A.
    pub fn answer_len(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE).count()
    }
}

fn ids(
    tok: &LmTokenizer,
    what: &'static str,
    text: &str,
    prompt: bool,
) -> Result<Vec<i64>, DataError> {
    let encoded = if prompt {
        tok.encode_prompt(text)
    } else {
        tok.encode_target(text)
    };
    let ids = encoded.map_err(|e| DataError::Tokenize {
        what,
        text: text.to_string(),
        detail: e.to_string(),
    })?;
    if ids.is_empty() {
        return Err(DataError::Tokenize {
            what,
            text: text.to_string(),
            detail: "encodes to no tokens".into(),
        });
    }
    Ok(ids.into_iter().map(i64::from).collect())
}

/// Tokenizes a tuple: the prompt with the tokenizer's special tokens, the target as
/// `" " + target` without them, no EOS.
pub fn tokenize(tok: &LmTokenizer, tuple: &Tuple) -> Result<TokenizedTuple, DataError> {
    let p = ids(tok, "prompt", &tuple.prompt, true)?;
    let t = ids(tok, "target", &tuple.target, false)?;
    let pad = vec![IGNORE; p.len() - 1];
    let mut input_ids = p;
    input_ids.extend_from_slice(&t[..t.len() - 1]);
    let labels = [pad.as_slice(), &t].concat();
    let old_labels = match &tuple.old_target {
        Some(old) => Some([pad.as_slice(), &ids(tok, "old target", old, false)?].concat()),
        None => None,
    };
    Ok(TokenizedTuple {
        input_ids,
        labels,
        old_labels,
    })
}
