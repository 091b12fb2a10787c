//! MySQL / MariaDB scratch databases. The server has no `CREATE DATABASE … TEMPLATE`: the
//! template's `SHOW CREATE TABLE` statements are captured once and replayed for each clone,
//! with the template's rows copied server-side (`INSERT … SELECT`).

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use crate::driver::scratch::Frozen;

fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// An admin connection whose statements stay out of the statement log (the test kit's
/// own work, not the app's).
async fn connect(admin: &str) -> Result<MySqlConnection, sqlx::Error> {
    use std::str::FromStr;
    sqlx::mysql::MySqlConnectOptions::from_str(admin)?
        .disable_statement_logging()
        .connect()
        .await
}

async fn admin_run(admin: &str, sql: String) -> Result<(), sqlx::Error> {
    let mut conn = connect(admin).await?;
    let result = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
    let _ = conn.close().await;
    result.map(|_| ())
}

pub(crate) async fn create(admin: &str, name: &str) -> Result<(), sqlx::Error> {
    admin_run(admin, format!("CREATE DATABASE {}", quoted(name))).await
}

/// Captures the template's base tables (`SHOW CREATE TABLE`) and which of them hold rows.
pub(crate) async fn freeze(admin: &str, name: &str) -> Result<Frozen, sqlx::Error> {
    let mut conn = connect(admin).await?;
    let result = async {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        )
        .bind(name)
        .fetch_all(&mut conn)
        .await?;
        let mut frozen = Frozen::default();
        for table in tables {
            let qualified = format!("{}.{}", quoted(name), quoted(&table));
            let row = sqlx::query(AssertSqlSafe(format!("SHOW CREATE TABLE {qualified}")))
                .fetch_one(&mut conn)
                .await?;
            let create: String = row.try_get(1)?;
            let rows: i64 =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {qualified}")))
                    .fetch_one(&mut conn)
                    .await?;
            if rows > 0 {
                frozen.with_rows.push(table.clone());
            }
            frozen.tables.push((table, create));
        }
        Ok(frozen)
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Creates `clone` with the template's tables (foreign keys included) and rows.
pub(crate) async fn clone(
    admin: &str,
    template: &str,
    frozen: &Frozen,
    clone: &str,
) -> Result<(), sqlx::Error> {
    let mut script = format!(
        "CREATE DATABASE {db}; USE {db}; SET SESSION FOREIGN_KEY_CHECKS = 0;",
        db = quoted(clone)
    );
    for (_, create) in &frozen.tables {
        script.push_str(create);
        script.push(';');
    }
    for table in &frozen.with_rows {
        script.push_str(&format!(
            "INSERT INTO {t} SELECT * FROM {}.{t};",
            quoted(template),
            t = quoted(table)
        ));
    }
    script.push_str("SET SESSION FOREIGN_KEY_CHECKS = 1;");
    admin_run(admin, script).await
}

pub(crate) async fn drop(admin: &str, name: &str) -> Result<(), sqlx::Error> {
    admin_run(admin, format!("DROP DATABASE IF EXISTS {}", quoted(name))).await
}

pub(crate) async fn list(admin: &str, prefix: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = connect(admin).await?;
    let names = sqlx::query_scalar(
        "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, CHAR_LENGTH(?)) = ?",
    )
    .bind(prefix)
    .bind(prefix)
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
    names
}
