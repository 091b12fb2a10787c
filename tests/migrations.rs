//! Migrations through the real binaries (`examples/catalog`, whose models evolve with
//! `CATALOG_SCHEMA`, and the standalone `rocket-alchemy`) on every backend.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::TestDb;
use rocket_alchemy::Backend;

struct Cli {
    exe: PathBuf,
    dir: PathBuf,
    databases: String,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let exe = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.exists(),
        "{} is missing: `cargo test` builds the examples",
        exe.display()
    );
    exe
}

impl Cli {
    fn new(exe: PathBuf, db: &TestDb, test: &str) -> Cli {
        let _ = test;
        let dir = std::env::temp_dir().join(format!("ra_cli_{}", db.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Cli {
            exe,
            dir,
            // `create_all = true` must not hide anything from autogenerate (Advanced
            // Alchemy's bug): the commands never run it.
            databases: format!("{{default={}}}", db.inline_bind("create_all=true")),
        }
    }

    fn run_env(&self, args: &[&str], schema: &str) -> Run {
        let mut command = Command::new(&self.exe);
        if self.exe.file_stem().is_some_and(|s| s == "catalog") {
            command.arg("database");
        }
        let output: Output = command
            .args(args)
            .current_dir(&self.dir)
            .env("ROCKET_DATABASES", &self.databases)
            .env("CATALOG_SCHEMA", schema)
            .env_remove("ROCKET_PROFILE")
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs with schema version 1 and expects success.
    fn ok(&self, args: &[&str]) -> Run {
        self.ok_v(args, "1")
    }

    fn ok_v(&self, args: &[&str], schema: &str) -> Run {
        let run = self.run_env(args, schema);
        assert_eq!(run.code, 0, "{args:?} (schema {schema}) failed: {run:?}");
        run
    }

    fn migrations(&self) -> PathBuf {
        self.dir.join("migrations")
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.migrations())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tables(db: &TestDb) -> Vec<String> {
    db.probe().tables().await
}

/// The whole cycle: init → revision --autogenerate → upgrade → check → change the models →
/// check fails → revision → upgrade → check → downgrade → history → stamp → dump-data /
/// drop-all / load-data with the rows intact.
async fn full_cycle(db: TestDb) {
    let cli = Cli::new(example("catalog"), &db, "cycle");
    let probe = db.probe();

    let run = cli.ok(&["init"]);
    assert!(
        run.stdout.contains("[default] created migrations"),
        "{run:?}"
    );
    assert!(cli.migrations().is_dir());

    let run = cli.ok(&["revision", "--autogenerate", "-m", "initial catalog"]);
    for table in ["category", "product", "obsolete"] {
        assert!(run.stdout.contains(&format!("+ table {table}")), "{run:?}");
    }
    let files = cli.files();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].ends_with("_initial_catalog.down.sql")
            && files[1].ends_with("_initial_catalog.up.sql"),
        "{files:?}"
    );
    assert!(
        tables(&db).await.is_empty(),
        "revision writes files, it does not touch the database"
    );

    let run = cli.ok(&["upgrade"]);
    assert!(
        run.stdout.contains("applied") && run.stdout.contains("initial catalog"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("ms)"),
        "each step prints its duration: {run:?}"
    );
    assert_eq!(
        tables(&db).await,
        ["_sqlx_migrations", "category", "obsolete", "product"]
    );
    assert!(cli.ok(&["check"]).stdout.contains("up to date"));
    let run = cli.ok(&["revision", "--autogenerate", "-m", "nothing"]);
    assert!(run.stdout.contains("nothing written"), "{run:?}");
    assert_eq!(cli.files().len(), 2);

    probe
        .execute("INSERT INTO category (name) VALUES ('books')")
        .await;
    probe
        .execute("INSERT INTO product (name, price, legacy_code, created_at, updated_at) VALUES ('Dune', 9, 'X1', '2024-01-01 00:00:00', '2024-01-01 00:00:00')")
        .await;

    // The models change: check fails and says what differs.
    let run = cli.run_env(&["check"], "2");
    assert_eq!(run.code, 1, "{run:?}");
    for change in ["+ table tag", "- table obsolete", "product", "category"] {
        assert!(
            run.stdout.contains(change),
            "check names `{change}`: {run:?}"
        );
    }
    let run = cli.ok_v(
        &[
            "make-migrations",
            "--autogenerate",
            "--allow-destructive",
            "-m",
            "version two",
        ],
        "2",
    );
    for change in ["+ table tag", "- table obsolete"] {
        assert!(run.stdout.contains(change), "{run:?}");
    }
    if db.backend != Backend::Sqlite {
        for change in [
            "+ column product.sku",
            "- column product.legacy_code",
            "~ column product.name: type",
            "~ column product.price: type",
            "default 0 -> 100",
            "~ column category.name: now nullable",
            "+ unique category.slug",
            "+ index product.sku",
            "+ foreign key product.category_id -> category",
        ] {
            assert!(run.stdout.contains(change), "`{change}` in {run:?}");
        }
    } else {
        assert!(run.stdout.contains("~ table product rebuilt"), "{run:?}");
    }
    assert_eq!(cli.files().len(), 4);
    let run = cli.ok_v(&["upgrade"], "2");
    assert!(run.stdout.contains("version two"), "{run:?}");
    assert!(
        cli.ok_v(&["check"], "2").stdout.contains("up to date"),
        "a generated migration leaves nothing to generate"
    );
    assert_eq!(
        tables(&db).await,
        ["_sqlx_migrations", "category", "product", "tag"]
    );
    assert_eq!(
        probe.count_where("product", "name", "Dune").await,
        1,
        "rows survive the migration"
    );
    assert_eq!(probe.count_where("category", "name", "books").await, 1);

    // history / current / stamp
    let run = cli.ok_v(&["history", "--verbose"], "2");
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("initial catalog") || l.contains("version two"))
        .collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(lines[1].contains("<- current"), "{run:?}");
    assert!(run.stdout.contains("reversible, checksum"), "{run:?}");
    let versions: Vec<String> = cli
        .files()
        .iter()
        .filter(|f| f.ends_with(".up.sql"))
        .map(|f| f[..14].to_string())
        .collect();
    assert!(cli.ok_v(&["current"], "2").stdout.contains(&versions[1]));

    // downgrade one step: the v1 schema is back, exactly (check with v1 models passes once
    // the v2 files are out of the way).
    let refused = cli.run_env(&["downgrade"], "2");
    assert_eq!(
        refused.code, 1,
        "no terminal, no --no-prompt: nothing reverted: {refused:?}"
    );
    assert!(cli.ok_v(&["current"], "2").stdout.contains(&versions[1]));
    let run = cli.ok_v(&["downgrade", "--no-prompt"], "2");
    assert!(
        run.stdout.contains("reverted") && run.stdout.contains("version two"),
        "{run:?}"
    );
    let held = cli.dir.join("held");
    std::fs::create_dir_all(&held).unwrap();
    for file in cli
        .files()
        .into_iter()
        .filter(|f| f.contains("version_two"))
    {
        std::fs::rename(cli.migrations().join(&file), held.join(&file)).unwrap();
    }
    assert!(
        cli.ok(&["check"]).stdout.contains("up to date"),
        "the down migration restores the first schema"
    );
    for file in std::fs::read_dir(&held).unwrap() {
        let file = file.unwrap();
        std::fs::rename(file.path(), cli.migrations().join(file.file_name())).unwrap();
    }
    assert_eq!(probe.count_where("product", "name", "Dune").await, 1);
    let run = cli.ok(&["history"]);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("version two") && l.contains("pending")),
        "{run:?}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("initial catalog") && l.contains("<- current")),
        "{run:?}"
    );

    // stamp: record without running, both ways.
    cli.ok(&["stamp", &versions[1]]);
    assert!(cli.ok(&["current"]).stdout.contains(&versions[1]));
    assert!(
        tables(&db).await.contains(&"obsolete".to_string()),
        "stamp runs nothing"
    );
    cli.ok(&["stamp", &versions[0]]);
    assert!(cli.ok(&["current"]).stdout.contains(&versions[0]));
    cli.ok_v(&["upgrade", "head"], "2");

    // dump-data / drop-all / load-data round trip.
    probe
        .execute("INSERT INTO tag (label) VALUES ('classic'), ('scifi')")
        .await;
    let run = cli.ok_v(
        &[
            "dump-data",
            "--table",
            "*",
            "--no-prompt",
            "--dir",
            "fixtures",
        ],
        "2",
    );
    assert!(run.stdout.contains("wrote 1 row(s) of product"), "{run:?}");
    let before = std::fs::read_to_string(cli.dir.join("fixtures/product.json")).unwrap();
    assert!(before.contains("Dune"));
    let refused = cli.run_env(&["drop-all"], "2");
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(!tables(&db).await.is_empty());
    cli.ok_v(&["drop-all", "--no-prompt"], "2");
    assert!(
        tables(&db).await.is_empty(),
        "drop-all drops the model tables and the migrations table"
    );
    cli.ok_v(&["upgrade"], "2");
    let run = cli.ok_v(&["load-data", "--dir", "fixtures"], "2");
    assert!(run.stdout.contains("loaded 2 row(s) into tag"), "{run:?}");
    cli.ok_v(
        &[
            "dump-data",
            "--table",
            "product",
            "--table",
            "category",
            "--table",
            "tag",
            "--dir",
            "again",
        ],
        "2",
    );
    for table in ["product", "category", "tag"] {
        let a = std::fs::read_to_string(cli.dir.join(format!("fixtures/{table}.json"))).unwrap();
        let b = std::fs::read_to_string(cli.dir.join(format!("again/{table}.json"))).unwrap();
        assert_eq!(a, b, "{table}: rows intact after the round trip");
    }
    // New rows still get fresh keys after keys were loaded explicitly.
    probe
        .execute("INSERT INTO tag (label) VALUES ('new')")
        .await;
    assert_eq!(probe.count("tag").await, 3);

    let run = cli.run_env(&["dump-data", "--table", "nope"], "2");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("no model of bind `default` has table `nope`"),
        "{run:?}"
    );

    // Everything down.
    cli.ok_v(&["downgrade", "base", "--no-prompt"], "2");
    assert_eq!(tables(&db).await, ["_sqlx_migrations"]);
}

/// sqlx's own migrator and ours agree on the same folder and database, both ways.
async fn sqlx_interop(db: TestDb) {
    let cli = Cli::new(example("catalog"), &db, "interop");
    cli.ok(&["revision", "--autogenerate", "-m", "init"]);
    // A second, hand-written migration.
    let extra = match db.backend {
        Backend::MySql => (
            "CREATE TABLE note (id BIGINT PRIMARY KEY);",
            "DROP TABLE note;",
        ),
        _ => (
            "CREATE TABLE note (id BIGINT PRIMARY KEY);",
            "DROP TABLE note;",
        ),
    };
    cli.ok(&["revision", "-m", "hand written"]);
    for file in cli.files() {
        if file.contains("hand_written") {
            let path = cli.migrations().join(&file);
            let sql = if file.ends_with(".up.sql") {
                extra.0
            } else {
                extra.1
            };
            let text = std::fs::read_to_string(&path).unwrap() + sql + "\n";
            std::fs::write(path, text).unwrap();
        }
    }
    let dir = cli.migrations();

    // Ours, then sqlx: nothing left for sqlx to do, and its checksum checks pass.
    cli.ok(&["upgrade"]);
    sqlx_run(&db, &dir).await;
    assert_eq!(applied_versions(&db).await.len(), 2);

    // sqlx, then ours: a fresh database migrated by sqlx is current for us.
    let fresh = db.sibling("interop_fresh").await;
    sqlx_run(&fresh, &dir).await;
    let other = Cli {
        exe: cli.exe.clone(),
        dir: cli.dir.clone(),
        databases: format!("{{default={}}}", fresh.inline_bind("")),
    };
    let run = other.ok(&["history"]);
    assert_eq!(run.stdout.matches("applied").count(), 2, "{run:?}");
    assert_eq!(run.stdout.matches("pending").count(), 0, "{run:?}");
    let latest = cli
        .files()
        .iter()
        .filter(|f| f.ends_with(".up.sql"))
        .map(|f| f[..14].to_string())
        .max()
        .unwrap();
    assert!(other.ok(&["current"]).stdout.contains(&latest));
    other.ok(&["downgrade", "--no-prompt"]);
    assert!(!tables(&fresh).await.contains(&"note".to_string()));
    sqlx_run(&fresh, &dir).await;
    assert!(
        tables(&fresh).await.contains(&"note".to_string()),
        "sqlx re-applies what we reverted"
    );
}

async fn sqlx_run(db: &TestDb, dir: &Path) {
    let migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    match db.backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(db.probe_url())
                .unwrap()
                .create_if_missing(true);
            migrator
                .run(&sqlx::SqlitePool::connect_with(options).await.unwrap())
                .await
                .unwrap()
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => migrator
            .run(&sqlx::PgPool::connect(db.probe_url()).await.unwrap())
            .await
            .unwrap(),
        #[cfg(feature = "mysql")]
        Backend::MySql => migrator
            .run(&sqlx::MySqlPool::connect(db.probe_url()).await.unwrap())
            .await
            .unwrap(),
        #[allow(unreachable_patterns)]
        other => panic!("the `{other}` feature is disabled"),
    }
}

async fn applied_versions(db: &TestDb) -> Vec<String> {
    let sql = match db.backend {
        Backend::Postgres => "SELECT version::text FROM _sqlx_migrations ORDER BY version",
        Backend::MySql => "SELECT CAST(version AS CHAR) FROM _sqlx_migrations ORDER BY version",
        Backend::Sqlite => "SELECT CAST(version AS TEXT) FROM _sqlx_migrations ORDER BY version",
    };
    db.probe().texts(sql).await // version strings of one length: sorted as numbers
}

/// Two processes upgrading at once, one migration slow enough (a second of server time, a
/// heavy recursive query on SQLite) for them to overlap: both succeed, each migration is
/// applied once (its one insert is there once, checked through another connection) and the
/// history holds one row per migration.
async fn concurrent_upgrades(db: TestDb) {
    let cli = Cli::new(example("catalog"), &db, "concurrent");
    cli.ok(&["revision", "--autogenerate", "-m", "init"]);
    cli.ok(&["revision", "-m", "slow"]);
    let wait = match db.backend {
        Backend::Postgres => "SELECT pg_sleep(1);",
        Backend::MySql => "DO SLEEP(1);",
        Backend::Sqlite => "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT COUNT(*) FROM n;",
    };
    let slow = format!(
        "CREATE TABLE slow_marker (id INTEGER);\n{wait}\nINSERT INTO slow_marker (id) VALUES (1);"
    );
    for file in cli.files() {
        if file.contains("_slow.up.sql") {
            let path = cli.migrations().join(&file);
            std::fs::write(
                &path,
                std::fs::read_to_string(&path).unwrap() + &slow + "\n",
            )
            .unwrap();
        }
    }
    let spawn = || {
        Command::new(&cli.exe)
            .args(["database", "upgrade"])
            .current_dir(&cli.dir)
            .env("ROCKET_DATABASES", &cli.databases)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let applied_lines = [&a, &b]
        .iter()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .matches("] applied")
                .count()
        })
        .sum::<usize>();
    assert_eq!(applied_lines, 2, "each migration applied once in all");
    assert_eq!(applied_versions(&db).await.len(), 2);
    assert_eq!(
        db.probe().count("slow_marker").await,
        1,
        "the slow migration ran once"
    );
}

/// A failing migration leaves schema and tracking table as they were and names the file and
/// statement; a changed applied file is an error.
async fn failures(db: TestDb) {
    let cli = Cli::new(example("catalog"), &db, "failures");
    cli.ok(&["revision", "--autogenerate", "-m", "init"]);
    cli.ok(&["upgrade"]);
    cli.ok(&["revision", "-m", "broken"]);
    let body = match db.backend {
        // MySQL commits DDL implicitly: fail on the first statement there.
        Backend::MySql => "INSERT INTO missing_table VALUES (1);\nCREATE TABLE half_done (id BIGINT PRIMARY KEY);\n",
        _ => "CREATE TABLE half_done (id BIGINT PRIMARY KEY);\nINSERT INTO missing_table VALUES (1);\n",
    };
    let broken = cli
        .files()
        .into_iter()
        .find(|f| f.contains("_broken.up.sql"))
        .unwrap();
    let path = cli.migrations().join(&broken);
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + body).unwrap();
    let before_tables = tables(&db).await;
    let before_versions = applied_versions(&db).await;
    let run = cli.run_env(&["upgrade"], "1");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&broken),
        "the error names the file: {run:?}"
    );
    if db.backend != Backend::MySql {
        assert!(
            run.stderr
                .contains("at statement 2 `INSERT INTO missing_table"),
            "and the statement: {run:?}"
        );
    }
    assert_eq!(tables(&db).await, before_tables, "the schema is as it was");
    assert_eq!(
        applied_versions(&db).await,
        before_versions,
        "the tracking table is as it was"
    );

    // Fix it and go on.
    std::fs::write(&path, "CREATE TABLE fixed (id BIGINT PRIMARY KEY);\n").unwrap();
    cli.ok(&["upgrade"]);
    // Changing an applied file is refused.
    std::fs::write(
        &path,
        "CREATE TABLE fixed (id BIGINT PRIMARY KEY, extra INT);\n",
    )
    .unwrap();
    let run = cli.run_env(&["upgrade"], "1");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("checksum mismatch") && run.stderr.contains(&broken),
        "{run:?}"
    );

    let run = cli.run_env(&["--bind-key", "nope", "history"], "1");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "No session maker found for bind key \"nope\"; configured bind keys: default"
        ),
        "{run:?}"
    );
}

/// The standalone binary: the commands that need no models.
async fn standalone(db: TestDb) {
    let cli = Cli::new(
        PathBuf::from(env!("CARGO_BIN_EXE_rocket-alchemy")),
        &db,
        "standalone",
    );
    cli.ok(&["init"]);
    cli.ok(&["revision", "-m", "create things"]);
    for file in cli.files() {
        let path = cli.migrations().join(&file);
        let sql = if file.ends_with(".up.sql") {
            "CREATE TABLE thing (id BIGINT PRIMARY KEY);\n"
        } else {
            "DROP TABLE thing;\n"
        };
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + sql).unwrap();
    }
    let run = cli.ok(&["upgrade"]);
    assert!(run.stdout.contains("applied"), "{run:?}");
    assert!(tables(&db).await.contains(&"thing".to_string()));
    assert!(cli.ok(&["history"]).stdout.contains("<- current"));
    assert!(cli.ok(&["check"]).stdout.contains("up to date"));
    let run = cli.run_env(&["revision", "--autogenerate"], "1");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("needs the app's models"), "{run:?}");
    let run = cli.ok(&["--help"]);
    assert!(
        run.stdout.contains("upgrade") && run.stdout.contains("downgrade"),
        "{run:?}"
    );
    cli.ok(&["drop-all", "--no-prompt"]);
    assert!(
        tables(&db).await.is_empty(),
        "drop-all by migrations: reverted, then the tracking table dropped"
    );
}

backend_tests!(
    full_cycle,
    sqlx_interop,
    concurrent_upgrades,
    failures,
    standalone
);

/// `migrate = true` applies pending migrations at launch, before `create_all`.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn migrate_on_ignite() {
    let db = TestDb::sqlite("migrate_on_ignite").await;
    let dir = std::env::temp_dir().join(format!("ra_migrate_on_ignite_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("1_first.up.sql"),
        "CREATE TABLE migrated (id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    std::fs::write(dir.join("1_first.down.sql"), "DROP TABLE migrated;").unwrap();
    let figment = db.figment(&format!(
        "[databases.default]\nmigrate = true\nmigrations = \"{}\"",
        dir.display()
    ));
    let alchemy = rocket_alchemy::Alchemy::open(&figment, &[]).await.unwrap();
    assert!(tables(&db).await.contains(&"migrated".to_string()));
    alchemy.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
