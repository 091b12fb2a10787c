//! The JSON body of every error response.

use std::io::Cursor;

use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder, Response};
use rocket::Request;
use serde::Serialize;

use super::kind::ErrorKind;

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

    /// The body of an error of `kind` with `detail`: its status, with `Retry-After` when a
    /// retry may succeed.
    pub fn of_kind(kind: ErrorKind, detail: impl Into<String>) -> Self {
        ErrorBody::new(kind.status(), detail).retry_if(kind.is_transient())
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
