//! SQLite's migration facts: declared types, table rebuilds (its `ALTER TABLE` cannot change
//! a column or a constraint), and the lock file that keeps two processes from migrating one
//! database file at once.

use std::path::PathBuf;

use sqlx::sqlite::SqlitePool;

use crate::driver::migrate::{LockError, MigrationDialect};
use crate::model::{Column, ColumnType, PrimaryKey};

/// SQLite's migration dialect.
pub(crate) struct SqliteMigrations;

/// The one [`SqliteMigrations`].
pub(crate) static SQLITE: SqliteMigrations = SqliteMigrations;

impl MigrationDialect for SqliteMigrations {
    /// The declared type (SQLite keeps it as written).
    fn catalog_type(&self, column: &Column) -> String {
        match column.ty {
            ColumnType::Bool => "BOOLEAN".into(),
            ColumnType::SmallInt => "SMALLINT".into(),
            ColumnType::Integer => "INTEGER".into(),
            // A rowid alias must be declared exactly INTEGER.
            ColumnType::BigInt if column.primary_key == Some(PrimaryKey::AutoIncrement) => {
                "INTEGER".into()
            }
            ColumnType::BigInt => "BIGINT".into(),
            ColumnType::Float => "REAL".into(),
            ColumnType::Double => "DOUBLE".into(),
            ColumnType::String(Some(n)) => format!("VARCHAR({n})"),
            ColumnType::String(None) | ColumnType::Json => "TEXT".into(),
            ColumnType::Bytes | ColumnType::Uuid => "BLOB".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::DateTimeUtc => "DATETIME".into(),
        }
    }

    fn normalize_type(&self, raw: &str) -> String {
        raw.trim().to_ascii_uppercase()
    }

    fn rebuilds_tables(&self) -> bool {
        true
    }

    /// Foreign keys can only be switched off outside a transaction, and must be while
    /// tables are swapped (as SQLite's documentation prescribes).
    fn rebuild_transaction(&self, body: Vec<String>) -> Vec<String> {
        let mut out = vec!["PRAGMA foreign_keys = OFF".to_string(), "BEGIN".to_string()];
        out.extend(body);
        out.push("COMMIT".to_string());
        out.push("PRAGMA foreign_keys = ON".to_string());
        out
    }

    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS TEXT)")
    }
}

/// Locks `<database>.migrate-lock` next to the database file of `pool`, waiting for another
/// process that holds it; `None` for a database in memory.
pub(crate) fn lock_file(pool: &SqlitePool) -> Result<Option<std::fs::File>, LockError> {
    let options = pool.connect_options();
    let path = options.get_filename();
    let name = path.to_string_lossy();
    if name.starts_with("file:sqlx-in-memory") || name == ":memory:" {
        return Ok(None);
    }
    let lock_path = PathBuf::from(format!("{}.migrate-lock", path.display()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| LockError::File {
            path: lock_path.clone(),
            source,
        })?;
    file.lock().map_err(|source| LockError::File {
        path: lock_path,
        source,
    })?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::SQLITE;
    use crate::driver::migrate::MigrationDialect;

    #[test]
    fn defaults_normalize_alike() {
        assert_eq!(SQLITE.normalize_default("'it''s'", false), "it's");
        assert_eq!(
            SQLITE.normalize_default("3.0", false),
            SQLITE.normalize_default("3", false)
        );
        assert_eq!(
            SQLITE.normalize_default("(CURRENT_TIMESTAMP)", false),
            "now"
        );
    }
}
