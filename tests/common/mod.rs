//! Test support: a fresh database per test on each backend, and Rocket builders.
//!
//! SQLite always runs. PostgreSQL and MariaDB/MySQL run when `TEST_POSTGRES_URL` /
//! `TEST_MYSQL_URL` name a server (an admin URL: the tests create and drop their own
//! databases). The PostgreSQL tests run a second time through PgBouncer in transaction mode
//! (`TEST_PGBOUNCER_URL`; the `pgbouncer` column) with `pooler = "transaction"`. With
//! `CI=true` a missing or unreachable server fails the test.
#![allow(dead_code)]

use rocket::figment::Figment;
use rocket::{Build, Rocket};
use rocket_alchemy::Backend;
use sqlx::AssertSqlSafe;
#[cfg(feature = "sqlite")]
use sqlx::Connection;

use rocket_alchemy::testing::{TestDatabase, TestTarget};
#[allow(unused_imports)]
pub use rocket_alchemy::testing::{
    MYSQL_URL_ENV as MYSQL_ENV, PGBOUNCER_URL_ENV as PGBOUNCER_ENV,
    POSTGRES_URL_ENV as POSTGRES_ENV,
};

/// A database of its own for one test, made by the test kit
/// ([`rocket_alchemy::testing::TestDatabase`]); dropped (files removed) when this is dropped.
pub struct TestDb {
    pub backend: Backend,
    /// The URL of the test's own database, as the app reaches it (through PgBouncer for a
    /// pooled database).
    pub url: String,
    /// Through a transaction pooler: the server's own URL of the same database (the app's
    /// binds get `pooler = "transaction"` and this as `direct_url`; probes use it).
    pub direct: Option<String>,
    inner: TestDatabase,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestDb({} {})", self.backend, self.name())
    }
}

impl TestDb {
    async fn on(target: TestTarget, test: &str) -> Option<TestDb> {
        let inner = TestDatabase::create(target, test).await?;
        Some(TestDb {
            backend: inner.backend(),
            url: inner.url().to_string(),
            direct: inner.direct_url().map(str::to_string),
            inner,
        })
    }

    /// A fresh SQLite file.
    pub async fn sqlite(test: &str) -> TestDb {
        Self::on(TestTarget::Sqlite, test)
            .await
            .expect("SQLite needs no server")
    }

    /// A fresh PostgreSQL database, or `None` (with a notice) when not configured outside CI.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        Self::on(TestTarget::Postgres, test).await
    }

    /// A fresh MySQL / MariaDB database, or `None` (with a notice) when not configured outside CI.
    pub async fn mysql(test: &str) -> Option<TestDb> {
        Self::on(TestTarget::MySql, test).await
    }

    /// A fresh PostgreSQL database reached through PgBouncer in transaction mode
    /// (`TEST_PGBOUNCER_URL`), or `None` (with a notice) when not configured outside CI.
    pub async fn pgbouncer(test: &str) -> Option<TestDb> {
        Self::on(TestTarget::PgBouncer, test).await
    }

    /// Whether the app reaches this database through a transaction pooler.
    pub fn pooled(&self) -> bool {
        self.direct.is_some()
    }

    /// The URL of an independent connection to this database: the server's own (not through
    /// the pooler), for checks and setup outside the app.
    pub fn probe_url(&self) -> &str {
        self.direct.as_deref().unwrap_or(&self.url)
    }

    /// The database's unique name (SQLite: the file's stem).
    pub fn name(&self) -> &str {
        let name = self.inner.name();
        match self.backend {
            Backend::Sqlite => std::path::Path::new(name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name),
            _ => name,
        }
    }

    /// The TOML inline table of a bind on this database (`{url="…", …}`), with `extra`
    /// keys (`create_all=true`) appended.
    pub fn inline_bind(&self, extra: &str) -> String {
        let mut keys = vec![format!("url=\"{}\"", self.url)];
        if let Some(direct) = &self.direct {
            keys.push("pooler=\"transaction\"".into());
            keys.push(format!("direct_url=\"{direct}\""));
        }
        if !extra.is_empty() {
            keys.push(extra.to_string());
        }
        format!("{{{}}}", keys.join(","))
    }

    /// Another fresh database on the same backend (for a second bind).
    pub async fn sibling(&self, test: &str) -> TestDb {
        match self.backend {
            Backend::Sqlite => TestDb::sqlite(test).await,
            Backend::Postgres if self.pooled() => {
                TestDb::pgbouncer(test).await.expect("configured")
            }
            Backend::Postgres => TestDb::postgres(test).await.expect("configured"),
            Backend::MySql => TestDb::mysql(test).await.expect("configured"),
        }
    }

    /// The Figment of a rocket whose `default` bind is this database (plus `extra` TOML,
    /// merged under the default profile, e.g. `databases.default.commit_mode = "autocommit"`).
    pub fn figment(&self, extra: &str) -> Figment {
        figment_with(&[("default", self)], extra)
    }

    /// A rocket on [`TestDb::figment`].
    pub fn rocket(&self, extra: &str) -> Rocket<Build> {
        rocket::custom(self.figment(extra))
    }
}

/// A Figment with one bind per `(key, db)` and `extra` TOML merged on top. Rocket's own
/// logging is off; tests read tracing events instead.
pub fn figment_with(binds: &[(&str, &TestDb)], extra: &str) -> Figment {
    use rocket::figment::providers::{Format, Serialized, Toml};
    let mut figment = Figment::from(rocket::Config::default())
        .merge(Serialized::default("log_level", "off"))
        .merge(Serialized::default("port", 0));
    for (key, db) in binds {
        figment = figment.merge(Serialized::default(
            &format!("databases.{key}.url"),
            &db.url,
        ));
        if let Some(direct) = &db.direct {
            figment = figment
                .merge(Serialized::default(
                    &format!("databases.{key}.pooler"),
                    "transaction",
                ))
                .merge(Serialized::default(
                    &format!("databases.{key}.direct_url"),
                    direct,
                ));
        }
    }
    figment.merge(Toml::string(extra))
}

/// An independent connection to the test database (not through the app's pool), to check
/// what was really committed.
pub struct Probe {
    backend: Backend,
    url: String,
}

impl TestDb {
    pub fn probe(&self) -> Probe {
        Probe::of(&self.inner)
    }
}

impl Probe {
    /// An independent connection to a test kit's database.
    pub fn of(db: &TestDatabase) -> Probe {
        Probe {
            backend: db.backend(),
            url: db.probe_url().to_string(),
        }
    }
}

/// A probe connection, kept out of sqlx's statement log (tests/kit.rs counts the app's
/// statements there).
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn quiet<O>(url: &str) -> O::Connection
where
    O: sqlx::ConnectOptions + std::str::FromStr<Err = sqlx::Error>,
    O::Connection: Sized,
{
    O::from_str(url)
        .unwrap()
        .disable_statement_logging()
        .connect()
        .await
        .unwrap()
}

#[cfg(feature = "sqlite")]
async fn sqlite_connect(url: &str) -> sqlx::SqliteConnection {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true);
    sqlx::SqliteConnection::connect_with(&sqlx::ConnectOptions::disable_statement_logging(options))
        .await
        .unwrap()
}

impl Probe {
    /// Runs a query returning one integer (e.g. `SELECT COUNT(*) FROM t`).
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = AssertSqlSafe(sql.to_string());
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let mut c = sqlite_connect(&self.url).await;
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let mut c = quiet::<sqlx::postgres::PgConnectOptions>(&self.url).await;
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                let mut c = quiet::<sqlx::mysql::MySqlConnectOptions>(&self.url).await;
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
            #[allow(unreachable_patterns)]
            other => panic!("the `{other}` feature is disabled"),
        }
    }

    /// Runs statements (setup DDL) outside the app.
    pub async fn execute(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_string());
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let mut c = sqlite_connect(&self.url).await;
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let mut c = quiet::<sqlx::postgres::PgConnectOptions>(&self.url).await;
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                let mut c = quiet::<sqlx::mysql::MySqlConnectOptions>(&self.url).await;
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            #[allow(unreachable_patterns)]
            other => panic!("the `{other}` feature is disabled"),
        }
    }

    /// Runs a query returning one text column; the values, sorted.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        let sql = AssertSqlSafe(sql.to_string());
        let mut rows: Vec<String> = match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let mut c = sqlite_connect(&self.url).await;
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let mut c = quiet::<sqlx::postgres::PgConnectOptions>(&self.url).await;
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                let mut c = quiet::<sqlx::mysql::MySqlConnectOptions>(&self.url).await;
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            #[allow(unreachable_patterns)]
            other => panic!("the `{other}` feature is disabled"),
        };
        rows.sort();
        rows
    }

    /// The database's tables, from its catalog, sorted.
    pub async fn tables(&self) -> Vec<String> {
        self.texts(match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            }
            Backend::Postgres => {
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()"
            }
            Backend::MySql => {
                "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            }
        })
        .await
    }

    /// Counts rows of `table` (quoted for the backend).
    pub async fn count(&self, table: &str) -> i64 {
        let q = match self.backend {
            Backend::MySql => format!("SELECT COUNT(*) FROM `{table}`"),
            _ => format!("SELECT COUNT(*) FROM \"{table}\""),
        };
        self.scalar(&q).await
    }

    /// Counts rows of `table` where `column = value` (a string literal; test data only).
    pub async fn count_where(&self, table: &str, column: &str, value: &str) -> i64 {
        let q = match self.backend {
            Backend::MySql => {
                format!("SELECT COUNT(*) FROM `{table}` WHERE `{column}` = '{value}'")
            }
            _ => format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\" = '{value}'"),
        };
        self.scalar(&q).await
    }
}

/// Declares `mod $name { sqlite, postgres, pgbouncer, mysql }` tests running `async fn $name(db: TestDb)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[cfg(feature = "sqlite")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite(stringify!($name)).await;
                super::$name(db).await;
            }
            #[cfg(feature = "postgres")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::postgres(stringify!($name)).await {
                    super::$name(db).await;
                }
            }
            #[cfg(feature = "postgres")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn pgbouncer() {
                if let Some(db) = $crate::common::TestDb::pgbouncer(stringify!($name)).await {
                    super::$name(db).await;
                }
            }
            #[cfg(feature = "mysql")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn mysql() {
                if let Some(db) = $crate::common::TestDb::mysql(stringify!($name)).await {
                    super::$name(db).await;
                }
            }
        }
    )*};
}

/// Writes a `SKIPPED …` line straight to the process's stderr: the test harness captures
/// `eprintln!` of passing tests, so the notice would never show (nor could
/// `scripts/test.sh` count it).
pub fn skipped(line: &str) {
    use std::io::Write;
    // One write: the line stays whole among other tests' output.
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Runs `statements` on one connection, as a migration file is applied. A first read makes
/// a SQLite connection notice schema changes made through other connections since it last
/// ran (`ALTER TABLE … DROP COLUMN` checks its own cached schema, stale until then).
pub async fn run(alchemy: &rocket_alchemy::Alchemy, statements: &[String]) {
    use sqlx::Acquire;
    let pool = alchemy.pool("default").unwrap();
    macro_rules! on_one {
        ($p:expr) => {{
            let mut conn = $p.acquire().await.unwrap();
            let conn = conn.acquire().await.unwrap();
            sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
            if pool.backend() == rocket_alchemy::Backend::Sqlite {
                sqlx::query("SELECT COUNT(*) FROM sqlite_master")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            for sql in statements {
                sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }};
    }
    match pool {
        #[cfg(feature = "sqlite")]
        rocket_alchemy::BindPool::Sqlite(p) => on_one!(p),
        #[cfg(feature = "postgres")]
        rocket_alchemy::BindPool::Postgres(p) => on_one!(p),
        #[cfg(feature = "mysql")]
        rocket_alchemy::BindPool::MySql(p) => on_one!(p),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

/// Every tracing event of this test binary at `level` and above, captured in memory: one
/// subscriber per binary (the first call installs it), so each test looks for its own
/// markers. Returns the text captured so far.
pub fn captured_logs(level: tracing::Level) -> String {
    use std::sync::{Arc, Mutex, OnceLock};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    let buffer = BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        buffer
    });
    String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned()
}
