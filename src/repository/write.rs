//! Writing: inserts (one row, many rows), updates and deletes.

use std::collections::HashMap;

use sea_query::{Condition, Expr, ExprTrait, LockType, Order, Query, SelectStatement, Value};

use super::changes::{as_i64, full_changes, Changes};
use super::handle::Result;
use super::{Repository, RepositoryError};
use crate::bind::prepared;
use crate::filters::Filter;
use crate::model::{AuditColumn, Model, ModelExt, PrimaryKey};

/// Refuses a string longer than its column's `max_length` (in characters), on every backend:
/// SQLite would store it, PostgreSQL and MySQL would fail the statement.
pub(crate) fn check_length(column: Option<&crate::model::Column>, value: &Value) -> Result<()> {
    if let (Some(column), Value::String(Some(text))) = (column, value) {
        if let crate::model::ColumnType::String(Some(max)) = column.ty {
            let length = text.chars().count();
            if length > max as usize {
                return Err(RepositoryError::Validation(format!(
                    "{}: at most {max} characters, got {length}",
                    column.name
                )));
            }
        }
    }
    Ok(())
}

/// [`check_length`] for every column of a row's `values` (in [`Table::columns`] order).
///
/// [`Table::columns`]: crate::model::Table::columns
pub(super) fn check_lengths<M: Model>(values: &[Value]) -> Result<()> {
    for (column, value) in M::TABLE.columns.iter().zip(values) {
        check_length(Some(column), value)?;
    }
    Ok(())
}

impl<M: Model> Repository<'_, M> {
    /// Inserts `model` (generating a nil UUID key, stamping audit columns, reading back an
    /// auto-increment key) and returns it.
    pub async fn create(&self, mut model: M) -> Result<M> {
        check_lengths::<M>(&model.values())?;
        model.prepare_insert(crate::model::now());
        self.insert(std::slice::from_mut(&mut model)).await?;
        self.committed(model).await
    }

    /// Inserts `models` with multi-row INSERTs, chunked under the backend's bind-parameter
    /// limit, and returns them with their keys.
    ///
    /// A string longer than its column's `max_length` is a `Validation` error naming the
    /// item's index (`item 2: name: at most 100 characters, got 101`), before anything is
    /// written. A constraint violation names the item that causes it too
    /// ([`RepositoryError::Item`]).
    pub async fn create_many(&self, mut models: Vec<M>) -> Result<Vec<M>> {
        for (i, model) in models.iter().enumerate() {
            check_lengths::<M>(&model.values()).map_err(|e| e.at_item(i))?;
        }
        let now = crate::model::now();
        for model in &mut models {
            model.prepare_insert(now);
        }
        let single = models.len() == 1;
        self.insert(&mut models)
            .await
            .map_err(|e| if single { e.at_item(0) } else { e })?;
        self.committed(models).await
    }

    /// One row's INSERT, through this bind's prepared statement.
    pub(super) async fn insert_one(
        &self,
        model: &mut M,
        columns: &[usize],
        auto: bool,
    ) -> Result<()> {
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
            true if !self.dialect().insert_returning() => {
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
    pub(super) fn set_auto_key(&self, model: &mut M, id: i64) -> Result<()> {
        let value = match Self::pk().ty {
            crate::model::ColumnType::Integer => Value::from(id as i32),
            _ => Value::from(id),
        };
        model
            .set_primary_key(value)
            .map_err(|e| RepositoryError::Validation(e.to_string()))
    }

    pub(super) async fn insert(&self, models: &mut [M]) -> Result<()> {
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
        let per_chunk = (self.dialect().parameter_limit() / columns.len().max(1)).max(1);
        // Where a failed statement aborts the transaction, a savepoint per chunk keeps it
        // usable to find the row at fault.
        let guarded = self.dialect().failed_statement_aborts_transaction();
        for (n, chunk) in models.chunks_mut(per_chunk).enumerate() {
            let savepoint = match guarded {
                true => Some(self.session.savepoint().await.map_err(|e| self.err(e))?),
                false => None,
            };
            let result = self.insert_chunk(chunk, &columns, auto).await;
            let error = match result {
                Ok(()) => {
                    if let Some(savepoint) = savepoint {
                        savepoint.release().await.map_err(|e| self.err(e))?;
                    }
                    continue;
                }
                Err(error) => error,
            };
            if !error.is_constraint_violation() {
                return Err(error); // a dropped savepoint is rolled back before the next statement
            }
            if let Some(savepoint) = savepoint {
                if savepoint.rollback().await.is_err() {
                    return Err(error);
                }
            }
            return Err(match self.row_at_fault(chunk, &columns).await {
                Some(index) => error.at_item(n * per_chunk + index),
                None => error,
            });
        }
        Ok(())
    }

    /// One multi-row INSERT of `chunk` (setting auto-increment keys).
    async fn insert_chunk(&self, chunk: &mut [M], columns: &[usize], auto: bool) -> Result<()> {
        let pk = Self::pk();
        let insert = Self::insert_rows(chunk.iter(), columns);
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
        Ok(())
    }

    /// The INSERT of `rows`, `columns` (indexes into the table's columns) of each.
    pub(super) fn insert_rows<'m>(
        rows: impl Iterator<Item = &'m M>,
        columns: &[usize],
    ) -> sea_query::InsertStatement
    where
        M: 'm,
    {
        let table = M::TABLE;
        let mut insert = Query::insert();
        insert
            .into_table(table.name)
            .columns(columns.iter().map(|&i| table.columns[i].name));
        for model in rows {
            let values = model.values();
            insert.values_panic(columns.iter().map(|&i| Expr::val(values[i].clone())));
        }
        insert
    }

    /// After a multi-row INSERT of `chunk` failed on a constraint (and left nothing behind):
    /// the index of the first row that fails alone, inserting the rows one by one, in order,
    /// inside a savepoint that is rolled back. Only on this failure path; `None` when the
    /// rows pass one by one, or the search itself fails.
    async fn row_at_fault(&self, chunk: &[M], columns: &[usize]) -> Option<usize> {
        let savepoint = self.session.savepoint().await.ok()?;
        let mut found = None;
        for (index, model) in chunk.iter().enumerate() {
            let insert = Self::insert_rows(std::iter::once(model), columns);
            if let Err(error) = self.session.execute(&insert).await {
                if self.err(error).is_constraint_violation() {
                    found = Some(index);
                }
                break;
            }
        }
        savepoint.rollback().await.ok()?;
        found
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

    pub(super) async fn update_changed(&self, id: Value, changes: Changes<M>) -> Result<(M, bool)> {
        self.writing().await?;
        let locked = self.clone().with_for_update(true);
        let current = locked.get(id).await?;
        self.write_changes(current, changes).await
    }

    /// Writes the columns of `changes` that differ from `current`; returns the new row and
    /// whether anything was written. The changes' preconditions (`If-Match`, an expected
    /// version) are checked against `current` first; a model with a `#[model(version)]`
    /// column is updated only while the stored version is still the one read, and its
    /// version moves up by one.
    pub(super) async fn write_changes(
        &self,
        mut current: M,
        changes: Changes<M>,
    ) -> Result<(M, bool)> {
        let model = M::TABLE.model;
        if !changes.if_match.matches(current.etag().as_deref()) {
            return Err(RepositoryError::PreconditionFailed { model });
        }
        let version = M::TABLE.audit_column(AuditColumn::Version);
        let read = version
            .and_then(|c| current.value(c.name))
            .and_then(|v| as_i64(&v));
        if let (Some(expected), Some(read)) = (changes.version, read) {
            if expected != read {
                return Err(RepositoryError::Stale { model });
            }
        }
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
            check_length(M::TABLE.column(column), value)?;
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
        let mut update = Query::update();
        update.table(M::TABLE.name).and_where(Expr::col(pk).eq(id));
        if let (Some(column), Some(read)) = (version, read) {
            let next = match column.ty {
                crate::model::ColumnType::Integer => Value::from((read + 1) as i32),
                _ => Value::from(read + 1),
            };
            current
                .set_value(column.name, next.clone())
                .map_err(|e| RepositoryError::Validation(format!("{}: {e}", column.name)))?;
            set.push((column.name, next));
            update.and_where(Expr::col(column.name).eq(read));
        }
        update.values(set.into_iter().map(|(c, v)| (c, Expr::val(v))));
        let written = self
            .session
            .execute(&update)
            .await
            .map_err(|e| self.err(e))?;
        if version.is_some() && written == 0 {
            return Err(RepositoryError::Stale { model });
        }
        Ok((current, true))
    }

    pub(super) async fn by_ids(&self, ids: &[Value]) -> Result<HashMap<Value, M>> {
        let pk = Self::pk().name;
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(self.dialect().parameter_limit()) {
            let mut select = M::select_statement();
            select.and_where(Self::col(pk).is_in(chunk.iter().cloned()));
            if let Some(live) = self.live::<M>() {
                select.and_where(live);
            }
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

    /// Deletes the row with key `id` and returns it (`NotFound` if none). A
    /// `#[model(soft_delete)]` model's row is marked deleted instead (its `deleted_at` set),
    /// and reads skip it from then on; [`Repository::hard_delete`] removes it.
    pub async fn delete(&self, id: impl Into<Value>) -> Result<M> {
        let id = id.into();
        let mut row = self.clone().with_for_update(true).get(id.clone()).await?;
        let condition = Condition::all().add(Expr::col(Self::pk().name).eq(id));
        if let Some(column) = Self::soft_delete_column() {
            let now = crate::model::now();
            row.set_value(column.name, Value::from(Some(now)))
                .map_err(|e| RepositoryError::Validation(e.to_string()))?;
        }
        self.remove(condition).await?;
        self.committed(row).await
    }

    /// Removes the row with key `id` for good, soft-delete model or not (a soft-deleted row
    /// included), and returns it.
    pub async fn hard_delete(&self, id: impl Into<Value>) -> Result<M> {
        let id = id.into();
        let row = self
            .clone()
            .with_deleted()
            .with_for_update(true)
            .get(id.clone())
            .await?;
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

    /// Brings back the soft-deleted row with key `id` (its `deleted_at` cleared) and returns
    /// it; a live row is returned as is. `NotFound` if there is no such row; a
    /// [`RepositoryError::Refused`] for a model without `#[model(soft_delete)]`.
    pub async fn restore(&self, id: impl Into<Value>) -> Result<M> {
        let Some(column) = Self::soft_delete_column() else {
            return Err(RepositoryError::Refused(
                "restore needs a model with a #[model(soft_delete)] column",
            ));
        };
        let id = id.into();
        let mut row = self
            .clone()
            .with_deleted()
            .with_for_update(true)
            .get(id.clone())
            .await?;
        if row
            .value(column.name)
            .is_some_and(|v| v == Value::ChronoDateTimeUtc(None))
        {
            return self.committed(row).await;
        }
        let update = Query::update()
            .table(M::TABLE.name)
            .value(column.name, Expr::val(Value::ChronoDateTimeUtc(None)))
            .and_where(Expr::col(Self::pk().name).eq(id))
            .to_owned();
        self.session
            .execute(&update)
            .await
            .map_err(|e| self.err(e))?;
        row.set_value(column.name, Value::ChronoDateTimeUtc(None))
            .map_err(|e| RepositoryError::Validation(e.to_string()))?;
        self.committed(row).await
    }

    /// The model's `#[model(soft_delete)]` column.
    fn soft_delete_column() -> Option<&'static crate::model::Column> {
        M::TABLE.audit_column(AuditColumn::DeletedAt)
    }

    /// Deletes the rows `condition` selects — marks them deleted for a soft-delete model —
    /// and returns how many it removed.
    async fn remove(&self, condition: Condition) -> Result<u64> {
        let removed = match Self::soft_delete_column() {
            Some(column) => {
                let update = Query::update()
                    .table(M::TABLE.name)
                    .value(
                        column.name,
                        Expr::val(Value::from(Some(crate::model::now()))),
                    )
                    .cond_where(condition)
                    .to_owned();
                self.session.execute(&update).await
            }
            None => {
                let delete = Query::delete()
                    .from_table(M::TABLE.name)
                    .cond_where(condition)
                    .to_owned();
                self.session.execute(&delete).await
            }
        };
        removed.map_err(|e| self.err(e))
    }

    /// Reads the rows `condition` selects (locked where the backend can), deletes them, and
    /// returns them with the number of rows the DELETE removed.
    pub(super) async fn take(
        &self,
        mut select: SelectStatement,
        condition: Condition,
    ) -> Result<(Vec<M>, u64)> {
        self.writing().await?;
        select.cond_where(condition.clone());
        if self.dialect().row_locks() {
            select.lock(LockType::Update);
        }
        let mut rows: Vec<M> = self
            .session
            .fetch_all(&select)
            .await
            .map_err(|e| self.err(e))?;
        let deleted = self.remove(condition).await?;
        if let Some(column) = Self::soft_delete_column() {
            let now = Value::from(Some(crate::model::now()));
            for row in &mut rows {
                row.set_value(column.name, now.clone())
                    .map_err(|e| RepositoryError::Validation(e.to_string()))?;
            }
        }
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
        for chunk in ids.chunks(self.dialect().parameter_limit()) {
            let mut select = M::select_statement();
            select.order_by((M::TABLE.name, pk), Order::Asc);
            let mut condition = Condition::all().add(Self::col(pk).is_in(chunk.iter().cloned()));
            if let Some(live) = self.live::<M>() {
                condition = condition.add(live);
            }
            let (rows, _) = self.take(select, condition).await?;
            out.extend(rows);
        }
        self.committed(out).await
    }

    /// Deletes the rows matching `filters` and returns them. Refuses to run without a
    /// filter that restricts rows unless `allow_all` is set.
    pub async fn delete_where(&self, filters: &[Filter<M>], allow_all: bool) -> Result<Vec<M>> {
        self.writing().await?;
        let (compiled, restricted) = self.compile(filters)?;
        if !restricted && !allow_all {
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
}
