//! HTTP preconditions for single resources: an [`ETag`](crate::ModelExt::etag) derived from the
//! row's `#[model(version)]` (or its `updated_at`), the [`IfMatch`] request guard, and
//! [`Tagged`], a responder that adds the `ETag` header.
//!
//! ```
//! use rocket_alchemy::precondition::{IfMatch, Tagged};
//! use rocket_alchemy::{Changes, Jsonify, Model, ModelExt, Repository, RepositoryError, Session};
//!
//! #[derive(Model, Clone, serde::Serialize)]
//! struct Doc {
//!     id: i64,
//!     text: String,
//!     #[model(version)]
//!     version: i64,
//! }
//! impl rocket_alchemy::Schema for Doc {}
//!
//! #[rocket::get("/docs/<id>")]
//! async fn get(id: i64, db: Session<'_>) -> Result<Tagged<Jsonify<Doc>>, RepositoryError> {
//!     let doc = Repository::<Doc>::new(db).get(id).await?;
//!     Ok(Tagged::new(doc.etag(), Jsonify::ok(doc)))
//! }
//!
//! /// A stale `If-Match` answers 412 and writes nothing; without the header the update
//! /// still checks the version it read (409 if another update slipped in).
//! #[rocket::put("/docs/<id>", data = "<text>")]
//! async fn put(id: i64, text: String, if_match: IfMatch, db: Session<'_>)
//!     -> Result<Tagged<Jsonify<Doc>>, RepositoryError>
//! {
//!     let changes = Changes::new().set(Doc::TEXT, text).if_match(if_match);
//!     let doc = Repository::<Doc>::new(db).update(id, changes).await?;
//!     Ok(Tagged::new(doc.etag(), Jsonify::ok(doc)))
//! }
//! ```

use rocket::http::{Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder};

use crate::error::ErrorBody;
use crate::model::{AuditColumn, Model};

/// The `ETag` of a row, as a quoted strong entity tag: its version (`"7"`) when the model
/// has a `#[model(version)]` column, else its `updated_at` in microseconds
/// (`"1764625412123456"`), else `None`.
pub(crate) fn etag_of<M: Model>(model: &M) -> Option<String> {
    let column = M::TABLE
        .audit_column(AuditColumn::Version)
        .or_else(|| M::TABLE.audit_column(AuditColumn::UpdatedAt))?;
    let tag = match model.value(column.name)? {
        sea_query::Value::BigInt(Some(v)) => v.to_string(),
        sea_query::Value::Int(Some(v)) => v.to_string(),
        sea_query::Value::ChronoDateTimeUtc(Some(t)) => t.timestamp_micros().to_string(),
        _ => return None,
    };
    Some(format!("\"{tag}\""))
}

/// The `If-Match` request header (RFC 9110 §13.1.1), as a guard: absent (no precondition),
/// `*` (any current row), or a list of entity tags compared strongly (weak tags `W/"…"`
/// never match). A malformed header fails the request with 400.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IfMatch {
    /// No `If-Match`: the update proceeds (the version is still checked).
    #[default]
    Absent,
    /// `If-Match: *`.
    Any,
    /// The listed entity tags, quotes included.
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parses a header value.
    pub fn parse(value: &str) -> Option<IfMatch> {
        let value = value.trim();
        if value == "*" {
            return Some(IfMatch::Any);
        }
        let mut tags = Vec::new();
        for tag in value.split(',') {
            let tag = tag.trim();
            let opaque = tag.strip_prefix("W/").unwrap_or(tag);
            let valid = opaque.len() >= 2
                && opaque.starts_with('"')
                && opaque.ends_with('"')
                && !opaque[1..opaque.len() - 1].contains('"');
            if !valid {
                return None;
            }
            tags.push(tag.to_string());
        }
        (!tags.is_empty()).then_some(IfMatch::Tags(tags))
    }

    /// Whether a resource whose current `ETag` is `current` satisfies this precondition.
    pub fn matches(&self, current: Option<&str>) -> bool {
        match self {
            IfMatch::Absent => true,
            IfMatch::Any => current.is_some(),
            // Strong comparison: a weak tag never matches.
            IfMatch::Tags(tags) => current.is_some_and(|c| tags.iter().any(|t| t == c)),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IfMatch {
    type Error = ErrorBody;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match request.headers().get_one("If-Match") {
            None => Outcome::Success(IfMatch::Absent),
            Some(value) => match IfMatch::parse(value) {
                Some(if_match) => Outcome::Success(if_match),
                None => Outcome::Error((
                    Status::BadRequest,
                    ErrorBody::new(
                        Status::BadRequest,
                        "If-Match must be `*` or quoted entity tags",
                    ),
                )),
            },
        }
    }
}

/// A responder with an `ETag` header (none when the tag is `None`).
#[derive(Debug)]
pub struct Tagged<R> {
    etag: Option<String>,
    inner: R,
}

impl<R> Tagged<R> {
    /// `inner`, answered with `ETag: etag`.
    pub fn new(etag: Option<String>, inner: R) -> Self {
        Tagged { etag, inner }
    }
}

impl<'r, 'o: 'r, R: Responder<'r, 'o>> Responder<'r, 'o> for Tagged<R> {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'o> {
        let mut response = self.inner.respond_to(request)?;
        if let Some(etag) = self.etag {
            response.set_header(Header::new("ETag", etag));
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::IfMatch;

    #[test]
    fn parses_and_compares_strongly() {
        assert_eq!(IfMatch::parse("*"), Some(IfMatch::Any));
        let tags = IfMatch::parse(r#""1", W/"2""#).unwrap();
        assert!(tags.matches(Some("\"1\"")));
        assert!(!tags.matches(Some("\"2\"")), "weak tags never match");
        assert!(!tags.matches(None));
        assert_eq!(IfMatch::parse("1"), None);
        assert_eq!(IfMatch::parse(""), None);
        assert!(IfMatch::Absent.matches(None));
    }
}
