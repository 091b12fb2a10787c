//! PostgreSQL.

pub(crate) mod ddl;
mod dialect;
pub(crate) mod introspect;
pub(crate) mod migrate;
pub(crate) mod pool;
pub(crate) mod replica;
#[cfg(feature = "testing")]
pub(crate) mod scratch;

pub(crate) use dialect::POSTGRES;

/// `sql` (with `$n` placeholders) with `values` rendered as literals by sea-query's
/// PostgreSQL quoting (strings escaped in `E'…'` form, bytes as `'\\x…'`), for one simple
/// query: what a reader behind a transaction pooler sends outside a transaction, where
/// an extended-protocol statement's parse and execution could reach two server connections.
pub(crate) fn inline(sql: &str, values: sea_query_sqlx::SqlxValues) -> sqlx::AssertSqlSafe<String> {
    let values = values.0 .0;
    sqlx::AssertSqlSafe(sea_query::inject_parameters(
        sql,
        &values,
        &sea_query::PostgresQueryBuilder,
    ))
}
