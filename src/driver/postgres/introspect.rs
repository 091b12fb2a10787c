//! PostgreSQL's live schema, from its catalogs (`pg_attribute`, `pg_constraint`,
//! `pg_index`), in the current schema. Statements are sent unnamed (`persistent(false)`):
//! they run rarely, and may go through a transaction pooler.

use sqlx::postgres::PgPool;

use crate::driver::migrate::{
    referential_action, LiveColumn, LiveForeignKey, LiveIndex, LiveTable,
};

/// Whether the current schema has the table `name`.
pub(crate) async fn table_exists(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(name)
    .persistent(false)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// name, kind, columns, referenced table, referenced columns, on delete, on update
type ConstraintRow = (
    String,
    String,
    Vec<String>,
    Option<String>,
    Option<Vec<String>>,
    String,
    String,
);

/// Every table of the database except `skip` (the tracking table) and the engine's own.
pub(crate) async fn tables(pool: &PgPool, skip: &str) -> Result<Vec<LiveTable>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename <> $1 ORDER BY tablename",
    )
    .bind(skip)
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(names.len());
    for (name,) in names {
        let regclass = format!("\"{}\"", name.replace('"', "\"\""));
        let mut table = LiveTable {
            name: name.clone(),
            ..LiveTable::default()
        };
        let columns: Vec<(String, String, bool, Option<String>, String)> = sqlx::query_as(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid), a.attidentity::text \
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(&regclass)
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
        for (column, ty, nullable, default, identity) in columns {
            table.columns.push(LiveColumn {
                name: column,
                ty,
                nullable,
                default,
                identity: !identity.is_empty(),
            });
        }
        // Constraints: p (primary key), u (unique), f (foreign key), with their columns.
        let constraints: Vec<ConstraintRow> = sqlx::query_as(
            "SELECT c.conname::text, c.contype::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i), \
                    CASE WHEN c.contype = 'f' THEN c.confrelid::regclass::text END, \
                    CASE WHEN c.contype = 'f' THEN ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) END, \
                    c.confdeltype::text, c.confupdtype::text \
             FROM pg_constraint c WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u', 'f') ORDER BY c.conname",
        )
        .bind(&regclass)
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
        for (cname, kind, columns, ref_table, ref_columns, on_delete, on_update) in constraints {
            match kind.as_str() {
                "p" => table.primary_key = columns,
                "u" => table.uniques.push(LiveIndex {
                    name: Some(cname),
                    columns,
                    constraint: true,
                }),
                _ => {
                    if let (Some(column), Some(ref_table), Some(ref_column)) = (
                        columns.first(),
                        ref_table,
                        ref_columns.and_then(|r| r.first().cloned()),
                    ) {
                        table.foreign_keys.push(LiveForeignKey {
                            name: Some(cname),
                            column: column.clone(),
                            ref_table: ref_table.trim_matches('"').to_string(),
                            ref_column,
                            on_delete: referential_action(&on_delete),
                            on_update: referential_action(&on_update),
                        });
                    }
                }
            }
        }
        // Indexes that back no constraint.
        let indexes: Vec<(String, bool, Vec<String>)> = sqlx::query_as(
            "SELECT ic.relname::text, i.indisunique, \
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = $1::regclass AND NOT i.indisprimary \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('u', 'p')) \
             ORDER BY ic.relname",
        )
        .bind(&regclass)
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
        for (iname, unique, columns) in indexes {
            let entry = LiveIndex {
                name: Some(iname),
                columns,
                constraint: false,
            };
            if unique {
                table.uniques.push(entry);
            } else {
                table.indexes.push(entry);
            }
        }
        out.push(table);
    }
    Ok(out)
}
