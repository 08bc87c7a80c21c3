//! `cargo xtask reproduce --jobs 2`: cells in child processes give the same results as one
//! process running them in turn, and a failing child is reported with its log kept.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const TINY: &str = include_str!("tiny.toml");

#[path = "common/scratch.rs"]
mod scratch;
use scratch::Scratch;

fn temp_dir(name: &str) -> Scratch {
    Scratch::new(&format!("xtask-jobs-{name}"))
}

/// `xtask reproduce --config <dir>/tiny.toml --out <dir>/out ARGS`, one thread per process.
fn reproduce(dir: &Path, args: &[&str]) -> Output {
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("reproduce")
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(dir.join("out"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

/// The results by key, without what depends on the clock or the process.
fn results(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(dir.join("out/results.jsonl")).unwrap();
    let mut records: Vec<(String, serde_json::Value)> = text
        .lines()
        .map(|line| {
            let mut r: serde_json::Value = serde_json::from_str(line).unwrap();
            r["wall_seconds"] = 0.into();
            for field in [
                "train_seconds_per_edit",
                "edit_seconds_per_edit",
                "peak_memory_bytes",
            ] {
                r["report"][field] = 0.into();
            }
            (r["key"].as_str().unwrap().to_string(), r)
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records
}

#[test]
fn cells_in_parallel_processes_give_the_serial_results() {
    let serial = temp_dir("serial");
    let out = reproduce(&serial, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parallel = temp_dir("parallel");
    let out = reproduce(&parallel, &["--jobs", "2"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("running up to 2 cells at once, 1 threads each"),
        "{log}"
    );
    let expected = results(&serial);
    assert_eq!(expected.len(), 6);
    assert_eq!(results(&parallel), expected);
    assert!(
        !parallel.join("out/.jobs").exists(),
        "the work folders are removed"
    );
    let table = std::fs::read_to_string(parallel.join("out/table.md")).unwrap();
    assert!(table.contains("6 of 6 cells finished"), "{table}");
    // A rerun finds every cell finished and starts none.
    let again = reproduce(&parallel, &["--jobs", "2"]);
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && log.contains("0 to run now"),
        "{log}"
    );
    assert_eq!(results(&parallel), expected);
}

#[test]
fn a_failing_cell_is_reported_with_its_log_and_the_others_are_kept() {
    // UltraEdit cannot be exported for the reference code: its child fails, EMSEdit's runs.
    let dir = temp_dir("failing");
    let export = dir.join("reference");
    let out = reproduce(
        &dir,
        &[
            "--jobs",
            "2",
            "--filter",
            "| seq-2x4",
            "--export-reference",
            export.to_str().unwrap(),
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("1 cells failed") && log.contains("hypernetwork editors only"),
        "{log}"
    );
    let kept = results(&dir);
    assert_eq!(kept.len(), 1);
    assert!(kept[0].1["id"].as_str().unwrap().starts_with("EMSEdit"));
    let logs: Vec<PathBuf> = std::fs::read_dir(dir.join("out/.jobs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("log"))
        .collect();
    assert_eq!(logs.len(), 1);
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(text.contains("hypernetwork editors only"), "{text}");
}

#[test]
fn editing_the_matrix_file_during_a_run_changes_no_cell() {
    let serial = temp_dir("edited-serial");
    let out = reproduce(&serial, &[]);
    assert!(out.status.success());
    // Start the parallel run, and once it has read the file, overwrite it with something
    // that is no matrix: the children read the parent's copy.
    let dir = temp_dir("edited");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("reproduce")
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(dir.join("out"))
        .args(["--jobs", "2"])
        .env("RAYON_NUM_THREADS", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("running up to 2 cells at once") {
            std::fs::write(&config, "not = [a matrix").unwrap();
            break;
        }
    }
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{log}");
    assert_eq!(results(&dir), results(&serial), "{log}");
    assert!(
        !dir.join("out/.jobs").exists(),
        "the copy is removed with the work folders"
    );
}
