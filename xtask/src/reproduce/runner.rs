//! Runs cells through the scenario driver and keeps their results in `results.jsonl`, one
//! JSON line per finished cell, appended as soon as the cell ends. Cells whose key is already
//! there are skipped, so a killed run resumes where it stopped; a line cut short by the kill
//! is dropped (and its cell run again).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use emsedit::eval::data::{
    Dataset, EditRecord, Loaded, Skipped, from_json, load, ripple_split, skip_summary,
};
use emsedit::eval::glue::{GlueSet, load_glue_dir};
use emsedit::eval::scenario::{Phase, Report, Run, run_with_progress};
use emsedit::eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit::llm::{CausalLm, LmTokenizer};
use emsedit::tensor::burn::tensor::backend::Backend;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::matrix::{Cell, DatasetKind, GlueEntry, resolve};

/// One line of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The cell's key.
    pub key: String,
    /// The cell's id when it ran.
    pub id: String,
    /// The cell as it ran.
    pub cell: Cell,
    /// What the scenario driver measured.
    pub report: Report,
    /// Wall time of the whole cell (loading excluded), seconds.
    pub wall_seconds: f64,
    /// The commit the binary that ran the cell was built from, `+changes` when its sources
    /// differed from it ([`code_version`]); absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The code this binary was built from: the checkout's commit at build time
/// (`describe_checkout` in `describe.rs`, run by xtask's build script), `+changes` when its
/// sources differed from it; `None` when the build saw no git. A float-level change anywhere
/// in the code can move a cell's scores by as much as another seed does, so a record says
/// which code computed it: the binary's, which a long matrix keeps while the checkout moves
/// on.
pub fn code_version() -> Option<String> {
    Some(env!("EMSEDIT_BUILD_CODE"))
        .filter(|c| !c.is_empty())
        .map(String::from)
}

/// The results file: every finished cell, in the order they finished.
#[derive(Debug)]
pub struct Results {
    path: PathBuf,
    /// The records, in file order.
    pub records: Vec<Record>,
}

impl Results {
    /// Reads `path` (missing: empty). A last line without its newline, left by a killed run,
    /// is cut off the file; other lines that are not results are skipped with a warning.
    pub fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            warn!(
                "{shown}: dropping an unfinished last line ({} bytes) left by an interrupted run",
                bytes.len() - complete
            );
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| format!("{shown}: {e}"))?;
            file.set_len(complete as u64)
                .map_err(|e| format!("{shown}: {e}"))?;
        }
        let text = String::from_utf8_lossy(&bytes[..complete]);
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => records.push(r),
                Err(e) => warn!("{shown}:{}: not a result, skipped ({e})", i + 1),
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            records,
        })
    }

    /// The record of `key`, if finished (the last one written wins).
    pub fn get(&self, key: &str) -> Option<&Record> {
        self.records.iter().rev().find(|r| r.key == key)
    }

    /// Appends one record as one line and syncs it to disk.
    pub fn append(&mut self, record: Record) -> Result<(), String> {
        let shown = self.path.display();
        let mut line = serde_json::to_string(&record).map_err(|e| format!("{shown}: {e}"))?;
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{shown}: {e}"))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("{shown}: {e}"))?;
        self.records.push(record);
        Ok(())
    }
}

/// `EMSEDIT_PASS_PARTS`: the parts each pass over several rows is split into
/// (`CausalLm::set_pass_parts`; 1 never splits), when set.
fn pass_parts() -> Result<Option<usize>, String> {
    match std::env::var("EMSEDIT_PASS_PARTS") {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(format!(
                "EMSEDIT_PASS_PARTS = {v:?}: expected a whole number of parts, 1 or more"
            )),
        },
    }
}

/// Train and eval records, and the records the loaders skipped.
type Split2 = (Vec<EditRecord>, Vec<EditRecord>, Vec<Skipped>);

/// Loaded models and data, shared by the cells that use them.
struct Inputs<B: Backend> {
    root: PathBuf,
    device: B::Device,
    /// `--export-reference`.
    export: Option<PathBuf>,
    models: HashMap<String, (CausalLm<B>, LmTokenizer)>,
    data: HashMap<String, Split2>,
    worlds: HashMap<String, FactWorld>,
    glue: HashMap<String, Vec<GlueSet>>,
}

impl<B: Backend> Inputs<B> {
    fn model(&mut self, cell: &Cell) -> Result<&(CausalLm<B>, LmTokenizer), String> {
        if !self.models.contains_key(&cell.model_path) {
            let dir = resolve(&self.root, &cell.model_path);
            info!("loading model {} from {}", cell.model, dir.display());
            let mut lm = CausalLm::<B>::load(&dir, &self.device).map_err(|e| e.to_string())?;
            if let Some(parts) = pass_parts()? {
                lm.set_pass_parts(parts);
            }
            let tok = LmTokenizer::load_dir(&dir).map_err(|e| e.to_string())?;
            self.models.insert(cell.model_path.clone(), (lm, tok));
        }
        self.models
            .get(&cell.model_path)
            .ok_or_else(|| "model cache".to_string())
    }

    /// Loads the tasks of `entry` once; returns their key in `self.glue`.
    fn glue(&mut self, entry: &GlueEntry) -> Result<String, String> {
        let key = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        if !self.glue.contains_key(&key) {
            let dir = resolve(&self.root, &entry.dir);
            let sets = load_glue_dir(&dir, entry.tests).map_err(|e| e.to_string())?;
            info!(
                "general-capability tasks: {} × {} records from {}",
                sets.len(),
                entry.tests,
                dir.display()
            );
            self.glue.insert(key.clone(), sets);
        }
        Ok(key)
    }

    fn data(&mut self, cell: &Cell) -> Result<&Split2, String> {
        let key = serde_json::json!([&cell.data, cell.world]).to_string();
        if !self.data.contains_key(&key) {
            let records = self.read(cell)?;
            let note = match skip_summary(&records.2) {
                s if s.is_empty() => s,
                s => format!("; {s}"),
            };
            info!(
                "data {}: {} train and {} eval records{note}",
                cell.dataset,
                records.0.len(),
                records.1.len()
            );
            self.data.insert(key.clone(), records);
        }
        self.data.get(&key).ok_or_else(|| "data cache".to_string())
    }

    fn read(&mut self, cell: &Cell) -> Result<Split2, String> {
        let d = &cell.data;
        let (mut train, mut eval, skipped) = if d.kind.synthetic() {
            let config: WorldConfig = cell.world.ok_or("synthetic data without a world")?;
            let wkey = serde_json::to_string(&config).map_err(|e| e.to_string())?;
            let world = self
                .worlds
                .entry(wkey)
                .or_insert_with(|| FactWorld::generate(config));
            match d.kind {
                DatasetKind::SyntheticZsre => (
                    world.zsre_records(Split::Train),
                    world.zsre_records(Split::Eval),
                    Vec::new(),
                ),
                _ => {
                    let conv = |split, origin: &str, format| {
                        from_json(Path::new(origin), &world.counterfact(split), format)
                            .and_then(Loaded::strict)
                            .map_err(|e| e.to_string())
                    };
                    (
                        conv(
                            Split::Train,
                            "synthetic/counterfact/train.json",
                            Dataset::CounterfactTrain,
                        )?,
                        conv(
                            Split::Eval,
                            "synthetic/counterfact/eval.json",
                            Dataset::CounterfactEval,
                        )?,
                        Vec::new(),
                    )
                }
            }
        } else {
            let (train_format, eval_format) = match d.kind {
                DatasetKind::Zsre => (Dataset::Zsre, Dataset::Zsre),
                DatasetKind::Counterfact => (Dataset::CounterfactTrain, Dataset::CounterfactEval),
                _ => (Dataset::Ripple, Dataset::Ripple),
            };
            let file = |p: &Option<String>| -> Result<PathBuf, String> {
                p.as_deref()
                    .map(|p| resolve(&self.root, p))
                    .ok_or_else(|| format!("data set {}: a file is missing", cell.dataset))
            };
            let train = file(&d.train)?;
            let read = |p: &Path, f| load(p, f).map_err(|e| e.to_string());
            let (train, eval) = match d.validation {
                Some(n) => {
                    let first = read(&train, train_format)?;
                    let second = if eval_format == train_format {
                        first.clone()
                    } else {
                        read(&train, eval_format)?
                    };
                    let mut both = [first, second];
                    if d.kind == DatasetKind::Ripple {
                        // Carved from the train side of the documented split.
                        both = both.map(|l| ripple_split(l).0);
                    }
                    let [train, eval] = both;
                    validation_split(train, eval, n)
                        .map_err(|e| format!("data set {}: validation: {e}", cell.dataset))?
                }
                None => {
                    let eval = file(&d.eval)?;
                    if train == eval && d.kind == DatasetKind::Ripple {
                        // One RippleEdits file for both: its documented split.
                        ripple_split(read(&train, train_format)?)
                    } else {
                        (read(&train, train_format)?, read(&eval, eval_format)?)
                    }
                }
            };
            // Results name the files as the matrix writes them, not this machine's paths.
            let mut skipped = [train.skipped, eval.skipped].concat();
            for s in &mut skipped {
                for written in [&d.train, &d.eval].into_iter().flatten() {
                    if s.path == resolve(&self.root, written) {
                        s.path = PathBuf::from(written);
                    }
                }
            }
            (train.records, eval.records, skipped)
        };
        if let Some(n) = d.limit {
            train.truncate(n);
            eval.truncate(n);
        }
        Ok((train, eval, skipped))
    }
}

/// The train split's records less its last `n`, and the last `n` as read in the eval
/// format (`as_eval`: the same file read as eval records), for hyperparameter search.
fn validation_split(train: Loaded, as_eval: Loaded, n: usize) -> Result<(Loaded, Loaded), String> {
    let total = train.records.len();
    if as_eval.records.len() != total {
        return Err(format!(
            "the train file gives {total} train records and {} eval records",
            as_eval.records.len()
        ));
    }
    if n >= total {
        return Err(format!(
            "{n} validation records leave none of the train file's {total} to train on"
        ));
    }
    let mut kept = train;
    kept.records.truncate(total - n);
    let mut held = as_eval;
    held.records.drain(..total - n);
    held.skipped.clear();
    Ok((kept, held))
}

/// Resets the peak resident set size (Linux; elsewhere a no-op), so that each cell's report
/// measures its own peak.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Progress of one cell: every phase on the bar; in the log the start of training and any
/// other phase (each training batch through, each edit batch) at most once a minute, so that
/// a long cell shows where it is when stderr is a file and short cells stay quiet.
fn cell_progress<'a>(bar: &'a ProgressBar, id: &'a str) -> impl FnMut(Phase) + 'a {
    let start = Instant::now();
    let mut logged = start;
    move |phase| {
        let text = phase.to_string();
        bar.set_message(format!("{id}: {text}"));
        let training = matches!(phase, Phase::Training { batches, .. } if batches > 0);
        if training || logged.elapsed().as_secs() >= 60 {
            logged = Instant::now();
            info!("{id}: {text} ({:.0}s)", start.elapsed().as_secs_f64());
        } else {
            debug!("{id}: {text} ({:.1}s)", start.elapsed().as_secs_f64());
        }
    }
}

/// Runs one cell: seeds the backend with the cell's seed, builds the editor, runs the scenario.
fn run_cell<B: Backend>(
    inputs: &mut Inputs<B>,
    cell: &Cell,
    progress: &mut dyn FnMut(Phase),
) -> Result<Record, String> {
    let device = inputs.device.clone();
    inputs.data(cell)?;
    inputs.model(cell)?;
    let data_key = serde_json::json!([&cell.data, cell.world]).to_string();
    let glue_key = cell.glue.as_ref().map(|e| inputs.glue(e)).transpose()?;
    let glue: &[GlueSet] = glue_key
        .and_then(|k| inputs.glue.get(&k))
        .map_or(&[], Vec::as_slice);
    let (train, eval, skipped) = &inputs.data[&data_key];
    let (lm, tok) = &inputs.models[&cell.model_path];
    let input = Run {
        model: lm,
        tokenizer: tok,
        train,
        eval,
        source: None,
        skipped: skipped.clone(),
        glue,
    };
    reset_peak_memory();
    let start = Instant::now();
    emsedit::seed::<B>(&device, cell.scenario.seed);
    let report = match &inputs.export {
        Some(dir) => super::export::run_exported(&input, cell, dir)?,
        None => {
            let mut editor = cell
                .method
                .build::<B>(cell.modules.clone(), &cell.scenario)
                .map_err(|e| e.to_string())?;
            run_with_progress(editor.as_mut(), &input, &cell.scenario, progress)
                .map_err(|e| e.to_string())?
        }
    };
    Ok(Record {
        key: cell.key.clone(),
        id: cell.id.clone(),
        cell: cell.clone(),
        report,
        wall_seconds: start.elapsed().as_secs_f64(),
        code: code_version(),
    })
}

/// Every model directory and data file the cells read exists: a missing one is reported
/// before the first cell runs, not when its cell comes up.
pub fn preflight(root: &Path, cells: &[&Cell]) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for cell in cells {
        let mut wanted = vec![(
            format!("model {}", cell.model),
            resolve(root, &cell.model_path).join("config.json"),
        )];
        for file in [&cell.data.train, &cell.data.eval].into_iter().flatten() {
            wanted.push((format!("data set {}", cell.dataset), resolve(root, file)));
        }
        if let Some(glue) = &cell.glue {
            for task in emsedit::eval::glue::GlueTask::ALL {
                let file = resolve(root, &glue.dir).join(format!("{}.json", task.name()));
                wanted.push(("general-capability task".to_string(), file));
            }
        }
        for (what, path) in wanted {
            if seen.insert(path.clone()) && !path.is_file() {
                missing.push(format!("{what}: {}", path.display()));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing inputs (for the real models run `cargo xtask fetch-models`; data is read \
             from the preset's paths):\n  {}",
            missing.join("\n  ")
        ))
    }
}

/// What [`run_cells`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Cells run and appended now.
    pub ran: usize,
    /// Cells that failed, with their errors.
    pub failed: Vec<(String, String)>,
}

/// Runs `pending` one after another on `device`, appending each result to `results`.
pub fn run_cells<B: Backend>(
    root: &Path,
    device: B::Device,
    pending: &[&Cell],
    results: &mut Results,
    export: Option<&Path>,
) -> Result<Outcome, String> {
    preflight(root, pending)?;
    let mut inputs = Inputs::<B> {
        root: root.to_path_buf(),
        device,
        export: export.map(Path::to_path_buf),
        models: HashMap::new(),
        data: HashMap::new(),
        worlds: HashMap::new(),
        glue: HashMap::new(),
    };
    let bar = super::progress::cells_bar(pending.len() as u64);
    let mut outcome = Outcome::default();
    for (i, cell) in pending.iter().enumerate() {
        bar.set_message(cell.id.clone());
        log_start(i, pending.len(), cell);
        let mut progress = cell_progress(&bar, &cell.id);
        match run_cell(&mut inputs, cell, &mut progress) {
            Ok(record) => {
                log_done(&record);
                results.append(record)?;
                outcome.ran += 1;
            }
            Err(e) => {
                tracing::error!("cell {} failed: {e}", cell.id);
                outcome.failed.push((cell.id.clone(), e));
            }
        }
        bar.inc(1);
    }
    finish(&bar);
    Ok(outcome)
}

/// Logs the start of the `i`-th (from 0) of `n` cells.
pub fn log_start(i: usize, n: usize, cell: &Cell) {
    info!("cell {}/{n}: {} ({})", i + 1, cell.id, cell.key);
}

/// Logs a finished cell's warnings and scores.
pub fn log_done(record: &Record) {
    let r = &record.report;
    for w in &r.warnings {
        warn!("{}: {w}", record.id);
    }
    info!(
        "done {}: efficacy {:.1}, generalization {:.1}, specificity {:.1} in {:.1}s",
        record.id,
        100.0 * r.after.efficacy,
        100.0 * r.after.generalization,
        100.0 * r.after.specificity,
        record.wall_seconds
    );
}

fn finish(bar: &ProgressBar) {
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use emsedit::eval::synthetic::{FactWorld, Split, WorldConfig};

    #[test]
    fn the_validation_records_are_the_train_files_tail_read_as_eval() {
        let world = FactWorld::generate(WorldConfig {
            seed: 3,
            subjects: 40,
            train_records: 12,
            eval_records: 12,
        });
        let records = world.zsre_records(Split::Train);
        let loaded = |r: &[EditRecord]| Loaded {
            records: r.to_vec(),
            skipped: Vec::new(),
        };
        let (train, eval) = validation_split(loaded(&records), loaded(&records), 5).unwrap();
        assert_eq!(train.records, records[..7]);
        assert_eq!(eval.records, records[7..]);
        let err = validation_split(loaded(&records), loaded(&records), 12).unwrap_err();
        assert!(err.contains("none of the train file's 12"), "{err}");
        let err = validation_split(loaded(&records), loaded(&records[1..]), 2).unwrap_err();
        assert!(
            err.contains("12 train records and 11 eval records"),
            "{err}"
        );
    }
}
