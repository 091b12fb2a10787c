//! What migrations need of an engine, behind one interface: how it spells and changes a
//! schema ([`MigrationDialect`], one implementation per backend module), what its live schema
//! is ([`live_tables`]), how two processes keep out of each other's way while migrating
//! ([`MigrationConnection::lock`]) and how the tracking table is read.
//!
//! `crate::migrate` asks here and never matches on the backend: this module is the one place
//! where migrations pick one. The tracking table's name is the caller's (sqlx's
//! `_sqlx_migrations`), passed in.

use sqlx::migrate::Migrate;
use sqlx::AssertSqlSafe;

use super::{with_pool, BindPool};
use crate::config::Backend;
use crate::model::{AuditColumn, Column, Literal, ReferentialAction};

#[cfg(feature = "mysql")]
use sqlx::mysql::MySql;
#[cfg(feature = "postgres")]
use sqlx::postgres::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::Sqlite;

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
    /// The `CREATE TABLE` statement that made the table, where the engine keeps it (SQLite).
    pub(crate) create_sql: Option<String>,
    /// The `CREATE INDEX` statements of its named indexes, where the engine keeps them
    /// (SQLite).
    pub(crate) index_sql: Vec<String>,
}

impl LiveTable {
    pub(crate) fn column(&self, name: &str) -> Option<&LiveColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A referential action as a catalog spells it (`CASCADE`, `SET_NULL`, PostgreSQL's `c`…).
pub(super) fn referential_action(raw: &str) -> ReferentialAction {
    match raw.to_ascii_uppercase().replace('_', " ").as_str() {
        "CASCADE" | "C" => ReferentialAction::Cascade,
        "SET NULL" | "N" => ReferentialAction::SetNull,
        "RESTRICT" | "R" => ReferentialAction::Restrict,
        _ => ReferentialAction::NoAction,
    }
}

/// How an engine spells and changes a schema, as autogenerate and the migration runner need
/// it. Implemented by each backend module; reached through [`dialect`].
///
/// Identifiers passed in are plain names unless a parameter says it is quoted.
pub(crate) trait MigrationDialect: Send + Sync + 'static {
    // ---- names and types ----

    /// `name` as a quoted identifier.
    fn quote(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// The type of a model column as this engine's catalog reports it: compared with a
    /// [`LiveColumn::ty`] (after [`normalize_type`](Self::normalize_type)) and written in
    /// `ALTER` statements. The same choice as `crate::model::sql_type` (which `CREATE TABLE`
    /// uses), in the catalog's spelling.
    fn catalog_type(&self, column: &Column) -> String;

    /// A live type in the form [`catalog_type`](Self::catalog_type) uses.
    fn normalize_type(&self, raw: &str) -> String;

    /// Whether a model type and a normalized live type are the same.
    fn same_type(&self, model: &str, live: &str) -> bool {
        model == live
    }

    // ---- defaults ----

    /// The default of audit timestamp columns.
    fn current_timestamp(&self) -> &'static str {
        "CURRENT_TIMESTAMP"
    }

    /// A boolean as a column default.
    fn bool_literal(&self, value: bool) -> String {
        (value as u8).to_string()
    }

    /// The default SQL of a model column (`None`: no default).
    fn default_sql(&self, column: &Column) -> Option<String> {
        match column.audit {
            Some(AuditColumn::CreatedAt | AuditColumn::UpdatedAt) => {
                return Some(self.current_timestamp().into())
            }
            Some(AuditColumn::Version) => return Some("1".into()),
            _ => {}
        }
        column.default.map(|literal| match literal {
            Literal::Bool(b) => self.bool_literal(b),
            Literal::Int(i) => i.to_string(),
            Literal::Float(f) => f.to_string(),
            Literal::Str(s) => format!("'{}'", s.replace('\'', "''")),
        })
    }

    /// An unquoted default expression without the type cast the catalog adds to it
    /// (PostgreSQL's `0::integer`).
    fn strip_cast<'a>(&self, expr: &'a str) -> &'a str {
        expr
    }

    /// A default expression reduced to its value, for comparison: unquoted, uncast, without
    /// parentheses; booleans as `true`/`false`; the current time as `now`.
    fn normalize_default(&self, raw: &str, bool_column: bool) -> String {
        let mut s = raw.trim();
        while s.starts_with('(') && s.ends_with(')') && balanced(&s[1..s.len() - 1]) {
            s = s[1..s.len() - 1].trim();
        }
        let value = match s.strip_prefix('\'') {
            // 'text' possibly followed by a cast
            Some(rest) => unquote(rest),
            None => self.strip_cast(s).to_string(),
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

    // ---- constraints and columns ----

    /// Whether two referential actions are the same to this engine. By default `NO ACTION`
    /// and `RESTRICT` count as one.
    fn same_action(&self, a: ReferentialAction, b: ReferentialAction) -> bool {
        use ReferentialAction::{NoAction, Restrict};
        a == b || matches!((a, b), (NoAction, Restrict) | (Restrict, NoAction))
    }

    /// Whether the engine keeps an index named after each foreign key (MySQL): it belongs to
    /// the key, not to the models.
    fn foreign_keys_have_own_index(&self) -> bool {
        false
    }

    /// The statement dropping the unique constraint `name` of `table` (both quoted).
    fn drop_unique(&self, table: &str, name: &str) -> String {
        format!("ALTER TABLE {table} DROP CONSTRAINT {name}")
    }

    /// What an identity / auto-increment column declares after its type.
    fn identity_clause(&self) -> &'static str {
        ""
    }

    /// A live column's definition, as `ADD COLUMN` and `CREATE TABLE` take it.
    fn live_column_sql(&self, column: &LiveColumn) -> String {
        let mut sql = format!("{} {}", self.quote(&column.name), column.ty);
        if column.identity {
            sql.push_str(self.identity_clause());
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

    // ---- changing tables ----

    /// Whether changes beyond added columns and indexes rebuild the table (create the new
    /// one, copy the rows, drop the old one, rename) because `ALTER TABLE` cannot make them
    /// (SQLite).
    fn rebuilds_tables(&self) -> bool {
        false
    }

    /// The up and down statements changing the live column `live` of `table` (quoted) to
    /// the model `column`; `None` where a column cannot be changed in place.
    fn alter_column(
        &self,
        table: &str,
        column: &Column,
        live: &LiveColumn,
    ) -> Option<(Vec<String>, Vec<String>)> {
        let _ = (table, column, live);
        None
    }

    /// The statements of a migration that rebuilds tables, which runs without sqlx's
    /// transaction (`-- no-transaction`): `body` inside the transaction the engine needs.
    fn rebuild_transaction(&self, body: Vec<String>) -> Vec<String> {
        body
    }

    /// Whether DDL is transactional: a failed migration leaves no trace, and replaying its
    /// statements in a transaction that is rolled back finds the one that failed.
    fn transactional_ddl(&self) -> bool {
        true
    }

    /// Where in the SQL it was sent `error` points, in characters from 0, when the engine
    /// says (PostgreSQL's error position); `None` otherwise.
    fn error_offset(&self, error: &sqlx::Error) -> Option<usize> {
        let _ = error;
        None
    }

    // ---- the tracking table ----

    /// `expr` cast to text.
    fn text(&self, expr: &str) -> String;

    /// The `n`th bind parameter (1-based).
    fn placeholder(&self, n: usize) -> String {
        let _ = n;
        "?".into()
    }
}

/// Whether the parentheses of `s` balance.
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

/// The text of a quoted string, its opening quote already gone, up to its closing quote.
fn unquote(rest: &str) -> String {
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
}

/// The migration dialect of `backend`. Panics for a backend whose feature is disabled: no
/// bind of it can exist (configuration refuses it).
pub(crate) fn dialect(backend: Backend) -> &'static dyn MigrationDialect {
    match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => &super::sqlite::migrate::SQLITE,
        #[cfg(feature = "postgres")]
        Backend::Postgres => &super::postgres::migrate::POSTGRES,
        #[cfg(feature = "mysql")]
        Backend::MySql => &super::mysql::migrate::MYSQL,
        #[allow(unreachable_patterns)]
        other => unreachable!("the `{other}` feature of rocket_alchemy is disabled"),
    }
}

/// Every table of the database except `skip` (the tracking table) and the engine's own.
pub(crate) async fn live_tables(
    pool: &BindPool,
    skip: &str,
) -> Result<Vec<LiveTable>, sqlx::Error> {
    match pool {
        #[cfg(feature = "sqlite")]
        BindPool::Sqlite(pool) => super::sqlite::introspect::tables(pool, skip).await,
        #[cfg(feature = "postgres")]
        BindPool::Postgres(pool) => super::postgres::introspect::tables(pool, skip).await,
        #[cfg(feature = "mysql")]
        BindPool::MySql(pool) => super::mysql::introspect::tables(pool, skip).await,
    }
}

/// Whether the database has the table `name` (in the current schema).
pub(crate) async fn table_exists(pool: &BindPool, name: &str) -> Result<bool, sqlx::Error> {
    match pool {
        #[cfg(feature = "sqlite")]
        BindPool::Sqlite(pool) => super::sqlite::introspect::table_exists(pool, name).await,
        #[cfg(feature = "postgres")]
        BindPool::Postgres(pool) => super::postgres::introspect::table_exists(pool, name).await,
        #[cfg(feature = "mysql")]
        BindPool::MySql(pool) => super::mysql::introspect::table_exists(pool, name).await,
    }
}

/// A row of the tracking table.
#[derive(Debug)]
pub(crate) struct TrackingRow {
    pub(crate) version: i64,
    pub(crate) description: String,
    /// As the database prints it.
    pub(crate) installed_on: String,
    pub(crate) success: bool,
    pub(crate) checksum: Vec<u8>,
    pub(crate) execution_time: i64,
}

/// Every row of the tracking table `table`, by version.
pub(crate) async fn tracking_rows(
    pool: &BindPool,
    table: &str,
) -> Result<Vec<TrackingRow>, sqlx::Error> {
    let installed_on = dialect(pool.backend()).text("installed_on");
    let sql = format!(
        "SELECT version, description, {installed_on}, success, checksum, execution_time FROM {table} ORDER BY version"
    );
    with_pool!(pool, pool => {
        let mut conn = pool.acquire().await?;
        let rows: Vec<(i64, String, String, bool, Vec<u8>, i64)> =
            sqlx::query_as(AssertSqlSafe(sql))
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(version, description, installed_on, success, checksum, execution_time)| TrackingRow {
                version,
                description,
                installed_on,
                success,
                checksum,
                execution_time,
            })
            .collect())
    })
}

/// Drops the table `name` if it exists.
pub(crate) async fn drop_table(pool: &BindPool, name: &str) -> Result<(), sqlx::Error> {
    let sql = format!("DROP TABLE IF EXISTS {name}");
    with_pool!(pool, pool => {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(pool).await?;
        Ok(())
    })
}

/// Replays `statements` in a transaction that is rolled back and returns the position of the
/// first that fails (`None`: none failed, or no transaction could be opened). Meaningful
/// where DDL is transactional ([`MigrationDialect::transactional_ddl`]).
pub(crate) async fn first_failure(pool: &BindPool, statements: &[&str]) -> Option<usize> {
    use sqlx::Connection;
    with_pool!(pool, pool => {
        let mut conn = pool.acquire().await.ok()?;
        let mut tx = conn.begin().await.ok()?;
        let mut found = None;
        for (i, statement) in statements.iter().enumerate() {
            let sql = AssertSqlSafe(statement.to_string());
            if sqlx::raw_sql(sql).execute(&mut *tx).await.is_err() {
                found = Some(i);
                break;
            }
        }
        let _ = tx.rollback().await;
        found
    })
}

/// Why the migration lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// The lock file next to a SQLite database could not be opened or locked.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    #[error("could not lock {}: {source}", .path.display())]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process held the lock for the whole wait (MySQL).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    #[error("another process held the migration lock for 10 minutes")]
    TimedOut,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A pooled connection of one of the enabled backends.
enum Conn {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::pool::PoolConnection<Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::pool::PoolConnection<MySql>),
}

/// Runs `$body` with `$conn` bound to the concrete connection of a [`Conn`].
macro_rules! with_conn {
    ($value:expr, $conn:ident => $body:expr) => {
        match $value {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite($conn) => $body,
            #[cfg(feature = "postgres")]
            Conn::Postgres($conn) => $body,
            #[cfg(feature = "mysql")]
            Conn::MySql($conn) => $body,
        }
    };
}

/// What a locked connection holds besides sqlx's own lock.
enum Lock {
    /// Nothing: not locked, or only by sqlx (PostgreSQL's advisory lock), or a SQLite
    /// database in memory.
    None,
    /// SQLite: the lock file next to the database, locked while it is open.
    #[cfg(feature = "sqlite")]
    File(#[allow(dead_code)] super::sqlite::migrate::LockFile),
    /// MySQL: the named lock, held by the connection.
    #[cfg(feature = "mysql")]
    Named,
}

/// A connection for sqlx's migration machinery ([`Migrate`]), holding the engine's
/// migration lock when opened with [`lock`](Self::lock).
pub(crate) struct MigrationConnection {
    conn: Conn,
    dialect: &'static dyn MigrationDialect,
    /// Held until dropped, after the connection went back to the pool.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    lock: Lock,
}

impl MigrationConnection {
    /// A pooled connection, without a lock.
    pub(crate) async fn open(pool: &BindPool) -> Result<MigrationConnection, sqlx::Error> {
        let conn = match pool {
            #[cfg(feature = "sqlite")]
            BindPool::Sqlite(pool) => Conn::Sqlite(pool.acquire().await?),
            #[cfg(feature = "postgres")]
            BindPool::Postgres(pool) => Conn::Postgres(pool.acquire().await?),
            #[cfg(feature = "mysql")]
            BindPool::MySql(pool) => Conn::MySql(pool.acquire().await?),
        };
        Ok(MigrationConnection {
            conn,
            dialect: dialect(pool.backend()),
            lock: Lock::None,
        })
    }

    /// A pooled connection, after taking the locks that sqlx's [`Migrate::lock`] does not
    /// take or does not check: a lock file next to a SQLite database (sqlx has none for
    /// SQLite); on MySQL a named lock, checked, after waiting 10 minutes at most (sqlx asks
    /// for an infinite wait with `-1`, which MariaDB does not honour, and ignores the
    /// answer). PostgreSQL's advisory lock is sqlx's. Give it back with
    /// [`release`](Self::release).
    pub(crate) async fn lock(pool: &BindPool) -> Result<MigrationConnection, LockError> {
        match pool {
            #[cfg(feature = "sqlite")]
            BindPool::Sqlite(sqlite) => {
                // The file first: it is the outer lock.
                let file = super::sqlite::migrate::lock_file(sqlite)?;
                let mut conn = MigrationConnection::open(pool).await?;
                conn.lock = file.map_or(Lock::None, Lock::File);
                Ok(conn)
            }
            #[cfg(feature = "postgres")]
            BindPool::Postgres(_) => Ok(MigrationConnection::open(pool).await?),
            #[cfg(feature = "mysql")]
            BindPool::MySql(mysql) => {
                let mut conn = mysql.acquire().await?;
                super::mysql::migrate::get_lock(&mut conn).await?;
                Ok(MigrationConnection {
                    conn: Conn::MySql(conn),
                    dialect: dialect(Backend::MySql),
                    lock: Lock::Named,
                })
            }
        }
    }

    /// The connection, for sqlx's migration machinery.
    pub(crate) fn migrate(&mut self) -> &mut (dyn Migrate + Send) {
        with_conn!(&mut self.conn, conn => &mut **conn)
    }

    /// Deletes the row of `version` from the tracking table `table` (what [`Migrate::skip`]
    /// inserted).
    pub(crate) async fn delete_row(
        &mut self,
        table: &str,
        version: i64,
    ) -> Result<(), sqlx::Error> {
        let placeholder = self.dialect.placeholder(1);
        let sql = format!("DELETE FROM {table} WHERE version = {placeholder}");
        with_conn!(&mut self.conn, conn => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(version)
                .persistent(false)
                .execute(&mut **conn)
                .await?;
        });
        Ok(())
    }

    /// Releases the locks [`lock`](Self::lock) took and gives the connection back.
    pub(crate) async fn release(self) {
        #[cfg(feature = "mysql")]
        if let (Conn::MySql(mut conn), Lock::Named) = (self.conn, self.lock) {
            super::mysql::migrate::release_lock(&mut conn).await;
        }
    }
}
