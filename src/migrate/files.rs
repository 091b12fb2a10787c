//! A bind's migrations folder: reversible pairs `<version>_<slug>.up.sql` /
//! `<version>_<slug>.down.sql`, read with sqlx's resolver and written by `revision`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sqlx::migrate::{Migration, MigrationType};

use super::MigrationError;
use crate::config::Backend;

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
    /// The backend this migration's SQL was written for, from the `backend:` line of its
    /// leading comments (`-- bind: default, backend: sqlite`, as `revision` writes it, or a
    /// hand-written `-- backend: postgres`); `None` when it declares none.
    pub fn generated_for(&self) -> Option<Backend> {
        declared_backend(self.up.sql.as_ref())
    }

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

    /// The migration of `version`.
    pub(super) fn file(&self, version: i64) -> Option<&MigrationFile> {
        self.files.iter().find(|f| f.version == version)
    }

    /// The folder, for messages.
    pub(super) fn dir_name(&self) -> String {
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

/// The backend named by a `backend:` entry in the leading comment lines of `sql`.
pub(crate) fn declared_backend(sql: &str) -> Option<Backend> {
    for line in sql.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let comment = line.strip_prefix("--")?;
        for part in comment.split(',') {
            if let Some(name) = part.trim().strip_prefix("backend:") {
                let name = name.trim().to_ascii_lowercase();
                return Backend::from_url(&format!("{name}:"));
            }
        }
    }
    None
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
