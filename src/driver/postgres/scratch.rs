//! PostgreSQL scratch databases: `CREATE DATABASE … TEMPLATE`, a copy the server makes of
//! a migrated template.

use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// How long a clone waits for a template still in use by another session, at most.
const CLONE_RETRY: Duration = Duration::from_secs(10);

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An admin connection whose statements stay out of the statement log (the test kit's
/// own work, not the app's).
async fn connect(admin: &str) -> Result<PgConnection, sqlx::Error> {
    use std::str::FromStr;
    sqlx::postgres::PgConnectOptions::from_str(admin)?
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

/// Closes every connection to the template and refuses new ones: `TEMPLATE` needs it idle.
pub(crate) async fn freeze(admin: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = connect(admin).await?;
    let result = async {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            quoted(name)
        )))
        .execute(&mut conn)
        .await?;
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .execute(&mut conn)
            .await
    }
    .await;
    let _ = conn.close().await;
    result.map(|_| ())
}

/// `CREATE DATABASE clone TEMPLATE template`, retried while the template is briefly in use
/// (SQLSTATE 55006: another clone of it is being made).
pub(crate) async fn clone(admin: &str, template: &str, clone: &str) -> Result<(), sqlx::Error> {
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quoted(clone),
        quoted(template)
    );
    let started = Instant::now();
    loop {
        match admin_run(admin, sql.clone()).await {
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55006") && started.elapsed() < CLONE_RETRY =>
            {
                rocket::tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

pub(crate) async fn drop(admin: &str, name: &str) -> Result<(), sqlx::Error> {
    admin_run(
        admin,
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(name)),
    )
    .await
}

pub(crate) async fn list(admin: &str, prefix: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = connect(admin).await?;
    let names =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)")
            .bind(prefix)
            .fetch_all(&mut conn)
            .await;
    let _ = conn.close().await;
    names
}
