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

/// The lock file `<database>.migrate-lock`, locked while this lives; dropping it deletes the
/// file, then unlocks it, so no file is left beside the database once the command is done.
pub(crate) struct LockFile {
    path: PathBuf,
    file: std::fs::File,
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Deleted while still locked: a process waiting on this file finds, once it has the
        // lock, that the path no longer names its file, and starts over with a new one.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether `path` still names the very file `file` is (not deleted or replaced since it was
/// opened).
fn still_named(path: &std::path::Path, file: &std::fs::File) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        match std::fs::metadata(path) {
            Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(path.exists())
    }
}

/// Locks `<database>.migrate-lock` next to the database file of `pool`, waiting for another
/// process that holds it; `None` for a database in memory. The file exists only while a
/// process holds the lock (see [`LockFile`]).
pub(crate) fn lock_file(pool: &SqlitePool) -> Result<Option<LockFile>, LockError> {
    let options = pool.connect_options();
    let path = options.get_filename();
    let name = path.to_string_lossy();
    if name.starts_with("file:sqlx-in-memory") || name == ":memory:" {
        return Ok(None);
    }
    let lock_path = PathBuf::from(format!("{}.migrate-lock", path.display()));
    let failed = |source| LockError::File {
        path: lock_path.clone(),
        source,
    };
    loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(failed)?;
        file.lock().map_err(failed)?;
        if still_named(&lock_path, &file).map_err(failed)? {
            return Ok(Some(LockFile {
                path: lock_path,
                file,
            }));
        }
        // The holder we waited for deleted the file on release: lock the current one.
    }
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
