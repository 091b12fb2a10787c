//! One configured database: its configuration, pools, models and prepared statements.

use std::sync::Arc;

use rocket::tokio::sync::OnceCell;

use super::prepared::StatementCache;
use crate::config::{Backend, DatabaseConfig};
use crate::ddl::{self, SchemaError};
use crate::driver::{BindPool, ReplicaStatus, Replicas, Writer};
use crate::model::Table;

/// One configured database: its configuration, pool and models.
pub struct BindHandle {
    index: usize,
    /// Whether the default bind resolves to this one.
    default: bool,
    config: DatabaseConfig,
    pool: BindPool,
    writer: Writer,
    tables: Vec<&'static Table>,
    schema: OnceCell<()>,
    statements: StatementCache,
    replicas: Replicas,
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
    pub fn pool(&self) -> &BindPool {
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

    /// Closes its pool (and SQLite's write connection, and the replicas' pools).
    pub(crate) async fn close(&self) {
        self.replicas.close().await;
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Whether it has read replicas.
    pub fn has_replicas(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// A replica's pool for a read that must see the primary's position `at_least` (0:
    /// any); `None`: read on the primary.
    pub(crate) fn replica_pool(&self, at_least: u64) -> Option<BindPool> {
        self.replicas.choose(at_least)
    }

    /// The primary's position after a commit (`None` without replicas).
    pub(crate) async fn commit_position(&self) -> Option<u64> {
        self.replicas
            .commit_position(&self.pool, &self.writer)
            .await
    }

    /// Where each of its read replicas stands.
    pub fn replicas(&self) -> Vec<ReplicaStatus> {
        self.replicas.status()
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
            .get_or_try_init(|| async {
                ddl::create_all(&self.pool, &self.tables).await?;
                self.schema_changed().await;
                Ok(())
            })
            .await
            .map(drop)
    }

    /// After DDL on the primary: replicas serve no read until they have replayed it (a
    /// replica within `max_replica_lag` may still lack a table just created).
    pub(crate) async fn schema_changed(&self) {
        self.replicas.settle(&self.pool, &self.writer).await;
    }
}

impl BindHandle {
    /// Opens the pools of `config` (see [`BindPool::open`]).
    pub(crate) async fn open(
        index: usize,
        default: bool,
        config: DatabaseConfig,
        tables: Vec<&'static Table>,
    ) -> Result<Arc<BindHandle>, sqlx::Error> {
        let (pool, writer) = BindPool::open(&config).await?;
        let replicas = Replicas::open(&config)?;
        replicas.start(&pool, &writer);
        Ok(Arc::new(BindHandle {
            index,
            default,
            config,
            pool,
            writer,
            tables,
            schema: OnceCell::new(),
            statements: StatementCache::default(),
            replicas,
        }))
    }
}
