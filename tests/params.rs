//! The list-parameter guard, the service and the error responses, through a real Rocket.

mod common;

use chrono::{DateTime, Utc};
use common::Probe;
use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::Json;
use rocket::{get, patch, post, routes, Build, Rocket, State};
use rocket_alchemy::filters::SortOrder;
use rocket_alchemy::pagination::CursorPage;
use rocket_alchemy::service::{Operation, ToChanges, ToModel};
use rocket_alchemy::testing::{TestApp, TestKit};
use rocket_alchemy::{
    Alchemy, Changes, Jsonify, ListParams, ListSpec, Model, OffsetPagination, Repository,
    RepositoryError, Schema, Service, Session,
};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Model, Clone, Debug)]
struct Author {
    id: Uuid,
    #[model(max_length = 50, unique)]
    name: String,
    rank: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ListSpec for Author {
    type Model = Author;
    const ORDER_BY: &'static [&'static str] = &["name", "rank", "created_at"];
    const SEARCH: &'static [&'static str] = &["name"];
    const DEFAULT_ORDER: Option<(&'static str, SortOrder)> = Some(("name", SortOrder::Asc));
    const MAX_PAGE_SIZE: u64 = 50;
}

/// A second spec on the same model: no search, no ordering choice.
struct Plain;
impl ListSpec for Plain {
    type Model = Author;
}

#[derive(Model, Clone, Debug)]
struct Tag {
    id: i64,
    #[model(max_length = 20, unique)]
    label: String,
}

impl ListSpec for Tag {
    type Model = Tag;
}

#[derive(serde::Serialize)]
struct AuthorOut {
    id: Uuid,
    name: String,
    rank: i32,
}
impl Schema for AuthorOut {}
impl From<Author> for AuthorOut {
    fn from(a: Author) -> Self {
        AuthorOut {
            id: a.id,
            name: a.name,
            rank: a.rank,
        }
    }
}

#[derive(serde::Deserialize)]
struct AuthorIn {
    name: String,
    #[serde(default)]
    rank: i32,
}
impl ToModel<Author> for AuthorIn {
    fn to_model(self, _: Operation) -> Result<Author, RepositoryError> {
        if self.name.is_empty() || self.name.len() > 50 {
            return Err(RepositoryError::Validation(
                "name must be 1 to 50 characters".into(),
            ));
        }
        Ok(Author {
            id: Uuid::nil(),
            name: self.name,
            rank: self.rank,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        })
    }
}

#[derive(serde::Deserialize)]
struct AuthorPatch {
    rank: Option<i32>,
}
impl ToChanges<Author> for AuthorPatch {
    fn to_changes(self) -> Result<Changes<Author>, RepositoryError> {
        if self.rank.is_some_and(|r| r < 0) {
            return Err(RepositoryError::Validation(
                "rank must not be negative".into(),
            ));
        }
        Ok(Changes::new().set_if(Author::RANK, self.rank))
    }
}

#[get("/authors")]
async fn list(
    params: ListParams<Author>,
    db: Session<'_>,
) -> Result<Jsonify<OffsetPagination<AuthorOut>>, RepositoryError> {
    let authors = Service::<Author>::new(db);
    let (items, total) = authors.list_and_count(params.filters()).await?;
    Ok(Jsonify::ok(authors.to_schema(
        items,
        total,
        params.filters(),
    )))
}

#[get("/plain")]
async fn plain(
    params: Result<ListParams<Plain>, RepositoryError>,
    db: Session<'_>,
) -> Result<Jsonify<OffsetPagination<AuthorOut>>, RepositoryError> {
    let params = params?;
    let authors = Service::<Author>::new(db);
    let (items, total) = authors.list_and_count(params.filters()).await?;
    Ok(Jsonify::ok(authors.to_schema(
        items,
        total,
        params.filters(),
    )))
}

#[get("/tags")]
async fn tags(params: ListParams<Tag>, db: Session<'_>) -> Result<String, RepositoryError> {
    Ok(Repository::<Tag>::new(db)
        .count(params.conditions())
        .await?
        .to_string())
}

#[get("/authors/cursor")]
async fn by_cursor(
    params: ListParams<Author>,
    db: Session<'_>,
    alchemy: &State<Alchemy>,
) -> Result<Jsonify<CursorPage<AuthorOut>>, RepositoryError> {
    let keyset = params.keyset();
    let (rows, more) = Repository::<Author>::new(db)
        .list_keyset(params.conditions(), keyset)
        .await?;
    let next_cursor = more.then(|| alchemy.cursor_codec().encode(keyset, rows.last().unwrap()));
    Ok(Jsonify::ok(CursorPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

#[post("/authors", data = "<input>")]
async fn create(
    input: Json<AuthorIn>,
    db: Session<'_>,
) -> Result<Jsonify<AuthorOut>, RepositoryError> {
    let authors = Service::<Author>::new(db);
    let author = authors.create(input.into_inner()).await?;
    Ok(authors.jsonify(Status::Created, author.into()))
}

#[patch("/authors/<id>", data = "<input>")]
async fn update(
    id: Uuid,
    input: Json<AuthorPatch>,
    db: Session<'_>,
) -> Result<Jsonify<AuthorOut>, RepositoryError> {
    let author = Service::<Author>::new(db)
        .update(id, input.into_inner())
        .await?;
    Ok(Jsonify::ok(author.into()))
}

#[get("/authors/<id>")]
async fn one(id: Uuid, db: Session<'_>) -> Result<Jsonify<AuthorOut>, RepositoryError> {
    Ok(Jsonify::ok(
        Service::<Author>::new(db).get(id).await?.into(),
    ))
}

fn app(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(Alchemy::fairing().model::<Author>().model::<Tag>())
        .mount(
            "/",
            routes![list, plain, tags, by_cursor, create, update, one],
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

/// The test kit: each test on its own copy of a `create_all` template.
static KIT: TestKit = TestKit::new(app).figment(config);

async fn body(r: LocalResponse<'_>) -> Value {
    assert_eq!(r.content_type(), Some(ContentType::JSON));
    serde_json::from_str(&r.into_string().await.unwrap()).unwrap()
}

async fn get(client: &Client, uri: &str) -> (u16, Value) {
    let r = client.get(uri.to_string()).dispatch().await;
    let status = r.status().code;
    (status, body(r).await)
}

async fn seed(client: &Client) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, name) in ["Ann", "bob", "Cyd", "dee", "Eve", "fay", "Gus"]
        .iter()
        .enumerate()
    {
        let r = client
            .post("/authors")
            .header(ContentType::JSON)
            .body(json!({ "name": name, "rank": i % 3 }).to_string())
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Created);
        out.push(body(r).await);
    }
    out
}

fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect()
}

async fn list_parameters(app: TestApp) {
    let client = app.client();
    let created = seed(client).await;

    let (status, page) = get(client, "/authors").await;
    assert_eq!(status, 200);
    let keys: Vec<&String> = page.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["items", "limit", "offset", "total"],
        "OffsetPagination's exact shape"
    );
    assert_eq!(
        (
            page["limit"].as_u64(),
            page["offset"].as_u64(),
            page["total"].as_u64()
        ),
        (Some(10), Some(0), Some(7))
    );

    let (_, page) = get(
        client,
        "/authors?currentPage=2&pageSize=3&orderBy=rank&sortOrder=desc",
    )
    .await;
    assert_eq!(
        (
            page["limit"].as_u64(),
            page["offset"].as_u64(),
            page["total"].as_u64()
        ),
        (Some(3), Some(3), Some(7))
    );
    let ranks: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rank"].as_i64().unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");

    let (_, page) = get(client, "/authors?searchString=E&searchIgnoreCase=true").await;
    let mut found = names(&page);
    found.sort(); // the order of mixed-case names follows each database's collation
    assert_eq!(found, ["Eve", "dee"]);
    let (_, page) = get(client, "/authors?searchString=E").await;
    assert_eq!(names(&page), ["Eve"], "case-sensitive by default");

    let id = |i: usize| created[i]["id"].as_str().unwrap().to_string();
    let sorted = |page: &Value| {
        let mut n: Vec<String> = names(page).into_iter().map(str::to_string).collect();
        n.sort();
        n
    };
    let (_, page) = get(client, &format!("/authors?ids={}&ids={}", id(0), id(3))).await;
    assert_eq!(sorted(&page), ["Ann", "dee"]);
    let (_, page) = get(client, &format!("/authors?ids={},{}", id(1), id(2))).await;
    assert_eq!(sorted(&page), ["Cyd", "bob"]);

    let far_past = "2000-01-01T00:00:00Z";
    let far_future = (Utc::now() + chrono::TimeDelta::days(1))
        .to_rfc3339()
        .replace('+', "%2B");
    let (_, page) = get(
        client,
        &format!("/authors?createdAfter={far_past}&createdBefore={far_future}"),
    )
    .await;
    assert_eq!(page["total"], 7);
    let (_, page) = get(client, &format!("/authors?updatedAfter={far_future}")).await;
    assert_eq!(page["total"], 0);
    let (_, page) = get(client, "/authors?createdBefore=2000-01-01").await;
    assert_eq!(page["total"], 0, "a date means midnight UTC");

    // Keyset pages through the same parameters.
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let uri = match &cursor {
            Some(c) => format!("/authors/cursor?pageSize=3&orderBy=rank&cursor={c}"),
            None => "/authors/cursor?pageSize=3&orderBy=rank".to_string(),
        };
        let (status, page) = get(client, &uri).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(names(&page).into_iter().map(str::to_string));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    let tampered = cursor
        .map(|c| c.replacen('A', "B", 1))
        .unwrap_or_else(|| "x".into());
    let (status, error) = get(
        client,
        &format!("/authors/cursor?orderBy=rank&cursor={tampered}"),
    )
    .await;
    assert_eq!(
        (status, error["detail"].as_str()),
        (400, Some("cursor is invalid or expired"))
    );
}

async fn bad_parameters(app: TestApp) {
    let client = app.client();
    seed(client).await;
    let cases = [
        ("/authors?pageSize=0", "pageSize"),
        ("/authors?pageSize=51", "pageSize"),
        ("/authors?pageSize=1.5", "pageSize"),
        ("/authors?pageSize=ten", "pageSize"),
        ("/authors?pageSize=-1", "pageSize"),
        ("/authors?currentPage=0", "currentPage"),
        ("/authors?currentPage=x", "currentPage"),
        ("/authors?currentPage=99999999999999999999", "currentPage"),
        (
            "/authors?currentPage=999999999999999999&pageSize=50",
            "currentPage",
        ),
        ("/authors?orderBy=password", "orderBy"),
        ("/authors?orderBy=id", "orderBy"),
        ("/authors?orderBy=name&sortOrder=up", "sortOrder"),
        (
            "/authors?searchString=a&searchIgnoreCase=maybe",
            "searchIgnoreCase",
        ),
        ("/authors?ids=not-a-uuid", "ids"),
        ("/authors?currentPage=999999999999999999", "currentPage"),
        ("/authors?createdBefore=yesterday", "createdBefore"),
        ("/authors?updatedAfter=2024-13-40", "updatedAfter"),
        ("/authors?cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("/plain?searchString=a", "searchString"),
        ("/plain?orderBy=name", "orderBy"),
        ("/tags?createdAfter=2024-01-01", "createdAfter"),
    ];
    for (uri, parameter) in cases {
        let (status, error) = get(client, uri).await;
        assert_eq!(status, 400, "{uri}: {error}");
        assert_eq!(error["status_code"], 400, "{uri}");
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.contains(parameter),
            "{uri}: the detail names `{parameter}`: {detail}"
        );
    }
    // `ids=` with nothing in it is an empty collection: no rows, not an error.
    let (status, page) = get(client, "/authors?ids=").await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(0)));
}

async fn service_and_error_responses(app: TestApp) {
    let client = app.client();
    let created = seed(client).await;
    let ann = created[0]["id"].as_str().unwrap().to_string();

    let r = client
        .post("/authors")
        .header(ContentType::JSON)
        .body(r#"{"name": ""}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::UnprocessableEntity);
    assert_eq!(
        body(r).await,
        json!({ "status_code": 422, "detail": "name must be 1 to 50 characters" })
    );

    let r = client
        .post("/authors")
        .header(ContentType::JSON)
        .body(r#"{"name": "Ann"}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Conflict);
    let error = body(r).await;
    assert_eq!(
        error,
        json!({ "status_code": 409, "detail": "A record matching the supplied data already exists." })
    );

    let (status, error) = get(client, &format!("/authors/{}", Uuid::new_v4())).await;
    assert_eq!(
        (status, error),
        (
            404,
            json!({ "status_code": 404, "detail": "The requested resource was not found" })
        )
    );

    let r = client
        .patch(format!("/authors/{ann}"))
        .header(ContentType::JSON)
        .body(r#"{"rank": 9}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(body(r).await["rank"], 9);
    let r = client
        .patch(format!("/authors/{ann}"))
        .header(ContentType::JSON)
        .body(r#"{"rank": -1}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::UnprocessableEntity);
    let r = client
        .patch(format!("/authors/{ann}"))
        .header(ContentType::JSON)
        .body(r#"{}"#)
        .dispatch()
        .await;
    assert_eq!(body(r).await["rank"], 9, "an empty patch changes nothing");

    // Rocket's own errors are JSON too, and no error body carries SQL or driver text.
    let (status, error) = get(client, "/nowhere").await;
    assert_eq!((status, error["status_code"].as_u64()), (404, Some(404)));
    let r = client
        .post("/authors")
        .header(ContentType::JSON)
        .body("{")
        .dispatch()
        .await;
    assert!(matches!(r.status().code, 400 | 422));
    let text = r.into_string().await.unwrap();
    for leak in ["SELECT", "INSERT", "constraint", "sqlx", "duplicate"] {
        assert!(!text.contains(leak), "{text}");
    }
    assert_eq!(Probe::of(app.database("default")).count("author").await, 7);
}

/// The Rocket `secret_key` of [`forged_cursors_are_rejected`]: the test derives the cursor key
/// from it as the README documents, independently of the crate's codec.
const SECRET: &str = "a test secret the cursor key is derived from";

/// HMAC-SHA256 of `payload` under the key the README documents for an app with `secret_key`
/// [`SECRET`]: SHA-256 of `"rocket_alchemy cursor\0"` followed by the secret.
fn sign(payload: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    use sha2::Digest;
    let key = sha2::Sha256::new()
        .chain_update(b"rocket_alchemy cursor\0")
        .chain_update(SECRET.as_bytes())
        .finalize();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// base64url (no padding) of `payload` followed by `tag`: a cursor as the codec lays it out.
fn cursor_of(payload: &[u8], tag: &[u8]) -> String {
    use base64::Engine;
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(tag);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Cursors are signed: a well-formed cursor naming another position (same ordering, valid
/// values) is refused with a wrong or missing signature, and accepted — and honoured — when
/// signed with the app's key. Only the signature separates the two, so the test fails if
/// the check is skipped.
async fn forged_cursors_are_rejected(app: TestApp) {
    use base64::Engine;
    let client = app.client();
    seed(client).await;
    let first = "/authors/cursor?pageSize=3&orderBy=rank&sortOrder=asc";
    let (status, page) = get(client, first).await;
    assert_eq!(status, 200, "{page}");
    let issued = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();

    // The server's cursor, taken apart by hand: JSON payload, then a 32-byte HMAC tag.
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&issued)
        .unwrap();
    let (payload, tag) = bytes.split_at(bytes.len() - 32);
    assert_eq!(
        sign(payload),
        tag,
        "the key the README documents signs the cursors"
    );
    let mut json: Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(json["o"], json!(["rank:0", "id:0"]), "{json}");
    assert_eq!(json["p"].as_array().map(Vec::len), Some(2), "{json}");
    let (status, page) = get(client, &format!("{first}&cursor={issued}")).await;
    assert_eq!(status, 200, "the issued cursor is accepted: {page}");
    assert_eq!(names(&page).len(), 3);

    // Another position: after every rank-1 row, so the next page is the rank-2 rows.
    json["p"] = json!(["1", "ffffffff-ffff-ffff-ffff-ffffffffffff"]);
    let forged = serde_json::to_vec(&json).unwrap();
    let detail = Some("cursor is invalid or expired");
    for (what, cursor) in [
        ("the issued cursor's signature", cursor_of(&forged, tag)),
        ("a zero signature", cursor_of(&forged, &[0; 32])),
        ("a signature with one bit altered", {
            let mut bad = sign(&forged);
            bad[0] ^= 1;
            cursor_of(&forged, &bad)
        }),
    ] {
        let (status, error) = get(client, &format!("{first}&cursor={cursor}")).await;
        assert_eq!(
            (status, error["detail"].as_str()),
            (400, detail),
            "a forged position with {what} is refused: {error}"
        );
    }
    // Signed with the app's key, the same payload is accepted and names that position.
    let signed = cursor_of(&forged, &sign(&forged));
    let (status, page) = get(client, &format!("{first}&cursor={signed}")).await;
    assert_eq!(status, 200, "a correctly signed cursor is accepted: {page}");
    let mut found = names(&page);
    found.sort();
    assert_eq!(found, ["Cyd", "fay"], "the signed position is honoured");
}

/// The app with a Rocket `secret_key` of [`SECRET`].
fn with_secret(figment: Figment) -> Figment {
    figment.merge(rocket::figment::providers::Serialized::default(
        "secret_key",
        SECRET,
    ))
}

rocket_alchemy::test_on_backends!(KIT => list_parameters, bad_parameters, service_and_error_responses);
rocket_alchemy::test_on_backends!(KIT, with = with_secret => forged_cursors_are_rejected);
