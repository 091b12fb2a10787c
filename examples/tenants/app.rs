//! The `tenants` app: notes of many tenants in one PostgreSQL table, kept apart by
//! row-level security rather than by every query remembering a `WHERE tenant_id = …`.
//!
//! * The table's policy (`migrations/…_notes.up.sql`) lets a transaction see and write only
//!   the rows of `current_setting('app.tenant_id')`; `FORCE ROW LEVEL SECURITY` holds the
//!   table's owner to it too, so the app can own its schema and run its own migrations.
//! * The fairing's [`on_session`](rocket_alchemy::AlchemyFairing::on_session) hook sets that
//!   setting for each request's transaction with `SET LOCAL` (sent with the `BEGIN`): safe
//!   behind PgBouncer in transaction mode, where a session `SET` would leak to the next
//!   client of the server connection.
//! * The handlers use the plain repository: `list`, `get`, `update`, `delete` of another
//!   tenant's row find nothing (404), and a row written for another tenant breaks the
//!   policy's `WITH CHECK` (403).
//!
//! The tenant comes from an `X-Tenant` header here; a real app takes it from its
//! authentication (a session cookie, a verified token) in the same [`Tenant`] guard.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::status::Created;
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, routes, Build, Request, Rocket};
use rocket_alchemy::service::Operation;
use rocket_alchemy::{
    Alchemy, JsonBody, Model, Patch, Repository, RepositoryError, Session, ToChanges, ToModel,
};
use serde::{Deserialize, Serialize};

/// A note. `tenant_id` is the row-level security key.
#[derive(Model, Debug, Clone, Serialize)]
pub struct Note {
    pub id: i64,
    #[model(index)]
    pub tenant_id: i64,
    #[model(max_length = 200)]
    pub body: String,
}

/// The request's tenant, from the `X-Tenant` header: 401 without one, 400 when it is not a
/// number.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub i64);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Tenant {
    type Error = &'static str;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match request.headers().get_one("X-Tenant").map(str::parse) {
            Some(Ok(id)) => Outcome::Success(Tenant(id)),
            Some(Err(_)) => Outcome::Error((Status::BadRequest, "X-Tenant is not a number")),
            None => Outcome::Error((Status::Unauthorized, "X-Tenant is missing")),
        }
    }
}

/// A new note: its text. The tenant is the request's, never the client's say.
#[derive(Debug, Deserialize, ToModel)]
#[input(model = Note)]
pub struct NoteIn {
    /// Set from the request's [`Tenant`], not read from the body.
    #[serde(skip)]
    pub tenant_id: i64,
    pub body: String,
}

/// A change to a note.
#[derive(Debug, Deserialize, ToChanges)]
#[input(model = Note)]
pub struct NotePatch {
    #[serde(default)]
    pub body: Patch<String>,
}

#[get("/notes")]
async fn list(_tenant: Tenant, db: Session<'_>) -> Result<Json<Vec<Note>>, RepositoryError> {
    Ok(Json(Repository::<Note>::on(&db)?.list(&[]).await?))
}

#[get("/notes/<id>")]
async fn get(id: i64, _tenant: Tenant, db: Session<'_>) -> Result<Json<Note>, RepositoryError> {
    Ok(Json(Repository::<Note>::on(&db)?.get(id).await?))
}

#[post("/notes", data = "<input>")]
async fn create(
    tenant: Tenant,
    input: JsonBody<NoteIn>,
    db: Session<'_>,
) -> Result<Created<Json<Note>>, RepositoryError> {
    insert(tenant.0, input.0, &db).await
}

/// Writes a note for the tenant the path names: the policy refuses it (403) unless it is
/// the request's own. Kept to show that the database, not the handler, holds the line.
#[post("/tenants/<owner>/notes", data = "<input>")]
async fn create_for(
    owner: i64,
    _tenant: Tenant,
    input: JsonBody<NoteIn>,
    db: Session<'_>,
) -> Result<Created<Json<Note>>, RepositoryError> {
    insert(owner, input.0, &db).await
}

async fn insert(
    tenant_id: i64,
    input: NoteIn,
    db: &Session<'_>,
) -> Result<Created<Json<Note>>, RepositoryError> {
    let note = NoteIn { tenant_id, ..input }.to_model(Operation::Create)?;
    let note = Repository::<Note>::on(db)?.create(note).await?;
    Ok(Created::new(format!("/notes/{}", note.id)).body(Json(note)))
}

#[patch("/notes/<id>", data = "<input>")]
async fn update(
    id: i64,
    _tenant: Tenant,
    input: JsonBody<NotePatch>,
    db: Session<'_>,
) -> Result<Json<Note>, RepositoryError> {
    let changes = input.0.to_changes()?;
    Ok(Json(
        Repository::<Note>::on(&db)?.update(id, changes).await?,
    ))
}

#[delete("/notes/<id>")]
async fn remove(id: i64, _tenant: Tenant, db: Session<'_>) -> Result<Status, RepositoryError> {
    Repository::<Note>::on(&db)?.delete(id).await?;
    Ok(Status::NoContent)
}

/// The app on any Figment (tests pass their own databases).
pub fn app(figment: rocket::figment::Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(Alchemy::fairing().on_session(|request, session| {
            Box::pin(async move {
                // The guard's outcome is cached: the handler's `Tenant` is the same one.
                let Outcome::Success(Tenant(tenant)) = request.guard::<Tenant>().await else {
                    return Err(Status::Unauthorized);
                };
                session
                    .set_local("app.tenant_id", tenant.to_string())
                    .map_err(|_| Status::InternalServerError)
            })
        }))
        .mount("/", routes![list, get, create, create_for, update, remove])
        .register("/", rocket_alchemy::params::catchers())
}
