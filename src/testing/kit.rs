//! [`TestKit`]: the user's own rocket on databases of one test, schema built once per test
//! binary.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use rocket::figment::providers::Serialized;
use rocket::figment::value::{Dict, Map, Value};
use rocket::figment::{self, Figment, Metadata, Profile, Provider};
use rocket::local::asynchronous::Client;
use rocket::tokio::sync::OnceCell;
use rocket::{Build, Rocket};

use super::database::{unique_name, Servers, TestDatabase, TestTarget};
use super::TestApp;
use crate::bind::Alchemy;
use crate::config::{Backend, POSTGRES_ONLY_KEYS, SQLITE_ONLY_KEYS};
use crate::driver::scratch::Frozen;

rocket::tokio::task_local! {
    /// The launch error of the rocket the kit is igniting, reported by the fairing.
    static LAUNCH_ERROR: RefCell<Option<String>>;
}

/// Called by the fairing when it refuses a launch: the kit shows the reason.
pub(crate) fn record_launch_error(message: &str) {
    let _ = LAUNCH_ERROR.try_with(|cell| *cell.borrow_mut() = Some(message.to_string()));
}

/// Where the schema of the test databases comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaSource {
    /// `create_all` of the models registered on the app's fairing.
    CreateAll,
    /// The bind's migrations folder (`migrate = true`), as a release would apply them.
    Migrations,
    /// Whatever each bind's own `create_all` / `migrate` settings say.
    AsConfigured,
}

/// A template: one built and frozen database per bind, cloned for each test.
/// Templates live as long as the test binary; the next binary's templates drop those left
/// for more than two hours.
struct Template {
    binds: Vec<(String, TestDatabase, Frozen)>,
}

/// Runs a user's rocket against databases that belong to one test.
///
/// Declare one per test binary, as a `static`, with the function that builds the app from a
/// Figment (the same function `main` calls with `rocket::Config::figment()`):
///
/// ```
/// # #[cfg(feature = "sqlite")] mod inner {
/// use rocket::figment::Figment;
/// use rocket::{Build, Rocket};
/// use rocket_alchemy::testing::TestKit;
///
/// fn app(figment: Figment) -> Rocket<Build> {
///     rocket::custom(figment).attach(rocket_alchemy::Alchemy::fairing())
/// }
///
/// static KIT: TestKit = TestKit::new(app);
/// # }
/// ```
///
/// Each [`TestKit::start`] gives a [`TestApp`]: a local client on the app, whose every bind
/// (`databases.<key>` of the app's configuration) is a database of its own, a copy of a
/// template built once per test binary and backend from [`SchemaSource`] (by igniting the
/// app on empty databases: the fairing's own `create_all` or migrations). Copies are made
/// the fastest faithful way per backend — a file copy on SQLite, `CREATE DATABASE …
/// TEMPLATE` on PostgreSQL, the template's `SHOW CREATE TABLE` statements replayed on MySQL —
/// and are real databases: commit modes behave exactly as in production, and tests running
/// in parallel never see each other's rows. The databases are dropped with the `TestApp`.
///
/// Configuration: the app's Figment (by default `rocket::Config::figment()`: `Rocket.toml`
/// and `ROCKET_*`), with each bind's `url` replaced, keys of other backends dropped (a
/// SQLite `journal_mode` does not stop a PostgreSQL run), `replicas` dropped,
/// `statement_header = true` (the statement budget) and Rocket's `log_level = "off"` unless
/// `ROCKET_LOG_LEVEL` is set.
pub struct TestKit {
    app: fn(Figment) -> Rocket<Build>,
    figment: fn() -> Figment,
    schema: SchemaSource,
    sqlite: OnceCell<Arc<Template>>,
    postgres: OnceCell<Arc<Template>>,
    mysql: OnceCell<Arc<Template>>,
}

impl std::fmt::Debug for TestKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKit")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn rocket_figment() -> Figment {
    rocket::Config::figment()
}

impl TestKit {
    /// A kit for the app that `app` builds from a Figment. Schema: [`SchemaSource::CreateAll`].
    pub const fn new(app: fn(Figment) -> Rocket<Build>) -> TestKit {
        TestKit {
            app,
            figment: rocket_figment,
            schema: SchemaSource::CreateAll,
            sqlite: OnceCell::const_new(),
            postgres: OnceCell::const_new(),
            mysql: OnceCell::const_new(),
        }
    }

    /// Where the template's schema comes from.
    pub const fn schema(mut self, schema: SchemaSource) -> TestKit {
        self.schema = schema;
        self
    }

    /// The base configuration, instead of `rocket::Config::figment()`.
    pub const fn figment(mut self, figment: fn() -> Figment) -> TestKit {
        self.figment = figment;
        self
    }

    /// The app on fresh databases of `target`; `None` (with a notice on stderr) when the
    /// target's server is not configured and `CI` is not `true`.
    ///
    /// # Panics
    /// When the databases cannot be made (the message names the server's redacted URL and
    /// the variable to set) or the app does not launch on them (with the fairing's reason).
    pub async fn start(&self, target: TestTarget) -> Option<TestApp> {
        self.start_with(target, |figment| figment).await
    }

    /// [`TestKit::start`] with the configuration changed by `configure` (after the kit's
    /// own changes), e.g. another commit mode:
    ///
    /// ```no_run
    /// # async fn f(kit: &rocket_alchemy::testing::TestKit) {
    /// use rocket::figment::providers::Serialized;
    /// use rocket_alchemy::testing::TestTarget;
    ///
    /// let app = kit
    ///     .start_with(TestTarget::Sqlite, |figment| {
    ///         figment.merge(Serialized::default("databases.default.commit_mode", "manual"))
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub async fn start_with(
        &self,
        target: TestTarget,
        configure: impl FnOnce(Figment) -> Figment,
    ) -> Option<TestApp> {
        match self.try_start(target, configure).await {
            Ok(app) => app,
            Err(message) => panic!("rocket_alchemy test kit, {target}: {message}"),
        }
    }

    async fn try_start(
        &self,
        target: TestTarget,
        configure: impl FnOnce(Figment) -> Figment,
    ) -> Result<Option<TestApp>, String> {
        let label = std::thread::current()
            .name()
            .map(|n| n.rsplit("::").nth(1).unwrap_or(n).to_string())
            .unwrap_or_default();
        let Some(servers) = Servers::from_env(target, &label)? else {
            return Ok(None);
        };
        let base = (self.figment)();
        let user_binds = user_binds(&base)?;
        let template = self.template(&servers, &base, &user_binds).await?;
        // Every bind's copy at once: on a server each is a few hundred milliseconds of its I/O.
        let copies = template.binds.iter().map(|(key, template_db, frozen)| {
            let db = TestDatabase::on(&servers, &unique_name(&format!("{label}_{key}")));
            let servers = &servers;
            async move {
                template_db
                    .scratch()
                    .clone_into(frozen, db.scratch())
                    .await
                    .map_err(|e| {
                        servers.unreachable(&format!("copying the template of `{key}`"), &e)
                    })?;
                Ok::<_, String>((key.clone(), db))
            }
        });
        let databases = rocket::futures::future::try_join_all(copies).await?;
        let binds = databases
            .iter()
            .map(|(key, db)| {
                let user = user_binds.get(key).cloned().unwrap_or_default();
                (key.clone(), bind_dict(user, db, None))
            })
            .collect();
        let figment = configure(kit_figment(&base, binds)?);
        let rocket = (self.app)(figment);
        let client = LAUNCH_ERROR
            .scope(RefCell::new(None), async {
                Client::tracked(rocket).await.map_err(|e| {
                    let kind = e.kind().to_string();
                    LAUNCH_ERROR
                        .with(|cell| cell.borrow_mut().take())
                        .unwrap_or(kind)
                })
            })
            .await
            .map_err(|reason| format!("the app did not launch on its test databases: {reason}"))?;
        Ok(Some(TestApp::new(client, target, databases)))
    }

    fn cell(&self, backend: Backend) -> &OnceCell<Arc<Template>> {
        match backend {
            Backend::Sqlite => &self.sqlite,
            Backend::Postgres => &self.postgres,
            Backend::MySql => &self.mysql,
        }
    }

    /// The template of `servers`' backend, built by the first test that needs it.
    async fn template(
        &self,
        servers: &Servers,
        base: &Figment,
        user_binds: &BTreeMap<String, Dict>,
    ) -> Result<Arc<Template>, String> {
        // The template lives on the server itself, never behind the pooler.
        let direct = Servers {
            pooler: None,
            target: match servers.target {
                TestTarget::PgBouncer => TestTarget::Postgres,
                other => other,
            },
            ..servers.clone()
        };
        self.cell(servers.target.backend())
            .get_or_try_init(|| self.build_template(direct, base, user_binds))
            .await
            .cloned()
    }

    async fn build_template(
        &self,
        servers: Servers,
        base: &Figment,
        user_binds: &BTreeMap<String, Dict>,
    ) -> Result<Arc<Template>, String> {
        servers.drop_stale_once().await;
        let mut dbs = Vec::new();
        for key in user_binds.keys() {
            let db = TestDatabase::on(&servers, &unique_name(&format!("tpl_{key}")));
            db.scratch()
                .create()
                .await
                .map_err(|e| servers.unreachable("CREATE DATABASE", &e))?;
            dbs.push((key.clone(), db));
        }
        let binds = dbs
            .iter()
            .map(|(key, db)| {
                let user = user_binds[key].clone();
                (key.clone(), bind_dict(user, db, Some(self.schema)))
            })
            .collect();
        let figment = kit_figment(base, binds)?;
        let rocket = (self.app)(figment);
        let ignited = LAUNCH_ERROR
            .scope(RefCell::new(None), async {
                rocket.ignite().await.map_err(|e| {
                    let kind = e.kind().to_string();
                    LAUNCH_ERROR
                        .with(|cell| cell.borrow_mut().take())
                        .unwrap_or(kind)
                })
            })
            .await
            .map_err(|reason| {
                format!(
                    "the app did not launch on the template databases (schema from {:?}): {reason}",
                    self.schema
                )
            })?;
        match Alchemy::fetch(&ignited) {
            Some(alchemy) => alchemy.close().await,
            None => return Err("the app has no rocket_alchemy fairing attached".into()),
        }
        drop(ignited);
        let mut binds = Vec::new();
        for (key, db) in dbs {
            let frozen = db.scratch().freeze().await.map_err(|e| {
                servers.unreachable(&format!("freezing the template of `{key}`"), &e)
            })?;
            binds.push((key, db, frozen));
        }
        Ok(Arc::new(Template { binds }))
    }
}

/// The app's binds (`databases.<key>`) as configured.
fn user_binds(base: &Figment) -> Result<BTreeMap<String, Dict>, String> {
    match base.extract_inner::<BTreeMap<String, Dict>>("databases") {
        Ok(binds) if !binds.is_empty() => Ok(binds),
        Ok(_) => Err("the app's configuration has no `databases`".into()),
        Err(e) if e.missing() => Err(
            "the app's configuration has no `databases` (is Rocket.toml in the crate's root?)"
                .into(),
        ),
        Err(e) => Err(format!("the app's `databases` cannot be read: {e}")),
    }
}

/// A bind's keys for a test database: the user's, with `url` (and the pooler's keys)
/// replaced, the keys of other backends dropped, and the schema settings of the phase
/// (`Some`: building the template; `None`: a test, whose database is a copy of it).
fn bind_dict(mut dict: Dict, db: &TestDatabase, schema: Option<SchemaSource>) -> Dict {
    if db.backend() != Backend::Sqlite {
        for key in SQLITE_ONLY_KEYS {
            dict.remove(*key);
        }
    }
    for key in POSTGRES_ONLY_KEYS {
        dict.remove(*key);
    }
    dict.insert("url".into(), Value::from(db.url().to_string()));
    if let Some(direct) = db.direct_url() {
        dict.insert("pooler".into(), Value::from("transaction"));
        dict.insert("direct_url".into(), Value::from(direct.to_string()));
    }
    let (create_all, migrate) = match schema {
        Some(SchemaSource::CreateAll) => (true, false),
        Some(SchemaSource::Migrations) => (false, true),
        Some(SchemaSource::AsConfigured) => (
            dict.get("create_all")
                .and_then(Value::to_bool)
                .unwrap_or(false),
            dict.get("migrate")
                .and_then(Value::to_bool)
                .unwrap_or(false),
        ),
        None => (false, false),
    };
    dict.insert("create_all".into(), Value::from(create_all));
    dict.insert("migrate".into(), Value::from(migrate));
    if schema.is_none() {
        dict.insert("statement_header".into(), Value::from(true));
    }
    dict
}

/// The base configuration without its `databases`, plus the kit's.
struct WithoutDatabases {
    data: Map<Profile, Dict>,
    profile: Profile,
}

impl Provider for WithoutDatabases {
    fn metadata(&self) -> Metadata {
        Metadata::named("the app's configuration (rocket_alchemy test kit)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(self.data.clone())
    }

    fn profile(&self) -> Option<Profile> {
        Some(self.profile.clone())
    }
}

fn kit_figment(base: &Figment, binds: BTreeMap<String, Dict>) -> Result<Figment, String> {
    let mut data = base
        .data()
        .map_err(|e| format!("the app's configuration cannot be read: {e}"))?;
    for dict in data.values_mut() {
        dict.remove("databases");
    }
    let mut figment = Figment::from(WithoutDatabases {
        data,
        profile: base.profile().clone(),
    })
    .select(base.profile().clone())
    .merge(Serialized::default("databases", binds));
    if std::env::var_os("ROCKET_LOG_LEVEL").is_none() {
        figment = figment.merge(Serialized::default("log_level", "off"));
    }
    Ok(figment)
}
