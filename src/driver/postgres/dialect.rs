//! PostgreSQL's dialect: what it does differently.

use sea_query::{Expr, ExprTrait, LikeExpr};

use crate::driver::{common_column_type, TextPattern};
use crate::model::{Column, ColumnType};

/// PostgreSQL's dialect.
pub(crate) struct PostgresDialect;

/// The one [`PostgresDialect`].
pub(crate) static POSTGRES: PostgresDialect = PostgresDialect;

/// The seed of `hashtextextended` for idempotency keys' advisory locks, keeping them apart
/// from other users of 64-bit advisory lock keys.
const IDEMPOTENCY_LOCK_SEED: i64 = 0x1de3_7e17;

impl crate::driver::Dialect for PostgresDialect {
    /// `SELECT pg_try_advisory_xact_lock(hashtextextended(key, seed))`: held until the
    /// transaction ends (so safe behind a transaction pooler), never waited for.
    fn try_lock_key(&self, key: &str) -> Option<sea_query::SelectStatement> {
        use sea_query::Func;
        let hash = Func::cust("hashtextextended")
            .arg(Expr::val(key))
            .arg(Expr::val(IDEMPOTENCY_LOCK_SEED));
        Some(
            sea_query::Query::select()
                .expr(Func::cust("pg_try_advisory_xact_lock").arg(hash))
                .to_owned(),
        )
    }

    /// `BEGIN ISOLATION LEVEL … READ ONLY; SET LOCAL …`: everything transaction-scoped,
    /// sent in one simple query (safe behind a transaction pooler).
    fn begin_statement(&self, options: &crate::config::TransactionOptions) -> Option<String> {
        if options.is_default() {
            return None;
        }
        let mut sql = String::from("BEGIN");
        if let Some(level) = options.isolation_level {
            sql.push_str(" ISOLATION LEVEL ");
            sql.push_str(level.sql());
        }
        if options.read_only {
            sql.push_str(" READ ONLY");
        }
        let millis = |d: std::time::Duration| d.as_millis().max(1);
        if let Some(timeout) = options.statement_timeout {
            sql.push_str(&format!(
                "; SET LOCAL statement_timeout = {}",
                millis(timeout)
            ));
        }
        if let Some(timeout) = options.lock_timeout {
            sql.push_str(&format!("; SET LOCAL lock_timeout = {}", millis(timeout)));
        }
        for (name, value) in options.settings() {
            // Names are checked (letters, digits, `_`, `.`); the value is a literal.
            sql.push_str(&format!(
                "; SET LOCAL {name} = '{}'",
                value.replace('\0', "").replace('\'', "''")
            ));
        }
        Some(sql)
    }

    fn classify(
        &self,
        error: &dyn sqlx::error::DatabaseError,
    ) -> Option<crate::error::kind::DbErrorKind> {
        use crate::error::kind::DbErrorKind;
        error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
        Some(match error.code().as_deref() {
            // serialization_failure, deadlock_detected
            Some("40001") | Some("40P01") => DbErrorKind::Serialization,
            // lock_not_available (lock_timeout, NOWAIT), query_canceled (statement_timeout)
            Some("55P03") | Some("57014") => DbErrorKind::Busy,
            // admin_shutdown, crash_shutdown, cannot_connect_now, and class 08 (connection)
            Some("57P01") | Some("57P02") | Some("57P03") => DbErrorKind::Connection,
            Some(code) if code.starts_with("08") => DbErrorKind::Connection,
            // insufficient_privilege (also a row-level security WITH CHECK),
            // read_only_sql_transaction
            Some("42501") | Some("25006") => DbErrorKind::PermissionDenied,
            Some(code) if code.starts_with("23") => DbErrorKind::CheckViolation,
            _ => DbErrorKind::Other,
        })
    }

    fn failed_statement_aborts_transaction(&self) -> bool {
        true
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
