//! What can go wrong with a run store; every variant names the database file (or run folder).

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{}: cannot create the run folder: {cause}", dir.display())]
    CreateDir { dir: PathBuf, cause: io::Error },
    #[error("{}: no run store here (run something first, or check --run)", path.display())]
    NotFound { path: PathBuf },
    #[error(
        "{}: schema version {found} is newer than this leap knows ({known}); use a newer leap",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("{}: {what}: {cause}", path.display())]
    Sqlite {
        path: PathBuf,
        what: String,
        cause: rusqlite::Error,
    },
    #[error("{}: {what}: {cause}", path.display())]
    Json {
        path: PathBuf,
        what: String,
        cause: serde_json::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error(
        "{}: label {id} changed since it was read ({seen} then, {now} now, by {by}): another decider got there first; this decision was not recorded",
        path.display()
    )]
    Decided {
        path: PathBuf,
        id: i64,
        seen: &'static str,
        now: String,
        by: String,
    },
    #[error(
        "{}: the database is damaged ({problems}); nothing was read from it or written to it. `leap doctor --run DIR` checks it in full; restore the file from a copy",
        path.display()
    )]
    Damaged { path: PathBuf, problems: String },
}

/// `map_err` helper: wraps a SQLite error with the file and what was being done.
pub(crate) fn sql(
    path: &Path,
    what: impl Into<String>,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    let what = what.into();
    move |cause| StoreError::Sqlite { path, what, cause }
}

/// `map_err` helper for JSON columns.
pub(crate) fn json(
    path: &Path,
    what: impl Into<String>,
) -> impl FnOnce(serde_json::Error) -> StoreError {
    let path = path.to_path_buf();
    let what = what.into();
    move |cause| StoreError::Json { path, what, cause }
}
