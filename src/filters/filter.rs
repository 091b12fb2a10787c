//! [`Filter`]: one condition, ordering or page of a model's query.

use std::marker::PhantomData;

use sea_query::Value;

use super::column::{ColumnRef, LimitOffset, Op, Scalar, SortOrder};
use super::{unknown, FilterError};
use crate::model::{Col, ColumnType, Model};

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

/// A filter on model `M`. See the [module docs](crate::filters) for the whole set.
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
    pub fn order_by<T, R>(column: Col<M, T, R>, order: SortOrder) -> Self {
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
    pub fn before_after<T: Scalar, R>(
        column: Col<M, T, R>,
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
    pub fn on_before_after<T: Scalar, R>(
        column: Col<M, T, R>,
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

    fn collection_of<T: Scalar, I, R>(
        column: Col<M, T, R>,
        values_: Option<I>,
        negate: bool,
    ) -> Self
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
    pub fn collection<T: Scalar, I, R>(column: Col<M, T, R>, values_: Option<I>) -> Self
    where
        I: IntoIterator,
        I::Item: Into<T::Inner>,
    {
        Self::collection_of(column, values_, false)
    }

    /// `column NOT IN (values)`: empty or `None` is a no-op.
    pub fn not_in_collection<T: Scalar, I, R>(column: Col<M, T, R>, values_: Option<I>) -> Self
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
    pub fn comparison<T: Scalar, R>(
        column: Col<M, T, R>,
        op: Op,
        value: impl Into<T::Inner>,
    ) -> Self {
        Self::new(Kind::Comparison {
            column: column.name(),
            op,
            values: vec![value.into().into()],
        })
    }

    /// `column = value`.
    pub fn eq<T: Scalar, R>(column: Col<M, T, R>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Eq, value)
    }

    /// `column <> value`.
    pub fn ne<T: Scalar, R>(column: Col<M, T, R>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Ne, value)
    }

    /// `column > value`.
    pub fn gt<T: Scalar, R>(column: Col<M, T, R>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Gt, value)
    }

    /// `column >= value`.
    pub fn ge<T: Scalar, R>(column: Col<M, T, R>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Ge, value)
    }

    /// `column < value`.
    pub fn lt<T: Scalar, R>(column: Col<M, T, R>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Lt, value)
    }

    /// `column <= value`.
    pub fn le<T: Scalar, R>(column: Col<M, T, R>, value: impl Into<T::Inner>) -> Self {
        Self::comparison(column, Op::Le, value)
    }

    /// `column IN (values)` (an empty list matches nothing).
    pub fn is_in<T: Scalar, I, R>(column: Col<M, T, R>, values_: I) -> Self
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
    pub fn not_in<T: Scalar, I, R>(column: Col<M, T, R>, values_: I) -> Self
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
    pub fn is_null<T, R>(column: Col<M, T, R>) -> Self {
        Self::new(Kind::Null {
            column: column.name(),
            negate: false,
        })
    }

    /// `column IS NOT NULL`.
    pub fn not_null<T, R>(column: Col<M, T, R>) -> Self {
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
