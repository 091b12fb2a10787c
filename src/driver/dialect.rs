//! The facts that differ between engines, behind one interface: [`Dialect`], one
//! implementation per backend module. [`Backend::dialect`] is the only place that picks one.

use sea_query_sqlx::{SqlxBinder, SqlxValues};

use crate::config::Backend;
use crate::error::DbErrorKind;

/// What a backend does differently. Implemented by each backend module; reached through
/// [`Backend::dialect`].
pub(crate) trait Dialect: Send + Sync + 'static {
    /// Classifies a database error of this backend by its code (SQLSTATE, error number,
    /// result code), or `None` when the error is not this backend's.
    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> Option<DbErrorKind>;

    /// Whether `error` leaves the transaction unusable, so that `COMMIT` would not commit.
    fn aborts_transaction(&self, error: &sqlx::Error, kind: DbErrorKind) -> bool;

    /// Whether `ROLLBACK TO SAVEPOINT` past a failure makes the transaction usable again.
    fn savepoint_rollback_clears_abort(&self) -> bool {
        true
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
