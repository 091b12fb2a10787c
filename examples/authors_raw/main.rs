//! `authors_raw`: the `authors` example's benchmarked endpoints written by hand on Rocket
//! 0.5 and sqlx, without rocket_alchemy. It is the baseline `scripts/bench.sh` (through
//! `benches/load.rs`) measures the library against, so it is written the way one would
//! write it for production: bound parameters, one pool per database, no per-request
//! overhead it does not need.
//!
//! ```sh
//! cargo run --release --example authors_raw
//! ```
//!
//! Configuration comes from Rocket's figment, under the same keys the library reads, so
//! `Rocket.toml` and `ROCKET_DATABASES='{default={url="..."},audit={url="..."}}'` work for
//! both apps (keys other than `url` and `pooler` are ignored here). Each URL is `sqlite:...`
//! or `postgres://...`; the two databases need not use the same backend.
//!
//! `pooler = "transaction"` on a PostgreSQL database is how one writes the same endpoints by
//! hand for a transaction-mode pooler such as PgBouncer (the bench's `pgbouncer_raw` pair):
//! no statement cache, every statement unnamed (`persistent(false)`), and every statement in
//! a transaction, since an unnamed statement's parse and execution are two round trips the
//! pooler may send to two server connections outside one.
//!
//! | endpoint | work |
//! |---|---|
//! | `GET /health` | acquire a connection of each pool and ping it; 503 if one fails |
//! | `GET /authors/<id>` | author by primary key, then its books, on one connection, no transaction (one behind a pooler) |
//! | `GET /authors?pageSize=&currentPage=` | `COUNT(*)`, then the page (`ORDER BY created_at, id LIMIT/OFFSET`), on one connection, no transaction (one behind a pooler) |
//! | `POST /authors` | write transaction on `default` (`BEGIN IMMEDIATE` on SQLite): insert the author; insert the audit row in `audit` (autocommit; a transaction behind a pooler); commit `default` |
//! | `POST /authors/batch` | the same with one transaction per database for the whole batch |
//!
//! The author is committed after its audit row, so a failed audit write leaves no
//! unaudited author (a failed final commit can leave an audit row for an author that was
//! not created: an audit trail of attempts errs on the safe side).
//!
//! Tables are created at startup with `CREATE TABLE IF NOT EXISTS`, with the same columns,
//! types, constraints and indexes as the library's `create_all` for the `authors` models.
//! Errors answer `{"status_code": N, "detail": "..."}` like the library; an unreachable or
//! saturated database (pool timeout, SQLite busy after `busy_timeout`) answers 503 with
//! `Retry-After: 1`.

use std::io::Cursor;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket::{catch, catchers, get, post, routes, FromForm, Request, State};
use serde::{Deserialize, Serialize};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::Connection;
use uuid::Uuid;

/// Pool acquire timeout, SQLite busy timeout and health-check timeout.
const TIMEOUT: Duration = Duration::from_secs(5);

// ---- schema ------------------------------------------------------------------------------

/// The `default` database on SQLite: what the library's `create_all` creates.
const SQLITE_DEFAULT_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS author (
    id BLOB NOT NULL,
    name VARCHAR(100) NOT NULL,
    dob DATE NULL,
    created_at DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    updated_at DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    CONSTRAINT pk_author PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_author_name ON author (name);
CREATE TABLE IF NOT EXISTS book (
    id BLOB NOT NULL,
    title VARCHAR(200) NOT NULL,
    author_id BLOB NOT NULL,
    CONSTRAINT pk_book PRIMARY KEY (id),
    FOREIGN KEY (author_id) REFERENCES author (id) ON DELETE CASCADE ON UPDATE NO ACTION
);
CREATE INDEX IF NOT EXISTS ix_book_author_id ON book (author_id);
"#;

/// The `audit` database on SQLite (`id` is an alias of the rowid).
const SQLITE_AUDIT_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS audit_entry (
    id INTEGER NOT NULL,
    action VARCHAR(10) NOT NULL,
    entity_id BLOB NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    CONSTRAINT pk_audit_entry PRIMARY KEY (id)
);
"#;

/// The `default` database on PostgreSQL.
const POSTGRES_DEFAULT_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS author (
    id uuid NOT NULL,
    name varchar(100) NOT NULL,
    dob date NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT pk_author PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_author_name ON author (name);
CREATE TABLE IF NOT EXISTS book (
    id uuid NOT NULL,
    title varchar(200) NOT NULL,
    author_id uuid NOT NULL,
    CONSTRAINT pk_book PRIMARY KEY (id),
    CONSTRAINT fk_book_author_id_author FOREIGN KEY (author_id)
        REFERENCES author (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_book_author_id ON book (author_id);
"#;

/// The `audit` database on PostgreSQL.
const POSTGRES_AUDIT_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS audit_entry (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    action varchar(10) NOT NULL,
    entity_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT pk_audit_entry PRIMARY KEY (id)
);
"#;

// ---- statements (`$n` placeholders work on both backends) --------------------------------

const SELECT_AUTHOR: &str =
    "SELECT id, name, dob, created_at, updated_at FROM author WHERE id = $1";
const SELECT_BOOKS: &str = "SELECT id, title, author_id FROM book WHERE author_id = $1 ORDER BY id";
const COUNT_AUTHORS: &str = "SELECT COUNT(*) FROM author";
const SELECT_PAGE: &str = "SELECT id, name, dob, created_at, updated_at FROM author \
                           ORDER BY created_at ASC, id ASC LIMIT $1 OFFSET $2";
const INSERT_AUTHOR: &str =
    "INSERT INTO author (id, name, dob, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)";
const INSERT_AUDIT: &str =
    "INSERT INTO audit_entry (action, entity_id, created_at) VALUES ($1, $2, $3)";

// ---- databases ---------------------------------------------------------------------------

/// One database's pool.
enum Db {
    /// A `sqlite:` URL.
    Sqlite(SqlitePool),
    /// A `postgres://` or `postgresql://` URL, and whether it goes through a
    /// transaction-mode pooler.
    Postgres(PgPool, Pooled),
}

/// Whether a PostgreSQL database is reached through a transaction-mode pooler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pooled {
    No,
    Yes,
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`; with `$begin`, also binds
/// the statement that opens a write transaction on that backend.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool, _) => $body,
        }
    };
    ($db:expr, $pool:ident, $begin:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => {
                // Take the write lock up front: writers queue on `busy_timeout` instead of
                // failing to upgrade a read transaction.
                let $begin = "BEGIN IMMEDIATE";
                $body
            }
            Db::Postgres($pool, _) => {
                let $begin = "BEGIN";
                $body
            }
        }
    };
}

/// The pool settings of both backends.
fn pool_options<DB: sqlx::Database>(max_connections: u32) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(TIMEOUT)
        // sqlx checks connections when they are returned; a ping on every acquire would add
        // a round trip to each request.
        .test_before_acquire(false)
}

/// Which tables a database holds.
#[derive(Clone, Copy)]
enum Role {
    /// `author` and `book`.
    Default,
    /// `audit_entry`.
    Audit,
}

impl Db {
    /// Opens the pool of `url` and creates the tables of `role`.
    async fn open(
        url: &str,
        pooled: Pooled,
        role: Role,
        max_connections: u32,
    ) -> Result<Db, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(TIMEOUT)
                .foreign_keys(true);
            let pool: SqlitePool = pool_options(max_connections).connect_with(options).await?;
            let schema = match role {
                Role::Default => SQLITE_DEFAULT_SCHEMA,
                Role::Audit => SQLITE_AUDIT_SCHEMA,
            };
            sqlx::raw_sql(schema).execute(&pool).await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url)?;
            if pooled == Pooled::Yes {
                options = options.statement_cache_capacity(0);
            }
            let pool: PgPool = pool_options(max_connections).connect_with(options).await?;
            let schema = match role {
                Role::Default => POSTGRES_DEFAULT_SCHEMA,
                Role::Audit => POSTGRES_AUDIT_SCHEMA,
            };
            sqlx::raw_sql(schema).execute(&pool).await?;
            Ok(Db::Postgres(pool, pooled))
        } else {
            Err(sqlx::Error::Configuration(
                "expected a sqlite: or postgres:// URL".into(),
            ))
        }
    }

    /// Whether statements are prepared once per connection and cached (`false` behind a
    /// transaction-mode pooler: then they are unnamed and run in a transaction).
    fn persistent(&self) -> bool {
        !matches!(self, Db::Postgres(_, Pooled::Yes))
    }

    /// Acquires a connection and pings it, within [`TIMEOUT`].
    async fn ping(&self) -> bool {
        let ping = async { with_pool!(self, pool => pool.acquire().await?.ping().await) };
        matches!(
            rocket::tokio::time::timeout(TIMEOUT, ping).await,
            Ok(Ok(()))
        )
    }

    async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// The two databases, managed state.
struct Dbs {
    default: Db,
    audit: Db,
}

impl Dbs {
    /// Opens `databases.default.url` and `databases.audit.url` of `figment`, with
    /// `workers × 4` connections per pool.
    async fn open(figment: &Figment) -> Result<Dbs, String> {
        let workers: usize = figment
            .extract_inner("workers")
            .map_err(|e| format!("workers: {e}"))?;
        let max_connections = (workers.max(1) * 4) as u32;
        let mut open = Vec::new();
        for (key, role) in [("default", Role::Default), ("audit", Role::Audit)] {
            let url: String = figment
                .extract_inner(&format!("databases.{key}.url"))
                .map_err(|e| format!("databases.{key}.url: {e}"))?;
            let pooler: Option<String> = figment
                .extract_inner(&format!("databases.{key}.pooler"))
                .ok();
            let pooled = match pooler.as_deref() {
                None | Some("none") => Pooled::No,
                Some("transaction") => Pooled::Yes,
                Some(other) => {
                    let expected = "expected \"none\" or \"transaction\"";
                    return Err(format!(
                        "databases.{key}.pooler: {expected}, found {other:?}"
                    ));
                }
            };
            let db = Db::open(&url, pooled, role, max_connections)
                .await
                .map_err(|e| format!("database `{key}`: {e}"))?;
            open.push(db);
        }
        let audit = open.pop().expect("two databases");
        let default = open.pop().expect("two databases");
        Ok(Dbs { default, audit })
    }
}

// ---- errors ------------------------------------------------------------------------------

/// An error answered as `{"status_code": N, "detail": "..."}`.
#[derive(Debug)]
enum ApiError {
    /// 404.
    NotFound,
    /// 400: a bad query parameter.
    BadRequest(String),
    /// 422: input that does not make a valid author.
    Validation(String),
    /// 503 with `Retry-After`: pool timeout, connection failure, SQLite busy.
    Unavailable,
    /// 500.
    Internal,
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        let transient = match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // SQLite's (extended) SQLITE_BUSY and SQLITE_LOCKED.
                Some(code) if code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)) => true,
                // PostgreSQL: connection exceptions, shutdown, cannot connect now.
                Some(code) => code.starts_with("08") || code.starts_with("57P"),
                None => false,
            },
            _ => false,
        };
        // Rocket's own logger, so `ROCKET_LOG_LEVEL` governs it.
        rocket::error!("database error: {error}");
        if transient {
            ApiError::Unavailable
        } else {
            ApiError::Internal
        }
    }
}

/// An error response: `{"status_code": N, "detail": "..."}`, plus `Retry-After: 1` on a
/// 503.
struct JsonError {
    status: Status,
    detail: String,
}

/// The serialized body, fields in the library's order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    status_code: u16,
    detail: &'a str,
}

impl<'r> Responder<'r, 'static> for JsonError {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = serde_json::to_string(&ErrorBody {
            status_code: self.status.code,
            detail: &self.detail,
        })
        .map_err(|_| Status::InternalServerError)?;
        let mut response = Response::build()
            .status(self.status)
            .header(ContentType::JSON)
            .sized_body(body.len(), Cursor::new(body))
            .finalize();
        if self.status == Status::ServiceUnavailable {
            response.set_header(Header::new("Retry-After", "1"));
        }
        Ok(response)
    }
}

impl From<ApiError> for JsonError {
    fn from(error: ApiError) -> Self {
        let (status, detail) = match error {
            ApiError::NotFound => (
                Status::NotFound,
                "The requested resource was not found".into(),
            ),
            ApiError::BadRequest(detail) => (Status::BadRequest, detail),
            ApiError::Validation(detail) => (Status::UnprocessableEntity, detail),
            ApiError::Unavailable => (
                Status::ServiceUnavailable,
                "The database is unavailable".into(),
            ),
            ApiError::Internal => (
                Status::InternalServerError,
                "There was an error during data processing".into(),
            ),
        };
        JsonError { status, detail }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        JsonError::from(self).respond_to(request)
    }
}

/// Every error Rocket answers itself (unknown route, malformed JSON, bad path parameter).
#[catch(default)]
fn json_catcher(status: Status, _: &Request<'_>) -> JsonError {
    JsonError {
        status,
        detail: status.reason_lossy().to_string(),
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ---- payloads ----------------------------------------------------------------------------

/// `POST /authors` and the items of `POST /authors/batch`.
#[derive(Deserialize)]
struct AuthorCreate {
    name: String,
    #[serde(default)]
    dob: Option<NaiveDate>,
}

/// An author as stored and as sent to clients.
#[derive(Serialize)]
struct Author {
    id: Uuid,
    name: String,
    dob: Option<NaiveDate>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

type AuthorRow = (
    Uuid,
    String,
    Option<NaiveDate>,
    DateTime<Utc>,
    DateTime<Utc>,
);

impl From<AuthorRow> for Author {
    fn from((id, name, dob, created_at, updated_at): AuthorRow) -> Self {
        Author {
            id,
            name,
            dob,
            created_at,
            updated_at,
        }
    }
}

impl AuthorCreate {
    /// Validates the input into a new author: id v7, both timestamps now (microseconds,
    /// what every backend stores, so the response equals what a later read returns).
    fn into_author(self, now: DateTime<Utc>) -> ApiResult<Author> {
        let name = self.name.trim();
        match name.chars().count() {
            0 => Err(ApiError::Validation("name must not be empty".into())),
            n if n > 100 => Err(ApiError::Validation(
                "name must be at most 100 characters".into(),
            )),
            _ => Ok(Author {
                id: Uuid::now_v7(),
                name: name.to_string(),
                dob: self.dob,
                created_at: now,
                updated_at: now,
            }),
        }
    }
}

/// A book.
#[derive(Serialize)]
struct Book {
    id: Uuid,
    title: String,
    author_id: Uuid,
}

/// An author with its books.
#[derive(Serialize)]
struct AuthorDetail {
    #[serde(flatten)]
    author: Author,
    books: Vec<Book>,
}

/// A page: the library's `OffsetPagination` shape.
#[derive(Serialize)]
struct Page {
    items: Vec<Author>,
    limit: u64,
    offset: u64,
    total: u64,
}

/// `?pageSize=&currentPage=` (other parameters are ignored).
#[derive(FromForm)]
struct PageParams<'r> {
    #[field(name = "pageSize")]
    page_size: Option<&'r str>,
    #[field(name = "currentPage")]
    current_page: Option<&'r str>,
}

impl PageParams<'_> {
    const DEFAULT_PAGE_SIZE: u64 = 10;
    const MAX_PAGE_SIZE: u64 = 100;

    /// `(limit, offset)`, with the library's messages for bad values.
    fn limit_offset(&self) -> ApiResult<(u64, u64)> {
        let integer = |name: &str, raw: Option<&str>, default: u64| match raw {
            None => Ok(default),
            Some(text) => text.parse::<u64>().map_err(|_| {
                ApiError::BadRequest(format!("{name} must be a positive integer, got `{text}`"))
            }),
        };
        let page = integer("currentPage", self.current_page, 1)?;
        if page == 0 {
            return Err(ApiError::BadRequest(
                "currentPage must be at least 1".into(),
            ));
        }
        let size = integer("pageSize", self.page_size, Self::DEFAULT_PAGE_SIZE)?;
        if !(1..=Self::MAX_PAGE_SIZE).contains(&size) {
            return Err(ApiError::BadRequest(format!(
                "pageSize must be between 1 and {}, got {size}",
                Self::MAX_PAGE_SIZE
            )));
        }
        let offset = (page - 1)
            .checked_mul(size)
            .filter(|o| *o <= i64::MAX as u64)
            .ok_or_else(|| ApiError::BadRequest("currentPage is too large".into()))?;
        Ok((size, offset))
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

// ---- handlers ----------------------------------------------------------------------------

#[get("/health")]
async fn health(dbs: &State<Dbs>) -> (Status, Json<serde_json::Map<String, serde_json::Value>>) {
    let mut status = Status::Ok;
    let mut body = serde_json::Map::new();
    for (key, db) in [("default", &dbs.default), ("audit", &dbs.audit)] {
        let ok = db.ping().await;
        if !ok {
            status = Status::ServiceUnavailable;
        }
        body.insert(key.into(), if ok { "ok" } else { "unavailable" }.into());
    }
    (status, Json(body))
}

#[get("/authors/<id>")]
async fn get_author(id: Uuid, dbs: &State<Dbs>) -> ApiResult<Json<AuthorDetail>> {
    let persistent = dbs.default.persistent();
    with_pool!(&dbs.default, pool => {
        let (mut conn, mut tx) = (None, None);
        let c = match persistent {
            true => &mut **conn.insert(pool.acquire().await?),
            false => &mut **tx.insert(pool.begin().await?),
        };
        let author: AuthorRow = sqlx::query_as(SELECT_AUTHOR)
            .bind(id)
            .persistent(persistent)
            .fetch_optional(&mut *c)
            .await?
            .ok_or(ApiError::NotFound)?;
        let books: Vec<(Uuid, String, Uuid)> = sqlx::query_as(SELECT_BOOKS)
            .bind(id)
            .persistent(persistent)
            .fetch_all(&mut *c)
            .await?;
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        Ok(Json(AuthorDetail {
            author: author.into(),
            books: books
                .into_iter()
                .map(|(id, title, author_id)| Book { id, title, author_id })
                .collect(),
        }))
    })
}

#[get("/authors?<params..>")]
async fn list_authors(params: PageParams<'_>, dbs: &State<Dbs>) -> ApiResult<Json<Page>> {
    let (limit, offset) = params.limit_offset()?;
    let persistent = dbs.default.persistent();
    with_pool!(&dbs.default, pool => {
        let (mut conn, mut tx) = (None, None);
        let c = match persistent {
            true => &mut **conn.insert(pool.acquire().await?),
            false => &mut **tx.insert(pool.begin().await?),
        };
        let (total,): (i64,) = sqlx::query_as(COUNT_AUTHORS)
            .persistent(persistent)
            .fetch_one(&mut *c)
            .await?;
        let rows: Vec<AuthorRow> = sqlx::query_as(SELECT_PAGE)
            .bind(limit as i64)
            .bind(offset as i64)
            .persistent(persistent)
            .fetch_all(&mut *c)
            .await?;
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        Ok(Json(Page {
            items: rows.into_iter().map(Author::from).collect(),
            limit,
            offset,
            total: total as u64,
        }))
    })
}

/// Inserts `authors` in one `default` transaction and their `create` audit rows in `audit`
/// (one transaction when there are several), committing the authors last.
async fn insert_audited(dbs: &Dbs, authors: &[Author]) -> ApiResult<()> {
    let (persistent, audit_persistent) = (dbs.default.persistent(), dbs.audit.persistent());
    with_pool!(&dbs.default, pool, begin => {
        let mut tx = pool.begin_with(begin).await?;
        for a in authors {
            sqlx::query(INSERT_AUTHOR)
                .bind(a.id)
                .bind(&a.name)
                .bind(a.dob)
                .bind(a.created_at)
                .bind(a.updated_at)
                .persistent(persistent)
                .execute(&mut *tx)
                .await?;
        }
        with_pool!(&dbs.audit, audit, begin => {
            if let ([a], true) = (authors, audit_persistent) {
                sqlx::query(INSERT_AUDIT)
                    .bind("create")
                    .bind(a.id)
                    .bind(a.created_at)
                    .execute(audit)
                    .await?;
            } else {
                let mut log = audit.begin_with(begin).await?;
                for a in authors {
                    sqlx::query(INSERT_AUDIT)
                        .bind("create")
                        .bind(a.id)
                        .bind(a.created_at)
                        .persistent(audit_persistent)
                        .execute(&mut *log)
                        .await?;
                }
                log.commit().await?;
            }
        });
        tx.commit().await?;
    });
    Ok(())
}

#[post("/authors", data = "<input>")]
async fn create_author(
    input: Json<AuthorCreate>,
    dbs: &State<Dbs>,
) -> ApiResult<(Status, Json<Author>)> {
    let author = input.into_inner().into_author(now())?;
    insert_audited(dbs, std::slice::from_ref(&author)).await?;
    Ok((Status::Created, Json(author)))
}

#[post("/authors/batch", data = "<items>")]
async fn create_batch(
    items: Json<Vec<serde_json::Value>>,
    dbs: &State<Dbs>,
) -> ApiResult<(Status, Json<Vec<Author>>)> {
    // Validate everything before touching the databases.
    let now = now();
    let authors = items
        .into_inner()
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value::<AuthorCreate>(item)
                .map_err(|e| ApiError::Validation(format!("item {i}: {e}")))?
                .into_author(now)
                .map_err(|e| match e {
                    ApiError::Validation(m) => ApiError::Validation(format!("item {i}: {m}")),
                    other => other,
                })
        })
        .collect::<ApiResult<Vec<Author>>>()?;
    if !authors.is_empty() {
        insert_audited(dbs, &authors).await?;
    }
    Ok((Status::Created, Json(authors)))
}

// ---- launch ------------------------------------------------------------------------------

#[rocket::main]
async fn main() -> ExitCode {
    let rocket = rocket::build();
    let dbs = match Dbs::open(rocket.figment()).await {
        Ok(dbs) => dbs,
        Err(e) => {
            eprintln!("authors_raw: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rocket = rocket
        .manage(dbs)
        .mount(
            "/",
            routes![
                health,
                get_author,
                list_authors,
                create_author,
                create_batch
            ],
        )
        .register("/", catchers![json_catcher]);
    match rocket.launch().await {
        Ok(rocket) => {
            if let Some(dbs) = rocket.state::<Dbs>() {
                dbs.default.close().await;
                dbs.audit.close().await;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("authors_raw: {e}");
            ExitCode::FAILURE
        }
    }
}
