//! Savepoints: nested transactions that can roll back alone.

use std::sync::atomic::Ordering;

use super::db_session::State;
use super::{DbSession, SessionError};
use crate::driver::Need;

impl DbSession {
    /// Opens a savepoint (beginning the transaction if needed): a nested transaction that
    /// can be rolled back alone. Dropping it without [`Savepoint::release`] rolls it back.
    ///
    /// ```
    /// use rocket_alchemy::{DbSession, SessionError};
    ///
    /// async fn try_optional_step(session: &DbSession) -> Result<(), SessionError> {
    ///     let savepoint = session.savepoint().await?;
    ///     // ... statements through `session` ...
    ///     savepoint.rollback().await?; // undoes only what ran since the savepoint
    ///     Ok(())
    /// }
    /// ```
    pub async fn savepoint(&self) -> Result<Savepoint<'_>, SessionError> {
        let mut state = self.active(Need::Transaction).await?;
        let depth = state.savepoints + 1;
        self.raw(&mut state, format!("SAVEPOINT ra_sp_{depth}"))
            .await?;
        state.savepoints = depth;
        Ok(Savepoint {
            session: self,
            generation: state.generation,
            depth,
            open: true,
        })
    }

    async fn end_savepoint(
        &self,
        generation: u64,
        depth: u32,
        rollback: bool,
    ) -> Result<(), SessionError> {
        let mut state = self.state.try_lock().map_err(|_| self.busy())?;
        if !state.in_tx() || state.generation != generation || state.savepoints < depth {
            return Err(SessionError::SavepointClosed {
                bind: self.bind.key().to_string(),
            });
        }
        self.end_savepoint_locked(&mut state, depth, rollback).await
    }

    async fn end_savepoint_locked(
        &self,
        state: &mut State,
        depth: u32,
        rollback: bool,
    ) -> Result<(), SessionError> {
        if rollback {
            self.raw(state, format!("ROLLBACK TO SAVEPOINT ra_sp_{depth}"))
                .await?;
            // Rolling back past the failure clears the aborted state (not on MySQL, where a
            // deadlock rolls the whole transaction back).
            let clears = self.backend().dialect().savepoint_rollback_clears_abort();
            if clears && matches!(state.aborted, Some((at, _)) if at >= depth) {
                state.aborted = None;
            }
        }
        self.raw(state, format!("RELEASE SAVEPOINT ra_sp_{depth}"))
            .await?;
        state.savepoints = depth - 1;
        Ok(())
    }

    /// Rolls back the savepoints dropped without release or rollback, deepest first.
    pub(super) async fn rollback_dropped_savepoints(
        &self,
        state: &mut State,
    ) -> Result<(), SessionError> {
        let mut dropped = {
            let mut list = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
            self.has_dropped.store(false, Ordering::Release);
            std::mem::take(&mut *list)
        };
        dropped.sort_by_key(|&(_, depth)| std::cmp::Reverse(depth));
        for (generation, depth) in dropped {
            if generation == state.generation && depth <= state.savepoints {
                self.end_savepoint_locked(state, depth, true).await?;
            }
        }
        Ok(())
    }
}

/// A savepoint inside a session's transaction. See [`DbSession::savepoint`].
#[must_use = "a savepoint dropped without `release` is rolled back"]
pub struct Savepoint<'s> {
    session: &'s DbSession,
    generation: u64,
    depth: u32,
    open: bool,
}

impl std::fmt::Debug for Savepoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Savepoint")
            .field("depth", &self.depth)
            .field("open", &self.open)
            .finish()
    }
}

impl Savepoint<'_> {
    /// Keeps what ran since the savepoint (part of the enclosing transaction).
    pub async fn release(mut self) -> Result<(), SessionError> {
        self.open = false;
        self.session
            .end_savepoint(self.generation, self.depth, false)
            .await
    }

    /// Undoes what ran since the savepoint; the enclosing transaction goes on.
    pub async fn rollback(mut self) -> Result<(), SessionError> {
        self.open = false;
        self.session
            .end_savepoint(self.generation, self.depth, true)
            .await
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            let mut list = self
                .session
                .dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            list.push((self.generation, self.depth));
            self.session.has_dropped.store(true, Ordering::Release);
        }
    }
}
