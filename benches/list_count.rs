//! The first page of a list and its total as the table grows: `Repository::list_and_count`
//! against the two statements a hand-written app sends (`count(*)`, then the page) and the
//! window function the library used before (`COUNT(*) OVER()`), on SQLite and PostgreSQL,
//! at 10^3, 10^5 and 10^6 rows, ordered by an indexed column.
//!
//! ```sh
//! cargo bench --bench list_count                 # 10^3, 10^5, 10^6 rows
//! BENCH_QUICK=1 cargo bench --bench list_count   # 10^3 and 10^4 rows, fewer rounds
//! ```
//!
//! PostgreSQL is the server at `BENCH_POSTGRES_URL` or `TEST_POSTGRES_URL` (an admin URL;
//! default `postgres://postgres@127.0.0.1:5432/postgres`); the bench creates and drops a
//! database of its own. Each figure is the median of the rounds; in every round the library
//! and the two statements run once, in turn, so both see the same machine load; the window
//! query, much slower past 10^4 rows, runs in rounds of its own afterwards.

use std::time::{Duration, Instant};

use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket_alchemy::filters::{Filter, SortOrder};
use rocket_alchemy::{Alchemy, Backend, Model, Repository};
use sqlx::{AssertSqlSafe, Connection, Executor};

/// The listed rows.
#[derive(Model, Debug, Clone)]
struct Entry {
    id: i64,
    #[model(max_length = 100)]
    name: String,
    #[model(index)]
    rank: i64,
}

const PAGE: u64 = 20;

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn seed_sql(backend: Backend, rows: u64) -> String {
    match backend {
        Backend::Postgres => format!(
            "INSERT INTO entry (id, name, rank) \
             SELECT g, 'name ' || g, (g::bigint * 7919) % {rows} FROM generate_series(1, {rows}) g; \
             ANALYZE entry"
        ),
        _ => format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) \
             INSERT INTO entry (id, name, rank) SELECT x, 'name ' || x, (x * 7919) % {rows} FROM c; \
             ANALYZE"
        ),
    }
}

/// One backend's measurements: (rows, library, count + page, window).
async fn measure(backend: Backend, url: &str) -> Vec<(u64, Duration, Duration, Duration)> {
    let sizes: &[u64] = match quick() {
        true => &[1_000, 10_000],
        false => &[1_000, 100_000, 1_000_000],
    };
    let rounds = if quick() { 15 } else { 41 };
    let figment = Figment::from(rocket::Config::default())
        .merge(Serialized::default("databases.default.url", url))
        .merge(Serialized::default("databases.default.create_all", true));
    let alchemy = Alchemy::open(&figment, &[Entry::TABLE])
        .await
        .expect("open the database");
    let window =
        "SELECT id, name, rank, COUNT(*) OVER() AS total FROM entry ORDER BY rank, id LIMIT 20";
    let count = "SELECT COUNT(*) FROM entry";
    let page = "SELECT id, name, rank FROM entry ORDER BY rank, id LIMIT 20";
    let mut out = Vec::new();
    for &rows in sizes {
        let session = alchemy.session("default").unwrap();
        sqlx_execute(&alchemy, "DELETE FROM entry").await;
        sqlx_execute(&alchemy, &seed_sql(backend, rows)).await;
        let filters = [
            Filter::order_by(Entry::RANK, SortOrder::Asc),
            Filter::limit_offset(PAGE, 0),
        ];
        let (mut lib, mut two, mut win) = (Vec::new(), Vec::new(), Vec::new());
        // Warm-up rounds: every pooled connection prepares its statements once.
        const WARM_UP: usize = 16;
        for round in 0..rounds + WARM_UP {
            let start = Instant::now();
            let (items, total) = Repository::<Entry>::on(&session)
                .unwrap()
                .list_and_count(&filters)
                .await
                .unwrap();
            session.commit().await.unwrap();
            let t_lib = start.elapsed();
            assert_eq!((items.len() as u64, total), (PAGE, rows));

            let start = Instant::now();
            let total = scalar(&alchemy, count).await;
            let n = rows_of(&alchemy, page).await;
            let t_two = start.elapsed();
            assert_eq!((n, total), (PAGE, rows));

            if round >= WARM_UP {
                lib.push(t_lib);
                two.push(t_two);
            }
        }
        // The window query after the others: at 10^5 rows and more it takes long enough to
        // disturb whatever runs right after it.
        for _ in 0..(rounds / 4).max(5) {
            let start = Instant::now();
            let n = rows_of(&alchemy, window).await;
            win.push(start.elapsed());
            assert_eq!(n, PAGE);
        }
        out.push((rows, median(lib), median(two), median(win)));
        eprintln!("{backend}: {rows} rows measured");
    }
    alchemy.close().await;
    out
}

async fn sqlx_execute(alchemy: &Alchemy, sql: &str) {
    let sql = AssertSqlSafe(sql.to_string());
    match alchemy.pool("default").unwrap() {
        rocket_alchemy::BindPool::Sqlite(pool) => drop(pool.execute(sql).await.unwrap()),
        rocket_alchemy::BindPool::Postgres(pool) => drop(pool.execute(sql).await.unwrap()),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

async fn scalar(alchemy: &Alchemy, sql: &'static str) -> u64 {
    let n: i64 = match alchemy.pool("default").unwrap() {
        rocket_alchemy::BindPool::Sqlite(pool) => {
            sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
        }
        rocket_alchemy::BindPool::Postgres(pool) => {
            sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    };
    n as u64
}

async fn rows_of(alchemy: &Alchemy, sql: &'static str) -> u64 {
    match alchemy.pool("default").unwrap() {
        rocket_alchemy::BindPool::Sqlite(pool) => {
            sqlx::query(sql).fetch_all(pool).await.unwrap().len() as u64
        }
        rocket_alchemy::BindPool::Postgres(pool) => {
            sqlx::query(sql).fetch_all(pool).await.unwrap().len() as u64
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

fn postgres_admin() -> String {
    std::env::var("BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_database(admin: &str, db: &str) -> String {
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let root = match base.rfind('/') {
        Some(i) if i > base.find("://").map(|j| j + 2).unwrap_or(0) => &base[..i],
        _ => base,
    };
    match query {
        "" => format!("{root}/{db}"),
        q => format!("{root}/{db}?{q}"),
    }
}

fn main() {
    let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("ra_list_count_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = measure(
            Backend::Sqlite,
            &format!("sqlite://{}", dir.join("list.db").display()),
        )
        .await;
        let _ = std::fs::remove_dir_all(&dir);

        let admin = postgres_admin();
        let name = format!("ra_bench_list_count_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL for the bench (BENCH_POSTGRES_URL)");
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        let postgres = measure(Backend::Postgres, &with_database(&admin, &name)).await;
        conn.execute(AssertSqlSafe(format!("DROP DATABASE \"{name}\" WITH (FORCE)")))
            .await
            .unwrap();

        println!("\nFirst page ({PAGE} rows, ordered by an indexed column) and total; median per request\n");
        println!("| backend | rows | `list_and_count` | `count(*)` + page, by hand | `COUNT(*) OVER()` (before) |");
        println!("|---|---|---|---|---|");
        for (backend, results) in [("SQLite", sqlite), ("PostgreSQL", postgres)] {
            for (rows, lib, two, win) in results {
                println!(
                    "| {backend} | {rows} | {} | {} | {} |",
                    micros(lib),
                    micros(two),
                    micros(win)
                );
            }
        }
    });
}
