//! The tracking table (sqlx's `_sqlx_migrations`): what is applied, the history of a folder
//! against it, and `stamp`.

use crate::driver::migrate::{self as driver, MigrationConnection, TrackingRow};

use super::{MigrationError, MigrationFile, Migrator};

/// The tracking table (sqlx's).
pub const TABLE: &str = "_sqlx_migrations";

/// A row of the tracking table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRow {
    /// The version.
    pub version: i64,
    /// The description recorded.
    pub description: String,
    /// When it was applied, as the database prints it.
    pub installed_on: String,
    /// `false` for a MySQL migration that failed part-way.
    pub success: bool,
    /// The checksum recorded.
    pub checksum: Vec<u8>,
    /// Its duration in nanoseconds (-1 when unknown).
    pub execution_time: i64,
}

impl AppliedRow {
    fn new(row: TrackingRow) -> AppliedRow {
        AppliedRow {
            version: row.version,
            description: row.description,
            installed_on: row.installed_on,
            success: row.success,
            checksum: row.checksum,
            execution_time: row.execution_time,
        }
    }
}

/// The status of one migration for `history`.
#[derive(Debug, Clone)]
pub struct Status {
    /// The file, if the folder has it.
    pub file: Option<MigrationFile>,
    /// The tracking row, if applied.
    pub applied: Option<AppliedRow>,
}

impl Status {
    /// The version.
    pub fn version(&self) -> i64 {
        self.file
            .as_ref()
            .map(|f| f.version)
            .or(self.applied.as_ref().map(|a| a.version))
            .unwrap_or(0)
    }
}

impl Migrator<'_> {
    /// Every row of the tracking table (none while the table does not exist: reading
    /// history creates nothing).
    pub async fn applied(&self) -> Result<Vec<AppliedRow>, MigrationError> {
        if !driver::table_exists(self.pool(), TABLE).await? {
            return Ok(Vec::new());
        }
        let rows = driver::tracking_rows(self.pool(), TABLE).await?;
        Ok(rows.into_iter().map(AppliedRow::new).collect())
    }

    /// Every migration, file or applied row, by version.
    pub async fn history(&self) -> Result<Vec<Status>, MigrationError> {
        let applied = self.applied().await?;
        let mut out: Vec<Status> = self
            .migrations
            .files
            .iter()
            .map(|f| Status {
                file: Some(f.clone()),
                applied: applied.iter().find(|a| a.version == f.version).cloned(),
            })
            .collect();
        for row in applied {
            if self.migrations.file(row.version).is_none() {
                out.push(Status {
                    file: None,
                    applied: Some(row),
                });
            }
        }
        out.sort_by_key(Status::version);
        Ok(out)
    }

    /// The latest applied version (`None`: nothing applied).
    pub async fn current(&self) -> Result<Option<i64>, MigrationError> {
        Ok(self
            .applied()
            .await?
            .iter()
            .filter(|a| a.success)
            .map(|a| a.version)
            .max())
    }

    /// The migrations not applied yet.
    pub async fn pending(&self) -> Result<Vec<MigrationFile>, MigrationError> {
        let applied = self.applied().await?;
        Ok(self
            .migrations
            .files
            .iter()
            .filter(|f| !applied.iter().any(|a| a.version == f.version))
            .cloned()
            .collect())
    }

    /// Records migrations as applied without running them: every migration up to `version`
    /// becomes applied, every one above it unapplied (0: none applied).
    pub async fn stamp(
        &self,
        version: i64,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), MigrationError> {
        let applied = self.applied().await?;
        let key = self.bind().key();
        let mut conn = MigrationConnection::open(self.pool()).await?;
        for file in &self.migrations.files {
            let is_applied = applied.iter().any(|a| a.version == file.version);
            if file.version <= version && !is_applied {
                conn.migrate().skip(TABLE, &file.up).await?;
                let _ = writeln!(
                    out,
                    "[{key}] stamped {} {} as applied",
                    file.version, file.description
                );
            }
        }
        for row in &applied {
            if row.version > version {
                conn.delete_row(TABLE, row.version).await?;
                let _ = writeln!(
                    out,
                    "[{key}] stamped {} {} as not applied",
                    row.version, row.description
                );
            }
        }
        Ok(())
    }

    /// Drops the tracking table.
    pub async fn drop_table(&self) -> Result<(), MigrationError> {
        driver::drop_table(self.pool(), TABLE).await?;
        Ok(())
    }
}
