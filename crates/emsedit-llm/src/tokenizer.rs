//! `tokenizer.json` through the `tokenizers` crate, with the editing data's conventions
//! (spec §1.2): prompts get the tokenizer's own special tokens (BOS for LLaMA-3 and Gemma,
//! nothing for GPT-2), targets get one leading space and no special tokens.

use std::path::{Path, PathBuf};

use crate::LlmError;

/// A Hugging Face fast tokenizer loaded from `tokenizer.json`.
#[derive(Debug, Clone)]
pub struct LmTokenizer {
    path: PathBuf,
    inner: tokenizers::Tokenizer,
}

impl LmTokenizer {
    /// Loads `path` (a `tokenizer.json`).
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| LlmError::Tokenizer {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// Parses the text of a `tokenizer.json`; `path` only names it in errors.
    pub fn from_json(path: &Path, json: &str) -> Result<Self, LlmError> {
        let inner: tokenizers::Tokenizer =
            json.parse()
                .map_err(|e: tokenizers::Error| LlmError::Tokenizer {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
        Ok(Self {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// Loads `dir/tokenizer.json`.
    pub fn load_dir(dir: &Path) -> Result<Self, LlmError> {
        Self::load(&dir.join("tokenizer.json"))
    }

    fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, LlmError> {
        let enc = self
            .inner
            .encode(text, special)
            .map_err(|e| LlmError::Tokenizer {
                path: self.path.clone(),
                detail: format!("cannot encode {text:?}: {e}"),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// A prompt with the tokenizer's default special tokens.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>, LlmError> {
        self.encode(prompt, true)
    }

    /// A target: `" " + target`, without special tokens.
    pub fn encode_target(&self, target: &str) -> Result<Vec<u32>, LlmError> {
        self.encode(&format!(" {target}"), false)
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| LlmError::Tokenizer {
                path: self.path.clone(),
                detail: e.to_string(),
            })
    }

    /// The id of a token (e.g. a special token such as `<|endoftext|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Checks that this tokenizer belongs to a model with `model_vocab` embedding rows: it
    /// must not produce ids past them, and must use at least 90% of them (models pad their
    /// vocabulary by a few rows; a tokenizer of another model leaves far more unused).
    pub fn check_vocab(&self, model_vocab: usize) -> Result<(), LlmError> {
        let n = self.vocab_size();
        if n > model_vocab || n.saturating_mul(10) < model_vocab.saturating_mul(9) {
            return Err(LlmError::VocabMismatch {
                path: self.path.clone(),
                tokenizer: n,
                model: model_vocab,
            });
        }
        Ok(())
    }
}
