//! Issue 12: wrong code fails at compile time or at launch, never silently at run time —
//! what a new user ran into, each checked through an independent path (a probe connection,
//! the files on disk, the captured log).
// Some helpers serve tests of one backend feature only.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code, unused_imports))]

mod common;

use chrono::{DateTime, Utc};
use common::TestDb;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, post, routes};
use rocket_alchemy::filters::SortOrder;
use rocket_alchemy::migrate::{MigrationError, Migrator};
use rocket_alchemy::service::{Operation, Service, ToModel};
use rocket_alchemy::{
    Alchemy, Backend, JsonBody, ListParams, ListSpec, Model, Repository, RepositoryError, Session,
};
use uuid::Uuid;

// ---- captured logs (one subscriber for this binary; each test looks for its own marker) ----

/// Everything logged so far (INFO and above; the first call starts capturing).
fn logs() -> String {
    common::captured_logs(tracing::Level::INFO)
}

/// The captured lines containing `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    let text = logs();
    text.lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

// ---- models ----

#[derive(Model, Clone, Debug, PartialEq, serde::Serialize)]
struct Ticket {
    id: i64,
    #[model(max_length = 40, unique)]
    label: String,
}

#[derive(Model, Clone, Debug, PartialEq, serde::Serialize)]
struct List {
    id: Uuid,
    #[model(max_length = 100)]
    title: String,
    created_at: DateTime<Utc>,
}

#[derive(Model, Clone, Debug, PartialEq, serde::Serialize)]
struct Todo {
    id: Uuid,
    #[model(max_length = 200)]
    text: String,
    #[model(references = List, on_delete = "cascade")]
    list_id: Uuid,
}

fn ticket(label: &str) -> Ticket {
    Ticket {
        id: 0,
        label: label.into(),
    }
}

fn list(title: &str) -> List {
    List {
        id: Uuid::nil(),
        title: title.into(),
        created_at: DateTime::UNIX_EPOCH,
    }
}

async fn open(db: &TestDb, tables: &[&'static rocket_alchemy::model::Table]) -> Alchemy {
    Alchemy::open(
        &db.figment("[databases.default]\ncreate_all = true"),
        tables,
    )
    .await
    .expect("open")
}

// ---- 6. auto-increment keys are never reused ----

/// Insert, delete the last row, insert again: the new key is not the deleted one, on every
/// backend (SQLite's `AUTOINCREMENT`, PostgreSQL's identity, MySQL's `AUTO_INCREMENT`).
async fn auto_increment_keys_are_never_reused(db: TestDb) {
    let alchemy = open(&db, &[Ticket::TABLE]).await;
    let session = alchemy.session("default").unwrap();
    let tickets = Repository::<Ticket>::on(&session).unwrap();
    let first = tickets.create(ticket("a")).await.unwrap();
    let second = tickets.create(ticket("b")).await.unwrap();
    session.commit().await.unwrap();
    assert!(second.id > first.id);
    let probe = db.probe();
    probe
        .execute(&format!("DELETE FROM ticket WHERE id = {}", second.id))
        .await;
    let third = tickets.create(ticket("c")).await.unwrap();
    session.commit().await.unwrap();
    assert_ne!(third.id, second.id, "a deleted key was given again");
    assert_eq!(
        probe.scalar("SELECT MAX(id) FROM ticket").await,
        third.id,
        "the database holds the new key"
    );
    assert!(third.id > second.id);
    // Outside the app too: a row inserted by hand after a delete gets a fresh key.
    probe
        .execute(&format!("DELETE FROM ticket WHERE id = {}", third.id))
        .await;
    probe
        .execute("INSERT INTO ticket (label) VALUES ('by hand')")
        .await;
    assert!(probe.scalar("SELECT MAX(id) FROM ticket").await > third.id);
    alchemy.close().await;
}

// ---- 6. no `.migrate-lock` left beside a SQLite database ----

fn temp_dir(db: &TestDb, what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ra_{what}_{}", db.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_lock_file_is_removed() {
    let db = TestDb::sqlite("lock_file").await;
    let dir = temp_dir(&db, "lock");
    std::fs::write(
        dir.join("1_first.up.sql"),
        "CREATE TABLE first (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    std::fs::write(dir.join("1_first.down.sql"), "DROP TABLE first;\n").unwrap();
    let figment = db.figment(&format!(
        "[databases.default]\nmigrations = \"{}\"",
        dir.display()
    ));
    let alchemy = Alchemy::open(&figment, &[]).await.unwrap();
    let migrator = Migrator::new(alchemy.bind("default").unwrap()).unwrap();
    let mut out = Vec::new();
    let steps = migrator.upgrade(None, &mut out).await.unwrap();
    assert_eq!(steps.len(), 1);
    let path = db.url.trim_start_matches("sqlite://");
    let lock = format!("{path}.migrate-lock");
    assert!(
        !std::path::Path::new(&lock).exists(),
        "{lock} is left after the upgrade"
    );
    assert_eq!(
        db.probe()
            .scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'first'")
            .await,
        1
    );
    alchemy.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

// ---- 3. autogenerate never writes a destructive change without being told ----

/// A table the models lack (a forgotten `.model::<T>()`) is not turned into a `DROP TABLE`
/// unless allowed; when allowed, the file marks it.
async fn autogenerate_refuses_destructive_changes(db: TestDb) {
    let dir = temp_dir(&db, "destructive");
    let figment = db.figment(&format!(
        "[databases.default]\nmigrations = \"{}\"",
        dir.display()
    ));
    // The table exists, with a row; the app forgot to register its model.
    let bootstrap = open(&db, &[Ticket::TABLE]).await;
    bootstrap.close().await;
    db.probe()
        .execute("INSERT INTO ticket (label) VALUES ('keep me')")
        .await;
    let alchemy = Alchemy::open(&figment, &[]).await.unwrap();
    let migrator = Migrator::new(alchemy.bind("default").unwrap()).unwrap();
    let error = migrator.revision("forgot", true).await.unwrap_err();
    match &error {
        MigrationError::Destructive { changes, .. } => {
            assert_eq!(changes, &["- table ticket"], "{error}")
        }
        other => panic!("expected Destructive, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("--allow-destructive"), "{message}");
    assert!(message.contains(".model::<M>()"), "{message}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );

    let (path, plan) = migrator
        .allow_destructive(true)
        .revision("drop it", true)
        .await
        .unwrap()
        .expect("a revision");
    assert_eq!(plan.destructive, ["- table ticket"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("-- DESTRUCTIVE: - table ticket"),
        "the file marks the drop:\n{text}"
    );
    assert_eq!(db.probe().count("ticket").await, 1, "revision runs nothing");
    alchemy.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

// ---- 4. migrations carry their backend; failures name the file's own line ----

/// A pending migration generated for another backend is refused before anything runs,
/// naming both backends and the fix; `{backend}` in the folder keeps one folder per backend.
async fn migrations_refuse_another_backends_sql(db: TestDb) {
    let root = temp_dir(&db, "backends");
    let figment = db.figment(&format!(
        "[databases.default]\nmigrations = \"{}/{{backend}}\"",
        root.display()
    ));
    let alchemy = Alchemy::open(&figment, &[]).await.unwrap();
    let migrator = Migrator::new(alchemy.bind("default").unwrap()).unwrap();
    let dir = root.join(db.backend.name());
    assert_eq!(migrator.migrations().dir, dir, "one folder per backend");
    let other = match db.backend {
        Backend::Sqlite => "postgres",
        _ => "sqlite",
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("1_mine.up.sql"),
        format!(
            "-- mine\n-- bind: default, backend: {}\n\nCREATE TABLE mine (id INTEGER PRIMARY KEY);\n",
            db.backend.name()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("2_theirs.up.sql"),
        format!("-- theirs\n-- bind: default, backend: {other}\n\nCREATE TABLE theirs (id INTEGER PRIMARY KEY);\n"),
    )
    .unwrap();
    let migrator = Migrator::new(alchemy.bind("default").unwrap()).unwrap();
    let error = migrator.upgrade(None, &mut Vec::new()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, MigrationError::WrongBackend { .. }),
        "{message}"
    );
    assert!(message.contains("2_theirs.up.sql"), "{message}");
    assert!(
        message.contains(&format!(
            "generated for {other}, but bind `default` is on {}",
            db.backend
        )),
        "{message}"
    );
    assert!(message.contains("migrations/{backend}"), "{message}");
    let tables = match db.backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('mine', 'theirs')",
        Backend::Postgres => "SELECT COUNT(*) FROM pg_tables WHERE tablename IN ('mine', 'theirs')",
        Backend::MySql => "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('mine', 'theirs')",
    };
    assert_eq!(db.probe().scalar(tables).await, 0, "nothing applied");

    // Without the other backend's file, the bind's own applies.
    std::fs::remove_file(dir.join("2_theirs.up.sql")).unwrap();
    let migrator = Migrator::new(alchemy.bind("default").unwrap()).unwrap();
    assert_eq!(
        migrator.upgrade(None, &mut Vec::new()).await.unwrap().len(),
        1
    );
    assert_eq!(db.probe().scalar(tables).await, 1);
    alchemy.close().await;
    let _ = std::fs::remove_dir_all(root);
}

/// A failing statement is reported at the file's own line (PostgreSQL and SQLite, whose
/// failed migrations roll back and are replayed to find the statement; PostgreSQL's error
/// position gives the very line), and at no other line.
async fn migration_failure_names_the_files_line(db: TestDb) {
    if db.backend == Backend::MySql {
        return; // DDL commits implicitly: the failing statement is not replayed
    }
    let dir = temp_dir(&db, "line");
    std::fs::write(
        dir.join("1_broken.up.sql"),
        "-- broken\n-- bind: default\n\nCREATE TABLE fine (id INTEGER PRIMARY KEY);\n\n\nCREATE TABLE broken (id INTEGER PRIMARY KEY,\n  oops NOT_A_TYPE(;\n",
    )
    .unwrap();
    let figment = db.figment(&format!(
        "[databases.default]\nmigrations = \"{}\"",
        dir.display()
    ));
    let alchemy = Alchemy::open(&figment, &[]).await.unwrap();
    let migrator = Migrator::new(alchemy.bind("default").unwrap()).unwrap();
    let message = migrator
        .upgrade(None, &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    // PostgreSQL points at the error (line 8); SQLite says which statement (from line 7).
    let line = match db.backend {
        Backend::Postgres => 8,
        _ => 7,
    };
    assert!(
        message.contains(&format!("1_broken.up.sql:{line} failed at statement 2")),
        "{message}"
    );
    // No other line: sqlx appends the line of PostgreSQL's own C source (`at line 1188`).
    assert!(!message.contains(" at line "), "{message}");
    alchemy.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

// ---- 5. JSON bodies answer 422 with the field and the reason ----

#[derive(serde::Deserialize)]
struct TodoIn {
    #[allow(dead_code)]
    title: String,
    #[allow(dead_code)]
    done: bool,
}

#[post("/todos", data = "<input>")]
fn create_todo(input: JsonBody<TodoIn>) -> &'static str {
    let _ = input.into_inner();
    "ok"
}

async fn json_client() -> Client {
    let rocket = rocket::custom(
        rocket::Config::figment()
            .merge(("log_level", "off"))
            .merge(("port", 0)),
    )
    .mount("/", routes![create_todo])
    .register("/", rocket_alchemy::params::catchers());
    Client::tracked(rocket).await.unwrap()
}

#[tokio::test]
async fn json_body_errors_name_the_field_and_the_reason() {
    logs();
    let client = json_client().await;
    let post = |body: &'static str| {
        client
            .post("/todos")
            .header(ContentType::JSON)
            .body(body)
            .dispatch()
    };
    let response = post(r#"{"done": false}"#).await;
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let body: serde_json::Value = response.into_json().await.unwrap();
    assert_eq!(body["status_code"], 422);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("missing field `title`"), "{detail}");

    let response = post(r#"{"title": "x", "done": "yes"}"#).await;
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let body: serde_json::Value = response.into_json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("invalid type"), "{detail}");
    assert!(detail.contains("expected a boolean"), "{detail}");

    let response = post(r#"{"title": "#).await;
    assert_eq!(response.status(), Status::BadRequest);
    let body: serde_json::Value = response.into_json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().starts_with("invalid JSON"),
        "{body}"
    );
    assert_eq!(
        post(r#"{"title": "x", "done": true}"#).await.status(),
        Status::Ok
    );

    // The log says where the body failed, without its values.
    let logged = lines_with("POST /todos: 422");
    assert!(!logged.is_empty(), "no log line for the 422");
    assert!(logged.iter().all(|l| !l.contains("yes")), "{logged:?}");
}

// ---- 5. configuration errors name the true source; switching backends from the env ----

/// A bad value in Rocket.toml is blamed on Rocket.toml even when the `url` comes from the
/// environment.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[test]
#[allow(clippy::result_large_err)]
fn config_errors_name_the_keys_own_source() {
    rocket::figment::Jail::expect_with(|jail| {
        jail.create_file(
            "Rocket.toml",
            "[default.databases.default]\nurl = \"sqlite://data/app.db\"\nconnect_timeout = 0\n",
        )?;
        jail.set_env(
            "ROCKET_DATABASES",
            r#"{default={url="sqlite://data/other.db"}}"#,
        );
        let error = rocket_alchemy::DatabaseConfig::from_figment(&rocket::Config::figment(), 2)
            .unwrap_err();
        let message = error.to_string();
        assert_eq!(error.key, "databases.default.connect_timeout");
        assert!(message.contains("Rocket.toml"), "{message}");
        assert!(!message.contains("environment"), "{message}");
        Ok(())
    });
}

/// Rocket.toml's SQLite keys do not stop the environment from moving the bind to
/// PostgreSQL; in one source they are still refused, blamed on that source.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[test]
#[allow(clippy::result_large_err)]
fn switching_backend_from_the_environment_ignores_the_files_backend_keys() {
    rocket::figment::Jail::expect_with(|jail| {
        jail.create_file(
            "Rocket.toml",
            "[default.databases.default]\nurl = \"sqlite://data/app.db\"\njournal_mode = \"wal\"\nbusy_timeout = 2\nsynchronous = \"normal\"\n",
        )?;
        jail.set_env(
            "ROCKET_DATABASES",
            r#"{default={url="postgres://app@localhost/app"}}"#,
        );
        let binds =
            rocket_alchemy::DatabaseConfig::from_figment(&rocket::Config::figment(), 2).unwrap();
        assert_eq!(binds[0].backend, Backend::Postgres);
        assert!(binds[0].sqlite.is_none());

        // Both from the environment: a mistake, refused and blamed on the environment.
        jail.set_env(
            "ROCKET_DATABASES",
            r#"{default={url="postgres://app@localhost/app",journal_mode="wal"}}"#,
        );
        let error = rocket_alchemy::DatabaseConfig::from_figment(&rocket::Config::figment(), 2)
            .unwrap_err();
        assert_eq!(error.key, "databases.default.journal_mode");
        assert!(error.to_string().contains("environment"), "{error}");
        Ok(())
    });
    rocket::figment::Jail::expect_with(|jail| {
        jail.create_file(
            "Rocket.toml",
            "[default.databases.default]\nurl = \"postgres://app@localhost/app\"\njournal_mode = \"wal\"\n",
        )?;
        let error = rocket_alchemy::DatabaseConfig::from_figment(&rocket::Config::figment(), 2)
            .unwrap_err();
        assert_eq!(error.key, "databases.default.journal_mode");
        assert!(error.to_string().contains("Rocket.toml"), "{error}");
        Ok(())
    });
}

// ---- 5. batch validation errors name the item's index ----

#[derive(serde::Deserialize)]
struct ListIn {
    title: String,
}

impl ToModel<List> for ListIn {
    fn to_model(self, _: Operation) -> Result<List, RepositoryError> {
        if self.title.trim().is_empty() {
            return Err(RepositoryError::Validation(
                "title must not be empty".into(),
            ));
        }
        Ok(list(&self.title))
    }
}

async fn batch_validation_names_the_item(db: TestDb) {
    let alchemy = open(&db, &[List::TABLE, Todo::TABLE]).await;
    let session = alchemy.session("default").unwrap();
    let lists = Service::<List>::on(&session).unwrap();
    let inputs = ["groceries", "chores", " "].map(|t| ListIn { title: t.into() });
    let error = lists.create_many(inputs).await.unwrap_err();
    assert_eq!(error.status(), Status::UnprocessableEntity);
    assert_eq!(error.detail(), "item 2: title must not be empty");
    let inputs = [" "].map(|t| ListIn { title: t.into() });
    let error = lists
        .upsert_many(inputs, &[List::ID.into()])
        .await
        .unwrap_err();
    assert_eq!(error.detail(), "item 0: title must not be empty");
    session.commit().await.unwrap();
    assert_eq!(
        db.probe().count("list").await,
        0,
        "a bad item writes nothing"
    );
    alchemy.close().await;
}

/// A constraint violation in a batch names the item that causes it — a row that exists
/// already, or one that repeats an earlier item — with the status and detail of the
/// violation; the transaction stays usable and nothing of the batch is written.
async fn batch_database_errors_name_the_item(db: TestDb) {
    let alchemy = open(&db, &[Ticket::TABLE, List::TABLE, Todo::TABLE]).await;
    db.probe()
        .execute("INSERT INTO ticket (label) VALUES ('taken')")
        .await;
    let session = alchemy.session("default").unwrap();
    let tickets = Repository::<Ticket>::on(&session).unwrap();
    let error = tickets
        .create_many(["a", "b", "taken", "c"].map(ticket).to_vec())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Status::Conflict);
    assert_eq!(
        error.detail(),
        "item 2: A record matching the supplied data already exists."
    );
    assert!(
        matches!(&error, RepositoryError::Item { index: 2, error } if matches!(**error, RepositoryError::DuplicateKey { .. })),
        "{error:?}"
    );
    let error = tickets
        .create_many(["d", "e", "d"].map(ticket).to_vec())
        .await
        .unwrap_err();
    assert_eq!(
        error.detail(),
        "item 2: A record matching the supplied data already exists.",
        "a repeat of an earlier item"
    );
    // A foreign key to nowhere, in a batch of models with client-side keys.
    let lists = Repository::<List>::on(&session).unwrap();
    let groceries = lists.create(list("groceries")).await.unwrap();
    let todo = |list_id| Todo {
        id: Uuid::nil(),
        text: "milk".into(),
        list_id,
    };
    let error = Repository::<Todo>::on(&session)
        .unwrap()
        .create_many(vec![todo(groceries.id), todo(Uuid::now_v7())])
        .await
        .unwrap_err();
    assert_eq!(
        error.detail(),
        "item 1: A foreign key is missing or invalid"
    );
    // The transaction goes on: a good batch is written and committed.
    tickets
        .create_many(["f", "g"].map(ticket).to_vec())
        .await
        .unwrap();
    session.commit().await.unwrap();
    assert_eq!(db.probe().count("ticket").await, 3, "taken, f and g");
    assert_eq!(db.probe().count("todo").await, 0);
    // A batch of one is a plain INSERT (on PostgreSQL its failure ends the transaction, as
    // any failed statement does), and still names its item.
    let session = alchemy.session("default").unwrap();
    let error = Repository::<Ticket>::on(&session)
        .unwrap()
        .create_many(vec![ticket("taken")])
        .await
        .unwrap_err();
    assert_eq!(
        error.detail(),
        "item 0: A record matching the supplied data already exists.",
        "a batch of one"
    );
    drop(session);
    alchemy.close().await;
}

// ---- 5. max_length is checked on every backend, naming the item ----

/// A string over its `max_length` is a 422 naming the column (and the item of a batch) on
/// every backend: SQLite stored it silently, PostgreSQL and MySQL answered 500.
async fn max_length_is_checked_everywhere(db: TestDb) {
    let alchemy = open(&db, &[Ticket::TABLE]).await;
    let session = alchemy.session("default").unwrap();
    let tickets = Repository::<Ticket>::on(&session).unwrap();
    let long = "x".repeat(41);
    let error = tickets
        .create_many(vec![ticket("a"), ticket(&long), ticket("c")])
        .await
        .unwrap_err();
    assert_eq!(error.status(), Status::UnprocessableEntity);
    assert_eq!(
        error.detail(),
        "item 1: label: at most 40 characters, got 41"
    );
    let error = tickets.create(ticket(&long)).await.unwrap_err();
    assert_eq!(error.detail(), "label: at most 40 characters, got 41");
    let error = tickets
        .upsert_many(vec![ticket("a"), ticket(&long)], &[Ticket::LABEL.into()])
        .await
        .unwrap_err();
    assert_eq!(
        error.detail(),
        "item 1: label: at most 40 characters, got 41"
    );
    let kept = tickets.create(ticket(&"é".repeat(40))).await.unwrap();
    let error = tickets
        .update(
            kept.id,
            rocket_alchemy::Changes::new().set(Ticket::LABEL, long.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status(), Status::UnprocessableEntity);
    session.commit().await.unwrap();
    let probe = db.probe();
    assert_eq!(probe.count("ticket").await, 1, "only the 40-character one");
    assert_eq!(probe.count_where("ticket", "label", &long).await, 0);
    alchemy.close().await;
}

// ---- 7. Service offers children and get_or_none ----

async fn service_has_children_and_get_or_none(db: TestDb) {
    let alchemy = open(&db, &[List::TABLE, Todo::TABLE]).await;
    let session = alchemy.session("default").unwrap();
    let lists = Service::<List>::on(&session).unwrap();
    let todos = Service::<Todo>::on(&session).unwrap();
    let groceries = lists.create(list("groceries")).await.unwrap();
    let empty = lists.create(list("empty")).await.unwrap();
    for text in ["milk", "eggs"] {
        todos
            .create(Todo {
                id: Uuid::nil(),
                text: text.into(),
                list_id: groceries.id,
            })
            .await
            .unwrap();
    }
    session.commit().await.unwrap();
    assert_eq!(db.probe().count("todo").await, 2);
    let children = lists
        .children(&[groceries.clone(), empty.clone()], Todo::LIST_ID)
        .await
        .unwrap();
    assert_eq!(children[0].len(), 2);
    assert!(children[1].is_empty());
    assert_eq!(
        lists.get_or_none(groceries.id).await.unwrap().map(|l| l.id),
        Some(groceries.id)
    );
    assert_eq!(lists.get_or_none(Uuid::now_v7()).await.unwrap(), None);
    alchemy.close().await;
}

// ---- 5. a 4xx from the database logs its reason at the normal level ----

#[post("/tickets/<tag>/<label>")]
async fn create_ticket(tag: &str, label: &str, db: Session<'_>) -> Result<String, RepositoryError> {
    let _ = tag;
    let created = Repository::<Ticket>::new(db).create(ticket(label)).await?;
    Ok(created.id.to_string())
}

async fn database_4xx_logs_its_reason(db: TestDb) {
    logs();
    let rocket = db
        .rocket("[databases.default]\ncreate_all = true\ncommit_mode = \"autocommit\"")
        .attach(Alchemy::fairing().model::<Ticket>())
        .mount("/", routes![create_ticket]);
    let client = Client::tracked(rocket).await.unwrap();
    let tag = db.name().to_string();
    let uri = format!("/tickets/{tag}/secret-label");
    assert_eq!(
        client.post(uri.clone()).dispatch().await.status(),
        Status::Ok
    );
    assert_eq!(db.probe().count("ticket").await, 1);
    let response = client.post(uri).dispatch().await;
    assert_eq!(response.status(), Status::Conflict);
    let logged = lines_with(&format!("/tickets/{tag}/"));
    let line = logged
        .iter()
        // Not just "409": a line's timestamp can contain it.
        .find(|l| l.contains(" WARN ") && l.contains("409"))
        .unwrap_or_else(|| panic!("no 409 line in {logged:?}"));
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains("UniqueViolation"), "the reason: {line}");
    match db.backend {
        Backend::Sqlite => assert!(line.contains("ticket.label"), "{line}"),
        Backend::Postgres => assert!(line.contains("uq_ticket_label"), "{line}"),
        Backend::MySql => {}
    }
    // The values sent never reach the log line's reason (MySQL quotes them in its message).
    let reason = line.split_once("(UniqueViolation").unwrap().1;
    assert!(!reason.contains("secret-label"), "{line}");
    assert_eq!(db.probe().count("ticket").await, 1);
}

// ---- 7. the launch line reads as words ----

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn launch_line_reads_as_words() {
    logs();
    let db = TestDb::sqlite("launch_line").await;
    let rocket = db
        .rocket("[databases.default]\ncommit_mode = \"autocommit\"")
        .attach(Alchemy::fairing().only_listed_models().model::<Ticket>());
    let client = Client::tracked(rocket).await.unwrap();
    let logged = lines_with(db.name());
    let line = logged
        .iter()
        .find(|l| l.contains("database `default`"))
        .unwrap_or_else(|| panic!("no launch line in {logged:?}"));
    assert!(
        line.contains("(commit_mode = \"autocommit\": commits on 2xx; 1 model table)"),
        "{line}"
    );
    assert!(!line.contains("autocommit commit"), "{line}");
    drop(client);
}

// ---- 2. ListSpec names are checked at launch ----

struct TypoSpec;
impl ListSpec for TypoSpec {
    type Model = List;
    const ORDER_BY: &'static [&'static str] = &["title", "create_at"];
}

struct GoodSpec;
impl ListSpec for GoodSpec {
    type Model = List;
    const ORDER_BY: &'static [&'static str] = &["title", "created_at"];
    const SEARCH: &'static [&'static str] = &["title"];
    const DEFAULT_ORDER: Option<(&'static str, SortOrder)> = Some(("title", SortOrder::Asc));
}

#[get("/good")]
async fn list_good(
    params: ListParams<GoodSpec>,
    db: Session<'_>,
) -> Result<String, RepositoryError> {
    let items = Repository::<List>::new(db).list(params.filters()).await?;
    Ok(items
        .iter()
        .map(|l| l.title.as_str())
        .collect::<Vec<_>>()
        .join(","))
}

async fn ignite_error(rocket: rocket::Rocket<rocket::Build>) -> Option<String> {
    match rocket.ignite().await {
        Ok(_) => None,
        Err(e) => Some(match e.kind() {
            rocket::error::ErrorKind::SentinelAborts(s) => format!("sentinels: {}", s.len()),
            other => other.to_string(),
        }),
    }
}

/// A route taking `ListParams<TypoSpec>` does not compile
/// (`tests/ui/fail/list_spec_unknown_column.rs`); the same check at run time names the spec
/// and the field, and a launch with a correct spec goes through.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn list_spec_typo_is_named() {
    logs();
    let error = rocket_alchemy::params::check_spec::<TypoSpec>().unwrap_err();
    assert!(error.contains("TypoSpec"), "{error}");
    assert!(
        error.contains("ORDER_BY names `create_at`, which is not a column of List"),
        "{error}"
    );
    assert_eq!(rocket_alchemy::params::check_spec::<GoodSpec>(), Ok(()));
    let db = TestDb::sqlite("spec_typo").await;
    let good = db
        .rocket("")
        .attach(Alchemy::fairing().model::<List>())
        .mount("/", routes![list_good]);
    assert_eq!(ignite_error(good).await, None);
}

/// A route listing a model the fairing does not manage (it lists its models) refuses the
/// launch, naming the fix.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn list_of_an_unregistered_model_refuses_the_launch() {
    logs();
    let db = TestDb::sqlite("unregistered").await;
    let rocket = db
        .rocket("")
        .attach(Alchemy::fairing().only_listed_models().model::<Ticket>())
        .mount("/", routes![list_good]);
    assert_eq!(ignite_error(rocket).await.as_deref(), Some("sentinels: 1"));
    let logged = lines_with("not registered on bind");
    assert!(
        logged.iter().any(|l| l.contains("add `.model::<List>()`")),
        "{logged:?}"
    );
}

/// A repository of a model the bind does not have registered warns once, naming the fix
/// (no route reveals every repository, so this one is at first use).
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn repository_of_an_unregistered_model_warns() {
    logs();
    let db = TestDb::sqlite("unregistered_repo").await;
    let alchemy = open(&db, &[List::TABLE]).await;
    let session = alchemy.session("default").unwrap();
    let _ = Repository::<Todo>::on(&session).unwrap();
    let _ = Repository::<List>::on(&session).unwrap();
    let _ = Repository::<Todo>::on(&session).unwrap();
    let warned = lines_with(
        "model Todo is used on bind \"default\" but not registered: add `.model::<Todo>()`",
    );
    assert_eq!(warned.len(), 1, "once: {warned:?}");
    assert!(lines_with("model List is used on bind").is_empty());
    alchemy.close().await;
}

// ---- 7. search case sensitivity per ListSpec ----

struct IgnoreCaseSpec;
impl ListSpec for IgnoreCaseSpec {
    type Model = List;
    const SEARCH: &'static [&'static str] = &["title"];
    const DEFAULT_ORDER: Option<(&'static str, SortOrder)> = Some(("title", SortOrder::Asc));
    const SEARCH_IGNORE_CASE: bool = true;
}

#[get("/ignore-case")]
async fn list_ignore_case(
    params: ListParams<IgnoreCaseSpec>,
    db: Session<'_>,
) -> Result<String, RepositoryError> {
    let items = Repository::<List>::new(db).list(params.filters()).await?;
    Ok(items
        .iter()
        .map(|l| l.title.as_str())
        .collect::<Vec<_>>()
        .join(","))
}

async fn search_case_per_spec(db: TestDb) {
    let rocket = db
        .rocket("[databases.default]\ncreate_all = true\ncommit_mode = \"autocommit\"")
        .attach(Alchemy::fairing().model::<List>())
        .mount("/", routes![list_good, list_ignore_case])
        .register("/", rocket_alchemy::params::catchers());
    let client = Client::tracked(rocket).await.unwrap();
    let probe = db.probe();
    let id = |n: u8| match db.backend {
        Backend::Postgres => format!("'00000000-0000-0000-0000-0000000000{n:02}'"),
        _ => format!("X'000000000000000000000000000000{n:02}'"),
    };
    probe
        .execute(&format!(
            "INSERT INTO list (id, title, created_at) VALUES ({}, 'Groceries', '2024-01-01 00:00:00')",
            id(1)
        ))
        .await;
    probe
        .execute(&format!(
            "INSERT INTO list (id, title, created_at) VALUES ({}, 'old groceries', '2024-01-01 00:00:00')",
            id(2)
        ))
        .await;
    let client = &client;
    let get = |uri: &'static str| async move {
        let response = client.get(uri).dispatch().await;
        assert_eq!(response.status(), Status::Ok, "{uri}");
        response.into_string().await.unwrap()
    };
    // The spec's default: case ignored.
    assert_eq!(
        get("/ignore-case?searchString=GROCERIES").await,
        "Groceries,old groceries"
    );
    // Explicit parameter still wins.
    assert_eq!(
        get("/ignore-case?searchString=Groceries&searchIgnoreCase=false").await,
        "Groceries"
    );
    // The library default: exact case.
    assert_eq!(get("/good?searchString=groceries").await, "old groceries");
}

backend_tests!(
    auto_increment_keys_are_never_reused,
    migrations_refuse_another_backends_sql,
    migration_failure_names_the_files_line,
    autogenerate_refuses_destructive_changes,
    batch_validation_names_the_item,
    batch_database_errors_name_the_item,
    max_length_is_checked_everywhere,
    service_has_children_and_get_or_none,
    database_4xx_logs_its_reason,
    search_case_per_spec,
);
