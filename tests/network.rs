//! Over a real socket: concurrent writers, a client that goes away mid-request, and the
//! `authors` example binary configured from the environment.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestDb;
use rocket::data::{Data, ToByteUnit};
use rocket::fairing::AdHoc;
use rocket::http::Status;
use rocket::{post, routes};
use rocket_alchemy::sea_query::Query;
use rocket_alchemy::{Alchemy, Model, Session, SessionError};

#[derive(Model)]
struct Hit {
    id: i64,
    #[model(max_length = 40)]
    label: String,
}

fn insert(label: &str) -> rocket_alchemy::sea_query::InsertStatement {
    Query::insert()
        .into_table("hit")
        .columns(["label"])
        .values_panic([label.into()])
        .to_owned()
}

#[post("/write/<label>")]
async fn write(label: &str, session: Session<'_>) -> Result<Status, SessionError> {
    session.execute(&insert(label)).await?;
    // Hold the transaction a moment so writers really overlap.
    rocket::tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(Status::Created)
}

/// Writes first, then reads the body: a client leaving mid-body makes the read fail.
#[post("/upload/<label>", data = "<body>")]
async fn upload(label: &str, body: Data<'_>, session: Session<'_>) -> Result<Status, SessionError> {
    session.execute(&insert(label)).await?;
    match body.open(1.mebibytes()).into_bytes().await {
        Ok(bytes) if bytes.is_complete() => Ok(Status::Ok),
        _ => Ok(Status::BadRequest),
    }
}

/// Signals between [`hold`] and its test: the handler says when it has written, then waits
/// to be released.
#[derive(Default)]
struct Hold {
    written: rocket::tokio::sync::Notify,
    release: rocket::tokio::sync::Notify,
}

/// Writes, says so, then waits for the test before answering 201: the client can leave
/// while the handler is still running, without the handler touching the connection.
#[post("/hold/<label>")]
async fn hold(
    label: &str,
    session: Session<'_>,
    hold: &rocket::State<std::sync::Arc<Hold>>,
) -> Result<Status, SessionError> {
    session.execute(&insert(label)).await?;
    hold.written.notify_one();
    hold.release.notified().await;
    Ok(Status::Created)
}

/// Launches on an ephemeral port; returns the port and the managed handle.
async fn serve(db: &TestDb, extra: &str) -> (u16, Alchemy, rocket::Shutdown) {
    serve_with(db, extra, std::sync::Arc::default()).await
}

/// [`serve`], with the [`Hold`] the `/hold` route waits on.
async fn serve_with(
    db: &TestDb,
    extra: &str,
    hold_state: std::sync::Arc<Hold>,
) -> (u16, Alchemy, rocket::Shutdown) {
    let (tx, rx) = rocket::tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let rocket = db
        .rocket(extra)
        .attach(Alchemy::fairing().model::<Hit>())
        .attach(AdHoc::on_liftoff("port", move |rocket| {
            let port = rocket.config().port;
            let alchemy = Alchemy::fetch(rocket).unwrap().clone();
            let shutdown = rocket.shutdown();
            Box::pin(async move {
                let _ = tx
                    .lock()
                    .unwrap()
                    .take()
                    .unwrap()
                    .send((port, alchemy, shutdown));
            })
        }))
        .manage(hold_state)
        .mount("/", routes![write, upload, hold]);
    rocket::tokio::spawn(rocket.launch());
    rx.await.expect("rocket launched")
}

/// A minimal HTTP/1.1 exchange; returns the status code.
fn http(port: u16, request: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {response:?}"))
}

async fn idle_equals_size(alchemy: &Alchemy) {
    let pool = alchemy.pool("default").unwrap();
    for _ in 0..200 {
        if pool.num_idle() as u32 == pool.size() {
            return;
        }
        rocket::tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{} of {} connections still checked out",
        pool.size() as usize - pool.num_idle(),
        pool.size()
    );
}

/// 50 concurrent writers over real connections: every row is stored (on SQLite no
/// "database is locked": writers wait their turn in the bind's write queue).
async fn fifty_concurrent_writers(db: TestDb) {
    let (port, alchemy, shutdown) = serve(&db, "workers = 8\n[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nmax_connections = 8").await;
    let writers: Vec<_> = (0..50)
        .map(|i| {
            rocket::tokio::task::spawn_blocking(move || {
                http(port, &format!("POST /write/w{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
            })
        })
        .collect();
    for writer in writers {
        assert_eq!(writer.await.unwrap(), 201);
    }
    assert_eq!(
        db.probe().count("hit").await,
        50,
        "every concurrent write is stored"
    );
    idle_equals_size(&alchemy).await;
    shutdown.notify();
}

/// A client that goes away mid-body: the handler's body read fails, it answers 400, so its
/// write is rolled back and its connection returns to the pool.
async fn client_gone_mid_request_rolls_back(db: TestDb) {
    let (port, alchemy, shutdown) = serve(
        &db,
        "[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nmax_connections = 2",
    )
    .await;
    for i in 0..4 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!("POST /upload/gone{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nContent-Type: application/octet-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&[b'x'; 1000]).unwrap();
        stream.flush().unwrap();
        rocket::tokio::time::sleep(Duration::from_millis(100)).await;
        drop(stream); // gone, 99,000 bytes short
    }
    rocket::tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        db.probe().count("hit").await,
        0,
        "writes of abandoned requests are rolled back"
    );
    idle_equals_size(&alchemy).await;
    // The pool (2 connections) still serves complete requests.
    let body = "y".repeat(10);
    let status = rocket::tokio::task::spawn_blocking(move || {
        http(port, &format!("POST /upload/complete HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{body}"))
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(db.probe().count_where("hit", "label", "complete").await, 1);
    shutdown.notify();
}

/// A client that leaves while the handler runs, the handler not reading from it: Rocket 0.5
/// does not cancel the handler (it runs in a task of its own) and nobody tells the session,
/// so the final status decides as for any request — the 201 commits the write nobody will
/// read about. Pins what the README says of clients that go away.
async fn client_gone_while_handler_runs_commits_by_status(db: TestDb) {
    let state = std::sync::Arc::new(Hold::default());
    let (port, alchemy, shutdown) = serve_with(
        &db,
        "[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nmax_connections = 2",
        state.clone(),
    )
    .await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"POST /hold/left HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    stream.flush().unwrap();
    state.written.notified().await;
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream); // gone before any response
                  // Give the server every chance to notice the closed socket before the handler returns.
    rocket::tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        db.probe().count_where("hit", "label", "left").await,
        0,
        "not committed while the handler runs"
    );
    state.release.notify_one();
    // Nobody can wait for the response, so wait for its effect: the pool alone does not say
    // when the fairing is done (SQLite's write connection is not in it).
    let mut stored = 0;
    for _ in 0..400 {
        stored = db.probe().count_where("hit", "label", "left").await;
        if stored > 0 {
            break;
        }
        rocket::tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        stored, 1,
        "the handler finished with 201 after its client left: committed by status"
    );
    idle_equals_size(&alchemy).await; // and its connection is back
    shutdown.notify();
}

backend_tests!(
    fifty_concurrent_writers,
    client_gone_mid_request_rolls_back,
    client_gone_while_handler_runs_commits_by_status
);

/// The example binary: `ROCKET_PORT` and `ROCKET_DATABASES` (url and commit_mode of each
/// bind) override `Rocket.toml`.
#[cfg(feature = "sqlite")]
#[test]
fn example_binary_reads_env_overrides() {
    let exe = example_binary();
    let dir = std::env::temp_dir().join(format!("ra_example_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (mode, persisted) in [("manual", 1), ("autocommit", 0)] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let main_db = dir.join(format!("{mode}-main.db"));
        let audit_db = dir.join(format!("{mode}-audit.db"));
        let databases = format!(
            "{{default={{url=\"sqlite://{}\",commit_mode=\"{mode}\"}},audit={{url=\"sqlite://{}\",commit_mode=\"{mode}\"}}}}",
            main_db.display(),
            audit_db.display()
        );
        let mut child = std::process::Command::new(&exe)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_DATABASES", &databases)
            .env("ROCKET_LOG_LEVEL", "off")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the example runs");
        let up = (0..300).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "the example listens on ROCKET_PORT={port}");
        let form = "name=Env&dob=2001-01-01";
        let status = http(port, &format!(
            "POST /authors/form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ));
        assert_eq!(status, 303);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            main_db.exists() && audit_db.exists(),
            "the databases live at the env URLs"
        );
        let rt = rocket::tokio::runtime::Runtime::new().unwrap();
        let count = rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", main_db.display()))
                .await
                .unwrap();
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM author")
                .fetch_one(&mut c)
                .await
                .unwrap()
        });
        assert_eq!(
            count, persisted,
            "commit_mode={mode}: the redirect persists only where the app commits it"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `target/<profile>/examples/authors`, which `cargo test` builds with the tests.
#[cfg(feature = "sqlite")]
fn example_binary() -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap().to_path_buf();
    let exe = profile_dir
        .join("examples")
        .join(format!("authors{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.exists(),
        "{} is missing: run the whole suite (`cargo test` builds examples) or `cargo build --example authors`",
        exe.display()
    );
    exe
}
