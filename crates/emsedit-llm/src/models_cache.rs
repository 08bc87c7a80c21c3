//! The models cache that `cargo xtask fetch-models` fills: one converted Hugging Face
//! directory per model, each with a stamp file once complete.

use std::path::PathBuf;

/// The file a complete converted directory holds (source checksum and converter version).
pub const STAMP: &str = "emsedit-fetch.json";

/// `$EMSEDIT_MODELS_DIR`, else `~/.cache/emsedit/models`; `None` when neither is set.
pub fn models_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EMSEDIT_MODELS_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".cache/emsedit/models"))
}

/// The converted directory `name` (e.g. `smollm2-135m`) when it has been fetched; otherwise
/// the reason, naming the directory and the command that fills it.
pub fn fetched(name: &str) -> Result<PathBuf, String> {
    let dir = models_dir()
        .ok_or("neither EMSEDIT_MODELS_DIR nor HOME is set")?
        .join(name);
    if dir.join(STAMP).exists() {
        Ok(dir)
    } else {
        Err(format!(
            "{} has not been fetched (run `cargo xtask fetch-models`)",
            dir.display()
        ))
    }
}
