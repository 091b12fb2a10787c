//! The fairing: opens the databases on ignite, applies commit modes on response, closes the
//! pools on shutdown.

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Orbit, Request, Response, Rocket};

use crate::bind::{Alchemy, Startup};
use crate::config::DatabaseConfig;
use crate::guard::RequestSessions;
use crate::model::{Model, Table};

/// The rocket_alchemy fairing. Attach one per rocket, with the models it manages:
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
/// let rocket = rocket::build().attach(Alchemy::fairing().model::<Note>());
/// # let _ = rocket;
/// ```
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
#[derive(Debug, Default, Clone)]
pub struct AlchemyFairing {
    tables: Vec<&'static Table>,
}

impl Alchemy {
    /// The fairing that opens the databases on ignite, manages this handle and applies
    /// commit modes. Register the models whose tables `create_all` creates on it.
    pub fn fairing() -> AlchemyFairing {
        AlchemyFairing { tables: Vec::new() }
    }
}

impl AlchemyFairing {
    /// Registers model `M`: `create_all`, `drop_all` and the migration commands manage its
    /// table on its bind.
    pub fn model<M: Model>(mut self) -> Self {
        self.tables.push(M::TABLE);
        self
    }

    /// Registers a model by its table metadata.
    pub fn table(mut self, table: &'static Table) -> Self {
        self.tables.push(table);
        self
    }

    /// The registered tables.
    pub fn tables(&self) -> &[&'static Table] {
        &self.tables
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
                return Err(rocket);
            }
        };
        let startup = match rocket.state::<PassiveStartup>() {
            Some(_) => Startup::Passive,
            None => Startup::Launch,
        };
        match crate::launch::launch(configs, &self.tables, startup, rocket.figment()).await {
            Ok(alchemy) => Ok(rocket.manage(alchemy)),
            Err(e) => {
                tracing::error!(target: "rocket_alchemy", "{e}");
                Err(rocket)
            }
        }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let sessions = request.local_cache(RequestSessions::empty);
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
