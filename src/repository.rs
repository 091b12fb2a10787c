//! The repository: Advanced Alchemy's persistence methods for one model, on any backend.
//!
//! A [`Repository`] works on a session — the request's [`Session`] guard or one from
//! [`Alchemy::session`](crate::Alchemy::session) — so its writes belong to that session's
//! transaction and the bind's commit mode decides their fate (unless
//! [`Repository::auto_commit`] is set). SQL is built with sea-query, values are always
//! bound, and sqlx prepares and caches each statement per connection.
//!
//! ```
//! use rocket_alchemy::filters::{Filter, SortOrder};
//! use rocket_alchemy::{Model, Repository, RepositoryError, Session};
//!
//! #[derive(Model, Clone, Debug)]
//! struct Tag {
//!     id: i64,
//!     #[model(max_length = 40, unique)]
//!     label: String,
//! }
//!
//! #[rocket::post("/tags/<label>")]
//! async fn create(label: &str, db: Session<'_>) -> Result<String, RepositoryError> {
//!     let tags = Repository::<Tag>::new(db);
//!     let tag = tags.create(Tag { id: 0, label: label.into() }).await?; // 409 if it exists
//!     let (page, total) = tags
//!         .list_and_count(&[Filter::order_by(Tag::LABEL, SortOrder::Asc), Filter::limit_offset(10, 0)])
//!         .await?;
//!     Ok(format!("{} of {total}, new id {}", page.len(), tag.id))
//! }
//! ```

use std::collections::HashMap;
use std::marker::PhantomData;

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::Request;
use sea_query::{
    Condition, Expr, ExprTrait, Func, LockType, OnConflict, Order, Query, SelectStatement, Value,
};

use crate::config::Backend;
use crate::error::{DbErrorKind, ErrorBody};
use crate::filters::{self, ColumnRef, Filter, FilterError, SortOrder};
use crate::guard::Session;
use crate::model::{AuditColumn, Col, Model, ModelExt, PrimaryKey};
use crate::pagination::{Keyset, OffsetPagination};
use crate::session::prepared;
use crate::session::{DbSession, SessionError};

/// The error of the repository and service layer. As a [`Responder`] it answers
/// `{"status_code": N, "detail": "..."}` with Advanced Alchemy's messages and no SQL or
/// driver text; the full error goes to the log.
///
/// | error | status |
/// |---|---|
/// | `NotFound` | 404 |
/// | `DuplicateKey`, `ForeignKey`, `Integrity`, `Conflict` | 409 |
/// | `InvalidFilter`, `InvalidParameter`, `Refused` | 400 |
/// | `Validation` | 422 |
/// | `Unavailable` (pool timeout, connection failure) | 503 |
/// | `MultipleResults`, anything else | 500 |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// No row matched.
    #[error("no {model} matched")]
    NotFound {
        /// The model.
        model: &'static str,
    },
    /// More than one row matched where one was expected.
    #[error("more than one {model} matched")]
    MultipleResults {
        /// The model.
        model: &'static str,
    },
    /// A unique constraint was violated.
    #[error("{model}: duplicate key: {source}")]
    DuplicateKey {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// A foreign key constraint was violated.
    #[error("{model}: foreign key violation: {source}")]
    ForeignKey {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// Another integrity constraint (NOT NULL, CHECK) was violated.
    #[error("{model}: integrity error: {source}")]
    Integrity {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// The transaction lost to a concurrent one (serialization failure, deadlock, busy).
    #[error("{model}: concurrent update conflict: {source}")]
    Conflict {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// A filter names a column the model does not have, or is otherwise invalid.
    #[error("invalid filter: {0}")]
    InvalidFilter(#[from] FilterError),
    /// A request parameter is invalid.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// What is wrong, safe to show to clients.
        message: String,
    },
    /// Input that does not make a valid model (from a service's input conversion).
    #[error("invalid input: {0}")]
    Validation(String),
    /// A request the repository refuses, such as an unfiltered `delete_where`.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The database is unreachable: pool timeout or connection failure.
    #[error("{model}: database unavailable: {source}")]
    Unavailable {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// A repository was asked for on a session of another bind (a programming error).
    #[error("model {model} belongs to bind \"{bind}\", not to the session's bind \"{session}\"")]
    WrongBind {
        /// The model.
        model: &'static str,
        /// Its bind.
        bind: &'static str,
        /// The session's bind.
        session: String,
    },
    /// The session failed (busy, commit failure, wrong bind…).
    #[error(transparent)]
    Session(SessionError),
    /// Any other database error.
    #[error("{model}: {source}")]
    Other {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
}

impl RepositoryError {
    fn from_session(model: &'static str, error: SessionError) -> Self {
        match error {
            SessionError::Database { kind, source, .. } => Self::from_kind(model, kind, source),
            other => RepositoryError::Session(other),
        }
    }

    fn from_kind(model: &'static str, kind: DbErrorKind, source: sqlx::Error) -> Self {
        match kind {
            DbErrorKind::NotFound => RepositoryError::NotFound { model },
            DbErrorKind::UniqueViolation => RepositoryError::DuplicateKey { model, source },
            DbErrorKind::ForeignKeyViolation => RepositoryError::ForeignKey { model, source },
            DbErrorKind::NotNullViolation | DbErrorKind::CheckViolation => {
                RepositoryError::Integrity { model, source }
            }
            DbErrorKind::Serialization => RepositoryError::Conflict { model, source },
            DbErrorKind::Connection | DbErrorKind::Busy => {
                RepositoryError::Unavailable { model, source }
            }
            _ => RepositoryError::Other { model, source },
        }
    }

    /// The HTTP status (see the table above).
    pub fn status(&self) -> Status {
        match self {
            RepositoryError::NotFound { .. } => Status::NotFound,
            RepositoryError::DuplicateKey { .. }
            | RepositoryError::ForeignKey { .. }
            | RepositoryError::Integrity { .. }
            | RepositoryError::Conflict { .. } => Status::Conflict,
            RepositoryError::InvalidFilter(_)
            | RepositoryError::InvalidParameter { .. }
            | RepositoryError::Refused(_) => Status::BadRequest,
            RepositoryError::Validation(_) => Status::UnprocessableEntity,
            RepositoryError::Unavailable { .. } => Status::ServiceUnavailable,
            RepositoryError::Session(e) => e.status(),
            RepositoryError::MultipleResults { .. }
            | RepositoryError::WrongBind { .. }
            | RepositoryError::Other { .. } => Status::InternalServerError,
        }
    }

    /// The client-facing message: Advanced Alchemy's default texts, or the (safe) message of
    /// a filter, parameter or validation error.
    pub fn detail(&self) -> String {
        match self {
            RepositoryError::NotFound { .. } => "The requested resource was not found".into(),
            RepositoryError::MultipleResults { .. } => "Multiple matching rows found".into(),
            RepositoryError::DuplicateKey { .. } => {
                "A record matching the supplied data already exists.".into()
            }
            RepositoryError::ForeignKey { .. } => "A foreign key is missing or invalid".into(),
            RepositoryError::Integrity { source, .. } => match DbErrorKind::of(source) {
                DbErrorKind::CheckViolation => {
                    "The data failed a check constraint during processing".into()
                }
                _ => "There was a data validation error during processing".into(),
            },
            RepositoryError::Conflict { .. } => DbErrorKind::Serialization.detail().into(),
            RepositoryError::InvalidFilter(e) => e.message.clone(),
            RepositoryError::InvalidParameter { message, .. } => message.clone(),
            RepositoryError::Validation(message) => message.clone(),
            RepositoryError::Refused(why) => (*why).into(),
            RepositoryError::Unavailable { source, .. } => match DbErrorKind::of(source) {
                DbErrorKind::Busy => DbErrorKind::Busy.detail().into(),
                _ => DbErrorKind::Connection.detail().into(),
            },
            RepositoryError::Session(e) => e.detail().into(),
            RepositoryError::WrongBind { .. } | RepositoryError::Other { .. } => {
                "There was an error during data processing".into()
            }
        }
    }

    /// The JSON body (with `Retry-After` for conflicts a retry may cure and for 503s).
    pub fn body(&self) -> ErrorBody {
        let transient = match self {
            RepositoryError::Conflict { .. } => true,
            RepositoryError::Session(e) => e.kind().is_some_and(DbErrorKind::is_transient),
            _ => false,
        };
        ErrorBody::new(self.status(), self.detail()).retry_if(transient)
    }
}

impl From<SessionError> for RepositoryError {
    fn from(error: SessionError) -> Self {
        RepositoryError::from_session("row", error)
    }
}

impl<'r> Responder<'r, 'static> for RepositoryError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            tracing::error!(target: "rocket_alchemy", error = %self, "{} {}: {}", request.method(), request.uri(), status);
        } else {
            tracing::debug!(target: "rocket_alchemy", error = %self, "{} {}: {}", request.method(), request.uri(), status);
        }
        self.body().respond_to(request)
    }
}

/// Column changes for [`Repository::update`]: columns not set are left alone; setting an
/// `Option` column to `None` writes NULL.
///
/// ```
/// use rocket_alchemy::{repository::Changes, Model};
///
/// #[derive(Model)]
/// struct Author { id: i64, name: String, dob: Option<chrono::NaiveDate> }
///
/// let changes = Changes::<Author>::new().set(Author::NAME, "Ursula").set(Author::DOB, None);
/// assert_eq!(changes.len(), 2);
/// ```
pub struct Changes<M> {
    values: Vec<(&'static str, Value)>,
    _model: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for Changes<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values.iter()).finish()
    }
}

impl<M> Default for Changes<M> {
    fn default() -> Self {
        Changes {
            values: Vec::new(),
            _model: PhantomData,
        }
    }
}

impl<M> Clone for Changes<M> {
    fn clone(&self) -> Self {
        Changes {
            values: self.values.clone(),
            _model: PhantomData,
        }
    }
}

impl<M: Model> Changes<M> {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `column` to `value`.
    pub fn set<T: Into<Value>>(mut self, column: Col<M, T>, value: impl Into<T>) -> Self {
        self.push(column.name(), value.into().into());
        self
    }

    /// Sets `column` to `value` when `value` is `Some` (a PATCH field that may be absent).
    pub fn set_if<T: Into<Value>>(self, column: Col<M, T>, value: Option<impl Into<T>>) -> Self {
        match value {
            Some(value) => self.set(column, value),
            None => self,
        }
    }

    /// Sets the column named `column` to a value of its type (checked).
    pub fn set_value(mut self, column: &str, value: Value) -> Result<Self, FilterError> {
        let col = ColumnRef::<M>::named(column)?;
        self.push(col.name(), value);
        Ok(self)
    }

    fn push(&mut self, column: &'static str, value: Value) {
        self.values.retain(|(c, _)| *c != column);
        self.values.push((column, value));
    }

    /// The number of columns set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every column set, with its value.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> + '_ {
        self.values.iter().map(|(c, v)| (*c, v))
    }
}

/// A model with the total count of its list query (the `ra_total` column).
struct WithTotal<M>(M, i64);

impl<'r, R: sqlx::Row, M> sqlx::FromRow<'r, R> for WithTotal<M>
where
    M: sqlx::FromRow<'r, R>,
    &'r str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(WithTotal(M::from_row(row)?, row.try_get("ra_total")?))
    }
}

/// The most bind parameters one statement may carry, with a margin.
fn parameter_limit(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 32_000,
        Backend::Postgres | Backend::MySql => 65_000,
    }
}

/// The repository of model `M` on a session. See the [module docs](self).
pub struct Repository<'s, M: Model> {
    session: &'s DbSession,
    auto_commit: bool,
    for_update: bool,
    _model: PhantomData<fn() -> M>,
}

impl<M: Model> std::fmt::Debug for Repository<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("model", &M::TABLE.model)
            .field("session", self.session)
            .finish()
    }
}

impl<M: Model> Clone for Repository<'_, M> {
    fn clone(&self) -> Self {
        Repository {
            session: self.session,
            auto_commit: self.auto_commit,
            for_update: self.for_update,
            _model: PhantomData,
        }
    }
}

type Result<T, E = RepositoryError> = std::result::Result<T, E>;

impl<'s, M: Model> Repository<'s, M> {
    /// The repository of `M` on a request session of its bind (checked by the compiler).
    pub fn new(session: Session<'s, M::Bind>) -> Self {
        Self::unchecked(session.session())
    }

    /// The repository of `M` on any session; fails if the session is not on `M`'s bind.
    pub fn on(session: &'s DbSession) -> Result<Self> {
        let bind = M::TABLE.bind;
        if session.bind_key() == bind
            || (bind == crate::bind::DEFAULT_KEY && session.is_default_bind())
        {
            Ok(Self::unchecked(session))
        } else {
            Err(RepositoryError::WrongBind {
                model: M::TABLE.model,
                bind,
                session: session.bind_key().to_string(),
            })
        }
    }

    fn unchecked(session: &'s DbSession) -> Self {
        Repository {
            session,
            auto_commit: false,
            for_update: false,
            _model: PhantomData,
        }
    }

    /// Commits the session after every write of this repository (Advanced Alchemy's
    /// `auto_commit`); by default the commit mode decides when the request ends.
    pub fn auto_commit(mut self, yes: bool) -> Self {
        self.auto_commit = yes;
        self
    }

    /// Locks the rows read (`SELECT … FOR UPDATE`) on PostgreSQL and MySQL; on SQLite, which
    /// locks whole databases, the session becomes a writer before the read.
    pub fn with_for_update(mut self, yes: bool) -> Self {
        self.for_update = yes;
        self
    }

    /// The session.
    pub fn session(&self) -> &'s DbSession {
        self.session
    }

    fn backend(&self) -> Backend {
        self.session.backend()
    }

    fn err(&self, error: SessionError) -> RepositoryError {
        RepositoryError::from_session(M::TABLE.model, error)
    }

    fn not_found() -> RepositoryError {
        RepositoryError::NotFound {
            model: M::TABLE.model,
        }
    }

    fn pk() -> &'static crate::model::Column {
        M::TABLE.primary_key()
    }

    fn col(name: &'static str) -> Expr {
        Expr::col((M::TABLE.name, name))
    }

    fn lock(&self, select: &mut SelectStatement) {
        if self.for_update && self.backend() != Backend::Sqlite {
            select.lock(LockType::Update);
        }
    }

    /// Makes the session a writer before a read-then-write, so the read and the write share
    /// one snapshot no other writer can change (see [`crate::access`]).
    async fn writing(&self) -> Result<()> {
        self.session.write_lock().await.map_err(|e| self.err(e))
    }

    /// [`Repository::with_for_update`] on SQLite, which has no row locks: the session becomes
    /// a writer before the read.
    async fn locking(&self) -> Result<()> {
        match self.for_update && self.backend() == Backend::Sqlite {
            true => self.writing().await,
            false => Ok(()),
        }
    }

    async fn committed<T>(&self, value: T) -> Result<T> {
        if self.auto_commit {
            self.session.commit().await.map_err(|e| self.err(e))?;
        }
        Ok(value)
    }

    /// The ordering of a list: the filters' ordering, then the primary key (in the
    /// direction of the last ordering, as keysets do) unless it is already there.
    fn full_order(
        compiled: &filters::Compiled,
    ) -> impl Iterator<Item = (&'static str, SortOrder)> + '_ {
        let pk = Self::pk().name;
        let tie = match compiled.order.iter().any(|(c, _)| *c == pk) {
            true => None,
            false => Some((
                pk,
                compiled.order.last().map(|(_, o)| *o).unwrap_or_default(),
            )),
        };
        compiled.order.iter().copied().chain(tie)
    }

    /// A SELECT of `M` with `filters` applied (where, order with the primary key last,
    /// limit/offset unless `paginate` is false).
    fn select(
        &self,
        filters: &[Filter<M>],
        paginate: bool,
    ) -> Result<(SelectStatement, filters::Compiled)> {
        let compiled = filters::compile(filters, self.backend())?;
        let mut select = M::select_statement();
        if let Some(condition) = compiled.where_clause() {
            select.cond_where(condition);
        }
        if paginate {
            for (column, order) in Self::full_order(&compiled) {
                select.order_by((M::TABLE.name, column), sort(order));
            }
            if let Some(lo) = compiled.limit_offset {
                select.limit(lo.limit).offset(lo.offset);
            }
        }
        self.lock(&mut select);
        Ok((select, compiled))
    }

    /// The row with primary key `id`, or `NotFound`.
    pub async fn get(&self, id: impl Into<Value>) -> Result<M> {
        self.get_or_none(id).await?.ok_or_else(Self::not_found)
    }

    /// The row with primary key `id`, if any.
    pub async fn get_or_none(&self, id: impl Into<Value>) -> Result<Option<M>> {
        self.locking().await?;
        let by_key = |id: Value| {
            let mut select = M::select_statement();
            select.and_where(Self::col(Self::pk().name).eq(id));
            select
        };
        if self.for_update {
            let mut select = by_key(id.into());
            self.lock(&mut select);
            return self
                .session
                .fetch_optional(&select)
                .await
                .map_err(|e| self.err(e));
        }
        let values = sea_query::Values(vec![id.into()]);
        let prepared = self
            .session
            .prepared(prepared::key(M::TABLE, "get", ""), || {
                by_key(values.0[0].clone())
            });
        self.session
            .fetch_optional_prepared(&prepared, &values)
            .await
            .map_err(|e| self.err(e))
    }

    /// The one row matching `filters` (pagination ignored): `NotFound` if none,
    /// `MultipleResults` if several.
    pub async fn get_one(&self, filters: &[Filter<M>]) -> Result<M> {
        self.get_one_or_none(filters)
            .await?
            .ok_or_else(Self::not_found)
    }

    /// The row matching `filters`, if any; `MultipleResults` if several.
    pub async fn get_one_or_none(&self, filters: &[Filter<M>]) -> Result<Option<M>> {
        self.locking().await?;
        let (mut select, _) = self.select(filters, false)?;
        select.limit(2);
        let mut rows: Vec<M> = self
            .session
            .fetch_all(&select)
            .await
            .map_err(|e| self.err(e))?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(rows.pop()),
            _ => Err(RepositoryError::MultipleResults {
                model: M::TABLE.model,
            }),
        }
    }

    /// The number of rows matching `filters` (pagination ignored).
    pub async fn count(&self, filters: &[Filter<M>]) -> Result<u64> {
        let compiled = filters::compile(filters, self.backend())?;
        let mut count = Query::select();
        count
            .expr(Func::count(Expr::col(sea_query::Asterisk)))
            .from(M::TABLE.name);
        if let Some(condition) = compiled.where_clause() {
            count.cond_where(condition);
        }
        let (n,): (i64,) = self
            .session
            .fetch_one(&count)
            .await
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    /// Whether a row matches `filters`: a `SELECT 1 … LIMIT 1`, not a count.
    pub async fn exists(&self, filters: &[Filter<M>]) -> Result<bool> {
        let compiled = filters::compile(filters, self.backend())?;
        let mut probe = Query::select();
        probe.expr(Expr::val(1)).from(M::TABLE.name).limit(1);
        if let Some(condition) = compiled.where_clause() {
            probe.cond_where(condition);
        }
        let row: Option<(i32,)> = self
            .session
            .fetch_optional(&probe)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.is_some())
    }

    /// The rows matching `filters`, ordered (the primary key last) and paginated.
    pub async fn list(&self, filters: &[Filter<M>]) -> Result<Vec<M>> {
        self.locking().await?;
        let (select, _) = self.select(filters, true)?;
        self.session
            .fetch_all(&select)
            .await
            .map_err(|e| self.err(e))
    }

    /// A page and the total count of rows matching `filters`, from one snapshot.
    ///
    /// One statement: the page, and a total that costs nothing when the page proves it (a
    /// page shorter than its limit ends the rows: the total is its offset plus its length)
    /// and is a `COUNT(*)` of the filtered rows otherwise, evaluated by the database only
    /// then (SQLite and PostgreSQL skip it; MySQL may compute it anyway). Nothing counts or
    /// sorts more rows than the page and the count need. An empty page past the end costs
    /// one more `COUNT(*)` (in the same transaction where the backend has one).
    pub async fn list_and_count(&self, filters: &[Filter<M>]) -> Result<(Vec<M>, u64)> {
        self.locking().await?;
        let (page, compiled) = self.select(filters, true)?;
        let Some(lo) = compiled.limit_offset else {
            let rows: Vec<M> = self
                .session
                .fetch_all(&page)
                .await
                .map_err(|e| self.err(e))?;
            let total = rows.len() as u64;
            return Ok((rows, total));
        };
        // SQLite: two statements in one read transaction (there a second statement costs
        // less than the window function below). Locking reads keep their locking clause on
        // the page itself.
        let two_statements = self.backend() == Backend::Sqlite || self.for_update;
        if two_statements {
            if self.backend() == Backend::Sqlite {
                // The page and the count see one snapshot.
                self.session
                    .read_transaction()
                    .await
                    .map_err(|e| self.err(e))?;
            }
            let rows: Vec<M> = self
                .session
                .fetch_all(&page)
                .await
                .map_err(|e| self.err(e))?;
            // A short page ends the rows; an empty page past the end proves nothing.
            let proven = (rows.len() as u64) < lo.limit && (!rows.is_empty() || lo.offset == 0);
            let total = match proven {
                true => lo.offset + rows.len() as u64,
                false => self.count(filters).await?,
            };
            return Ok((rows, total));
        }
        // SELECT p.*, CASE WHEN COUNT(*) OVER () < limit THEN offset + COUNT(*) OVER ()
        //   ELSE (SELECT COUNT(*) FROM t WHERE …) END FROM (page) p ORDER BY …
        // The window counts the page's rows only; the scalar subquery is evaluated only in
        // the branch that needs it.
        const PAGE: &str = "ra_page";
        let mut count = Query::select();
        count
            .expr(Func::count(Expr::col(sea_query::Asterisk)))
            .from(M::TABLE.name);
        if let Some(condition) = compiled.where_clause() {
            count.cond_where(condition);
        }
        let length = || Expr::cust("COUNT(*) OVER ()");
        let total = Expr::case(
            length().lt(lo.limit as i64),
            Expr::val(lo.offset as i64).add(length()),
        )
        .finally(Expr::SubQuery(None, Box::new(count.into())));
        let mut query = Query::select();
        query
            .columns(M::TABLE.columns.iter().map(|c| (PAGE, c.name)))
            .expr_as(total, "ra_total")
            .from_subquery(page, PAGE);
        for (column, order) in Self::full_order(&compiled) {
            query.order_by((PAGE, column), sort(order));
        }
        let rows: Vec<WithTotal<M>> = self
            .session
            .fetch_all(&query)
            .await
            .map_err(|e| self.err(e))?;
        match rows.first() {
            Some(first) => {
                let total = first.1 as u64;
                Ok((rows.into_iter().map(|r| r.0).collect(), total))
            }
            None if lo.offset > 0 => Ok((Vec::new(), self.count(filters).await?)),
            None => Ok((Vec::new(), 0)),
        }
    }

    /// [`Repository::list_and_count`] as an [`OffsetPagination`].
    pub async fn paginate(&self, filters: &[Filter<M>]) -> Result<OffsetPagination<M>> {
        let (items, total) = self.list_and_count(filters).await?;
        let lo = filters.iter().rev().find_map(Filter::as_limit_offset);
        Ok(OffsetPagination::new(items, total, lo))
    }

    /// A keyset page: up to `keyset.limit` rows after the keyset's position, and whether
    /// more follow. Deep pages cost the same as the first.
    pub async fn list_keyset(
        &self,
        filters: &[Filter<M>],
        keyset: &Keyset<M>,
    ) -> Result<(Vec<M>, bool)> {
        self.locking().await?;
        let compiled = filters::compile(filters, self.backend())?;
        let order = keyset.full_order();
        let mut select = M::select_statement();
        if let Some(condition) = compiled.where_clause() {
            select.cond_where(condition);
        }
        if let Some(position) = &keyset.after {
            if position.len() != order.len() {
                return Err(
                    FilterError::new("cursor", "the cursor does not match the ordering").into(),
                );
            }
            select.cond_where(after_position::<M>(&order, position));
        }
        for (column, o) in &order {
            select.order_by((M::TABLE.name, *column), sort(*o));
        }
        select.limit(keyset.limit + 1);
        self.lock(&mut select);
        let mut rows: Vec<M> = self
            .session
            .fetch_all(&select)
            .await
            .map_err(|e| self.err(e))?;
        let more = rows.len() as u64 > keyset.limit;
        rows.truncate(keyset.limit as usize);
        Ok((rows, more))
    }

    /// Inserts `model` (generating a nil UUID key, stamping audit columns, reading back an
    /// auto-increment key) and returns it.
    pub async fn create(&self, mut model: M) -> Result<M> {
        model.prepare_insert(crate::model::now());
        self.insert(std::slice::from_mut(&mut model)).await?;
        self.committed(model).await
    }

    /// Inserts `models` with multi-row INSERTs, chunked under the backend's bind-parameter
    /// limit, and returns them with their keys.
    pub async fn create_many(&self, mut models: Vec<M>) -> Result<Vec<M>> {
        let now = crate::model::now();
        for model in &mut models {
            model.prepare_insert(now);
        }
        self.insert(&mut models).await?;
        self.committed(models).await
    }

    /// One row's INSERT, through this bind's prepared statement.
    async fn insert_one(&self, model: &mut M, columns: &[usize], auto: bool) -> Result<()> {
        let table = M::TABLE;
        let pk = Self::pk();
        let values = model.values();
        let values = sea_query::Values(columns.iter().map(|&i| values[i].clone()).collect());
        let statement = |returning: bool| {
            let mut insert = Query::insert();
            insert
                .into_table(table.name)
                .columns(columns.iter().map(|&i| table.columns[i].name))
                .values_panic(values.0.iter().cloned().map(Expr::val));
            if returning {
                insert.returning_col(pk.name);
            }
            insert
        };
        match auto {
            false => {
                let prepared = self
                    .session
                    .prepared(prepared::key(table, "insert", ""), || statement(false));
                self.session
                    .execute_prepared(&prepared, &values)
                    .await
                    .map_err(|e| self.err(e))?;
            }
            // MySQL reads the key from the OK packet, not from RETURNING.
            true if self.backend() == Backend::MySql => {
                let insert = statement(false);
                let ids = self
                    .session
                    .insert_returning_ids(&insert, pk.name, 1)
                    .await
                    .map_err(|e| self.err(e))?;
                self.set_auto_key(model, ids[0])?;
            }
            true => {
                let prepared = self
                    .session
                    .prepared(prepared::key(table, "insert_returning", ""), || {
                        statement(true)
                    });
                let (id,): (i64,) = self
                    .session
                    .fetch_optional_prepared(&prepared, &values)
                    .await
                    .map_err(|e| self.err(e))?
                    .ok_or_else(|| {
                        RepositoryError::Validation("INSERT … RETURNING returned no key".into())
                    })?;
                self.set_auto_key(model, id)?;
            }
        }
        Ok(())
    }

    /// Sets a generated auto-increment key on `model`.
    fn set_auto_key(&self, model: &mut M, id: i64) -> Result<()> {
        let value = match Self::pk().ty {
            crate::model::ColumnType::Integer => Value::from(id as i32),
            _ => Value::from(id),
        };
        model
            .set_primary_key(value)
            .map_err(|e| RepositoryError::Validation(e.to_string()))
    }

    async fn insert(&self, models: &mut [M]) -> Result<()> {
        if models.is_empty() {
            return Ok(());
        }
        let table = M::TABLE;
        let pk = Self::pk();
        let auto = pk.primary_key == Some(PrimaryKey::AutoIncrement);
        let columns: Vec<usize> = (0..table.columns.len())
            .filter(|&i| !(auto && table.columns[i].name == pk.name))
            .collect();
        if let [model] = models {
            return self.insert_one(model, &columns, auto).await;
        }
        let per_chunk = (parameter_limit(self.backend()) / columns.len().max(1)).max(1);
        for chunk in models.chunks_mut(per_chunk) {
            let mut insert = Query::insert();
            insert
                .into_table(table.name)
                .columns(columns.iter().map(|&i| table.columns[i].name));
            for model in chunk.iter() {
                let values = model.values();
                insert.values_panic(columns.iter().map(|&i| Expr::val(values[i].clone())));
            }
            if auto {
                let ids = self
                    .session
                    .insert_returning_ids(&insert, pk.name, chunk.len())
                    .await
                    .map_err(|e| self.err(e))?;
                for (model, id) in chunk.iter_mut().zip(ids) {
                    self.set_auto_key(model, id)?;
                }
            } else {
                self.session
                    .execute(&insert)
                    .await
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// Applies `changes` to the row with key `id` and returns it. Only columns whose value
    /// really changes are written, and `updated_at` moves forward only then.
    pub async fn update(&self, id: impl Into<Value>, changes: Changes<M>) -> Result<M> {
        let (model, _) = self.update_changed(id.into(), changes).await?;
        self.committed(model).await
    }

    /// Writes every column of `model` (found by its key) that differs from the stored row.
    pub async fn update_model(&self, model: M) -> Result<M> {
        self.writing().await?;
        let changes = full_changes(&model);
        let (model, _) = self
            .update_changed(model.primary_key_value(), changes)
            .await?;
        self.committed(model).await
    }

    /// [`Repository::update_model`] for several models: one read per chunk, one UPDATE
    /// per changed row.
    pub async fn update_many(&self, models: Vec<M>) -> Result<Vec<M>> {
        self.writing().await?;
        let ids: Vec<Value> = models.iter().map(|m| m.primary_key_value()).collect();
        let mut current = self.by_ids(&ids).await?;
        let mut out = Vec::with_capacity(models.len());
        for model in models {
            let id = model.primary_key_value();
            let Some(stored) = current.remove(&id) else {
                return Err(Self::not_found());
            };
            let (updated, _) = self.write_changes(stored, full_changes(&model)).await?;
            out.push(updated);
        }
        self.committed(out).await
    }

    async fn update_changed(&self, id: Value, changes: Changes<M>) -> Result<(M, bool)> {
        self.writing().await?;
        let locked = self.clone().with_for_update(true);
        let current = locked.get(id).await?;
        self.write_changes(current, changes).await
    }

    /// Writes the columns of `changes` that differ from `current`; returns the new row and
    /// whether anything was written.
    async fn write_changes(&self, mut current: M, changes: Changes<M>) -> Result<(M, bool)> {
        let pk = Self::pk().name;
        let mut set: Vec<(&'static str, Value)> = Vec::new();
        for (column, value) in changes.iter() {
            if column == pk || M::TABLE.column(column).and_then(|c| c.audit).is_some() {
                continue;
            }
            if current.value(column).as_ref() != Some(value) {
                set.push((column, value.clone()));
            }
        }
        if set.is_empty() {
            return Ok((current, false));
        }
        for (column, value) in &set {
            current
                .set_value(column, value.clone())
                .map_err(|e| RepositoryError::Validation(format!("{column}: {e}")))?;
        }
        if let Some(updated_at) = M::TABLE.audit_column(AuditColumn::UpdatedAt) {
            current.touch(crate::model::now());
            set.push((
                updated_at.name,
                current.value(updated_at.name).expect("audit column"),
            ));
        }
        let id = current.primary_key_value();
        let update = Query::update()
            .table(M::TABLE.name)
            .values(set.into_iter().map(|(c, v)| (c, Expr::val(v))))
            .and_where(Expr::col(pk).eq(id))
            .to_owned();
        self.session
            .execute(&update)
            .await
            .map_err(|e| self.err(e))?;
        Ok((current, true))
    }

    async fn by_ids(&self, ids: &[Value]) -> Result<HashMap<Value, M>> {
        let pk = Self::pk().name;
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(parameter_limit(self.backend())) {
            let mut select = M::select_statement();
            select.and_where(Self::col(pk).is_in(chunk.iter().cloned()));
            self.lock(&mut select);
            let rows: Vec<M> = self
                .session
                .fetch_all(&select)
                .await
                .map_err(|e| self.err(e))?;
            for row in rows {
                out.insert(row.primary_key_value(), row);
            }
        }
        Ok(out)
    }

    /// Inserts `model`, or — when a row with the same values in `match_fields` exists —
    /// updates that row's other columns (`INSERT … ON CONFLICT` / `ON DUPLICATE KEY
    /// UPDATE`). `updated_at` moves only if a column really changed. The match fields need a
    /// unique constraint (MySQL updates on any unique key).
    pub async fn upsert(&self, model: M, match_fields: &[ColumnRef<M>]) -> Result<M> {
        let mut out = self.upsert_rows(vec![model], match_fields).await?;
        let model = out.pop().ok_or_else(Self::not_found)?;
        self.committed(model).await
    }

    /// [`Repository::upsert`] for many rows, chunked.
    pub async fn upsert_many(
        &self,
        models: Vec<M>,
        match_fields: &[ColumnRef<M>],
    ) -> Result<Vec<M>> {
        let out = self.upsert_rows(models, match_fields).await?;
        self.committed(out).await
    }

    async fn upsert_rows(
        &self,
        mut models: Vec<M>,
        match_fields: &[ColumnRef<M>],
    ) -> Result<Vec<M>> {
        self.writing().await?;
        if match_fields.is_empty() {
            return Err(FilterError::new(
                "match_fields",
                "an upsert needs at least one match field",
            )
            .into());
        }
        let backend = self.backend();
        let table = M::TABLE;
        let pk = Self::pk();
        let auto = pk.primary_key == Some(PrimaryKey::AutoIncrement);
        let now = crate::model::now();
        for model in &mut models {
            model.prepare_insert(now);
        }
        let matched: Vec<&'static str> = match_fields.iter().map(|c| c.name()).collect();
        let columns: Vec<usize> = (0..table.columns.len())
            .filter(|&i| !(auto && table.columns[i].name == pk.name))
            .collect();
        let updatable: Vec<&'static str> = table
            .columns
            .iter()
            .filter(|c| c.name != pk.name && !matched.contains(&c.name) && c.audit.is_none())
            .map(|c| c.name)
            .collect();
        let on_conflict = upsert_clause(
            backend,
            table.name,
            &matched,
            &updatable,
            table.audit_column(AuditColumn::UpdatedAt).map(|c| c.name),
        );
        let per_chunk = (parameter_limit(backend) / columns.len().max(1)).max(1);
        let mut out = Vec::with_capacity(models.len());
        for chunk in models.chunks(per_chunk) {
            let mut insert = Query::insert();
            insert
                .into_table(table.name)
                .columns(columns.iter().map(|&i| table.columns[i].name));
            for model in chunk {
                let values = model.values();
                insert.values_panic(columns.iter().map(|&i| Expr::val(values[i].clone())));
            }
            insert.on_conflict(on_conflict.clone());
            match backend {
                Backend::MySql => {
                    self.session
                        .execute(&insert)
                        .await
                        .map_err(|e| self.err(e))?;
                    // No RETURNING: read the rows back by their match fields.
                    let mut any = Condition::any();
                    for model in chunk {
                        let mut all = Condition::all();
                        for field in &matched {
                            all = all
                                .add(Self::col(field).eq(model.value(field).expect("match field")));
                        }
                        any = any.add(all);
                    }
                    let select = M::select_statement().cond_where(any).to_owned();
                    let rows: Vec<M> = self
                        .session
                        .fetch_all(&select)
                        .await
                        .map_err(|e| self.err(e))?;
                    out.extend(order_like(chunk, rows, &matched));
                }
                _ => {
                    insert.returning(
                        Query::returning().columns(table.columns.iter().map(|c| c.name)),
                    );
                    let rows: Vec<M> = self
                        .session
                        .fetch_all(&insert)
                        .await
                        .map_err(|e| self.err(e))?;
                    out.extend(order_like(chunk, rows, &matched));
                }
            }
        }
        Ok(out)
    }

    /// The row whose `match_fields` equal `model`'s: created from `model` if none
    /// (`(row, true)`); otherwise, when `upsert`, updated with `model`'s other columns
    /// (`(row, false)`).
    pub async fn get_or_upsert(
        &self,
        model: M,
        match_fields: &[ColumnRef<M>],
        upsert: bool,
    ) -> Result<(M, bool)> {
        self.writing().await?;
        let filters = match_filters(&model, match_fields)?;
        let existing = self
            .clone()
            .with_for_update(true)
            .get_one_or_none(&filters)
            .await?;
        match existing {
            None => Ok((self.create(model).await?, true)),
            Some(current) if upsert => {
                let (row, _) = self.write_changes(current, full_changes(&model)).await?;
                Ok((self.committed(row).await?, false))
            }
            Some(current) => Ok((current, false)),
        }
    }

    /// Applies `changes` to the one row matching `filters` (`NotFound` if none); returns it
    /// and whether anything changed.
    pub async fn get_and_update(
        &self,
        filters: &[Filter<M>],
        changes: Changes<M>,
    ) -> Result<(M, bool)> {
        let current = self.clone().with_for_update(true).get_one(filters).await?;
        let (row, changed) = self.write_changes(current, changes).await?;
        Ok((self.committed(row).await?, changed))
    }

    /// Deletes the row with key `id` and returns it (`NotFound` if none).
    pub async fn delete(&self, id: impl Into<Value>) -> Result<M> {
        let id = id.into();
        let row = self.clone().with_for_update(true).get(id.clone()).await?;
        let delete = Query::delete()
            .from_table(M::TABLE.name)
            .and_where(Expr::col(Self::pk().name).eq(id))
            .to_owned();
        self.session
            .execute(&delete)
            .await
            .map_err(|e| self.err(e))?;
        self.committed(row).await
    }

    /// Reads the rows `condition` selects (locked where the backend can), deletes them, and
    /// returns them with the number of rows the DELETE removed.
    async fn take(
        &self,
        mut select: SelectStatement,
        condition: Condition,
    ) -> Result<(Vec<M>, u64)> {
        self.writing().await?;
        select.cond_where(condition.clone());
        if self.backend() != Backend::Sqlite {
            select.lock(LockType::Update);
        }
        let rows: Vec<M> = self
            .session
            .fetch_all(&select)
            .await
            .map_err(|e| self.err(e))?;
        let delete = Query::delete()
            .from_table(M::TABLE.name)
            .cond_where(condition)
            .to_owned();
        let deleted = self
            .session
            .execute(&delete)
            .await
            .map_err(|e| self.err(e))?;
        Ok((rows, deleted))
    }

    /// Deletes the rows with these keys (chunked) and returns those that existed.
    pub async fn delete_many<I: Into<Value>>(
        &self,
        ids: impl IntoIterator<Item = I>,
    ) -> Result<Vec<M>> {
        self.writing().await?;
        let ids: Vec<Value> = ids.into_iter().map(Into::into).collect();
        let pk = Self::pk().name;
        let mut out = Vec::new();
        for chunk in ids.chunks(parameter_limit(self.backend())) {
            let mut select = M::select_statement();
            select.order_by((M::TABLE.name, pk), Order::Asc);
            let condition = Condition::all().add(Self::col(pk).is_in(chunk.iter().cloned()));
            let (rows, _) = self.take(select, condition).await?;
            out.extend(rows);
        }
        self.committed(out).await
    }

    /// Deletes the rows matching `filters` and returns them. Refuses to run without a
    /// filter that restricts rows unless `allow_all` is set.
    pub async fn delete_where(&self, filters: &[Filter<M>], allow_all: bool) -> Result<Vec<M>> {
        self.writing().await?;
        let compiled = filters::compile(filters, self.backend())?;
        if !compiled.has_where && !allow_all {
            return Err(RepositoryError::Refused(
                "delete_where without a filter deletes every row; pass allow_all to mean it",
            ));
        }
        let (rows, deleted) = self.take(M::select_statement(), compiled.condition).await?;
        if deleted != rows.len() as u64 {
            // Something changed between the read and the delete (possible without row locks).
            let _ = self.session.rollback().await;
            return Err(RepositoryError::Refused(
                "deleted count does not match fetched count; rolled back",
            ));
        }
        self.committed(rows).await
    }

    /// The children of each parent through the foreign key `fk` of model `C`, in one query
    /// per chunk of parents (no N+1): `result[i]` holds the children of `parents[i]`,
    /// ordered by their primary key.
    pub async fn children<C: Model, K>(&self, parents: &[M], fk: Col<C, K>) -> Result<Vec<Vec<C>>> {
        let mut index: HashMap<Value, usize> = HashMap::with_capacity(parents.len());
        for (i, parent) in parents.iter().enumerate() {
            index.insert(parent.primary_key_value(), i);
        }
        let keys: Vec<Value> = index.keys().cloned().collect();
        let mut out: Vec<Vec<C>> = parents.iter().map(|_| Vec::new()).collect();
        let child_pk = C::TABLE.primary_key().name;
        let of = |keys: &[Value]| {
            C::select_statement()
                .and_where(Expr::col((C::TABLE.name, fk.name())).is_in(keys.iter().cloned()))
                .order_by((C::TABLE.name, child_pk), Order::Asc)
                .to_owned()
        };
        for chunk in keys.chunks(parameter_limit(self.backend())) {
            let rows: Vec<C> = match chunk {
                // The children of one parent: the same SQL every time.
                [key] => {
                    let prepared = self
                        .session
                        .prepared(prepared::key(C::TABLE, "children", fk.name()), || of(chunk));
                    let values = sea_query::Values(vec![key.clone()]);
                    self.session.fetch_all_prepared(&prepared, &values).await
                }
                _ => self.session.fetch_all(&of(chunk)).await,
            }
            .map_err(|e| RepositoryError::from_session(C::TABLE.model, e))?;
            for row in rows {
                if let Some(&i) = row.value(fk.name()).and_then(|v| index.get(&v)) {
                    out[i].push(row);
                }
            }
        }
        Ok(out)
    }
}

fn sort(order: SortOrder) -> Order {
    match order {
        SortOrder::Asc => Order::Asc,
        SortOrder::Desc => Order::Desc,
    }
}

/// The changes that make a stored row equal to `model` (every non-key column).
fn full_changes<M: Model>(model: &M) -> Changes<M> {
    let mut changes = Changes::new();
    for (column, value) in M::TABLE.columns.iter().zip(model.values()) {
        if column.primary_key.is_none() && column.audit.is_none() {
            changes.push(column.name, value);
        }
    }
    changes
}

fn match_filters<M: Model>(model: &M, fields: &[ColumnRef<M>]) -> Result<Vec<Filter<M>>> {
    if fields.is_empty() {
        return Err(FilterError::new("match_fields", "at least one match field is needed").into());
    }
    Ok(fields
        .iter()
        .map(|c| {
            Filter::new(filters::Kind::Comparison {
                column: c.name(),
                op: filters::Op::Eq,
                values: vec![model.value(c.name()).expect("a column of the model")],
            })
        })
        .collect())
}

/// Rows returned by an upsert, put back in the order of the input models.
fn order_like<M: Model>(inputs: &[M], rows: Vec<M>, matched: &[&'static str]) -> Vec<M> {
    let key = |m: &M| matched.iter().map(|f| m.value(f)).collect::<Vec<_>>();
    let mut by_key: HashMap<Vec<Option<Value>>, M> =
        rows.into_iter().map(|r| (key(&r), r)).collect();
    inputs
        .iter()
        .filter_map(|m| by_key.remove(&key(m)))
        .collect()
}

/// `WHERE (a, b, …) > (x, y, …)` in the keyset's mixed-direction ordering.
fn after_position<M: Model>(order: &[(&'static str, SortOrder)], position: &[Value]) -> Condition {
    let mut any = Condition::any();
    for i in 0..order.len() {
        let mut all = Condition::all();
        for j in 0..i {
            all = all.add(Expr::col((M::TABLE.name, order[j].0)).eq(position[j].clone()));
        }
        let (column, dir) = order[i];
        let c = Expr::col((M::TABLE.name, column));
        all = all.add(match dir {
            SortOrder::Asc => c.gt(position[i].clone()),
            SortOrder::Desc => c.lt(position[i].clone()),
        });
        any = any.add(all);
    }
    any
}

/// `ON CONFLICT (match) DO UPDATE SET …` / `ON DUPLICATE KEY UPDATE …`, moving `updated_at`
/// only when a column really changes.
fn upsert_clause(
    backend: Backend,
    table: &'static str,
    matched: &[&'static str],
    updatable: &[&'static str],
    updated_at: Option<&'static str>,
) -> OnConflict {
    let incoming = |column: &'static str| -> Expr {
        match backend {
            Backend::MySql => Expr::cust_with_exprs("VALUES(?)", [Expr::col(column)]),
            _ => Expr::col(("excluded", column)),
        }
    };
    let current = |column: &'static str| Expr::col((table, column));
    let mut clause = OnConflict::columns(matched.iter().copied());
    // MySQL evaluates assignments left to right against the updated row: compute
    // `updated_at` first, while the old values are still there.
    if let Some(updated_at) = updated_at {
        let changed = updatable
            .iter()
            .map(|c| match backend {
                Backend::Postgres => {
                    Expr::cust_with_exprs("$1 IS DISTINCT FROM $2", [current(c), incoming(c)])
                }
                Backend::Sqlite => Expr::cust_with_exprs("? IS NOT ?", [current(c), incoming(c)]),
                Backend::MySql => Expr::cust_with_exprs("NOT (? <=> ?)", [current(c), incoming(c)]),
            })
            .reduce(|a, b| a.or(b));
        let value = match changed {
            Some(changed) => Expr::case(changed, incoming(updated_at))
                .finally(current(updated_at))
                .into(),
            None => current(updated_at),
        };
        clause.value(updated_at, value);
    }
    for column in updatable {
        clause.value(*column, incoming(column));
    }
    if updatable.is_empty() && updated_at.is_none() {
        // Nothing to update: keep the row (a no-op assignment, valid on every backend).
        let first = matched[0];
        clause.value(first, current(first));
    }
    clause.to_owned()
}
