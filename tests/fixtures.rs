//! The committed fixtures are exactly what their generators make, and bad files are refused.

use emsedit::fixtures::{FixtureError, RidgeSystem};

#[test]
fn committed_ridge_fixture_is_up_to_date() {
    let committed = std::fs::read_to_string(RidgeSystem::default_path()).unwrap();
    assert_eq!(
        committed,
        RidgeSystem::standard().to_json(),
        "run `cargo xtask fixtures`"
    );
    let sys = RidgeSystem::load(&RidgeSystem::default_path()).unwrap();
    assert_eq!(sys, RidgeSystem::standard());
}

#[test]
fn bad_fixture_files_name_the_problem() {
    let dir = std::env::temp_dir().join(format!("emsedit-fixture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut sys = RidgeSystem::generate(1, 2, 3, 1, 1.0);
    sys.values.pop();
    let short = dir.join("short.json");
    std::fs::write(&short, sys.to_json()).unwrap();
    let err = RidgeSystem::load(&short).unwrap_err();
    assert!(
        matches!(
            err,
            FixtureError::Length {
                field: "values",
                got: 1,
                expected: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("short.json"), "{err}");

    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"seed\": 1, \"n\": ").unwrap();
    let err = RidgeSystem::load(&broken).unwrap_err();
    assert!(
        matches!(err, FixtureError::Json { .. }) && err.to_string().contains("broken.json"),
        "{err}"
    );

    let err = RidgeSystem::load(&dir.join("missing.json")).unwrap_err();
    assert!(matches!(err, FixtureError::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
