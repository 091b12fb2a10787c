//! The `authors` app: two binds (`default` with authors and books, `audit` with an audit
//! trail), every write audited in the audit bind's own request session, commit mode from
//! configuration. `main.rs` launches it; the integration tests mount the same app.

use chrono::{DateTime, NaiveDate, Utc};
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::{Redirect, Responder};
use rocket::serde::json::Json;
use rocket::{catch, catchers, delete, get, patch, post, routes, Build, Request, Rocket, State};
use rocket_alchemy::sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Order, Query, SimpleExpr};
use rocket_alchemy::{
    Alchemy, Backend, Bind, CommitMode, DbSession, ErrorBody, Model, ModelExt, Session,
    SessionError,
};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// The audit database.
#[derive(Bind)]
#[bind("audit")]
pub struct Audit;

/// An author.
#[derive(Model, Serialize, Debug, Clone)]
pub struct Author {
    #[model(primary_key = "uuid_v7")]
    pub id: Uuid,
    #[model(max_length = 100, index)]
    pub name: String,
    pub dob: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A book, deleted with its author.
#[derive(Model, Serialize, Debug, Clone)]
pub struct Book {
    #[model(primary_key = "uuid_v7")]
    pub id: Uuid,
    #[model(max_length = 200)]
    pub title: String,
    #[model(references = Author, on_delete = "cascade")]
    pub author_id: Uuid,
}

/// One audited write, in the `audit` bind.
#[derive(Model, Serialize, Debug, Clone)]
#[model(bind = Audit)]
pub struct AuditEntry {
    #[model(primary_key = "auto_increment")]
    pub id: i64,
    #[model(max_length = 10)]
    pub action: String,
    pub entity_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// The app's errors, answered as JSON `{"status_code", "detail"}`.
#[derive(Debug)]
pub enum ApiError {
    /// 422: the request is well-formed but its content is not acceptable.
    Invalid(String),
    /// 400: a query parameter is malformed.
    BadParam(String),
    /// 404.
    NotFound,
    /// A database failure, answered with its own status.
    Db(SessionError),
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        ApiError::Db(e)
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> rocket::response::Result<'static> {
        match self {
            ApiError::Invalid(detail) => {
                ErrorBody::new(Status::UnprocessableEntity, detail).respond_to(request)
            }
            ApiError::BadParam(detail) => {
                ErrorBody::new(Status::BadRequest, detail).respond_to(request)
            }
            ApiError::NotFound => {
                ErrorBody::new(Status::NotFound, "The requested resource was not found")
                    .respond_to(request)
            }
            ApiError::Db(e) => e.respond_to(request),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn validate_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    match name.chars().count() {
        0 => Err(ApiError::Invalid("name must not be empty".into())),
        n if n > 100 => Err(ApiError::Invalid(
            "name must be at most 100 characters".into(),
        )),
        _ => Ok(name.to_string()),
    }
}

fn validate_title(title: &str) -> ApiResult<String> {
    let title = title.trim();
    match title.chars().count() {
        0 => Err(ApiError::Invalid("title must not be empty".into())),
        n if n > 200 => Err(ApiError::Invalid(
            "title must be at most 200 characters".into(),
        )),
        _ => Ok(title.to_string()),
    }
}

/// `POST /authors` body.
#[derive(Deserialize, Debug)]
pub struct AuthorCreate {
    pub name: String,
    #[serde(default)]
    pub dob: Option<NaiveDate>,
}

/// `PATCH /authors/<id>` body: absent fields are left alone, `"dob": null` clears it.
#[derive(Deserialize, Debug, Default)]
pub struct AuthorPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub dob: Option<Option<NaiveDate>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<NaiveDate>>, D::Error> {
    Option::<NaiveDate>::deserialize(d).map(Some)
}

/// `POST /authors/<id>/books` body.
#[derive(Deserialize, Debug)]
pub struct BookCreate {
    pub title: String,
}

/// `POST /authors/form` body.
#[derive(FromForm, Debug)]
pub struct AuthorForm<'r> {
    pub name: &'r str,
    pub dob: Option<&'r str>,
}

/// An author with its books.
#[derive(Serialize)]
pub struct AuthorDetail {
    #[serde(flatten)]
    pub author: Author,
    pub books: Vec<Book>,
}

/// A page of results, as Advanced Alchemy's `OffsetPagination`.
#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub limit: u64,
    pub offset: u64,
    pub total: i64,
}

/// `currentPage`, `pageSize`, `orderBy`, `sortOrder`, `searchString`, `searchIgnoreCase`.
pub struct ListParams {
    pub page: u64,
    pub page_size: u64,
    pub order_by: &'static str,
    pub descending: bool,
    pub search: Option<String>,
    pub ignore_case: bool,
}

const ORDERABLE: &[&str] = &["name", "dob", "created_at", "updated_at", "id"];

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ListParams {
    type Error = String;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, String> {
        fn get<'a>(request: &'a Request<'_>, name: &str) -> Option<&'a str> {
            request.query_value::<&str>(name).and_then(Result::ok)
        }
        let bad = |message: String| Outcome::Error((Status::BadRequest, message));
        let int = |name: &str, default: u64| -> Result<u64, String> {
            match get(request, name) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u64>()
                    .map_err(|_| format!("{name} must be a positive integer, got `{raw}`")),
            }
        };
        let page = match int("currentPage", 1) {
            Ok(0) => return bad("currentPage must be at least 1".into()),
            Ok(p) => p,
            Err(e) => return bad(e),
        };
        let page_size = match int("pageSize", 10) {
            Ok(n @ 1..=100) => n,
            Ok(n) => return bad(format!("pageSize must be between 1 and 100, got {n}")),
            Err(e) => return bad(e),
        };
        let order_by = match get(request, "orderBy") {
            None => "created_at",
            Some(raw) => match ORDERABLE.iter().find(|c| **c == raw) {
                Some(column) => column,
                None => {
                    return bad(format!(
                        "orderBy must be one of {}, got `{raw}`",
                        ORDERABLE.join(", ")
                    ))
                }
            },
        };
        let descending = match get(request, "sortOrder") {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(raw) => return bad(format!("sortOrder must be asc or desc, got `{raw}`")),
        };
        let ignore_case = match get(request, "searchIgnoreCase") {
            None | Some("false") => false,
            Some("true") => true,
            Some(raw) => {
                return bad(format!(
                    "searchIgnoreCase must be true or false, got `{raw}`"
                ))
            }
        };
        let search = get(request, "searchString")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Outcome::Success(ListParams {
            page,
            page_size,
            order_by,
            descending,
            search,
            ignore_case,
        })
    }
}

impl ListParams {
    fn offset(&self) -> u64 {
        (self.page - 1) * self.page_size
    }
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `name` contains `text`, case-sensitively or not, the same on every backend.
fn name_contains(backend: Backend, text: &str, ignore_case: bool) -> SimpleExpr {
    let pattern = format!("%{}%", escape_like(text));
    match (backend, ignore_case) {
        // (sea-query renders ILIKE's ESCAPE inside parentheses, which PostgreSQL rejects; custom
        // expressions use the backend's placeholders: `$N` here.)
        (Backend::Postgres, true) => Expr::cust_with_exprs(
            "$1 ILIKE $2 ESCAPE '\\'",
            [Expr::col("name"), Expr::val(pattern)],
        ),
        (_, true) => {
            Func::lower(Expr::col("name")).like(LikeExpr::new(pattern.to_lowercase()).escape('\\'))
        }
        // SQLite's LIKE ignores ASCII case: compare exactly instead.
        (Backend::Sqlite, false) => {
            Expr::cust_with_exprs("instr(?, ?) > 0", [Expr::col("name"), Expr::val(text)])
        }
        // A binary operand makes MySQL's LIKE compare bytes, whatever the collation.
        (Backend::MySql, false) => Expr::cust_with_exprs("CAST(? AS BINARY)", [Expr::col("name")])
            .like(LikeExpr::new(pattern).escape('\\')),
        (Backend::Postgres, false) => Expr::col("name").like(LikeExpr::new(pattern).escape('\\')),
    }
}

/// Commits both sessions when the bind is in manual mode (this app's handlers commit before
/// answering 2xx or redirecting, so manual behaves like `autocommit_include_redirect`).
async fn commit_if_manual(main: &DbSession, audit: &DbSession) -> Result<(), SessionError> {
    if main.commit_mode() == CommitMode::Manual {
        main.commit().await?;
    }
    if audit.commit_mode() == CommitMode::Manual {
        audit.commit().await?;
    }
    Ok(())
}

async fn record(audit: &DbSession, action: &str, entity_id: Uuid) -> Result<(), SessionError> {
    let mut entry = AuditEntry {
        id: 0,
        action: action.into(),
        entity_id,
        created_at: DateTime::UNIX_EPOCH,
    };
    entry.prepare_insert(rocket_alchemy::model::now());
    audit.execute(&entry.insert_statement()).await.map(drop)
}

async fn find_author(main: &DbSession, id: Uuid) -> ApiResult<Author> {
    let select = Author::select_statement()
        .and_where(Expr::col(("author", "id")).eq(id))
        .to_owned();
    main.fetch_optional(&select)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn insert_author(
    main: &DbSession,
    audit: &DbSession,
    name: String,
    dob: Option<NaiveDate>,
) -> ApiResult<Author> {
    let mut author = Author {
        id: Uuid::nil(),
        name,
        dob,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    };
    author.prepare_insert(rocket_alchemy::model::now());
    main.execute(&author.insert_statement()).await?;
    record(audit, "create", author.id).await?;
    Ok(author)
}

#[get("/health")]
async fn health(
    alchemy: &State<Alchemy>,
) -> (Status, Json<serde_json::Map<String, serde_json::Value>>) {
    let mut body = serde_json::Map::new();
    let mut status = Status::Ok;
    for (key, result) in alchemy.health().await {
        let value = match result {
            Ok(()) => "ok",
            Err(_) => {
                status = Status::ServiceUnavailable;
                "unavailable"
            }
        };
        body.insert(key, value.into());
    }
    (status, Json(body))
}

#[get("/authors")]
async fn list_authors(
    params: Result<ListParams, String>,
    main: Session<'_>,
) -> ApiResult<Json<Page<Author>>> {
    let params = params.map_err(ApiError::BadParam)?;
    let mut select = Author::select_statement();
    let mut count = Query::select()
        .expr(Func::count(Expr::col(Alias::new("id"))))
        .from("author")
        .to_owned();
    if let Some(text) = &params.search {
        let condition = name_contains(main.backend(), text, params.ignore_case);
        select.and_where(condition.clone());
        count.and_where(condition);
    }
    let order = if params.descending {
        Order::Desc
    } else {
        Order::Asc
    };
    select
        .order_by(("author", params.order_by), order.clone())
        .order_by(("author", "id"), order)
        .limit(params.page_size)
        .offset(params.offset());
    let items: Vec<Author> = main.fetch_all(&select).await?;
    let (total,): (i64,) = main.fetch_one(&count).await?;
    Ok(Json(Page {
        items,
        limit: params.page_size,
        offset: params.offset(),
        total,
    }))
}

#[post("/authors", data = "<body>")]
async fn create_author(
    body: Json<AuthorCreate>,
    main: Session<'_>,
    audit: Session<'_, Audit>,
) -> ApiResult<(Status, Json<Author>)> {
    let name = validate_name(&body.name)?;
    let author = insert_author(&main, &audit, name, body.dob).await?;
    commit_if_manual(&main, &audit).await?;
    Ok((Status::Created, Json(author)))
}

#[post("/authors/form", data = "<form>", rank = 1)]
async fn create_author_form(
    form: Form<AuthorForm<'_>>,
    main: Session<'_>,
    audit: Session<'_, Audit>,
) -> ApiResult<Redirect> {
    let name = validate_name(form.name)?;
    let dob = match form.dob.map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(raw) => Some(
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map_err(|_| ApiError::Invalid(format!("dob must be YYYY-MM-DD, got `{raw}`")))?,
        ),
    };
    let author = insert_author(&main, &audit, name, dob).await?;
    commit_if_manual(&main, &audit).await?;
    Ok(Redirect::to(format!("/authors/{}", author.id)))
}

#[post("/authors/batch", data = "<body>", rank = 1)]
async fn create_batch(
    body: Json<Vec<serde_json::Value>>,
    main: Session<'_>,
    audit: Session<'_, Audit>,
) -> ApiResult<(Status, Json<Vec<Author>>)> {
    let mut created = Vec::with_capacity(body.len());
    // One by one: a bad item fails the request after earlier items were inserted; the
    // commit mode (or the missing manual commit) rolls those back.
    for (i, item) in body.into_inner().into_iter().enumerate() {
        let input: AuthorCreate = serde_json::from_value(item)
            .map_err(|e| ApiError::Invalid(format!("item {i}: {e}")))?;
        let name = validate_name(&input.name).map_err(|e| match e {
            ApiError::Invalid(m) => ApiError::Invalid(format!("item {i}: {m}")),
            other => other,
        })?;
        created.push(insert_author(&main, &audit, name, input.dob).await?);
    }
    commit_if_manual(&main, &audit).await?;
    Ok((Status::Created, Json(created)))
}

#[get("/authors/<id>")]
async fn get_author(id: Uuid, main: Session<'_>) -> ApiResult<Json<AuthorDetail>> {
    let author = find_author(&main, id).await?;
    let books = Book::select_statement()
        .and_where(Expr::col(("book", "author_id")).eq(id))
        .order_by(("book", "id"), Order::Asc)
        .to_owned();
    let books = main.fetch_all(&books).await?;
    Ok(Json(AuthorDetail { author, books }))
}

#[patch("/authors/<id>", data = "<body>")]
async fn update_author(
    id: Uuid,
    body: Json<AuthorPatch>,
    main: Session<'_>,
    audit: Session<'_, Audit>,
) -> ApiResult<Json<Author>> {
    let patch = body.into_inner();
    let name = patch.name.as_deref().map(validate_name).transpose()?;
    let mut author = find_author(&main, id).await?;
    if let Some(name) = name {
        author.name = name;
    }
    if let Some(dob) = patch.dob {
        author.dob = dob;
    }
    author.touch(rocket_alchemy::model::now());
    let update = Query::update()
        .table("author")
        .value("name", author.name.clone())
        .value("dob", author.dob)
        .value("updated_at", author.updated_at)
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    main.execute(&update).await?;
    record(&audit, "update", id).await?;
    commit_if_manual(&main, &audit).await?;
    Ok(Json(author))
}

#[delete("/authors/<id>")]
async fn delete_author(
    id: Uuid,
    main: Session<'_>,
    audit: Session<'_, Audit>,
) -> ApiResult<Status> {
    let delete = Query::delete()
        .from_table("author")
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    if main.execute(&delete).await? == 0 {
        return Err(ApiError::NotFound);
    }
    record(&audit, "delete", id).await?;
    commit_if_manual(&main, &audit).await?;
    Ok(Status::NoContent)
}

#[post("/authors/<id>/books", data = "<body>")]
async fn create_book(
    id: Uuid,
    body: Json<BookCreate>,
    main: Session<'_>,
    audit: Session<'_, Audit>,
) -> ApiResult<(Status, Json<Book>)> {
    let title = validate_title(&body.title)?;
    find_author(&main, id).await?;
    let mut book = Book {
        id: Uuid::nil(),
        title,
        author_id: id,
    };
    book.prepare_insert(rocket_alchemy::model::now());
    main.execute(&book.insert_statement()).await?;
    commit_if_manual(&main, &audit).await?;
    Ok((Status::Created, Json(book)))
}

#[get("/audit")]
async fn list_audit(
    params: Result<ListParams, String>,
    audit: Session<'_, Audit>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let params = params.map_err(ApiError::BadParam)?;
    let select = AuditEntry::select_statement()
        .order_by(("audit_entry", "id"), Order::Desc)
        .limit(params.page_size)
        .offset(params.offset())
        .to_owned();
    let items = audit.fetch_all(&select).await?;
    let count = Query::select()
        .expr(Func::count(Expr::col(Alias::new("id"))))
        .from("audit_entry")
        .to_owned();
    let (total,): (i64,) = audit.fetch_one(&count).await?;
    Ok(Json(Page {
        items,
        limit: params.page_size,
        offset: params.offset(),
        total,
    }))
}

/// Every error Rocket answers itself (unknown routes, malformed bodies, non-UUID paths)
/// as JSON too.
#[catch(default)]
fn json_error(status: Status, _request: &Request<'_>) -> ErrorBody {
    ErrorBody::new(status, status.reason_lossy())
}

/// The app on any Figment (tests pass their own databases).
pub fn app(figment: rocket::figment::Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(
            Alchemy::fairing()
                .model::<Author>()
                .model::<Book>()
                .model::<AuditEntry>(),
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
                list_audit
            ],
        )
        .register("/", catchers![json_error])
}
