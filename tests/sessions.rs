//! Request sessions: sharing, several binds, savepoints, lazy BEGIN, failed commits.

mod common;

use std::time::Duration;

use common::TestDb;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes, State};
use rocket_alchemy::sea_query::{Expr, Func, Query};
use rocket_alchemy::{
    Alchemy, AnyConnection, Backend, Bind, DbErrorKind, Model, Session, SessionError,
};

#[derive(Model, Debug)]
struct Item {
    id: i64,
    #[model(max_length = 64, unique)]
    label: String,
}

#[derive(Bind)]
#[bind("audit")]
struct Audit;

#[derive(Model, Debug)]
#[model(bind = Audit)]
struct Trail {
    id: i64,
    #[model(max_length = 64)]
    label: String,
}

fn insert(table: &'static str, label: &str) -> rocket_alchemy::sea_query::InsertStatement {
    Query::insert()
        .into_table(table)
        .columns(["label"])
        .values_panic([label.into()])
        .to_owned()
}

fn count(table: &'static str) -> rocket_alchemy::sea_query::SelectStatement {
    Query::select()
        .expr(Func::count(Expr::col("id")))
        .from(table)
        .to_owned()
}

/// Both guards are the same session: the second sees the first's uncommitted row.
#[get("/share/<label>")]
async fn share(label: &str, a: Session<'_>, b: Session<'_>) -> Result<String, SessionError> {
    assert!(std::ptr::eq(a.session(), b.session()));
    a.execute(&insert("item", label)).await?;
    let (n,): (i64,) = b.fetch_one(&count("item")).await?;
    Ok(n.to_string())
}

#[get("/share-fail/<label>")]
async fn share_fail(label: &str, a: Session<'_>, b: Session<'_>) -> Result<Status, SessionError> {
    a.execute(&insert("item", label)).await?;
    b.execute(&insert("item", &format!("{label}-b"))).await?;
    Ok(Status::BadRequest)
}

/// Writes `main` then `audit` (or the reverse), and optionally makes the commit of `fail` fail.
#[get("/two/<label>?<audit_first>&<fail>")]
async fn two_binds(
    label: &str,
    audit_first: bool,
    fail: Option<&str>,
    main: Session<'_>,
    audit: Session<'_, Audit>,
    alchemy: &State<Alchemy>,
) -> Result<&'static str, SessionError> {
    assert!(!std::ptr::eq(main.session(), audit.session()));
    if audit_first {
        audit.execute(&insert("trail", label)).await?;
        main.execute(&insert("item", label)).await?;
    } else {
        main.execute(&insert("item", label)).await?;
        audit.execute(&insert("trail", label)).await?;
    }
    match fail {
        Some("main") => sabotage_commit(&main, alchemy.pool("default")?).await?,
        Some("audit") => sabotage_commit(&audit, alchemy.pool("audit")?).await?,
        _ => {}
    }
    Ok("ok")
}

/// Makes the coming COMMIT of `session` fail: a deferred foreign key violation on SQLite and
/// PostgreSQL; on MySQL (no deferred constraints) the server kills the connection.
async fn sabotage_commit(
    session: &rocket_alchemy::DbSession,
    pool: &rocket_alchemy::BindPool,
) -> Result<(), SessionError> {
    let _ = pool;
    match session.connection().await? {
        #[cfg(feature = "sqlite")]
        AnyConnection::Sqlite(mut conn) => {
            sqlx::query("PRAGMA defer_foreign_keys = ON")
                .execute(&mut *conn)
                .await?;
            sqlx::query("INSERT INTO orphan (parent_id) VALUES (424242)")
                .execute(&mut *conn)
                .await?;
        }
        #[cfg(feature = "postgres")]
        AnyConnection::Postgres(mut conn) => {
            sqlx::query("INSERT INTO orphan (parent_id) VALUES (424242)")
                .execute(&mut *conn)
                .await?;
        }
        #[cfg(feature = "mysql")]
        AnyConnection::MySql(mut conn) => {
            let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                .fetch_one(&mut *conn)
                .await?;
            drop(conn);
            // Another connection of the same pool kills the session's connection.
            let killer = pool.as_mysql().unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}")))
                .execute(killer)
                .await?;
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
    Ok(())
}

/// The PostgreSQL variant of a failed commit caused by a dead connection.
#[get("/killed/<label>")]
async fn killed(
    label: &str,
    main: Session<'_>,
    alchemy: &State<Alchemy>,
) -> Result<&'static str, SessionError> {
    main.execute(&insert("item", label)).await?;
    #[cfg(feature = "postgres")]
    {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *main.postgres().await?)
            .await?;
        let pool = alchemy
            .pool("default")
            .unwrap()
            .as_postgres()
            .unwrap()
            .clone();
        let mut other = pool.acquire().await?;
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut *other)
            .await?;
    }
    let _ = alchemy;
    Ok("ok")
}

#[get("/savepoints")]
async fn savepoints(session: Session<'_>) -> Result<&'static str, SessionError> {
    session.execute(&insert("item", "before")).await?;
    let sp = session.savepoint().await?;
    session.execute(&insert("item", "undone")).await?;
    sp.rollback().await?;
    let sp = session.savepoint().await?;
    session.execute(&insert("item", "released")).await?;
    sp.release().await?;
    {
        let _dropped = session.savepoint().await?;
        session.execute(&insert("item", "dropped")).await?;
    }
    // A failing statement inside a savepoint, rolled back: the transaction goes on (on
    // PostgreSQL this clears the aborted state).
    let sp = session.savepoint().await?;
    let duplicate = session
        .execute(&insert("item", "before"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.kind(), Some(DbErrorKind::UniqueViolation));
    sp.rollback().await?;
    session.execute(&insert("item", "after")).await?;
    Ok("ok")
}

/// Swallows a failed statement and answers 200.
#[get("/swallow")]
async fn swallow(session: Session<'_>) -> Result<&'static str, SessionError> {
    session.execute(&insert("item", "first")).await?;
    let _ = session.execute(&insert("item", "first")).await; // unique violation, ignored
    session.execute(&insert("item", "second")).await.ok();
    Ok("ok")
}

/// Swallows a failed statement on the raw PostgreSQL connection and answers 200.
#[get("/swallow-raw")]
async fn swallow_raw(session: Session<'_>) -> Result<&'static str, SessionError> {
    #[cfg(feature = "postgres")]
    {
        let mut conn = session.postgres().await?;
        sqlx::query("INSERT INTO item (label) VALUES ('raw')")
            .execute(&mut *conn)
            .await?;
        let _ = sqlx::query("INSERT INTO item (label) VALUES ('raw')")
            .execute(&mut *conn)
            .await;
    }
    let _ = session;
    Ok("ok")
}

#[get("/unused")]
async fn unused(_session: Session<'_>, _audit: Session<'_, Audit>) -> &'static str {
    "not touching the database"
}

#[get("/used")]
async fn used(session: Session<'_>) -> Result<String, SessionError> {
    let (n,): (i64,) = session.fetch_one(&count("item")).await?;
    Ok(n.to_string())
}

#[get("/busy")]
async fn busy(a: Session<'_>, b: Session<'_>) -> Result<&'static str, SessionError> {
    let conn = a.connection().await?;
    let error = b.execute(&insert("item", "x")).await.unwrap_err();
    assert!(matches!(error, SessionError::Busy { .. }), "{error}");
    drop(conn);
    b.execute(&insert("item", "after-busy")).await?;
    Ok("ok")
}

async fn launch(db: &TestDb, audit: &TestDb, extra: &str) -> Client {
    let figment = common::figment_with(&[("default", db), ("audit", audit)], extra);
    let rocket = rocket::custom(figment)
        .attach(Alchemy::fairing().model::<Item>().model::<Trail>())
        .mount(
            "/",
            routes![
                share,
                share_fail,
                two_binds,
                killed,
                savepoints,
                swallow,
                swallow_raw,
                unused,
                used,
                busy
            ],
        );
    Client::tracked(rocket).await.expect("launch")
}

const AUTOCOMMIT: &str = "[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nmax_connections = 2\n\
                          [databases.audit]\ncommit_mode = \"autocommit\"\ncreate_all = true\nmax_connections = 2\n";

async fn two_guards_share_one_transaction(db: TestDb) {
    let audit = db.sibling("share_audit").await;
    let client = launch(&db, &audit, AUTOCOMMIT).await;
    let r = client.get("/share/one").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(
        r.into_string().await.unwrap(),
        "1",
        "the second guard saw the first's write"
    );
    let r = client.get("/share-fail/two").dispatch().await;
    assert_eq!(r.status(), Status::BadRequest);
    let probe = db.probe();
    assert_eq!(
        probe.count("item").await,
        1,
        "both guards' writes of the failed request rolled back"
    );
}

async fn setup_orphan_table(db: &TestDb) {
    let ddl = match db.backend {
        Backend::Sqlite => "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                            CREATE TABLE orphan (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id))",
        Backend::Postgres => "CREATE TABLE parent (id BIGINT PRIMARY KEY); \
                              CREATE TABLE orphan (id BIGSERIAL PRIMARY KEY, parent_id BIGINT NOT NULL \
                              REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        Backend::MySql => "SELECT 1",
    };
    db.probe().execute(ddl).await;
}

async fn two_binds_commit_in_first_use_order(db: TestDb) {
    let audit = db.sibling("two_audit").await;
    setup_orphan_table(&db).await;
    setup_orphan_table(&audit).await;
    let client = launch(&db, &audit, AUTOCOMMIT).await;
    let (main_probe, audit_probe) = (db.probe(), audit.probe());

    // Success: both committed.
    let r = client.get("/two/ok?audit_first=false").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(main_probe.count_where("item", "label", "ok").await, 1);
    assert_eq!(audit_probe.count_where("trail", "label", "ok").await, 1);

    // Main used first, its commit fails: audit (not committed yet) is rolled back too.
    let expected = if db.backend == Backend::MySql {
        Status::InternalServerError
    } else {
        Status::Conflict
    };
    let r = client
        .get("/two/main-fails?audit_first=false&fail=main")
        .dispatch()
        .await;
    assert_eq!(r.status(), expected);
    let body: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(body["status_code"], expected.code, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(
        main_probe.count_where("item", "label", "main-fails").await,
        0
    );
    assert_eq!(
        audit_probe
            .count_where("trail", "label", "main-fails")
            .await,
        0,
        "audit row kept for a failed main write"
    );

    // Audit used first and committed before main fails: no two-phase commit, it stays.
    let r = client
        .get("/two/audit-first?audit_first=true&fail=main")
        .dispatch()
        .await;
    assert_eq!(r.status(), expected);
    assert_eq!(
        main_probe.count_where("item", "label", "audit-first").await,
        0
    );
    assert_eq!(
        audit_probe
            .count_where("trail", "label", "audit-first")
            .await,
        1
    );

    // Main committed first, then audit fails: main stays, response is the error.
    let r = client
        .get("/two/audit-fails?audit_first=false&fail=audit")
        .dispatch()
        .await;
    assert_eq!(r.status(), expected);
    assert_eq!(
        main_probe.count_where("item", "label", "audit-fails").await,
        1
    );
    assert_eq!(
        audit_probe
            .count_where("trail", "label", "audit-fails")
            .await,
        0
    );
}

/// A failed COMMIT answers 409/500 (never 2xx), stores nothing and leaks no connection:
/// repeated 3 × max_connections times, then the pool still serves requests.
async fn failed_commits_leak_nothing(db: TestDb) {
    let audit = db.sibling("leak_audit").await;
    setup_orphan_table(&db).await;
    let client = launch(&db, &audit, AUTOCOMMIT).await;
    let probe = db.probe();
    let max_connections = 2;
    for i in 0..3 * max_connections {
        let label = format!("leak-{i}");
        let r = client
            .get(format!("/two/{label}?audit_first=false&fail=main"))
            .dispatch()
            .await;
        assert!(
            r.status() == Status::Conflict || r.status() == Status::InternalServerError,
            "{}",
            r.status()
        );
        assert_eq!(r.content_type(), Some(rocket::http::ContentType::JSON));
        assert_eq!(probe.count_where("item", "label", &label).await, 0);
    }
    if db.backend == Backend::Postgres {
        for i in 0..3 * max_connections {
            let label = format!("killed-{i}");
            let r = client.get(format!("/killed/{label}")).dispatch().await;
            assert_eq!(r.status(), Status::InternalServerError);
            assert_eq!(probe.count_where("item", "label", &label).await, 0);
        }
    }
    // The pool (max 2 connections) still works, so no connection leaked.
    let r = client.get("/two/after?audit_first=false").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(probe.count_where("item", "label", "after").await, 1);
    let alchemy = client.rocket().state::<Alchemy>().unwrap();
    let pool = alchemy.pool("default").unwrap();
    assert!(pool.size() <= 2);
    for _ in 0..100 {
        if pool.num_idle() as u32 == pool.size() {
            break;
        }
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        pool.num_idle() as u32,
        pool.size(),
        "a connection is still checked out"
    );
}

async fn savepoint_rollback(db: TestDb) {
    let audit = db.sibling("sp_audit").await;
    let client = launch(&db, &audit, AUTOCOMMIT).await;
    let r = client.get("/savepoints").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    let probe = db.probe();
    for (label, want) in [
        ("before", 1),
        ("undone", 0),
        ("released", 1),
        ("dropped", 0),
        ("after", 1),
    ] {
        assert_eq!(
            probe.count_where("item", "label", label).await,
            want,
            "{label}"
        );
    }
}

/// A statement error swallowed by the handler: on PostgreSQL the transaction is aborted, so
/// the response must not claim success; elsewhere the other writes commit.
async fn swallowed_errors_never_fake_a_commit(db: TestDb) {
    let audit = db.sibling("swallow_audit").await;
    let client = launch(&db, &audit, AUTOCOMMIT).await;
    let probe = db.probe();
    let r = client.get("/swallow").dispatch().await;
    match db.backend {
        Backend::Postgres => {
            assert_eq!(r.status(), Status::Conflict);
            assert_eq!(probe.count("item").await, 0);
            let r = client.get("/swallow-raw").dispatch().await;
            // The cause is unknown to the session (25P02 in_failed_sql_transaction): a 500.
            assert_eq!(
                r.status(),
                Status::InternalServerError,
                "raw connection errors are caught before COMMIT"
            );
            assert_eq!(probe.count("item").await, 0);
        }
        _ => {
            assert_eq!(r.status(), Status::Ok);
            assert_eq!(probe.count_where("item", "label", "first").await, 1);
            assert_eq!(probe.count_where("item", "label", "second").await, 1);
        }
    }
}

/// An unused guard opens no connection, so it cannot send BEGIN (or anything).
async fn unused_guard_sends_nothing(db: TestDb) {
    let audit = db.sibling("lazy_audit").await;
    let extra = "[databases.default]\nlazy = true\ncommit_mode = \"autocommit\"\n\
                 [databases.audit]\nlazy = true\ncommit_mode = \"autocommit\"\n";
    db.probe()
        .execute(match db.backend {
            Backend::MySql => {
                "CREATE TABLE item (id BIGINT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(64) UNIQUE)"
            }
            _ => "CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(64) UNIQUE)",
        })
        .await;
    let figment = common::figment_with(&[("default", &db), ("audit", &audit)], extra);
    let rocket = rocket::custom(figment)
        .attach(Alchemy::fairing())
        .mount("/", routes![unused, used]);
    let client = Client::tracked(rocket).await.expect("launch");
    let alchemy = client.rocket().state::<Alchemy>().unwrap().clone();
    for _ in 0..5 {
        assert_eq!(client.get("/unused").dispatch().await.status(), Status::Ok);
    }
    assert_eq!(
        alchemy.pool("default").unwrap().size(),
        0,
        "an unused guard opened a connection"
    );
    assert_eq!(
        alchemy.pool("audit").unwrap().size(),
        0,
        "an unused guard opened a connection"
    );
    // Positive control: a used guard does connect.
    let r = client.get("/used").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(alchemy.pool("default").unwrap().size(), 1);
    assert_eq!(alchemy.pool("audit").unwrap().size(), 0);
}

/// Using a session while a connection borrowed from it is alive is an error, not a deadlock.
async fn busy_session_is_an_error(db: TestDb) {
    let audit = db.sibling("busy_audit").await;
    let client = launch(&db, &audit, AUTOCOMMIT).await;
    let r = rocket::tokio::time::timeout(Duration::from_secs(20), client.get("/busy").dispatch())
        .await
        .expect("no deadlock");
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(
        db.probe().count_where("item", "label", "after-busy").await,
        1
    );
}

/// Sessions outside requests: commit persists, drop rolls back; unknown keys are named.
async fn standalone_sessions(db: TestDb) {
    let audit = db.sibling("standalone_audit").await;
    let figment = common::figment_with(&[("default", &db), ("audit", &audit)], AUTOCOMMIT);
    let alchemy = Alchemy::open(&figment, &[Item::TABLE, Trail::TABLE])
        .await
        .expect("open");
    let session = alchemy.session("default").unwrap();
    session.execute(&insert("item", "kept")).await.unwrap();
    assert!(session.in_transaction());
    session.commit().await.unwrap();
    assert!(!session.in_transaction());
    session.execute(&insert("item", "dropped")).await.unwrap();
    drop(session);
    let probe = db.probe();
    assert_eq!(probe.count_where("item", "label", "kept").await, 1);
    assert_eq!(probe.count_where("item", "label", "dropped").await, 0);

    let error = alchemy.session("nope").unwrap_err();
    assert_eq!(
        error.to_string(),
        "No session maker found for bind key \"nope\"; configured bind keys: default, audit"
    );
    // A typed connection of another backend (when another is compiled in).
    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    {
        let wrong = match db.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => alchemy
                .session("default")
                .unwrap()
                .postgres()
                .await
                .map(drop),
            _ => alchemy.session("default").unwrap().sqlite().await.map(drop),
        };
        assert!(matches!(wrong, Err(SessionError::WrongBackend { .. })));
    }
    alchemy.close().await;
}

backend_tests!(
    two_guards_share_one_transaction,
    two_binds_commit_in_first_use_order,
    failed_commits_leak_nothing,
    savepoint_rollback,
    swallowed_errors_never_fake_a_commit,
    unused_guard_sends_nothing,
    busy_session_is_an_error,
    standalone_sessions,
);
