//! Connection pools: one sqlx pool per bind, of the engine its URL names, and SQLite's
//! write side.

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::ConnectOptions;

use crate::config::{Backend, DatabaseConfig};

#[cfg(feature = "mysql")]
use sqlx::mysql::MySqlPool;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqlitePool;

/// A bind's connection pool: a plain sqlx pool of the engine its URL names.
///
/// Clone it freely (it is a handle). Use it for work that needs no request session, such
/// as health checks or background jobs that manage their own transactions. On SQLite it is
/// the readers' pool: writers use one more connection of their own (see
/// [`Access`](crate::Access)).
///
/// ```
/// use rocket_alchemy::{Alchemy, BindPool};
///
/// async fn rows(alchemy: &Alchemy) -> Result<i64, Box<dyn std::error::Error>> {
///     # #[cfg(feature = "sqlite")]
///     if let BindPool::Sqlite(pool) = alchemy.pool("default")? {
///         let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM note").fetch_one(pool).await?;
///         return Ok(n);
///     }
///     Ok(0)
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BindPool {
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
            $crate::driver::BindPool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            $crate::driver::BindPool::Postgres($pool) => $body,
            #[cfg(feature = "mysql")]
            $crate::driver::BindPool::MySql($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl BindPool {
    /// The engine of this pool.
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            BindPool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            BindPool::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            BindPool::MySql(_) => Backend::MySql,
        }
    }

    /// The SQLite pool, if this is one.
    #[cfg(feature = "sqlite")]
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match self {
            BindPool::Sqlite(pool) => Some(pool),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The PostgreSQL pool, if this is one.
    #[cfg(feature = "postgres")]
    pub fn as_postgres(&self) -> Option<&PgPool> {
        match self {
            BindPool::Postgres(pool) => Some(pool),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The MySQL / MariaDB pool, if this is one.
    #[cfg(feature = "mysql")]
    pub fn as_mysql(&self) -> Option<&MySqlPool> {
        match self {
            BindPool::MySql(pool) => Some(pool),
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

    /// Whether [`BindPool::close`] was called.
    pub fn is_closed(&self) -> bool {
        with_pool!(self, p => p.is_closed())
    }

    /// Runs a cheap read that touches the database on a pooled connection: `SELECT 1` on a
    /// server; on SQLite a read of the schema, after checking that the file still exists and
    /// starts with SQLite's header (read from the file: pooled connections keep pages cached,
    /// so an overwritten header would go unnoticed through them).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(self.backend().dialect().health_check());
        match self {
            #[cfg(feature = "sqlite")]
            BindPool::Sqlite(pool) => super::sqlite::pool::health(pool, sql).await,
            #[allow(unreachable_patterns)]
            _ => with_pool!(self, p => {
                let mut conn = p.acquire().await?;
                sqlx::raw_sql(sql).execute(&mut *conn).await.map(drop)
            }),
        }
    }

    /// Builds the pool described by `config` (and, for SQLite, its write side). With
    /// `lazy = false` one connection is opened (and the pool fails if it cannot be); with
    /// `lazy = true` nothing is opened yet.
    pub(crate) async fn open(config: &DatabaseConfig) -> Result<(BindPool, Writer), sqlx::Error> {
        match config.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => super::sqlite::pool::open(config).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres => super::postgres::pool::open(config).await,
            #[cfg(feature = "mysql")]
            Backend::MySql => super::mysql::pool::open(config).await,
            #[allow(unreachable_patterns)]
            other => Err(sqlx::Error::Configuration(
                format!("the `{other}` feature of rocket_alchemy is disabled").into(),
            )),
        }
    }
}

/// What migrations of a bind run on: its own pool, or (PostgreSQL behind a transaction
/// pooler) a small lazy pool on its `direct_url`. `Err(())` when the bind is behind a
/// transaction pooler without a `direct_url`.
pub(crate) fn migration_pool(
    config: &DatabaseConfig,
    pool: &BindPool,
) -> Result<Result<BindPool, ()>, sqlx::Error> {
    #[cfg(feature = "postgres")]
    if let Some(direct) = super::postgres::pool::direct(config)? {
        return Ok(Ok(direct));
    }
    Ok(match config.pooler.named_statements() {
        true => Ok(pool.clone()),
        false => Err(()),
    })
}

/// The write side of a bind.
#[derive(Debug)]
pub(crate) enum Writer {
    /// A database server: writers share the pool; the server orders them.
    #[allow(dead_code)]
    Server {
        /// Whether statements may be prepared by name (not behind a transaction pooler).
        named_statements: bool,
    },
    /// SQLite: a write connection and the file's write queue.
    #[cfg(feature = "sqlite")]
    Sqlite(super::sqlite::SqliteWriter),
}

impl Writer {
    /// The SQLite write side, if this is one.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(&self) -> Option<&super::sqlite::SqliteWriter> {
        match self {
            Writer::Sqlite(writer) => Some(writer),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Whether statements may be prepared by name and cached on the connection: not behind
    /// a transaction pooler.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn named_statements(&self) -> bool {
        match self {
            Writer::Server { named_statements } => *named_statements,
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Writer::Server { .. } => {}
            #[cfg(feature = "sqlite")]
            Writer::Sqlite(writer) => writer.close().await,
        }
    }
}

/// Pool options every backend shares.
pub(crate) fn pool_options<DB: sqlx::Database>(config: &DatabaseConfig) -> PoolOptions<DB> {
    let mut options = PoolOptions::<DB>::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.connect_timeout)
        // sqlx pings every connection on release and closes broken ones; a ping before
        // every acquire would add a round trip to each request. A connection that died
        // while idle fails its first command, and the session retries that once on a
        // fresh one.
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

/// Statement logging as `echo` asks.
pub(crate) fn log_options<O: ConnectOptions>(options: O, config: &DatabaseConfig) -> O {
    if config.echo {
        options
            .log_statements(tracing::log::LevelFilter::Info)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1))
    } else {
        options.disable_statement_logging()
    }
}

/// Checks that the URL of `config` parses for its backend, without connecting. The message
/// never contains the password.
pub(crate) fn check_url(config: &DatabaseConfig) -> Result<(), String> {
    let result: Result<(), sqlx::Error> = match config.backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => super::sqlite::pool::check_url(config.url.expose()),
        #[cfg(feature = "postgres")]
        Backend::Postgres => super::postgres::pool::check_url(config.url.expose()),
        #[cfg(feature = "mysql")]
        Backend::MySql => super::mysql::pool::check_url(config.url.expose()),
        #[allow(unreachable_patterns)]
        _ => Ok(()),
    };
    result.map_err(|e| {
        // Parser messages can quote the input; never let them carry the secret.
        let detail = match e {
            sqlx::Error::Configuration(inner) => inner.to_string(),
            other => other.to_string(),
        };
        let detail = crate::config::scrub(&detail, config.url.expose());
        format!("invalid {} URL `{}`: {detail}", config.backend, config.url)
    })
}
