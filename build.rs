//! Records the git commit the binary is built from, for `helpdesk --version`: a bug
//! report then names the exact code. Outside a git checkout (a source tarball) the version
//! says so instead of failing the build.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let text = match commit {
        Some(c) if dirty => format!("commit {c}, with local changes"),
        Some(c) => format!("commit {c}"),
        None => "commit unknown: not built from a git checkout".to_string(),
    };
    println!("cargo:rustc-env=HELPDESK_COMMIT={text}");
    // Again when HEAD moves (a commit, a checkout) or the index changes.
    for path in [".git/HEAD", ".git/index"] {
        println!("cargo:rerun-if-changed={path}");
    }
    // sqlx::migrate! embeds migrations/ at compile time, but a build script that names
    // what it reruns on turns off cargo's own watch of the package: without this line a new
    // migration file would be left out of an incremental build.
    println!("cargo:rerun-if-changed=migrations");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{reference}");
    }
}
