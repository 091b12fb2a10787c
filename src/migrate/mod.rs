//! Migrations: sqlx-format SQL files per bind, tracked in sqlx's `_sqlx_migrations` table.
//!
//! Each bind has a folder (`migrations/` for the default bind, `migrations/<bind_key>/` for
//! the others; the `migrations` key changes it) of reversible pairs
//! `<version>_<slug>.up.sql` / `<version>_<slug>.down.sql` — the format `sqlx migrate add -r`
//! writes. Migrations are applied with sqlx's own migration code, so the tracking table,
//! checksums and locking are sqlx's: `sqlx migrate info` / `run` and these functions agree on
//! the same folder and database.
//!
//! * Each migration runs in a transaction where the backend has transactional DDL
//!   (PostgreSQL, SQLite): a failing one leaves the schema and the tracking table as they
//!   were, and the error names the file and the statement. MySQL commits DDL implicitly; a
//!   failing MySQL migration is recorded as failed (sqlx's "dirty" state) and blocks further
//!   upgrades until repaired.
//! * An applied file whose checksum changed is an error, never a silent re-run.
//! * Upgrades hold a lock (PostgreSQL advisory lock, MySQL `GET_LOCK`, a lock file next to a
//!   SQLite database): two processes starting at once apply each migration once.

pub(crate) mod diff;
pub(crate) mod introspect;
mod split;

pub use diff::Plan;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType};
use sqlx::AssertSqlSafe;

use crate::bind::BindHandle;
use crate::config::Backend;
use crate::driver::{with_pool, BindPool};

/// The tracking table (sqlx's).
pub const TABLE: &str = "_sqlx_migrations";

/// A failure of the migrations layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The migrations folder could not be read, or a file name is not `<version>_<name>.sql`.
    #[error("{0}")]
    Source(String),
    /// Writing a file failed.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A migration failed and was rolled back.
    #[error("{file} failed{}: {source}", statement_suffix(.statement))]
    Failed {
        /// The migration file.
        file: String,
        /// The failing statement (1-based) and its text, when it could be told.
        statement: Option<(usize, String)>,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// An applied migration's file changed since it was applied.
    #[error("{file} was changed after it was applied (checksum mismatch); restore it and put the change in a new revision")]
    ChecksumMismatch {
        /// The file.
        file: String,
    },
    /// An applied migration has no file any more.
    #[error("migration {version} is applied but no file for it is in {dir}")]
    Missing {
        /// The version.
        version: i64,
        /// The folder.
        dir: String,
    },
    /// A migration failed half-way earlier (MySQL) and must be repaired.
    #[error("migration {0} failed part-way earlier (dirty); repair the schema, then `stamp` the right version")]
    Dirty(i64),
    /// A downgrade needs a `.down.sql` that does not exist.
    #[error("{0} has no .down.sql: it cannot be reverted")]
    Irreversible(String),
    /// A version named on the command line is not a migration of the folder.
    #[error("no migration {version} in {dir}")]
    UnknownVersion {
        /// The version.
        version: String,
        /// The folder.
        dir: String,
    },
    /// Autogenerate needs the database at the latest revision.
    #[error(
        "{0} migration(s) not applied yet: run `database upgrade` before generating a revision"
    )]
    Pending(usize),
    /// Autogenerate met a change it cannot write safely.
    #[error("autogenerate cannot express this change: {0}; write the migration by hand")]
    Unsupported(String),
    /// A database error outside a migration.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// sqlx's migration machinery failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

fn statement_suffix(statement: &Option<(usize, String)>) -> String {
    match statement {
        Some((n, text)) => {
            let short: String = text.chars().take(200).collect();
            format!(" at statement {n} `{short}`")
        }
        None => String::new(),
    }
}

/// One migration of a folder: its up file and, for reversible ones, its down file.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    /// The version (`YYYYMMDDHHMMSS` when written by `revision`).
    pub version: i64,
    /// The description (the slug, with spaces).
    pub description: String,
    /// The up migration.
    pub up: Migration,
    /// Its file.
    pub up_path: PathBuf,
    /// The down migration and its file.
    pub down: Option<(Migration, PathBuf)>,
}

impl MigrationFile {
    /// The up file's name.
    pub fn file_name(&self) -> String {
        self.up_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The migrations folder of one bind.
#[derive(Debug, Clone)]
pub struct Migrations {
    /// The folder.
    pub dir: PathBuf,
    /// Its migrations, by version.
    pub files: Vec<MigrationFile>,
}

impl Migrations {
    /// Reads `dir` (an absent folder has no migrations).
    pub fn load(dir: &Path) -> Result<Migrations, MigrationError> {
        if !dir.exists() {
            return Ok(Migrations {
                dir: dir.to_path_buf(),
                files: Vec::new(),
            });
        }
        let resolved = sqlx::migrate::resolve_blocking(dir)
            .map_err(|e| MigrationError::Source(format!("{}: {e}", dir.display())))?;
        let mut files: Vec<MigrationFile> = Vec::new();
        let mut downs = Vec::new();
        for (migration, path) in resolved {
            match migration.migration_type {
                MigrationType::ReversibleDown => downs.push((migration, path)),
                _ => files.push(MigrationFile {
                    version: migration.version,
                    description: migration.description.to_string(),
                    up: migration,
                    up_path: path,
                    down: None,
                }),
            }
        }
        for (down, path) in downs {
            match files.iter_mut().find(|f| f.version == down.version) {
                Some(file) => file.down = Some((down, path)),
                None => {
                    return Err(MigrationError::Source(format!(
                        "{} has no matching .up.sql",
                        path.display()
                    )))
                }
            }
        }
        files.sort_by_key(|f| f.version);
        for pair in files.windows(2) {
            if pair[0].version == pair[1].version {
                return Err(MigrationError::Source(format!(
                    "two migrations have version {} in {}",
                    pair[0].version,
                    dir.display()
                )));
            }
        }
        Ok(Migrations {
            dir: dir.to_path_buf(),
            files,
        })
    }

    fn file(&self, version: i64) -> Option<&MigrationFile> {
        self.files.iter().find(|f| f.version == version)
    }

    fn dir_name(&self) -> String {
        self.dir.display().to_string()
    }

    /// Parses a version argument: a migration version of this folder, or `base` (0).
    pub fn target(&self, raw: &str) -> Result<i64, MigrationError> {
        if raw == "base" {
            return Ok(0);
        }
        if raw == "head" {
            return Ok(self.files.last().map(|f| f.version).unwrap_or(0));
        }
        let unknown = || MigrationError::UnknownVersion {
            version: raw.to_string(),
            dir: self.dir_name(),
        };
        let version: i64 = raw.parse().map_err(|_| unknown())?;
        self.file(version).map(|f| f.version).ok_or_else(unknown)
    }

    /// Writes a new reversible pair `<version>_<slug>.up.sql` / `.down.sql` and returns the
    /// up file's path. `up` and `down` are the statements (without trailing `;`); a pair
    /// with `no_transaction` starts with sqlx's `-- no-transaction` marker.
    pub fn write_revision(
        &self,
        message: &str,
        header: &str,
        up: &[String],
        down: &[String],
        no_transaction: bool,
    ) -> Result<PathBuf, MigrationError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| MigrationError::Write {
            path: self.dir.clone(),
            source,
        })?;
        let now: i64 = chrono::Utc::now()
            .format("%Y%m%d%H%M%S")
            .to_string()
            .parse()
            .expect("digits");
        let latest = self.files.last().map(|f| f.version).unwrap_or(0);
        let version = now.max(latest + 1);
        let slug = slug(message);
        let write = |suffix: &str,
                     statements: &[String],
                     placeholder: &str|
         -> Result<PathBuf, MigrationError> {
            let path = self.dir.join(format!("{version}_{slug}.{suffix}.sql"));
            let mut text = String::new();
            if no_transaction {
                text.push_str("-- no-transaction\n");
            }
            let _ = writeln!(text, "-- {message}");
            for line in header.lines() {
                let _ = writeln!(text, "-- {line}");
            }
            text.push('\n');
            if statements.is_empty() {
                let _ = writeln!(text, "-- {placeholder}");
            }
            for statement in statements {
                let _ = writeln!(text, "{statement};");
            }
            std::fs::write(&path, text).map_err(|source| MigrationError::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        };
        let up_path = write("up", up, "Add the up migration's SQL here.")?;
        write(
            "down",
            down,
            "Add the SQL that reverts the up migration here.",
        )?;
        Ok(up_path)
    }
}

/// A slug for file names: lowercase ASCII letters and digits, `_` between words.
pub fn slug(message: &str) -> String {
    let mut out = String::new();
    for c in message.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.is_empty() {
        "revision".into()
    } else {
        out.chars().take(60).collect()
    }
}

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

/// One step done by `upgrade` or `downgrade`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The migration's version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// How far to downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downgrade {
    /// Revert the latest applied migration.
    OneStep,
    /// Revert every migration newer than this version (0: all).
    To(i64),
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

/// Migrations of one bind, against its database.
pub struct Migrator<'a> {
    bind: &'a BindHandle,
    /// The bind's folder and files.
    pub migrations: Migrations,
}

impl std::fmt::Debug for Migrator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator")
            .field("bind", &self.bind.key())
            .field("dir", &self.migrations.dir)
            .finish()
    }
}

/// An operation run under the migration lock.
#[derive(Debug, Clone, Copy)]
enum Op {
    Upgrade(Option<i64>),
    Downgrade(Downgrade),
}

/// What a locked upgrade or downgrade did.
enum Run {
    Done(Vec<Step>),
    Failed {
        migration: Migration,
        path: PathBuf,
        error: MigrateError,
    },
}

/// A lock file next to a SQLite database, held while migrating.
struct FileLock(#[allow(dead_code)] std::fs::File);

impl<'a> Migrator<'a> {
    /// The migrator of `bind`, reading its folder.
    pub fn new(bind: &'a BindHandle) -> Result<Self, MigrationError> {
        Ok(Migrator {
            bind,
            migrations: Migrations::load(&bind.config().migrations)?,
        })
    }

    /// The bind.
    pub fn bind(&self) -> &'a BindHandle {
        self.bind
    }

    fn pool(&self) -> &BindPool {
        self.bind.pool()
    }

    /// Every row of the tracking table (creating the table if missing).
    pub async fn applied(&self) -> Result<Vec<AppliedRow>, MigrationError> {
        let installed = match self.bind.backend() {
            Backend::Postgres => "installed_on::text",
            Backend::MySql => "CAST(installed_on AS CHAR)",
            Backend::Sqlite => "CAST(installed_on AS TEXT)",
        };
        let sql = format!(
            "SELECT version, description, {installed}, success, checksum, execution_time FROM {TABLE} ORDER BY version"
        );
        if !self.tracking_table_exists().await? {
            return Ok(Vec::new());
        }
        with_pool!(self.pool(), pool => {
            let mut conn = pool.acquire().await?;
            let rows: Vec<(i64, String, String, bool, Vec<u8>, i64)> =
                sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
            Ok(rows
                .into_iter()
                .map(|(version, description, installed_on, success, checksum, execution_time)| AppliedRow {
                    version,
                    description,
                    installed_on,
                    success,
                    checksum,
                    execution_time,
                })
                .collect())
        })
    }

    /// Whether the tracking table exists (reading history creates nothing).
    async fn tracking_table_exists(&self) -> Result<bool, MigrationError> {
        let sql = match self.bind.backend() {
            Backend::Sqlite => format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{TABLE}'"),
            Backend::Postgres => format!("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '{TABLE}'"),
            Backend::MySql => format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{TABLE}'"
            ),
        };
        with_pool!(self.pool(), pool => {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(pool).await?;
            Ok(n > 0)
        })
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

    /// Checks that no migration is dirty and every applied one still has its file, unchanged.
    fn validate(
        &self,
        dirty: Option<i64>,
        applied: &[sqlx::migrate::AppliedMigration],
    ) -> Result<(), MigrationError> {
        if let Some(version) = dirty {
            return Err(MigrationError::Dirty(version));
        }
        for row in applied {
            match self.migrations.file(row.version) {
                None => {
                    return Err(MigrationError::Missing {
                        version: row.version,
                        dir: self.migrations.dir_name(),
                    })
                }
                Some(file) if *file.up.checksum != *row.checksum => {
                    return Err(MigrationError::ChecksumMismatch {
                        file: file.up_path.display().to_string(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn file_lock(&self) -> Result<Option<FileLock>, MigrationError> {
        let Some(path) = self.sqlite_path() else {
            return Ok(None);
        };
        let lock_path = PathBuf::from(format!("{}.migrate-lock", path.display()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| MigrationError::Write {
                path: lock_path.clone(),
                source,
            })?;
        file.lock().map_err(|source| MigrationError::Write {
            path: lock_path,
            source,
        })?;
        Ok(Some(FileLock(file)))
    }

    fn sqlite_path(&self) -> Option<PathBuf> {
        #[cfg(feature = "sqlite")]
        if let BindPool::Sqlite(pool) = self.pool() {
            let options = pool.connect_options();
            let path = options.get_filename();
            let name = path.to_string_lossy();
            if !name.starts_with("file:sqlx-in-memory") && name != ":memory:" {
                return Some(path.to_path_buf());
            }
        }
        None
    }

    /// Applies the pending migrations up to `target` (`None`: all), one line per step to
    /// `out`. Returns the steps done.
    pub async fn upgrade(
        &self,
        target: Option<i64>,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Vec<Step>, MigrationError> {
        let run = self.locked(Op::Upgrade(target), out).await?;
        self.outcome(run).await
    }

    async fn upgrade_locked<C: Migrate + Send + ?Sized>(
        &self,
        conn: &mut C,
        target: Option<i64>,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Run, MigrationError> {
        let dirty = conn.dirty_version(TABLE).await?;
        let applied = conn.list_applied_migrations(TABLE).await?;
        self.validate(dirty, &applied)?;
        let mut steps = Vec::new();
        for file in &self.migrations.files {
            if applied.iter().any(|a| a.version == file.version)
                || target.is_some_and(|t| file.version > t)
            {
                continue;
            }
            let elapsed = match conn.apply(TABLE, &file.up).await {
                Ok(elapsed) => elapsed,
                Err(error) => {
                    return Ok(Run::Failed {
                        migration: file.up.clone(),
                        path: file.up_path.clone(),
                        error,
                    })
                }
            };
            let _ = writeln!(
                out,
                "[{}] applied {} {} ({})",
                self.bind.key(),
                file.version,
                file.description,
                human(elapsed)
            );
            steps.push(Step {
                version: file.version,
                description: file.description.clone(),
                elapsed,
            });
        }
        if steps.is_empty() {
            let _ = writeln!(out, "[{}] already at the latest revision", self.bind.key());
        }
        Ok(Run::Done(steps))
    }

    /// Runs `op` on one connection holding the migration lock: sqlx's (a PostgreSQL advisory
    /// lock), a checked named lock on MySQL (sqlx asks MySQL for an infinite wait with `-1`,
    /// which MariaDB does not honour, and ignores the answer), a lock file next to a SQLite
    /// database (sqlx has none for SQLite).
    async fn locked(
        &self,
        op: Op,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Run, MigrationError> {
        let _file_lock = self.file_lock()?;
        match self.pool() {
            #[cfg(feature = "sqlite")]
            BindPool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                self.run_locked(&mut *conn, op, out).await
            }
            #[cfg(feature = "postgres")]
            BindPool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                self.run_locked(&mut *conn, op, out).await
            }
            #[cfg(feature = "mysql")]
            BindPool::MySql(pool) => {
                let mut conn = pool.acquire().await?;
                let (got,): (Option<i64>,) = sqlx::query_as(
                    "SELECT GET_LOCK(CONCAT('rocket_alchemy_migrate_', DATABASE()), 600)",
                )
                .fetch_one(&mut *conn)
                .await?;
                if got != Some(1) {
                    return Err(MigrationError::Source(
                        "another process held the migration lock for 10 minutes".into(),
                    ));
                }
                let result = self.run_locked(&mut *conn, op, out).await;
                let _ = sqlx::query(
                    "SELECT RELEASE_LOCK(CONCAT('rocket_alchemy_migrate_', DATABASE()))",
                )
                .execute(&mut *conn)
                .await;
                result
            }
        }
    }

    async fn run_locked<C: Migrate + Send + ?Sized>(
        &self,
        conn: &mut C,
        op: Op,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Run, MigrationError> {
        // Lock first: two processes creating the tracking table at once race on PostgreSQL.
        conn.lock().await?;
        if let Err(e) = conn.ensure_migrations_table(TABLE).await {
            let _ = conn.unlock().await;
            return Err(e.into());
        }
        let result = match op {
            Op::Upgrade(target) => self.upgrade_locked(conn, target, out).await,
            Op::Downgrade(how) => self.downgrade_locked(conn, how, out).await,
        };
        let _ = conn.unlock().await;
        result
    }

    /// The steps of a run, or the error of its failed migration (diagnosed now that the
    /// migration's connection is back in the pool).
    async fn outcome(&self, run: Run) -> Result<Vec<Step>, MigrationError> {
        match run {
            Run::Done(steps) => Ok(steps),
            Run::Failed {
                migration,
                path,
                error,
            } => Err(self.failed(&migration, &path, error).await),
        }
    }

    /// Reverts migrations, newest first, one line per step to `out`.
    pub async fn downgrade(
        &self,
        how: Downgrade,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Vec<Step>, MigrationError> {
        let run = self.locked(Op::Downgrade(how), out).await?;
        self.outcome(run).await
    }

    async fn downgrade_locked<C: Migrate + Send + ?Sized>(
        &self,
        conn: &mut C,
        how: Downgrade,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Run, MigrationError> {
        let dirty = conn.dirty_version(TABLE).await?;
        let applied = conn.list_applied_migrations(TABLE).await?;
        self.validate(dirty, &applied)?;
        let mut versions: Vec<i64> = applied.iter().map(|a| a.version).collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let chosen: Vec<i64> = match how {
            Downgrade::OneStep => versions.into_iter().take(1).collect(),
            Downgrade::To(target) => versions.into_iter().filter(|v| *v > target).collect(),
        };
        let mut steps = Vec::new();
        for version in chosen {
            let file = self.migrations.file(version).expect("validated");
            let Some((down, down_path)) = &file.down else {
                return Err(MigrationError::Irreversible(
                    file.up_path.display().to_string(),
                ));
            };
            let elapsed = match conn.revert(TABLE, down).await {
                Ok(elapsed) => elapsed,
                Err(error) => {
                    return Ok(Run::Failed {
                        migration: down.clone(),
                        path: down_path.clone(),
                        error,
                    })
                }
            };
            let _ = writeln!(
                out,
                "[{}] reverted {} {} ({})",
                self.bind.key(),
                file.version,
                file.description,
                human(elapsed)
            );
            steps.push(Step {
                version,
                description: file.description.clone(),
                elapsed,
            });
        }
        if steps.is_empty() {
            let _ = writeln!(out, "[{}] nothing to revert", self.bind.key());
        }
        Ok(Run::Done(steps))
    }

    /// Records migrations as applied without running them: every migration up to `version`
    /// becomes applied, every one above it unapplied (0: none applied).
    pub async fn stamp(
        &self,
        version: i64,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), MigrationError> {
        let applied = self.applied().await?;
        with_pool!(self.pool(), pool => {
            let mut conn = pool.acquire().await?;
            for file in &self.migrations.files {
                let is_applied = applied.iter().any(|a| a.version == file.version);
                if file.version <= version && !is_applied {
                    conn.skip(TABLE, &file.up).await?;
                    let _ = writeln!(out, "[{}] stamped {} {} as applied", self.bind.key(), file.version, file.description);
                }
            }
            for row in &applied {
                if row.version > version {
                    let sql = match self.bind.backend() {
                        Backend::Postgres => format!("DELETE FROM {TABLE} WHERE version = $1"),
                        _ => format!("DELETE FROM {TABLE} WHERE version = ?"),
                    };
                    sqlx::query(AssertSqlSafe(sql)).bind(row.version).execute(&mut *conn).await?;
                    let _ = writeln!(out, "[{}] stamped {} {} as not applied", self.bind.key(), row.version, row.description);
                }
            }
            Ok(())
        })
    }

    /// The changes that would bring the live schema to the bind's registered models
    /// (empty when they agree).
    pub async fn diff(&self) -> Result<Plan, MigrationError> {
        let live = introspect::tables(self.pool()).await?;
        diff::plan(self.bind.tables(), &live, self.bind.backend())
    }

    /// Writes a new revision. With `autogenerate`, its statements are the [`Migrator::diff`]
    /// (the database must be at the latest revision first); `None` is returned, and nothing
    /// written, when there is no difference.
    pub async fn revision(
        &self,
        message: &str,
        autogenerate: bool,
    ) -> Result<Option<(PathBuf, Plan)>, MigrationError> {
        let backend = self.bind.backend();
        let header = format!("bind: {}, backend: {backend}", self.bind.key());
        if !autogenerate {
            let path = self
                .migrations
                .write_revision(message, &header, &[], &[], false)?;
            return Ok(Some((path, Plan::default())));
        }
        let pending = self.pending().await?;
        if !pending.is_empty() {
            return Err(MigrationError::Pending(pending.len()));
        }
        let plan = self.diff().await?;
        if plan.is_empty() {
            return Ok(None);
        }
        let mut header = header;
        header.push_str("\nautogenerated:");
        for line in &plan.summary {
            header.push_str("\n  ");
            header.push_str(line);
        }
        let path = self.migrations.write_revision(
            message,
            &header,
            &plan.up,
            &plan.down,
            plan.no_transaction,
        )?;
        Ok(Some((path, plan)))
    }

    /// Drops the tracking table.
    pub async fn drop_table(&self) -> Result<(), MigrationError> {
        let sql = format!("DROP TABLE IF EXISTS {TABLE}");
        with_pool!(self.pool(), pool => {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(pool).await?;
            Ok(())
        })
    }

    /// Turns a failed apply/revert into an error naming the file and, where DDL is
    /// transactional, the failing statement (found by replaying the statements in a
    /// transaction that is rolled back).
    async fn failed(
        &self,
        migration: &Migration,
        path: &Path,
        error: MigrateError,
    ) -> MigrationError {
        let source = match error {
            MigrateError::ExecuteMigration(e, _) | MigrateError::Execute(e) => e,
            MigrateError::Dirty(v) => return MigrationError::Dirty(v),
            other => return MigrationError::Migrate(other),
        };
        let file_name = path.display().to_string();
        let statement = match self.bind.backend() {
            Backend::MySql => None,
            _ => self.locate_failure(migration).await,
        };
        MigrationError::Failed {
            file: file_name,
            statement,
            source,
        }
    }

    async fn locate_failure(&self, migration: &Migration) -> Option<(usize, String)> {
        use sqlx::Connection;
        let statements = split::statements(migration.sql.as_str());
        with_pool!(self.pool(), pool => {
            let mut conn = pool.acquire().await.ok()?;
            let mut tx = conn.begin().await.ok()?;
            let mut found = None;
            for (i, statement) in statements.iter().enumerate() {
                let upper = statement.to_ascii_uppercase();
                if upper == "BEGIN" || upper == "COMMIT" || upper.starts_with("PRAGMA FOREIGN_KEYS") {
                    continue;
                }
                if sqlx::raw_sql(AssertSqlSafe(statement.clone())).execute(&mut *tx).await.is_err() {
                    found = Some((i + 1, statement.clone()));
                    break;
                }
            }
            let _ = tx.rollback().await;
            found
        })
    }
}

/// A duration as `12.3ms`.
fn human(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    }
}

/// Applies the pending migrations of `bind`'s folder at launch (`migrate = true`).
pub(crate) async fn startup(bind: &BindHandle) -> Result<(), MigrationError> {
    let migrator = Migrator::new(bind)?;
    let mut out = Vec::new();
    let steps = migrator.upgrade(None, &mut out).await?;
    for step in steps {
        tracing::info!(
            target: "rocket_alchemy",
            "database `{}`: applied migration {} {} ({})",
            bind.key(),
            step.version,
            step.description,
            human(step.elapsed)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs() {
        assert_eq!(slug("Add users table"), "add_users_table");
        assert_eq!(slug("  ünïcode & stuff!! "), "n_code_stuff");
        assert_eq!(slug("!!!"), "revision");
    }
}
