//! The `Alchemy` handle: every configured bind, reachable at run time by key.

use std::sync::Arc;

use rocket::figment::Figment;
use rocket::tokio::sync::OnceCell;
use rocket::{Phase, Rocket};

use crate::backend::{scrub, Pool, Writer};
use crate::bind::{Bind, DEFAULT_KEY};
use crate::config::{Backend, ConfigError, DatabaseConfig, RedactedUrl};
use crate::model::Table;
use crate::pagination::CursorCodec;
use crate::prepared::StatementCache;
use crate::schema::{self, SchemaError};
use crate::session::DbSession;

/// A bind key that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No session maker found for bind key \"{key}\"; {hint}")]
pub struct UnknownBind {
    /// The key asked for.
    pub key: String,
    /// The configured keys.
    pub configured: Vec<String>,
    hint: String,
}

impl UnknownBind {
    fn new(key: &str, configured: Vec<String>) -> Self {
        let hint = if key == DEFAULT_KEY && configured.len() > 1 {
            format!(
                "several databases are configured ({}) and none is keyed \"default\": key one of \
                 them `default` or use a declared bind",
                configured.join(", ")
            )
        } else if configured.is_empty() {
            "no databases are configured".to_string()
        } else {
            format!("configured bind keys: {}", configured.join(", "))
        };
        UnknownBind {
            key: key.to_string(),
            configured,
            hint,
        }
    }
}

/// Why the databases could not be opened (the launch is refused with this message).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A database could not be reached at launch.
    #[error(
        "could not connect to database `{bind}` at `{url}`: {message}; it is required at launch \
         (set `lazy = true` under `databases.{bind}` to launch without it)"
    )]
    Connect {
        /// The bind key.
        bind: String,
        /// The URL, password redacted.
        url: RedactedUrl,
        /// The error, password scrubbed.
        message: String,
    },
    /// `create_all` failed.
    #[error("create_all for database `{bind}` failed: {source}")]
    Schema {
        /// The bind key.
        bind: String,
        /// The failure.
        #[source]
        source: SchemaError,
    },
    /// Applying migrations at launch failed.
    #[error("migrating database `{bind}` failed: {message}")]
    Migrate {
        /// The bind key.
        bind: String,
        /// The failure.
        message: String,
    },
    /// A registered model names a bind that is not configured.
    #[error(
        "model `{model}` (table `{table}`) belongs to bind \"{bind}\", which is not configured; \
         configured bind keys: {}", configured.join(", ")
    )]
    ModelBind {
        /// The model type.
        model: String,
        /// Its table.
        table: String,
        /// Its bind key.
        bind: String,
        /// The configured keys.
        configured: Vec<String>,
    },
    /// Two registered models declare the same table on one bind.
    #[error("models `{first}` and `{second}` both declare table `{table}` on bind \"{bind}\"")]
    DuplicateTable {
        /// The bind key.
        bind: String,
        /// The table.
        table: String,
        /// One model.
        first: String,
        /// The other.
        second: String,
    },
}

/// One configured database: its configuration, pool and models.
pub struct BindHandle {
    index: usize,
    /// Whether the default bind resolves to this one.
    default: bool,
    config: DatabaseConfig,
    pool: Pool,
    writer: Writer,
    tables: Vec<&'static Table>,
    schema: OnceCell<()>,
    statements: StatementCache,
}

impl std::fmt::Debug for BindHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindHandle")
            .field("key", &self.key())
            .field("url", &self.config.url)
            .field(
                "tables",
                &self.tables.iter().map(|t| t.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl BindHandle {
    /// The bind key.
    pub fn key(&self) -> &str {
        &self.config.bind_key
    }

    /// Its validated configuration.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// Its pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Its write side (SQLite's write connection and queue).
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Its prepared statements.
    pub(crate) fn statements(&self) -> &StatementCache {
        &self.statements
    }

    /// Closes its pool (and SQLite's write connection).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Its engine.
    pub fn backend(&self) -> Backend {
        self.config.backend
    }

    /// The tables of the models registered on this bind.
    pub fn tables(&self) -> &[&'static Table] {
        &self.tables
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Whether the default bind (`Session<'_>`) is this one: it is keyed `default`, or it is
    /// the only bind.
    pub fn is_default(&self) -> bool {
        self.default
    }

    /// Runs `create_all` once if the bind asks for it (deferred for lazy binds that were
    /// unreachable at launch).
    pub(crate) async fn ensure_schema(&self) -> Result<(), SchemaError> {
        if !self.config.create_all || self.schema.initialized() {
            return Ok(());
        }
        self.schema
            .get_or_try_init(|| schema::create_all(&self.pool, &self.tables))
            .await
            .map(drop)
    }
}

/// Every configured database, by bind key. Managed by the fairing, so handlers can take
/// `&State<Alchemy>`; it is a cheap handle, clone it into background tasks.
///
/// ```
/// use rocket::State;
/// use rocket_alchemy::{Alchemy, SessionError};
///
/// #[rocket::get("/audit/count")]
/// async fn count(alchemy: &State<Alchemy>) -> Result<String, SessionError> {
///     let pool = alchemy.pool("audit")?; // errors name the configured keys if "audit" is not one
///     # let _ = pool;
///     Ok("…".into())
/// }
/// ```
#[derive(Clone)]
pub struct Alchemy {
    binds: Arc<[Arc<BindHandle>]>,
    cursor: CursorCodec,
}

impl std::fmt::Debug for Alchemy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.binds.iter()).finish()
    }
}

/// What opening the databases does besides creating pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Startup {
    /// Honour `lazy`, `migrate` and `create_all` (the fairing).
    Launch,
    /// Open lazily and touch nothing (the `database` commands).
    Passive,
}

impl Alchemy {
    /// The fairing that opens the databases on ignite, manages this handle and applies
    /// commit modes. Register the models whose tables `create_all` creates on it.
    pub fn fairing() -> crate::fairing::AlchemyFairing {
        crate::fairing::AlchemyFairing::new()
    }

    /// The handle managed by an attached fairing.
    pub fn fetch<P: Phase>(rocket: &Rocket<P>) -> Option<&Alchemy> {
        rocket.state::<Alchemy>()
    }

    /// Opens every database configured in `figment` (as the fairing does on ignite: eager
    /// connections, migrations and `create_all` as configured) outside of Rocket, for
    /// background workers, scripts and tests. `tables` are the models' tables, e.g.
    /// `&[Author::TABLE, Book::TABLE]`.
    pub async fn open(
        figment: &Figment,
        tables: &[&'static Table],
    ) -> Result<Alchemy, LaunchError> {
        let workers = figment
            .extract_inner::<usize>("workers")
            .unwrap_or_else(|_| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
        let configs = DatabaseConfig::from_figment(figment, workers)?;
        Self::open_configs(configs, tables, Startup::Launch, cursor_codec(figment)).await
    }

    pub(crate) async fn open_configs(
        configs: Vec<DatabaseConfig>,
        tables: &[&'static Table],
        startup: Startup,
        cursor: CursorCodec,
    ) -> Result<Alchemy, LaunchError> {
        let keys: Vec<String> = configs.iter().map(|c| c.bind_key.clone()).collect();
        let resolve = |key: &str| resolve_index(&keys, key);
        let mut per_bind: Vec<Vec<&'static Table>> = vec![Vec::new(); configs.len()];
        for table in tables {
            let Some(index) = resolve(table.bind) else {
                return Err(LaunchError::ModelBind {
                    model: table.model.to_string(),
                    table: table.name.to_string(),
                    bind: table.bind.to_string(),
                    configured: keys.clone(),
                });
            };
            if let Some(other) = per_bind[index].iter().find(|t| t.name == table.name) {
                if other.model != table.model {
                    return Err(LaunchError::DuplicateTable {
                        bind: keys[index].clone(),
                        table: table.name.to_string(),
                        first: other.model.to_string(),
                        second: table.model.to_string(),
                    });
                }
                continue;
            }
            per_bind[index].push(table);
        }

        let default_index = resolve_index(&keys, DEFAULT_KEY);
        let mut binds: Vec<Arc<BindHandle>> = Vec::with_capacity(configs.len());
        for (index, (mut config, tables)) in configs.into_iter().zip(per_bind).enumerate() {
            if startup == Startup::Passive {
                config.lazy = true;
            }
            let (pool, writer) = match Pool::open(&config).await {
                Ok(opened) => opened,
                Err(e) => {
                    for bind in &binds {
                        bind.close().await;
                    }
                    return Err(LaunchError::Connect {
                        bind: config.bind_key.clone(),
                        message: scrub(&e.to_string(), config.url.expose()),
                        url: config.url.clone(),
                    });
                }
            };
            let line = format!(
                "database `{}`: {} at {} ({} commit, {} model table(s){})",
                config.bind_key,
                config.backend,
                config.url,
                config.commit_mode,
                tables.len(),
                if config.lazy { ", lazy" } else { "" },
            );
            match startup {
                Startup::Launch => tracing::info!(target: "rocket_alchemy", "{line}"),
                Startup::Passive => tracing::debug!(target: "rocket_alchemy", "{line}"),
            }
            let default = default_index == Some(index);
            binds.push(Arc::new(BindHandle {
                index,
                default,
                config,
                pool,
                writer,
                tables,
                schema: OnceCell::new(),
                statements: StatementCache::default(),
            }));
        }
        let alchemy = Alchemy {
            binds: binds.into(),
            cursor,
        };
        if startup == Startup::Launch {
            if let Err(e) = alchemy.startup().await {
                alchemy.close().await;
                return Err(e);
            }
        }
        Ok(alchemy)
    }

    /// Migrations, then `create_all`, for each bind that asks for them.
    async fn startup(&self) -> Result<(), LaunchError> {
        for bind in self.binds.iter() {
            let config = &bind.config;
            if config.migrate {
                crate::migrate::startup(bind)
                    .await
                    .map_err(|e| LaunchError::Migrate {
                        bind: config.bind_key.clone(),
                        message: scrub(&e.to_string(), config.url.expose()),
                    })?;
            }
            if !config.create_all {
                continue;
            }
            match bind.ensure_schema().await {
                Ok(()) => tracing::info!(
                    target: "rocket_alchemy",
                    "database `{}`: created target metadata ({} table(s))",
                    config.bind_key,
                    bind.tables.len()
                ),
                Err(SchemaError::Connection(e)) if config.lazy => tracing::warn!(
                    target: "rocket_alchemy",
                    "database `{}` is unreachable ({}); create_all will run on first use",
                    config.bind_key,
                    scrub(&e.to_string(), config.url.expose())
                ),
                Err(source) => {
                    return Err(LaunchError::Schema {
                        bind: config.bind_key.clone(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// The codec of keyset cursors: keyed by Rocket's `secret_key` when configured (so every
    /// instance of an app accepts the others' cursors), by a random key otherwise.
    pub fn cursor_codec(&self) -> &CursorCodec {
        &self.cursor
    }

    /// The number of configured binds.
    pub fn len(&self) -> usize {
        self.binds.len()
    }

    /// Whether no bind is configured (never true for an opened handle).
    pub fn is_empty(&self) -> bool {
        self.binds.is_empty()
    }

    /// The configured bind keys, `default` first.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.binds.iter().map(|b| b.key())
    }

    /// Every bind.
    pub fn binds(&self) -> impl Iterator<Item = &Arc<BindHandle>> + '_ {
        self.binds.iter()
    }

    /// The bind for `key`. `"default"` names the bind keyed `default`, or the only bind when
    /// one is configured.
    pub fn bind(&self, key: &str) -> Result<&Arc<BindHandle>, UnknownBind> {
        let found = match self.binds.iter().position(|b| b.key() == key) {
            Some(i) => Some(i),
            None if key == DEFAULT_KEY && self.binds.len() == 1 => Some(0),
            None => None,
        };
        found
            .map(|i| &self.binds[i])
            .ok_or_else(|| UnknownBind::new(key, self.keys().map(str::to_string).collect()))
    }

    /// The bind of the marker type `B`.
    pub fn bind_of<B: Bind>(&self) -> Result<&Arc<BindHandle>, UnknownBind> {
        self.bind(B::KEY)
    }

    /// The pool of `key`.
    pub fn pool(&self, key: &str) -> Result<&Pool, UnknownBind> {
        self.bind(key).map(|b| b.pool())
    }

    /// A new session on `key`, outside any request: commit it yourself; dropping it rolls
    /// back. It begins as a reader and becomes a writer at its first write (see
    /// [`Access`](crate::Access); [`DbSession::set_access`] changes that).
    pub fn session(&self, key: &str) -> Result<DbSession, UnknownBind> {
        self.bind(key)
            .map(|b| DbSession::new(b.clone(), crate::Access::Read))
    }

    /// Creates the model tables of `key` that do not exist yet.
    pub async fn create_all(&self, key: &str) -> Result<(), LaunchError> {
        let bind = self.bind(key).map_err(|e| config_error(key, e))?;
        schema::create_all(&bind.pool, &bind.tables)
            .await
            .map_err(|source| LaunchError::Schema {
                bind: bind.key().to_string(),
                source,
            })
    }

    /// Drops the model tables of `key` (referencing tables first).
    pub async fn drop_all(&self, key: &str) -> Result<(), LaunchError> {
        let bind = self.bind(key).map_err(|e| config_error(key, e))?;
        schema::drop_all(&bind.pool, &bind.tables)
            .await
            .map_err(|source| LaunchError::Schema {
                bind: bind.key().to_string(),
                source,
            })
    }

    /// Checks every bind: a connection and `SELECT 1` within its `connect_timeout`.
    /// Errors carry no password.
    pub async fn health(&self) -> Vec<(String, Result<(), String>)> {
        let mut out = Vec::with_capacity(self.binds.len());
        for bind in self.binds.iter() {
            let timeout = bind.config.connect_timeout;
            let result = match rocket::tokio::time::timeout(timeout, bind.pool.ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(scrub(&e.to_string(), bind.config.url.expose())),
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            out.push((bind.key().to_string(), result));
        }
        out
    }

    /// Closes every pool: idle connections at once, connections in use as they come back,
    /// waiting at most each bind's `connect_timeout` for them (a session kept alive elsewhere
    /// would otherwise hold the shutdown forever).
    pub async fn close(&self) {
        for bind in self.binds.iter() {
            let timeout = bind.config.connect_timeout;
            if rocket::tokio::time::timeout(timeout, bind.close())
                .await
                .is_err()
            {
                tracing::warn!(
                    target: "rocket_alchemy",
                    "database `{}`: {} connection(s) still in use after {timeout:?}; closing without them",
                    bind.key(),
                    bind.pool.size() as usize - bind.pool.num_idle()
                );
            }
        }
    }
}

/// The cursor codec of an app: HMAC keyed by `secret_key` if set, else random.
pub(crate) fn cursor_codec(figment: &Figment) -> CursorCodec {
    use sha2::Digest;
    match figment.extract_inner::<String>("secret_key") {
        Ok(secret) if !secret.is_empty() => {
            let mut hasher = sha2::Sha256::new();
            hasher.update(b"rocket_alchemy cursor\0");
            hasher.update(secret.as_bytes());
            CursorCodec::new(hasher.finalize().to_vec())
        }
        _ => {
            let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
            key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            CursorCodec::new(key)
        }
    }
}

fn config_error(key: &str, e: UnknownBind) -> LaunchError {
    LaunchError::Config(ConfigError {
        key: format!("databases.{key}"),
        message: e.to_string(),
        origin: None,
    })
}

fn resolve_index(keys: &[String], key: &str) -> Option<usize> {
    match keys.iter().position(|k| k == key) {
        Some(i) => Some(i),
        None if key == DEFAULT_KEY && keys.len() == 1 => Some(0),
        None => None,
    }
}
