//! PostgreSQL read replicas (hot standbys): their pools, a monitor that measures how far
//! each lags behind the primary, and the choice of a replica for a read.
//!
//! Positions are WAL positions (LSNs). The monitor samples the primary's
//! `pg_current_wal_lsn()` and each replica's `pg_last_wal_replay_lsn()` every
//! [`CHECK_EVERY`]. A replica's lag is how long ago the primary was at the position the
//! replica has now replayed (0 when it has replayed everything the primary had written at the
//! last sample). Replay only moves forward, so the position last read from a replica is a
//! lower bound of where it is now: a read that needs position `p` may go to a replica known to
//! have replayed `p`, never to one that might not have.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, Postgres};

use crate::config::{DatabaseConfig, RedactedUrl};
use crate::driver::pool::log_options;
use crate::driver::ReplicaStatus;

/// How often the monitor samples positions.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(100);

/// How long one check may take before the replica counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

struct Replica {
    url: RedactedUrl,
    pool: PgPool,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// The last replay position read from it, if it answered.
    replayed: Option<u64>,
    /// Its lag at the last check; `None` while down or not checked yet.
    lag: Option<Duration>,
    /// Why it is down.
    error: Option<String>,
}

/// The replicas of one bind.
pub(crate) struct ReplicaSet {
    replicas: Vec<Replica>,
    max_lag: Duration,
    /// The position every read on a replica needs at least (the primary's after DDL).
    floor: AtomicU64,
    next: AtomicUsize,
    monitor: Mutex<Vec<rocket::tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for ReplicaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.replicas.iter().map(|r| r.url.to_string()))
            .finish()
    }
}

impl ReplicaSet {
    /// Lazy pools on the replicas of `config`; `None` without replicas. Nothing connects
    /// until [`ReplicaSet::start`]: a replica that is down never stops the launch.
    pub(crate) fn open(config: &DatabaseConfig) -> Result<Option<Arc<Self>>, sqlx::Error> {
        if config.replicas.is_empty() {
            return Ok(None);
        }
        let mut replicas = Vec::with_capacity(config.replicas.len());
        for url in &config.replicas {
            let mut options = log_options(PgConnectOptions::from_str(url.expose())?, config);
            if !config.pooler.named_statements() {
                options = options.statement_cache_capacity(0);
            }
            let pool = crate::driver::pool::pool_options::<Postgres>(config)
                .min_connections(0)
                .connect_lazy_with(options);
            replicas.push(Replica {
                url: url.clone(),
                pool,
                state: Mutex::new(State::default()),
            });
        }
        Ok(Some(Arc::new(ReplicaSet {
            replicas,
            max_lag: config.max_replica_lag,
            floor: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            monitor: Mutex::new(Vec::new()),
        })))
    }

    /// Starts the monitor (on the current Tokio runtime): one task samples `primary`, one per
    /// replica checks it, so a replica that hangs delays no other check.
    pub(crate) fn start(self: &Arc<Self>, primary: PgPool, named: bool) {
        // (when, primary position) samples, oldest first, covering at least `max_lag`.
        let history: Arc<Mutex<VecDeque<(Instant, u64)>>> = Arc::default();
        let mut tasks = Vec::with_capacity(self.replicas.len() + 1);
        let (set, samples) = (Arc::downgrade(self), history.clone());
        tasks.push(rocket::tokio::spawn(async move {
            loop {
                let Some(keep) = set.upgrade().map(|set| set.max_lag + CHECK_EVERY * 10) else {
                    return;
                };
                let now = Instant::now();
                let sample =
                    rocket::tokio::time::timeout(CHECK_TIMEOUT, position(&primary, CURRENT, named))
                        .await;
                if let Ok(Ok(Some(lsn))) = sample {
                    let mut history = samples.lock().expect("not poisoned");
                    history.push_back((now, lsn));
                    while history.len() > 2 && history[1].0 + keep < now {
                        history.pop_front();
                    }
                }
                rocket::tokio::time::sleep(CHECK_EVERY).await;
            }
        }));
        for index in 0..self.replicas.len() {
            let (set, history) = (Arc::downgrade(self), history.clone());
            tasks.push(rocket::tokio::spawn(async move {
                loop {
                    let Some(set) = set.upgrade() else { return };
                    let replica = &set.replicas[index];
                    let result = rocket::tokio::time::timeout(
                        CHECK_TIMEOUT,
                        position(&replica.pool, REPLAYED, named),
                    )
                    .await;
                    let now = Instant::now();
                    {
                        let mut state = replica.state.lock().expect("not poisoned");
                        match result {
                            Ok(Ok(Some(replayed))) => {
                                state.replayed =
                                    Some(state.replayed.map_or(replayed, |r| r.max(replayed)));
                                let history = history.lock().expect("not poisoned");
                                state.lag = Some(lag(&history, replayed, now));
                                state.error = None;
                            }
                            Ok(Ok(None)) => {
                                state.lag = None;
                                state.error = Some("not a standby (not in recovery)".into());
                            }
                            Ok(Err(e)) => {
                                state.lag = None;
                                state.error = Some(crate::config::scrub(
                                    &e.to_string(),
                                    replica.url.expose(),
                                ));
                            }
                            Err(_) => {
                                state.lag = None;
                                state.error = Some(format!("no answer within {CHECK_TIMEOUT:?}"));
                            }
                        }
                    }
                    drop(set);
                    rocket::tokio::time::sleep(CHECK_EVERY).await;
                }
            }));
        }
        *self.monitor.lock().expect("not poisoned") = tasks;
    }

    /// A replica for a read that must see position `at_least` (0: any), spread round-robin
    /// over the eligible ones: up, lagging at most `max_replica_lag`, and known to have
    /// replayed `at_least`. `None`: read on the primary.
    pub(crate) fn choose(&self, at_least: u64) -> Option<PgPool> {
        let at_least = at_least.max(self.floor.load(Ordering::Relaxed));
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.replicas[(start + i) % n])
            .find_map(|replica| {
                let state = replica.state.lock().expect("not poisoned");
                let fresh = state.lag.is_some_and(|lag| lag <= self.max_lag);
                let caught_up = state.replayed.is_some_and(|r| r >= at_least);
                (fresh && caught_up).then(|| replica.pool.clone())
            })
    }

    /// Every later read on a replica needs at least `position`.
    pub(crate) fn raise_floor(&self, position: u64) {
        self.floor.fetch_max(position, Ordering::Relaxed);
    }

    /// Where each replica stands.
    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .iter()
            .map(|replica| {
                let state = replica.state.lock().expect("not poisoned").clone();
                ReplicaStatus {
                    url: replica.url.clone(),
                    lag: state.lag,
                    serving: state.lag.is_some_and(|lag| lag <= self.max_lag),
                    error: state.error,
                }
            })
            .collect()
    }

    /// Stops the monitor and closes the pools.
    pub(crate) async fn close(&self) {
        for task in self.monitor.lock().expect("not poisoned").drain(..) {
            task.abort();
        }
        for replica in &self.replicas {
            replica.pool.close().await;
        }
    }
}

/// How long ago the primary was at `replayed`: 0 if it was there at the last sample.
fn lag(history: &VecDeque<(Instant, u64)>, replayed: u64, now: Instant) -> Duration {
    match history.back() {
        None => Duration::ZERO,
        Some(&(_, latest)) if replayed >= latest => Duration::ZERO,
        Some(_) => {
            // The first sample past `replayed`: the replica has been behind since then.
            let behind_since = history
                .iter()
                .find(|&&(_, lsn)| lsn > replayed)
                .map(|&(at, _)| at)
                .unwrap_or(now);
            now.saturating_duration_since(behind_since)
        }
    }
}

const CURRENT: &str = "SELECT pg_current_wal_lsn()::text";
const REPLAYED: &str = "SELECT pg_last_wal_replay_lsn()::text";

/// Reads a WAL position with `sql` on `pool`; `None` when it is NULL (a replay position
/// asked of a server that is not in recovery).
async fn position(
    pool: &PgPool,
    sql: &'static str,
    named: bool,
) -> Result<Option<u64>, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar(sql)
        .persistent(named)
        .fetch_one(pool)
        .await?;
    Ok(text.as_deref().and_then(parse_lsn))
}

/// The primary's current WAL position: after a commit, a position the replicas must have
/// replayed for the commit to be visible there.
pub(crate) async fn current_position(
    pool: &PgPool,
    named: bool,
) -> Result<Option<u64>, sqlx::Error> {
    position(pool, CURRENT, named).await
}

/// `16/B374D848` → the 64-bit position.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("nope"), None);
    }

    #[test]
    fn lag_is_the_age_of_the_first_unreplayed_sample() {
        let t0 = Instant::now();
        let history: VecDeque<_> = [
            (t0, 10),
            (t0 + Duration::from_secs(1), 20),
            (t0 + Duration::from_secs(2), 30),
        ]
        .into();
        let now = t0 + Duration::from_secs(3);
        assert_eq!(lag(&history, 30, now), Duration::ZERO);
        assert_eq!(lag(&history, 25, now), Duration::from_secs(1));
        assert_eq!(lag(&history, 20, now), Duration::from_secs(1));
        assert_eq!(lag(&history, 15, now), Duration::from_secs(2));
        assert_eq!(lag(&history, 5, now), Duration::from_secs(3));
    }
}
