//! General capability (the paper's Appendix C): six classification tasks — SST-2, MRPC, MMLU,
//! RTE, CoLA and NLI — scored as the reference's `glue_eval/*_eval.py` score them.
//!
//! Each record becomes the reference's zero-shot prompt; each answer word `w` of the task is
//! scored by the mean log-probability of the tokens of `" " + w` after the prompt, and the
//! prediction is the class of the most probable word. The reference keeps each file's first
//! [`FEW_SHOT_RECORDS`] records for few-shot prompts (unused at zero shots) and tests on the
//! next 100 ([`DEFAULT_TESTS`]). Scores are the accuracy and the support-weighted F1 of those
//! predictions (the reference's `f1_new`).
//!
//! The reference's label mappings are kept as they are, RTE's included: it answers " True"
//! for label 1, which is GLUE RTE's `not_entailment`.

use std::path::Path;

use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_tensor::burn::tensor::activation::log_softmax;
use emsedit_tensor::burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::data::{Fields, Tuple, collate, read_records, tokenize};
use crate::metrics::sequence_logprob;
use crate::scenario::RunError;

/// Records at the head of each file that the reference keeps for few-shot prompts.
pub const FEW_SHOT_RECORDS: usize = 10;

/// Records the reference tests on (`GLUEEval(number_of_tests = 100)`).
pub const DEFAULT_TESTS: usize = 100;

/// The six tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlueTask {
    /// Sentiment (Stanford Sentiment Treebank).
    Sst2,
    /// Paraphrase (Microsoft Research Paraphrase Corpus).
    Mrpc,
    /// Four-way multiple choice (Massive Multitask Language Understanding).
    Mmlu,
    /// Entailment (Recognizing Textual Entailment).
    Rte,
    /// Grammatical acceptability (Corpus of Linguistic Acceptability).
    Cola,
    /// Entailment (the reference's NLI subset).
    Nli,
}

impl GlueTask {
    /// Every task, in the paper's order.
    pub const ALL: [GlueTask; 6] = [
        Self::Sst2,
        Self::Mrpc,
        Self::Mmlu,
        Self::Rte,
        Self::Cola,
        Self::Nli,
    ];

    /// Short name, also the file stem (`sst2` → `sst2.json`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sst2 => "sst2",
            Self::Mrpc => "mrpc",
            Self::Mmlu => "mmlu",
            Self::Rte => "rte",
            Self::Cola => "cola",
            Self::Nli => "nli",
        }
    }

    /// The answer words, indexed by class.
    pub fn answers(self) -> &'static [&'static str] {
        match self {
            Self::Sst2 => &["negative", "positive"],
            Self::Mrpc | Self::Cola => &["No", "Yes"],
            Self::Rte | Self::Nli => &["False", "True"],
            Self::Mmlu => &["A", "B", "C", "D"],
        }
    }

    /// The reference's prompt and class for one record.
    fn example(self, f: &Fields) -> Result<GlueExample, DataError> {
        let label = |field: &str| -> Result<usize, DataError> {
            let v = f.value(field)?;
            let classes = self.answers().len();
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n < classes)
                .ok_or_else(|| f.error(field, format!("expected a class 0..{classes}, found {v}")))
        };
        let (prompt, label) = match self {
            Self::Sst2 => (
                format!("Review :{}\nSentiment :", f.str("sentence")?),
                label("label")?,
            ),
            Self::Mrpc => (
                format!(
                    "Are the sentences paraphrases of each other.\nSentence 1: {}\nSentence 2: \
                     {}\nAnswer:",
                    f.str("sentence1")?,
                    f.str("sentence2")?
                ),
                label("label")?,
            ),
            Self::Cola => (
                format!(
                    "Is this sentence linguistically acceptable?\nSentence: {}\nAnswer: ",
                    f.str("sentence")?
                ),
                label("label")?,
            ),
            Self::Rte => (
                format!(
                    "{}\nquestion: {} True or False?\nanswer:",
                    f.str("sentence1")?,
                    f.str("sentence2")?
                ),
                label("label")?,
            ),
            Self::Nli => {
                let l = f.str("label")?;
                let label = match l.as_str() {
                    "entailment" => 1,
                    "not_entailment" => 0,
                    other => {
                        return Err(f.error(
                            "label",
                            format!("expected `entailment` or `not_entailment`, found `{other}`"),
                        ));
                    }
                };
                (
                    format!(
                        "{} entails the {} True or False? Answer:",
                        f.str("sentence1")?,
                        f.str("sentence2")?
                    ),
                    label,
                )
            }
            Self::Mmlu => {
                let choices = f.array("choices")?;
                if choices.len() != 4 {
                    return Err(f.error(
                        "choices",
                        format!("expected 4 choices, found {}", choices.len()),
                    ));
                }
                let mut prompt = format!("Question: {}\n", f.str("question")?);
                for (letter, c) in ["A", "B", "C", "D"].iter().zip(choices) {
                    prompt.push_str(&format!("({letter}) {}\n", f.text("choices", c)?));
                }
                prompt.push_str("Answer:");
                (prompt, label("answer")?)
            }
        };
        Ok(GlueExample { prompt, label })
    }
}

/// One test record: the prompt and the index of its right answer word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlueExample {
    /// The zero-shot prompt.
    pub prompt: String,
    /// The right class (an index into [`GlueTask::answers`]).
    pub label: usize,
}

/// The test records of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueSet {
    /// The task.
    pub task: GlueTask,
    /// Its test records.
    pub examples: Vec<GlueExample>,
}

/// Reads one task's file (a JSON array of records) and keeps the reference's test records:
/// `tests` records after the first [`FEW_SHOT_RECORDS`]. A file too short for them is an
/// error, as a bad record is (naming the file, record and field).
pub fn load_glue(path: &Path, task: GlueTask, tests: usize) -> Result<GlueSet, DataError> {
    let raw = read_records(path)?;
    let available = raw.len().saturating_sub(FEW_SHOT_RECORDS);
    if tests == 0 || tests > available {
        return Err(DataError::Record {
            path: path.to_path_buf(),
            record: raw.len(),
            field: "(file)".into(),
            detail: format!(
                "{tests} test records asked for; the file has {available} after its \
                 {FEW_SHOT_RECORDS} few-shot records"
            ),
        });
    }
    let examples = raw
        .iter()
        .enumerate()
        .skip(FEW_SHOT_RECORDS)
        .take(tests)
        .map(|(index, record)| {
            task.example(&Fields {
                path,
                index,
                record,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(GlueSet { task, examples })
}

/// Every task from a folder holding `sst2.json`, `mrpc.json`, `mmlu.json`, `rte.json`,
/// `cola.json` and `nli.json` (as `EMSEDIT_DATA_DIR/glue`).
pub fn load_glue_dir(dir: &Path, tests: usize) -> Result<Vec<GlueSet>, DataError> {
    GlueTask::ALL
        .iter()
        .map(|&task| load_glue(&dir.join(format!("{}.json", task.name())), task, tests))
        .collect()
}

/// One task's scores (fractions in [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlueScore {
    /// The task.
    pub task: GlueTask,
    /// Records scored.
    pub n: usize,
    /// Share of right predictions.
    pub accuracy: f64,
    /// F1 per class, weighted by each class's share of the labels (scikit-learn's
    /// `f1_score(average="weighted")`, the reference's `f1_new`).
    pub f1: f64,
}

/// Scores every set on `lm`. Answers of one token are read off one forward pass per prompt;
/// longer ones take a pass per answer word.
pub fn glue_scores<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    sets: &[GlueSet],
    chunk: usize,
) -> Result<Vec<GlueScore>, RunError> {
    sets.iter()
        .map(|set| {
            let scores = answer_scores(lm, tok, set, chunk)?;
            let predicted: Vec<Option<usize>> = scores.iter().map(|s| best(s)).collect();
            let labels: Vec<usize> = set.examples.iter().map(|e| e.label).collect();
            Ok(GlueScore {
                task: set.task,
                n: labels.len(),
                accuracy: accuracy(&labels, &predicted),
                f1: weighted_f1(&labels, &predicted, set.task.answers().len()),
            })
        })
        .collect()
}

/// Per example, the mean log-probability of each answer word's tokens after the prompt (in
/// class order): what the prediction compares.
pub fn answer_scores<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    set: &GlueSet,
    chunk: usize,
) -> Result<Vec<Vec<f64>>, RunError> {
    let answers = set.task.answers();
    let mut single = Vec::with_capacity(answers.len());
    for a in answers {
        let ids = tok.encode_target(a)?;
        single.push(match ids.as_slice() {
            [id] => Some(i64::from(*id)),
            _ => None,
        });
    }
    let tuple = |e: &GlueExample, answer: &str| Tuple {
        prompt: e.prompt.clone(),
        target: answer.to_string(),
        old_target: None,
    };
    let mut out = vec![vec![0.0; answers.len()]; set.examples.len()];
    if let Some(ids) = single.into_iter().collect::<Option<Vec<i64>>>() {
        // One labelled position per prompt: its logits score every answer.
        let tuples = set
            .examples
            .iter()
            .map(|e| tokenize(tok, &tuple(e, answers[0])))
            .collect::<Result<Vec<_>, _>>()?;
        for mb in collate(&tuples, chunk, false) {
            let logp = log_softmax(lm.label_logits(&mb.batch)?, 1);
            let vocab = logp.dims()[1];
            let values = logp.into_data().convert::<f32>();
            let values = values
                .as_slice::<f32>()
                .map_err(|e| RunError::Config(format!("reading log-probabilities: {e:?}")))?;
            for (r, &row) in mb.rows.iter().enumerate() {
                for (a, &id) in ids.iter().enumerate() {
                    let at = r * vocab + usize::try_from(id).unwrap_or(usize::MAX);
                    out[row][a] = values.get(at).map_or(f64::NEG_INFINITY, |&v| f64::from(v));
                }
            }
        }
        return Ok(out);
    }
    for (a, answer) in answers.iter().enumerate() {
        let tuples = set
            .examples
            .iter()
            .map(|e| tokenize(tok, &tuple(e, answer)))
            .collect::<Result<Vec<_>, _>>()?;
        for mb in collate(&tuples, chunk, false) {
            let lp = lm.label_logprobs(&mb.batch)?;
            for (&row, sum) in mb.rows.iter().zip(sequence_logprob(&mb.batch, &lp)) {
                out[row][a] = sum / tuples[row].answer_len().max(1) as f64;
            }
        }
    }
    Ok(out)
}

/// The class with the strictly highest score; `None` on a tie for the top (as the
/// reference's MMLU scorer, which counts a tie as wrong).
fn best(scores: &[f64]) -> Option<usize> {
    let (i, top) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let ties = scores.iter().filter(|&&s| s == *top).count();
    (ties == 1).then_some(i)
}

fn accuracy(labels: &[usize], predicted: &[Option<usize>]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let right = labels
        .iter()
        .zip(predicted)
        .filter(|(l, p)| Some(**l) == **p)
        .count();
    right as f64 / labels.len() as f64
}

/// Support-weighted F1 over the classes (a missing prediction is a class of its own that no
/// label has, as the reference's −1).
pub fn weighted_f1(labels: &[usize], predicted: &[Option<usize>], classes: usize) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let mut total = 0.0;
    for c in 0..classes {
        let support = labels.iter().filter(|&&l| l == c).count();
        if support == 0 {
            continue;
        }
        let tp = labels
            .iter()
            .zip(predicted)
            .filter(|(l, p)| **l == c && **p == Some(c))
            .count();
        let predicted_c = predicted.iter().filter(|p| **p == Some(c)).count();
        let f1 = if tp == 0 {
            0.0
        } else {
            let precision = tp as f64 / predicted_c as f64;
            let recall = tp as f64 / support as f64;
            2.0 * precision * recall / (precision + recall)
        };
        total += f1 * support as f64;
    }
    total / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_f1_matches_scikit_learn() {
        // sklearn.metrics.f1_score([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], average="weighted")
        // = 0.6 (class 0: p 1/2, r 1/2, f 0.5; class 1: p 2/3, r 2/3, f 2/3; weights 2/5, 3/5).
        let labels = [0, 0, 1, 1, 1];
        let predicted = [Some(0), Some(1), Some(1), Some(1), Some(0)];
        assert!((weighted_f1(&labels, &predicted, 2) - 0.6).abs() < 1e-12);
        assert_eq!(accuracy(&labels, &predicted), 0.6);
        // A missing prediction counts against its label's recall only.
        let predicted = [None, Some(0), Some(1), Some(1), Some(1)];
        // class 0: tp 1, predicted 1, support 2 → f 2/3; class 1: tp 3, predicted 3, support 3.
        let want = (2.0 / 3.0 * 2.0 + 3.0) / 5.0;
        assert!((weighted_f1(&labels, &predicted, 2) - want).abs() < 1e-12);
    }

    #[test]
    fn ties_are_no_prediction() {
        assert_eq!(best(&[0.1, 0.3, 0.3, 0.0]), None);
        assert_eq!(best(&[-1.0, -0.5]), Some(1));
        assert_eq!(best(&[]), None);
    }
}
