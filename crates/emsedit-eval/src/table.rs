//! The results table of a set of runs, in the paper's Table 1 layout: efficacy,
//! generalization and specificity ×100, then time per edit and peak memory.

use crate::scenario::{Report, Scores};

fn row(name: &str, s: &Scores, times: Option<(f64, f64, u64)>) -> String {
    let pct = |v: f64| format!("{:.1}", 100.0 * v);
    let (train, edit, mem) = match times {
        Some((t, e, m)) => (
            format!("{:.4}", t),
            format!("{:.4}", e),
            format!("{:.0}", m as f64 / (1024.0 * 1024.0)),
        ),
        None => ("".into(), "".into(), "".into()),
    };
    format!(
        "| {name} | {} | {} | {} | {train} | {edit} | {mem} |\n",
        pct(s.efficacy),
        pct(s.generalization),
        pct(s.specificity)
    )
}

/// A markdown table: a first row with the unedited model's scores (from the first report),
/// then one row per report. Times are seconds per edit; memory is the process's peak RSS in
/// MiB at the end of the run.
///
/// ```
/// use emsedit_eval::scenario::{Report, ScenarioConfig, Scores};
///
/// let s = Scores { efficacy: 0.5, generalization: 0.25, specificity: 1.0 };
/// let report = Report {
///     method: "FT".into(), scenario: ScenarioConfig::batch(4), before: Scores::default(),
///     after: s, train_records: 0, train_seconds_per_edit: 0.0, edit_seconds_per_edit: 0.01,
///     peak_memory_bytes: 1 << 20, curve: vec![], sequence: None, skipped: vec![],
///     warnings: vec![], ripple: None, step_sizes: vec![], glue: vec![],
/// };
/// let table = emsedit_eval::table::markdown(&[report]);
/// assert!(table.contains("| FT | 50.0 | 25.0 | 100.0 | 0.0000 | 0.0100 | 1 |"));
/// ```
pub fn markdown(reports: &[Report]) -> String {
    let mut out = String::from(
        "| method | efficacy | generalization | specificity | train s/edit | edit s/edit | peak MiB |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    if let Some(first) = reports.first() {
        out.push_str(&row("(unedited)", &first.before, None));
    }
    for r in reports {
        out.push_str(&row(
            &r.method,
            &r.after,
            Some((
                r.train_seconds_per_edit,
                r.edit_seconds_per_edit,
                r.peak_memory_bytes,
            )),
        ));
    }
    out
}
