//! The test kit (feature `testing`): test your own Rocket app against real databases, each
//! test on databases of its own, in parallel, with fixtures and a statement budget.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")] mod inner {
//! use rocket::figment::Figment;
//! use rocket::http::Status;
//! use rocket::{Build, Rocket};
//! use rocket_alchemy::testing::{TestApp, TestKit};
//!
//! // The function your `main` calls with `rocket::Config::figment()`.
//! fn app(figment: Figment) -> Rocket<Build> {
//!     rocket::custom(figment).attach(rocket_alchemy::Alchemy::fairing())
//! }
//!
//! static KIT: TestKit = TestKit::new(app);
//!
//! // One test per backend: `lists_nothing::sqlite`, `::postgres`, `::pgbouncer`, `::mysql`.
//! rocket_alchemy::test_on_backends!(KIT => lists_nothing);
//!
//! async fn lists_nothing(app: TestApp) {
//!     let response = app.get("/authors").dispatch().await;
//!     assert_eq!(response.status(), Status::Ok);
//!     assert!(app.statements(&response, "default") <= 2, "N+1 on GET /authors");
//! }
//! # }
//! ```
//!
//! * **Servers.** SQLite needs nothing. PostgreSQL and MySQL/MariaDB tests run when
//!   `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` name a server where the user may create
//!   databases (`postgres://postgres@127.0.0.1/postgres`); the PgBouncer column needs
//!   `TEST_PGBOUNCER_URL` too. A target that is not configured is skipped with a
//!   `SKIPPED …` line on stderr — with `CI=true` it fails the test instead.
//! * **Isolation.** Every bind of the app gets a database of its own per test, copied from a
//!   template that is built once per test binary and backend: the template is made by
//!   igniting the app on empty databases, so the schema is exactly what the fairing makes of
//!   your models ([`SchemaSource::CreateAll`]) or migrations ([`SchemaSource::Migrations`]).
//!
//!   | backend | copy | per test | trade-off |
//!   |---|---|---|---|
//!   | SQLite | file copy | a file in the temp dir | none known |
//!   | PostgreSQL | `CREATE DATABASE … TEMPLATE` | a database | a few ms of server I/O |
//!   | MySQL / MariaDB | `SHOW CREATE TABLE` replayed, rows copied | a database | base tables only (no views, triggers, routines) |
//!
//!   The copies are real databases reached over real connections, so commit modes behave
//!   as in production: what a request commits is seen by the next request of the same test,
//!   what it rolls back is not; the test kit adds no outer transaction or savepoint that the
//!   app could observe. `BENCHMARKS.md` gives the measured setup + teardown cost per test.
//! * **Statement budget.** [`TestApp::statements`] is the number of statements a request ran
//!   on a bind (the `X-Db-Statements` header the kit turns on with `statement_header`).
//! * **Fixtures.** [`TestApp::load_fixtures`] loads what `database dump-data` wrote.
//! * **Clean-up.** Databases are dropped with the [`TestApp`]. Templates live as long as
//!   the test binary; the next test binary to build its templates drops the databases and
//!   files of runs that have ended (on a server of this machine) or are older than two hours.

mod app;
mod database;
mod kit;

pub use app::TestApp;
pub use database::{TestDatabase, TestTarget, MYSQL_URL_ENV, PGBOUNCER_URL_ENV, POSTGRES_URL_ENV};
pub use kit::{SchemaSource, TestKit};

pub(crate) use kit::record_launch_error;

/// Runs a test's future on a multi-threaded runtime (what [`test_on_backends!`] expands
/// to; like `#[rocket::async_test]` with more than one worker).
#[doc(hidden)]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// Declares, for each `async fn name(app: TestApp)`, a module `name` with one `#[test]` per
/// [`TestTarget`] (`sqlite`, `postgres`, `pgbouncer`, `mysql`) that starts the kit's app on
/// that target and runs it (skipped when the target is not configured, see the
/// [module docs](crate::testing)). `with = f` changes each test's configuration first
/// (`f: fn(Figment) -> Figment`, as in [`TestKit::start_with`]).
///
/// ```no_run
/// # #[cfg(feature = "sqlite")] mod inner {
/// # fn app(f: rocket::figment::Figment) -> rocket::Rocket<rocket::Build> { rocket::custom(f) }
/// use rocket_alchemy::testing::{TestApp, TestKit};
///
/// static KIT: TestKit = TestKit::new(app);
/// rocket_alchemy::test_on_backends!(KIT => health_is_ok);
///
/// async fn health_is_ok(app: TestApp) {
///     assert_eq!(app.get("/health").dispatch().await.status().code, 200);
/// }
/// # }
/// ```
#[macro_export]
macro_rules! test_on_backends {
    ($kit:expr => $($name:ident),+ $(,)?) => {
        $crate::test_on_backends!($kit, with = ::std::convert::identity => $($name),+);
    };
    ($kit:expr, with = $configure:expr => $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::test_on_backends!(@one $kit, $configure, $name, sqlite, Sqlite);
            $crate::test_on_backends!(@one $kit, $configure, $name, postgres, Postgres);
            $crate::test_on_backends!(@one $kit, $configure, $name, pgbouncer, PgBouncer);
            $crate::test_on_backends!(@one $kit, $configure, $name, mysql, MySql);
        }
    )+};
    (@one $kit:expr, $configure:expr, $name:ident, $test:ident, $target:ident) => {
        #[test]
        fn $test() {
            $crate::testing::block_on(async {
                let target = $crate::testing::TestTarget::$target;
                if let Some(app) = $kit.start_with(target, $configure).await {
                    super::$name(app).await;
                }
            })
        }
    };
}
