//! SQLite scratch databases: files, copied from a template file.

use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Folds the template's write-ahead log into its main file, so a plain copy of that file is
/// the whole database.
pub(crate) async fn freeze(path: &str) -> Result<(), sqlx::Error> {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
        .disable_statement_logging()
        .connect()
        .await?;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// Copies the template file to `to`.
pub(crate) fn copy(from: &str, to: &str) -> Result<(), sqlx::Error> {
    std::fs::copy(from, to).map(|_| ()).map_err(sqlx::Error::Io)
}

/// Removes a database file and its journals.
pub(crate) fn remove(path: &str) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}
