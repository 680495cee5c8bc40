//! The run store: one SQLite database per run folder (`runs/NAME/leap.db`) holding the run, the
//! scenario snapshots that were played, and every finished episode with its full trace.
//!
//! Durability. The database is in WAL mode with `synchronous=NORMAL`. A commit appends the
//! transaction's pages and a checksummed commit frame to `leap.db-wal` with `write()`; once that
//! returns the bytes are in the kernel's page cache, which outlives the process, so a finished
//! episode survives a SIGKILL (or a panic, or an abort) at any later moment. On the next open
//! SQLite replays the WAL only up to the last complete commit frame, so a transaction that was
//! being written when the process died is dropped whole: an episode and its steps are one
//! transaction, so there is never half an episode. `NORMAL` skips only the fsync at commit; a
//! power cut or kernel crash may lose the last few episodes, never corrupt the file.
//!
//! Concurrency. Readers (the workbench, `leap episodes list`) see the last committed state and
//! do not block the writer; the busy timeout covers the short moments when SQLite takes an
//! exclusive lock (checkpoints, recovery, migrations). A `Store` is one connection: it can move
//! to another thread but not be shared; open one per thread.
//!
//! Soundness. Opening runs SQLite's `quick_check` first (`integrity.rs`) and refuses a damaged
//! file before anything is read from it or written to it.

mod adapters;
mod datasets;
mod episodes;
mod error;
mod evaluations;
mod integrity;
mod labels;
mod model;
mod record;
mod scenarios;
mod schema;
mod stages;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

pub use adapters::AdapterRow;
pub use datasets::{DatasetRow, DatasetSource, Provenance};
pub use error::{Result, StoreError};
pub use evaluations::EvaluationRow;
pub use integrity::integrity_check;
pub use labels::{Decision, Label, LabelCounts, LabelEvent, LabelFilter, LabelStatus};
pub use model::RunModel;
pub use record::{
    Branch, Episode, EpisodeFilter, EpisodeRecord, EpisodeSummary, Order, RunInfo,
    ScenarioSnapshot, StepRecord, Summary,
};
pub use schema::SCHEMA_VERSION;
pub use stages::StageRow;

use error::{json, sql};

/// Where runs live unless told otherwise.
pub const DEFAULT_RUN_DIR: &str = "runs/default";
/// The database's file name inside a run folder.
pub const DB_FILE: &str = "leap.db";

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open run store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the store of the run in `dir`, creating the folder and the database if needed and
    /// bringing the schema up to date.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|cause| StoreError::CreateDir {
            dir: dir.to_path_buf(),
            cause,
        })?;
        Self::open_file(dir, dir.join(DB_FILE))
    }

    /// Opens the store of an existing run; `NotFound` when `dir` holds no database. For readers,
    /// which should not create a run by looking at a mistyped folder. A run on a read-only file
    /// system (or in a folder this user cannot write) opens read-only: it can be read, and a
    /// write fails saying why.
    pub fn open_existing(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref();
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NotFound { path });
        }
        match Self::open_file(dir, path.clone()) {
            Err(err) if error::cannot_write(&err) => Self::open_read_only(path).map_err(|_| err),
            other => other,
        }
    }

    /// Opens a database that cannot be written. WAL mode needs its `-wal` and `-shm` files
    /// beside the database; where they do not exist and cannot be made (a cleanly closed run
    /// on a read-only file system), the database is opened as immutable, which SQLite reads
    /// without them.
    fn open_read_only(path: PathBuf) -> Result<Store> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let uri = |param: &str| {
            let escaped = path
                .to_string_lossy()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23");
            format!("file:{escaped}?{param}")
        };
        let readable = |conn: Connection| schema::version(&conn, &path).map(|_| conn);
        let conn = Connection::open_with_flags(uri("mode=ro"), flags)
            .map_err(sql(&path, "opening the database read-only"))
            .and_then(readable)
            .or_else(|_| {
                Connection::open_with_flags(uri("immutable=1"), flags)
                    .map_err(sql(&path, "opening the database read-only"))
            })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql(&path, "setting the busy timeout"))?;
        let found = schema::version(&conn, &path)?;
        if found != SCHEMA_VERSION as i64 {
            let what = format!(
                "the run folder is read-only and its schema version {found} is not this \
                 leap's ({SCHEMA_VERSION}); open it once where it can be written"
            );
            return Err(StoreError::Invalid { path, what });
        }
        Ok(Store { conn, path })
    }

    fn open_file(dir: &Path, path: PathBuf) -> Result<Store> {
        let mut conn = Connection::open(&path).map_err(sql(&path, "opening the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql(&path, "setting the busy timeout"))?;
        integrity::quick_check(&conn, &path)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql(&path, "switching to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            let what = format!("the file system refused WAL mode (journal mode is {mode})");
            return Err(StoreError::Invalid { path, what });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(&path, "setting synchronous=NORMAL"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql(&path, "turning foreign keys on"))?;
        schema::migrate(&mut conn, &path)?;
        let store = Store { conn, path };
        store.ensure_run_row(dir)?;
        Ok(store)
    }

    /// Records the run's name and creation time the first time the store is opened.
    fn ensure_run_row(&self, dir: &Path) -> Result<()> {
        let exists = self
            .conn
            .query_row("SELECT 1 FROM runs WHERE id = 1", [], |_| Ok(()))
            .optional()
            .map_err(sql(&self.path, "reading the run"))?
            .is_some();
        if exists {
            return Ok(());
        }
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        self.conn
            .execute(
                "INSERT INTO runs (id, name, created_at_ms, config) VALUES (1, ?1, ?2, '{}')
                 ON CONFLICT (id) DO NOTHING",
                params![name, now_ms()],
            )
            .map_err(sql(&self.path, "recording the run"))?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (equal to `SCHEMA_VERSION` once open).
    pub fn schema_version(&self) -> Result<i64> {
        schema::version(&self.conn, &self.path)
    }

    pub fn run_info(&self) -> Result<RunInfo> {
        let (name, created_at_ms, config): (String, i64, String) = self
            .conn
            .query_row(
                "SELECT name, created_at_ms, config FROM runs WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .map_err(sql(&self.path, "reading the run"))?;
        let config =
            serde_json::from_str(&config).map_err(json(&self.path, "reading the run config"))?;
        Ok(RunInfo {
            name,
            created_at_ms,
            config,
        })
    }

    /// Replaces the run's configuration blob.
    pub fn set_config(&mut self, config: &Value) -> Result<()> {
        let text =
            serde_json::to_string(config).map_err(json(&self.path, "writing the run config"))?;
        self.conn
            .execute("UPDATE runs SET config = ?1 WHERE id = 1", [text])
            .map_err(sql(&self.path, "writing the run config"))?;
        Ok(())
    }
}

/// Now, in unix milliseconds: the store's time unit.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
