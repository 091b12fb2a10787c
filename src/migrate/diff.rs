//! Autogenerate: the difference between a bind's models and its live schema, as up and down
//! SQL for the bind's backend.
//!
//! Detected: new and dropped tables, new and dropped columns, type, nullability and default
//! changes, new and dropped indexes, unique constraints and foreign keys. A rename shows as a
//! drop and an add (review generated files before applying them). PostgreSQL and MySQL get
//! `ALTER` statements; on SQLite, changes `ALTER TABLE` cannot make rebuild the table with
//! its data (create the new table, copy the common columns, drop the old one, rename), in a
//! `-- no-transaction` migration that wraps everything in its own transaction with foreign
//! keys off, as SQLite's documentation prescribes.

use sea_query::{ForeignKey as SqForeignKey, ForeignKeyAction, Index, Table as SqTable};

use crate::config::Backend;
use crate::ddl::{build, column_def, sort_tables, table_ddl};
use crate::model::{Column, ColumnType, Literal, PrimaryKey, ReferentialAction, Table};

use super::introspect::{LiveColumn, LiveForeignKey, LiveIndex, LiveTable};
use super::MigrationError;

/// A migration's worth of changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The up statements.
    pub up: Vec<String>,
    /// The down statements.
    pub down: Vec<String>,
    /// One line per change, for people.
    pub summary: Vec<String>,
    /// The statements manage their own transaction (SQLite rebuilds).
    pub no_transaction: bool,
}

impl Plan {
    /// Whether models and schema agree.
    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }
}

struct Ops {
    backend: Backend,
    steps: Vec<(Vec<String>, Vec<String>)>,
    summary: Vec<String>,
    rebuild: bool,
}

impl Ops {
    fn push(&mut self, summary: String, up: Vec<String>, down: Vec<String>) {
        self.summary.push(summary);
        self.steps.push((up, down));
    }

    fn q(&self, name: &str) -> String {
        quote(self.backend, name)
    }
}

fn quote(backend: Backend, name: &str) -> String {
    match backend {
        Backend::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// The type name a model column has on `backend`, as the backend's catalog reports it.
pub(crate) fn type_name(column: &Column, backend: Backend) -> String {
    let indexed = column.unique
        || column.index
        || column.primary_key.is_some()
        || column.foreign_key.is_some();
    match backend {
        Backend::Sqlite => match column.ty {
            ColumnType::Bool => "BOOLEAN".into(),
            ColumnType::SmallInt => "SMALLINT".into(),
            ColumnType::Integer => "INTEGER".into(),
            ColumnType::BigInt if column.primary_key == Some(PrimaryKey::AutoIncrement) => {
                "INTEGER".into()
            }
            ColumnType::BigInt => "BIGINT".into(),
            ColumnType::Float => "REAL".into(),
            ColumnType::Double => "DOUBLE".into(),
            ColumnType::String(Some(n)) => format!("VARCHAR({n})"),
            ColumnType::String(None) | ColumnType::Json => "TEXT".into(),
            ColumnType::Bytes | ColumnType::Uuid => "BLOB".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::DateTimeUtc => "DATETIME".into(),
        },
        Backend::Postgres => match column.ty {
            ColumnType::Bool => "boolean".into(),
            ColumnType::SmallInt => "smallint".into(),
            ColumnType::Integer => "integer".into(),
            ColumnType::BigInt => "bigint".into(),
            ColumnType::Float => "real".into(),
            ColumnType::Double => "double precision".into(),
            ColumnType::String(Some(n)) => format!("character varying({n})"),
            ColumnType::String(None) => "text".into(),
            ColumnType::Bytes => "bytea".into(),
            ColumnType::Uuid => "uuid".into(),
            ColumnType::Date => "date".into(),
            ColumnType::DateTimeUtc => "timestamp with time zone".into(),
            ColumnType::Json => "jsonb".into(),
        },
        Backend::MySql => match column.ty {
            ColumnType::Bool => "tinyint(1)".into(),
            ColumnType::SmallInt => "smallint".into(),
            ColumnType::Integer => "int".into(),
            ColumnType::BigInt => "bigint".into(),
            ColumnType::Float => "float".into(),
            ColumnType::Double => "double".into(),
            ColumnType::String(Some(n)) => format!("varchar({n})"),
            ColumnType::String(None) if indexed => "varchar(255)".into(),
            ColumnType::String(None) => "text".into(),
            ColumnType::Bytes => "blob".into(),
            ColumnType::Uuid => "binary(16)".into(),
            ColumnType::Date => "date".into(),
            ColumnType::DateTimeUtc => "datetime(6)".into(),
            ColumnType::Json => "json".into(),
        },
    }
}

/// A live type in the form [`type_name`] uses.
fn live_type(raw: &str, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => raw.trim().to_ascii_uppercase(),
        Backend::Postgres => raw.trim().to_ascii_lowercase(),
        Backend::MySql => {
            let lower = raw.trim().to_ascii_lowercase();
            for int in ["smallint", "mediumint", "int", "bigint"] {
                if let Some(rest) = lower.strip_prefix(int) {
                    if rest.starts_with('(') {
                        let after = rest.find(')').map(|i| &rest[i + 1..]).unwrap_or("");
                        return format!("{int}{after}");
                    }
                }
            }
            lower
        }
    }
}

fn types_match(model: &str, live: &str, backend: Backend) -> bool {
    model == live || (backend == Backend::MySql && model == "json" && live == "longtext")
}

/// The default SQL of a model column (`None`: no default).
fn model_default(column: &Column, backend: Backend) -> Option<String> {
    if column.audit.is_some() {
        return Some(match backend {
            Backend::MySql => "CURRENT_TIMESTAMP(6)".into(),
            _ => "CURRENT_TIMESTAMP".into(),
        });
    }
    column.default.map(|literal| match literal {
        Literal::Bool(b) => match backend {
            Backend::Postgres => b.to_string(),
            _ => (b as u8).to_string(),
        },
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => f.to_string(),
        Literal::Str(s) => format!("'{}'", s.replace('\'', "''")),
    })
}

/// A default expression reduced to its value, for comparison: unquoted, uncast, without
/// parentheses; booleans as `true`/`false`; the current time as `now`.
fn normalize_default(raw: &str, bool_column: bool, backend: Backend) -> String {
    let mut s = raw.trim();
    while s.starts_with('(') && s.ends_with(')') && balanced(&s[1..s.len() - 1]) {
        s = s[1..s.len() - 1].trim();
    }
    let value = if let Some(rest) = s.strip_prefix('\'') {
        // 'text' possibly followed by ::cast
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                break;
            }
            out.push(c);
        }
        out
    } else {
        let s = match (backend, s.find("::")) {
            (Backend::Postgres, Some(i)) => &s[..i],
            _ => s,
        };
        s.to_string()
    };
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("current_timestamp") || lower == "now()" {
        return "now".into();
    }
    if bool_column {
        match lower.as_str() {
            "true" | "1" | "t" => return "true".into(),
            "false" | "0" | "f" => return "false".into(),
            _ => {}
        }
    }
    match value.parse::<f64>() {
        Ok(n) => format!("{n}"),
        Err(_) => value,
    }
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

fn same_action(a: ReferentialAction, b: ReferentialAction, backend: Backend) -> bool {
    use ReferentialAction::*;
    a == b
        || (backend != Backend::Postgres
            && matches!((a, b), (NoAction, Restrict) | (Restrict, NoAction)))
}

/// Whether two foreign keys are the same constraint (names aside: SQLite keeps none).
fn same_fk(a: &LiveForeignKey, b: &LiveForeignKey, backend: Backend) -> bool {
    a.column == b.column
        && a.ref_table == b.ref_table
        && a.ref_column == b.ref_column
        && same_action(a.on_delete, b.on_delete, backend)
        && same_action(a.on_update, b.on_update, backend)
}

fn action_sql(action: ReferentialAction) -> &'static str {
    match action {
        ReferentialAction::NoAction => "NO ACTION",
        ReferentialAction::Restrict => "RESTRICT",
        ReferentialAction::Cascade => "CASCADE",
        ReferentialAction::SetNull => "SET NULL",
    }
}

fn sq_action(action: ReferentialAction) -> ForeignKeyAction {
    match action {
        ReferentialAction::NoAction => ForeignKeyAction::NoAction,
        ReferentialAction::Restrict => ForeignKeyAction::Restrict,
        ReferentialAction::Cascade => ForeignKeyAction::Cascade,
        ReferentialAction::SetNull => ForeignKeyAction::SetNull,
    }
}

/// What the model expects of a table, in the live representation.
struct Expected {
    indexes: Vec<(String, String)>,
    uniques: Vec<(String, String)>,
    foreign_keys: Vec<(String, LiveForeignKey)>,
}

fn expected(table: &Table) -> Expected {
    let mut e = Expected {
        indexes: Vec::new(),
        uniques: Vec::new(),
        foreign_keys: Vec::new(),
    };
    for column in table.columns {
        if column.primary_key.is_some() {
            continue;
        }
        if column.unique {
            e.uniques
                .push((table.unique_name(column), column.name.to_string()));
        } else if column.index {
            e.indexes
                .push((table.index_name(column), column.name.to_string()));
        }
        if let Some(fk) = column.foreign_key {
            let target = fk.table();
            e.foreign_keys.push((
                table.fk_name(column, target),
                LiveForeignKey {
                    name: None,
                    column: column.name.to_string(),
                    ref_table: target.name.to_string(),
                    ref_column: target.primary_key().name.to_string(),
                    on_delete: fk.on_delete,
                    on_update: fk.on_update,
                },
            ));
        }
    }
    e
}

fn single(index: &LiveIndex) -> Option<&str> {
    match index.columns.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    }
}

/// The plan that brings the live schema to the models.
pub(crate) fn plan(
    models: &[&'static Table],
    live: &[LiveTable],
    backend: Backend,
) -> Result<Plan, MigrationError> {
    let models = sort_tables(models).map_err(|e| MigrationError::Unsupported(e.to_string()))?;
    let mut ops = Ops {
        backend,
        steps: Vec::new(),
        summary: Vec::new(),
        rebuild: false,
    };

    // New tables, in foreign-key order.
    for table in &models {
        if live.iter().any(|l| l.name == table.name) {
            continue;
        }
        let up = table_ddl(table, backend, table.name, false);
        let down = vec![build(SqTable::drop().table(table.name), backend)];
        ops.push(format!("+ table {}", table.name), up, down);
    }

    // Changed tables.
    for table in &models {
        let Some(current) = live.iter().find(|l| l.name == table.name) else {
            continue;
        };
        match backend {
            Backend::Sqlite => sqlite_table(&mut ops, table, current)?,
            _ => alter_table(&mut ops, table, current)?,
        }
    }

    // Dropped tables, referencing ones first.
    let mut dropped: Vec<&LiveTable> = live
        .iter()
        .filter(|l| !models.iter().any(|m| m.name == l.name))
        .collect();
    dropped.sort_by_key(|t| std::cmp::Reverse(dropped_rank(t, live)));
    for table in dropped {
        let up = vec![build(
            SqTable::drop().table(sea_query::Alias::new(&table.name)),
            backend,
        )];
        let down = recreate(backend, table);
        ops.push(format!("- table {}", table.name), up, down);
    }

    let Ops {
        steps,
        summary,
        rebuild,
        ..
    } = ops;
    let mut up = Vec::new();
    let mut down = Vec::new();
    for (u, _) in &steps {
        up.extend(u.iter().cloned());
    }
    for (_, d) in steps.iter().rev() {
        down.extend(d.iter().cloned());
    }
    if rebuild {
        // SQLite: foreign keys can only be switched off outside a transaction.
        let wrap = |body: Vec<String>| {
            let mut out = vec!["PRAGMA foreign_keys = OFF".to_string(), "BEGIN".to_string()];
            out.extend(body);
            out.push("COMMIT".to_string());
            out.push("PRAGMA foreign_keys = ON".to_string());
            out
        };
        up = wrap(up);
        down = wrap(down);
    }
    Ok(Plan {
        up,
        down,
        summary,
        no_transaction: rebuild,
    })
}

/// How many live tables reference `table` (directly), so referencing tables drop first.
fn dropped_rank(table: &LiveTable, live: &[LiveTable]) -> usize {
    live.iter()
        .filter(|t| t.foreign_keys.iter().any(|fk| fk.ref_table == table.name))
        .count()
}

/// `CREATE TABLE` (and indexes) rebuilding a live table as it is.
fn recreate(backend: Backend, table: &LiveTable) -> Vec<String> {
    if let Some(sql) = &table.sqlite_sql {
        let mut out = vec![sql.clone()];
        out.extend(table.sqlite_index_sql.iter().cloned());
        return out;
    }
    let q = |n: &str| quote(backend, n);
    let mut parts: Vec<String> = table
        .columns
        .iter()
        .map(|c| live_column_sql(backend, c))
        .collect();
    if !table.primary_key.is_empty() {
        let columns: Vec<String> = table.primary_key.iter().map(|c| q(c)).collect();
        parts.push(format!("PRIMARY KEY ({})", columns.join(", ")));
    }
    for unique in &table.uniques {
        let columns: Vec<String> = unique.columns.iter().map(|c| q(c)).collect();
        match &unique.name {
            Some(name) => parts.push(format!(
                "CONSTRAINT {} UNIQUE ({})",
                q(name),
                columns.join(", ")
            )),
            None => parts.push(format!("UNIQUE ({})", columns.join(", "))),
        }
    }
    for fk in &table.foreign_keys {
        let name = fk
            .name
            .as_ref()
            .map(|n| format!("CONSTRAINT {} ", q(n)))
            .unwrap_or_default();
        parts.push(format!(
            "{name}FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
            q(&fk.column),
            q(&fk.ref_table),
            q(&fk.ref_column),
            action_sql(fk.on_delete),
            action_sql(fk.on_update)
        ));
    }
    let mut out = vec![format!(
        "CREATE TABLE {} ( {} )",
        q(&table.name),
        parts.join(", ")
    )];
    for index in &table.indexes {
        if let Some(name) = &index.name {
            let columns: Vec<String> = index.columns.iter().map(|c| q(c)).collect();
            out.push(format!(
                "CREATE INDEX {} ON {} ({})",
                q(name),
                q(&table.name),
                columns.join(", ")
            ));
        }
    }
    out
}

fn live_column_sql(backend: Backend, column: &LiveColumn) -> String {
    let mut sql = format!("{} {}", quote(backend, &column.name), column.ty);
    if column.identity {
        match backend {
            Backend::Postgres => sql.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
            Backend::MySql => sql.push_str(" AUTO_INCREMENT"),
            Backend::Sqlite => {}
        }
    }
    sql.push_str(if column.nullable {
        " NULL"
    } else {
        " NOT NULL"
    });
    if let Some(default) = &column.default {
        if !column.identity {
            sql.push_str(&format!(" DEFAULT {default}"));
        }
    }
    sql
}

/// Compares one table's columns: (added, dropped, changed with a description).
#[allow(clippy::type_complexity)]
fn column_changes<'t>(
    table: &'t Table,
    live: &'t LiveTable,
    backend: Backend,
) -> (
    Vec<&'t Column>,
    Vec<&'t LiveColumn>,
    Vec<(&'t Column, &'t LiveColumn, Vec<String>)>,
) {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for column in table.columns {
        match live.column(column.name) {
            None => added.push(column),
            Some(current) => {
                let mut what = Vec::new();
                let want = type_name(column, backend);
                let have = live_type(&current.ty, backend);
                if !types_match(&want, &have, backend) {
                    what.push(format!("type {have} -> {want}"));
                }
                let nullable = column.nullable && column.primary_key.is_none();
                if nullable != current.nullable {
                    what.push(if nullable {
                        "now nullable".into()
                    } else {
                        "now NOT NULL".into()
                    });
                }
                let auto = column.primary_key == Some(PrimaryKey::AutoIncrement);
                if !auto && !current.identity {
                    let is_bool = column.ty == ColumnType::Bool;
                    let want = model_default(column, backend)
                        .map(|d| normalize_default(&d, is_bool, backend));
                    let have = current
                        .default
                        .as_deref()
                        .map(|d| normalize_default(d, is_bool, backend));
                    if want != have {
                        what.push(format!(
                            "default {} -> {}",
                            have.as_deref().unwrap_or("none"),
                            want.as_deref().unwrap_or("none")
                        ));
                    }
                }
                if !what.is_empty() {
                    changed.push((column, current, what));
                }
            }
        }
    }
    let dropped = live
        .columns
        .iter()
        .filter(|c| table.column(&c.name).is_none())
        .collect();
    (added, dropped, changed)
}

fn alter_table(ops: &mut Ops, table: &Table, live: &LiveTable) -> Result<(), MigrationError> {
    let backend = ops.backend;
    let t = ops.q(table.name);
    let pk = table.primary_key();
    if live.primary_key != [pk.name.to_string()] {
        return Err(MigrationError::Unsupported(format!(
            "the primary key of `{}` changed",
            table.name
        )));
    }
    let want = expected(table);
    let (added, dropped, changed) = column_changes(table, live, backend);

    // Foreign keys that go away.
    for fk in &live.foreign_keys {
        let kept = want
            .foreign_keys
            .iter()
            .any(|(_, w)| same_fk(w, fk, backend));
        if kept {
            continue;
        }
        let Some(name) = &fk.name else { continue };
        let up = vec![build(
            SqForeignKey::drop()
                .name(name.as_str())
                .table(sea_query::Alias::new(table.name)),
            backend,
        )];
        let down = vec![add_fk_sql(backend, table.name, name, fk)];
        ops.push(
            format!(
                "- foreign key {}.{} -> {}",
                table.name, fk.column, fk.ref_table
            ),
            up,
            down,
        );
    }
    // Uniques and indexes that go away.
    let fk_names: Vec<&str> = live
        .foreign_keys
        .iter()
        .filter_map(|f| f.name.as_deref())
        .collect();
    for unique in &live.uniques {
        let kept = single(unique).is_some_and(|c| want.uniques.iter().any(|(_, wc)| wc == c));
        if kept {
            continue;
        }
        let Some(name) = &unique.name else { continue };
        let columns: Vec<String> = unique.columns.iter().map(|c| ops.q(c)).collect();
        let (up, down) = match (backend, unique.constraint) {
            (Backend::Postgres, true) => (
                format!("ALTER TABLE {t} DROP CONSTRAINT {}", ops.q(name)),
                format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE ({})",
                    ops.q(name),
                    columns.join(", ")
                ),
            ),
            _ => (
                build(
                    Index::drop()
                        .name(name.as_str())
                        .table(sea_query::Alias::new(table.name)),
                    backend,
                ),
                format!(
                    "CREATE UNIQUE INDEX {} ON {t} ({})",
                    ops.q(name),
                    columns.join(", ")
                ),
            ),
        };
        ops.push(
            format!("- unique {}.{}", table.name, unique.columns.join(",")),
            vec![up],
            vec![down],
        );
    }
    for index in &live.indexes {
        let Some(name) = &index.name else { continue };
        if backend == Backend::MySql && fk_names.contains(&name.as_str()) {
            continue; // MySQL's own index behind a foreign key
        }
        let kept = single(index).is_some_and(|c| want.indexes.iter().any(|(_, wc)| wc == c));
        if kept {
            continue;
        }
        let columns: Vec<String> = index.columns.iter().map(|c| ops.q(c)).collect();
        let up = build(
            Index::drop()
                .name(name.as_str())
                .table(sea_query::Alias::new(table.name)),
            backend,
        );
        let down = format!(
            "CREATE INDEX {} ON {t} ({})",
            ops.q(name),
            columns.join(", ")
        );
        ops.push(
            format!("- index {}.{}", table.name, index.columns.join(",")),
            vec![up],
            vec![down],
        );
    }
    // Added columns.
    for column in &added {
        add_column(ops, table, column);
    }
    // Changed columns.
    for (column, current, what) in &changed {
        let c = ops.q(column.name);
        let (up, down) = match backend {
            Backend::Postgres => {
                let mut up = Vec::new();
                let mut down = Vec::new();
                let want = type_name(column, backend);
                if !types_match(&want, &live_type(&current.ty, backend), backend) {
                    up.push(format!(
                        "ALTER TABLE {t} ALTER COLUMN {c} TYPE {want} USING {c}::{want}"
                    ));
                    down.push(format!(
                        "ALTER TABLE {t} ALTER COLUMN {c} TYPE {} USING {c}::{}",
                        current.ty, current.ty
                    ));
                }
                let nullable = column.nullable;
                if nullable != current.nullable {
                    up.push(format!(
                        "ALTER TABLE {t} ALTER COLUMN {c} {} NOT NULL",
                        if nullable { "DROP" } else { "SET" }
                    ));
                    down.push(format!(
                        "ALTER TABLE {t} ALTER COLUMN {c} {} NOT NULL",
                        if nullable { "SET" } else { "DROP" }
                    ));
                }
                let want_default = model_default(column, backend);
                let is_bool = column.ty == ColumnType::Bool;
                if want_default
                    .as_deref()
                    .map(|d| normalize_default(d, is_bool, backend))
                    != current
                        .default
                        .as_deref()
                        .map(|d| normalize_default(d, is_bool, backend))
                {
                    up.push(match &want_default {
                        Some(d) => format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}"),
                        None => format!("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT"),
                    });
                    down.push(match &current.default {
                        Some(d) => format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}"),
                        None => format!("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT"),
                    });
                }
                down.reverse();
                (up, down)
            }
            _ => {
                let mut def = format!("{c} {}", type_name(column, backend));
                def.push_str(if column.nullable {
                    " NULL"
                } else {
                    " NOT NULL"
                });
                if let Some(d) = model_default(column, backend) {
                    def.push_str(&format!(" DEFAULT {d}"));
                }
                if column.primary_key == Some(PrimaryKey::AutoIncrement) {
                    def.push_str(" AUTO_INCREMENT");
                }
                (
                    vec![format!("ALTER TABLE {t} MODIFY COLUMN {def}")],
                    vec![format!(
                        "ALTER TABLE {t} MODIFY COLUMN {}",
                        live_column_sql(backend, current)
                    )],
                )
            }
        };
        ops.push(
            format!(
                "~ column {}.{}: {}",
                table.name,
                column.name,
                what.join(", ")
            ),
            up,
            down,
        );
    }
    // Dropped columns.
    for column in &dropped {
        let up = build(
            SqTable::alter()
                .table(table.name)
                .drop_column(sea_query::Alias::new(&column.name)),
            backend,
        );
        let down = format!(
            "ALTER TABLE {t} ADD COLUMN {}",
            live_column_sql(backend, column)
        );
        ops.push(
            format!("- column {}.{}", table.name, column.name),
            vec![up],
            vec![down],
        );
    }
    // New indexes and uniques.
    for (name, column) in &want.indexes {
        if live
            .indexes
            .iter()
            .any(|i| single(i) == Some(column.as_str()))
        {
            continue;
        }
        let up = build(
            Index::create()
                .name(name.as_str())
                .table(table.name)
                .col(sea_query::Alias::new(column)),
            backend,
        );
        let down = build(Index::drop().name(name.as_str()).table(table.name), backend);
        ops.push(
            format!("+ index {}.{column}", table.name),
            vec![up],
            vec![down],
        );
    }
    for (name, column) in &want.uniques {
        if live
            .uniques
            .iter()
            .any(|u| single(u) == Some(column.as_str()))
        {
            continue;
        }
        let (up, down) = match backend {
            Backend::Postgres => (
                format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE ({})",
                    ops.q(name),
                    ops.q(column)
                ),
                format!("ALTER TABLE {t} DROP CONSTRAINT {}", ops.q(name)),
            ),
            _ => (
                format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE ({})",
                    ops.q(name),
                    ops.q(column)
                ),
                format!("ALTER TABLE {t} DROP INDEX {}", ops.q(name)),
            ),
        };
        ops.push(
            format!("+ unique {}.{column}", table.name),
            vec![up],
            vec![down],
        );
    }
    // New foreign keys.
    for (name, fk) in &want.foreign_keys {
        let exists = live.foreign_keys.iter().any(|l| same_fk(l, fk, backend));
        if exists {
            continue;
        }
        let up = vec![add_fk_sql(backend, table.name, name, fk)];
        let down = vec![build(
            SqForeignKey::drop().name(name.as_str()).table(table.name),
            backend,
        )];
        ops.push(
            format!(
                "+ foreign key {}.{} -> {}",
                table.name, fk.column, fk.ref_table
            ),
            up,
            down,
        );
    }
    Ok(())
}

/// `ALTER TABLE … ADD COLUMN` (and its `DROP COLUMN`).
fn add_column(ops: &mut Ops, table: &Table, column: &Column) {
    let backend = ops.backend;
    let up = build(
        SqTable::alter()
            .table(table.name)
            .add_column(column_def(column, backend)),
        backend,
    );
    let down = build(
        SqTable::alter().table(table.name).drop_column(column.name),
        backend,
    );
    ops.push(
        format!("+ column {}.{}", table.name, column.name),
        vec![up],
        vec![down],
    );
}

fn add_fk_sql(backend: Backend, table: &str, name: &str, fk: &LiveForeignKey) -> String {
    build(
        SqForeignKey::create()
            .name(name)
            .from(
                sea_query::Alias::new(table),
                sea_query::Alias::new(&fk.column),
            )
            .to(
                sea_query::Alias::new(&fk.ref_table),
                sea_query::Alias::new(&fk.ref_column),
            )
            .on_delete(sq_action(fk.on_delete))
            .on_update(sq_action(fk.on_update)),
        backend,
    )
}

fn sqlite_table(ops: &mut Ops, table: &Table, live: &LiveTable) -> Result<(), MigrationError> {
    let backend = Backend::Sqlite;
    let t = ops.q(table.name);
    let want = expected(table);
    let (added, dropped, changed) = column_changes(table, live, backend);
    let pk_changed = live.primary_key != [table.primary_key().name.to_string()];
    let uniques_changed = {
        let live_uniques: Vec<&str> = live.uniques.iter().filter_map(single).collect();
        let want_uniques: Vec<&str> = want.uniques.iter().map(|(_, c)| c.as_str()).collect();
        live_uniques.len() != live.uniques.len()
            || want_uniques.iter().any(|c| !live_uniques.contains(c))
            || live_uniques.iter().any(|c| !want_uniques.contains(c))
    };
    let fks_changed = want.foreign_keys.len() != live.foreign_keys.len()
        || want
            .foreign_keys
            .iter()
            .any(|(_, w)| !live.foreign_keys.iter().any(|l| same_fk(l, w, backend)));
    let simple_adds = added.iter().all(|c| {
        (c.nullable || c.default.is_some())
            && c.audit.is_none()
            && !c.unique
            && c.primary_key.is_none()
            && c.foreign_key.is_none()
    });
    let index_changes: Vec<(bool, String, String)> = {
        let mut v = Vec::new();
        for (name, column) in &want.indexes {
            if !live
                .indexes
                .iter()
                .any(|i| single(i) == Some(column.as_str()))
            {
                v.push((true, name.clone(), column.clone()));
            }
        }
        for index in &live.indexes {
            let Some(name) = &index.name else { continue };
            if !single(index).is_some_and(|c| want.indexes.iter().any(|(_, wc)| wc == c)) {
                v.push((false, name.clone(), index.columns.join(", ")));
            }
        }
        v
    };
    let needs_rebuild = pk_changed
        || uniques_changed
        || fks_changed
        || !dropped.is_empty()
        || !changed.is_empty()
        || !simple_adds;
    if !needs_rebuild {
        for column in &added {
            add_column(ops, table, column);
        }
        for (create, name, column) in index_changes {
            let create_sql = format!("CREATE INDEX {} ON {t} ({})", ops.q(&name), ops.q(&column));
            let drop_sql = format!("DROP INDEX {}", ops.q(&name));
            if create {
                ops.push(
                    format!("+ index {}.{column}", table.name),
                    vec![create_sql],
                    vec![drop_sql],
                );
            } else {
                let old = live
                    .sqlite_index_sql
                    .iter()
                    .find(|s| {
                        s.contains(&format!("\"{name}\"")) || s.contains(&format!(" {name} "))
                    })
                    .cloned()
                    .unwrap_or(create_sql);
                ops.push(
                    format!("- index {}.{column}", table.name),
                    vec![drop_sql],
                    vec![old],
                );
            }
        }
        return Ok(());
    }

    // Rebuild: new table from the model, copy the columns both have, swap.
    ops.rebuild = true;
    let temp = format!("_ra_new_{}", table.name);
    let common: Vec<String> = table
        .columns
        .iter()
        .filter(|c| live.column(c.name).is_some())
        .map(|c| ops.q(c.name))
        .collect();
    let common = common.join(", ");
    let mut ddl = table_ddl(table, backend, &temp, false);
    let indexes = ddl.split_off(1);
    let indexes: Vec<String> = indexes
        .into_iter()
        .map(|s| s.replace(&format!("\"{temp}\""), &t))
        .collect();
    let mut up = ddl;
    up.push(format!(
        "INSERT INTO {} ({common}) SELECT {common} FROM {t}",
        ops.q(&temp)
    ));
    up.push(format!("DROP TABLE {t}"));
    up.push(format!("ALTER TABLE {} RENAME TO {t}", ops.q(&temp)));
    up.extend(indexes);

    let old = format!("_ra_old_{}", table.name);
    let old_sql = live.sqlite_sql.as_deref().unwrap_or_default();
    let body = old_sql.find('(').map(|i| &old_sql[i..]).unwrap_or("");
    let mut down = vec![format!("CREATE TABLE {} {body}", ops.q(&old))];
    down.push(format!(
        "INSERT INTO {} ({common}) SELECT {common} FROM {t}",
        ops.q(&old)
    ));
    down.push(format!("DROP TABLE {t}"));
    down.push(format!("ALTER TABLE {} RENAME TO {t}", ops.q(&old)));
    down.extend(live.sqlite_index_sql.iter().cloned());

    let mut what: Vec<String> = Vec::new();
    what.extend(added.iter().map(|c| format!("+ column {}", c.name)));
    what.extend(dropped.iter().map(|c| format!("- column {}", c.name)));
    what.extend(
        changed
            .iter()
            .map(|(c, _, w)| format!("~ column {}: {}", c.name, w.join(", "))),
    );
    if uniques_changed {
        what.push("unique constraints".into());
    }
    if fks_changed {
        what.push("foreign keys".into());
    }
    if pk_changed {
        what.push("primary key".into());
    }
    what.extend(
        index_changes
            .iter()
            .map(|(c, _, col)| format!("{} index {col}", if *c { "+" } else { "-" })),
    );
    ops.push(
        format!("~ table {} rebuilt ({})", table.name, what.join("; ")),
        up,
        down,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_normalize_alike() {
        let n = |raw, b| normalize_default(raw, b, Backend::Postgres);
        assert_eq!(n("'abc'::character varying", false), "abc");
        assert_eq!(n("'-1'::integer", false), "-1");
        assert_eq!(n("(CURRENT_TIMESTAMP)", false), "now");
        assert_eq!(n("true", true), "true");
        assert_eq!(normalize_default("1", true, Backend::MySql), "true");
        assert_eq!(
            normalize_default("current_timestamp(6)", false, Backend::MySql),
            "now"
        );
        assert_eq!(normalize_default("'it''s'", false, Backend::Sqlite), "it's");
        assert_eq!(
            normalize_default("3.0", false, Backend::Sqlite),
            normalize_default("3", false, Backend::Sqlite)
        );
    }

    #[test]
    fn mysql_int_widths() {
        assert_eq!(live_type("int(11)", Backend::MySql), "int");
        assert_eq!(
            live_type("bigint(20) unsigned", Backend::MySql),
            "bigint unsigned"
        );
        assert_eq!(live_type("tinyint(1)", Backend::MySql), "tinyint(1)");
    }
}
