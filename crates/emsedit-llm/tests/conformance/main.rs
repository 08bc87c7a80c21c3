//! Conformance with Hugging Face transformers: goldens made by `scripts/goldens/run.sh`
//! (`cargo xtask goldens`) from tiny random-weight models in `fixtures/llm/`.

mod errors;
mod families;
mod golden;
mod loading;
mod packed;
mod parts;
mod prefix;
mod stale;
mod tokens;
mod validation;
