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
