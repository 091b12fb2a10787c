//! Sessions: a lazily begun transaction on one bind.
//!
//! A [`DbSession`] owns at most one pooled connection and transaction. Nothing is sent to
//! the database until the first statement: then a connection is taken from the pool and the
//! transaction begins as the session's [`Access`] and the statement require (see
//! [`crate::access`]: SQLite readers in a deferred `BEGIN`, writers in the write queue with
//! `BEGIN IMMEDIATE`; PostgreSQL readers without `BEGIN` until their first write).
//! [`DbSession::commit`] and [`DbSession::rollback`] end it; the next statement begins a new
//! one.
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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};
use rocket::Request;
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use sqlx::{AssertSqlSafe, SqlSafeStr, Transaction};

use crate::access::{need_of, Access, Need};
use crate::alchemy::{BindHandle, UnknownBind};
use crate::backend::Pool;
use crate::config::{Backend, CommitMode};
use crate::error::{DbErrorKind, ErrorBody};
use crate::model::FromAnyRow;
use crate::prepared::{Prepared, StatementKey};
use crate::schema::SchemaError;
#[cfg(feature = "sqlite")]
use crate::sqlite_link::SqliteLink;

#[cfg(feature = "mysql")]
use sqlx::mysql::MySql;
#[cfg(feature = "postgres")]
use sqlx::postgres::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::Sqlite;

pub(crate) use private::Link;

mod private {
    use sqlx::pool::PoolConnection;
    use sqlx::{Database, Transaction};

    /// A session's pooled connection: in a transaction, or not (a PostgreSQL reader).
    #[allow(missing_debug_implementations)]
    pub enum Held<DB: Database> {
        Conn(PoolConnection<DB>),
        Tx(Transaction<'static, DB>),
    }

    impl<DB: Database> Held<DB> {
        pub fn conn(&mut self) -> &mut DB::Connection {
            match self {
                Held::Conn(conn) => conn,
                Held::Tx(tx) => tx,
            }
        }

        pub fn in_tx(&self) -> bool {
            matches!(self, Held::Tx(_))
        }
    }

    /// The connection of a session, of one of the enabled backends.
    #[allow(missing_debug_implementations)]
    pub enum Link {
        #[cfg(feature = "sqlite")]
        Sqlite(crate::sqlite_link::SqliteLink),
        #[cfg(feature = "postgres")]
        Postgres(Held<sqlx::postgres::Postgres>),
        #[cfg(feature = "mysql")]
        MySql(Held<sqlx::mysql::MySql>),
    }

    impl Link {
        pub fn in_tx(&self) -> bool {
            match self {
                #[cfg(feature = "sqlite")]
                Link::Sqlite(held) => held.in_tx(),
                #[cfg(feature = "postgres")]
                Link::Postgres(held) => held.in_tx(),
                #[cfg(feature = "mysql")]
                Link::MySql(held) => held.in_tx(),
            }
        }
    }

    pub trait Sealed {
        fn project(link: &mut Link) -> Option<&mut <Self as Database>::Connection>
        where
            Self: Database;
    }
}

use private::Held;

/// Runs `$body` with `$conn` the concrete connection and `$qb` the sea-query builder of the
/// link's backend.
macro_rules! dispatch {
    ($link:expr, |$conn:ident, $qb:ident| $body:expr) => {
        match $link {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(held) => {
                let $conn: &mut sqlx::sqlite::SqliteConnection = held.conn();
                let $qb = sea_query::SqliteQueryBuilder;
                $body
            }
            #[cfg(feature = "postgres")]
            Link::Postgres(held) => {
                let $conn: &mut sqlx::postgres::PgConnection = held.conn();
                let $qb = sea_query::PostgresQueryBuilder;
                $body
            }
            #[cfg(feature = "mysql")]
            Link::MySql(held) => {
                let $conn: &mut sqlx::mysql::MySqlConnection = held.conn();
                let $qb = sea_query::MysqlQueryBuilder;
                $body
            }
        }
    };
}

/// Runs a statement on the session: `$make` gives its SQL, values and [`Need`] (it is called
/// again for a retry); the session is opened or upgraded for that need, then `$body` runs
/// with `$conn` the connection and `$sql`/`$values` the statement. A read that is the first
/// statement on a connection just taken from the pool outside a transaction is retried once
/// on another connection when the first one turns out dead (the pool does not ping before
/// handing one out).
macro_rules! run {
    ($session:expr, $make:expr, |$conn:ident, $sql:ident, $values:ident| $body:expr) => {{
        let session = $session;
        let make = $make;
        let mut retried = false;
        loop {
            let (sql, $values, need) = make();
            let mut state = session.active(need).await?;
            let fresh = std::mem::take(&mut state.fresh);
            let result = match state.link.as_mut().expect("active") {
                // SQLite: the pending BEGIN travels with the statement.
                #[cfg(feature = "sqlite")]
                Link::Sqlite(link) => {
                    let ($sql, merged) = link.statement(sql);
                    let result = {
                        let $conn = link.conn();
                        $body
                    };
                    link.settle(merged, result.as_ref().err()).await;
                    result
                }
                #[allow(unreachable_patterns)]
                other => {
                    let $sql = sql;
                    dispatch!(other, |$conn, _qb| $body)
                }
            };
            match result {
                Err(e) if fresh && !retried && !state.in_tx() && stale_connection(&e) => {
                    tracing::debug!(target: "rocket_alchemy", bind = session.bind.key(), error = %e, "read on a dead connection; retrying");
                    retried = true;
                    state.link = None;
                }
                other => break other.map_err(|e| session.error(&mut state, e)),
            }
        }
    }};
}

/// The SQL of a sea-query statement for `session`'s backend, with its values and need.
macro_rules! built {
    ($session:expr, $statement:expr) => {
        || {
            let (sql, values) = $session.build($statement);
            let need = need_of(&sql);
            (AssertSqlSafe(sql).into_sql_str(), values, need)
        }
    };
}

/// A prepared statement's SQL (shared) with `values`.
macro_rules! shared {
    ($prepared:expr, $values:expr) => {{
        let prepared = $prepared;
        let values = $values;
        move || {
            (
                AssertSqlSafe(prepared.sql.clone()).into_sql_str(),
                SqlxValues(values.clone()),
                prepared.need,
            )
        }
    }};
}

/// A sqlx database a session can run on: `Sqlite`, `Postgres` or `MySql`.
pub trait SessionBackend: sqlx::Database + private::Sealed {
    /// The matching [`Backend`].
    const BACKEND: Backend;
}

/// Implements [`SessionBackend`] for one backend's sqlx database type.
macro_rules! session_backend {
    ($feature:literal, $db:ty, $variant:ident) => {
        #[cfg(feature = $feature)]
        impl private::Sealed for $db {
            fn project(link: &mut Link) -> Option<&mut <Self as sqlx::Database>::Connection> {
                #[allow(unreachable_patterns)]
                match link {
                    Link::$variant(held) => Some(held.conn()),
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

    /// The JSON body for this error (with `Retry-After` when a retry may succeed).
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.status(), self.detail())
            .retry_if(self.kind().is_some_and(DbErrorKind::is_transient))
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
    /// The session's connection, once a statement ran.
    link: Option<Link>,
    /// The link was just taken from the pool and no statement ran on it yet.
    fresh: bool,
    /// Incremented at each BEGIN; savepoints remember theirs.
    generation: u64,
    /// Open savepoints.
    savepoints: u32,
    /// Set when a failed statement aborted the transaction: (savepoint depth, kind).
    aborted: Option<(u32, DbErrorKind)>,
    /// A raw PostgreSQL connection was handed out: errors on it are invisible to us, so
    /// COMMIT first checks that the transaction is not aborted.
    raw_pg: bool,
    /// A write ran (or may have: a raw connection was handed out). A transaction that only
    /// read is ended by dropping it: sqlx queues its rollback and returns the connection in
    /// the background, so the response waits for no `COMMIT`.
    wrote: bool,
}

impl State {
    fn in_tx(&self) -> bool {
        self.link.as_ref().is_some_and(Link::in_tx)
    }

    /// Forgets the link and what belonged to its transaction (the link's drop rolls back
    /// and returns the connection; the permit goes after it).
    fn reset(&mut self) -> Option<Link> {
        self.savepoints = 0;
        self.aborted = None;
        self.raw_pg = false;
        self.wrote = false;
        self.fresh = false;
        self.link.take()
    }
}

/// A session on one bind: at most one lazily opened connection and transaction. See the
/// [module docs](self).
pub struct DbSession {
    bind: Arc<BindHandle>,
    state: Mutex<State>,
    first_use: AtomicU64,
    /// [`Access`] as a `u8`.
    access: AtomicU8,
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
            .field("access", &self.access())
            .field("in_transaction", &self.in_transaction())
            .finish()
    }
}

impl DbSession {
    pub(crate) fn new(bind: Arc<BindHandle>, access: Access) -> Self {
        DbSession {
            bind,
            state: Mutex::new(State {
                link: None,
                fresh: false,
                generation: 0,
                savepoints: 0,
                aborted: None,
                raw_pg: false,
                wrote: false,
            }),
            first_use: AtomicU64::new(0),
            access: AtomicU8::new(access.to_u8()),
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

    /// How the next transaction of this session begins. See [`Access`].
    pub fn access(&self) -> Access {
        Access::from_u8(self.access.load(Ordering::Relaxed))
    }

    /// Sets how this session's next transaction begins: [`Access::Write`] for a session that
    /// will read and then write (on SQLite it then takes its turn in the write queue at
    /// `BEGIN`, so its reads and writes share one snapshot that no one else can change),
    /// [`Access::Read`] for one that mostly reads. A transaction already open is not changed:
    /// see [`DbSession::write_lock`].
    ///
    /// ```
    /// use rocket_alchemy::{Access, Session};
    ///
    /// #[rocket::get("/counter/bump")]
    /// async fn bump(db: Session<'_>) -> &'static str {
    ///     db.set_access(Access::Write); // this GET reads, then writes
    ///     // ...
    ///     "ok"
    /// }
    /// ```
    pub fn set_access(&self, access: Access) {
        self.access.store(access.to_u8(), Ordering::Relaxed);
    }

    /// Makes this session a writer now: begins its transaction as a writer if none is open,
    /// or upgrades the open one (SQLite: waits for its turn in the write queue; PostgreSQL:
    /// sends `BEGIN` if only reads ran). Use it before the reads of a read-modify-write in a
    /// session that began as a reader.
    pub async fn write_lock(&self) -> Result<(), SessionError> {
        self.active(Need::Write).await.map(drop)
    }

    /// Whether a transaction is open (a statement ran since the last commit or rollback; on
    /// PostgreSQL, a write or a savepoint: reads alone open none).
    pub fn in_transaction(&self) -> bool {
        match self.state.try_lock() {
            Ok(state) => state.in_tx(),
            Err(_) => true,
        }
    }

    /// Makes sure the session is in a transaction, so the reads that follow see one
    /// snapshot (on PostgreSQL at `READ COMMITTED`, each statement still sees its own).
    pub(crate) async fn read_transaction(&self) -> Result<(), SessionError> {
        #[cfg_attr(not(feature = "sqlite"), allow(unused_mut))]
        let mut state = self.active(Need::Read).await?;
        match state.link.as_mut() {
            // The deferred BEGIN goes with the next statement.
            #[cfg(feature = "sqlite")]
            Some(Link::Sqlite(link)) => link.begin_snapshot(),
            _ => {}
        }
        Ok(())
    }

    /// When this session first opened a connection (0: never). Orders commits.
    pub(crate) fn first_use(&self) -> u64 {
        self.first_use.load(Ordering::Relaxed)
    }

    fn busy(&self) -> SessionError {
        SessionError::Busy {
            bind: self.bind.key().to_string(),
        }
    }

    fn database_error(&self, source: sqlx::Error) -> SessionError {
        SessionError::Database {
            bind: Some(self.bind.key().to_string()),
            kind: DbErrorKind::of(&source),
            source,
        }
    }

    /// A wait for SQLite's write queue past `connect_timeout`: busy, not unreachable.
    #[cfg(feature = "sqlite")]
    fn queue_error(&self, source: sqlx::Error) -> SessionError {
        SessionError::Database {
            bind: Some(self.bind.key().to_string()),
            kind: match source {
                sqlx::Error::PoolTimedOut => DbErrorKind::Busy,
                _ => DbErrorKind::of(&source),
            },
            source,
        }
    }

    fn error(&self, state: &mut State, source: sqlx::Error) -> SessionError {
        let kind = DbErrorKind::of(&source);
        if state.in_tx()
            && aborts_transaction(self.backend(), &source, kind)
            && state.aborted.is_none()
        {
            state.aborted = Some((state.savepoints, kind));
        }
        SessionError::Database {
            bind: Some(self.bind.key().to_string()),
            kind,
            source,
        }
    }

    /// Builds a sea-query statement for the bind's backend.
    fn build<S: SqlxBinder + ?Sized>(&self, statement: &S) -> (String, SqlxValues) {
        match self.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => statement.build_sqlx(sea_query::SqliteQueryBuilder),
            #[cfg(feature = "postgres")]
            Backend::Postgres => statement.build_sqlx(sea_query::PostgresQueryBuilder),
            #[cfg(feature = "mysql")]
            Backend::MySql => statement.build_sqlx(sea_query::MysqlQueryBuilder),
            #[allow(unreachable_patterns)]
            other => unreachable!("a {other} bind exists only with its feature"),
        }
    }

    /// Opens the session's connection for `need`: see [`crate::access`].
    async fn open(&self, state: &mut State, need: Need) -> Result<Link, SessionError> {
        self.bind
            .ensure_schema()
            .await
            .map_err(|source| SessionError::Schema {
                bind: self.bind.key().to_string(),
                source,
            })?;
        let write = need == Need::Write || self.access() == Access::Write;
        let link = match self.bind.pool() {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                let writer = self.bind.writer().sqlite().expect("a SQLite bind's writer");
                let snapshot = self
                    .bind
                    .config()
                    .sqlite
                    .as_ref()
                    .is_none_or(|s| s.read_snapshot);
                if write || writer.all_sessions_write() {
                    let permit = writer.enter().await.map_err(|e| self.queue_error(e))?;
                    let (conn, home) = match writer.connection().await {
                        Some(found) => found.map(|(conn, home)| (conn, Some(home))),
                        None => pool.acquire().await.map(|conn| (conn, None)),
                    }
                    .map_err(|e| self.database_error(e))?;
                    // BEGIN IMMEDIATE goes with the first statement.
                    Link::Sqlite(SqliteLink::writer(conn, permit, home))
                } else {
                    let conn = pool.acquire().await.map_err(|e| self.database_error(e))?;
                    state.fresh = true;
                    Link::Sqlite(SqliteLink::reader(conn, snapshot))
                }
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => match write || need == Need::Transaction {
                true => Link::Postgres(Held::Tx(self.begin_on(pool, None).await?)),
                false => {
                    let conn = pool.acquire().await.map_err(|e| self.database_error(e))?;
                    state.fresh = true;
                    Link::Postgres(Held::Conn(conn))
                }
            },
            #[cfg(feature = "mysql")]
            Pool::MySql(pool) => Link::MySql(Held::Tx(self.begin_on(pool, None).await?)),
        };
        let _ = self.first_use.compare_exchange(
            0,
            BEGIN_SEQ.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        Ok(link)
    }

    /// Takes a connection from `pool` and begins a transaction on it (with `statement`, or
    /// `BEGIN`). A pooled connection that died while idle (no ping before acquire) fails its
    /// `BEGIN`; the pool drops it, and this retries once on a fresh one.
    async fn begin_on<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
        statement: Option<&'static str>,
    ) -> Result<Transaction<'static, DB>, SessionError> {
        let mut retried = false;
        loop {
            let result = match statement {
                Some(statement) => pool.begin_with(statement).await,
                None => pool.begin().await,
            };
            match result {
                Ok(tx) => {
                    self.log(statement.unwrap_or("BEGIN"));
                    return Ok(tx);
                }
                Err(e) if !retried && stale_connection(&e) => {
                    tracing::debug!(target: "rocket_alchemy", bind = self.bind.key(), error = %e, "BEGIN on a dead connection; retrying");
                    retried = true;
                }
                Err(source) => return Err(self.database_error(source)),
            }
        }
    }

    /// Makes the open session fit for `need`: a SQLite reader about to write takes its turn
    /// in the write queue; a PostgreSQL reader begins its transaction.
    async fn upgrade(&self, state: &mut State, need: Need) -> Result<(), SessionError> {
        if need == Need::Read {
            return Ok(());
        }
        match state.link.as_mut().expect("open") {
            #[cfg(feature = "sqlite")]
            Link::Sqlite(link) if need == Need::Write && !link.is_writer() => {
                let writer = self.bind.writer().sqlite().expect("a SQLite bind's writer");
                let permit = writer.enter().await.map_err(|e| self.queue_error(e))?;
                link.become_writer(permit);
            }
            #[cfg(feature = "postgres")]
            Link::Postgres(held) if !held.in_tx() => {
                let Some(Link::Postgres(Held::Conn(conn))) = state.reset() else {
                    unreachable!("a PostgreSQL reader holds a connection")
                };
                // On failure the connection goes back to the pool (or is closed if broken).
                let tx = sqlx::Transaction::begin(conn, None)
                    .await
                    .map_err(|e| self.database_error(e))?;
                self.log("BEGIN");
                state.link = Some(Link::Postgres(Held::Tx(tx)));
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
        Ok(())
    }

    fn log(&self, what: &str) {
        if self.bind.config().echo {
            tracing::info!(target: "rocket_alchemy::session", bind = self.bind.key(), "{what}");
        } else {
            tracing::trace!(target: "rocket_alchemy::session", bind = self.bind.key(), "{what}");
        }
    }

    /// Locks the state, opening the session or upgrading it for `need`.
    async fn active(&self, need: Need) -> Result<MutexGuard<'_, State>, SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        if state.link.is_none() {
            state.reset();
            let link = self.open(&mut state, need).await?;
            state.link = Some(link);
            state.generation += 1;
        } else {
            self.upgrade(&mut state, need).await?;
        }
        if need == Need::Write {
            state.wrote = true;
        }
        #[cfg(feature = "sqlite")]
        if need == Need::Transaction {
            if let Some(Link::Sqlite(link)) = state.link.as_mut() {
                if !link.in_tx() {
                    let result = link.ensure_open().await;
                    if let Err(e) = result {
                        return Err(self.error(&mut state, e));
                    }
                    self.log("BEGIN");
                }
            }
        }
        if self.has_dropped.load(Ordering::Acquire) {
            self.rollback_dropped_savepoints(&mut state).await?;
        }
        Ok(state)
    }

    /// The typed connection of the open transaction (beginning one if needed), for raw sqlx.
    /// Fails with [`SessionError::WrongBackend`] when the bind is another engine.
    ///
    /// The session keeps its [`Access`]: a SQLite reader's raw connection is in a deferred
    /// transaction, and a write through it waits for the write lock in SQLite's busy handler
    /// (or fails with 409 if its snapshot is stale). Call [`DbSession::write_lock`] first to
    /// write through a raw connection in a session that began as a reader.
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
        let mut state = self.active(Need::Transaction).await?;
        state.fresh = false;
        state.wrote = true;
        if DB::BACKEND == Backend::Postgres {
            state.raw_pg = true;
        }
        let guard = MutexGuard::try_map(state, |s| s.link.as_mut().and_then(DB::project))
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
        run!(self, built!(self, statement), |conn, sql, values| {
            sqlx::query_with(sql, values)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })
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
        let _ = rows; // MySQL only
        #[cfg(feature = "mysql")]
        if self.backend() == Backend::MySql {
            let (sql, values) = self.build(&*insert);
            let mut state = self.active(Need::Write).await?;
            let Some(Link::MySql(held)) = state.link.as_mut() else {
                unreachable!("a MySQL bind holds a MySQL connection")
            };
            let result = sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(held.conn())
                .await;
            return match result {
                Ok(done) => Ok((0..rows as i64)
                    .map(|i| done.last_insert_id() as i64 + i)
                    .collect()),
                Err(e) => Err(self.error(&mut state, e)),
            };
        }
        insert.returning_col(pk);
        run!(self, built!(self, &*insert), |conn, sql, values| {
            sqlx::query_as_with::<_, (i64,), _>(sql, values)
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

    /// Runs a sea-query statement and decodes every row.
    pub async fn fetch_all<T: FromAnyRow, S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<Vec<T>, SessionError> {
        run!(self, built!(self, statement), |conn, sql, values| {
            sqlx::query_as_with::<_, T, _>(sql, values)
                .fetch_all(conn)
                .await
        })
    }

    /// Runs a sea-query statement and decodes the first row, if any.
    pub async fn fetch_optional<T: FromAnyRow, S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<Option<T>, SessionError> {
        run!(self, built!(self, statement), |conn, sql, values| {
            sqlx::query_as_with::<_, T, _>(sql, values)
                .fetch_optional(conn)
                .await
        })
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

    /// The prepared statement `key` of this bind, rendered by `statement` the first time.
    pub(crate) fn prepared<S: SqlxBinder>(
        &self,
        key: StatementKey,
        statement: impl FnOnce() -> S,
    ) -> Prepared {
        self.bind.statements().get_or_insert(key, || {
            let (sql, _) = self.build(&statement());
            Prepared::new(sql)
        })
    }

    /// [`DbSession::execute`] for a prepared statement.
    pub(crate) async fn execute_prepared(
        &self,
        prepared: &Prepared,
        values: &sea_query::Values,
    ) -> Result<u64, SessionError> {
        run!(self, shared!(prepared, values), |conn, sql, values| {
            sqlx::query_with(sql, values)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })
    }

    /// [`DbSession::fetch_all`] for a prepared statement.
    pub(crate) async fn fetch_all_prepared<T: FromAnyRow>(
        &self,
        prepared: &Prepared,
        values: &sea_query::Values,
    ) -> Result<Vec<T>, SessionError> {
        run!(self, shared!(prepared, values), |conn, sql, values| {
            sqlx::query_as_with::<_, T, _>(sql, values)
                .fetch_all(conn)
                .await
        })
    }

    /// [`DbSession::fetch_optional`] for a prepared statement.
    pub(crate) async fn fetch_optional_prepared<T: FromAnyRow>(
        &self,
        prepared: &Prepared,
        values: &sea_query::Values,
    ) -> Result<Option<T>, SessionError> {
        run!(self, shared!(prepared, values), |conn, sql, values| {
            sqlx::query_as_with::<_, T, _>(sql, values)
                .fetch_optional(conn)
                .await
        })
    }

    /// Commits the open transaction, if any, and returns the connection to the pool. The
    /// next statement begins a new one.
    ///
    /// On failure the transaction is rolled back and its connection released.
    pub async fn commit(&self) -> Result<(), SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        self.commit_locked(&mut state).await
    }

    /// Rolls back the open transaction, if any, and returns the connection to the pool.
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
        let aborted = state.aborted;
        let raw_pg = state.raw_pg;
        let wrote = state.wrote;
        let link = state.reset();
        self.clear_dropped();
        let Some(link) = link else {
            return Ok(());
        };
        if !wrote {
            // Read only: nothing to commit. Dropping the link ends its transaction in the
            // background, as the connection goes back to the pool.
            if link.in_tx() {
                self.log("ROLLBACK (read only, in the background)");
            }
            return Ok(());
        }
        let bind = || self.bind.key().to_string();
        if let Some((_, kind)) = aborted {
            rollback_link(link).await;
            self.log("ROLLBACK (aborted transaction)");
            return Err(SessionError::Aborted { bind: bind(), kind });
        }
        let result = match link {
            // The write-queue turn ends after COMMIT, as the link drops.
            #[cfg(feature = "sqlite")]
            Link::Sqlite(link) => link.commit().await,
            #[cfg(feature = "postgres")]
            Link::Postgres(Held::Tx(mut tx)) if raw_pg => {
                // COMMIT of an aborted PostgreSQL transaction silently rolls back; make sure.
                match sqlx::query("SELECT 1").execute(&mut *tx).await {
                    Ok(_) => tx.commit().await.map(|()| true),
                    Err(e) => {
                        let kind = DbErrorKind::of(&e);
                        let _ = tx.rollback().await;
                        return Err(SessionError::Commit {
                            bind: bind(),
                            kind,
                            source: e,
                        });
                    }
                }
            }
            #[cfg(feature = "postgres")]
            Link::Postgres(held) => commit_held(held).await,
            #[cfg(feature = "mysql")]
            Link::MySql(held) => commit_held(held).await,
        };
        match result {
            Ok(true) => {
                self.log("COMMIT");
                Ok(())
            }
            Ok(false) => Ok(()),
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
        let wrote = state.wrote;
        let link = state.reset();
        self.clear_dropped();
        if let Some(link) = link {
            // A writer's rollback completes before its write-queue turn ends; a reader's runs
            // in the background.
            match (wrote, link.in_tx()) {
                (true, true) => {
                    rollback_link(link).await;
                    self.log("ROLLBACK");
                }
                (false, true) => self.log("ROLLBACK (read only, in the background)"),
                (_, false) => {}
            }
        }
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
        let mut state = self.active(Need::Transaction).await?;
        state.fresh = false;
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
        let result = dispatch!(state.link.as_mut().expect("active"), |conn, _qb| {
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
        if !state.in_tx() || state.generation != generation || state.savepoints < depth {
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

/// Commits a held connection's transaction: `Ok(true)` when one was committed, `Ok(false)`
/// when there was none (a reader that never began one). Either way the connection goes
/// back to the pool.
async fn commit_held<DB: sqlx::Database>(held: Held<DB>) -> Result<bool, sqlx::Error> {
    match held {
        Held::Conn(_) => Ok(false),
        Held::Tx(tx) => tx.commit().await.map(|()| true),
    }
}

async fn rollback_link(link: Link) {
    // A failed ROLLBACK leaves the connection suspect: dropping the transaction queues
    // another rollback, and the pool closes the connection if its release ping fails.
    async fn rollback<DB: sqlx::Database>(held: Held<DB>) {
        if let Held::Tx(tx) = held {
            let _ = tx.rollback().await;
        }
    }
    match link {
        #[cfg(feature = "sqlite")]
        Link::Sqlite(link) => link.rollback().await,
        #[cfg(feature = "postgres")]
        Link::Postgres(held) => rollback(held).await,
        #[cfg(feature = "mysql")]
        Link::MySql(held) => rollback(held).await,
    }
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
    guard: MappedMutexGuard<'s, DB::Connection>,
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
