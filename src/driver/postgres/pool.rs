//! Opening a PostgreSQL bind.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, Postgres};

use crate::config::DatabaseConfig;
use crate::driver::pool::{log_options, pool_options};
use crate::driver::{BindPool, Writer};

/// Opens the pool of a PostgreSQL bind.
pub(crate) async fn open(config: &DatabaseConfig) -> Result<(BindPool, Writer), sqlx::Error> {
    let named_statements = config.pooler.named_statements();
    let mut options = log_options(PgConnectOptions::from_str(config.url.expose())?, config);
    if !named_statements {
        // Behind a transaction pooler no prepared statement may outlive its transaction:
        // no cache, and every query is sent unnamed (`persistent(false)`, in the link).
        options = options.statement_cache_capacity(0);
    }
    let pool = pool_options::<Postgres>(config);
    let pool = match config.lazy {
        true => pool.connect_lazy_with(options),
        false => pool.connect_with(options).await?,
    };
    Ok((
        BindPool::Postgres(pool),
        Writer::Server { named_statements },
    ))
}

/// A small lazy pool on the bind's `direct_url` (the server itself, bypassing the pooler),
/// for migrations; `None` when the bind has none.
pub(crate) fn direct(config: &DatabaseConfig) -> Result<Option<BindPool>, sqlx::Error> {
    let Some(url) = &config.direct_url else {
        return Ok(None);
    };
    let options = log_options(PgConnectOptions::from_str(url.expose())?, config);
    let pool = sqlx::pool::PoolOptions::<Postgres>::new()
        .max_connections(2)
        .acquire_timeout(config.connect_timeout)
        .connect_lazy_with(options);
    Ok(Some(BindPool::Postgres(pool)))
}

/// Checks that `url` parses.
pub(crate) fn check_url(url: &str) -> Result<(), sqlx::Error> {
    PgConnectOptions::from_str(url).map(drop)
}
