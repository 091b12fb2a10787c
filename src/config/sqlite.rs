//! SQLite-only settings.

use std::time::Duration;

use serde::Deserialize;

/// SQLite journal modes accepted by the `journal_mode` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum JournalMode {
    Delete,
    Truncate,
    Persist,
    Memory,
    Wal,
    Off,
}

/// SQLite `synchronous` levels accepted by the `synchronous` key: how hard a commit pushes
/// its data to the disk before it returns. Every level keeps every acknowledged write across
/// a crash of the *process*; they differ on an operating-system crash or a power loss.
///
/// | level | on power loss or OS crash |
/// |---|---|
/// | `off` | the database may be corrupted |
/// | `normal` | WAL: the last commits may be lost, never corruption; other journals: corruption is possible |
/// | `full` | no acknowledged commit is lost (WAL: one fsync per commit) |
/// | `extra` | as `full`, also syncing the directory after a rollback journal is deleted |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Synchronous {
    Off,
    Normal,
    Full,
    Extra,
}

/// SQLite-only settings of a bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// How long a statement waits for a lock held by another connection.
    /// _Default:_ `connect_timeout`.
    pub busy_timeout: Duration,
    /// _Default:_ `wal` for files; in-memory databases keep SQLite's `memory` mode.
    pub journal_mode: Option<JournalMode>,
    /// Enforce foreign keys (`PRAGMA foreign_keys`). _Default:_ `true`.
    pub foreign_keys: bool,
    /// `PRAGMA synchronous`. _Default:_ `normal` in WAL mode (every acknowledged write
    /// survives a process crash; a power loss can lose the last commits), `full` otherwise
    /// (where `normal` could corrupt the file on power loss).
    pub synchronous: Option<Synchronous>,
    /// `true`: a reader runs in a deferred transaction, so all its reads see one snapshot
    /// (and a reader whose snapshot went stale cannot write: 409). `false`: a reader sends
    /// no `BEGIN`; each statement sees the latest commit (PostgreSQL's `READ COMMITTED`),
    /// and a reader that writes begins its transaction, in the write queue, at that write.
    /// _Default:_ `true`.
    pub read_snapshot: bool,
}
