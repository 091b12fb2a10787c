//! PostgreSQL.

pub(crate) mod pool;

/// PostgreSQL's dialect.
pub(crate) struct PostgresDialect;

/// The one [`PostgresDialect`].
pub(crate) static POSTGRES: PostgresDialect = PostgresDialect;

impl super::dialect::Dialect for PostgresDialect {
    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> Option<crate::DbErrorKind> {
        use crate::DbErrorKind;
        error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
        Some(match error.code().as_deref() {
            // serialization_failure, deadlock_detected
            Some("40001") | Some("40P01") => DbErrorKind::Serialization,
            // lock_not_available (lock_timeout, NOWAIT)
            Some("55P03") => DbErrorKind::Busy,
            // admin_shutdown, crash_shutdown, cannot_connect_now, and class 08 (connection)
            Some("57P01") | Some("57P02") | Some("57P03") => DbErrorKind::Connection,
            Some(code) if code.starts_with("08") => DbErrorKind::Connection,
            Some(code) if code.starts_with("23") => DbErrorKind::CheckViolation,
            _ => DbErrorKind::Other,
        })
    }

    /// Any error aborts a PostgreSQL transaction until `ROLLBACK` (`TO SAVEPOINT`).
    fn aborts_transaction(&self, error: &sqlx::Error, kind: crate::DbErrorKind) -> bool {
        kind == crate::DbErrorKind::Connection || matches!(error, sqlx::Error::Database(_))
    }
}
