//! Sessions: a lazily begun transaction on one bind ([`DbSession`]), the [`Access`] it
//! begins with, savepoints and raw connections.

pub(crate) mod access;
mod after_commit;
mod connection;
mod db_session;
mod error;
mod retry;
mod savepoint;

pub use access::Access;
pub use connection::{AnyConnection, SessionConnection};
pub use db_session::DbSession;
pub use error::SessionError;
pub use retry::Retry;
pub use savepoint::Savepoint;
