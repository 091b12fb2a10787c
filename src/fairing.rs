//! The fairing: opens the databases on ignite, applies commit modes on response, closes the
//! pools on shutdown.

use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::futures::future::BoxFuture;
use rocket::http::Status;
use rocket::{Build, Orbit, Request, Response, Rocket};

use crate::bind::{Alchemy, Startup};
use crate::config::DatabaseConfig;
use crate::guard::RequestSessions;
use crate::model::{Model, Table};
use crate::session::DbSession;

/// A hook run when a request's session on a bind is created (by its first guard), before
/// anything is sent: it can read the request (headers, other guards) and set the session's
/// transaction options, e.g. [`DbSession::set_local`] for a tenant id. `Err(status)` fails
/// the guard with that status.
pub type SessionHook = dyn for<'r> Fn(&'r Request<'_>, &'r DbSession) -> BoxFuture<'r, Result<(), Status>>
    + Send
    + Sync;

/// The hook, as managed state.
#[derive(Clone)]
pub(crate) struct SessionHookState(pub(crate) Arc<SessionHook>);

/// The rocket_alchemy fairing. Attach one per rocket:
///
/// ```
/// use rocket_alchemy::{Alchemy, Model};
///
/// #[derive(Model)]
/// struct Note {
///     id: i64,
///     text: String,
/// }
///
/// // `Note` needs no registration: the fairing manages every model of the binary.
/// let rocket = rocket::build().attach(Alchemy::fairing());
/// # let _ = rocket;
/// ```
///
/// **Which models.** Every `#[derive(Model)]` of the binary (its crate and the crates it
/// links, collected at link time: see [`model::declared`](crate::model::declared)) on the
/// bind its `#[model(bind = …)]` names, so no model can be left out of `create_all` or of
/// what `database revision --autogenerate` compares. A model of a bind that is not
/// configured refuses the launch. Opt-in models (`#[model(opt_in)]`, such as
/// [`IdempotencyRecord`](crate::idempotency::IdempotencyRecord)) are added with
/// [`model`](Self::model); [`only_listed_models`](Self::only_listed_models) restricts the
/// fairing to the models given to it (tests, or two apps built into one binary).
///
/// * **ignite** — reads `databases` from the rocket's Figment, opens one pool per bind
///   (connecting unless `lazy`), applies migrations (`migrate = true`) then creates the model
///   tables (`create_all = true`), and manages the [`Alchemy`] handle. Any failure refuses
///   the launch with a message naming the bind and key; passwords are never printed.
/// * **response** — ends each request session by its bind's commit mode and the final
///   status (after handlers and catchers), in the order the binds were first used. The first
///   failed commit rolls back the binds not yet committed and turns the response into a JSON
///   error (409 for conflicts, 500 otherwise): a 2xx never describes uncommitted data. There
///   is no two-phase commit across databases: binds committed before the failure stay
///   committed.
/// * **shutdown** — closes every pool.
#[derive(Default, Clone)]
pub struct AlchemyFairing {
    tables: Vec<&'static Table>,
    listed_only: bool,
    on_session: Option<Arc<SessionHook>>,
}

impl std::fmt::Debug for AlchemyFairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlchemyFairing")
            .field(
                "tables",
                &self.tables().iter().map(|t| t.name).collect::<Vec<_>>(),
            )
            .field("listed_only", &self.listed_only)
            .field("on_session", &self.on_session.is_some())
            .finish()
    }
}

impl Alchemy {
    /// The fairing that opens the databases on ignite, manages this handle and applies
    /// commit modes, for every model of the binary (see [`AlchemyFairing`]).
    pub fn fairing() -> AlchemyFairing {
        AlchemyFairing::default()
    }
}

impl AlchemyFairing {
    /// Adds model `M`: `create_all`, `drop_all` and the migration commands manage its table
    /// on its bind. Needed only for opt-in models (`#[model(opt_in)]`), or with
    /// [`only_listed_models`](Self::only_listed_models); adding a collected model again
    /// changes nothing.
    pub fn model<M: Model>(mut self) -> Self {
        self.tables.push(M::TABLE);
        self
    }

    /// Adds a model by its table metadata (e.g. an opt-in model's table moved to another
    /// bind: [`IdempotencyRecord::table_on`](crate::idempotency::IdempotencyRecord::table_on)).
    pub fn table(mut self, table: &'static Table) -> Self {
        self.tables.push(table);
        self
    }

    /// Manages only the models given with [`model`](Self::model) and [`table`](Self::table),
    /// not every model of the binary: for tests that want an exact schema, or a binary that
    /// builds two apps with different models. A model left out is then really left out:
    /// its repository warns on first use, and `database check` reports its table as one the
    /// models lack.
    ///
    /// ```
    /// use rocket_alchemy::{Alchemy, Model};
    ///
    /// #[derive(Model)]
    /// struct Note {
    ///     id: i64,
    /// }
    ///
    /// #[derive(Model)]
    /// struct Draft {
    ///     id: i64,
    /// }
    ///
    /// let all = Alchemy::fairing();
    /// assert!(all.tables().iter().any(|t| t.name == "draft"));
    /// let listed = Alchemy::fairing().only_listed_models().model::<Note>();
    /// let names: Vec<_> = listed.tables().iter().map(|t| t.name).collect();
    /// assert_eq!(names, ["note"]);
    /// ```
    pub fn only_listed_models(mut self) -> Self {
        self.listed_only = true;
        self
    }

    /// The tables this fairing manages: the models of the binary (unless
    /// [`only_listed_models`](Self::only_listed_models)), then those added, each once.
    pub fn tables(&self) -> Vec<&'static Table> {
        let declared = crate::model::declared().filter(|_| !self.listed_only);
        let mut tables: Vec<&'static Table> = Vec::new();
        for table in declared.chain(self.tables.iter().copied()) {
            let same = |t: &&'static Table| {
                t.bind == table.bind && t.name == table.name && t.model == table.model
            };
            if !tables.iter().any(same) {
                tables.push(table);
            }
        }
        tables
    }

    /// Runs `hook` when a request's session on a bind is created, before its transaction
    /// begins: the place for transaction-scoped settings that depend on the request, such as
    /// the tenant id that PostgreSQL row-level security policies read. They are sent with
    /// the `BEGIN` as `SET LOCAL` (safe behind a transaction pooler, unlike a session `SET`),
    /// and the session then begins a transaction for reads too.
    ///
    /// ```
    /// use rocket::http::Status;
    /// use rocket_alchemy::Alchemy;
    ///
    /// let fairing = Alchemy::fairing().on_session(|request, session| {
    ///     Box::pin(async move {
    ///         let tenant = request.headers().get_one("X-Tenant").ok_or(Status::Unauthorized)?;
    ///         let tenant: i64 = tenant.parse().map_err(|_| Status::BadRequest)?;
    ///         session
    ///             .set_local("app.tenant_id", tenant.to_string())
    ///             .map_err(|_| Status::InternalServerError)
    ///     })
    /// });
    /// # let _ = fairing;
    /// ```
    pub fn on_session<F>(mut self, hook: F) -> Self
    where
        F: for<'r> Fn(&'r Request<'_>, &'r DbSession) -> BoxFuture<'r, Result<(), Status>>
            + Send
            + Sync
            + 'static,
    {
        self.on_session = Some(Arc::new(hook));
        self
    }
}

/// Marks a rocket ignited only to run `database` commands: open binds lazily, run nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PassiveStartup;

#[rocket::async_trait]
impl Fairing for AlchemyFairing {
    fn info(&self) -> Info {
        Info {
            name: "rocket_alchemy",
            kind: Kind::Ignite | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        if rocket.state::<Alchemy>().is_some() {
            tracing::error!(target: "rocket_alchemy", "the rocket_alchemy fairing is attached twice");
            return Err(rocket);
        }
        let workers = rocket
            .figment()
            .extract_inner::<usize>("workers")
            .unwrap_or(1);
        let configs = match DatabaseConfig::from_figment(rocket.figment(), workers) {
            Ok(configs) => configs,
            Err(e) => {
                tracing::error!(target: "rocket_alchemy", "{e}");
                #[cfg(feature = "testing")]
                crate::testing::record_launch_error(&e.to_string());
                return Err(rocket);
            }
        };
        let startup = match rocket.state::<PassiveStartup>() {
            Some(_) => Startup::Passive,
            None => Startup::Launch,
        };
        match crate::launch::launch(configs, &self.tables(), startup, rocket.figment()).await {
            Ok(alchemy) => Ok(match &self.on_session {
                Some(hook) => rocket
                    .manage(alchemy)
                    .manage(SessionHookState(hook.clone())),
                None => rocket.manage(alchemy),
            }),
            Err(e) => {
                tracing::error!(target: "rocket_alchemy", "{e}");
                #[cfg(feature = "testing")]
                crate::testing::record_launch_error(&e.to_string());
                Err(rocket)
            }
        }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let sessions = request.local_cache(RequestSessions::empty);
        report_statements(request, sessions, response);
        let status = response.status().code;
        let mut failure = None;
        for session in sessions.used() {
            let commit = failure.is_none() && session.commit_mode().commits(status);
            match session.finish(commit).await {
                Ok(()) => {}
                Err(e) if commit => failure = Some(e),
                Err(e) => tracing::warn!(target: "rocket_alchemy", "rollback failed: {e}"),
            }
        }
        if failure.is_none() {
            remember_commit_positions(request, sessions, response).await;
        }
        if let Some(error) = failure {
            let error = crate::Error::from(error);
            let body = error.body();
            tracing::error!(
                target: "rocket_alchemy",
                "{} {}: {error}; answering {} instead of {}",
                request.method(),
                request.uri(),
                body.status_code,
                response.status().code
            );
            body.apply(response);
        }
    }

    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        if let Some(alchemy) = Alchemy::fetch(rocket) {
            alchemy.close().await;
        }
    }
}

/// The response header carrying the statement counts of binds with `statement_header`.
pub(crate) const STATEMENTS_HEADER: &str = "X-Db-Statements";

/// Whether `statement_header` is honoured in this build.
pub(crate) const STATEMENT_HEADER_ENABLED: bool =
    cfg!(debug_assertions) || cfg!(feature = "testing");

/// Logs (at debug level) the statements the request ran on each bind, and adds them to the
/// `X-Db-Statements` header for binds with `statement_header = true`.
fn report_statements<'r>(
    request: &'r Request<'_>,
    sessions: &RequestSessions,
    response: &mut Response<'r>,
) {
    let mut header = String::new();
    for session in sessions.used() {
        let count = session.statement_count();
        tracing::debug!(
            target: "rocket_alchemy",
            bind = session.bind_key(),
            "{} {}: {count} statement(s)",
            request.method(),
            request.uri().path()
        );
        if STATEMENT_HEADER_ENABLED && session.bind().config().statement_header {
            if !header.is_empty() {
                header.push_str(", ");
            }
            header.push_str(session.bind_key());
            header.push('=');
            header.push_str(&count.to_string());
        }
    }
    if !header.is_empty() {
        response.set_raw_header(STATEMENTS_HEADER, header);
    }
}

/// For each bind with read replicas on which the request committed a write, hands the client
/// the primary's position in a signed cookie, so its later reads go only to replicas that
/// have replayed it. The cookie outlives `max_replica_lag` (and the monitor's period): by
/// the time it expires, every replica that may serve reads has replayed the commit.
async fn remember_commit_positions<'r>(
    request: &'r Request<'_>,
    sessions: &RequestSessions,
    response: &mut Response<'r>,
) {
    for session in sessions.used() {
        // Cheap checks first: most requests commit nothing on a bind with replicas.
        if !session.committed_write() || !session.bind().has_replicas() {
            continue;
        }
        let Some(alchemy) = Alchemy::fetch(request.rocket()) else {
            return;
        };
        let bind = session.bind();
        let Some(position) = bind.commit_position().await else {
            // Without the position, this client's reads stay on the primary for a while.
            tracing::warn!(target: "rocket_alchemy", bind = bind.key(), "could not read the primary's WAL position after a commit");
            continue;
        };
        let max_age = bind.config().max_replica_lag + std::time::Duration::from_secs(2);
        let cookie = rocket::http::Cookie::build((
            crate::bind::position::cookie_name(bind.key()),
            crate::bind::position::encode(alchemy.cursor_key(), bind.key(), position),
        ))
        .path("/")
        .http_only(true)
        .same_site(rocket::http::SameSite::Lax)
        .max_age(rocket::time::Duration::seconds(
            max_age.as_secs_f64().ceil() as i64,
        ));
        response.adjoin_header(cookie.build());
    }
}
