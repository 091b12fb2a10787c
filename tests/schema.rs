//! `create_all` / `drop_all` and column types on every backend.

mod common;

use chrono::{DateTime, NaiveDate, Utc};
use common::TestDb;
use rocket_alchemy::sea_query::{Expr, ExprTrait, Query};
use rocket_alchemy::{Alchemy, Backend, DbErrorKind, Model, ModelExt};
use uuid::Uuid;

#[derive(Model, Debug, Clone, PartialEq)]
struct Publisher {
    id: i64,
    #[model(max_length = 80, unique)]
    name: String,
}

#[derive(Model, Debug, Clone, PartialEq)]
struct Writer {
    #[model(primary_key = "uuid_v7")]
    id: Uuid,
    #[model(max_length = 80, index)]
    name: String,
    #[model(references = Publisher, on_delete = "set_null")]
    publisher_id: Option<i64>,
    #[model(references = Self, on_delete = "set_null")]
    mentor_id: Option<Uuid>,
}

#[derive(Model, Debug, Clone, PartialEq)]
struct Volume {
    id: Uuid,
    #[model(max_length = 120)]
    title: String,
    #[model(references = Writer, on_delete = "cascade")]
    writer_id: Uuid,
    #[model(default = 1)]
    edition: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Every supported column type, nullable and not.
#[derive(Model, Debug, Clone, PartialEq)]
#[model(table = "all_types")]
struct AllTypes {
    #[model(primary_key = "natural", max_length = 20)]
    key: String,
    flag: bool,
    small: i16,
    int: i32,
    big: i64,
    single: f32,
    double: f64,
    text: String,
    bytes: Vec<u8>,
    uid: Uuid,
    day: NaiveDate,
    at: DateTime<Utc>,
    doc: serde_json::Value,
    maybe_flag: Option<bool>,
    maybe_int: Option<i32>,
    maybe_text: Option<String>,
    maybe_uid: Option<Uuid>,
    maybe_day: Option<NaiveDate>,
    maybe_at: Option<DateTime<Utc>>,
    maybe_doc: Option<serde_json::Value>,
    #[model(skip)]
    cache: Vec<String>,
}

const TABLES: [&rocket_alchemy::model::Table; 4] = [
    Volume::TABLE,
    Writer::TABLE,
    AllTypes::TABLE,
    Publisher::TABLE,
];

async fn open(db: &TestDb) -> Alchemy {
    let figment = db.figment("[databases.default]\ncreate_all = true\nmax_connections = 2");
    Alchemy::open(&figment, &TABLES).await.expect("open")
}

async fn constraint_names(db: &TestDb, table: &str) -> Vec<String> {
    let probe = db.probe();
    let names = match db.backend {
        // SQLite keeps constraint names only in the table's SQL; indexes are in sqlite_master.
        Backend::Sqlite => {
            let sql = probe_text(
                db,
                &format!("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{table}'"),
            )
            .await;
            let mut names: Vec<String> = sql
                .split("CONSTRAINT \"")
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap().to_string())
                .collect();
            let indexes = probe_text(db, &format!("SELECT group_concat(name, ',') FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' AND name NOT LIKE 'sqlite_%'")).await;
            names.extend(
                indexes
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            names
        }
        Backend::Postgres => {
            let text = probe_text(db, &format!(
                "SELECT string_agg(name, ',') FROM (SELECT conname::text AS name FROM pg_constraint WHERE conrelid = '{table}'::regclass \
                 UNION SELECT indexname::text FROM pg_indexes WHERE tablename = '{table}') n"
            )).await;
            text.split(',').map(str::to_string).collect()
        }
        Backend::MySql => {
            let text = probe_text(db, &format!(
                "SELECT GROUP_CONCAT(name) FROM (SELECT CONSTRAINT_NAME AS name FROM information_schema.TABLE_CONSTRAINTS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' UNION SELECT INDEX_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}') n"
            )).await;
            text.split(',').map(str::to_string).collect()
        }
    };
    let _ = probe;
    names
}

async fn probe_text(db: &TestDb, sql: &str) -> String {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match db.backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(db.probe_url())
                .await
                .unwrap();
            sqlx::query_scalar::<_, Option<String>>(sql)
                .fetch_one(&mut c)
                .await
                .unwrap()
                .unwrap_or_default()
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(db.probe_url()).await.unwrap();
            sqlx::query_scalar::<_, Option<String>>(sql)
                .fetch_one(&mut c)
                .await
                .unwrap()
                .unwrap_or_default()
        }
        #[cfg(feature = "mysql")]
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(db.probe_url())
                .await
                .unwrap();
            sqlx::query_scalar::<_, Option<String>>(sql)
                .fetch_one(&mut c)
                .await
                .unwrap()
                .unwrap_or_default()
        }
        #[allow(unreachable_patterns)]
        other => panic!("the `{other}` feature is disabled"),
    }
}

async fn table_count(db: &TestDb) -> i64 {
    let q = match db.backend {
        // The engine's own tables (`sqlite_sequence`, kept by AUTOINCREMENT keys) aside.
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'".to_string(),
        Backend::Postgres => "SELECT (SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public') + (SELECT COUNT(*) FROM pg_indexes WHERE schemaname = 'public')".to_string(),
        Backend::MySql => "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()) + (SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE())".to_string(),
    };
    db.probe().scalar(&q).await
}

/// Tables are created in foreign-key order (registration order does not matter), with
/// Advanced Alchemy's constraint names, and a second `create_all` changes nothing.
async fn create_all_ordered_named_idempotent(db: TestDb) {
    let alchemy = open(&db).await;
    let objects = table_count(&db).await;
    assert!(objects >= 4);

    let volume = constraint_names(&db, "volume").await;
    let writer = constraint_names(&db, "writer").await;
    let publisher = constraint_names(&db, "publisher").await;
    let pk = |t: &str| {
        if db.backend == Backend::MySql {
            "PRIMARY".to_string()
        } else {
            format!("pk_{t}")
        }
    };
    for (names, expected) in [
        (&volume, vec![pk("volume"), "ix_volume_writer_id".into()]),
        (
            &writer,
            vec![
                pk("writer"),
                "ix_writer_name".into(),
                "ix_writer_publisher_id".into(),
                "ix_writer_mentor_id".into(),
            ],
        ),
        (
            &publisher,
            vec![pk("publisher"), "uq_publisher_name".into()],
        ),
    ] {
        for name in expected {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
    if db.backend != Backend::Sqlite {
        // SQLite does not keep foreign key names.
        assert!(
            volume.contains(&"fk_volume_writer_id_writer".to_string()),
            "{volume:?}"
        );
        assert!(
            writer.contains(&"fk_writer_mentor_id_writer".to_string()),
            "{writer:?}"
        );
    }

    // Data written before the second run survives it; nothing is created twice.
    let session = alchemy.session("default").unwrap();
    let mut publisher_row = Publisher {
        id: 0,
        name: "Ace".into(),
    };
    publisher_row.prepare_insert(rocket_alchemy::model::now());
    session
        .execute(&publisher_row.insert_statement())
        .await
        .unwrap();
    session.commit().await.unwrap();
    alchemy.close().await;
    let again = open(&db).await;
    assert_eq!(
        table_count(&db).await,
        objects,
        "a second create_all created nothing"
    );
    assert_eq!(db.probe().count("publisher").await, 1);

    // Two processes starting at once: the schema lock serializes them.
    let (a, b) = tokio::join!(open(&db), open(&db));
    a.close().await;
    b.close().await;
    assert_eq!(table_count(&db).await, objects);

    // Constraints are enforced: unique, foreign key, cascade.
    let session = again.session("default").unwrap();
    let err = session
        .execute(
            &Publisher {
                id: 0,
                name: "Ace".into(),
            }
            .insert_statement(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(DbErrorKind::UniqueViolation), "{err}");
    session.rollback().await.unwrap();
    let mut orphan = Volume {
        id: Uuid::nil(),
        title: "Orphan".into(),
        writer_id: Uuid::new_v4(),
        edition: 1,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    };
    orphan.prepare_insert(rocket_alchemy::model::now());
    let err = session
        .execute(&orphan.insert_statement())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(DbErrorKind::ForeignKeyViolation), "{err}");
    session.rollback().await.unwrap();

    let mut writer_row = Writer {
        id: Uuid::nil(),
        name: "Le Guin".into(),
        publisher_id: None,
        mentor_id: None,
    };
    writer_row.prepare_insert(rocket_alchemy::model::now());
    session
        .execute(&writer_row.insert_statement())
        .await
        .unwrap();
    orphan.writer_id = writer_row.id;
    session.execute(&orphan.insert_statement()).await.unwrap();
    // A raw insert without `edition`: the column default applies.
    let raw = Query::insert()
        .into_table("volume")
        .columns(["id", "title", "writer_id"])
        .values_panic([Uuid::new_v4().into(), "Raw".into(), writer_row.id.into()])
        .to_owned();
    session.execute(&raw).await.unwrap();
    let editions: Vec<(i32,)> = session
        .fetch_all(
            &Query::select()
                .column("edition")
                .from("volume")
                .and_where(Expr::col("title").eq("Raw"))
                .to_owned(),
        )
        .await
        .unwrap();
    assert_eq!(editions, vec![(1,)]);
    session.commit().await.unwrap();
    assert_eq!(db.probe().count("volume").await, 2);
    session
        .execute(&Query::delete().from_table("writer").to_owned())
        .await
        .unwrap();
    session.commit().await.unwrap();
    assert_eq!(
        db.probe().count("volume").await,
        0,
        "volumes cascade with their writer"
    );

    // drop_all removes every model table; create_all brings them back.
    again.drop_all("default").await.unwrap();
    assert_eq!(table_count(&db).await, 0);
    again.create_all("default").await.unwrap();
    assert_eq!(table_count(&db).await, objects);
    again.close().await;
}

/// Every column type survives a write and a read on every backend.
async fn column_types_round_trip(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let full = AllTypes {
        key: "full".into(),
        flag: true,
        small: -12,
        int: 1 << 30,
        big: i64::MAX - 7,
        single: 1.5,
        double: -2.25e10,
        text: "héllo \"wörld\" 'quoted' ✓".into(),
        bytes: vec![0, 1, 2, 254, 255],
        uid: Uuid::new_v4(),
        day: NaiveDate::from_ymd_opt(1929, 10, 21).unwrap(),
        at: rocket_alchemy::model::now(),
        doc: serde_json::json!({ "a": [1, 2, { "b": null }], "s": "x" }),
        maybe_flag: Some(false),
        maybe_int: Some(-1),
        maybe_text: Some(String::new()),
        maybe_uid: Some(Uuid::now_v7()),
        maybe_day: Some(NaiveDate::from_ymd_opt(2000, 2, 29).unwrap()),
        maybe_at: Some(DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap()),
        maybe_doc: Some(serde_json::json!([true])),
        cache: vec![],
    };
    let empty = AllTypes {
        key: "empty".into(),
        maybe_flag: None,
        maybe_int: None,
        maybe_text: None,
        maybe_uid: None,
        maybe_day: None,
        maybe_at: None,
        maybe_doc: None,
        ..full.clone()
    };
    for row in [&full, &empty] {
        session.execute(&row.insert_statement()).await.unwrap();
    }
    session.commit().await.unwrap();
    let read: Vec<AllTypes> = alchemy
        .session("default")
        .unwrap()
        .fetch_all(
            &AllTypes::select_statement()
                .order_by(("all_types", "key"), rocket_alchemy::sea_query::Order::Desc)
                .to_owned(),
        )
        .await
        .unwrap();
    assert_eq!(read, vec![full, empty]);
    alchemy.close().await;
}

/// How many tables named `table` the server's catalog lists in the test database.
async fn tables_named(db: &TestDb, table: &str) -> i64 {
    let q = match db.backend {
        Backend::Sqlite => {
            format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
        Backend::Postgres => format!(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = '{table}'"
        ),
        Backend::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
        ),
    };
    db.probe().scalar(&q).await
}

/// Four instances igniting at once on a fresh database, each with `create_all`: the schema
/// lock serializes them, so every one launches (none trips over a table another is
/// creating) and the catalog holds each table once, with exactly the objects one
/// `create_all` alone makes on another fresh database.
async fn concurrent_launches_on_a_fresh_database(db: TestDb) {
    let reference = db.sibling("create_all_alone").await;
    open(&reference).await.close().await;
    let expected = table_count(&reference).await;
    let ignite = || {
        rocket::custom(db.figment("[databases.default]\ncreate_all = true\nmax_connections = 2"))
            .attach(
                Alchemy::fairing()
                    .model::<Volume>()
                    .model::<Writer>()
                    .model::<AllTypes>()
                    .model::<Publisher>(),
            )
            .ignite()
    };
    let launched = tokio::join!(ignite(), ignite(), ignite(), ignite());
    let launched = [launched.0, launched.1, launched.2, launched.3];
    for (i, rocket) in launched.into_iter().enumerate() {
        let rocket = rocket.unwrap_or_else(|e| panic!("instance {i} did not launch: {e}"));
        Alchemy::fetch(&rocket).unwrap().close().await;
    }
    for table in ["publisher", "writer", "volume", "all_types"] {
        assert_eq!(tables_named(&db, table).await, 1, "{table}");
    }
    assert_eq!(
        table_count(&db).await,
        expected,
        "the same tables and indexes as one create_all alone"
    );
}

backend_tests!(
    create_all_ordered_named_idempotent,
    column_types_round_trip,
    concurrent_launches_on_a_fresh_database
);

/// MySQL: while another session holds the schema lock for the whole wait, `create_all`
/// refuses to run (`GET_LOCK` answered 0): the launch fails naming the bind and the lock,
/// and no table was created. Takes the lock's 60-second wait.
#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_all_refuses_to_run_without_the_mysql_schema_lock() {
    use sqlx::Connection;
    let Some(db) = TestDb::mysql("create_all_lock_held").await else {
        return;
    };
    let mut holder = sqlx::MySqlConnection::connect(db.probe_url())
        .await
        .unwrap();
    let (got,): (Option<i64>,) =
        sqlx::query_as("SELECT GET_LOCK(CONCAT('rocket_alchemy_schema_', DATABASE()), 0)")
            .fetch_one(&mut holder)
            .await
            .unwrap();
    assert_eq!(got, Some(1), "the test holds the schema lock");
    let figment = db.figment("[databases.default]\ncreate_all = true\nmax_connections = 2");
    let error = match Alchemy::open(&figment, &TABLES).await {
        Ok(_) => panic!("create_all ran without the schema lock"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("`default`") && error.contains("schema lock"),
        "{error}"
    );
    for table in ["publisher", "writer", "volume", "all_types"] {
        assert_eq!(tables_named(&db, table).await, 0, "{table} was created");
    }
    holder.close().await.unwrap();
}
