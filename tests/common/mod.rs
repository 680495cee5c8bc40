//! Shared by the integration tests that need the real default student.

use std::path::PathBuf;

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

/// Copies the first `train` and `test` scenario files of the shipped household set into `dir`.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn small_set(dir: &std::path::Path, train: usize, test: usize) {
    let pick = |split: &str, n: usize| {
        let from = std::path::Path::new("scenarios/household").join(split);
        let mut files: Vec<_> = std::fs::read_dir(&from)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.into_iter().take(n) {
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    };
    pick("train", train);
    pick("test", test);
}

/// A tiny random model with the default student's tokenizer (`leap model tiny`), at
/// `dir/tiny.gguf`, and the first `train` and `test` household scenarios in `dir/scenarios`.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn tiny_workspace(dir: &std::path::Path, train: usize, test: usize) -> (PathBuf, PathBuf) {
    let tiny = dir.join("tiny.gguf");
    leap::model::write_tiny(&default_model(), &tiny, &leap::model::TinySpec::default()).unwrap();
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    small_set(&scenarios, train, test);
    (tiny, scenarios)
}
