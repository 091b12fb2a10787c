//! [`RepositoryError`]: what the repository and service layers report.

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::Request;

use crate::error::{DbErrorKind, ErrorBody, ErrorKind};
use crate::filters::FilterError;
use crate::session::SessionError;

/// The error of the repository and service layer. As a [`Responder`] it answers
/// `{"status_code": N, "detail": "..."}` with Advanced Alchemy's messages and no SQL or
/// driver text; the full error goes to the log.
///
/// | error | status |
/// |---|---|
/// | `NotFound` | 404 |
/// | `DuplicateKey`, `ForeignKey`, `Integrity`, `Conflict`, `Stale` | 409 |
/// | `PreconditionFailed` | 412 |
/// | `InvalidFilter`, `InvalidParameter`, `Refused` | 400 |
/// | `Validation` | 422 |
/// | `Unavailable` (pool timeout, connection failure) | 503 |
/// | `MultipleResults`, anything else | 500 |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// No row matched.
    #[error("no {model} matched")]
    NotFound {
        /// The model.
        model: &'static str,
    },
    /// More than one row matched where one was expected.
    #[error("more than one {model} matched")]
    MultipleResults {
        /// The model.
        model: &'static str,
    },
    /// A unique constraint was violated.
    #[error("{model}: duplicate key: {source}")]
    DuplicateKey {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// A foreign key constraint was violated.
    #[error("{model}: foreign key violation: {source}")]
    ForeignKey {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// Another integrity constraint (NOT NULL, CHECK) was violated.
    #[error("{model}: integrity error: {source}")]
    Integrity {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// The transaction lost to a concurrent one (serialization failure, deadlock, busy).
    #[error("{model}: concurrent update conflict: {source}")]
    Conflict {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// An update was based on a version of the row that is no longer the stored one
    /// (`#[model(version)]`): nothing was written.
    #[error("{model}: the row was changed by another update (stale version)")]
    Stale {
        /// The model.
        model: &'static str,
    },
    /// The row does not match the request's `If-Match`: nothing was written.
    #[error("{model}: If-Match does not match the row's current ETag")]
    PreconditionFailed {
        /// The model.
        model: &'static str,
    },
    /// A filter names a column the model does not have, or is otherwise invalid.
    #[error("invalid filter: {0}")]
    InvalidFilter(#[from] FilterError),
    /// A request parameter is invalid.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// What is wrong, safe to show to clients.
        message: String,
    },
    /// Input that does not make a valid model (from a service's input conversion).
    #[error("invalid input: {0}")]
    Validation(String),
    /// A request the repository refuses, such as an unfiltered `delete_where`.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The database is unreachable: pool timeout or connection failure.
    #[error("{model}: database unavailable: {source}")]
    Unavailable {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// A repository was asked for on a session of another bind (a programming error).
    #[error("model {model} belongs to bind \"{bind}\", not to the session's bind \"{session}\"")]
    WrongBind {
        /// The model.
        model: &'static str,
        /// Its bind.
        bind: &'static str,
        /// The session's bind.
        session: String,
    },
    /// The session failed (busy, commit failure, wrong bind…).
    #[error(transparent)]
    Session(SessionError),
    /// A database error caused by one item of a batch ([`Repository::create_many`]): its
    /// index in the input, and the error it gets alone. Status and kind are the inner
    /// error's; the detail is prefixed with `item {index}: `.
    ///
    /// [`Repository::create_many`]: crate::Repository::create_many
    #[error("item {index}: {error}")]
    Item {
        /// The item's index in the batch.
        index: usize,
        /// What went wrong with it.
        #[source]
        error: Box<RepositoryError>,
    },
    /// Any other database error.
    #[error("{model}: {source}")]
    Other {
        /// The model.
        model: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
}

impl RepositoryError {
    pub(crate) fn from_session(model: &'static str, error: SessionError) -> Self {
        match error {
            SessionError::Database { kind, source, .. } => Self::from_kind(model, kind, source),
            other => RepositoryError::Session(other),
        }
    }

    fn from_kind(model: &'static str, kind: DbErrorKind, source: sqlx::Error) -> Self {
        match kind {
            DbErrorKind::NotFound => RepositoryError::NotFound { model },
            DbErrorKind::UniqueViolation => RepositoryError::DuplicateKey { model, source },
            DbErrorKind::ForeignKeyViolation => RepositoryError::ForeignKey { model, source },
            DbErrorKind::NotNullViolation | DbErrorKind::CheckViolation => {
                RepositoryError::Integrity { model, source }
            }
            DbErrorKind::Serialization => RepositoryError::Conflict { model, source },
            DbErrorKind::Connection | DbErrorKind::Busy => {
                RepositoryError::Unavailable { model, source }
            }
            _ => RepositoryError::Other { model, source },
        }
    }

    /// This error, for the item at `index` of a batch: a validation message gets the prefix
    /// `item {index}: `; a constraint violation becomes [`RepositoryError::Item`]; other
    /// errors (an unreachable database, a conflict) concern the whole batch and are returned
    /// as they are.
    ///
    /// ```
    /// use rocket_alchemy::RepositoryError;
    ///
    /// let e = RepositoryError::Validation("title must not be empty".into()).at_item(2);
    /// assert_eq!(e.detail(), "item 2: title must not be empty");
    /// ```
    pub fn at_item(self, index: usize) -> Self {
        match self {
            RepositoryError::Validation(message) => {
                RepositoryError::Validation(format!("item {index}: {message}"))
            }
            error @ (RepositoryError::DuplicateKey { .. }
            | RepositoryError::ForeignKey { .. }
            | RepositoryError::Integrity { .. }) => RepositoryError::Item {
                index,
                error: Box::new(error),
            },
            other => other,
        }
    }

    /// Whether this is a constraint violation (unique, foreign key, NOT NULL, CHECK): an
    /// error some row of the input causes, rather than the database or the transaction.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            RepositoryError::DuplicateKey { .. }
            | RepositoryError::ForeignKey { .. }
            | RepositoryError::Integrity { .. } => true,
            RepositoryError::Item { error, .. } => error.is_constraint_violation(),
            _ => false,
        }
    }

    /// What kind of failure this is.
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            RepositoryError::NotFound { .. } => ErrorKind::Database(DbErrorKind::NotFound),
            RepositoryError::DuplicateKey { .. } => {
                ErrorKind::Database(DbErrorKind::UniqueViolation)
            }
            RepositoryError::ForeignKey { .. } => {
                ErrorKind::Database(DbErrorKind::ForeignKeyViolation)
            }
            RepositoryError::Integrity { source, .. } => match DbErrorKind::of(source) {
                DbErrorKind::NotNullViolation => ErrorKind::Database(DbErrorKind::NotNullViolation),
                _ => ErrorKind::Database(DbErrorKind::CheckViolation),
            },
            RepositoryError::Conflict { .. } => ErrorKind::Database(DbErrorKind::Serialization),
            RepositoryError::Stale { .. } => ErrorKind::StaleWrite,
            RepositoryError::PreconditionFailed { .. } => ErrorKind::PreconditionFailed,
            RepositoryError::InvalidFilter(_)
            | RepositoryError::InvalidParameter { .. }
            | RepositoryError::Refused(_) => ErrorKind::InvalidRequest,
            RepositoryError::Validation(_) => ErrorKind::Validation,
            RepositoryError::Unavailable { source, .. } => match DbErrorKind::of(source) {
                DbErrorKind::Busy => ErrorKind::Database(DbErrorKind::Busy),
                _ => ErrorKind::Database(DbErrorKind::Connection),
            },
            RepositoryError::Session(e) => e.error_kind(),
            RepositoryError::Item { error, .. } => error.error_kind(),
            RepositoryError::Other { source, .. } => ErrorKind::Database(DbErrorKind::of(source)),
            RepositoryError::MultipleResults { .. } | RepositoryError::WrongBind { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// The HTTP status ([`ErrorKind::status`] of [`RepositoryError::error_kind`]; see the
    /// table above).
    pub fn status(&self) -> Status {
        self.error_kind().status()
    }

    /// The client-facing message: Advanced Alchemy's default texts, or the (safe) message of
    /// a filter, parameter or validation error.
    pub fn detail(&self) -> String {
        match self {
            RepositoryError::NotFound { .. } => "The requested resource was not found".into(),
            RepositoryError::MultipleResults { .. } => "Multiple matching rows found".into(),
            RepositoryError::DuplicateKey { .. } => {
                "A record matching the supplied data already exists.".into()
            }
            RepositoryError::ForeignKey { .. } => "A foreign key is missing or invalid".into(),
            RepositoryError::Integrity { source, .. } => match DbErrorKind::of(source) {
                DbErrorKind::CheckViolation => {
                    "The data failed a check constraint during processing".into()
                }
                _ => "There was a data validation error during processing".into(),
            },
            RepositoryError::Conflict { .. } => DbErrorKind::Serialization.detail().into(),
            RepositoryError::Stale { .. } => ErrorKind::StaleWrite.detail().into(),
            RepositoryError::PreconditionFailed { .. } => {
                ErrorKind::PreconditionFailed.detail().into()
            }
            RepositoryError::InvalidFilter(e) => e.message.clone(),
            RepositoryError::InvalidParameter { message, .. } => message.clone(),
            RepositoryError::Validation(message) => message.clone(),
            RepositoryError::Refused(why) => (*why).into(),
            RepositoryError::Unavailable { source, .. } => match DbErrorKind::of(source) {
                DbErrorKind::Busy => DbErrorKind::Busy.detail().into(),
                _ => DbErrorKind::Connection.detail().into(),
            },
            RepositoryError::Session(e) => e.detail().into(),
            RepositoryError::Item { index, error } => format!("item {index}: {}", error.detail()),
            RepositoryError::Other { source, .. } => DbErrorKind::of(source).detail().into(),
            RepositoryError::WrongBind { .. } => "There was an error during data processing".into(),
        }
    }

    /// The JSON body (with `Retry-After` when a retry may succeed).
    pub fn body(&self) -> ErrorBody {
        ErrorBody::of_kind(self.error_kind(), self.detail())
    }
}

impl From<SessionError> for RepositoryError {
    fn from(error: SessionError) -> Self {
        RepositoryError::from_session("row", error)
    }
}

/// Answers as [`Error`](crate::Error) does.
impl<'r> Responder<'r, 'static> for RepositoryError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        crate::Error::from(self).respond_to(request)
    }
}
