//! Constraint and concurrency failures through a real Rocket, checked by status, headers and
//! an independent connection: NOT NULL and CHECK violations answer 409 (the README's
//! `Integrity` row), a PostgreSQL serialization failure raised by `COMMIT` answers 409 with
//! `Retry-After`, and a MySQL deadlock a handler swallowed still answers 409 with
//! `Retry-After` and commits nothing of the victim.
// Some helpers serve tests of one backend feature only.
#![cfg_attr(not(feature = "postgres"), allow(dead_code, unused_imports))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::TestDb;
use rocket::http::Status;
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{post, routes, State};
use rocket_alchemy::sea_query::{Expr, ExprTrait, Query};
use rocket_alchemy::{Alchemy, Session, SessionError};

/// Inserts into `guarded` (created by [`guarded_table`]); `label` absent means NULL.
#[post("/guarded/<id>/<qty>?<label>")]
async fn guarded(
    id: i64,
    qty: i64,
    label: Option<&str>,
    db: Session<'_>,
) -> Result<Status, SessionError> {
    let insert = Query::insert()
        .into_table("guarded")
        .columns(["id", "label", "qty"])
        .values_panic([id.into(), label.map(str::to_string).into(), qty.into()])
        .to_owned();
    db.execute(&insert).await?;
    Ok(Status::Created)
}

/// A table with a NOT NULL and a CHECK constraint, created outside the app.
async fn guarded_table(db: &TestDb) {
    db.probe()
        .execute(
            "CREATE TABLE guarded (id BIGINT PRIMARY KEY, label VARCHAR(20) NOT NULL, \
             qty BIGINT NOT NULL, CONSTRAINT ck_guarded_qty CHECK (qty >= 0))",
        )
        .await;
}

async fn client(db: &TestDb, extra: &str, routes: Vec<rocket::Route>) -> Client {
    let rocket = db
        .rocket(&format!(
            "[databases.default]\ncommit_mode = \"autocommit\"\n{extra}"
        ))
        .attach(Alchemy::fairing())
        .mount("/", routes);
    Client::tracked(rocket).await.expect("valid rocket")
}

/// The status, `Retry-After` and JSON body of an error response.
async fn error_of(r: LocalResponse<'_>) -> (u16, Option<String>, serde_json::Value) {
    let status = r.status().code;
    let retry = r.headers().get_one("Retry-After").map(str::to_string);
    let body = r.into_json().await.unwrap_or(serde_json::Value::Null);
    (status, retry, body)
}

/// NOT NULL and CHECK violations answer 409 with the README's detail, no `Retry-After`
/// (retrying cannot help), and nothing is stored; a valid row goes in.
async fn not_null_and_check_violations_answer_409(db: TestDb) {
    guarded_table(&db).await;
    let client = client(&db, "", routes![guarded]).await;
    let detail = "There was a data validation error during processing";
    for (what, uri) in [
        ("NOT NULL", "/guarded/1/5"),
        ("CHECK", "/guarded/2/-1?label=x"),
    ] {
        let (status, retry, body) = error_of(client.post(uri).dispatch().await).await;
        assert_eq!(
            (status, retry.as_deref(), body["detail"].as_str()),
            (409, None, Some(detail)),
            "{what} violation: {body}"
        );
        assert_eq!(body["status_code"], 409);
    }
    assert_eq!(db.probe().count("guarded").await, 0, "nothing stored");
    let r = client.post("/guarded/3/5?label=ok").dispatch().await;
    assert_eq!(r.status(), Status::Created);
    assert_eq!(db.probe().count("guarded").await, 1);
}

backend_tests!(not_null_and_check_violations_answer_409);

/// Two barriers: after both handlers read, after both wrote.
struct Gates {
    read: rocket::tokio::sync::Barrier,
    written: rocket::tokio::sync::Barrier,
    /// Statements that succeeded inside handlers.
    writes: AtomicUsize,
}

impl Gates {
    fn new() -> Gates {
        Gates {
            read: rocket::tokio::sync::Barrier::new(2),
            written: rocket::tokio::sync::Barrier::new(2),
            writes: AtomicUsize::new(0),
        }
    }
}

/// Write skew under SERIALIZABLE: both handlers count, both insert, and both inserts
/// succeed before either commits, so PostgreSQL can only refuse one at `COMMIT`.
#[post("/skew/<label>")]
async fn skew(label: &str, db: Session<'_>, gates: &State<Gates>) -> Result<Status, SessionError> {
    let count = Query::select()
        .expr(Expr::col("id").count())
        .from("ledger")
        .to_owned();
    let (n,): (i64,) = db.fetch_one(&count).await?;
    gates.read.wait().await;
    let insert = Query::insert()
        .into_table("ledger")
        .columns(["label"])
        .values_panic([format!("{label}-{n}").into()])
        .to_owned();
    db.execute(&insert).await?;
    gates.writes.fetch_add(1, Ordering::SeqCst);
    gates.written.wait().await;
    Ok(Status::Created)
}

/// PostgreSQL: a serialization failure raised by `COMMIT` (both handlers' statements
/// succeeded) answers 409 with `Retry-After: 1`, and only the winner's row is stored.
async fn serialization_failure_at_commit_answers_409(db: TestDb) {
    db.probe()
        .execute("CREATE TABLE ledger (id BIGSERIAL PRIMARY KEY, label VARCHAR(40) NOT NULL)")
        .await;
    let rocket = db
        .rocket(
            "[databases.default]\ncommit_mode = \"autocommit\"\nisolation_level = \"serializable\"",
        )
        .attach(Alchemy::fairing())
        .manage(Gates::new())
        .mount("/", routes![skew]);
    let client = Client::tracked(rocket).await.unwrap();
    let (a, b) = rocket::tokio::join!(
        client.post("/skew/a").dispatch(),
        client.post("/skew/b").dispatch()
    );
    assert_eq!(
        client
            .rocket()
            .state::<Gates>()
            .unwrap()
            .writes
            .load(Ordering::SeqCst),
        2,
        "both inserts succeeded: the conflict can only be raised by COMMIT"
    );
    let (a, b) = (error_of(a).await, error_of(b).await);
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let conflict = if a.0 == 409 { a } else { b };
    assert_eq!(conflict.1.as_deref(), Some("1"), "Retry-After");
    assert_eq!(conflict.2["status_code"], 409);
    assert_eq!(
        db.probe().count("ledger").await,
        1,
        "only the winner committed"
    );
}

/// Locks `first`, waits for the other handler to lock its row, then updates `second`: the
/// two requests deadlock. The handler swallows its error and answers 201 anyway.
#[post("/cross/<label>/<first>/<second>")]
async fn cross(
    label: &str,
    first: i64,
    second: i64,
    db: Session<'_>,
    gates: &State<Gates>,
) -> Result<Status, SessionError> {
    let update = |id: i64| {
        Query::update()
            .table("ledger")
            .value("label", label)
            .and_where(Expr::col("id").eq(id))
            .to_owned()
    };
    db.execute(&update(first)).await?;
    gates.read.wait().await;
    if db.execute(&update(second)).await.is_ok() {
        gates.writes.fetch_add(1, Ordering::SeqCst);
    }
    Ok(Status::Created)
}

/// A deadlock between two requests (MySQL: InnoDB rolls the victim's whole transaction
/// back; PostgreSQL: 40P01 aborts it): the victim's handler swallowed the error and returned
/// 201, yet the request answers 409 with `Retry-After: 1` and none of its writes is stored
/// (both rows carry the winner's label). SQLite has one writer at a time: no deadlock.
async fn deadlock_answers_409(db: TestDb) {
    db.probe()
        .execute(
            "CREATE TABLE ledger (id BIGINT PRIMARY KEY, label VARCHAR(40) NOT NULL); \
             INSERT INTO ledger VALUES (1, 'start'), (2, 'start')",
        )
        .await;
    let rocket = db
        .rocket("[databases.default]\ncommit_mode = \"autocommit\"")
        .attach(Alchemy::fairing())
        .manage(Gates::new())
        .mount("/", routes![cross]);
    let client = Client::tracked(rocket).await.unwrap();
    let (a, b) = rocket::tokio::join!(
        client.post("/cross/a/1/2").dispatch(),
        client.post("/cross/b/2/1").dispatch()
    );
    let (a, b) = (error_of(a).await, error_of(b).await);
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let (winner, conflict) = if a.0 == 409 { ("b", a) } else { ("a", b) };
    assert_eq!(conflict.1.as_deref(), Some("1"), "Retry-After");
    assert_eq!(conflict.2["status_code"], 409);
    assert_eq!(
        db.probe().count_where("ledger", "label", winner).await,
        2,
        "the winner's two updates are stored, none of the victim's"
    );
}

/// Declares `mod $name { $backend... }` tests of `async fn $name(db: TestDb)` on the server
/// backends named (`postgres`, `pgbouncer`, `mysql`): for behaviour only they have.
macro_rules! server_tests {
    ($name:ident: $($backend:ident),+) => {
        mod $name {
            $(server_tests!(@one $name $backend);)+
        }
    };
    (@one $name:ident postgres) => {
        #[cfg(feature = "postgres")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn postgres() {
            if let Some(db) = crate::common::TestDb::postgres(stringify!($name)).await {
                super::$name(db).await;
            }
        }
    };
    (@one $name:ident pgbouncer) => {
        #[cfg(feature = "postgres")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn pgbouncer() {
            if let Some(db) = crate::common::TestDb::pgbouncer(stringify!($name)).await {
                super::$name(db).await;
            }
        }
    };
    (@one $name:ident mysql) => {
        #[cfg(feature = "mysql")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn mysql() {
            if let Some(db) = crate::common::TestDb::mysql(stringify!($name)).await {
                super::$name(db).await;
            }
        }
    };
}

// SERIALIZABLE's commit-time checks are PostgreSQL's (SQLite serializes writers; InnoDB's
// SERIALIZABLE locks instead, failing statements, not commits).
server_tests!(serialization_failure_at_commit_answers_409: postgres, pgbouncer);
server_tests!(deadlock_answers_409: postgres, pgbouncer, mysql);
