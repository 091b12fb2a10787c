//! Statements rendered once per bind and reused.
//!
//! The repository's fixed-shape statements (a row by primary key, the children of one
//! parent, one row's insert) have the same SQL on every call; only their values change.
//! Rendering them with sea-query each time costs more than the rest of the library's work
//! on such a request, so each bind keeps their SQL after the first call.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sea_query_sqlx::SqlxValues;
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::driver::{need_of, Need};

/// A statement's SQL, shared, with what it needs from its session.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) sql: Arc<str>,
    pub(crate) need: Need,
}

impl Prepared {
    pub(crate) fn new(sql: String) -> Self {
        Prepared {
            need: need_of(&sql),
            sql: sql.into(),
        }
    }

    /// The statement to run with `values`.
    pub(crate) fn with(&self, values: &sea_query::Values) -> (SqlStr, SqlxValues, Need) {
        (
            AssertSqlSafe(self.sql.clone()).into_sql_str(),
            SqlxValues(values.clone()),
            self.need,
        )
    }
}

/// What a [`Prepared`] statement is: its model's table (by address: two models never share
/// one, and a table seen at two addresses only costs a second entry), its shape, and a
/// column it depends on.
pub(crate) type StatementKey = (usize, &'static str, &'static str);

/// The key of statement `shape` (on `column`) of the model whose table is `table`.
pub(crate) fn key(
    table: &'static crate::model::Table,
    shape: &'static str,
    column: &'static str,
) -> StatementKey {
    (table as *const crate::model::Table as usize, shape, column)
}

/// The prepared statements of one bind.
#[derive(Debug, Default)]
pub(crate) struct StatementCache {
    statements: RwLock<HashMap<StatementKey, Prepared>>,
}

impl StatementCache {
    /// The statement `key`, rendered by `render` the first time.
    pub(crate) fn get_or_insert(
        &self,
        key: StatementKey,
        render: impl FnOnce() -> Prepared,
    ) -> Prepared {
        if let Some(found) = self
            .statements
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return found.clone();
        }
        let prepared = render();
        self.statements
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(prepared)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use sea_query::{Expr, ExprTrait, Query, Value};

    use crate::config::Backend;
    use crate::driver::build;

    /// Prepared SQL must not depend on the values: NULLs are bound like any other value.
    #[test]
    fn null_values_are_bound_not_inlined() {
        let backends = [Backend::Sqlite, Backend::Postgres, Backend::MySql];
        for backend in backends.into_iter().filter(|b| b.is_enabled()) {
            for (none, some) in [
                (Value::String(None), Value::from("x")),
                (Value::Uuid(None), Value::from(uuid::Uuid::nil())),
                (Value::BigInt(None), Value::from(1i64)),
            ] {
                let insert = |value: Value| {
                    Query::insert()
                        .into_table("t")
                        .columns(["a", "b"])
                        .values_panic([Expr::val(1), Expr::val(value)])
                        .to_owned()
                };
                let (with_null, values) = build(backend, &insert(none.clone()));
                assert_eq!(with_null, build(backend, &insert(some.clone())).0);
                assert_eq!(values.0 .0.len(), 2, "{with_null}");
                let select = |value: Value| {
                    Query::select()
                        .column("a")
                        .from("t")
                        .and_where(Expr::col("a").eq(value))
                        .to_owned()
                };
                let (with_null, values) = build(backend, &select(none));
                assert_eq!(with_null, build(backend, &select(some)).0);
                assert_eq!(values.0 .0.len(), 1, "{with_null}");
            }
        }
    }
}
