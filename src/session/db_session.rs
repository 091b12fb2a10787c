//! [`DbSession`]: a lazily opened connection and transaction on one bind.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};

use rocket::tokio::sync::{Mutex, MutexGuard};
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::access::Access;
use super::SessionError;
use crate::bind::prepared::{Prepared, StatementKey};
use crate::bind::BindHandle;
use crate::config::{Backend, CommitMode, TransactionOptions};
use crate::driver::{self, need_of, stale_connection, Intent, Link, LinkError, Need};
use crate::error::DbErrorKind;
use crate::model::FromAnyRow;

/// Orders the first use of sessions across a request (commit order).
static BEGIN_SEQ: AtomicU64 = AtomicU64::new(1);

pub(super) struct State {
    /// The session's connection, once a statement ran.
    pub(super) link: Option<Link>,
    /// The link was just taken from the pool and no statement ran on it yet.
    fresh: bool,
    /// Incremented at each new link; savepoints remember theirs.
    pub(super) generation: u64,
    /// Open savepoints.
    pub(super) savepoints: u32,
    /// Set when a failed statement aborted the transaction: (savepoint depth, kind).
    pub(super) aborted: Option<(u32, DbErrorKind)>,
    /// A raw connection was handed out: errors on it are invisible to us, so COMMIT first
    /// checks that the transaction is not aborted (PostgreSQL).
    raw: bool,
    /// A write ran (or may have: a raw connection was handed out). A transaction that only
    /// read is ended by dropping it: its rollback runs in the background and no response
    /// waits for a `COMMIT`.
    wrote: bool,
    /// The link is on a read replica (only reads ran on it).
    on_replica: bool,
}

impl State {
    pub(super) fn in_tx(&self) -> bool {
        self.link.as_ref().is_some_and(Link::in_tx)
    }

    /// Forgets the link and what belonged to its transaction (dropping the link rolls back
    /// in the background and returns the connection).
    fn reset(&mut self) -> Option<Link> {
        self.savepoints = 0;
        self.aborted = None;
        self.raw = false;
        self.wrote = false;
        self.fresh = false;
        self.on_replica = false;
        self.link.take()
    }
}

/// A session on one bind: at most one lazily opened connection and transaction.
///
/// A [`DbSession`] owns at most one pooled connection and transaction. Nothing is sent to
/// the database until the first statement: then a connection is taken from the pool and the
/// transaction begins as the session's [`Access`](crate::Access) and the statement require:
/// SQLite readers in a deferred `BEGIN`, writers in the write queue with
/// `BEGIN IMMEDIATE`; PostgreSQL readers without `BEGIN` until their first write.
/// [`DbSession::commit`] and [`DbSession::rollback`] end it; the next statement begins a new
/// one.
///
/// In a route you get the request's session through the [`Session`](crate::Session) guard,
/// which derefs to `DbSession`; outside requests, [`Alchemy::session`](crate::Alchemy::session)
/// gives an owned one (dropping it rolls back).
///
/// Statements go through the session in one of two ways:
///
/// * backend-neutral, as sea-query statements: [`DbSession::execute`],
///   [`DbSession::fetch_all`], [`DbSession::fetch_optional`], [`DbSession::fetch_one`];
/// * raw sqlx on the typed connection: [`DbSession::sqlite`], [`DbSession::postgres`],
///   [`DbSession::mysql`] (or [`DbSession::connection`] to match on the backend):
///
/// ```
/// # #[cfg(feature = "sqlite")] mod inner {
/// use rocket_alchemy::{Session, SessionError};
///
/// #[rocket::post("/visits")]
/// async fn visit(session: Session<'_>) -> Result<String, SessionError> {
///     let mut conn = session.sqlite().await?;
///     sqlx::query("INSERT INTO visit (at) VALUES (CURRENT_TIMESTAMP)").execute(&mut *conn).await?;
///     let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visit").fetch_one(&mut *conn).await?;
///     Ok(n.to_string())
/// }
/// # }
/// ```
pub struct DbSession {
    pub(super) bind: Arc<BindHandle>,
    pub(super) state: Mutex<State>,
    first_use: AtomicU64,
    /// [`Access`] as a `u8`.
    access: AtomicU8,
    /// Savepoints dropped without release or rollback: (generation, depth), rolled back
    /// before the next statement.
    pub(super) dropped: SyncMutex<Vec<(u64, u32)>>,
    pub(super) has_dropped: AtomicBool,
    /// The dialect's statement beginning this session's transactions (`None`: a plain
    /// `BEGIN`), from its [`TransactionOptions`].
    begin: SyncMutex<Option<Arc<str>>>,
    options: SyncMutex<TransactionOptions>,
    /// Reads may go to a replica (request sessions of binds with replicas).
    replica_reads: AtomicBool,
    /// The primary position a replica must have replayed to serve this session's reads.
    at_least: AtomicU64,
    /// A write was committed.
    committed_write: AtomicBool,
    /// Statements run through the session's API (see [`DbSession::statement_count`]).
    statements: AtomicU32,
    /// Work waiting for the current transaction's commit ([`DbSession::on_commit`]).
    pub(super) hooks: SyncMutex<Vec<super::after_commit::AfterCommit>>,
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

/// Runs a statement on the session: `$make` gives its SQL, values and [`Need`] (called again
/// for a retry); the session is opened or upgraded for that need, then `$run` runs it on the
/// link. A statement that is the first on a connection just taken from the pool, outside a
/// transaction, is retried once on another connection when the first turns out dead (the
/// pool does not ping before handing one out).
macro_rules! run {
    ($session:expr, $make:expr, |$link:ident, $sql:ident, $values:ident| $run:expr) => {{
        let session = $session;
        let make = $make;
        let mut retried = false;
        session.count_statement();
        loop {
            let ($sql, $values, need) = make();
            let mut state = session.active(need).await?;
            let fresh = std::mem::take(&mut state.fresh);
            let result = {
                let $link = state.link.as_mut().expect("active");
                $run
            };
            match result {
                Err(e) if fresh && !retried && !state.in_tx() && stale_connection(&e) => {
                    tracing::debug!(target: "rocket_alchemy", bind = session.bind.key(), error = %e, "statement on a dead connection; retrying");
                    retried = true;
                    state.link = None;
                }
                other => break other.map_err(|e| session.error(&mut state, e)),
            }
        }
    }};
}

impl DbSession {
    pub(crate) fn new(bind: Arc<BindHandle>, access: Access) -> Self {
        let options = bind.config().transaction.clone();
        let begin = bind
            .config()
            .backend
            .dialect()
            .begin_statement(&options)
            .map(Arc::from);
        DbSession {
            bind,
            state: Mutex::new(State {
                link: None,
                fresh: false,
                generation: 0,
                savepoints: 0,
                aborted: None,
                raw: false,
                wrote: false,
                on_replica: false,
            }),
            first_use: AtomicU64::new(0),
            access: AtomicU8::new(access.to_u8()),
            dropped: SyncMutex::new(Vec::new()),
            has_dropped: AtomicBool::new(false),
            begin: SyncMutex::new(begin),
            options: SyncMutex::new(options),
            replica_reads: AtomicBool::new(false),
            at_least: AtomicU64::new(0),
            committed_write: AtomicBool::new(false),
            statements: AtomicU32::new(0),
            hooks: SyncMutex::new(Vec::new()),
        }
    }

    /// How many statements the session ran through its API ([`DbSession::execute`],
    /// the `fetch_*` methods, the repository and the service): what the statement budget of
    /// the test kit (`rocket_alchemy::testing`) and the `statement_header` setting report. Transaction
    /// control (`BEGIN`, `COMMIT`, savepoints) is not counted, and neither are statements
    /// sent through a raw sqlx connection ([`DbSession::conn`]), which the session cannot
    /// see.
    ///
    /// ```
    /// # async fn f(session: &rocket_alchemy::DbSession) {
    /// let before = session.statement_count();
    /// // … work …
    /// assert!(session.statement_count() >= before);
    /// # }
    /// ```
    pub fn statement_count(&self) -> u32 {
        self.statements.load(Ordering::Relaxed)
    }

    fn count_statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends this session's reads to the primary even if the bind has replicas: the
    /// per-route override for reads that must see the latest commits of every client (the
    /// client's own are seen anyway). Applies from the next connection the session opens.
    pub fn use_primary(&self) {
        self.replica_reads.store(false, Ordering::Relaxed);
    }

    /// Lets this session's reads go to a replica that has replayed the primary's position
    /// `at_least` (0: any).
    pub(crate) fn read_from_replicas(&self, at_least: u64) {
        self.at_least.store(at_least, Ordering::Relaxed);
        self.replica_reads.store(true, Ordering::Relaxed);
    }

    /// The bind.
    pub(crate) fn bind(&self) -> &BindHandle {
        &self.bind
    }

    /// Whether this session committed a write.
    pub(crate) fn committed_write(&self) -> bool {
        self.committed_write.load(Ordering::Relaxed)
    }

    /// A replica's pool for the session's next read, if it may read on one.
    fn replica_for_read(&self, need: Need) -> Option<crate::driver::BindPool> {
        // A hot standby refuses SERIALIZABLE transactions: such sessions read on the primary.
        let eligible = need == Need::Read
            && self.access() == Access::Read
            && self.replica_reads.load(Ordering::Relaxed)
            && self.options.lock().expect("not poisoned").isolation_level
                != Some(crate::config::IsolationLevel::Serializable);
        eligible
            .then(|| {
                self.bind
                    .replica_pool(self.at_least.load(Ordering::Relaxed))
            })
            .flatten()
    }

    /// Sets how this session's next transactions begin (isolation level, read-only,
    /// timeouts, transaction-scoped settings), replacing the bind's defaults
    /// ([`DatabaseConfig::transaction`](crate::DatabaseConfig::transaction)). A transaction
    /// already open is not changed. A session with any option set begins a transaction for
    /// reads too (PostgreSQL readers otherwise run without one).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rocket_alchemy::{IsolationLevel, Session, SessionError};
    ///
    /// #[rocket::post("/transfer")]
    /// async fn transfer(db: Session<'_>) -> Result<&'static str, SessionError> {
    ///     let options = db
    ///         .transaction_options()
    ///         .isolation(IsolationLevel::Serializable)
    ///         .statement_timeout(Duration::from_secs(2));
    ///     db.set_transaction_options(&options)?;
    ///     // ... statements ...
    ///     Ok("done")
    /// }
    /// ```
    ///
    /// Fails with [`SessionError::Unsupported`] for options the backend cannot apply per
    /// transaction (SQLite: all of them; MySQL: timeouts and settings).
    pub fn set_transaction_options(
        &self,
        options: &TransactionOptions,
    ) -> Result<(), SessionError> {
        let backend = self.backend();
        let unsupported = match backend {
            Backend::Sqlite => (!options.is_default()).then_some("transaction options"),
            Backend::MySql if options.statement_timeout.is_some() => Some("statement_timeout"),
            Backend::MySql if options.lock_timeout.is_some() => {
                Some("a per-session lock_timeout (set it on the bind)")
            }
            Backend::MySql if !options.settings().is_empty() => Some("SET LOCAL settings"),
            _ => None,
        };
        if let Some(what) = unsupported {
            return Err(SessionError::Unsupported {
                bind: self.bind.key().to_string(),
                what: format!("{what} on {backend}"),
            });
        }
        *self.begin.lock().expect("not poisoned") =
            backend.dialect().begin_statement(options).map(Arc::from);
        *self.options.lock().expect("not poisoned") = options.clone();
        Ok(())
    }

    /// The options this session's next transactions begin with (the bind's, unless
    /// [`DbSession::set_transaction_options`] replaced them).
    pub fn transaction_options(&self) -> TransactionOptions {
        self.options.lock().expect("not poisoned").clone()
    }

    /// Adds a transaction-scoped setting to the session's next transactions:
    /// `SET LOCAL name = 'value'`, sent with the `BEGIN` (PostgreSQL). See
    /// [`TransactionOptions::set_local`].
    pub fn set_local(&self, name: &str, value: impl Into<String>) -> Result<(), SessionError> {
        let options = self.transaction_options().set_local(name, value);
        self.set_transaction_options(&options)
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

    /// Makes the reads that follow see one snapshot: SQLite begins a deferred transaction
    /// with the next statement if none is open. (MySQL readers are in one already; each
    /// PostgreSQL statement has its own at `READ COMMITTED`, even inside a transaction.)
    pub(crate) async fn read_transaction(&self) -> Result<(), SessionError> {
        let mut state = self.active(Need::Read).await?;
        if let Some(link) = state.link.as_mut() {
            link.begin_snapshot();
        }
        Ok(())
    }

    /// When this session first opened a connection (0: never). Orders commits.
    pub(crate) fn first_use(&self) -> u64 {
        self.first_use.load(Ordering::Relaxed)
    }

    pub(super) fn busy(&self) -> SessionError {
        SessionError::Busy {
            bind: self.bind.key().to_string(),
        }
    }

    fn link_error(&self, error: LinkError) -> SessionError {
        let (kind, source) = match error {
            // A wait for SQLite's write queue past `connect_timeout`: busy, not unreachable.
            LinkError::Queue(source) => (
                match source {
                    sqlx::Error::PoolTimedOut => DbErrorKind::Busy,
                    _ => DbErrorKind::of(&source),
                },
                source,
            ),
            LinkError::Database(source) => (DbErrorKind::of(&source), source),
        };
        SessionError::Database {
            bind: Some(self.bind.key().to_string()),
            kind,
            source,
        }
    }

    pub(super) fn error(&self, state: &mut State, source: sqlx::Error) -> SessionError {
        let kind = DbErrorKind::of(&source);
        if state.in_tx()
            && self.backend().dialect().aborts_transaction(&source, kind)
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

    /// A sea-query statement's SQL for the bind's backend, with its values and need.
    fn build<S: SqlxBinder + ?Sized>(&self, statement: &S) -> (SqlStr, SqlxValues, Need) {
        let (sql, values) = driver::build(self.backend(), statement);
        let need = need_of(&sql);
        (AssertSqlSafe(sql).into_sql_str(), values, need)
    }

    /// What a session that needs `need` asks of its link.
    fn intent(&self, need: Need) -> Intent {
        Intent {
            write: need == Need::Write || self.access() == Access::Write,
            transaction: need == Need::Transaction || self.begin_statement().is_some(),
            snapshot: self
                .bind
                .config()
                .sqlite
                .as_ref()
                .is_some_and(|s| s.read_snapshot),
        }
    }

    /// The statement beginning this session's transactions, if not a plain `BEGIN`.
    fn begin_statement(&self) -> Option<Arc<str>> {
        self.begin.lock().expect("not poisoned").clone()
    }

    fn log(&self, what: &str) {
        if self.bind.config().echo {
            tracing::info!(target: "rocket_alchemy::session", bind = self.bind.key(), "{what}");
        } else {
            tracing::trace!(target: "rocket_alchemy::session", bind = self.bind.key(), "{what}");
        }
    }

    /// Locks the state, opening the session's link or upgrading it for `need` (see
    /// [`crate::access`]).
    pub(super) async fn active(&self, need: Need) -> Result<MutexGuard<'_, State>, SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        let current = match state.link.take() {
            // A replica served the reads so far; a write, and everything after it, go to the
            // primary. (Only reads ran there: nothing to keep.)
            Some(_replica) if state.on_replica && need != Need::Read => None,
            current => current,
        };
        match current {
            None => {
                state.reset();
                // Boxed, as the link below: `create_all` nests deeply and runs once.
                Box::pin(self.bind.ensure_schema())
                    .await
                    .map_err(|source| SessionError::Schema {
                        bind: self.bind.key().to_string(),
                        source,
                    })?;
                let begin = self.begin_statement();
                let replica = self.replica_for_read(need);
                // Boxed: opening a link nests sqlx's pool futures deeply, and every async fn
                // awaiting a session statement would otherwise carry that depth in its
                // layout (past the default recursion limit in release builds).
                let (link, opened) = Box::pin(Link::open(
                    replica.as_ref().unwrap_or(self.bind.pool()),
                    self.bind.writer(),
                    self.intent(need),
                    begin.as_deref(),
                ))
                .await
                .map_err(|e| self.link_error(e))?;
                if opened.began {
                    self.log("BEGIN");
                }
                state.on_replica = replica.is_some();
                state.link = Some(link);
                state.fresh = opened.fresh;
                state.generation += 1;
                let _ = self.first_use.compare_exchange(
                    0,
                    BEGIN_SEQ.fetch_add(1, Ordering::Relaxed),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Some(link) if need == Need::Read => state.link = Some(link),
            Some(link) => {
                let intent = Intent {
                    write: need == Need::Write,
                    ..self.intent(need)
                };
                let begin = self.begin_statement();
                match Box::pin(link.upgrade(self.bind.writer(), intent, begin.as_deref())).await {
                    Ok((link, began)) => {
                        if began {
                            self.log("BEGIN");
                        }
                        state.link = Some(link);
                    }
                    Err((link, e)) => {
                        state.link = link;
                        if state.link.is_none() {
                            state.reset();
                        }
                        return Err(self.link_error(e));
                    }
                }
            }
        }
        if need == Need::Write {
            state.wrote = true;
        }
        if self.has_dropped.load(Ordering::Acquire) {
            Box::pin(self.rollback_dropped_savepoints(&mut state)).await?;
        }
        Ok(state)
    }

    /// [`DbSession::active`] for a raw connection: a transaction, and anything may run on it.
    pub(super) async fn active_raw(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let mut state = self.active(Need::Transaction).await?;
        state.fresh = false;
        state.wrote = true;
        state.raw = true;
        Ok(state)
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
        run!(self, || self.build(statement), |link, sql, values| {
            link.execute(sql, values).await
        })
    }

    /// Runs a multi-row `INSERT` and returns the auto-increment keys it generated, in row
    /// order (`RETURNING` the key column where the backend has it).
    pub(crate) async fn insert_returning_ids(
        &self,
        insert: &sea_query::InsertStatement,
        pk: &'static str,
        rows: usize,
    ) -> Result<Vec<i64>, SessionError> {
        self.count_statement();
        let mut state = self.active(Need::Write).await?;
        let backend = self.backend();
        let build = |returning: bool| {
            let mut insert = insert.clone();
            if returning {
                insert.returning_col(pk);
            }
            let (sql, values) = driver::build(backend, &insert);
            (AssertSqlSafe(sql).into_sql_str(), values)
        };
        let result = state
            .link
            .as_mut()
            .expect("active")
            .insert_keys(build, rows)
            .await;
        result.map_err(|e| self.error(&mut state, e))
    }

    /// Runs a sea-query statement and decodes every row.
    pub async fn fetch_all<T: FromAnyRow, S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<Vec<T>, SessionError> {
        run!(self, || self.build(statement), |link, sql, values| {
            link.fetch_all::<T>(sql, values).await
        })
    }

    /// Runs a sea-query statement and decodes the first row, if any.
    pub async fn fetch_optional<T: FromAnyRow, S: SqlxBinder + ?Sized>(
        &self,
        statement: &S,
    ) -> Result<Option<T>, SessionError> {
        run!(self, || self.build(statement), |link, sql, values| {
            link.fetch_optional::<T>(sql, values).await
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
            let (sql, _) = driver::build(self.backend(), &statement());
            Prepared::new(sql)
        })
    }

    /// [`DbSession::execute`] for a prepared statement.
    pub(crate) async fn execute_prepared(
        &self,
        prepared: &Prepared,
        values: &sea_query::Values,
    ) -> Result<u64, SessionError> {
        run!(self, || prepared.with(values), |link, sql, values| {
            link.execute(sql, values).await
        })
    }

    /// [`DbSession::fetch_all`] for a prepared statement.
    pub(crate) async fn fetch_all_prepared<T: FromAnyRow>(
        &self,
        prepared: &Prepared,
        values: &sea_query::Values,
    ) -> Result<Vec<T>, SessionError> {
        run!(self, || prepared.with(values), |link, sql, values| {
            link.fetch_all::<T>(sql, values).await
        })
    }

    /// [`DbSession::fetch_optional`] for a prepared statement.
    pub(crate) async fn fetch_optional_prepared<T: FromAnyRow>(
        &self,
        prepared: &Prepared,
        values: &sea_query::Values,
    ) -> Result<Option<T>, SessionError> {
        run!(self, || prepared.with(values), |link, sql, values| {
            link.fetch_optional::<T>(sql, values).await
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
        let result = self.commit_transaction(state).await;
        match result {
            Ok(()) => self.run_after_commit().await,
            Err(_) => self.drop_after_commit(),
        }
        result
    }

    async fn commit_transaction(&self, state: &mut State) -> Result<(), SessionError> {
        let (aborted, raw, wrote) = (state.aborted, state.raw, state.wrote);
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
            Box::pin(link.rollback()).await;
            self.log("ROLLBACK (aborted transaction)");
            return Err(SessionError::Aborted { bind: bind(), kind });
        }
        match Box::pin(link.commit(raw)).await {
            Ok(true) => {
                self.log("COMMIT");
                self.committed_write.store(true, Ordering::Relaxed);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(source) => Err(SessionError::Commit {
                bind: bind(),
                kind: DbErrorKind::of(&source),
                source,
            }),
        }
    }

    async fn rollback_locked(&self, state: &mut State) -> Result<(), SessionError> {
        self.drop_after_commit();
        let wrote = state.wrote;
        let link = state.reset();
        self.clear_dropped();
        if let Some(link) = link {
            // A writer's rollback completes before its write-queue turn ends; a reader's runs
            // in the background.
            match (wrote, link.in_tx()) {
                (true, true) => {
                    Box::pin(link.rollback()).await;
                    self.log("ROLLBACK");
                }
                (false, true) => self.log("ROLLBACK (read only, in the background)"),
                (_, false) => {}
            }
        }
        Ok(())
    }

    pub(super) fn clear_dropped(&self) {
        if self.has_dropped.swap(false, Ordering::AcqRel) {
            self.dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    /// Runs SQL of the library's own without values, as a write, in the session's
    /// transaction.
    pub(crate) async fn execute_sql(&self, sql: String) -> Result<(), SessionError> {
        let mut state = self.active(Need::Write).await?;
        self.raw(&mut state, sql).await
    }

    /// Runs SQL without values (savepoints) in the open transaction.
    pub(super) async fn raw(&self, state: &mut State, sql: String) -> Result<(), SessionError> {
        let result = state.link.as_mut().expect("active").raw(sql).await;
        result.map_err(|e| self.error(state, e))
    }
}

impl crate::bind::Alchemy {
    /// A new session on `key`, outside any request: commit it yourself; dropping it rolls
    /// back. It begins as a reader and becomes a writer at its first write (see [`Access`];
    /// [`DbSession::set_access`] changes that).
    pub fn session(&self, key: &str) -> Result<DbSession, crate::bind::UnknownBind> {
        self.bind(key)
            .map(|b| DbSession::new(b.clone(), Access::Read))
    }
}
