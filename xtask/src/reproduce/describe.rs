// Included by xtask's build script and its tests: one way to name the code.

/// The sources a cell runs, relative to the checkout's root.
pub const SOURCES: [&str; 4] = ["crates", "src", "xtask", "Cargo.lock"];

/// The commit of the checkout at `root` (12 hex digits), with `+changes` when the
/// [`SOURCES`] differ from it; `None` without git.
pub fn describe_checkout(root: &std::path::Path) -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"]).filter(|o| o.status.success())?;
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    // Modified, staged or new files (ignored ones, such as build outputs, are not listed).
    let status = git(&[&["status", "--porcelain", "--"][..], &SOURCES[..]].concat());
    let changed = status.is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    Some(if changed {
        format!("{head}+changes")
    } else {
        head
    })
}
