//! What the editing examples share: the command line, the model, the data and the loop over
//! methods that prints the results table.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use emsedit::eval::data::{Dataset, EditRecord, Skipped, load_splits, skip_summary};
use emsedit::eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit::methods::{MethodSpec, Mode, Overrides, default_modules};
use emsedit::models::NamedModel;
use emsedit::{
    CausalLm, Cpu, LmTokenizer, Phase, Report, Run, ScenarioConfig, cpu, run_with_progress, seed,
};

/// The flags every editing example takes.
#[derive(Parser, Debug)]
pub struct Args {
    /// A named model of src/models.toml: `fixture` (the embedded default), `smollm2` or
    /// `gemma3` (after `cargo xtask fetch-models`), with its edited modules and scale.
    #[arg(long, default_value = "fixture", conflicts_with = "model_dir")]
    pub model: String,
    /// Any Hugging Face style model directory (config.json, model.safetensors,
    /// tokenizer.json) instead of a named model; modules and scale are then the defaults.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// A data folder with a train and an eval file in the scenario's format (e.g. MEND's
    /// zsre_mend_train.json / zsre_mend_eval.json). Default: the synthetic fact world.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Comma-separated methods (ft, mend, malmen, malmen2, rledit, rledit2, ultraedit,
    /// ultraedit2, emsedit).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Number of edit batches T.
    #[arg(long)]
    pub num_seq: Option<usize>,
    /// Edits per batch n.
    #[arg(long)]
    pub n_edits: Option<usize>,
    /// Back-propagation steps K for every hypernetwork method (default: each method's own).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the data shuffles and the hypernetworks' initialization.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Reproduce the reference implementation's quirks.
    #[arg(long)]
    pub reference_quirks: bool,
    /// Training batches of n records given to every editor (default: the reference's count per
    /// editor: as many as edit batches for EMSEdit and RLEdit, 1 for MALMEN, 100 for MEND).
    #[arg(long)]
    pub train_batches: Option<usize>,
    /// Passes of each editor's training over its training batches.
    #[arg(long)]
    pub train_epochs: Option<usize>,
    /// Adam learning rate of the hypernetworks (default: the scale's).
    #[arg(long)]
    pub meta_lr: Option<f64>,
    /// Initial step size η of the hypernetworks (default: the scale's).
    #[arg(long)]
    pub lr: Option<f64>,
}

/// The hypernetwork scale for a model: the paper's for real models, [`Overrides::cpu_scale`]
/// for models narrower than 512 (the embedded default).
pub fn scale_for(lm: &CausalLm<Cpu>, modules: &[String]) -> Result<Overrides, String> {
    let id = lm.module(&modules[0]).map_err(|e| e.to_string())?;
    let [a, b] = lm.weight(id).dims();
    Ok(if a.min(b) < 512 {
        Overrides::cpu_scale()
    } else {
        Overrides::default()
    })
}

/// Runs `methods` on the model and data of `args` through `scenario` and prints the table.
pub fn run_methods(
    args: &Args,
    dataset: Dataset,
    default_methods: &[&str],
    scenario: ScenarioConfig,
) -> Result<Vec<Report>, Box<dyn std::error::Error>> {
    emsedit::reuse_freed_memory();
    let mut scenario = scenario;
    if let Some(b) = args.train_batches {
        scenario.train_batches = Some(b);
    }
    if let Some(e) = args.train_epochs {
        scenario.train_epochs = e;
    }
    // All of the reference's quirks: the methods' (below) and the metric's.
    scenario.reference_quirks = args.reference_quirks;
    let device = cpu();
    let mode = Mode::of(&scenario);
    let (model_dir, named) = match &args.model_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let m = NamedModel::get(&args.model)?;
            (m.dir(), Some(m))
        }
    };
    if !model_dir.join("config.json").exists() {
        return Err(format!(
            "{}: no config.json (for the real models run `cargo xtask fetch-models` first)",
            model_dir.display()
        )
        .into());
    }
    let lm = CausalLm::<Cpu>::load(&model_dir, &device)?;
    let tok = LmTokenizer::load_dir(&model_dir)?;
    let Data {
        train,
        eval,
        source,
        skipped,
    } = records(args, dataset)?;
    let (modules, mut overrides) = match &named {
        Some(m) => (m.modules(mode).to_vec(), m.overrides()),
        None => {
            let modules = default_modules(&lm, mode);
            let overrides = scale_for(&lm, &modules)?;
            (modules, overrides)
        }
    };
    overrides.steps = args.steps;
    overrides.reference_quirks = args.reference_quirks.then_some(true);
    overrides.meta_lr = args.meta_lr.or(overrides.meta_lr);
    overrides.lr = args.lr.or(overrides.lr);
    let methods: Vec<String> = match &args.methods {
        Some(m) => m.clone(),
        None => default_methods.iter().map(|s| s.to_string()).collect(),
    };
    let skipped_note = match skip_summary(&skipped) {
        s if s.is_empty() => s,
        s => format!(" ({s})"),
    };
    println!(
        "model {} · data {}{skipped_note} · {} × {} edits · modules {}",
        model_dir.display(),
        source,
        scenario.num_seq,
        scenario.n_edits,
        modules.join(", ")
    );
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &train,
        eval: &eval,
        source: args.data.clone(),
        skipped,
        glue: &[],
    };
    let mut reports = Vec::new();
    for name in &methods {
        let mut spec = MethodSpec::parse(name)?;
        spec.overrides = overrides.for_kind(spec.kind);
        seed::<Cpu>(&device, args.seed);
        let mut editor = spec.build::<Cpu>(modules.clone(), &scenario)?;
        let started = Instant::now();
        let name = spec.display_name();
        let mut progress = |phase: Phase| show_phase(&name, phase);
        let report = run_with_progress(editor.as_mut(), &input, &scenario, &mut progress)?;
        if stderr_is_terminal() {
            eprint!("\r{:<51}\r", "");
        }
        eprint!("{name:<10} ");
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "done in {:.1} s (efficacy {:.1})",
            started.elapsed().as_secs_f64(),
            100.0 * report.after.efficacy
        );
        reports.push(report);
    }
    println!("\n{}", emsedit::eval::table::markdown(&reports));
    Ok(reports)
}

/// One method's phase on one stderr line, rewritten in place (only on a terminal).
fn show_phase(name: &str, phase: Phase) {
    if !stderr_is_terminal() {
        return;
    }
    eprint!("\r{name:<10} {:<40}", phase.to_string());
}

fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Train and eval records and where they came from.
pub struct Data {
    pub train: Vec<EditRecord>,
    pub eval: Vec<EditRecord>,
    pub source: String,
    /// Records the loaders left out (blank prompts or targets).
    pub skipped: Vec<Skipped>,
}

/// The data folder of `args`, or the synthetic world.
pub fn records(args: &Args, dataset: Dataset) -> Result<Data, Box<dyn std::error::Error>> {
    if let Some(dir) = &args.data {
        let (train, eval) = load_splits(dir, dataset)?;
        let source = dir.display().to_string();
        return Ok(Data {
            skipped: [train.skipped, eval.skipped].concat(),
            train: train.records,
            eval: eval.records,
            source,
        });
    }
    let world = FactWorld::generate(WorldConfig::default());
    let (train, eval) = match dataset {
        Dataset::Zsre => (
            world.zsre_records(Split::Train),
            world.zsre_records(Split::Eval),
        ),
        _ => (
            world.counterfact_records(Split::Train, Dataset::CounterfactTrain),
            world.counterfact_records(Split::Eval, Dataset::CounterfactEval),
        ),
    };
    let source = "synthetic fact world (seed 0)".into();
    Ok(Data {
        train,
        eval,
        source,
        skipped: Vec::new(),
    })
}
