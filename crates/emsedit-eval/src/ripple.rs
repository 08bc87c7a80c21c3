//! RippleEdits' families scored as the RippleEdits paper does (Cohen et al., 2024): a query
//! passes when the model produces any of its answers, a test passes when any (OR) or every
//! (AND) query passes, and a test applies when the unedited model answers its condition
//! queries.
//!
//! "Produces" is greedy decoding; it emits an answer's tokens exactly when the teacher-forced
//! argmax equals every token of `" " + answer` (token accuracy 1, spec §5.1), which is how it
//! is computed here: the prompts' next tokens first, then the answers that start with them.

use std::collections::HashMap;

use emsedit_llm::{Batch, CausalLm, IGNORE, LmTokenizer};
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

/// Distinct prompts scored for their next token in one packed pass: a bound on the logits
/// a pass holds (prompts × vocabulary; Gemma-3's vocabulary is 262,144).
const PROMPTS_PER_PASS: usize = 64;

/// Micro-batches of whole answers scored in one packed pass.
const MICRO_BATCHES_PER_PASS: usize = 16;

/// The most likely next token after each prompt (token ids, BOS included where the
/// tokenizer adds one), from packed passes with the head at each prompt's last token only.
pub fn next_tokens<B: Backend>(
    lm: &CausalLm<B>,
    prompts: &[Vec<i64>],
) -> Result<Vec<i64>, RunError> {
    let mut out = Vec::with_capacity(prompts.len());
    for group in prompts.chunks(PROMPTS_PER_PASS) {
        let rows: Vec<Batch> = group
            .iter()
            .map(|p| {
                let mut labels = vec![IGNORE; p.len()];
                if let Some(last) = labels.last_mut() {
                    // Any valid id: only the position counts.
                    *last = 0;
                }
                Batch {
                    batch: 1,
                    time: p.len(),
                    input_ids: p.clone(),
                    attention_mask: vec![1; p.len()],
                    labels,
                }
            })
            .collect();
        let packed = Batch::pack(&rows)?;
        let argmax = lm.label_argmax(&packed)?;
        out.extend(packed.label_positions().iter().map(|&p| argmax[p as usize]));
    }
    Ok(out)
}

/// Whether `lm` produces one of each query's answers after its prompt.
///
/// Greedy decoding emits an answer only when the answer's first token is the prompt's most
/// likely next token. One pass over the distinct prompts finds that token; only the answers
/// that start with it are scored whole. The same decisions as scoring every answer (up to
/// float rounding), for a fraction of the work: a query has about nine answers with their
/// aliases, and most differ from the model's choice at the first token.
pub fn answered<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    queries: &[&Query],
    chunk: usize,
) -> Result<Vec<bool>, RunError> {
    let mut prompts: Vec<Vec<i64>> = Vec::new();
    let mut prompt_index: HashMap<Vec<i64>, usize> = HashMap::new();
    // (query, its prompt's index, the answer's first token, the tokenized answer)
    let mut answers = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        for answer in &q.answers {
            let t = tokenize(tok, &Tuple::new(q.prompt.clone(), answer.clone(), None))?;
            // labels = [IGNORE] × (|P| − 1) ⊕ answer: the prompt ends at the first label.
            let Some(first) = t.labels.iter().position(|&l| l != IGNORE) else {
                continue;
            };
            let prompt = t.input_ids[..=first].to_vec();
            let next = prompt_index.len();
            let p = *prompt_index.entry(prompt.clone()).or_insert(next);
            if p == prompts.len() {
                prompts.push(prompt);
            }
            answers.push((i, p, t.labels[first], t));
        }
    }
    let next = next_tokens(lm, &prompts)?;
    let mut out = vec![false; queries.len()];
    let (mut owner, mut whole) = (Vec::new(), Vec::new());
    for (i, p, first, t) in answers {
        if first != next[p] {
            continue;
        }
        if t.answer_len() == 1 {
            out[i] = true;
        } else {
            owner.push(i);
            whole.push(t);
        }
    }
    let batches = collate(&whole, chunk, false);
    for group in batches.chunks(MICRO_BATCHES_PER_PASS) {
        let accuracy = score(lm, group)?;
        let rows = group.iter().flat_map(|mb| &mb.rows);
        for (row, acc) in rows.zip(accuracy) {
            if acc >= 1.0 {
                out[owner[*row]] = true;
            }
        }
    }
    Ok(out)
}

/// The queries of `cases` (their conditions with `conditions`), test after test.
fn queries_of<'a>(cases: &[&'a TestCase], conditions: bool) -> Vec<&'a Query> {
    cases
        .iter()
        .flat_map(|c| {
            if conditions {
                &c.conditions
            } else {
                &c.queries
            }
        })
        .collect()
}

/// Per test: whether it passes, from its queries' results in [`queries_of`] order (combined
/// by OR or AND; conditions always by AND).
fn passes(cases: &[&TestCase], answered: &[bool], conditions: bool) -> Vec<bool> {
    let mut ok = answered.iter().copied();
    cases
        .iter()
        .map(|c| {
            let n = if conditions {
                c.conditions.len()
            } else {
                c.queries.len()
            };
            let results: Vec<bool> = ok.by_ref().take(n).collect();
            if conditions || c.all_of {
                results.iter().all(|&b| b)
            } else {
                results.iter().any(|&b| b)
            }
        })
        .collect()
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
    let (conditions, queries) = (queries_of(&all, true), queries_of(&all, false));
    // The unedited model's conditions and queries in one call: its distinct prompts once.
    let unedited = answered(
        before,
        tok,
        &[conditions.as_slice(), &queries].concat(),
        chunk,
    )?;
    let (conditions_ok, was_ok) = unedited.split_at(conditions.len());
    let applies = passes(&all, conditions_ok, true);
    let was = passes(&all, was_ok, false);
    let now = passes(&all, &answered(after, tok, &queries, chunk)?, false);
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
