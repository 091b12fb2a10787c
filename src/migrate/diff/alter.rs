//! Tables changed in place with `ALTER TABLE` (PostgreSQL, MySQL): columns added, changed
//! (as the engine's
//! [`MigrationDialect::alter_column`](crate::driver::migrate::MigrationDialect::alter_column)
//! writes it) and dropped; indexes, unique constraints and foreign keys added and dropped. A
//! changed primary key is refused.

use sea_query::{ForeignKey as SqForeignKey, ForeignKeyAction, Index, Table as SqTable};

use crate::config::Backend;
use crate::ddl::{build, column_def};
use crate::driver::migrate::{LiveForeignKey, LiveTable};
use crate::model::{Column, ReferentialAction, Table};

use super::super::MigrationError;
use super::compare::{column_changes, expected, same_fk, single, ColumnChanges, NARROWING};
use super::plan::Ops;

/// Adds to `ops` what brings `live` to the model `table` with `ALTER` statements.
pub(super) fn table(ops: &mut Ops, table: &Table, live: &LiveTable) -> Result<(), MigrationError> {
    let backend = ops.backend;
    let dialect = ops.dialect;
    let t = ops.q(table.name);
    let pk = table.primary_key();
    if live.primary_key != [pk.name.to_string()] {
        return Err(MigrationError::Unsupported(format!(
            "the primary key of `{}` changed",
            table.name
        )));
    }
    let want = expected(table);
    let ColumnChanges {
        added,
        dropped,
        changed,
    } = column_changes(table, live, dialect);

    // Foreign keys that go away.
    for fk in &live.foreign_keys {
        let kept = want
            .foreign_keys
            .iter()
            .any(|(_, w)| same_fk(w, fk, dialect));
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
        let (up, down) = match unique.constraint {
            true => (
                dialect.drop_unique(&t, &ops.q(name)),
                format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE ({})",
                    ops.q(name),
                    columns.join(", ")
                ),
            ),
            false => (
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
        if dialect.foreign_keys_have_own_index() && fk_names.contains(&name.as_str()) {
            continue; // the engine's own index behind a foreign key
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
        let (up, down) = dialect.alter_column(&t, column, current).ok_or_else(|| {
            MigrationError::Unsupported(format!(
                "the column `{}.{}` changed, and the engine cannot change it in place",
                table.name, column.name
            ))
        })?;
        let summary = format!(
            "~ column {}.{}: {}",
            table.name,
            column.name,
            what.join(", ")
        );
        match what.iter().any(|w| w.ends_with(NARROWING)) {
            true => ops.push_destructive(summary, up, down),
            false => ops.push(summary, up, down),
        }
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
            dialect.live_column_sql(column)
        );
        ops.push_destructive(
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
        let up = format!(
            "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE ({})",
            ops.q(name),
            ops.q(column)
        );
        let down = dialect.drop_unique(&t, &ops.q(name));
        ops.push(
            format!("+ unique {}.{column}", table.name),
            vec![up],
            vec![down],
        );
    }
    // New foreign keys.
    for (name, fk) in &want.foreign_keys {
        let exists = live.foreign_keys.iter().any(|l| same_fk(l, fk, dialect));
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
pub(super) fn add_column(ops: &mut Ops, table: &Table, column: &Column) {
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

/// `ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY`.
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

fn sq_action(action: ReferentialAction) -> ForeignKeyAction {
    match action {
        ReferentialAction::NoAction => ForeignKeyAction::NoAction,
        ReferentialAction::Restrict => ForeignKeyAction::Restrict,
        ReferentialAction::Cascade => ForeignKeyAction::Cascade,
        ReferentialAction::SetNull => ForeignKeyAction::SetNull,
    }
}
