//! Launch: configuration from Rocket.toml, profiles and `ROCKET_*` env; bad configuration,
//! unreachable databases and missing binds refuse the launch.
// Launch and configuration behaviour, exercised on SQLite (no server needed).
#![cfg(feature = "sqlite")]
// `Jail::expect_with` takes figment's `Result`, whose error is large by design.
#![allow(clippy::result_large_err)]

mod common;

use rocket::error::ErrorKind;
use rocket::figment::Jail;
use rocket::{get, routes};
use rocket_alchemy::{Alchemy, Bind, CommitMode, DatabaseConfig, Model, Session};

#[derive(Bind)]
#[bind("audit")]
struct Audit;

#[derive(Model)]
struct Thing {
    id: i64,
}

#[derive(Model)]
#[model(bind = Audit)]
struct Note {
    id: i64,
}

#[get("/default")]
fn uses_default(_s: Session<'_>) {}

#[get("/audit")]
fn uses_audit(_s: Session<'_, Audit>) {}

fn figment(toml: &str) -> rocket::figment::Figment {
    use rocket::figment::providers::{Format, Serialized, Toml};
    rocket::figment::Figment::from(rocket::Config::default())
        .merge(Serialized::default("log_level", "off"))
        .merge(Toml::string(toml))
}

/// Ignites and returns the error kind's name (inspecting the error, as Rocket requires).
async fn ignite_error(rocket: rocket::Rocket<rocket::Build>) -> Option<String> {
    match rocket.ignite().await {
        Ok(_) => None,
        Err(e) => Some(match e.kind() {
            ErrorKind::FailedFairings(f) => format!(
                "fairings: {}",
                f.iter().map(|i| i.name).collect::<Vec<_>>().join(",")
            ),
            ErrorKind::SentinelAborts(s) => format!("sentinels: {}", s.len()),
            other => format!("{other}"),
        }),
    }
}

#[tokio::test]
async fn bad_configuration_refuses_the_launch() {
    let cases = [
        "[databases.default]\nurl = \"sqlite::memory:\"\ncomit_mode = \"autocommit\"",
        "[databases.default]\nurl = \"sqlite::memory:\"\ncommit_mode = \"autocommit_with_redirect\"",
        "[databases.default]\ncommit_mode = \"manual\"",
        "[databases.default]\nurl = \"\"",
        "[databases.default]\nurl = \"oracle://scott:tiger@db/orcl\"",
        "[databases.default]\nurl = \"postgres://u:p@host:port/db\"",
        "[databases.default]\nurl = \"sqlite::memory:\"\nmax_connections = 0",
        "[databases.default]\nurl = \"sqlite::memory:\"\nmax_connections = \"ten\"",
        "[databases.default]\nurl = \"sqlite::memory:\"\nconnect_timeout = -5",
        "[databases.default]\nurl = \"sqlite::memory:\"\ncreate_all = \"yes\"",
        "[databases.\"bad key\"]\nurl = \"sqlite::memory:\"",
        "databases = \"sqlite::memory:\"",
        "[other]\nx = 1",
    ];
    for toml in cases {
        let rocket = rocket::custom(figment(toml)).attach(Alchemy::fairing());
        assert_eq!(
            ignite_error(rocket).await.as_deref(),
            Some("fairings: rocket_alchemy"),
            "{toml}"
        );
    }
}

#[tokio::test]
async fn model_on_an_unconfigured_bind_refuses_the_launch() {
    let rocket = rocket::custom(figment(
        "[databases.default]\nurl = \"sqlite::memory:\"\ncreate_all = true",
    ))
    .attach(Alchemy::fairing().model::<Thing>().model::<Note>());
    assert_eq!(
        ignite_error(rocket).await.as_deref(),
        Some("fairings: rocket_alchemy")
    );
    let figment = figment("[databases.default]\nurl = \"sqlite::memory:\"");
    let err = Alchemy::open(&figment, &[Thing::TABLE, Note::TABLE])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "model `Note` (table `note`) belongs to bind \"audit\", which is not configured; configured bind keys: default \
         (configure `databases.audit`, or attach `Alchemy::fairing().only_listed_models()` with the models this app uses)"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn unreachable_database_refuses_the_launch_unless_lazy() {
    let eager =
        "[databases.default]\nurl = \"postgres://app:s3cret@127.0.0.1:9/app\"\nconnect_timeout = 2";
    let rocket = rocket::custom(figment(eager)).attach(Alchemy::fairing().only_listed_models());
    assert_eq!(
        ignite_error(rocket).await.as_deref(),
        Some("fairings: rocket_alchemy")
    );
    let err = Alchemy::open(&figment(eager), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "could not connect to database `default` at `postgres://app:***@127.0.0.1:9/app`"
        ),
        "{err}"
    );
    assert!(err.contains("lazy = true"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    let lazy = format!("{eager}\nlazy = true\ncreate_all = true");
    let rocket = rocket::custom(figment(&lazy))
        .attach(Alchemy::fairing().only_listed_models().model::<Thing>());
    assert_eq!(
        ignite_error(rocket).await,
        None,
        "a lazy bind launches while its database is down"
    );
}

#[tokio::test]
async fn sentinels_refuse_routes_without_their_bind() {
    // No fairing at all.
    let rocket = rocket::custom(figment("")).mount("/", routes![uses_default]);
    assert_eq!(ignite_error(rocket).await.as_deref(), Some("sentinels: 1"));

    // A route on a bind missing from the configuration.
    let one = "[databases.default]\nurl = \"sqlite::memory:\"";
    let rocket = rocket::custom(figment(one))
        .attach(Alchemy::fairing().only_listed_models())
        .mount("/", routes![uses_default, uses_audit]);
    assert_eq!(ignite_error(rocket).await.as_deref(), Some("sentinels: 1"));

    // Several databases, none keyed `default`: the default guard has no database.
    let two =
        "[databases.main]\nurl = \"sqlite::memory:\"\n[databases.audit]\nurl = \"sqlite::memory:\"";
    let rocket = rocket::custom(figment(two))
        .attach(Alchemy::fairing().only_listed_models())
        .mount("/", routes![uses_default]);
    assert_eq!(ignite_error(rocket).await.as_deref(), Some("sentinels: 1"));
    let rocket = rocket::custom(figment(two))
        .attach(Alchemy::fairing().only_listed_models())
        .mount("/", routes![uses_audit]);
    assert_eq!(ignite_error(rocket).await, None);

    // One database, whatever its key, serves the default guard.
    let single = "[databases.main]\nurl = \"sqlite::memory:\"";
    let rocket = rocket::custom(figment(single))
        .attach(Alchemy::fairing().only_listed_models())
        .mount("/", routes![uses_default]);
    assert_eq!(ignite_error(rocket).await, None);
    let alchemy = Alchemy::open(&figment(single), &[]).await.unwrap();
    assert_eq!(alchemy.bind("default").unwrap().key(), "main");
    let err = Alchemy::open(&figment(two), &[])
        .await
        .unwrap()
        .session("default")
        .unwrap_err();
    assert!(err.to_string().starts_with("No session maker found for bind key \"default\"; several databases are configured (audit, main)"), "{err}");
}

#[test]
fn rocket_toml_env_overrides_and_profiles() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "Rocket.toml",
            r#"
            [default.databases.default]
            url = "sqlite://data/app.db"
            max_connections = 3

            [default.databases.audit]
            url = "sqlite://data/audit.db"

            [debug.databases.default]
            commit_mode = "autocommit_include_redirect"

            [release.databases.default]
            commit_mode = "manual"
            "#,
        )?;
        let binds = DatabaseConfig::from_figment(&rocket::Config::figment(), 2).unwrap();
        assert_eq!(
            binds[0].commit_mode,
            CommitMode::AutocommitIncludeRedirect,
            "debug profile"
        );
        assert_eq!(binds[0].max_connections, 3);
        assert_eq!(binds[1].bind_key, "audit");
        assert_eq!(binds[1].max_connections, 8, "workers × 4");

        jail.set_env("ROCKET_PROFILE", "release");
        let binds = DatabaseConfig::from_figment(&rocket::Config::figment(), 2).unwrap();
        assert_eq!(binds[0].commit_mode, CommitMode::Manual, "release profile");

        jail.set_env(
            "ROCKET_DATABASES",
            r#"{default={commit_mode="autocommit",url="sqlite://data/other.db"},audit={url="sqlite://data/other-audit.db",echo=true}}"#,
        );
        let binds = DatabaseConfig::from_figment(&rocket::Config::figment(), 2).unwrap();
        assert_eq!(
            binds[0].commit_mode,
            CommitMode::Autocommit,
            "env beats Rocket.toml"
        );
        assert_eq!(binds[0].url.expose(), "sqlite://data/other.db");
        assert_eq!(
            binds[0].max_connections, 3,
            "keys the env does not set keep their Rocket.toml value"
        );
        assert_eq!(binds[1].url.expose(), "sqlite://data/other-audit.db");
        assert!(binds[1].echo);

        jail.set_env("ROCKET_DATABASES", r#"{default={comit_mode="autocommit"}}"#);
        let err = DatabaseConfig::from_figment(&rocket::Config::figment(), 2).unwrap_err();
        assert_eq!(err.key, "databases.default.comit_mode");
        assert!(
            err.to_string().contains("ROCKET_"),
            "names the env source: {err}"
        );

        jail.set_env("ROCKET_DATABASES", r#"{default={commit_mode="sometimes"}}"#);
        let err = DatabaseConfig::from_figment(&rocket::Config::figment(), 2).unwrap_err();
        assert_eq!(err.key, "databases.default.commit_mode");
        assert!(err.to_string().contains("unknown value `sometimes`; expected one of: manual, autocommit, autocommit_include_redirect"), "{err}");
        Ok(())
    });
}

/// A full launch reading Rocket.toml plus env overrides, in a jail.
#[test]
fn launch_with_env_overrides() {
    Jail::expect_with(|jail| {
        jail.create_file("Rocket.toml", "[default]\nlog_level = \"off\"\n[default.databases.default]\nurl = \"sqlite://toml.db\"\ncreate_all = true\n")?;
        jail.set_env(
            "ROCKET_DATABASES",
            r#"{default={url="sqlite://env.db",commit_mode="autocommit"}}"#,
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let rocket = rocket::custom(rocket::Config::figment())
                .attach(Alchemy::fairing().only_listed_models().model::<Thing>())
                .ignite()
                .await
                .expect("launches");
            let alchemy = Alchemy::fetch(&rocket).unwrap();
            let bind = alchemy.bind("default").unwrap();
            assert_eq!(bind.config().commit_mode, CommitMode::Autocommit);
            alchemy.close().await;
        });
        assert!(
            jail.directory().join("env.db").exists(),
            "the env URL was used"
        );
        assert!(!jail.directory().join("toml.db").exists());
        Ok(())
    });
}

/// `sqlite::memory:` is one database shared by the whole pool.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_memory_is_shared_by_the_pool() {
    let figment = figment(
        "[databases.default]\nurl = \"sqlite::memory:\"\ncreate_all = true\nmax_connections = 4",
    );
    let alchemy = Alchemy::open(&figment, &[Thing::TABLE]).await.unwrap();
    let session = alchemy.session("default").unwrap();
    let insert = rocket_alchemy::sea_query::Query::insert()
        .into_table("thing")
        .columns(["id"])
        .values_panic([7.into()])
        .to_owned();
    session.execute(&insert).await.unwrap();
    session.commit().await.unwrap();
    let count = rocket_alchemy::sea_query::Query::select()
        .expr(rocket_alchemy::sea_query::Func::count(
            rocket_alchemy::sea_query::Expr::col("id"),
        ))
        .from("thing")
        .to_owned();
    // Two connections held at once both see the committed row: one database.
    let pool = alchemy
        .pool("default")
        .unwrap()
        .as_sqlite()
        .unwrap()
        .clone();
    let mut a = pool.acquire().await.unwrap();
    let mut b = pool.acquire().await.unwrap();
    for conn in [&mut a, &mut b] {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM thing")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    assert!(pool.size() >= 2);
    drop((a, b, count));
    alchemy.close().await;
}
