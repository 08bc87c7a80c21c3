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

#[test]
fn families_score_as_ripple_edits_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let world = FactWorld::generate(WorldConfig::default());
    let facts = world.fact_tuples();
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
