//! Filters compiled into one statement's condition, ordering and page, per backend.

use sea_query::{Condition, Expr, ExprTrait, SimpleExpr, Value};

use super::column::{LimitOffset, Op, SortOrder};
use super::filter::Kind;
use super::{check, Filter, FilterError};
use crate::config::Backend;
use crate::driver::TextPattern;
use crate::model::{ColumnType, Model};

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
                    text_match::<M>(backend, column, TextPattern::Contains(value), *ignore_case);
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
                    text_match::<M>(
                        backend,
                        column,
                        TextPattern::Like(&pattern),
                        *op == Op::ILike,
                    )
                }
                Op::StartsWith => text_match::<M>(
                    backend,
                    column,
                    TextPattern::Prefix(&text(first()?)?),
                    false,
                ),
                Op::IStartsWith => {
                    text_match::<M>(backend, column, TextPattern::Prefix(&text(first()?)?), true)
                }
                Op::EndsWith => text_match::<M>(
                    backend,
                    column,
                    TextPattern::Suffix(&text(first()?)?),
                    false,
                ),
                Op::IEndsWith => {
                    text_match::<M>(backend, column, TextPattern::Suffix(&text(first()?)?), true)
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

/// The LIKE-style match of `column`, rendered by the backend's dialect.
fn text_match<M: Model>(
    backend: Backend,
    column: &'static str,
    pattern: TextPattern<'_>,
    ignore_case: bool,
) -> SimpleExpr {
    backend
        .dialect()
        .text_match(col::<M>(column), pattern, ignore_case)
}

/// Whether a LIKE pattern ends with an unescaped `\`.
fn ends_with_lone_escape(pattern: &str) -> bool {
    pattern.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_escapes() {
        assert!(ends_with_lone_escape(r"a\"));
        assert!(!ends_with_lone_escape(r"a\\"));
        assert!(ends_with_lone_escape(r"a\\\"));
        assert!(!ends_with_lone_escape("a%"));
    }
}
