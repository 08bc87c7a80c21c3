//! The paper's claims checked on the finished cells: `[[claims]]` in a matrix file, each a
//! comparison of two table rows, and `claims.md`, the verdict of each (docs/reproduce.md).

use std::fmt::Write as _;

use serde::Deserialize;

use emsedit::Scores;

use super::matrix::Cell;
use super::report::{Agg, Stat};

/// The margin of a comparison when a row has fewer than two finished seeds (no spread to go
/// by): a point, ×100.
pub const ONE_SEED_MARGIN: f64 = 1.0;

/// `[[claims]]`: "`better` beats `than`" (or "is at least as good as") on `metrics`, the two
/// rows taken from one model, data set and scenario (`than_scenario` for a row of another
/// scenario of the same model and data set, e.g. a larger training budget).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The claim, as the paper makes it.
    pub text: String,
    /// Where the paper makes it (section, table, figure).
    #[serde(default)]
    pub source: String,
    /// Model name.
    pub model: String,
    /// Data set name.
    pub dataset: String,
    /// Scenario name.
    pub scenario: String,
    /// The row label the claim favours (`EMSEdit`, `MALMEN2`).
    pub better: String,
    /// The row label it is compared with.
    pub than: String,
    /// The scenario of `than`'s row (default: `scenario`).
    pub than_scenario: Option<String>,
    /// The scores compared (default: efficacy and generalization).
    #[serde(default = "default_metrics")]
    pub metrics: Vec<Metric>,
    /// `beats` (default) or `at-least`.
    #[serde(default)]
    pub relation: Relation,
}

fn default_metrics() -> Vec<Metric> {
    vec![Metric::Efficacy, Metric::Generalization]
}

/// A score of [`Scores`], or their mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Efficacy.
    Efficacy,
    /// Generalization.
    Generalization,
    /// Specificity.
    Specificity,
    /// The mean of the three.
    Mean,
}

impl Metric {
    fn of(self, s: &Scores) -> f64 {
        match self {
            Metric::Efficacy => s.efficacy,
            Metric::Generalization => s.generalization,
            Metric::Specificity => s.specificity,
            Metric::Mean => (s.efficacy + s.generalization + s.specificity) / 3.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Metric::Efficacy => "efficacy",
            Metric::Generalization => "generalization",
            Metric::Specificity => "specificity",
            Metric::Mean => "mean of the three",
        }
    }
}

/// What a claim asserts of the difference `better − than`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Above by more than the margin.
    #[default]
    Beats,
    /// Not below by more than the margin.
    AtLeast,
}

/// The verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The difference is on the claim's side, beyond the margin.
    Holds,
    /// Within the margin (for `beats`).
    Tie,
    /// Beyond the margin on the other side.
    Fails,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Tie => "tie",
            Verdict::Fails => "does not hold",
        }
    }
}

/// `d = better − than` against the margin: the larger of the two rows' sample standard
/// deviations, or [`ONE_SEED_MARGIN`] when either row has a single seed.
pub fn verdict(better: Stat, than: Stat, relation: Relation) -> (f64, f64, Verdict) {
    let d = better.mean - than.mean;
    let margin = match (better.sd, than.sd) {
        (Some(a), Some(b)) => a.max(b),
        _ => ONE_SEED_MARGIN,
    };
    let v = if d > margin || (relation == Relation::AtLeast && d >= -margin) {
        Verdict::Holds
    } else if d < -margin {
        Verdict::Fails
    } else {
        Verdict::Tie
    };
    (d, margin, v)
}

/// Checks that every claim names a model, data set and scenario of the matrix and row labels
/// that some cell of them has.
pub fn check(claims: &[Claim], cells: &[Cell], origin: &str) -> Result<(), String> {
    for (i, c) in claims.iter().enumerate() {
        let rows = [
            (&c.better, &c.scenario),
            (&c.than, c.than_scenario.as_ref().unwrap_or(&c.scenario)),
        ];
        for (label, scenario) in rows {
            if !cells.iter().any(|cell| is_row(cell, c, scenario, label)) {
                return Err(format!(
                    "{origin}: claims[{i}] (`{}`): no cell labelled `{label}` in {} · {} · {scenario}",
                    c.text, c.model, c.dataset
                ));
            }
        }
        if c.metrics.is_empty() {
            return Err(format!(
                "{origin}: claims[{i}] (`{}`): `metrics` is empty",
                c.text
            ));
        }
    }
    Ok(())
}

/// Whether `cell` belongs to the row labelled `label` in the claim's model and data set and
/// `scenario`.
fn is_row(cell: &Cell, c: &Claim, scenario: &str, label: &str) -> bool {
    cell.label == label
        && cell.model == c.model
        && cell.dataset == c.dataset
        && cell.scenario_name == scenario
}

fn find<'r, 'a>(
    aggs: &'r [Agg<'a>],
    c: &Claim,
    scenario: &str,
    label: &str,
) -> Option<&'r Agg<'a>> {
    aggs.iter().find(|a| is_row(a.cell, c, scenario, label))
}

fn stat_of(a: &Agg, m: Metric) -> Stat {
    super::report::stat(&a.values(|r| m.of(&r.report.after) * 100.0))
}

fn show(s: Stat, n: usize) -> String {
    match s.sd {
        Some(sd) => format!("{:.1} ± {sd:.1} (n = {n})", s.mean),
        None => format!("{:.1} (n = {n})", s.mean),
    }
}

/// `claims.md`: one section per claim with each metric's means, difference, margin and
/// verdict, and a summary table; rows without a finished seed say so.
pub fn markdown(title: &str, claims: &[Claim], aggs: &[Agg]) -> String {
    let mut summary = String::new();
    let mut detail = String::new();
    for (i, c) in claims.iter().enumerate() {
        let than_scenario = c.than_scenario.as_deref().unwrap_or(&c.scenario);
        let a = find(aggs, c, &c.scenario, &c.better);
        let b = find(aggs, c, than_scenario, &c.than);
        let base = format!("{} · {} · {}", c.model, c.dataset, c.scenario);
        let (than_at, setting) = if than_scenario == c.scenario {
            (String::new(), base.clone())
        } else {
            (
                format!(" ({than_scenario})"),
                format!("{base} vs {than_scenario}"),
            )
        };
        let relation = match c.relation {
            Relation::Beats => "beats",
            Relation::AtLeast => "is at least",
        };
        let _ = writeln!(
            detail,
            "\n## {}. {}\n\n{}{base}: `{}` {relation} `{}`{than_at}.\n",
            i + 1,
            c.text,
            if c.source.is_empty() {
                String::new()
            } else {
                format!("Paper: {}. ", c.source)
            },
            c.better,
            c.than
        );
        let (Some(a), Some(b)) = (a, b) else {
            let _ = writeln!(detail, "Not run yet: a row has no finished seed.");
            let _ = writeln!(
                summary,
                "| {} | {} | {setting} | not run yet |",
                i + 1,
                c.text
            );
            continue;
        };
        let _ = writeln!(
            detail,
            "| metric (×100) | {} | {}{than_at} | difference | margin | verdict |",
            c.better, c.than
        );
        let _ = writeln!(detail, "|---|---:|---:|---:|---:|---|");
        let mut verdicts = Vec::new();
        for &m in &c.metrics {
            let (sa, sb) = (stat_of(a, m), stat_of(b, m));
            let (d, margin, v) = verdict(sa, sb, c.relation);
            let _ = writeln!(
                detail,
                "| {} | {} | {} | {d:+.1} | {margin:.1} | {} |",
                m.name(),
                show(sa, a.n()),
                show(sb, b.n()),
                v.word()
            );
            verdicts.push((m, v));
        }
        let overall = overall(&verdicts);
        let partial = if a.n() < a.planned.len() || b.n() < b.planned.len() {
            " (not every seed finished)"
        } else {
            ""
        };
        let _ = writeln!(
            summary,
            "| {} | {} | {setting} | {overall}{partial} |",
            i + 1,
            c.text
        );
    }
    format!(
        "# {title}\n\nEach claim compares two rows of `table.md` on the final scores (×100). \
         The margin is the larger of the two rows' sample standard deviations over seeds \
         ({ONE_SEED_MARGIN:.0} point when a row has one seed): a claim that one row beats \
         another holds on a metric when the difference is above the margin, is a tie within \
         it and does not hold below minus the margin; \"at least\" holds unless the \
         difference is below minus the margin.\n\n\
         | # | claim | setting | verdict |\n|---:|---|---|---|\n{summary}{detail}"
    )
}

/// "holds" or "does not hold" when every metric agrees, else each metric's verdict.
fn overall(verdicts: &[(Metric, Verdict)]) -> String {
    let Some(&(_, first)) = verdicts.first() else {
        return "no metric compared".into();
    };
    if verdicts.iter().all(|(_, v)| *v == first) {
        return first.word().to_string();
    }
    verdicts
        .iter()
        .map(|(m, v)| format!("{} on {}", v.word(), m.name()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(mean: f64, sd: Option<f64>) -> Stat {
        Stat { mean, sd }
    }

    #[test]
    fn verdicts_against_the_larger_spread() {
        let (d, margin, v) = verdict(s(73.3, Some(0.7)), s(62.6, Some(4.5)), Relation::Beats);
        assert!((d - 10.7).abs() < 1e-9 && margin == 4.5 && v == Verdict::Holds);
        use {Relation::*, Verdict::*};
        let (three, one) = (s(73.3, Some(0.7)), s(84.0, None));
        for (better, than, relation, expected) in [
            // Inside the larger sd either way: a tie; beyond it below: does not hold.
            (s(75.7, Some(3.5)), three, Beats, Tie),
            (s(71.0, Some(3.5)), three, Beats, Tie),
            (s(60.0, Some(3.5)), three, Beats, Fails),
            // One seed: a point of margin.
            (s(84.7, None), one, Beats, Tie),
            (s(85.1, Some(0.2)), one, Beats, Holds),
            // At least: a tie holds, a loss beyond the margin does not.
            (s(71.0, Some(3.5)), three, AtLeast, Holds),
            (s(60.0, Some(3.5)), three, AtLeast, Fails),
        ] {
            assert_eq!(
                verdict(better, than, relation).2,
                expected,
                "{better:?} {than:?}"
            );
        }
    }

    #[test]
    fn overall_names_mixed_metrics() {
        let m = [
            (Metric::Efficacy, Verdict::Holds),
            (Metric::Generalization, Verdict::Holds),
        ];
        assert_eq!(overall(&m), "holds");
        let m = [
            (Metric::Efficacy, Verdict::Holds),
            (Metric::Generalization, Verdict::Tie),
        ];
        assert_eq!(overall(&m), "holds on efficacy; tie on generalization");
        assert_eq!(overall(&[]), "no metric compared");
    }
}
