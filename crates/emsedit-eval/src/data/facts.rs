//! Facts to edit as a user writes them, and the format of a data file told from its records.

use std::path::Path;

use serde_json::Value;

use crate::DataError;
use crate::data::fields::Fields;
use crate::data::json::read_records;
use crate::data::records::{Dataset, EditRecord, Loaded, Tuple, load};

/// The format of a data file, told from its first record: ZsRE (`src`, `alt`), CounterFact
/// (`requested_rewrite`, or `prompt` with `target_new` and `ground_truth`) or RippleEdits
/// (`edit`, or `prompt` with `target_new`). CounterFact is read as its eval variant.
pub fn detect(path: &Path) -> Result<Dataset, DataError> {
    let records = read_records(path)?;
    let Some(first) = records.first() else {
        return Err(DataError::Record {
            path: path.to_path_buf(),
            record: 0,
            field: "(file)".into(),
            detail: "no records".into(),
        });
    };
    let has = |k: &str| first.contains_key(k);
    Ok(if has("src") && has("alt") {
        Dataset::Zsre
    } else if has("requested_rewrite") || (has("target_new") && has("ground_truth")) {
        Dataset::CounterfactEval
    } else if has("edit") || (has("prompt") && has("target_new")) {
        Dataset::Ripple
    } else {
        return Err(DataError::Record {
            path: path.to_path_buf(),
            record: 0,
            field: "(record)".into(),
            detail: "not ZsRE (`src`, `alt`), CounterFact (`requested_rewrite`, or `prompt`, \
                     `target_new`, `ground_truth`) nor RippleEdits (`edit`)"
                .into(),
        });
    })
}

/// Facts from `path`: a JSON array in one of the data-set formats ([`detect`]), or JSON lines
/// `{"prompt": ..., "target": ..., "rephrase"?: ..., "old_target"?: ...}`. A fact's
/// generalization probe is its `rephrase` (else its own prompt); facts have no locality probe.
pub fn load_facts(path: &Path) -> Result<Loaded, DataError> {
    let text = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let start = text
        .iter()
        .position(|b| !b" \t\r\n\xEF\xBB\xBF".contains(b));
    if start.is_some_and(|i| text[i] == b'[') {
        return load(path, detect(path)?);
    }
    let text = String::from_utf8(text).map_err(|e| DataError::Parse {
        path: path.to_path_buf(),
        record: 0,
        field: "(file)".into(),
        detail: format!("not UTF-8: {e}"),
    })?;
    let mut out = Loaded::default();
    let lines = text.lines().filter(|l| !l.trim().is_empty());
    for (index, line) in lines.enumerate() {
        let parsed: Value =
            serde_json::from_str(line.trim_start_matches('\u{feff}')).map_err(|e| {
                DataError::Parse {
                    path: path.to_path_buf(),
                    record: index,
                    field: "(line)".into(),
                    detail: e.to_string(),
                }
            })?;
        let Value::Object(record) = parsed else {
            return Err(DataError::Record {
                path: path.to_path_buf(),
                record: index,
                field: "(record)".into(),
                detail: "expected an object with `prompt` and `target`".into(),
            });
        };
        let f = Fields {
            path,
            index,
            record: &record,
        };
        let fact = || -> Result<EditRecord, DataError> {
            let prompt = f.nonempty("prompt")?;
            let target = f.nonempty("target")?;
            let old = if f.has("old_target") {
                Some(f.nonempty("old_target")?)
            } else {
                None
            };
            let rephrase = if f.has("rephrase") {
                f.nonempty("rephrase")?
            } else {
                prompt.clone()
            };
            Ok(EditRecord {
                edit: Tuple::new(prompt, target.clone(), old.clone()),
                equiv: vec![Tuple::new(rephrase, target, old)],
                unrel: Vec::new(),
                ripple: None,
            })
        };
        out.take(fact())?;
    }
    Ok(out)
}
