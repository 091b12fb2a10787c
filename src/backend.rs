//! Connection pools: one sqlx pool per bind, of the engine its URL names.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::ConnectOptions;

use crate::config::{Backend, DatabaseConfig, RedactedUrl};
#[cfg(feature = "sqlite")]
use crate::write_queue::SqliteWriter;

#[cfg(feature = "mysql")]
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlPool};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous,
};

/// A bind's connection pool: a plain sqlx pool of the engine its URL names.
///
/// Clone it freely (it is a handle). Use it for work that needs no request session, such
/// as health checks or background jobs that manage their own transactions.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Pool {
    /// A SQLite pool.
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    /// A PostgreSQL pool.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    /// A MySQL / MariaDB pool.
    #[cfg(feature = "mysql")]
    MySql(MySqlPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of each enabled backend.
macro_rules! with_pool {
    ($value:expr, $pool:ident => $body:expr) => {
        match $value {
            #[cfg(feature = "sqlite")]
            $crate::backend::Pool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            $crate::backend::Pool::Postgres($pool) => $body,
            #[cfg(feature = "mysql")]
            $crate::backend::Pool::MySql($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Pool {
    /// The engine of this pool.
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => Backend::MySql,
        }
    }

    /// The SQLite pool, if this is one.
    #[cfg(feature = "sqlite")]
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match self {
            Pool::Sqlite(pool) => Some(pool),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The PostgreSQL pool, if this is one.
    #[cfg(feature = "postgres")]
    pub fn as_postgres(&self) -> Option<&PgPool> {
        match self {
            Pool::Postgres(pool) => Some(pool),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The MySQL / MariaDB pool, if this is one.
    #[cfg(feature = "mysql")]
    pub fn as_mysql(&self) -> Option<&MySqlPool> {
        match self {
            Pool::MySql(pool) => Some(pool),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Connections currently open (idle or in use).
    pub fn size(&self) -> u32 {
        with_pool!(self, p => p.size())
    }

    /// Connections open and idle.
    pub fn num_idle(&self) -> usize {
        with_pool!(self, p => p.num_idle())
    }

    /// Closes every connection; later acquires fail.
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }

    /// Whether [`Pool::close`] was called.
    pub fn is_closed(&self) -> bool {
        with_pool!(self, p => p.is_closed())
    }

    /// Acquires a connection and runs `SELECT 1` on it.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        with_pool!(self, p => p.acquire().await?.ping().await)
    }

    /// Builds the pool described by `config` (and, for SQLite, its write side). With
    /// `lazy = false` one connection is opened (and the pool fails if it cannot be); with
    /// `lazy = true` nothing is opened yet.
    pub(crate) async fn open(config: &DatabaseConfig) -> Result<(Pool, Writer), sqlx::Error> {
        let url = config.url.expose();
        match config.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let (options, in_memory) = sqlite_options(config)?;
                let mut pool = pool_options::<Sqlite>(config);
                if in_memory {
                    // A shared in-memory database lives while one connection is open.
                    pool = pool
                        .min_connections(config.min_connections.unwrap_or(1).max(1))
                        .idle_timeout(None)
                        .max_lifetime(None);
                } else if let Some(parent) = options.get_filename().parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)?;
                    }
                }
                let lazy = config.lazy && !in_memory;
                let pool = match lazy {
                    true => pool.connect_lazy_with(options.clone()),
                    false => pool.connect_with(options.clone()).await?,
                };
                let writer = if in_memory {
                    SqliteWriter::new(None, None, config.connect_timeout)
                } else {
                    // One write connection: SQLite writes one transaction at a time anyway.
                    let write_pool = pool_options::<Sqlite>(config)
                        .min_connections(0)
                        .max_connections(1);
                    let write_pool = match lazy {
                        true => write_pool.connect_lazy_with(options.clone()),
                        false => write_pool.connect_with(options.clone()).await?,
                    };
                    SqliteWriter::new(
                        Some(write_pool),
                        Some(options.get_filename()),
                        config.connect_timeout,
                    )
                };
                Ok((Pool::Sqlite(pool), Writer::Sqlite(writer)))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let options = log_options(PgConnectOptions::from_str(url)?, config);
                let pool = pool_options::<Postgres>(config);
                let pool = match config.lazy {
                    true => pool.connect_lazy_with(options),
                    false => pool.connect_with(options).await?,
                };
                Ok((Pool::Postgres(pool), Writer::Server))
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                let options = log_options(MySqlConnectOptions::from_str(&mysql_url(url))?, config);
                let pool = pool_options::<MySql>(config);
                let pool = match config.lazy {
                    true => pool.connect_lazy_with(options),
                    false => pool.connect_with(options).await?,
                };
                Ok((Pool::MySql(pool), Writer::Server))
            }
            #[allow(unreachable_patterns)]
            other => Err(sqlx::Error::Configuration(
                format!("the `{other}` feature of rocket_alchemy is disabled").into(),
            )),
        }
    }
}

/// The write side of a bind.
#[derive(Debug)]
pub(crate) enum Writer {
    /// A database server: writers share the pool; the server orders them.
    #[allow(dead_code)]
    Server,
    /// SQLite: a write connection and the file's write queue.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteWriter),
}

impl Writer {
    /// The SQLite write side, if this is one.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(&self) -> Option<&SqliteWriter> {
        match self {
            Writer::Sqlite(writer) => Some(writer),
            _ => None,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Writer::Server => {}
            #[cfg(feature = "sqlite")]
            Writer::Sqlite(writer) => writer.close().await,
        }
    }
}

fn pool_options<DB: sqlx::Database>(config: &DatabaseConfig) -> PoolOptions<DB> {
    let mut options = PoolOptions::<DB>::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.connect_timeout)
        // sqlx pings every connection on release and closes broken ones; a ping before
        // every acquire would add a round trip to each request. A connection that died
        // while idle makes BEGIN fail, and the session retries that once on a fresh one.
        .test_before_acquire(false);
    if let Some(min) = config.min_connections {
        options = options.min_connections(min);
    }
    if let Some(idle) = config.idle_timeout {
        options = options.idle_timeout(idle);
    }
    if let Some(lifetime) = config.max_lifetime {
        options = options.max_lifetime(lifetime);
    }
    options
}

fn log_options<O: ConnectOptions>(options: O, config: &DatabaseConfig) -> O {
    if config.echo {
        options
            .log_statements(tracing::log::LevelFilter::Info)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1))
    } else {
        options.disable_statement_logging()
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_options(config: &DatabaseConfig) -> Result<(SqliteConnectOptions, bool), sqlx::Error> {
    let settings = config
        .sqlite
        .as_ref()
        .expect("sqlite settings on a sqlite bind");
    let url = config.url.expose();
    let in_memory = is_sqlite_memory(url);
    let mut options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .busy_timeout(settings.busy_timeout)
        .foreign_keys(settings.foreign_keys);
    let journal = settings.journal_mode.map(|mode| {
        use crate::config::JournalMode as J;
        match mode {
            J::Delete => SqliteJournalMode::Delete,
            J::Truncate => SqliteJournalMode::Truncate,
            J::Persist => SqliteJournalMode::Persist,
            J::Memory => SqliteJournalMode::Memory,
            J::Wal => SqliteJournalMode::Wal,
            J::Off => SqliteJournalMode::Off,
        }
    });
    let wal = match (journal, in_memory) {
        (Some(mode), _) => {
            options = options.journal_mode(mode);
            mode == SqliteJournalMode::Wal
        }
        (None, false) => {
            options = options.journal_mode(SqliteJournalMode::Wal);
            true
        }
        (None, true) => false,
    };
    let synchronous = settings.synchronous.map(|level| {
        use crate::config::Synchronous as S;
        match level {
            S::Off => SqliteSynchronous::Off,
            S::Normal => SqliteSynchronous::Normal,
            S::Full => SqliteSynchronous::Full,
            S::Extra => SqliteSynchronous::Extra,
        }
    });
    options = options.synchronous(synchronous.unwrap_or(match wal {
        true => SqliteSynchronous::Normal,
        false => SqliteSynchronous::Full,
    }));
    Ok((log_options(options, config), in_memory))
}

#[cfg(feature = "sqlite")]
fn is_sqlite_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.starts_with(":memory:") || url.contains("mode=memory")
}

#[cfg(feature = "mysql")]
fn mysql_url(url: &str) -> std::borrow::Cow<'_, str> {
    match url.get(..10) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mariadb://") => {
            format!("mysql://{}", &url[10..]).into()
        }
        _ => url.into(),
    }
}

/// Checks that `url` parses for `backend`, without connecting. The message never contains
/// the password.
pub(crate) fn check_url(backend: Backend, url: &RedactedUrl) -> Result<(), String> {
    let raw = url.expose();
    let result: Result<(), sqlx::Error> = match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => SqliteConnectOptions::from_str(raw).map(drop),
        #[cfg(feature = "postgres")]
        Backend::Postgres => PgConnectOptions::from_str(raw).map(drop),
        #[cfg(feature = "mysql")]
        Backend::MySql => MySqlConnectOptions::from_str(&mysql_url(raw)).map(drop),
        #[allow(unreachable_patterns)]
        _ => Ok(()),
    };
    result.map_err(|e| {
        // Parser messages can quote the input; never let them carry the secret.
        let detail = match e {
            sqlx::Error::Configuration(inner) => inner.to_string(),
            other => other.to_string(),
        };
        let detail = scrub(&detail, raw);
        format!("invalid {backend} URL `{url}`: {detail}")
    })
}

/// Replaces every occurrence of the URL's password in `text` with `***`.
pub(crate) fn scrub(text: &str, raw_url: &str) -> String {
    let password = raw_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password);
    let mut out = text.replace(raw_url, &RedactedUrl::new(raw_url).to_string());
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        out = out.replace(password, "***");
    }
    out
}
