//! A seeded synthetic "fact world": invented subjects, a few relations with small pools of
//! objects, and edit records in the ZsRE (MEND) and CounterFact (ROME) formats, plus the
//! plain-text corpus of the world's true facts.
//!
//! The world is the data of the embedded default model (a small GPT-2 pre-trained on
//! [`FactWorld::corpus`], so that it knows every true fact) and of fast tests: efficacy,
//! generalization and specificity are meaningful because every edit prompt, paraphrase,
//! locality question and neighbourhood prompt, followed by `" "` and its true answer, is a
//! line of the corpus.
//!
//! Everything is a function of the [`WorldConfig`]: the same configuration gives
//! byte-identical records, files and corpus. Randomness comes from
//! [`emsedit_tensor::host_rng`] in independent streams, so that
//!
//! - the subjects and their facts depend only on `seed` and `subjects`;
//! - the corpus depends only on `seed` and `subjects` (not on the record counts);
//! - each edit depends only on the world and its subject, and the eval edits do not depend on
//!   `train_records` (train takes subjects from the front of a seeded order, eval from the
//!   back).
//!
//! ```
//! use emsedit_eval::synthetic::{FactWorld, Split, WorldConfig};
//!
//! let world = FactWorld::generate(WorldConfig { seed: 3, ..WorldConfig::default() });
//! assert_eq!(world.zsre(Split::Eval).len(), 96);
//! assert!(world.corpus().lines().count() > 1000);
//! ```

use std::path::Path;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::{Value, json};

use crate::DataError;

/// The size and seed of a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorldConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of invented subjects, split evenly (round-robin) between the three
    /// [`SubjectKind`]s. At least [`WorldConfig::MIN_SUBJECTS`].
    pub subjects: usize,
    /// Edit records of the train split (one subject each).
    pub train_records: usize,
    /// Edit records of the eval split (one subject each, disjoint from train's).
    pub eval_records: usize,
}

impl Default for WorldConfig {
    /// Seed 0, 240 subjects, 96 train and 96 eval records.
    fn default() -> Self {
        Self {
            seed: 0,
            subjects: 240,
            train_records: 96,
            eval_records: 96,
        }
    }
}

impl WorldConfig {
    /// The fewest subjects a world can have: three of each kind, so that every (relation,
    /// object) pair has at least three subjects.
    pub const MIN_SUBJECTS: usize = 3 * KINDS.len();
    /// The most subjects a world can have (a config error beyond, not an allocation failure).
    pub const MAX_SUBJECTS: usize = 100_000;

    /// Checks that the world can supply the records: at least [`Self::MIN_SUBJECTS`]
    /// subjects and one distinct subject per record (`train_records + eval_records <=
    /// subjects`). The message says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.subjects < Self::MIN_SUBJECTS {
            return Err(format!(
                "synthetic world: {} subjects is fewer than the minimum of {}",
                self.subjects,
                Self::MIN_SUBJECTS
            ));
        }
        if self.subjects > Self::MAX_SUBJECTS {
            return Err(format!(
                "synthetic world: `subjects` = {} is more than the maximum of {}",
                self.subjects,
                Self::MAX_SUBJECTS
            ));
        }
        let wanted = self.train_records.saturating_add(self.eval_records);
        if wanted > self.subjects {
            return Err(format!(
                "synthetic world: {} train + {} eval records need {wanted} distinct subjects, \
                 but the world has only {}",
                self.train_records, self.eval_records, self.subjects
            ));
        }
        Ok(())
    }
}

/// What a subject is; it decides which relations the subject has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SubjectKind {
    /// A country-like place ("Veltria"): capital, official language.
    Country,
    /// A company-like organization ("Orskworks"): founder, founding year, headquarters.
    Company,
    /// A person ("Dara Kesten"): occupation, sport.
    Person,
}

const KINDS: [SubjectKind; 3] = [
    SubjectKind::Country,
    SubjectKind::Company,
    SubjectKind::Person,
];

/// A relation: which subjects have it, the objects it can take, and its prompt templates.
///
/// Templates hold `{}` where the subject goes. Declarative templates end right before the
/// object ("The capital of {} is"); question templates end with "?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relation {
    /// Short name ("capital"), also the CounterFact `relation_id`.
    pub name: &'static str,
    /// The kind of subject that has this relation.
    pub kind: SubjectKind,
    /// The pool of objects (1–2 words each).
    pub objects: &'static [&'static str],
    /// Declarative templates (at least three): the first is the CounterFact prompt, the next
    /// two its paraphrases.
    pub statements: &'static [&'static str],
    /// Question templates (at least two): the first is ZsRE's `src`, the second its
    /// `rephrase`.
    pub questions: &'static [&'static str],
}

impl Relation {
    /// Declarative template `i` with the subject filled in.
    pub fn statement(&self, i: usize, subject: &str) -> String {
        self.statements[i].replace("{}", subject)
    }

    /// Question template `i` with the subject filled in.
    pub fn question(&self, i: usize, subject: &str) -> String {
        self.questions[i].replace("{}", subject)
    }

    /// Question `i` in the form of ZsRE's locality field `loc`: `"nq question: "`, then the
    /// question in lower case without its trailing `"?"` (the loader appends it).
    pub fn nq_question(&self, i: usize, subject: &str) -> String {
        let q = self.question(i, subject).to_lowercase();
        format!("nq question: {}", q.trim_end_matches('?'))
    }
}

const CITIES: &[&str] = &[
    "Dornhal", "Kesmar", "Ulvento", "Brask", "Tirova", "Melcor", "Quenby", "Sarvik", "Lomhaven",
    "Zerath", "Pellis", "Gorvane", "Ashkel", "Nimbra",
];

const RELATIONS: &[Relation] = &[
    Relation {
        name: "capital",
        kind: SubjectKind::Country,
        objects: CITIES,
        statements: &[
            "The capital of {} is",
            "{}'s capital city is",
            "The capital city of {} is",
        ],
        questions: &[
            "What is the capital of {}?",
            "Which city is the capital of {}?",
        ],
    },
    Relation {
        name: "language",
        kind: SubjectKind::Country,
        objects: &[
            "Velish", "Norric", "Tamese", "Orvic", "Kallan", "Drusic", "Mireth", "Solvan",
            "Bretic", "Ustari", "Quelli", "Zorathi",
        ],
        statements: &[
            "The official language of {} is",
            "In {}, the official language is",
            "The people of {} speak",
        ],
        questions: &[
            "What is the official language of {}?",
            "Which language is spoken in {}?",
        ],
    },
    Relation {
        name: "founder",
        kind: SubjectKind::Company,
        objects: &[
            "Tolven",
            "Marrick",
            "Dunmore",
            "Ellsworth",
            "Pryce",
            "Halden",
            "Corwin",
            "Ashby",
            "Brannock",
            "Whitlow",
            "Keswick",
            "Farrow",
        ],
        statements: &[
            "{} was founded by",
            "The founder of {} is",
            "{} was started by",
        ],
        questions: &["Who founded {}?", "Who is the founder of {}?"],
    },
    Relation {
        name: "founded",
        kind: SubjectKind::Company,
        objects: &[
            "1821", "1838", "1852", "1867", "1879", "1884", "1896", "1903", "1911", "1924", "1936",
            "1948",
        ],
        statements: &[
            "{} was founded in",
            "The founding year of {} is",
            "{} was established in",
        ],
        questions: &["In which year was {} founded?", "When was {} established?"],
    },
    Relation {
        name: "headquarters",
        kind: SubjectKind::Company,
        objects: CITIES,
        statements: &[
            "{} is headquartered in",
            "The headquarters of {} are in",
            "{} has its head office in",
        ],
        questions: &[
            "Where is {} headquartered?",
            "In which city is the headquarters of {}?",
        ],
    },
    Relation {
        name: "occupation",
        kind: SubjectKind::Person,
        objects: &[
            "baker", "sailor", "painter", "farmer", "pilot", "doctor", "teacher", "lawyer",
            "singer", "chemist", "tailor", "potter", "dancer", "nurse",
        ],
        statements: &[
            "{} works as a",
            "By profession, {} is a",
            "{} earns a living as a",
        ],
        questions: &[
            "What is the occupation of {}?",
            "What does {} do for a living?",
        ],
    },
    Relation {
        name: "sport",
        kind: SubjectKind::Person,
        objects: &[
            "tennis",
            "cricket",
            "hockey",
            "rugby",
            "golf",
            "soccer",
            "baseball",
            "volleyball",
            "badminton",
            "handball",
            "squash",
            "polo",
        ],
        statements: &[
            "{} plays the sport of",
            "The sport played by {} is",
            "{} is a professional player of",
        ],
        questions: &[
            "Which sport does {} play?",
            "What sport does {} play professionally?",
        ],
    },
];

/// Neighbourhood prompts per CounterFact record (as in CounterFact).
pub const NEIGHBOURS: usize = 10;
/// At most this many attribute prompts per CounterFact record.
pub const ATTRIBUTES: usize = 10;

/// A true fact of the world.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fact {
    /// The subject's name.
    pub subject: String,
    /// Index into [`FactWorld::relations`].
    pub relation: usize,
    /// The true object.
    pub object: String,
}

/// An invented subject.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    /// Its name: unique, pronounceable ASCII, and neither contains nor is contained in
    /// (ignoring case) any other subject, object or template.
    pub name: String,
    /// What it is.
    pub kind: SubjectKind,
}

/// One edit request and its probes, shared by the ZsRE and CounterFact records of a split.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Edit {
    /// CounterFact `case_id`: the subject's index in [`FactWorld::subjects`] (unique across
    /// both splits).
    pub case_id: usize,
    /// The edited fact (index into [`FactWorld::facts`]).
    pub fact: usize,
    /// The new object, from the relation's pool and different from the true one.
    pub new_object: String,
    /// ZsRE's locality fact: a fact of another subject.
    pub locality: usize,
    /// The question template of the locality fact.
    pub locality_question: usize,
    /// CounterFact's neighbourhood: [`NEIGHBOURS`] facts of other subjects with the same
    /// relation and the same true object (reused cyclically when fewer exist).
    pub neighbours: Vec<usize>,
    /// CounterFact's attribute prompts: up to [`ATTRIBUTES`] facts of other subjects with the
    /// same relation whose true object is the new object (possibly none).
    pub attributes: Vec<usize>,
}

/// Which records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Split {
    /// Records to train editors on.
    Train,
    /// Records to evaluate on (subjects disjoint from train's).
    Eval,
}

/// A generated world: subjects, their true facts, and the edits of both splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactWorld {
    /// The configuration it was generated from.
    pub config: WorldConfig,
    /// Every true fact, grouped by subject (in subject order), relations in table order.
    pub facts: Vec<Fact>,
    subjects: Vec<Subject>,
    /// Fact indices of each subject.
    subject_facts: Vec<Vec<usize>>,
    train: Vec<Edit>,
    eval: Vec<Edit>,
}

/// Random streams, so that each part depends only on what it should.
const STREAM_NAMES: u64 = 1;
const STREAM_FACTS: u64 = 2;
const STREAM_ORDER: u64 = 3;
const STREAM_EDIT: u64 = 4;
const STREAM_CORPUS: u64 = 5;

/// A generator for (seed, stream, index), with the seed mixed by SplitMix64.
fn stream(seed: u64, stream: u64, index: u64) -> impl Rng {
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    emsedit_tensor::host_rng(z ^ (z >> 31))
}

// Name parts: an onset (possibly empty: a vowel-initial name), a vowel and a consonant,
// optionally a vowel and a single consonant, then an ending of the subject's kind.
const ONSETS: &[&str] = &[
    "", "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "qu", "r", "s",
    "sk", "st", "t", "tr", "v", "z",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "a", "e", "o"];
const CONSONANTS: &[&str] = &["l", "r", "n", "m", "s", "v", "d", "t", "k"];
const CLUSTERS: &[&str] = &[
    "l", "r", "n", "m", "s", "v", "d", "t", "k", "lt", "nd", "st", "sk", "rv", "rk", "rn", "ld",
    "nt",
];
const COUNTRY_ENDS: &[&str] = &["ia", "ania", "istan", "ora", "ovia", "ara", "enia", "ith"];
const COMPANY_ENDS: &[&str] = &[
    "works", "corp", "tech", "ex", "ica", "on", "ium", "ware", "gen", "lab",
];
const GIVEN_ENDS: &[&str] = &["a", "o", "en", "an", "is", "el", "i", "ar"];
const FAMILY_ENDS: &[&str] = &["ov", "sen", "er", "ard", "ian", "wick", "ley", "ton"];
/// Substrings a name must not contain (an accidental rude or loaded word).
const BLOCKED: &[&str] = &[
    "cunt", "fuck", "shit", "cock", "dick", "piss", "tit", "slut", "whor", "nazi", "rape", "porn",
    "anal", "anus", "fag", "nig", "cum", "sex", "twat", "wank", "puss", "butt", "damn", "kill",
    "dead", "kkk", "uu", "ii",
];

fn pick<R: Rng>(rng: &mut R, parts: &[&'static str]) -> &'static str {
    parts[rng.random_range(0..parts.len())]
}

/// A syllable and possibly a second, short one, then an ending.
fn word<R: Rng>(rng: &mut R, two: bool, ends: &[&'static str]) -> String {
    let mut w = String::new();
    w.push_str(pick(rng, ONSETS));
    w.push_str(pick(rng, VOWELS));
    w.push_str(pick(rng, CLUSTERS));
    if two && rng.random_bool(0.5) {
        w.push_str(pick(rng, VOWELS));
        w.push_str(pick(rng, CONSONANTS));
    }
    w.push_str(pick(rng, ends));
    capitalize(&w)
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn candidate<R: Rng>(rng: &mut R, kind: SubjectKind) -> String {
    match kind {
        SubjectKind::Country => word(rng, true, COUNTRY_ENDS),
        SubjectKind::Company => word(rng, true, COMPANY_ENDS),
        SubjectKind::Person => format!(
            "{} {}",
            word(rng, false, GIVEN_ENDS),
            word(rng, true, FAMILY_ENDS)
        ),
    }
}

/// Whether `a` and `b` overlap as substrings, ignoring case.
fn overlaps(a: &str, b: &str) -> bool {
    a.contains(b) || b.contains(a)
}

fn names(seed: u64, count: usize) -> Vec<Subject> {
    let mut rng = stream(seed, STREAM_NAMES, 0);
    // Lower-cased objects (a name must not overlap one) and templates (a name must not occur
    // in one, so that a prompt mentions only its own subject).
    let objects: Vec<String> = RELATIONS
        .iter()
        .flat_map(|r| r.objects.iter().map(|o| o.to_lowercase()))
        .collect();
    let templates: Vec<String> = RELATIONS
        .iter()
        .flat_map(|r| r.statements.iter().chain(r.questions))
        .map(|t| t.to_lowercase())
        .collect();
    let mut taken: Vec<String> = Vec::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let kind = KINDS[i % KINDS.len()];
        let mut attempts = 0usize;
        let name = loop {
            attempts += 1;
            assert!(
                attempts < 1_000_000,
                "synthetic world: cannot invent {count} distinct subject names"
            );
            let name = candidate(&mut rng, kind);
            let lower = name.to_lowercase();
            if BLOCKED.iter().any(|b| lower.contains(b))
                || objects.iter().any(|o| overlaps(&lower, o))
                || templates.iter().any(|t| t.contains(&lower))
                || taken.iter().any(|t| overlaps(&lower, t))
            {
                continue;
            }
            taken.push(lower);
            break name;
        };
        out.push(Subject { name, kind });
    }
    out
}

impl FactWorld {
    /// Generates the world of `config`.
    ///
    /// # Panics
    ///
    /// When [`WorldConfig::check`] fails (too few subjects, or more records than subjects):
    /// the configuration is a programming choice, not user data.
    ///
    /// # Panics
    /// When `config` fails [`WorldConfig::check`]; [`FactWorld::try_generate`] returns the
    /// error instead.
    pub fn generate(config: WorldConfig) -> Self {
        match Self::try_generate(config) {
            Ok(world) => world,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`FactWorld::generate`], or the reason `config` cannot make a world.
    pub fn try_generate(config: WorldConfig) -> Result<Self, String> {
        config.check()?;
        let subjects = names(config.seed, config.subjects);

        // Objects: for each relation, k = min(pool, n / 3) objects, each the true object of at
        // least three of the relation's n subjects.
        let mut rng = stream(config.seed, STREAM_FACTS, 0);
        let mut objects: Vec<Vec<&'static str>> = Vec::with_capacity(RELATIONS.len());
        for r in RELATIONS {
            let n = subjects.iter().filter(|s| s.kind == r.kind).count();
            let mut pool = r.objects.to_vec();
            pool.shuffle(&mut rng);
            pool.truncate((n / 3).clamp(1, r.objects.len()));
            let mut assigned: Vec<&'static str> = (0..n).map(|i| pool[i % pool.len()]).collect();
            assigned.shuffle(&mut rng);
            objects.push(assigned);
        }
        let mut next = vec![0usize; RELATIONS.len()];
        let mut facts = Vec::new();
        let mut subject_facts = Vec::with_capacity(subjects.len());
        for s in &subjects {
            let mut mine = Vec::new();
            for (ri, r) in RELATIONS.iter().enumerate() {
                if r.kind != s.kind {
                    continue;
                }
                mine.push(facts.len());
                facts.push(Fact {
                    subject: s.name.clone(),
                    relation: ri,
                    object: objects[ri][next[ri]].to_string(),
                });
                next[ri] += 1;
            }
            subject_facts.push(mine);
        }

        let mut world = Self {
            config,
            facts,
            subjects,
            subject_facts,
            train: Vec::new(),
            eval: Vec::new(),
        };
        // Train takes subjects from the front of a seeded order, eval from the back.
        let mut order: Vec<usize> = (0..world.subjects.len()).collect();
        order.shuffle(&mut stream(config.seed, STREAM_ORDER, 0));
        let eval_from = order.len() - config.eval_records;
        world.train = order[..config.train_records]
            .iter()
            .map(|&s| world.edit(s))
            .collect();
        world.eval = order[eval_from..].iter().map(|&s| world.edit(s)).collect();
        Ok(world)
    }

    /// The edit of subject `s`, from its own random stream.
    fn edit(&self, s: usize) -> Edit {
        let mut rng = stream(self.config.seed, STREAM_EDIT, s as u64);
        let fact = *self.subject_facts[s]
            .choose(&mut rng)
            .expect("every subject has facts");
        let f = &self.facts[fact];
        let rel = &RELATIONS[f.relation];

        // A new object: another object in use for this relation, or else from the pool.
        let mut in_use: Vec<&str> = rel
            .objects
            .iter()
            .copied()
            .filter(|o| *o != f.object)
            .filter(|o| {
                self.facts
                    .iter()
                    .any(|g| g.relation == f.relation && g.object == *o)
            })
            .collect();
        if in_use.is_empty() {
            in_use = rel
                .objects
                .iter()
                .copied()
                .filter(|o| *o != f.object)
                .collect();
        }
        let new_object: &str = in_use
            .choose(&mut rng)
            .copied()
            .expect("pools have 8+ objects");

        let locality = loop {
            let g = rng.random_range(0..self.facts.len());
            if self.facts[g].subject != f.subject {
                break g;
            }
        };
        let locality_question =
            rng.random_range(0..RELATIONS[self.facts[locality].relation].questions.len());

        let others = |object: &str| -> Vec<usize> {
            (0..self.facts.len())
                .filter(|&g| {
                    let h = &self.facts[g];
                    h.relation == f.relation && h.object == object && h.subject != f.subject
                })
                .collect()
        };
        let mut same = others(&f.object);
        same.shuffle(&mut rng);
        assert!(!same.is_empty(), "every (relation, object) has 3+ subjects");
        let neighbours = (0..NEIGHBOURS).map(|i| same[i % same.len()]).collect();
        let mut attributes = others(new_object);
        attributes.shuffle(&mut rng);
        attributes.truncate(ATTRIBUTES);

        Edit {
            case_id: s,
            fact,
            new_object: new_object.to_string(),
            locality,
            locality_question,
            neighbours,
            attributes,
        }
    }

    /// The relations (the same table for every world).
    pub fn relations(&self) -> &[Relation] {
        RELATIONS
    }

    /// The subjects, in generation order (kinds round-robin).
    pub fn subjects(&self) -> &[Subject] {
        &self.subjects
    }

    /// The edits of a split, in record order.
    pub fn edits(&self, split: Split) -> &[Edit] {
        match split {
            Split::Train => &self.train,
            Split::Eval => &self.eval,
        }
    }

    /// The ZsRE-format records of `split` as the loader reads them, without a file.
    pub fn zsre_records(&self, split: Split) -> Vec<crate::data::EditRecord> {
        let origin = Path::new(match split {
            Split::Train => "synthetic/zsre/train.json",
            Split::Eval => "synthetic/zsre/eval.json",
        });
        crate::data::from_json(origin, &self.zsre(split), crate::data::Dataset::Zsre)
            .and_then(crate::data::Loaded::strict)
            .expect("the world writes well-formed records")
    }

    /// The CounterFact-format records of `split` read as `format` (one of the CounterFact
    /// variants), without a file.
    pub fn counterfact_records(
        &self,
        split: Split,
        format: crate::data::Dataset,
    ) -> Vec<crate::data::EditRecord> {
        let origin = Path::new(match split {
            Split::Train => "synthetic/counterfact/train.json",
            Split::Eval => "synthetic/counterfact/eval.json",
        });
        crate::data::from_json(origin, &self.counterfact(split), format)
            .and_then(crate::data::Loaded::strict)
            .expect("the world writes well-formed records")
    }

    /// Records in ZsRE (MEND) format: src, rephrase, alt, answers, pred, subject, loc,
    /// loc_ans, cond.
    ///
    /// `src` and `rephrase` are the fact's two question templates, `alt` the new object,
    /// `answers` and `pred` the true one, and `loc` a lower-cased question about another
    /// subject's fact, with `loc_ans` its true object.
    pub fn zsre(&self, split: Split) -> Vec<Value> {
        self.edits(split)
            .iter()
            .map(|e| {
                let f = &self.facts[e.fact];
                let rel = &RELATIONS[f.relation];
                let src = rel.question(0, &f.subject);
                let loc = &self.facts[e.locality];
                let loc_rel = &RELATIONS[loc.relation];
                json!({
                    "subject": f.subject,
                    "src": src,
                    "pred": f.object,
                    "rephrase": rel.question(1, &f.subject),
                    "alt": e.new_object,
                    "answers": [f.object],
                    "loc": loc_rel.nq_question(e.locality_question, &loc.subject),
                    "loc_ans": loc.object,
                    "cond": format!("{} >> {} || {}", f.object, e.new_object, src),
                })
            })
            .collect()
    }

    /// Records in CounterFact (ROME) format: case_id, requested_rewrite{prompt with "{}",
    /// relation_id, subject, target_new{str}, target_true{str}}, paraphrase_prompts (2),
    /// neighborhood_prompts ([`NEIGHBOURS`], plain strings), attribute_prompts,
    /// generation_prompts.
    ///
    /// The prompt is the relation's first declarative template, the paraphrases its second
    /// and third; neighbourhood prompts are the first template about other subjects with the
    /// same relation and true object, attribute prompts about subjects whose true object is
    /// the new one.
    pub fn counterfact(&self, split: Split) -> Vec<Value> {
        self.edits(split)
            .iter()
            .map(|e| {
                let f = &self.facts[e.fact];
                let rel = &RELATIONS[f.relation];
                let about = |facts: &[usize]| -> Vec<String> {
                    facts
                        .iter()
                        .map(|&g| rel.statement(0, &self.facts[g].subject))
                        .collect()
                };
                let generation: Vec<String> = (0..rel.statements.len())
                    .map(|i| rel.statement(i, &f.subject))
                    .collect();
                json!({
                    "case_id": e.case_id,
                    "requested_rewrite": {
                        "prompt": rel.statements[0],
                        "relation_id": rel.name,
                        "subject": f.subject,
                        "target_new": {"str": e.new_object},
                        "target_true": {"str": f.object},
                    },
                    "paraphrase_prompts": [rel.statement(1, &f.subject), rel.statement(2, &f.subject)],
                    "neighborhood_prompts": about(&e.neighbours),
                    "attribute_prompts": about(&e.attributes),
                    "generation_prompts": generation,
                })
            })
            .collect()
    }

    /// Plain-text corpus of TRUE facts, one sentence per line (each ending in `\n`): every
    /// fact in every template — each declarative template, each question, and each question
    /// in ZsRE's locality form (`"nq question: ...?"`), followed by `" "` and the true
    /// object. These are the exact strings the records use as prompts, so a model trained on
    /// the corpus knows every answer the records probe. The order is shuffled with the seed.
    pub fn corpus(&self) -> String {
        let mut lines: Vec<String> = self
            .fact_tuples()
            .into_iter()
            .map(|t| format!("{} {}", t.prompt, t.target))
            .collect();
        lines.shuffle(&mut stream(self.config.seed, STREAM_CORPUS, 0));
        let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// Every line of the [`FactWorld::corpus`] as a (prompt, true answer) tuple, in fact
    /// order: each declarative template, each question and each locality-form question.
    /// A model that knows the world completes every prompt with its answer.
    pub fn fact_tuples(&self) -> Vec<crate::data::Tuple> {
        let mut out = Vec::new();
        for f in &self.facts {
            let rel = &RELATIONS[f.relation];
            let mut push = |prompt: String| {
                out.push(crate::data::Tuple {
                    prompt,
                    target: f.object.clone(),
                    old_target: None,
                })
            };
            for i in 0..rel.statements.len() {
                push(rel.statement(i, &f.subject));
            }
            for i in 0..rel.questions.len() {
                push(rel.question(i, &f.subject));
                push(format!("{}?", rel.nq_question(i, &f.subject)));
            }
        }
        out
    }

    /// Writes `zsre/train.json`, `zsre/eval.json`, `counterfact/train.json`,
    /// `counterfact/eval.json` and `corpus.txt` under `dir`, creating the folders. Errors are
    /// [`DataError::Io`] naming the path.
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DataError::Io { path, source }
        };
        let json = |records: Vec<Value>| {
            let mut s = serde_json::to_string_pretty(&records)
                .expect("serializing JSON values cannot fail");
            s.push('\n');
            s
        };
        for (folder, records) in [
            ("zsre", [self.zsre(Split::Train), self.zsre(Split::Eval)]),
            (
                "counterfact",
                [
                    self.counterfact(Split::Train),
                    self.counterfact(Split::Eval),
                ],
            ),
        ] {
            let sub = dir.join(folder);
            std::fs::create_dir_all(&sub).map_err(io(&sub))?;
            let [train, eval] = records;
            for (name, recs) in [("train.json", train), ("eval.json", eval)] {
                let path = sub.join(name);
                std::fs::write(&path, json(recs)).map_err(io(&path))?;
            }
        }
        let path = dir.join("corpus.txt");
        std::fs::write(&path, self.corpus()).map_err(io(&path))
    }
}
