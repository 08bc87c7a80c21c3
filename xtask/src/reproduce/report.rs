//! The Table-1 style markdown table and the CSV of the finished cells. The table has one
//! row per configuration: the mean over its finished seeds (± the sample standard deviation);
//! the CSV keeps one line per cell, that is per seed.

use std::fmt::Write as _;

use emsedit::Scores;
use emsedit::eval::glue::GlueTask;
use emsedit::eval::ripple::{FamilyScore, RippleReport};
use emsedit::eval::scenario::GluePoint;

use super::matrix::Cell;
use super::runner::Record;

/// A finished cell of the current matrix: the cell as the matrix defines it now, and its
/// result.
pub type Row<'a> = (&'a Cell, &'a Record);

/// A section of the table: one model, data set and scenario.
pub fn section_key(cell: &Cell) -> (String, String, String) {
    (
        cell.model.clone(),
        cell.dataset.clone(),
        cell.scenario_name.clone(),
    )
}

/// A mean with the sample standard deviation (`None` below two values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator).
    pub sd: Option<f64>,
}

/// Mean and sample standard deviation of `xs` (mean 0 when empty).
pub fn stat(xs: &[f64]) -> Stat {
    let n = xs.len();
    if n == 0 {
        return Stat {
            mean: 0.0,
            sd: None,
        };
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let sd = (n > 1).then(|| {
        let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    Stat { mean, sd }
}

fn mean(xs: &[f64]) -> f64 {
    stat(xs).mean
}

/// The finished seeds of one configuration (one seed group, [`Cell::group`]) in one section:
/// a row of the table, a point or line of the plots.
#[derive(Debug, Clone)]
pub struct Agg<'a> {
    /// The cell of the first finished seed (label, method, scenario: the same for every seed).
    pub cell: &'a Cell,
    /// The finished seeds' cells and results, in matrix order.
    pub runs: Vec<Row<'a>>,
    /// The seeds the matrix has for this row.
    pub planned: Vec<u64>,
}

impl Agg<'_> {
    /// Finished seeds.
    pub fn n(&self) -> usize {
        self.runs.len()
    }

    /// A number of every finished seed.
    pub fn values(&self, f: impl Fn(&Record) -> f64) -> Vec<f64> {
        self.runs.iter().map(|(_, r)| f(r)).collect()
    }

    /// Mean ± sd of a score after the whole stream.
    pub fn after(&self, f: fn(&Scores) -> f64) -> Stat {
        stat(&self.values(|r| f(&r.report.after)))
    }

    /// The mean scores after the whole stream.
    pub fn mean_after(&self) -> Scores {
        mean_scores(self.runs.iter().map(|(_, r)| &r.report.after))
    }

    /// Mean training seconds per edit, `None` for methods without a training phase (FT,
    /// UltraEdit).
    pub fn train_time(&self) -> Option<f64> {
        has_training(self.cell).then(|| mean(&self.values(|r| r.report.train_seconds_per_edit)))
    }

    /// Training records per run (the mean over seeds, which all see the same count); 0 for
    /// methods without a training phase, whose older records counted an experiment's
    /// `train_batches` they never trained on.
    pub fn train_records(&self) -> String {
        if !has_training(self.cell) {
            return "0".into();
        }
        let counts = self.values(|r| r.report.train_records as f64);
        format!("{}", mean(&counts).round())
    }

    /// Mean editing seconds per edit.
    pub fn edit_time(&self) -> f64 {
        mean(&self.values(|r| r.report.edit_seconds_per_edit))
    }

    /// Mean peak memory over the seeds that measured it (0: none did).
    pub fn peak_memory(&self) -> u64 {
        let known: Vec<f64> = self
            .values(|r| r.report.peak_memory_bytes as f64)
            .into_iter()
            .filter(|&b| b > 0.0)
            .collect();
        mean(&known).round() as u64
    }

    /// The general-capability F1 (×100) per task along the stream, mean over the seeds that
    /// scored it: `(edits, [(task, F1)])`, as long as the shortest run's.
    pub fn mean_glue(&self) -> GlueCurve {
        let runs: Vec<&Vec<GluePoint>> = self
            .runs
            .iter()
            .map(|(_, r)| &r.report.glue)
            .filter(|g| !g.is_empty())
            .collect();
        let len = runs.iter().map(|g| g.len()).min().unwrap_or(0);
        (0..len)
            .map(|t| {
                let first = &runs[0][t];
                let tasks = first
                    .scores
                    .iter()
                    .enumerate()
                    .map(|(i, score)| {
                        let f1: Vec<f64> = runs
                            .iter()
                            .filter_map(|g| g[t].scores.get(i))
                            .map(|s| 100.0 * s.f1)
                            .collect();
                        (score.task, mean(&f1))
                    })
                    .collect();
                (first.edits, tasks)
            })
            .collect()
    }

    /// The mean curve over the seeds that scored one (curve mode), as long as the shortest.
    pub fn mean_curve(&self) -> Vec<Scores> {
        let curves: Vec<&Vec<Scores>> = self
            .runs
            .iter()
            .map(|(_, r)| &r.report.curve)
            .filter(|c| !c.is_empty())
            .collect();
        let len = curves.iter().map(|c| c.len()).min().unwrap_or(0);
        (0..len)
            .map(|t| mean_scores(curves.iter().map(|c| &c[t])))
            .collect()
    }
}

fn mean_scores<'s>(scores: impl Iterator<Item = &'s Scores>) -> Scores {
    let all: Vec<&Scores> = scores.collect();
    let of = |f: fn(&Scores) -> f64| mean(&all.iter().map(|s| f(s)).collect::<Vec<_>>());
    Scores {
        efficacy: of(|s| s.efficacy),
        generalization: of(|s| s.generalization),
        specificity: of(|s| s.specificity),
    }
}

/// A row of the table: its section and seed group.
type RowKey = ((String, String, String), String);

fn row_key(cell: &Cell) -> RowKey {
    (section_key(cell), cell.group.clone())
}

/// Every row of the matrix with its seeds, in the order the rows first appear in `cells`.
fn planned(cells: &[Cell]) -> Vec<(RowKey, Vec<u64>)> {
    let mut out: Vec<(RowKey, Vec<u64>)> = Vec::new();
    for c in cells {
        let k = row_key(c);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, seeds)) => seeds.push(c.seed()),
            None => out.push((k, vec![c.seed()])),
        }
    }
    out
}

/// The finished cells (`rows`) grouped by section and seed group, in the order the groups
/// first appear in `cells` (the matrix), which also gives each group its planned seeds.
pub fn aggregate<'a>(cells: &'a [Cell], rows: &[Row<'a>]) -> Vec<Agg<'a>> {
    let planned = planned(cells);
    let mut out: Vec<(usize, Agg<'a>)> = Vec::new();
    for &row in rows {
        let k = row_key(row.0);
        let at = planned.iter().position(|(g, _)| *g == k);
        match out.iter_mut().find(|(_, a)| row_key(a.cell) == k) {
            Some((_, a)) => a.runs.push(row),
            None => out.push((
                at.unwrap_or(usize::MAX),
                Agg {
                    cell: row.0,
                    runs: vec![row],
                    planned: at.map_or_else(|| vec![row.0.seed()], |i| planned[i].1.clone()),
                },
            )),
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, a)| a).collect()
}

/// A section's key ([`section_key`]) and rows.
pub type Section<'r, 'a> = ((String, String, String), Vec<&'r Agg<'a>>);

/// The rows grouped by [`section_key`], sections and rows in matrix order.
pub fn sections<'r, 'a>(aggs: &'r [Agg<'a>]) -> Vec<Section<'r, 'a>> {
    let mut out: Vec<Section<'r, 'a>> = Vec::new();
    for agg in aggs {
        let key = section_key(agg.cell);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(agg),
            None => out.push((key, vec![agg])),
        }
    }
    out
}

/// Whether the method has a training phase (not FT, not UltraEdit).
pub fn has_training(cell: &Cell) -> bool {
    cell.method.kind.has_hypernet()
}

fn describe(cell: &Cell) -> String {
    let s = &cell.scenario;
    if s.num_seq == 1 {
        format!("batch editing, {} edits", s.n_edits)
    } else {
        format!(
            "sequential editing, {} × {} = {} edits",
            s.num_seq,
            s.n_edits,
            s.num_seq.saturating_mul(s.n_edits)
        )
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

/// A score ×100: `mean ± sd`, or the mean alone for one seed.
fn pct_stat(s: Stat) -> String {
    match s.sd {
        Some(sd) => format!("{} ± {}", pct(s.mean), pct(sd)),
        None => pct(s.mean),
    }
}

fn seed_list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many seeds the rows have: "every row over 5 seeds (0, 1, 2, 3, 4)", or per seed list
/// with its number of rows when they differ.
fn seeds_text(aggs_planned: &[Vec<u64>]) -> String {
    let mut sets: Vec<(Vec<u64>, usize)> = Vec::new();
    for seeds in aggs_planned {
        match sets.iter_mut().find(|(s, _)| s == seeds) {
            Some((_, count)) => *count += 1,
            None => sets.push((seeds.clone(), 1)),
        }
    }
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    match sets.as_slice() {
        [] => "no rows".into(),
        [(seeds, _)] => format!(
            "every row over {} ({})",
            plural(seeds.len(), "seed", "seeds"),
            seed_list(seeds)
        ),
        _ => {
            sets.sort_by_key(|s| std::cmp::Reverse(s.1));
            let parts: Vec<String> = sets
                .iter()
                .map(|(seeds, rows)| {
                    format!(
                        "{} over {} ({})",
                        plural(*rows, "row", "rows"),
                        plural(seeds.len(), "seed", "seeds"),
                        seed_list(seeds)
                    )
                })
                .collect();
            parts.join(", ")
        }
    }
}

fn secs(x: f64) -> String {
    if x < 5e-6 {
        "0".into()
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{:.2}m", 1000.0 * x)
    }
}

fn mib(bytes: u64) -> String {
    if bytes == 0 {
        "–".into()
    } else {
        format!("{:.0}", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// Which code computed the finished cells (`Record::code`), most cells first.
fn code_text(aggs: &[Agg]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, r) in aggs.iter().flat_map(|a| &a.runs) {
        let code = r.code.clone().unwrap_or_else(|| "not recorded".into());
        match counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => counts.push((code, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let list: Vec<String> = counts.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    format!(
        "Code that computed the cells (commit: cells; cells from before commits were recorded \
         say `not recorded`): {}.",
        list.join(", ")
    )
}

/// The markdown table: one section per model × data set × scenario, one row per method
/// (seed group): efficacy / generalization / specificity ×100 as mean ± sd over the finished
/// seeds, their number, mean train and edit seconds per edit, mean peak memory. `cells` is
/// the whole matrix (for the counts and the planned seeds).
pub fn markdown(title: &str, cells: &[Cell], aggs: &[Agg]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {title}\n");
    let planned: Vec<Vec<u64>> = planned(cells).into_iter().map(|(_, s)| s).collect();
    let finished: usize = aggs.iter().map(Agg::n).sum();
    let _ = writeln!(
        out,
        "{finished} of {} cells finished; {}. Scores ×100 after the whole edit stream \
         (efficacy, generalization, specificity) are the mean over a row's finished seeds \
         (column n; `2/5`: 2 of 5 finished), ± the sample standard deviation when more than \
         one finished; the unedited model's row is the mean over the section's seeds. Times \
         are mean wall seconds per edit (`m` = milliseconds); peak is the mean resident \
         memory of a run in MiB.\n",
        cells.len(),
        seeds_text(&planned)
    );
    let _ = writeln!(out, "{}\n", code_text(aggs));
    for ((model, dataset, scenario), group) in sections(aggs) {
        let first = group[0].cell;
        let _ = writeln!(
            out,
            "## {model} · {dataset} · {scenario} ({})\n",
            describe(first)
        );
        let _ = writeln!(
            out,
            "| Method | n | Eff. | Gen. | Spe. | Train rec. | Train s/edit | Edit s/edit | Peak MiB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        // The unedited model: one score per seed of the section (the seed picks the edits).
        let mut seeds: Vec<u64> = Vec::new();
        let mut before: Vec<&Scores> = Vec::new();
        for (cell, rec) in group.iter().flat_map(|a| &a.runs) {
            if !seeds.contains(&cell.seed()) {
                seeds.push(cell.seed());
                before.push(&rec.report.before);
            }
        }
        let before_stat = |f: fn(&Scores) -> f64| {
            pct_stat(stat(&before.iter().map(|s| f(s)).collect::<Vec<_>>()))
        };
        let _ = writeln!(
            out,
            "| *unedited* | {} | {} | {} | {} | | | | |",
            seeds.len(),
            before_stat(|s| s.efficacy),
            before_stat(|s| s.generalization),
            before_stat(|s| s.specificity)
        );
        for agg in &group {
            let n = if agg.n() < agg.planned.len() {
                format!("{}/{}", agg.n(), agg.planned.len())
            } else {
                agg.n().to_string()
            };
            let _ = writeln!(
                out,
                "| {} | {n} | {} | {} | {} | {} | {} | {} | {} |",
                agg.cell.label,
                pct_stat(agg.after(|s| s.efficacy)),
                pct_stat(agg.after(|s| s.generalization)),
                pct_stat(agg.after(|s| s.specificity)),
                agg.train_records(),
                agg.train_time().map_or("–".into(), secs),
                secs(agg.edit_time()),
                mib(agg.peak_memory())
            );
        }
        out.push('\n');
        search_choice(&mut out, &group);
        glue_table(&mut out, &group);
        ripple_table(&mut out, &group);
        step_size_line(&mut out, &group);
    }
    out
}

/// On a validation split (a hyperparameter search), each method's best row by the mean of
/// efficacy, generalization and specificity.
fn search_choice(out: &mut String, group: &[&Agg]) {
    if group.iter().all(|a| a.cell.data.validation.is_none()) {
        return;
    }
    let mut best: Vec<(String, &Agg, f64)> = Vec::new();
    for &agg in group {
        let s = agg.mean_after();
        let score = (s.efficacy + s.generalization + s.specificity) / 3.0;
        let method = agg.cell.method.display_name();
        match best.iter_mut().find(|(m, _, _)| *m == method) {
            Some(b) if score > b.2 => (b.1, b.2) = (agg, score),
            Some(_) => {}
            None => best.push((method, agg, score)),
        }
    }
    let _ = writeln!(
        out,
        "Search choice (validation records; highest mean of the three scores):\n"
    );
    for (_, agg, score) in best {
        let _ = writeln!(out, "- {}: mean {}", agg.cell.label, pct(score));
    }
    out.push('\n');
}

/// General-capability F1 ×100 per task along a stream: `(edits, [(task, F1)])`.
pub type GlueCurve = Vec<(usize, Vec<(GlueTask, f64)>)>;

/// The rows of a section that scored the general-capability tasks, with their mean curves.
pub fn glue_rows<'r, 'a>(group: &[&'r Agg<'a>]) -> Vec<(&'r Agg<'a>, GlueCurve)> {
    group
        .iter()
        .map(|&a| (a, a.mean_glue()))
        .filter(|(_, g)| !g.is_empty())
        .collect()
}

/// The general-capability scores of a section's rows along the stream, if any row has them.
fn glue_table(out: &mut String, group: &[&Agg]) {
    let rows = glue_rows(group);
    let Some((_, first)) = rows.first() else {
        return;
    };
    let tasks: Vec<GlueTask> = first[0].1.iter().map(|(t, _)| *t).collect();
    let _ = writeln!(
        out,
        "General capability (the paper's Appendix C): weighted F1 ×100 of each task's log-prob \
         prediction, mean over seeds, after the given number of edits (0: unedited).\n"
    );
    let names: Vec<&str> = tasks.iter().map(|t| t.name()).collect();
    let _ = writeln!(out, "| Method | edits | {} | mean |", names.join(" | "));
    let _ = writeln!(out, "|---|---:|{}---:|", "---:|".repeat(tasks.len()));
    for (agg, points) in &rows {
        for (edits, scores) in points {
            let f1: Vec<f64> = scores.iter().map(|(_, f)| *f).collect();
            let cells: Vec<String> = f1.iter().map(|f| format!("{f:.1}")).collect();
            let _ = writeln!(
                out,
                "| {} | {edits} | {} | {:.1} |",
                agg.cell.label,
                cells.join(" | "),
                mean(&f1)
            );
        }
    }
    out.push('\n');
}

/// The step sizes η the section's rows learned (mean over seeds and edited modules, per step
/// network), if any row recorded them.
fn step_size_line(out: &mut String, group: &[&Agg]) {
    let rows: Vec<String> = group
        .iter()
        .filter_map(|a| {
            let runs: Vec<&Vec<Vec<f64>>> = a
                .runs
                .iter()
                .map(|(_, r)| &r.report.step_sizes)
                .filter(|s| !s.is_empty())
                .collect();
            let first = runs.first()?;
            let per_step: Vec<String> = (0..first.len())
                .map(|k| {
                    let xs: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| r.get(k))
                        .map(|v| mean(v))
                        .collect();
                    format!("{:.3e}", mean(&xs))
                })
                .collect();
            Some(format!("{} {}", a.cell.label, per_step.join(" / ")))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Step size η after training (mean over seeds and edited modules; per step network): \
         {}.\n",
        rows.join("; ")
    );
}

/// RippleEdits' families of a section's rows (RippleEdits' score: the share of executable
/// tests passed after the stream, ×100, mean over seeds), if any row scored them.
fn ripple_table(out: &mut String, group: &[&Agg]) {
    let rows: Vec<(&Agg, Vec<&RippleReport>)> = group
        .iter()
        .map(|&a| {
            let reports = a.runs.iter().filter_map(|(_, r)| r.report.ripple.as_ref());
            (a, reports.collect::<Vec<_>>())
        })
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let families: Vec<&FamilyScore> = first[0].families.iter().collect();
    let _ = writeln!(
        out,
        "RippleEdits families (Cohen et al. 2024): the share of each family's executable tests \
         (those whose condition the unedited model answers) passed after the stream, ×100, \
         mean over seeds; the unedited row is the share of all tests the unedited model \
         passes. Executable / all tests of the first seed in brackets.\n"
    );
    let names: Vec<String> = families
        .iter()
        .map(|f| {
            format!(
                "{} ({}/{})",
                f.family.field().replace('_', " "),
                f.executable,
                f.cases
            )
        })
        .collect();
    let _ = writeln!(out, "| Method | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(families.len()));
    // `–` where no seed has a test to score (no executable test, for the edited rows).
    let column = |reports: &[&RippleReport], edited: bool| -> Vec<String> {
        families
            .iter()
            .map(|fam| {
                let xs: Vec<f64> = reports
                    .iter()
                    .filter_map(|r| r.families.iter().find(|s| s.family == fam.family))
                    .filter(|s| !edited || s.executable > 0)
                    .map(|s| 100.0 * if edited { s.after_executable } else { s.before })
                    .collect();
                if xs.is_empty() {
                    "–".into()
                } else {
                    format!("{:.1}", mean(&xs))
                }
            })
            .collect()
    };
    let _ = writeln!(out, "| *unedited* | {} |", column(first, false).join(" | "));
    for (agg, reports) in &rows {
        let _ = writeln!(
            out,
            "| {} | {} |",
            agg.cell.label,
            column(reports, true).join(" | ")
        );
    }
    out.push('\n');
}

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV: one line per finished cell (per seed: nothing is averaged), every measured
/// number; the cells of a row of the table are adjacent and share `group`.
pub fn csv(aggs: &[Agg]) -> String {
    let header = [
        "key",
        "group",
        "experiment",
        "label",
        "method",
        "steps",
        "ablation",
        "model",
        "dataset",
        "scenario",
        "n_edits",
        "num_seq",
        "seed",
        "before_efficacy",
        "before_generalization",
        "before_specificity",
        "efficacy",
        "generalization",
        "specificity",
        "sequence_efficacy",
        "sequence_generalization",
        "sequence_specificity",
        "train_records",
        "train_seconds_per_edit",
        "edit_seconds_per_edit",
        "peak_memory_bytes",
        "wall_seconds",
        "step_size_mean",
    ];
    let mut out = header.join(",");
    out.push('\n');
    for (cell, rec) in aggs.iter().flat_map(|a| &a.runs) {
        let r = &rec.report;
        let opt = |f: fn(&emsedit::Scores) -> f64| r.sequence.as_ref().map(|s| f(s).to_string());
        let values = [
            cell.key.clone(),
            cell.group.clone(),
            cell.experiment.clone(),
            cell.label.clone(),
            r.method.clone(),
            cell.steps().to_string(),
            cell.ablation.clone(),
            cell.model.clone(),
            cell.dataset.clone(),
            cell.scenario_name.clone(),
            cell.scenario.n_edits.to_string(),
            cell.scenario.num_seq.to_string(),
            cell.seed().to_string(),
            r.before.efficacy.to_string(),
            r.before.generalization.to_string(),
            r.before.specificity.to_string(),
            r.after.efficacy.to_string(),
            r.after.generalization.to_string(),
            r.after.specificity.to_string(),
            opt(|s| s.efficacy).unwrap_or_default(),
            opt(|s| s.generalization).unwrap_or_default(),
            opt(|s| s.specificity).unwrap_or_default(),
            r.train_records.to_string(),
            r.train_seconds_per_edit.to_string(),
            r.edit_seconds_per_edit.to_string(),
            r.peak_memory_bytes.to_string(),
            rec.wall_seconds.to_string(),
            if r.step_sizes.is_empty() {
                String::new()
            } else {
                mean(&r.step_sizes.iter().map(|k| mean(k)).collect::<Vec<_>>()).to_string()
            },
        ];
        let line: Vec<String> = values.iter().map(|v| field(v)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(field("a"), "a");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(secs(0.0), "0");
        assert_eq!(secs(0.0123), "12.30m");
        assert_eq!(secs(2.5), "2.50");
        assert_eq!(mib(0), "–");
        assert_eq!(mib(3 * 1024 * 1024), "3");
    }

    #[test]
    fn stats_are_the_mean_and_the_sample_sd() {
        assert_eq!(
            stat(&[0.5]),
            Stat {
                mean: 0.5,
                sd: None
            }
        );
        let s = stat(&[0.2, 0.4, 0.9]);
        assert!((s.mean - 0.5).abs() < 1e-12);
        // Σ(x − 0.5)² = 0.09 + 0.01 + 0.16 = 0.26; / (3 − 1) = 0.13.
        assert!((s.sd.unwrap() - 0.13f64.sqrt()).abs() < 1e-12);
        assert_eq!(pct_stat(s), "50.0 ± 36.1");
        assert_eq!(pct_stat(stat(&[0.25])), "25.0");
    }

    #[test]
    fn the_seed_text_counts_the_seeds() {
        assert_eq!(
            seeds_text(&[vec![0, 1, 2], vec![0, 1, 2]]),
            "every row over 3 seeds (0, 1, 2)"
        );
        assert_eq!(seeds_text(&[vec![7]]), "every row over 1 seed (7)");
        assert_eq!(
            seeds_text(&[vec![0], vec![0, 1], vec![0, 1]]),
            "2 rows over 2 seeds (0, 1), 1 row over 1 seed (0)"
        );
    }
}
