//! Read replicas on a real hot-standby PostgreSQL replica (`TEST_REPLICA_URL`, made by
//! `scripts/test.sh` with `pg_basebackup -R`): reads go to the replica, writes and what
//! follows them to the primary, a client always reads its own writes (even while the
//! replica's replay is paused), and lagging or dead replicas are skipped.
//!
//! The tests pause the replica's replay, which affects the whole replica: they run one at a
//! time.
#![cfg(feature = "postgres")]

mod common;

use std::time::{Duration, Instant};

use common::TestDb;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::serde::json::Json;
use rocket::{get, post, routes};
use rocket_alchemy::sea_query::{Expr, ExprTrait, Func, Order, Query};
use rocket_alchemy::{Alchemy, Model, OnPrimary, Session, SessionError};
use sqlx::Connection;

const REPLICA_ENV: &str = "TEST_REPLICA_URL";

static ONE_AT_A_TIME: rocket::tokio::sync::Mutex<()> = rocket::tokio::sync::Mutex::const_new(());

#[derive(Model, Debug)]
struct Job {
    id: i64,
    #[model(max_length = 40)]
    label: String,
}

/// Whether the session's reads ran on a standby, and the labels it saw.
#[get("/jobs")]
async fn jobs(db: Session<'_>) -> Result<Json<(bool, Vec<String>)>, SessionError> {
    let (standby,): (bool,) = db.fetch_one(&on_standby()).await?;
    let labels: Vec<(String,)> = db
        .fetch_all(
            &Query::select()
                .column("label")
                .from("job")
                .order_by("id", Order::Asc)
                .to_owned(),
        )
        .await?;
    Ok(Json((standby, labels.into_iter().map(|(l,)| l).collect())))
}

#[get("/jobs/primary")]
async fn jobs_on_primary(
    _primary: OnPrimary,
    db: Session<'_>,
) -> Result<Json<(bool, Vec<String>)>, SessionError> {
    jobs(db).await
}

fn insert_job(label: &str) -> rocket_alchemy::sea_query::InsertStatement {
    Query::insert()
        .into_table("job")
        .columns(["label"])
        .values_panic([label.into()])
        .to_owned()
}

/// Whether the session's connection is on a standby.
fn on_standby() -> rocket_alchemy::sea_query::SelectStatement {
    Query::select()
        .expr(Func::cust("pg_is_in_recovery"))
        .to_owned()
}

#[post("/jobs/<label>")]
async fn add(label: &str, db: Session<'_>) -> Result<Status, SessionError> {
    db.execute(&insert_job(label)).await?;
    Ok(Status::Created)
}

/// A safe method that reads (on the replica) then writes (which must go to the primary).
#[get("/jobs/touch/<label>")]
async fn touch(label: &str, db: Session<'_>) -> Result<String, SessionError> {
    let (standby,): (bool,) = db.fetch_one(&on_standby()).await?;
    db.execute(&insert_job(label)).await?;
    let (after,): (bool,) = db.fetch_one(&on_standby()).await?;
    let (n,): (i64,) = db
        .fetch_one(
            &Query::select()
                .expr(Func::count(Expr::col("id")))
                .from("job")
                .and_where(Expr::col("label").eq(label))
                .to_owned(),
        )
        .await?;
    Ok(format!("{standby} {after} {n}"))
}

/// The test database on the replica, once the replica has it; `None` when no replica is
/// configured (outside CI).
async fn replica_of(db: &TestDb) -> Option<String> {
    let base = match std::env::var(REPLICA_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("CI=true but {REPLICA_ENV} is not set: the replica tests cannot run")
        }
        _ => {
            common::skipped(&format!(
                "SKIPPED {} on the replica: set {REPLICA_ENV} to run it (CI=true makes this a failure)",
                db.name()
            ));
            return None;
        }
    };
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{}", db.name()),
        None => panic!("bad {REPLICA_ENV}"),
    };
    let start = Instant::now();
    loop {
        match sqlx::PgConnection::connect(&url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Some(url);
            }
            Err(e) if start.elapsed() > Duration::from_secs(20) => {
                panic!("the replica never got the test database: {e}")
            }
            Err(_) => rocket::tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn replay(replica: &str, paused: bool) {
    let mut conn = sqlx::PgConnection::connect(replica).await.unwrap();
    let sql = match paused {
        true => "SELECT pg_wal_replay_pause()",
        false => "SELECT pg_wal_replay_resume()",
    };
    sqlx::query(sql).execute(&mut conn).await.unwrap();
}

/// Resumes replay when dropped, so a failing test does not leave the replica paused.
struct Resume(String);

impl Drop for Resume {
    fn drop(&mut self) {
        let url = self.0.clone();
        let _ = std::thread::spawn(move || {
            rocket::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(replay(&url, false))
        })
        .join();
    }
}

fn app(db: &TestDb, replicas: &[&str], max_lag: f64) -> rocket::Rocket<rocket::Build> {
    let list = replicas
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    db.rocket(&format!(
        "[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nreplicas = [{list}]\nmax_replica_lag = {max_lag}"
    ))
    .attach(Alchemy::fairing().model::<Job>())
    .mount("/", routes![jobs, jobs_on_primary, add, touch])
}

/// Waits until `client`'s replica number `index` serves reads.
async fn until_serving(client: &Client, index: usize) {
    let alchemy = Alchemy::fetch(client.rocket()).unwrap();
    let start = Instant::now();
    while !alchemy.replicas("default").unwrap()[index].serving {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "replica never served: {:?}",
            alchemy.replicas("default")
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `client`'s reads run on a replica (it has replayed the app's `create_all`).
async fn until_reads_on_replica(client: &Client) {
    let start = Instant::now();
    while !get(client, "/jobs").await.0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "reads never went to the replica"
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(client: &Client, uri: &str) -> (bool, Vec<String>) {
    let r = client.get(uri.to_string()).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    r.into_json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_your_writes_under_replica_lag() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDb::postgres("replica_ryw").await else {
        return;
    };
    let Some(replica) = replica_of(&db).await else {
        return;
    };
    let me = Client::tracked(app(&db, &[&replica], 30.0)).await.unwrap();
    let other = Client::untracked(app(&db, &[&replica], 30.0))
        .await
        .unwrap();
    until_serving(&me, 0).await;
    until_serving(&other, 0).await;
    until_reads_on_replica(&me).await;
    until_reads_on_replica(&other).await;
    assert_eq!(
        get(&me, "/jobs").await,
        (true, vec![]),
        "reads go to the replica"
    );

    let _resume = Resume(replica.clone());
    replay(&replica, true).await;
    let r = me.post("/jobs/a").dispatch().await;
    assert_eq!(r.status(), Status::Created);
    let cookie = r
        .headers()
        .get_one("Set-Cookie")
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("ra_pos_default="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    drop(r);

    // The writer reads its write at once: the replica has not replayed it, so the primary
    // answers.
    assert_eq!(get(&me, "/jobs").await, (false, vec!["a".to_string()]));
    // Another client is served by the (paused, stale) replica.
    assert_eq!(get(&other, "/jobs").await, (true, vec![]));
    // The monitor sees the lag grow.
    rocket::tokio::time::sleep(Duration::from_millis(400)).await;
    let status = Alchemy::fetch(me.rocket())
        .unwrap()
        .replicas("default")
        .unwrap();
    assert!(
        status[0].lag.unwrap() >= Duration::from_millis(200),
        "{status:?}"
    );

    // A forged position is ignored: a client cannot pin itself to the primary by hand, nor
    // tamper with the signed one.
    let forged = other
        .get("/jobs")
        .cookie(rocket::http::Cookie::new(
            "ra_pos_default",
            "ffffffffffff.AAAAAAAAAAAAAAAAAAAAAA",
        ))
        .dispatch()
        .await;
    assert_eq!(
        forged.into_json::<(bool, Vec<String>)>().await.unwrap(),
        (true, vec![])
    );

    replay(&replica, false).await;
    // Once the replica has replayed the write, it serves the writer again; never before.
    let start = Instant::now();
    loop {
        let (standby, labels) = get(&me, "/jobs").await;
        assert_eq!(
            labels,
            ["a"],
            "the writer never reads a state without its write"
        );
        if standby {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the replica never caught up"
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(db.probe().count("job").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_and_overrides_go_to_the_primary() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDb::postgres("replica_writes").await else {
        return;
    };
    let Some(replica) = replica_of(&db).await else {
        return;
    };
    let client = Client::untracked(app(&db, &[&replica], 30.0))
        .await
        .unwrap();
    until_serving(&client, 0).await;
    until_reads_on_replica(&client).await;
    // Read on the replica, then the write and every read after it on the primary.
    let r = client.get("/jobs/touch/t").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.into_string().await.unwrap(), "true false 1");
    assert_eq!(db.probe().count_where("job", "label", "t").await, 1);
    // The OnPrimary guard keeps a read-only route on the primary.
    assert!(!get(&client, "/jobs/primary").await.0);
    assert!(get(&client, "/jobs").await.0);

    // A standby refuses SERIALIZABLE transactions: such a bind reads on the primary.
    let serializable = Client::untracked(
        app(&db, &[&replica], 30.0).configure(db.figment(&format!(
            "[databases.default]\ncommit_mode = \"autocommit\"\nreplicas = [\"{replica}\"]\nisolation_level = \"serializable\""
        ))),
    )
    .await
    .unwrap();
    until_serving(&serializable, 0).await;
    assert_eq!(
        get(&serializable, "/jobs").await,
        (false, vec!["t".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_and_dead_replicas_are_skipped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDb::postgres("replica_skip").await else {
        return;
    };
    let Some(replica) = replica_of(&db).await else {
        return;
    };
    let dead = "postgres://postgres:secret@127.0.0.1:9/nowhere";
    let client = Client::untracked(app(&db, &[dead, &replica], 0.5))
        .await
        .unwrap();
    until_serving(&client, 1).await;
    until_reads_on_replica(&client).await;
    for _ in 0..10 {
        assert!(
            get(&client, "/jobs").await.0,
            "the live replica serves; the dead one is skipped"
        );
    }
    let alchemy = Alchemy::fetch(client.rocket()).unwrap();
    let start = Instant::now();
    while alchemy.replicas("default").unwrap()[0].error.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the dead replica is checked"
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = alchemy.replicas("default").unwrap();
    assert!(!status[0].serving && status[0].lag.is_none());
    let error = status[0].error.clone().unwrap();
    assert!(!error.contains("secret"), "{error}");
    assert_eq!(
        status[0].url.to_string(),
        "postgres://postgres:***@127.0.0.1:9/nowhere"
    );

    // Lagging past max_replica_lag: the primary serves reads until the replica catches up.
    let _resume = Resume(replica.clone());
    replay(&replica, true).await;
    db.probe()
        .execute("INSERT INTO job (label) VALUES ('elsewhere')")
        .await;
    rocket::tokio::time::sleep(Duration::from_millis(1200)).await;
    let status = alchemy.replicas("default").unwrap();
    assert!(!status[1].serving, "{status:?}");
    assert!(
        status[1].lag.unwrap() > Duration::from_millis(500),
        "{status:?}"
    );
    assert_eq!(
        get(&client, "/jobs").await,
        (false, vec!["elsewhere".to_string()])
    );
    replay(&replica, false).await;
    until_serving(&client, 1).await;
    until_reads_on_replica(&client).await;
    assert_eq!(
        get(&client, "/jobs").await,
        (true, vec!["elsewhere".to_string()])
    );

    // No replica up: the primary serves every read.
    let lonely = Client::untracked(app(&db, &[dead], 0.5)).await.unwrap();
    for _ in 0..5 {
        assert!(!get(&lonely, "/jobs").await.0);
    }
}
