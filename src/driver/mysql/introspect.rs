//! MySQL's and MariaDB's live schema, from `information_schema`, in the connection's
//! database.

use sqlx::mysql::MySqlPool;

use crate::driver::migrate::{
    referential_action, LiveColumn, LiveForeignKey, LiveIndex, LiveTable,
};

/// Whether the database has the table `name`.
pub(crate) async fn table_exists(pool: &MySqlPool, name: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Every table of the database except `skip` (the tracking table) and the engine's own.
pub(crate) async fn tables(pool: &MySqlPool, skip: &str) -> Result<Vec<LiveTable>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> ? ORDER BY TABLE_NAME",
    )
    .bind(skip)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(names.len());
    for (name,) in names {
        let mut table = LiveTable {
            name: name.clone(),
            ..LiveTable::default()
        };
        let columns: Vec<(String, String, String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), CAST(IS_NULLABLE AS CHAR), \
                    CAST(COLUMN_DEFAULT AS CHAR), CAST(COLUMN_KEY AS CHAR), CAST(EXTRA AS CHAR) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for (column, ty, nullable, default, _key, extra) in columns {
            // MariaDB reports a NULL default as the text `NULL`.
            let default = default.filter(|d| !d.eq_ignore_ascii_case("NULL"));
            table.columns.push(LiveColumn {
                name: column,
                ty,
                nullable: nullable == "YES",
                default,
                identity: extra.to_ascii_lowercase().contains("auto_increment"),
            });
        }
        let stats: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT CAST(INDEX_NAME AS CHAR), CAST(NON_UNIQUE AS SIGNED), CAST(COLUMN_NAME AS CHAR) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut grouped: Vec<(String, bool, Vec<String>)> = Vec::new();
        for (index, non_unique, column) in stats {
            match grouped.iter_mut().find(|(n, ..)| *n == index) {
                Some(entry) => entry.2.push(column),
                None => grouped.push((index, non_unique == 0, vec![column])),
            }
        }
        for (index, unique, columns) in grouped {
            if index == "PRIMARY" {
                table.primary_key = columns;
            } else if unique {
                table.uniques.push(LiveIndex {
                    name: Some(index),
                    columns,
                    constraint: false,
                });
            } else {
                table.indexes.push(LiveIndex {
                    name: Some(index),
                    columns,
                    constraint: false,
                });
            }
        }
        let fks: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
            "SELECT CAST(k.CONSTRAINT_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), CAST(k.REFERENCED_TABLE_NAME AS CHAR), \
                    CAST(k.REFERENCED_COLUMN_NAME AS CHAR), CAST(r.DELETE_RULE AS CHAR), CAST(r.UPDATE_RULE AS CHAR) \
             FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
               ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY k.CONSTRAINT_NAME",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for (cname, column, ref_table, ref_column, on_delete, on_update) in fks {
            table.foreign_keys.push(LiveForeignKey {
                name: Some(cname),
                column,
                ref_table,
                ref_column,
                on_delete: referential_action(&on_delete),
                on_update: referential_action(&on_update),
            });
        }
        out.push(table);
    }
    Ok(out)
}
