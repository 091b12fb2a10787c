//! The `authors` example's HTTP contract, on every backend and in every commit mode.

mod common;

#[path = "../examples/authors/app.rs"]
#[allow(dead_code, missing_docs)]
mod app;

use common::Probe;
#[cfg(all(feature = "sqlite", feature = "postgres"))]
use common::{figment_with, TestDb};
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::LocalResponse;
use rocket_alchemy::testing::{TestApp, TestKit};
use rocket_alchemy::CommitMode;
use serde_json::{json, Value};

/// The example's own app, on per-test databases copied from a `create_all` template.
static KIT: TestKit = TestKit::new(app::app);

struct App {
    client: TestApp,
    main: Probe,
    audit: Probe,
    mode: CommitMode,
}

impl App {
    fn new(client: TestApp) -> App {
        App {
            main: Probe::of(client.database("default")),
            audit: Probe::of(client.database("audit")),
            mode: client
                .alchemy()
                .bind("default")
                .unwrap()
                .config()
                .commit_mode,
            client,
        }
    }
}

/// Both binds in commit mode `mode`.
fn in_mode(figment: Figment, mode: CommitMode) -> Figment {
    figment
        .merge(Serialized::default(
            "databases.default.commit_mode",
            mode.to_string(),
        ))
        .merge(Serialized::default(
            "databases.audit.commit_mode",
            mode.to_string(),
        ))
}

fn autocommit(figment: Figment) -> Figment {
    in_mode(figment, CommitMode::Autocommit)
}

fn include_redirect(figment: Figment) -> Figment {
    in_mode(figment, CommitMode::AutocommitIncludeRedirect)
}

fn manual(figment: Figment) -> Figment {
    in_mode(figment, CommitMode::Manual)
}

async fn json_of(response: LocalResponse<'_>) -> Value {
    assert_eq!(response.content_type(), Some(ContentType::JSON), "not JSON");
    let text = response.into_string().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"))
}

/// A 4xx answer with a JSON object body.
async fn assert_client_error(response: LocalResponse<'_>, allowed: &[u16], what: &str) {
    let status = response.status().code;
    assert!(
        allowed.contains(&status),
        "{what}: got {status}, expected one of {allowed:?}"
    );
    let body = json_of(response).await;
    assert!(
        body.is_object(),
        "{what}: error body is not a JSON object: {body}"
    );
}

impl App {
    async fn post_json(&self, uri: &str, body: &str) -> LocalResponse<'_> {
        self.client
            .post(uri.to_string())
            .header(ContentType::JSON)
            .body(body)
            .dispatch()
            .await
    }

    async fn create(&self, name: &str, dob: Option<&str>) -> Value {
        let r = self
            .post_json("/authors", &json!({ "name": name, "dob": dob }).to_string())
            .await;
        assert!(
            matches!(r.status().code, 200 | 201),
            "create {name}: {}",
            r.status()
        );
        json_of(r).await
    }

    async fn counts(&self) -> (i64, i64, i64) {
        (
            self.main.count("author").await,
            self.main.count("book").await,
            self.audit.count("audit_entry").await,
        )
    }
}

fn assert_author_shape(author: &Value) {
    for key in ["id", "name", "dob", "created_at", "updated_at"] {
        assert!(
            author.get(key).is_some(),
            "author JSON lacks `{key}`: {author}"
        );
    }
    uuid::Uuid::parse_str(author["id"].as_str().unwrap()).expect("id is a UUID");
    if let Some(dob) = author["dob"].as_str() {
        chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").expect("dob is YYYY-MM-DD");
    } else {
        assert!(author["dob"].is_null());
    }
    chrono::DateTime::parse_from_rfc3339(author["created_at"].as_str().unwrap())
        .expect("created_at is a timestamp");
}

fn ts(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap()
}

async fn contract(app: TestApp) {
    let app = App::new(app);
    let client = app.client.client();

    // GET /health
    let r = client.get("/health").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(json_of(r).await, json!({ "default": "ok", "audit": "ok" }));

    // POST /authors
    let ursula = app.create("Ursula K. Le Guin", Some("1929-10-21")).await;
    assert_author_shape(&ursula);
    assert_eq!(ursula["name"], "Ursula K. Le Guin");
    assert_eq!(ursula["dob"], "1929-10-21");
    assert_eq!(ursula["created_at"], ursula["updated_at"]);
    let no_dob = app.create("Anonymous", None).await;
    assert!(no_dob["dob"].is_null());
    assert_eq!(
        app.counts().await,
        (2, 0, 2),
        "each create is stored and audited"
    );

    let long = "x".repeat(101);
    let bad_creates = [
        ("{\"name\": ", "malformed JSON"),
        ("{\"dob\": \"1990-01-01\"}", "missing name"),
        ("{\"name\": \"\"}", "empty name"),
        ("{\"name\": \"   \"}", "blank name"),
        (&*format!("{{\"name\": \"{long}\"}}"), "name too long"),
        (
            "{\"name\": \"Bad Date\", \"dob\": \"1990-13-45\"}",
            "bad date",
        ),
        (
            "{\"name\": \"Bad Date\", \"dob\": 19900101}",
            "non-string date",
        ),
        ("[]", "not an object"),
    ];
    for (body, what) in bad_creates {
        let r = app.post_json("/authors", body).await;
        assert_client_error(r, &[400, 422], what).await;
    }
    let max = "y".repeat(100);
    let at_limit = app.create(&max, None).await;
    assert_eq!(at_limit["name"].as_str().unwrap().chars().count(), 100);
    assert_eq!(
        app.counts().await,
        (3, 0, 3),
        "rejected creates wrote nothing"
    );

    // GET /authors/<uuid>
    let id = ursula["id"].as_str().unwrap().to_string();
    let r = client.get(format!("/authors/{id}")).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    let detail = json_of(r).await;
    assert_author_shape(&detail);
    assert_eq!(detail["books"], json!([]));
    let r = client
        .get(format!("/authors/{}", uuid::Uuid::new_v4()))
        .dispatch()
        .await;
    assert_client_error(r, &[404], "unknown author").await;
    let r = client.get("/authors/not-a-uuid").dispatch().await;
    assert_client_error(r, &[404, 422], "non-UUID path").await;

    // POST /authors/<uuid>/books
    let r = app
        .post_json(
            &format!("/authors/{id}/books"),
            "{\"title\": \"The Dispossessed\"}",
        )
        .await;
    assert!(matches!(r.status().code, 200 | 201));
    let book = json_of(r).await;
    assert_eq!(book["title"], "The Dispossessed");
    assert_eq!(book["author_id"], id.as_str());
    uuid::Uuid::parse_str(book["id"].as_str().unwrap()).unwrap();
    app.post_json(
        &format!("/authors/{id}/books"),
        "{\"title\": \"The Lathe of Heaven\"}",
    )
    .await;
    let r = app
        .post_json(
            &format!("/authors/{}/books", uuid::Uuid::new_v4()),
            "{\"title\": \"Orphan\"}",
        )
        .await;
    assert_client_error(r, &[404], "book for an unknown author").await;
    for (body, what) in [
        ("{\"title\": \"\"}", "empty title"),
        ("{}", "missing title"),
        (
            &*format!("{{\"title\": \"{}\"}}", "t".repeat(201)),
            "title too long",
        ),
        ("{\"title\": ", "malformed JSON"),
    ] {
        let r = app.post_json(&format!("/authors/{id}/books"), body).await;
        assert_client_error(r, &[400, 422], what).await;
    }
    assert_eq!(app.counts().await, (3, 2, 3));
    let detail = json_of(client.get(format!("/authors/{id}")).dispatch().await).await;
    assert_eq!(detail["books"].as_array().unwrap().len(), 2);

    // DELETE /books/<uuid> is a soft delete: the row stays, marked; reads skip it.
    let book_id = detail["books"][0]["id"].as_str().unwrap().to_string();
    let r = client.delete(format!("/books/{book_id}")).dispatch().await;
    assert_eq!(r.status(), Status::NoContent);
    let detail = json_of(client.get(format!("/authors/{id}")).dispatch().await).await;
    assert_eq!(
        detail["books"].as_array().unwrap().len(),
        1,
        "a deleted book is skipped"
    );
    assert_eq!(app.main.count("book").await, 2, "still in the table");
    let marked = app
        .main
        .scalar("SELECT COUNT(*) FROM book WHERE deleted_at IS NOT NULL")
        .await;
    let r = client.delete(format!("/books/{book_id}")).dispatch().await;
    assert_client_error(r, &[404], "delete a deleted book").await;
    let r = client
        .post(format!("/books/{book_id}/restore"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let detail = json_of(client.get(format!("/authors/{id}")).dispatch().await).await;
    assert_eq!(detail["books"].as_array().unwrap().len(), 2, "restored");
    assert_eq!(
        marked, 1,
        "the delete marked the row (committed in every mode)"
    );

    // PATCH /authors/<uuid>
    let before = ts(&ursula["updated_at"]);
    let r = client
        .patch(format!("/authors/{id}"))
        .header(ContentType::JSON)
        .body("{\"name\": \"Ursula Le Guin\"}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let patched = json_of(r).await;
    assert_eq!(patched["name"], "Ursula Le Guin");
    assert_eq!(patched["dob"], "1929-10-21", "absent fields are untouched");
    assert!(
        ts(&patched["updated_at"]) > before,
        "updated_at moves forward"
    );
    assert_eq!(patched["created_at"], ursula["created_at"]);
    let r = client
        .patch(format!("/authors/{id}"))
        .header(ContentType::JSON)
        .body("{\"dob\": null}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let cleared = json_of(r).await;
    assert!(cleared["dob"].is_null(), "explicit null clears dob");
    assert!(ts(&cleared["updated_at"]) > ts(&patched["updated_at"]));
    let stored = json_of(client.get(format!("/authors/{id}")).dispatch().await).await;
    assert_eq!(stored["name"], "Ursula Le Guin");
    assert!(stored["dob"].is_null());
    assert_eq!(
        stored["updated_at"], cleared["updated_at"],
        "the stored timestamp is the one returned"
    );
    let r = client
        .patch(format!("/authors/{}", uuid::Uuid::new_v4()))
        .header(ContentType::JSON)
        .body("{\"name\": \"X\"}")
        .dispatch()
        .await;
    assert_client_error(r, &[404], "patch unknown").await;
    for (body, what) in [
        ("{\"name\": \"\"}", "empty name"),
        ("{\"dob\": \"yesterday\"}", "bad date"),
        ("{", "malformed"),
    ] {
        let r = client
            .patch(format!("/authors/{id}"))
            .header(ContentType::JSON)
            .body(body)
            .dispatch()
            .await;
        assert_client_error(r, &[400, 422], what).await;
    }
    assert_eq!(
        app.counts().await,
        (3, 2, 5),
        "two successful updates audited"
    );
    // ETag and If-Match: a stale tag is a 412 and writes nothing; the current one works.
    let r = client.get(format!("/authors/{id}")).dispatch().await;
    let etag = r.headers().get_one("ETag").expect("an ETag").to_string();
    let micros = ts(&json_of(r).await["updated_at"]).timestamp_micros();
    assert_eq!(etag, format!("\"{micros}\""), "the ETag is updated_at");
    let r = client
        .patch(format!("/authors/{id}"))
        .header(ContentType::JSON)
        .header(rocket::http::Header::new("If-Match", "\"1\""))
        .body("{\"name\": \"Stale Write\"}")
        .dispatch()
        .await;
    assert_eq!(r.status().code, 412, "a stale If-Match");
    assert_eq!(
        app.main.count_where("author", "name", "Stale Write").await,
        0
    );
    let r = client
        .patch(format!("/authors/{id}"))
        .header(ContentType::JSON)
        .header(rocket::http::Header::new("If-Match", etag.clone()))
        .body("{\"dob\": \"1929-10-22\"}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok, "the current ETag matches");
    assert_ne!(
        r.headers().get_one("ETag"),
        Some(etag.as_str()),
        "a new ETag"
    );
    assert_eq!(app.counts().await, (3, 2, 6), "one more audited update");

    // An explicit null for the required name: 422 naming the field, nothing written.
    let r = client
        .patch(format!("/authors/{id}"))
        .header(ContentType::JSON)
        .body("{\"name\": null, \"dob\": \"2000-01-01\"}")
        .dispatch()
        .await;
    assert_eq!(r.status().code, 422, "null for a required field");
    let error = json_of(r).await;
    assert!(
        error["detail"]
            .as_str()
            .unwrap_or("")
            .contains("`name` must not be null"),
        "{error}"
    );
    let stored = app
        .main
        .count_where("author", "name", "Ursula Le Guin")
        .await;
    assert_eq!(stored, 1, "the name is kept");
    assert_eq!(app.counts().await, (3, 2, 6), "nothing written or audited");

    // GET /authors: pagination, ordering, search, bad parameters
    for i in 0..9 {
        app.create(&format!("Page Author {i:02}"), None).await;
    }
    let r = client
        .get("/authors?currentPage=3&pageSize=5&orderBy=name&sortOrder=asc")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let page = json_of(r).await;
    assert_eq!(
        (
            page["total"].as_i64(),
            page["limit"].as_i64(),
            page["offset"].as_i64()
        ),
        (Some(12), Some(5), Some(10))
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let all = json_of(
        client
            .get("/authors?pageSize=100&orderBy=name&sortOrder=asc")
            .dispatch()
            .await,
    )
    .await;
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "orderBy=name asc");
    let desc = json_of(
        client
            .get("/authors?pageSize=100&orderBy=name&sortOrder=desc")
            .dispatch()
            .await,
    )
    .await;
    let desc_names: Vec<&str> = desc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        desc_names,
        sorted.iter().rev().copied().collect::<Vec<_>>(),
        "orderBy=name desc"
    );
    let found = json_of(
        client
            .get("/authors?searchString=ursula&searchIgnoreCase=true")
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["name"], "Ursula Le Guin");
    let exact = json_of(
        client
            .get("/authors?searchString=ursula&searchIgnoreCase=false")
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(exact["total"], 0, "case-sensitive search: {exact}");
    let paged = json_of(
        client
            .get("/authors?searchString=Page%20Author&pageSize=4")
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(
        (
            paged["total"].as_i64(),
            paged["items"].as_array().unwrap().len()
        ),
        (Some(9), 4)
    );
    let wildcard = json_of(client.get("/authors?searchString=%25").dispatch().await).await;
    assert_eq!(wildcard["total"], 0, "`%` in the search text is literal");
    for query in [
        "pageSize=0",
        "pageSize=101",
        "pageSize=abc",
        "pageSize=-1",
        "currentPage=x",
        "currentPage=0",
        "orderBy=password",
        "orderBy=name;drop",
        "sortOrder=up",
        "searchIgnoreCase=maybe",
    ] {
        let r = client.get(format!("/authors?{query}")).dispatch().await;
        assert_client_error(r, &[400, 422], query).await;
    }

    // POST /authors/form
    let (authors_before, _, audits_before) = app.counts().await;
    let r = client
        .post("/authors/form")
        .header(ContentType::Form)
        .body("name=Octavia%20Butler&dob=1947-06-22")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let location = r
        .headers()
        .get_one("Location")
        .expect("a Location header")
        .to_string();
    let form_id = location
        .strip_prefix("/authors/")
        .expect("Location: /authors/<id>");
    uuid::Uuid::parse_str(form_id).unwrap();
    let mode = app.mode;
    let redirect_persists = mode != CommitMode::Autocommit;
    assert_eq!(
        app.main
            .count_where("author", "name", "Octavia Butler")
            .await,
        redirect_persists as i64,
        "{mode}: the 303 persists the author only when redirects commit"
    );
    assert_eq!(
        app.audit.count("audit_entry").await,
        audits_before + redirect_persists as i64,
        "audit follows the author write"
    );
    let r = client.get(location.clone()).dispatch().await;
    assert_eq!(r.status().code, if redirect_persists { 200 } else { 404 });
    for (body, what) in [
        ("dob=1947-06-22", "missing name"),
        ("name=", "empty name"),
        ("name=Z&dob=22/06/1947", "bad dob"),
    ] {
        let r = client
            .post("/authors/form")
            .header(ContentType::Form)
            .body(body)
            .dispatch()
            .await;
        assert_client_error(r, &[400, 422], what).await;
    }
    assert_eq!(
        app.main.count("author").await,
        authors_before + redirect_persists as i64
    );

    // POST /authors/batch
    let (authors_before, _, audits_before) = app.counts().await;
    let r = app
        .post_json(
            "/authors/batch",
            &json!([{ "name": "Batch A" }, { "name": "Batch B", "dob": "2000-01-01" }]).to_string(),
        )
        .await;
    assert!(matches!(r.status().code, 200 | 201));
    let created = json_of(r).await;
    assert_eq!(created.as_array().unwrap().len(), 2);
    created
        .as_array()
        .unwrap()
        .iter()
        .for_each(assert_author_shape);
    assert_eq!(app.counts().await.0, authors_before + 2);
    let r = app
        .post_json(
            "/authors/batch",
            &json!([{ "name": "Rolled Back 1" }, { "name": "Rolled Back 2" }, { "name": "" }, { "name": "Never" }]).to_string(),
        )
        .await;
    assert_client_error(r, &[422], "batch with a bad item").await;
    assert_eq!(
        app.main
            .count_where("author", "name", "Rolled Back 1")
            .await,
        0,
        "earlier batch inserts rolled back"
    );
    assert_eq!(app.counts().await.0, authors_before + 2);
    assert_eq!(
        app.counts().await.2,
        audits_before + 2,
        "their audit entries rolled back too"
    );
    let r = app
        .post_json("/authors/batch", "{\"name\": \"not a list\"}")
        .await;
    assert_client_error(r, &[400, 422], "batch of a non-list").await;

    // DELETE /authors/<uuid>
    let (authors_before, books_before, audits_before) = app.counts().await;
    let r = client.delete(format!("/authors/{id}")).dispatch().await;
    assert_eq!(r.status(), Status::NoContent);
    assert_eq!(
        app.counts().await,
        (authors_before - 1, books_before - 2, audits_before + 1),
        "its books deleted too"
    );
    let r = client.delete(format!("/authors/{id}")).dispatch().await;
    assert_client_error(r, &[404], "delete twice").await;
    let r = client.get(format!("/authors/{id}")).dispatch().await;
    assert_client_error(r, &[404], "deleted author").await;

    // GET /audit: newest first, paginated
    let r = client.get("/audit?pageSize=3").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    let audit = json_of(r).await;
    assert_eq!(
        audit["total"].as_i64(),
        Some(app.audit.count("audit_entry").await)
    );
    assert_eq!(audit["limit"], 3);
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["action"], "delete");
    assert_eq!(items[0]["entity_id"], id.as_str());
    assert!(
        items[0]["id"].as_i64().unwrap() > items[1]["id"].as_i64().unwrap(),
        "newest first"
    );
    for query in ["pageSize=0", "currentPage=abc"] {
        let r = client.get(format!("/audit?{query}")).dispatch().await;
        assert_client_error(r, &[400, 422], query).await;
    }
    let _ = app.mode;
}

async fn contract_autocommit(app: TestApp) {
    contract(app).await
}

async fn contract_autocommit_include_redirect(app: TestApp) {
    contract(app).await
}

async fn contract_manual(app: TestApp) {
    contract(app).await
}

/// `POST /authors` with an `Idempotency-Key`: a retry gets the first response (201, same
/// id, same bytes) and creates neither an author nor an audit entry; the same key with
/// another body is a 422 writing nothing; without the header every POST creates.
async fn idempotent_create(app: TestApp) {
    let app = App::new(app);
    let post = |key: Option<&'static str>, name: &str| {
        let mut request = app
            .client
            .post("/authors")
            .header(ContentType::JSON)
            .body(json!({ "name": name, "dob": "1947-06-22" }).to_string());
        if let Some(key) = key {
            request = request.header(Header::new("Idempotency-Key", key));
        }
        request.dispatch()
    };
    let first = post(Some("create-octavia-1"), "Octavia E. Butler").await;
    assert_eq!(first.status(), Status::Created);
    assert_eq!(first.headers().get_one("Idempotent-Replayed"), None);
    let first = first.into_string().await.unwrap();
    let retry = post(Some("create-octavia-1"), "Octavia E. Butler").await;
    assert_eq!(retry.status(), Status::Created);
    assert_eq!(retry.headers().get_one("Idempotent-Replayed"), Some("true"));
    assert_eq!(retry.content_type(), Some(ContentType::JSON));
    let retry = retry.into_string().await.unwrap();
    assert_eq!(retry, first, "the same response, byte for byte");
    let author: Value = serde_json::from_str(&first).unwrap();
    assert_author_shape(&author);
    assert_eq!(app.counts().await, (1, 0, 1), "one author, one audit entry");
    let table = match app.client.backend() {
        rocket_alchemy::Backend::MySql => "`idempotency_key`",
        _ => "\"idempotency_key\"",
    };
    let records = format!("SELECT COUNT(*) FROM {table}");
    assert_eq!(app.main.scalar(&records).await, 1);

    let other = post(Some("create-octavia-1"), "Someone Else").await;
    assert_eq!(other.status(), Status::UnprocessableEntity);
    assert_eq!(json_of(other).await["status_code"], 422);
    let malformed = post(Some(""), "Octavia E. Butler").await;
    assert_eq!(malformed.status(), Status::BadRequest);
    assert_eq!(json_of(malformed).await["status_code"], 400);
    assert_eq!(app.counts().await, (1, 0, 1), "refused: nothing written");

    for _ in 0..2 {
        assert_eq!(
            post(None, "Octavia E. Butler").await.status(),
            Status::Created
        );
    }
    assert_eq!(
        app.counts().await,
        (3, 0, 3),
        "without a key, each POST creates"
    );
    assert_eq!(app.main.scalar(&records).await, 1);
    let _ = app.mode;
}

async fn idempotent_create_autocommit(app: TestApp) {
    idempotent_create(app).await
}

async fn idempotent_create_include_redirect(app: TestApp) {
    idempotent_create(app).await
}

async fn idempotent_create_manual(app: TestApp) {
    idempotent_create(app).await
}

rocket_alchemy::test_on_backends!(KIT, with = autocommit => idempotent_create_autocommit);
rocket_alchemy::test_on_backends!(KIT, with = include_redirect => idempotent_create_include_redirect);
rocket_alchemy::test_on_backends!(KIT, with = manual => idempotent_create_manual);

rocket_alchemy::test_on_backends!(KIT, with = autocommit => contract_autocommit);
rocket_alchemy::test_on_backends!(KIT, with = include_redirect => contract_autocommit_include_redirect);
rocket_alchemy::test_on_backends!(KIT, with = manual => contract_manual);

/// `/health` answers 503 when a bind is unreachable, without leaking its password.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[tokio::test]
async fn health_reports_unreachable_bind() {
    let db = TestDb::sqlite("health").await;
    let figment = figment_with(&[("default", &db)], "[databases.default]\ncreate_all = true\n[databases.audit]\nurl = \"postgres://app:hunter2@127.0.0.1:9/audit\"\nlazy = true\nconnect_timeout = 1\n");
    let client = rocket::local::asynchronous::Client::tracked(app::app(figment))
        .await
        .expect("a lazy bind does not block the launch");
    let r = client.get("/health").dispatch().await;
    assert_eq!(r.status(), Status::ServiceUnavailable);
    let text = r.into_string().await.unwrap();
    assert!(!text.contains("hunter2"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body, json!({ "default": "ok", "audit": "unavailable" }));
    // A request needing the unreachable bind answers 503, one that does not still works.
    let r = client.get("/audit").dispatch().await;
    assert_eq!(r.status(), Status::ServiceUnavailable);
    let r = client.get("/authors").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
}
