//! Commit modes × final statuses, on every backend, checked through an independent
//! connection.

mod common;

use common::TestDb;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::request::{FromRequest, Outcome};
use rocket::{catch, catchers, get, routes, Request};
use rocket_alchemy::sea_query::Query;
use rocket_alchemy::{Alchemy, CommitMode, Model, Session, SessionError};

#[derive(Model, Debug)]
struct Event {
    id: i64,
    #[model(max_length = 64)]
    marker: String,
}

async fn insert(session: &Session<'_>, marker: &str) -> Result<(), SessionError> {
    let insert = Query::insert()
        .into_table("event")
        .columns(["marker"])
        .values_panic([marker.into()])
        .to_owned();
    session.execute(&insert).await.map(drop)
}

#[get("/status/<code>/<marker>")]
async fn with_status(
    code: u16,
    marker: &str,
    session: Session<'_>,
) -> Result<(Status, &'static str), SessionError> {
    insert(&session, marker).await?;
    Ok((Status::new(code), "body"))
}

#[get("/panic/<marker>")]
async fn panics(marker: &str, session: Session<'_>) -> &'static str {
    insert(&session, marker).await.unwrap();
    panic!("handler panics after writing");
}

#[get("/teapot/<marker>")]
async fn teapot(marker: &str, session: Session<'_>) -> Result<&'static str, Status> {
    insert(&session, marker)
        .await
        .map_err(|_| Status::InternalServerError)?;
    Err(Status::ImATeapot)
}

/// A catcher that turns the 418 into a 200: the *final* status decides.
#[catch(418)]
fn rescue() -> (Status, &'static str) {
    (Status::Ok, "rescued by a catcher")
}

/// A guard that writes through the session, then forwards: no route matches, so the 404
/// catcher answers.
struct WritesThenForwards;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for WritesThenForwards {
    type Error = ();
    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let session = request.guard::<Session<'_>>().await.unwrap();
        let marker = request.query_value::<&str>("marker").unwrap().unwrap();
        insert(&session, marker).await.unwrap();
        Outcome::Forward(Status::NotFound)
    }
}

#[get("/forward")]
fn forwarded(_guard: WritesThenForwards) -> &'static str {
    "never"
}

#[get("/manual/<marker>?<commit>")]
async fn manual(
    marker: &str,
    commit: bool,
    session: Session<'_>,
) -> Result<&'static str, SessionError> {
    insert(&session, marker).await?;
    if commit {
        session.commit().await?;
    }
    Ok("ok")
}

async fn client(db: &TestDb, mode: CommitMode) -> Client {
    let rocket = db
        .rocket(&format!(
            "[databases.default]\ncommit_mode = \"{mode}\"\ncreate_all = true\nmax_connections = 3"
        ))
        .attach(Alchemy::fairing().model::<Event>())
        .mount("/", routes![with_status, panics, teapot, forwarded, manual])
        .register("/", catchers![rescue]);
    Client::tracked(rocket).await.expect("valid rocket")
}

enum Case {
    Status(u16),
    Panic,
    CatcherRescue,
    CatcherForward,
}

/// Committed? in `manual`, `autocommit`, `autocommit_include_redirect` mode.
type Expected = [bool; 3];
const NONE: Expected = [false, false, false];
const AUTO: Expected = [false, true, true];
const REDIRECT: Expected = [false, false, true];

/// The README's commit table, written out status by status (the boundaries 299/300 and
/// 399/400 included), never computed by the code under test.
async fn commit_table(db: TestDb) {
    let cases = [
        (Case::Status(200), AUTO),
        (Case::Status(201), AUTO),
        (Case::Status(204), AUTO),
        (Case::Status(299), AUTO),
        (Case::Status(300), REDIRECT),
        (Case::Status(302), REDIRECT),
        (Case::Status(303), REDIRECT),
        (Case::Status(399), REDIRECT),
        (Case::Status(400), NONE),
        (Case::Status(404), NONE),
        (Case::Status(500), NONE),
        (Case::Panic, NONE),
        (Case::CatcherRescue, AUTO),
        (Case::CatcherForward, NONE),
    ];
    let probe = db.probe();
    for (m, mode) in [
        CommitMode::Manual,
        CommitMode::Autocommit,
        CommitMode::AutocommitIncludeRedirect,
    ]
    .into_iter()
    .enumerate()
    {
        let client = client(&db, mode).await;
        for (i, (case, expected)) in cases.iter().enumerate() {
            let marker = format!("{mode}-{i}");
            let (response, final_status) = match case {
                Case::Status(code) => (
                    client
                        .get(format!("/status/{code}/{marker}"))
                        .dispatch()
                        .await,
                    *code,
                ),
                Case::Panic => (client.get(format!("/panic/{marker}")).dispatch().await, 500),
                Case::CatcherRescue => (
                    client.get(format!("/teapot/{marker}")).dispatch().await,
                    200,
                ),
                Case::CatcherForward => (
                    client
                        .get(format!("/forward?marker={marker}"))
                        .dispatch()
                        .await,
                    404,
                ),
            };
            assert_eq!(
                response.status().code,
                final_status,
                "{marker}: unexpected final status"
            );
            let committed = probe.count_where("event", "marker", &marker).await == 1;
            assert_eq!(
                committed, expected[m],
                "{mode} mode, final status {final_status} (case {i}): committed = {committed}"
            );
        }
        // Every connection went back to the pool: none is stuck in an open transaction.
        let alchemy = client.rocket().state::<Alchemy>().unwrap().clone();
        let pool = alchemy.pool("default").unwrap();
        for _ in 0..50 {
            if pool.num_idle() as u32 == pool.size() {
                break;
            }
            rocket::tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            pool.num_idle() as u32,
            pool.size(),
            "{mode}: a connection is still checked out"
        );
    }
}

/// Manual mode: nothing is committed unless the handler commits; an explicit commit
/// persists even though the session would otherwise be rolled back.
async fn manual_mode_commits_only_explicitly(db: TestDb) {
    let client = client(&db, CommitMode::Manual).await;
    let probe = db.probe();
    let r = client.get("/manual/kept?commit=true").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    let r = client.get("/manual/dropped?commit=false").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(probe.count_where("event", "marker", "kept").await, 1);
    assert_eq!(probe.count_where("event", "marker", "dropped").await, 0);
}

backend_tests!(commit_table, manual_mode_commits_only_explicitly);
