//! SQLite's DDL runner: one `BEGIN IMMEDIATE` transaction, which holds the write lock.

use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, Executor};

use crate::driver::ddl::DdlError;

/// See [`crate::driver::ddl::run_locked`].
pub(crate) async fn run_locked(pool: &SqlitePool, statements: &[String]) -> Result<(), DdlError> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(DdlError::Connection)?;
    for (i, sql) in statements.iter().enumerate() {
        tx.execute(AssertSqlSafe(sql.clone()))
            .await
            .map_err(|e| DdlError::Statement(i, e))?;
    }
    tx.commit().await.map_err(DdlError::Connection)
}
