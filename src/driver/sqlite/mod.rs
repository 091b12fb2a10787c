//! SQLite: the write queue, the write connection and sessions whose `BEGIN` travels with
//! their first statement.

mod link;
pub(crate) mod pool;
mod write_queue;

pub use link::SqliteLink;
pub(crate) use write_queue::SqliteWriter;

use sqlx::sqlite::SqlitePool;

use super::link::{fresh, Intent, LinkError, Opened};

/// Opens a session's link: a writer in its turn on the write connection, or a reader on a
/// pooled connection (see [`Link::open`](super::Link::open)).
pub(crate) async fn open_link(
    pool: &SqlitePool,
    writer: &SqliteWriter,
    intent: Intent,
) -> Result<(SqliteLink, Opened), LinkError> {
    let mut link = if intent.write || writer.all_sessions_write() {
        let permit = writer.enter().await.map_err(LinkError::Queue)?;
        let (conn, home) = match writer.connection().await {
            Some(found) => found.map(|(conn, home)| (conn, Some(home))),
            None => pool.acquire().await.map(|conn| (conn, None)),
        }
        .map_err(LinkError::Database)?;
        SqliteLink::writer(conn, permit, home)
    } else {
        let conn = pool.acquire().await.map_err(LinkError::Database)?;
        SqliteLink::reader(conn, intent.snapshot)
    };
    let mut opened = fresh();
    if intent.transaction {
        link.ensure_open().await.map_err(LinkError::Database)?;
        opened.began = true;
        opened.fresh = false;
    }
    Ok((link, opened))
}

impl SqliteLink {
    /// Makes the link fit for `intent` (see [`Link::upgrade`](super::Link::upgrade)); whether
    /// `BEGIN` was sent.
    pub(crate) async fn upgrade(
        &mut self,
        writer: &SqliteWriter,
        intent: Intent,
    ) -> Result<bool, LinkError> {
        if intent.write && !self.is_writer() {
            let permit = writer.enter().await.map_err(LinkError::Queue)?;
            self.become_writer(permit);
        }
        if intent.transaction && !self.in_tx() {
            self.ensure_open().await.map_err(LinkError::Database)?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// SQLite's dialect.
pub(crate) struct SqliteDialect;

/// The one [`SqliteDialect`].
pub(crate) static SQLITE: SqliteDialect = SqliteDialect;

impl super::dialect::Dialect for SqliteDialect {
    fn classify(&self, error: &dyn sqlx::error::DatabaseError) -> Option<crate::DbErrorKind> {
        use crate::DbErrorKind;
        error.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
        // Extended result codes: the primary code is the low byte.
        let code = error.code().and_then(|c| c.parse::<i32>().ok());
        Some(match code {
            // SQLITE_BUSY_SNAPSHOT: a read transaction tried to write after another
            // connection committed; it must start over.
            Some(517) => DbErrorKind::Serialization,
            // SQLITE_BUSY (and its other extended codes): the lock wait hit busy_timeout.
            Some(c) if c & 0xff == 5 => DbErrorKind::Busy,
            // SQLITE_LOCKED: a conflict inside one connection or shared cache.
            Some(c) if c & 0xff == 6 => DbErrorKind::Serialization,
            _ => DbErrorKind::Other,
        })
    }

    fn aborts_transaction(&self, _: &sqlx::Error, kind: crate::DbErrorKind) -> bool {
        kind == crate::DbErrorKind::Connection
    }
}
