//! Pages and JSON responses: `OffsetPagination`, keyset cursors and `Jsonify`.

use std::io::Cursor as IoCursor;

use base64::Engine;
use hmac::{KeyInit, Mac};
use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder, Response};
use rocket::Request;
use sea_query::Value;
use serde::Serialize;

use crate::filters::{FilterError, LimitOffset, SortOrder};
use crate::model::{Col, Model};

/// A type meant to be sent to clients. Only schema types go through [`Jsonify`] and
/// [`OffsetPagination`], so a model's internals never leak by accident (the original's
/// `jsonify(model)` dumped ORM state): implement it for your response types.
///
/// ```
/// use rocket_alchemy::pagination::Schema;
///
/// #[derive(serde::Serialize)]
/// struct AuthorOut { id: uuid::Uuid, name: String }
/// impl Schema for AuthorOut {}
/// ```
pub trait Schema: Serialize {}

impl<T: Schema> Schema for Vec<T> {}
impl<T: Schema> Schema for Option<T> {}

/// A page of results, serialized exactly as `{"items": [...], "limit": N, "offset": N,
/// "total": N}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsetPagination<T> {
    /// The page.
    pub items: Vec<T>,
    /// The page size (the number of items when no limit was given).
    pub limit: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Rows matching the filters, on every page (also past the last one).
    pub total: u64,
}

impl<T: Schema> Schema for OffsetPagination<T> {}

impl<T> OffsetPagination<T> {
    /// A page of `items` out of `total`, with the limit and offset of `limit_offset`.
    pub fn new(items: Vec<T>, total: u64, limit_offset: Option<LimitOffset>) -> Self {
        let (limit, offset) = match limit_offset {
            Some(lo) => (lo.limit, lo.offset),
            None => (items.len() as u64, 0),
        };
        OffsetPagination {
            items,
            limit,
            offset,
            total,
        }
    }

    /// The same page with its items converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> OffsetPagination<U> {
        OffsetPagination {
            items: self.items.into_iter().map(f).collect(),
            limit: self.limit,
            offset: self.offset,
            total: self.total,
        }
    }
}

/// A page of a keyset (cursor) listing: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CursorPage<T> {
    /// The page.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

impl<T: Schema> Schema for CursorPage<T> {}

/// A JSON response of a [`Schema`] type with a chosen status: the `jsonify` of the
/// original.
///
/// ```
/// use rocket::http::Status;
/// use rocket_alchemy::pagination::{Jsonify, Schema};
///
/// #[derive(serde::Serialize)]
/// struct Created { id: i64 }
/// impl Schema for Created {}
///
/// #[rocket::post("/things")]
/// fn create() -> Jsonify<Created> {
///     Jsonify::with_status(Status::Created, Created { id: 1 })
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Jsonify<T> {
    status: Status,
    value: T,
}

impl<T: Schema> Jsonify<T> {
    /// `200 OK` with `value`.
    pub fn ok(value: T) -> Self {
        Jsonify {
            status: Status::Ok,
            value,
        }
    }

    /// `status` with `value`.
    pub fn with_status(status: Status, value: T) -> Self {
        Jsonify { status, value }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }
}

impl<'r, T: Schema> Responder<'r, 'static> for Jsonify<T> {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = serde_json::to_vec(&self.value).map_err(|e| {
            tracing::error!(target: "rocket_alchemy", "JSON serialization failed: {e}");
            Status::InternalServerError
        })?;
        Response::build()
            .status(self.status)
            .header(ContentType::JSON)
            .sized_body(body.len(), IoCursor::new(body))
            .ok()
    }
}

/// A keyset (cursor) listing: the next page after a position in a unique ordering, so a deep
/// page costs the same as the first. The primary key is appended to the ordering when it
/// is not in it, which makes any ordering unique.
#[derive(Debug, Clone)]
pub struct Keyset<M> {
    pub(crate) order: Vec<(&'static str, SortOrder)>,
    pub(crate) after: Option<Vec<Value>>,
    pub(crate) limit: u64,
    _model: std::marker::PhantomData<fn() -> M>,
}

impl<M: Model> Keyset<M> {
    /// The first `limit` rows, ordered by the primary key.
    pub fn new(limit: u64) -> Self {
        Keyset {
            order: Vec::new(),
            after: None,
            limit,
            _model: std::marker::PhantomData,
        }
    }

    /// Orders by `column` first (then by the columns added before, then the primary key).
    pub fn order_by<T, R>(mut self, column: Col<M, T, R>, order: SortOrder) -> Self {
        self.order.push((column.name(), order));
        self
    }

    /// Orders by the column named `column` (checked).
    pub fn order_by_name(mut self, column: &str, order: SortOrder) -> Result<Self, FilterError> {
        let c = crate::filters::ColumnRef::<M>::named(column)?;
        self.order.push((c.name(), order));
        Ok(self)
    }

    /// Starts after the position a cursor names (as returned with the previous page).
    pub fn after(mut self, position: Option<Vec<Value>>) -> Self {
        self.after = position;
        self
    }

    /// The ordering, with the primary key as the final tiebreaker.
    pub(crate) fn full_order(&self) -> Vec<(&'static str, SortOrder)> {
        let pk = M::TABLE.primary_key().name;
        let mut order = self.order.clone();
        if !order.iter().any(|(c, _)| *c == pk) {
            let last = order.last().map(|(_, o)| *o).unwrap_or_default();
            order.push((pk, last));
        }
        order
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Encodes and checks keyset cursors: base64url of the position's values, signed with
/// HMAC-SHA256 so a client cannot forge or alter one. Keep the key stable across instances
/// of an app (the fairing derives it from `secret_key` when configured).
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(..)")
    }
}

/// A cursor that was altered, forged or made for another ordering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl CursorCodec {
    /// A codec with this key (any length; at least 32 random bytes recommended).
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        CursorCodec { key: key.into() }
    }

    /// The key of an app's cursors: derived from Rocket's `secret_key` when configured (so
    /// every instance of the app accepts the others' cursors), random otherwise.
    pub(crate) fn key_from_figment(figment: &rocket::figment::Figment) -> Vec<u8> {
        use sha2::Digest;
        match figment.extract_inner::<String>("secret_key") {
            Ok(secret) if !secret.is_empty() => {
                let mut hasher = sha2::Sha256::new();
                hasher.update(b"rocket_alchemy cursor\0");
                hasher.update(secret.as_bytes());
                hasher.finalize().to_vec()
            }
            _ => {
                let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
                key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
                key
            }
        }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// The cursor naming the position of `row` in `keyset`'s ordering.
    pub fn encode<M: Model>(&self, keyset: &Keyset<M>, row: &M) -> String {
        let order = keyset.full_order();
        let position: Vec<Option<String>> = order
            .iter()
            .map(|(column, _)| row.value(column).and_then(|v| value_text(&v)))
            .collect();
        let payload = serde_json::json!({ "o": order.iter().map(|(c, o)| format!("{c}:{}", matches!(o, SortOrder::Desc) as u8)).collect::<Vec<_>>(), "p": position });
        let payload = serde_json::to_vec(&payload).expect("serializable");
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        let mut bytes = payload;
        bytes.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a cursor names, checked against its signature and `keyset`'s ordering.
    pub fn decode<M: Model>(
        &self,
        keyset: &Keyset<M>,
        cursor: &str,
    ) -> Result<Vec<Value>, InvalidCursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| InvalidCursor)?;
        if bytes.len() < 32 {
            return Err(InvalidCursor);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - 32);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| InvalidCursor)?;
        let json: serde_json::Value = serde_json::from_slice(payload).map_err(|_| InvalidCursor)?;
        let order = keyset.full_order();
        let expected: Vec<String> = order
            .iter()
            .map(|(c, o)| format!("{c}:{}", matches!(o, SortOrder::Desc) as u8))
            .collect();
        if json["o"] != serde_json::json!(expected) {
            return Err(InvalidCursor);
        }
        let position = json["p"].as_array().ok_or(InvalidCursor)?;
        if position.len() != order.len() {
            return Err(InvalidCursor);
        }
        order
            .iter()
            .zip(position)
            .map(|((column, _), raw)| {
                let ty = M::TABLE.column(column).ok_or(InvalidCursor)?.ty;
                match raw.as_str() {
                    Some(text) => ty.parse(text).map_err(|_| InvalidCursor),
                    None if raw.is_null() => Ok(ty.null()),
                    None => Err(InvalidCursor),
                }
            })
            .collect()
    }
}

/// A value as the text [`crate::model::ColumnType::parse`] reads back.
pub(crate) fn value_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Bool(b) => b.as_ref()?.to_string(),
        Value::SmallInt(v) => v.as_ref()?.to_string(),
        Value::Int(v) => v.as_ref()?.to_string(),
        Value::BigInt(v) => v.as_ref()?.to_string(),
        Value::Float(v) => v.as_ref()?.to_string(),
        Value::Double(v) => v.as_ref()?.to_string(),
        Value::String(v) => v.as_ref()?.clone(),
        Value::Uuid(v) => v.as_ref()?.to_string(),
        Value::ChronoDate(v) => v.as_ref()?.format("%Y-%m-%d").to_string(),
        Value::ChronoDateTimeUtc(v) => v
            .as_ref()?
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Value::Json(v) => v.as_ref()?.to_string(),
        _ => return None,
    })
}

impl crate::bind::Alchemy {
    /// The codec of keyset cursors: keyed by Rocket's `secret_key` when configured (so every
    /// instance of an app accepts the others' cursors), by a random key otherwise.
    pub fn cursor_codec(&self) -> CursorCodec {
        CursorCodec::new(self.cursor_key())
    }
}
