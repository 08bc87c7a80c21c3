//! Records of the editing data sets turned into (edit, equivalence, locality) tuples (spec §1.1).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DataError;
use crate::data::fields::Fields;
use crate::data::json::{RawRecord, read_records};
use crate::data::ripple::RippleProbes;
use crate::data::{formats, ripple};

/// A prompt and the target it should be completed with (and, for CounterFact, the target
/// whose logits the metric compares against).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuple {
    /// The prompt.
    pub prompt: String,
    /// The target (scored with a leading space).
    pub target: String,
    /// CounterFact's competing target.
    pub old_target: Option<String>,
}

impl Tuple {
    pub(crate) fn new(prompt: String, target: String, old_target: Option<String>) -> Self {
        Self {
            prompt,
            target,
            old_target,
        }
    }
}

/// One record: the edit and its generalization and locality probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRecord {
    /// The edit request (efficacy).
    pub edit: Tuple,
    /// Paraphrases with the new target (generalization).
    pub equiv: Vec<Tuple>,
    /// Unrelated prompts with their own answers (specificity).
    pub unrel: Vec<Tuple>,
    /// RippleEdits' test families, for records read from RippleEdits' original format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ripple: Option<RippleProbes>,
}

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dataset {
    /// ZsRE in MEND's format (`src`, `rephrase`, `alt`, `loc`, `loc_ans`).
    Zsre,
    /// CounterFact, train variant: first paraphrase and neighbour only. The file may be in
    /// ROME's format (`requested_rewrite`) or EasyEdit's (`prompt`, `target_new`,
    /// `ground_truth`), detected per file.
    CounterfactTrain,
    /// CounterFact, eval variant: every paraphrase and every neighbour.
    CounterfactEval,
    /// RippleEdits: the original format (`edit`, the test families), or the flattened train
    /// (`rephrase_prompt`) and test (`Subject_Aliasing`, `Relation_Specificity`) formats of
    /// the reference code, detected per file.
    Ripple,
}

/// A record the loader left out because it cannot be edited or scored (an empty target or
/// prompt), with where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file (or the in-memory origin).
    pub path: PathBuf,
    /// Index of the record in the file (0-based).
    pub record: usize,
    /// The field that made it unusable.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: record {}: field `{}`: {}",
            self.path.display(),
            self.record,
            self.field,
            self.reason
        )
    }
}

/// The records of one file and the ones left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loaded {
    /// The usable records, in file order.
    pub records: Vec<EditRecord>,
    /// The records skipped, in file order.
    pub skipped: Vec<Skipped>,
}

impl Loaded {
    /// Adds a converted record, or lists it as skipped when it is unusable; other errors
    /// pass through.
    pub(crate) fn take(
        &mut self,
        converted: Result<EditRecord, DataError>,
    ) -> Result<(), DataError> {
        match converted {
            Ok(r) => self.records.push(r),
            Err(DataError::Unusable {
                path,
                record,
                field,
                reason,
            }) => self.skipped.push(Skipped {
                path,
                record,
                field,
                reason,
            }),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Strict mode: the records, or the first skipped record as an error.
    pub fn strict(self) -> Result<Vec<EditRecord>, DataError> {
        match self.skipped.into_iter().next() {
            Some(s) => Err(DataError::Record {
                path: s.path,
                record: s.record,
                field: s.field,
                detail: s.reason,
            }),
            None => Ok(self.records),
        }
    }
}

/// "2 records skipped (2 × `alt`: empty text)", or "" when nothing was skipped.
pub fn skip_summary(skipped: &[Skipped]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let mut reasons: Vec<(String, usize)> = Vec::new();
    for s in skipped {
        let why = format!("`{}`: {}", s.field, s.reason);
        match reasons.iter_mut().find(|(r, _)| *r == why) {
            Some((_, n)) => *n += 1,
            None => reasons.push((why, 1)),
        }
    }
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} × {r}")).collect();
    let plural = if skipped.len() == 1 { "" } else { "s" };
    format!(
        "{} record{plural} skipped ({})",
        skipped.len(),
        reasons.join(", ")
    )
}

/// Reads every record of `path` in the given format; records that cannot be edited are
/// skipped and listed ([`Loaded::strict`] refuses them instead).
pub fn load(path: &Path, dataset: Dataset) -> Result<Loaded, DataError> {
    convert(path, &read_records(path)?, dataset)
}

/// Converts records already in memory (JSON objects in the file format of `dataset`);
/// `origin` names them in errors.
pub fn from_json(origin: &Path, records: &[Value], dataset: Dataset) -> Result<Loaded, DataError> {
    let raw = records
        .iter()
        .enumerate()
        .map(|(index, v)| match v {
            Value::Object(map) => Ok(map.clone()),
            other => Err(DataError::Record {
                path: origin.to_path_buf(),
                record: index,
                field: "(record)".into(),
                detail: format!(
                    "expected an object, found {}",
                    crate::data::fields::kind(other)
                ),
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    convert(origin, &raw, dataset)
}

type Convert = fn(&Fields) -> Result<EditRecord, DataError>;

/// The converter for the records of one file: the format is told by its first record.
fn converter(path: &Path, raw: &[RawRecord], dataset: Dataset) -> Result<Convert, DataError> {
    let Some(first) = raw.first() else {
        return Ok(formats::zsre);
    };
    let f = Fields {
        path,
        index: 0,
        record: first,
    };
    Ok(match dataset {
        Dataset::Zsre => formats::zsre,
        Dataset::CounterfactTrain | Dataset::CounterfactEval => {
            let eval = dataset == Dataset::CounterfactEval;
            if f.has("requested_rewrite") {
                if eval {
                    formats::rome_eval
                } else {
                    formats::rome_train
                }
            } else if f.has("prompt") && f.has("target_new") {
                formats::easyedit
            } else {
                return Err(f.error(
                    "(record)",
                    "neither CounterFact's ROME format (`requested_rewrite`, \
                     `paraphrase_prompts`, `neighborhood_prompts`) nor its EasyEdit format \
                     (`prompt`, `target_new`, `ground_truth`, `rephrase_prompt`, \
                     `locality_prompt`)",
                ));
            }
        }
        Dataset::Ripple => {
            if f.has("edit") {
                ripple::original
            } else if f.has("prompt") {
                ripple::flat
            } else {
                return Err(f.error(
                    "(record)",
                    "neither RippleEdits' original format (`edit`, `Relation_Specificity`, \
                     ...) nor the flattened format (`prompt`, `target_new`)",
                ));
            }
        }
    })
}

fn convert(path: &Path, raw: &[RawRecord], dataset: Dataset) -> Result<Loaded, DataError> {
    let convert = converter(path, raw, dataset)?;
    let mut out = Loaded::default();
    for (index, record) in raw.iter().enumerate() {
        let f = Fields {
            path,
            index,
            record,
        };
        out.take(convert(&f))?;
    }
    Ok(out)
}
