//! Build metadata for `latamctl --version`: the git commit the binary was built from (or
//! `LATAMCTL_GIT_COMMIT` when building outside a git checkout, as in a Docker build) and the
//! enabled cargo features.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LATAMCTL_GIT_COMMIT");
    // A new commit moves HEAD or the branch it points to.
    let head = Path::new(".git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Ok(text) = std::fs::read_to_string(head)
            && let Some(reference) = text.trim().strip_prefix("ref: ")
        {
            // Only files that exist: cargo reruns a build script on every build while a
            // path it names is missing.
            for path in [format!(".git/{reference}"), ".git/packed-refs".to_owned()] {
                if Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
    }
    let commit = std::env::var("LATAMCTL_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .filter(|f| f != "default")
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(",")
    };
    println!(
        "cargo:rustc-env=LATAMCTL_VERSION={} (commit {commit}, features: {features})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}
