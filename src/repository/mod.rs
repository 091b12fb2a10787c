//! The repository: Advanced Alchemy's persistence methods for one model, on any backend.
//!
//! A [`Repository`] works on a session — the request's [`Session`](crate::Session) guard or one from
//! [`Alchemy::session`](crate::Alchemy::session) — so its writes belong to that session's
//! transaction and the bind's commit mode decides their fate (unless
//! [`Repository::auto_commit`] is set). SQL is built with sea-query, values are always
//! bound, and sqlx prepares and caches each statement per connection.
//!
//! ```
//! use rocket_alchemy::filters::{Filter, SortOrder};
//! use rocket_alchemy::{Model, Repository, RepositoryError, Session};
//!
//! #[derive(Model, Clone, Debug)]
//! struct Tag {
//!     id: i64,
//!     #[model(max_length = 40, unique)]
//!     label: String,
//! }
//!
//! #[rocket::post("/tags/<label>")]
//! async fn create(label: &str, db: Session<'_>) -> Result<String, RepositoryError> {
//!     let tags = Repository::<Tag>::new(db);
//!     let tag = tags.create(Tag { id: 0, label: label.into() }).await?; // 409 if it exists
//!     let (page, total) = tags
//!         .list_and_count(&[Filter::order_by(Tag::LABEL, SortOrder::Asc), Filter::limit_offset(10, 0)])
//!         .await?;
//!     Ok(format!("{} of {total}, new id {}", page.len(), tag.id))
//! }
//! ```

mod changes;
mod error;
mod handle;
mod read;
mod upsert;
mod write;

pub use changes::Changes;
pub use error::RepositoryError;
pub use handle::Repository;
pub(crate) use write::check_length;
