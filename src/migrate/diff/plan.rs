//! The plan: new tables, changed tables (altered or rebuilt, as the engine allows) and
//! dropped tables, as up statements and the down statements that undo them.

use sea_query::Table as SqTable;

use crate::config::Backend;
use crate::ddl::{build, sort_tables, table_ddl};
use crate::driver::migrate::{self as driver, LiveTable, MigrationDialect};
use crate::model::{ReferentialAction, Table};

use super::super::MigrationError;
use super::{alter, rebuild};

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
    /// The lines of [`summary`](Self::summary) that lose data: a dropped table or column,
    /// a narrowing type change. `revision --autogenerate` refuses them without
    /// `--allow-destructive`, and marks them in the file when allowed.
    pub destructive: Vec<String>,
}

impl Plan {
    /// Whether models and schema agree.
    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }
}

/// The changes found so far, each with its up and down statements.
pub(super) struct Ops {
    pub(super) backend: Backend,
    pub(super) dialect: &'static dyn MigrationDialect,
    steps: Vec<(Vec<String>, Vec<String>)>,
    summary: Vec<String>,
    /// A table is rebuilt: the statements run in the engine's rebuild transaction.
    pub(super) rebuild: bool,
    /// The summaries of the steps that lose data.
    destructive: Vec<String>,
}

impl Ops {
    pub(super) fn push(&mut self, summary: String, up: Vec<String>, down: Vec<String>) {
        self.summary.push(summary);
        self.steps.push((up, down));
    }

    /// [`Ops::push`] for a step that loses data (see [`Plan::destructive`]).
    pub(super) fn push_destructive(&mut self, summary: String, up: Vec<String>, down: Vec<String>) {
        self.destructive.push(summary.clone());
        self.push(summary, up, down);
    }

    /// `name` quoted.
    pub(super) fn q(&self, name: &str) -> String {
        self.dialect.quote(name)
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
        dialect: driver::dialect(backend),
        steps: Vec::new(),
        summary: Vec::new(),
        rebuild: false,
        destructive: Vec::new(),
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
        if ops.dialect.rebuilds_tables() {
            rebuild::table(&mut ops, table, current)?;
        } else {
            alter::table(&mut ops, table, current)?;
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
        let down = recreate(ops.dialect, table);
        ops.push_destructive(format!("- table {}", table.name), up, down);
    }

    let Ops {
        dialect,
        steps,
        summary,
        rebuild,
        destructive,
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
        up = dialect.rebuild_transaction(up);
        down = dialect.rebuild_transaction(down);
    }
    Ok(Plan {
        up,
        down,
        summary,
        no_transaction: rebuild,
        destructive,
    })
}

/// How many live tables reference `table` (directly), so referencing tables drop first.
fn dropped_rank(table: &LiveTable, live: &[LiveTable]) -> usize {
    live.iter()
        .filter(|t| t.foreign_keys.iter().any(|fk| fk.ref_table == table.name))
        .count()
}

/// `CREATE TABLE` (and indexes) rebuilding a live table as it is: the statements that made
/// it where the engine keeps them, else written from the catalog.
fn recreate(dialect: &dyn MigrationDialect, table: &LiveTable) -> Vec<String> {
    if let Some(sql) = &table.create_sql {
        let mut out = vec![sql.clone()];
        out.extend(table.index_sql.iter().cloned());
        return out;
    }
    let q = |n: &str| dialect.quote(n);
    let mut parts: Vec<String> = table
        .columns
        .iter()
        .map(|c| dialect.live_column_sql(c))
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

fn action_sql(action: ReferentialAction) -> &'static str {
    match action {
        ReferentialAction::NoAction => "NO ACTION",
        ReferentialAction::Restrict => "RESTRICT",
        ReferentialAction::Cascade => "CASCADE",
        ReferentialAction::SetNull => "SET NULL",
    }
}
