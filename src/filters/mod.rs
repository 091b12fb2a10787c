//! Filters: Advanced Alchemy's filter set, typed by model and checked against its columns.
//!
//! A [`Filter<M>`] belongs to one model. Built from the generated column constants, its
//! columns and values are checked by the compiler; built from strings (query parameters),
//! they are checked against the model's columns when built, so an unknown column is an
//! error before any SQL exists.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use rocket_alchemy::filters::{Filter, SortOrder};
//! use rocket_alchemy::Model;
//!
//! #[derive(Model)]
//! struct Author {
//!     id: uuid::Uuid,
//!     name: String,
//!     created_at: DateTime<Utc>,
//!     updated_at: DateTime<Utc>,
//! }
//!
//! let since: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
//! let filters = vec![
//!     Filter::search([Author::NAME], "le guin", true),
//!     Filter::on_before_after(Author::CREATED_AT, None, Some(since)),
//!     Filter::order_by(Author::NAME, SortOrder::Asc),
//!     Filter::limit_offset(20, 40),
//! ];
//! // From strings, checked against the model:
//! assert!(Filter::<Author>::order_by_name("name", SortOrder::Desc).is_ok());
//! assert!(Filter::<Author>::order_by_name("password", SortOrder::Desc).is_err());
//! # let _ = filters;
//! ```
//!
//! | filter | semantics |
//! |---|---|
//! | `limit_offset` | `LIMIT` / `OFFSET` (ignored by `count`, `exists`, `get_one`, `delete_where`) |
//! | `order_by` | `ORDER BY`, appended in order; the primary key is always the last tiebreaker |
//! | `before_after` | `col < before AND col > after` (exclusive; a `None` side is skipped) |
//! | `on_before_after` | `col <= on_or_before AND col >= on_or_after` (inclusive) |
//! | `collection` | `col IN (...)`; an empty list matches no row; `None` is a no-op |
//! | `not_in_collection` | `col NOT IN (...)`; empty or `None` is a no-op |
//! | `search` | `%value%` in any of the columns (OR), case-insensitive or not; `%`, `_` and `\` in the value are literal |
//! | `not_in_search` | the value in none of the columns (AND) |
//! | `comparison` | `eq`, `ne`, `gt`, `ge`, `lt`, `le`, `in`, `not_in`, `like`, `ilike`, `starts_with`, `ends_with`, `istarts_with`, `iends_with` |
//! | `is_null`, `not_null` | `IS NULL`, `IS NOT NULL` |
//! | `and`, `or` | groups: a member that restricts nothing counts as true (so it makes an `or` restrict nothing); an empty `or` matches nothing |
//!
//! Conditions follow SQL's three-valued logic: a comparison with NULL is unknown, so a row
//! whose column is NULL matches neither `eq` nor `ne`, neither `in` nor `not_in`, and is left
//! out by `not_in_search` on that column.
//!
//! Case-sensitive matching is exact on every backend (SQLite's `LIKE` ignores ASCII case,
//! so `GLOB` is used there; MySQL compares bytes); case-insensitive matching uses `ILIKE` on
//! PostgreSQL and `LOWER(..) LIKE LOWER(..)` elsewhere (SQLite lowers ASCII letters only).

mod column;
mod compile;
mod error;
mod filter;

pub use crate::driver::escape_like;
pub use column::{ColumnRef, LimitOffset, Op, Scalar, SortOrder};
pub(crate) use compile::{compile, Compiled};
pub use error::FilterError;
use error::{check, unknown};
pub use filter::Filter;
pub(crate) use filter::Kind;
