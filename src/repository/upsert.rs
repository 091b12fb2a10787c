//! Upserts: insert or update by match fields, in one statement per chunk.

use std::collections::HashMap;

use sea_query::{Condition, Expr, ExprTrait, OnConflict, Query, Value};

use super::changes::{full_changes, Changes};
use super::handle::Result;
use super::Repository;
use crate::config::Backend;
use crate::filters::{self, ColumnRef, Filter, FilterError};
use crate::model::{AuditColumn, Model, ModelExt, PrimaryKey};

impl<M: Model> Repository<'_, M> {
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

    pub(super) async fn upsert_rows(
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
        for (i, model) in models.iter().enumerate() {
            super::write::check_lengths::<M>(&model.values()).map_err(|e| match models.len() {
                1 => e,
                _ => e.at_item(i),
            })?;
        }
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
            table.audit_column(AuditColumn::Version).map(|c| c.name),
        );
        let per_chunk = (backend.dialect().parameter_limit() / columns.len().max(1)).max(1);
        let mut out = Vec::with_capacity(models.len());
        for chunk in models.chunks(per_chunk) {
            let mut insert = Self::insert_rows(chunk.iter(), &columns);
            insert.on_conflict(on_conflict.clone());
            match backend.dialect().insert_returning() {
                false => {
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
                true => {
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

/// `ON CONFLICT (match) DO UPDATE SET …` / `ON DUPLICATE KEY UPDATE …`, moving `updated_at`
/// only when a column really changes.
fn upsert_clause(
    backend: Backend,
    table: &'static str,
    matched: &[&'static str],
    updatable: &[&'static str],
    updated_at: Option<&'static str>,
    version: Option<&'static str>,
) -> OnConflict {
    let dialect = backend.dialect();
    let incoming = |column: &'static str| dialect.upsert_incoming(column);
    let current = |column: &'static str| Expr::col((table, column));
    let mut clause = OnConflict::columns(matched.iter().copied());
    // MySQL evaluates assignments left to right against the updated row: compute
    // `updated_at` and `version` first, while the old values are still there.
    let changed = || {
        updatable
            .iter()
            .map(|c| dialect.is_distinct(current(c), incoming(c)))
            .reduce(|a, b| a.or(b))
    };
    if let Some(updated_at) = updated_at {
        let value = match changed() {
            Some(changed) => Expr::case(changed, incoming(updated_at))
                .finally(current(updated_at))
                .into(),
            None => current(updated_at),
        };
        clause.value(updated_at, value);
    }
    if let Some(version) = version {
        let value = match changed() {
            Some(changed) => Expr::case(changed, current(version).add(1))
                .finally(current(version))
                .into(),
            None => current(version),
        };
        clause.value(version, value);
    }
    for column in updatable {
        clause.value(*column, incoming(column));
    }
    if updatable.is_empty() && updated_at.is_none() && version.is_none() {
        // Nothing to update: keep the row (a no-op assignment, valid on every backend).
        let first = matched[0];
        clause.value(first, current(first));
    }
    clause.to_owned()
}
