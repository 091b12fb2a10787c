//! PostgreSQL's dialect: what it does differently.

use sea_query::{Expr, ExprTrait, LikeExpr};

use crate::driver::{common_column_type, TextPattern};
use crate::model::{Column, ColumnType};

/// PostgreSQL's dialect.
pub(crate) struct PostgresDialect;

/// The one [`PostgresDialect`].
pub(crate) static POSTGRES: PostgresDialect = PostgresDialect;

impl crate::driver::Dialect for PostgresDialect {
    fn classify(
        &self,
        error: &dyn sqlx::error::DatabaseError,
    ) -> Option<crate::error::kind::DbErrorKind> {
        use crate::error::kind::DbErrorKind;
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
    fn aborts_transaction(
        &self,
        error: &sqlx::Error,
        kind: crate::error::kind::DbErrorKind,
    ) -> bool {
        kind == crate::error::kind::DbErrorKind::Connection
            || matches!(error, sqlx::Error::Database(_))
    }

    fn column_type(&self, column: &Column) -> sea_query::ColumnType {
        use sea_query::ColumnType as T;
        match column.ty {
            ColumnType::Bytes => T::custom("bytea"),
            ColumnType::DateTimeUtc => T::TimestampWithTimeZone,
            ColumnType::Json => T::JsonBinary,
            _ => common_column_type(column),
        }
    }

    fn is_distinct(&self, a: Expr, b: Expr) -> Expr {
        Expr::cust_with_exprs("$1 IS DISTINCT FROM $2", [a, b])
    }

    /// Explicit keys leave the identity sequence behind: move it past them.
    fn after_explicit_keys(&self, table: &str, column: &str) -> Option<String> {
        Some(format!(
            "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), \
             (SELECT MAX(\"{column}\") FROM \"{table}\"))"
        ))
    }

    fn text_match(&self, column: Expr, pattern: TextPattern<'_>, ignore_case: bool) -> Expr {
        match ignore_case {
            // sea-query puts ILIKE's ESCAPE inside parentheses, which PostgreSQL rejects.
            true => Expr::cust_with_exprs(
                "$1 ILIKE $2 ESCAPE '\\'",
                [column, Expr::val(pattern.like())],
            ),
            false => column.like(LikeExpr::new(pattern.like()).escape('\\')),
        }
    }
}
