//! RippleEdits' family scores on the embedded default model, which knows the synthetic
//! world's facts: a query passes when any answer is produced, tests combine by OR / AND, and
//! conditions are judged on the unedited model.

use std::path::Path;

use emsedit_eval::data::ripple::{Family, Query, RippleProbes, TestCase};
use emsedit_eval::data::{EditRecord, Tuple};
use emsedit_eval::ripple::{answered, ripple_report};
use emsedit_eval::synthetic::{FactWorld, WorldConfig};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_tensor::{Cpu, cpu};

fn q(prompt: &str, answers: &[&str]) -> Query {
    Query {
        prompt: prompt.into(),
        answers: answers.iter().map(|s| s.to_string()).collect(),
    }
}

/// The embedded default model, its tokenizer and the synthetic world's facts it knows.
fn fixture() -> (CausalLm<Cpu>, LmTokenizer, Vec<Tuple>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let facts = FactWorld::generate(WorldConfig::default()).fact_tuples();
    (lm, tok, facts)
}

#[test]
fn families_score_as_ripple_edits_does() {
    let (lm, tok, facts) = fixture();
    let known = &facts[0];
    let other = facts.iter().find(|f| f.target != known.target).unwrap();
    assert_ne!(known.target, other.target);
    // Sanity: the model produces the known fact's object, and not another one.
    let right = q(&known.prompt, &["Nonsenseword", &known.target]);
    let wrong = q(&known.prompt, &[&other.target]);
    assert_eq!(
        answered(&lm, &tok, &[&right, &wrong], 4).unwrap(),
        [true, false]
    );

    let case = |family, queries, all_of, conditions| TestCase {
        family,
        queries,
        all_of,
        conditions,
    };
    let cases = vec![
        // OR: one right query suffices.
        case(
            Family::CompositionalityI,
            vec![wrong.clone(), right.clone()],
            false,
            vec![],
        ),
        // AND: every query must pass.
        case(
            Family::CompositionalityI,
            vec![wrong.clone(), right.clone()],
            true,
            vec![],
        ),
        // Applies only where the unedited model answers the condition: here it does not.
        case(
            Family::RelationSpecificity,
            vec![right.clone()],
            false,
            vec![wrong.clone()],
        ),
        case(
            Family::RelationSpecificity,
            vec![right.clone()],
            false,
            vec![right.clone()],
        ),
    ];
    let record = EditRecord {
        edit: known.clone(),
        equiv: vec![known.clone()],
        unrel: vec![Tuple {
            prompt: other.prompt.clone(),
            target: other.target.clone(),
            old_target: None,
        }],
        ripple: Some(RippleProbes {
            old_target: other.target.clone(),
            cases,
        }),
    };
    let report = ripple_report(&lm, &lm, &tok, &[record], 4)
        .unwrap()
        .unwrap();
    let fams: Vec<_> = report
        .families
        .iter()
        .map(|f| {
            (
                f.family,
                f.cases,
                f.executable,
                f.before,
                f.after,
                f.after_executable,
            )
        })
        .collect();
    assert_eq!(
        fams,
        [
            (Family::CompositionalityI, 2, 2, 0.5, 0.5, 0.5),
            (Family::RelationSpecificity, 2, 1, 1.0, 1.0, 1.0),
        ]
    );
    // No RippleEdits tests: no report.
    let plain = EditRecord {
        edit: known.clone(),
        equiv: vec![],
        unrel: vec![],
        ripple: None,
    };
    assert!(
        ripple_report(&lm, &lm, &tok, &[plain], 4)
            .unwrap()
            .is_none()
    );
}

/// `answered` reads the prompts' next tokens first and scores only the answers that start
/// with them: on many queries (shared prompts, answers of one and several tokens, answers
/// that start right and go wrong) it decides as scoring every answer whole does.
#[test]
fn answered_agrees_with_scoring_every_answer() {
    use emsedit_eval::data::{collate, tokenize};
    use emsedit_eval::scenario::score;

    let (lm, tok, facts) = fixture();
    let objects: Vec<&str> = facts.iter().take(6).map(|f| f.target.as_str()).collect();
    let mut queries = Vec::new();
    for (i, fact) in facts.iter().take(24).enumerate() {
        // Every other query without its right answer (only one that starts like it).
        let mut answers = vec![format!("{} {}", fact.target, objects[i % 6])];
        if i % 2 == 0 {
            answers.push(fact.target.clone());
        }
        answers.extend(objects.iter().map(|o| o.to_string()));
        answers.retain(|a| i % 2 == 0 || *a != fact.target);
        queries.push(Query {
            prompt: fact.prompt.clone(),
            answers,
        });
    }
    // The prompts without their last word, answered by that word and the object: answers of
    // several tokens that the model produces.
    for fact in facts.iter().take(12) {
        let (head, last) = fact.prompt.rsplit_once(' ').unwrap();
        queries.push(Query {
            prompt: head.to_string(),
            answers: vec![
                format!("{last} {}", fact.target),
                format!("{last} {}", objects[0]),
            ],
        });
    }
    // The same prompt again in another query.
    queries.push(queries[0].clone());
    let refs: Vec<&Query> = queries.iter().collect();

    let whole = |q: &Query, a: &str| -> (bool, usize) {
        let tuple = Tuple {
            prompt: q.prompt.clone(),
            target: a.to_string(),
            old_target: None,
        };
        let t = tokenize(&tok, &tuple).unwrap();
        let tokens = t.answer_len();
        let acc = score(&lm, &collate(&[t], 1, false)).unwrap()[0];
        (acc >= 1.0, tokens)
    };
    let mut expected = Vec::new();
    let (mut long_right, mut long_wrong, mut wrong) = (0, 0, 0);
    for q in &queries {
        let mut any = false;
        for a in &q.answers {
            let (ok, tokens) = whole(q, a);
            any |= ok;
            match (ok, tokens > 1) {
                (true, true) => long_right += 1,
                (false, true) => long_wrong += 1,
                (false, false) => wrong += 1,
                (true, false) => {}
            }
        }
        expected.push(any);
    }
    assert_eq!(answered(&lm, &tok, &refs, 4).unwrap(), expected);
    // Both outcomes, and answers of several tokens each way, were decided.
    assert!(expected.contains(&true) && expected.contains(&false));
    assert!(
        long_right > 0 && long_wrong > 0 && wrong > 0,
        "{long_right} {long_wrong} {wrong}"
    );
}
