//! How failures are classified, and the one mapping from a class to an HTTP status.
//!
//! Database errors are classified by sqlx's kind, SQLSTATE codes and driver error numbers —
//! never by message text (see `DbErrorKind::of`, in the driver layer).

use rocket::http::Status;

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
    /// The database refused the operation: a privilege or row-level security policy
    /// (PostgreSQL 42501), a write in a read-only transaction (25006; MySQL 1792), a
    /// command denied (MySQL 1142).
    PermissionDenied,
    /// Anything else.
    Other,
}

impl DbErrorKind {
    /// The HTTP status this kind maps to (see [`ErrorKind::status`]): 409 for constraint and
    /// concurrency conflicts, 404 for not found, 503 for connection failures and busy
    /// databases, 500 otherwise.
    pub fn status(self) -> Status {
        ErrorKind::Database(self).status()
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
            DbErrorKind::PermissionDenied => "The operation is not permitted",
            DbErrorKind::Other => "There was an error during data processing",
        }
    }
}

/// The class of any rocket_alchemy failure, and the one place that maps it to an HTTP status.
///
/// ```
/// use rocket::http::Status;
/// use rocket_alchemy::{DbErrorKind, ErrorKind};
///
/// assert_eq!(ErrorKind::Database(DbErrorKind::UniqueViolation).status(), Status::Conflict);
/// assert_eq!(ErrorKind::Database(DbErrorKind::Busy).status(), Status::ServiceUnavailable);
/// assert_eq!(ErrorKind::Validation.status(), Status::UnprocessableEntity);
/// assert_eq!(ErrorKind::CommitOutcomeUnknown.status(), Status::InternalServerError);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A database failure of this kind.
    Database(DbErrorKind),
    /// The request is malformed: a bad filter or query parameter, or an operation refused
    /// as asked (400).
    InvalidRequest,
    /// The input failed validation (422).
    Validation,
    /// An update lost to another one: the row's `#[model(version)]` is no longer the one
    /// the update was based on (409; retrying the same request cannot succeed: reload).
    StaleWrite,
    /// The request's `If-Match` does not match the resource's current `ETag` (412).
    PreconditionFailed,
    /// `COMMIT` lost its connection: the transaction may or may not have committed (500;
    /// not 503, which would invite a blind retry).
    CommitOutcomeUnknown,
    /// A programming or configuration error: the fairing is missing, a bind is unknown, a
    /// session is used while a connection borrowed from it lives… (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind: the only status mapping of the crate.
    pub fn status(self) -> Status {
        match self {
            ErrorKind::Database(kind) => match kind {
                DbErrorKind::UniqueViolation
                | DbErrorKind::ForeignKeyViolation
                | DbErrorKind::NotNullViolation
                | DbErrorKind::CheckViolation
                | DbErrorKind::Serialization => Status::Conflict,
                DbErrorKind::NotFound => Status::NotFound,
                DbErrorKind::PermissionDenied => Status::Forbidden,
                DbErrorKind::Connection | DbErrorKind::Busy => Status::ServiceUnavailable,
                DbErrorKind::Other => Status::InternalServerError,
            },
            ErrorKind::InvalidRequest => Status::BadRequest,
            ErrorKind::Validation => Status::UnprocessableEntity,
            ErrorKind::StaleWrite => Status::Conflict,
            ErrorKind::PreconditionFailed => Status::PreconditionFailed,
            ErrorKind::CommitOutcomeUnknown | ErrorKind::Internal => Status::InternalServerError,
        }
    }

    /// Whether retrying the same request later may succeed (the response carries
    /// `Retry-After`).
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Database(kind) if kind.is_transient())
    }

    /// The client-facing message of this kind, when the error has none of its own. It
    /// never contains SQL or driver text.
    pub fn detail(self) -> &'static str {
        match self {
            ErrorKind::Database(kind) => kind.detail(),
            ErrorKind::InvalidRequest => "The request is invalid",
            ErrorKind::Validation => "The input is invalid",
            ErrorKind::StaleWrite => {
                "The resource was changed by another request; reload it and try again"
            }
            ErrorKind::PreconditionFailed => "The resource does not match If-Match",
            ErrorKind::CommitOutcomeUnknown | ErrorKind::Internal => DbErrorKind::Other.detail(),
        }
    }
}
