//! Typed inputs: [`Patch`] fields that tell an absent field from an explicit `null`, and the
//! `ToModel` / `ToChanges` derives that turn an input struct into a model (create) or
//! [`Changes`] (update) by field name, checked against the model at compile time.
//!
//! ```
//! use chrono::NaiveDate;
//! use rocket_alchemy::{Model, Patch, ToChanges, ToModel};
//!
//! #[derive(Model, Clone)]
//! struct Author {
//!     id: i64,
//!     #[model(max_length = 100)]
//!     name: String,
//!     dob: Option<NaiveDate>,
//! }
//!
//! /// `POST /authors`: every field is a model field of the same type.
//! #[derive(serde::Deserialize, ToModel)]
//! #[input(model = Author)]
//! struct AuthorCreate {
//!     name: String,
//!     dob: Option<NaiveDate>,
//! }
//!
//! /// `PATCH /authors/<id>`: absent = untouched, `null` = NULL (422 for `name`, which is
//! /// required), a value = set.
//! #[derive(serde::Deserialize, Default, ToChanges)]
//! #[serde(default)]
//! #[input(model = Author)]
//! struct AuthorPatch {
//!     name: Patch<String>,
//!     dob: Patch<NaiveDate>,
//! }
//! # use rocket_alchemy::service::{ToChanges as _, ToModel as _};
//! # let patch: AuthorPatch = serde_json::from_str(r#"{"name": null}"#).unwrap();
//! # let err = patch.to_changes().unwrap_err();
//! # assert_eq!(err.to_string(), "invalid input: `name` must not be null");
//! # let patch: AuthorPatch = serde_json::from_str(r#"{"dob": null}"#).unwrap();
//! # assert_eq!(patch.to_changes().unwrap().len(), 1);
//! ```
//!
//! What the derives check, and when:
//!
//! | mistake | caught |
//! |---|---|
//! | a field the model does not have | compile time, at the field |
//! | a field whose type is not the column's (`Patch<T>` for a `T` or `Option<T>` column) | compile time, at the field |
//! | a `ToModel` input that leaves a required column unset (not nullable, no default, not a generated key or audit column) | compile time |
//! | a `Patch` field without `#[serde(default)]` (absent would be an error) | compile time |
//! | `null` for a column that is not nullable | `Validation` (422) naming the field, before any SQL |
//! | a string longer than the column's `max_length` | `Validation` (422) naming the column, before any SQL |
//! | a missing required field, a value of the wrong JSON type | serde, as a 422 |
//!
//! `#[input(model = M, check = path)]` runs `fn(&mut Self) -> Result<(), RepositoryError>`
//! first, to normalise or validate beyond the column's own rules (trim a name, refuse a
//! blank one). `#[input(skip)]` on a field leaves it out of the mapping.

use chrono::{DateTime, NaiveDate, Utc};
use sea_query::Value;
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::model::{Col, Model, PrimaryKey, Table};
use crate::repository::{Changes, RepositoryError};

/// A field of a partial update: absent from the input, an explicit `null`, or a value.
///
/// Deserialize it with `#[serde(default)]` (on the field, or on a struct deriving `Default`: the `ToChanges`
/// derive insists) so that an absent field is [`Patch::Absent`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Not in the input: leave the column alone.
    #[default]
    Absent,
    /// `null`: set the column to NULL (a validation error for a column that is not nullable).
    Null,
    /// A value to set.
    Value(T),
}

impl<T> Patch<T> {
    /// Whether the input had the field (`null` included).
    pub fn is_present(&self) -> bool {
        !matches!(self, Patch::Absent)
    }

    /// The value, if any.
    pub fn as_value(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Maps the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(v) => Patch::Value(f(v)),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|v| match v {
            Some(v) => Patch::Value(v),
            None => Patch::Null,
        })
    }
}

/// A column's Rust type: `T`, or `Option<T>` for a nullable column. What a [`Patch`] field
/// must hold for it (`Patch<T>` in both cases).
pub trait ColumnValue: Into<Value> {
    /// The type without its `Option`.
    type Inner;
    /// The value of `inner`.
    fn from_inner(inner: Self::Inner) -> Self;
    /// NULL of this column's type, or `None` if the column is not nullable.
    fn null() -> Option<Value>;
}

macro_rules! column_values {
    ($($t:ty),* $(,)?) => {$(
        impl ColumnValue for $t {
            type Inner = $t;
            fn from_inner(inner: $t) -> Self {
                inner
            }
            fn null() -> Option<Value> {
                None
            }
        }
        impl ColumnValue for Option<$t> {
            type Inner = $t;
            fn from_inner(inner: $t) -> Self {
                Some(inner)
            }
            fn null() -> Option<Value> {
                Some(Value::from(None::<$t>))
            }
        }
    )*};
}

column_values!(
    bool,
    i16,
    i32,
    i64,
    f32,
    f64,
    String,
    Vec<u8>,
    Uuid,
    NaiveDate,
    DateTime<Utc>,
    serde_json::Value
);

impl<M: Model> Changes<M> {
    /// Applies one [`Patch`] field: absent leaves the column alone, `null` sets NULL (a
    /// [`RepositoryError::Validation`] naming the field if the column is not nullable), a
    /// value sets it (checked against `max_length`). What the `ToChanges` derive calls.
    pub fn patch<T: ColumnValue>(
        self,
        column: Col<M, T>,
        value: Patch<T::Inner>,
    ) -> Result<Self, RepositoryError> {
        match value {
            Patch::Absent => Ok(self),
            Patch::Null => match T::null() {
                Some(null) => Ok(self.set_raw(column.name(), null)),
                None => Err(RepositoryError::Validation(format!(
                    "`{}` must not be null",
                    field_of(M::TABLE, column.name())
                ))),
            },
            Patch::Value(v) => {
                let value: Value = T::from_inner(v).into();
                check_value(M::TABLE, column.name(), &value)?;
                Ok(self.set_raw(column.name(), value))
            }
        }
    }
}

fn field_of(table: &Table, column: &str) -> &'static str {
    table.column(column).map(|c| c.field).unwrap_or("?")
}

/// Checks `value` against the column's declared limits (`max_length`): the repository's
/// own check, run before any SQL.
fn check_value(table: &Table, column: &str, value: &Value) -> Result<(), RepositoryError> {
    crate::repository::check_length(table.column(column), value)
}

/// Checks every column of `model` against its declared limits: what the `ToModel` derive
/// runs on the model it built.
pub fn validate<M: Model>(model: &M) -> Result<(), RepositoryError> {
    for (column, value) in M::TABLE.columns.iter().zip(model.values()) {
        check_value(M::TABLE, column.name, &value)?;
    }
    Ok(())
}

/// A model with every field at its `Default`: what the `ToModel` derive starts from
/// (generated by `#[derive(Model)]`).
pub trait Blank {
    /// The blank model.
    fn blank() -> Self;
}

/// Whether `fields` (an input's field names) set every column of `table` that an insert
/// needs: not nullable, without a default, not a generated key, not an audit column. The
/// `ToModel` derive asserts it at compile time.
#[doc(hidden)]
pub const fn covers(table: &Table, fields: &[&str]) -> bool {
    let mut i = 0;
    while i < table.columns.len() {
        let c = &table.columns[i];
        let generated = matches!(
            c.primary_key,
            Some(PrimaryKey::AutoIncrement | PrimaryKey::UuidV4 | PrimaryKey::UuidV7)
        );
        let required = !c.nullable && c.default.is_none() && !generated && c.audit.is_none();
        if required && !contains(fields, c.field) {
            return false;
        }
        i += 1;
    }
    true
}

const fn contains(fields: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < fields.len() {
        if crate::model::same_name(fields[i], name) {
            return true;
        }
        i += 1;
    }
    false
}
