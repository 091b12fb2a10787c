//! Readers and writers: how a session decides whether it needs the database's write side.

use rocket::http::Method;

/// Whether a session begins as a reader or as a writer.
///
/// A session begins as a **reader** or a **writer** ([`Access`]):
///
/// * in a request, unsafe methods (`POST`, `PUT`, `PATCH`, `DELETE`, …) begin as writers and
///   safe ones (`GET`, `HEAD`, `OPTIONS`, `TRACE`) as readers; the [`AsWriter`] and
///   [`AsReader`] request guards override that for a route, and
///   [`DbSession::set_access`](crate::DbSession::set_access) for one session;
/// * outside requests ([`Alchemy::session`](crate::Alchemy::session), jobs, the CLI)
///   sessions begin as readers.
///
/// Whatever it began as, a session whose *first* statement writes begins as a writer, and a
/// reader that writes later becomes one before that statement runs. What that means per
/// backend:
///
/// | | reader | writer |
/// |---|---|---|
/// | SQLite | a deferred `BEGIN` on the read pool: never waits for writers (WAL) | waits its turn in the database's in-process FIFO write queue, then `BEGIN IMMEDIATE` on the write connection |
/// | PostgreSQL | statements on one pooled connection, no `BEGIN` (each sees the latest commits, as in a `READ COMMITTED` transaction) | `BEGIN` before the first write |
/// | MySQL / MariaDB | `BEGIN` (one `REPEATABLE READ` snapshot for the request) | `BEGIN` |
///
/// A SQLite reader that has already read and then writes waits in the queue too; if another
/// connection committed since its snapshot, SQLite refuses the write (`SQLITE_BUSY_SNAPSHOT`)
/// and the request answers 409 with `Retry-After`, nothing written. A route that reads then
/// writes on a safe method avoids that with [`AsWriter`].
///
/// Statements are classified from their SQL (in the driver layer): a `SELECT` (or `VALUES`,
/// or a `WITH` whose every part is a `SELECT`) without a locking clause reads; anything else
/// writes. A `SELECT` calling a function that writes is not seen as a write: run such a
/// call in a writer session.
///
/// [`AsWriter`]: crate::AsWriter
/// [`AsReader`]: crate::AsReader
///
/// ```
/// use rocket::http::Method;
/// use rocket_alchemy::Access;
///
/// assert_eq!(Access::for_method(Method::Get), Access::Read);
/// assert_eq!(Access::for_method(Method::Post), Access::Write);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// Begin without the write side; become a writer at the first write.
    #[default]
    Read,
    /// Begin as a writer (SQLite: in the write queue, with `BEGIN IMMEDIATE`).
    Write,
}

impl Access {
    /// The default for a request with `method`: safe methods read, the others write.
    pub fn for_method(method: Method) -> Access {
        match method {
            Method::Get | Method::Head | Method::Options | Method::Trace => Access::Read,
            _ => Access::Write,
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(value: u8) -> Access {
        match value {
            0 => Access::Read,
            _ => Access::Write,
        }
    }
}
