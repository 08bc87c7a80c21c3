//! Named models: the embedded default and the real models `cargo xtask fetch-models` converts,
//! with the modules the editors change in each scenario and the hypernetwork scale. The table
//! is the documented per-model config file `src/models.toml`.
//!
//! ```
//! use emsedit::methods::Mode;
//! use emsedit::models::NamedModel;
//!
//! let smollm2 = NamedModel::get("smollm2")?;
//! assert_eq!(smollm2.modules(Mode::Batch).len(), 12);
//! assert!(smollm2.dir().ends_with("smollm2-135m"));
//! # Ok::<(), emsedit::models::ModelError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::methods::{Mode, Overrides};

/// The per-model config file.
pub const MODELS_TOML: &str = include_str!("models.toml");

/// Errors naming a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A name the table does not hold.
    #[error("unknown model `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names in `src/models.toml`.
        known: String,
    },
}

/// The hypernetwork scale of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// [`Overrides::cpu_scale`].
    Cpu,
    /// The paper's presets unchanged.
    Paper,
}

/// One entry of `src/models.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedModel {
    /// What it is.
    pub description: String,
    /// Its directory, relative to the repository (`in_repo`) or to [`models_dir`].
    pub dir: String,
    /// Whether `dir` is inside the repository.
    pub in_repo: bool,
    /// The hypernetwork scale.
    pub scale: Scale,
    /// Edited modules for batch editing.
    pub batch: Vec<String>,
    /// Edited modules for sequential editing.
    pub sequential: Vec<String>,
}

fn table() -> BTreeMap<String, NamedModel> {
    toml::from_str(MODELS_TOML).expect("src/models.toml is checked by the tests")
}

/// The models cache that `cargo xtask fetch-models` fills: `$EMSEDIT_MODELS_DIR`, else
/// `~/.cache/emsedit/models` (`.cache/emsedit/models` under the current folder without `HOME`).
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EMSEDIT_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(PathBuf::new, PathBuf::from);
    home.join(".cache/emsedit/models")
}

impl NamedModel {
    /// The names in the table, sorted.
    pub fn names() -> Vec<String> {
        table().into_keys().collect()
    }

    /// The entry called `name`.
    pub fn get(name: &str) -> Result<Self, ModelError> {
        let mut t = table();
        t.remove(name).ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            known: t.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The model directory.
    pub fn dir(&self) -> PathBuf {
        if self.in_repo {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(&self.dir)
        } else {
            models_dir().join(&self.dir)
        }
    }

    /// The edited modules of a scenario kind.
    pub fn modules(&self, mode: Mode) -> &[String] {
        match mode {
            Mode::Batch => &self.batch,
            Mode::Sequential => &self.sequential,
        }
    }

    /// The hypernetwork overrides of its scale.
    pub fn overrides(&self) -> Overrides {
        match self.scale {
            Scale::Cpu => Overrides::cpu_scale(),
            Scale::Paper => Overrides::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ModelConfig;
    use crate::methods::default_modules_for;

    /// A config.json with the shapes of a named model (no weights needed).
    fn config(name: &str, json: &str) -> ModelConfig {
        let dir =
            std::env::temp_dir().join(format!("emsedit-models-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        let c = ModelConfig::load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        c
    }

    #[test]
    fn the_table_parses_and_names_unknown_models() {
        assert_eq!(NamedModel::names(), ["fixture", "gemma3", "smollm2"]);
        let err = NamedModel::get("gpt-5").unwrap_err().to_string();
        assert!(err.contains("gpt-5") && err.contains("smollm2"), "{err}");
        assert!(
            NamedModel::get("fixture")
                .unwrap()
                .dir()
                .join("config.json")
                .exists()
        );
    }

    #[test]
    fn listed_modules_are_the_scaled_defaults() {
        let fixture = NamedModel::get("fixture").unwrap();
        let c = ModelConfig::load(&fixture.dir().join("config.json")).unwrap();
        let smollm2 = config(
            "smollm2",
            r#"{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
                "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                "num_key_value_heads": 3, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
                "rope_theta": 100000.0, "tie_word_embeddings": true}"#,
        );
        let gemma3 = config(
            "gemma3",
            r#"{"model_type": "gemma2", "vocab_size": 262144, "hidden_size": 640,
                "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4,
                "num_key_value_heads": 1, "head_dim": 256, "max_position_embeddings": 32768,
                "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "sliding_window": 512,
                "query_pre_attn_scalar": 256}"#,
        );
        for (name, c) in [("fixture", c), ("smollm2", smollm2), ("gemma3", gemma3)] {
            let m = NamedModel::get(name).unwrap();
            for mode in [Mode::Batch, Mode::Sequential] {
                assert_eq!(
                    m.modules(mode),
                    default_modules_for(&c, mode),
                    "{name} {mode:?}"
                );
            }
        }
    }
}
