//! SQLite's live schema, from its pragmas and `sqlite_master` (which keeps the statements
//! that made each table and index).

use sqlx::sqlite::SqlitePool;

use crate::driver::migrate::{
    referential_action, LiveColumn, LiveForeignKey, LiveIndex, LiveTable,
};

/// Whether the database has the table `name`.
pub(crate) async fn table_exists(pool: &SqlitePool, name: &str) -> Result<bool, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(name)
            .fetch_one(pool)
            .await?;
    Ok(n > 0)
}

/// Every table of the database except `skip` (the tracking table) and the engine's own.
pub(crate) async fn tables(pool: &SqlitePool, skip: &str) -> Result<Vec<LiveTable>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ? ORDER BY name",
    )
    .bind(skip)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(tables.len());
    for (name, sql) in tables {
        let mut table = LiveTable {
            name: name.clone(),
            create_sql: Some(sql),
            ..LiveTable::default()
        };
        let columns: Vec<(String, String, bool, Option<String>, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut pk: Vec<(i64, String)> = Vec::new();
        for (column, ty, not_null, default, pk_position) in columns {
            if pk_position > 0 {
                pk.push((pk_position, column.clone()));
            }
            let identity = pk_position > 0 && ty.eq_ignore_ascii_case("INTEGER");
            table.columns.push(LiveColumn {
                name: column,
                ty,
                nullable: !not_null && pk_position == 0,
                default,
                identity,
            });
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let indexes: Vec<(String, bool, String)> = sqlx::query_as(
            "SELECT name, \"unique\", origin FROM pragma_index_list(?) ORDER BY name",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for (index, unique, origin) in indexes {
            if origin == "pk" {
                continue;
            }
            let columns: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(&mut *conn)
                    .await?;
            let columns: Vec<String> = columns.into_iter().map(|(c,)| c).collect();
            let named = origin == "c";
            let entry = LiveIndex {
                name: named.then(|| index.clone()),
                columns,
                constraint: false,
            };
            if named {
                let sql: Option<(Option<String>,)> = sqlx::query_as(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                )
                .bind(&index)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some((Some(sql),)) = sql {
                    table.index_sql.push(sql);
                }
            }
            if unique {
                table.uniques.push(entry);
            } else {
                table.indexes.push(entry);
            }
        }
        let fks: Vec<(String, String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for (ref_table, column, ref_column, on_update, on_delete) in fks {
            table.foreign_keys.push(LiveForeignKey {
                name: None,
                column,
                ref_column: ref_column.unwrap_or_else(|| "id".into()),
                ref_table,
                on_delete: referential_action(&on_delete),
                on_update: referential_action(&on_update),
            });
        }
        out.push(table);
    }
    Ok(out)
}
