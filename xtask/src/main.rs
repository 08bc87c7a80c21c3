//! `cargo xtask` — project automation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emsedit::fixtures::RidgeSystem;
use emsedit::llm::pretrain::PretrainConfig;

mod fetch;
mod pretrain;
mod reproduce;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "emsedit project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate the files in fixtures/ that are made by code (deterministic).
    Fixtures {
        /// Only check that the committed files are up to date.
        #[arg(long)]
        check: bool,
    },
    /// Write the synthetic fact world (ZsRE and CounterFact train/eval files, corpus.txt).
    World {
        /// Output folder.
        #[arg(long, default_value = "target/world")]
        out: PathBuf,
        /// World seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Number of subjects.
        #[arg(long, default_value_t = 240)]
        subjects: usize,
        /// Edit records per split.
        #[arg(long, default_value_t = 96)]
        records: usize,
    },
    /// Pre-train the embedded default model (tokenizer and GPT-2) on the synthetic world's
    /// corpus into fixtures/model (seeded; minutes on 2 cores).
    Pretrain {
        /// Output folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Passes over the corpus.
        #[arg(long, default_value_t = PretrainConfig::default().epochs)]
        epochs: usize,
        /// Peak learning rate.
        #[arg(long, default_value_t = PretrainConfig::default().lr)]
        lr: f64,
        /// Seed of the initialization and the shuffles.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Regenerate the LLM conformance goldens in fixtures/llm/ with transformers + PyTorch
    /// (makes a venv under .venv/goldens; downloads torch the first time).
    Goldens,
    /// Run an experiment matrix (methods × models × data sets × scenarios × K × ablations),
    /// resumable; writes a Table-1 style table, a CSV and plots (docs/reproduce.md).
    Reproduce(reproduce::Args),
    /// Fetch, check (sha256) and convert the real pretrained models (SmolLM2-135M, Gemma-3-270M)
    /// and the GPT-2 tokenizer into the models cache (docs/real-models.md); idempotent.
    FetchModels(fetch::Args),
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> ExitCode {
    emsedit::tensor::reuse_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fixtures { check } => fixtures(check),
        Command::Goldens => goldens(),
        Command::Reproduce(args) => reproduce::main(args),
        Command::FetchModels(args) => fetch::main(args),
        Command::Pretrain {
            out,
            epochs,
            lr,
            seed,
        } => pretrain::run(
            &out.unwrap_or_else(|| pretrain::default_out(&root())),
            &pretrain::ModelSize::default(),
            &PretrainConfig {
                epochs,
                lr,
                seed,
                ..PretrainConfig::default()
            },
        ),
        Command::World {
            out,
            seed,
            subjects,
            records,
        } => world(out, seed, subjects, records),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fixtures(check: bool) -> Result<(), String> {
    let path = root().join(RidgeSystem::PATH);
    let text = RidgeSystem::standard().to_json();
    if check {
        let current =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if current != text {
            return Err(format!(
                "{} is stale: run `cargo xtask fixtures`",
                RidgeSystem::PATH
            ));
        }
        println!("{} is up to date", RidgeSystem::PATH);
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", RidgeSystem::PATH);
    Ok(())
}

fn goldens() -> Result<(), String> {
    let script = root().join("scripts/goldens/run.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .current_dir(root())
        .status()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", script.display()));
    }
    Ok(())
}

fn world(out: PathBuf, seed: u64, subjects: usize, records: usize) -> Result<(), String> {
    use emsedit::eval::synthetic::{FactWorld, WorldConfig};
    let config = WorldConfig {
        seed,
        subjects,
        train_records: records,
        eval_records: records,
    };
    config.check()?;
    let world = FactWorld::generate(config);
    world.write(&out).map_err(|e| e.to_string())?;
    println!(
        "wrote the fact world (seed {seed}, {} facts) to {}",
        world.facts.len(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod cli_tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// `cargo xtask --help` works and lists every command (CI runs this instead of the binary).
    #[test]
    fn help_lists_every_command() {
        Cli::command().debug_assert();
        let help = Cli::command().render_help().to_string();
        for command in ["fixtures", "world", "goldens", "pretrain", "reproduce"] {
            assert!(help.contains(command), "{command} missing from:\n{help}");
        }
        let err = match Cli::try_parse_from(["xtask", "--help"]) {
            Ok(_) => panic!("--help parses to no command"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }
}
