//! Load test over HTTP: the `authors` example (rocket_alchemy) against `authors_raw` (the
//! same endpoints written by hand on Rocket and sqlx), with
//! [wrk](https://github.com/wg/wrk), on SQLite and PostgreSQL.
//!
//! Run it through the script, which installs wrk if needed, starts the local PostgreSQL and
//! builds both release binaries first:
//!
//! ```sh
//! scripts/bench.sh            # full run: 10 s per run, 3 library/baseline pairs per cell
//! scripts/bench.sh --smoke    # 2 s per run, 1 pair, 32 connections (+ one 256 run)
//! BENCH_SECS=5 BENCH_PAIRS=2 BENCH_BACKENDS=sqlite scripts/bench.sh --smoke   # overrides
//! BENCH_SQLITE_SETTINGS='read_snapshot=false' scripts/bench.sh   # a library option on SQLite
//! ```
//!
//! For each backend, both servers run at once (`target/release/examples/authors` and
//! `authors_raw`, on free ports of 127.0.0.1, `ROCKET_LOG_LEVEL=off`, Rocket's default
//! workers) with fresh databases passed through `ROCKET_DATABASES` (the library gets
//! `commit_mode = "autocommit"` and `create_all = true` for both binds): SQLite files under
//! `target/bench/`, or PostgreSQL databases `ra_bench_<app>_<bind>` created on the server
//! of `BENCH_POSTGRES_URL`, else `TEST_POSTGRES_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`, and dropped at the end. Each app is
//! seeded with 1,000 authors through `POST /authors/batch`.
//!
//! Every cell (backend × connection count × endpoint) runs wrk alternately on the library
//! and on the baseline (`wrk -t2 -c<N> -d<secs>s --latency --timeout 10s -s
//! benches/load/load.lua`), which counts responses by class and prints one JSON line. The
//! peak RSS of the measured server is read from `/proc/<pid>/status` (`VmHWM`, reset
//! through `clear_refs` before each run). Then a mixed run per app: GET by id on 16
//! connections alone, then the same with 16 connections of `POST /authors` at the same
//! time.
//!
//! The markdown report goes to stdout and `target/bench/load-report.md`; every wrk
//! summary to `target/bench/load-runs.jsonl`; server output to `target/bench/logs/`.
//!
//! Two more pairs measure deployments of the library itself on PostgreSQL: `pgbouncer`
//! (through PgBouncer in transaction mode with `pooler = "transaction"` ÷ connected
//! directly) and `replica` (with a hot-standby read replica ÷ on the primary alone); both
//! sides run the library, on `TEST_PGBOUNCER_URL` / `TEST_REPLICA_URL`'s servers
//! (127.0.0.1:6432 and :5433 by default; `scripts/bench.sh` starts them). `BENCH_POOLER`
//! sets the `pooler` of the library side through PgBouncer (default `transaction`). A last
//! pair, `pgbouncer_raw`, runs the hand-written baseline through PgBouncer (with its
//! `pooler = "transaction"`: unnamed statements, each in a transaction) ÷ the baseline
//! direct: the pooler's cost on this machine to code that is not the library's.
//!
//! Nothing here asserts timings: the run fails only when a server does not start or dies,
//! seeding fails, or wrk does not run.
//! `BENCH_BACKENDS=sqlite,postgres,pgbouncer,replica,pgbouncer_raw` (any subset) limits the
//! backends.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;
type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(format!($($arg)*).into())
    };
}

/// Authors seeded in each app.
const SEED_AUTHORS: usize = 1_000;
/// Authors per `POST /authors/batch`.
const SEED_CHUNK: usize = 100;
/// Connections of each side of the mixed run.
const MIXED_CONNECTIONS: u32 = 16;

// ---- what is measured --------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Backend {
    Sqlite,
    Postgres,
    /// The library through PgBouncer (transaction mode, `pooler = "transaction"`) against
    /// the library connected directly.
    PgBouncer,
    /// The library with a read replica against the library on the primary alone.
    Replica,
    /// The hand-written baseline through PgBouncer (written for a transaction-mode pooler:
    /// unnamed statements, each in a transaction) against the baseline connected directly:
    /// what the pooler costs code that is not the library's, on this machine.
    PgBouncerRaw,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::PgBouncer => "pgbouncer",
            Backend::Replica => "replica",
            Backend::PgBouncerRaw => "pgbouncer_raw",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::PgBouncer => "PostgreSQL through PgBouncer: library via PgBouncer ÷ library direct",
            Backend::Replica => "PostgreSQL with a read replica: library with replica ÷ library on the primary alone",
            Backend::PgBouncerRaw => "PostgreSQL through PgBouncer, hand-written: baseline via PgBouncer ÷ baseline direct",
        }
    }

    /// The app both sides run when the pair compares two deployments of one app rather
    /// than the library against the hand-written baseline.
    fn one_app(self) -> Option<App> {
        match self {
            Backend::PgBouncer | Backend::Replica => Some(App::Library),
            Backend::PgBouncerRaw => Some(App::Baseline),
            Backend::Sqlite | Backend::Postgres => None,
        }
    }

    fn on_postgres(self) -> bool {
        !matches!(self, Backend::Sqlite)
    }

    /// What the report calls each side.
    fn side(self, app: App) -> &'static str {
        match (self, app) {
            (Backend::PgBouncer | Backend::PgBouncerRaw, App::Library) => "via PgBouncer",
            (Backend::PgBouncer | Backend::PgBouncerRaw, App::Baseline) => "direct",
            (Backend::Replica, App::Library) => "with replica",
            (Backend::Replica, App::Baseline) => "primary only",
            (_, app) => app.name(),
        }
    }
}

/// The server part (`host:port`) of `url`, if it has one.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    Some(
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host),
    )
}

/// `url` reaching `host_port` instead of its own server.
fn with_server(url: &str, host_port: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"));
    format!("{scheme}://{}{host_port}{tail}", user.unwrap_or_default())
}

/// The `pooler` setting of the `pgbouncer` pair's library side: `BENCH_POOLER`, else
/// `transaction`. `none` keeps named prepared statements, which a PgBouncer ≥ 1.21 with
/// `max_prepared_statements` carries across server connections (an experiment: Debian 12's
/// PgBouncer 1.18 cannot).
fn bench_pooler() -> String {
    std::env::var("BENCH_POOLER").unwrap_or_else(|_| "transaction".into())
}

/// PgBouncer's `host:port` (`TEST_PGBOUNCER_URL`, else 127.0.0.1:6432).
fn pgbouncer_server() -> String {
    std::env::var("TEST_PGBOUNCER_URL")
        .ok()
        .and_then(|u| authority_of(&u).map(str::to_string))
        .unwrap_or_else(|| "127.0.0.1:6432".into())
}

/// The replica's `host:port` (`TEST_REPLICA_URL`, else 127.0.0.1:5433).
fn replica_server() -> String {
    std::env::var("TEST_REPLICA_URL")
        .ok()
        .and_then(|u| authority_of(&u).map(str::to_string))
        .unwrap_or_else(|| "127.0.0.1:5433".into())
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum App {
    Library,
    Baseline,
}

const APPS: [App; 2] = [App::Library, App::Baseline];

impl App {
    fn name(self) -> &'static str {
        match self {
            App::Library => "library",
            App::Baseline => "baseline",
        }
    }

    fn example(self) -> &'static str {
        match self {
            App::Library => "authors",
            App::Baseline => "authors_raw",
        }
    }

    /// The example this side runs on `backend`.
    fn example_on(self, backend: Backend) -> &'static str {
        backend.one_app().unwrap_or(self).example()
    }

    /// `ROCKET_DATABASES` for the two database URLs (on the primary, directly), on `backend`.
    fn databases_on(self, backend: Backend, default: &str, audit: &str) -> String {
        let library = |default: &str, audit: &str, extra: &dyn Fn(&str) -> String| {
            format!(
                "{{default={{url=\"{default}\",commit_mode=\"autocommit\",create_all=true{}}},\
                 audit={{url=\"{audit}\",commit_mode=\"autocommit\",create_all=true{}}}}}",
                extra(default),
                extra(audit)
            )
        };
        match (backend, self) {
            (Backend::PgBouncer, App::Library) => {
                let bouncer = pgbouncer_server();
                library(
                    &with_server(default, &bouncer),
                    &with_server(audit, &bouncer),
                    &|direct| format!(",pooler=\"{}\",direct_url=\"{direct}\"", bench_pooler()),
                )
            }
            (Backend::Replica, App::Library) => {
                let replica = replica_server();
                library(default, audit, &|url| {
                    format!(",replicas=[\"{}\"]", with_server(url, &replica))
                })
            }
            (Backend::PgBouncer | Backend::Replica, App::Baseline) => {
                library(default, audit, &|_| String::new())
            }
            (Backend::PgBouncerRaw, App::Library) => {
                let bouncer = pgbouncer_server();
                let via = |url: &str| {
                    format!(
                        "{{url=\"{}\",pooler=\"transaction\"}}",
                        with_server(url, &bouncer)
                    )
                };
                format!("{{default={},audit={}}}", via(default), via(audit))
            }
            (_, app) => app.databases(default, audit),
        }
    }

    /// `ROCKET_DATABASES` for the two database URLs.
    fn databases(self, default: &str, audit: &str) -> String {
        match self {
            App::Library => {
                let extra = sqlite_settings()
                    .filter(|_| default.starts_with("sqlite:"))
                    .map(|extra| format!(",{extra}"))
                    .unwrap_or_default();
                format!(
                    "{{default={{url=\"{default}\",commit_mode=\"autocommit\",create_all=true{extra}}},\
                     audit={{url=\"{audit}\",commit_mode=\"autocommit\",create_all=true{extra}}}}}"
                )
            }
            App::Baseline => {
                format!("{{default={{url=\"{default}\"}},audit={{url=\"{audit}\"}}}}")
            }
        }
    }
}

/// Extra settings of the library's SQLite binds (`BENCH_SQLITE_SETTINGS`, inline-table
/// fields such as `read_snapshot=false`), to measure an option against the same baseline.
fn sqlite_settings() -> Option<String> {
    std::env::var("BENCH_SQLITE_SETTINGS")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Endpoint {
    Health,
    GetById,
    List,
    Post,
}

const ENDPOINTS: [Endpoint; 4] = [
    Endpoint::Health,
    Endpoint::GetById,
    Endpoint::List,
    Endpoint::Post,
];

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::GetById => "get_by_id",
            Endpoint::List => "list",
            Endpoint::Post => "post",
        }
    }

    fn request(self) -> &'static str {
        match self {
            Endpoint::Health => "GET /health",
            Endpoint::GetById => "GET /authors/<random seeded id>",
            Endpoint::List => "GET /authors?pageSize=20",
            Endpoint::Post => "POST /authors",
        }
    }

    /// The URL path given to wrk and the mode of `load.lua`.
    fn wrk_target(self) -> (&'static str, &'static str) {
        match self {
            Endpoint::Health => ("/health", "static"),
            Endpoint::GetById => ("/", "get"),
            Endpoint::List => ("/authors?pageSize=20", "static"),
            Endpoint::Post => ("/", "post"),
        }
    }
}

struct Settings {
    smoke: bool,
    secs: u64,
    pairs: usize,
    /// (endpoint, connections) in the order they run: writes last, so the read cells of
    /// both apps see the same 1,000 seeded rows.
    cells: Vec<(Endpoint, u32)>,
    backends: Vec<Backend>,
    args: Vec<String>,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        // `cargo bench` adds `--bench` to the arguments of every bench target.
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        let mut smoke = false;
        for arg in &args {
            match arg.as_str() {
                "--smoke" => smoke = true,
                other => eprintln!("[load] ignoring argument `{other}`"),
            }
        }
        let backends = match std::env::var("BENCH_BACKENDS") {
            Err(_) => vec![
                Backend::Sqlite,
                Backend::Postgres,
                Backend::PgBouncer,
                Backend::Replica,
                Backend::PgBouncerRaw,
            ],
            Ok(list) => list
                .split(',')
                .map(|name| match name.trim() {
                    "sqlite" => Ok(Backend::Sqlite),
                    "postgres" => Ok(Backend::Postgres),
                    "pgbouncer" => Ok(Backend::PgBouncer),
                    "replica" => Ok(Backend::Replica),
                    "pgbouncer_raw" => Ok(Backend::PgBouncerRaw),
                    other => Err(format!("BENCH_BACKENDS: unknown backend `{other}`")),
                })
                .collect::<Result<_, String>>()?,
        };
        let cells = if smoke {
            vec![
                (Endpoint::Health, 32),
                (Endpoint::GetById, 32),
                (Endpoint::GetById, 256),
                (Endpoint::List, 32),
                (Endpoint::Post, 32),
            ]
        } else {
            ENDPOINTS
                .iter()
                .flat_map(|&e| [(e, 32), (e, 256)])
                .collect()
        };
        let number = |name: &str, default: u64| -> Result<u64> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(value) => match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => bail!("{name}: expected a positive integer, got `{value}`"),
                },
            }
        };
        Ok(Settings {
            smoke,
            secs: number("BENCH_SECS", if smoke { 2 } else { 10 })?,
            pairs: number("BENCH_PAIRS", if smoke { 1 } else { 3 })? as usize,
            cells,
            backends,
            args,
        })
    }
}

/// Where things are.
struct Paths {
    root: PathBuf,
    bench: PathBuf,
    logs: PathBuf,
    examples: PathBuf,
    lua: PathBuf,
}

impl Paths {
    fn new() -> Result<Paths> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { root.join(t) })
            .unwrap_or_else(|| root.join("target"));
        let bench = target.join("bench");
        let logs = bench.join("logs");
        fs::create_dir_all(&logs)?;
        Ok(Paths {
            lua: root.join("benches/load/load.lua"),
            examples: target.join("release/examples"),
            root,
            bench,
            logs,
        })
    }

    fn binary(&self, app: App) -> PathBuf {
        self.examples.join(app.example())
    }
}

// ---- one wrk run -------------------------------------------------------------------------

/// The summary `load.lua` prints, plus the server's peak RSS.
#[derive(Debug, Clone, Default)]
struct Run {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// connect + read + write + timeout.
    socket_errors: u64,
    socket_detail: [u64; 4],
    ok: u64,
    /// 503 with a `Retry-After` header.
    shed: u64,
    /// Other 4xx/5xx by status.
    other: BTreeMap<u16, u64>,
    peak_rss_kib: Option<u64>,
}

impl Run {
    fn errors(&self) -> u64 {
        self.socket_errors + self.other.values().sum::<u64>()
    }

    fn parse(stdout: &str) -> Result<Run> {
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("{\"requests\""))
            .ok_or("wrk printed no summary line (did load.lua's done() run?)")?;
        let v: serde_json::Value = serde_json::from_str(line)?;
        let int = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let e = &v["errors"];
        let socket_detail = [
            int(&e["connect"]),
            int(&e["read"]),
            int(&e["write"]),
            int(&e["timeout"]),
        ];
        let other = v["status"]["other"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, n)| Some((k.parse().ok()?, int(n))))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Run {
            requests: int(&v["requests"]),
            rps: v["rps"].as_f64().unwrap_or(0.0),
            p50_ms: v["p50_ms"].as_f64().unwrap_or(0.0),
            p99_ms: v["p99_ms"].as_f64().unwrap_or(0.0),
            socket_errors: socket_detail.iter().sum(),
            socket_detail,
            ok: int(&v["status"]["ok"]),
            shed: int(&v["status"]["shed_503"]),
            other,
            peak_rss_kib: None,
        })
    }
}

/// A wrk process under way.
struct Wrk {
    child: Child,
    what: String,
}

impl Wrk {
    fn spawn(
        paths: &Paths,
        port: u16,
        endpoint: Endpoint,
        connections: u32,
        secs: u64,
        ids: &Path,
    ) -> Result<Wrk> {
        let (path, mode) = endpoint.wrk_target();
        let mut command = Command::new("wrk");
        command
            .args(["-t2", &format!("-c{connections}"), &format!("-d{secs}s")])
            .args(["--latency", "--timeout", "10s", "-s"])
            .arg(&paths.lua)
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .args(["--", mode])
            .arg(ids)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("wrk {} -c{connections} on port {port}", endpoint.name());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run wrk: {e} (scripts/bench.sh installs it)"))?;
        Ok(Wrk { child, what })
    }

    fn finish(self) -> Result<Run> {
        let output = self.child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "{} failed ({}):\n{}{}",
                self.what,
                output.status,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Run::parse(&stdout).map_err(|e| format!("{}: {e}\n{stdout}", self.what).into())
    }
}

// ---- servers -----------------------------------------------------------------------------

/// A running server; killed when dropped.
struct Server {
    app: App,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(
        paths: &Paths,
        app: App,
        backend: Backend,
        default_url: &str,
        audit_url: &str,
    ) -> Result<Server> {
        let binary = paths.examples.join(app.example_on(backend));
        if !binary.is_file() {
            bail!(
                "{} is missing: run `cargo build --release --example authors --example authors_raw` \
                 (scripts/bench.sh does)",
                binary.display()
            );
        }
        let port = free_port()?;
        let log = paths
            .logs
            .join(format!("{}-{}.log", backend.name(), app.name()));
        let out = File::create(&log)?;
        let mut command = Command::new(&binary);
        // Only the settings below: no ROCKET_* variable of the caller's shell.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ROCKET_") {
                command.env_remove(key);
            }
        }
        let child = command
            .current_dir(&paths.bench)
            // No Rocket.toml: only the environment configures the app.
            .env("ROCKET_CONFIG", paths.bench.join("no-Rocket.toml"))
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_LOG_LEVEL", "off")
            .env("ROCKET_CLI_COLORS", "false")
            .env(
                "ROCKET_DATABASES",
                app.databases_on(backend, default_url, audit_url),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut server = Server {
            app,
            child,
            port,
            log,
        };
        server.wait_healthy(Duration::from_secs(60))?;
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the {} server exited ({status}); {}:\n{}",
                self.app.name(),
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    fn wait_healthy(&mut self, within: Duration) -> Result<()> {
        let start = Instant::now();
        let mut last = String::from("no answer");
        while start.elapsed() < within {
            self.check_alive()?;
            match http(self.port, "GET", "/health", None) {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last = format!("{status} {body}"),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "the {} server did not answer GET /health 200 within {within:?} (last: {last}); {}:\n{}",
            self.app.name(),
            self.log.display(),
            self.log_tail()
        )
    }

    /// Resets the peak RSS (`VmHWM`).
    fn reset_peak_rss(&self) {
        let _ = fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    fn peak_rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Seeds `SEED_AUTHORS` authors; returns their ids.
    fn seed(&self) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(SEED_AUTHORS);
        for chunk in 0..SEED_AUTHORS.div_ceil(SEED_CHUNK) {
            let items: Vec<serde_json::Value> = (0..SEED_CHUNK)
                .map(|i| chunk * SEED_CHUNK + i)
                .take_while(|n| *n < SEED_AUTHORS)
                .map(|n| {
                    serde_json::json!({
                        "name": format!("Seed author {n}"),
                        "dob": if n % 2 == 0 { Some(format!("19{:02}-01-{:02}", n % 100, n % 28 + 1)) } else { None },
                    })
                })
                .collect();
            let body = serde_json::to_string(&items)?;
            let (status, response) = http(self.port, "POST", "/authors/batch", Some(&body))?;
            if status != 201 {
                bail!(
                    "seeding the {} app: POST /authors/batch answered {status}: {response}",
                    self.app.name()
                );
            }
            let created: Vec<serde_json::Value> = serde_json::from_str(&response)
                .map_err(|e| format!("seeding the {}: {e}: {response}", self.app.name()))?;
            if created.len() != items.len() {
                bail!(
                    "seeding the {}: {} authors sent, {} returned",
                    self.app.name(),
                    items.len(),
                    created.len()
                );
            }
            for author in created {
                match author["id"].as_str() {
                    Some(id) => ids.push(id.to_string()),
                    None => bail!("seeding the {}: an author without id", self.app.name()),
                }
            }
        }
        // Every seeded author must be readable.
        let probe = format!("/authors/{}", ids[ids.len() / 2]);
        match http(self.port, "GET", &probe, None)? {
            (200, _) => Ok(ids),
            (status, body) => bail!(
                "seeding the {}: GET {probe} answered {status}: {body}",
                self.app.name()
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, content) = text
        .split_once("\r\n\r\n")
        .ok_or("incomplete HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let content = if chunked {
        dechunk(content)?
    } else {
        content.to_string()
    };
    Ok((status, content))
}

fn dechunk(mut rest: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(after.get(..size).ok_or("short chunk")?);
        rest = after.get(size + 2..).ok_or("short chunk")?;
    }
}

// ---- databases ---------------------------------------------------------------------------

/// SQLite files of one run; removed when dropped.
struct SqliteFiles(Vec<PathBuf>);

impl SqliteFiles {
    fn new(paths: &Paths, app: App) -> Result<(SqliteFiles, String, String)> {
        let mut files = Vec::new();
        let mut urls = Vec::new();
        for bind in ["default", "audit"] {
            let db = paths.bench.join(format!("sqlite-{}-{bind}.db", app.name()));
            for suffix in ["", "-wal", "-shm"] {
                let file = PathBuf::from(format!("{}{suffix}", db.display()));
                let _ = fs::remove_file(&file);
                files.push(file);
            }
            urls.push(format!("sqlite://{}", db.display()));
        }
        let audit = urls.pop().expect("two urls");
        let default = urls.pop().expect("two urls");
        Ok((SqliteFiles(files), default, audit))
    }
}

impl Drop for SqliteFiles {
    fn drop(&mut self) {
        for file in &self.0 {
            let _ = fs::remove_file(file);
        }
    }
}

/// The PostgreSQL server: an admin URL and a runtime for sqlx.
struct Postgres {
    admin_url: String,
    rt: tokio::runtime::Runtime,
}

impl Postgres {
    fn new() -> Result<Postgres> {
        let admin_url = std::env::var("BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Postgres { admin_url, rt })
    }

    fn execute(&self, sql: String) -> Result<()> {
        use sqlx::Connection;
        self.rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    fn version(&self) -> Option<String> {
        use sqlx::Connection;
        self.rt
            .block_on(async {
                let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
                let (v,): (String,) = sqlx::query_as("SHOW server_version")
                    .fetch_one(&mut conn)
                    .await?;
                Ok::<_, sqlx::Error>(v)
            })
            .ok()
    }

    /// `url` with its database replaced by `database`.
    fn url_of(&self, database: &str) -> Result<String> {
        let (scheme, rest) = self
            .admin_url
            .split_once("://")
            .ok_or("the PostgreSQL URL has no scheme")?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, format!("?{query}")),
            None => (rest, String::new()),
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        Ok(format!("{scheme}://{authority}/{database}{query}"))
    }

    /// Creates fresh databases for `app`'s two binds; dropped with the guard.
    fn databases(&self, app: App) -> Result<(PgDatabases<'_>, String, String)> {
        let mut guard = PgDatabases {
            server: self,
            names: Vec::new(),
        };
        for bind in ["default", "audit"] {
            let name = format!("ra_bench_{}_{bind}", app.name());
            // A database left by an interrupted run first.
            self.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .and_then(|()| self.execute(format!("CREATE DATABASE \"{name}\"")))
                .map_err(|e| format!("PostgreSQL at {}: {e}", self.redacted_url()))?;
            guard.names.push(name);
        }
        let default = self.url_of(&guard.names[0])?;
        let audit = self.url_of(&guard.names[1])?;
        Ok((guard, default, audit))
    }

    /// The admin URL without its password.
    fn redacted_url(&self) -> String {
        let url = &self.admin_url;
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.clone();
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        match rest[..authority_end].rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
            }
            _ => url.clone(),
        }
    }
}

/// Databases dropped (`WITH (FORCE)`) when the guard is.
struct PgDatabases<'a> {
    server: &'a Postgres,
    names: Vec<String>,
}

impl Drop for PgDatabases<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = self
                .server
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            {
                eprintln!("[load] warning: could not drop database {name}: {e}");
            }
        }
    }
}

// ---- the run -----------------------------------------------------------------------------

/// The runs of one cell.
struct Cell {
    backend: Backend,
    endpoint: Endpoint,
    connections: u32,
    runs: BTreeMap<App, Vec<Run>>,
}

/// The mixed run of one app.
struct Mixed {
    backend: Backend,
    app: App,
    alone: Run,
    readers: Run,
    writers: Run,
}

struct Bench {
    settings: Settings,
    paths: Paths,
    runs_log: File,
    cells: Vec<Cell>,
    mixed: Vec<Mixed>,
    postgres_version: Option<String>,
}

impl Bench {
    fn record(&mut self, backend: Backend, what: &str, app: App, run: &Run) -> Result<()> {
        writeln!(
            self.runs_log,
            "{}",
            serde_json::json!({
                "backend": backend.name(),
                "what": what,
                "app": app.name(),
                "requests": run.requests,
                "rps": run.rps,
                "p50_ms": run.p50_ms,
                "p99_ms": run.p99_ms,
                "socket_errors": run.socket_detail,
                "ok": run.ok,
                "shed_503": run.shed,
                "other": run.other.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
                "peak_rss_kib": run.peak_rss_kib,
            })
        )?;
        eprintln!(
            "[load] {:<8} {:<22} {:<8} {:>9.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {}  503 {}",
            backend.name(),
            what,
            app.name(),
            run.rps,
            run.p50_ms,
            run.p99_ms,
            run.errors(),
            run.shed
        );
        Ok(())
    }

    /// One wrk run against `server`, with its peak RSS.
    fn measure(
        &self,
        server: &mut Server,
        endpoint: Endpoint,
        connections: u32,
        ids: &Path,
    ) -> Result<Run> {
        server.reset_peak_rss();
        let wrk = Wrk::spawn(
            &self.paths,
            server.port,
            endpoint,
            connections,
            self.settings.secs,
            ids,
        )?;
        let mut run = wrk.finish()?;
        run.peak_rss_kib = server.peak_rss_kib();
        server.check_alive()?;
        Ok(run)
    }

    fn backend(&mut self, backend: Backend, postgres: Option<&Postgres>) -> Result<()> {
        eprintln!("[load] {}: starting both apps", backend.name());
        // Declared before the servers, so dropped (databases removed) after them.
        let mut sqlite_files = Vec::new();
        let mut pg_databases = Vec::new();
        let mut servers = Vec::new();
        for app in APPS {
            let (default, audit) = match backend {
                Backend::Sqlite => {
                    let (files, default, audit) = SqliteFiles::new(&self.paths, app)?;
                    sqlite_files.push(files);
                    (default, audit)
                }
                Backend::Postgres
                | Backend::PgBouncer
                | Backend::Replica
                | Backend::PgBouncerRaw => {
                    let server = postgres.ok_or("no PostgreSQL server")?;
                    let (guard, default, audit) = server.databases(app)?;
                    pg_databases.push(guard);
                    (default, audit)
                }
            };
            servers.push(Server::start(&self.paths, app, backend, &default, &audit)?);
        }

        let mut ids_files = BTreeMap::new();
        for server in &servers {
            let ids = server.seed()?;
            let file =
                self.paths
                    .bench
                    .join(format!("{}-{}-ids.txt", backend.name(), server.app.name()));
            fs::write(&file, ids.join("\n") + "\n")?;
            ids_files.insert(server.app, file);
            eprintln!(
                "[load] {}: seeded {} authors in the {}",
                backend.name(),
                ids.len(),
                server.app.name()
            );
        }

        // Warm-up: fill the pools and the caches.
        for server in &servers {
            let wrk = Wrk::spawn(
                &self.paths,
                server.port,
                Endpoint::GetById,
                32,
                if self.settings.smoke { 1 } else { 3 },
                &ids_files[&server.app],
            )?;
            wrk.finish()?;
        }

        let cells = self.settings.cells.clone();
        for (endpoint, connections) in cells {
            let mut runs: BTreeMap<App, Vec<Run>> = BTreeMap::new();
            let what = format!("{} c={connections}", endpoint.name());
            for _ in 0..self.settings.pairs {
                for server in servers.iter_mut() {
                    let run =
                        self.measure(server, endpoint, connections, &ids_files[&server.app])?;
                    self.record(backend, &what, server.app, &run)?;
                    runs.entry(server.app).or_default().push(run);
                }
            }
            self.cells.push(Cell {
                backend,
                endpoint,
                connections,
                runs,
            });
        }

        for server in servers.iter_mut() {
            let ids = &ids_files[&server.app];
            let alone = self.measure(server, Endpoint::GetById, MIXED_CONNECTIONS, ids)?;
            self.record(backend, "mixed: readers alone", server.app, &alone)?;
            server.reset_peak_rss();
            let secs = self.settings.secs;
            let readers = Wrk::spawn(
                &self.paths,
                server.port,
                Endpoint::GetById,
                MIXED_CONNECTIONS,
                secs,
                ids,
            )?;
            let writers = Wrk::spawn(
                &self.paths,
                server.port,
                Endpoint::Post,
                MIXED_CONNECTIONS,
                secs,
                ids,
            )?;
            let mut readers = readers.finish()?;
            let mut writers = writers.finish()?;
            let rss = server.peak_rss_kib();
            readers.peak_rss_kib = rss;
            writers.peak_rss_kib = rss;
            server.check_alive()?;
            self.record(backend, "mixed: readers", server.app, &readers)?;
            self.record(backend, "mixed: writers", server.app, &writers)?;
            self.mixed.push(Mixed {
                backend,
                app: server.app,
                alone,
                readers,
                writers,
            });
        }

        drop(servers);
        drop(pg_databases);
        drop(sqlite_files);
        Ok(())
    }
}

// ---- the report --------------------------------------------------------------------------

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    text.lines().next().map(|l| l.trim().to_string())
}

fn git_commit(root: &Path) -> String {
    let dir = root.display().to_string();
    let commit = match Command::new("git")
        .args(["-C", &dir, "rev-parse", "--short", "HEAD"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => return "unknown (not a git checkout)".into(),
    };
    let dirty = Command::new("git")
        .args(["-C", &dir, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        format!("{commit} (with uncommitted changes)")
    } else {
        commit
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn peak(runs: &[Run]) -> Option<u64> {
    runs.iter().filter_map(|r| r.peak_rss_kib).max()
}

/// `409×3, 500×1, read×2`: what the errors were.
fn error_detail(runs: &[Run]) -> String {
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut sockets = [0u64; 4];
    for run in runs {
        for (status, n) in &run.other {
            *statuses.entry(*status).or_default() += n;
        }
        for (total, n) in sockets.iter_mut().zip(run.socket_detail) {
            *total += n;
        }
    }
    let mut parts: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    for (name, n) in ["connect", "read", "write", "timeout"].iter().zip(sockets) {
        if n > 0 {
            parts.push(format!("{name}×{n}"));
        }
    }
    parts.join(", ")
}

fn report(bench: &Bench) -> String {
    let s = &bench.settings;
    let mut out = String::new();
    let command = std::env::var("BENCH_COMMAND")
        .unwrap_or_else(|_| format!("cargo bench --bench load -- {}", s.args.join(" ")));
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        out,
        "# Load test: rocket_alchemy `authors` vs hand-written `authors_raw`\n"
    );
    let _ = writeln!(out, "- command: `{}`", command.trim());
    let _ = writeln!(
        out,
        "- date: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = writeln!(
        out,
        "- host: `{}`, {cpus} CPUs",
        command_output("uname", &["-srm"]).unwrap_or_default()
    );
    let _ = writeln!(out, "- commit: {}", git_commit(&bench.paths.root));
    let _ = writeln!(
        out,
        "- load: `{}`; `wrk -t2 -c<N> -d{}s --latency --timeout 10s`, {} run(s) per app per cell, \
         library and baseline alternating; both servers, wrk and the database share the machine",
        command_output("wrk", &["-v"])
            .and_then(|v| v.split(" Copyright").next().map(str::to_string))
            .unwrap_or_else(|| "wrk".into()),
        s.secs,
        s.pairs
    );
    if let Some(v) = &bench.postgres_version {
        let _ = writeln!(out, "- PostgreSQL server {v}");
    }
    if let Some(extra) = sqlite_settings() {
        let _ = writeln!(out, "- library's SQLite binds also set: `{extra}`");
    }
    let _ = writeln!(
        out,
        "- servers: release builds, Rocket defaults ({cpus} workers), pools of workers × 4 \
         connections; {SEED_AUTHORS} authors seeded per app; write cells run last\n"
    );
    let _ = writeln!(
        out,
        "req/s, p50 and p99 are medians over the runs; errors (socket errors + 4xx/5xx other \
         than 503 with `Retry-After`) and 503s are summed; peak RSS is the server's largest \
         `VmHWM`. ratio = library req/s ÷ baseline req/s.\n"
    );

    for backend in &s.backends {
        let _ = writeln!(out, "## {}\n", backend.title());
        let mut connection_counts: Vec<u32> = bench
            .cells
            .iter()
            .filter(|c| c.backend == *backend)
            .map(|c| c.connections)
            .collect();
        connection_counts.sort_unstable();
        connection_counts.dedup();
        let mut details = Vec::new();
        for connections in connection_counts {
            let _ = writeln!(out, "### {connections} connections\n");
            let (a, b) = (backend.side(App::Library), backend.side(App::Baseline));
            let _ = writeln!(
                out,
                "| endpoint | {a} req/s | {b} req/s | ratio | {a} p50 / p99 ms | \
                 {b} p50 / p99 ms | errors {a} / {b} | 503 {a} / {b} | peak RSS MiB {a} / {b} |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            let mut cells: Vec<&Cell> = bench
                .cells
                .iter()
                .filter(|c| c.backend == *backend && c.connections == connections)
                .collect();
            cells.sort_by_key(|c| c.endpoint);
            for cell in cells {
                let empty = Vec::new();
                let lib = cell.runs.get(&App::Library).unwrap_or(&empty);
                let base = cell.runs.get(&App::Baseline).unwrap_or(&empty);
                let m = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
                let (lib_rps, base_rps) = (m(lib, |r| r.rps), m(base, |r| r.rps));
                let errors = |runs: &[Run]| runs.iter().map(Run::errors).sum::<u64>();
                let shed = |runs: &[Run]| runs.iter().map(|r| r.shed).sum::<u64>();
                let _ = writeln!(
                    out,
                    "| `{}` | {:.0} | {:.0} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {} / {} | {} / {} | {} / {} |",
                    cell.endpoint.request(),
                    lib_rps,
                    base_rps,
                    lib_rps / base_rps,
                    m(lib, |r| r.p50_ms),
                    m(lib, |r| r.p99_ms),
                    m(base, |r| r.p50_ms),
                    m(base, |r| r.p99_ms),
                    errors(lib),
                    errors(base),
                    shed(lib),
                    shed(base),
                    mib(peak(lib)),
                    mib(peak(base)),
                );
                for (app, runs) in [(App::Library, lib), (App::Baseline, base)] {
                    let detail = error_detail(runs);
                    if !detail.is_empty() {
                        details.push(format!(
                            "- {} `{}` with {connections} connections: {detail}",
                            app.name(),
                            cell.endpoint.request()
                        ));
                    }
                }
            }
            let _ = writeln!(out);
        }
        if !details.is_empty() {
            let _ = writeln!(out, "Errors by kind:\n\n{}\n", details.join("\n"));
        }
    }

    if !bench.mixed.is_empty() {
        let _ = writeln!(
            out,
            "## Mixed: readers alone, then with writers\n\n\
             `GET /authors/<id>` on {MIXED_CONNECTIONS} connections for {} s, then the same \
             with {MIXED_CONNECTIONS} connections of `POST /authors` at the same time (two wrk \
             processes).\n",
            s.secs
        );
        let _ = writeln!(
            out,
            "| backend | app | reader req/s alone | reader p99 ms alone | reader req/s with writers | \
             reader p99 ms with writers | p99 ratio | writer req/s | writer p99 ms | errors r / w | 503 r / w |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for m in &bench.mixed {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {} / {} | {} / {} |",
                m.backend.name(),
                m.backend.side(m.app),
                m.alone.rps,
                m.alone.p99_ms,
                m.readers.rps,
                m.readers.p99_ms,
                m.readers.p99_ms / m.alone.p99_ms,
                m.writers.rps,
                m.writers.p99_ms,
                m.alone.errors() + m.readers.errors(),
                m.writers.errors(),
                m.alone.shed + m.readers.shed,
                m.writers.shed,
            );
        }
        let details: Vec<String> = bench
            .mixed
            .iter()
            .flat_map(|m| {
                [
                    (
                        "readers",
                        error_detail(&[m.alone.clone(), m.readers.clone()]),
                    ),
                    ("writers", error_detail(std::slice::from_ref(&m.writers))),
                ]
                .into_iter()
                .filter(|(_, d)| !d.is_empty())
                .map(move |(side, d)| {
                    format!(
                        "- {} {} {side}: {d}",
                        m.backend.name(),
                        m.backend.side(m.app)
                    )
                })
            })
            .collect();
        if !details.is_empty() {
            let _ = writeln!(out, "\nErrors by kind:\n\n{}", details.join("\n"));
        }
        let _ = writeln!(out);
    }
    out
}

// ---- main --------------------------------------------------------------------------------

fn run() -> Result<String> {
    let settings = Settings::from_env()?;
    let paths = Paths::new()?;
    for app in APPS {
        if !paths.binary(app).is_file() {
            bail!(
                "{} is missing: run `cargo build --release --example authors --example authors_raw` \
                 (scripts/bench.sh does)",
                paths.binary(app).display()
            );
        }
    }
    let postgres = if settings.backends.iter().any(|b| b.on_postgres()) {
        Some(Postgres::new()?)
    } else {
        None
    };
    let runs_log = File::create(paths.bench.join("load-runs.jsonl"))?;
    let mut bench = Bench {
        postgres_version: postgres.as_ref().and_then(Postgres::version),
        settings,
        paths,
        runs_log,
        cells: Vec::new(),
        mixed: Vec::new(),
    };
    let started = Instant::now();
    for backend in bench.settings.backends.clone() {
        bench.backend(backend, postgres.as_ref())?;
    }
    let mut report = report(&bench);
    let _ = writeln!(
        report,
        "_Measured in {:.0} s._",
        started.elapsed().as_secs_f64()
    );
    fs::write(bench.paths.bench.join("load-report.md"), &report)?;
    Ok(report)
}

fn main() -> ExitCode {
    match run() {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("[load] error: {e}");
            ExitCode::FAILURE
        }
    }
}
