//! Batch editing on CounterFact-format data: EMSEdit against MALMEN, MALMEN2 and UltraEdit,
//! all edits applied at once.
//!
//! `cargo run --release --example batch_counterfact [-- --n-edits 32 --methods emsedit,malmen
//! --model-dir DIR --data DIR --steps K --seed S]`
//!
//! CounterFact's metrics compare the new target's logits with the old one's, token by token
//! (spec §5.2); the table's scores are those. Defaults: the embedded model and the synthetic
//! fact world, one batch of 32 edits, editors trained on one other batch of 32.

use std::process::ExitCode;

use clap::Parser;
use emsedit::ScenarioConfig;
use emsedit::eval::data::Dataset;

mod common;

fn main() -> ExitCode {
    let args = common::Args::parse();
    // T batches of n, trained on as many training batches (the reference's
    // `islice(loader, num_seq)`); one of each by default.
    let mut scenario =
        ScenarioConfig::sequential(args.n_edits.unwrap_or(32), args.num_seq.unwrap_or(1));
    scenario.seed = args.seed;
    let methods = ["emsedit", "malmen", "malmen2", "ultraedit", "ft"];
    match common::run_methods(&args, Dataset::CounterfactEval, &methods, scenario) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
