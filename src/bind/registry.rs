//! The [`Alchemy`] handle: every configured bind, reachable at run time by key.

use std::sync::Arc;

use rocket::{Phase, Rocket};

use super::{Bind, BindHandle, LaunchError, UnknownBind, DEFAULT_KEY};
use crate::config::{scrub, ConfigError};
use crate::ddl;
use crate::driver::BindPool;

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
    /// The key of keyset cursors (see `Alchemy::cursor_codec`).
    cursor_key: Arc<[u8]>,
}

impl std::fmt::Debug for Alchemy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.binds.iter()).finish()
    }
}

impl Alchemy {
    /// The handle of opened binds.
    pub(crate) fn new(binds: Vec<Arc<BindHandle>>, cursor_key: Vec<u8>) -> Self {
        Alchemy {
            binds: binds.into(),
            cursor_key: cursor_key.into(),
        }
    }

    /// The key keyset cursors are signed with.
    pub(crate) fn cursor_key(&self) -> &[u8] {
        &self.cursor_key
    }

    /// The handle managed by an attached fairing.
    pub fn fetch<P: Phase>(rocket: &Rocket<P>) -> Option<&Alchemy> {
        rocket.state::<Alchemy>()
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
    pub fn pool(&self, key: &str) -> Result<&BindPool, UnknownBind> {
        self.bind(key).map(|b| b.pool())
    }

    /// Creates the model tables of `key` that do not exist yet.
    pub async fn create_all(&self, key: &str) -> Result<(), LaunchError> {
        let bind = self.bind(key).map_err(|e| config_error(key, e))?;
        ddl::create_all(bind.pool(), bind.tables())
            .await
            .map_err(|source| LaunchError::Schema {
                bind: bind.key().to_string(),
                source,
            })
    }

    /// Drops the model tables of `key` (referencing tables first).
    pub async fn drop_all(&self, key: &str) -> Result<(), LaunchError> {
        let bind = self.bind(key).map_err(|e| config_error(key, e))?;
        ddl::drop_all(bind.pool(), bind.tables())
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
            let timeout = bind.config().connect_timeout;
            let result = match rocket::tokio::time::timeout(timeout, bind.pool().ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(scrub(&e.to_string(), bind.config().url.expose())),
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            out.push((bind.key().to_string(), result));
        }
        out
    }

    /// Where each read replica of bind `key` stands: its lag, whether it serves reads, why
    /// it is down. Empty for a bind without replicas.
    pub fn replicas(&self, key: &str) -> Result<Vec<crate::driver::ReplicaStatus>, UnknownBind> {
        self.bind(key).map(|bind| bind.replicas())
    }

    /// Closes every pool: idle connections at once, connections in use as they come back,
    /// waiting at most each bind's `connect_timeout` for them (a session kept alive elsewhere
    /// would otherwise hold the shutdown forever).
    pub async fn close(&self) {
        for bind in self.binds.iter() {
            let timeout = bind.config().connect_timeout;
            if rocket::tokio::time::timeout(timeout, bind.close())
                .await
                .is_err()
            {
                tracing::warn!(
                    target: "rocket_alchemy",
                    "database `{}`: {} connection(s) still in use after {timeout:?}; closing without them",
                    bind.key(),
                    bind.pool().size() as usize - bind.pool().num_idle()
                );
            }
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

pub(crate) fn resolve_index(keys: &[String], key: &str) -> Option<usize> {
    match keys.iter().position(|k| k == key) {
        Some(i) => Some(i),
        None if key == DEFAULT_KEY && keys.len() == 1 => Some(0),
        None => None,
    }
}
