//! What rocket_alchemy's request path costs compared with hand-written sqlx, one request
//! at a time (single-request cost; `scripts/bench.sh` measures under concurrent load),
//! measured in the same run.
//!
//! One Rocket (through `rocket::local::asynchronous::Client::untracked`) serves a SQLite
//! file database in a temporary directory (WAL journal, the library's default). The
//! library's routes and the hand-written baseline routes are mounted side by side on the
//! same table, the same pre-populated rows and the same sqlx pool (the library's pool, also
//! managed as a plain `SqlitePool`). Every measured request is a full local dispatch, so
//! Rocket's routing and fairings are in the library and the baseline numbers alike.
//!
//! | criterion group | library route | baseline route |
//! |---|---|---|
//! | `insert` | `session_insert`: `Session` guard, `session.execute(&insert)` built with sea-query, committed by the fairing (`commit_mode = "autocommit"`) | `baseline_insert`: `pool.begin_with("BEGIN IMMEDIATE")`, `sqlx::query(same SQL).bind(..)`, `tx.commit()` |
//! | `insert` | `session_insert_raw`: `session.sqlite()`, then `sqlx::query(same SQL)` on the session's connection | the same `baseline_insert` |
//! | `select_by_id` | `session_select_by_id`: `session.fetch_one::<BenchRow>(&select)` by primary key (a reader: a deferred transaction begun with the statement, ended by the fairing) | `baseline_select_by_id`: `pool.begin()` (deferred), `query_as(same SQL)`, `commit()` |
//! | `select_by_id` | `session_select_by_id_raw`: `session.sqlite()`, then `sqlx::query_as(same SQL)` on the session's connection | the same `baseline_select_by_id` |
//! | `select_by_id` | the same `session_select_by_id` | `baseline_select_by_id_no_tx`: `query_as(same SQL).fetch_one(&pool)`, no transaction |
//! | `guard` | `unused_guard`: a route taking a `Session` it never uses | `no_guard`: the same route without the guard |
//!
//! Before measuring, the bench checks that the library and the baseline send the same SQL,
//! that every route answers 200, that every insert route commits its row, and that
//! `unused_guard` does not touch the database (it must answer while every pooled connection
//! is held elsewhere).
//!
//! # Interleaving
//!
//! This runs on shared machines where the load changes from one second to the next, so a
//! library route and its baseline are never measured in separate time windows. In every
//! iteration of every benchmark of a group, each route of the group is dispatched once, in a
//! fresh pseudo-random order, and each request is timed on its own. Criterion gets the time
//! of the benchmark's own route (its `time:` lines and reports are per route, as usual); the
//! time of every route is also added to a tally kept for the whole group. The table printed
//! at the end comes from that tally: for each pair, the mean time per request of the library
//! route and of its baseline over the same iterations of this run (criterion's warm-up
//! included), their ratio `library / baseline`, and the spread (25th–75th percentile) of
//! that ratio across the routine calls. A group filtered out on the command line shows
//! `n/a`.
//!
//! # Running
//!
//! ```sh
//! cargo bench --bench request_path                  # full run, about 1.5 minutes
//! BENCH_QUICK=1 cargo bench --bench request_path    # smoke run, about 10 s after the build
//! cargo bench --bench request_path -- select_by_id  # one group (criterion's filter)
//! ```
//!
//! Criterion's command-line options (`--sample-size`, `--measurement-time`, ...) override
//! the settings chosen here. Criterion's plots and HTML report are off.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use rocket::fairing::AdHoc;
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::tokio::runtime::Runtime;
use rocket::{get, post, routes, Build, Rocket, State};
use rocket_alchemy::sea_query::{
    Expr, ExprTrait, InsertStatement, Query, SelectStatement, SqliteQueryBuilder,
};
use rocket_alchemy::{
    Alchemy, Model, ModelExt, Repository, RepositoryError, Session, SessionError,
};
use sqlx::SqlitePool;

/// The benchmark table, `bench_row`: an auto-increment `id` primary key, `label` and `n`.
#[derive(Model, Debug)]
struct BenchRow {
    id: i64,
    #[model(max_length = 64)]
    label: String,
    n: i64,
}

/// Rows inserted before measuring; the select routes read ids `1..=ROWS`.
const ROWS: i64 = 10_000;
/// Pool size; also how many connections the `unused_guard` check holds.
const MAX_CONNECTIONS: u32 = 4;
/// The SQL sea-query builds for [`insert_statement`] on SQLite (checked at start-up).
const INSERT_SQL: &str = r#"INSERT INTO "bench_row" ("label", "n") VALUES (?, ?)"#;
/// The SQL sea-query builds for [`select_statement`] on SQLite (checked at start-up).
const SELECT_SQL: &str = r#"SELECT "bench_row"."id", "bench_row"."label", "bench_row"."n" FROM "bench_row" WHERE "id" = ?"#;
/// The `BEGIN` of a SQLite writer (src/sqlite_link.rs).
const BEGIN_SQL: &str = "BEGIN IMMEDIATE";
const LABEL: &str = "bench";

fn insert_statement(label: &str, n: i64) -> InsertStatement {
    Query::insert()
        .into_table("bench_row")
        .columns(["label", "n"])
        .values_panic([label.into(), n.into()])
        .to_owned()
}

fn select_statement(id: i64) -> SelectStatement {
    BenchRow::select_statement()
        .and_where(Expr::col("id").eq(id))
        .to_owned()
}

// ----- library routes -----

#[post("/session/insert")]
async fn session_insert(session: Session<'_>) -> Result<&'static str, SessionError> {
    session.execute(&insert_statement(LABEL, 1)).await?;
    Ok("ok")
}

#[post("/session/insert_raw")]
async fn session_insert_raw(session: Session<'_>) -> Result<&'static str, SessionError> {
    let mut conn = session.sqlite().await?;
    sqlx::query(INSERT_SQL)
        .bind(LABEL)
        .bind(1_i64)
        .execute(&mut *conn)
        .await?;
    Ok("ok")
}

#[get("/session/select/<id>")]
async fn session_select_by_id(id: i64, session: Session<'_>) -> Result<String, SessionError> {
    let row: BenchRow = session.fetch_one(&select_statement(id)).await?;
    Ok(row.label)
}

#[get("/session/select_raw/<id>")]
async fn session_select_by_id_raw(id: i64, session: Session<'_>) -> Result<String, SessionError> {
    let mut conn = session.sqlite().await?;
    let row: BenchRow = sqlx::query_as(SELECT_SQL)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.label)
}

#[post("/repo/insert")]
async fn repo_insert(session: Session<'_>) -> Result<&'static str, RepositoryError> {
    let row = BenchRow {
        id: 0,
        label: LABEL.into(),
        n: 1,
    };
    Repository::<BenchRow>::new(session).create(row).await?;
    Ok("ok")
}

#[get("/repo/select/<id>")]
async fn repo_select_by_id(id: i64, session: Session<'_>) -> Result<String, RepositoryError> {
    Ok(Repository::<BenchRow>::new(session).get(id).await?.label)
}

#[get("/unused_guard")]
async fn unused_guard(_session: Session<'_>) -> &'static str {
    "ok"
}

// ----- hand-written baselines, on the same pool -----

#[post("/baseline/insert")]
async fn baseline_insert(pool: &State<SqlitePool>) -> Result<&'static str, SessionError> {
    let mut tx = pool.begin_with(BEGIN_SQL).await?;
    sqlx::query(INSERT_SQL)
        .bind(LABEL)
        .bind(1_i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok("ok")
}

#[get("/baseline/select/<id>")]
async fn baseline_select_by_id(id: i64, pool: &State<SqlitePool>) -> Result<String, SessionError> {
    // A read transaction, as a library reader's.
    let mut tx = pool.begin().await?;
    let row: BenchRow = sqlx::query_as(SELECT_SQL)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row.label)
}

#[get("/baseline/select_no_tx/<id>")]
async fn baseline_select_by_id_no_tx(
    id: i64,
    pool: &State<SqlitePool>,
) -> Result<String, SessionError> {
    let row: BenchRow = sqlx::query_as(SELECT_SQL)
        .bind(id)
        .fetch_one(pool.inner())
        .await?;
    Ok(row.label)
}

#[get("/no_guard")]
async fn no_guard() -> &'static str {
    "ok"
}

// ----- set-up -----

/// A temporary directory, removed on drop (also when a check panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "rocket_alchemy_bench_{}_{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create the temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The rocket: the library's fairing on a SQLite file, the library's pool also managed as a
/// plain `SqlitePool` for the baselines, and every route.
fn rocket(db: &Path) -> Rocket<Build> {
    // Not `rocket::Config::figment()`: that would read the repository's Rocket.toml.
    let figment = Figment::from(rocket::Config::default())
        .merge(Serialized::default("log_level", "off"))
        .merge(Serialized::default(
            "databases.default.url",
            format!("sqlite://{}", db.display()),
        ))
        .merge(Serialized::default(
            "databases.default.commit_mode",
            "autocommit",
        ))
        .merge(Serialized::default("databases.default.create_all", true))
        .merge(Serialized::default(
            "databases.default.max_connections",
            MAX_CONNECTIONS,
        ));
    rocket::custom(figment)
        .attach(Alchemy::fairing())
        // Runs after the Alchemy fairing's ignite (fairings ignite in attach order).
        .attach(AdHoc::try_on_ignite(
            "raw SqlitePool",
            |rocket| async move {
                let pool = Alchemy::fetch(&rocket)
                    .and_then(|alchemy| alchemy.pool("default").ok())
                    .and_then(|pool| pool.as_sqlite())
                    .cloned();
                match pool {
                    Some(pool) => Ok(rocket.manage(pool)),
                    None => Err(rocket),
                }
            },
        ))
        .mount(
            "/",
            routes![
                session_insert,
                session_insert_raw,
                session_select_by_id,
                session_select_by_id_raw,
                repo_insert,
                repo_select_by_id,
                unused_guard,
                baseline_insert,
                baseline_select_by_id,
                baseline_select_by_id_no_tx,
                no_guard,
            ],
        )
}

async fn populate(pool: &SqlitePool) {
    let mut tx = pool.begin().await.expect("begin");
    for i in 1..=ROWS {
        sqlx::query(INSERT_SQL)
            .bind(format!("row-{i}"))
            .bind(i)
            .execute(&mut *tx)
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
}

async fn count(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM bench_row")
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Checks that library and baseline do the same work, before anything is measured.
async fn verify(client: &Client, pool: &SqlitePool) {
    // Same SQL on both sides.
    let (insert_sql, _) = insert_statement(LABEL, 1).build(SqliteQueryBuilder);
    assert_eq!(
        insert_sql, INSERT_SQL,
        "the baseline INSERT must be the SQL the session sends"
    );
    let (select_sql, _) = select_statement(1).build(SqliteQueryBuilder);
    assert_eq!(
        select_sql, SELECT_SQL,
        "the baseline SELECT must be the SQL the session sends"
    );

    // Every insert route commits exactly one row.
    for uri in [
        "/session/insert",
        "/session/insert_raw",
        "/repo/insert",
        "/baseline/insert",
    ] {
        let before = count(pool).await;
        let response = client.post(uri).dispatch().await;
        assert_eq!(response.status(), Status::Ok, "POST {uri}");
        assert_eq!(
            count(pool).await,
            before + 1,
            "POST {uri} did not commit one row"
        );
    }

    // Every select route reads the row.
    for prefix in [
        "/session/select",
        "/session/select_raw",
        "/repo/select",
        "/baseline/select",
        "/baseline/select_no_tx",
    ] {
        let response = client.get(format!("{prefix}/42")).dispatch().await;
        assert_eq!(response.status(), Status::Ok, "GET {prefix}/42");
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("row-42"),
            "GET {prefix}/42"
        );
    }

    // With every pooled connection held here, a route that touched the database would wait
    // for one (up to the pool's acquire timeout): `unused_guard` must answer at once.
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        held.push(pool.acquire().await.expect("acquire"));
    }
    for uri in ["/unused_guard", "/no_guard"] {
        let response =
            rocket::tokio::time::timeout(Duration::from_secs(2), client.get(uri).dispatch())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "GET {uri} waited for a database connection: it must not use the database"
                    )
                });
        assert_eq!(response.status(), Status::Ok, "GET {uri}");
    }
    drop(held);
}

// ----- measurement -----

/// How a route is requested.
#[derive(Clone, Copy)]
enum Req {
    /// `POST` to a fixed URI.
    Post(&'static str),
    /// `GET <prefix>/<id>`, cycling through the pre-populated ids.
    GetById(&'static str),
    /// `GET` a fixed URI.
    Get(&'static str),
}

/// A route of a group, its requests formatted in advance (identically for every route).
struct Route {
    name: &'static str,
    post: bool,
    uris: Vec<String>,
}

impl Route {
    fn new(name: &'static str, req: Req) -> Route {
        let (post, uris) = match req {
            Req::Post(uri) => (true, vec![uri.to_string()]),
            Req::Get(uri) => (false, vec![uri.to_string()]),
            // A stride coprime with ROWS visits every id, not in storage order.
            Req::GetById(prefix) => (
                false,
                (0..ROWS)
                    .map(|i| format!("{prefix}/{}", (i * 7919) % ROWS + 1))
                    .collect(),
            ),
        };
        Route { name, post, uris }
    }
}

/// Shuffles `order` (Fisher-Yates, seeded by `seed` through SplitMix64): each iteration
/// runs the routes in a fresh order, so that no route is systematically measured first, last
/// or right after one particular other route.
fn shuffle(order: &mut [usize], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..order.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// One call of a benchmark's routine: its iteration count and the time spent in each route.
struct Call {
    iters: u64,
    spent: Vec<Duration>,
}

/// Routes measured together (see the module docs, "Interleaving"), and what was measured.
struct Group {
    name: &'static str,
    routes: Vec<Route>,
    /// Counts iterations across the group's benchmarks: seeds the order, picks the URI.
    cursor: Cell<usize>,
    calls: RefCell<Vec<Call>>,
}

impl Group {
    fn new(name: &'static str, routes: Vec<Route>) -> Group {
        Group {
            name,
            routes,
            cursor: Cell::new(0),
            calls: RefCell::new(Vec::new()),
        }
    }

    /// `iters` iterations of every route; returns the time spent in route `own`.
    async fn run(&self, client: &Client, iters: u64, own: usize) -> Duration {
        let n = self.routes.len();
        let mut spent = vec![Duration::ZERO; n];
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..iters {
            let cursor = self.cursor.get();
            self.cursor.set(cursor.wrapping_add(1));
            shuffle(&mut order, cursor as u64);
            for &index in &order {
                let route = &self.routes[index];
                let uri = route.uris[cursor % route.uris.len()].as_str();
                let start = Instant::now();
                let response = match route.post {
                    true => client.post(uri).dispatch().await,
                    false => client.get(uri).dispatch().await,
                };
                spent[index] += start.elapsed();
                // Outside the timing, the same for every route: a failing route must not
                // pass for a fast one.
                if response.status() != Status::Ok {
                    panic!("{uri} answered {}", response.status());
                }
            }
        }
        let own_time = spent[own];
        self.calls.borrow_mut().push(Call { iters, spent });
        own_time
    }

    /// One criterion benchmark per route.
    fn bench(&self, criterion: &mut Criterion, runtime: &Runtime, client: &Client) {
        let mut group = criterion.benchmark_group(self.name);
        for (own, route) in self.routes.iter().enumerate() {
            group.bench_function(route.name, |b| {
                b.to_async(runtime)
                    .iter_custom(|iters| self.run(client, iters, own));
            });
        }
        group.finish();
    }

    fn index(&self, name: &str) -> usize {
        self.routes
            .iter()
            .position(|r| r.name == name)
            .unwrap_or_else(|| panic!("no route {name}"))
    }

    /// Mean time per request of `library` and `baseline`, over the same iterations, and the
    /// 25th and 75th percentiles of the ratio across criterion's samples; `None` if the group
    /// did not run.
    fn compare(&self, library: &str, baseline: &str) -> Option<Comparison> {
        let (l, b) = (self.index(library), self.index(baseline));
        let calls = self.calls.borrow();
        let iters: u64 = calls.iter().map(|c| c.iters).sum();
        if iters == 0 {
            return None;
        }
        let total = |i: usize| calls.iter().map(|c| c.spent[i].as_secs_f64()).sum::<f64>();
        let mut ratios: Vec<f64> = calls
            .iter()
            .filter(|c| !c.spent[b].is_zero())
            .map(|c| c.spent[l].as_secs_f64() / c.spent[b].as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let quantile = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        Some(Comparison {
            requests: iters,
            library_ns: total(l) * 1e9 / iters as f64,
            baseline_ns: total(b) * 1e9 / iters as f64,
            ratio_p25: quantile(0.25),
            ratio_p75: quantile(0.75),
        })
    }
}

struct Comparison {
    requests: u64,
    library_ns: f64,
    baseline_ns: f64,
    ratio_p25: f64,
    ratio_p75: f64,
}

fn format_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn print_table(rows: &[(&str, &Group, &str, &str)]) {
    println!();
    println!(
        "{:<41}{:>11}{:>11}{:>8}{:>12}{:>14}{:>11}",
        "request path (mean per request)",
        "library",
        "baseline",
        "ratio",
        "delta",
        "ratio p25-p75",
        "requests"
    );
    for &(label, group, library, baseline) in rows {
        match group.compare(library, baseline) {
            Some(c) => {
                let delta = c.library_ns - c.baseline_ns;
                let sign = if delta < 0.0 { "-" } else { "+" };
                println!(
                    "{label:<41}{:>11}{:>11}{:>8.2}{:>12}{:>14}{:>11}",
                    format_ns(c.library_ns),
                    format_ns(c.baseline_ns),
                    c.library_ns / c.baseline_ns,
                    format!("{sign}{}", format_ns(delta.abs())),
                    format!("{:.2}-{:.2}", c.ratio_p25, c.ratio_p75),
                    c.requests,
                );
            }
            None => println!("{label:<41}{:>11}{:>11}{:>8}", "n/a", "n/a", "n/a"),
        }
    }
    println!();
    println!(
        "Means over the same interleaved iterations of this run (criterion's warm-up included);"
    );
    println!("ratio = library / baseline. Criterion's `time:` lines above are per route and per time window.");
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    // Criterion sizes its iteration counts on the wall time of a routine call, which covers
    // all the routes of the group: each benchmark takes about warm-up + measurement time.
    let criterion = Criterion::default().without_plots();
    let criterion = match quick {
        true => criterion
            .sample_size(10)
            .warm_up_time(Duration::from_millis(150))
            .measurement_time(Duration::from_millis(400))
            .nresamples(10_000),
        false => criterion
            .sample_size(30)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(6)),
    };
    let mut criterion = criterion.configure_from_args();

    let insert = Group::new(
        "insert",
        vec![
            Route::new("session_insert", Req::Post("/session/insert")),
            Route::new("session_insert_raw", Req::Post("/session/insert_raw")),
            Route::new("repo_insert", Req::Post("/repo/insert")),
            Route::new("baseline_insert", Req::Post("/baseline/insert")),
        ],
    );
    let select = Group::new(
        "select_by_id",
        vec![
            Route::new("session_select_by_id", Req::GetById("/session/select")),
            Route::new(
                "session_select_by_id_raw",
                Req::GetById("/session/select_raw"),
            ),
            Route::new("repo_select_by_id", Req::GetById("/repo/select")),
            Route::new("baseline_select_by_id", Req::GetById("/baseline/select")),
            Route::new(
                "baseline_select_by_id_no_tx",
                Req::GetById("/baseline/select_no_tx"),
            ),
        ],
    );
    let guard = Group::new(
        "guard",
        vec![
            Route::new("unused_guard", Req::Get("/unused_guard")),
            Route::new("no_guard", Req::Get("/no_guard")),
        ],
    );

    let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tmp = TempDir::new();
    let client = runtime.block_on(async {
        let client = Client::untracked(rocket(&tmp.0.join("bench.db")))
            .await
            .expect("the rocket launches");
        let pool = client
            .rocket()
            .state::<SqlitePool>()
            .expect("managed pool")
            .clone();
        populate(&pool).await;
        verify(&client, &pool).await;
        client
    });

    for group in [&insert, &select, &guard] {
        group.bench(&mut criterion, &runtime, &client);
    }
    criterion.final_summary();
    runtime.block_on(client.terminate()); // closes the pool before its files are removed
    drop(tmp);

    print_table(&[
        (
            "insert, autocommit (execute)",
            &insert,
            "session_insert",
            "baseline_insert",
        ),
        (
            "insert, autocommit (sqlite() + sqlx)",
            &insert,
            "session_insert_raw",
            "baseline_insert",
        ),
        (
            "insert, autocommit (Repository::create)",
            &insert,
            "repo_insert",
            "baseline_insert",
        ),
        (
            "select by id (both in a transaction)",
            &select,
            "session_select_by_id",
            "baseline_select_by_id",
        ),
        (
            "select by id (sqlite() + sqlx, both tx)",
            &select,
            "session_select_by_id_raw",
            "baseline_select_by_id",
        ),
        (
            "select by id (Repository::get, both tx)",
            &select,
            "repo_select_by_id",
            "baseline_select_by_id",
        ),
        (
            "select by id vs no-tx fetch_one",
            &select,
            "session_select_by_id",
            "baseline_select_by_id_no_tx",
        ),
        (
            "unused guard vs no guard",
            &guard,
            "unused_guard",
            "no_guard",
        ),
    ]);
}
