//! The test kit (`rocket_alchemy::testing`) on every backend: per-test databases copied
//! from a template, commit modes as in production, isolation between tests running at once,
//! schema from migrations, fixtures and the statement budget — each checked through an
//! independent connection or sqlx's own statement log, not through the kit.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::Probe;
use rocket::figment::providers::{Format, Serialized, Toml};
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::{get, post, routes, Build, Rocket};
use rocket_alchemy::filters::{Filter, SortOrder};
use rocket_alchemy::sea_query::{Expr, Func, Query};
use rocket_alchemy::testing::{SchemaSource, TestApp, TestKit};
use rocket_alchemy::{Alchemy, Model, Repository, RepositoryError, Session, SessionError};

#[derive(Model, Debug, Clone)]
struct Writer {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(max_length = 100)]
    name: String,
}

#[derive(Model, Debug, Clone)]
struct Piece {
    #[model(primary_key = "auto_increment")]
    id: i64,
    #[model(references = Writer)]
    writer_id: i64,
    #[model(max_length = 100)]
    title: String,
}

/// Creates a writer and answers `status` (default 201): the commit mode decides.
#[post("/writers/<name>?<status>")]
async fn create(
    name: &str,
    status: Option<u16>,
    db: Session<'_>,
) -> Result<Status, RepositoryError> {
    Repository::<Writer>::new(db)
        .create(Writer {
            id: 0,
            name: name.into(),
        })
        .await?;
    Ok(Status::new(status.unwrap_or(201)))
}

#[get("/writers/count")]
async fn count(db: Session<'_>) -> Result<String, RepositoryError> {
    Ok(Repository::<Writer>::new(db).count(&[]).await?.to_string())
}

#[get("/writers/exists/<name>")]
async fn exists(name: &str, db: Session<'_>) -> Result<String, RepositoryError> {
    let found = Repository::<Writer>::new(db)
        .exists(&[Filter::eq(Writer::NAME, name)])
        .await?;
    Ok(found.to_string())
}

/// A page of two writers and the total.
#[get("/writers/page")]
async fn page(db: Session<'_>) -> Result<String, RepositoryError> {
    let (rows, total) = Repository::<Writer>::new(db)
        .list_and_count(&[
            Filter::order_by(Writer::ID, SortOrder::Asc),
            Filter::limit_offset(2, 0),
        ])
        .await?;
    Ok(format!("{} of {total}", rows.len()))
}

/// Every writer with their pieces: two statements however many writers.
#[get("/writers/pieces")]
async fn with_pieces(db: Session<'_>) -> Result<String, RepositoryError> {
    let writers = Repository::<Writer>::new(db);
    let all = writers.list(&[]).await?;
    let pieces = writers.children(&all, Piece::WRITER_ID).await?;
    Ok(pieces.iter().map(Vec::len).sum::<usize>().to_string())
}

/// The same, N+1: one `children` query per writer.
#[get("/writers/pieces/n_plus_one")]
async fn with_pieces_n_plus_one(db: Session<'_>) -> Result<String, RepositoryError> {
    let writers = Repository::<Writer>::new(db);
    let mut n = 0;
    for writer in writers.list(&[]).await? {
        n += writers.children(&[writer], Piece::WRITER_ID).await?[0].len();
    }
    Ok(n.to_string())
}

/// The rows of the migrated `note` table.
#[get("/notes/count")]
async fn notes(db: Session<'_>) -> Result<String, SessionError> {
    let (n,): (i64,) = db
        .fetch_one(
            &Query::select()
                .expr(Func::count(Expr::col("id")))
                .from("note")
                .to_owned(),
        )
        .await?;
    Ok(n.to_string())
}

fn app(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(Alchemy::fairing().model::<Writer>().model::<Piece>())
        .mount(
            "/",
            routes![
                create,
                count,
                exists,
                page,
                with_pieces,
                with_pieces_n_plus_one,
                notes
            ],
        )
}

/// The app's own configuration, as a `Rocket.toml` would give it: a SQLite URL, and a
/// SQLite-only key that the kit drops on the other backends.
fn config() -> Figment {
    Figment::from(rocket::Config::default()).merge(
        Toml::string(
            r#"
            [default.databases.default]
            url = "sqlite://data/never-used.db"
            commit_mode = "autocommit"
            journal_mode = "wal"
            "#,
        )
        .nested(),
    )
}

static KIT: TestKit = TestKit::new(app).figment(config);

fn migrated_config() -> Figment {
    config().merge(Serialized::default(
        "databases.default.migrations",
        "tests/kit_migrations",
    ))
}

static MIGRATED: TestKit = TestKit::new(app)
    .figment(migrated_config)
    .schema(SchemaSource::Migrations);

fn probe(app: &TestApp) -> Probe {
    Probe::of(app.database("default"))
}

async fn body(app: &TestApp, uri: &str) -> String {
    let response = app.get(uri.to_string()).dispatch().await;
    assert_eq!(response.status(), Status::Ok, "GET {uri}");
    response.into_string().await.unwrap()
}

/// What a request commits is seen by the next request of the test and by another
/// connection; what it rolls back is seen by neither.
async fn commits_are_seen_rollbacks_are_not(app: TestApp) {
    let probe = probe(&app);
    assert_eq!(
        probe.count("writer").await,
        0,
        "a test starts on empty tables"
    );
    let r = app.post("/writers/ann").dispatch().await;
    assert_eq!(r.status(), Status::Created);
    assert_eq!(body(&app, "/writers/count").await, "1");
    assert_eq!(probe.count("writer").await, 1, "committed for real");

    let r = app.post("/writers/bob?status=500").dispatch().await;
    assert_eq!(r.status().code, 500);
    assert_eq!(body(&app, "/writers/count").await, "1");
    assert_eq!(
        probe.count_where("writer", "name", "bob").await,
        0,
        "rolled back"
    );
}

/// Two tests at once: each has its own databases, neither sees the other's rows.
async fn tests_do_not_see_each_other(first: TestApp) {
    let second = KIT.start(first.target()).await.expect("configured");
    assert_ne!(
        first.database("default").name(),
        second.database("default").name()
    );
    let (a, b) = rocket::tokio::join!(
        first.post("/writers/first").dispatch(),
        second.post("/writers/second").dispatch()
    );
    assert_eq!((a.status(), b.status()), (Status::Created, Status::Created));
    let (p1, p2) = (probe(&first), probe(&second));
    assert_eq!(p1.count_where("writer", "name", "second").await, 0);
    assert_eq!(p2.count_where("writer", "name", "first").await, 0);
    assert_eq!((p1.count("writer").await, p2.count("writer").await), (1, 1));
}

/// The template came from the migrations folder: its table, its seed row and sqlx's
/// history are in every copy.
async fn schema_from_migrations(app: TestApp) {
    assert_eq!(body(&app, "/notes/count").await, "1");
    let probe = probe(&app);
    assert_eq!(
        probe
            .count_where("note", "body", "seeded by a migration")
            .await,
        1
    );
    assert_eq!(probe.count("_sqlx_migrations").await, 1);
    // No model table: the schema is the migrations', not `create_all`'s.
    let tables = match app.backend() {
        rocket_alchemy::Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'writer'"
        }
        rocket_alchemy::Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'writer'"
        }
        rocket_alchemy::Backend::MySql => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'writer'"
        }
    };
    assert_eq!(probe.scalar(tables).await, 0);
}

/// `load_fixtures` loads what `database dump-data` writes, parents before children.
async fn fixtures_load(app: TestApp) {
    let dir = std::env::temp_dir().join(format!(
        "ra_kit_fixtures_{}_{}",
        app.target(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("piece.json"),
        r#"[{"id": 1, "writer_id": 7, "title": "a"}, {"id": 2, "writer_id": 7, "title": "b"}]"#,
    )
    .unwrap();
    std::fs::write(dir.join("writer.json"), r#"[{"id": 7, "name": "Octavia"}]"#).unwrap();
    let loaded = app
        .load_fixtures("default", &dir)
        .await
        .expect("fixtures load");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        loaded,
        vec![("writer".to_string(), 1), ("piece".to_string(), 2)]
    );
    let probe = probe(&app);
    assert_eq!(probe.count("piece").await, 2);
    assert_eq!(probe.count_where("writer", "name", "Octavia").await, 1);
    assert_eq!(body(&app, "/writers/pieces").await, "2");
}

// ---- the statement budget, checked against sqlx's own statement log ------------------------

/// The data statements sqlx logged (`echo = true`), in order.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

struct Capture(Statements);

/// sqlx logs a short statement whole in `summary`, with an empty `db.statement`.
#[derive(Default)]
struct Visitor {
    summary: String,
    statement: String,
}

impl tracing::field::Visit for Visitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "db.statement" => self.statement = value.to_string(),
            "summary" => self.summary = value.to_string(),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut visitor = Visitor::default();
        event.record(&mut visitor);
        let statement = match visitor.statement.trim().is_empty() {
            true => visitor.summary,
            false => visitor.statement,
        };
        self.0 .0.lock().unwrap().push(statement);
    }
}

fn sqlx_log() -> &'static Statements {
    static LOG: OnceLock<Statements> = OnceLock::new();
    LOG.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let statements = Statements::default();
        let subscriber = tracing_subscriber::registry().with(Capture(statements.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        statements
    })
}

/// Data statements (not transaction control) that sqlx logged while `request` ran.
async fn logged<F: std::future::Future>(request: F) -> (F::Output, usize, Vec<String>) {
    let log = sqlx_log();
    let before = log.0.lock().unwrap().len();
    let output = request.await;
    let statements = log.0.lock().unwrap()[before..].to_vec();
    // SQLite sends a reader's `BEGIN` with its first statement (`BEGIN; SELECT …`): count
    // the data statements in each logged text.
    let data = statements
        .iter()
        .flat_map(|s| s.split(';'))
        .filter(|part| {
            let first = part
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            matches!(
                first.as_str(),
                "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "WITH"
            )
        })
        .count();
    (output, data, statements)
}

fn echo(figment: Figment) -> Figment {
    figment.merge(Serialized::default("databases.default.echo", true))
}

/// `exists`, `list_and_count` and `children` run the statements they document, the N+1
/// shape runs one more per writer, and the kit's count matches sqlx's own log.
async fn statement_budget(app: TestApp) {
    // The binary's tests share sqlx's log: the budget tests run one at a time.
    static SERIAL: rocket::tokio::sync::Mutex<()> = rocket::tokio::sync::Mutex::const_new(());
    let _serial = SERIAL.lock().await;
    let probe = probe(&app);
    probe
        .execute(
            "INSERT INTO writer (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e');\
             INSERT INTO piece (id, writer_id, title) VALUES (1, 1, 'x'), (2, 2, 'y'), (3, 5, 'z');",
        )
        .await;
    let mut budget = |uri: &'static str, expect: usize| {
        let app = &app;
        async move {
            let (response, seen, log) = logged(app.get(uri).dispatch()).await;
            assert_eq!(response.status(), Status::Ok, "GET {uri}");
            let counted = app.statements(&response, "default") as usize;
            assert_eq!(
                seen, expect,
                "GET {uri}: statements in sqlx's log: {log:#?}"
            );
            assert_eq!(
                counted, seen,
                "GET {uri}: the kit's count against sqlx's log"
            );
            response.into_string().await.unwrap()
        }
    };
    assert_eq!(budget("/writers/exists/c", 1).await, "true");
    // SQLite counts in a second statement of the same read transaction; the servers in one.
    let page_statements = if app.backend() == rocket_alchemy::Backend::Sqlite {
        2
    } else {
        1
    };
    assert_eq!(budget("/writers/page", page_statements).await, "2 of 5");
    assert_eq!(budget("/writers/pieces", 2).await, "3");
    // The N+1 shape: 1 + 5 statements, over any budget of 2.
    assert_eq!(budget("/writers/pieces/n_plus_one", 6).await, "3");
    let _ = &mut budget;
}

rocket_alchemy::test_on_backends!(
    KIT => commits_are_seen_rollbacks_are_not,
    tests_do_not_see_each_other,
    fixtures_load
);
rocket_alchemy::test_on_backends!(MIGRATED => schema_from_migrations);
rocket_alchemy::test_on_backends!(KIT, with = echo => statement_budget);

/// A kit whose app has no `databases` says so.
#[cfg(feature = "sqlite")]
#[test]
#[should_panic(expected = "has no `databases`")]
fn no_databases_is_a_clear_error() {
    fn bare() -> Figment {
        Figment::from(rocket::Config::default())
    }
    static BARE: TestKit = TestKit::new(app).figment(bare);
    rocket_alchemy::testing::block_on(async {
        BARE.start(rocket_alchemy::testing::TestTarget::Sqlite)
            .await;
    });
}

/// An app that does not launch on its test databases fails the test with the fairing's
/// reason, not Rocket's generic one.
#[cfg(feature = "sqlite")]
#[test]
#[should_panic(expected = "databases.default.commit_mode")]
fn launch_error_is_shown() {
    rocket_alchemy::testing::block_on(async {
        KIT.start_with(rocket_alchemy::testing::TestTarget::Sqlite, |figment| {
            figment.merge(Serialized::default(
                "databases.default.commit_mode",
                "sometimes",
            ))
        })
        .await;
    });
}
