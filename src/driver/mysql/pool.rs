//! Opening a MySQL / MariaDB bind.

use std::str::FromStr;

use sqlx::mysql::{MySql, MySqlConnectOptions};

use crate::config::DatabaseConfig;
use crate::driver::pool::{log_options, pool_options};
use crate::driver::{BindPool, Writer};

/// Opens the pool of a MySQL / MariaDB bind.
pub(crate) async fn open(config: &DatabaseConfig) -> Result<(BindPool, Writer), sqlx::Error> {
    let options = log_options(
        MySqlConnectOptions::from_str(&mysql_url(config.url.expose()))?,
        config,
    );
    let mut pool = pool_options::<MySql>(config);
    if let Some(timeout) = config.transaction.lock_timeout {
        // MySQL has no transaction-scoped lock timeout: set it on every connection of the
        // bind (whole seconds, at least 1).
        let seconds = timeout.as_secs_f64().ceil().max(1.0) as u64;
        pool = pool.after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "SET SESSION innodb_lock_wait_timeout = {seconds}"
                )))
                .await
                .map(drop)
            })
        });
    }
    let pool = match config.lazy {
        true => pool.connect_lazy_with(options),
        false => pool.connect_with(options).await?,
    };
    Ok((
        BindPool::MySql(pool),
        Writer::Server {
            named_statements: true,
        },
    ))
}

/// Checks that `url` parses.
pub(crate) fn check_url(url: &str) -> Result<(), sqlx::Error> {
    MySqlConnectOptions::from_str(&mysql_url(url)).map(drop)
}

/// sqlx knows `mysql://`; `mariadb://` is the same protocol.
fn mysql_url(url: &str) -> std::borrow::Cow<'_, str> {
    match url.get(..10) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mariadb://") => {
            format!("mysql://{}", &url[10..]).into()
        }
        _ => url.into(),
    }
}
