//! Migrations: sqlx-format SQL files per bind, tracked in sqlx's `_sqlx_migrations` table.

use crate::alchemy::BindHandle;
use crate::backend::with_pool;

/// Applies the pending migrations of `bind`'s folder at launch (`migrate = true`).
pub(crate) async fn startup(bind: &BindHandle) -> Result<(), sqlx::migrate::MigrateError> {
    let dir = &bind.config().migrations;
    let migrator = sqlx::migrate::Migrator::new(dir.as_path()).await?;
    with_pool!(bind.pool(), pool => migrator.run(pool).await)?;
    tracing::info!(
        target: "rocket_alchemy",
        "database `{}`: migrations in {} applied",
        bind.key(),
        dir.display()
    );
    Ok(())
}
