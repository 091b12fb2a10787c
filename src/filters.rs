//! Filters: Advanced Alchemy's filter set, typed by model and checked against its columns.
//!
//! A [`Filter<M>`] belongs to one model. Built from the generated column constants, its
//! columns and values are checked by the compiler; built from strings (query parameters),
//! they are checked against the model's columns when built, so an unknown column is an
//! error before any SQL exists.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use rocket_alchemy::filters::{Filter, SortOrder};
//! use rocket_alchemy::Model;
//!
//! #[derive(Model)]
//! struct Author {
//!     id: uuid::Uuid,
//!     name: String,
//!     created_at: DateTime<Utc>,
//!     updated_at: DateTime<Utc>,
//! }
//!
//! let since: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
//! let filters = vec![
//!     Filter::search([Author::NAME], "le guin", true),
//!     Filter::on_before_after(Author::CREATED_AT, None, Some(since)),
//!     Filter::order_by(Author::NAME, SortOrder::Asc),
//!     Filter::limit_offset(20, 40),
//! ];
//! // From strings, checked against the model:
//! assert!(Filter::<Author>::order_by_name("name", SortOrder::Desc).is_ok());
//! assert!(Filter::<Author>::order_by_name("password", SortOrder::Desc).is_err());
//! # let _ = filters;
//! ```
//!
//! | filter | semantics |
//! |---|---|
//! | `limit_offset` | `LIMIT` / `OFFSET` (ignored by `count`, `exists`, `get_one`, `delete_where`) |
//! | `order_by` | `ORDER BY`, appended in order; the primary key is always the last tiebreaker |
//! | `before_after` | `col < before AND col > after` (exclusive; a `None` side is skipped) |
//! | `on_before_after` | `col <= on_or_before AND col >= on_or_after` (inclusive) |
//! | `collection` | `col IN (...)`; an empty list matches no row; `None` is a no-op |
//! | `not_in_collection` | `col NOT IN (...)`; empty or `None` is a no-op |
//! | `search` | `%value%` in any of the columns (OR), case-insensitive or not; `%`, `_` and `\` in the value are literal |
//! | `not_in_search` | the value in none of the columns (AND) |
//! | `comparison` | `eq`, `ne`, `gt`, `ge`, `lt`, `le`, `in`, `not_in`, `like`, `ilike`, `starts_with`, `ends_with`, `istarts_with`, `iends_with` |
//! | `is_null`, `not_null` | `IS NULL`, `IS NOT NULL` |
//! | `and`, `or` | groups: a member that restricts nothing counts as true (so it makes an `or` restrict nothing); an empty `or` matches nothing |
//!
//! Conditions follow SQL's three-valued logic: a comparison with NULL is unknown, so a row
//! whose column is NULL matches neither `eq` nor `ne`, neither `in` nor `not_in`, and is left
//! out by `not_in_search` on that column.
//!
//! Case-sensitive matching is exact on every backend (SQLite's `LIKE` ignores ASCII case,
//! so `GLOB` is used there; MySQL compares bytes); case-insensitive matching uses `ILIKE` on
//! PostgreSQL and `LOWER(..) LIKE LOWER(..)` elsewhere (SQLite lowers ASCII letters only).

use std::marker::PhantomData;

use sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr, SimpleExpr, Value};

use crate::config::Backend;
use crate::model::{Col, ColumnType, Model};

/// A filter that names a column or value the model does not have, or is otherwise invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// The query parameter or column concerned.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FilterError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FilterError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Ascending.
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// A comparison operator of [`Filter::comparison`].
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

    fn textual(self) -> bool {
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
    name: &'static str,
    _model: PhantomData<fn() -> M>,
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

impl<M, T> From<Col<M, T>> for ColumnRef<M> {
    fn from(col: Col<M, T>) -> Self {
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

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    LimitOffset(LimitOffset),
    OrderBy(&'static str, SortOrder),
    BeforeAfter {
        column: &'static str,
        before: Option<Value>,
        after: Option<Value>,
        inclusive: bool,
    },
    Collection {
        column: &'static str,
        values: Option<Vec<Value>>,
        negate: bool,
    },
    Search {
        columns: Vec<&'static str>,
        value: String,
        ignore_case: bool,
        negate: bool,
    },
    Comparison {
        column: &'static str,
        op: Op,
        values: Vec<Value>,
    },
    Null {
        column: &'static str,
        negate: bool,
    },
    Group {
        any: bool,
        filters: Vec<Kind>,
    },
}

/// A filter on model `M`. See the [module docs](self) for the whole set.
pub struct Filter<M> {
    pub(crate) kind: Kind,
    _model: PhantomData<fn() -> M>,
}

impl<M> Clone for Filter<M> {
    fn clone(&self) -> Self {
        Filter {
            kind: self.kind.clone(),
            _model: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Filter<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind.fmt(f)
    }
}

fn values<T: Into<Value>>(items: impl IntoIterator<Item = T>) -> Vec<Value> {
    items.into_iter().map(Into::into).collect()
}

impl<M: Model> Filter<M> {
    pub(crate) fn new(kind: Kind) -> Self {
        Filter {
            kind,
            _model: PhantomData,
        }
    }

    /// `LIMIT limit OFFSET offset`.
    pub fn limit_offset(limit: u64, offset: u64) -> Self {
        Self::new(Kind::LimitOffset(LimitOffset { limit, offset }))
    }

    /// `ORDER BY column`.
    pub fn order_by<T>(column: Col<M, T>, order: SortOrder) -> Self {
        Self::new(Kind::OrderBy(column.name(), order))
    }

    /// `ORDER BY column`, by name (checked).
    pub fn order_by_name(column: &str, order: SortOrder) -> Result<Self, FilterError> {
        Ok(Self::new(Kind::OrderBy(
            ColumnRef::<M>::named(column)?.name,
            order,
        )))
    }

    /// `column < before AND column > after` (exclusive).
    pub fn before_after<T: Scalar>(
        column: Col<M, T>,
        before: Option<T::Inner>,
        after: Option<T::Inner>,
    ) -> Self {
        Self::new(Kind::BeforeAfter {
            column: column.name(),
            before: before.map(Into::into),
            after: after.map(Into::into),
            inclusive: false,
        })
    }

    /// `column <= on_or_before AND column >= on_or_after` (inclusive).
    pub fn on_before_after<T: Scalar>(
        column: Col<M, T>,
        on_or_before: Option<T::Inner>,
        on_or_after: Option<T::Inner>,
    ) -> Self {
        Self::new(Kind::BeforeAfter {
            column: column.name(),
            before: on_or_before.map(Into::into),
            after: on_or_after.map(Into::into),
            inclusive: true,
        })
    }

    fn collection_of<T: Scalar, I>(column: Col<M, T>, values_: Option<I>, negate: bool) -> Self
    where
        I: IntoIterator,
        I::Item: Into<T::Inner>,
    {
        let values = values_.map(|v| values(v.into_iter().map(|x| x.into())));
        Self::new(Kind::Collection {
            column: column.name(),
            values,
            negate,
        })
    }

    /// `column IN (values)`: an empty list matches nothing, `None` is a no-op.
    pub fn collection<T: Scalar, I>(column: Col<M, T>, values_: Option<I>) -> Self
    where
        I: IntoIterator,
        I::Item: Into<T::Inner>,
    {
        Self::collection_of(column, values_, false)
    }

    /// `column NOT IN (values)`: empty or `None` is a no-op.
    pub fn not_in_collection<T: Scalar, I>(column: Col<M, T>, values_: Option<I>) -> Self
    where
        I: IntoIterator,
        I::Item: Into<T::Inner>,
    {
        Self::collection_of(column, values_, true)
    }

    /// `value` appears in any of `columns` (`%value%`, wildcards in `value` literal).
    pub fn search<C: Into<ColumnRef<M>>>(
        columns: impl IntoIterator<Item = C>,
        value: impl Into<String>,
        ignore_case: bool,
    ) -> Self {
        Self::new(Kind::Search {
            columns: columns.into_iter().map(|c| c.into().name).collect(),
            value: value.into(),
            ignore_case,
            negate: false,
        })
    }

    /// `value` appears in none of `columns`.
    pub fn not_in_search<C: Into<ColumnRef<M>>>(
        columns: impl IntoIterator<Item = C>,
        value: impl Into<String>,
        ignore_case: bool,
    ) -> Self {
        Self::new(Kind::Search {
            columns: columns.into_iter().map(|c| c.into().name).collect(),
            value: value.into(),
            ignore_case,
            negate: true,
        })
    }

    /// `column <op> value`. For `In` / `NotIn` use [`Filter::is_in`] / [`Filter::not_in`].
    pub fn comparison<T: Scalar>(column: Col<M, T>, op: Op, value: impl Into<T::Inner>) -> Self {
        Self::new(Kind::Comparison {
            column: column.name(),
            op,
            values: vec![value.into().into()],
        })
    }

    /// `column = value`.
    pub fn eq<T: Scalar>(column: Col<M, T>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Eq, value)
    }

    /// `column <> value`.
    pub fn ne<T: Scalar>(column: Col<M, T>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Ne, value)
    }

    /// `column > value`.
    pub fn gt<T: Scalar>(column: Col<M, T>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Gt, value)
    }

    /// `column >= value`.
    pub fn ge<T: Scalar>(column: Col<M, T>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Ge, value)
    }

    /// `column < value`.
    pub fn lt<T: Scalar>(column: Col<M, T>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Lt, value)
    }

    /// `column <= value`.
    pub fn le<T: Scalar>(column: Col<M, T>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Le, value)
    }

    /// `column IN (values)` (an empty list matches nothing).
    pub fn is_in<T: Scalar, I>(column: Col<M, T>, values_: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<T::Inner>,
    {
        Self::new(Kind::Comparison {
            column: column.name(),
            op: Op::In,
            values: values(values_.into_iter().map(|x| x.into())),
        })
    }

    /// `column NOT IN (values)` (an empty list excludes nothing).
    pub fn not_in<T: Scalar, I>(column: Col<M, T>, values_: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<T::Inner>,
    {
        Self::new(Kind::Comparison {
            column: column.name(),
            op: Op::NotIn,
            values: values(values_.into_iter().map(|x| x.into())),
        })
    }

    /// `column IS NULL`.
    pub fn is_null<T>(column: Col<M, T>) -> Self {
        Self::new(Kind::Null {
            column: column.name(),
            negate: false,
        })
    }

    /// `column IS NOT NULL`.
    pub fn not_null<T>(column: Col<M, T>) -> Self {
        Self::new(Kind::Null {
            column: column.name(),
            negate: true,
        })
    }

    /// All of `filters` (pagination and ordering inside a group are ignored).
    pub fn and(filters: impl IntoIterator<Item = Filter<M>>) -> Self {
        Self::new(Kind::Group {
            any: false,
            filters: filters.into_iter().map(|f| f.kind).collect(),
        })
    }

    /// Any of `filters` (an empty group matches nothing).
    pub fn or(filters: impl IntoIterator<Item = Filter<M>>) -> Self {
        Self::new(Kind::Group {
            any: true,
            filters: filters.into_iter().map(|f| f.kind).collect(),
        })
    }

    /// A comparison from strings (a column name, an operator name and a raw value), checked
    /// against the model: the column must exist, the value must parse as its type, and
    /// textual operators need a text column. `In` / `NotIn` take comma-separated values.
    pub fn parse_comparison(column: &str, op: &str, raw: &str) -> Result<Self, FilterError> {
        let col = M::TABLE
            .column(column)
            .ok_or_else(|| unknown::<M>(column))?;
        let op = Op::parse(op).ok_or_else(|| {
            FilterError::new(
                column,
                format!("invalid operator `{op}`; expected one of eq, ne, gt, ge, lt, le, in, not_in, like, ilike, startswith, endswith, istartswith, iendswith"),
            )
        })?;
        if op.textual() && !matches!(col.ty, ColumnType::String(_)) {
            return Err(FilterError::new(
                column,
                format!("`{column}` is not a text column"),
            ));
        }
        let parse = |raw: &str| {
            if op.textual() {
                Ok(Value::from(raw.to_string()))
            } else {
                col.ty
                    .parse(raw)
                    .map_err(|e| FilterError::new(column, format!("{column}: {e}")))
            }
        };
        let values = match op {
            Op::In | Op::NotIn => raw
                .split(',')
                .filter(|s| !s.is_empty())
                .map(parse)
                .collect::<Result<_, _>>()?,
            _ => vec![parse(raw)?],
        };
        Ok(Self::new(Kind::Comparison {
            column: col.name,
            op,
            values,
        }))
    }

    /// An inclusive or exclusive range from raw strings, parsed as the column's type.
    pub fn parse_range(
        column: &str,
        before: Option<&str>,
        after: Option<&str>,
        inclusive: bool,
    ) -> Result<Self, FilterError> {
        let col = M::TABLE
            .column(column)
            .ok_or_else(|| unknown::<M>(column))?;
        let parse = |raw: Option<&str>| {
            raw.map(|r| col.ty.parse(r).map_err(|e| FilterError::new(column, e)))
                .transpose()
        };
        Ok(Self::new(Kind::BeforeAfter {
            column: col.name,
            before: parse(before)?,
            after: parse(after)?,
            inclusive,
        }))
    }

    /// `column IN (values)` from raw strings, parsed as the column's type.
    pub fn parse_collection(column: &str, raw: &[&str]) -> Result<Self, FilterError> {
        let col = M::TABLE
            .column(column)
            .ok_or_else(|| unknown::<M>(column))?;
        let values = raw
            .iter()
            .map(|r| col.ty.parse(r).map_err(|e| FilterError::new(column, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(Kind::Collection {
            column: col.name,
            values: Some(values),
            negate: false,
        }))
    }

    /// A search over columns named by strings (checked: they must be text columns).
    pub fn search_names(
        columns: &[&str],
        value: impl Into<String>,
        ignore_case: bool,
    ) -> Result<Self, FilterError> {
        let mut names = Vec::with_capacity(columns.len());
        for name in columns {
            let col = M::TABLE.column(name).ok_or_else(|| unknown::<M>(name))?;
            if !matches!(col.ty, ColumnType::String(_)) {
                return Err(FilterError::new(
                    *name,
                    format!("`{name}` is not a text column"),
                ));
            }
            names.push(col.name);
        }
        Ok(Self::new(Kind::Search {
            columns: names,
            value: value.into(),
            ignore_case,
            negate: false,
        }))
    }

    /// The `LimitOffset` of this filter, if it is one.
    pub fn as_limit_offset(&self) -> Option<LimitOffset> {
        match self.kind {
            Kind::LimitOffset(lo) => Some(lo),
            _ => None,
        }
    }
}

/// Filters compiled for one statement.
pub(crate) struct Compiled {
    pub(crate) condition: Condition,
    pub(crate) order: Vec<(&'static str, SortOrder)>,
    pub(crate) limit_offset: Option<LimitOffset>,
    pub(crate) has_where: bool,
}

impl Compiled {
    /// The WHERE condition, or `None` when no filter restricts rows (so no `WHERE TRUE`
    /// keeps SQLite from counting by its b-tree).
    pub(crate) fn where_clause(&self) -> Option<Condition> {
        self.has_where.then(|| self.condition.clone())
    }
}

/// Compiles `filters` for model `M` on `backend`, checking every column again (a filter of a
/// model with the same column names is the only way a stale name could get here).
pub(crate) fn compile<M: Model>(
    filters: &[Filter<M>],
    backend: Backend,
) -> Result<Compiled, FilterError> {
    let mut out = Compiled {
        condition: Condition::all(),
        order: Vec::new(),
        limit_offset: None,
        has_where: false,
    };
    for filter in filters {
        match &filter.kind {
            Kind::LimitOffset(lo) => out.limit_offset = Some(*lo),
            Kind::OrderBy(column, order) => {
                check::<M>(column)?;
                out.order.push((column, *order));
            }
            other => {
                if let Some(expr) = condition::<M>(other, backend)? {
                    out.condition = out.condition.add(expr);
                    out.has_where = true;
                }
            }
        }
    }
    Ok(out)
}

fn check<M: Model>(column: &str) -> Result<&'static crate::model::Column, FilterError> {
    M::TABLE.column(column).ok_or_else(|| unknown::<M>(column))
}

fn unknown<M: Model>(name: &str) -> FilterError {
    let known: Vec<&str> = M::TABLE.columns.iter().map(|c| c.name).collect();
    FilterError::new(
        name,
        format!(
            "`{name}` is not a column of {}; columns: {}",
            M::TABLE.model,
            known.join(", ")
        ),
    )
}

fn col<M: Model>(column: &'static str) -> Expr {
    Expr::col((M::TABLE.name, column))
}

fn never() -> SimpleExpr {
    Expr::cust("1 = 0")
}

fn condition<M: Model>(kind: &Kind, backend: Backend) -> Result<Option<SimpleExpr>, FilterError> {
    Ok(match kind {
        Kind::LimitOffset(_) | Kind::OrderBy(..) => None,
        Kind::BeforeAfter {
            column,
            before,
            after,
            inclusive,
        } => {
            check::<M>(column)?;
            let mut parts = Vec::new();
            if let Some(before) = before {
                parts.push(if *inclusive {
                    col::<M>(column).lte(before.clone())
                } else {
                    col::<M>(column).lt(before.clone())
                });
            }
            if let Some(after) = after {
                parts.push(if *inclusive {
                    col::<M>(column).gte(after.clone())
                } else {
                    col::<M>(column).gt(after.clone())
                });
            }
            parts.into_iter().reduce(|a, b| a.and(b))
        }
        Kind::Collection {
            column,
            values,
            negate,
        } => {
            check::<M>(column)?;
            match (values, negate) {
                (None, _) => None,
                (Some(v), true) if v.is_empty() => None,
                (Some(v), false) if v.is_empty() => Some(never()),
                (Some(v), false) => Some(col::<M>(column).is_in(v.iter().cloned())),
                (Some(v), true) => Some(col::<M>(column).is_not_in(v.iter().cloned())),
            }
        }
        Kind::Search {
            columns,
            value,
            ignore_case,
            negate,
        } => {
            if columns.is_empty() {
                return Err(FilterError::new(
                    "searchString",
                    "a search needs at least one column",
                ));
            }
            let mut parts = Vec::with_capacity(columns.len());
            for column in columns {
                let c = check::<M>(column)?;
                if !matches!(c.ty, ColumnType::String(_)) {
                    return Err(FilterError::new(
                        *column,
                        format!("`{column}` is not a text column"),
                    ));
                }
                let contains =
                    text_match::<M>(backend, column, Pattern::Contains(value), *ignore_case);
                parts.push(if *negate { contains.not() } else { contains });
            }
            let combine = |a: SimpleExpr, b: SimpleExpr| if *negate { a.and(b) } else { a.or(b) };
            parts.into_iter().reduce(combine)
        }
        Kind::Comparison { column, op, values } => {
            let c = check::<M>(column)?;
            let first = || {
                values
                    .first()
                    .cloned()
                    .ok_or_else(|| FilterError::new(*column, "a comparison needs a value"))
            };
            let text = |v: Value| match v {
                Value::String(Some(s)) => Ok(s),
                _ => Err(FilterError::new(*column, "expected a text value")),
            };
            if op.textual() && !matches!(c.ty, ColumnType::String(_)) {
                return Err(FilterError::new(
                    *column,
                    format!("`{column}` is not a text column"),
                ));
            }
            Some(match op {
                Op::Eq => col::<M>(column).eq(first()?),
                Op::Ne => col::<M>(column).ne(first()?),
                Op::Gt => col::<M>(column).gt(first()?),
                Op::Ge => col::<M>(column).gte(first()?),
                Op::Lt => col::<M>(column).lt(first()?),
                Op::Le => col::<M>(column).lte(first()?),
                Op::In if values.is_empty() => never(),
                Op::In => col::<M>(column).is_in(values.iter().cloned()),
                Op::NotIn if values.is_empty() => return Ok(None),
                Op::NotIn => col::<M>(column).is_not_in(values.iter().cloned()),
                Op::Like | Op::ILike => {
                    let pattern = text(first()?)?;
                    if ends_with_lone_escape(&pattern) {
                        // PostgreSQL rejects such a pattern, the others read it literally.
                        return Err(FilterError::new(
                            *column,
                            "a LIKE pattern cannot end with an escape character (`\\`)",
                        ));
                    }
                    text_match::<M>(backend, column, Pattern::Like(&pattern), *op == Op::ILike)
                }
                Op::StartsWith => {
                    text_match::<M>(backend, column, Pattern::Prefix(&text(first()?)?), false)
                }
                Op::IStartsWith => {
                    text_match::<M>(backend, column, Pattern::Prefix(&text(first()?)?), true)
                }
                Op::EndsWith => {
                    text_match::<M>(backend, column, Pattern::Suffix(&text(first()?)?), false)
                }
                Op::IEndsWith => {
                    text_match::<M>(backend, column, Pattern::Suffix(&text(first()?)?), true)
                }
            })
        }
        Kind::Null { column, negate } => {
            check::<M>(column)?;
            Some(if *negate {
                col::<M>(column).is_not_null()
            } else {
                col::<M>(column).is_null()
            })
        }
        Kind::Group { any, filters } => {
            // A member that restricts nothing is TRUE: it vanishes from an AND and makes an
            // OR restrict nothing. An empty OR matches nothing, an empty AND everything.
            let mut parts = Vec::new();
            for f in filters {
                match condition::<M>(f, backend)? {
                    Some(e) => parts.push(e),
                    None if *any => return Ok(None),
                    None => {}
                }
            }
            match (parts.is_empty(), any) {
                (true, true) => Some(never()),
                (true, false) => None,
                _ => parts
                    .into_iter()
                    .reduce(|a, b| if *any { a.or(b) } else { a.and(b) }),
            }
        }
    })
}

enum Pattern<'a> {
    /// Literal text anywhere.
    Contains(&'a str),
    /// Literal text at the start.
    Prefix(&'a str),
    /// Literal text at the end.
    Suffix(&'a str),
    /// A user's LIKE pattern (`%`, `_`).
    Like(&'a str),
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether a LIKE pattern ends with an unescaped `\`.
fn ends_with_lone_escape(pattern: &str) -> bool {
    pattern.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Escapes GLOB's special characters (`*`, `?`, `[`) by bracketing them.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// A LIKE pattern (`%`, `_`, `\` escapes) as a GLOB pattern.
fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(next) => out.push_str(&escape_glob(&next.to_string())),
                None => out.push('\\'),
            },
            other => out.push_str(&escape_glob(&other.to_string())),
        }
    }
    out
}

fn text_match<M: Model>(
    backend: Backend,
    column: &'static str,
    pattern: Pattern<'_>,
    ignore_case: bool,
) -> SimpleExpr {
    let like = match &pattern {
        Pattern::Contains(t) => format!("%{}%", escape_like(t)),
        Pattern::Prefix(t) => format!("{}%", escape_like(t)),
        Pattern::Suffix(t) => format!("%{}", escape_like(t)),
        Pattern::Like(p) => (*p).to_string(),
    };
    let column_expr = || col::<M>(column);
    match (backend, ignore_case) {
        // sea-query puts ILIKE's ESCAPE inside parentheses, which PostgreSQL rejects.
        (Backend::Postgres, true) => {
            Expr::cust_with_exprs("$1 ILIKE $2 ESCAPE '\\'", [column_expr(), Expr::val(like)])
        }
        (Backend::Postgres, false) => column_expr().like(LikeExpr::new(like).escape('\\')),
        (_, true) => {
            Func::lower(column_expr()).like(LikeExpr::new(like.to_lowercase()).escape('\\'))
        }
        // SQLite's LIKE ignores ASCII case; GLOB is exact.
        (Backend::Sqlite, false) => {
            let glob = match &pattern {
                Pattern::Contains(t) => format!("*{}*", escape_glob(t)),
                Pattern::Prefix(t) => format!("{}*", escape_glob(t)),
                Pattern::Suffix(t) => format!("*{}", escape_glob(t)),
                Pattern::Like(p) => like_to_glob(p),
            };
            Expr::cust_with_exprs("? GLOB ?", [column_expr(), Expr::val(glob)])
        }
        // A binary operand makes MySQL compare bytes, whatever the column's collation.
        (Backend::MySql, false) => Expr::cust_with_exprs("CAST(? AS BINARY)", [column_expr()])
            .like(LikeExpr::new(like).escape('\\')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_translation() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob(r"100\%"), "100%");
        assert_eq!(like_to_glob("x*y?[z]"), "x[*]y[?][[]z]");
        assert_eq!(escape_like("50%_off\\"), r"50\%\_off\\");
        assert!(ends_with_lone_escape(r"a\"));
        assert!(!ends_with_lone_escape(r"a\\"));
        assert!(ends_with_lone_escape(r"a\\\"));
        assert!(!ends_with_lone_escape("a%"));
    }
}
