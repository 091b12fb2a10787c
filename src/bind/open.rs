//! Opening the configured binds: models grouped by bind, URLs checked, pools opened.

use std::sync::Arc;

use super::registry::resolve_index;
use super::{Alchemy, BindHandle, LaunchError, DEFAULT_KEY};
use crate::config::{scrub, ConfigError, DatabaseConfig};
use crate::driver::check_url;
use crate::model::Table;

/// Whether a bind opens for a launch or only for `database` commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Startup {
    /// Honour `lazy` (the fairing, [`Alchemy::open`]).
    Launch,
    /// Open lazily: the `database` commands connect when they need to.
    Passive,
}

/// Opens a bind per configuration with the models of `tables` that belong to it. Nothing
/// runs on the databases (migrations and `create_all` are the launch's).
pub(crate) async fn open_binds(
    configs: Vec<DatabaseConfig>,
    tables: &[&'static Table],
    startup: Startup,
    cursor_key: Vec<u8>,
) -> Result<Alchemy, LaunchError> {
    for config in &configs {
        check_url(config).map_err(|message| ConfigError::url(config, message))?;
    }
    let keys: Vec<String> = configs.iter().map(|c| c.bind_key.clone()).collect();
    let per_bind = tables_per_bind(&keys, tables)?;
    let default_index = resolve_index(&keys, DEFAULT_KEY);
    let mut binds: Vec<Arc<BindHandle>> = Vec::with_capacity(configs.len());
    for (index, (mut config, tables)) in configs.into_iter().zip(per_bind).enumerate() {
        if startup == Startup::Passive {
            config.lazy = true;
        }
        let line = format!(
            "database `{}`: {} at {} (commit_mode = \"{}\": {}; {} model table{}{})",
            config.bind_key,
            config.backend,
            config.url,
            config.commit_mode,
            config.commit_mode.describe(),
            tables.len(),
            if tables.len() == 1 { "" } else { "s" },
            if config.lazy {
                "; lazy: connects on first use"
            } else {
                ""
            },
        );
        let (key, url) = (config.bind_key.clone(), config.url.clone());
        match BindHandle::open(index, default_index == Some(index), config, tables).await {
            Ok(bind) => binds.push(bind),
            Err(e) => {
                for bind in &binds {
                    bind.close().await;
                }
                return Err(LaunchError::Connect {
                    bind: key,
                    message: scrub(&e.to_string(), url.expose()),
                    url,
                });
            }
        }
        match startup {
            Startup::Launch => tracing::info!(target: "rocket_alchemy", "{line}"),
            Startup::Passive => tracing::debug!(target: "rocket_alchemy", "{line}"),
        }
    }
    Ok(Alchemy::new(binds, cursor_key))
}

/// The registered tables of each bind, in configuration order; a model whose bind is not
/// configured, or two models declaring one table on a bind, refuse the launch.
fn tables_per_bind(
    keys: &[String],
    tables: &[&'static Table],
) -> Result<Vec<Vec<&'static Table>>, LaunchError> {
    let mut per_bind: Vec<Vec<&'static Table>> = vec![Vec::new(); keys.len()];
    for table in tables {
        let Some(index) = resolve_index(keys, table.bind) else {
            return Err(LaunchError::ModelBind {
                model: table.model.to_string(),
                table: table.name.to_string(),
                bind: table.bind.to_string(),
                configured: keys.to_vec(),
            });
        };
        if let Some(other) = per_bind[index].iter().find(|t| t.name == table.name) {
            if other.model != table.model {
                return Err(LaunchError::DuplicateTable {
                    bind: keys[index].clone(),
                    table: table.name.to_string(),
                    first: other.model.to_string(),
                    second: table.model.to_string(),
                });
            }
            continue;
        }
        per_bind[index].push(table);
    }
    Ok(per_bind)
}
