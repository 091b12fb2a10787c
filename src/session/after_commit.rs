//! Work that runs only once a session's transaction has committed: [`DbSession::on_commit`].

use std::future::Future;

use rocket::futures::future::BoxFuture;

use super::DbSession;

/// A hook waiting for its transaction's commit.
pub(super) enum AfterCommit {
    /// Spawned onto the runtime once committed: the response does not wait for it.
    Spawned(BoxFuture<'static, ()>),
    /// Awaited right after the commit, before the response (or `commit()`) returns.
    Awaited(BoxFuture<'static, ()>),
}

impl DbSession {
    /// Runs `work` once this session's current transaction has committed — the fairing's
    /// commit by the commit mode, or your own [`DbSession::commit`] — and never if it rolls
    /// back, if its commit fails, or if the session is dropped uncommitted. The work is
    /// spawned: the response it belongs to does not wait for it (see
    /// [`DbSession::on_commit_awaited`] for work that must finish first). Hooks run in the
    /// order they were added; a session that wrote nothing still "commits" when its commit
    /// mode says so, and its hooks run then.
    ///
    /// For effects outside the database that must not happen for data that was never
    /// committed: an email, a cache invalidation, an event on a queue.
    ///
    /// ```
    /// use rocket_alchemy::{Session, SessionError};
    ///
    /// #[rocket::post("/orders/<id>/ship")]
    /// async fn ship(id: i64, session: Session<'_>) -> Result<&'static str, SessionError> {
    ///     // … update the order through the session …
    ///     session.on_commit(async move {
    ///         // e.g. mailer.send_shipped(id).await — only if the update was committed
    ///         let _ = id;
    ///     });
    ///     Ok("shipping")
    /// }
    /// ```
    pub fn on_commit<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.after_commit(AfterCommit::Spawned(Box::pin(work)));
    }

    /// [`DbSession::on_commit`], but awaited right after the commit succeeds, before the
    /// response leaves (or before your `commit()` returns): for work the client must be able
    /// to rely on, such as invalidating a cache it reads next. It delays the response by
    /// as long as it takes.
    pub fn on_commit_awaited<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.after_commit(AfterCommit::Awaited(Box::pin(work)));
    }

    fn after_commit(&self, hook: AfterCommit) {
        self.hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// The transaction committed: spawns or awaits its hooks, in order.
    pub(super) async fn run_after_commit(&self) {
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(|e| e.into_inner()));
        for hook in hooks {
            match hook {
                AfterCommit::Spawned(work) => {
                    rocket::tokio::spawn(work);
                }
                AfterCommit::Awaited(work) => work.await,
            }
        }
    }

    /// The transaction did not commit: its hooks are dropped unrun.
    pub(super) fn drop_after_commit(&self) {
        let dropped = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(|e| e.into_inner()));
        if !dropped.is_empty() {
            tracing::debug!(
                target: "rocket_alchemy::session",
                bind = self.bind_key(),
                "{} after-commit hook(s) dropped: the transaction did not commit",
                dropped.len()
            );
        }
    }
}
