//! Columns, operators, orderings and pages: the pieces filters are made of.

use std::marker::PhantomData;

use sea_query::Value;

use super::{check, FilterError};
use crate::model::{Col, Model};

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Ascending.
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// A comparison operator of [`Filter::comparison`](crate::filters::Filter::comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    /// A `LIKE` pattern (`%`, `_`), case-sensitive.
    Like,
    /// A `LIKE` pattern, case-insensitive.
    ILike,
    StartsWith,
    EndsWith,
    IStartsWith,
    IEndsWith,
}

impl Op {
    /// Parses Advanced Alchemy's operator names.
    pub fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "in" => Op::In,
            "not_in" | "notin" => Op::NotIn,
            "like" => Op::Like,
            "ilike" => Op::ILike,
            "startswith" | "starts_with" => Op::StartsWith,
            "endswith" | "ends_with" => Op::EndsWith,
            "istartswith" | "istarts_with" => Op::IStartsWith,
            "iendswith" | "iends_with" => Op::IEndsWith,
            _ => return None,
        })
    }

    pub(super) fn textual(self) -> bool {
        matches!(
            self,
            Op::Like | Op::ILike | Op::StartsWith | Op::EndsWith | Op::IStartsWith | Op::IEndsWith
        )
    }
}

/// A column's Rust type, for typed filter values: the field type, or `T` for `Option<T>`.
pub trait Scalar {
    /// The value type used in filters.
    type Inner: Into<Value>;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t { type Inner = $t; }
        impl Scalar for Option<$t> { type Inner = $t; }
    )*};
}
scalar!(
    bool,
    i16,
    i32,
    i64,
    f32,
    f64,
    String,
    Vec<u8>,
    uuid::Uuid,
    chrono::NaiveDate,
    chrono::DateTime<chrono::Utc>,
    serde_json::Value
);

/// A column of model `M`, typed or checked: what filters that take several columns accept
/// (`Filter::search([Author::NAME.into(), ...])` or the constants themselves).
pub struct ColumnRef<M> {
    pub(super) name: &'static str,
    pub(super) _model: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for ColumnRef<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ColumnRef({})", self.name)
    }
}

impl<M> Clone for ColumnRef<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for ColumnRef<M> {}

impl<M, T, R> From<Col<M, T, R>> for ColumnRef<M> {
    fn from(col: Col<M, T, R>) -> Self {
        ColumnRef {
            name: col.name(),
            _model: PhantomData,
        }
    }
}

impl<M: Model> ColumnRef<M> {
    /// The column named `name`, if `M` has it.
    pub fn named(name: &str) -> Result<Self, FilterError> {
        check::<M>(name).map(|c| ColumnRef {
            name: c.name,
            _model: PhantomData,
        })
    }

    /// The SQL name.
    pub fn name(self) -> &'static str {
        self.name
    }
}

/// `LIMIT` and `OFFSET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitOffset {
    /// Rows per page.
    pub limit: u64,
    /// Rows skipped.
    pub offset: u64,
}
