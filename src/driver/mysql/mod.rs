//! MySQL and MariaDB.

pub(crate) mod ddl;
mod dialect;
pub(crate) mod introspect;
pub(crate) mod migrate;
pub(crate) mod pool;
#[cfg(feature = "testing")]
pub(crate) mod scratch;

pub(crate) use dialect::MYSQL;
