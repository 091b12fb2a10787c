//! The facts that differ between engines, behind one interface: [`Dialect`], one
//! implementation per backend module. [`Backend::dialect`] is the only place that picks one.

use sea_query::{Expr, SchemaBuilder};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::text::TextPattern;
use crate::config::Backend;
use crate::error::kind::DbErrorKind;
use crate::model::Column;

/// What a backend does differently. Implemented by each backend module; reached through
/// [`Backend::dialect`].
pub(crate) trait Dialect: Send + Sync + 'static {
    /// Classifies a database error of this backend by its code (SQLSTATE, error number,
    /// result code), or `None` when the error is not this backend's.
    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> Option<DbErrorKind>;

    /// Whether `error` leaves the transaction unusable, so that `COMMIT` would not commit.
    fn aborts_transaction(&self, error: &sqlx::Error, kind: DbErrorKind) -> bool;

    /// Whether any failed statement (a constraint violation included) leaves the transaction
    /// unusable until a rollback: work that wants to go on after such a failure takes a
    /// savepoint first on such a backend.
    fn failed_statement_aborts_transaction(&self) -> bool {
        false
    }

    /// Whether `ROLLBACK TO SAVEPOINT` past a failure makes the transaction usable again.
    fn savepoint_rollback_clears_abort(&self) -> bool {
        true
    }

    /// The database's own message of `error` when this backend's messages for it never
    /// quote values (for the log); `None` otherwise or when `error` is not this backend's.
    fn safe_message(&self, error: &dyn sqlx::error::DatabaseError) -> Option<String> {
        let _ = error;
        None
    }

    // ---- types and DDL ----

    /// The SQL type of `column`, as `create_all` writes it.
    fn column_type(&self, column: &Column) -> sea_query::ColumnType;

    /// Whether an auto-increment key is declared `AUTO_INCREMENT`/identity (SQLite: an
    /// `INTEGER PRIMARY KEY` numbers itself).
    fn declares_auto_increment(&self) -> bool {
        true
    }

    /// The column constraint declaring an auto-increment primary key named `constraint` on
    /// its column, for a backend where only a column constraint can promise that numbers are
    /// never reused (SQLite's `AUTOINCREMENT`); `None`: a table-level primary key.
    fn inline_auto_increment_key(&self, constraint: &str) -> Option<String> {
        let _ = constraint;
        None
    }

    /// The default of audit timestamp columns.
    fn now(&self) -> &'static str {
        "CURRENT_TIMESTAMP"
    }

    /// Whether indexes are declared inside `CREATE TABLE` (MySQL, which has no `CREATE
    /// INDEX IF NOT EXISTS`) rather than as separate statements.
    fn indexes_in_create_table(&self) -> bool {
        false
    }

    // ---- statements ----

    /// The most bind parameters one statement may carry, with a margin.
    fn parameter_limit(&self) -> usize {
        65_000
    }

    /// Whether `SELECT … FOR UPDATE` locks rows (SQLite locks whole databases: a session
    /// that would lock rows becomes a writer instead).
    fn row_locks(&self) -> bool {
        true
    }

    /// Whether `INSERT … RETURNING` gives back what was inserted (MySQL reads generated keys
    /// from the OK packet and rows back by their keys).
    fn insert_returning(&self) -> bool {
        true
    }

    /// Whether a list's total is best counted by a second statement in the page's read
    /// transaction (SQLite: there a statement is cheap and window functions are not) rather
    /// than in the page's statement.
    fn count_in_second_statement(&self) -> bool {
        false
    }

    /// In an upsert's update clause, the incoming value of `column`.
    fn upsert_incoming(&self, column: &'static str) -> Expr {
        Expr::col(("excluded", column))
    }

    /// `a` and `b` differ, NULLs compared as values.
    fn is_distinct(&self, a: Expr, b: Expr) -> Expr;

    /// The statement that moves an auto-increment key's generator past the keys rows were
    /// inserted with explicitly (fixtures), if the backend needs one.
    fn after_explicit_keys(&self, table: &str, column: &str) -> Option<String> {
        let _ = (table, column);
        None
    }

    /// `column` matches `pattern`, ignoring case or not, the same way on every backend (a
    /// backend's collation must not decide).
    fn text_match(&self, column: Expr, pattern: TextPattern<'_>, ignore_case: bool) -> Expr;

    /// The statement that begins a transaction with `options`, in one round trip; `None`
    /// for a plain `BEGIN` (the default options, or an engine with nothing to set).
    fn begin_statement(&self, options: &crate::config::TransactionOptions) -> Option<String> {
        let _ = options;
        None
    }

    /// A cheap read that fails when the database does not answer or cannot be read
    /// (`health()`).
    fn health_check(&self) -> &'static str {
        "SELECT 1"
    }

    // ---- idempotency keys ----

    /// A read taking a transaction-scoped lock on the idempotency key `key` without
    /// waiting, returning whether it got it (one boolean column): a request whose key an
    /// in-flight request holds is told at once. `None` where writers are serialized anyway
    /// (SQLite) or a lock wait is cut short instead ([`Dialect::no_lock_wait`]).
    fn try_lock_key(&self, key: &str) -> Option<sea_query::SelectStatement> {
        let _ = key;
        None
    }

    /// Statements that make the connection's row-lock waits fail at once, and that restore
    /// them (given the bind's `lock_timeout`), around an idempotency claim: a claim blocked
    /// by an in-flight request then fails with a lock-wait timeout ([`DbErrorKind::Busy`]).
    fn no_lock_wait(&self, lock_timeout: Option<std::time::Duration>) -> Option<(String, String)> {
        let _ = lock_timeout;
        None
    }
}

/// A DDL statement sea-query can build for any backend.
pub(crate) trait SchemaStatement {
    /// The SQL for `builder`'s backend.
    fn build_for<B: SchemaBuilder>(&self, builder: B) -> String;
}

macro_rules! schema_statement {
    ($($statement:ty),*) => {$(
        impl SchemaStatement for $statement {
            fn build_for<B: SchemaBuilder>(&self, builder: B) -> String {
                self.build(builder)
            }
        }
    )*};
}

schema_statement!(
    sea_query::TableCreateStatement,
    sea_query::IndexCreateStatement,
    sea_query::TableDropStatement,
    sea_query::TableAlterStatement,
    sea_query::IndexDropStatement,
    sea_query::ForeignKeyCreateStatement,
    sea_query::ForeignKeyDropStatement
);

/// The SQL of a DDL statement for `backend`.
pub(crate) fn build_schema<S: SchemaStatement>(backend: Backend, statement: &S) -> String {
    match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => statement.build_for(sea_query::SqliteQueryBuilder),
        #[cfg(feature = "postgres")]
        Backend::Postgres => statement.build_for(sea_query::PostgresQueryBuilder),
        #[cfg(feature = "mysql")]
        Backend::MySql => statement.build_for(sea_query::MysqlQueryBuilder),
        #[allow(unreachable_patterns)]
        other => unreachable!("the `{other}` feature of rocket_alchemy is disabled"),
    }
}

/// `LOWER(column) LIKE lower(pattern)`: case-insensitive matching where the backend has
/// no `ILIKE` (SQLite lowers ASCII letters only).
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) fn lower_like(column: Expr, pattern: TextPattern<'_>) -> Expr {
    use sea_query::{ExprTrait, Func, LikeExpr};
    Func::lower(column).like(LikeExpr::new(pattern.like().to_lowercase()).escape('\\'))
}

/// Column types every server backend writes alike (SQLite declares its own).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn common_column_type(column: &Column) -> sea_query::ColumnType {
    use crate::model::ColumnType;
    use sea_query::ColumnType as T;
    match column.ty {
        ColumnType::Bool => T::Boolean,
        ColumnType::SmallInt => T::SmallInteger,
        ColumnType::Integer => T::Integer,
        ColumnType::BigInt => T::BigInteger,
        ColumnType::Float => T::Float,
        ColumnType::Double => T::Double,
        ColumnType::String(Some(n)) => T::string(Some(n)),
        ColumnType::String(None) => T::Text,
        ColumnType::Bytes => T::Blob,
        ColumnType::Uuid => T::Uuid,
        ColumnType::Date => T::Date,
        ColumnType::DateTimeUtc => T::custom("datetime(6)"),
        ColumnType::Json => T::Json,
    }
}

impl Backend {
    /// The dialect of this backend. Panics for a backend whose feature is disabled: no bind
    /// of it can exist (configuration refuses it).
    pub(crate) fn dialect(self) -> &'static dyn Dialect {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => &super::sqlite::SQLITE,
            #[cfg(feature = "postgres")]
            Backend::Postgres => &super::postgres::POSTGRES,
            #[cfg(feature = "mysql")]
            Backend::MySql => &super::mysql::MYSQL,
            #[allow(unreachable_patterns)]
            other => unreachable!("the `{other}` feature of rocket_alchemy is disabled"),
        }
    }
}

/// The SQL and values of a sea-query statement for `backend`.
pub(crate) fn build<S: SqlxBinder + ?Sized>(
    backend: Backend,
    statement: &S,
) -> (String, SqlxValues) {
    match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => statement.build_sqlx(sea_query::SqliteQueryBuilder),
        #[cfg(feature = "postgres")]
        Backend::Postgres => statement.build_sqlx(sea_query::PostgresQueryBuilder),
        #[cfg(feature = "mysql")]
        Backend::MySql => statement.build_sqlx(sea_query::MysqlQueryBuilder),
        #[allow(unreachable_patterns)]
        other => unreachable!("the `{other}` feature of rocket_alchemy is disabled"),
    }
}

impl DbErrorKind {
    /// Why `error` happened, for the log: its kind, the constraint, table and code the
    /// database names, and SQLite's constraint message (which names columns, never values).
    /// No values, no SQL: a MySQL message quotes the duplicate value, so it is left out.
    pub(crate) fn reason(error: &sqlx::Error) -> String {
        let mut out = format!("{:?}", DbErrorKind::of(error));
        if let sqlx::Error::Database(db) = error {
            if let Some(constraint) = db.constraint() {
                out.push_str(&format!(" on constraint `{constraint}`"));
            }
            if let Some(table) = db.table() {
                out.push_str(&format!(" of table `{table}`"));
            }
            if let Some(code) = db.code() {
                out.push_str(&format!(" (code {code})"));
            }
            let safe = [Backend::Sqlite, Backend::Postgres, Backend::MySql]
                .into_iter()
                .filter(|backend| backend.is_enabled())
                .find_map(|backend| backend.dialect().safe_message(db.as_ref()));
            if let Some(message) = safe {
                out.push_str(&format!(": {message}"));
            }
        }
        out
    }

    /// Classifies a sqlx error: by sqlx's kind for constraint violations, by each backend's
    /// codes otherwise — never by message text.
    ///
    /// ```
    /// use rocket_alchemy::DbErrorKind;
    ///
    /// assert_eq!(DbErrorKind::of(&sqlx::Error::RowNotFound), DbErrorKind::NotFound);
    /// assert_eq!(DbErrorKind::of(&sqlx::Error::PoolTimedOut), DbErrorKind::Connection);
    /// ```
    pub fn of(error: &sqlx::Error) -> DbErrorKind {
        use sqlx::error::ErrorKind;
        match error {
            sqlx::Error::RowNotFound => DbErrorKind::NotFound,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => DbErrorKind::Connection,
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => DbErrorKind::UniqueViolation,
                ErrorKind::ForeignKeyViolation => DbErrorKind::ForeignKeyViolation,
                ErrorKind::NotNullViolation => DbErrorKind::NotNullViolation,
                ErrorKind::CheckViolation | ErrorKind::ExclusionViolation => {
                    DbErrorKind::CheckViolation
                }
                _ => [Backend::Sqlite, Backend::Postgres, Backend::MySql]
                    .into_iter()
                    .filter(|backend| backend.is_enabled())
                    .find_map(|backend| backend.dialect().classify(db.as_ref()))
                    .unwrap_or(DbErrorKind::Other),
            },
            _ => DbErrorKind::Other,
        }
    }
}
