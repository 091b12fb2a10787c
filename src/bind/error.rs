//! What can go wrong opening binds or finding one.

use crate::config::{ConfigError, RedactedUrl};
use crate::ddl::SchemaError;

use crate::config::DEFAULT_KEY;

/// A bind key that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No session maker found for bind key \"{key}\"; {hint}")]
pub struct UnknownBind {
    /// The key asked for.
    pub key: String,
    /// The configured keys.
    pub configured: Vec<String>,
    hint: String,
}

impl UnknownBind {
    pub(crate) fn new(key: &str, configured: Vec<String>) -> Self {
        let hint = if key == DEFAULT_KEY && configured.len() > 1 {
            format!(
                "several databases are configured ({}) and none is keyed \"default\": key one of \
                 them `default` or use a declared bind",
                configured.join(", ")
            )
        } else if configured.is_empty() {
            "no databases are configured".to_string()
        } else {
            format!("configured bind keys: {}", configured.join(", "))
        };
        UnknownBind {
            key: key.to_string(),
            configured,
            hint,
        }
    }
}

/// Why the databases could not be opened (the launch is refused with this message).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A database could not be reached at launch.
    #[error(
        "could not connect to database `{bind}` at `{url}`: {message}; it is required at launch \
         (set `lazy = true` under `databases.{bind}` to launch without it)"
    )]
    Connect {
        /// The bind key.
        bind: String,
        /// The URL, password redacted.
        url: RedactedUrl,
        /// The error, password scrubbed.
        message: String,
    },
    /// `create_all` failed.
    #[error("create_all for database `{bind}` failed: {source}")]
    Schema {
        /// The bind key.
        bind: String,
        /// The failure.
        #[source]
        source: SchemaError,
    },
    /// Applying migrations at launch failed.
    #[error("migrating database `{bind}` failed: {message}")]
    Migrate {
        /// The bind key.
        bind: String,
        /// The failure.
        message: String,
    },
    /// A registered model names a bind that is not configured.
    #[error(
        "model `{model}` (table `{table}`) belongs to bind \"{bind}\", which is not configured; \
         configured bind keys: {} (configure `databases.{bind}`, or attach \
         `Alchemy::fairing().only_listed_models()` with the models this app uses)", configured.join(", ")
    )]
    ModelBind {
        /// The model type.
        model: String,
        /// Its table.
        table: String,
        /// Its bind key.
        bind: String,
        /// The configured keys.
        configured: Vec<String>,
    },
    /// Two registered models declare the same table on one bind.
    #[error(
        "models `{first}` and `{second}` both declare table `{table}` on bind \"{bind}\" \
         (give the fairing the one this app uses: `Alchemy::fairing().only_listed_models().model::<…>()`)"
    )]
    DuplicateTable {
        /// The bind key.
        bind: String,
        /// The table.
        table: String,
        /// One model.
        first: String,
        /// The other.
        second: String,
    },
}
