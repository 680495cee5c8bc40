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
