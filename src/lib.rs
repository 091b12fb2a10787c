//! # rocket_alchemy
//!
//! Managed database state for [Rocket](https://rocket.rs), the way Advanced Alchemy gives
//! it to Flask: declare databases in `Rocket.toml`, attach one fairing, take a typed
//! request guard in a route, and the transaction is committed or rolled back for you when
//! the response goes out.
//!
//! ```no_run
//! use rocket::serde::json::Json;
//! use rocket_alchemy::{Alchemy, Model, ModelExt, Session, SessionError};
//! use uuid::Uuid;
//!
//! #[derive(Model, Debug, Clone, serde::Serialize)]
//! struct Note {
//!     id: Uuid,
//!     #[model(max_length = 200)]
//!     text: String,
//! }
//!
//! #[rocket::post("/notes", data = "<text>")]
//! async fn create(session: Session<'_>, text: String) -> Result<Json<Note>, SessionError> {
//!     let mut note = Note { id: Uuid::nil(), text };
//!     note.prepare_insert(chrono::Utc::now());
//!     session.execute(&note.insert_statement()).await?;
//!     Ok(Json(note)) // committed after the 200 leaves, with `commit_mode = "autocommit"`
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     // Rocket.toml:
//!     //   [default.databases.default]
//!     //   url = "sqlite://data/notes.db"
//!     //   commit_mode = "autocommit"
//!     //   create_all = true
//!     rocket::build()
//!         .attach(Alchemy::fairing()) // every `#[derive(Model)]` of the binary
//!         .mount("/", rocket::routes![create])
//! }
//! ```
//!
//! * [`DatabaseConfig`]: the `databases.<bind_key>` keys and their defaults.
//! * [`Session`]: the request guard, lazily beginning a transaction per bind.
//! * [`Access`]: readers and writers — SQLite's write queue, PostgreSQL reads without
//!   `BEGIN`, and the [`AsWriter`] / [`AsReader`] guards.
//! * [`CommitMode`]: `manual`, `autocommit`, `autocommit_include_redirect`.
//! * [`AlchemyFairing`]: what happens on ignite, response and shutdown.
//! * [`model`]: `#[derive(Model)]`, column types; [`Alchemy::create_all`] builds their tables.
//! * [`Alchemy`]: every database by key, outside requests.
//! * [`repository`], [`service`], [`filters`], [`pagination`], [`params`]: data access
//!   and its HTTP edges; [`Error`]: one error type, one status mapping.
//! * [`idempotency`]: exactly-once `POST`s with the `Idempotency-Key` header.
//! * [`migrate`], `cli`: migrations and the `database` commands.
//!
//! ## Features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `sqlite` | yes | SQLite binds (`sqlite:` URLs), with the FIFO write queue |
//! | `postgres` | yes | PostgreSQL binds (`postgres://`, `postgresql://`) |
//! | `mysql` | yes | MySQL / MariaDB binds (`mysql://`, `mariadb://`) |
//! | `cli` | yes | the `database` command group (`cli`) and the `rocket-alchemy` binary |
//! | `testing` | no | the test kit (`rocket_alchemy::testing`): your app on per-test databases, statement budget |
//!
//! At least one backend feature is required; each builds alone. The backend of each bind
//! is picked at run time from its URL, and a URL whose backend is disabled stops the launch
//! naming its key.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!(
    "enable at least one of the `sqlite`, `postgres` and `mysql` features of rocket_alchemy"
);

// `#[derive(Model)]` inside the crate names it as `::rocket_alchemy`.
extern crate self as rocket_alchemy;

mod bind;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod ddl;
mod driver;
mod error;
mod fairing;
pub mod filters;
pub mod fixtures;
mod guard;
pub mod idempotency;
pub mod input;
mod launch;
pub mod migrate;
pub mod model;
pub mod pagination;
pub mod params;
pub mod precondition;
pub mod repository;
pub mod service;
mod session;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use crate::bind::{
    Alchemy, Bind, BindHandle, DefaultBind, LaunchError, UnknownBind, DEFAULT_KEY,
};
pub use crate::config::{
    Backend, CommitMode, ConfigError, DatabaseConfig, IsolationLevel, JournalMode, Pooler,
    RedactedUrl, SqliteSettings, Synchronous, TransactionOptions,
};
pub use crate::ddl::{create_table_sql, drop_table_sql, SchemaError};
pub use crate::driver::{BindPool, ReplicaStatus, SessionBackend};
pub use crate::error::{DbErrorKind, Error, ErrorBody, ErrorKind, Result};
pub use crate::fairing::{AlchemyFairing, SessionHook};
pub use crate::guard::{AsReader, AsWriter, OnPrimary, Session};
pub use crate::idempotency::{Idempotency, IdempotencyRecord, Idempotent};
pub use crate::model::{FromAnyRow, Model, ModelExt};
pub use crate::pagination::{Jsonify, OffsetPagination, Schema};
pub use crate::params::{JsonBody, ListParams, ListSpec};
pub use crate::repository::{Changes, Repository, RepositoryError};
pub use crate::service::{Service, ToChanges, ToModel};
pub use crate::session::{
    Access, AnyConnection, DbSession, Retry, Savepoint, SessionConnection, SessionError,
};

/// Renamed [`BindPool`] (it shadowed `sqlx::Pool`).
#[deprecated(since = "0.2.0", note = "renamed to `BindPool`")]
pub type Pool = BindPool;

/// Renamed [`AnyConnection`] (it shadowed `sqlx::Connection`).
#[deprecated(since = "0.2.0", note = "renamed to `AnyConnection`")]
pub type Connection<'s> = AnyConnection<'s>;

pub use crate::input::Patch;
pub use rocket_alchemy_codegen::{Bind, Model, ToChanges, ToModel};

pub use rocket;
pub use sea_query;
pub use sqlx;

#[doc(hidden)]
pub mod __private {
    pub use chrono::{DateTime, Utc};
    pub use inventory;
    pub use uuid::Uuid;
}

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
