//! What can go wrong in a session.

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::Request;

use crate::bind::UnknownBind;
use crate::config::Backend;
use crate::ddl::SchemaError;
use crate::error::{DbErrorKind, ErrorBody, ErrorKind};

/// A failure of the session layer. As a [`Responder`] it answers as [`crate::Error`] does:
/// with its [`status`] and a JSON [`ErrorBody`] that carries no SQL or driver text; the
/// full error goes to the log.
///
/// [`status`]: SessionError::status
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A bind key that is not configured.
    #[error(transparent)]
    UnknownBind(#[from] UnknownBind),
    /// The fairing is not attached.
    #[error("rocket_alchemy is not attached: add `.attach(Alchemy::fairing())` to the rocket")]
    NotAttached,
    /// The session is in use: a connection borrowed from it is still alive.
    #[error(
        "the session of bind `{bind}` is already in use: drop the connection borrowed from it \
         before using the session (or another guard of the same bind) again"
    )]
    Busy {
        /// The bind key.
        bind: String,
    },
    /// The fairing's session hook refused the request (see
    /// [`AlchemyFairing::on_session`](crate::AlchemyFairing::on_session)).
    #[error("the session hook of bind `{bind}` refused the request ({status})")]
    Refused {
        /// The bind key.
        bind: String,
        /// The status the hook chose.
        status: u16,
    },
    /// The backend cannot do what was asked (a transaction option it cannot apply).
    #[error("bind `{bind}`: {what} is not available")]
    Unsupported {
        /// The bind key.
        bind: String,
        /// What was asked.
        what: String,
    },
    /// A typed connection of the wrong backend was asked for.
    #[error("bind `{bind}` is a {actual} database, not {requested}")]
    WrongBackend {
        /// The bind key.
        bind: String,
        /// The backend asked for.
        requested: Backend,
        /// The bind's backend.
        actual: Backend,
    },
    /// A statement (or BEGIN) failed.
    #[error("database error{}: {source}", bind_suffix(.bind))]
    Database {
        /// The bind key, when known.
        bind: Option<String>,
        /// The classified kind.
        kind: DbErrorKind,
        /// The sqlx error.
        #[source]
        source: sqlx::Error,
    },
    /// COMMIT failed; the transaction was rolled back.
    #[error("commit of bind `{bind}` failed and was rolled back: {source}")]
    Commit {
        /// The bind key.
        bind: String,
        /// The classified kind.
        kind: DbErrorKind,
        /// The sqlx error.
        #[source]
        source: sqlx::Error,
    },
    /// The transaction was already aborted by a failed statement, so it could not commit;
    /// it was rolled back.
    #[error(
        "the transaction of bind `{bind}` was aborted by an earlier failed statement ({kind:?}) \
         and could not commit; it was rolled back"
    )]
    Aborted {
        /// The bind key.
        bind: String,
        /// The kind of the failure that aborted it.
        kind: DbErrorKind,
    },
    /// The savepoint was already released or rolled back, or its transaction ended.
    #[error("savepoint of bind `{bind}` is no longer open")]
    SavepointClosed {
        /// The bind key.
        bind: String,
    },
    /// Creating the bind's tables (deferred `create_all` of a lazy bind) failed.
    #[error("create_all for bind `{bind}` failed: {source}")]
    Schema {
        /// The bind key.
        bind: String,
        /// The schema error.
        #[source]
        source: SchemaError,
    },
}

fn bind_suffix(bind: &Option<String>) -> String {
    bind.as_ref()
        .map(|b| format!(" on bind `{b}`"))
        .unwrap_or_default()
}

impl From<sqlx::Error> for SessionError {
    fn from(source: sqlx::Error) -> Self {
        SessionError::Database {
            bind: None,
            kind: DbErrorKind::of(&source),
            source,
        }
    }
}

impl SessionError {
    /// The database error kind, when this is a database failure.
    pub fn kind(&self) -> Option<DbErrorKind> {
        match self {
            SessionError::Database { kind, .. }
            | SessionError::Commit { kind, .. }
            | SessionError::Aborted { kind, .. } => Some(*kind),
            SessionError::Schema {
                source: SchemaError::Connection(e),
                ..
            } => Some(DbErrorKind::of(e)),
            _ => None,
        }
    }

    /// What kind of failure this is: a database failure by its kind, a lost connection at
    /// `COMMIT` as [`ErrorKind::CommitOutcomeUnknown`], anything else (a missing fairing, a
    /// session in use, a wrong backend) as [`ErrorKind::Internal`].
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            SessionError::Commit {
                kind: DbErrorKind::Connection,
                ..
            } => ErrorKind::CommitOutcomeUnknown,
            // The guard fails with the hook's own status; as a value it is the client's.
            SessionError::Refused { .. } => ErrorKind::InvalidRequest,
            _ => match self.kind() {
                Some(kind) => ErrorKind::Database(kind),
                None => ErrorKind::Internal,
            },
        }
    }

    /// The HTTP status for this error ([`ErrorKind::status`] of [`SessionError::error_kind`]).
    pub fn status(&self) -> Status {
        self.error_kind().status()
    }

    /// The client-facing message.
    pub fn detail(&self) -> &'static str {
        self.error_kind().detail()
    }

    /// The JSON body for this error (with `Retry-After` when a retry may succeed).
    pub fn body(&self) -> ErrorBody {
        ErrorBody::of_kind(self.error_kind(), self.detail())
    }
}

/// Answers as [`Error`](crate::Error) does.
impl<'r> Responder<'r, 'static> for SessionError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        crate::Error::from(self).respond_to(request)
    }
}
