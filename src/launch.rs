//! The launch sequence: open the binds, apply migrations, create the model tables.

use rocket::figment::Figment;

use crate::bind::{open_binds, Alchemy, LaunchError, Startup};
use crate::config::{scrub, DatabaseConfig};
use crate::ddl::SchemaError;
use crate::model::Table;
use crate::pagination::CursorCodec;

impl Alchemy {
    /// Opens every database configured in `figment` as the fairing does on ignite (eager
    /// connections, migrations and `create_all` as configured), outside of Rocket, for
    /// background workers, scripts and tests. `tables` are the models' tables, e.g.
    /// `&[Author::TABLE, Book::TABLE]`.
    pub async fn open(
        figment: &Figment,
        tables: &[&'static Table],
    ) -> Result<Alchemy, LaunchError> {
        let workers = figment
            .extract_inner::<usize>("workers")
            .unwrap_or_else(|_| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
        let configs = DatabaseConfig::from_figment(figment, workers)?;
        launch(configs, tables, Startup::Launch, figment).await
    }
}

/// Opens the binds; for a launch, then applies migrations and creates the model tables of
/// each bind that asks for them, closing everything if one fails.
pub(crate) async fn launch(
    configs: Vec<DatabaseConfig>,
    tables: &[&'static Table],
    startup: Startup,
    figment: &Figment,
) -> Result<Alchemy, LaunchError> {
    if !crate::fairing::STATEMENT_HEADER_ENABLED {
        for config in configs.iter().filter(|c| c.statement_header) {
            tracing::warn!(
                target: "rocket_alchemy",
                "`databases.{}.statement_header` is ignored in release builds (enable the `testing` feature to keep it)",
                config.bind_key
            );
        }
    }
    let cursor_key = CursorCodec::key_from_figment(figment);
    let alchemy = open_binds(configs, tables, startup, cursor_key).await?;
    if startup == Startup::Launch {
        if let Err(e) = prepare(&alchemy).await {
            alchemy.close().await;
            return Err(e);
        }
    }
    Ok(alchemy)
}

/// Migrations, then `create_all`, for each bind that asks for them.
async fn prepare(alchemy: &Alchemy) -> Result<(), LaunchError> {
    for bind in alchemy.binds() {
        let config = bind.config();
        if config.migrate {
            crate::migrate::startup(bind)
                .await
                .map_err(|e| LaunchError::Migrate {
                    bind: config.bind_key.clone(),
                    message: scrub(&e.to_string(), config.url.expose()),
                })?;
            bind.schema_changed().await;
        }
        if !config.create_all {
            continue;
        }
        match bind.ensure_schema().await {
            Ok(()) => tracing::info!(
                target: "rocket_alchemy",
                "database `{}`: created target metadata ({} table(s))",
                config.bind_key,
                bind.tables().len()
            ),
            Err(SchemaError::Connection(e)) if config.lazy => tracing::warn!(
                target: "rocket_alchemy",
                "database `{}` is unreachable ({}); create_all will run on first use",
                config.bind_key,
                scrub(&e.to_string(), config.url.expose())
            ),
            Err(source) => {
                return Err(LaunchError::Schema {
                    bind: config.bind_key.clone(),
                    source,
                })
            }
        }
    }
    Ok(())
}
