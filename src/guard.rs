//! The `Session` request guard: the request's session on one bind.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

use rocket::request::{FromRequest, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

use crate::bind::position;
use crate::bind::Alchemy;
use crate::bind::{Bind, DefaultBind};
use crate::fairing::SessionHookState;
use crate::session::Access;
use crate::session::{DbSession, SessionError};

/// The sessions of one request, one slot per configured bind, created on the first guard.
pub(crate) struct RequestSessions {
    slots: Box<[OnceLock<DbSession>]>,
    /// How the request's sessions begin ([`Access`] as a `u8`): by method, or as an
    /// [`AsWriter`] / [`AsReader`] guard says.
    access: AtomicU8,
    /// The [`OnPrimary`] guard ran: no reads on replicas.
    primary: AtomicBool,
}

impl RequestSessions {
    /// What the fairing sees on requests that used no guard: no allocation for the slots.
    pub(crate) fn empty() -> Self {
        RequestSessions {
            slots: Box::new([]),
            access: AtomicU8::new(Access::Read.to_u8()),
            primary: AtomicBool::new(false),
        }
    }

    fn new(binds: usize, access: Access) -> Self {
        RequestSessions {
            slots: (0..binds).map(|_| OnceLock::new()).collect(),
            access: AtomicU8::new(access.to_u8()),
            primary: AtomicBool::new(false),
        }
    }

    fn of<'r>(request: &'r Request<'_>, binds: usize) -> &'r RequestSessions {
        request.local_cache(|| RequestSessions::new(binds, Access::for_method(request.method())))
    }

    /// Sends the request's reads to the primary, those of sessions created already included.
    fn use_primary(&self) {
        self.primary.store(true, Ordering::Relaxed);
        for session in self.slots.iter().filter_map(OnceLock::get) {
            session.use_primary();
        }
    }

    /// Sets the access of the request's sessions, those created already included.
    fn set_access(&self, access: Access) {
        self.access.store(access.to_u8(), Ordering::Relaxed);
        for session in self.slots.iter().filter_map(OnceLock::get) {
            session.set_access(access);
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
        let fail = |e: SessionError| Outcome::Error((e.status(), e));
        let Some(alchemy) = Alchemy::fetch(request.rocket()) else {
            return fail(SessionError::NotAttached);
        };
        let bind = match alchemy.bind(B::KEY) {
            Ok(bind) => bind,
            Err(e) => return fail(e.into()),
        };
        let sessions = RequestSessions::of(request, alchemy.len());
        let Some(slot) = sessions.slots.get(bind.index()) else {
            return fail(SessionError::NotAttached);
        };
        if slot.get().is_none() {
            let access = Access::from_u8(sessions.access.load(Ordering::Relaxed));
            let session = DbSession::new(bind.clone(), access);
            if bind.has_replicas() && !sessions.primary.load(Ordering::Relaxed) {
                // Reads may go to a replica that has replayed this client's last commit.
                let at_least = request
                    .cookies()
                    .get(&position::cookie_name(bind.key()))
                    .and_then(|c| position::decode(alchemy.cursor_key(), bind.key(), c.value()))
                    .unwrap_or(0);
                session.read_from_replicas(at_least);
            }
            if let Some(SessionHookState(hook)) = request.rocket().state::<SessionHookState>() {
                if let Err(status) = hook(request, &session).await {
                    return Outcome::Error((
                        status,
                        SessionError::Refused {
                            bind: bind.key().to_string(),
                            status: status.code,
                        },
                    ));
                }
            }
            // Guards of one request run one after another: the slot is still empty.
            let _ = slot.set(session);
        }
        match slot.get() {
            Some(session) => Outcome::Success(Session {
                session,
                _bind: PhantomData,
            }),
            None => fail(SessionError::NotAttached),
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

/// Request guard: the request's sessions begin as writers, whatever its method. Take it in a
/// safe-method route that reads and then writes (on SQLite its reads then share the write
/// transaction's snapshot, so the write cannot fail on a stale one). See [`Access`].
///
/// ```
/// use rocket_alchemy::{AsWriter, Session};
///
/// #[rocket::get("/visits/next")]
/// async fn next_visit(_writer: AsWriter, db: Session<'_>) -> &'static str {
///     // read the counter, write it back: one writer transaction
///     # let _ = db;
///     "ok"
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AsWriter;

/// Request guard: the request's sessions begin as readers, whatever its method, and become
/// writers at their first write. Take it in an unsafe-method route that mostly reads (a
/// search by `POST`), so it does not wait in SQLite's write queue. See [`Access`].
///
/// ```
/// use rocket_alchemy::{AsReader, Session};
///
/// #[rocket::post("/search")]
/// async fn search(_reader: AsReader, db: Session<'_>) -> &'static str {
///     # let _ = db;
///     "[]"
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AsReader;

/// Sets the access of `request`'s sessions (without the fairing there are none to set).
fn set_request_access(request: &Request<'_>, access: Access) {
    if let Some(alchemy) = Alchemy::fetch(request.rocket()) {
        RequestSessions::of(request, alchemy.len()).set_access(access);
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AsWriter {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        set_request_access(request, Access::Write);
        Outcome::Success(AsWriter)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AsReader {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        set_request_access(request, Access::Read);
        Outcome::Success(AsReader)
    }
}

/// Request guard: the request's reads go to the primary even on binds with read replicas —
/// for a route that must see every client's latest commits (a client's own are seen anyway,
/// through its commit-position cookie).
///
/// ```
/// use rocket_alchemy::{OnPrimary, Session};
///
/// #[rocket::get("/stock/<sku>")]
/// async fn stock(sku: &str, _primary: OnPrimary, db: Session<'_>) -> &'static str {
///     # let _ = (sku, db);
///     "12"
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct OnPrimary;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for OnPrimary {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        if let Some(alchemy) = Alchemy::fetch(request.rocket()) {
            RequestSessions::of(request, alchemy.len()).use_primary();
        }
        Outcome::Success(OnPrimary)
    }
}
