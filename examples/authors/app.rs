//! The `authors` app: two binds (`default` with authors and books, `audit` with an audit
//! trail), every author write audited in the audit bind's own request session, commit mode
//! from configuration. Built on the repository, service and list-parameter guard: no SQL.
//! `main.rs` launches it; the integration tests mount the same app.

use chrono::{DateTime, NaiveDate, Utc};
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, routes, Build, Rocket, State};
use rocket_alchemy::filters::SortOrder;
use rocket_alchemy::idempotency::{Idempotency, IdempotencyRecord, Idempotent};
use rocket_alchemy::precondition::{IfMatch, Tagged};
use rocket_alchemy::service::Operation;
use rocket_alchemy::{
    Alchemy, Bind, CommitMode, DbSession, JsonBody, Jsonify, ListParams, ListSpec, Model, ModelExt,
    OffsetPagination, Patch, Repository, RepositoryError, Schema, Service, Session, ToChanges,
    ToModel,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The audit database.
#[derive(Bind)]
#[bind("audit")]
pub struct Audit;

/// An author.
#[derive(Model, Debug, Clone)]
pub struct Author {
    #[model(primary_key = "uuid_v7")]
    pub id: Uuid,
    #[model(max_length = 100, index)]
    pub name: String,
    pub dob: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A book, deleted with its author. `DELETE /books/<id>` only marks it deleted (soft
/// delete): reads skip it until `POST /books/<id>/restore`.
#[derive(Model, Debug, Clone)]
pub struct Book {
    #[model(primary_key = "uuid_v7")]
    pub id: Uuid,
    #[model(max_length = 200)]
    pub title: String,
    #[model(references = Author, on_delete = "cascade")]
    pub author_id: Uuid,
    #[model(soft_delete)]
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One audited write, in the `audit` bind.
#[derive(Model, Debug, Clone)]
#[model(bind = Audit)]
pub struct AuditEntry {
    #[model(primary_key = "auto_increment")]
    pub id: i64,
    #[model(max_length = 10)]
    pub action: String,
    pub entity_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl ListSpec for Author {
    type Model = Author;
    const ORDER_BY: &'static [&'static str] = &["name", "dob", "created_at", "updated_at", "id"];
    const SEARCH: &'static [&'static str] = &["name"];
    const DEFAULT_ORDER: Option<(&'static str, SortOrder)> = Some(("created_at", SortOrder::Asc));
}

impl ListSpec for AuditEntry {
    type Model = AuditEntry;
    const DEFAULT_ORDER: Option<(&'static str, SortOrder)> = Some(("id", SortOrder::Desc));
}

// ---- inputs ------------------------------------------------------------------------------

/// A name as stored: trimmed, not blank (its length is the column's `max_length`, checked by
/// the input derives).
fn name(raw: &str) -> Result<String, RepositoryError> {
    let name = raw.trim();
    match name.is_empty() {
        true => Err(RepositoryError::Validation(
            "`name` must not be empty".into(),
        )),
        false => Ok(name.to_string()),
    }
}

fn new_author(name: String, dob: Option<NaiveDate>) -> Author {
    Author {
        id: Uuid::nil(),
        name,
        dob,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    }
}

/// `POST /authors` and `/authors/batch` items: mapped onto `Author` by field name (checked
/// at compile time), `name` trimmed first, its `max_length` checked; serialized to
/// fingerprint an `Idempotency-Key` request.
#[derive(Deserialize, Serialize, Debug, ToModel)]
#[input(model = Author, check = AuthorCreate::normalize)]
pub struct AuthorCreate {
    pub name: String,
    #[serde(default)]
    pub dob: Option<NaiveDate>,
}

impl AuthorCreate {
    fn normalize(&mut self) -> Result<(), RepositoryError> {
        self.name = name(&self.name)?;
        Ok(())
    }
}

/// `PATCH /authors/<id>`: an absent field is left alone, `"dob": null` clears it, and
/// `"name": null` is a 422 (the column is required) — `Patch` tells the three apart.
#[derive(Deserialize, Debug, Default, ToChanges)]
#[serde(default)]
#[input(model = Author, check = AuthorPatch::normalize)]
pub struct AuthorPatch {
    pub name: Patch<String>,
    pub dob: Patch<NaiveDate>,
}

impl AuthorPatch {
    fn normalize(&mut self) -> Result<(), RepositoryError> {
        if let Patch::Value(raw) = &self.name {
            self.name = Patch::Value(name(raw)?);
        }
        Ok(())
    }
}

/// `POST /authors/form`.
#[derive(FromForm, Debug)]
pub struct AuthorForm<'r> {
    pub name: &'r str,
    pub dob: Option<&'r str>,
}

impl ToModel<Author> for AuthorForm<'_> {
    fn to_model(self, _: Operation) -> Result<Author, RepositoryError> {
        let dob = match self.dob.map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(raw) => Some(NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                RepositoryError::Validation(format!("dob must be YYYY-MM-DD, got `{raw}`"))
            })?),
        };
        let author = new_author(name(self.name)?, dob);
        rocket_alchemy::input::validate(&author)?;
        Ok(author)
    }
}

/// `POST /authors/<id>/books`.
#[derive(Deserialize, Debug)]
pub struct BookCreate {
    pub title: String,
}

struct NewBook(Uuid, BookCreate);

impl ToModel<Book> for NewBook {
    fn to_model(self, _: Operation) -> Result<Book, RepositoryError> {
        let title = self.1.title.trim();
        match title.chars().count() {
            0 => Err(RepositoryError::Validation(
                "title must not be empty".into(),
            )),
            n if n > 200 => Err(RepositoryError::Validation(
                "title must be at most 200 characters".into(),
            )),
            _ => Ok(Book {
                id: Uuid::nil(),
                title: title.to_string(),
                author_id: self.0,
                deleted_at: None,
            }),
        }
    }
}

// ---- outputs -----------------------------------------------------------------------------

/// An author as sent to clients.
#[derive(Serialize, Debug)]
pub struct AuthorOut {
    pub id: Uuid,
    pub name: String,
    pub dob: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Schema for AuthorOut {}

impl From<Author> for AuthorOut {
    fn from(a: Author) -> Self {
        AuthorOut {
            id: a.id,
            name: a.name,
            dob: a.dob,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A book as sent to clients.
#[derive(Serialize, Debug)]
pub struct BookOut {
    pub id: Uuid,
    pub title: String,
    pub author_id: Uuid,
}

impl Schema for BookOut {}

impl From<Book> for BookOut {
    fn from(b: Book) -> Self {
        BookOut {
            id: b.id,
            title: b.title,
            author_id: b.author_id,
        }
    }
}

/// An author with its books.
#[derive(Serialize, Debug)]
pub struct AuthorDetail {
    #[serde(flatten)]
    pub author: AuthorOut,
    pub books: Vec<BookOut>,
}

impl Schema for AuthorDetail {}

/// An audit entry as sent to clients.
#[derive(Serialize, Debug)]
pub struct AuditOut {
    pub id: i64,
    pub action: String,
    pub entity_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl Schema for AuditOut {}

impl From<AuditEntry> for AuditOut {
    fn from(e: AuditEntry) -> Self {
        AuditOut {
            id: e.id,
            action: e.action,
            entity_id: e.entity_id,
            created_at: e.created_at,
        }
    }
}

// ---- handlers ----------------------------------------------------------------------------

type ApiResult<T> = Result<T, RepositoryError>;

/// Records one audit entry in the audit bind's request session.
async fn audit(audit: Session<'_, Audit>, action: &str, entity_id: Uuid) -> ApiResult<()> {
    let entry = AuditEntry {
        id: 0,
        action: action.into(),
        entity_id,
        created_at: DateTime::UNIX_EPOCH,
    };
    Service::<AuditEntry>::new(audit)
        .create(entry)
        .await
        .map(drop)
}

/// This app commits explicitly in manual mode before answering 2xx or redirecting, so manual
/// behaves like `autocommit_include_redirect` here.
async fn commit_if_manual(sessions: &[&DbSession]) -> ApiResult<()> {
    for session in sessions {
        if session.commit_mode() == CommitMode::Manual {
            session.commit().await?;
        }
    }
    Ok(())
}

#[get("/health")]
async fn health(
    alchemy: &State<Alchemy>,
) -> (Status, Json<serde_json::Map<String, serde_json::Value>>) {
    let mut status = Status::Ok;
    let mut body = serde_json::Map::new();
    for (key, result) in alchemy.health().await {
        if result.is_err() {
            status = Status::ServiceUnavailable;
        }
        // Replicas are reported, but one that is down fails nothing: reads go elsewhere.
        let replicas: Vec<serde_json::Value> = alchemy
            .replicas(&key)
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "url": r.url.to_string(),
                    "serving": r.serving,
                    "lag_ms": r.lag.map(|lag| lag.as_millis() as u64),
                })
            })
            .collect();
        if !replicas.is_empty() {
            body.insert(format!("{key}.replicas"), replicas.into());
        }
        body.insert(
            key,
            if result.is_ok() { "ok" } else { "unavailable" }.into(),
        );
    }
    (status, Json(body))
}

#[get("/authors")]
async fn list_authors(
    params: ListParams<Author>,
    db: Session<'_>,
) -> ApiResult<Jsonify<OffsetPagination<AuthorOut>>> {
    let authors = Service::<Author>::new(db);
    let (items, total) = authors.list_and_count(params.filters()).await?;
    Ok(Jsonify::ok(authors.to_schema(
        items,
        total,
        params.filters(),
    )))
}

/// With an `Idempotency-Key` header, a retry gets the first response (201, same body) and
/// creates nothing; the author, its audit entry and the key's record are written once.
#[post("/authors", data = "<input>")]
async fn create_author(
    input: JsonBody<AuthorCreate>,
    key: Idempotency,
    db: Session<'_>,
    log: Session<'_, Audit>,
) -> ApiResult<Idempotent> {
    let response = key
        .run(&db, input.into_inner(), |input| async move {
            let author = Service::<Author>::new(db).create(input).await?;
            audit(log, "create", author.id).await?;
            // Work for after the commit (a welcome email, a cache to invalidate): never runs
            // if the author is rolled back, and the response does not wait for it.
            let id = author.id;
            db.on_commit(async move { rocket::info!("author {id} created") });
            Ok::<_, RepositoryError>(Jsonify::with_status(
                Status::Created,
                AuthorOut::from(author),
            ))
        })
        .await?;
    // After `run`: the key's record and the response it stores commit together.
    commit_if_manual(&[&db, &log]).await?;
    Ok(response)
}

#[post("/authors/form", data = "<form>")]
async fn create_author_form(
    form: Form<AuthorForm<'_>>,
    db: Session<'_>,
    log: Session<'_, Audit>,
) -> ApiResult<Redirect> {
    let author = Service::<Author>::new(db).create(form.into_inner()).await?;
    audit(log, "create", author.id).await?;
    commit_if_manual(&[&db, &log]).await?;
    Ok(Redirect::to(format!("/authors/{}", author.id)))
}

#[post("/authors/batch", data = "<items>")]
async fn create_batch(
    items: JsonBody<Vec<serde_json::Value>>,
    db: Session<'_>,
    log: Session<'_, Audit>,
) -> ApiResult<Jsonify<Vec<AuthorOut>>> {
    let authors = Service::<Author>::new(db);
    let mut created = Vec::new();
    // One by one: a bad item fails the request after earlier items were inserted; the
    // commit mode (or the missing manual commit) rolls those back.
    for (i, item) in items.into_inner().into_iter().enumerate() {
        let input: AuthorCreate = serde_json::from_value(item)
            .map_err(|e| RepositoryError::Validation(format!("item {i}: {e}")))?;
        let author = authors.create(input).await.map_err(|e| e.at_item(i))?;
        audit(log, "create", author.id).await?;
        created.push(AuthorOut::from(author));
    }
    commit_if_manual(&[&db, &log]).await?;
    Ok(Jsonify::with_status(Status::Created, created))
}

/// With an `ETag` (from `updated_at`) that `PATCH` accepts in `If-Match`.
#[get("/authors/<id>")]
async fn get_author(id: Uuid, db: Session<'_>) -> ApiResult<Tagged<Jsonify<AuthorDetail>>> {
    let authors = Repository::<Author>::new(db);
    let author = authors.get(id).await?;
    let books = authors
        .children(std::slice::from_ref(&author), Book::AUTHOR_ID)
        .await?
        .pop()
        .unwrap_or_default();
    Ok(Tagged::new(
        author.etag(),
        Jsonify::ok(AuthorDetail {
            author: author.into(),
            books: books.into_iter().map(Into::into).collect(),
        }),
    ))
}

/// With `If-Match`, only if the author is unchanged since that `ETag` (412 otherwise,
/// nothing written); without it, as before.
#[patch("/authors/<id>", data = "<input>")]
async fn update_author(
    id: Uuid,
    input: JsonBody<AuthorPatch>,
    if_match: IfMatch,
    db: Session<'_>,
    log: Session<'_, Audit>,
) -> ApiResult<Tagged<Jsonify<AuthorOut>>> {
    let changes = input.into_inner().to_changes()?.if_match(if_match);
    let author = Service::<Author>::new(db).update(id, changes).await?;
    audit(log, "update", id).await?;
    commit_if_manual(&[&db, &log]).await?;
    Ok(Tagged::new(author.etag(), Jsonify::ok(author.into())))
}

#[delete("/authors/<id>")]
async fn delete_author(id: Uuid, db: Session<'_>, log: Session<'_, Audit>) -> ApiResult<Status> {
    Service::<Author>::new(db).delete(id).await?;
    audit(log, "delete", id).await?;
    commit_if_manual(&[&db, &log]).await?;
    Ok(Status::NoContent)
}

#[post("/authors/<id>/books", data = "<input>")]
async fn create_book(
    id: Uuid,
    input: JsonBody<BookCreate>,
    db: Session<'_>,
) -> ApiResult<Jsonify<BookOut>> {
    Repository::<Author>::new(db).get(id).await?;
    let book = Service::<Book>::new(db)
        .create(NewBook(id, input.into_inner()))
        .await?;
    commit_if_manual(&[&db]).await?;
    Ok(Jsonify::with_status(Status::Created, book.into()))
}

/// Soft delete: the book stays in the table, marked; its author's page no longer lists it.
#[delete("/books/<id>")]
async fn delete_book(id: Uuid, db: Session<'_>) -> ApiResult<Status> {
    Service::<Book>::new(db).delete(id).await?;
    commit_if_manual(&[&db]).await?;
    Ok(Status::NoContent)
}

/// Brings a soft-deleted book back.
#[post("/books/<id>/restore")]
async fn restore_book(id: Uuid, db: Session<'_>) -> ApiResult<Jsonify<BookOut>> {
    let book = Repository::<Book>::new(db).restore(id).await?;
    commit_if_manual(&[&db]).await?;
    Ok(Jsonify::ok(book.into()))
}

#[get("/audit")]
async fn list_audit(
    params: ListParams<AuditEntry>,
    log: Session<'_, Audit>,
) -> ApiResult<Jsonify<OffsetPagination<AuditOut>>> {
    let entries = Service::<AuditEntry>::new(log);
    let (items, total) = entries.list_and_count(params.filters()).await?;
    Ok(Jsonify::ok(entries.to_schema(
        items,
        total,
        params.filters(),
    )))
}

/// The app on any Figment (tests pass their own databases).
pub fn app(figment: rocket::figment::Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(
            // Author, Book and AuditEntry need no registration (every model of the binary is
            // managed on its bind); the idempotency table is an opt-in model of the library.
            Alchemy::fairing().model::<IdempotencyRecord>(),
        )
        .mount(
            "/",
            routes![
                health,
                list_authors,
                create_author,
                create_author_form,
                create_batch,
                get_author,
                update_author,
                delete_author,
                create_book,
                delete_book,
                restore_book,
                list_audit
            ],
        )
        // Every error Rocket answers itself (bad parameters, malformed bodies, unknown
        // routes) as JSON too.
        .register("/", rocket_alchemy::params::catchers())
}
