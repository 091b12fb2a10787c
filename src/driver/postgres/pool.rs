//! Opening a PostgreSQL bind.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, Postgres};

use crate::config::DatabaseConfig;
use crate::driver::pool::{log_options, pool_options};
use crate::driver::{BindPool, Writer};

/// Opens the pool of a PostgreSQL bind.
pub(crate) async fn open(config: &DatabaseConfig) -> Result<(BindPool, Writer), sqlx::Error> {
    let options = log_options(PgConnectOptions::from_str(config.url.expose())?, config);
    let pool = pool_options::<Postgres>(config);
    let pool = match config.lazy {
        true => pool.connect_lazy_with(options),
        false => pool.connect_with(options).await?,
    };
    Ok((BindPool::Postgres(pool), Writer::Server))
}

/// Checks that `url` parses.
pub(crate) fn check_url(url: &str) -> Result<(), sqlx::Error> {
    PgConnectOptions::from_str(url).map(drop)
}
