//! Applying and reverting migrations, one connection holding the migration lock, with
//! sqlx's migration machinery; and what a failed migration's error says.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::{Migrate, MigrateError, Migration};

use crate::bind::BindHandle;
use crate::driver::migrate::{self as driver, LockError, MigrationConnection};

use super::{split, MigrationError, Migrator, TABLE};

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

impl Migrator<'_> {
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

    async fn upgrade_locked(
        &self,
        conn: &mut (dyn Migrate + Send),
        target: Option<i64>,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Run, MigrationError> {
        let dirty = conn.dirty_version(TABLE).await?;
        let applied = conn.list_applied_migrations(TABLE).await?;
        self.validate(dirty, &applied)?;
        let pending = |file: &&super::MigrationFile| {
            !(applied.iter().any(|a| a.version == file.version)
                || target.is_some_and(|t| file.version > t))
        };
        // Every pending file is checked before the first one runs.
        let backend = self.bind().backend();
        for file in self.migrations.files.iter().filter(pending) {
            if let Some(generated_for) = file.generated_for().filter(|b| *b != backend) {
                return Err(MigrationError::WrongBackend {
                    file: file.up_path.display().to_string(),
                    generated_for,
                    bind: self.bind().key().to_string(),
                    backend,
                });
            }
        }
        let mut steps = Vec::new();
        for file in self.migrations.files.iter().filter(pending) {
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
                self.bind().key(),
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
            let _ = writeln!(
                out,
                "[{}] already at the latest revision",
                self.bind().key()
            );
        }
        Ok(Run::Done(steps))
    }

    /// Runs `op` on one connection holding the migration lock: sqlx's (a PostgreSQL advisory
    /// lock) and the driver's (a checked named lock on MySQL, a lock file next to a SQLite
    /// database; see [`MigrationConnection::lock`]).
    async fn locked(
        &self,
        op: Op,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Run, MigrationError> {
        let mut conn = MigrationConnection::lock(self.pool())
            .await
            .map_err(lock_error)?;
        let result = self.run_locked(conn.migrate(), op, out).await;
        conn.release().await;
        result
    }

    async fn run_locked(
        &self,
        conn: &mut (dyn Migrate + Send),
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

    async fn downgrade_locked(
        &self,
        conn: &mut (dyn Migrate + Send),
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
                self.bind().key(),
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
            let _ = writeln!(out, "[{}] nothing to revert", self.bind().key());
        }
        Ok(Run::Done(steps))
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
        let statement = match driver::dialect(self.bind().backend()).transactional_ddl() {
            true => self.locate_failure(migration).await,
            false => None,
        };
        // `file:line` as the file numbers its lines: where the engine points (PostgreSQL's
        // error position into the file's SQL, sent whole), else where the failing statement
        // starts.
        let file_text = std::fs::read_to_string(path).ok();
        let dialect = driver::dialect(self.bind().backend());
        let line = file_text.as_deref().and_then(|text| {
            let pointed = dialect
                .error_offset(&source)
                .filter(|_| text == migration.sql.as_ref())
                .map(|offset| text.chars().take(offset).filter(|c| *c == '\n').count() + 1);
            pointed.or_else(|| line_of(text, &statement.as_ref()?.1))
        });
        let file_name = match line {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        };
        MigrationError::Failed {
            file: file_name,
            statement,
            source,
        }
    }

    /// The failing statement of `migration` (1-based) and its text, skipping the
    /// transaction control a `-- no-transaction` migration carries.
    async fn locate_failure(&self, migration: &Migration) -> Option<(usize, String)> {
        let statements = split::statements(migration.sql.as_str());
        let replayed: Vec<(usize, &str)> = statements
            .iter()
            .map(String::as_str)
            .enumerate()
            .filter(|(_, statement)| {
                let upper = statement.to_ascii_uppercase();
                !(upper == "BEGIN" || upper == "COMMIT" || upper.starts_with("PRAGMA FOREIGN_KEYS"))
            })
            .collect();
        let texts: Vec<&str> = replayed.iter().map(|(_, s)| *s).collect();
        let failed = driver::first_failure(self.pool(), &texts).await?;
        let (i, statement) = replayed[failed];
        Some((i + 1, statement.to_string()))
    }
}

/// The 1-based line of `sql` where `statement` (as split, comments included) starts its SQL:
/// its first line that is not blank or a `--` comment.
fn line_of(sql: &str, statement: &str) -> Option<usize> {
    let at = sql.find(statement)?;
    let skipped = statement
        .lines()
        .take_while(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with("--")
        })
        .count();
    Some(sql[..at].matches('\n').count() + 1 + skipped)
}

/// The error of a migration lock that could not be taken.
fn lock_error(error: LockError) -> MigrationError {
    match error {
        LockError::File { path, source } => MigrationError::Write { path, source },
        LockError::Database(e) => MigrationError::Database(e),
        timed_out @ LockError::TimedOut => MigrationError::Source(timed_out.to_string()),
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
