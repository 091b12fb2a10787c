//! [`Repository`]: one model's persistence methods on a session.

use std::marker::PhantomData;

use sea_query::{Expr, ExprTrait, LockType, Order, SelectStatement};

use super::RepositoryError;
use crate::config::Backend;
use crate::filters::{self, Filter, SortOrder};
use crate::guard::Session;
use crate::model::{Model, ModelExt};
use crate::session::{DbSession, SessionError};

/// The repository of model `M` on a session. See the [module docs](crate::repository).
pub struct Repository<'s, M: Model> {
    pub(super) session: &'s DbSession,
    pub(super) auto_commit: bool,
    pub(super) for_update: bool,
    /// Reads see soft-deleted rows too.
    pub(super) with_deleted: bool,
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
            with_deleted: self.with_deleted,
            _model: PhantomData,
        }
    }
}

pub(super) type Result<T, E = RepositoryError> = std::result::Result<T, E>;

/// Warns once per bind and table when a repository is made for a model its bind does not
/// have registered: `create_all` does not create its table, and `database check` reports
/// the table as one to drop.
fn warn_if_unregistered(session: &DbSession, table: &'static crate::model::Table) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    let bind = session.bind();
    if bind.tables().iter().any(|t| t.name == table.name) {
        return;
    }
    static WARNED: OnceLock<Mutex<HashSet<(String, &'static str)>>> = OnceLock::new();
    let first = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((bind.key().to_string(), table.name));
    if first {
        tracing::warn!(
            target: "rocket_alchemy",
            "model {} is used on bind \"{}\" but not registered: add `.model::<{}>()` to `Alchemy::fairing()` (create_all skips its table, and `database check` reports it as `- table {}`)",
            table.model,
            bind.key(),
            table.model,
            table.name
        );
    }
}

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

    pub(super) fn unchecked(session: &'s DbSession) -> Self {
        warn_if_unregistered(session, M::TABLE);
        Repository {
            session,
            auto_commit: false,
            for_update: false,
            with_deleted: false,
            _model: PhantomData,
        }
    }

    /// Reads (and the updates and deletes that find rows by reading) see soft-deleted rows
    /// too (`#[model(soft_delete)]`); by default they are skipped. No effect on other models.
    pub fn with_deleted(mut self) -> Self {
        self.with_deleted = true;
        self
    }

    /// `deleted_at IS NULL` for a soft-delete model `T`, unless soft-deleted rows are asked
    /// for.
    pub(super) fn live<T: Model>(&self) -> Option<Expr> {
        if self.with_deleted {
            return None;
        }
        T::TABLE
            .audit_column(crate::model::AuditColumn::DeletedAt)
            .map(|c| Expr::col((T::TABLE.name, c.name)).is_null())
    }

    /// `filters` compiled, with the soft-delete condition added; the flag says whether the
    /// filters themselves restrict rows.
    pub(super) fn compile(&self, filters: &[Filter<M>]) -> Result<(filters::Compiled, bool)> {
        let mut compiled = filters::compile(filters, self.backend())?;
        let restricted = compiled.has_where;
        if let Some(live) = self.live::<M>() {
            compiled.condition = compiled.condition.add(live);
            compiled.has_where = true;
        }
        Ok((compiled, restricted))
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

    pub(super) fn backend(&self) -> Backend {
        self.session.backend()
    }

    pub(super) fn dialect(&self) -> &'static dyn crate::driver::Dialect {
        self.backend().dialect()
    }

    pub(super) fn err(&self, error: SessionError) -> RepositoryError {
        RepositoryError::from_session(M::TABLE.model, error)
    }

    pub(super) fn not_found() -> RepositoryError {
        RepositoryError::NotFound {
            model: M::TABLE.model,
        }
    }

    pub(super) fn pk() -> &'static crate::model::Column {
        M::TABLE.primary_key()
    }

    pub(super) fn col(name: &'static str) -> Expr {
        Expr::col((M::TABLE.name, name))
    }

    pub(super) fn lock(&self, select: &mut SelectStatement) {
        if self.for_update && self.dialect().row_locks() {
            select.lock(LockType::Update);
        }
    }

    /// Makes the session a writer before a read-then-write, so the read and the write share
    /// one snapshot no other writer can change (see [`crate::access`]).
    pub(super) async fn writing(&self) -> Result<()> {
        self.session.write_lock().await.map_err(|e| self.err(e))
    }

    /// [`Repository::with_for_update`] on SQLite, which has no row locks: the session becomes
    /// a writer before the read.
    pub(super) async fn locking(&self) -> Result<()> {
        match self.for_update && !self.dialect().row_locks() {
            true => self.writing().await,
            false => Ok(()),
        }
    }

    pub(super) async fn committed<T>(&self, value: T) -> Result<T> {
        if self.auto_commit {
            self.session.commit().await.map_err(|e| self.err(e))?;
        }
        Ok(value)
    }

    /// The ordering of a list: the filters' ordering, then the primary key (in the
    /// direction of the last ordering, as keysets do) unless it is already there.
    pub(super) fn full_order(
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
    pub(super) fn select(
        &self,
        filters: &[Filter<M>],
        paginate: bool,
    ) -> Result<(SelectStatement, filters::Compiled)> {
        let (compiled, _) = self.compile(filters)?;
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
}

pub(super) fn sort(order: SortOrder) -> Order {
    match order {
        SortOrder::Asc => Order::Asc,
        SortOrder::Desc => Order::Desc,
    }
}
