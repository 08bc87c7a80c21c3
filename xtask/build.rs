//! Names the code this binary is built from ([`describe_checkout`] at build time), so that a
//! results record names the code that computed it even when the checkout moves on while a
//! matrix runs: the binary, not the checkout, computes the cells.

use std::path::Path;

include!("src/reproduce/describe.rs");

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let code = describe_checkout(&root).unwrap_or_default();
    println!("cargo:rustc-env=EMSEDIT_BUILD_CODE={code}");
    // Again whenever the sources, the commit or the index change.
    for path in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let git = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["rev-parse", "--git-dir"])
        .output();
    if let Some(out) = git.ok().filter(|o| o.status.success()) {
        let dir = root.join(String::from_utf8_lossy(&out.stdout).trim());
        for file in ["HEAD", "index", "logs/HEAD"] {
            println!("cargo:rerun-if-changed={}", dir.join(file).display());
        }
    }
}
