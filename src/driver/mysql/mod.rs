//! MySQL and MariaDB.

pub(crate) mod pool;

/// MySQL's dialect.
pub(crate) struct MySqlDialect;

/// The one [`MySqlDialect`].
pub(crate) static MYSQL: MySqlDialect = MySqlDialect;

/// InnoDB's deadlock error: it rolls the whole transaction back.
pub(crate) const ER_LOCK_DEADLOCK: u16 = 1213;

impl super::dialect::Dialect for MySqlDialect {
    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> Option<crate::DbErrorKind> {
        use crate::DbErrorKind;
        let my = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()?;
        Some(match my.number() {
            // ER_LOCK_DEADLOCK, ER_CHECKREAD (snapshot conflict)
            ER_LOCK_DEADLOCK | 1020 => DbErrorKind::Serialization,
            // ER_LOCK_WAIT_TIMEOUT
            1205 => DbErrorKind::Busy,
            // ER_CONNECTION_KILLED, ER_QUERY_INTERRUPTED, ER_SERVER_SHUTDOWN, CR_* lost/gone
            1927 | 1317 | 1053 | 2006 | 2013 => DbErrorKind::Connection,
            _ => DbErrorKind::Other,
        })
    }

    /// InnoDB rolls the whole transaction back on a deadlock.
    fn aborts_transaction(&self, error: &sqlx::Error, kind: crate::DbErrorKind) -> bool {
        if kind == crate::DbErrorKind::Connection {
            return true;
        }
        match error {
            sqlx::Error::Database(db) => db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|my| my.number() == ER_LOCK_DEADLOCK),
            _ => false,
        }
    }

    fn savepoint_rollback_clears_abort(&self) -> bool {
        false
    }
}
