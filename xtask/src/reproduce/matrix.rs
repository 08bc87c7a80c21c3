//! The experiment matrix: a TOML file of models, data sets, scenarios and experiments, each
//! experiment the cartesian product methods × models × datasets × scenarios × steps ×
//! ablations × seeds. Every cell has a stable key (a hash of everything that decides its
//! result, the seed included), so a rerun recognises finished cells and a changed setting
//! reruns only the cells it changes; cells that differ only in their seed share a group key,
//! under which the reports average them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use emsedit::eval::scenario::ScenarioConfig;
use emsedit::eval::synthetic::WorldConfig;
use emsedit::llm::ModelConfig;
use emsedit::methods::{
    LayoutChoice, MethodKind, MethodSpec, Mode, Overrides, default_modules_for,
};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::claims::{self, Claim};

/// A matrix file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    /// Name of the matrix (the default output folder is `target/reproduce/<name>`).
    pub name: String,
    /// One seed: the shorthand of `seeds = [seed]`.
    pub seed: Option<u64>,
    /// Seeds (scenario shuffles, network initialization): every cell runs once per seed
    /// (default `[0]`).
    pub seeds: Option<Vec<u64>>,
    /// The synthetic fact world of the `synthetic-*` data sets.
    #[serde(default)]
    pub world: WorldSection,
    /// Hypernetwork scale for the methods that have one.
    #[serde(default)]
    pub hyper: Hyper,
    /// The general-capability tasks of scenarios with `glue_every`.
    #[serde(default)]
    pub glue: GlueEntry,
    /// Models by name (tables keep the file's order).
    pub models: IndexMap<String, ModelEntry>,
    /// Data sets by name.
    pub datasets: IndexMap<String, DatasetEntry>,
    /// Scenarios by name.
    pub scenarios: IndexMap<String, ScenarioEntry>,
    /// The experiments; the cells are the union of their products.
    pub experiments: Vec<Experiment>,
    /// The paper's claims to check on the finished cells (`claims.md`).
    #[serde(default)]
    pub claims: Vec<Claim>,
}

/// `[world]`: the synthetic world (defaults: [`WorldConfig::default`]).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorldSection {
    /// World seed.
    pub seed: u64,
    /// Number of subjects.
    pub subjects: usize,
    /// Train records.
    pub train_records: usize,
    /// Eval records.
    pub eval_records: usize,
}

impl Default for WorldSection {
    fn default() -> Self {
        let w = WorldConfig::default();
        Self {
            seed: w.seed,
            subjects: w.subjects,
            train_records: w.train_records,
            eval_records: w.eval_records,
        }
    }
}

impl WorldSection {
    fn config(&self) -> WorldConfig {
        WorldConfig {
            seed: self.seed,
            subjects: self.subjects,
            train_records: self.train_records,
            eval_records: self.eval_records,
        }
    }
}

/// `[hyper]`: the hypernetworks' scale (only methods with a hypernetwork take it; UltraEdit
/// takes `lr`, its constant step size η; FT takes only `ft_lr`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hyper {
    /// Rank r.
    pub rank: Option<usize>,
    /// Blocks.
    pub blocks: Option<usize>,
    /// Adam learning rate.
    pub meta_lr: Option<f64>,
    /// Initial step size η.
    pub lr: Option<f64>,
    /// FT's Adam learning rate (FT only).
    pub ft_lr: Option<f64>,
    /// EMSEdit's L2 penalty weight ρ (EMSEdit only).
    pub reg_coef: Option<f64>,
}

impl Hyper {
    fn overrides(&self) -> Overrides {
        Overrides {
            rank: self.rank,
            blocks: self.blocks,
            meta_lr: self.meta_lr,
            lr: self.lr,
            ft_lr: self.ft_lr,
            reg_coef: self.reg_coef,
            ..Overrides::default()
        }
    }
}

/// `[glue]`: where the general-capability tasks are (`emsedit::eval::glue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlueEntry {
    /// Folder of `sst2.json`, `mrpc.json`, `mmlu.json`, `rte.json`, `cola.json`, `nli.json`.
    pub dir: String,
    /// Test records per task, after the reference's ten few-shot records.
    pub tests: usize,
}

impl Default for GlueEntry {
    fn default() -> Self {
        Self {
            dir: "${EMSEDIT_DATA_DIR}/glue".into(),
            tests: emsedit::eval::glue::DEFAULT_TESTS,
        }
    }
}

/// `[models.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// A Hugging Face directory (config.json, model.safetensors, tokenizer.json); relative
    /// paths are relative to the repository root, `$EMSEDIT_MODELS_DIR` and
    /// `$EMSEDIT_DATA_DIR` are expanded.
    pub path: String,
    /// Explicit edited modules; default: `emsedit::methods::default_modules` per scenario.
    pub modules: Option<Vec<String>>,
}

/// The kinds of data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// The synthetic world's ZsRE records (in memory).
    SyntheticZsre,
    /// The synthetic world's CounterFact records (in memory).
    SyntheticCounterfact,
    /// ZsRE files in MEND's format.
    Zsre,
    /// CounterFact files (train variant for training, eval variant for evaluation).
    Counterfact,
    /// RippleEdits files.
    Ripple,
}

impl DatasetKind {
    /// Whether the records come from the synthetic world.
    pub fn synthetic(self) -> bool {
        matches!(self, Self::SyntheticZsre | Self::SyntheticCounterfact)
    }
}

/// `[datasets.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    /// The kind.
    pub kind: DatasetKind,
    /// Train split file (real kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<String>,
    /// Eval split file (real kinds; not read when `validation` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<String>,
    /// Hyperparameter search: carve this many records off the end of the train split as the
    /// eval split and train on the rest, so that no eval record is seen (real kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
    /// Keep only the first `limit` records of each split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// One seed for this data set's cells: the shorthand of `seeds = [seed]`. Not part of a
    /// cell's data (the cell's seed is in its scenario).
    #[serde(default, skip_serializing)]
    pub seed: Option<u64>,
    /// Seeds for this data set's cells where an experiment gives none (default: the file's),
    /// e.g. fewer seeds for the largest data set.
    #[serde(default, skip_serializing)]
    pub seeds: Option<Vec<u64>>,
}

/// `[scenarios.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEntry {
    /// Records per edit batch.
    pub n_edits: usize,
    /// Edit batches applied one after another (1: batch editing).
    pub num_seq: usize,
    /// Training batches for every method (default: each editor's own count, as the
    /// reference: `num_seq` for EMSEdit and RLEdit, 1 for MALMEN, 100 for MEND).
    pub train_batches: Option<usize>,
    /// Passes of the editor's training over the training batches (default 1).
    pub train_epochs: Option<usize>,
    /// LLM micro-batch size (default 4).
    pub chunk: Option<usize>,
    /// Score after every batch (metric-vs-edits curves).
    pub curve: Option<bool>,
    /// The data side of the reference's quirks (CounterFact old-label padding).
    pub reference_quirks: Option<bool>,
    /// Score the `[glue]` tasks on the unedited model and after every this many batches.
    pub glue_every: Option<usize>,
}

/// `[[experiments]]`: one cartesian product.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name, for logs.
    pub name: String,
    /// Registry names (`emsedit::methods`).
    pub methods: Vec<String>,
    /// Model names (default: all).
    #[serde(default)]
    pub models: Vec<String>,
    /// Data set names (default: all).
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Scenario names (default: all).
    #[serde(default)]
    pub scenarios: Vec<String>,
    /// K values (default: each method's own).
    #[serde(default)]
    pub steps: Vec<usize>,
    /// Ablations (default: one, without changes).
    #[serde(default)]
    pub ablations: Vec<Ablation>,
    /// One seed: the shorthand of `seeds = [seed]`.
    pub seed: Option<u64>,
    /// Seeds (default: the file's).
    pub seeds: Option<Vec<u64>>,
    /// Hypernetwork scale laid over the file's `[hyper]`.
    #[serde(default)]
    pub hyper: Hyper,
    /// Training batches for this experiment's cells, over the scenarios' own (for a method
    /// whose default needs more training records than the files hold, such as MEND's 100).
    pub train_batches: Option<usize>,
    /// Training epochs for this experiment's cells, over the scenarios' own (a method whose
    /// search chose more than one); the rows say "(N epochs)".
    pub train_epochs: Option<usize>,
}

/// One ablation: a name and switches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ablation {
    /// Name in tables (default: the switches, `rank_decay=false`).
    pub name: Option<String>,
    /// Shared or step-specific networks.
    pub layout: Option<LayoutChoice>,
    /// Rank decay over steps.
    pub rank_decay: Option<bool>,
    /// Step-wise updating of a shared network.
    pub stepwise_update: Option<bool>,
    /// The reference's quirks (editor and data).
    pub reference_quirks: Option<bool>,
    /// Rank r.
    pub rank: Option<usize>,
    /// Blocks.
    pub blocks: Option<usize>,
    /// Adam learning rate.
    pub meta_lr: Option<f64>,
    /// Initial step size η.
    pub lr: Option<f64>,
    /// FT's Adam learning rate.
    pub ft_lr: Option<f64>,
    /// EMSEdit's L2 penalty weight ρ.
    pub reg_coef: Option<f64>,
}

impl Ablation {
    fn overrides(&self) -> Overrides {
        Overrides {
            layout: self.layout,
            rank_decay: self.rank_decay,
            stepwise_update: self.stepwise_update,
            reference_quirks: self.reference_quirks,
            rank: self.rank,
            blocks: self.blocks,
            meta_lr: self.meta_lr,
            lr: self.lr,
            ft_lr: self.ft_lr,
            reg_coef: self.reg_coef,
            steps: None,
        }
    }

    fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let o = self.overrides();
        let value = serde_json::to_value(&o).unwrap_or_default();
        o.set_names()
            .into_iter()
            .map(|k| {
                let v = value.get(k).map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                format!("{k}={}", v.unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One cell of the matrix: everything a run needs, by value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Stable key: a hash of what decides the result.
    pub key: String,
    /// The key of the cell's seed group: the same hash with the seed left out. The reports
    /// average the cells of a group.
    #[serde(default)]
    pub group: String,
    /// Human-readable id: `label | model | dataset | scenario | seed N`.
    pub id: String,
    /// The experiment that first produced the cell.
    pub experiment: String,
    /// The row label in tables (`EMSEdit (K=3)`, `MALMEN2 [no-decay]`).
    pub label: String,
    /// The method family's display name (`EMSEdit`, `MALMEN`), for K curves.
    pub family: String,
    /// The ablation's name ("" without one).
    pub ablation: String,
    /// The method with its overrides.
    pub method: MethodSpec,
    /// Model name.
    pub model: String,
    /// Model directory as written.
    pub model_path: String,
    /// Edited modules.
    pub modules: Vec<String>,
    /// Data set name.
    pub dataset: String,
    /// Data set definition.
    pub data: DatasetEntry,
    /// The world, for synthetic data.
    pub world: Option<WorldConfig>,
    /// Scenario name.
    pub scenario_name: String,
    /// The scenario (its seed is the cell's seed).
    pub scenario: ScenarioConfig,
    /// The general-capability tasks, when the scenario scores them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue: Option<GlueEntry>,
}

impl Cell {
    /// K.
    pub fn steps(&self) -> usize {
        self.method.steps()
    }

    /// The seed (the scenario's; the backend is seeded with it too).
    pub fn seed(&self) -> u64 {
        self.scenario.seed
    }
}

/// A parsed matrix with its resolved cells.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The file.
    pub file: MatrixFile,
    /// Where it came from, for messages.
    pub origin: String,
    /// The cells, deduplicated by key, in product order within each seed round: the cells of
    /// every experiment's first seed, then those of its second seed, and so on.
    pub cells: Vec<Cell>,
}

/// Expands `$NAME` / `${NAME}` of the variables the matrix knows: `EMSEDIT_DATA_DIR`
/// (default `../shared/data`) and `EMSEDIT_MODELS_DIR` (default: the models cache of
/// `cargo xtask fetch-models`, [`emsedit::models::models_dir`]).
pub fn expand(text: &str) -> String {
    let mut out = text.to_string();
    let models = emsedit::models::models_dir().to_string_lossy().into_owned();
    for (var, default) in [
        ("EMSEDIT_DATA_DIR", "../shared/data".to_string()),
        ("EMSEDIT_MODELS_DIR", models),
    ] {
        if out.contains(var) {
            let value = std::env::var(var).unwrap_or(default);
            out = out
                .replace(&format!("${{{var}}}"), &value)
                .replace(&format!("${var}"), &value);
        }
    }
    out
}

/// A path from the matrix: variables expanded, relative paths taken from `root`.
pub fn resolve(root: &Path, text: &str) -> PathBuf {
    let p = PathBuf::from(expand(text));
    if p.is_absolute() { p } else { root.join(p) }
}

/// FNV-1a, 64 bits: a hash that is the same on every platform and toolchain.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn pick<'a, T>(
    origin: &str,
    at: &str,
    wanted: &'a [String],
    all: &'a IndexMap<String, T>,
) -> Result<Vec<(&'a String, &'a T)>, String> {
    if wanted.is_empty() {
        return Ok(all.iter().collect());
    }
    wanted
        .iter()
        .enumerate()
        .map(|(i, name)| {
            all.get_key_value(name).ok_or_else(|| {
                let known: Vec<&str> = all.keys().map(String::as_str).collect();
                format!(
                    "{origin}: {at}[{i}]: `{name}` is not defined (defined: {})",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// Names with their entries, in the file's order.
type Named<'a, T> = Vec<(&'a String, &'a T)>;

/// An experiment's data sets and scenarios (default: all of the file's).
fn picked<'a>(
    file: &'a MatrixFile,
    origin: &str,
    e: usize,
    exp: &'a Experiment,
) -> Result<(Named<'a, DatasetEntry>, Named<'a, ScenarioEntry>), String> {
    let at = format!("experiments[{e}]");
    let datasets = pick(
        origin,
        &format!("{at}.datasets"),
        &exp.datasets,
        &file.datasets,
    )?;
    let scenarios = pick(
        origin,
        &format!("{at}.scenarios"),
        &exp.scenarios,
        &file.scenarios,
    )?;
    Ok((datasets, scenarios))
}

impl Matrix {
    /// Parses `text` (named `origin` in errors) and resolves its cells; model directories
    /// (their `config.json`, for the default modules) are found from `root`.
    pub fn parse(text: &str, origin: &str, root: &Path) -> Result<Self, String> {
        let file: MatrixFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let cells = cells(&file, origin, root)?;
        claims::check(&file.claims, &cells, origin)?;
        Ok(Self {
            file,
            origin: origin.to_string(),
            cells,
        })
    }
}

/// The seeds of one level (`at`: "" for the file, `experiments[i].` for an experiment):
/// `seeds`, or `seed` as a one-element list, or `None` when neither is given.
fn seed_list(
    origin: &str,
    at: &str,
    seed: Option<u64>,
    seeds: Option<&Vec<u64>>,
) -> Result<Option<Vec<u64>>, String> {
    match (seed, seeds) {
        (Some(_), Some(_)) => Err(format!(
            "{origin}: {at}seeds: `seed` is given too; give one of `seed` and `seeds`"
        )),
        (Some(s), None) => Ok(Some(vec![s])),
        (None, Some(list)) => {
            if list.is_empty() {
                return Err(format!("{origin}: {at}seeds: at least one is needed"));
            }
            for (i, s) in list.iter().enumerate() {
                if list[..i].contains(s) {
                    return Err(format!("{origin}: {at}seeds[{i}]: {s} is listed twice"));
                }
            }
            Ok(Some(list.clone()))
        }
        (None, None) => Ok(None),
    }
}

/// The file's seeds (default `[0]`).
fn file_seeds(file: &MatrixFile, origin: &str) -> Result<Vec<u64>, String> {
    Ok(seed_list(origin, "", file.seed, file.seeds.as_ref())?.unwrap_or_else(|| vec![0]))
}

/// The seeds of an experiment's cells on data set `data`: the experiment's own, else the data
/// set's, else the file's.
fn cell_seeds(
    file: &MatrixFile,
    origin: &str,
    e: usize,
    exp: &Experiment,
    (name, data): (&str, &DatasetEntry),
) -> Result<Vec<u64>, String> {
    let own = seed_list(
        origin,
        &format!("experiments[{e}]."),
        exp.seed,
        exp.seeds.as_ref(),
    )?;
    let data_seeds = || {
        seed_list(
            origin,
            &format!("datasets.{name}."),
            data.seed,
            data.seeds.as_ref(),
        )
    };
    match own {
        Some(list) => Ok(list),
        None => match data_seeds()? {
            Some(list) => Ok(list),
            None => file_seeds(file, origin),
        },
    }
}

/// `count` batches of scenario `name`'s edits fit in a machine word (`at`: the key that gave
/// `count`).
fn check_batches_fit(
    origin: &str,
    at: &str,
    (name, s): (&String, &ScenarioEntry),
    count: usize,
) -> Result<(), String> {
    match s.n_edits.checked_mul(count) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{origin}: {at}: {count} batches of scenarios.{name}'s {} edits do not fit in a \
             machine word",
            s.n_edits
        )),
    }
}

fn check_file(file: &MatrixFile, origin: &str) -> Result<(), String> {
    if file.name.trim().is_empty() {
        return Err(format!("{origin}: name: must not be empty"));
    }
    if file.experiments.is_empty() {
        return Err(format!("{origin}: experiments: at least one is needed"));
    }
    file_seeds(file, origin)?;
    for (e, exp) in file.experiments.iter().enumerate() {
        let at = format!("experiments[{e}]");
        let (datasets, scenarios) = picked(file, origin, e, exp)?;
        for (name, data) in datasets {
            cell_seeds(file, origin, e, exp, (name, data))?;
        }
        if exp.train_epochs == Some(0) {
            return Err(format!("{origin}: {at}.train_epochs: must be at least 1"));
        }
        let Some(count) = exp.train_batches else {
            continue;
        };
        if count == 0 {
            return Err(format!("{origin}: {at}.train_batches: must be at least 1"));
        }
        for scenario in scenarios {
            check_batches_fit(origin, &format!("{at}.train_batches"), scenario, count)?;
        }
    }
    for (name, s) in &file.scenarios {
        for (key, count) in [
            ("num_seq", s.num_seq),
            ("train_batches", s.train_batches.unwrap_or(s.num_seq)),
        ] {
            check_batches_fit(origin, &format!("scenarios.{name}.{key}"), (name, s), count)?;
        }
        let at = format!("{origin}: scenarios.{name}");
        if s.n_edits == 0 {
            return Err(format!("{at}.n_edits: must be at least 1"));
        }
        if s.num_seq == 0 {
            return Err(format!("{at}.num_seq: must be at least 1"));
        }
        if s.train_epochs == Some(0) {
            return Err(format!("{at}.train_epochs: must be at least 1"));
        }
        if s.chunk == Some(0) {
            return Err(format!("{at}.chunk: must be at least 1"));
        }
        if s.glue_every == Some(0) {
            return Err(format!("{at}.glue_every: must be at least 1"));
        }
    }
    for (name, d) in &file.datasets {
        let at = format!("{origin}: datasets.{name}");
        match (d.kind.synthetic(), &d.train, &d.eval) {
            (true, Some(_), _) => return Err(format!("{at}.train: synthetic data has no files")),
            (true, _, Some(_)) => return Err(format!("{at}.eval: synthetic data has no files")),
            (true, _, _) if d.validation.is_some() => {
                return Err(format!(
                    "{at}.validation: synthetic data has no train file to carve it from"
                ));
            }
            (false, None, _) => return Err(format!("{at}.train: a file is needed")),
            (false, _, None) if d.validation.is_none() => {
                return Err(format!("{at}.eval: a file is needed"));
            }
            _ => {}
        }
        if d.limit == Some(0) {
            return Err(format!("{at}.limit: must be at least 1"));
        }
        if d.validation == Some(0) {
            return Err(format!("{at}.validation: must be at least 1"));
        }
    }
    if file.glue.tests == 0 {
        return Err(format!("{origin}: glue.tests: must be at least 1"));
    }
    if file.datasets.values().any(|d| d.kind.synthetic()) {
        file.world
            .config()
            .check()
            .map_err(|e| format!("{origin}: world: {e}"))?;
    }
    Ok(())
}

fn cells(file: &MatrixFile, origin: &str, root: &Path) -> Result<Vec<Cell>, String> {
    check_file(file, origin)?;
    let mut configs: HashMap<String, ModelConfig> = HashMap::new();
    // (seed round: the seed's position in its experiment's list, cell)
    let mut out: Vec<(usize, Cell)> = Vec::new();
    let mut seen = HashSet::new();
    let world = file.world.config();
    for (e, exp) in file.experiments.iter().enumerate() {
        let at = format!("experiments[{e}]");
        if exp.methods.is_empty() {
            return Err(format!("{origin}: {at}.methods: at least one is needed"));
        }
        let models = pick(origin, &format!("{at}.models"), &exp.models, &file.models)?;
        let (datasets, scenarios) = picked(file, origin, e, exp)?;
        let steps: Vec<Option<usize>> = if exp.steps.is_empty() {
            vec![None]
        } else {
            exp.steps.iter().map(|&k| Some(k)).collect()
        };
        let ablations = if exp.ablations.is_empty() {
            vec![Ablation::default()]
        } else {
            exp.ablations.clone()
        };
        let hyper = file.hyper.overrides().merged(&exp.hyper.overrides());
        for (m, name) in exp.methods.iter().enumerate() {
            let base = MethodSpec::parse(name)
                .map_err(|err| format!("{origin}: {at}.methods[{m}]: {err}"))?;
            for &(model_name, model) in &models {
                for &(data_name, data) in &datasets {
                    let seeds = cell_seeds(file, origin, e, exp, (data_name, data))?;
                    for &(scenario_name, s) in &scenarios {
                        for &k in &steps {
                            for ablation in &ablations {
                                let mut spec = base.clone();
                                let mut o = match base.kind {
                                    k if k.has_hypernet() => Overrides {
                                        ft_lr: None,
                                        ..hyper.clone()
                                    },
                                    // UltraEdit's constant step size is the same η.
                                    MethodKind::UltraEdit => Overrides {
                                        lr: hyper.lr,
                                        ..Overrides::default()
                                    },
                                    _ => Overrides {
                                        ft_lr: hyper.ft_lr,
                                        ..Overrides::default()
                                    },
                                };
                                o = o.merged(&ablation.overrides());
                                // K equal to the name's own is no override: one cell, not two.
                                o.steps = k.filter(|&k| k != base.named_steps);
                                spec.overrides = o;
                                spec.check().map_err(|err| {
                                    format!("{origin}: {at} ({}): {err}", exp.name)
                                })?;
                                let quirks = s.reference_quirks.unwrap_or(false)
                                    || spec.overrides.reference_quirks == Some(true);
                                let mut scenario = ScenarioConfig::sequential(s.n_edits, s.num_seq);
                                scenario.train_batches = exp.train_batches.or(s.train_batches);
                                scenario.train_epochs =
                                    exp.train_epochs.or(s.train_epochs).unwrap_or(1);
                                scenario.chunk = s.chunk.unwrap_or(4);
                                scenario.curve = s.curve.unwrap_or(false);
                                scenario.reference_quirks = quirks;
                                scenario.glue_every = s.glue_every;
                                if data.kind.synthetic() {
                                    let need = s.n_edits.checked_mul(s.num_seq).ok_or_else(|| {
                                        format!(
                                            "{origin}: scenarios.{scenario_name}: {} × {} edits \
                                             is more than a machine word holds",
                                            s.num_seq, s.n_edits
                                        )
                                    })?;
                                    if need > world.eval_records {
                                        return Err(format!(
                                            "{origin}: scenarios.{scenario_name}: {} × {} edits \
                                             need {need} eval records, world.eval_records is {}",
                                            s.num_seq, s.n_edits, world.eval_records
                                        ));
                                    }
                                }
                                let modules = match &model.modules {
                                    Some(list) if !list.is_empty() => list.clone(),
                                    Some(_) => {
                                        return Err(format!(
                                            "{origin}: models.{model_name}.modules: empty list"
                                        ));
                                    }
                                    None => {
                                        let config = model_config(
                                            &mut configs,
                                            origin,
                                            model_name,
                                            &model.path,
                                            root,
                                        )?;
                                        default_modules_for(config, Mode::of(&scenario))
                                    }
                                };
                                let ablation_name = if ablation.overrides().set_names().is_empty()
                                    && ablation.name.is_none()
                                {
                                    String::new()
                                } else {
                                    ablation.label()
                                };
                                for (round, &seed) in seeds.iter().enumerate() {
                                    let mut scenario = scenario.clone();
                                    scenario.seed = seed;
                                    let mut cell = make_cell(
                                        &exp.name,
                                        spec.clone(),
                                        ablation_name.clone(),
                                        (model_name, model),
                                        modules.clone(),
                                        (data_name, data),
                                        data.kind.synthetic().then_some(world),
                                        (scenario_name, scenario),
                                        (exp.train_batches, exp.train_epochs),
                                    );
                                    if cell.scenario.glue_every.is_some() {
                                        cell.glue = Some(file.glue.clone());
                                        let glue =
                                            serde_json::to_string(&cell.glue).unwrap_or_default();
                                        for key in [&mut cell.key, &mut cell.group] {
                                            let h = fnv1a(format!("{key}{glue}").as_bytes());
                                            *key = format!("{h:016x}");
                                        }
                                    }
                                    if seen.insert(cell.key.clone()) {
                                        out.push((round, cell));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // Seed rounds first (stable: product order within a round), so that a partial run has
    // every row at fewer seeds rather than some rows at every seed.
    out.sort_by_key(|(round, _)| *round);
    Ok(out.into_iter().map(|(_, cell)| cell).collect())
}

fn model_config<'a>(
    cache: &'a mut HashMap<String, ModelConfig>,
    origin: &str,
    name: &str,
    path: &str,
    root: &Path,
) -> Result<&'a ModelConfig, String> {
    if !cache.contains_key(name) {
        let file = resolve(root, path).join("config.json");
        let config = ModelConfig::load(&file).map_err(|e| {
            format!(
                "{origin}: models.{name}.path: {e} (a Hugging Face model directory is needed; \
                 or list the edited modules in models.{name}.modules)"
            )
        })?;
        cache.insert(name.to_string(), config);
    }
    cache
        .get(name)
        .ok_or_else(|| format!("{origin}: models.{name}: not loaded"))
}

#[allow(clippy::too_many_arguments)]
fn make_cell(
    experiment: &str,
    method: MethodSpec,
    ablation: String,
    (model, model_entry): (&String, &ModelEntry),
    modules: Vec<String>,
    (dataset, data): (&String, &DatasetEntry),
    world: Option<WorldConfig>,
    (scenario_name, scenario): (&String, ScenarioConfig),
    (budget, epochs): (Option<usize>, Option<usize>),
) -> Cell {
    // What decides the result: the resolved editor configuration (so that two spellings of
    // one configuration are one cell), the model, the data and the scenario.
    let editor = method
        .config(modules.clone(), &scenario)
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .unwrap_or_default();
    let fingerprint = |scenario: &ScenarioConfig| {
        let json = serde_json::json!({
            "editor": &editor,
            "model": &model_entry.path,
            "modules": &modules,
            "data": data,
            "world": world,
            "scenario": scenario,
        });
        fnv1a(json.to_string().as_bytes())
    };
    let hash = fingerprint(&scenario);
    // The group: the same fingerprint with the seed fixed, so the seeds of a cell share it.
    let group = fingerprint(&ScenarioConfig {
        seed: 0,
        ..scenario.clone()
    });
    let mut label = if ablation.is_empty() {
        method.display_name()
    } else {
        format!("{} [{ablation}]", method.display_name())
    };
    // An experiment's own training budget shows, so its cells never share an id with the
    // scenario's.
    if let Some(count) = budget {
        let noun = if count == 1 { "batch" } else { "batches" };
        label = format!("{label} ({count} training {noun})");
    }
    if let Some(count) = epochs {
        let noun = if count == 1 { "epoch" } else { "epochs" };
        label = format!("{label} ({count} {noun})");
    }
    let family = MethodSpec {
        overrides: Overrides::default(),
        named_steps: if method.kind == MethodKind::EmsEdit {
            2
        } else {
            1
        },
        ..method.clone()
    }
    .display_name();
    Cell {
        key: format!("{hash:016x}"),
        group: format!("{group:016x}"),
        id: format!(
            "{label} | {model} | {dataset} | {scenario_name} | seed {}",
            scenario.seed
        ),
        experiment: experiment.to_string(),
        label,
        family,
        ablation,
        method,
        model: model.clone(),
        model_path: model_entry.path.clone(),
        modules,
        dataset: dataset.clone(),
        // The seeds are the cells' business, not the data's.
        data: DatasetEntry {
            seed: None,
            seeds: None,
            ..data.clone()
        },
        world,
        scenario_name: scenario_name.clone(),
        scenario,
        glue: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    const SMALL: &str = r#"
name = "small"
seed = 3
[world]
subjects = 40
train_records = 12
eval_records = 12
[hyper]
rank = 8
[models.tiny]
path = "fixtures/llm/gpt2"
[datasets.zsre]
kind = "synthetic-zsre"
[scenarios.seq]
n_edits = 4
num_seq = 2
[scenarios.batch]
n_edits = 8
num_seq = 1
[[experiments]]
name = "main"
methods = ["ft", "EMSEdit"]
[[experiments]]
name = "sweep"
methods = ["emsedit"]
scenarios = ["batch"]
steps = [1, 2, 3]
[[experiments]]
name = "ablation"
methods = ["emsedit"]
scenarios = ["seq"]
ablations = [{ name = "no-decay", rank_decay = false }, { stepwise_update = false }]
"#;

    #[test]
    fn cells_are_the_deduplicated_product() {
        let m = Matrix::parse(SMALL, "small.toml", &root()).unwrap();
        let ids: Vec<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "FT | tiny | zsre | seq | seed 3",
                "FT | tiny | zsre | batch | seed 3",
                "EMSEdit | tiny | zsre | seq | seed 3",
                "EMSEdit | tiny | zsre | batch | seed 3",
                "EMSEdit (K=1) | tiny | zsre | batch | seed 3",
                "EMSEdit (K=3) | tiny | zsre | batch | seed 3",
                "EMSEdit [no-decay] | tiny | zsre | seq | seed 3",
                "EMSEdit [stepwise_update=false] | tiny | zsre | seq | seed 3",
            ]
        );
        let ems = &m.cells[3];
        assert_eq!(
            ems.method.overrides.rank,
            Some(8),
            "[hyper] reaches hypernetworks"
        );
        assert_eq!(
            m.cells[0].method.overrides,
            Overrides::default(),
            "but not FT"
        );
        assert_eq!(
            ems.modules,
            ["transformer.h.1.mlp.c_proj", "transformer.h.2.mlp.c_proj"]
        );
        assert_eq!(ems.seed(), 3);
        assert_eq!(m.cells[5].family, "EMSEdit");
        // Keys are stable and unique.
        let again = Matrix::parse(SMALL, "small.toml", &root()).unwrap();
        assert_eq!(m.cells, again.cells);
        let keys: HashSet<&str> = m.cells.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys.len(), m.cells.len());
        // A changed setting changes the key of the cells it touches only.
        let changed = SMALL.replace("n_edits = 8", "n_edits = 6");
        let c = Matrix::parse(&changed, "small.toml", &root()).unwrap();
        assert_eq!(c.cells[0].key, m.cells[0].key);
        assert_ne!(c.cells[1].key, m.cells[1].key);
    }

    #[test]
    fn an_experiments_train_epochs_reach_its_cells_only_and_show_in_their_rows() {
        let m = Matrix::parse(SMALL, "small.toml", &root()).unwrap();
        let text = SMALL.replace("steps = [1, 2, 3]", "steps = [1, 2, 3]\ntrain_epochs = 2");
        let t = Matrix::parse(&text, "small.toml", &root()).unwrap();
        let two: Vec<&str> = t
            .cells
            .iter()
            .filter(|c| c.scenario.train_epochs == 2)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(
            two,
            [
                "EMSEdit (K=1) (2 epochs) | tiny | zsre | batch | seed 3",
                "EMSEdit (2 epochs) | tiny | zsre | batch | seed 3",
                "EMSEdit (K=3) (2 epochs) | tiny | zsre | batch | seed 3",
            ]
        );
        // The other experiments' cells keep their epochs and keys.
        let others = |m: &Matrix| -> Vec<(String, usize)> {
            m.cells
                .iter()
                .filter(|c| c.experiment != "sweep" && c.scenario.train_epochs == 1)
                .map(|c| (c.key.clone(), c.scenario.train_epochs))
                .collect()
        };
        assert_eq!(others(&m), others(&t));
        let zero = SMALL.replace("steps = [1, 2, 3]", "steps = [1, 2, 3]\ntrain_epochs = 0");
        let err = Matrix::parse(&zero, "small.toml", &root()).unwrap_err();
        assert!(
            err.contains("experiments[1].train_epochs: must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn an_experiments_train_batches_reach_its_cells_only() {
        let m = Matrix::parse(SMALL, "small.toml", &root()).unwrap();
        let text = SMALL.replace("steps = [1, 2, 3]", "steps = [1, 2, 3]\ntrain_batches = 5");
        let t = Matrix::parse(&text, "small.toml", &root()).unwrap();
        let keys = |m: &Matrix, sweep: bool| -> Vec<(String, Option<usize>)> {
            m.cells
                .iter()
                .filter(|c| sweep || c.experiment != "sweep")
                .map(|c| (c.key.clone(), c.scenario.train_batches))
                .collect()
        };
        let (before, after) = (keys(&m, false), keys(&t, true));
        // The sweep's K=1 and K=3 cells get 5 batches and new keys; its K=2 cell is no
        // longer `main`'s (which keeps the scenario's default), so it is one cell more, and
        // the ids say so.
        assert_eq!(after.len(), m.cells.len() + 1);
        let five: Vec<&str> = t
            .cells
            .iter()
            .filter(|c| c.scenario.train_batches == Some(5))
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(
            five,
            [
                "EMSEdit (K=1) (5 training batches) | tiny | zsre | batch | seed 3",
                "EMSEdit (5 training batches) | tiny | zsre | batch | seed 3",
                "EMSEdit (K=3) (5 training batches) | tiny | zsre | batch | seed 3",
            ]
        );
        let ids: HashSet<&str> = t.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), t.cells.len());
        assert_eq!(before.len(), 6, "main's 4 and the ablation's 2");
        for (key, batches) in &before {
            assert_eq!(*batches, None);
            assert!(
                after.contains(&(key.clone(), None)),
                "main's cells keep their keys"
            );
        }
    }

    #[test]
    fn seeds_are_an_axis_of_cells_that_share_a_group() {
        // File-level `seeds`, overridden by one experiment's `seeds` and another's `seed`.
        let text = SMALL
            .replace("seed = 3", "seeds = [3, 4]")
            .replace("steps = [1, 2, 3]", "steps = [1, 2, 3]\nseeds = [4, 5, 6]")
            .replace("scenarios = [\"seq\"]", "scenarios = [\"seq\"]\nseed = 9");
        let m = Matrix::parse(&text, "small.toml", &root()).unwrap();
        let ids: Vec<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                // First seed round: each experiment's first seed. The sweep's K = 2 at seed 4
                // is `main`'s cell of its second round.
                "FT | tiny | zsre | seq | seed 3",
                "FT | tiny | zsre | batch | seed 3",
                "EMSEdit | tiny | zsre | seq | seed 3",
                "EMSEdit | tiny | zsre | batch | seed 3",
                "EMSEdit (K=1) | tiny | zsre | batch | seed 4",
                "EMSEdit (K=3) | tiny | zsre | batch | seed 4",
                "EMSEdit [no-decay] | tiny | zsre | seq | seed 9",
                "EMSEdit [stepwise_update=false] | tiny | zsre | seq | seed 9",
                // Second round.
                "FT | tiny | zsre | seq | seed 4",
                "FT | tiny | zsre | batch | seed 4",
                "EMSEdit | tiny | zsre | seq | seed 4",
                "EMSEdit | tiny | zsre | batch | seed 4",
                "EMSEdit (K=1) | tiny | zsre | batch | seed 5",
                "EMSEdit | tiny | zsre | batch | seed 5",
                "EMSEdit (K=3) | tiny | zsre | batch | seed 5",
                // Third round: only the sweep has a third seed.
                "EMSEdit (K=1) | tiny | zsre | batch | seed 6",
                "EMSEdit | tiny | zsre | batch | seed 6",
                "EMSEdit (K=3) | tiny | zsre | batch | seed 6",
            ]
        );
        for c in &m.cells {
            assert_eq!(c.scenario.seed, c.seed());
        }
        // Every seed its own key; the seeds of one configuration one group.
        let keys: HashSet<&str> = m.cells.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys.len(), m.cells.len());
        let group = |id: &str| {
            let c = m.cells.iter().find(|c| c.id == id).unwrap();
            c.group.clone()
        };
        assert_eq!(
            group("EMSEdit | tiny | zsre | batch | seed 3"),
            group("EMSEdit | tiny | zsre | batch | seed 6")
        );
        assert_ne!(
            group("EMSEdit | tiny | zsre | batch | seed 3"),
            group("EMSEdit (K=1) | tiny | zsre | batch | seed 4")
        );
        let groups: HashSet<&str> = m.cells.iter().map(|c| c.group.as_str()).collect();
        assert_eq!(groups.len(), 8);
        // A cell keeps its key whether its seed comes from `seed` or `seeds`, at either level.
        let one = Matrix::parse(SMALL, "small.toml", &root()).unwrap();
        assert_eq!(one.cells[0].key, m.cells[0].key);
        let listed = SMALL.replace("seed = 3", "seeds = [3]");
        let listed = Matrix::parse(&listed, "small.toml", &root()).unwrap();
        assert_eq!(listed.cells, one.cells);
        // No seed at all is seed 0.
        let none = SMALL.replace("seed = 3", "");
        let none = Matrix::parse(&none, "small.toml", &root()).unwrap();
        assert!(none.cells.iter().all(|c| c.seed() == 0));
    }

    #[test]
    fn a_data_sets_seeds_serve_experiments_without_their_own() {
        let with_cf = |seeds: &str| {
            SMALL.replace(
                "[scenarios.seq]",
                &format!(
                    "[datasets.cf]\nkind = \"synthetic-counterfact\"\n{seeds}\n[scenarios.seq]"
                ),
            )
        };
        let text = with_cf("seeds = [7]").replace("seed = 3", "seeds = [3, 4]");
        let m = Matrix::parse(&text, "small.toml", &root()).unwrap();
        let seeds_of = |id_start: &str| -> Vec<u64> {
            m.cells
                .iter()
                .filter(|c| c.id.starts_with(id_start))
                .map(Cell::seed)
                .collect()
        };
        assert_eq!(seeds_of("FT | tiny | zsre | seq |"), [3, 4]);
        assert_eq!(seeds_of("FT | tiny | cf | seq |"), [7]);
        assert_eq!(seeds_of("EMSEdit (K=1) | tiny | cf | batch |"), [7]);
        // An experiment's own seeds win over the data set's.
        let text = text.replace("steps = [1, 2, 3]", "steps = [1, 2, 3]\nseeds = [5]");
        let own = Matrix::parse(&text, "small.toml", &root()).unwrap();
        let cf_k1: Vec<u64> = own
            .cells
            .iter()
            .filter(|c| c.id.starts_with("EMSEdit (K=1) | tiny | cf |"))
            .map(Cell::seed)
            .collect();
        assert_eq!(cf_k1, [5]);
        // The data set's seeds are not part of its cells' keys or data.
        let plain = with_cf("").replace("seed = 3", "seed = 7");
        let plain = Matrix::parse(&plain, "small.toml", &root()).unwrap();
        let cell = |m: &Matrix, id: &str| m.cells.iter().find(|c| c.id == id).cloned().unwrap();
        let id = "FT | tiny | cf | seq | seed 7";
        assert_eq!(cell(&m, id), cell(&plain, id));
        let err = Matrix::parse(&with_cf("seeds = []"), "small.toml", &root()).unwrap_err();
        assert!(
            err.contains("small.toml: datasets.cf.seeds: at least one"),
            "{err}"
        );
    }

    #[test]
    fn ultraedit_takes_only_the_step_size_of_hyper() {
        let text = SMALL.replace("rank = 8", "rank = 8\nlr = 0.5").replace(
            "methods = [\"ft\", \"EMSEdit\"]",
            "methods = [\"ultraedit\"]",
        );
        let m = Matrix::parse(&text, "small.toml", &root()).unwrap();
        let o = &m.cells[0].method.overrides;
        assert_eq!((o.lr, o.rank), (Some(0.5), None), "{}", m.cells[0].id);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let cases = [
            (SMALL.replace("rank = 8", "rnak = 8"), "rnak"),
            (
                SMALL.replace("\"ft\", ", "\"rome\", "),
                "experiments[0].methods[0]",
            ),
            (
                SMALL.replace("scenarios = [\"batch\"]", "scenarios = [\"bach\"]"),
                "experiments[1].scenarios[0]: `bach`",
            ),
            (
                SMALL.replace("num_seq = 2", "num_seq = 0"),
                "scenarios.seq.num_seq",
            ),
            (SMALL.replace("num_seq = 2", "num_seq = 4"), "scenarios.seq"),
            (
                SMALL.replace("path = \"fixtures/llm/gpt2\"", "path = \"nowhere\""),
                "models.tiny.path",
            ),
            (
                SMALL.replace(
                    "methods = [\"ft\", \"EMSEdit\"]",
                    "methods = [\"ft\"]\nsteps = [2]",
                ),
                "no setting `steps`",
            ),
            (
                SMALL.replace("kind = \"synthetic-zsre\"", "kind = \"zsre\""),
                "datasets.zsre.train",
            ),
            (SMALL.replace("name = \"small\"", "name = 3"), "name"),
            (
                SMALL.replace("seed = 3", "seed = 3\nseeds = [1, 2]"),
                "small.toml: seeds: `seed` is given too",
            ),
            (
                SMALL.replace(
                    "steps = [1, 2, 3]",
                    "steps = [1, 2, 3]\nseed = 1\nseeds = [1]",
                ),
                "experiments[1].seeds: `seed` is given too",
            ),
            (
                SMALL.replace("steps = [1, 2, 3]", "steps = [1, 2, 3]\nseeds = []"),
                "experiments[1].seeds: at least one",
            ),
            (
                SMALL.replace("seed = 3", "seeds = [3, 1, 3]"),
                "seeds[2]: 3 is listed twice",
            ),
            (SMALL.replace("seed = 3", "seeds = [-1]"), "seeds"),
            (
                SMALL.replace("steps = [1, 2, 3]", "steps = [1, 2, 3]\ntrain_batches = 0"),
                "experiments[1].train_batches: must be at least 1",
            ),
        ];
        for (text, want) in cases {
            let err = Matrix::parse(&text, "small.toml", &root()).unwrap_err();
            assert!(err.starts_with("small.toml: "), "{err}");
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn variables_expand_with_defaults() {
        let root = Path::new("/r");
        let p = resolve(root, "${EMSEDIT_DATA_DIR}/zsre/train.json");
        let data = std::env::var("EMSEDIT_DATA_DIR").unwrap_or_else(|_| "../shared/data".into());
        assert_eq!(p, root.join(format!("{data}/zsre/train.json")));
        assert_eq!(resolve(root, "/abs/x"), PathBuf::from("/abs/x"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn the_presets_parse() {
        for (name, text) in super::super::PRESETS {
            let file: MatrixFile = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_file(&file, name).unwrap();
        }
    }
}
