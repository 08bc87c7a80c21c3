//! `cargo xtask reproduce`: runs an experiment matrix (see `docs/reproduce.md`), one cell per
//! configuration and seed, appending every finished cell to `<out>/results.jsonl` and
//! skipping finished cells on a rerun, then writes `table.md` (means over seeds),
//! `results.csv` (one line per cell), `claims.md` (the file's `[[claims]]` checked) and the
//! plots (means) under `<out>/plots/`.

mod claims;
mod export;
mod jobs;
mod matrix;
mod plots;
pub mod progress;
mod report;
mod runner;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use emsedit::DeviceKind;
use tracing::info;

use matrix::{Cell, Matrix};
use runner::Results;

/// The built-in matrices, by preset name, with the file they come from.
pub const PRESETS: [(&str, &str); 7] = [
    (
        "xtask/presets/default.toml",
        include_str!("../../presets/default.toml"),
    ),
    (
        "xtask/presets/gemma3-real.toml",
        include_str!("../../presets/gemma3-real.toml"),
    ),
    (
        "xtask/presets/paper.toml",
        include_str!("../../presets/paper.toml"),
    ),
    (
        "xtask/presets/parity.toml",
        include_str!("../../presets/parity.toml"),
    ),
    (
        "xtask/presets/parity-gemma3.toml",
        include_str!("../../presets/parity-gemma3.toml"),
    ),
    (
        "xtask/presets/smollm2.toml",
        include_str!("../../presets/smollm2.toml"),
    ),
    (
        "xtask/presets/smollm2-real.toml",
        include_str!("../../presets/smollm2-real.toml"),
    ),
];

/// A preset's name: its file's stem.
fn preset_name(origin: &'static str) -> &'static str {
    origin
        .trim_start_matches("xtask/presets/")
        .trim_end_matches(".toml")
}

/// The names `--preset` accepts, those of [`PRESETS`].
fn preset_names() -> clap::builder::PossibleValuesParser {
    PRESETS.iter().map(|(origin, _)| preset_name(origin)).into()
}

/// `cargo xtask reproduce` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Built-in matrix: `default` (CPU-sized, the embedded fixture model, minutes), `smollm2`
    /// (the real SmolLM2-135M after `cargo xtask fetch-models`, synthetic facts, CPU, about
    /// 45 minutes), `smollm2-real` (SmolLM2 with real ZsRE and CounterFact: a hyperparameter
    /// search on validation records, then the table; hours), `gemma3-real` (the same on
    /// Gemma-3-270M with real ZsRE), `paper` (the paper's Table 1/2
    /// settings for a GPU: Hugging Face model directories, real data), `parity` (sequential
    /// EMSEdit on SmolLM2 and real CounterFact, 10 seeds: the Rust side of
    /// `scripts/reference/paired.sh`) or `parity-gemma3` (the same cells on Gemma-3-270M).
    #[arg(long, default_value = "default", value_parser = preset_names())]
    preset: String,
    /// A matrix TOML file to run instead of a preset (format: docs/reproduce.md).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output folder [default: target/reproduce/NAME, NAME being the matrix name].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run at most N of the unfinished cells, then write the reports and stop (0: only
    /// rewrite the reports).
    #[arg(long, value_name = "N")]
    only_cells: Option<usize>,
    /// Run only the cells whose id contains this text (case-insensitive), e.g. `EMSEdit` or
    /// `seq-4x8`; repeated, the cells that match any of them.
    #[arg(long, value_name = "TEXT")]
    filter: Vec<String>,
    /// List the cells with their keys and whether they are finished, and stop.
    #[arg(long)]
    list: bool,
    /// Device: `cpu`, `cuda` or `cuda:N` (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Also write each cell's token batches and untrained networks under `DIR/<cell key>/`,
    /// for the reference code to rerun it from the same state (`scripts/reference/paired.sh`;
    /// hypernetwork editors only).
    #[arg(long, value_name = "DIR")]
    export_reference: Option<PathBuf>,
    /// Run up to N cells at once, each in its own process with the cores shared out
    /// (`RAYON_NUM_THREADS` = cores / N unless set). On 2 cores `--jobs 2` finishes a matrix
    /// sooner than one cell at a time with 2 threads; each cell's times then measure a cell
    /// sharing the machine. Hypernetwork editors on streams of 100+ edits (not RLEdit's
    /// sequential ones) run first, one at a time on every core, which is faster for them
    /// (docs/reproduce.md).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Run only the cell with this key and write no reports (what `--jobs` starts).
    #[arg(long, value_name = "KEY", hide = true)]
    cell_key: Option<String>,
}

/// Whether a cell id contains one of the (lower-cased) filters; every id matches none given.
fn matches_filter(id: &str, filters: &[String]) -> bool {
    let id = id.to_lowercase();
    filters.is_empty() || filters.iter().any(|f| id.contains(f))
}

/// What [`execute`] runs.
#[derive(Debug)]
pub struct Options {
    /// The matrix.
    pub matrix: Matrix,
    /// The folder relative paths of the matrix are taken from.
    pub root: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Run at most this many unfinished cells.
    pub only_cells: Option<usize>,
    /// Only cells whose id contains one of these (lower-cased) texts; empty: every cell.
    pub filter: Vec<String>,
    /// List and stop.
    pub list: bool,
    /// The device.
    pub device: DeviceKind,
    /// Where to export the cells' reference inputs.
    pub export_reference: Option<PathBuf>,
    /// Cells in child processes, several at once (`--jobs N`, N > 1).
    pub jobs: Option<jobs::Jobs>,
    /// Run only the cell with this key and write no reports.
    pub cell_key: Option<String>,
}

fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask
        .parent()
        .map_or_else(|| xtask.join(".."), Path::to_path_buf)
}

/// The command: parses the arguments, installs logging, runs.
pub fn main(args: Args) -> Result<(), String> {
    progress::init_logging();
    let root = root();
    // A matrix file's text is kept for the children of `--jobs` (jobs::ChildMatrix).
    let (matrix, text) = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let matrix = Matrix::parse(&text, &path.display().to_string(), &root)?;
            (matrix, Some(text))
        }
        None => {
            let (origin, text) = PRESETS
                .iter()
                .find(|(origin, _)| preset_name(origin) == args.preset)
                .ok_or_else(|| format!("unknown preset `{}`", args.preset))?;
            (Matrix::parse(text, origin, &root)?, None)
        }
    };
    let out = args.out.clone().unwrap_or_else(|| {
        root.join("target/reproduce")
            .join(matrix.file.name.replace(['/', '\\'], "_"))
    });
    let device = DeviceKind::from_str(&args.device)
        .and_then(DeviceKind::ensure_available)
        .map_err(|e| e.to_string())?;
    let jobs = (args.jobs > 1).then(|| {
        let mut child: Vec<std::ffi::OsString> =
            vec!["--device".into(), args.device.clone().into()];
        if let Some(dir) = &args.export_reference {
            child.extend(["--export-reference".into(), dir.clone().into()]);
        }
        jobs::Jobs {
            n: usize::from(args.jobs),
            matrix: match text {
                Some(text) => jobs::ChildMatrix::Text(text),
                None => jobs::ChildMatrix::Preset(args.preset.clone()),
            },
            args: child,
        }
    });
    execute(&Options {
        matrix,
        root,
        out,
        only_cells: args.only_cells,
        filter: args.filter.iter().map(|f| f.to_lowercase()).collect(),
        list: args.list,
        device,
        export_reference: args.export_reference,
        jobs,
        cell_key: args.cell_key,
    })
}

/// Runs the unfinished cells of the matrix (as limited by the options) and writes the reports.
pub fn execute(opts: &Options) -> Result<(), String> {
    let out = &opts.out;
    let mut results = Results::open(&out.join("results.jsonl"))?;
    let cells = &opts.matrix.cells;
    let selected: Vec<&Cell> = cells
        .iter()
        .filter(|c| {
            matches_filter(&c.id, &opts.filter)
                && opts.cell_key.as_ref().is_none_or(|k| &c.key == k)
        })
        .collect();
    if let Some(key) = &opts.cell_key
        && selected.is_empty()
    {
        return Err(format!("no cell of the matrix has the key {key}"));
    }
    if opts.list {
        for c in &selected {
            let done = if results.get(&c.key).is_some() {
                "done   "
            } else {
                "pending"
            };
            println!("{done} {} {}", c.key, c.id);
        }
        return Ok(());
    }
    let mut pending: Vec<&Cell> = selected
        .iter()
        .copied()
        .filter(|c| results.get(&c.key).is_none())
        .collect();
    let finished = cells.len()
        - cells
            .iter()
            .filter(|c| results.get(&c.key).is_none())
            .count();
    info!(
        "matrix `{}` ({}): {} cells, {} finished, {} to run now; results in {}",
        opts.matrix.file.name,
        opts.matrix.origin,
        cells.len(),
        finished,
        opts.only_cells
            .map_or(pending.len(), |n| n.min(pending.len())),
        out.display()
    );
    if let Some(n) = opts.only_cells {
        pending.truncate(n);
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let outcome = if pending.is_empty() {
        runner::Outcome::default()
    } else if let Some(jobs) = &opts.jobs {
        runner::preflight(&opts.root, &pending)?;
        let mut seconds: HashMap<&str, f64> = HashMap::new();
        for c in cells {
            if let Some(r) = results.get(&c.key) {
                let t = seconds.entry(c.group.as_str()).or_insert(0.0);
                *t = t.max(r.wall_seconds);
            }
        }
        let order = jobs::longest_first(&pending, |c| seconds.get(c.group.as_str()).copied());
        jobs::run(jobs, out, &jobs::alone_first(order), &mut results)?
    } else {
        match opts.device {
            DeviceKind::Cpu => runner::run_cells::<emsedit::Cpu>(
                &opts.root,
                emsedit::cpu(),
                &pending,
                &mut results,
                opts.export_reference.as_deref(),
            )?,
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda(i) => runner::run_cells::<emsedit::Cuda>(
                &opts.root,
                emsedit::cuda(i),
                &pending,
                &mut results,
                opts.export_reference.as_deref(),
            )?,
            #[cfg(not(feature = "cuda"))]
            DeviceKind::Cuda(_) => {
                return Err("this build lacks the `cuda` cargo feature".into());
            }
        }
    };
    if opts.cell_key.is_none() {
        write_reports(opts, &results)?;
    }
    if !outcome.failed.is_empty() {
        let list: Vec<String> = outcome
            .failed
            .iter()
            .map(|(id, err)| format!("  {id}: {err}"))
            .collect();
        return Err(format!(
            "{} cells failed (the others are saved; rerun to retry):\n{}",
            outcome.failed.len(),
            list.join("\n")
        ));
    }
    Ok(())
}

/// Writes `table.md`, `results.csv` and the plots of the finished cells of the matrix.
fn write_reports(opts: &Options, results: &Results) -> Result<(), String> {
    let out = &opts.out;
    let cells = &opts.matrix.cells;
    let rows: Vec<report::Row> = cells
        .iter()
        .filter_map(|c| results.get(&c.key).map(|r| (c, r)))
        .collect();
    // One row of the table per configuration: the mean over its finished seeds.
    let aggs = report::aggregate(cells, &rows);
    let write = |name: &str, text: String| -> Result<PathBuf, String> {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    let title = format!("Results of `{}`", opts.matrix.file.name);
    let table = report::markdown(&title, cells, &aggs);
    let table_path = write("table.md", table.clone())?;
    let csv_path = write("results.csv", report::csv(&aggs))?;
    if !opts.matrix.file.claims.is_empty() {
        let title = format!("Claims checked by `{}`", opts.matrix.file.name);
        let path = write(
            "claims.md",
            claims::markdown(&title, &opts.matrix.file.claims, &aggs),
        )?;
        info!("wrote {}", path.display());
    }
    let plots = plots::write_all(&aggs, &out.join("plots"))?;
    if !rows.is_empty() {
        println!("{table}");
    }
    info!(
        "wrote {}, {} and {} plot files under {}",
        table_path.display(),
        csv_path.display(),
        plots.len(),
        out.join("plots").display()
    );
    Ok(())
}
