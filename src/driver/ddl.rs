//! Running DDL under the schema lock: `create_all` and `drop_all` from several processes
//! starting at once must not race.

use super::BindPool;

/// Why DDL could not run.
#[derive(Debug)]
pub(crate) enum DdlError {
    /// Connecting, beginning or committing failed.
    Connection(sqlx::Error),
    /// The schema lock was not given within its wait (MySQL's named lock).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    LockTimedOut,
    /// The statement at this position of the work failed.
    Statement(usize, sqlx::Error),
}

/// Runs `statements` on one connection, holding the schema lock — SQLite's write lock, a
/// PostgreSQL advisory transaction lock, a MySQL named lock — in one transaction where DDL
/// is transactional (MySQL commits each statement; every one is idempotent on its own).
pub(crate) async fn run_locked(pool: &BindPool, statements: &[String]) -> Result<(), DdlError> {
    match pool {
        #[cfg(feature = "sqlite")]
        BindPool::Sqlite(pool) => super::sqlite::ddl::run_locked(pool, statements).await,
        #[cfg(feature = "postgres")]
        BindPool::Postgres(pool) => super::postgres::ddl::run_locked(pool, statements).await,
        #[cfg(feature = "mysql")]
        BindPool::MySql(pool) => super::mysql::ddl::run_locked(pool, statements).await,
    }
}
