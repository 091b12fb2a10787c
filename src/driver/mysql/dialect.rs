//! MySQL's and MariaDB's dialect: what they do differently.

use sea_query::{Expr, ExprTrait, LikeExpr};

use crate::driver::dialect::lower_like;
use crate::driver::{common_column_type, TextPattern};
use crate::model::{Column, ColumnType};

/// MySQL's dialect.
pub(crate) struct MySqlDialect;

/// The one [`MySqlDialect`].
pub(crate) static MYSQL: MySqlDialect = MySqlDialect;

/// InnoDB's deadlock error: it rolls the whole transaction back.
pub(crate) const ER_LOCK_DEADLOCK: u16 = 1213;

impl crate::driver::Dialect for MySqlDialect {
    /// `SET TRANSACTION ISOLATION LEVEL …` (for the next transaction only), then
    /// `START TRANSACTION [READ ONLY]`. `lock_timeout` is set per connection (pool.rs).
    fn begin_statement(&self, options: &crate::config::TransactionOptions) -> Option<String> {
        if options.isolation_level.is_none() && !options.read_only {
            return None;
        }
        let mut sql = String::new();
        if let Some(level) = options.isolation_level {
            sql.push_str(&format!(
                "SET TRANSACTION ISOLATION LEVEL {}; ",
                level.sql()
            ));
        }
        sql.push_str("START TRANSACTION");
        if options.read_only {
            sql.push_str(" READ ONLY");
        }
        Some(sql)
    }

    /// `innodb_lock_wait_timeout = 0` (MariaDB: no wait; MySQL raises it to its minimum, one
    /// second), then back to the bind's `lock_timeout` or the server's default.
    fn no_lock_wait(&self, lock_timeout: Option<std::time::Duration>) -> Option<(String, String)> {
        let restore = match lock_timeout {
            Some(timeout) => (timeout.as_secs_f64().ceil().max(1.0) as u64).to_string(),
            None => "DEFAULT".to_string(),
        };
        Some((
            "SET SESSION innodb_lock_wait_timeout = 0".to_string(),
            format!("SET SESSION innodb_lock_wait_timeout = {restore}"),
        ))
    }

    fn classify(
        &self,
        error: &dyn sqlx::error::DatabaseError,
    ) -> Option<crate::error::kind::DbErrorKind> {
        use crate::error::kind::DbErrorKind;
        let my = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()?;
        Some(match my.number() {
            // ER_LOCK_DEADLOCK, ER_CHECKREAD (snapshot conflict)
            ER_LOCK_DEADLOCK | 1020 => DbErrorKind::Serialization,
            // ER_LOCK_WAIT_TIMEOUT
            1205 => DbErrorKind::Busy,
            // ER_TABLEACCESS_DENIED_ERROR, ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
            1142 | 1792 => DbErrorKind::PermissionDenied,
            // ER_CONNECTION_KILLED, ER_QUERY_INTERRUPTED, ER_SERVER_SHUTDOWN, CR_* lost/gone
            1927 | 1317 | 1053 | 2006 | 2013 => DbErrorKind::Connection,
            _ => DbErrorKind::Other,
        })
    }

    /// InnoDB rolls the whole transaction back on a deadlock.
    fn aborts_transaction(
        &self,
        error: &sqlx::Error,
        kind: crate::error::kind::DbErrorKind,
    ) -> bool {
        if kind == crate::error::kind::DbErrorKind::Connection {
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

    fn column_type(&self, column: &Column) -> sea_query::ColumnType {
        use sea_query::ColumnType as T;
        let indexed = column.unique
            || column.index
            || column.primary_key.is_some()
            || column.foreign_key.is_some();
        match column.ty {
            // An index needs a bounded length.
            ColumnType::String(None) if indexed => T::string(Some(255)),
            ColumnType::Uuid => T::Binary(16),
            _ => common_column_type(column),
        }
    }

    fn now(&self) -> &'static str {
        "CURRENT_TIMESTAMP(6)"
    }

    fn indexes_in_create_table(&self) -> bool {
        true
    }

    fn insert_returning(&self) -> bool {
        false
    }

    fn upsert_incoming(&self, column: &'static str) -> Expr {
        Expr::cust_with_exprs("VALUES(?)", [Expr::col(column)])
    }

    fn is_distinct(&self, a: Expr, b: Expr) -> Expr {
        Expr::cust_with_exprs("NOT (? <=> ?)", [a, b])
    }

    fn text_match(&self, column: Expr, pattern: TextPattern<'_>, ignore_case: bool) -> Expr {
        match ignore_case {
            true => lower_like(column, pattern),
            // A binary operand makes MySQL compare bytes, whatever the column's collation.
            false => Expr::cust_with_exprs("CAST(? AS BINARY)", [column])
                .like(LikeExpr::new(pattern.like()).escape('\\')),
        }
    }
}
