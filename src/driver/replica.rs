//! Read replicas of a bind: which one serves a read, and where each stands. PostgreSQL's
//! hot standbys are the only kind so far (`driver/postgres/replica.rs`).

use std::time::Duration;

use super::{BindPool, Writer};
use crate::config::{DatabaseConfig, RedactedUrl};

#[cfg(feature = "postgres")]
use std::sync::Arc;

/// Where a read replica stands (see [`Alchemy::replicas`](crate::Alchemy::replicas)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Its URL (password hidden).
    pub url: RedactedUrl,
    /// How far behind the primary it was at the last check; `None` while it is down.
    pub lag: Option<Duration>,
    /// Whether it serves reads (up, and lagging at most `max_replica_lag`).
    pub serving: bool,
    /// Why it is down.
    pub error: Option<String>,
}

/// The replicas of a bind (none on most).
#[derive(Debug, Default)]
pub(crate) struct Replicas {
    #[cfg(feature = "postgres")]
    postgres: Option<Arc<super::postgres::replica::ReplicaSet>>,
}

impl Replicas {
    /// Lazy pools on the replicas of `config`, not yet monitored.
    pub(crate) fn open(config: &DatabaseConfig) -> Result<Self, sqlx::Error> {
        let _ = config;
        Ok(Replicas {
            #[cfg(feature = "postgres")]
            postgres: super::postgres::replica::ReplicaSet::open(config)?,
        })
    }

    /// Starts watching the replicas against the primary `pool`.
    pub(crate) fn start(&self, pool: &BindPool, writer: &Writer) {
        let _ = (pool, writer);
        #[cfg(feature = "postgres")]
        if let (Some(set), Some(primary)) = (&self.postgres, pool.as_postgres()) {
            set.start(primary.clone(), writer.named_statements());
        }
    }

    /// Whether the bind has replicas.
    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(feature = "postgres")]
        if self.postgres.is_some() {
            return false;
        }
        true
    }

    /// A replica's pool for a read that must see position `at_least` (0: any), or `None`
    /// (read on the primary).
    pub(crate) fn choose(&self, at_least: u64) -> Option<BindPool> {
        let _ = at_least;
        #[cfg(feature = "postgres")]
        if let Some(set) = &self.postgres {
            return set.choose(at_least).map(BindPool::Postgres);
        }
        None
    }

    /// The primary's position after a commit: what a replica must have replayed to show it.
    /// `None` without replicas, or if the primary did not answer.
    pub(crate) async fn commit_position(&self, pool: &BindPool, writer: &Writer) -> Option<u64> {
        let _ = (pool, writer);
        #[cfg(feature = "postgres")]
        if let (Some(_), Some(primary)) = (&self.postgres, pool.as_postgres()) {
            return super::postgres::replica::current_position(primary, writer.named_statements())
                .await
                .ok()
                .flatten();
        }
        None
    }

    /// Makes every later read on a replica wait for the primary's current position (after
    /// DDL).
    pub(crate) async fn settle(&self, pool: &BindPool, writer: &Writer) {
        let _ = (pool, writer);
        #[cfg(feature = "postgres")]
        if let Some(set) = &self.postgres {
            match self.commit_position(pool, writer).await {
                Some(position) => set.raise_floor(position),
                None => {
                    tracing::warn!(target: "rocket_alchemy", "could not read the primary's WAL position after DDL: replicas may serve reads before they have it")
                }
            }
        }
    }

    /// Where each replica stands.
    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        #[cfg(feature = "postgres")]
        if let Some(set) = &self.postgres {
            return set.status();
        }
        Vec::new()
    }

    /// Stops watching and closes the pools.
    pub(crate) async fn close(&self) {
        #[cfg(feature = "postgres")]
        if let Some(set) = &self.postgres {
            set.close().await;
        }
    }
}
