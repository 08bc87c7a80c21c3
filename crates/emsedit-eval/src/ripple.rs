//! RippleEdits' families scored as the RippleEdits paper does (Cohen et al., 2024): a query
//! passes when the model produces any of its answers, a test passes when any (OR) or every
//! (AND) query passes, and a test applies when the unedited model answers its condition
//! queries.
//!
//! "Produces" is greedy decoding; it emits an answer's tokens exactly when the teacher-forced
//! argmax equals every token of `" " + answer` (token accuracy 1, spec §5.1), which is how it
//! is computed here, in micro-batches.

use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_tensor::burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::data::ripple::{Family, Query, TestCase};
use crate::data::{EditRecord, Tuple, collate, tokenize};
use crate::scenario::{RunError, score};

/// One family's results over a set of edited records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyScore {
    /// The family.
    pub family: Family,
    /// Its tests.
    pub cases: usize,
    /// Tests whose condition queries the unedited model answers (RippleEdits' executable
    /// tests).
    pub executable: usize,
    /// Share of all tests passed by the unedited model.
    pub before: f64,
    /// Share of all tests passed after editing.
    pub after: f64,
    /// Share of the executable tests passed after editing (RippleEdits' score).
    pub after_executable: f64,
}

/// Every family with at least one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RippleReport {
    /// Per family, in [`Family::ALL`] order.
    pub families: Vec<FamilyScore>,
}

/// Whether `lm` produces one of each query's answers after its prompt.
pub fn answered<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    queries: &[&Query],
    chunk: usize,
) -> Result<Vec<bool>, RunError> {
    let mut owner = Vec::new();
    let mut tuples = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        for answer in &q.answers {
            owner.push(i);
            tuples.push(tokenize(
                tok,
                &Tuple::new(q.prompt.clone(), answer.clone(), None),
            )?);
        }
    }
    let mut out = vec![false; queries.len()];
    for mb in collate(&tuples, chunk, false) {
        let accuracy = score(lm, std::slice::from_ref(&mb))?;
        for (row, acc) in mb.rows.iter().zip(accuracy) {
            if acc >= 1.0 {
                out[owner[*row]] = true;
            }
        }
    }
    Ok(out)
}

/// Per test: whether it passes on `lm` (its queries combined by OR or AND).
fn passes<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    cases: &[&TestCase],
    conditions: bool,
    chunk: usize,
) -> Result<Vec<bool>, RunError> {
    fn pick(c: &TestCase, conditions: bool) -> &[Query] {
        if conditions {
            &c.conditions
        } else {
            &c.queries
        }
    }
    let queries: Vec<&Query> = cases.iter().flat_map(|c| pick(c, conditions)).collect();
    let mut ok = answered(lm, tok, &queries, chunk)?.into_iter();
    Ok(cases
        .iter()
        .map(|c| {
            let results: Vec<bool> = ok.by_ref().take(pick(c, conditions).len()).collect();
            if conditions || c.all_of {
                results.iter().all(|&b| b)
            } else {
                results.iter().any(|&b| b)
            }
        })
        .collect())
}

fn share(hits: impl Iterator<Item = bool>) -> f64 {
    let (n, k) = hits.fold((0usize, 0usize), |(n, k), b| (n + 1, k + usize::from(b)));
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

/// Scores the RippleEdits tests of `records` on the unedited model `before` and the edited
/// model `after`; `None` when no record carries tests.
pub fn ripple_report<B: Backend>(
    before: &CausalLm<B>,
    after: &CausalLm<B>,
    tok: &LmTokenizer,
    records: &[EditRecord],
    chunk: usize,
) -> Result<Option<RippleReport>, RunError> {
    let all: Vec<&TestCase> = records
        .iter()
        .filter_map(|r| r.ripple.as_ref())
        .flat_map(|p| &p.cases)
        .collect();
    if records.iter().all(|r| r.ripple.is_none()) {
        return Ok(None);
    }
    let applies = passes(before, tok, &all, true, chunk)?;
    let was = passes(before, tok, &all, false, chunk)?;
    let now = passes(after, tok, &all, false, chunk)?;
    let families = Family::ALL
        .into_iter()
        .filter_map(|family| {
            let idx: Vec<usize> = (0..all.len())
                .filter(|&i| all[i].family == family)
                .collect();
            (!idx.is_empty()).then(|| FamilyScore {
                family,
                cases: idx.len(),
                executable: idx.iter().filter(|&&i| applies[i]).count(),
                before: share(idx.iter().map(|&i| was[i])),
                after: share(idx.iter().map(|&i| now[i])),
                after_executable: share(idx.iter().filter(|&&i| applies[i]).map(|&i| now[i])),
            })
        })
        .collect();
    Ok(Some(RippleReport { families }))
}
