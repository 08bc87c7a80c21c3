//! Shared helpers: fixtures, scratch folders, the proptest settings.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A repository fixture directory.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A fresh scratch folder.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("emsedit-fuzz-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cases` cases of `strategy` from a fixed seed; a panic in `test` fails with the
/// (shrunk) input.
pub fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&strategy, |v| {
        test(v);
        Ok(())
    }) {
        panic!("{e}");
    }
}

/// Numbers that break naive size arithmetic.
pub fn hostile_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1 << 32),
        Just(1 << 40),
        Just(1_000_000_000_000),
        Just(2_000_000_000_000_000_000),
        0u64..4096,
        any::<u64>(),
    ]
}

/// JSON values of every kind, hostile numbers included.
pub fn hostile_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(0.0)),
        Just(json!(-1e-5)),
        Just(json!(128.5)),
        Just(json!(1e300)),
        Just(json!("")),
        Just(json!("text")),
        Just(json!([])),
        Just(json!({})),
        hostile_u64().prop_map(|v| json!(v)),
        any::<i64>().prop_map(|v| json!(v)),
        "[a-z ]{0,12}".prop_map(|s| json!(s)),
    ]
}
