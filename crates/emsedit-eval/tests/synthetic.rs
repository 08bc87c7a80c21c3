//! The synthetic fact world: its files load, it is deterministic, its edits are well formed
//! and the corpus teaches every answer the records probe.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use emsedit_eval::data::{Dataset, EditRecord, load, load_splits};
use emsedit_eval::synthetic::{FactWorld, NEIGHBOURS, Split, WorldConfig};
use serde_json::Value;

/// A fresh folder under the temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("emsedit-synthetic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Loaded {
    zsre: [Vec<EditRecord>; 2],
    counterfact: [Vec<EditRecord>; 2],
    corpus: String,
}

fn write_and_load(world: &FactWorld, name: &str) -> Loaded {
    let scratch = Scratch::new(name);
    world.write(&scratch.0).unwrap();
    let d = &scratch.0;
    let ld = |p: &str, ds| load(&d.join(p), ds).unwrap().strict().unwrap();
    Loaded {
        zsre: [
            ld("zsre/train.json", Dataset::Zsre),
            ld("zsre/eval.json", Dataset::Zsre),
        ],
        counterfact: [
            ld("counterfact/train.json", Dataset::CounterfactTrain),
            ld("counterfact/eval.json", Dataset::CounterfactEval),
        ],
        corpus: std::fs::read_to_string(d.join("corpus.txt")).unwrap(),
    }
}

fn small() -> WorldConfig {
    WorldConfig {
        seed: 11,
        subjects: 60,
        train_records: 20,
        eval_records: 25,
    }
}

#[test]
fn files_load_with_the_right_formats_and_counts() {
    for config in [WorldConfig::default(), small()] {
        let world = FactWorld::generate(config);
        let loaded = write_and_load(&world, &format!("load-{}", config.seed));
        let counts = [config.train_records, config.eval_records];
        for (split, n) in counts.into_iter().enumerate() {
            assert_eq!(loaded.zsre[split].len(), n);
            assert_eq!(loaded.counterfact[split].len(), n);
            for r in &loaded.zsre[split] {
                assert_eq!((r.equiv.len(), r.unrel.len()), (1, 1));
            }
        }
        for r in &loaded.counterfact[0] {
            assert_eq!((r.equiv.len(), r.unrel.len()), (1, 1));
        }
        for r in &loaded.counterfact[1] {
            assert_eq!((r.equiv.len(), r.unrel.len()), (2, NEIGHBOURS));
        }
        assert_eq!(loaded.corpus, world.corpus());
    }
}

fn json(world: &FactWorld) -> String {
    let all: Vec<Vec<Value>> = vec![
        world.zsre(Split::Train),
        world.zsre(Split::Eval),
        world.counterfact(Split::Train),
        world.counterfact(Split::Eval),
    ];
    serde_json::to_string(&all).unwrap()
}

#[test]
fn data_folders_resolve_their_splits() {
    let world = FactWorld::generate(small());
    let scratch = Scratch::new("splits");
    world.write(&scratch.0).unwrap();
    let (train, eval) = load_splits(&scratch.0.join("zsre"), Dataset::Zsre).unwrap();
    let (train, eval) = (train.strict().unwrap(), eval.strict().unwrap());
    assert_eq!((train.len(), eval.len()), (20, 25));
    assert_eq!(train, world.zsre_records(Split::Train));
    assert_eq!(eval, world.zsre_records(Split::Eval));
    // CounterFact: the eval split is read with every paraphrase and neighbour.
    let (train, eval) =
        load_splits(&scratch.0.join("counterfact"), Dataset::CounterfactEval).unwrap();
    let (train, eval) = (train.records, eval.records);
    assert_eq!(
        train,
        world.counterfact_records(Split::Train, Dataset::CounterfactTrain)
    );
    assert_eq!(
        eval,
        world.counterfact_records(Split::Eval, Dataset::CounterfactEval)
    );
    assert!(eval[0].equiv.len() > train[0].equiv.len());
    // MEND's file names.
    let mend = scratch.0.join("mend");
    std::fs::create_dir_all(&mend).unwrap();
    for (from, to) in [("train", "zsre_mend_train"), ("eval", "zsre_mend_eval")] {
        let from = scratch.0.join(format!("zsre/{from}.json"));
        std::fs::copy(from, mend.join(format!("{to}.json"))).unwrap();
    }
    assert_eq!(
        load_splits(&mend, Dataset::Zsre).unwrap().1.records.len(),
        25
    );
    // A folder without an eval file names the folder and what was looked for.
    std::fs::remove_file(mend.join("zsre_mend_eval.json")).unwrap();
    let err = load_splits(&mend, Dataset::Zsre).unwrap_err().to_string();
    assert!(
        err.contains("mend") && err.contains("no eval file"),
        "{err}"
    );
}

#[test]
fn same_seed_same_world_other_seed_other_world() {
    let a = FactWorld::generate(WorldConfig::default());
    let b = FactWorld::generate(WorldConfig::default());
    assert_eq!(a.corpus(), b.corpus());
    assert_eq!(json(&a), json(&b));
    assert_eq!(a, b);

    // Written files are byte-identical too.
    let s1 = Scratch::new("det-a");
    let s2 = Scratch::new("det-b");
    a.write(&s1.0).unwrap();
    b.write(&s2.0).unwrap();
    for f in [
        "zsre/train.json",
        "zsre/eval.json",
        "counterfact/train.json",
        "counterfact/eval.json",
        "corpus.txt",
    ] {
        assert_eq!(
            std::fs::read(s1.0.join(f)).unwrap(),
            std::fs::read(s2.0.join(f)).unwrap(),
            "{f}"
        );
    }

    let c = FactWorld::generate(WorldConfig {
        seed: 1,
        ..WorldConfig::default()
    });
    assert_ne!(a.corpus(), c.corpus());
    assert_ne!(json(&a), json(&c));
    assert_ne!(a.subjects(), c.subjects());
}

#[test]
fn eval_edits_do_not_depend_on_the_train_count() {
    let a = FactWorld::generate(small());
    let b = FactWorld::generate(WorldConfig {
        train_records: 3,
        ..small()
    });
    assert_eq!(a.corpus(), b.corpus());
    assert_eq!(a.zsre(Split::Eval), b.zsre(Split::Eval));
    assert_eq!(a.counterfact(Split::Eval), b.counterfact(Split::Eval));
    assert_eq!(a.zsre(Split::Train)[..3], b.zsre(Split::Train)[..]);
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} in {v}"))
}

#[test]
fn edits_are_well_formed() {
    for config in [WorldConfig::default(), small()] {
        let world = FactWorld::generate(config);
        let rel_of: BTreeMap<&str, usize> = world
            .relations()
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name, i))
            .collect();
        let truth: BTreeMap<(&str, usize), &str> = world
            .facts
            .iter()
            .map(|f| ((f.subject.as_str(), f.relation), f.object.as_str()))
            .collect();

        let mut subjects: [BTreeSet<String>; 2] = Default::default();
        for (i, split) in [Split::Train, Split::Eval].into_iter().enumerate() {
            let zsre = world.zsre(split);
            let cf = world.counterfact(split);
            let mut case_ids = HashSet::new();
            for (z, c) in zsre.iter().zip(&cf) {
                let subject = str_at(z, &["subject"]);
                assert_eq!(subject, str_at(c, &["requested_rewrite", "subject"]));
                assert!(subjects[i].insert(subject.to_string()), "{subject} twice");
                assert!(case_ids.insert(c["case_id"].as_u64().unwrap()));

                // ZsRE: alt differs from the true answer, which is the world's fact.
                let alt = str_at(z, &["alt"]);
                let answer = z["answers"][0].as_str().unwrap();
                assert_ne!(alt, answer);
                assert_eq!(str_at(z, &["pred"]), answer);
                assert!(str_at(z, &["src"]).contains(subject));
                assert!(str_at(z, &["rephrase"]).contains(subject));
                let loc = str_at(z, &["loc"]);
                assert!(loc.starts_with("nq question: ") && !loc.ends_with('?'));
                assert!(!loc.contains(&subject.to_lowercase()), "{loc}");

                // CounterFact.
                let rel = rel_of[str_at(c, &["requested_rewrite", "relation_id"])];
                let relation = &world.relations()[rel];
                let new = str_at(c, &["requested_rewrite", "target_new", "str"]);
                let old = str_at(c, &["requested_rewrite", "target_true", "str"]);
                assert_ne!(new, old);
                assert_eq!((new, old), (alt, answer));
                assert_eq!(truth[&(subject, rel)], old);
                assert!(relation.objects.contains(&new));
                assert_eq!(
                    str_at(c, &["requested_rewrite", "prompt"]),
                    relation.statements[0]
                );
                let paraphrases = c["paraphrase_prompts"].as_array().unwrap();
                assert_eq!(paraphrases.len(), 2);
                for p in paraphrases {
                    assert!(p.as_str().unwrap().contains(subject));
                }

                // Neighbours: other subjects, same relation, same true object.
                let (pre, post) = relation.statements[0].split_once("{}").unwrap();
                let neighbours = c["neighborhood_prompts"].as_array().unwrap();
                assert_eq!(neighbours.len(), NEIGHBOURS);
                for n in neighbours {
                    let n = n.as_str().unwrap();
                    assert!(!n.contains(subject), "{n} mentions {subject}");
                    let other = n.strip_prefix(pre).unwrap().strip_suffix(post).unwrap();
                    assert_ne!(other, subject);
                    assert_eq!(truth[&(other, rel)], old, "{n}");
                }
                for a in c["attribute_prompts"].as_array().unwrap() {
                    let a = a.as_str().unwrap();
                    let other = a.strip_prefix(pre).unwrap().strip_suffix(post).unwrap();
                    assert_eq!(truth[&(other, rel)], new, "{a}");
                }
            }
        }
        assert!(subjects[0].is_disjoint(&subjects[1]));
        assert_eq!(subjects[0].len(), config.train_records);
        assert_eq!(subjects[1].len(), config.eval_records);
    }
}

#[test]
fn corpus_teaches_every_probed_true_answer() {
    for config in [WorldConfig::default(), small()] {
        let world = FactWorld::generate(config);
        let loaded = write_and_load(&world, &format!("corpus-{}", config.seed));
        let lines: HashSet<&str> = loaded.corpus.lines().collect();
        assert_eq!(
            lines.len(),
            loaded.corpus.lines().count(),
            "duplicate lines"
        );
        let knows = |prompt: &str, answer: &str| {
            let line = format!("{prompt} {answer}");
            assert!(lines.contains(line.as_str()), "corpus lacks {line:?}");
        };
        for (split, records) in loaded.zsre.iter().enumerate() {
            let raw = world.zsre([Split::Train, Split::Eval][split]);
            for (r, z) in records.iter().zip(&raw) {
                let truth = z["answers"][0].as_str().unwrap();
                knows(&r.edit.prompt, truth);
                knows(&r.equiv[0].prompt, truth);
                knows(&r.unrel[0].prompt, &r.unrel[0].target);
                assert!(r.unrel[0].prompt.ends_with('?'));
            }
        }
        for records in &loaded.counterfact {
            for r in records {
                let truth = r.edit.old_target.as_deref().unwrap();
                knows(&r.edit.prompt, truth);
                for t in &r.equiv {
                    knows(&t.prompt, t.old_target.as_deref().unwrap());
                }
                for t in &r.unrel {
                    assert_eq!(t.target, truth);
                    knows(&t.prompt, &t.target);
                }
            }
        }
        // Exactly the true facts, each in every form (3 statements, 2 questions, 2 nq).
        assert_eq!(lines.len(), world.facts.len() * 7);
    }
}

#[test]
fn no_prompt_has_two_answers() {
    let world = FactWorld::generate(WorldConfig::default());
    let mut answer: BTreeMap<String, &str> = BTreeMap::new();
    for f in &world.facts {
        let r = &world.relations()[f.relation];
        let prompts = (0..r.statements.len())
            .map(|i| r.statement(i, &f.subject))
            .chain((0..r.questions.len()).map(|i| r.question(i, &f.subject)))
            .chain((0..r.questions.len()).map(|i| r.nq_question(i, &f.subject)));
        for p in prompts {
            if let Some(old) = answer.insert(p.clone(), &f.object) {
                panic!("{p:?} answers both {old} and {}", f.object);
            }
        }
    }
}

#[test]
fn world_shape() {
    let world = FactWorld::generate(WorldConfig::default());
    let rels = world.relations();
    assert!((5..=8).contains(&rels.len()));
    for r in rels {
        assert!((8..=20).contains(&r.objects.len()), "{}", r.name);
        assert!(r.statements.len() >= 3 && r.questions.len() >= 2);
        for t in r.statements.iter().chain(r.questions) {
            assert_eq!(t.matches("{}").count(), 1, "{t}");
        }
        for q in r.questions {
            assert!(q.ends_with('?'));
        }
        for o in r.objects {
            assert!((1..=2).contains(&o.split(' ').count()), "{o}");
        }
    }
    // Names: unique, ASCII, and none inside another (ignoring case).
    let names: Vec<String> = world
        .subjects()
        .iter()
        .map(|s| s.name.to_lowercase())
        .collect();
    assert_eq!(names.len(), 240);
    for (i, a) in names.iter().enumerate() {
        assert!(a.is_ascii() && a.len() >= 4, "{a}");
        for b in &names[i + 1..] {
            assert!(
                !a.contains(b.as_str()) && !b.contains(a.as_str()),
                "{a} / {b}"
            );
        }
    }
    // Every (relation, object) in use has at least three subjects.
    let mut count: BTreeMap<(usize, &str), usize> = BTreeMap::new();
    for f in &world.facts {
        *count.entry((f.relation, &f.object)).or_default() += 1;
    }
    assert!(count.values().all(|&n| n >= 3), "{count:?}");
    // Default sizes, for the record.
    let corpus = world.corpus();
    println!(
        "default world: {} subjects, {} facts, corpus {} lines / {} bytes",
        names.len(),
        world.facts.len(),
        corpus.lines().count(),
        corpus.len()
    );
    for s in world.subjects().iter().take(9) {
        println!("  {:?} {}", s.kind, s.name);
    }
}

#[test]
fn smallest_world_works() {
    let config = WorldConfig {
        seed: 5,
        subjects: WorldConfig::MIN_SUBJECTS,
        train_records: 4,
        eval_records: 5,
    };
    let world = FactWorld::generate(config);
    let loaded = write_and_load(&world, "smallest");
    assert_eq!(loaded.counterfact[1].len(), 5);
    for r in &loaded.counterfact[1] {
        assert_eq!(r.unrel.len(), NEIGHBOURS);
        assert_ne!(r.edit.target, r.edit.old_target.clone().unwrap());
    }
}

#[test]
fn config_errors() {
    assert!(WorldConfig::default().check().is_ok());
    let too_many = WorldConfig {
        subjects: 100,
        train_records: 60,
        eval_records: 41,
        ..WorldConfig::default()
    };
    assert!(
        too_many
            .check()
            .unwrap_err()
            .contains("101 distinct subjects")
    );
    let too_few = WorldConfig {
        subjects: 8,
        train_records: 1,
        eval_records: 1,
        ..WorldConfig::default()
    };
    assert!(too_few.check().unwrap_err().contains("minimum of 9"));
    let r = std::panic::catch_unwind(|| FactWorld::generate(too_many));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("only 100"), "{msg}");
}

#[test]
#[should_panic(expected = "fewer than the minimum")]
fn too_few_subjects_panics() {
    FactWorld::generate(WorldConfig {
        subjects: 5,
        train_records: 0,
        eval_records: 0,
        ..WorldConfig::default()
    });
}

#[test]
fn write_errors_name_the_path() {
    let scratch = Scratch::new("blocked");
    std::fs::create_dir_all(&scratch.0).unwrap();
    // A file where the `zsre` folder should go.
    std::fs::write(scratch.0.join("zsre"), b"").unwrap();
    let world = FactWorld::generate(small());
    match world.write(&scratch.0) {
        Err(emsedit_eval::DataError::Io { path, .. }) => assert_eq!(path, scratch.0.join("zsre")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn in_memory_records_equal_the_written_files() {
    let world = FactWorld::generate(small());
    let loaded = write_and_load(&world, "in-memory");
    assert_eq!(world.zsre_records(Split::Train), loaded.zsre[0]);
    assert_eq!(world.zsre_records(Split::Eval), loaded.zsre[1]);
    // Records that are not objects are refused with their index.
    let bad = [world.zsre(Split::Train)[0].clone(), Value::from(3)];
    let err = emsedit_eval::data::from_json(std::path::Path::new("mem"), &bad, Dataset::Zsre)
        .unwrap_err();
    assert!(
        err.to_string().contains("record 1") && err.to_string().contains("(record)"),
        "{err}"
    );
}
