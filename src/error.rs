//! Error classification shared by every layer, and the JSON error body.
//!
//! Database errors are classified by sqlx's [`ErrorKind`](sqlx::error::ErrorKind), SQLSTATE
//! codes and driver error numbers — never by message text.

use std::io::Cursor;

use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder, Response};
use rocket::Request;
use serde::Serialize;

/// What kind of failure a database error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// A unique or primary key constraint was violated.
    UniqueViolation,
    /// A foreign key constraint was violated.
    ForeignKeyViolation,
    /// A NOT NULL constraint was violated.
    NotNullViolation,
    /// A CHECK (or exclusion) constraint was violated.
    CheckViolation,
    /// The transaction lost to a concurrent one: serialization failure, deadlock, or a
    /// SQLite read transaction whose snapshot went stale before its first write. Retrying
    /// the request may succeed (409 with `Retry-After`).
    Serialization,
    /// The database was too busy to serve in time: a wait for a pooled connection or for
    /// SQLite's write queue past `connect_timeout`, or a lock wait past the server's limit
    /// (SQLite's `busy_timeout`, MySQL's `innodb_lock_wait_timeout`, PostgreSQL's
    /// `lock_timeout`). Nothing conflicted: 503 with `Retry-After`.
    Busy,
    /// A query expecting a row found none.
    NotFound,
    /// The database could not be reached: pool timeout, closed pool, I/O, TLS or a
    /// connection the server terminated.
    Connection,
    /// Anything else.
    Other,
}

impl DbErrorKind {
    /// Classifies a sqlx error.
    pub fn of(error: &sqlx::Error) -> DbErrorKind {
        use sqlx::error::ErrorKind;
        match error {
            sqlx::Error::RowNotFound => DbErrorKind::NotFound,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => DbErrorKind::Connection,
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => DbErrorKind::UniqueViolation,
                ErrorKind::ForeignKeyViolation => DbErrorKind::ForeignKeyViolation,
                ErrorKind::NotNullViolation => DbErrorKind::NotNullViolation,
                ErrorKind::CheckViolation | ErrorKind::ExclusionViolation => {
                    DbErrorKind::CheckViolation
                }
                _ => classify_code(db.as_ref()),
            },
            _ => DbErrorKind::Other,
        }
    }

    /// The HTTP status this kind maps to: 409 for constraint and concurrency conflicts,
    /// 404 for not found, 503 for connection failures and busy databases, 500 otherwise.
    pub fn status(self) -> Status {
        match self {
            DbErrorKind::UniqueViolation
            | DbErrorKind::ForeignKeyViolation
            | DbErrorKind::NotNullViolation
            | DbErrorKind::CheckViolation
            | DbErrorKind::Serialization => Status::Conflict,
            DbErrorKind::NotFound => Status::NotFound,
            DbErrorKind::Connection | DbErrorKind::Busy => Status::ServiceUnavailable,
            DbErrorKind::Other => Status::InternalServerError,
        }
    }

    /// Whether retrying the same request later may succeed: serialization failures, busy
    /// databases and unreachable ones. Their responses carry `Retry-After`.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DbErrorKind::Serialization | DbErrorKind::Busy | DbErrorKind::Connection
        )
    }

    /// The client-facing message for this kind (Advanced Alchemy's default texts where it
    /// has one). It never contains SQL or driver text.
    pub fn detail(self) -> &'static str {
        match self {
            DbErrorKind::UniqueViolation => "A record matching the supplied data already exists.",
            DbErrorKind::ForeignKeyViolation => "A foreign key is missing or invalid",
            DbErrorKind::NotNullViolation | DbErrorKind::CheckViolation => {
                "There was a data validation error during processing"
            }
            DbErrorKind::Serialization => {
                "The transaction conflicted with a concurrent one; retry the request"
            }
            DbErrorKind::NotFound => "The requested resource was not found",
            DbErrorKind::Connection => "The database is unavailable",
            DbErrorKind::Busy => "The database is busy; retry the request",
            DbErrorKind::Other => "There was an error during data processing",
        }
    }
}

fn classify_code(db: &dyn sqlx::error::DatabaseError) -> DbErrorKind {
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match my.number() {
            // ER_LOCK_DEADLOCK, ER_CHECKREAD (snapshot conflict)
            1213 | 1020 => DbErrorKind::Serialization,
            // ER_LOCK_WAIT_TIMEOUT
            1205 => DbErrorKind::Busy,
            // ER_CONNECTION_KILLED, ER_QUERY_INTERRUPTED, ER_SERVER_SHUTDOWN, CR_* lost/gone
            1927 | 1317 | 1053 | 2006 | 2013 => DbErrorKind::Connection,
            _ => DbErrorKind::Other,
        };
    }
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes: the primary code is the low byte.
        let code = db.code().and_then(|c| c.parse::<i32>().ok());
        return match code {
            // SQLITE_BUSY_SNAPSHOT: a read transaction tried to write after another
            // connection committed; it must start over.
            Some(517) => DbErrorKind::Serialization,
            // SQLITE_BUSY (and its other extended codes): the lock wait hit busy_timeout.
            Some(c) if c & 0xff == 5 => DbErrorKind::Busy,
            // SQLITE_LOCKED: a conflict inside one connection or shared cache.
            Some(c) if c & 0xff == 6 => DbErrorKind::Serialization,
            _ => DbErrorKind::Other,
        };
    }
    match db.code().as_deref() {
        // PostgreSQL: serialization_failure, deadlock_detected
        Some("40001") | Some("40P01") => DbErrorKind::Serialization,
        // lock_not_available (lock_timeout, NOWAIT)
        Some("55P03") => DbErrorKind::Busy,
        // admin_shutdown, crash_shutdown, cannot_connect_now, and class 08 (connection)
        Some("57P01") | Some("57P02") | Some("57P03") => DbErrorKind::Connection,
        Some(code) if code.starts_with("08") => DbErrorKind::Connection,
        Some(code) if code.starts_with("23") => DbErrorKind::CheckViolation,
        _ => DbErrorKind::Other,
    }
}

/// The JSON body of every error response: `{"status_code": N, "detail": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The HTTP status code, repeated in the body.
    pub status_code: u16,
    /// A message safe to show to clients.
    pub detail: String,
    /// Seconds for the `Retry-After` header (not part of the body): set on every 503, and on
    /// 409s that a retry may cure.
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl ErrorBody {
    /// A body for `status` with `detail`. A 503 carries `Retry-After: 1`.
    pub fn new(status: Status, detail: impl Into<String>) -> Self {
        ErrorBody {
            status_code: status.code,
            detail: detail.into(),
            retry_after: (status == Status::ServiceUnavailable).then_some(1),
        }
    }

    /// The body of a database error of `kind`: its status and client-facing detail, with
    /// `Retry-After` when a retry may succeed.
    pub fn of_kind(kind: DbErrorKind) -> Self {
        ErrorBody::new(kind.status(), kind.detail()).retry_if(kind.is_transient())
    }

    /// Adds `Retry-After: 1` when `transient`.
    pub fn retry_if(mut self, transient: bool) -> Self {
        if transient {
            self.retry_after.get_or_insert(1);
        }
        self
    }

    /// The serialized body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"status_code\":{},\"detail\":\"error\"}}",
                self.status_code
            )
        })
    }

    /// Replaces `response`'s status and body with this error (and drops headers that
    /// described the replaced body or redirect).
    pub(crate) fn apply(&self, response: &mut Response<'_>) {
        let body = self.to_json();
        response.set_status(Status::new(self.status_code));
        for name in [
            "Location",
            "Content-Encoding",
            "Content-Disposition",
            "Content-Range",
            "ETag",
            "Last-Modified",
            "Set-Cookie",
        ] {
            response.remove_header(name);
        }
        response.set_header(ContentType::JSON);
        match self.retry_after {
            Some(seconds) => {
                response.set_raw_header("Retry-After", seconds.to_string());
            }
            None => response.remove_header("Retry-After"),
        }
        response.set_sized_body(body.len(), Cursor::new(body));
    }
}

impl<'r> Responder<'r, 'static> for ErrorBody {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = self.to_json();
        let mut response = Response::build();
        response
            .status(Status::new(self.status_code))
            .header(ContentType::JSON)
            .sized_body(body.len(), Cursor::new(body));
        if let Some(seconds) = self.retry_after {
            response.raw_header("Retry-After", seconds.to_string());
        }
        response.ok()
    }
}
