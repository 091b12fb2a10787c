//! MySQL's and MariaDB's migration facts: `COLUMN_TYPE` spellings, columns changed in place
//! with `MODIFY COLUMN`, DDL that commits implicitly, and the named lock that keeps two
//! processes from migrating one database at once.

use sqlx::mysql::MySqlConnection;

use crate::driver::migrate::{LiveColumn, LockError, MigrationDialect};
use crate::model::{Column, ColumnType, PrimaryKey};

/// MySQL's migration dialect.
pub(crate) struct MySqlMigrations;

/// The one [`MySqlMigrations`].
pub(crate) static MYSQL: MySqlMigrations = MySqlMigrations;

impl MigrationDialect for MySqlMigrations {
    fn quote(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    /// As `information_schema.COLUMNS.COLUMN_TYPE` prints it.
    fn catalog_type(&self, column: &Column) -> String {
        let indexed = column.unique
            || column.index
            || column.primary_key.is_some()
            || column.foreign_key.is_some();
        match column.ty {
            ColumnType::Bool => "tinyint(1)".into(),
            ColumnType::SmallInt => "smallint".into(),
            ColumnType::Integer => "int".into(),
            ColumnType::BigInt => "bigint".into(),
            ColumnType::Float => "float".into(),
            ColumnType::Double => "double".into(),
            ColumnType::String(Some(n)) => format!("varchar({n})"),
            // An index needs a length.
            ColumnType::String(None) if indexed => "varchar(255)".into(),
            ColumnType::String(None) => "text".into(),
            ColumnType::Bytes => "blob".into(),
            ColumnType::Uuid => "binary(16)".into(),
            ColumnType::Date => "date".into(),
            ColumnType::DateTimeUtc => "datetime(6)".into(),
            ColumnType::Json => "json".into(),
        }
    }

    /// Lowercase, without the display widths of integers (MariaDB, and MySQL before
    /// 8.0.19, print `int(11)`); `tinyint(1)` is a boolean and keeps its width.
    fn normalize_type(&self, raw: &str) -> String {
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

    /// MariaDB's `json` is an alias of `longtext`.
    fn same_type(&self, model: &str, live: &str) -> bool {
        model == live || (model == "json" && live == "longtext")
    }

    fn current_timestamp(&self) -> &'static str {
        "CURRENT_TIMESTAMP(6)"
    }

    fn foreign_keys_have_own_index(&self) -> bool {
        true
    }

    /// A unique constraint is an index.
    fn drop_unique(&self, table: &str, name: &str) -> String {
        format!("ALTER TABLE {table} DROP INDEX {name}")
    }

    fn identity_clause(&self) -> &'static str {
        " AUTO_INCREMENT"
    }

    /// `MODIFY COLUMN` with the whole definition, the model's up and the live one down.
    fn alter_column(
        &self,
        t: &str,
        column: &Column,
        current: &LiveColumn,
    ) -> Option<(Vec<String>, Vec<String>)> {
        let c = self.quote(column.name);
        let mut def = format!("{c} {}", self.catalog_type(column));
        def.push_str(if column.nullable {
            " NULL"
        } else {
            " NOT NULL"
        });
        if let Some(d) = self.default_sql(column) {
            def.push_str(&format!(" DEFAULT {d}"));
        }
        if column.primary_key == Some(PrimaryKey::AutoIncrement) {
            def.push_str(" AUTO_INCREMENT");
        }
        Some((
            vec![format!("ALTER TABLE {t} MODIFY COLUMN {def}")],
            vec![format!(
                "ALTER TABLE {t} MODIFY COLUMN {}",
                self.live_column_sql(current)
            )],
        ))
    }

    /// DDL commits implicitly: a failed migration is recorded as failed (sqlx's "dirty").
    fn transactional_ddl(&self) -> bool {
        false
    }

    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS CHAR)")
    }
}

/// Takes the migration lock of the connection's database, waiting 10 minutes at most.
pub(crate) async fn get_lock(conn: &mut MySqlConnection) -> Result<(), LockError> {
    let (got,): (Option<i64>,) =
        sqlx::query_as("SELECT GET_LOCK(CONCAT('rocket_alchemy_migrate_', DATABASE()), 600)")
            .fetch_one(&mut *conn)
            .await?;
    match got {
        Some(1) => Ok(()),
        _ => Err(LockError::TimedOut),
    }
}

/// Releases the lock [`get_lock`] took; a failure is ignored.
pub(crate) async fn release_lock(conn: &mut MySqlConnection) {
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('rocket_alchemy_migrate_', DATABASE()))")
        .execute(&mut *conn)
        .await;
}

#[cfg(test)]
mod tests {
    use super::MYSQL;
    use crate::driver::migrate::MigrationDialect;

    #[test]
    fn defaults_normalize_alike() {
        assert_eq!(MYSQL.normalize_default("1", true), "true");
        assert_eq!(
            MYSQL.normalize_default("current_timestamp(6)", false),
            "now"
        );
    }

    #[test]
    fn int_widths() {
        assert_eq!(MYSQL.normalize_type("int(11)"), "int");
        assert_eq!(
            MYSQL.normalize_type("bigint(20) unsigned"),
            "bigint unsigned"
        );
        assert_eq!(MYSQL.normalize_type("tinyint(1)"), "tinyint(1)");
    }
}
