//! After-commit hooks (`DbSession::on_commit`): they run once the transaction committed —
//! in every commit mode, by the fairing or by the handler — and never after a rollback or a
//! failed commit; spawned hooks do not hold the response, awaited ones do.
//!
//! Each hook owns the sending half of a oneshot channel: a hook that runs sends the row
//! count it reads on a connection of its own (so it also proves the commit is visible);
//! a hook dropped unrun closes the channel. No waiting on clocks.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::Probe;
use rocket::figment::providers::{Format, Serialized, Toml};
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::tokio::sync::{oneshot, Notify};
use rocket::{post, routes, Build, Rocket, State};
use rocket_alchemy::testing::{TestApp, TestKit};
use rocket_alchemy::{
    Alchemy, AnyConnection, BindPool, Model, Repository, RepositoryError, Session,
};

#[derive(Model, Debug, Clone)]
struct Item {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(max_length = 64, unique)]
    label: String,
}

#[derive(Model, Debug, Clone)]
struct Parent {
    id: i64,
}

#[derive(Model, Debug, Clone)]
struct Orphan {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(references = Parent)]
    parent_id: i64,
}

/// The receiving halves, by label; the test takes them.
#[derive(Default)]
struct Hooks {
    receivers: Mutex<HashMap<String, oneshot::Receiver<i64>>>,
    /// What awaited hooks recorded before the response left.
    awaited: Mutex<Vec<String>>,
    /// Spawned hooks that wait for the test's go.
    gate: Notify,
}

impl Hooks {
    fn sender(&self, label: &str) -> oneshot::Sender<i64> {
        let (tx, rx) = oneshot::channel();
        self.receivers.lock().unwrap().insert(label.to_string(), rx);
        tx
    }
}

/// The number of items labelled `label`, read on a pooled connection of its own.
async fn committed(pool: BindPool, label: String) -> i64 {
    let sql = "SELECT COUNT(*) FROM item WHERE label = ";
    let _ = (&sql, &label);
    match &pool {
        #[cfg(feature = "sqlite")]
        BindPool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{sql}?")))
            .bind(label)
            .fetch_one(p)
            .await
            .unwrap(),
        // In a transaction: behind PgBouncer in transaction mode, an unnamed statement's
        // parse and execute outside one may reach two server connections.
        #[cfg(feature = "postgres")]
        BindPool::Postgres(p) => {
            let mut tx = p.begin().await.unwrap();
            let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{sql}$1")))
                .bind(label)
                .persistent(false)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            n
        }
        #[cfg(feature = "mysql")]
        BindPool::MySql(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{sql}?")))
            .bind(label)
            .fetch_one(p)
            .await
            .unwrap(),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

/// Inserts an item, registers a hook reporting it, answers `status`; `commit` commits in
/// the handler first (manual mode), `sabotage` makes the coming commit fail.
#[post("/items/<label>?<status>&<commit>&<sabotage>")]
async fn write(
    label: &str,
    status: Option<u16>,
    commit: Option<bool>,
    sabotage: Option<bool>,
    db: Session<'_>,
    hooks: &State<Arc<Hooks>>,
    alchemy: &State<Alchemy>,
) -> Result<(Status, &'static str), RepositoryError> {
    Repository::<Item>::new(db)
        .create(Item {
            id: 0,
            label: label.into(),
        })
        .await?;
    let (tx, pool, label) = (
        hooks.sender(label),
        alchemy.pool("default").unwrap().clone(),
        label.to_string(),
    );
    db.on_commit(async move {
        let _ = tx.send(committed(pool, label).await);
    });
    if commit == Some(true) {
        db.commit().await?;
    }
    if sabotage == Some(true) {
        sabotage_commit(&db, alchemy.pool("default").unwrap()).await?;
    }
    // A (status, body) responder answers any status as is (a bare `Status` refuses 3xx).
    Ok((Status::new(status.unwrap_or(201)), "written"))
}

/// An awaited hook records itself before the response; a spawned one waits for the test.
#[post("/ordered/<label>")]
async fn ordered(
    label: &str,
    db: Session<'_>,
    hooks: &State<Arc<Hooks>>,
) -> Result<Status, RepositoryError> {
    Repository::<Item>::new(db)
        .create(Item {
            id: 0,
            label: label.into(),
        })
        .await?;
    let hooks_ref = Arc::clone(hooks);
    let awaited = Arc::clone(hooks);
    let tx = hooks.sender(label);
    db.on_commit(async move {
        hooks_ref.gate.notified().await;
        let _ = tx.send(1);
    });
    let label = label.to_string();
    db.on_commit_awaited(async move {
        awaited.awaited.lock().unwrap().push(label);
    });
    Ok(Status::Created)
}

/// Makes the coming COMMIT fail: a deferred foreign key violation on SQLite; the server
/// ends the session's connection on PostgreSQL and MySQL.
async fn sabotage_commit(
    db: &rocket_alchemy::DbSession,
    pool: &BindPool,
) -> Result<(), RepositoryError> {
    let error = |e: sqlx::Error| RepositoryError::Validation(e.to_string());
    let _ = (pool, &error);
    match db
        .connection()
        .await
        .map_err(|e| RepositoryError::Validation(e.to_string()))?
    {
        #[cfg(feature = "sqlite")]
        AnyConnection::Sqlite(mut conn) => {
            sqlx::query("PRAGMA defer_foreign_keys = ON")
                .execute(&mut *conn)
                .await
                .map_err(error)?;
            sqlx::query("INSERT INTO orphan (parent_id) VALUES (424242)")
                .execute(&mut *conn)
                .await
                .map_err(error)?;
        }
        #[cfg(feature = "postgres")]
        AnyConnection::Postgres(mut conn) => {
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .persistent(false)
                .fetch_one(&mut *conn)
                .await
                .map_err(error)?;
            drop(conn);
            // One simple query: safe behind a transaction pooler too.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SELECT pg_terminate_backend({pid})"
            )))
            .execute(pool.as_postgres().unwrap())
            .await
            .map_err(error)?;
        }
        #[cfg(feature = "mysql")]
        AnyConnection::MySql(mut conn) => {
            let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                .fetch_one(&mut *conn)
                .await
                .map_err(error)?;
            drop(conn);
            sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}")))
                .execute(pool.as_mysql().unwrap())
                .await
                .map_err(error)?;
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
    Ok(())
}

fn app(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(
            Alchemy::fairing()
                .model::<Item>()
                .model::<Parent>()
                .model::<Orphan>(),
        )
        .manage(Arc::new(Hooks::default()))
        .mount("/", routes![write, ordered])
}

fn config() -> Figment {
    Figment::from(rocket::Config::default())
        .merge(Toml::string("[default.databases.default]\nurl = \"sqlite://unused.db\"").nested())
}

static KIT: TestKit = TestKit::new(app).figment(config);

fn mode(figment: Figment, mode: &str) -> Figment {
    figment.merge(Serialized::default("databases.default.commit_mode", mode))
}
fn autocommit(f: Figment) -> Figment {
    mode(f, "autocommit")
}
fn include_redirect(f: Figment) -> Figment {
    mode(f, "autocommit_include_redirect")
}
fn manual(f: Figment) -> Figment {
    mode(f, "manual")
}

/// Sends `POST uri` and returns its status and what the hook of `label` did: `Some(count)`
/// if it ran (the committed rows it saw), `None` if it was dropped unrun.
async fn post(app: &TestApp, uri: &str, label: &str) -> (u16, Option<i64>) {
    let status = app.post(uri.to_string()).dispatch().await.status().code;
    let rx = app
        .rocket()
        .state::<Arc<Hooks>>()
        .unwrap()
        .receivers
        .lock()
        .unwrap()
        .remove(label)
        .unwrap_or_else(|| panic!("{uri}: the handler registered no hook"));
    (status, rx.await.ok())
}

async fn autocommit_runs_hooks_on_2xx_only(app: TestApp) {
    let probe = Probe::of(app.database("default"));
    assert_eq!(
        post(&app, "/items/a", "a").await,
        (201, Some(1)),
        "2xx: committed, hook ran and saw the row"
    );
    assert_eq!(post(&app, "/items/b?status=299", "b").await, (299, Some(1)));
    assert_eq!(
        post(&app, "/items/c?status=303", "c").await,
        (303, None),
        "3xx: rolled back, hook dropped"
    );
    assert_eq!(post(&app, "/items/d?status=400", "d").await, (400, None));
    assert_eq!(post(&app, "/items/e?status=500", "e").await, (500, None));
    assert_eq!(
        probe.count("item").await,
        2,
        "only the 2xx writes were committed"
    );
    // A failed commit: the response is no 2xx and the hook never runs.
    let (status, ran) = post(&app, "/items/f?sabotage=true", "f").await;
    assert!(status >= 400, "a failed commit answered {status}");
    assert_eq!(ran, None, "a hook ran after a failed commit");
    assert_eq!(probe.count_where("item", "label", "f").await, 0);
}

async fn include_redirect_runs_hooks_on_3xx(app: TestApp) {
    assert_eq!(post(&app, "/items/a?status=303", "a").await, (303, Some(1)));
    assert_eq!(post(&app, "/items/b?status=400", "b").await, (400, None));
    assert_eq!(Probe::of(app.database("default")).count("item").await, 1);
}

async fn manual_runs_hooks_on_the_handlers_commit(app: TestApp) {
    // Never committed: the fairing rolls back, the hook is dropped.
    assert_eq!(post(&app, "/items/a", "a").await, (201, None));
    // Committed by the handler: the hook runs, whatever the status says afterwards.
    assert_eq!(
        post(&app, "/items/b?commit=true&status=500", "b").await,
        (500, Some(1))
    );
    let probe = Probe::of(app.database("default"));
    assert_eq!(probe.count_where("item", "label", "a").await, 0);
    assert_eq!(probe.count_where("item", "label", "b").await, 1);
}

/// The awaited hook ran before the response came back; the spawned one had not (it waits
/// for the test's go, which the response did not need).
async fn awaited_hooks_hold_the_response_spawned_ones_do_not(app: TestApp) {
    let response = app.post("/ordered/x").dispatch().await;
    assert_eq!(response.status(), Status::Created);
    let hooks = app.rocket().state::<Arc<Hooks>>().unwrap();
    assert_eq!(*hooks.awaited.lock().unwrap(), vec!["x".to_string()]);
    let rx = hooks.receivers.lock().unwrap().remove("x").unwrap();
    hooks.gate.notify_one();
    assert_eq!(rx.await.ok(), Some(1), "the spawned hook ran once let go");
}

rocket_alchemy::test_on_backends!(KIT, with = autocommit => autocommit_runs_hooks_on_2xx_only);
rocket_alchemy::test_on_backends!(KIT, with = include_redirect => include_redirect_runs_hooks_on_3xx);
rocket_alchemy::test_on_backends!(KIT, with = manual => manual_runs_hooks_on_the_handlers_commit);
rocket_alchemy::test_on_backends!(KIT, with = autocommit => awaited_hooks_hold_the_response_spawned_ones_do_not);
