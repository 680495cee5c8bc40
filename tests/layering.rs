//! The rooms depend on each other in one direction: the library builds without the workbench's
//! terminal crates and async runtime, and the student (`agent/`) knows nothing of training.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates only the workbench may pull in.
const WORKBENCH_ONLY: [&str; 3] = ["ratatui", "crossterm", "tokio"];

#[test]
fn the_library_without_the_tui_feature_has_no_terminal_crate_or_runtime() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("leap "), "{stdout}");
    let found: Vec<&str> = stdout
        .lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or_default();
            WORKBENCH_ONLY
                .iter()
                .any(|c| name == *c || name.starts_with(&format!("{c}-")))
        })
        .collect();
    assert!(found.is_empty(), "without `tui`: {found:?}");
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `FILE:LINE: text` for each line of the files under `dir` (except those `skip` accepts) that
/// contains one of `needles`.
fn mentions(dir: &str, skip: impl Fn(&Path) -> bool, needles: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hits = Vec::new();
    for file in sources(&root.join(dir)) {
        let rel = file.strip_prefix(root).unwrap();
        if skip(rel) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                hits.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn only_the_workbench_names_the_terminal_crates() {
    let workbench = |p: &Path| {
        p.starts_with("src/tui")
            || p == Path::new("src/cli/tui.rs")
            || p == Path::new("src/main.rs")
    };
    let hits = mentions("src", workbench, &["ratatui", "crossterm", "tokio"]);
    assert!(hits.is_empty(), "{hits:#?}");
}

#[test]
fn the_student_does_not_reach_into_training() {
    let hits = mentions("src/agent", |_| false, &["crate::train", "leap::train"]);
    assert!(hits.is_empty(), "{hits:#?}");
}

/// Each kind's folder and the names only that folder may use.
const KINDS: [(&str, &[&str]); 2] = [
    (
        "src/env/household",
        &[
            "Body::Household",
            "HouseholdEnv",
            "env::household",
            "household::",
        ],
    ),
    ("src/env/shop", &["ShopEnv", "env::shop", "shop::"]),
];

#[test]
fn only_an_environment_names_its_own_types() {
    // The registry in src/env/mod.rs is the one place that lists the kinds.
    let registry_file = Path::new("src/env/mod.rs");
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(registry_file)).unwrap();
    let start = text
        .find("pub fn registry()")
        .expect("src/env/mod.rs has registry()");
    let end = start + text[start..].find("\n}\n").expect("registry() ends");
    let registry_lines = text[..start].lines().count() + 1..=text[..end].lines().count() + 1;
    for (folder, needles) in KINDS {
        let own = |p: &Path| p.starts_with(folder) || p == registry_file;
        let hits = mentions("src", own, needles);
        assert!(hits.is_empty(), "{folder}: {hits:#?}");
        let outside_registry: Vec<String> = mentions("src/env", |p| p != registry_file, needles)
            .into_iter()
            .filter(|hit| {
                let line: usize = hit.split(':').nth(1).unwrap().parse().unwrap();
                !registry_lines.contains(&line)
            })
            .collect();
        assert!(
            outside_registry.is_empty(),
            "{folder}: {outside_registry:#?}"
        );
    }
    let household = mentions("src/env", |p| p != registry_file, KINDS[0].1);
    assert_eq!(household.len(), 1, "{household:#?}");
}
