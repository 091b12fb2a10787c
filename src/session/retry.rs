//! Re-running a transaction that failed for a reason a retry may cure (a serialization
//! failure, a deadlock, a lock or statement timeout), for work outside requests.
//!
//! A request's handler cannot be re-run from `on_response`, so a request whose commit
//! conflicts answers 409 with `Retry-After`; jobs and commands use
//! [`Alchemy::retrying`](crate::Alchemy::retrying).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use rocket::futures::future::BoxFuture;

use super::DbSession;
use crate::bind::Alchemy;
use crate::session::Access;

/// How [`Alchemy::retrying`] retries: at most `attempts` runs in all, sleeping a random time
/// between 0 and `base × 2^(n-1)` (capped at `max`) after the `n`th failure ("full jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retry {
    /// Runs in all, the first included. _Default:_ 5.
    pub attempts: u32,
    /// The first back-off's upper bound. _Default:_ 10 ms.
    pub base: Duration,
    /// The largest back-off. _Default:_ 1 s.
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
        }
    }
}

impl Retry {
    /// At most `attempts` runs (at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The back-off after the `failures`th failure: uniform in `[0, min(max, base × 2^(failures-1))]`.
    fn backoff(&self, failures: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.max);
        // A fresh random key per call: std's hasher seeds are random per process and thread.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        ceiling.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
    }
}

impl Alchemy {
    /// Runs `work` in a transaction on bind `key` and commits it; when the work or the commit
    /// fails with a transient error ([`ErrorKind::is_transient`](crate::ErrorKind::is_transient):
    /// serialization failure, deadlock, lock or statement timeout, lost connection before
    /// `COMMIT`), rolls back and runs it again in a new transaction after a randomised
    /// back-off, at most `retry.attempts` times in all; then gives up with the last error.
    /// Errors that are not transient (and a commit whose outcome is unknown) are returned at
    /// once. The session begins as a writer.
    ///
    /// ```
    /// use rocket_alchemy::{Alchemy, Retry};
    /// use sea_query::{Expr, ExprTrait, Query};
    ///
    /// async fn bump(alchemy: &Alchemy) -> Result<u64, rocket_alchemy::Error> {
    ///     alchemy
    ///         .retrying("default", Retry::default(), |session| {
    ///             Box::pin(async move {
    ///                 let update = Query::update()
    ///                     .table("counter")
    ///                     .value("n", Expr::col("n").add(1))
    ///                     .to_owned();
    ///                 Ok(session.execute(&update).await?)
    ///             })
    ///         })
    ///         .await
    /// }
    /// ```
    pub async fn retrying<T, F>(
        &self,
        key: &str,
        retry: Retry,
        mut work: F,
    ) -> Result<T, crate::Error>
    where
        F: for<'s> FnMut(&'s DbSession) -> BoxFuture<'s, Result<T, crate::Error>>,
    {
        let mut failures = 0;
        loop {
            let session = self.session(key)?;
            session.set_access(Access::Write);
            let result = match work(&session).await {
                Ok(value) => session.commit().await.map(|()| value).map_err(Into::into),
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            // Rolls back what is left (nothing after a failed commit).
            let _ = session.rollback().await;
            failures += 1;
            if !error.kind().is_transient() || failures >= retry.attempts.max(1) {
                return Err(error);
            }
            let pause = retry.backoff(failures);
            tracing::debug!(target: "rocket_alchemy", bind = key, error = %error, "transient failure; retrying in {pause:?} ({failures}/{})", retry.attempts);
            rocket::tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let retry = Retry::default();
        for failures in 1..30 {
            let ceiling = (retry.base * (1 << (failures - 1).min(20))).min(retry.max);
            assert!(retry.backoff(failures) <= ceiling);
        }
        // Randomised: a thousand draws are not all the same.
        let draws: std::collections::HashSet<_> = (0..1000).map(|_| retry.backoff(5)).collect();
        assert!(draws.len() > 100);
    }
}
