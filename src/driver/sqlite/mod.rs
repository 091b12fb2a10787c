//! SQLite: the write queue, the write connection and sessions whose `BEGIN` travels with
//! their first statement.

pub(crate) mod ddl;
mod dialect;
pub(crate) mod introspect;
mod link;
pub(crate) mod migrate;
pub(crate) mod pool;
#[cfg(feature = "testing")]
pub(crate) mod scratch;
mod write_queue;

pub(crate) use dialect::SQLITE;
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
