//! The Rust editors against the reference code itself (xpq-tech/emsedit at a pinned commit, its
//! own editor classes run by `scripts/reference/run.sh` on CPU) from the same initialisation
//! and batches: every step's Δ, Γ and meta-gradient, every Adam update, and the shifts of one
//! edit with the trained networks; UltraEdit's shifts over two edits. All cases run with
//! `reference_quirks`, since the reference is run as it is.
//!
//! `fixtures/reference/gpt2.*`: the GPT-2 fixture (Conv1D modules). `default.*`: the embedded
//! default model with the main job's modules. `smollm2.*`: SmolLM2-135M (four LLaMA
//! `nn.Linear` modules of one shape group; needs `cargo xtask fetch-models`, else the SmolLM2
//! tests say so and check nothing). The last two store their tensors as sketches.

mod golden;

use golden::{Golden, check_golden};

fn gpt2(case: &str) {
    assert!(check_golden(&Golden::load("fixtures/reference/gpt2"), case));
}

fn default(case: &str) {
    assert!(check_golden(
        &Golden::load("fixtures/reference/default"),
        case
    ));
}

fn smollm2(case: &str) {
    check_golden(&Golden::load("fixtures/reference/smollm2"), case);
}

macro_rules! cases {
    ($($name:ident: $case:literal,)*) => {
        mod gpt2 {
            $(#[test] fn $name() { super::gpt2($case); })*
        }
        mod default {
            $(#[test] fn $name() { super::default($case); })*
        }
        mod smollm2 {
            $(#[test] fn $name() { super::smollm2($case); })*
        }
    };
}

cases! {
    malmen: "malmen_quirks",
    emsedit_batch: "emsedit_batch_quirks",
    emsedit_seq: "emsedit_seq_quirks",
    rledit: "rledit_quirks",
    rledit2: "rledit2_quirks",
    ultraedit: "ultraedit_quirks",
    ultraedit2: "ultraedit2_quirks",
}
