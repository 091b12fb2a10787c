//! Raw sqlx on a session's connection.

use std::ops::{Deref, DerefMut};

use rocket::tokio::sync::{MappedMutexGuard, MutexGuard};

use super::{DbSession, SessionError};
use crate::config::Backend;
use crate::driver::SessionBackend;

#[cfg(feature = "mysql")]
use sqlx::mysql::MySql;
#[cfg(feature = "postgres")]
use sqlx::postgres::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::Sqlite;

impl DbSession {
    /// The typed connection of the open transaction (beginning one if needed), for raw sqlx.
    /// Fails with [`SessionError::WrongBackend`] when the bind is another engine.
    ///
    /// The session keeps its [`Access`](crate::Access): a SQLite reader's raw connection is
    /// in a deferred transaction, and a write through it waits for the write lock in
    /// SQLite's busy handler (or fails with 409 if its snapshot is stale). Call
    /// [`DbSession::write_lock`] first to write through a raw connection in a session that
    /// began as a reader. On SQLite the transaction is plain SQL: nest with
    /// [`DbSession::savepoint`], not sqlx's `begin()` on the connection.
    ///
    /// While the returned guard lives, other uses of this session fail with
    /// [`SessionError::Busy`] rather than wait (which would deadlock the request).
    pub async fn conn<DB: SessionBackend>(
        &self,
    ) -> Result<SessionConnection<'_, DB>, SessionError> {
        if self.backend() != DB::BACKEND {
            return Err(SessionError::WrongBackend {
                bind: self.bind.key().to_string(),
                requested: DB::BACKEND,
                actual: self.backend(),
            });
        }
        let state = self.active_raw().await?;
        let guard = MutexGuard::try_map(state, |s| s.link.as_mut().and_then(DB::project))
            .map_err(|_| self.busy())?;
        Ok(SessionConnection { guard })
    }

    /// The SQLite connection of the open transaction. See [`DbSession::conn`].
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(&self) -> Result<SessionConnection<'_, Sqlite>, SessionError> {
        self.conn::<Sqlite>().await
    }

    /// The PostgreSQL connection of the open transaction. See [`DbSession::conn`].
    #[cfg(feature = "postgres")]
    pub async fn postgres(&self) -> Result<SessionConnection<'_, Postgres>, SessionError> {
        self.conn::<Postgres>().await
    }

    /// The MySQL / MariaDB connection of the open transaction. See [`DbSession::conn`].
    #[cfg(feature = "mysql")]
    pub async fn mysql(&self) -> Result<SessionConnection<'_, MySql>, SessionError> {
        self.conn::<MySql>().await
    }

    /// The connection of the open transaction, whatever the backend, to match on.
    pub async fn connection(&self) -> Result<AnyConnection<'_>, SessionError> {
        Ok(match self.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => AnyConnection::Sqlite(self.conn::<Sqlite>().await?),
            #[cfg(feature = "postgres")]
            Backend::Postgres => AnyConnection::Postgres(self.conn::<Postgres>().await?),
            #[cfg(feature = "mysql")]
            Backend::MySql => AnyConnection::MySql(self.conn::<MySql>().await?),
            #[allow(unreachable_patterns)]
            other => unreachable!("a {other} bind exists only with its feature"),
        })
    }
}

/// The connection of a session's open transaction, typed by backend. Derefs to the sqlx
/// connection (`SqliteConnection`, `PgConnection`, `MySqlConnection`), so `&mut *conn` is an
/// sqlx executor.
pub struct SessionConnection<'s, DB: SessionBackend> {
    guard: MappedMutexGuard<'s, DB::Connection>,
}

impl<DB: SessionBackend> std::fmt::Debug for SessionConnection<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConnection")
            .field("backend", &DB::BACKEND)
            .finish()
    }
}

impl<DB: SessionBackend> Deref for SessionConnection<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.guard
    }
}

impl<DB: SessionBackend> DerefMut for SessionConnection<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.guard
    }
}

/// A session's connection of whichever backend the bind uses (formerly `Connection`).
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyConnection<'s> {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(SessionConnection<'s, Sqlite>),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(SessionConnection<'s, Postgres>),
    /// MySQL / MariaDB.
    #[cfg(feature = "mysql")]
    MySql(SessionConnection<'s, MySql>),
}
