//! A tiny matrix end to end: an interrupted run (some cells, then a line cut short by a
//! kill) resumed to the end gives the same results as an uninterrupted run, and the table
//! (means over seeds), CSV (one line per seed) and plots are written.

use std::path::{Path, PathBuf};

use super::runner::{Record, Results};
use super::*;

const TINY: &str = include_str!("../../tests/tiny.toml");

#[path = "../../tests/common/scratch.rs"]
mod scratch;
use scratch::Scratch;

fn temp_dir(name: &str) -> Scratch {
    Scratch::new(&format!("xtask-reproduce-{name}"))
}

fn options(out: &Path, only_cells: Option<usize>) -> Options {
    let root = root();
    Options {
        matrix: Matrix::parse(TINY, "tiny.toml", &root).unwrap(),
        root,
        out: out.to_path_buf(),
        only_cells,
        filter: Vec::new(),
        list: false,
        device: DeviceKind::Cpu,
        export_reference: None,
        jobs: None,
        cell_key: None,
    }
}

/// The records of a results file by key, without what depends on the clock.
fn metrics(out: &Path) -> Vec<(String, String)> {
    let results = Results::open(&out.join("results.jsonl")).unwrap();
    let mut out: Vec<(String, String)> = results
        .records
        .into_iter()
        .map(|mut r: Record| {
            r.wall_seconds = 0.0;
            r.report.train_seconds_per_edit = 0.0;
            r.report.edit_seconds_per_edit = 0.0;
            r.report.peak_memory_bytes = 0;
            (r.key.clone(), serde_json::to_string(&r).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_interrupted_run_resumes_to_the_uninterrupted_results() {
    // Cells seed the backend's global generator: no other test may draw meanwhile.
    let _rng = emsedit::tensor::rng_lock();
    let whole = temp_dir("whole");
    execute(&options(&whole, None)).unwrap();
    let expected = metrics(&whole);
    assert_eq!(
        expected.len(),
        6,
        "2 methods × 2 scenarios + EMSEdit K=1 at seeds 5 and 6"
    );

    // Killed half way: two cells finished, the third one's line cut short.
    let resumed = temp_dir("resumed");
    execute(&options(&resumed, Some(2))).unwrap();
    assert_eq!(metrics(&resumed).len(), 2);
    let jsonl = resumed.join("results.jsonl");
    let third = std::fs::read_to_string(whole.join("results.jsonl"))
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .to_string();
    let mut text = std::fs::read_to_string(&jsonl).unwrap();
    text.push_str(&third[..third.len() / 2]);
    std::fs::write(&jsonl, text).unwrap();

    // Resumed in two steps; after the first, K = 1 has one of its two seeds.
    execute(&options(&resumed, Some(3))).unwrap();
    let table = std::fs::read_to_string(resumed.join("table.md")).unwrap();
    assert!(table.contains("| EMSEdit (K=1) | 1/2 | "), "{table}");
    execute(&options(&resumed, None)).unwrap();
    assert_eq!(metrics(&resumed), expected, "same seed, same results");
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(lines.lines().count(), 6, "the torn line was dropped");
    assert!(lines.ends_with('\n'));

    // A rerun of a finished matrix runs nothing and keeps the results.
    execute(&options(&resumed, None)).unwrap();
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), lines);

    for name in ["table.md", "results.csv"] {
        let text = std::fs::read_to_string(resumed.join(name)).unwrap();
        assert!(
            text.contains("EMSEdit") && text.contains("UltraEdit"),
            "{name}"
        );
    }
    let table = std::fs::read_to_string(resumed.join("table.md")).unwrap();
    assert!(
        table.contains("| Method | n | Eff. | Gen. | Spe."),
        "{table}"
    );
    // Every record names its code, and the table counts the cells per commit.
    let code = runner::code_version().unwrap_or_else(|| "not recorded".into());
    assert!(table.contains(&format!("{code}: 6")), "{table}");
    assert!(
        table.contains("4 rows over 1 seed (5), 1 row over 2 seeds (5, 6)"),
        "{table}"
    );
    // EMSEdit K = 1: one row, the mean ± sample sd of its two seeds.
    let results = Results::open(&jsonl).unwrap();
    let k1: Vec<&Record> = results
        .records
        .iter()
        .filter(|r| r.cell.label == "EMSEdit (K=1)")
        .collect();
    let mut seeds: Vec<u64> = k1.iter().map(|r| r.cell.seed()).collect();
    seeds.sort_unstable();
    assert_eq!(seeds, [5, 6]);
    let cell = |f: fn(&emsedit::Scores) -> f64| {
        let (a, b) = (
            100.0 * f(&k1[0].report.after),
            100.0 * f(&k1[1].report.after),
        );
        // n = 2: mean (a + b) / 2, sample sd |a − b| / √2.
        format!("{:.1} ± {:.1}", (a + b) / 2.0, (a - b).abs() / 2f64.sqrt())
    };
    let row = format!(
        "| EMSEdit (K=1) | 2 | {} | {} | {} | ",
        cell(|s| s.efficacy),
        cell(|s| s.generalization),
        cell(|s| s.specificity)
    );
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("| EMSEdit (K=1) |"))
            .count(),
        1,
        "{table}"
    );
    assert!(table.contains(&row), "{row}\n{table}");
    // claims.md compares the same rows: K = 1's mean of the three scores over its two seeds.
    let claims = std::fs::read_to_string(resumed.join("claims.md")).unwrap();
    let mean3 = |r: &Record| {
        let s = &r.report.after;
        100.0 * (s.efficacy + s.generalization + s.specificity) / 3.0
    };
    let (a, b) = (mean3(k1[0]), mean3(k1[1]));
    let k1_mean = format!(
        "| {:.1} ± {:.1} (n = 2) |",
        (a + b) / 2.0,
        (a - b).abs() / 2f64.sqrt()
    );
    assert!(claims.contains(&k1_mean), "{k1_mean}\n{claims}");
    for line in [
        "| 1 | EMSEdit beats UltraEdit | tiny-gpt2 · zsre · batch-8 | ",
        "| 2 | K = 2 is at least K = 1 |",
    ] {
        assert!(claims.contains(line), "{line}\n{claims}");
    }
    // The hypernetwork rows record their learned η (one network at K = 1), UltraEdit none.
    assert!(k1.iter().all(|r| {
        r.report.step_sizes.len() == 1
            && r.report.step_sizes[0]
                .iter()
                .all(|&eta| eta.is_finite() && eta > 0.0)
    }));
    assert!(
        results
            .records
            .iter()
            .all(|r| r.report.step_sizes.is_empty() == (r.report.method == "UltraEdit"))
    );
    assert!(table.contains("Step size η after training"), "{table}");
    // One seed: no ± (seed 5 only).
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("| UltraEdit | 1 | ") && !l.contains('±')),
        "{table}"
    );
    // The batch-8 section's unedited model: over seeds 5 and 6.
    let batch = table.split("## tiny-gpt2 · zsre · batch-8").nth(1).unwrap();
    assert!(batch.contains("| *unedited* | 2 | "), "{table}");
    // The CSV: one line per cell, the seeds of K = 1 as two lines with their seeds.
    let csv = std::fs::read_to_string(resumed.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (label, seed, efficacy) = (column("label"), column("seed"), column("efficacy"));
    let mut k1_lines: Vec<(u64, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[label] == "EMSEdit (K=1)")
        .map(|f| (f[seed].parse().unwrap(), f[efficacy].parse().unwrap()))
        .collect();
    k1_lines.sort_by_key(|l| l.0);
    let by_seed = |s: u64| k1.iter().find(|r| r.cell.seed() == s).unwrap();
    assert_eq!(
        k1_lines,
        [
            (5, by_seed(5).report.after.efficacy),
            (6, by_seed(6).report.after.efficacy)
        ]
    );
    let plots = resumed.join("plots");
    for stem in [
        "steps_tiny-gpt2_zsre_batch-8",
        "edits_tiny-gpt2_zsre_seq-2x4",
        "time_tiny-gpt2_zsre_batch-8",
        "time_tiny-gpt2_zsre_seq-2x4",
    ] {
        for ext in ["png", "svg"] {
            let file = plots.join(format!("{stem}.{ext}"));
            let len = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
                .len();
            assert!(len > 1000, "{}: {len} bytes", file.display());
        }
    }
}

#[test]
fn missing_inputs_are_found_before_the_first_cell() {
    let text = TINY
        .replace(
            "path = \"fixtures/llm/gpt2\"",
            "path = \"fixtures/llm/no-such-model\"\nmodules = [\"transformer.h.1.mlp.c_proj\"]",
        )
        .replace(
            "kind = \"synthetic-zsre\"",
            "kind = \"zsre\"\ntrain = \"nowhere/train.json\"\neval = \"nowhere/eval.json\"",
        );
    let root = root();
    let out = temp_dir("preflight");
    let opts = Options {
        matrix: Matrix::parse(&text, "tiny.toml", &root).unwrap(),
        ..options(&out, None)
    };
    let err = execute(&opts).unwrap_err();
    assert!(
        err.contains("no-such-model")
            && err.contains("nowhere/train.json")
            && err.contains("nowhere/eval.json"),
        "{err}"
    );
    assert!(!out.join("results.jsonl").exists(), "no cell ran");
}

#[test]
fn a_claim_naming_no_row_is_a_config_error() {
    let root = root();
    for (from, to, named) in [
        ("than = \"UltraEdit\"", "than = \"UltraEdt\"", "UltraEdt"),
        (
            "scenario = \"batch-8\"\nbetter",
            "scenario = \"batch-9\"\nbetter",
            "batch-9",
        ),
    ] {
        let text = TINY.replacen(from, to, 1);
        let err = Matrix::parse(&text, "tiny.toml", &root).unwrap_err();
        assert!(
            err.contains("claims[0]") && err.contains(named),
            "{to}: {err}"
        );
    }
}

#[test]
fn absurd_sizes_are_config_errors_naming_the_key() {
    let root = root();
    for (from, to, key) in [
        ("rank = 8", "rank = 100000000", "rank"),
        ("blocks = 2", "blocks = 100000", "blocks"),
        ("subjects = 40", "subjects = 100000000000", "subjects"),
        ("num_seq = 2", "num_seq = 9223372036854775807", "num_seq"),
    ] {
        let text = TINY.replacen(from, to, 1);
        let err = Matrix::parse(&text, "tiny.toml", &root).unwrap_err();
        assert!(err.contains(key), "{to}: {err}");
    }
}

/// GLUE-shaped files of one-word sentences (the tiny fixture holds 64 positions).
fn tiny_glue(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let pair = |i: usize| {
        format!(
            r#"{{"sentence1": "a", "sentence2": "b", "label": {}}}"#,
            i % 2
        )
    };
    let one = |i: usize| format!(r#"{{"sentence": "word", "label": {}}}"#, i % 2);
    let nli = |i: usize| {
        let l = ["entailment", "not_entailment"][i % 2];
        format!(r#"{{"sentence1": "a", "sentence2": "b", "label": "{l}"}}"#)
    };
    let mmlu = |i: usize| {
        format!(
            r#"{{"question": "q", "choices": ["a", "b", "c", "d"], "answer": {}}}"#,
            i % 4
        )
    };
    let files: [(&str, &dyn Fn(usize) -> String); 6] = [
        ("sst2", &one),
        ("cola", &one),
        ("mrpc", &pair),
        ("rte", &pair),
        ("nli", &nli),
        ("mmlu", &mmlu),
    ];
    for (name, make) in files {
        let records: Vec<String> = (0..14).map(make).collect();
        std::fs::write(
            dir.join(format!("{name}.json")),
            format!("[{}]", records.join(",")),
        )
        .unwrap();
    }
}

#[test]
fn validation_search_and_general_capability_cells_run_and_report() {
    let _rng = emsedit::tensor::rng_lock();
    let out = temp_dir("glue");
    let data = out.join("data");
    let world =
        emsedit::eval::synthetic::FactWorld::generate(emsedit::eval::synthetic::WorldConfig {
            seed: 7,
            subjects: 40,
            train_records: 12,
            eval_records: 12,
        });
    world.write(&data).unwrap();
    tiny_glue(&data.join("glue"));
    let text = format!(
        r#"
name = "val"
seed = 1
[hyper]
rank = 8
blocks = 2
lr = 1e-3
[glue]
dir = "{data}/glue"
tests = 4
[models.tiny-gpt2]
path = "fixtures/llm/gpt2"
[datasets.zsre-val]
kind = "zsre"
train = "{data}/zsre/train.json"
validation = 4
[scenarios.seq-2x2]
n_edits = 2
num_seq = 2
glue_every = 1
[[experiments]]
name = "search"
methods = ["emsedit"]
ablations = [{{ name = "lr 1e-4", lr = 1e-4 }}, {{ name = "lr 1e-3", lr = 1e-3 }}]
[[experiments]]
name = "search-ft"
methods = ["ft"]
ablations = [{{ name = "lr 1e-4", ft_lr = 1e-4 }}, {{ name = "lr 1e-3", ft_lr = 1e-3 }}]
"#,
        data = data.display()
    );
    let root = root();
    let opts = Options {
        matrix: Matrix::parse(&text, "val.toml", &root).unwrap(),
        ..options(&out, None)
    };
    assert_eq!(opts.matrix.cells.len(), 4);
    execute(&opts).unwrap();
    let results = Results::open(&out.join("results.jsonl")).unwrap();
    assert_eq!(results.records.len(), 4);
    for r in &results.records {
        let at: Vec<usize> = r.report.glue.iter().map(|p| p.edits).collect();
        assert_eq!(at, [0, 2, 4], "{}", r.id);
        assert!(
            r.report
                .glue
                .iter()
                .all(|p| p.scores.len() == 6 && p.scores[0].n == 4)
        );
    }
    // The FT learning rate reaches FT: its two rows differ.
    let ft: Vec<_> = results
        .records
        .iter()
        .filter(|r| r.id.starts_with("FT"))
        .collect();
    assert_eq!(ft.len(), 2);
    assert_ne!(ft[0].cell.key, ft[1].cell.key);
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("General capability") && table.contains("| sst2 |"),
        "{table}"
    );
    assert!(
        out.join("plots/glue_tiny-gpt2_zsre-val_seq-2x2.svg")
            .exists()
    );
}

#[test]
fn the_validation_split_is_the_tail_of_the_train_file() {
    let root = root();
    let text = TINY.replace(
        "kind = \"synthetic-zsre\"",
        "kind = \"zsre\"\ntrain = \"t.json\"\nvalidation = 3",
    );
    let m = Matrix::parse(&text, "tiny.toml", &root).unwrap();
    assert_eq!(m.cells[0].data.validation, Some(3));
    assert_eq!(m.cells[0].data.eval, None);
    for (from, to, want) in [
        (
            "validation = 3",
            "validation = 0",
            "validation: must be at least 1",
        ),
        ("validation = 3", "", "eval: a file is needed"),
    ] {
        let err = Matrix::parse(&text.replace(from, to), "tiny.toml", &root).unwrap_err();
        assert!(err.contains(want), "{err}");
    }
    let synthetic = TINY.replace(
        "kind = \"synthetic-zsre\"",
        "kind = \"synthetic-zsre\"\nvalidation = 3",
    );
    let err = Matrix::parse(&synthetic, "tiny.toml", &root).unwrap_err();
    assert!(err.contains("validation"), "{err}");
    // Cells without `glue_every` keep their keys when a [glue] section is added.
    let plain = Matrix::parse(TINY, "tiny.toml", &root).unwrap();
    let with = Matrix::parse(
        &TINY.replace("[hyper]", "[glue]\ntests = 5\n\n[hyper]"),
        "tiny.toml",
        &root,
    )
    .unwrap();
    let keys = |m: &Matrix| m.cells.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&plain), keys(&with));
}

#[test]
fn cells_with_an_estimate_start_longest_first_after_the_others() {
    let m = Matrix::parse(TINY, "tiny.toml", &root()).unwrap();
    let cells: Vec<&Cell> = m.cells.iter().take(5).collect();
    assert_eq!(cells.len(), 5);
    let at = |c: &Cell| cells.iter().position(|x| x.key == c.key).unwrap();
    let order = jobs::longest_first(&cells, |c| match at(c) {
        1 | 3 => Some(5.0),
        2 => Some(9.0),
        _ => None,
    });
    let order: Vec<usize> = order.into_iter().map(at).collect();
    assert_eq!(order, [0, 4, 2, 1, 3]);
}

#[test]
fn repeated_filters_select_the_cells_matching_any() {
    let id = "EMSEdit | smollm2 | zsre | seq-10x10 | seed 1";
    let f = |v: &[&str]| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
    assert!(matches_filter(id, &[]));
    assert!(matches_filter(
        id,
        &f(&["| seed 2", "ZSRE | seq-10x10 | seed 1"])
    ));
    assert!(!matches_filter(id, &f(&["| seed 2", "| seed 0"])));
    assert!(!matches_filter(
        "EMSEdit | smollm2 | zsre | seq-10x10-glue | seed 0",
        &f(&["seq-10x10 |"])
    ));
}

#[test]
fn exporting_a_cell_for_the_reference_leaves_its_results_unchanged() {
    let _rng = emsedit::tensor::rng_lock();
    let root = root();
    let only = |out: &Path, export: Option<PathBuf>| Options {
        filter: vec!["emsedit | tiny-gpt2 | zsre | seq-2x4".into()],
        export_reference: export,
        ..options(out, None)
    };
    let plain = temp_dir("export-plain");
    execute(&only(&plain, None)).unwrap();
    let exported = temp_dir("export-run");
    let dir = exported.join("reference");
    execute(&only(&exported, Some(dir.clone()))).unwrap();
    let expected = metrics(&plain);
    assert_eq!(expected.len(), 1);
    assert_eq!(metrics(&exported), expected, "the export changed the run");

    let key = &expected[0].0;
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(key).join("case.json")).unwrap())
            .unwrap();
    assert_eq!(case["key"], key.as_str());
    assert_eq!(
        case["train"].as_array().unwrap().len(),
        2,
        "2 training batches"
    );
    let eval = case["eval"].as_array().unwrap();
    assert_eq!(eval.len(), 2, "2 edit batches");
    assert_eq!(eval[0]["batch"]["records"], 4);
    assert!(!eval[0]["score"]["equiv"].as_array().unwrap().is_empty());
    assert_eq!(case["editor"]["hyper"]["rank"], 8);
    // The untrained networks, loadable as a checkpoint.
    let lm =
        emsedit::CausalLm::<emsedit::Cpu>::load(&root.join("fixtures/llm/gpt2"), &emsedit::cpu())
            .unwrap();
    let loaded = emsedit::meta::HyperEditor::<emsedit::Cpu>::load(
        &lm,
        &dir.join(key).join("init.safetensors"),
    )
    .unwrap();
    assert_eq!(loaded.config().steps, 2);
    // Not a hypernetwork editor: refused, naming the cell.
    let ultra = temp_dir("export-ultra");
    let err = execute(&Options {
        filter: vec!["ultraedit | tiny-gpt2 | zsre | seq-2x4".into()],
        export_reference: Some(ultra.join("reference")),
        ..options(&ultra, None)
    })
    .unwrap_err();
    assert!(err.contains("hypernetwork editors only"), "{err}");
}

/// A RippleEdits file in the original format: `n` edits of "The home of Person{i} is" from
/// its old city to a new one, each with a Subject_Aliasing and a Relation_Specificity test.
fn tiny_ripple(path: &Path, n: usize) {
    let query = |prompt: &str, answer: &str| serde_json::json!({ "prompt": prompt, "answers": [{ "value": answer, "aliases": [] }] });
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let (old, new) = (format!("Town{i}"), format!("City{i}"));
            let case = |q: serde_json::Value, cond: Vec<serde_json::Value>| {
                serde_json::json!([{ "test_queries": [q], "test_condition": "OR",
                                     "condition_queries": cond }])
            };
            let job = query(&format!("The job of Person{i} is"), "farmer");
            serde_json::json!({
                "example_type": "popular",
                "edit": {
                    "prompt": format!("The home of Person{i} is {new}."),
                    "original_fact": { "prompt": format!("The home of Person{i} is {old}.") }
                },
                "Subject_Aliasing": case(query(&format!("The home of P. {i} is"), &new), vec![]),
                "Relation_Specificity": case(job.clone(), vec![job]),
                "Logical_Generalization": [], "Compositionality_I": [],
                "Compositionality_II": [], "Forgetfulness": []
            })
        })
        .collect();
    std::fs::write(path, serde_json::to_string(&records).unwrap()).unwrap();
}

#[test]
fn ripple_cells_report_every_family() {
    let _rng = emsedit::tensor::rng_lock();
    let out = temp_dir("ripple");
    let file = out.join("ripple.json");
    tiny_ripple(&file, 24);
    let text = format!(
        r#"
name = "ripple"
seed = 1
[hyper]
rank = 8
blocks = 2
lr = 1e-3
[models.tiny-gpt2]
path = "fixtures/llm/gpt2"
[datasets.ripple]
kind = "ripple"
train = "{file}"
eval = "{file}"
[scenarios.seq-2x2]
n_edits = 2
num_seq = 2
[[experiments]]
name = "main"
methods = ["ultraedit"]
"#,
        file = file.display()
    );
    let opts = Options {
        matrix: Matrix::parse(&text, "ripple.toml", &root()).unwrap(),
        ..options(&out, None)
    };
    execute(&opts).unwrap();
    let results = Results::open(&out.join("results.jsonl")).unwrap();
    let [record] = &results.records[..] else {
        panic!("one cell, {} results", results.records.len());
    };
    let ripple = record.report.ripple.as_ref().expect("a ripple report");
    let fields: Vec<&str> = ripple.families.iter().map(|f| f.family.field()).collect();
    assert_eq!(fields, ["Subject_Aliasing", "Relation_Specificity"]);
    // Four edits, one test of each family per edit.
    assert!(ripple.families.iter().all(|f| f.cases == 4));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("RippleEdits families")
            && table.contains("| Method | Subject Aliasing (")
            && table.contains("| Relation Specificity (0/4) |")
            && table.contains(" | – |")
            && table.contains("| UltraEdit | "),
        "{table}"
    );
}

include!("describe.rs");

#[test]
fn records_name_the_commit_that_computed_them() {
    // The binary names the checkout it was built from; cargo rebuilds it when the sources,
    // the commit or the index change, so here it is git's own name for this checkout.
    assert_eq!(runner::code_version(), describe_checkout(&root()));
    if let Some(code) = runner::code_version() {
        assert_eq!(code.trim_end_matches("+changes").len(), 12, "{code}");
    }
    // Outside a checkout there is no commit to name.
    let bare = temp_dir("no-git");
    assert_eq!(describe_checkout(&bare), None);
}

#[test]
fn hypernetwork_cells_on_long_streams_run_alone_and_first() {
    use emsedit::methods::MethodKind;
    let m = Matrix::parse(TINY, "tiny.toml", &root()).unwrap();
    let base = m.cells[0].clone();
    let cell = |i: usize, kind, n_edits, num_seq| {
        let mut c = base.clone();
        c.key = format!("cell-{i}");
        c.method.kind = kind;
        c.scenario.n_edits = n_edits;
        c.scenario.num_seq = num_seq;
        c
    };
    let cells = [
        cell(0, MethodKind::EmsEdit, 10, 10),
        cell(1, MethodKind::Ft, 10, 10),
        cell(2, MethodKind::Malmen, 100, 1),
        cell(3, MethodKind::UltraEdit, 100, 1),
        cell(4, MethodKind::Rledit, 5, 5),
        cell(5, MethodKind::Mend, 25, 4),
        cell(6, MethodKind::Malmen, 99, 1),
        cell(7, MethodKind::Rledit, 10, 10),
        cell(8, MethodKind::Rledit, 100, 1),
    ];
    let alone: Vec<bool> = cells.iter().map(jobs::runs_alone).collect();
    assert_eq!(
        alone,
        [true, false, true, false, false, true, false, false, true]
    );
    let order = jobs::alone_first(cells.iter().collect());
    let keys: Vec<&str> = order.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "cell-0", "cell-2", "cell-5", "cell-8", "cell-1", "cell-3", "cell-4", "cell-6",
            "cell-7"
        ]
    );
}
