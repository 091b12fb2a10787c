//! Migrations: sqlx-format SQL files per bind, tracked in sqlx's `_sqlx_migrations` table.
//!
//! Each bind has a folder (`migrations/` for the default bind, `migrations/<bind_key>/` for
//! the others; the `migrations` key changes it) of reversible pairs
//! `<version>_<slug>.up.sql` / `<version>_<slug>.down.sql` — the format `sqlx migrate add -r`
//! writes. Migrations are applied with sqlx's own migration code, so the tracking table,
//! checksums and locking are sqlx's: `sqlx migrate info` / `run` and these functions agree on
//! the same folder and database.
//!
//! * Each migration runs in a transaction where the backend has transactional DDL
//!   (PostgreSQL, SQLite): a failing one leaves the schema and the tracking table as they
//!   were, and the error names the file and the statement. MySQL commits DDL implicitly; a
//!   failing MySQL migration is recorded as failed (sqlx's "dirty" state) and blocks further
//!   upgrades until repaired.
//! * An applied file whose checksum changed is an error, never a silent re-run.
//! * Upgrades hold a lock (PostgreSQL advisory lock, MySQL `GET_LOCK`, a lock file next to a
//!   SQLite database): two processes starting at once apply each migration once.
//!
//! What differs between engines (the tracking table's queries, the lock, the live schema,
//! type spellings) is asked of the driver layer (`crate::driver::migrate`); nothing here
//! matches on the backend.

mod diff;
mod error;
mod files;
mod history;
mod migrator;
mod run;
mod split;

pub use diff::Plan;
pub use error::MigrationError;
pub use files::{slug, MigrationFile, Migrations};
pub use history::{AppliedRow, Status, TABLE};
pub use migrator::Migrator;
pub(crate) use run::startup;
pub use run::{Downgrade, Step};
