//! [`Changes`]: the columns an update sets.

use std::marker::PhantomData;

use sea_query::Value;

use crate::filters::{ColumnRef, FilterError};
use crate::model::{Col, Model};

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

/// The changes that make a stored row equal to `model` (every non-key column).
pub(super) fn full_changes<M: Model>(model: &M) -> Changes<M> {
    let mut changes = Changes::new();
    for (column, value) in M::TABLE.columns.iter().zip(model.values()) {
        if column.primary_key.is_none() && column.audit.is_none() {
            changes.push(column.name, value);
        }
    }
    changes
}
