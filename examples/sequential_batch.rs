//! Sequential-batch editing on ZsRE-format data: a few large batches applied one after
//! another (the setting between the paper's sequential and batch tables).
//!
//! `cargo run --release --example sequential_batch [-- --num-seq 3 --n-edits 16 --methods
//! emsedit,rledit2,malmen2 --model-dir DIR --data DIR --steps K --seed S]`

use std::process::ExitCode;

use clap::Parser;
use emsedit::ScenarioConfig;
use emsedit::eval::data::Dataset;

mod common;

fn main() -> ExitCode {
    let args = common::Args::parse();
    let mut scenario =
        ScenarioConfig::sequential(args.n_edits.unwrap_or(16), args.num_seq.unwrap_or(3));
    scenario.seed = args.seed;
    let methods = ["emsedit", "rledit2", "malmen2", "ultraedit2"];
    match common::run_methods(&args, Dataset::Zsre, &methods, scenario) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
