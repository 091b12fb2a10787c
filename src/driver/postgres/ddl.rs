//! PostgreSQL's DDL runner: one transaction holding an advisory transaction lock.

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Connection, Executor};

use crate::driver::ddl::DdlError;

/// Any fixed 64-bit key: the advisory lock that serializes schema changes.
const LOCK_KEY: i64 = 0x526f_636b_6574_4131;

/// See [`crate::driver::ddl::run_locked`].
pub(crate) async fn run_locked(pool: &PgPool, statements: &[String]) -> Result<(), DdlError> {
    let mut conn = pool.acquire().await.map_err(DdlError::Connection)?;
    let mut tx = conn.begin().await.map_err(DdlError::Connection)?;
    // Unnamed: a named statement would outlive the transaction behind a transaction pooler.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .persistent(false)
        .execute(&mut *tx)
        .await
        .map_err(DdlError::Connection)?;
    for (i, sql) in statements.iter().enumerate() {
        tx.execute(AssertSqlSafe(sql.clone()))
            .await
            .map_err(|e| DdlError::Statement(i, e))?;
    }
    tx.commit().await.map_err(DdlError::Connection)
}
