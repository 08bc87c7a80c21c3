//! RippleEdits records: the original format of Cohen et al. (2024) with its six test families,
//! and the flattened train and test formats of the reference code (spec §1.1).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DataError;
use crate::data::fields::{Fields, kind};
use crate::data::records::{EditRecord, Tuple};

/// RippleEdits' test families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// Other facts about the subject stay as they were (locality).
    RelationSpecificity,
    /// Facts implied by the edit through a relation's logic (e.g. symmetry).
    LogicalGeneralization,
    /// The edit holds for the subject's other names (the reference's generalization).
    SubjectAliasing,
    /// Two-hop facts through the new object.
    CompositionalityI,
    /// Two-hop facts through the subject.
    CompositionalityII,
    /// For one-to-many relations, the old objects are kept.
    Forgetfulness,
}

impl Family {
    /// Every family, in the order of the RippleEdits paper.
    pub const ALL: [Family; 6] = [
        Family::LogicalGeneralization,
        Family::CompositionalityI,
        Family::CompositionalityII,
        Family::SubjectAliasing,
        Family::Forgetfulness,
        Family::RelationSpecificity,
    ];

    /// The family's field name in the data (`Relation_Specificity`, ...).
    pub fn field(self) -> &'static str {
        match self {
            Family::RelationSpecificity => "Relation_Specificity",
            Family::LogicalGeneralization => "Logical_Generalization",
            Family::SubjectAliasing => "Subject_Aliasing",
            Family::CompositionalityI => "Compositionality_I",
            Family::CompositionalityII => "Compositionality_II",
            Family::Forgetfulness => "Forgetfulness",
        }
    }
}

/// A query and every answer that counts as right: each answer's value and its aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The prompt.
    pub prompt: String,
    /// Accepted completions (non-blank, without duplicates).
    pub answers: Vec<String>,
}

/// One RippleEdits test: its queries, how they combine, and the conditions under which the
/// test applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// The family.
    pub family: Family,
    /// The test queries (queries without any answer are left out when reading).
    pub queries: Vec<Query>,
    /// `test_condition` AND: every query must pass (OR: any one).
    pub all_of: bool,
    /// Facts the unedited model must know for the test to apply (`condition_queries`).
    pub conditions: Vec<Query>,
}

/// The RippleEdits tests of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RippleProbes {
    /// The object the edit replaces (from `edit.original_fact`).
    pub old_target: String,
    /// The tests, in file order, family by family.
    pub cases: Vec<TestCase>,
}

/// Splits an edit sentence against its original one ("… is Syria." against "… is United
/// States of America.") into the prompt they share, cut back to a word boundary, and the two
/// objects without the final period.
pub fn split_edit(edit: &str, original: &str) -> Option<(String, String, String)> {
    let common = edit
        .char_indices()
        .zip(original.chars())
        .find(|((_, a), b)| a != b)
        .map_or(edit.len().min(original.len()), |((i, _), _)| i);
    let cut = edit[..common].rfind(' ')?;
    let object = |s: &str| {
        let rest = s[cut..].trim();
        rest.strip_suffix('.').unwrap_or(rest).trim().to_string()
    };
    let prompt = edit[..cut].trim().to_string();
    let (new, old) = (object(edit), object(original));
    (!prompt.is_empty() && !new.is_empty() && !old.is_empty() && new != old)
        .then_some((prompt, new, old))
}

/// An array field that may be absent or null (then empty).
fn items<'a>(f: &Fields<'a>, field: &str) -> Result<&'a [Value], DataError> {
    match f.record.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(f.error(field, format!("expected an array, found {}", kind(other)))),
    }
}

/// A query of the original format: `prompt` and `answers` (`value`, `aliases`).
fn query(f: &Fields, name: &str, v: &Value) -> Result<Query, DataError> {
    let prompt = f.text(
        &format!("{name}.prompt"),
        v.get("prompt").unwrap_or(&Value::Null),
    )?;
    let mut answers: Vec<String> = Vec::new();
    let answer_list = match v.get("answers") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => {
            return Err(f.error(
                &format!("{name}.answers"),
                format!("expected an array, found {}", kind(other)),
            ));
        }
    };
    for (j, answer) in answer_list.iter().enumerate() {
        let at = format!("{name}.answers[{j}]");
        let value = f.text(
            &format!("{at}.value"),
            answer.get("value").unwrap_or(&Value::Null),
        )?;
        let aliases = match answer.get("aliases") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(other) => {
                return Err(f.error(
                    &format!("{at}.aliases"),
                    format!("expected an array, found {}", kind(other)),
                ));
            }
        };
        let mut names = vec![value];
        for (k, alias) in aliases.iter().enumerate() {
            names.push(f.text(&format!("{at}.aliases[{k}]"), alias)?);
        }
        for name in names {
            let name = name.trim().to_string();
            if !name.is_empty() && !answers.contains(&name) {
                answers.push(name);
            }
        }
    }
    Ok(Query { prompt, answers })
}

fn queries(f: &Fields, name: &str, v: Option<&Value>) -> Result<Vec<Query>, DataError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(f.error(name, format!("expected an array, found {}", kind(other))));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, q)| query(f, &format!("{name}[{i}]"), q))
        .collect()
}

/// The test cases of one family; queries without a prompt or an answer are dropped, and so
/// are cases left without queries.
fn family_cases(f: &Fields, family: Family) -> Result<Vec<TestCase>, DataError> {
    let field = family.field();
    let mut out = Vec::new();
    for (i, case) in items(f, field)?.iter().enumerate() {
        let name = format!("{field}[{i}]");
        let usable = |q: &Query| !q.prompt.trim().is_empty() && !q.answers.is_empty();
        let tests: Vec<Query> =
            queries(f, &format!("{name}.test_queries"), case.get("test_queries"))?
                .into_iter()
                .filter(usable)
                .collect();
        let all_of = match case.get("test_condition") {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) if s == "OR" => false,
            Some(Value::String(s)) if s == "AND" => true,
            Some(other) => {
                return Err(f.error(
                    &format!("{name}.test_condition"),
                    format!("expected \"OR\" or \"AND\", found {other}"),
                ));
            }
        };
        let conditions: Vec<Query> = queries(
            f,
            &format!("{name}.condition_queries"),
            case.get("condition_queries"),
        )?
        .into_iter()
        .filter(usable)
        .collect();
        if !tests.is_empty() {
            out.push(TestCase {
                family,
                queries: tests,
                all_of,
                conditions,
            });
        }
    }
    Ok(out)
}

/// The first query of a family's cases, as a tuple with `target` (or the query's own first
/// answer).
fn first_query(cases: &[TestCase], family: Family) -> Option<&Query> {
    cases
        .iter()
        .filter(|c| c.family == family)
        .flat_map(|c| &c.queries)
        .next()
}

/// RippleEdits' original format. The edit prompt and new target come from `edit.prompt`
/// against `edit.original_fact.prompt` ([`split_edit`]). The reference's view: the first
/// Subject_Aliasing query with the new target is the equivalence tuple (the edit itself when
/// there is none) and the first Relation_Specificity query with its first answer the locality
/// tuple (the edit itself when there is none). Every family is kept in
/// [`EditRecord::ripple`].
pub fn original(f: &Fields) -> Result<EditRecord, DataError> {
    let sentence = f.nonempty("edit.prompt")?;
    let original = f.nonempty("edit.original_fact.prompt")?;
    let Some((prompt, new, old)) = split_edit(&sentence, &original) else {
        return Err(DataError::Unusable {
            path: f.path.to_path_buf(),
            record: f.index,
            field: "edit.prompt".into(),
            reason: "no prompt and new object against `edit.original_fact.prompt`".into(),
        });
    };
    let mut cases = Vec::new();
    for family in Family::ALL {
        cases.extend(family_cases(f, family)?);
    }
    let alias = first_query(&cases, Family::SubjectAliasing)
        .map_or_else(|| prompt.clone(), |q| q.prompt.clone());
    let unrel = first_query(&cases, Family::RelationSpecificity).map_or_else(
        || Tuple::new(prompt.clone(), new.clone(), None),
        |q| Tuple::new(q.prompt.clone(), q.answers[0].clone(), None),
    );
    Ok(EditRecord {
        edit: Tuple::new(prompt, new.clone(), None),
        equiv: vec![Tuple::new(alias, new, None)],
        unrel: vec![unrel],
        ripple: Some(RippleProbes {
            old_target: old,
            cases,
        }),
    })
}

/// The reference code's flattened formats: train (`rephrase_prompt`) or test
/// (`Subject_Aliasing`, `Relation_Specificity` with `prompt` and `targets`), per record.
pub fn flat(f: &Fields) -> Result<EditRecord, DataError> {
    let prompt = f.nonempty("prompt")?;
    let new = f.nonempty("target_new")?;
    if f.has("rephrase_prompt") {
        return Ok(EditRecord {
            edit: Tuple::new(prompt, new.clone(), None),
            equiv: vec![Tuple::new(f.nonempty("rephrase_prompt")?, new, None)],
            unrel: vec![Tuple::new(
                f.nonempty("locality_prompt")?,
                f.nonempty("locality_ground_truth")?,
                None,
            )],
            ripple: None,
        });
    }
    // Test format: first Subject_Aliasing prompt (with the edit's target), first
    // Relation_Specificity item with a prompt and targets (spec §1.1).
    let mut alias = None;
    for (i, it) in items(f, "Subject_Aliasing")?.iter().enumerate() {
        if let Some(p) = it.get("prompt") {
            let p = f.text(&format!("Subject_Aliasing[{i}].prompt"), p)?;
            if !p.is_empty() {
                alias = Some(p);
                break;
            }
        }
    }
    let alias = alias.unwrap_or_else(|| prompt.clone());
    let mut unrel = Tuple::new(prompt.clone(), new.clone(), None);
    for (i, it) in items(f, "Relation_Specificity")?.iter().enumerate() {
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
        ripple: None,
    })
}
