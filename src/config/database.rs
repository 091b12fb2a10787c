//! The configuration of one bind: `[<profile>.databases.<bind_key>]`.

use std::path::PathBuf;
use std::time::Duration;

use rocket::figment::{self, value::Value, Figment};
use serde::Deserialize;

use super::{
    Backend, CommitMode, IsolationLevel, JournalMode, Pooler, RedactedUrl, SqliteSettings,
    Synchronous, TransactionOptions,
};

/// The validated configuration of one bind (`databases.<bind_key>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// The bind key: the table name under `databases`.
    pub bind_key: String,
    /// The connection URL. _Required._
    pub url: RedactedUrl,
    /// The engine, from the URL scheme.
    pub backend: Backend,
    /// _Default:_ `manual`.
    pub commit_mode: CommitMode,
    /// Create the bind's model tables on ignite. _Default:_ `false`.
    pub create_all: bool,
    /// Apply pending migrations from [`DatabaseConfig::migrations`] on ignite, before
    /// `create_all`. _Default:_ `false`.
    pub migrate: bool,
    /// The migrations folder of this bind. _Default:_ `migrations` for the `default` bind,
    /// `migrations/<bind_key>` for the others. `{backend}` in it is replaced by the backend's
    /// name (`migrations/{backend}`: one folder per backend).
    pub migrations: PathBuf,
    /// _Default:_ none (sqlx's 0; in-memory SQLite keeps at least one open).
    pub min_connections: Option<u32>,
    /// _Default:_ Rocket's `workers` × 4.
    pub max_connections: u32,
    /// Connection and pool-acquire timeout. _Default:_ 5 seconds.
    pub connect_timeout: Duration,
    /// _Default:_ sqlx's (10 minutes).
    pub idle_timeout: Option<Duration>,
    /// _Default:_ sqlx's (30 minutes).
    pub max_lifetime: Option<Duration>,
    /// Log every statement with its duration through `tracing`. _Default:_ `false`.
    pub echo: bool,
    /// Adds the number of statements each request ran on this bind to an
    /// `X-Db-Statements: <bind>=<n>` response header, for local development and the test
    /// kit's statement budget (`rocket_alchemy::testing`, feature `testing`). Honoured in debug builds and with the
    /// `testing` feature; ignored (with a warning at launch) otherwise. _Default:_ `false`.
    pub statement_header: bool,
    /// `false`: connect at ignite and refuse the launch if the database is down. `true`:
    /// launch anyway; sessions answer 503 until the database is reachable. _Default:_ `false`.
    pub lazy: bool,
    /// SQLite-only settings; `None` for other backends.
    pub sqlite: Option<SqliteSettings>,
    /// PostgreSQL: the pooler in front of the server (see [`Pooler`]). _Default:_ `none`.
    pub pooler: Pooler,
    /// PostgreSQL: the server's own URL, bypassing the pooler, for migrations (which hold a
    /// session lock). Needed for `migrate = true` and the `database` commands when
    /// `pooler = "transaction"`. _Default:_ none.
    pub direct_url: Option<RedactedUrl>,
    /// PostgreSQL: read replicas (hot standbys). Request sessions that only read go to one
    /// that is up, lags at most `max_replica_lag` and has replayed the client's last commit
    /// (see the README's "Scaling out"). _Default:_ none.
    pub replicas: Vec<RedactedUrl>,
    /// A replica lagging more is skipped until it catches up. _Default:_ 5 seconds.
    pub max_replica_lag: Duration,
    /// How the bind's transactions begin (`isolation_level`, `read_only`,
    /// `statement_timeout`, `lock_timeout`; see [`TransactionOptions`]). _Default:_ the
    /// server's.
    pub transaction: TransactionOptions,
    /// How long an `Idempotency-Key` is remembered: a stored response older than this is
    /// ignored, and its key may be used again (see [`crate::idempotency`]).
    /// _Default:_ 24 hours.
    pub idempotency_ttl: Duration,
    /// Where `url` came from (a file, the environment), for errors found when opening.
    pub(crate) url_origin: Option<String>,
}

/// The keys of a bind that only a SQLite bind accepts (the test kit drops them elsewhere).
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) const SQLITE_ONLY_KEYS: &[&str] = &[
    "busy_timeout",
    "journal_mode",
    "foreign_keys",
    "synchronous",
    "read_snapshot",
];

/// The keys of a bind that only a PostgreSQL bind accepts.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) const POSTGRES_ONLY_KEYS: &[&str] =
    &["pooler", "direct_url", "replicas", "max_replica_lag"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    url: String,
    #[serde(default)]
    commit_mode: CommitMode,
    #[serde(default)]
    create_all: bool,
    #[serde(default)]
    migrate: bool,
    migrations: Option<PathBuf>,
    min_connections: Option<u32>,
    max_connections: Option<u32>,
    connect_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_lifetime: Option<u64>,
    #[serde(default)]
    echo: bool,
    #[serde(default)]
    statement_header: bool,
    #[serde(default)]
    lazy: bool,
    busy_timeout: Option<u64>,
    journal_mode: Option<JournalMode>,
    foreign_keys: Option<bool>,
    synchronous: Option<Synchronous>,
    read_snapshot: Option<bool>,
    pooler: Option<Pooler>,
    direct_url: Option<String>,
    #[serde(default)]
    replicas: Vec<String>,
    max_replica_lag: Option<f64>,
    isolation_level: Option<IsolationLevel>,
    read_only: Option<bool>,
    statement_timeout: Option<f64>,
    lock_timeout: Option<f64>,
    idempotency_ttl: Option<u64>,
}

/// A configuration problem. Its message names the full key and, when known, where the bad
/// value came from (a file or an environment variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad database configuration: `{key}`: {message}{}", origin_suffix(.origin))]
pub struct ConfigError {
    /// The full key, e.g. `databases.default.commit_mode`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
    /// Where the value came from, e.g. `Rocket.toml` or the `ROCKET_` environment variables.
    pub origin: Option<String>,
}

fn origin_suffix(origin: &Option<String>) -> String {
    origin
        .as_ref()
        .map(|s| format!(" (from {s})"))
        .unwrap_or_default()
}

impl ConfigError {
    /// A problem with the `url` of `config`, found when opening it.
    pub(crate) fn url(config: &DatabaseConfig, message: String) -> Self {
        ConfigError {
            key: format!("databases.{}.url", config.bind_key),
            message,
            origin: config.url_origin.clone(),
        }
    }

    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
            origin: None,
        }
    }

    fn from_figment(prefix: &str, error: figment::Error) -> Self {
        use figment::error::Kind;

        let origin = error.metadata.as_ref().map(|m| match &m.source {
            Some(source) => format!("{} `{}`", m.name, source),
            None => m.name.to_string(),
        });
        // figment reports the failing field's path with the extraction prefix somewhere in
        // it; keep only the part below `databases.<bind>`.
        let prefix_parts: Vec<&str> = prefix.split('.').collect();
        let mut path: Vec<&str> = error.path.iter().map(String::as_str).collect();
        if let Some(at) = path
            .windows(prefix_parts.len())
            .position(|w| w == prefix_parts.as_slice())
        {
            path.drain(at..at + prefix_parts.len());
        }
        let mut key = prefix.to_string();
        for part in path {
            key.push('.');
            key.push_str(part);
        }
        let one_of = |names: &[&str]| names.join(", ");
        let message = match &error.kind {
            Kind::UnknownField(field, expected) => {
                key = format!("{prefix}.{field}");
                format!("unknown key; expected one of: {}", one_of(expected))
            }
            Kind::MissingField(field) => {
                key = format!("{prefix}.{field}");
                "missing; this key is required".to_string()
            }
            Kind::UnknownVariant(value, expected) => {
                format!(
                    "unknown value `{value}`; expected one of: {}",
                    one_of(expected)
                )
            }
            Kind::InvalidType(actual, expected) => format!("expected {expected}, found {actual}"),
            Kind::InvalidValue(actual, expected) => format!("expected {expected}, found {actual}"),
            other => other.to_string(),
        };
        ConfigError {
            key,
            message,
            origin,
        }
    }
}

impl RawConfig {
    /// Clears each key set here that `backend` does not take and for which `drop(key)` says
    /// so (SQLite's keys on another backend, PostgreSQL's elsewhere, transaction options a
    /// backend lacks).
    fn drop_other_backends_keys(&mut self, backend: Backend, mut drop: impl FnMut(&str) -> bool) {
        let sqlite = backend == Backend::Sqlite;
        let postgres = backend == Backend::Postgres;
        macro_rules! unless {
            ($takes:expr, $($field:ident),+) => {$(
                if !$takes && self.$field.is_some() && drop(stringify!($field)) {
                    self.$field = None;
                }
            )+};
        }
        unless!(
            sqlite,
            busy_timeout,
            journal_mode,
            foreign_keys,
            synchronous,
            read_snapshot
        );
        unless!(
            postgres,
            pooler,
            direct_url,
            max_replica_lag,
            statement_timeout
        );
        unless!(!sqlite, isolation_level, read_only, lock_timeout);
        if !postgres && !self.replicas.is_empty() && drop("replicas") {
            self.replicas.clear();
        }
    }
}

impl DatabaseConfig {
    /// Reads and validates every bind under `databases` in `figment`, the `default` bind first,
    /// then the others by key. `workers` sizes the default `max_connections`.
    ///
    /// ```
    /// # #[cfg(all(feature = "sqlite", feature = "postgres"))] {
    /// use rocket::figment::{Figment, providers::{Format, Toml}};
    /// use rocket_alchemy::{CommitMode, DatabaseConfig};
    ///
    /// let figment = Figment::new().merge(Toml::string(r#"
    ///     [databases.default]
    ///     url = "sqlite::memory:"
    ///     commit_mode = "autocommit"
    ///     [databases.audit]
    ///     url = "postgres://app:secret@localhost/audit"
    /// "#));
    /// let binds = DatabaseConfig::from_figment(&figment, 2).unwrap();
    /// assert_eq!(binds[0].bind_key, "default");
    /// assert_eq!(binds[0].commit_mode, CommitMode::Autocommit);
    /// assert_eq!(binds[1].max_connections, 8);
    /// assert_eq!(binds[1].url.to_string(), "postgres://app:***@localhost/audit");
    ///
    /// let typo = Figment::new().merge(Toml::string(r#"
    ///     [databases.default]
    ///     url = "sqlite::memory:"
    ///     comit_mode = "autocommit"
    /// "#));
    /// let error = DatabaseConfig::from_figment(&typo, 2).unwrap_err();
    /// assert_eq!(error.key, "databases.default.comit_mode");
    /// # }
    /// ```
    pub fn from_figment(
        figment: &Figment,
        workers: usize,
    ) -> Result<Vec<DatabaseConfig>, ConfigError> {
        let dict =
            match figment.find_value("databases") {
                Ok(Value::Dict(_, dict)) => dict,
                Ok(other) => {
                    return Err(ConfigError::new(
                        "databases",
                        format!(
                            "expected a table of databases keyed by bind key, found {}",
                            other.to_actual()
                        ),
                    ))
                }
                Err(_) => return Err(ConfigError::new(
                    "databases",
                    "no databases are configured; add `[default.databases.default]` with a `url` \
                     to Rocket.toml or set ROCKET_DATABASES",
                )),
            };
        let mut keys: Vec<&String> = dict.keys().collect();
        keys.sort_by_key(|k| (k.as_str() != "default", k.as_str()));
        keys.into_iter()
            .map(|key| Self::from_figment_key(figment, key, workers))
            .collect()
    }

    fn from_figment_key(figment: &Figment, key: &str, workers: usize) -> Result<Self, ConfigError> {
        let prefix = format!("databases.{key}");
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::new(
                prefix,
                "bind keys may only contain ASCII letters, digits, `_` and `-`",
            ));
        }
        let mut raw: RawConfig = figment
            .extract_inner(&prefix)
            .map_err(|e| ConfigError::from_figment(&prefix, e))?;
        // Where a key's value came from: its own provider (a file, the environment).
        let origin_of = |key: &str| {
            let key = key.split('[').next().unwrap_or(key);
            figment.find_metadata(key).map(|m| match &m.source {
                Some(source) => format!("{} `{}`", m.name, source),
                None => m.name.to_string(),
            })
        };
        let origin = origin_of(&format!("{prefix}.url"));
        let origin_of_url = origin.clone();
        if let Some(backend) = Backend::from_url(raw.url.trim()) {
            // A backend-specific key from another source than the `url` that chose the
            // backend (Rocket.toml's `journal_mode` under an environment's `postgres://` URL)
            // belongs to the configuration being overridden: ignored, with a warning.
            raw.drop_other_backends_keys(backend, |field| {
                let from = origin_of(&format!("{prefix}.{field}"));
                if from == origin {
                    return false;
                }
                tracing::warn!(
                    target: "rocket_alchemy",
                    "`{prefix}.{field}` (from {}) does not apply to {backend}, which `{prefix}.url` (from {}) selects: ignored",
                    from.as_deref().unwrap_or("an unknown source"),
                    origin.as_deref().unwrap_or("an unknown source"),
                );
                true
            });
        }
        Self::validate(key, raw)
            .map_err(|mut e| {
                if e.origin.is_none() {
                    e.origin = origin_of(&e.key).or(origin);
                }
                e
            })
            .map(|mut config| {
                if config.max_connections == 0 {
                    config.max_connections = (workers.max(1) * 4) as u32;
                }
                config.url_origin = origin_of_url;
                config
            })
    }

    fn validate(key: &str, raw: RawConfig) -> Result<Self, ConfigError> {
        let k = |field: &str| format!("databases.{key}.{field}");
        let url = RedactedUrl::new(raw.url.trim());
        if url.expose().is_empty() {
            return Err(ConfigError::new(k("url"), "must not be empty"));
        }
        let backend = Backend::from_url(url.expose()).ok_or_else(|| {
            let scheme = url
                .expose()
                .split_once(':')
                .map(|(s, _)| s)
                .unwrap_or(url.expose());
            ConfigError::new(
                k("url"),
                format!(
                    "unsupported URL scheme `{scheme}` in `{url}`; expected sqlite:, postgres://, \
                     postgresql://, mysql:// or mariadb://"
                ),
            )
        })?;
        if !backend.is_enabled() {
            return Err(ConfigError::new(
                k("url"),
                format!(
                    "`{url}` needs the `{backend}` feature of rocket_alchemy, which is disabled"
                ),
            ));
        }
        let seconds = |field: &str, value: Option<u64>| -> Result<Option<Duration>, ConfigError> {
            match value {
                Some(0) => Err(ConfigError::new(
                    k(field),
                    "must be a positive number of seconds",
                )),
                Some(s) => Ok(Some(Duration::from_secs(s))),
                None => Ok(None),
            }
        };
        let connect_timeout =
            seconds("connect_timeout", raw.connect_timeout)?.unwrap_or(Duration::from_secs(5));
        let idle_timeout = seconds("idle_timeout", raw.idle_timeout)?;
        let max_lifetime = seconds("max_lifetime", raw.max_lifetime)?;
        let busy_timeout = seconds("busy_timeout", raw.busy_timeout)?;
        let idempotency_ttl = seconds("idempotency_ttl", raw.idempotency_ttl)?
            .unwrap_or(Duration::from_secs(24 * 60 * 60));

        if raw.max_connections == Some(0) {
            return Err(ConfigError::new(k("max_connections"), "must be at least 1"));
        }
        if let (Some(min), Some(max)) = (raw.min_connections, raw.max_connections) {
            if min > max {
                return Err(ConfigError::new(
                    k("min_connections"),
                    format!("is {min}, more than max_connections ({max})"),
                ));
            }
        }

        let sqlite = if backend == Backend::Sqlite {
            Some(SqliteSettings {
                busy_timeout: busy_timeout.unwrap_or(connect_timeout),
                journal_mode: raw.journal_mode,
                foreign_keys: raw.foreign_keys.unwrap_or(true),
                synchronous: raw.synchronous,
                read_snapshot: raw.read_snapshot.unwrap_or(true),
            })
        } else {
            for (field, set) in [
                ("busy_timeout", raw.busy_timeout.is_some()),
                ("journal_mode", raw.journal_mode.is_some()),
                ("foreign_keys", raw.foreign_keys.is_some()),
                ("synchronous", raw.synchronous.is_some()),
                ("read_snapshot", raw.read_snapshot.is_some()),
            ] {
                if set {
                    return Err(ConfigError::new(
                        k(field),
                        format!("is a SQLite setting, but this bind is {backend}"),
                    ));
                }
            }
            None
        };

        let (pooler, direct_url) = if backend == Backend::Postgres {
            let direct_url = match raw.direct_url.as_deref().map(str::trim) {
                Some(direct) => {
                    let direct = RedactedUrl::new(direct);
                    if Backend::from_url(direct.expose()) != Some(Backend::Postgres) {
                        return Err(ConfigError::new(
                            k("direct_url"),
                            format!("`{direct}` is not a postgres:// URL"),
                        ));
                    }
                    Some(direct)
                }
                None => None,
            };
            for (i, replica) in raw.replicas.iter().enumerate() {
                let replica = RedactedUrl::new(replica.trim());
                if Backend::from_url(replica.expose()) != Some(Backend::Postgres) {
                    return Err(ConfigError::new(
                        format!("{}[{i}]", k("replicas")),
                        format!("`{replica}` is not a postgres:// URL"),
                    ));
                }
            }
            let pooler = raw.pooler.unwrap_or_default();
            if pooler == Pooler::Transaction && raw.migrate && direct_url.is_none() {
                return Err(ConfigError::new(
                    k("direct_url"),
                    "is required for `migrate = true` when `pooler = \"transaction\"`: \
                     migrations hold a session lock, which a transaction pooler does not keep; \
                     give the server's own URL",
                ));
            }
            (pooler, direct_url)
        } else {
            for (field, set) in [
                ("pooler", raw.pooler.is_some()),
                ("direct_url", raw.direct_url.is_some()),
                ("replicas", !raw.replicas.is_empty()),
                ("max_replica_lag", raw.max_replica_lag.is_some()),
            ] {
                if set {
                    return Err(ConfigError::new(
                        k(field),
                        format!("is a PostgreSQL setting, but this bind is {backend}"),
                    ));
                }
            }
            (Pooler::None, None)
        };

        let fraction = |field: &str, value: Option<f64>| -> Result<Option<Duration>, ConfigError> {
            match value {
                Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => {
                    Ok(Some(Duration::from_secs_f64(s)))
                }
                Some(_) => Err(ConfigError::new(
                    k(field),
                    "must be a positive number of seconds (fractions allowed)",
                )),
                None => Ok(None),
            }
        };
        let max_replica_lag =
            fraction("max_replica_lag", raw.max_replica_lag)?.unwrap_or(Duration::from_secs(5));
        let replicas = raw
            .replicas
            .iter()
            .map(|url| RedactedUrl::new(url.trim()))
            .collect();
        let mut transaction = TransactionOptions::default();
        transaction.isolation_level = raw.isolation_level;
        transaction.read_only = raw.read_only.unwrap_or(false);
        transaction.statement_timeout = fraction("statement_timeout", raw.statement_timeout)?;
        transaction.lock_timeout = fraction("lock_timeout", raw.lock_timeout)?;
        let unsupported: &[(&str, bool)] = match backend {
            Backend::Sqlite => &[
                ("isolation_level", raw.isolation_level.is_some()),
                ("read_only", raw.read_only.is_some()),
                ("statement_timeout", raw.statement_timeout.is_some()),
                ("lock_timeout", raw.lock_timeout.is_some()),
            ],
            Backend::MySql => &[("statement_timeout", raw.statement_timeout.is_some())],
            Backend::Postgres => &[],
        };
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(ConfigError::new(
                k(field),
                format!("is not available on {backend} (see rocket_alchemy::TransactionOptions)"),
            ));
        }

        // `{backend}` in the folder keeps one folder per backend (`migrations/{backend}`).
        let migrations = raw
            .migrations
            .map(|dir| {
                PathBuf::from(
                    dir.to_string_lossy()
                        .replace(BACKEND_PLACEHOLDER, backend.name()),
                )
            })
            .unwrap_or_else(|| default_migrations_dir(key));

        Ok(DatabaseConfig {
            bind_key: key.to_string(),
            url,
            backend,
            commit_mode: raw.commit_mode,
            create_all: raw.create_all,
            migrate: raw.migrate,
            migrations,
            min_connections: raw.min_connections,
            // 0 is replaced by `workers * 4` in `from_figment_key`.
            max_connections: raw.max_connections.unwrap_or(0),
            connect_timeout,
            idle_timeout,
            max_lifetime,
            echo: raw.echo,
            statement_header: raw.statement_header,
            lazy: raw.lazy,
            sqlite,
            pooler,
            direct_url,
            replicas,
            max_replica_lag,
            transaction,
            idempotency_ttl,
            url_origin: None,
        })
    }
}

/// Replaced by the bind's backend name (`sqlite`, `postgres`, `mysql`) in its `migrations`
/// folder: `migrations = "migrations/{backend}"` keeps one folder per backend.
pub(crate) const BACKEND_PLACEHOLDER: &str = "{backend}";

/// `migrations` for the `default` bind, `migrations/<bind_key>` for the others.
pub(crate) fn default_migrations_dir(bind_key: &str) -> PathBuf {
    if bind_key == crate::bind::DEFAULT_KEY {
        PathBuf::from("migrations")
    } else {
        PathBuf::from("migrations").join(bind_key)
    }
}

// The parsing tests spell their URLs for SQLite, the default backend.
#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use rocket::figment::providers::{Format, Toml};

    fn parse(toml: &str) -> Result<Vec<DatabaseConfig>, ConfigError> {
        DatabaseConfig::from_figment(&Figment::new().merge(Toml::string(toml)), 3)
    }

    #[test]
    fn defaults() {
        let binds = parse("[databases.main]\nurl = \"sqlite://data/x.db\"").unwrap();
        let c = &binds[0];
        assert_eq!(c.bind_key, "main");
        assert_eq!(c.commit_mode, CommitMode::Manual);
        assert_eq!(c.max_connections, 12);
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.idempotency_ttl, Duration::from_secs(86_400));
        assert_eq!(c.min_connections, None);
        assert!(!c.create_all && !c.echo && !c.lazy && !c.migrate);
        let sqlite = c.sqlite.as_ref().unwrap();
        assert_eq!(sqlite.busy_timeout, Duration::from_secs(5));
        assert!(sqlite.foreign_keys);
        assert_eq!(
            sqlite.synchronous, None,
            "normal in WAL, full otherwise: chosen at open"
        );
        assert_eq!(c.migrations, PathBuf::from("migrations/main"));
        let binds =
            parse("[databases.main]\nurl = \"sqlite://x.db\"\nsynchronous = \"extra\"").unwrap();
        assert_eq!(
            binds[0].sqlite.as_ref().unwrap().synchronous,
            Some(Synchronous::Extra)
        );
    }

    #[test]
    fn default_bind_sorts_first() {
        let binds = parse(
            "[databases.audit]\nurl = \"sqlite::memory:\"\n[databases.default]\nurl = \"sqlite::memory:\"\n[databases.a]\nurl = \"sqlite::memory:\"",
        )
        .unwrap();
        let keys: Vec<_> = binds.iter().map(|b| b.bind_key.as_str()).collect();
        assert_eq!(keys, ["default", "a", "audit"]);
    }

    #[cfg(all(feature = "postgres", feature = "mysql"))]
    #[test]
    fn errors_name_the_full_key() {
        let cases = [
            ("[databases.d]\nurl = \"sqlite::memory:\"\ncomit_mode = \"manual\"", "databases.d.comit_mode", "unknown key"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\ncommit_mode = \"autocommit_with_redirect\"", "databases.d.commit_mode", "unknown value"),
            ("[databases.d]\ncommit_mode = \"manual\"", "databases.d.url", "required"),
            ("[databases.d]\nurl = \"oracle://scott:tiger@db\"", "databases.d.url", "unsupported URL scheme"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\nmax_connections = -1", "databases.d.max_connections", "expected"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\nmax_connections = \"many\"", "databases.d.max_connections", "expected"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\nmax_connections = 0", "databases.d.max_connections", "at least 1"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\nconnect_timeout = 0", "databases.d.connect_timeout", "positive"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\nidempotency_ttl = 0", "databases.d.idempotency_ttl", "positive"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\nmin_connections = 9\nmax_connections = 2", "databases.d.min_connections", "more than"),
            ("[databases.d]\nurl = \"postgres://u:pw@h/db\"\nbusy_timeout = 3", "databases.d.busy_timeout", "SQLite setting"),
            ("[databases.d]\nurl = \"postgres://u:pw@h/db\"\nsynchronous = \"full\"", "databases.d.synchronous", "SQLite setting"),
            ("[databases.d]\nurl = \"sqlite::memory:\"\nsynchronous = \"sometimes\"", "databases.d.synchronous", "unknown value"),
            ("[databases.d]\nurl = 5", "databases.d.url", "expected"),
            ("databases = 3", "databases", "expected a table"),
        ];
        for (toml, key, needle) in cases {
            let err = parse(toml).expect_err(toml);
            assert_eq!(err.key, key, "{toml}: {err}");
            assert!(err.to_string().contains(needle), "{toml}: {err}");
            assert!(!err.to_string().contains("pw@"), "password leaked: {err}");
            assert!(!err.to_string().contains("tiger"), "password leaked: {err}");
        }
    }

    #[cfg(all(feature = "postgres", feature = "mysql"))]
    #[test]
    fn scale_out_keys() {
        let pg = "[databases.d]\nurl = \"postgres://u:pw@h/db\"\n";
        let binds = parse(&format!(
            "{pg}pooler = \"transaction\"\ndirect_url = \"postgres://u:pw@h:5432/db\"\nmigrate = true\n\
             replicas = [\"postgres://u:pw@r1/db\"]\nmax_replica_lag = 0.5\n\
             isolation_level = \"serializable\"\nread_only = true\nstatement_timeout = 1.5\nlock_timeout = 0.25"
        ))
        .unwrap();
        let c = &binds[0];
        assert_eq!(c.pooler, Pooler::Transaction);
        assert_eq!(
            c.direct_url.as_ref().unwrap().to_string(),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(c.replicas[0].to_string(), "postgres://u:***@r1/db");
        assert_eq!(c.max_replica_lag, Duration::from_millis(500));
        assert_eq!(
            c.transaction.isolation_level,
            Some(IsolationLevel::Serializable)
        );
        assert!(c.transaction.read_only);
        assert_eq!(
            c.transaction.statement_timeout,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(c.transaction.lock_timeout, Some(Duration::from_millis(250)));

        for (toml, key, needle) in [
            (
                format!("{pg}pooler = \"transaction\"\nmigrate = true"),
                "databases.d.direct_url",
                "required for `migrate = true`",
            ),
            (
                format!("{pg}pooler = \"statement\""),
                "databases.d.pooler",
                "unknown value",
            ),
            (
                format!("{pg}replicas = [\"mysql://x@h/db\"]"),
                "databases.d.replicas[0]",
                "not a postgres:// URL",
            ),
            (
                format!("{pg}statement_timeout = -1"),
                "databases.d.statement_timeout",
                "positive",
            ),
            (
                format!("{pg}isolation_level = \"snapshot\""),
                "databases.d.isolation_level",
                "unknown value",
            ),
            (
                "[databases.d]\nurl = \"sqlite::memory:\"\npooler = \"transaction\"".into(),
                "databases.d.pooler",
                "PostgreSQL setting",
            ),
            (
                "[databases.d]\nurl = \"sqlite::memory:\"\nisolation_level = \"serializable\""
                    .into(),
                "databases.d.isolation_level",
                "not available on sqlite",
            ),
            (
                "[databases.d]\nurl = \"mysql://u:pw@h/db\"\nstatement_timeout = 1".into(),
                "databases.d.statement_timeout",
                "not available on mysql",
            ),
            (
                "[databases.d]\nurl = \"mysql://u:pw@h/db\"\nreplicas = [\"postgres://h/db\"]"
                    .into(),
                "databases.d.replicas",
                "PostgreSQL setting",
            ),
        ] {
            let err = parse(&toml).unwrap_err();
            assert_eq!(err.key, key, "{toml}: {err}");
            assert!(err.to_string().contains(needle), "{toml}: {err}");
            assert!(!err.to_string().contains("pw@"), "password leaked: {err}");
        }
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn debug_hides_password() {
        let binds = parse("[databases.d]\nurl = \"mysql://root:hunter2@localhost/app\"").unwrap();
        let dbg = format!("{:?}", binds[0]);
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("root:***@localhost"), "{dbg}");
    }

    #[test]
    fn redaction() {
        let cases = [
            ("sqlite://data/app.db", "sqlite://data/app.db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://u:p%40ss@h/db", "postgres://u:***@h/db"),
            ("mysql://u:p@ss@h/db", "mysql://u:***@h/db"),
            ("postgres://h/db?password=x", "postgres://h/db?password=***"),
        ];
        for (url, want) in cases {
            assert_eq!(RedactedUrl::new(url).to_string(), want);
        }
    }
}
