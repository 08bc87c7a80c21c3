//! `emsedit`: train an editor, edit facts into a model, evaluate, look, and ship the change as a
//! patch or as a Hugging Face directory. See `docs/cli.md`.
//!
//! Exit codes: 0 success, 1 an error in the input or the run (the message says what to fix),
//! 2 a command line that does not parse.

mod ops;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Meta-learning knowledge editing of causal language models (EMSEdit, MALMEN, RLEdit, ...).
#[derive(Parser, Debug)]
#[command(name = "emsedit", version, about)]
pub struct Cli {
    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The model every command works on.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// A Hugging Face model directory, or a named model: `fixture` (the embedded default),
    /// `smollm2`, `gemma3` (after `cargo xtask fetch-models`).
    #[arg(long, default_value = "fixture")]
    pub model: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a hypernetwork editor on a data file and write its checkpoint.
    Train {
        #[command(flatten)]
        model: ModelArg,
        /// emsedit, malmen, malmen2, rledit, rledit2 or mend.
        #[arg(long, default_value = "emsedit")]
        method: String,
        /// Training data: a ZsRE, CounterFact or RippleEdits file (format detected).
        #[arg(long)]
        data: PathBuf,
        /// Edits per training batch.
        #[arg(long, default_value_t = 8)]
        n_edits: usize,
        /// Training batches (default: as many as the data fills).
        #[arg(long)]
        batches: Option<usize>,
        /// Train for batch editing (one batch of many edits) instead of sequential editing.
        #[arg(long)]
        batch: bool,
        /// Passes over the training batches.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Seed of the shuffle and of the networks' initialization.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Back-propagation steps K (default: the method's own).
        #[arg(long)]
        steps: Option<usize>,
        /// Where to write the checkpoint.
        #[arg(long, default_value = "editor.safetensors")]
        out: PathBuf,
    },
    /// Edit facts into the model; write the edited model, a patch, or both.
    Edit {
        #[command(flatten)]
        model: ModelArg,
        /// A checkpoint from `emsedit train`.
        #[arg(long, required_unless_present = "method")]
        editor: Option<PathBuf>,
        /// A training-free editor instead of a checkpoint: ft or ultraedit.
        #[arg(long, conflicts_with = "editor")]
        method: Option<String>,
        /// JSON lines {"prompt": ..., "target": ..., "rephrase"?: ...}, or a data-set file.
        #[arg(long)]
        facts: PathBuf,
        /// Facts per edit batch (default: all in one batch).
        #[arg(long)]
        n_edits: Option<usize>,
        /// Write the edited model here, as a Hugging Face directory.
        #[arg(long, required_unless_present = "patch")]
        out: Option<PathBuf>,
        /// Write the weight change here as a patch.
        #[arg(long)]
        patch: Option<PathBuf>,
    },
    /// Efficacy, generalization and specificity of a model on a data or facts file.
    Eval {
        #[command(flatten)]
        model: ModelArg,
        /// A data-set file or JSON lines of facts.
        #[arg(long)]
        data: PathBuf,
        /// Patches to apply first, in order.
        #[arg(long)]
        patch: Vec<PathBuf>,
        /// Score at most this many records.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Greedy completion of a prompt.
    Ask {
        #[command(flatten)]
        model: ModelArg,
        /// The prompt.
        prompt: String,
        /// Patches to apply first, in order.
        #[arg(long)]
        patch: Vec<PathBuf>,
        /// New tokens at most.
        #[arg(long, default_value_t = 16)]
        max_new: usize,
    },
    /// Apply, revert or show edit patches.
    Patch {
        #[command(subcommand)]
        action: PatchAction,
    },
}

/// A model, patches and an output directory.
#[derive(Args, Debug)]
pub struct PatchRun {
    #[command(flatten)]
    pub model: ModelArg,
    /// The patches, in the order they are (or were) applied.
    #[arg(long, required = true)]
    pub patch: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum PatchAction {
    /// Apply patches in order and write the patched model as a Hugging Face directory.
    Apply(PatchRun),
    /// Revert patches (given in the order they were applied) from a patched model.
    Revert(PatchRun),
    /// Print a patch's header and size.
    Show {
        /// The patch.
        patch: PathBuf,
    },
}

fn main() -> ExitCode {
    emsedit::reuse_freed_memory();
    let cli = Cli::parse();
    match ops::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
                println!("{}", serde_json::json!({ "error": e.to_string() }));
            }
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
