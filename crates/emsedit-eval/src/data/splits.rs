//! Finding the train and eval files of a data folder, and the RippleEdits split.

use std::path::Path;

use crate::DataError;
use crate::data::records::{Dataset, Loaded, load};

const TRAIN_WORDS: &[&str] = &["train", "training"];
const EVAL_WORDS: &[&str] = &["eval", "test", "val", "valid", "validation", "dev"];

/// The words of a file name: its stem cut at every character that is not a letter or digit,
/// lower-cased (`zsre_mend_train-1k.json` → zsre, mend, train, 1k).
fn words(name: &str) -> Vec<String> {
    let stem = name.strip_suffix(".json").unwrap_or(name);
    stem.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The one file of `names` for a split: `<split>.json` if present, else the one file with a
/// whole word from `keys` (and none from `other`). Several candidates are an error.
fn pick<'a>(
    dir: &Path,
    names: &'a [String],
    split: &'static str,
    keys: &[&str],
    other: &[&str],
) -> Result<Option<&'a String>, DataError> {
    if let Some(exact) = names.iter().find(|n| **n == format!("{split}.json")) {
        return Ok(Some(exact));
    }
    let found: Vec<&String> = names
        .iter()
        .filter(|n| {
            let w = words(n);
            w.iter().any(|w| keys.contains(&w.as_str()))
                && !w.iter().any(|w| other.contains(&w.as_str()))
        })
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(DataError::AmbiguousSplit {
            dir: dir.to_path_buf(),
            split,
            candidates: many.iter().map(|s| s.to_string()).collect(),
        }),
    }
}

/// Whether a RippleEdits record goes to the eval split: FNV-1a (64 bit) of its edit prompt
/// and new target, modulo 3, is 0 — about a third of the records, the same ones whatever the
/// file's order.
pub fn ripple_is_eval(prompt: &str, target: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prompt.bytes().chain([0u8]).chain(target.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.is_multiple_of(3)
}

/// Splits the records of one RippleEdits file into train and eval by [`ripple_is_eval`].
pub fn ripple_split(loaded: Loaded) -> (Loaded, Loaded) {
    let (eval, train) = loaded
        .records
        .into_iter()
        .partition(|r| ripple_is_eval(&r.edit.prompt, &r.edit.target));
    (
        Loaded {
            records: train,
            skipped: loaded.skipped,
        },
        Loaded {
            records: eval,
            skipped: Vec::new(),
        },
    )
}

/// The train and eval records of a data folder.
///
/// The train file is `train.json`, or else the one `.json` file whose name has the word
/// `train`; the eval file is `eval.json`, or else the one whose name has one of the words
/// `eval`, `test`, `val`, `valid`, `validation` or `dev` (words are the parts of the name
/// between non-alphanumeric characters, so `interval_train.json` is a train file). Two
/// candidates for one split are an error that lists them. A RippleEdits folder with a single
/// `.json` file and no split names is split by [`ripple_split`]. With CounterFact the eval
/// split is read as [`Dataset::CounterfactEval`] and the train split as
/// [`Dataset::CounterfactTrain`].
pub fn load_splits(dir: &Path, dataset: Dataset) -> Result<(Loaded, Loaded), DataError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let train = pick(dir, &names, "train", TRAIN_WORDS, EVAL_WORDS)?;
    let eval = pick(dir, &names, "eval", EVAL_WORDS, TRAIN_WORDS)?;
    if let ([only], None, None, Dataset::Ripple) = (names.as_slice(), train, eval, dataset) {
        return Ok(ripple_split(load(&dir.join(only), dataset)?));
    }
    let missing = |split: &'static str| DataError::MissingSplit {
        dir: dir.to_path_buf(),
        split,
        looked_for: if split == "train" {
            "train.json, or one *.json with the word `train`"
        } else {
            "eval.json, or one *.json with the word `eval`, `test`, `val` or `dev`"
        },
    };
    let train = dir.join(train.ok_or_else(|| missing("train"))?);
    let eval = dir.join(eval.ok_or_else(|| missing("eval"))?);
    let (train_format, eval_format) = match dataset {
        Dataset::CounterfactTrain | Dataset::CounterfactEval => {
            (Dataset::CounterfactTrain, Dataset::CounterfactEval)
        }
        other => (other, other),
    };
    Ok((load(&train, train_format)?, load(&eval, eval_format)?))
}
