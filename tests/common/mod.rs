//! Shared by the integration tests that need the real default student.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use leap::agent::Sampling;
use leap::agent::local::{LocalConfig, LocalPolicy};
use leap::agent::prompt::Prompt;
use leap::rollout::{RolloutConfig, RolloutSummary, rollout};
use leap::scenario::Scenario;
use leap::store::Store;

/// The real default student; its absence is a setup error, not a reason to skip.
pub fn default_model() -> PathBuf {
    let path = leap::model::default_model_path();
    assert!(
        path.is_file(),
        "the default student model is not at {}; run `just model` (or `leap model fetch`) first",
        path.display()
    );
    path
}

/// The first `n` files of `dir` by name (all of them when there are fewer).
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn first_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.truncate(n);
    files
}

/// Copies the first `train` and `test` scenario files of the shipped household set into `dir`.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn small_set(dir: &Path, train: usize, test: usize) {
    let pick = |split: &str, n: usize| {
        for f in first_files(&Path::new("scenarios/household").join(split), n) {
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    };
    pick("train", train);
    pick("test", test);
}

/// A tiny random model with the default student's tokenizer (`leap model tiny`), at
/// `dir/tiny.gguf`, and an empty `dir/scenarios` folder.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn tiny_folder(dir: &Path) -> (PathBuf, PathBuf) {
    let tiny = dir.join("tiny.gguf");
    leap::model::write_tiny(&default_model(), &tiny, &leap::model::TinySpec::default()).unwrap();
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    (tiny, scenarios)
}

/// [`tiny_folder`] with the first `train` and `test` household scenarios in `dir/scenarios`.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn tiny_workspace(dir: &Path, train: usize, test: usize) -> (PathBuf, PathBuf) {
    let (tiny, scenarios) = tiny_folder(dir);
    small_set(&scenarios, train, test);
    (tiny, scenarios)
}

/// One tiny model for the whole test process, in a temporary folder named after `name` and the
/// process.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn shared_tiny(name: &str) -> &'static Path {
    static TINY: OnceLock<PathBuf> = OnceLock::new();
    TINY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        tiny_folder(&dir).0
    })
}

/// Greedy answers under the grammar, short: random weights never end a reason on their own, and
/// every token they write past the grammar costs a pass over the vocabulary.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn short() -> Sampling {
    Sampling {
        max_tokens: 40,
        ..Sampling::default()
    }
}

/// The first `n` shipped scenario files of `kind`'s `split` (`scenarios/<kind>/<split>`), by name.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn shipped_files(kind: &str, split: &str, n: usize) -> Vec<PathBuf> {
    let dir = Path::new("scenarios").join(kind).join(split);
    let files = first_files(&dir, n);
    assert_eq!(files.len(), n, "{kind} scenarios in {}", dir.display());
    files
}

/// Those scenarios, loaded; every one is of `kind`.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn shipped_scenarios(kind: &str, split: &str, n: usize) -> Vec<Scenario> {
    let all = leap::scenario::load_all(&shipped_files(kind, split, n)).unwrap();
    assert!(all.iter().all(|s| s.kind().as_str() == kind));
    all
}

/// The stored episodes of rollout `label`, in the order they were stored.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn rollout_episodes(store: &Store, label: &str) -> Vec<leap::store::Episode> {
    use leap::store::{EpisodeFilter, Order};
    store
        .list_episodes(&EpisodeFilter {
            order: Order::ById,
            ..EpisodeFilter::prefix(format!("rollout/{label}/"))
        })
        .unwrap()
        .into_iter()
        .map(|e| store.episode(e.id).unwrap().unwrap())
        .collect()
}

/// Accepts the labels `kept` and builds iteration 1's dataset of the run in `run`: the oracle's
/// demonstrations of the first two shipped train scenarios of `kind` (both won) and the kept
/// labels. Returns its rows.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn dataset_of_kept(
    store: &mut Store,
    run: &Path,
    kind: &str,
    kept: &[i64],
) -> Vec<leap::dataset::Row> {
    for &id in kept {
        store
            .decide(id, &leap::store::Decision::Accept, "e2e")
            .unwrap();
    }
    let train = shipped_scenarios(kind, "train", 2);
    let report = leap::dataset::build::build_iteration(
        store,
        &leap::run::RunDir::new(run),
        &train,
        &Prompt::builtin(8),
        1,
        &leap::dataset::build::BuildSettings::new(1.0, leap::dataset::build::Aggregate::Union, 0),
    )
    .unwrap();
    assert_eq!(report.expert.won, 2, "{report:?}");
    assert_eq!(report.parts[1], kept.len(), "{report:?}");
    let rows = leap::dataset::read_jsonl(Path::new(&report.path)).unwrap();
    assert_eq!(rows.len(), report.rows);
    rows
}

/// One greedy episode of each scenario for `horizon` steps, two at a time, as rollout `label`
/// of iteration 0. Cycles are not stopped: the tests that use it count on every step being
/// played (`tests/student.rs` tests the cycle stop).
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn rollout_config(label: &str, horizon: u32) -> RolloutConfig {
    RolloutConfig {
        label: label.into(),
        episodes: 1,
        parallel: 2,
        sampling: Sampling::default(),
        iteration: Some(0),
        horizon: Some(horizon),
        privileged: false,
        stop_cycles: false,
    }
}

/// Plays `scenarios` as `config` says with the local model at `model` (a slot of `ctx` tokens
/// per episode played at once) into the run in `run`.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn play(
    model: &Path,
    ctx: u32,
    run: &Path,
    scenarios: &[Scenario],
    config: &RolloutConfig,
) -> RolloutSummary {
    let mut local = LocalConfig::new(model);
    local.slots = config.parallel;
    local.ctx_per_slot = ctx;
    let mut policy = LocalPolicy::load(&local).unwrap();
    let mut store = Store::open(run).unwrap();
    rollout(
        &mut policy,
        &Prompt::builtin(8),
        &mut store,
        scenarios,
        config,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap()
}

/// Checks that `screen` shows every one of `wanted`, naming those it lacks.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn assert_shows(screen: &str, wanted: &[&str]) {
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !screen.contains(w))
        .collect();
    assert!(missing.is_empty(), "no {missing:?} in\n{screen}");
}
