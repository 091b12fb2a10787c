//! [`TestDatabase`]: a database that belongs to one test, and the servers it lives on.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Backend, RedactedUrl};
use crate::driver::scratch::Scratch;

/// The admin URL of the PostgreSQL server the kit creates test databases on.
pub const POSTGRES_URL_ENV: &str = "TEST_POSTGRES_URL";
/// The admin URL of the MySQL / MariaDB server the kit creates test databases on.
pub const MYSQL_URL_ENV: &str = "TEST_MYSQL_URL";
/// A PgBouncer (transaction pooling) in front of the `TEST_POSTGRES_URL` server.
pub const PGBOUNCER_URL_ENV: &str = "TEST_PGBOUNCER_URL";

/// The prefix of every database (and SQLite file) the kit creates.
pub(crate) const PREFIX: &str = "ra_kit_";
/// Scratch databases older than this are dropped when a test binary builds its templates.
const STALE_AFTER: Duration = Duration::from_secs(2 * 3600);

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Where a test's databases live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TestTarget {
    /// A SQLite file in the system's temporary directory.
    Sqlite,
    /// A database on the `TEST_POSTGRES_URL` server.
    Postgres,
    /// A database on the `TEST_POSTGRES_URL` server, reached by the app through the
    /// `TEST_PGBOUNCER_URL` PgBouncer, with `pooler = "transaction"` and the server's own URL
    /// as `direct_url`.
    PgBouncer,
    /// A database on the `TEST_MYSQL_URL` server (MySQL or MariaDB).
    MySql,
}

impl TestTarget {
    /// Every target, in the order the kit's macro runs them.
    pub const ALL: [TestTarget; 4] = [
        TestTarget::Sqlite,
        TestTarget::Postgres,
        TestTarget::PgBouncer,
        TestTarget::MySql,
    ];

    /// The database engine.
    pub fn backend(self) -> Backend {
        match self {
            TestTarget::Sqlite => Backend::Sqlite,
            TestTarget::Postgres | TestTarget::PgBouncer => Backend::Postgres,
            TestTarget::MySql => Backend::MySql,
        }
    }

    /// Whether the app reaches the database through a transaction pooler.
    pub fn pooled(self) -> bool {
        self == TestTarget::PgBouncer
    }

    /// The environment variables naming the server(s) of this target.
    pub fn env(self) -> &'static [&'static str] {
        match self {
            TestTarget::Sqlite => &[],
            TestTarget::Postgres => &[POSTGRES_URL_ENV],
            TestTarget::PgBouncer => &[POSTGRES_URL_ENV, PGBOUNCER_URL_ENV],
            TestTarget::MySql => &[MYSQL_URL_ENV],
        }
    }
}

impl From<Backend> for TestTarget {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => TestTarget::Sqlite,
            Backend::Postgres => TestTarget::Postgres,
            Backend::MySql => TestTarget::MySql,
        }
    }
}

impl fmt::Display for TestTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TestTarget::Sqlite => "sqlite",
            TestTarget::Postgres => "postgres",
            TestTarget::PgBouncer => "pgbouncer",
            TestTarget::MySql => "mysql",
        })
    }
}

/// With `CI=true` (or `1`) a target whose server is not configured fails the test instead
/// of skipping it.
pub(crate) fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The servers of a target: `Ok(None)` when not configured (the test is skipped, saying
/// so), an error message when it must run and cannot.
#[derive(Debug, Clone)]
pub(crate) struct Servers {
    pub(crate) target: TestTarget,
    /// Admin URL of the server (unused for SQLite).
    pub(crate) admin: String,
    /// The PgBouncer URL (any database name; replaced per test).
    pub(crate) pooler: Option<String>,
}

impl Servers {
    /// The servers of `target` from the environment. `Ok(None)`: skip (with a notice
    /// printed); `Err`: the test must fail with this message.
    pub(crate) fn from_env(target: TestTarget, test: &str) -> Result<Option<Servers>, String> {
        if !target.backend().is_enabled() {
            skipped(&format!(
                "SKIPPED {test} on {target}: rocket_alchemy's `{}` feature is disabled",
                target.backend()
            ));
            return Ok(None);
        }
        let mut urls = Vec::new();
        for env in target.env() {
            match std::env::var(env) {
                Ok(url) if !url.trim().is_empty() => urls.push(url.trim().to_string()),
                _ if ci() => {
                    return Err(format!(
                        "CI=true but {env} is not set: the {target} tests cannot run; set {env} \
                         to an admin URL of a server the tests may create databases on"
                    ))
                }
                _ => {
                    skipped(&format!(
                        "SKIPPED {test} on {target}: set {env} to run it (CI=true makes this a failure)"
                    ));
                    return Ok(None);
                }
            }
        }
        let mut urls = urls.into_iter();
        Ok(Some(Servers {
            target,
            admin: urls.next().unwrap_or_default(),
            pooler: urls.next(),
        }))
    }

    /// A scratch database named `name` on these servers.
    pub(crate) fn scratch(&self, name: &str) -> Scratch {
        Scratch {
            backend: self.target.backend(),
            admin: self.admin.clone(),
            name: match self.target {
                TestTarget::Sqlite => sqlite_dir()
                    .join(format!("{name}.db"))
                    .display()
                    .to_string(),
                _ => name.to_string(),
            },
        }
    }

    /// Why an operation on the server failed, naming its (redacted) URL and variable.
    pub(crate) fn unreachable(&self, what: &str, error: &dyn fmt::Display) -> String {
        let (env, url) = match self.target {
            TestTarget::Sqlite => {
                return format!("{what} failed in {}: {error}", sqlite_dir().display())
            }
            TestTarget::MySql => (MYSQL_URL_ENV, &self.admin),
            _ => (POSTGRES_URL_ENV, &self.admin),
        };
        let url = RedactedUrl::new(url.as_str());
        let error = crate::config::scrub(&error.to_string(), &self.admin);
        format!(
            "{what} failed on the {} server at {url} ({env}): {error}; is it running, and may \
             this user create databases? Set {env} to an admin URL that can",
            self.target.backend()
        )
    }

    /// [`Servers::drop_stale`], the first time this process asks for a target.
    pub(crate) async fn drop_stale_once(&self) {
        use rocket::tokio::sync::OnceCell;
        static DONE: [OnceCell<()>; 4] = [const { OnceCell::const_new() }; 4];
        let i = TestTarget::ALL
            .iter()
            .position(|t| *t == self.target)
            .unwrap_or(0);
        DONE[i].get_or_init(|| self.drop_stale()).await;
    }

    /// Drops scratch databases (and SQLite files) left by test runs that ended without
    /// cleaning up: those of processes that no longer run on this machine (when the server
    /// is on this machine), and any older than two hours.
    pub(crate) async fn drop_stale(&self) {
        let now = unix_now();
        let local = self.target == TestTarget::Sqlite || is_loopback(&self.admin);
        let stale = |name: &str| {
            let mut parts = name.strip_prefix(PREFIX).unwrap_or("").split('_');
            let secs = parts.next().and_then(|s| s.parse::<u64>().ok());
            let pid = parts.next().and_then(|s| s.parse::<u32>().ok());
            let (Some(secs), Some(pid)) = (secs, pid) else {
                return false;
            };
            if pid == std::process::id() {
                return false;
            }
            now.saturating_sub(secs) > STALE_AFTER.as_secs()
                || (local && process_alive(pid) == Some(false))
        };
        if self.target == TestTarget::Sqlite {
            if let Ok(entries) = std::fs::read_dir(sqlite_dir()) {
                for entry in entries.flatten() {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if stale(&file) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
            return;
        }
        let backend = self.target.backend();
        if let Ok(names) = Scratch::list(backend, &self.admin, PREFIX).await {
            for name in names.into_iter().filter(|n| stale(n)) {
                self.scratch(&name).drop_blocking();
            }
        }
    }
}

/// Whether the server of `url` is on this machine (a loopback host).
fn is_loopback(url: &str) -> bool {
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
        .unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

/// Whether process `pid` runs on this machine; `None` where that cannot be told.
fn process_alive(pid: u32) -> Option<bool> {
    let proc = std::path::Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| proc.join(pid.to_string()).exists())
}

/// Writes a `SKIPPED …` line straight to the process's stderr, in one write: the test
/// harness captures `eprintln!` of passing tests, so the notice would never show (nor could
/// a script count it).
fn skipped(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The folder of the kit's SQLite files.
fn sqlite_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("rocket_alchemy_kit")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh, unique scratch name: the prefix, the creation time (for stale clean-up), the
/// process, a counter and up to 20 characters of `label`.
pub(crate) fn unique_name(label: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    label.truncate(20);
    format!("{PREFIX}{}_{}_{n}_{label}", unix_now(), std::process::id())
}

/// `url` with its database (path) replaced by `db`, query kept.
pub(crate) fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..path_start], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database that belongs to one test: created empty ([`TestDatabase::create`]) or as a
/// copy of the kit's template (by [`TestKit`](super::TestKit)), and dropped — its files
/// removed — when this value is dropped.
///
/// ```no_run
/// # async fn f() {
/// use rocket_alchemy::testing::{TestDatabase, TestTarget};
///
/// // `None`: PostgreSQL is not configured (TEST_POSTGRES_URL) and CI is not set: skipped.
/// if let Some(db) = TestDatabase::create(TestTarget::Postgres, "my_test").await {
///     let url = db.url(); // the app's `databases.<key>.url`, or your own pool's
///     # let _ = url;
///     // … the database is dropped with `db` …
/// }
/// # }
/// ```
pub struct TestDatabase {
    target: TestTarget,
    url: String,
    direct: Option<String>,
    scratch: Scratch,
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TestDatabase({} {})", self.target, self.name())
    }
}

impl TestDatabase {
    /// A new empty database on `target`, named after `test`; `None` (with a notice on
    /// stderr) when the target's server is not configured and `CI` is not `true`.
    ///
    /// # Panics
    /// With a message naming the environment variable when the server must be used and
    /// cannot be (not configured with `CI=true`, unreachable, or refusing `CREATE DATABASE`).
    pub async fn create(target: TestTarget, test: &str) -> Option<TestDatabase> {
        let servers = match Servers::from_env(target, test) {
            Ok(servers) => servers?,
            Err(message) => panic!("{message}"),
        };
        servers.drop_stale_once().await;
        let db = TestDatabase::on(&servers, &unique_name(test));
        if let Err(e) = db.scratch.create().await {
            panic!("{}", servers.unreachable("CREATE DATABASE", &e));
        }
        Some(db)
    }

    /// The handle of database `name` on `servers` (not created here).
    pub(crate) fn on(servers: &Servers, name: &str) -> TestDatabase {
        let scratch = servers.scratch(name);
        let server_url = match servers.target {
            TestTarget::Sqlite => format!("sqlite://{}", scratch.name),
            _ => with_database(&servers.admin, name),
        };
        let (url, direct) = match &servers.pooler {
            Some(pooler) => (with_database(pooler, name), Some(server_url)),
            None => (server_url, None),
        };
        if servers.target == TestTarget::Sqlite {
            let _ = std::fs::create_dir_all(sqlite_dir());
        }
        TestDatabase {
            target: servers.target,
            url,
            direct,
            scratch,
        }
    }

    pub(crate) fn scratch(&self) -> &Scratch {
        &self.scratch
    }

    /// Where it lives.
    pub fn target(&self) -> TestTarget {
        self.target
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.target.backend()
    }

    /// The URL the app uses (through PgBouncer for [`TestTarget::PgBouncer`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Through a transaction pooler, the server's own URL of the same database.
    pub fn direct_url(&self) -> Option<&str> {
        self.direct.as_deref()
    }

    /// The URL for an independent connection, to check what the app really committed: the
    /// server's own, never through the pooler.
    pub fn probe_url(&self) -> &str {
        self.direct.as_deref().unwrap_or(&self.url)
    }

    /// The database's unique name (SQLite: the file's path).
    pub fn name(&self) -> &str {
        &self.scratch.name
    }
}

impl Drop for TestDatabase {
    /// Removes a SQLite file at once; a server's database is dropped in the background
    /// (the test does not wait for it; see [`TestKit`](super::TestKit)'s clean-up).
    fn drop(&mut self) {
        match self.target {
            TestTarget::Sqlite => self.scratch.drop_blocking(),
            _ => {
                self.scratch.drop_in_background();
            }
        }
    }
}
