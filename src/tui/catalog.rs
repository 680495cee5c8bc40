//! The scenario files the workbench shows, watched on disk: an edited file reloads in place, and a
//! file that turns invalid keeps its last good scenarios while its problems are shown.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use crate::scenario::{self, Loaded, Problem, Scenario};

/// How long the watcher waits for a burst of writes to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// The scenarios in use and the problems of the latest load.
#[derive(Debug, Default)]
pub struct Catalog {
    pub paths: Vec<PathBuf>,
    pub scenarios: Vec<Scenario>,
    /// Problems of the latest load, `FILE:LINE:COL: ...`.
    pub problems: Vec<Problem>,
    /// Ids whose file is invalid now: they are the last good version.
    pub stale: HashSet<String>,
    /// How many loads so far (the first is 1).
    pub loads: u64,
}

impl Catalog {
    pub fn load(paths: Vec<PathBuf>) -> Catalog {
        let loaded = scenario::load(&paths);
        let mut catalog = Catalog {
            paths,
            ..Catalog::default()
        };
        catalog.update(loaded);
        catalog
    }

    /// Takes a fresh load; files with problems keep the scenarios they had before.
    pub fn update(&mut self, loaded: Loaded) {
        let bad: HashSet<&Path> = loaded
            .problems
            .iter()
            .map(|p| p.origin.file.as_path())
            .collect();
        let mut old: BTreeMap<PathBuf, Vec<Scenario>> = BTreeMap::new();
        for s in std::mem::take(&mut self.scenarios) {
            old.entry(s.origin.file.clone()).or_default().push(s);
        }
        let mut new: BTreeMap<PathBuf, Vec<Scenario>> = BTreeMap::new();
        for s in loaded.scenarios {
            new.entry(s.origin.file.clone()).or_default().push(s);
        }
        let files: std::collections::BTreeSet<PathBuf> = old
            .keys()
            .filter(|f| bad.contains(f.as_path()))
            .chain(new.keys())
            .cloned()
            .collect();
        let mut seen = HashSet::new();
        self.stale.clear();
        for file in files {
            let keep_old = bad.contains(file.as_path()) && old.contains_key(&file);
            let list = if keep_old {
                old.remove(&file).unwrap_or_default()
            } else {
                new.remove(&file).unwrap_or_default()
            };
            for s in list {
                if seen.insert(s.id.clone()) {
                    if keep_old {
                        self.stale.insert(s.id.clone());
                    }
                    self.scenarios.push(s);
                }
            }
        }
        self.problems = loaded.problems;
        self.loads += 1;
    }
}

/// Watches `paths` (folders recursively, files through their folder) and calls `on_reload` with
/// a fresh load after each settled burst of changes to YAML files. The load runs on the
/// watcher's thread. Dropping the returned debouncer stops watching.
pub fn watch(
    paths: &[PathBuf],
    mut on_reload: impl FnMut(Loaded) + Send + 'static,
) -> Result<Debouncer<RecommendedWatcher>, String> {
    let owned = paths.to_vec();
    // inotify also reports files being opened and read (by a test, an editor, `leap
    // rollout`); reload only when a file's size or modification time changed, or the set of
    // files did.
    let mut last = fingerprint(&owned);
    let mut debouncer = new_debouncer(DEBOUNCE, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        let yaml =
            |p: &Path| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"));
        if !events.iter().any(|e| yaml(&e.path)) {
            return;
        }
        let now = fingerprint(&owned);
        if now != last {
            last = now;
            on_reload(scenario::load(&owned));
        }
    })
    .map_err(|e| format!("cannot watch the scenario files: {e}"))?;
    for path in paths {
        let (target, mode) = if path.is_dir() {
            (path.clone(), RecursiveMode::Recursive)
        } else {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (parent, RecursiveMode::NonRecursive)
        };
        debouncer
            .watcher()
            .watch(&target, mode)
            .map_err(|e| format!("cannot watch {}: {e}", target.display()))?;
    }
    Ok(debouncer)
}

/// Each scenario file with its size and modification time.
fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    scenario::scenario_files(paths)
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (f, len, modified)
        })
        .collect()
}
