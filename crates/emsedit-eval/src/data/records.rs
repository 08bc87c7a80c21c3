//! Records of the editing data sets turned into (edit, equivalence, locality) tuples (spec §1.1).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DataError;
use crate::data::fields::Fields;
use crate::data::json::{RawRecord, read_records};

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
    fn new(prompt: String, target: String, old_target: Option<String>) -> Self {
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
}

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dataset {
    /// ZsRE in MEND's format (`src`, `rephrase`, `alt`, `loc`, `loc_ans`).
    Zsre,
    /// CounterFact (ROME/MEMIT format), train variant: first paraphrase and neighbour only.
    CounterfactTrain,
    /// CounterFact, eval variant: every paraphrase and every neighbour.
    CounterfactEval,
    /// RippleEdits, in either the train format (`rephrase_prompt`) or the test format
    /// (`Subject_Aliasing`, `Relation_Specificity`), chosen per record.
    Ripple,
}

/// Reads every record of `path` in the given format.
pub fn load(path: &Path, dataset: Dataset) -> Result<Vec<EditRecord>, DataError> {
    convert(path, &read_records(path)?, dataset)
}

/// The train and eval records of a data folder: `train.json` and `eval.json`, or else the
/// `.json` file whose name contains `train` and the one whose name contains `eval`, `test`
/// or `val` (MEND's `zsre_mend_train.json` / `zsre_mend_eval.json`). With CounterFact the
/// eval split is read as [`Dataset::CounterfactEval`] and the train split as
/// [`Dataset::CounterfactTrain`].
pub fn load_splits(
    dir: &Path,
    dataset: Dataset,
) -> Result<(Vec<EditRecord>, Vec<EditRecord>), DataError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let find = |split: &'static str, exact: &str, parts: &[&str]| {
        let found = names.iter().find(|n| *n == exact).or_else(|| {
            names
                .iter()
                .find(|n| parts.iter().any(|p| n.to_ascii_lowercase().contains(p)))
        });
        found.map(|n| dir.join(n)).ok_or(DataError::MissingSplit {
            dir: dir.to_path_buf(),
            split,
            looked_for: if split == "train" {
                "train.json, *train*.json"
            } else {
                "eval.json, *eval*.json, *test*.json, *val*.json"
            },
        })
    };
    let train = find("train", "train.json", &["train"])?;
    let eval = find("eval", "eval.json", &["eval", "test", "val"])?;
    let (train_format, eval_format) = match dataset {
        Dataset::CounterfactTrain | Dataset::CounterfactEval => {
            (Dataset::CounterfactTrain, Dataset::CounterfactEval)
        }
        other => (other, other),
    };
    Ok((load(&train, train_format)?, load(&eval, eval_format)?))
}

/// Converts records already in memory (JSON objects in the file format of `dataset`);
/// `origin` names them in errors.
pub fn from_json(
    origin: &Path,
    records: &[Value],
    dataset: Dataset,
) -> Result<Vec<EditRecord>, DataError> {
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

fn convert(path: &Path, raw: &[RawRecord], dataset: Dataset) -> Result<Vec<EditRecord>, DataError> {
    raw.iter()
        .enumerate()
        .map(|(index, record)| {
            let f = Fields {
                path,
                index,
                record,
            };
            match dataset {
                Dataset::Zsre => zsre(&f),
                Dataset::CounterfactTrain => counterfact(&f, false),
                Dataset::CounterfactEval => counterfact(&f, true),
                Dataset::Ripple => ripple(&f),
            }
        })
        .collect()
}

fn zsre(f: &Fields) -> Result<EditRecord, DataError> {
    let target = f.nonempty("alt", f.value("alt")?)?;
    Ok(EditRecord {
        edit: Tuple::new(f.str("src")?, target.clone(), None),
        equiv: vec![Tuple::new(f.str("rephrase")?, target, None)],
        // The reference appends "?" to the NQ question (which keeps its "nq question: " prefix).
        unrel: vec![Tuple::new(
            format!("{}?", f.str("loc")?),
            f.nonempty("loc_ans", f.value("loc_ans")?)?,
            None,
        )],
    })
}

/// A prompt list entry: a string, or an object with a `prompt`.
fn prompt_at(f: &Fields, field: &str, i: usize, v: &Value) -> Result<String, DataError> {
    let name = format!("{field}[{i}]");
    match v.get("prompt") {
        Some(p) => f.text(&format!("{name}.prompt"), p),
        None => f.text(&name, v),
    }
}

fn counterfact(f: &Fields, eval: bool) -> Result<EditRecord, DataError> {
    let template = f.str("requested_rewrite.prompt")?;
    if !template.contains("{}") {
        return Err(f.error("requested_rewrite.prompt", "has no `{}` for the subject"));
    }
    let subject = f.str("requested_rewrite.subject")?;
    let new = f.nonempty(
        "requested_rewrite.target_new.str",
        f.value("requested_rewrite.target_new.str")?,
    )?;
    let old = f.nonempty(
        "requested_rewrite.target_true.str",
        f.value("requested_rewrite.target_true.str")?,
    )?;
    let list = |field: &str| -> Result<Vec<String>, DataError> {
        let items = f.array(field)?;
        if items.is_empty() {
            return Err(f.error(field, "empty list"));
        }
        let take = if eval { items.len() } else { 1 };
        items[..take]
            .iter()
            .enumerate()
            .map(|(i, v)| prompt_at(f, field, i, v))
            .collect()
    };
    let equiv = list("paraphrase_prompts")?
        .into_iter()
        .map(|p| Tuple::new(p, new.clone(), Some(old.clone())))
        .collect();
    // Neighbourhood prompts keep the true target; the "old" one is the edit's new target.
    let unrel = list("neighborhood_prompts")?
        .into_iter()
        .map(|p| Tuple::new(p, old.clone(), Some(new.clone())))
        .collect();
    Ok(EditRecord {
        edit: Tuple::new(
            template.replace("{}", &subject),
            new.clone(),
            Some(old.clone()),
        ),
        equiv,
        unrel,
    })
}

fn ripple(f: &Fields) -> Result<EditRecord, DataError> {
    let prompt = f.str("prompt")?;
    let new = f.nonempty("target_new", f.value("target_new")?)?;
    if f.has("rephrase_prompt") {
        return Ok(EditRecord {
            edit: Tuple::new(prompt, new.clone(), None),
            equiv: vec![Tuple::new(f.str("rephrase_prompt")?, new, None)],
            unrel: vec![Tuple::new(
                f.str("locality_prompt")?,
                f.nonempty("locality_ground_truth", f.value("locality_ground_truth")?)?,
                None,
            )],
        });
    }
    // Test format: first Subject_Aliasing prompt (with the edit's target), first
    // Relation_Specificity item with a prompt and targets (spec §1.1).
    let items = |field: &str| -> Result<Vec<&Value>, DataError> {
        match f.record.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.iter().collect()),
            Some(other) => Err(f.error(
                field,
                format!(
                    "expected an array, found {}",
                    crate::data::fields::kind(other)
                ),
            )),
        }
    };
    let alias = items("Subject_Aliasing")?
        .into_iter()
        .enumerate()
        .map(|(i, it)| {
            it.get("prompt")
                .map(|p| f.text(&format!("Subject_Aliasing[{i}].prompt"), p))
        })
        .find_map(|p| match p {
            Some(Ok(s)) if !s.is_empty() => Some(Ok(s)),
            Some(Err(e)) => Some(Err(e)),
            _ => None,
        })
        .transpose()?
        .unwrap_or_else(|| prompt.clone());
    let mut unrel = Tuple::new(prompt.clone(), new.clone(), None);
    for (i, it) in items("Relation_Specificity")?.into_iter().enumerate() {
        let p = match it.get("prompt") {
            Some(p) => f.text(&format!("Relation_Specificity[{i}].prompt"), p)?,
            None => continue,
        };
        let targets: Vec<String> = match it.get("targets").or_else(|| it.get("ground_truth")) {
            Some(Value::Array(t)) => t
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        if p.is_empty() || targets.is_empty() {
            continue;
        }
        let target = targets
            .into_iter()
            .find(|t| !t.trim().is_empty())
            .unwrap_or_else(|| new.clone());
        unrel = Tuple::new(p, target, None);
        break;
    }
    Ok(EditRecord {
        edit: Tuple::new(prompt, new.clone(), None),
        equiv: vec![Tuple::new(alias, new, None)],
        unrel: vec![unrel],
    })
}
