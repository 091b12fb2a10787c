//! Reading: by key, by filters, pages with their totals, keyset pages, children.

use std::collections::HashMap;

use sea_query::{Condition, Expr, ExprTrait, Func, Order, Query, Value};

use super::handle::{sort, Result};
use super::{Repository, RepositoryError};
use crate::bind::prepared;
use crate::filters::{Filter, FilterError, SortOrder};
use crate::model::{Col, Model, ModelExt};
use crate::pagination::{Keyset, OffsetPagination};

impl<M: Model> Repository<'_, M> {
    /// The row with primary key `id`, or `NotFound`.
    pub async fn get(&self, id: impl Into<Value>) -> Result<M> {
        self.get_or_none(id).await?.ok_or_else(Self::not_found)
    }

    /// The row with primary key `id`, if any.
    pub async fn get_or_none(&self, id: impl Into<Value>) -> Result<Option<M>> {
        self.locking().await?;
        let live = self.live::<M>();
        let by_key = |id: Value| {
            let mut select = M::select_statement();
            select.and_where(Self::col(Self::pk().name).eq(id));
            if let Some(live) = live.clone() {
                select.and_where(live);
            }
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
        let prepared = self.session.prepared(
            prepared::key(M::TABLE, "get", if live.is_some() { "live" } else { "" }),
            || by_key(values.0[0].clone()),
        );
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
        let (compiled, _) = self.compile(filters)?;
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
        let (compiled, _) = self.compile(filters)?;
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
        let separate = self.dialect().count_in_second_statement();
        if separate || self.for_update {
            if separate {
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
        let (compiled, _) = self.compile(filters)?;
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

    /// The children of each parent through the foreign key `fk` of model `C`, in one query
    /// per chunk of parents (no N+1): `result[i]` holds the children of `parents[i]`,
    /// ordered by their primary key.
    ///
    /// `fk` must be a column of `C` declared `references = M`: any other column (`Todo::TEXT`
    /// for the parents' key, or a key to another model) is a compile error at the argument.
    pub async fn children<C: Model, K>(
        &self,
        parents: &[M],
        fk: Col<C, K, M>,
    ) -> Result<Vec<Vec<C>>> {
        let mut index: HashMap<Value, usize> = HashMap::with_capacity(parents.len());
        for (i, parent) in parents.iter().enumerate() {
            index.insert(parent.primary_key_value(), i);
        }
        let keys: Vec<Value> = index.keys().cloned().collect();
        let mut out: Vec<Vec<C>> = parents.iter().map(|_| Vec::new()).collect();
        let child_pk = C::TABLE.primary_key().name;
        let live = self.live::<C>();
        let of = |keys: &[Value]| {
            let mut select = C::select_statement();
            select.and_where(Expr::col((C::TABLE.name, fk.name())).is_in(keys.iter().cloned()));
            if let Some(live) = live.clone() {
                select.and_where(live);
            }
            select
                .order_by((C::TABLE.name, child_pk), Order::Asc)
                .to_owned()
        };
        for chunk in keys.chunks(self.dialect().parameter_limit()) {
            let rows: Vec<C> = match chunk {
                // The children of one parent: the same SQL every time.
                [key] => {
                    let prepared = self.session.prepared(
                        prepared::key(
                            C::TABLE,
                            if live.is_some() {
                                "children_live"
                            } else {
                                "children"
                            },
                            fk.name(),
                        ),
                        || of(chunk),
                    );
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
