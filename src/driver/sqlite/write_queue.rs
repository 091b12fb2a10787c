//! SQLite's write side: one write connection per bind and one fair queue per database file.
//!
//! SQLite lets one connection write at a time. Left to itself, a second writer sleeps in the
//! busy handler (growing steps, up to 100 ms) and polls: under load that is where second-long
//! tail latencies come from. Inside one process we can do better: writers wait in a FIFO
//! queue (a fair semaphore with one permit per database file), hold its permit from their
//! `BEGIN IMMEDIATE` to their `COMMIT`/`ROLLBACK`, and run on a connection of their own, so
//! a waiting writer holds no pooled connection and readers never queue behind writers.
//! `busy_timeout` still covers other processes using the same file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rocket::tokio::sync::{OwnedSemaphorePermit, Semaphore};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqlitePool};

/// A place at the head of the write queue, held until the write transaction ends.
pub(crate) type WritePermit = OwnedSemaphorePermit;

/// Where the write connection waits between writers: taken by the writer whose turn it is,
/// put back after its `COMMIT` or `ROLLBACK` (never through the pool, which would ping it).
#[derive(Debug, Clone, Default)]
pub(crate) struct WriterSlot(Arc<Mutex<Option<PoolConnection<Sqlite>>>>);

impl WriterSlot {
    fn take(&self) -> Option<PoolConnection<Sqlite>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Puts the write connection back (a second one, which cannot happen while writers
    /// hold the queue's only permit, would go back to the pool).
    pub(crate) fn put(&self, conn: PoolConnection<Sqlite>) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(conn);
        }
    }
}

/// The write side of one SQLite bind.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    /// The write connection (a pool of one). `None` for in-memory databases: they have no
    /// WAL, so every session there is a writer on the bind's pool.
    pool: Option<SqlitePool>,
    /// The write connection between two writers.
    slot: WriterSlot,
    queue: Arc<Semaphore>,
    /// How long a writer waits for its turn (the bind's `connect_timeout`).
    wait: Duration,
}

/// One queue per database file in the process, shared by binds that open the same file.
static QUEUES: Mutex<Option<HashMap<PathBuf, Weak<Semaphore>>>> = Mutex::new(None);

fn queue_for(file: Option<&Path>) -> Arc<Semaphore> {
    let Some(file) = file else {
        return Arc::new(Semaphore::new(1));
    };
    let key = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let key = key.canonicalize().unwrap_or(key);
    let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
    let queues = queues.get_or_insert_with(HashMap::new);
    queues.retain(|_, queue| queue.strong_count() > 0);
    if let Some(queue) = queues.get(&key).and_then(Weak::upgrade) {
        return queue;
    }
    let queue = Arc::new(Semaphore::new(1));
    queues.insert(key, Arc::downgrade(&queue));
    queue
}

impl SqliteWriter {
    /// The write side of a bind on `file` (`None`: in memory), writing on `pool`.
    pub(crate) fn new(pool: Option<SqlitePool>, file: Option<&Path>, wait: Duration) -> Self {
        SqliteWriter {
            pool,
            slot: WriterSlot::default(),
            queue: queue_for(file),
            wait,
        }
    }

    /// Waits for this writer's turn, at most the bind's `connect_timeout`; then
    /// [`sqlx::Error::PoolTimedOut`] (answered 503 with `Retry-After`).
    pub(crate) async fn enter(&self) -> Result<WritePermit, sqlx::Error> {
        match rocket::tokio::time::timeout(self.wait, self.queue.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(sqlx::Error::PoolClosed),
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    /// The write connection, for the writer whose turn it is, with where it goes back to;
    /// `None` when writers use the bind's pool (in memory).
    pub(crate) async fn connection(
        &self,
    ) -> Option<Result<(PoolConnection<Sqlite>, WriterSlot), sqlx::Error>> {
        let pool = self.pool.as_ref()?;
        let conn = match self.slot.take() {
            Some(conn) => Ok(conn),
            None => pool.acquire().await,
        };
        Some(conn.map(|conn| (conn, self.slot.clone())))
    }

    /// Whether every session must be a writer (in-memory databases).
    pub(crate) fn all_sessions_write(&self) -> bool {
        self.pool.is_none()
    }

    /// Closes the write connection.
    pub(crate) async fn close(&self) {
        drop(self.slot.take());
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_queue_per_file() {
        let dir = std::env::temp_dir();
        let a = queue_for(Some(&dir.join("ra_queue_test.db")));
        let b = queue_for(Some(&dir.join(".").join("ra_queue_test.db")));
        assert!(Arc::ptr_eq(&a, &b));
        let c = queue_for(Some(&dir.join("ra_queue_other.db")));
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(!Arc::ptr_eq(&queue_for(None), &queue_for(None)));
    }
}
