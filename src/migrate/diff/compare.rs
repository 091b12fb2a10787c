//! What differs between a model table and its live table: columns, and what the model
//! expects of indexes, unique constraints and foreign keys, in the live representation.

use crate::driver::migrate::{LiveColumn, LiveForeignKey, LiveIndex, LiveTable, MigrationDialect};
use crate::model::{Column, ColumnType, PrimaryKey, Table};

/// What the model expects of a table, in the live representation: `(name, column)` for
/// indexes and uniques, `(name, key)` for foreign keys.
pub(super) struct Expected {
    pub(super) indexes: Vec<(String, String)>,
    pub(super) uniques: Vec<(String, String)>,
    pub(super) foreign_keys: Vec<(String, LiveForeignKey)>,
}

pub(super) fn expected(table: &Table) -> Expected {
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

/// The column of a single-column index.
pub(super) fn single(index: &LiveIndex) -> Option<&str> {
    match index.columns.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    }
}

/// Whether two foreign keys are the same constraint (names aside: SQLite keeps none).
pub(super) fn same_fk(
    a: &LiveForeignKey,
    b: &LiveForeignKey,
    dialect: &dyn MigrationDialect,
) -> bool {
    a.column == b.column
        && a.ref_table == b.ref_table
        && a.ref_column == b.ref_column
        && dialect.same_action(a.on_delete, b.on_delete)
        && dialect.same_action(a.on_update, b.on_update)
}

/// Ends the description of a type change that can lose data (see [`widens`]).
pub(super) const NARROWING: &str = " (narrowing: may lose data)";

/// Whether a column's type change from `have` to `want` (catalog spellings, normalized)
/// keeps every value: a longer `VARCHAR`, `VARCHAR` to `TEXT`, a wider integer or float.
/// Anything else (shorter text, smaller numbers, another kind of type) may lose data.
pub(super) fn widens(have: &str, want: &str) -> bool {
    let upper = |t: &str| t.trim().to_ascii_uppercase();
    let (have, want) = (upper(have), upper(want));
    let varchar = |t: &str| -> Option<u64> {
        let rest = t
            .strip_prefix("VARCHAR(")
            .or_else(|| t.strip_prefix("CHARACTER VARYING("))?;
        rest.strip_suffix(')')?.trim().parse().ok()
    };
    let text = |t: &str| matches!(t, "TEXT" | "LONGTEXT" | "CLOB") || t == "CHARACTER VARYING";
    let rank = |t: &str| -> Option<(u8, u8)> {
        Some(match t {
            "SMALLINT" | "INT2" => (0, 1),
            "INTEGER" | "INT" | "INT4" => (0, 2),
            "BIGINT" | "INT8" => (0, 3),
            "REAL" | "FLOAT" | "FLOAT4" => (1, 1),
            "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" => (1, 2),
            _ => return None,
        })
    };
    match (varchar(&have), varchar(&want)) {
        (Some(a), Some(b)) => return b >= a,
        (Some(_), None) if text(&want) => return true,
        _ => {}
    }
    match (rank(&have), rank(&want)) {
        (Some((ka, a)), Some((kb, b))) => ka == kb && b >= a,
        _ => false,
    }
}

/// The columns of one table: added, dropped, and changed with a description of each change.
pub(super) struct ColumnChanges<'t> {
    pub(super) added: Vec<&'t Column>,
    pub(super) dropped: Vec<&'t LiveColumn>,
    pub(super) changed: Vec<(&'t Column, &'t LiveColumn, Vec<String>)>,
}

/// Compares one table's columns.
pub(super) fn column_changes<'t>(
    table: &'t Table,
    live: &'t LiveTable,
    dialect: &dyn MigrationDialect,
) -> ColumnChanges<'t> {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for column in table.columns {
        match live.column(column.name) {
            None => added.push(column),
            Some(current) => {
                let mut what = Vec::new();
                let want = dialect.catalog_type(column);
                let have = dialect.normalize_type(&current.ty);
                if !dialect.same_type(&want, &have) {
                    let narrowing = if widens(&have, &want) { "" } else { NARROWING };
                    what.push(format!("type {have} -> {want}{narrowing}"));
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
                    let want = dialect
                        .default_sql(column)
                        .map(|d| dialect.normalize_default(&d, is_bool));
                    let have = current
                        .default
                        .as_deref()
                        .map(|d| dialect.normalize_default(d, is_bool));
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
    ColumnChanges {
        added,
        dropped,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::widens;

    #[test]
    fn only_widening_type_changes_keep_every_value() {
        for (have, want) in [
            ("VARCHAR(100)", "VARCHAR(200)"),
            ("varchar(100)", "TEXT"),
            ("character varying(10)", "character varying(20)"),
            ("SMALLINT", "INTEGER"),
            ("INTEGER", "BIGINT"),
            ("REAL", "DOUBLE PRECISION"),
        ] {
            assert!(widens(have, want), "{have} -> {want}");
        }
        for (have, want) in [
            ("VARCHAR(200)", "VARCHAR(100)"),
            ("TEXT", "VARCHAR(100)"),
            ("BIGINT", "INTEGER"),
            ("DOUBLE", "REAL"),
            ("INTEGER", "REAL"),
            ("TEXT", "INTEGER"),
            ("BIGINT", "BOOLEAN"),
        ] {
            assert!(!widens(have, want), "{have} -> {want}");
        }
    }
}
