//! The module map of docs/ARCHITECTURE.md, enforced: every `crate::` path a module's
//! non-test code names must be one its layer may import. A new edge either fits the map or
//! the map (and the doc) changes with it, on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which top-level modules each top-level module may use (besides itself).
fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    const BASE: [&str; 9] = [
        "config",
        "metric",
        "event",
        "record",
        "output",
        "background",
        "sqlite",
        "aws",
        "telemetry",
    ];
    let base = |extra: &[&'static str]| -> Vec<&'static str> {
        BASE.iter().copied().chain(extra.iter().copied()).collect()
    };
    BTreeMap::from([
        // Base: no dependency on anything above.
        ("config", vec![]),
        ("metric", vec![]),
        ("event", vec![]),
        ("record", vec![]),
        ("output", vec![]),
        ("background", vec![]),
        ("sqlite", vec![]),
        ("aws", vec!["config"]),
        ("telemetry", vec!["config", "metric"]),
        // Adapters: the bus and the store know the base, never each other.
        ("bus", base(&[])),
        ("store", base(&[])),
        // Domain.
        ("worker", base(&["bus", "store"])),
        ("api", base(&["bus", "store", "worker"])),
        ("lambda", base(&["bus", "store", "worker"])),
        ("loadgen", base(&["bus", "api"])),
        ("fleet", base(&[])),
        ("slo", base(&[])),
        ("cloud", base(&[])),
        ("status", base(&["bus", "store", "api", "cloud", "slo"])),
        ("deploy", base(&["status"])),
        // The composition root: builds what the commands run.
        (
            "compose",
            base(&["bus", "store", "worker", "api", "cloud", "status"]),
        ),
        // Other binaries (the Lambda worker): the process comes from compose.
        ("bin", base(&["bus", "lambda", "compose"])),
        // The commands: anything.
        (
            "cli",
            base(&[
                "bus", "store", "worker", "api", "lambda", "loadgen", "slo", "cloud", "status",
                "deploy", "compose", "fleet",
            ]),
        ),
    ])
}

/// The `crate::X` and `crate::{X, Y::..}` names in `text`, test modules left out.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i]);
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_what_the_architecture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed = allowed();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .iter()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        if matches!(top, "lib" | "main") {
            continue;
        }
        seen.insert(top.to_owned());
        // A module's unit tests in their own file, like a `#[cfg(test)] mod tests` section,
        // may use anything.
        if rel.file_name().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let Some(may) = allowed.get(top) else {
            broken.push(format!(
                "{top}: not in the module map (tests/it/architecture.rs, docs/ARCHITECTURE.md)"
            ));
            continue;
        };
        let mut text = std::fs::read_to_string(&file).unwrap();
        if top == "bin" {
            // A binary names the library by its crate name.
            text = text.replace("latamctl::", "crate::");
        }
        for name in imports(&text) {
            if name != top && !may.contains(&name.as_str()) {
                broken.push(format!(
                    "{} uses crate::{name}, which `{top}` may not import",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "module map broken:\n{}",
        broken.join("\n")
    );
    let mapped: BTreeSet<String> = allowed.keys().map(|k| (*k).to_owned()).collect();
    assert_eq!(
        seen, mapped,
        "modules in the map that no longer exist, or new ones"
    );
}

/// The checker itself: it sees both import forms and ignores test modules.
#[test]
fn the_import_scanner_reads_both_forms() {
    let text = "use crate::bus::Queue;\nuse crate::{store, config::Config};\nfn f() { crate::metric::READY; }\n#[cfg(test)]\nmod tests {\n use crate::cli;\n}\n";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["bus", "config", "metric", "store"]);
}

/// The most lines a Rust file of the crate (source or test) may have without a reason.
const MAX_LINES: usize = 600;
/// A file that must be longer says why in its first lines, starting with this.
const LONGER_BECAUSE: &str = "Longer than 600 lines because";

/// Every file of `src/` (the binaries included) and `tests/` fits on a reader's screen a few
/// times over; one that must be longer says why at its top.
#[test]
fn no_rust_file_is_over_600_lines_without_saying_why() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    assert!(
        files.len() > 50,
        "the walk found only {} files",
        files.len()
    );
    let mut long = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count();
        let says_why = text.lines().take(10).any(|l| l.contains(LONGER_BECAUSE));
        if lines > MAX_LINES && !says_why {
            long.push(format!(
                "{}: {lines} lines",
                file.strip_prefix(root).unwrap().display()
            ));
        }
    }
    assert!(
        long.is_empty(),
        "split these files, or start them with a `//! {LONGER_BECAUSE} ...` line:\n{}",
        long.join("\n")
    );
}
