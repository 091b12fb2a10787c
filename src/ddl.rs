//! `create_all` and `drop_all`: model tables as DDL, generated with sea-query per backend.
//!
//! Tables are created in foreign-key order with their constraints and indexes, idempotently:
//! `CREATE TABLE IF NOT EXISTS` everywhere, `CREATE INDEX IF NOT EXISTS` on SQLite and
//! PostgreSQL, and indexes inside `CREATE TABLE` on MySQL (which has no `IF NOT EXISTS` for
//! indexes). The whole operation holds a lock (an advisory lock on PostgreSQL, a checked
//! `GET_LOCK` on MySQL, the write lock on SQLite) so two processes starting at once do not
//! race.

use sea_query::{Expr, ForeignKey as SqForeignKey, ForeignKeyAction, Index, Table as SqTable};

use crate::config::Backend;
use crate::driver::ddl::DdlError;
use crate::driver::{build_schema, BindPool, SchemaStatement};
use crate::error::kind::{DbErrorKind, ErrorKind};
use crate::model::{AuditColumn, Column, Literal, PrimaryKey, ReferentialAction, Table};

/// A failure while creating or dropping tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// Foreign keys form a cycle, so no creation order exists.
    #[error("the foreign keys of tables {tables:?} form a cycle; create_all cannot order them")]
    Cycle {
        /// The tables in the cycle.
        tables: Vec<String>,
    },
    /// A DDL statement failed.
    #[error("`{statement}` failed on table `{table}`: {source}")]
    Statement {
        /// The table being created or dropped.
        table: String,
        /// The statement.
        statement: String,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// Connecting or locking failed.
    #[error("could not prepare the schema: {0}")]
    Connection(#[source] sqlx::Error),
    /// Another process held the schema lock for the whole wait (MySQL's named lock).
    #[error("another process held the schema lock for 60 seconds")]
    LockTimedOut,
}

impl SchemaError {
    /// What kind of failure this is: a database failure by its kind, a cycle as
    /// [`ErrorKind::Internal`].
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            SchemaError::Cycle { .. } => ErrorKind::Internal,
            SchemaError::LockTimedOut => ErrorKind::Database(DbErrorKind::Busy),
            SchemaError::Statement { source, .. } | SchemaError::Connection(source) => {
                ErrorKind::Database(DbErrorKind::of(source))
            }
        }
    }
}

/// Sorts `tables` so every table comes after the tables it references.
pub fn sort_tables(tables: &[&'static Table]) -> Result<Vec<&'static Table>, SchemaError> {
    let mut sorted: Vec<&'static Table> = Vec::with_capacity(tables.len());
    let mut remaining: Vec<&'static Table> = Vec::new();
    for table in tables {
        if !remaining.iter().any(|t| t.name == table.name) {
            remaining.push(table);
        }
    }
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|t| {
            t.references().all(|r| {
                sorted.iter().any(|s| s.name == r.name)
                    || !remaining.iter().any(|m| m.name == r.name)
            })
        });
        match ready {
            Some(i) => sorted.push(remaining.remove(i)),
            None => {
                return Err(SchemaError::Cycle {
                    tables: remaining.iter().map(|t| t.name.to_string()).collect(),
                })
            }
        }
    }
    Ok(sorted)
}

fn action(action: ReferentialAction) -> ForeignKeyAction {
    match action {
        ReferentialAction::NoAction => ForeignKeyAction::NoAction,
        ReferentialAction::Restrict => ForeignKeyAction::Restrict,
        ReferentialAction::Cascade => ForeignKeyAction::Cascade,
        ReferentialAction::SetNull => ForeignKeyAction::SetNull,
    }
}

fn literal(value: Literal) -> sea_query::Value {
    match value {
        Literal::Bool(b) => b.into(),
        Literal::Int(i) => i.into(),
        Literal::Float(f) => f.into(),
        Literal::Str(s) => s.into(),
    }
}

/// The SQL of a DDL statement for `backend`.
pub(crate) fn build<S: SchemaStatement>(statement: &S, backend: Backend) -> String {
    build_schema(backend, statement)
}

pub(crate) fn column_def(column: &Column, backend: Backend) -> sea_query::ColumnDef {
    let mut def =
        sea_query::ColumnDef::new_with_type(column.name, backend.dialect().column_type(column));
    if column.nullable {
        def.null();
    } else {
        def.not_null();
    }
    let dialect = backend.dialect();
    if column.primary_key == Some(PrimaryKey::AutoIncrement) && dialect.declares_auto_increment() {
        def.auto_increment();
    }
    if let Some(value) = column.default {
        def.default(literal(value));
    }
    match column.audit {
        Some(AuditColumn::CreatedAt | AuditColumn::UpdatedAt) => {
            def.default(Expr::cust(dialect.now()));
        }
        // Rows that exist when the column is added start at version 1.
        Some(AuditColumn::Version) => {
            def.default(1);
        }
        _ => {}
    }
    def
}

/// The statements `create_all` runs for `table` on `backend`: `CREATE TABLE IF NOT EXISTS`,
/// then (SQLite and PostgreSQL) one `CREATE INDEX IF NOT EXISTS` per indexed column.
///
/// ```
/// # #[cfg(feature = "postgres")] {
/// use rocket_alchemy::{create_table_sql, Backend, Model};
///
/// #[derive(Model)]
/// struct Tag {
///     id: i64,
///     #[model(max_length = 40, unique)]
///     label: String,
/// }
///
/// let sql = create_table_sql(Tag::TABLE, Backend::Postgres).join(";\n");
/// assert!(sql.contains(r#"CREATE TABLE IF NOT EXISTS "tag""#), "{sql}");
/// assert!(sql.contains(r#"CONSTRAINT "pk_tag" PRIMARY KEY ("id")"#), "{sql}");
/// assert!(sql.contains(r#"CONSTRAINT "uq_tag_label" UNIQUE ("label")"#), "{sql}");
/// # }
/// ```
pub fn create_table_sql(table: &Table, backend: Backend) -> Vec<String> {
    table_ddl(table, backend, table.name, true)
}

/// `CREATE TABLE` (named `name`, with or without `IF NOT EXISTS`) and its index statements.
pub(crate) fn table_ddl(
    table: &Table,
    backend: Backend,
    name: &str,
    if_not_exists: bool,
) -> Vec<String> {
    let mut create = SqTable::create();
    create.table(sea_query::Alias::new(name));
    if if_not_exists {
        create.if_not_exists();
    }
    let pk = table.primary_key();
    // SQLite: an auto-increment key is declared on its column (`AUTOINCREMENT` exists only
    // there), so its numbers are never reused after a delete, as on the other backends.
    let inline_pk = match pk.primary_key {
        Some(PrimaryKey::AutoIncrement) => backend
            .dialect()
            .inline_auto_increment_key(&table.pk_name()),
        _ => None,
    };
    for column in table.columns {
        let mut def = column_def(column, backend);
        if column.name == pk.name {
            if let Some(extra) = &inline_pk {
                def.extra(extra.clone());
            }
        }
        create.col(def);
    }
    if inline_pk.is_none() {
        // A named table-level primary key; on SQLite an INTEGER one is still the rowid alias.
        create.primary_key(Index::create().name(table.pk_name()).col(pk.name).primary());
    }
    for column in table
        .columns
        .iter()
        .filter(|c| c.unique && c.primary_key.is_none())
    {
        create.index(
            Index::create()
                .name(table.unique_name(column))
                .col(column.name)
                .unique(),
        );
    }
    for column in table.columns {
        if let Some(fk) = column.foreign_key {
            let target = fk.table();
            create.foreign_key(
                SqForeignKey::create()
                    .name(table.fk_name(column, target))
                    .from_col(column.name)
                    .to(target.name, target.primary_key().name)
                    .on_delete(action(fk.on_delete))
                    .on_update(action(fk.on_update)),
            );
        }
    }
    let indexed: Vec<&Column> = table
        .columns
        .iter()
        .filter(|c| c.index && !c.unique && c.primary_key.is_none())
        .collect();
    let inside = backend.dialect().indexes_in_create_table();
    if inside {
        for column in &indexed {
            create.index(
                Index::create()
                    .name(table.index_name(column))
                    .col(column.name),
            );
        }
    }
    let mut statements = vec![build(&create, backend)];
    if !inside {
        for column in &indexed {
            let mut index = Index::create();
            if if_not_exists {
                index.if_not_exists();
            }
            index
                .name(table.index_name(column))
                .table(sea_query::Alias::new(name))
                .col(column.name);
            statements.push(build(&index, backend));
        }
    }
    statements
}

/// `DROP TABLE IF EXISTS` for `table`.
pub fn drop_table_sql(table: &Table, backend: Backend) -> String {
    build(SqTable::drop().table(table.name).if_exists(), backend)
}

/// Creates every table in `tables` (sorted by foreign keys) that does not exist yet.
pub async fn create_all(pool: &BindPool, tables: &[&'static Table]) -> Result<(), SchemaError> {
    let sorted = sort_tables(tables)?;
    let backend = pool.backend();
    let mut work = Vec::new();
    for table in sorted {
        for statement in create_table_sql(table, backend) {
            work.push((table.name, statement));
        }
    }
    run_locked(pool, work).await
}

/// Drops every table in `tables`, referencing tables first.
pub async fn drop_all(pool: &BindPool, tables: &[&'static Table]) -> Result<(), SchemaError> {
    let mut sorted = sort_tables(tables)?;
    sorted.reverse();
    let backend = pool.backend();
    let work = sorted
        .into_iter()
        .map(|t| (t.name, drop_table_sql(t, backend)))
        .collect();
    run_locked(pool, work).await
}

/// Runs DDL statements (each with the table it is for) under the schema lock; see
/// [`crate::driver::ddl::run_locked`].
pub(crate) async fn run_locked(
    pool: &BindPool,
    work: Vec<(&str, String)>,
) -> Result<(), SchemaError> {
    let statements: Vec<String> = work.iter().map(|(_, sql)| sql.clone()).collect();
    crate::driver::ddl::run_locked(pool, &statements)
        .await
        .map_err(|e| match e {
            DdlError::Connection(source) => SchemaError::Connection(source),
            DdlError::LockTimedOut => SchemaError::LockTimedOut,
            DdlError::Statement(i, source) => SchemaError::Statement {
                table: work[i].0.to_string(),
                statement: work[i].1.clone(),
                source,
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuditColumn, ColumnType, ForeignKey};

    const fn col(name: &'static str, ty: ColumnType) -> Column {
        Column {
            name,
            field: name,
            ty,
            nullable: false,
            primary_key: None,
            unique: false,
            index: false,
            default: None,
            foreign_key: None,
            audit: None,
        }
    }

    static PARENT: Table = Table {
        name: "parent",
        bind: "default",
        model: "Parent",
        columns: &[
            Column {
                primary_key: Some(PrimaryKey::AutoIncrement),
                ..col("id", ColumnType::BigInt)
            },
            Column {
                index: true,
                ..col("name", ColumnType::String(None))
            },
            Column {
                audit: Some(AuditColumn::CreatedAt),
                ..col("created_at", ColumnType::DateTimeUtc)
            },
        ],
    };
    fn parent() -> &'static Table {
        &PARENT
    }
    static CHILD: Table = Table {
        name: "child",
        bind: "default",
        model: "Child",
        columns: &[
            Column {
                primary_key: Some(PrimaryKey::UuidV4),
                ..col("id", ColumnType::Uuid)
            },
            Column {
                foreign_key: Some(ForeignKey {
                    target: parent,
                    on_delete: ReferentialAction::Cascade,
                    on_update: ReferentialAction::NoAction,
                }),
                index: true,
                ..col("parent_id", ColumnType::BigInt)
            },
            Column {
                default: Some(Literal::Int(3)),
                ..col("rank", ColumnType::Integer)
            },
            Column {
                nullable: true,
                unique: true,
                ..col("code", ColumnType::String(Some(12)))
            },
        ],
    };

    #[test]
    fn sorts_by_foreign_keys() {
        let sorted = sort_tables(&[&CHILD, &PARENT]).unwrap();
        assert_eq!(
            sorted.iter().map(|t| t.name).collect::<Vec<_>>(),
            ["parent", "child"]
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn ddl_sqlite() {
        let sqlite = create_table_sql(&CHILD, Backend::Sqlite).join(";\n");
        assert!(sqlite.contains(r#""id" BLOB NOT NULL"#), "{sqlite}");
        // SQLite keeps no foreign key names; sea-query leaves them out there.
        assert!(
            sqlite.contains(
                r#"FOREIGN KEY ("parent_id") REFERENCES "parent" ("id") ON DELETE CASCADE"#
            ),
            "{sqlite}"
        );
        assert!(
            sqlite.contains(r#"CREATE INDEX IF NOT EXISTS "ix_child_parent_id""#),
            "{sqlite}"
        );
        assert!(
            sqlite.contains(r#""rank" INTEGER NOT NULL DEFAULT 3"#),
            "{sqlite}"
        );
        assert!(
            sqlite.contains(r#"CONSTRAINT "uq_child_code" UNIQUE ("code")"#),
            "{sqlite}"
        );
        let parent = create_table_sql(&PARENT, Backend::Sqlite).join(";\n");
        assert!(parent.contains(r#""id" INTEGER NOT NULL"#), "{parent}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn ddl_postgres() {
        let pg_child = create_table_sql(&CHILD, Backend::Postgres).join(";\n");
        assert!(pg_child.contains(r#"CONSTRAINT "fk_child_parent_id_parent" FOREIGN KEY ("parent_id") REFERENCES "parent" ("id") ON DELETE CASCADE"#), "{pg_child}");
        let pg = create_table_sql(&PARENT, Backend::Postgres).join(";\n");
        assert!(
            pg.contains(r#""id" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL"#),
            "{pg}"
        );
        assert!(
            pg.contains(
                r#""created_at" timestamp with time zone NOT NULL DEFAULT (CURRENT_TIMESTAMP)"#
            ),
            "{pg}"
        );
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn ddl_mysql() {
        let my = create_table_sql(&CHILD, Backend::MySql);
        assert_eq!(my.len(), 1, "MySQL indexes live inside CREATE TABLE");
        assert!(
            my[0].contains("KEY `ix_child_parent_id` (`parent_id`)"),
            "{}",
            my[0]
        );
        assert!(my[0].contains("`id` binary(16) NOT NULL"), "{}", my[0]);
        let my_parent = create_table_sql(&PARENT, Backend::MySql).join("");
        assert!(
            my_parent.contains("`name` varchar(255) NOT NULL"),
            "{my_parent}"
        );
        assert!(my_parent.contains("AUTO_INCREMENT"), "{my_parent}");
    }
}
