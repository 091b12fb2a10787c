//! Reads the live schema of a bind: tables, columns, keys, indexes and foreign keys, from
//! SQLite pragmas, PostgreSQL catalogs and MySQL's `information_schema`.

use crate::driver::BindPool;
use crate::model::ReferentialAction;

use super::{MigrationError, TABLE};

/// A column as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveColumn {
    pub(crate) name: String,
    /// The type as the catalog prints it (PostgreSQL `format_type`, MySQL `COLUMN_TYPE`,
    /// SQLite's declared type).
    pub(crate) ty: String,
    pub(crate) nullable: bool,
    /// The default expression as the catalog prints it.
    pub(crate) default: Option<String>,
    /// An identity / auto-increment column.
    pub(crate) identity: bool,
}

/// An index or unique constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveIndex {
    /// `None` when the database keeps no usable name (SQLite's unique constraints).
    pub(crate) name: Option<String>,
    pub(crate) columns: Vec<String>,
    /// A constraint (dropped with `DROP CONSTRAINT`) rather than an index.
    pub(crate) constraint: bool,
}

/// A foreign key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveForeignKey {
    pub(crate) name: Option<String>,
    pub(crate) column: String,
    pub(crate) ref_table: String,
    pub(crate) ref_column: String,
    pub(crate) on_delete: ReferentialAction,
    pub(crate) on_update: ReferentialAction,
}

/// A table as the database has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LiveTable {
    pub(crate) name: String,
    pub(crate) columns: Vec<LiveColumn>,
    pub(crate) primary_key: Vec<String>,
    /// Non-unique indexes.
    pub(crate) indexes: Vec<LiveIndex>,
    /// Unique constraints and unique indexes.
    pub(crate) uniques: Vec<LiveIndex>,
    pub(crate) foreign_keys: Vec<LiveForeignKey>,
    /// SQLite: the `CREATE TABLE` statement, and the `CREATE INDEX` ones.
    pub(crate) sqlite_sql: Option<String>,
    pub(crate) sqlite_index_sql: Vec<String>,
}

impl LiveTable {
    pub(crate) fn column(&self, name: &str) -> Option<&LiveColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

fn action(raw: &str) -> ReferentialAction {
    match raw.to_ascii_uppercase().replace('_', " ").as_str() {
        "CASCADE" | "C" => ReferentialAction::Cascade,
        "SET NULL" | "N" => ReferentialAction::SetNull,
        "RESTRICT" | "R" => ReferentialAction::Restrict,
        _ => ReferentialAction::NoAction,
    }
}

/// Every table of the bind's database except the migrations table (and SQLite's own).
pub(crate) async fn tables(pool: &BindPool) -> Result<Vec<LiveTable>, MigrationError> {
    match pool {
        #[cfg(feature = "sqlite")]
        BindPool::Sqlite(pool) => sqlite(pool).await,
        #[cfg(feature = "postgres")]
        BindPool::Postgres(pool) => postgres(pool).await,
        #[cfg(feature = "mysql")]
        BindPool::MySql(pool) => mysql(pool).await,
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite(pool: &sqlx::SqlitePool) -> Result<Vec<LiveTable>, MigrationError> {
    let mut conn = pool.acquire().await?;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ? ORDER BY name",
    )
    .bind(TABLE)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(tables.len());
    for (name, sql) in tables {
        let mut table = LiveTable {
            name: name.clone(),
            sqlite_sql: Some(sql),
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
                    table.sqlite_index_sql.push(sql);
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
                on_delete: action(&on_delete),
                on_update: action(&on_update),
            });
        }
        out.push(table);
    }
    Ok(out)
}

/// name, kind, columns, referenced table, referenced columns, on delete, on update
#[cfg(feature = "postgres")]
type ConstraintRow = (
    String,
    String,
    Vec<String>,
    Option<String>,
    Option<Vec<String>>,
    String,
    String,
);

#[cfg(feature = "postgres")]
async fn postgres(pool: &sqlx::PgPool) -> Result<Vec<LiveTable>, MigrationError> {
    let mut conn = pool.acquire().await?;
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename <> $1 ORDER BY tablename",
    )
    .bind(TABLE)
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
                            on_delete: action(&on_delete),
                            on_update: action(&on_update),
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

#[cfg(feature = "mysql")]
async fn mysql(pool: &sqlx::MySqlPool) -> Result<Vec<LiveTable>, MigrationError> {
    let mut conn = pool.acquire().await?;
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> ? ORDER BY TABLE_NAME",
    )
    .bind(TABLE)
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
                on_delete: action(&on_delete),
                on_update: action(&on_update),
            });
        }
        out.push(table);
    }
    Ok(out)
}
