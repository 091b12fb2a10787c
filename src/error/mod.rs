//! One error for the whole crate, classified by kind, with one status mapping and one
//! `Responder`.
//!
//! Each layer has its own error type with the detail that layer knows ([`SessionError`],
//! [`RepositoryError`], [`LaunchError`], …); [`Error`] nests any of them, keeping its
//! source. Every one of them classifies itself as an [`ErrorKind`], whose
//! [`status`](ErrorKind::status) is the only place an HTTP status is decided, and every one
//! answers a request through [`Error`]'s `Responder`: a JSON [`ErrorBody`] with no SQL or
//! driver text, `Retry-After` when a retry may succeed, the full error in the log.
//!
//! `kind` and `body` are the bottom of the crate (every layer uses them); this module's
//! [`Error`], which names every layer's error, is its top.

pub(crate) mod body;
pub(crate) mod kind;

pub use body::ErrorBody;
pub use kind::{DbErrorKind, ErrorKind};

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::Request;

use crate::bind::{LaunchError, UnknownBind};
use crate::config::ConfigError;
use crate::ddl::SchemaError;
use crate::filters::FilterError;
use crate::fixtures::FixtureError;
use crate::migrate::MigrationError;
use crate::repository::RepositoryError;
use crate::session::SessionError;

/// Any rocket_alchemy failure. Handlers can return it (or any of the nested types, which
/// answer the same way):
///
/// ```
/// use rocket_alchemy::{Error, Session};
///
/// #[rocket::get("/ping")]
/// async fn ping(db: Session<'_>) -> Result<&'static str, Error> {
///     db.fetch_one::<(i32,), _>(&rocket_alchemy::sea_query::Query::select()
///         .expr(rocket_alchemy::sea_query::Expr::val(1)).to_owned()).await?;
///     Ok("pong")
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Opening the databases failed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// A bind key that is not configured.
    #[error(transparent)]
    UnknownBind(#[from] UnknownBind),
    /// A session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A repository or service operation failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// A filter is invalid.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `create_all` or `drop_all` failed.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A migration command failed.
    #[error(transparent)]
    Migration(#[from] MigrationError),
    /// Loading or dumping fixtures failed.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        Error::Session(source.into())
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) | Error::Launch(_) | Error::UnknownBind(_) => ErrorKind::Internal,
            Error::Session(e) => e.error_kind(),
            Error::Repository(e) => e.error_kind(),
            Error::Filter(_) => ErrorKind::InvalidRequest,
            Error::Schema(e) => e.error_kind(),
            Error::Migration(_) | Error::Fixture(_) => ErrorKind::Internal,
        }
    }

    /// The HTTP status of this error ([`ErrorKind::status`]).
    pub fn status(&self) -> Status {
        self.kind().status()
    }

    /// The client-facing message: a layer's own safe message (a validation or parameter
    /// error), or its kind's.
    pub fn detail(&self) -> String {
        match self {
            Error::Session(e) => e.detail().into(),
            Error::Repository(e) => e.detail(),
            Error::Filter(e) => e.message.clone(),
            other => other.kind().detail().into(),
        }
    }

    /// The JSON body, with `Retry-After` when a retry may succeed.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::of_kind(self.kind(), self.detail())
    }

    /// Why the database refused, when a database error is behind this one: its kind, the
    /// constraint, table and code it names (no values, no SQL). What a 4xx logs.
    pub fn database_reason(&self) -> Option<String> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = next {
            if let Some(sqlx) = error.downcast_ref::<sqlx::Error>() {
                return Some(DbErrorKind::reason(sqlx));
            }
            next = error.source();
        }
        None
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let body = self.body();
        let status = Status::new(body.status_code);
        if status.code >= 500 {
            tracing::error!(target: "rocket_alchemy", error = %self, "{} {}: {}", request.method(), request.uri(), status);
        } else {
            // The client-safe detail and the database's reason only (the path without its
            // query): a 4xx's full error can quote the values sent.
            let path = request.uri().path();
            match self.database_reason() {
                Some(reason) => {
                    tracing::warn!(target: "rocket_alchemy", "{} {}: {}: {} ({})", request.method(), path, status, body.detail, reason)
                }
                None => {
                    tracing::warn!(target: "rocket_alchemy", "{} {}: {}: {}", request.method(), path, status, body.detail)
                }
            }
        }
        body.respond_to(request)
    }
}
