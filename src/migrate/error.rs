//! The errors of the migrations layer.

use std::path::PathBuf;

use sqlx::migrate::MigrateError;

/// A failure of the migrations layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The migrations folder could not be read, or a file name is not `<version>_<name>.sql`.
    #[error("{0}")]
    Source(String),
    /// Writing a file failed.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A migration failed and was rolled back.
    #[error("{file} failed{}: {source}", statement_suffix(.statement))]
    Failed {
        /// The migration file.
        file: String,
        /// The failing statement (1-based) and its text, when it could be told.
        statement: Option<(usize, String)>,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// An applied migration's file changed since it was applied.
    #[error("{file} was changed after it was applied (checksum mismatch); restore it and put the change in a new revision")]
    ChecksumMismatch {
        /// The file.
        file: String,
    },
    /// An applied migration has no file any more.
    #[error("migration {version} is applied but no file for it is in {dir}")]
    Missing {
        /// The version.
        version: i64,
        /// The folder.
        dir: String,
    },
    /// A migration failed half-way earlier (MySQL) and must be repaired.
    #[error("migration {0} failed part-way earlier (dirty); repair the schema, then `stamp` the right version")]
    Dirty(i64),
    /// A downgrade needs a `.down.sql` that does not exist.
    #[error("{0} has no .down.sql: it cannot be reverted")]
    Irreversible(String),
    /// A version named on the command line is not a migration of the folder.
    #[error("no migration {version} in {dir}")]
    UnknownVersion {
        /// The version.
        version: String,
        /// The folder.
        dir: String,
    },
    /// Autogenerate needs the database at the latest revision.
    #[error(
        "{0} migration(s) not applied yet: run `database upgrade` before generating a revision"
    )]
    Pending(usize),
    /// Autogenerate met a change it cannot write safely.
    #[error("autogenerate cannot express this change: {0}; write the migration by hand")]
    Unsupported(String),
    /// The bind is behind a transaction pooler and has no `direct_url` to migrate over.
    #[error(
        "`databases.{bind}.direct_url` is required to migrate a bind with `pooler = \"transaction\"`: \
         migrations hold a session lock, which a transaction pooler does not keep; give the \
         server's own URL"
    )]
    NeedsDirectUrl {
        /// The bind key.
        bind: String,
    },
    /// A database error outside a migration.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// sqlx's migration machinery failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

fn statement_suffix(statement: &Option<(usize, String)>) -> String {
    match statement {
        Some((n, text)) => {
            let short: String = text.chars().take(200).collect();
            format!(" at statement {n} `{short}`")
        }
        None => String::new(),
    }
}
