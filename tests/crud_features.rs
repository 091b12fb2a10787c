//! What every CRUD app writes by hand, on every backend: typed inputs with true PATCH
//! semantics, optimistic locking with ETags and If-Match, and soft delete. Checked through
//! an independent connection (the probe) and the kit's statement count.

mod common;

use chrono::{DateTime, Utc};
use common::Probe;
use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, routes, Build, Rocket};
use rocket_alchemy::filters::{Filter, SortOrder};
use rocket_alchemy::precondition::{IfMatch, Tagged};
use rocket_alchemy::testing::{TestApp, TestKit};
use rocket_alchemy::{
    Alchemy, Changes, Jsonify, Model, ModelExt, Patch, Repository, RepositoryError, Schema,
    Service, Session, ToChanges, ToModel,
};
use serde_json::{json, Value};

/// A document with optimistic locking.
#[derive(Model, Debug, Clone, serde::Serialize)]
struct Doc {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(max_length = 20)]
    title: String,
    body: Option<String>,
    #[model(version)]
    version: i64,
    updated_at: DateTime<Utc>,
}
impl Schema for Doc {}

#[derive(serde::Deserialize, ToModel)]
#[input(model = Doc)]
struct DocCreate {
    title: String,
    #[serde(default)]
    body: Option<String>,
}

#[derive(serde::Deserialize, Default, ToChanges)]
#[serde(default)]
#[input(model = Doc)]
struct DocPatch {
    title: Patch<String>,
    body: Patch<String>,
}

/// A note, soft-deleted, with soft-deleted tags.
#[derive(Model, Debug, Clone, serde::Serialize)]
struct Note {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(max_length = 50)]
    text: String,
    #[model(soft_delete)]
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(Model, Debug, Clone, serde::Serialize)]
struct Tag {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(references = Note)]
    note_id: i64,
    #[model(max_length = 20)]
    label: String,
    #[model(soft_delete)]
    deleted_at: Option<DateTime<Utc>>,
}

#[post("/docs", data = "<input>")]
async fn create_doc(
    input: Json<DocCreate>,
    db: Session<'_>,
) -> Result<Tagged<Jsonify<Doc>>, RepositoryError> {
    let doc = Service::<Doc>::new(db).create(input.into_inner()).await?;
    Ok(Tagged::new(
        doc.etag(),
        Jsonify::with_status(Status::Created, doc),
    ))
}

#[get("/docs/<id>")]
async fn get_doc(id: i64, db: Session<'_>) -> Result<Tagged<Jsonify<Doc>>, RepositoryError> {
    let doc = Repository::<Doc>::new(db).get(id).await?;
    Ok(Tagged::new(doc.etag(), Jsonify::ok(doc)))
}

#[patch("/docs/<id>", data = "<input>")]
async fn patch_doc(
    id: i64,
    input: Json<DocPatch>,
    if_match: IfMatch,
    db: Session<'_>,
) -> Result<Tagged<Jsonify<Doc>>, RepositoryError> {
    let changes = input.into_inner().to_changes()?.if_match(if_match);
    let doc = Service::<Doc>::new(db).update(id, changes).await?;
    Ok(Tagged::new(doc.etag(), Jsonify::ok(doc)))
}

#[post("/notes/<text>")]
async fn create_note(text: &str, db: Session<'_>) -> Result<String, RepositoryError> {
    let note = Repository::<Note>::new(db)
        .create(Note {
            id: 0,
            text: text.into(),
            deleted_at: None,
        })
        .await?;
    Ok(note.id.to_string())
}

#[post("/notes/<id>/tags/<label>")]
async fn create_tag(id: i64, label: &str, db: Session<'_>) -> Result<String, RepositoryError> {
    let tag = Repository::<Tag>::new(db)
        .create(Tag {
            id: 0,
            note_id: id,
            label: label.into(),
            deleted_at: None,
        })
        .await?;
    Ok(tag.id.to_string())
}

#[delete("/tags/<id>")]
async fn delete_tag(id: i64, db: Session<'_>) -> Result<Status, RepositoryError> {
    Repository::<Tag>::new(db).delete(id).await?;
    Ok(Status::NoContent)
}

#[get("/notes/<id>")]
async fn get_note(id: i64, db: Session<'_>) -> Result<Json<Value>, RepositoryError> {
    let notes = Repository::<Note>::new(db);
    let note = notes.get(id).await?;
    let tags = notes
        .children(std::slice::from_ref(&note), Tag::NOTE_ID)
        .await?;
    let labels: Vec<String> = tags[0].iter().map(|t| t.label.clone()).collect();
    Ok(Json(json!({ "text": note.text, "tags": labels })))
}

/// `?deleted=true` lists soft-deleted notes too.
#[get("/notes?<deleted>")]
async fn list_notes(
    deleted: Option<bool>,
    db: Session<'_>,
) -> Result<Json<Value>, RepositoryError> {
    let mut notes = Repository::<Note>::new(db);
    if deleted == Some(true) {
        notes = notes.with_deleted();
    }
    let filters = [
        Filter::order_by(Note::ID, SortOrder::Asc),
        Filter::limit_offset(10, 0),
    ];
    let (rows, total) = notes.list_and_count(&filters).await?;
    let count = notes.count(&[]).await?;
    let texts: Vec<&str> = rows.iter().map(|n| n.text.as_str()).collect();
    Ok(Json(
        json!({ "texts": texts, "total": total, "count": count }),
    ))
}

#[delete("/notes/<id>")]
async fn delete_note(id: i64, db: Session<'_>) -> Result<Json<Value>, RepositoryError> {
    let note = Repository::<Note>::new(db).delete(id).await?;
    Ok(Json(json!({ "deleted_at": note.deleted_at })))
}

#[post("/notes/<id>/restore")]
async fn restore_note(id: i64, db: Session<'_>) -> Result<String, RepositoryError> {
    Ok(Repository::<Note>::new(db).restore(id).await?.text)
}

#[delete("/notes/<id>/hard")]
async fn hard_delete_note(id: i64, db: Session<'_>) -> Result<Status, RepositoryError> {
    let tags = Repository::<Tag>::new(db).with_deleted();
    for tag in tags.list(&[Filter::eq(Tag::NOTE_ID, id)]).await? {
        tags.hard_delete(tag.id).await?;
    }
    Repository::<Note>::new(db).hard_delete(id).await?;
    Ok(Status::NoContent)
}

/// Soft-deletes the notes whose text is one of `texts`; answers how many.
#[delete("/notes?<texts>")]
async fn delete_notes_where(
    texts: Vec<String>,
    db: Session<'_>,
) -> Result<String, RepositoryError> {
    let deleted = Repository::<Note>::new(db)
        .delete_where(&[Filter::is_in(Note::TEXT, texts)], false)
        .await?;
    Ok(deleted.len().to_string())
}

fn app(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(
            Alchemy::fairing()
                .model::<Doc>()
                .model::<Note>()
                .model::<Tag>(),
        )
        .mount(
            "/",
            routes![
                create_doc,
                get_doc,
                patch_doc,
                create_note,
                create_tag,
                delete_tag,
                get_note,
                list_notes,
                delete_note,
                restore_note,
                hard_delete_note,
                delete_notes_where
            ],
        )
        .register("/", rocket_alchemy::params::catchers())
}

fn config() -> Figment {
    Figment::from(rocket::Config::default()).merge(
        Toml::string(
            "[default.databases.default]\nurl = \"sqlite://unused.db\"\ncommit_mode = \"autocommit\"",
        )
        .nested(),
    )
}

static KIT: TestKit = TestKit::new(app).figment(config);

async fn send(
    app: &TestApp,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value, u32) {
    let client = app.client();
    let mut request = match method {
        "POST" => client.post(uri.to_string()),
        "PATCH" => client.patch(uri.to_string()),
        "DELETE" => client.delete(uri.to_string()),
        _ => client.get(uri.to_string()),
    };
    if let Some(body) = body {
        request = request.header(ContentType::JSON).body(body);
    }
    for (name, value) in headers {
        request = request.header(Header::new(name.to_string(), value.to_string()));
    }
    let response = request.dispatch().await;
    let status = response.status().code;
    let etag = response.headers().get_one("ETag").map(str::to_string);
    let statements = app.statements(&response, "default");
    let text = response.into_string().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, etag, value, statements)
}

/// PATCH tells absent, null and a value apart; a null for a required column and a too-long
/// string are 422s naming the field, refused before any SQL.
async fn typed_inputs(app: TestApp) {
    let probe = Probe::of(app.database("default"));
    let (status, _, doc, _) = send(
        &app,
        "POST",
        "/docs",
        Some(r#"{"title": "draft", "body": "text"}"#),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{doc}");
    let id = doc["id"].as_i64().unwrap();
    let uri = format!("/docs/{id}");

    let (status, _, doc, _) = send(&app, "PATCH", &uri, Some(r#"{"title": "final"}"#), &[]).await;
    assert_eq!(
        (status, doc["title"].as_str(), doc["body"].as_str()),
        (200, Some("final"), Some("text")),
        "absent body untouched"
    );
    let (status, _, doc, _) = send(&app, "PATCH", &uri, Some(r#"{"body": null}"#), &[]).await;
    assert_eq!(
        (status, &doc["body"]),
        (200, &Value::Null),
        "explicit null clears a nullable column"
    );
    assert_eq!(
        probe
            .scalar(&format!(
                "SELECT COUNT(*) FROM doc WHERE id = {id} AND body IS NULL"
            ))
            .await,
        1
    );

    for (body, field, what) in [
        (
            r#"{"title": null, "body": "x"}"#,
            "`title` must not be null",
            "null for a required column",
        ),
        (
            r#"{"title": "this title is far too long"}"#,
            "title: at most 20 characters",
            "too long",
        ),
    ] {
        let (status, _, error, statements) = send(&app, "PATCH", &uri, Some(body), &[]).await;
        assert_eq!(status, 422, "{what}: {error}");
        assert!(
            error["detail"].as_str().unwrap_or("").contains(field),
            "{what}: {error}"
        );
        assert_eq!(statements, 0, "{what}: refused before any SQL");
    }
    let (status, _, error, statements) = send(
        &app,
        "POST",
        "/docs",
        Some(r#"{"title": "this title is far too long"}"#),
        &[],
    )
    .await;
    assert_eq!(
        (status, statements),
        (422, 0),
        "create: too long, before any SQL: {error}"
    );
    let (status, _, _, _) = send(&app, "POST", "/docs", Some(r#"{"body": "no title"}"#), &[]).await;
    assert_eq!(status, 422, "create: a missing required field");
    assert_eq!(
        probe.count("doc").await,
        1,
        "nothing written by the refused requests"
    );
    assert_eq!(probe.count_where("doc", "title", "final").await, 1);
}

/// ETags come from the version; a stale If-Match is a 412 with nothing written; a
/// concurrent update based on the same version is a 409 with nothing written.
async fn optimistic_locking(app: TestApp) {
    let probe = Probe::of(app.database("default"));
    let (_, etag, doc, _) = send(&app, "POST", "/docs", Some(r#"{"title": "v1"}"#), &[]).await;
    let id = doc["id"].as_i64().unwrap();
    assert_eq!(
        (etag.as_deref(), doc["version"].as_i64()),
        (Some("\"1\""), Some(1))
    );
    let uri = format!("/docs/{id}");
    let (status, etag, _, _) = send(&app, "GET", &uri, None, &[]).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"1\"")));

    let (status, etag, doc, _) = send(
        &app,
        "PATCH",
        &uri,
        Some(r#"{"title": "v2"}"#),
        &[("If-Match", "\"1\"")],
    )
    .await;
    assert_eq!(
        (status, etag.as_deref(), doc["version"].as_i64()),
        (200, Some("\"2\""), Some(2))
    );
    // The same If-Match again: the resource moved on.
    let (status, _, error, _) = send(
        &app,
        "PATCH",
        &uri,
        Some(r#"{"title": "lost"}"#),
        &[("If-Match", "\"1\"")],
    )
    .await;
    assert_eq!(status, 412, "{error}");
    let (status, _, _, _) = send(
        &app,
        "PATCH",
        &uri,
        Some(r#"{"title": "bad"}"#),
        &[("If-Match", "1")],
    )
    .await;
    assert_eq!(status, 400, "a malformed If-Match");
    let (status, _, _, _) = send(
        &app,
        "PATCH",
        &uri,
        Some(r#"{"title": "any"}"#),
        &[("If-Match", "*")],
    )
    .await;
    assert_eq!(status, 200, "If-Match: * matches any current row");
    assert_eq!(probe.count_where("doc", "title", "lost").await, 0);
    assert_eq!(
        probe
            .scalar(&format!("SELECT version FROM doc WHERE id = {id}"))
            .await,
        3
    );

    // Two updates based on version 3, in two transactions at once: one wins, the other is
    // stale (whichever order the database serialises them in) and writes nothing.
    let alchemy = app.alchemy();
    let (first, second) = (
        alchemy.session("default").unwrap(),
        alchemy.session("default").unwrap(),
    );
    let update = |session, title: &'static str| async move {
        let repo = Repository::<Doc>::on(session).unwrap();
        repo.update(id, Changes::new().set(Doc::TITLE, title).expect_version(3))
            .await
    };
    let won = update(&first, "first").await.expect("the first update");
    assert_eq!(won.version, 4);
    let racing = async {
        let result = update(&second, "second").await;
        second.rollback().await.unwrap();
        result
    };
    let (lost, committed) = rocket::tokio::join!(racing, first.commit());
    committed.unwrap();
    let lost = lost.expect_err("the second update is stale");
    assert!(matches!(lost, RepositoryError::Stale { .. }), "{lost:?}");
    assert_eq!(lost.status().code, 409);
    assert_eq!(probe.count_where("doc", "title", "first").await, 1);
    assert_eq!(probe.count_where("doc", "title", "second").await, 0);
    assert_eq!(
        probe
            .scalar(&format!("SELECT version FROM doc WHERE id = {id}"))
            .await,
        4
    );
}

/// Soft delete marks, reads skip, `with_deleted` and `restore` bring rows back, counts and
/// `delete_where` respect it, children skip deleted rows, `hard_delete` removes.
async fn soft_delete(app: TestApp) {
    let probe = Probe::of(app.database("default"));
    let mut ids = Vec::new();
    for text in ["keep", "gone", "old-1", "old-2"] {
        let (status, _, id, _) = send(&app, "POST", &format!("/notes/{text}"), None, &[]).await;
        assert_eq!(status, 200);
        ids.push(
            id.as_i64()
                .unwrap_or_else(|| id.as_str().unwrap().parse().unwrap()),
        );
    }
    let gone = ids[1];
    let (status, _, body, _) = send(&app, "DELETE", &format!("/notes/{gone}"), None, &[]).await;
    assert_eq!(status, 200);
    assert!(body["deleted_at"].is_string(), "{body}");
    assert_eq!(probe.count("note").await, 4, "the row is still there");
    assert_eq!(
        probe
            .scalar(&format!(
                "SELECT COUNT(*) FROM note WHERE id = {gone} AND deleted_at IS NOT NULL"
            ))
            .await,
        1
    );
    assert_eq!(
        send(&app, "GET", &format!("/notes/{gone}"), None, &[])
            .await
            .0,
        404
    );
    assert_eq!(
        send(&app, "DELETE", &format!("/notes/{gone}"), None, &[])
            .await
            .0,
        404,
        "deleted once"
    );
    let (_, _, list, _) = send(&app, "GET", "/notes", None, &[]).await;
    assert_eq!(
        list,
        json!({ "texts": ["keep", "old-1", "old-2"], "total": 3, "count": 3 })
    );
    let (_, _, list, _) = send(&app, "GET", "/notes?deleted=true", None, &[]).await;
    assert_eq!(list["total"], 4);

    // delete_where marks the live rows it matches.
    let (_, _, n, _) = send(
        &app,
        "DELETE",
        "/notes?texts=old-1&texts=old-2&texts=gone",
        None,
        &[],
    )
    .await;
    assert_eq!(
        n.as_i64()
            .or_else(|| n.as_str().and_then(|s| s.parse().ok())),
        Some(2)
    );
    assert_eq!(
        probe
            .scalar("SELECT COUNT(*) FROM note WHERE deleted_at IS NULL")
            .await,
        1
    );

    let (status, _, text, _) =
        send(&app, "POST", &format!("/notes/{gone}/restore"), None, &[]).await;
    assert_eq!((status, text.as_str()), (200, Some("gone")));
    assert_eq!(
        send(&app, "GET", &format!("/notes/{gone}"), None, &[])
            .await
            .0,
        200
    );

    // Children: a soft-deleted tag is not a child any more.
    let keep = ids[0];
    let (_, _, tag, _) = send(&app, "POST", &format!("/notes/{keep}/tags/red"), None, &[]).await;
    send(&app, "POST", &format!("/notes/{keep}/tags/blue"), None, &[]).await;
    let tag = tag
        .as_i64()
        .unwrap_or_else(|| tag.as_str().unwrap().parse().unwrap());
    assert_eq!(
        send(&app, "DELETE", &format!("/tags/{tag}"), None, &[])
            .await
            .0,
        204
    );
    let (_, _, note, _) = send(&app, "GET", &format!("/notes/{keep}"), None, &[]).await;
    assert_eq!(note["tags"], json!(["blue"]));

    assert_eq!(
        send(&app, "DELETE", &format!("/notes/{keep}/hard"), None, &[])
            .await
            .0,
        204
    );
    assert_eq!(
        probe.count_where("note", "text", "keep").await,
        0,
        "hard delete removes the row"
    );
    assert_eq!(probe.count("tag").await, 0);
}

rocket_alchemy::test_on_backends!(KIT => typed_inputs, optimistic_locking, soft_delete);

// ---- create_all and autogenerate know the managed columns -----------------------------------

mod before {
    #[derive(rocket_alchemy::Model)]
    #[model(table = "paper")]
    pub struct Paper {
        #[model(primary_key = "auto_increment")]
        pub id: i64,
        #[model(max_length = 20)]
        pub title: String,
    }
}

mod after {
    #[derive(rocket_alchemy::Model)]
    #[model(table = "paper")]
    pub struct Paper {
        #[model(primary_key = "auto_increment")]
        pub id: i64,
        #[model(max_length = 20)]
        pub title: String,
        #[model(version)]
        pub version: i64,
        #[model(soft_delete)]
        pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    }
}

/// Adding `version` and `soft_delete` columns is a plain migration: existing rows start at
/// version 1 and live; after it, `create_all`'s schema and the models agree.
async fn managed_columns_migrate(db: common::TestDb) {
    use rocket_alchemy::migrate::Migrator;
    let first = Alchemy::open(
        &db.figment("[databases.default]\ncreate_all = true"),
        &[before::Paper::TABLE],
    )
    .await
    .unwrap();
    db.probe()
        .execute("INSERT INTO paper (title) VALUES ('old')")
        .await;
    let second = Alchemy::open(&db.figment("[databases.default]"), &[after::Paper::TABLE])
        .await
        .unwrap();
    let migrator = Migrator::new(second.bind("default").unwrap()).unwrap();
    let plan = migrator.diff().await.unwrap();
    assert_eq!(
        plan.summary,
        ["+ column paper.version", "+ column paper.deleted_at"],
        "{plan:#?}"
    );
    common::run(&second, &plan.up).await;
    assert!(
        migrator.diff().await.unwrap().is_empty(),
        "nothing left to generate"
    );
    let probe = db.probe();
    assert_eq!(
        probe
            .scalar("SELECT COUNT(*) FROM paper WHERE version = 1 AND deleted_at IS NULL")
            .await,
        1,
        "the existing row is live, at version 1"
    );
    // The live row is seen by the repository; deleting marks it.
    let session = second.session("default").unwrap();
    let papers = Repository::<after::Paper>::on(&session).unwrap();
    assert_eq!(papers.count(&[]).await.unwrap(), 1);
    let id: i64 = probe.scalar("SELECT id FROM paper").await;
    papers.delete(id).await.unwrap();
    assert_eq!(papers.count(&[]).await.unwrap(), 0);
    session.commit().await.unwrap();
    assert_eq!(
        probe
            .scalar("SELECT COUNT(*) FROM paper WHERE deleted_at IS NOT NULL")
            .await,
        1
    );
    first.close().await;
    second.close().await;
}

backend_tests!(managed_columns_migrate);
