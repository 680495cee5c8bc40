//! The schema as an ordered list of migrations. `PRAGMA user_version` holds how many have been
//! applied; each runs in its own transaction together with the version bump, so a crash leaves
//! the database at the previous version, never between two.
//!
//! To change the schema, append an SQL string to `MIGRATIONS`; never edit one that has shipped.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::error::{Result, StoreError, sql};

/// Times are unix milliseconds. Booleans are 0/1. JSON is stored as text. Tables are STRICT so
/// a wrong type is an error, not a silent conversion; a NaN reward becomes NULL in SQLite and is
/// refused by NOT NULL.
const MIGRATIONS: &[&str] = &[
    // 1: the run, scenario snapshots, episodes and their steps.
    r#"
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        name          TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        config        TEXT NOT NULL
    ) STRICT;

    CREATE TABLE scenarios (
        hash        TEXT PRIMARY KEY,
        scenario_id TEXT NOT NULL,
        kind        TEXT NOT NULL,
        split       TEXT NOT NULL,
        json        TEXT NOT NULL
    ) STRICT;

    CREATE TABLE episodes (
        id              INTEGER PRIMARY KEY,
        key             TEXT NOT NULL UNIQUE,
        scenario_hash   TEXT NOT NULL REFERENCES scenarios (hash),
        scenario_id     TEXT NOT NULL,
        policy          TEXT NOT NULL,
        seed            INTEGER NOT NULL,
        iteration       INTEGER,
        sampling        TEXT NOT NULL,
        started_at_ms   INTEGER NOT NULL,
        finished_at_ms  INTEGER NOT NULL,
        won             INTEGER NOT NULL CHECK (won IN (0, 1)),
        reward          REAL NOT NULL,
        steps           INTEGER NOT NULL,
        invalid_actions INTEGER NOT NULL,
        prompt_tokens   INTEGER NOT NULL,
        cached_tokens   INTEGER NOT NULL,
        gen_tokens      INTEGER NOT NULL,
        wall_ms         INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX episodes_scenario ON episodes (scenario_id);
    CREATE INDEX episodes_iteration ON episodes (iteration);
    CREATE INDEX episodes_finished ON episodes (finished_at_ms);

    CREATE TABLE steps (
        episode_id    INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
        idx           INTEGER NOT NULL CHECK (idx >= 0),
        prompt        TEXT NOT NULL,
        raw_output    TEXT NOT NULL,
        reason        TEXT,
        action        TEXT NOT NULL,
        observation   TEXT NOT NULL,
        reward        REAL NOT NULL,
        done          INTEGER NOT NULL CHECK (done IN (0, 1)),
        valid         INTEGER NOT NULL CHECK (valid IN (0, 1)),
        admissible    TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        gen_tokens    INTEGER NOT NULL,
        prompt_ms     INTEGER NOT NULL,
        gen_ms        INTEGER NOT NULL,
        PRIMARY KEY (episode_id, idx)
    ) STRICT;
    "#,
    // 2: teacher corrections and their labels (with every decision kept), the messages each
    // step's prompt was made of, datasets, adapters and evaluations, and the links between them.
    r#"
    ALTER TABLE steps ADD COLUMN messages TEXT;

    CREATE TABLE corrections (
        id            INTEGER PRIMARY KEY,
        episode_id    INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
        teacher       TEXT NOT NULL,
        privilege     REAL,
        created_at_ms INTEGER NOT NULL,
        summary       TEXT NOT NULL,
        failed        TEXT,
        UNIQUE (episode_id, teacher)
    ) STRICT;

    CREATE TABLE labels (
        id             INTEGER PRIMARY KEY,
        correction_id  INTEGER NOT NULL REFERENCES corrections (id) ON DELETE CASCADE,
        episode_id     INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
        idx            INTEGER NOT NULL CHECK (idx >= 0),
        student_reason TEXT,
        student_action TEXT NOT NULL,
        teacher_reason TEXT NOT NULL,
        teacher_action TEXT NOT NULL,
        changed        INTEGER NOT NULL CHECK (changed IN (0, 1)),
        leaks          TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'edited')),
        edited_reason  TEXT,
        edited_action  TEXT,
        decided_by     TEXT,
        decided_at_ms  INTEGER,
        UNIQUE (correction_id, idx)
    ) STRICT;
    CREATE INDEX labels_status ON labels (status);
    CREATE INDEX labels_episode ON labels (episode_id, idx);

    CREATE TABLE label_events (
        id            INTEGER PRIMARY KEY,
        label_id      INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
        at_ms         INTEGER NOT NULL,
        status        TEXT NOT NULL,
        edited_reason TEXT,
        edited_action TEXT,
        decided_by    TEXT,
        undone        INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1))
    ) STRICT;
    CREATE INDEX label_events_label ON label_events (label_id, id);

    CREATE TABLE datasets (
        id            INTEGER PRIMARY KEY,
        iteration     INTEGER NOT NULL,
        hash          TEXT NOT NULL,
        path          TEXT NOT NULL,
        rows          INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        config        TEXT NOT NULL,
        UNIQUE (iteration, hash)
    ) STRICT;

    CREATE TABLE dataset_labels (
        dataset_id INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
        label_id   INTEGER NOT NULL REFERENCES labels (id),
        PRIMARY KEY (dataset_id, label_id)
    ) STRICT;

    CREATE TABLE adapters (
        id            INTEGER PRIMARY KEY,
        iteration     INTEGER,
        path          TEXT NOT NULL UNIQUE,
        dataset_id    INTEGER REFERENCES datasets (id),
        base_model    TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        summary       TEXT NOT NULL
    ) STRICT;

    CREATE TABLE evaluations (
        id            INTEGER PRIMARY KEY,
        label         TEXT NOT NULL UNIQUE,
        adapter_id    INTEGER REFERENCES adapters (id),
        iteration     INTEGER,
        policy        TEXT NOT NULL,
        split         TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        summary       TEXT NOT NULL
    ) STRICT;
    "#,
    // 3: the wall time of each finished stage of `leap iterate`, kept across resumed runs.
    r#"
    CREATE TABLE stages (
        id             INTEGER PRIMARY KEY,
        iteration      INTEGER,
        stage          TEXT NOT NULL,
        seconds        REAL NOT NULL,
        finished_at_ms INTEGER NOT NULL,
        detail         TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: who built a dataset: `leap iterate` / `leap dataset build` (one per iteration, what a
    // later iteration trains on) or the workbench's Train screen (the kept labels, for lineage).
    r#"
    ALTER TABLE datasets ADD COLUMN source TEXT NOT NULL DEFAULT 'iterate'
        CHECK (source IN ('iterate', 'workbench'));
    "#,
    // 5: interventions and branches, from debugging an episode while it runs. A step whose action
    // someone other than the student chose names who (`teacher:oracle@0.5`,
    // `researcher:<user>@workbench`); NULL is the student's own step. An episode re-opened and
    // played on from one of its steps names the episode and the step it branched at.
    r#"
    ALTER TABLE steps ADD COLUMN intervention TEXT;
    ALTER TABLE episodes ADD COLUMN branched_from INTEGER REFERENCES episodes (id);
    ALTER TABLE episodes ADD COLUMN branched_at INTEGER CHECK (branched_at >= 0);
    "#,
    // 6: what a step did beyond its reward, as its environment reported it (JSON, such as a
    // reward's breakdown); NULL when it reported nothing.
    r#"
    ALTER TABLE steps ADD COLUMN info TEXT;
    "#,
    // 7: why an episode ended before its horizon other than by its environment ("cycle at step
    // 12": a greedy student back in a state and prompt it had already answered); NULL when it
    // ended on its own.
    r#"
    ALTER TABLE episodes ADD COLUMN stopped TEXT;
    "#,
];

/// The schema version this build writes: the number of migrations.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

pub(crate) fn version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql(path, "reading the schema version"))
}

/// Brings the database up to `SCHEMA_VERSION`. Safe when two processes open a new run at once:
/// the version is re-read under the write lock, so each migration is applied exactly once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let start = version(conn, path)?;
    check_not_newer(start, path)?;
    // `start` is in 0..=SCHEMA_VERSION here, so the skip is exact; an up-to-date database takes
    // no write lock at all.
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(start as usize) {
        let to = i as i64 + 1;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, "locking the database to migrate"))?;
        let current = version(&tx, path)?;
        check_not_newer(current, path)?;
        if current >= to {
            continue;
        }
        tx.execute_batch(migration)
            .map_err(sql(path, format!("applying migration {to}")))?;
        tx.pragma_update(None, "user_version", to)
            .map_err(sql(path, format!("recording schema version {to}")))?;
        tx.commit()
            .map_err(sql(path, format!("committing migration {to}")))?;
    }
    Ok(())
}

fn check_not_newer(found: i64, path: &Path) -> Result<()> {
    if found < 0 {
        let what = format!("schema version {found}: not a database leap wrote");
        return Err(StoreError::Invalid {
            path: path.to_path_buf(),
            what,
        });
    }
    if found > SCHEMA_VERSION as i64 {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}
