//! The main job: sequential editing on ZsRE-format data, EMSEdit against RLEdit and FT.
//!
//! `cargo run --release --example sequential_zsre [-- --methods emsedit,rledit,ft --num-seq 4
//! --n-edits 8 --model-dir DIR --data DIR --steps K --seed S]`
//!
//! Defaults: the embedded model in fixtures/model and the synthetic fact world, 4 batches of 8
//! edits applied one after another; every editor is trained on 4 other batches first.

use std::process::ExitCode;

use clap::Parser;
use emsedit::ScenarioConfig;
use emsedit::eval::data::Dataset;

mod common;

fn main() -> ExitCode {
    let args = common::Args::parse();
    let mut scenario =
        ScenarioConfig::sequential(args.n_edits.unwrap_or(8), args.num_seq.unwrap_or(4));
    scenario.seed = args.seed;
    match common::run_methods(&args, Dataset::Zsre, &["emsedit", "rledit", "ft"], scenario) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
