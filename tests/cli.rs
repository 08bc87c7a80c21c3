//! The `emsedit` command end to end on the embedded default model, run from a scratch folder:
//! train → edit (JSON lines of 4 facts) → eval shows the edits took → the patch reverts to the
//! exact weights; patches compose in order and are refused where they do not belong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use emsedit::eval::synthetic::{FactWorld, Split, WorldConfig};

fn emsedit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emsedit"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn ok(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = emsedit(dir, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_facts(path: &Path, world: &FactWorld, range: std::ops::Range<usize>) {
    let lines: Vec<String> = world.zsre(Split::Eval)[range]
        .iter()
        .map(|r| {
            serde_json::json!({"prompt": r["src"], "target": r["alt"], "rephrase": r["rephrase"]})
                .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn train_edit_eval_and_revert() {
    let dir = scratch();
    let world = FactWorld::generate(WorldConfig::default());
    std::fs::write(
        dir.join("train.json"),
        serde_json::to_string(&world.zsre(Split::Train)).unwrap(),
    )
    .unwrap();
    write_facts(&dir.join("facts.jsonl"), &world, 0..4);
    write_facts(&dir.join("more.jsonl"), &world, 4..8);

    let trained = ok(
        &dir,
        &[
            "train",
            "--data",
            "train.json",
            "--n-edits",
            "8",
            "--batches",
            "4",
        ],
    );
    assert_eq!(trained["records"], 32);
    assert!(dir.join("editor.safetensors").is_file());

    let before = ok(&dir, &["eval", "--data", "facts.jsonl"]);
    let edit = ok(
        &dir,
        &[
            "edit",
            "--editor",
            "editor.safetensors",
            "--facts",
            "facts.jsonl",
            "--patch",
            "p1.safetensors",
            "--out",
            "edited",
        ],
    );
    assert_eq!(edit["edited"], 4);
    // EMSEdit's shifts have low rank: stored as factors.
    assert!(
        edit["patch"]["ranks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.is_u64()),
        "{edit}"
    );
    let after = ok(
        &dir,
        &["eval", "--model", "edited", "--data", "facts.jsonl"],
    );
    let e = |v: &serde_json::Value| v["efficacy"].as_f64().unwrap();
    assert!(e(&after) >= e(&before) + 0.5, "{before} → {after}");
    // The patch on the base model scores as the edited directory does.
    let patched = ok(
        &dir,
        &["eval", "--data", "facts.jsonl", "--patch", "p1.safetensors"],
    );
    assert_eq!(patched["efficacy"], after["efficacy"]);

    // A second patch on top; both compose in order and revert to the base bit for bit.
    ok(
        &dir,
        &[
            "edit",
            "--model",
            "edited",
            "--editor",
            "editor.safetensors",
            "--facts",
            "more.jsonl",
            "--patch",
            "p2.safetensors",
            "--out",
            "edited2",
        ],
    );
    ok(
        &dir,
        &[
            "patch",
            "apply",
            "--patch",
            "p1.safetensors",
            "--patch",
            "p2.safetensors",
            "--out",
            "both",
        ],
    );
    let bytes = |p: &str| std::fs::read(dir.join(p).join("model.safetensors")).unwrap();
    assert!(bytes("both") == bytes("edited2"));
    ok(
        &dir,
        &[
            "patch",
            "revert",
            "--model",
            "edited2",
            "--patch",
            "p1.safetensors",
            "--patch",
            "p2.safetensors",
            "--out",
            "reverted",
        ],
    );
    let base = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model/model.safetensors"),
    )
    .unwrap();
    assert!(
        bytes("reverted") == base,
        "revert restores the exact weights"
    );

    // Refusals exit with 1 and say why.
    let out = emsedit(
        &dir,
        &[
            "patch",
            "apply",
            "--model",
            "edited",
            "--patch",
            "p1.safetensors",
            "--out",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already applied"));
    let out = emsedit(
        &dir,
        &["patch", "apply", "--patch", "p2.safetensors", "--out", "x"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the patch's base"));
    let out = emsedit(&dir, &["edit", "--facts", "facts.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");

    // `ask` completes with the edited fact.
    let fact: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("facts.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let prompt = fact["prompt"].as_str().unwrap();
    let asked = ok(
        &dir,
        &["ask", "--model", "edited", prompt, "--max-new", "4"],
    );
    assert!(
        asked["completion"]
            .as_str()
            .unwrap()
            .contains(fact["target"].as_str().unwrap()),
        "{asked}"
    );
    let shown = ok(&dir, &["patch", "show", "p1.safetensors"]);
    assert_eq!(
        shown["header"]["info"]["facts"].as_array().unwrap().len(),
        4
    );
}
