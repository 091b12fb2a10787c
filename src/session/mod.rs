//! Sessions: a lazily begun transaction on one bind.
//!
//! A [`DbSession`] owns at most one pooled connection and transaction. Nothing is sent to
//! the database until the first statement: then a connection is taken from the pool and the
//! transaction begins as the session's [`Access`] and the statement require (see
//! [`crate::access`]: SQLite readers in a deferred `BEGIN`, writers in the write queue with
//! `BEGIN IMMEDIATE`; PostgreSQL readers without `BEGIN` until their first write).
//! [`DbSession::commit`] and [`DbSession::rollback`] end it; the next statement begins a new
//! one.
//!
//! In a route you get the request's session through the [`Session`](crate::Session) guard,
//! which derefs to `DbSession`; outside requests, [`Alchemy::session`](crate::Alchemy::session)
//! gives an owned one (dropping it rolls back).
//!
//! Statements go through the session in one of two ways:
//!
//! * backend-neutral, as sea-query statements: [`DbSession::execute`],
//!   [`DbSession::fetch_all`], [`DbSession::fetch_optional`], [`DbSession::fetch_one`];
//! * raw sqlx on the typed connection: [`DbSession::sqlite`], [`DbSession::postgres`],
//!   [`DbSession::mysql`] (or [`DbSession::connection`] to match on the backend):
//!
//! ```
//! # #[cfg(feature = "sqlite")] mod inner {
//! use rocket_alchemy::{Session, SessionError};
//!
//! #[rocket::post("/visits")]
//! async fn visit(session: Session<'_>) -> Result<String, SessionError> {
//!     let mut conn = session.sqlite().await?;
//!     sqlx::query("INSERT INTO visit (at) VALUES (CURRENT_TIMESTAMP)").execute(&mut *conn).await?;
//!     let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visit").fetch_one(&mut *conn).await?;
//!     Ok(n.to_string())
//! }
//! # }
//! ```

pub(crate) mod access;
mod connection;
mod db_session;
mod error;
mod savepoint;

pub use access::Access;
pub use connection::{AnyConnection, SessionConnection};
pub use db_session::DbSession;
pub use error::SessionError;
pub use savepoint::Savepoint;
