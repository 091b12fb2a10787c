//! The driver layer: what differs between database engines, one module per backend behind
//! its cargo feature.
//!
//! Code above this layer (sessions, models, the repository, migrations) does not match on
//! the backend: it asks this layer. `pool` opens a bind's pools; `link` is a session's
//! connection and transaction; `sqlite`, `postgres` and `mysql` hold each engine's facts.

mod dialect;
mod link;
mod pool;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub(crate) use dialect::build;
pub use link::SessionBackend;
pub(crate) use link::{stale_connection, Intent, Link, LinkError};
pub use pool::BindPool;
pub(crate) use pool::{check_url, with_pool, Writer};
