//! Tables an engine cannot `ALTER` (SQLite: its `ALTER TABLE` adds columns but cannot
//! change or drop one, nor change a constraint). Added nullable or defaulted columns and
//! indexes are still added in place; any other change rebuilds the table with its rows:
//! create the new table from the model, copy the columns both have, drop the old one,
//! rename. The down statements rebuild the old table from the statements that made it.

use crate::ddl::table_ddl;
use crate::driver::migrate::LiveTable;
use crate::model::Table;

use super::super::MigrationError;
use super::alter::add_column;
use super::compare::{column_changes, expected, same_fk, single, ColumnChanges, NARROWING};
use super::plan::Ops;

/// Adds to `ops` what brings `live` to the model `table`, rebuilding it if need be.
pub(super) fn table(ops: &mut Ops, table: &Table, live: &LiveTable) -> Result<(), MigrationError> {
    let backend = ops.backend;
    let dialect = ops.dialect;
    let t = ops.q(table.name);
    let want = expected(table);
    let ColumnChanges {
        added,
        dropped,
        changed,
    } = column_changes(table, live, dialect);
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
            .any(|(_, w)| !live.foreign_keys.iter().any(|l| same_fk(l, w, dialect)));
    let simple_adds = added.iter().all(|c| {
        (c.nullable
            || c.default.is_some()
            || c.audit == Some(crate::model::AuditColumn::Version))
            // SQLite cannot ADD COLUMN with a CURRENT_TIMESTAMP default.
            && !matches!(
                c.audit,
                Some(crate::model::AuditColumn::CreatedAt | crate::model::AuditColumn::UpdatedAt)
            )
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
                    .index_sql
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
    // The indexes name the new table: they are created after the rename.
    let quoted_temp = ops.q(&temp);
    let indexes: Vec<String> = indexes
        .into_iter()
        .map(|s| s.replace(&quoted_temp, &t))
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
    let old_sql = live.create_sql.as_deref().unwrap_or_default();
    let body = old_sql.find('(').map(|i| &old_sql[i..]).unwrap_or("");
    let mut down = vec![format!("CREATE TABLE {} {body}", ops.q(&old))];
    down.push(format!(
        "INSERT INTO {} ({common}) SELECT {common} FROM {t}",
        ops.q(&old)
    ));
    down.push(format!("DROP TABLE {t}"));
    down.push(format!("ALTER TABLE {} RENAME TO {t}", ops.q(&old)));
    down.extend(live.index_sql.iter().cloned());

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
    let summary = format!("~ table {} rebuilt ({})", table.name, what.join("; "));
    let loses_data = !dropped.is_empty()
        || changed
            .iter()
            .any(|(_, _, w)| w.iter().any(|w| w.ends_with(NARROWING)));
    match loses_data {
        true => ops.push_destructive(summary, up, down),
        false => ops.push(summary, up, down),
    }
    Ok(())
}
