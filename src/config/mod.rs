//! Database configuration: `[<profile>.databases.<bind_key>]` in `Rocket.toml`, or any Figment.
//!
//! Every configured database is a *bind*, named by its key. Configuration is read from the
//! Figment that Rocket was built with, so `Rocket.toml` profiles and `ROCKET_DATABASES` env
//! overrides work exactly as they do for Rocket's own settings:
//!
//! ```toml
//! [default.databases.default]
//! url = "sqlite://data/app.db"
//! commit_mode = "autocommit"
//! create_all = true
//!
//! [default.databases.audit]
//! url = "postgres://app@localhost/audit"
//! max_connections = 8
//! ```
//!
//! ```sh
//! ROCKET_DATABASES='{default={commit_mode="manual"}}' cargo run
//! ```
//!
//! Parsing is strict: an unknown key or a bad value is a [`ConfigError`] whose message names
//! the full key (`databases.default.comit_mode`) and where it came from; a URL its driver
//! cannot parse is one too, found when the binds are opened.
//! URLs are never printed with their password: see [`RedactedUrl`].

mod backend;
mod bind_key;
mod commit_mode;
mod database;
mod pooler;
mod redact;
mod sqlite;
mod transaction;

pub use backend::Backend;
pub use bind_key::{Bind, DefaultBind, DEFAULT_KEY};
pub use commit_mode::CommitMode;
pub use database::{ConfigError, DatabaseConfig};
#[cfg(feature = "testing")]
pub(crate) use database::{POSTGRES_ONLY_KEYS, SQLITE_ONLY_KEYS};
pub use pooler::Pooler;
pub(crate) use redact::scrub;
pub use redact::RedactedUrl;
pub use sqlite::{JournalMode, SqliteSettings, Synchronous};
pub use transaction::{IsolationLevel, TransactionOptions};
