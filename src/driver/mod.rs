//! The driver layer: what differs between database engines, one module per backend behind
//! its cargo feature.
//!
//! Code above this layer (sessions, models, the repository, migrations) does not match on
//! the backend: it asks this layer. `pool` opens a bind's pools; `link` is a session's
//! connection and transaction; `sqlite`, `postgres` and `mysql` hold each engine's facts.

mod classify;
pub(crate) mod ddl;
mod dialect;
mod link;
pub(crate) mod migrate;
mod pool;
mod replica;
#[cfg(feature = "testing")]
pub(crate) mod scratch;
mod text;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub(crate) use classify::{need_of, Need};
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use dialect::common_column_type;
pub(crate) use dialect::{build, build_schema, Dialect, SchemaStatement};
pub use link::SessionBackend;
pub(crate) use link::{stale_connection, Intent, Link, LinkError};
pub use pool::BindPool;
pub(crate) use pool::{check_url, migration_pool, with_pool, Writer};
pub use replica::ReplicaStatus;
pub(crate) use replica::Replicas;
pub use text::escape_like;
pub(crate) use text::TextPattern;
