//! [`Changes`]: the columns an update sets.

use std::marker::PhantomData;

use sea_query::Value;

use crate::filters::{ColumnRef, FilterError};
use crate::model::{AuditColumn, Col, Model};
use crate::precondition::IfMatch;

/// Column changes for [`Repository::update`](crate::Repository::update): columns not set are left alone; setting an
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
    /// What the stored row must still be for the update to run.
    pub(super) if_match: IfMatch,
    pub(super) version: Option<i64>,
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
            if_match: IfMatch::Absent,
            version: None,
            _model: PhantomData,
        }
    }
}

impl<M> Clone for Changes<M> {
    fn clone(&self) -> Self {
        Changes {
            values: self.values.clone(),
            if_match: self.if_match.clone(),
            version: self.version,
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
    pub fn set<T: Into<Value>, R>(mut self, column: Col<M, T, R>, value: impl Into<T>) -> Self {
        self.push(column.name(), value.into().into());
        self
    }

    /// Sets `column` to `value` when `value` is `Some` (a PATCH field that may be absent).
    pub fn set_if<T: Into<Value>, R>(
        self,
        column: Col<M, T, R>,
        value: Option<impl Into<T>>,
    ) -> Self {
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

    /// Sets column `column` (a name from the model's metadata) to `value`, unchecked.
    pub(crate) fn set_raw(mut self, column: &'static str, value: Value) -> Self {
        self.push(column, value);
        self
    }

    fn push(&mut self, column: &'static str, value: Value) {
        self.values.retain(|(c, _)| *c != column);
        self.values.push((column, value));
    }

    /// Runs the update only if the stored row's [`ETag`](crate::ModelExt::etag) matches
    /// `if_match` (the request's `If-Match`); otherwise it fails with
    /// [`RepositoryError::PreconditionFailed`](crate::RepositoryError::PreconditionFailed)
    /// (412) and writes nothing. [`IfMatch::Absent`] imposes nothing.
    pub fn if_match(mut self, if_match: IfMatch) -> Self {
        self.if_match = if_match;
        self
    }

    /// Runs the update only if the stored row's `#[model(version)]` is still `version`;
    /// otherwise it fails with [`RepositoryError::Stale`](crate::RepositoryError::Stale)
    /// (409) and writes nothing.
    pub fn expect_version(mut self, version: i64) -> Self {
        self.version = Some(version);
        self
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

/// The changes that make a stored row equal to `model` (every non-key column), expecting
/// the stored row to be at `model`'s version, if the model has one.
pub(super) fn full_changes<M: Model>(model: &M) -> Changes<M> {
    let mut changes = Changes::new();
    if let Some(version) = M::TABLE
        .audit_column(AuditColumn::Version)
        .and_then(|c| model.value(c.name))
        .and_then(|v| as_i64(&v))
    {
        changes.version = Some(version);
    }
    for (column, value) in M::TABLE.columns.iter().zip(model.values()) {
        if column.primary_key.is_none() && column.audit.is_none() {
            changes.push(column.name, value);
        }
    }
    changes
}

/// An integer column's value.
pub(super) fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::BigInt(Some(v)) => Some(*v),
        Value::Int(Some(v)) => Some(i64::from(*v)),
        _ => None,
    }
}
