//! Sessions: a lazily begun transaction on one bind.
//!
//! A [`DbSession`] owns at most one open transaction. Nothing is sent to the database until
//! the first statement: then a connection is taken from the pool and `BEGIN` is sent
//! (`BEGIN IMMEDIATE` on SQLite, so concurrent writers queue on `busy_timeout` instead of
//! failing with "database is locked"). [`DbSession::commit`] and [`DbSession::rollback`] end
//! it; the next statement begins a new one.
//!
//! In a route you get the request's session through the [`Session`](crate::Session) guard,
//! which derefs to `DbSession`; outside requests, [`Alchemy::session`](crate::Alchemy::session)
//! gives an owned one (dropping it rolls back).
//!
//! Statements go through the session in one of two ways:
//!
//! * backend-neutral, as sea-query statements: [`DbSession::execute`],
//!   [`DbSession::fetch_all`], [`DbSession::fetch_optional`], [`DbSession::fetch_one`];
//! * raw sqlx on the typed connection: [`DbSession::sqlite`], [`DbSession::postgres`],
//!   [`DbSession::mysql`] (or [`DbSession::connection`] to match on the backend):
//!
//! ```
//! # #[cfg(feature = "sqlite")] mod inner {
//! use rocket_alchemy::{Session, SessionError};
//!
//! #[rocket::post("/visits")]
//! async fn visit(session: Session<'_>) -> Result<String, SessionError> {
//!     let mut conn = session.sqlite().await?;
//!     sqlx::query("INSERT INTO visit (at) VALUES (CURRENT_TIMESTAMP)").execute(&mut *conn).await?;
//!     let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visit").fetch_one(&mut *conn).await?;
//!     Ok(n.to_string())
//! }
//! # }
//! ```

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};
use rocket::Request;
use sea_query_sqlx::SqlxBinder;
use sqlx::{AssertSqlSafe, Transaction};

use crate::alchemy::{BindHandle, UnknownBind};
use crate::config::{Backend, CommitMode};
use crate::error::{DbErrorKind, ErrorBody};
use crate::model::FromAnyRow;
use crate::schema::SchemaError;

#[cfg(feature = "mysql")]
use sqlx::mysql::MySql;
#[cfg(feature = "postgres")]
use sqlx::postgres::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::Sqlite;

pub(crate) use private::Tx;

mod private {
    /// An open transaction of one of the enabled backends.
    #[allow(missing_debug_implementations)]
    pub enum Tx {
        #[cfg(feature = "sqlite")]
        Sqlite(sqlx::Transaction<'static, sqlx::sqlite::Sqlite>),
        #[cfg(feature = "postgres")]
        Postgres(sqlx::Transaction<'static, sqlx::postgres::Postgres>),
        #[cfg(feature = "mysql")]
        MySql(sqlx::Transaction<'static, sqlx::mysql::MySql>),
    }

    pub trait Sealed {
        fn project(tx: &mut Tx) -> Option<&mut sqlx::Transaction<'static, Self>>
        where
            Self: sqlx::Database;
    }
}

/// Runs `$body` with `$conn` the concrete connection and `$qb` the sea-query builder of the
/// transaction's backend.
macro_rules! dispatch {
    ($tx:expr, |$conn:ident, $qb:ident| $body:expr) => {
        match $tx {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => {
                let $conn: &mut sqlx::sqlite::SqliteConnection = &mut **tx;
                let $qb = sea_query::SqliteQueryBuilder;
                $body
            }
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => {
                let $conn: &mut sqlx::postgres::PgConnection = &mut **tx;
                let $qb = sea_query::PostgresQueryBuilder;
                $body
            }
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => {
                let $conn: &mut sqlx::mysql::MySqlConnection = &mut **tx;
                let $qb = sea_query::MysqlQueryBuilder;
                $body
            }
        }
    };
}

/// A sqlx database a session can run on: `Sqlite`, `Postgres` or `MySql`.
pub trait SessionBackend: sqlx::Database + private::Sealed {
    /// The matching [`Backend`].
    const BACKEND: Backend;
}

#[cfg(feature = "sqlite")]
impl private::Sealed for Sqlite {
    fn project(tx: &mut Tx) -> Option<&mut Transaction<'static, Self>> {
        #[allow(unreachable_patterns)]
        match tx {
            Tx::Sqlite(tx) => Some(tx),
            _ => None,
        }
    }
}
#[cfg(feature = "sqlite")]
impl SessionBackend for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
}
#[cfg(feature = "postgres")]
impl private::Sealed for Postgres {
    fn project(tx: &mut Tx) -> Option<&mut Transaction<'static, Self>> {
        #[allow(unreachable_patterns)]
        match tx {
            Tx::Postgres(tx) => Some(tx),
            _ => None,
        }
    }
}
#[cfg(feature = "postgres")]
impl SessionBackend for Postgres {
    const BACKEND: Backend = Backend::Postgres;
}
#[cfg(feature = "mysql")]
impl private::Sealed for MySql {
    fn project(tx: &mut Tx) -> Option<&mut Transaction<'static, Self>> {
        #[allow(unreachable_patterns)]
        match tx {
            Tx::MySql(tx) => Some(tx),
            _ => None,
        }
    }
}
#[cfg(feature = "mysql")]
impl SessionBackend for MySql {
    const BACKEND: Backend = Backend::MySql;
}

/// A failure of the session layer. As a [`Responder`] it answers with its [`status`] and a
/// JSON [`ErrorBody`] that carries no SQL or driver text; the full error goes to the log.
///
/// [`status`]: SessionError::status
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A bind key that is not configured.
    #[error(transparent)]
    UnknownBind(#[from] UnknownBind),
    /// The fairing is not attached.
    #[error("rocket_alchemy is not attached: add `.attach(Alchemy::fairing())` to the rocket")]
    NotAttached,
    /// The session is in use: a connection borrowed from it is still alive.
    #[error(
        "the session of bind `{bind}` is already in use: drop the connection borrowed from it \
         before using the session (or another guard of the same bind) again"
    )]
    Busy {
        /// The bind key.
        bind: String,
    },
    /// A typed connection of the wrong backend was asked for.
    #[error("bind `{bind}` is a {actual} database, not {requested}")]
    WrongBackend {
        /// The bind key.
        bind: String,
        /// The backend asked for.
        requested: Backend,
        /// The bind's backend.
        actual: Backend,
    },
    /// A statement (or BEGIN) failed.
    #[error("database error{}: {source}", bind_suffix(.bind))]
    Database {
        /// The bind key, when known.
        bind: Option<String>,
        /// The classified kind.
        kind: DbErrorKind,
        /// The sqlx error.
        #[source]
        source: sqlx::Error,
    },
    /// COMMIT failed; the transaction was rolled back.
    #[error("commit of bind `{bind}` failed and was rolled back: {source}")]
    Commit {
        /// The bind key.
        bind: String,
        /// The classified kind.
        kind: DbErrorKind,
        /// The sqlx error.
        #[source]
        source: sqlx::Error,
    },
    /// The transaction was already aborted by a failed statement, so it could not commit;
    /// it was rolled back.
    #[error(
        "the transaction of bind `{bind}` was aborted by an earlier failed statement ({kind:?}) \
         and could not commit; it was rolled back"
    )]
    Aborted {
        /// The bind key.
        bind: String,
        /// The kind of the failure that aborted it.
        kind: DbErrorKind,
    },
    /// The savepoint was already released or rolled back, or its transaction ended.
    #[error("savepoint of bind `{bind}` is no longer open")]
    SavepointClosed {
        /// The bind key.
        bind: String,
    },
    /// Creating the bind's tables (deferred `create_all` of a lazy bind) failed.
    #[error("create_all for bind `{bind}` failed: {source}")]
    Schema {
        /// The bind key.
        bind: String,
        /// The schema error.
        #[source]
        source: SchemaError,
    },
}

fn bind_suffix(bind: &Option<String>) -> String {
    bind.as_ref()
        .map(|b| format!(" on bind `{b}`"))
        .unwrap_or_default()
}

impl From<sqlx::Error> for SessionError {
    fn from(source: sqlx::Error) -> Self {
        SessionError::Database {
            bind: None,
            kind: DbErrorKind::of(&source),
            source,
        }
    }
}

impl SessionError {
    /// The database error kind, when this is a database failure.
    pub fn kind(&self) -> Option<DbErrorKind> {
        match self {
            SessionError::Database { kind, .. }
            | SessionError::Commit { kind, .. }
            | SessionError::Aborted { kind, .. } => Some(*kind),
            SessionError::Schema {
                source: SchemaError::Connection(e),
                ..
            } => Some(DbErrorKind::of(e)),
            _ => None,
        }
    }

    /// The HTTP status for this error: by [`DbErrorKind::status`] for database failures
    /// (409 conflicts, 503 unreachable database, …), 500 for programming errors.
    pub fn status(&self) -> Status {
        match self.kind() {
            Some(kind) => kind.status(),
            None => Status::InternalServerError,
        }
    }

    /// The client-facing message.
    pub fn detail(&self) -> &'static str {
        match self.kind() {
            Some(kind) => kind.detail(),
            None => DbErrorKind::Other.detail(),
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.status(), self.detail())
    }
}

impl<'r> Responder<'r, 'static> for SessionError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            tracing::error!(target: "rocket_alchemy", error = %self, "{} {}: {}", request.method(), request.uri(), status);
        } else {
            tracing::warn!(target: "rocket_alchemy", error = %self, "{} {}: {}", request.method(), request.uri(), status);
        }
        self.body().respond_to(request)
    }
}

/// Orders the first use of sessions across a request (commit order).
static BEGIN_SEQ: AtomicU64 = AtomicU64::new(1);

struct State {
    tx: Option<Tx>,
    /// Incremented at each BEGIN; savepoints remember theirs.
    generation: u64,
    /// Open savepoints.
    savepoints: u32,
    /// Set when a failed statement aborted the transaction: (savepoint depth, kind).
    aborted: Option<(u32, DbErrorKind)>,
    /// A raw PostgreSQL connection was handed out: errors on it are invisible to us, so
    /// COMMIT first checks that the transaction is not aborted.
    raw_pg: bool,
}

/// A session on one bind: at most one lazily begun transaction. See the [module docs](self).
pub struct DbSession {
    bind: Arc<BindHandle>,
    state: Mutex<State>,
    first_use: AtomicU64,
    /// Savepoints dropped without release or rollback: (generation, depth), rolled back
    /// before the next statement.
    dropped: SyncMutex<Vec<(u64, u32)>>,
    has_dropped: AtomicBool,
}

impl std::fmt::Debug for DbSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSession")
            .field("bind", &self.bind.key())
            .field("backend", &self.backend())
            .field("in_transaction", &self.in_transaction())
            .finish()
    }
}

impl DbSession {
    pub(crate) fn new(bind: Arc<BindHandle>) -> Self {
        DbSession {
            bind,
            state: Mutex::new(State {
                tx: None,
                generation: 0,
                savepoints: 0,
                aborted: None,
                raw_pg: false,
            }),
            first_use: AtomicU64::new(0),
            dropped: SyncMutex::new(Vec::new()),
            has_dropped: AtomicBool::new(false),
        }
    }

    /// The bind key.
    pub fn bind_key(&self) -> &str {
        self.bind.key()
    }

    /// Whether this session is on the default bind.
    pub fn is_default_bind(&self) -> bool {
        self.bind.is_default()
    }

    /// The database engine.
    pub fn backend(&self) -> Backend {
        self.bind.config().backend
    }

    /// The bind's commit mode (applied by the fairing to request sessions).
    pub fn commit_mode(&self) -> CommitMode {
        self.bind.config().commit_mode
    }

    /// Whether a transaction is open (a statement ran since the last commit or rollback).
    pub fn in_transaction(&self) -> bool {
        match self.state.try_lock() {
            Ok(state) => state.tx.is_some(),
            Err(_) => true,
        }
    }

    /// When this session first began a transaction (0: never). Orders commits.
    pub(crate) fn first_use(&self) -> u64 {
        self.first_use.load(Ordering::Relaxed)
    }

    fn busy(&self) -> SessionError {
        SessionError::Busy {
            bind: self.bind.key().to_string(),
        }
    }

    fn error(&self, state: &mut State, source: sqlx::Error) -> SessionError {
        let kind = DbErrorKind::of(&source);
        if aborts_transaction(self.backend(), &source, kind) && state.aborted.is_none() {
            state.aborted = Some((state.savepoints, kind));
        }
        SessionError::Database {
            bind: Some(self.bind.key().to_string()),
            kind,
            source,
        }
    }

    async fn begin(&self) -> Result<Tx, SessionError> {
        self.bind
            .ensure_schema()
            .await
            .map_err(|source| SessionError::Schema {
                bind: self.bind.key().to_string(),
                source,
            })?;
        let mut retried = false;
        loop {
            let result = match self.bind.pool() {
                #[cfg(feature = "sqlite")]
                crate::Pool::Sqlite(pool) => {
                    pool.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite)
                }
                #[cfg(feature = "postgres")]
                crate::Pool::Postgres(pool) => pool.begin().await.map(Tx::Postgres),
                #[cfg(feature = "mysql")]
                crate::Pool::MySql(pool) => pool.begin().await.map(Tx::MySql),
            };
            match result {
                Ok(tx) => {
                    self.log("BEGIN");
                    return Ok(tx);
                }
                // A pooled connection that died while idle (no ping before acquire): the
                // pool drops it after this failure; retry once on a fresh one.
                Err(e) if !retried && stale_connection(&e) => {
                    tracing::debug!(target: "rocket_alchemy", bind = self.bind.key(), error = %e, "BEGIN on a dead connection; retrying");
                    retried = true;
                }
                Err(source) => {
                    let kind = DbErrorKind::of(&source);
                    return Err(SessionError::Database {
                        bind: Some(self.bind.key().to_string()),
                        kind,
                        source,
                    });
                }
            }
        }
    }

    fn log(&self, what: &str) {
        if self.bind.config().echo {
            tracing::info!(target: "rocket_alchemy::session", bind = self.bind.key(), "{what}");
        } else {
            tracing::trace!(target: "rocket_alchemy::session", bind = self.bind.key(), "{what}");
        }
    }

    /// Locks the state, beginning a transaction if none is open.
    async fn active(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        if state.tx.is_none() {
            let tx = self.begin().await?;
            state.tx = Some(tx);
            state.generation += 1;
            state.savepoints = 0;
            state.aborted = None;
            state.raw_pg = false;
            let _ = self.first_use.compare_exchange(
                0,
                BEGIN_SEQ.fetch_add(1, Ordering::Relaxed),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        if self.has_dropped.load(Ordering::Acquire) {
            self.rollback_dropped_savepoints(&mut state).await?;
        }
        Ok(state)
    }

    /// The typed connection of the open transaction (beginning one if needed), for raw sqlx.
    /// Fails with [`SessionError::WrongBackend`] when the bind is another engine.
    ///
    /// While the returned guard lives, other uses of this session fail with
    /// [`SessionError::Busy`] rather than wait (which would deadlock the request).
    pub async fn conn<DB: SessionBackend>(
        &self,
    ) -> Result<SessionConnection<'_, DB>, SessionError> {
        if self.backend() != DB::BACKEND {
            return Err(SessionError::WrongBackend {
                bind: self.bind.key().to_string(),
                requested: DB::BACKEND,
                actual: self.backend(),
            });
        }
        let mut state = self.active().await?;
        if DB::BACKEND == Backend::Postgres {
            state.raw_pg = true;
        }
        let guard = MutexGuard::try_map(state, |s| s.tx.as_mut().and_then(DB::project))
            .map_err(|_| self.busy())?;
        Ok(SessionConnection { guard })
    }

    /// The SQLite connection of the open transaction. See [`DbSession::conn`].
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(&self) -> Result<SessionConnection<'_, Sqlite>, SessionError> {
        self.conn::<Sqlite>().await
    }

    /// The PostgreSQL connection of the open transaction. See [`DbSession::conn`].
    #[cfg(feature = "postgres")]
    pub async fn postgres(&self) -> Result<SessionConnection<'_, Postgres>, SessionError> {
        self.conn::<Postgres>().await
    }

    /// The MySQL / MariaDB connection of the open transaction. See [`DbSession::conn`].
    #[cfg(feature = "mysql")]
    pub async fn mysql(&self) -> Result<SessionConnection<'_, MySql>, SessionError> {
        self.conn::<MySql>().await
    }

    /// The connection of the open transaction, whatever the backend, to match on.
    pub async fn connection(&self) -> Result<Connection<'_>, SessionError> {
        Ok(match self.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => Connection::Sqlite(self.conn::<Sqlite>().await?),
            #[cfg(feature = "postgres")]
            Backend::Postgres => Connection::Postgres(self.conn::<Postgres>().await?),
            #[cfg(feature = "mysql")]
            Backend::MySql => Connection::MySql(self.conn::<MySql>().await?),
            #[allow(unreachable_patterns)]
            other => unreachable!("a {other} bind exists only with its feature"),
        })
    }

    /// Runs an `INSERT`, `UPDATE`, `DELETE` or `SELECT` built with sea-query, with values
    /// bound (never interpolated) for the bind's backend. Returns the rows affected.
    ///
    /// ```
    /// use rocket_alchemy::{sea_query::{Expr, ExprTrait, Query}, DbSession, SessionError};
    ///
    /// async fn rename(session: &DbSession, id: i64, name: &str) -> Result<u64, SessionError> {
    ///     let update = Query::update()
    ///         .table("tag")
    ///         .value("label", name)
    ///         .and_where(Expr::col("id").eq(id))
    ///         .to_owned();
    ///     session.execute(&update).await
    /// }
    /// ```
    pub async fn execute<S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<u64, SessionError> {
        let mut state = self.active().await?;
        let result = dispatch!(state.tx.as_mut().expect("active"), |conn, qb| {
            let (sql, values) = statement.build_sqlx(qb);
            sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        });
        result.map_err(|e| self.error(&mut state, e))
    }

    /// Runs a multi-row `INSERT` and returns the auto-increment keys it generated, in row
    /// order: `RETURNING` on PostgreSQL and SQLite, `LAST_INSERT_ID()` (the first of a
    /// consecutive run) on MySQL.
    pub(crate) async fn insert_returning_ids(
        &self,
        insert: &mut sea_query::InsertStatement,
        pk: &'static str,
        rows: usize,
    ) -> Result<Vec<i64>, SessionError> {
        let mut state = self.active().await?;
        let result: Result<Vec<i64>, sqlx::Error> = match state.tx.as_mut().expect("active") {
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => {
                let (sql, values) = insert.build_sqlx(sea_query::MysqlQueryBuilder);
                match sqlx::query_with(AssertSqlSafe(sql), values)
                    .execute(&mut **tx)
                    .await
                {
                    Ok(done) => Ok((0..rows as i64)
                        .map(|i| done.last_insert_id() as i64 + i)
                        .collect()),
                    Err(e) => Err(e),
                }
            }
            #[allow(unreachable_patterns)]
            other => {
                insert.returning_col(pk);
                dispatch!(other, |conn, qb| {
                    let (sql, values) = insert.build_sqlx(qb);
                    sqlx::query_as_with::<_, (i64,), _>(AssertSqlSafe(sql), values)
                        .fetch_all(conn)
                        .await
                        .map(|ids| {
                            // Keys are assigned in row order; sort in case RETURNING is not.
                            let mut ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
                            ids.sort_unstable();
                            ids
                        })
                })
            }
        };
        result.map_err(|e| self.error(&mut state, e))
    }

    /// Runs a sea-query statement and decodes every row.
    pub async fn fetch_all<T: FromAnyRow, S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<Vec<T>, SessionError> {
        let mut state = self.active().await?;
        let result = dispatch!(state.tx.as_mut().expect("active"), |conn, qb| {
            let (sql, values) = statement.build_sqlx(qb);
            sqlx::query_as_with::<_, T, _>(AssertSqlSafe(sql), values)
                .fetch_all(conn)
                .await
        });
        result.map_err(|e| self.error(&mut state, e))
    }

    /// Runs a sea-query statement and decodes the first row, if any.
    pub async fn fetch_optional<T: FromAnyRow, S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<Option<T>, SessionError> {
        let mut state = self.active().await?;
        let result = dispatch!(state.tx.as_mut().expect("active"), |conn, qb| {
            let (sql, values) = statement.build_sqlx(qb);
            sqlx::query_as_with::<_, T, _>(AssertSqlSafe(sql), values)
                .fetch_optional(conn)
                .await
        });
        result.map_err(|e| self.error(&mut state, e))
    }

    /// Runs a sea-query statement and decodes its first row; no row is a
    /// [`DbErrorKind::NotFound`] error (404).
    pub async fn fetch_one<T: FromAnyRow, S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<T, SessionError> {
        match self.fetch_optional(statement).await? {
            Some(row) => Ok(row),
            None => Err(SessionError::Database {
                bind: Some(self.bind.key().to_string()),
                kind: DbErrorKind::NotFound,
                source: sqlx::Error::RowNotFound,
            }),
        }
    }

    /// Commits the open transaction, if any. The next statement begins a new one.
    ///
    /// On failure the transaction is rolled back and its connection released.
    pub async fn commit(&self) -> Result<(), SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        self.commit_locked(&mut state).await
    }

    /// Rolls back the open transaction, if any.
    pub async fn rollback(&self) -> Result<(), SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        self.rollback_locked(&mut state).await
    }

    /// Ends the open transaction as the commit mode decided (the fairing's `on_response`).
    pub(crate) async fn finish(&self, commit: bool) -> Result<(), SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        match commit {
            true => self.commit_locked(&mut state).await,
            false => self.rollback_locked(&mut state).await,
        }
    }

    async fn commit_locked(&self, state: &mut State) -> Result<(), SessionError> {
        let Some(mut tx) = state.tx.take() else {
            return Ok(());
        };
        let aborted = state.aborted.take();
        let raw_pg = std::mem::take(&mut state.raw_pg);
        state.savepoints = 0;
        self.clear_dropped();
        let bind = || self.bind.key().to_string();
        if let Some((_, kind)) = aborted {
            rollback_tx(tx).await;
            self.log("ROLLBACK (aborted transaction)");
            return Err(SessionError::Aborted { bind: bind(), kind });
        }
        #[cfg(feature = "postgres")]
        if raw_pg {
            if let Tx::Postgres(pg) = &mut tx {
                // COMMIT of an aborted PostgreSQL transaction silently rolls back; make sure.
                if let Err(e) = sqlx::query("SELECT 1").execute(&mut **pg).await {
                    let kind = DbErrorKind::of(&e);
                    rollback_tx(tx).await;
                    return Err(SessionError::Commit {
                        bind: bind(),
                        kind,
                        source: e,
                    });
                }
            }
        }
        let _ = raw_pg;
        let result = match tx {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.commit().await,
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => tx.commit().await,
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => tx.commit().await,
        };
        match result {
            Ok(()) => {
                self.log("COMMIT");
                Ok(())
            }
            // sqlx queues a ROLLBACK on the dropped transaction; the pool runs it (or closes
            // a broken connection) when the connection comes back.
            Err(source) => Err(SessionError::Commit {
                bind: bind(),
                kind: DbErrorKind::of(&source),
                source,
            }),
        }
    }

    async fn rollback_locked(&self, state: &mut State) -> Result<(), SessionError> {
        let Some(tx) = state.tx.take() else {
            return Ok(());
        };
        state.aborted = None;
        state.raw_pg = false;
        state.savepoints = 0;
        self.clear_dropped();
        rollback_tx(tx).await;
        self.log("ROLLBACK");
        Ok(())
    }

    fn clear_dropped(&self) {
        if self.has_dropped.swap(false, Ordering::AcqRel) {
            self.dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    /// Opens a savepoint (beginning the transaction if needed): a nested transaction that
    /// can be rolled back alone. Dropping it without [`Savepoint::release`] rolls it back.
    ///
    /// ```
    /// use rocket_alchemy::{DbSession, SessionError};
    ///
    /// async fn try_optional_step(session: &DbSession) -> Result<(), SessionError> {
    ///     let savepoint = session.savepoint().await?;
    ///     // ... statements through `session` ...
    ///     savepoint.rollback().await?; // undoes only what ran since the savepoint
    ///     Ok(())
    /// }
    /// ```
    pub async fn savepoint(&self) -> Result<Savepoint<'_>, SessionError> {
        let mut state = self.active().await?;
        let depth = state.savepoints + 1;
        let sql = format!("SAVEPOINT ra_sp_{depth}");
        self.raw(&mut state, sql).await?;
        state.savepoints = depth;
        Ok(Savepoint {
            session: self,
            generation: state.generation,
            depth,
            open: true,
        })
    }

    async fn raw(&self, state: &mut State, sql: String) -> Result<(), SessionError> {
        let result = dispatch!(state.tx.as_mut().expect("active"), |conn, _qb| {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(conn)
                .await
                .map(drop)
        });
        result.map_err(|e| self.error(state, e))
    }

    async fn end_savepoint(
        &self,
        generation: u64,
        depth: u32,
        rollback: bool,
    ) -> Result<(), SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        if state.tx.is_none() || state.generation != generation || state.savepoints < depth {
            return Err(SessionError::SavepointClosed {
                bind: self.bind.key().to_string(),
            });
        }
        self.end_savepoint_locked(&mut state, depth, rollback).await
    }

    async fn end_savepoint_locked(
        &self,
        state: &mut State,
        depth: u32,
        rollback: bool,
    ) -> Result<(), SessionError> {
        if rollback {
            self.raw(state, format!("ROLLBACK TO SAVEPOINT ra_sp_{depth}"))
                .await?;
            // PostgreSQL: rolling back past the failure clears the aborted state.
            if matches!(state.aborted, Some((at, _)) if at >= depth && self.backend() != Backend::MySql)
            {
                state.aborted = None;
            }
        }
        self.raw(state, format!("RELEASE SAVEPOINT ra_sp_{depth}"))
            .await?;
        state.savepoints = depth - 1;
        Ok(())
    }

    async fn rollback_dropped_savepoints(&self, state: &mut State) -> Result<(), SessionError> {
        let mut dropped = {
            let mut list = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
            self.has_dropped.store(false, Ordering::Release);
            std::mem::take(&mut *list)
        };
        dropped.sort_by_key(|&(_, depth)| std::cmp::Reverse(depth));
        for (generation, depth) in dropped {
            if generation == state.generation && depth <= state.savepoints {
                self.end_savepoint_locked(state, depth, true).await?;
            }
        }
        Ok(())
    }
}

async fn rollback_tx(tx: Tx) {
    // A failed ROLLBACK leaves the connection suspect: dropping the transaction queues
    // another rollback, and the pool closes the connection if its release ping fails.
    let _ = match tx {
        #[cfg(feature = "sqlite")]
        Tx::Sqlite(tx) => tx.rollback().await,
        #[cfg(feature = "postgres")]
        Tx::Postgres(tx) => tx.rollback().await,
        #[cfg(feature = "mysql")]
        Tx::MySql(tx) => tx.rollback().await,
    };
}

/// Whether `error` leaves the server-side transaction unusable (so COMMIT would not commit).
fn aborts_transaction(backend: Backend, error: &sqlx::Error, kind: DbErrorKind) -> bool {
    if kind == DbErrorKind::Connection {
        return true;
    }
    match backend {
        // Any error aborts a PostgreSQL transaction until ROLLBACK (TO SAVEPOINT).
        Backend::Postgres => matches!(error, sqlx::Error::Database(_)),
        // InnoDB rolls the whole transaction back on a deadlock.
        Backend::MySql => {
            #[cfg(feature = "mysql")]
            if let sqlx::Error::Database(db) = error {
                if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    return my.number() == 1213;
                }
            }
            false
        }
        Backend::Sqlite => false,
    }
}

fn stale_connection(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
        || (matches!(error, sqlx::Error::Database(_))
            && DbErrorKind::of(error) == DbErrorKind::Connection)
}

/// A savepoint inside a session's transaction. See [`DbSession::savepoint`].
#[must_use = "a savepoint dropped without `release` is rolled back"]
pub struct Savepoint<'s> {
    session: &'s DbSession,
    generation: u64,
    depth: u32,
    open: bool,
}

impl std::fmt::Debug for Savepoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Savepoint")
            .field("depth", &self.depth)
            .field("open", &self.open)
            .finish()
    }
}

impl Savepoint<'_> {
    /// Keeps what ran since the savepoint (part of the enclosing transaction).
    pub async fn release(mut self) -> Result<(), SessionError> {
        self.open = false;
        self.session
            .end_savepoint(self.generation, self.depth, false)
            .await
    }

    /// Undoes what ran since the savepoint; the enclosing transaction goes on.
    pub async fn rollback(mut self) -> Result<(), SessionError> {
        self.open = false;
        self.session
            .end_savepoint(self.generation, self.depth, true)
            .await
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            let mut list = self
                .session
                .dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            list.push((self.generation, self.depth));
            self.session.has_dropped.store(true, Ordering::Release);
        }
    }
}

/// The connection of a session's open transaction, typed by backend. Derefs to the sqlx
/// connection (`SqliteConnection`, `PgConnection`, `MySqlConnection`), so `&mut *conn` is an
/// sqlx executor.
pub struct SessionConnection<'s, DB: SessionBackend> {
    guard: MappedMutexGuard<'s, Transaction<'static, DB>>,
}

impl<DB: SessionBackend> std::fmt::Debug for SessionConnection<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConnection")
            .field("backend", &DB::BACKEND)
            .finish()
    }
}

impl<DB: SessionBackend> Deref for SessionConnection<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.guard
    }
}

impl<DB: SessionBackend> DerefMut for SessionConnection<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.guard
    }
}

/// A session's connection of whichever backend the bind uses.
#[derive(Debug)]
#[non_exhaustive]
pub enum Connection<'s> {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(SessionConnection<'s, Sqlite>),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(SessionConnection<'s, Postgres>),
    /// MySQL / MariaDB.
    #[cfg(feature = "mysql")]
    MySql(SessionConnection<'s, MySql>),
}
