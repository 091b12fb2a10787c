//! MySQL's DDL runner: a named lock per database, checked, around statements MySQL commits
//! one by one.

use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, Executor};

use crate::driver::ddl::DdlError;

/// See [`crate::driver::ddl::run_locked`].
pub(crate) async fn run_locked(pool: &MySqlPool, statements: &[String]) -> Result<(), DdlError> {
    let mut conn = pool.acquire().await.map_err(DdlError::Connection)?;
    // 1: taken; 0: still held by another session after the wait; NULL: an error.
    let (got,): (Option<i64>,) =
        sqlx::query_as("SELECT GET_LOCK(CONCAT('rocket_alchemy_schema_', DATABASE()), 60)")
            .fetch_one(&mut *conn)
            .await
            .map_err(DdlError::Connection)?;
    if got != Some(1) {
        return Err(DdlError::LockTimedOut);
    }
    let mut result = Ok(());
    for (i, sql) in statements.iter().enumerate() {
        if let Err(e) = conn.execute(AssertSqlSafe(sql.clone())).await {
            result = Err(DdlError::Statement(i, e));
            break;
        }
    }
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('rocket_alchemy_schema_', DATABASE()))")
        .execute(&mut *conn)
        .await;
    result
}
