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
    #[error(
        "{}: {what}: the disk is full; free some space and run it again (what was committed \
         before is kept)",
        path.display()
    )]
    DiskFull { path: PathBuf, what: String },
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
    move |cause| {
        if disk_full(&cause, &path) {
            StoreError::DiskFull { path, what }
        } else {
            StoreError::Sqlite { path, what, cause }
        }
    }
}

/// Whether `cause` is the disk running out of space: SQLite says so (`SQLITE_FULL`), or says
/// "disk I/O error" where the write that failed was refused for space (a WAL or `-shm` write)
/// and the file system has no space left.
fn disk_full(cause: &rusqlite::Error, path: &Path) -> bool {
    use rusqlite::ErrorCode;
    match cause.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => true,
        Some(ErrorCode::SystemIoFailure) => no_space_left(path),
        _ => false,
    }
}

fn no_space_left(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(c_dir) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs writes into the zeroed struct it is given and reads a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_dir.as_ptr(), &mut stat) } != 0 {
        return false;
    }
    // Less than one page left: nothing more can be written.
    (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64) < 4096
}

/// Whether opening failed because the database or its folder cannot be written (a read-only
/// file system, or permissions), so that it may still be read.
pub(crate) fn cannot_write(err: &StoreError) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        err,
        StoreError::Sqlite { cause, .. } if matches!(
            cause.sqlite_error_code(),
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen)
        )
    )
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
