//! Scale-out: transaction options and timeouts, serialization conflicts and retries, tenants
//! isolated by row-level security (PostgreSQL, directly and through PgBouncer in
//! transaction mode), transaction-pooler settings, and health that reads the database.

mod common;

/// `health()` notices a SQLite file whose header was overwritten, and one that was deleted,
/// while the app holds pooled connections to it.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn health_reads_the_sqlite_file() {
    use common::TestDb;
    use rocket_alchemy::{Alchemy, Model};

    #[derive(Model)]
    struct Tick {
        id: i64,
    }
    let db = TestDb::sqlite("health_file").await;
    let alchemy = Alchemy::open(
        &db.figment("[databases.default]\ncreate_all = true"),
        &[Tick::TABLE],
    )
    .await
    .unwrap();
    let path = db.url.trim_start_matches("sqlite://").to_string();
    // Warm the pool: its connections cache the schema.
    alchemy.pool("default").unwrap().ping().await.unwrap();
    assert!(alchemy.health().await.iter().all(|(_, r)| r.is_ok()));

    // A good file check stands for a second.
    let after_a_second = || rocket::tokio::time::sleep(std::time::Duration::from_millis(1100));
    let original = std::fs::read(&path).unwrap();
    let mut garbage = original.clone();
    garbage[..16].copy_from_slice(b"not a database!!");
    std::fs::write(&path, &garbage).unwrap();
    after_a_second().await;
    let health = alchemy.health().await;
    let (key, result) = &health[0];
    assert_eq!(key, "default");
    assert!(
        result.is_err(),
        "an overwritten header is noticed: {result:?}"
    );

    std::fs::write(&path, &original).unwrap();
    assert!(alchemy.health().await[0].1.is_ok(), "and recovery too");

    std::fs::remove_file(&path).unwrap();
    after_a_second().await;
    let health = alchemy.health().await;
    let error = health[0].1.as_ref().unwrap_err();
    assert!(error.contains("gone"), "{error}");
    assert!(
        !std::path::Path::new(&path).exists(),
        "the health check does not recreate the file"
    );
    alchemy.close().await;
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use rocket::http::{Header, Status};
    use rocket::local::asynchronous::Client;
    use rocket::serde::json::Json;
    use rocket::{delete, get, post, routes, State};
    use rocket_alchemy::sea_query::{Expr, Func, Query};
    use rocket_alchemy::{
        Alchemy, Model, Repository, RepositoryError, Retry, Session, SessionError,
    };

    use crate::common::TestDb;

    /// `mod $name { postgres, pgbouncer }` running `async fn $name(db: TestDb)`.
    macro_rules! pg_tests {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if let Some(db) = crate::common::TestDb::postgres(stringify!($name)).await {
                        super::$name(db).await;
                    }
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn pgbouncer() {
                    if let Some(db) = crate::common::TestDb::pgbouncer(stringify!($name)).await {
                        super::$name(db).await;
                    }
                }
            }
        )*};
    }

    pg_tests!(
        statement_timeout_answers_503_and_commits_nothing,
        lock_timeout_answers_503,
        serialization_failure_answers_409,
        retrying_reruns_conflicts,
        tenants_are_isolated_by_row_level_security,
        readers_run_without_a_transaction,
        values_round_trip_through_readers,
    );

    #[derive(Model, Debug, Clone, serde::Serialize)]
    struct Job {
        id: i64,
        #[model(max_length = 40)]
        label: String,
    }

    fn insert_job(label: &str) -> rocket_alchemy::sea_query::InsertStatement {
        Query::insert()
            .into_table("job")
            .columns(["label"])
            .values_panic([label.into()])
            .to_owned()
    }

    fn count_jobs() -> rocket_alchemy::sea_query::SelectStatement {
        Query::select()
            .expr(Func::count(Expr::col("id")))
            .from("job")
            .to_owned()
    }

    fn sleep(seconds: f64) -> rocket_alchemy::sea_query::SelectStatement {
        Query::select()
            .expr(Func::cust("pg_sleep").arg(seconds))
            .to_owned()
    }

    /// Inserts, then runs a statement that outlasts the bind's `statement_timeout`.
    #[post("/slow/<label>")]
    async fn slow(label: &str, db: Session<'_>) -> Result<Status, SessionError> {
        db.execute(&insert_job(label)).await?;
        db.execute(&sleep(2.0)).await?;
        Ok(Status::Created)
    }

    /// The same with the timeout set for this session only.
    #[post("/slow-here/<label>")]
    async fn slow_here(label: &str, db: Session<'_>) -> Result<Status, SessionError> {
        let options = db
            .transaction_options()
            .statement_timeout(std::time::Duration::from_millis(150));
        db.set_transaction_options(&options)?;
        db.execute(&insert_job(label)).await?;
        db.execute(&sleep(2.0)).await?;
        Ok(Status::Created)
    }

    #[post("/fast/<label>")]
    async fn fast(label: &str, db: Session<'_>) -> Result<Status, SessionError> {
        db.execute(&insert_job(label)).await?;
        db.execute(&sleep(0.01)).await?;
        Ok(Status::Created)
    }

    async fn statement_timeout_answers_503_and_commits_nothing(db: TestDb) {
        let probe = db.probe();
        let rocket = db
            .rocket("[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nstatement_timeout = 0.2")
            .attach(Alchemy::fairing().model::<Job>())
            .mount("/", routes![slow, fast]);
        let client = Client::tracked(rocket).await.unwrap();
        let r = client.post("/slow/a").dispatch().await;
        assert_eq!(r.status(), Status::ServiceUnavailable);
        assert_eq!(r.headers().get_one("Retry-After"), Some("1"));
        assert_eq!(probe.count("job").await, 0, "nothing committed");
        let r = client.post("/fast/b").dispatch().await;
        assert_eq!(r.status(), Status::Created);
        assert_eq!(probe.count_where("job", "label", "b").await, 1);

        // No timeout on the bind: one session sets its own.
        let rocket = db
            .rocket("[databases.default]\ncommit_mode = \"autocommit\"")
            .attach(Alchemy::fairing().model::<Job>())
            .mount("/", routes![slow_here, fast]);
        let client = Client::tracked(rocket).await.unwrap();
        let r = client.post("/slow-here/c").dispatch().await;
        assert_eq!(r.status(), Status::ServiceUnavailable);
        assert_eq!(probe.count_where("job", "label", "c").await, 0);
        let r = client.post("/fast/d").dispatch().await;
        assert_eq!(
            r.status(),
            Status::Created,
            "other sessions keep the bind's options"
        );
        assert_eq!(probe.count_where("job", "label", "d").await, 1);
    }

    async fn lock_timeout_answers_503(db: TestDb) {
        use sqlx::{Connection, Executor};
        let rocket = db
            .rocket("[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nlock_timeout = 0.2")
            .attach(Alchemy::fairing().model::<Job>())
            .mount("/", routes![fast]);
        let client = Client::tracked(rocket).await.unwrap();
        // Another client holds the table.
        let mut holder = sqlx::PgConnection::connect(db.probe_url()).await.unwrap();
        holder
            .execute("BEGIN; LOCK TABLE job IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let r = client.post("/fast/a").dispatch().await;
        assert_eq!(r.status(), Status::ServiceUnavailable);
        holder.execute("ROLLBACK").await.unwrap();
        let r = client.post("/fast/b").dispatch().await;
        assert_eq!(r.status(), Status::Created);
        let probe = db.probe();
        assert_eq!(probe.count_where("job", "label", "a").await, 0);
        assert_eq!(probe.count_where("job", "label", "b").await, 1);
    }

    /// Both requests read the table, meet, then insert: a write skew that SERIALIZABLE
    /// refuses for one of them.
    struct Gate(rocket::tokio::sync::Barrier);

    #[post("/skew/<label>")]
    async fn skew(
        label: &str,
        db: Session<'_>,
        gate: &State<Gate>,
    ) -> Result<Status, SessionError> {
        let (n,): (i64,) = db.fetch_one(&count_jobs()).await?;
        gate.0.wait().await;
        db.execute(&insert_job(&format!("{label}-{n}"))).await?;
        Ok(Status::Created)
    }

    async fn serialization_failure_answers_409(db: TestDb) {
        let rocket = db
            .rocket("[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\nisolation_level = \"serializable\"")
            .attach(Alchemy::fairing().model::<Job>())
            .manage(Gate(rocket::tokio::sync::Barrier::new(2)))
            .mount("/", routes![skew]);
        let client = Client::tracked(rocket).await.unwrap();
        let (a, b) = rocket::tokio::join!(
            client.post("/skew/a").dispatch(),
            client.post("/skew/b").dispatch()
        );
        let mut statuses = vec![a.status().code, b.status().code];
        statuses.sort();
        assert_eq!(statuses, [201, 409]);
        let conflict = if a.status() == Status::Conflict { a } else { b };
        assert_eq!(conflict.headers().get_one("Retry-After"), Some("1"));
        let body: serde_json::Value = conflict.into_json().await.unwrap();
        assert_eq!(body["status_code"], 409);
        assert_eq!(
            db.probe().count("job").await,
            1,
            "only the winner committed"
        );
    }

    async fn retrying_reruns_conflicts(db: TestDb) {
        let figment = db
            .figment("[databases.default]\ncreate_all = true\nisolation_level = \"serializable\"");
        let alchemy = Arc::new(Alchemy::open(&figment, &[Job::TABLE]).await.unwrap());
        let gate = Arc::new(rocket::tokio::sync::Barrier::new(2));
        let runs = Arc::new(AtomicU32::new(0));
        let job = |label: &'static str| {
            let (alchemy, gate, runs) = (alchemy.clone(), gate.clone(), runs.clone());
            rocket::tokio::spawn(async move {
                let mut first = true;
                alchemy
                    .retrying("default", Retry::default().attempts(10), |session| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let meet = std::mem::take(&mut first);
                        let gate = gate.clone();
                        Box::pin(async move {
                            let (n,): (i64,) = session.fetch_one(&count_jobs()).await?;
                            if meet {
                                gate.wait().await;
                            }
                            session
                                .execute(&insert_job(&format!("{label}-{n}")))
                                .await?;
                            Ok(n)
                        })
                    })
                    .await
            })
        };
        let (a, b) = (job("a"), job("b"));
        let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
        let mut seen = [a, b];
        seen.sort();
        assert_eq!(seen, [0, 1], "the retried one saw the other's row");
        assert!(runs.load(Ordering::SeqCst) >= 3, "one of them ran again");
        assert_eq!(db.probe().count("job").await, 2);

        // A failure that is not transient is not retried.
        let runs = AtomicU32::new(0);
        let error = alchemy
            .retrying("default", Retry::default(), |session| {
                runs.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    session
                        .execute(
                            &Query::insert()
                                .into_table("job")
                                .columns(["nope"])
                                .values_panic([1.into()])
                                .to_owned(),
                        )
                        .await?;
                    Ok(())
                })
            })
            .await
            .unwrap_err();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{error}");
        alchemy.close().await;
    }

    #[derive(Model, Debug, Clone, serde::Serialize)]
    struct Note {
        id: i64,
        tenant_id: i64,
        #[model(max_length = 200)]
        body: String,
    }

    #[get("/notes")]
    async fn notes(db: Session<'_>) -> Result<Json<Vec<String>>, RepositoryError> {
        let notes = Repository::<Note>::on(&db)?.list(&[]).await?;
        Ok(Json(notes.into_iter().map(|n| n.body).collect()))
    }

    #[get("/notes/<id>")]
    async fn note(id: i64, db: Session<'_>) -> Result<Json<Note>, RepositoryError> {
        Ok(Json(Repository::<Note>::on(&db)?.get(id).await?))
    }

    #[post("/notes/<tenant>/<body>")]
    async fn create_note(
        tenant: i64,
        body: &str,
        db: Session<'_>,
    ) -> Result<Status, RepositoryError> {
        let note = Note {
            id: 0,
            tenant_id: tenant,
            body: body.into(),
        };
        Repository::<Note>::on(&db)?.create(note).await?;
        Ok(Status::Created)
    }

    #[delete("/notes/<id>")]
    async fn delete_note(id: i64, db: Session<'_>) -> Result<Status, RepositoryError> {
        Repository::<Note>::on(&db)?.delete(id).await?;
        Ok(Status::NoContent)
    }

    const RLS_SETUP: &str = "
        DO $$ BEGIN CREATE ROLE ra_tenant_app LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        CREATE TABLE note (id BIGSERIAL PRIMARY KEY, tenant_id BIGINT NOT NULL, body VARCHAR(200) NOT NULL);
        ALTER TABLE note ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant ON note
            USING (tenant_id = current_setting('app.tenant_id', true)::bigint)
            WITH CHECK (tenant_id = current_setting('app.tenant_id', true)::bigint);
        GRANT SELECT, INSERT, UPDATE, DELETE ON note TO ra_tenant_app;
        GRANT USAGE ON SEQUENCE note_id_seq TO ra_tenant_app;
        INSERT INTO note (tenant_id, body) VALUES (1, 'a1'), (2, 'b1');";

    async fn tenants_are_isolated_by_row_level_security(db: TestDb) {
        let probe = db.probe();
        probe.execute(RLS_SETUP).await;
        let b1 = probe.scalar("SELECT id FROM note WHERE body = 'b1'").await;
        // The app connects as a role without BYPASSRLS (superusers skip policies).
        let app_url = db.url.replacen("://postgres@", "://ra_tenant_app@", 1);
        let rocket = db
            .rocket(&format!(
                "[databases.default]\nurl = \"{app_url}\"\ncommit_mode = \"autocommit\""
            ))
            .attach(
                Alchemy::fairing()
                    .model::<Note>()
                    .on_session(|request, session| {
                        Box::pin(async move {
                            let tenant = request
                                .headers()
                                .get_one("X-Tenant")
                                .ok_or(Status::Unauthorized)?;
                            let tenant: i64 = tenant.parse().map_err(|_| Status::BadRequest)?;
                            session
                                .set_local("app.tenant_id", tenant.to_string())
                                .map_err(|_| Status::InternalServerError)
                        })
                    }),
            )
            .mount("/", routes![notes, note, create_note, delete_note]);
        let client = Client::tracked(rocket).await.unwrap();
        let as_tenant = |t: &str| Header::new("X-Tenant", t.to_string());

        let list = |t: &'static str| {
            let client = &client;
            async move {
                let r = client.get("/notes").header(as_tenant(t)).dispatch().await;
                assert_eq!(r.status(), Status::Ok);
                r.into_json::<Vec<String>>().await.unwrap()
            }
        };
        assert_eq!(list("1").await, ["a1"]);
        assert_eq!(list("2").await, ["b1"]);
        let r = client.get("/notes").dispatch().await;
        assert_eq!(r.status(), Status::Unauthorized, "no tenant, no session");

        // Tenant 1 cannot read, delete or write tenant 2's rows.
        let r = client
            .get(format!("/notes/{b1}"))
            .header(as_tenant("1"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::NotFound);
        let r = client
            .delete(format!("/notes/{b1}"))
            .header(as_tenant("1"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::NotFound);
        assert_eq!(probe.count_where("note", "body", "b1").await, 1);
        let r = client
            .post("/notes/2/forged")
            .header(as_tenant("1"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Forbidden);
        assert_eq!(probe.count_where("note", "body", "forged").await, 0);

        // Its own rows, it can.
        let r = client
            .post("/notes/1/a2")
            .header(as_tenant("1"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Created);
        assert_eq!(
            probe
                .scalar("SELECT COUNT(*) FROM note WHERE body = 'a2' AND tenant_id = 1")
                .await,
            1
        );
        assert_eq!(list("1").await.len(), 2);
        assert_eq!(list("2").await, ["b1"]);
    }

    /// Behind a transaction pooler, migrations need the server's own URL.
    #[tokio::test]
    async fn migrations_behind_a_pooler_need_direct_url() {
        let Some(db) = TestDb::pgbouncer("migrate_direct").await else {
            return;
        };
        let figment = rocket::figment::Figment::new().merge((
            "databases.default",
            rocket::figment::util::map! {
                "url" => db.url.clone(),
                "pooler" => "transaction".to_string(),
            },
        ));
        let alchemy = Alchemy::open(&figment, &[]).await.unwrap();
        let bind = alchemy.bind("default").unwrap();
        let error = rocket_alchemy::migrate::Migrator::new(bind).unwrap_err();
        assert!(
            matches!(
                error,
                rocket_alchemy::migrate::MigrationError::NeedsDirectUrl { .. }
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("databases.default.direct_url"),
            "{error}"
        );
        alchemy.close().await;
    }

    #[get("/count")]
    async fn count(db: Session<'_>) -> Result<String, SessionError> {
        let (n,): (i64,) = db.fetch_one(&count_jobs()).await?;
        let (m,): (i64,) = db.fetch_one(&count_jobs()).await?;
        Ok(format!("{n} {m} {}", db.in_transaction()))
    }

    /// A reader runs without a transaction, directly or behind a transaction pooler (there
    /// as simple queries with literal values, one round trip each).
    async fn readers_run_without_a_transaction(db: TestDb) {
        let rocket = db
            .rocket("[databases.default]\ncreate_all = true")
            .attach(Alchemy::fairing().model::<Job>())
            .mount("/", routes![count]);
        let client = Client::tracked(rocket).await.unwrap();
        for _ in 0..20 {
            let r = client.get("/count").dispatch().await;
            assert_eq!(r.status(), Status::Ok);
            assert_eq!(r.into_string().await.unwrap(), "0 0 false");
        }
    }

    #[derive(Model, Debug, Clone, PartialEq)]
    struct Tricky {
        id: i64,
        text: String,
        note: Option<String>,
        bytes: Vec<u8>,
        key: uuid::Uuid,
        at: chrono::DateTime<chrono::Utc>,
        day: chrono::NaiveDate,
        flag: bool,
        ratio: f64,
        small: i16,
        doc: serde_json::Value,
    }

    /// Values written with bound parameters read back identically, and match as filters,
    /// through the reader path (literal values behind a pooler): quotes, backslashes,
    /// control characters, `$1`-lookalikes, unicode, bytes, keys, times, JSON.
    async fn values_round_trip_through_readers(db: TestDb) {
        use rocket_alchemy::filters::Filter;
        let figment = db.figment("[databases.default]\ncreate_all = true");
        let alchemy = Alchemy::open(&figment, &[Tricky::TABLE]).await.unwrap();
        let texts = [
            "plain",
            "it's",
            "back\\slash \\' \\\\",
            "line\nbreak\ttab\r\u{8}\u{c}\u{1}",
            "$1 $2 ? :name",
            "'; DROP TABLE tricky; --",
            "E'\\x00'",
            "ünïcødé ✓ 𝄞",
            "",
        ];
        let mut written = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let writer = alchemy.session("default").unwrap();
            let row = Tricky {
                id: 0,
                text: text.to_string(),
                note: (i % 2 == 0).then(|| format!("{text}?")),
                bytes: vec![0, 1, b'\\', b'\'', 0xff, i as u8],
                key: uuid::Uuid::new_v4(),
                at: chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 123_456_000)
                    .unwrap(),
                day: chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
                flag: i % 3 == 0,
                ratio: 0.1 * i as f64 - 1.5,
                small: -(i as i16),
                doc: serde_json::json!({"text": text, "n": [i, null, true]}),
            };
            let row = Repository::<Tricky>::on(&writer)
                .unwrap()
                .create(row)
                .await
                .unwrap();
            writer.commit().await.unwrap();
            written.push(row);
        }
        let reader = alchemy.session("default").unwrap();
        let repo = Repository::<Tricky>::on(&reader).unwrap();
        for row in &written {
            assert_eq!(&repo.get(row.id).await.unwrap(), row, "by key");
            let by_text = repo
                .get_one(&[Filter::eq(Tricky::TEXT, row.text.clone())])
                .await;
            assert_eq!(&by_text.unwrap(), row, "by text {:?}", row.text);
            let by_key = repo.get_one(&[Filter::eq(Tricky::KEY, row.key)]).await;
            assert_eq!(&by_key.unwrap(), row, "by uuid");
            let by_time = repo.get_one(&[Filter::eq(Tricky::AT, row.at)]).await;
            assert_eq!(&by_time.unwrap(), row, "by timestamp");
        }
        assert!(!reader.in_transaction(), "reads ran without a transaction");
        assert_eq!(
            db.probe().count("tricky").await,
            texts.len() as i64,
            "nothing dropped"
        );
        alchemy.close().await;
    }
}

/// MySQL / MariaDB: the isolation level, read-only transactions and the bind's lock timeout.
#[cfg(feature = "mysql")]
mod mysql {
    use rocket::http::Status;
    use rocket::local::asynchronous::Client;
    use rocket::{get, post, routes};
    use rocket_alchemy::sea_query::{Expr, ExprTrait, Query};
    use rocket_alchemy::{Alchemy, Model, Session, SessionError};
    use sqlx::{Connection, Executor};

    use crate::common::TestDb;

    #[derive(Model, Debug)]
    struct Slot {
        id: i64,
        #[model(max_length = 40)]
        label: String,
    }

    #[get("/peek")]
    async fn peek(db: Session<'_>) -> Result<String, SessionError> {
        let (label,): (String,) = db
            .fetch_one(
                &Query::select()
                    .column("label")
                    .from("slot")
                    .and_where(Expr::col("id").eq(1))
                    .to_owned(),
            )
            .await?;
        Ok(label)
    }

    #[post("/slots/<label>")]
    async fn add(label: &str, db: Session<'_>) -> Result<Status, SessionError> {
        db.execute(
            &Query::insert()
                .into_table("slot")
                .columns(["label"])
                .values_panic([label.into()])
                .to_owned(),
        )
        .await?;
        Ok(Status::Created)
    }

    fn app(db: &TestDb, extra: &str) -> rocket::Rocket<rocket::Build> {
        db.rocket(&format!(
            "[databases.default]\ncommit_mode = \"autocommit\"\ncreate_all = true\n{extra}"
        ))
        .attach(Alchemy::fairing().model::<Slot>())
        .mount("/", routes![peek, add])
    }

    /// Under SERIALIZABLE, InnoDB reads take shared locks: a row another transaction is
    /// writing blocks the read until `lock_timeout` (503); under the default REPEATABLE READ
    /// the read sees the last committed version at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn isolation_lock_timeout_and_read_only() {
        let Some(db) = TestDb::mysql("mysql_tx_options").await else {
            return;
        };
        let plain = Client::untracked(app(&db, "")).await.unwrap();
        assert_eq!(
            plain.post("/slots/first").dispatch().await.status(),
            Status::Created
        );

        let mut holder = sqlx::MySqlConnection::connect(db.probe_url())
            .await
            .unwrap();
        holder
            .execute("START TRANSACTION; UPDATE slot SET label = 'changing' WHERE id = 1")
            .await
            .unwrap();
        let r = plain.get("/peek").dispatch().await;
        assert_eq!(r.status(), Status::Ok);
        assert_eq!(r.into_string().await.unwrap(), "first");

        let strict = Client::untracked(app(
            &db,
            "isolation_level = \"serializable\"\nlock_timeout = 1",
        ))
        .await
        .unwrap();
        let r = strict.get("/peek").dispatch().await;
        assert_eq!(r.status(), Status::ServiceUnavailable);
        assert_eq!(r.headers().get_one("Retry-After"), Some("1"));
        holder.execute("ROLLBACK").await.unwrap();
        let r = strict.get("/peek").dispatch().await;
        assert_eq!(r.into_string().await.unwrap(), "first");

        let read_only = Client::untracked(app(&db, "read_only = true"))
            .await
            .unwrap();
        let r = read_only.post("/slots/refused").dispatch().await;
        assert_eq!(r.status(), Status::Forbidden);
        assert_eq!(db.probe().count_where("slot", "label", "refused").await, 0);
        assert_eq!(read_only.get("/peek").dispatch().await.status(), Status::Ok);
    }
}
