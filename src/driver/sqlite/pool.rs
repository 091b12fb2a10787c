//! Opening a SQLite bind: the readers' pool and the write side.

use std::str::FromStr;

use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::SqliteWriter;
use crate::config::{DatabaseConfig, JournalMode, Synchronous};
use crate::driver::pool::{log_options, pool_options};
use crate::driver::{BindPool, Writer};

/// Opens the readers' pool and the write side of a SQLite bind.
pub(crate) async fn open(config: &DatabaseConfig) -> Result<(BindPool, Writer), sqlx::Error> {
    let (options, in_memory) = options(config)?;
    let mut pool = pool_options::<Sqlite>(config);
    if in_memory {
        // A shared in-memory database lives while one connection is open.
        pool = pool
            .min_connections(config.min_connections.unwrap_or(1).max(1))
            .idle_timeout(None)
            .max_lifetime(None);
    } else if let Some(parent) = options.get_filename().parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let lazy = config.lazy && !in_memory;
    let pool = match lazy {
        true => pool.connect_lazy_with(options.clone()),
        false => pool.connect_with(options.clone()).await?,
    };
    let writer = if in_memory {
        SqliteWriter::new(None, None, config.connect_timeout)
    } else {
        // One write connection: SQLite writes one transaction at a time anyway.
        let write_pool = pool_options::<Sqlite>(config)
            .min_connections(0)
            .max_connections(1);
        let write_pool = match lazy {
            true => write_pool.connect_lazy_with(options.clone()),
            false => write_pool.connect_with(options.clone()).await?,
        };
        SqliteWriter::new(
            Some(write_pool),
            Some(options.get_filename()),
            config.connect_timeout,
        )
    };
    Ok((BindPool::Sqlite(pool), Writer::Sqlite(writer)))
}

/// Checks that `url` parses.
pub(crate) fn check_url(url: &str) -> Result<(), sqlx::Error> {
    SqliteConnectOptions::from_str(url).map(drop)
}

/// The connect options of `config`, and whether the database is in memory.
fn options(config: &DatabaseConfig) -> Result<(SqliteConnectOptions, bool), sqlx::Error> {
    let settings = config
        .sqlite
        .as_ref()
        .expect("sqlite settings on a sqlite bind");
    let url = config.url.expose();
    let in_memory = is_memory(url);
    let mut options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .busy_timeout(settings.busy_timeout)
        .foreign_keys(settings.foreign_keys);
    let journal = settings.journal_mode.map(|mode| match mode {
        JournalMode::Delete => SqliteJournalMode::Delete,
        JournalMode::Truncate => SqliteJournalMode::Truncate,
        JournalMode::Persist => SqliteJournalMode::Persist,
        JournalMode::Memory => SqliteJournalMode::Memory,
        JournalMode::Wal => SqliteJournalMode::Wal,
        JournalMode::Off => SqliteJournalMode::Off,
    });
    let wal = match (journal, in_memory) {
        (Some(mode), _) => {
            options = options.journal_mode(mode);
            mode == SqliteJournalMode::Wal
        }
        (None, false) => {
            options = options.journal_mode(SqliteJournalMode::Wal);
            true
        }
        (None, true) => false,
    };
    let synchronous = settings.synchronous.map(|level| match level {
        Synchronous::Off => SqliteSynchronous::Off,
        Synchronous::Normal => SqliteSynchronous::Normal,
        Synchronous::Full => SqliteSynchronous::Full,
        Synchronous::Extra => SqliteSynchronous::Extra,
    });
    options = options.synchronous(synchronous.unwrap_or(match wal {
        true => SqliteSynchronous::Normal,
        false => SqliteSynchronous::Full,
    }));
    Ok((log_options(options, config), in_memory))
}

fn is_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.starts_with(":memory:") || url.contains("mode=memory")
}

/// Health: the file still exists and starts with SQLite's header (read from the file itself:
/// pooled connections keep pages cached, and in WAL mode serve page 1 from the log, so an
/// overwritten header would go unnoticed through them), then a pooled connection reads the
/// schema (`sql`). The file is looked at once per [`FILE_CHECK_EVERY`] at most, so a
/// `/health` polled under load costs what a pooled read costs.
pub(crate) async fn health(
    pool: &sqlx::SqlitePool,
    sql: sqlx::AssertSqlSafe<&'static str>,
) -> Result<(), sqlx::Error> {
    let options = pool.connect_options();
    let path = options.get_filename();
    if !in_memory(path) && !recently_checked(path) {
        if !path.exists() {
            return Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the database file {} is gone", path.display()),
            )));
        }
        check_header(path)?;
        remember_checked(path);
    }
    let mut conn = pool.acquire().await?;
    // Prepared once per connection (sqlx's cache), not parsed per check.
    sqlx::query(sql).execute(&mut *conn).await.map(drop)
}

/// Whether sqlx's file name for a database is an in-memory one (`:memory:`, or the
/// `file:…` URI it gives shared in-memory databases).
fn in_memory(path: &std::path::Path) -> bool {
    let name = path.to_string_lossy();
    name.is_empty() || name.starts_with(":memory:") || name.starts_with("file:")
}

/// Reads the first 16 bytes of the database file: `SQLite format 3\0`, or an empty file
/// (a database SQLite has not written yet).
fn check_header(path: &std::path::Path) -> Result<(), sqlx::Error> {
    use std::io::Read;
    let mut magic = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    let read = file.read(&mut magic)?;
    if read == 0 || magic == *b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} does not start with a SQLite header", path.display()),
        )))
    }
}

/// How long a good file check of a database stands.
const FILE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// When each database file last passed its check.
static FILE_CHECKS: std::sync::Mutex<Vec<(std::path::PathBuf, std::time::Instant)>> =
    std::sync::Mutex::new(Vec::new());

fn recently_checked(path: &std::path::Path) -> bool {
    let checks = FILE_CHECKS.lock().expect("not poisoned");
    checks
        .iter()
        .any(|(p, at)| p == path && at.elapsed() < FILE_CHECK_EVERY)
}

fn remember_checked(path: &std::path::Path) {
    let mut checks = FILE_CHECKS.lock().expect("not poisoned");
    checks.retain(|(p, at)| p != path && at.elapsed() < FILE_CHECK_EVERY);
    checks.push((path.to_path_buf(), std::time::Instant::now()));
}
