//! The `Session` request guard: the request's session on one bind.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::OnceLock;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

use crate::alchemy::Alchemy;
use crate::bind::{Bind, DefaultBind};
use crate::session::{DbSession, SessionError};

/// The sessions of one request, one slot per configured bind, created on the first guard.
pub(crate) struct RequestSessions {
    slots: Box<[OnceLock<DbSession>]>,
}

impl RequestSessions {
    /// What the fairing sees on requests that used no guard: no allocation for the slots.
    pub(crate) fn empty() -> Self {
        RequestSessions {
            slots: Box::new([]),
        }
    }

    fn new(binds: usize) -> Self {
        RequestSessions {
            slots: (0..binds).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The sessions that began a transaction in this request, in the order they first did
    /// (without allocating: a request uses a handful of binds at most).
    pub(crate) fn used(&self) -> impl Iterator<Item = &DbSession> + '_ {
        let mut after = 0;
        std::iter::from_fn(move || {
            let next = self
                .slots
                .iter()
                .filter_map(OnceLock::get)
                .filter(|s| s.first_use() > after)
                .min_by_key(|s| s.first_use())?;
            after = next.first_use();
            Some(next)
        })
    }
}

/// Request guard: the request's session on bind `B` (the default bind unless named).
///
/// It derefs to [`DbSession`], so everything a session does is available on it. Guards of
/// the same bind in one request share one session (and transaction); each bind has its
/// own. Taking the guard costs nothing: the transaction begins with the first statement.
/// When the response leaves, the fairing commits or rolls back according to the bind's
/// [`CommitMode`](crate::CommitMode).
///
/// ```
/// use rocket_alchemy::{Bind, Session, SessionError};
///
/// #[derive(Bind)]
/// #[bind("audit")]
/// struct Audit;
///
/// #[rocket::delete("/items/<id>")]
/// async fn delete(id: i64, db: Session<'_>, audit: Session<'_, Audit>) -> Result<(), SessionError> {
///     // statements on `db` and `audit` run in two transactions, committed in the
///     // order the binds were first used.
///     # let _ = (id, db, audit);
///     Ok(())
/// }
/// ```
///
/// If the fairing is missing, or `B` is not configured (or, for the default bind, several
/// databases are configured and none is keyed `default`), the route's Sentinel refuses the
/// launch and says why.
pub struct Session<'r, B: Bind = DefaultBind> {
    session: &'r DbSession,
    _bind: PhantomData<fn() -> B>,
}

impl<B: Bind> std::fmt::Debug for Session<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Session").field(self.session).finish()
    }
}

impl<B: Bind> Clone for Session<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Bind> Copy for Session<'_, B> {}

impl<B: Bind> Deref for Session<'_, B> {
    type Target = DbSession;
    fn deref(&self) -> &DbSession {
        self.session
    }
}

impl<'r, B: Bind> Session<'r, B> {
    /// The underlying session, with the request's lifetime.
    pub fn session(&self) -> &'r DbSession {
        self.session
    }
}

#[rocket::async_trait]
impl<'r, B: Bind> FromRequest<'r> for Session<'r, B> {
    type Error = SessionError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, SessionError> {
        let Some(alchemy) = Alchemy::fetch(request.rocket()) else {
            return Outcome::Error((Status::InternalServerError, SessionError::NotAttached));
        };
        let bind = match alchemy.bind(B::KEY) {
            Ok(bind) => bind,
            Err(e) => return Outcome::Error((Status::InternalServerError, e.into())),
        };
        let sessions = request.local_cache(|| RequestSessions::new(alchemy.len()));
        match sessions.slots.get(bind.index()) {
            Some(slot) => Outcome::Success(Session {
                session: slot.get_or_init(|| DbSession::new(bind.clone())),
                _bind: PhantomData,
            }),
            None => Outcome::Error((Status::InternalServerError, SessionError::NotAttached)),
        }
    }
}

impl<B: Bind> Sentinel for Session<'_, B> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        let Some(alchemy) = Alchemy::fetch(rocket) else {
            tracing::error!(
                target: "rocket_alchemy",
                "a route takes `Session<'_, {}>`, but the rocket_alchemy fairing is not attached \
                 (or failed): add `.attach(Alchemy::fairing())`",
                std::any::type_name::<B>()
            );
            return true;
        };
        match alchemy.bind(B::KEY) {
            Ok(_) => false,
            Err(e) => {
                tracing::error!(
                    target: "rocket_alchemy",
                    "a route takes `Session<'_, {}>` (bind key \"{}\"): {e}",
                    std::any::type_name::<B>(),
                    B::KEY
                );
                true
            }
        }
    }
}
