//! SQLite's dialect: what it does differently.

use sea_query::Expr;

use crate::driver::dialect::lower_like;
use crate::driver::TextPattern;
use crate::model::{Column, ColumnType, PrimaryKey};

/// SQLite's dialect.
pub(crate) struct SqliteDialect;

/// The one [`SqliteDialect`].
pub(crate) static SQLITE: SqliteDialect = SqliteDialect;

impl crate::driver::Dialect for SqliteDialect {
    /// Reads the schema: a file whose header or schema pages were overwritten fails here
    /// (`SELECT 1` alone touches no page).
    fn health_check(&self) -> &'static str {
        "SELECT count(*) FROM sqlite_master"
    }

    fn classify(
        &self,
        error: &dyn sqlx::error::DatabaseError,
    ) -> Option<crate::error::kind::DbErrorKind> {
        use crate::error::kind::DbErrorKind;
        error.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
        // Extended result codes: the primary code is the low byte.
        let code = error.code().and_then(|c| c.parse::<i32>().ok());
        Some(match code {
            // SQLITE_BUSY_SNAPSHOT: a read transaction tried to write after another
            // connection committed; it must start over.
            Some(517) => DbErrorKind::Serialization,
            // SQLITE_BUSY (and its other extended codes): the lock wait hit busy_timeout.
            Some(c) if c & 0xff == 5 => DbErrorKind::Busy,
            // SQLITE_LOCKED: a conflict inside one connection or shared cache.
            Some(c) if c & 0xff == 6 => DbErrorKind::Serialization,
            _ => DbErrorKind::Other,
        })
    }

    /// A constraint violation's message: `UNIQUE constraint failed: author.name` names the
    /// table and columns, never the values.
    fn safe_message(&self, error: &dyn sqlx::error::DatabaseError) -> Option<String> {
        use sqlx::error::ErrorKind;
        error.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
        match error.kind() {
            ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => Some(error.message().to_string()),
            _ => None,
        }
    }

    fn aborts_transaction(&self, _: &sqlx::Error, kind: crate::error::kind::DbErrorKind) -> bool {
        kind == crate::error::kind::DbErrorKind::Connection
    }

    fn column_type(&self, column: &Column) -> sea_query::ColumnType {
        let name = match column.ty {
            ColumnType::Bool => "BOOLEAN",
            ColumnType::SmallInt => "SMALLINT",
            ColumnType::Integer => "INTEGER",
            // A rowid alias must be declared exactly INTEGER.
            ColumnType::BigInt if column.primary_key == Some(PrimaryKey::AutoIncrement) => {
                "INTEGER"
            }
            ColumnType::BigInt => "BIGINT",
            ColumnType::Float => "REAL",
            ColumnType::Double => "DOUBLE",
            ColumnType::String(Some(n)) => {
                return sea_query::ColumnType::custom(format!("VARCHAR({n})"))
            }
            ColumnType::String(None) | ColumnType::Json => "TEXT",
            ColumnType::Bytes | ColumnType::Uuid => "BLOB",
            ColumnType::Date => "DATE",
            ColumnType::DateTimeUtc => "DATETIME",
        };
        sea_query::ColumnType::custom(name.to_string())
    }

    /// An `INTEGER PRIMARY KEY` is the rowid and numbers itself.
    fn declares_auto_increment(&self) -> bool {
        false
    }

    /// `AUTOINCREMENT`: a deleted row's number is never given again (without it SQLite
    /// reuses the highest one), as PostgreSQL's identity and MySQL's `AUTO_INCREMENT` do.
    fn inline_auto_increment_key(&self, constraint: &str) -> Option<String> {
        Some(format!(
            "CONSTRAINT \"{}\" PRIMARY KEY AUTOINCREMENT",
            constraint.replace('"', "\"\"")
        ))
    }

    fn parameter_limit(&self) -> usize {
        32_000
    }

    fn row_locks(&self) -> bool {
        false
    }

    fn count_in_second_statement(&self) -> bool {
        true
    }

    fn is_distinct(&self, a: Expr, b: Expr) -> Expr {
        Expr::cust_with_exprs("? IS NOT ?", [a, b])
    }

    /// `LIKE` ignores ASCII case on SQLite; `GLOB` is exact.
    fn text_match(&self, column: Expr, pattern: TextPattern<'_>, ignore_case: bool) -> Expr {
        match ignore_case {
            true => lower_like(column, pattern),
            false => Expr::cust_with_exprs("? GLOB ?", [column, Expr::val(pattern.glob())]),
        }
    }
}
