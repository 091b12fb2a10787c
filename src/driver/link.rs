//! A session's connection, of whichever engine its bind uses, and the transaction on it.
//!
//! The session layer asks for what it needs — a reader or a writer, a transaction or not —
//! and runs statements; how each engine provides that is decided here and in the backend
//! modules (SQLite's write queue and `BEGIN` sent with the first statement, PostgreSQL
//! readers without `BEGIN`, MySQL's transactions).

use sea_query_sqlx::SqlxValues;
use sqlx::pool::PoolConnection;
use sqlx::{Database, SqlStr, Transaction};

use super::{BindPool, Writer};
use crate::config::Backend;
use crate::error::kind::DbErrorKind;
use crate::model::FromAnyRow;

#[cfg(feature = "mysql")]
use sqlx::mysql::MySql;
#[cfg(feature = "postgres")]
use sqlx::postgres::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::Sqlite;

/// A pooled connection of a server backend: in a transaction, or not (a PostgreSQL reader).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum Held<DB: Database> {
    Conn(PoolConnection<DB>),
    Tx(Transaction<'static, DB>),
}

// Readers without a transaction exist on PostgreSQL only.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
impl<DB: Database> Held<DB> {
    fn conn(&mut self) -> &mut DB::Connection {
        match self {
            Held::Conn(conn) => conn,
            Held::Tx(tx) => tx,
        }
    }

    fn in_tx(&self) -> bool {
        matches!(self, Held::Tx(_))
    }

    /// Begins a transaction on a connection that has none, with `statement` or a plain
    /// `BEGIN`.
    async fn begin(self, statement: Option<&str>) -> Result<Self, sqlx::Error> {
        match self {
            // On failure the connection goes back to the pool (or is closed if broken).
            Held::Conn(conn) => sqlx::Transaction::begin(conn, statement.map(begin_sql))
                .await
                .map(Held::Tx),
            tx => Ok(tx),
        }
    }

    async fn commit(self) -> Result<bool, sqlx::Error> {
        match self {
            Held::Conn(_) => Ok(false),
            Held::Tx(tx) => tx.commit().await.map(|()| true),
        }
    }

    async fn rollback(self) {
        // A failed ROLLBACK leaves the connection suspect: dropping the transaction queues
        // another rollback, and the pool closes the connection if its release ping fails.
        if let Held::Tx(tx) = self {
            let _ = tx.rollback().await;
        }
    }
}

/// The connection of a session, of one of the enabled backends.
#[allow(missing_debug_implementations, private_interfaces)]
pub enum Link {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(super::sqlite::SqliteLink),
    /// PostgreSQL, and whether statements may be prepared by name (not behind a
    /// transaction pooler).
    #[cfg(feature = "postgres")]
    Postgres(Held<Postgres>, bool),
    /// MySQL / MariaDB.
    #[cfg(feature = "mysql")]
    MySql(Held<MySql>),
}

/// What a session wants of the connection it opens or has.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) struct Intent {
    /// It is about to write (or began as a writer).
    pub(crate) write: bool,
    /// It needs a transaction whatever it runs (a savepoint, a raw connection).
    pub(crate) transaction: bool,
    /// SQLite: a reader's reads share one snapshot (`read_snapshot`).
    pub(crate) snapshot: bool,
}

/// Why a link could not be opened or upgraded.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// SQLite's write queue did not give the session its turn in time.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Queue(sqlx::Error),
    /// The database failed.
    Database(sqlx::Error),
}

/// A link just opened: whether the connection is fresh from the pool with nothing run on
/// it outside a transaction (a dead one may be retried), and whether `BEGIN` was sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opened {
    pub(crate) fresh: bool,
    pub(crate) began: bool,
}

/// Runs `$body` with `$conn` the concrete connection, `$sql` (a variable) the statement and
/// `$named` whether it may be prepared by name; on SQLite the pending `BEGIN` travels with
/// the statement. The bodies box sqlx's futures: they nest deeply, and every async fn
/// awaiting a statement (the repository's, the service's, an app's handler) would otherwise
/// carry that depth in its layout, past the default recursion limit in release builds.
macro_rules! on_conn {
    ($link:expr, |$conn:ident, $sql:ident, $named:ident| $body:expr) => {
        match $link {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(link) => {
                let ($sql, merged) = link.statement($sql);
                let $named = true;
                let result = {
                    let $conn = link.conn();
                    $body
                };
                link.settle(merged, result.as_ref().err()).await;
                result
            }
            #[cfg(feature = "postgres")]
            Link::Postgres(held, named) => {
                let $named = *named;
                let $conn = held.conn();
                $body
            }
            #[cfg(feature = "mysql")]
            Link::MySql(held) => {
                let $named = true;
                let $conn = held.conn();
                $body
            }
        }
    };
}

impl Link {
    /// Opens a connection of `pool` for `intent`:
    ///
    /// * SQLite: a writer waits its turn in the write queue and takes the write connection,
    ///   its `BEGIN IMMEDIATE` to go with its first statement; a reader takes a pooled
    ///   connection, its deferred `BEGIN` to go with its first statement (`snapshot`) or none.
    /// * PostgreSQL: `BEGIN` for a writer or a transaction; a reader runs without one.
    /// * MySQL: `BEGIN` (one `REPEATABLE READ` snapshot for readers too).
    ///
    /// `begin`: the dialect's statement for the session's transaction options, sent instead
    /// of a plain `BEGIN` (server backends).
    pub(crate) async fn open(
        pool: &BindPool,
        writer: &Writer,
        intent: Intent,
        begin: Option<&str>,
    ) -> Result<(Link, Opened), LinkError> {
        let _ = (writer, intent, begin);
        match pool {
            #[cfg(feature = "sqlite")]
            BindPool::Sqlite(pool) => {
                let writer = writer.sqlite().expect("a SQLite bind's writer");
                super::sqlite::open_link(pool, writer, intent)
                    .await
                    .map(|(link, opened)| (Link::Sqlite(link), opened))
            }
            #[cfg(feature = "postgres")]
            BindPool::Postgres(pool) => {
                let named = writer.named_statements();
                match intent.write || intent.transaction {
                    true => begin_on(pool, begin)
                        .await
                        .map(|tx| (Link::Postgres(Held::Tx(tx), named), began())),
                    false => pool
                        .acquire()
                        .await
                        .map(|conn| (Link::Postgres(Held::Conn(conn), named), fresh()))
                        .map_err(LinkError::Database),
                }
            }
            #[cfg(feature = "mysql")]
            BindPool::MySql(pool) => begin_on(pool, begin)
                .await
                .map(|tx| (Link::MySql(Held::Tx(tx)), began())),
        }
    }

    /// Makes the link fit for `intent`: a SQLite reader about to write takes its turn in the
    /// write queue; a SQLite reader without a transaction that needs one, and a PostgreSQL
    /// reader about to write, begin one. Returns the link (gone if the connection was lost)
    /// and whether `BEGIN` was sent.
    pub(crate) async fn upgrade(
        self,
        writer: &Writer,
        intent: Intent,
        begin: Option<&str>,
    ) -> Result<(Link, bool), (Option<Link>, LinkError)> {
        let _ = (writer, intent, begin);
        match self {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(mut link) => {
                let writer = writer.sqlite().expect("a SQLite bind's writer");
                match link.upgrade(writer, intent).await {
                    Ok(began) => Ok((Link::Sqlite(link), began)),
                    Err(e) => Err((Some(Link::Sqlite(link)), e)),
                }
            }
            #[cfg(feature = "postgres")]
            Link::Postgres(held, named)
                if !held.in_tx() && (intent.write || intent.transaction) =>
            {
                held.begin(begin)
                    .await
                    .map(|held| (Link::Postgres(held, named), true))
                    .map_err(|e| (None, LinkError::Database(e)))
            }
            #[allow(unreachable_patterns)]
            other => Ok((other, false)),
        }
    }

    /// Whether a transaction is open.
    pub(crate) fn in_tx(&self) -> bool {
        match self {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(link) => link.in_tx(),
            #[cfg(feature = "postgres")]
            Link::Postgres(held, _) => held.in_tx(),
            #[cfg(feature = "mysql")]
            Link::MySql(held) => held.in_tx(),
        }
    }

    /// SQLite: a reader without a transaction begins a deferred one with its next statement,
    /// so the reads that follow see one snapshot. Other backends need nothing here (MySQL
    /// readers are in one; PostgreSQL's `READ COMMITTED` gives each statement its own).
    pub(crate) fn begin_snapshot(&mut self) {
        #[cfg(feature = "sqlite")]
        #[allow(irrefutable_let_patterns)]
        if let Link::Sqlite(link) = self {
            link.begin_snapshot();
        }
    }

    /// A PostgreSQL reader outside a transaction behind a transaction pooler: its statements
    /// go as one simple query each, values rendered as literals (see
    /// [`super::postgres::inline`]). With the extended protocol a statement's parse and its
    /// execution are two round trips, which the pooler may send to two server connections.
    #[cfg(feature = "postgres")]
    fn inline_reader(&mut self) -> Option<&mut sqlx::PgConnection> {
        match self {
            Link::Postgres(Held::Conn(conn), false) => Some(&mut **conn),
            _ => None,
        }
    }

    /// Runs a statement; the rows it affected.
    pub(crate) async fn execute(
        &mut self,
        sql: SqlStr,
        values: SqlxValues,
    ) -> Result<u64, sqlx::Error> {
        #[cfg(feature = "postgres")]
        if let Some(conn) = self.inline_reader() {
            let sql = super::postgres::inline(sql.as_str(), values);
            let done = Box::pin(sqlx::raw_sql(sql).execute(conn)).await?;
            return Ok(done.rows_affected());
        }
        match self {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(link) => {
                let (sql, merged) = link.statement(sql);
                let result = match merged {
                    // `BEGIN …; <statement>`: SQLite's change count is not reset by `BEGIN`, so
                    // sqlx's sum would add the connection's previous write to this one's.
                    true => Box::pin(last_changes(link.conn(), sql, values)).await,
                    false => Box::pin(sqlx::query_with(sql, values).execute(link.conn()))
                        .await
                        .map(|done| done.rows_affected()),
                };
                link.settle(merged, result.as_ref().err()).await;
                result
            }
            #[allow(unreachable_patterns)]
            link => on_conn!(link, |conn, sql, named| {
                Box::pin(
                    sqlx::query_with(sql, values)
                        .persistent(named)
                        .execute(conn),
                )
                .await
                .map(|done| done.rows_affected())
            }),
        }
    }

    /// Runs a statement; every row, decoded.
    pub(crate) async fn fetch_all<T: FromAnyRow>(
        &mut self,
        sql: SqlStr,
        values: SqlxValues,
    ) -> Result<Vec<T>, sqlx::Error> {
        #[cfg(feature = "postgres")]
        if let Some(conn) = self.inline_reader() {
            let sql = super::postgres::inline(sql.as_str(), values);
            let rows = Box::pin(sqlx::raw_sql(sql).fetch_all(conn)).await?;
            return rows.iter().map(|row| T::from_row(row)).collect();
        }
        on_conn!(self, |conn, sql, named| {
            Box::pin(
                sqlx::query_as_with::<_, T, _>(sql, values)
                    .persistent(named)
                    .fetch_all(conn),
            )
            .await
        })
    }

    /// Runs a statement; its first row, decoded.
    pub(crate) async fn fetch_optional<T: FromAnyRow>(
        &mut self,
        sql: SqlStr,
        values: SqlxValues,
    ) -> Result<Option<T>, sqlx::Error> {
        #[cfg(feature = "postgres")]
        if let Some(conn) = self.inline_reader() {
            let sql = super::postgres::inline(sql.as_str(), values);
            let row = Box::pin(sqlx::raw_sql(sql).fetch_optional(conn)).await?;
            return row.as_ref().map(T::from_row).transpose();
        }
        on_conn!(self, |conn, sql, named| {
            Box::pin(
                sqlx::query_as_with::<_, T, _>(sql, values)
                    .persistent(named)
                    .fetch_optional(conn),
            )
            .await
        })
    }

    /// Runs a multi-row `INSERT` built by `build` (with or without `RETURNING` the key
    /// column, as the backend reads generated keys) and returns the `rows` keys in row order.
    pub(crate) async fn insert_keys(
        &mut self,
        build: impl FnOnce(bool) -> (SqlStr, SqlxValues),
        rows: usize,
    ) -> Result<Vec<i64>, sqlx::Error> {
        match self {
            // MySQL reads the first key of a consecutive run from the OK packet.
            #[cfg(feature = "mysql")]
            Link::MySql(held) => {
                let (sql, values) = build(false);
                let done = sqlx::query_with(sql, values).execute(held.conn()).await?;
                Ok((0..rows as i64)
                    .map(|i| done.last_insert_id() as i64 + i)
                    .collect())
            }
            #[allow(unreachable_patterns)]
            _ => {
                let _ = rows;
                let (sql, values) = build(true);
                let keys: Vec<(i64,)> = self.fetch_all(sql, values).await?;
                // Keys are assigned in row order; sort in case RETURNING is not.
                let mut keys: Vec<i64> = keys.into_iter().map(|(key,)| key).collect();
                keys.sort_unstable();
                Ok(keys)
            }
        }
    }

    /// Runs SQL without values or results (savepoints), in the open transaction.
    pub(crate) async fn raw(&mut self, sql: String) -> Result<(), sqlx::Error> {
        let sql = sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql));
        on_conn!(self, |conn, sql, _named| {
            sqlx::raw_sql(sql).execute(conn).await.map(drop)
        })
    }

    /// Commits the open transaction: `Ok(true)` if one was committed, `Ok(false)` if none
    /// was open. `check_aborted`: on PostgreSQL, make sure first that the transaction is
    /// not aborted (errors on a raw connection are invisible to the session, and `COMMIT`
    /// of an aborted transaction silently rolls back).
    pub(crate) async fn commit(self, check_aborted: bool) -> Result<bool, sqlx::Error> {
        let _ = check_aborted;
        match self {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(link) => link.commit().await,
            #[cfg(feature = "postgres")]
            Link::Postgres(Held::Tx(mut tx), _) if check_aborted => {
                match sqlx::raw_sql("SELECT 1").execute(&mut *tx).await {
                    Ok(_) => tx.commit().await.map(|()| true),
                    Err(e) => {
                        let _ = tx.rollback().await;
                        Err(e)
                    }
                }
            }
            #[cfg(feature = "postgres")]
            Link::Postgres(held, _) => held.commit().await,
            #[cfg(feature = "mysql")]
            Link::MySql(held) => held.commit().await,
        }
    }

    /// Rolls back the open transaction and waits for it.
    pub(crate) async fn rollback(self) {
        match self {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(link) => link.rollback().await,
            #[cfg(feature = "postgres")]
            Link::Postgres(held, _) => held.rollback().await,
            #[cfg(feature = "mysql")]
            Link::MySql(held) => held.rollback().await,
        }
    }
}

fn begin_sql(statement: &str) -> SqlStr {
    sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(statement.to_string()))
}

/// Begins a transaction on a connection of `pool`, with `statement` or a plain `BEGIN`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn begin_on<DB: Database>(
    pool: &sqlx::Pool<DB>,
    statement: Option<&str>,
) -> Result<Transaction<'static, DB>, LinkError> {
    let once = || async {
        match statement {
            Some(statement) => pool.begin_with(begin_sql(statement)).await,
            None => pool.begin().await,
        }
    };
    // A pooled connection that died while idle (no ping before acquire) fails its `BEGIN`;
    // the pool drops it; retry once on a fresh one.
    match once().await {
        Err(e) if stale_connection(&e) => {
            tracing::debug!(target: "rocket_alchemy", error = %e, "BEGIN on a dead connection; retrying");
            once().await.map_err(LinkError::Database)
        }
        other => other.map_err(LinkError::Database),
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn began() -> Opened {
    Opened {
        fresh: false,
        began: true,
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(super) fn fresh() -> Opened {
    Opened {
        fresh: true,
        began: false,
    }
}

/// Whether `error` says the connection itself is dead (a pooled connection that died while
/// idle), so the same work may be retried on another.
pub(crate) fn stale_connection(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
        || (matches!(error, sqlx::Error::Database(_))
            && DbErrorKind::of(error) == DbErrorKind::Connection)
}

/// A sqlx database a session can run on: `Sqlite`, `Postgres` or `MySql`.
pub trait SessionBackend: sqlx::Database + private::Sealed {
    /// The matching [`Backend`].
    const BACKEND: Backend;
}

pub(crate) mod private {
    /// Seals [`SessionBackend`](super::SessionBackend) and projects a link to its typed
    /// connection.
    pub trait Sealed {
        #[doc(hidden)]
        fn project(link: &mut super::Link) -> Option<&mut <Self as sqlx::Database>::Connection>
        where
            Self: sqlx::Database;
    }
}

/// Implements [`SessionBackend`] for one backend's sqlx database type.
macro_rules! session_backend {
    ($feature:literal, $db:ty, $variant:ident) => {
        #[cfg(feature = $feature)]
        impl private::Sealed for $db {
            fn project(link: &mut Link) -> Option<&mut <Self as sqlx::Database>::Connection> {
                #[allow(unreachable_patterns)]
                match link {
                    Link::$variant(held, ..) => Some(held.conn()),
                    _ => None,
                }
            }
        }
        #[cfg(feature = $feature)]
        impl SessionBackend for $db {
            const BACKEND: Backend = Backend::$variant;
        }
    };
}
session_backend!("sqlite", Sqlite, Sqlite);
session_backend!("postgres", Postgres, Postgres);
session_backend!("mysql", MySql, MySql);

/// The rows affected by the last statement of a multi-statement SQLite command.
#[cfg(feature = "sqlite")]
async fn last_changes(
    conn: &mut sqlx::SqliteConnection,
    sql: SqlStr,
    values: SqlxValues,
) -> Result<u64, sqlx::Error> {
    use rocket::futures::TryStreamExt;
    #[allow(deprecated)] // multi-statement commands are what SQLite sessions send
    let mut results = sqlx::query_with(sql, values).fetch_many(conn);
    let mut last = 0;
    while let Some(result) = results.try_next().await? {
        if let sqlx::Either::Left(done) = result {
            last = done.rows_affected();
        }
    }
    Ok(last)
}
