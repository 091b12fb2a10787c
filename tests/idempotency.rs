//! `Idempotency-Key` (`rocket_alchemy::idempotency`) on every backend: a retry replays the
//! stored response and writes nothing; a rolled-back request leaves no record; the same
//! key with another request is a 422; a duplicate of an in-flight request is a 409 on the
//! servers and waits then replays on SQLite; records expire. Every record and row is
//! checked through an independent connection.

mod common;

use std::sync::Arc;

use common::Probe;
use rocket::figment::providers::{Format, Serialized, Toml};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::LocalResponse;
use rocket::serde::json::Json;
use rocket::tokio::sync::Notify;
use rocket::{post, routes, Build, Rocket, State};
use rocket_alchemy::idempotency::{Idempotency, IdempotencyRecord, Idempotent};
use rocket_alchemy::testing::{TestApp, TestKit};
use rocket_alchemy::{
    Alchemy, Backend, CommitMode, Jsonify, Model, Repository, RepositoryError, Schema, Session,
};

#[derive(Model, Debug, Clone)]
struct Item {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(max_length = 64)]
    label: String,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct ItemIn {
    label: String,
}

#[derive(serde::Serialize)]
struct ItemOut {
    id: i64,
    label: String,
}
impl Schema for ItemOut {}

/// Makes the first request of `/slow` hold its transaction open after claiming its key.
#[derive(Default)]
struct Gate {
    /// Each `/slow` request, on entering the handler (before its claim).
    arrived: Notify,
    /// The first request claimed its key and waits.
    claimed: Notify,
    /// Lets it go on.
    release: Notify,
}

async fn create_item(db: &Session<'_>, label: &str) -> Result<ItemOut, RepositoryError> {
    let item = Repository::<Item>::new(*db)
        .create(Item {
            id: 0,
            label: label.into(),
        })
        .await?;
    Ok(ItemOut {
        id: item.id,
        label: item.label,
    })
}

/// Creates an item, answering `status` (201 by default); `fail` makes the work fail (422)
/// after its write; `commit` commits after `run` (manual mode).
#[post("/items?<status>&<fail>&<commit>", data = "<input>")]
async fn items(
    input: Json<ItemIn>,
    status: Option<u16>,
    fail: Option<bool>,
    commit: Option<bool>,
    key: Idempotency,
    db: Session<'_>,
) -> Result<Idempotent, RepositoryError> {
    let response = key
        .run(&db, input.into_inner(), |input| async move {
            let item = create_item(&db, &input.label).await?;
            if fail == Some(true) {
                return Err(RepositoryError::Validation("refused after writing".into()));
            }
            Ok(Jsonify::with_status(
                Status::new(status.unwrap_or(201)),
                item,
            ))
        })
        .await;
    if commit == Some(true) {
        db.commit().await?;
    }
    response
}

#[post("/slow", data = "<input>")]
async fn slow(
    input: Json<ItemIn>,
    key: Idempotency,
    db: Session<'_>,
    gate: &State<Arc<Gate>>,
) -> Result<Idempotent, RepositoryError> {
    gate.arrived.notify_one();
    key.run(&db, input.into_inner(), |input| async move {
        gate.claimed.notify_one();
        gate.release.notified().await;
        Ok(Jsonify::with_status(
            Status::Created,
            create_item(&db, &input.label).await?,
        ))
    })
    .await
}

/// Purges the expired records; answers how many.
#[post("/purge")]
async fn purge(db: Session<'_>) -> Result<String, RepositoryError> {
    Ok(Idempotency::purge(&db).await?.to_string())
}

fn app(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(
            Alchemy::fairing()
                .model::<Item>()
                .model::<IdempotencyRecord>(),
        )
        .manage(Arc::new(Gate::default()))
        .mount("/", routes![items, slow, purge])
        .register("/", rocket_alchemy::params::catchers())
}

fn config() -> Figment {
    Figment::from(rocket::Config::default())
        .merge(Toml::string("[default.databases.default]\nurl = \"sqlite://unused.db\"").nested())
}

static KIT: TestKit = TestKit::new(app).figment(config);

fn mode(figment: Figment, mode: CommitMode) -> Figment {
    figment.merge(Serialized::default(
        "databases.default.commit_mode",
        mode.to_string(),
    ))
}
fn autocommit(f: Figment) -> Figment {
    mode(f, CommitMode::Autocommit)
}
fn manual(f: Figment) -> Figment {
    mode(f, CommitMode::Manual)
}
/// Autocommit, records remembered for a minute.
fn short_ttl(f: Figment) -> Figment {
    autocommit(f).merge(Serialized::default("databases.default.idempotency_ttl", 60))
}

/// `name` quoted for the backend (`key` is reserved on MySQL).
fn q(app: &TestApp, name: &str) -> String {
    match app.backend() {
        Backend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    }
}

/// The number of records with `key`, and of them how many stored a response.
async fn records(app: &TestApp, key: &str) -> (i64, i64) {
    let probe = Probe::of(app.database("default"));
    let (table, k, status) = (q(app, "idempotency_key"), q(app, "key"), q(app, "status"));
    let all = format!("SELECT COUNT(*) FROM {table} WHERE {k} = '{key}'");
    let done = format!("{all} AND {status} IS NOT NULL");
    (probe.scalar(&all).await, probe.scalar(&done).await)
}

async fn items_labelled(app: &TestApp, label: &str) -> i64 {
    Probe::of(app.database("default"))
        .count_where("item", "label", label)
        .await
}

async fn post<'a>(
    app: &'a TestApp,
    uri: &str,
    key: Option<&str>,
    label: &str,
) -> LocalResponse<'a> {
    let mut request = app
        .post(uri.to_string())
        .header(rocket::http::ContentType::JSON)
        .body(serde_json::json!({ "label": label }).to_string());
    if let Some(key) = key {
        request = request.header(Header::new("Idempotency-Key", key.to_string()));
    }
    request.dispatch().await
}

/// (status, body, whether it is a replay).
async fn parts(response: LocalResponse<'_>) -> (u16, String, bool) {
    let status = response.status().code;
    let replayed = response.headers().get_one("Idempotent-Replayed") == Some("true");
    (
        status,
        response.into_string().await.unwrap_or_default(),
        replayed,
    )
}

async fn retry_replays_the_stored_response(app: TestApp) {
    let (status, first, replayed) = parts(post(&app, "/items", Some("k1"), "a").await).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, second, replayed) = parts(post(&app, "/items", Some("k1"), "a").await).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(second, first, "the same body, byte for byte");
    assert_eq!(items_labelled(&app, "a").await, 1, "written once");
    assert_eq!(records(&app, "k1").await, (1, 1));

    // The same key with another body: 422, nothing written.
    let response = post(&app, "/items", Some("k1"), "b").await;
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let body: serde_json::Value = response.into_json().await.unwrap();
    assert_eq!(body["status_code"], 422);
    assert_eq!(items_labelled(&app, "b").await, 0);

    // Another key runs again; no key runs every time.
    assert_eq!(
        post(&app, "/items", Some("k2"), "a").await.status().code,
        201
    );
    assert_eq!(post(&app, "/items", None, "a").await.status().code, 201);
    assert_eq!(post(&app, "/items", None, "a").await.status().code, 201);
    assert_eq!(items_labelled(&app, "a").await, 4);
    assert_eq!(records(&app, "k2").await, (1, 1));
    let probe = Probe::of(app.database("default"));
    assert_eq!(probe.count("idempotency_key").await, 2);
}

async fn malformed_keys_are_400(app: TestApp) {
    for key in ["", &"k".repeat(256), "naïve"] {
        let response = post(&app, "/items", Some(key), "a").await;
        assert_eq!(response.status(), Status::BadRequest, "key {key:?}");
        let body: serde_json::Value = response.into_json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("Idempotency-Key"),
            "{body}"
        );
    }
    assert_eq!(items_labelled(&app, "a").await, 0);
}

async fn rolled_back_requests_leave_no_record(app: TestApp) {
    // A 4xx response is rolled back by autocommit: the work's row and the record both.
    let response = post(&app, "/items?status=409", Some("k"), "a").await;
    assert_eq!(response.status().code, 409);
    assert_eq!(records(&app, "k").await, (0, 0));
    assert_eq!(items_labelled(&app, "a").await, 0);
    // A failing work: its error, nothing kept.
    let response = post(&app, "/items?fail=true", Some("k"), "a").await;
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert_eq!(records(&app, "k").await, (0, 0));
    // The retry runs the work.
    let (status, _, replayed) = parts(post(&app, "/items", Some("k"), "a").await).await;
    assert_eq!((status, replayed), (201, false));
    assert_eq!(items_labelled(&app, "a").await, 1);
    assert_eq!(records(&app, "k").await, (1, 1));
}

async fn manual_mode_commits_after_run(app: TestApp) {
    // Not committed: nothing kept, a retry runs again.
    assert_eq!(
        post(&app, "/items", Some("k"), "a").await.status().code,
        201
    );
    assert_eq!(records(&app, "k").await, (0, 0));
    let (status, first, _) = parts(post(&app, "/items?commit=true", Some("k"), "a").await).await;
    assert_eq!(status, 201);
    let (status, again, replayed) =
        parts(post(&app, "/items?commit=true", Some("k"), "a").await).await;
    assert_eq!((status, replayed, again), (201, true, first));
    assert_eq!(items_labelled(&app, "a").await, 1);
    // A failed work whose transaction the handler commits anyway: its claim is removed,
    // so the key is free again (its write is the handler's business).
    let response = post(&app, "/items?fail=true&commit=true", Some("f"), "b").await;
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert_eq!(records(&app, "f").await, (0, 0));
    assert_eq!(
        post(&app, "/items?commit=true", Some("f"), "b")
            .await
            .status()
            .code,
        201
    );
    assert_eq!(records(&app, "f").await, (1, 1));
}

/// The first request claims its key and holds its transaction open; the duplicate comes
/// meanwhile. PostgreSQL and MySQL answer it 409 at once; on SQLite it waits behind the
/// first (writers take turns) and replays its response.
async fn in_flight_duplicates(app: TestApp) {
    let gate = Arc::clone(app.rocket().state::<Arc<Gate>>().unwrap());
    let sqlite = app.backend() == Backend::Sqlite;
    let first = post(&app, "/slow", Some("k"), "a");
    let second = async {
        gate.arrived.notified().await;
        gate.claimed.notified().await;
        let second = post(&app, "/slow", Some("k"), "a");
        if sqlite {
            // Let the first go once the duplicate is in the handler: its claim waits for
            // the write queue, which the first holds until it commits.
            let release = async {
                gate.arrived.notified().await;
                gate.release.notify_one();
            };
            rocket::tokio::join!(second, release).0
        } else {
            let response = second.await;
            gate.release.notify_one();
            response
        }
    };
    let (first, second) = rocket::tokio::join!(first, second);
    let (first_status, first_body, _) = parts(first).await;
    assert_eq!(first_status, 201, "{first_body}");
    let retry_after = second.headers().get_one("Retry-After").map(str::to_string);
    let (status, body, replayed) = parts(second).await;
    if sqlite {
        assert_eq!((status, replayed), (201, true), "{body}");
        assert_eq!(body, first_body);
    } else {
        assert_eq!(status, 409, "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(body.contains("still being processed"), "{body}");
    }
    assert_eq!(items_labelled(&app, "a").await, 1, "written once");
    assert_eq!(records(&app, "k").await, (1, 1));
    // Once the first committed, a retry replays.
    let (status, body, replayed) = parts(post(&app, "/slow", Some("k"), "a").await).await;
    assert_eq!((status, replayed, body), (201, true, first_body));
}

/// A key remembered for a minute: backdated past that, its record is replaced and the
/// work runs again (even with another body); `purge` deletes what expired.
async fn expired_keys_start_over(app: TestApp) {
    assert_eq!(
        post(&app, "/items", Some("old"), "a").await.status().code,
        201
    );
    assert_eq!(
        post(&app, "/items", Some("gone"), "a").await.status().code,
        201
    );
    let backdate = |key: &str| {
        format!(
            "UPDATE {} SET {} = '2000-01-01 00:00:00' WHERE {} = '{key}'",
            q(&app, "idempotency_key"),
            q(&app, "created_at"),
            q(&app, "key")
        )
    };
    let probe = Probe::of(app.database("default"));
    probe.execute(&backdate("old")).await;
    probe.execute(&backdate("gone")).await;
    let (status, _, replayed) = parts(post(&app, "/items", Some("old"), "b").await).await;
    assert_eq!((status, replayed), (201, false), "expired: runs again");
    assert_eq!(items_labelled(&app, "b").await, 1);
    assert_eq!(records(&app, "old").await, (1, 1));
    let (_, _, replayed) = parts(post(&app, "/items", Some("old"), "b").await).await;
    assert!(replayed, "the renewed record replays");

    let purged = app.post("/purge").dispatch().await;
    // (On SQLite the count is the DELETE's own, though its `BEGIN` travels with it.)
    assert_eq!(purged.into_string().await.as_deref(), Some("1"));
    assert_eq!(records(&app, "gone").await, (0, 0));
    assert_eq!(records(&app, "old").await, (1, 1), "not expired: kept");
}

rocket_alchemy::test_on_backends!(KIT, with = autocommit => retry_replays_the_stored_response);
rocket_alchemy::test_on_backends!(KIT, with = autocommit => malformed_keys_are_400);
rocket_alchemy::test_on_backends!(KIT, with = autocommit => rolled_back_requests_leave_no_record);
rocket_alchemy::test_on_backends!(KIT, with = manual => manual_mode_commits_after_run);
rocket_alchemy::test_on_backends!(KIT, with = autocommit => in_flight_duplicates);
rocket_alchemy::test_on_backends!(KIT, with = short_ttl => expired_keys_start_over);
