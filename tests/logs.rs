//! What reaches the logs: launch errors name the bad key, `echo` logs statements with their
//! durations, and passwords never appear — in logs, errors, `Debug` output or responses.
//!
//! One subscriber captures every event of this test binary (tracing events, and Rocket's
//! `log` records through tracing-log), so each test looks for its own markers.
// Launch and configuration behaviour, exercised on SQLite (no server needed).
#![cfg(feature = "sqlite")]

mod common;

use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_alchemy::sea_query::{Expr, Func, Query};
use rocket_alchemy::{Alchemy, Model, Session, SessionError};

/// The tests of this binary share the log buffer: they run one at a time.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    common::captured_logs(tracing::Level::TRACE);
    LOCK.lock().await
}

fn captured() -> String {
    common::captured_logs(tracing::Level::TRACE)
}

#[derive(Model)]
struct Secretive {
    id: i64,
}

#[get("/count")]
async fn count(session: Session<'_>) -> Result<String, SessionError> {
    let (n,): (i64,) = session
        .fetch_one(
            &Query::select()
                .expr(Func::count(Expr::col("id")))
                .from("secretive")
                .to_owned(),
        )
        .await?;
    Ok(n.to_string())
}

#[get("/idle")]
async fn idle(_session: Session<'_>) -> &'static str {
    "idle"
}

#[cfg_attr(not(all(feature = "postgres", feature = "mysql")), allow(dead_code))]
fn figment(toml: &str) -> rocket::figment::Figment {
    use rocket::figment::providers::{Format, Serialized, Toml};
    rocket::figment::Figment::from(rocket::Config::default())
        .merge(Serialized::default("log_level", "normal"))
        .merge(Toml::string(toml))
}

#[cfg_attr(not(all(feature = "postgres", feature = "mysql")), allow(dead_code))]
async fn ignite_fails(toml: &str) {
    let rocket = rocket::custom(figment(toml)).attach(Alchemy::fairing());
    let error = rocket.ignite().await.expect_err(toml);
    let _ = error.kind();
}

#[cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn launch_errors_name_the_full_key() {
    let _serial = serial().await;
    let cases = [
        (
            "[databases.typo_bind]\nurl = \"sqlite::memory:\"\ncomit_mode = \"autocommit\"",
            "`databases.typo_bind.comit_mode`: unknown key",
        ),
        (
            "[databases.mode_bind]\nurl = \"sqlite::memory:\"\ncommit_mode = \"always\"",
            "`databases.mode_bind.commit_mode`: unknown value `always`",
        ),
        (
            "[databases.nourl_bind]\ncreate_all = true",
            "`databases.nourl_bind.url`: missing",
        ),
        (
            "[databases.scheme_bind]\nurl = \"redis://x:pw@localhost\"",
            "`databases.scheme_bind.url`: unsupported URL scheme `redis`",
        ),
        (
            "[databases.number_bind]\nurl = \"sqlite::memory:\"\nmax_connections = -3",
            "`databases.number_bind.max_connections`: expected",
        ),
        (
            "[databases.port_bind]\nurl = \"mysql://root:pw@localhost:99999/x\"",
            "`databases.port_bind.url`: invalid mysql URL",
        ),
    ];
    for (toml, expected) in cases {
        ignite_fails(toml).await;
        let logs = captured();
        assert!(
            logs.contains(expected),
            "expected `{expected}` in the logs:\n{logs}"
        );
    }
    assert!(
        captured().contains("rocket_alchemy"),
        "Rocket names the failing fairing"
    );
}

/// Passwords appear nowhere: not in launch errors, connection errors, startup lines,
/// statement logs, `Debug` output or responses.
#[cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn passwords_never_leak() {
    let _serial = serial().await;
    const SECRET: &str = "Pa55w0rdNeverLogged";
    // A bad URL, an unreachable server, and (when PostgreSQL is available) a working one:
    // trust authentication ignores the password, so it is really used.
    ignite_fails(&format!(
        "[databases.leak1]\nurl = \"postgres://app:{SECRET}@127.0.0.1:notaport/db\""
    ))
    .await;
    ignite_fails(&format!(
        "[databases.leak2]\nurl = \"postgres://app:{SECRET}@127.0.0.1:9/db\"\nconnect_timeout = 1"
    ))
    .await;
    ignite_fails(&format!(
        "[databases.leak3]\nurl = \"mysql://root:{SECRET}@127.0.0.1:9/db\"\nconnect_timeout = 1"
    ))
    .await;
    let lazy = format!("[databases.default]\nurl = \"postgres://app:{SECRET}@127.0.0.1:9/db\"\nlazy = true\nconnect_timeout = 1\necho = true");
    let client = Client::tracked(
        rocket::custom(figment(&lazy))
            .attach(Alchemy::fairing())
            .mount("/", routes![count]),
    )
    .await
    .unwrap();
    let r = client.get("/count").dispatch().await;
    assert_eq!(r.status(), Status::ServiceUnavailable);
    let body = r.into_string().await.unwrap();
    assert!(
        !body.contains(SECRET) && !body.contains("127.0.0.1"),
        "{body}"
    );
    let alchemy = client.rocket().state::<Alchemy>().unwrap();
    let debug = format!(
        "{alchemy:?} {:?}",
        alchemy.bind("default").unwrap().config()
    );
    assert!(!debug.contains(SECRET), "{debug}");
    for (_, health) in alchemy.health().await {
        assert!(!health.unwrap_err().contains(SECRET));
    }

    if let Some(db) = common::TestDb::postgres("leak").await {
        let url = db.url.replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{SECRET}@"),
            1,
        );
        let toml = format!("[databases.default]\nurl = \"{url}\"\necho = true\ncreate_all = true");
        let client = Client::tracked(
            rocket::custom(figment(&toml))
                .attach(Alchemy::fairing().model::<Secretive>())
                .mount("/", routes![count]),
        )
        .await
        .unwrap();
        assert_eq!(client.get("/count").dispatch().await.status(), Status::Ok);
        assert!(
            captured().contains("postgres://postgres:***@127.0.0.1"),
            "the startup line shows the redacted URL"
        );
    }
    let logs = captured();
    assert!(
        logs.contains("leak1") && logs.contains("leak2") && logs.contains("leak3"),
        "{logs}"
    );
    assert!(
        !logs.contains(SECRET),
        "a password reached the logs:\n{logs}"
    );
}

/// `echo = true` logs each statement with its duration; `echo = false` logs none, and an
/// unused guard sends nothing.
#[tokio::test]
async fn echo_logs_statements() {
    let _serial = serial().await;
    let db = common::TestDb::sqlite("echo").await;
    let quiet = common::TestDb::sqlite("quiet").await;
    let toml = "[databases.default]\ncreate_all = true\necho = true\n[databases.quiet]\ncreate_all = true\n";
    let figment = common::figment_with(&[("default", &db), ("quiet", &quiet)], toml)
        .merge(("log_level", "normal"));
    let client = Client::tracked(
        rocket::custom(figment)
            .attach(Alchemy::fairing().model::<Secretive>())
            .mount("/", routes![count, idle]),
    )
    .await
    .unwrap();
    let before = captured().len();
    assert_eq!(client.get("/idle").dispatch().await.status(), Status::Ok);
    let idle_logs = captured()[before..].to_string();
    assert!(
        !idle_logs.contains("sqlx::query") && !idle_logs.contains("BEGIN"),
        "an unused guard sent statements:\n{idle_logs}"
    );

    let before = captured().len();
    assert_eq!(client.get("/count").dispatch().await.status(), Status::Ok);
    let used = captured()[before..].to_string();
    assert!(
        used.lines().any(|l| l.contains("sqlx::query")
            && l.contains("FROM")
            && l.contains("secretive")
            && l.contains("elapsed")),
        "the statement is logged with its duration:\n{used}"
    );
    assert!(
        used.contains("BEGIN") && (used.contains("COMMIT") || used.contains("ROLLBACK")),
        "transaction boundaries are logged:\n{used}"
    );

    // The quiet bind: statements run, nothing is logged. (First let the echo bind finish
    // what it does in the background: a reader's rollback, before its connection is idle.)
    let alchemy = client.rocket().state::<Alchemy>().unwrap();
    let echo_pool = alchemy.pool("default").unwrap();
    for _ in 0..200 {
        if echo_pool.num_idle() as u32 == echo_pool.size() {
            break;
        }
        rocket::tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let session = alchemy.session("quiet").unwrap();
    let before = captured().len();
    let (one,): (i32,) = session
        .fetch_one(&Query::select().expr(Expr::val(1)).to_owned())
        .await
        .unwrap();
    assert_eq!(one, 1);
    let quiet_logs = captured()[before..].to_string();
    assert!(
        !quiet_logs.contains("sqlx::query"),
        "echo = false logged a statement:\n{quiet_logs}"
    );
}
