//! PostgreSQL.

pub(crate) mod ddl;
mod dialect;
pub(crate) mod introspect;
pub(crate) mod migrate;
pub(crate) mod pool;
pub(crate) mod replica;

pub(crate) use dialect::POSTGRES;
