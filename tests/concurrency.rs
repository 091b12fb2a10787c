//! Readers and writers under concurrency: SQLite's write queue and reader/writer sessions,
//! the upgrade of a reader that writes, queue and pool waits answered 503 with
//! `Retry-After`, and a list's page and total taken from one snapshot.

mod common;

use std::sync::Arc;

use common::TestDb;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::serde::json::Json;
use rocket::tokio::sync::Notify;
use rocket::{get, post, routes, State};
use rocket_alchemy::filters::{Filter, SortOrder};
use rocket_alchemy::sea_query::{Expr, Func, Query};
use rocket_alchemy::{
    Alchemy, AsWriter, Backend, Model, Repository, RepositoryError, Session, SessionError,
};

#[derive(Model, Debug, Clone)]
struct Item {
    id: i64,
    #[model(max_length = 64, unique)]
    label: String,
}

fn insert(label: &str) -> rocket_alchemy::sea_query::InsertStatement {
    Query::insert()
        .into_table("item")
        .columns(["label"])
        .values_panic([label.into()])
        .to_owned()
}

fn count() -> rocket_alchemy::sea_query::SelectStatement {
    Query::select()
        .expr(Func::count(Expr::col("id")))
        .from("item")
        .to_owned()
}

/// Gates a handler can wait on, opened by the test.
#[derive(Default)]
struct Gates {
    /// Told by `/hold` once its write ran, and by `/stale` once its read ran.
    reached: Notify,
    /// Waited on by `/hold` and `/stale` before they go on.
    release: Notify,
}

#[post("/items/<label>")]
async fn create(label: &str, db: Session<'_>) -> Result<Status, SessionError> {
    db.execute(&insert(label)).await?;
    Ok(Status::Created)
}

#[get("/items/count")]
async fn read_count(db: Session<'_>) -> Result<String, SessionError> {
    let (n,): (i64,) = db.fetch_one(&count()).await?;
    Ok(n.to_string())
}

#[get("/items/page?<limit>&<offset>")]
async fn page(
    limit: u64,
    offset: u64,
    db: Session<'_>,
) -> Result<Json<(usize, u64)>, RepositoryError> {
    let (items, total) = Repository::<Item>::new(db)
        .list_and_count(&[
            Filter::order_by(Item::LABEL, SortOrder::Asc),
            Filter::limit_offset(limit, offset),
        ])
        .await?;
    Ok(Json((items.len(), total)))
}

/// A GET that reads, then writes: the reader becomes a writer.
#[get("/bump/<label>")]
async fn bump(label: &str, db: Session<'_>) -> Result<String, SessionError> {
    let (n,): (i64,) = db.fetch_one(&count()).await?;
    db.execute(&insert(label)).await?;
    Ok(n.to_string())
}

/// The same, declared a writer up front.
#[get("/bump-as-writer/<label>")]
async fn bump_as_writer(
    _w: AsWriter,
    label: &str,
    db: Session<'_>,
    gates: &State<Gates>,
) -> Result<String, SessionError> {
    let (n,): (i64,) = db.fetch_one(&count()).await?;
    gates.reached.notify_one();
    gates.release.notified().await;
    db.execute(&insert(label)).await?;
    Ok(n.to_string())
}

/// Reads, lets the test commit a write elsewhere, then writes.
#[get("/stale/<label>")]
async fn stale(label: &str, db: Session<'_>, gates: &State<Gates>) -> Result<String, SessionError> {
    let (n,): (i64,) = db.fetch_one(&count()).await?;
    gates.reached.notify_one();
    gates.release.notified().await;
    db.execute(&insert(label)).await?;
    Ok(n.to_string())
}

/// Writes, then holds its transaction until the test releases it.
#[post("/hold/<label>")]
async fn hold(label: &str, db: Session<'_>, gates: &State<Gates>) -> Result<Status, SessionError> {
    db.execute(&insert(label)).await?;
    gates.reached.notify_one();
    gates.release.notified().await;
    Ok(Status::Created)
}

/// `PRAGMA synchronous` on the session's connection (a reader's or a writer's).
#[rocket::route(GET, uri = "/pragma")]
async fn pragma_read(db: Session<'_>) -> Result<String, SessionError> {
    pragma(db).await
}

#[post("/pragma")]
async fn pragma_write(db: Session<'_>) -> Result<String, SessionError> {
    db.execute(&insert("writer")).await?;
    pragma(db).await
}

async fn pragma(db: Session<'_>) -> Result<String, SessionError> {
    #[cfg(feature = "sqlite")]
    {
        let mut conn = db.sqlite().await?;
        let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        Ok(format!("{level} {journal}"))
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = db;
        Ok(String::new())
    }
}

const AUTOCOMMIT: &str = "[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\n";

async fn client(db: &TestDb, extra: &str) -> Arc<Client> {
    let rocket = db
        .rocket(extra)
        .attach(Alchemy::fairing().model::<Item>())
        .manage(Gates::default())
        .mount(
            "/",
            routes![
                create,
                read_count,
                page,
                bump,
                bump_as_writer,
                stale,
                hold,
                pragma_read,
                pragma_write
            ],
        );
    Arc::new(Client::untracked(rocket).await.expect("launch"))
}

fn gates(client: &Client) -> &Gates {
    client.rocket().state::<Gates>().expect("gates")
}

/// 200 writers and 200 readers at once: every acknowledged write is stored, no request
/// fails, and the pool is whole afterwards.
async fn writers_and_readers_at_once(db: TestDb) {
    let client = client(
        &db,
        &format!("workers = 8\n{AUTOCOMMIT}max_connections = 8\nconnect_timeout = 30\n"),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = client.clone();
        tasks.push(rocket::tokio::spawn(async move {
            let r = c.post(format!("/items/w{i}")).dispatch().await;
            (true, r.status())
        }));
        let c = client.clone();
        tasks.push(rocket::tokio::spawn(async move {
            let r = c.get("/items/count").dispatch().await;
            (false, r.status())
        }));
    }
    let mut created = 0;
    for task in tasks {
        let (write, status) = task.await.unwrap();
        match write {
            true => {
                assert_eq!(status, Status::Created, "a writer failed");
                created += 1;
            }
            false => assert_eq!(status, Status::Ok, "a reader failed"),
        }
    }
    assert_eq!(created, 200);
    assert_eq!(
        db.probe().count("item").await,
        200,
        "every acknowledged write is stored"
    );
}

/// A GET that reads and then writes: the write is stored.
async fn reader_that_writes_is_upgraded(db: TestDb) {
    let client = client(&db, AUTOCOMMIT).await;
    let r = client.get("/bump/first").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.into_string().await.unwrap(), "0");
    let r = client.get("/bump/second").dispatch().await;
    assert_eq!(r.into_string().await.unwrap(), "1");
    let probe = db.probe();
    assert_eq!(probe.count_where("item", "label", "first").await, 1);
    assert_eq!(probe.count_where("item", "label", "second").await, 1);
}

/// A reader whose snapshot went stale before its first write: on SQLite the write is
/// refused (409 with `Retry-After`) and nothing is written; PostgreSQL (READ COMMITTED, no
/// snapshot) and MySQL (InnoDB inserts do not check the snapshot) store it.
async fn stale_reader_cannot_write_on_sqlite(db: TestDb) {
    let client = client(&db, AUTOCOMMIT).await;
    let request = {
        let c = client.clone();
        rocket::tokio::spawn(async move {
            let r = c.get("/stale/late").dispatch().await;
            let retry = r.headers().get_one("Retry-After").map(str::to_string);
            (r.status(), retry, r.into_string().await.unwrap_or_default())
        })
    };
    let gates = gates(&client);
    gates.reached.notified().await;
    // Another connection commits while the request's read transaction is open.
    db.probe()
        .execute("INSERT INTO item (label) VALUES ('elsewhere')")
        .await;
    gates.release.notify_one();
    let (status, retry, body) = request.await.unwrap();
    let probe = db.probe();
    match db.backend {
        Backend::Sqlite => {
            assert_eq!(status, Status::Conflict, "{body}");
            assert_eq!(retry.as_deref(), Some("1"));
            assert!(body.contains("retry"), "{body}");
            assert_eq!(
                probe.count_where("item", "label", "late").await,
                0,
                "nothing written"
            );
        }
        _ => {
            assert_eq!(status, Status::Ok, "{body}");
            assert_eq!(probe.count_where("item", "label", "late").await, 1);
        }
    }
    assert_eq!(probe.count_where("item", "label", "elsewhere").await, 1);
    // Declared a writer, the same route cannot go stale: on SQLite the outside write waits
    // (busy_timeout) for the request's transaction instead.
    let request = {
        let c = client.clone();
        rocket::tokio::spawn(async move {
            let r = c.get("/bump-as-writer/on-time").dispatch().await;
            (r.status(), r.into_string().await.unwrap_or_default())
        })
    };
    gates.reached.notified().await;
    gates.release.notify_one();
    let (status, body) = request.await.unwrap();
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(probe.count_where("item", "label", "on-time").await, 1);
}

/// A writer that cannot get its turn (SQLite's write queue) or a connection (the pool of a
/// server) within `connect_timeout` answers 503 with `Retry-After`, writes nothing, and
/// the request holding the lock still commits.
async fn waits_past_connect_timeout_answer_503(db: TestDb) {
    let client = client(
        &db,
        &format!("{AUTOCOMMIT}connect_timeout = 1\nmax_connections = 1\n"),
    )
    .await;
    let holder = {
        let c = client.clone();
        rocket::tokio::spawn(async move { c.post("/hold/holder").dispatch().await.status() })
    };
    let gates = gates(&client);
    gates.reached.notified().await;
    let r = client.post("/items/waiter").dispatch().await;
    assert_eq!(r.status(), Status::ServiceUnavailable);
    assert_eq!(r.headers().get_one("Retry-After"), Some("1"));
    let body = r.into_string().await.unwrap();
    assert!(body.contains("\"status_code\":503"), "{body}");
    gates.release.notify_one();
    assert_eq!(holder.await.unwrap(), Status::Created);
    let probe = db.probe();
    assert_eq!(probe.count_where("item", "label", "holder").await, 1);
    assert_eq!(probe.count_where("item", "label", "waiter").await, 0);
    // The queue and pool are free again.
    let r = client.post("/items/after").dispatch().await;
    assert_eq!(r.status(), Status::Created);
}

/// While a writer holds SQLite's write lock and another waits for its turn, readers are
/// served: they would otherwise wait for the writer, which waits for the test, which waits
/// for them. On SQLite with a pool of one, this also shows that a queued writer holds no
/// pooled connection.
async fn readers_do_not_wait_for_writers(db: TestDb) {
    let pool = match db.backend {
        Backend::Sqlite => "max_connections = 1\n",
        _ => "",
    };
    let client = client(&db, &format!("{AUTOCOMMIT}connect_timeout = 30\n{pool}")).await;
    client.post("/items/before").dispatch().await;
    let holder = {
        let c = client.clone();
        rocket::tokio::spawn(async move { c.post("/hold/held").dispatch().await.status() })
    };
    let gates = gates(&client);
    gates.reached.notified().await;
    let queued = (db.backend == Backend::Sqlite).then(|| {
        let c = client.clone();
        rocket::tokio::spawn(async move { c.post("/items/queued").dispatch().await.status() })
    });
    // Let the queued writer reach the queue (a settling delay, not a timing assertion).
    rocket::tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for _ in 0..5 {
        let r = client.get("/items/count").dispatch().await;
        assert_eq!(r.status(), Status::Ok);
        assert_eq!(
            r.into_string().await.unwrap(),
            "1",
            "readers see the last commit, not the open write"
        );
    }
    gates.release.notify_one();
    assert_eq!(holder.await.unwrap(), Status::Created);
    let mut expected = "2";
    if let Some(queued) = queued {
        assert_eq!(queued.await.unwrap(), Status::Created);
        expected = "3";
    }
    let r = client.get("/items/count").dispatch().await;
    assert_eq!(r.into_string().await.unwrap(), expected);
}

/// Pages read while rows are inserted: each page and its total come from one snapshot, so
/// a first page holds `min(limit, total)` rows.
async fn page_and_count_agree_under_inserts(db: TestDb) {
    let client = client(
        &db,
        &format!("workers = 4\n{AUTOCOMMIT}connect_timeout = 30\n"),
    )
    .await;
    let writer = {
        let c = client.clone();
        rocket::tokio::spawn(async move {
            for i in 0..60 {
                assert_eq!(
                    c.post(format!("/items/p{i:03}")).dispatch().await.status(),
                    Status::Created
                );
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..4 {
        let c = client.clone();
        readers.push(rocket::tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..40 {
                let r = c.get("/items/page?limit=25&offset=0").dispatch().await;
                assert_eq!(r.status(), Status::Ok);
                let (len, total): (usize, u64) = r.into_json().await.unwrap();
                assert_eq!(
                    len as u64,
                    total.min(25),
                    "page of {len} with total {total}"
                );
                seen.push(total);
            }
            seen
        }));
    }
    writer.await.unwrap();
    for reader in readers {
        let seen = reader.await.unwrap();
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "totals only grow: {seen:?}"
        );
    }
    let r = client
        .get("/items/page?limit=25&offset=50")
        .dispatch()
        .await;
    assert_eq!(r.into_json::<(usize, u64)>().await.unwrap(), (10, 60));
    let r = client
        .get("/items/page?limit=25&offset=75")
        .dispatch()
        .await;
    assert_eq!(
        r.into_json::<(usize, u64)>().await.unwrap(),
        (0, 60),
        "an empty page past the end still has its total"
    );
}

backend_tests!(
    writers_and_readers_at_once,
    reader_that_writes_is_upgraded,
    stale_reader_cannot_write_on_sqlite,
    waits_past_connect_timeout_answer_503,
    readers_do_not_wait_for_writers,
    page_and_count_agree_under_inserts,
);

/// The list's count runs only when the page does not prove the total. Observed on
/// PostgreSQL, through a view whose filter calls a function that bumps a sequence for each
/// row it looks at: a skipped count looks at the page's rows only.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn count_runs_only_when_the_page_does_not_prove_the_total() {
    let Some(db) = TestDb::postgres("count_skip").await else {
        return;
    };
    let probe = db.probe();
    probe
        .execute(
            "CREATE TABLE base (id BIGINT PRIMARY KEY, label VARCHAR(64) NOT NULL UNIQUE);
             CREATE SEQUENCE looked_at;
             CREATE FUNCTION look(BIGINT) RETURNS BOOLEAN VOLATILE LANGUAGE SQL AS
               'SELECT nextval(''looked_at'') > 0';
             CREATE VIEW item AS SELECT id, label FROM base WHERE look(id);
             INSERT INTO base SELECT g, 'label ' || lpad(g::text, 4, '0') FROM generate_series(1, 1000) g;",
        )
        .await;
    let rocket = db
        .rocket("[databases.default]\ncommit_mode = \"autocommit\"\n")
        .attach(Alchemy::fairing().model::<Item>())
        .manage(Gates::default())
        .mount("/", routes![page]);
    let client = Client::untracked(rocket).await.expect("launch");
    let looked_at = || async { probe.scalar("SELECT last_value FROM looked_at").await };

    let before = looked_at().await;
    let r = client.get("/items/page?limit=20&offset=0").dispatch().await;
    assert_eq!(r.into_json::<(usize, u64)>().await.unwrap(), (20, 1000));
    let full_page = looked_at().await - before;
    // The page alone looks at 20 to 1,000 rows (by plan); the count at all 1,000 more.
    assert!(
        full_page > 1000,
        "a full page needs the count: {full_page} rows looked at"
    );

    let before = looked_at().await;
    let r = client
        .get("/items/page?limit=20&offset=990")
        .dispatch()
        .await;
    assert_eq!(r.into_json::<(usize, u64)>().await.unwrap(), (10, 1000));
    let last_page = looked_at().await - before;
    // Skipping 990 rows looks at all 1,000 once; a count would look at them again.
    assert!(
        last_page <= 1000,
        "a short last page proves the total: {last_page} rows looked at"
    );
    probe.execute("DELETE FROM base WHERE id > 5").await;
    let before = looked_at().await;
    let r = client.get("/items/page?limit=20&offset=0").dispatch().await;
    assert_eq!(r.into_json::<(usize, u64)>().await.unwrap(), (5, 5));
    let short_page = looked_at().await - before;
    assert_eq!(
        short_page, 5,
        "a short first page proves the total: {short_page} rows looked at"
    );
}

/// `synchronous`: `normal` (1) by default in WAL mode, `full` (2) in other journal modes,
/// as configured otherwise; on the readers' connections and on the writer's.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_synchronous_levels() {
    for (extra, expected) in [
        ("", "1 wal"),
        ("synchronous = \"full\"\n", "2 wal"),
        ("journal_mode = \"delete\"\n", "2 delete"),
        (
            "journal_mode = \"delete\"\nsynchronous = \"off\"\n",
            "0 delete",
        ),
    ] {
        let db = TestDb::sqlite("synchronous").await;
        let client = client(&db, &format!("{AUTOCOMMIT}{extra}")).await;
        let r = client.get("/pragma").dispatch().await;
        assert_eq!(
            r.into_string().await.unwrap(),
            expected,
            "reader, {extra:?}"
        );
        let r = client.post("/pragma").dispatch().await;
        assert_eq!(
            r.into_string().await.unwrap(),
            expected,
            "writer, {extra:?}"
        );
    }
}
