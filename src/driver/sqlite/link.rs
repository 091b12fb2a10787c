//! A SQLite session's connection, and the transaction on it.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every command — a
//! `BEGIN`, a statement, a `COMMIT`, the ping that returns a connection to the pool — is a
//! round trip between threads, and under load those context switches are most of a
//! request's cost. This link spends as few as it can:
//!
//! * the `BEGIN` (deferred for a reader, `IMMEDIATE` for a writer) travels with the
//!   session's first statement, as one command (`BEGIN; SELECT …`);
//! * a writer runs on the bind's write connection, which goes back to the write queue's
//!   slot after `COMMIT` rather than through the pool (no ping between two writers);
//! * a reader's transaction is rolled back in the background when the session ends, so no
//!   response waits for it.
//!
//! Transactions here are plain SQL, not sqlx's `Transaction`; if the session is dropped
//! with one open (a client that went away), the rollback runs in a background task and the
//! write-queue turn ends only after it.

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::write_queue::{WritePermit, WriterSlot};

/// A SQLite session's connection. See the [module docs](self). (`pub` only to appear in
/// the session's sealed trait; the module is private.)
pub struct SqliteLink {
    conn: Option<PoolConnection<Sqlite>>,
    /// The `BEGIN` to send in front of the next statement, while none has been sent.
    begin: Option<&'static str>,
    /// A transaction is open on the connection.
    open: bool,
    /// This session's turn in the write queue (writers, and readers that wrote).
    permit: Option<WritePermit>,
    /// Where the write connection goes back to (writers on a file database).
    home: Option<WriterSlot>,
    /// The connection failed as a connection: close it rather than reuse it.
    broken: bool,
}

impl SqliteLink {
    /// A reader on a pooled connection: in a deferred transaction begun with its first
    /// statement (`snapshot`), or statement by statement.
    pub(crate) fn reader(conn: PoolConnection<Sqlite>, snapshot: bool) -> Self {
        SqliteLink {
            conn: Some(conn),
            begin: snapshot.then_some("BEGIN"),
            open: false,
            permit: None,
            home: None,
            broken: false,
        }
    }

    /// A writer, in its turn of the write queue, on the write connection (or, in memory, a
    /// pooled one).
    pub(crate) fn writer(
        conn: PoolConnection<Sqlite>,
        permit: WritePermit,
        home: Option<WriterSlot>,
    ) -> Self {
        SqliteLink {
            conn: Some(conn),
            begin: Some("BEGIN IMMEDIATE"),
            open: false,
            permit: Some(permit),
            home,
            broken: false,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("a live link has its connection")
    }

    /// Whether a transaction is open.
    pub(crate) fn in_tx(&self) -> bool {
        self.open
    }

    /// Whether this session holds its turn in the write queue.
    pub(crate) fn is_writer(&self) -> bool {
        self.permit.is_some()
    }

    /// A reader about to write, now in its turn: its transaction (if none is open yet)
    /// begins `IMMEDIATE` with that write. A reader that has read in a transaction keeps
    /// it: SQLite refuses the write if another connection committed since its snapshot.
    pub(crate) fn become_writer(&mut self, permit: WritePermit) {
        self.permit = Some(permit);
        if !self.open {
            self.begin = Some("BEGIN IMMEDIATE");
        }
    }

    /// `sql` with the pending `BEGIN` in front, and whether one was put there.
    pub(crate) fn statement(&self, sql: SqlStr) -> (SqlStr, bool) {
        match self.begin {
            Some(begin) => (
                AssertSqlSafe(format!("{begin}; {}", sql.as_str())).into_sql_str(),
                true,
            ),
            None => (sql, false),
        }
    }

    /// After a statement (`merged`: it carried the `BEGIN`). Success opens the transaction.
    /// After a failure, whether the `BEGIN` ran is unknown: roll back whatever did, and
    /// begin again with the next statement (nothing else ran in that transaction). A
    /// connection that failed as a connection is not reused.
    pub(crate) async fn settle(&mut self, merged: bool, error: Option<&sqlx::Error>) {
        if let Some(error) = error {
            self.broken |= crate::error::kind::DbErrorKind::of(error)
                == crate::error::kind::DbErrorKind::Connection;
        }
        if !merged {
            return;
        }
        match error {
            None => {
                self.begin = None;
                self.open = true;
            }
            Some(_) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(self.conn()).await;
            }
        }
    }

    /// Opens the transaction now (for a savepoint or a raw connection): sends the pending
    /// `BEGIN`, or a deferred one.
    pub(crate) async fn ensure_open(&mut self) -> Result<(), sqlx::Error> {
        if self.open {
            return Ok(());
        }
        let begin = self.begin.unwrap_or("BEGIN");
        sqlx::raw_sql(begin).execute(self.conn()).await?;
        self.begin = None;
        self.open = true;
        Ok(())
    }

    /// A reader without a transaction begins a deferred one with its next statement (so the
    /// reads that follow see one snapshot).
    pub(crate) fn begin_snapshot(&mut self) {
        if !self.open && self.begin.is_none() {
            self.begin = Some("BEGIN");
        }
    }

    /// Commits the open transaction: `Ok(true)` if one was committed, `Ok(false)` if none
    /// was open. A failed `COMMIT` is rolled back. The connection goes home, then the
    /// write-queue turn ends.
    pub(crate) async fn commit(mut self) -> Result<bool, sqlx::Error> {
        if !self.open {
            return Ok(false);
        }
        let result = sqlx::raw_sql("COMMIT").execute(self.conn()).await;
        if let Err(error) = &result {
            self.broken |= crate::error::kind::DbErrorKind::of(error)
                == crate::error::kind::DbErrorKind::Connection;
            let _ = sqlx::raw_sql("ROLLBACK").execute(self.conn()).await;
        }
        self.open = false;
        result.map(|_| true)
    }

    /// Rolls back the open transaction, waiting for it; then the connection goes home and
    /// the write-queue turn ends.
    pub(crate) async fn rollback(mut self) {
        if self.open {
            let _ = sqlx::raw_sql("ROLLBACK").execute(self.conn()).await;
            self.open = false;
        }
    }
}

/// Returns the connection (to the write slot or the pool) and ends the write-queue turn,
/// after rolling back a transaction left open — in a background task when one is.
impl Drop for SqliteLink {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let (permit, home) = (self.permit.take(), self.home.take());
        if self.broken {
            conn.close_on_drop();
            drop(conn);
            drop(permit);
            return;
        }
        if !self.open {
            release(conn, home);
            drop(permit);
            return;
        }
        match rocket::tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    match sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await {
                        Ok(_) => release(conn, home),
                        // Closing the connection rolls its transaction back.
                        Err(_) => conn.close_on_drop(),
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                conn.close_on_drop();
                drop(permit);
            }
        }
    }
}

/// Puts the write connection back in its slot, or returns a pooled one to the pool.
fn release(conn: PoolConnection<Sqlite>, home: Option<WriterSlot>) {
    match home {
        Some(slot) => slot.put(conn),
        None => drop(conn),
    }
}
