//! ZsRE (MEND format) and CounterFact (ROME and EasyEdit formats) records (spec §1.1).

use serde_json::Value;

use crate::DataError;
use crate::data::fields::Fields;
use crate::data::records::{EditRecord, Tuple};

/// ZsRE in MEND's format.
pub fn zsre(f: &Fields) -> Result<EditRecord, DataError> {
    let target = f.nonempty("alt")?;
    Ok(EditRecord {
        edit: Tuple::new(f.nonempty("src")?, target.clone(), None),
        equiv: vec![Tuple::new(f.nonempty("rephrase")?, target, None)],
        // The reference appends "?" to the NQ question (which keeps its "nq question: " prefix).
        unrel: vec![Tuple::new(
            format!("{}?", f.nonempty("loc")?),
            f.nonempty("loc_ans")?,
            None,
        )],
        ripple: None,
    })
}

/// A prompt list entry: a string, or an object with a `prompt`.
fn prompt_at(f: &Fields, field: &str, i: usize, v: &Value) -> Result<String, DataError> {
    let name = format!("{field}[{i}]");
    match v.get("prompt") {
        Some(p) => f.nonempty_text(&format!("{name}.prompt"), p),
        None => f.nonempty_text(&name, v),
    }
}

/// A prompt field that holds one prompt or a list of them; `all` keeps every one, else the
/// first.
fn prompts(f: &Fields, field: &str, all: bool) -> Result<Vec<String>, DataError> {
    let v = f.value(field)?;
    let Some(items) = v.as_array() else {
        return Ok(vec![f.nonempty_text(field, v)?]);
    };
    if items.is_empty() {
        return Err(f.error(field, "empty list"));
    }
    let take = if all { items.len() } else { 1 };
    items[..take]
        .iter()
        .enumerate()
        .map(|(i, v)| prompt_at(f, field, i, v))
        .collect()
}

/// The record from its parts: the edit, paraphrases with the new target and neighbours that
/// keep the true target (their "old" target is the edit's new one).
fn counterfact_record(
    edit: String,
    new: String,
    old: String,
    paraphrases: Vec<String>,
    neighbours: Vec<(String, String)>,
) -> EditRecord {
    EditRecord {
        edit: Tuple::new(edit, new.clone(), Some(old.clone())),
        equiv: paraphrases
            .into_iter()
            .map(|p| Tuple::new(p, new.clone(), Some(old.clone())))
            .collect(),
        unrel: neighbours
            .into_iter()
            .map(|(p, truth)| Tuple::new(p, truth, Some(new.clone())))
            .collect(),
        ripple: None,
    }
}

fn rome(f: &Fields, eval: bool) -> Result<EditRecord, DataError> {
    let template = f.nonempty("requested_rewrite.prompt")?;
    if !template.contains("{}") {
        return Err(f.error("requested_rewrite.prompt", "has no `{}` for the subject"));
    }
    let subject = f.nonempty("requested_rewrite.subject")?;
    let new = f.nonempty("requested_rewrite.target_new.str")?;
    let old = f.nonempty("requested_rewrite.target_true.str")?;
    let paraphrases = prompts(f, "paraphrase_prompts", eval)?;
    let neighbours = prompts(f, "neighborhood_prompts", eval)?
        .into_iter()
        .map(|p| (p, old.clone()))
        .collect();
    Ok(counterfact_record(
        template.replace("{}", &subject),
        new,
        old,
        paraphrases,
        neighbours,
    ))
}

/// CounterFact in ROME's format, train variant (first paraphrase and neighbour).
pub fn rome_train(f: &Fields) -> Result<EditRecord, DataError> {
    rome(f, false)
}

/// CounterFact in ROME's format, eval variant (every paraphrase and neighbour).
pub fn rome_eval(f: &Fields) -> Result<EditRecord, DataError> {
    rome(f, true)
}

/// CounterFact in EasyEdit's format: `prompt` (subject filled in), `target_new`,
/// `ground_truth` (the old target), `rephrase_prompt`, `locality_prompt` and
/// `locality_ground_truth` (each prompt a string or a list).
pub fn easyedit(f: &Fields) -> Result<EditRecord, DataError> {
    let new = f.nonempty("target_new")?;
    let old = f.nonempty("ground_truth")?;
    let truth = f.nonempty("locality_ground_truth")?;
    let neighbours = prompts(f, "locality_prompt", true)?
        .into_iter()
        .map(|p| (p, truth.clone()))
        .collect();
    Ok(counterfact_record(
        f.nonempty("prompt")?,
        new,
        old,
        prompts(f, "rephrase_prompt", true)?,
        neighbours,
    ))
}
