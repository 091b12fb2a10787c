//! Scratch databases for the [test kit](crate::testing): created, cloned from a template and
//! dropped, one module per backend.

use crate::config::Backend;

/// Where a scratch database lives: a SQLite file, or a database on a server reached with an
/// admin URL (any database of that server the user may connect to).
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    pub(crate) backend: Backend,
    /// The server's admin URL (unused for SQLite).
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) admin: String,
    /// The database name, or the SQLite file's path.
    pub(crate) name: String,
}

/// What a frozen template holds besides its name: MySQL's `CREATE TABLE` statements and the
/// tables with rows, captured once and replayed for every clone.
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) struct Frozen {
    pub(crate) tables: Vec<(String, String)>,
    pub(crate) with_rows: Vec<String>,
}

impl Scratch {
    /// Creates the empty database (SQLite: nothing; the file appears on first connect).
    pub(crate) async fn create(&self) -> Result<(), sqlx::Error> {
        match self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => super::postgres::scratch::create(&self.admin, &self.name).await,
            #[cfg(feature = "mysql")]
            Backend::MySql => super::mysql::scratch::create(&self.admin, &self.name).await,
            _ => Ok(()),
        }
    }

    /// Makes this (built) template ready to be cloned, and returns what clones need.
    pub(crate) async fn freeze(&self) -> Result<Frozen, sqlx::Error> {
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => super::sqlite::scratch::freeze(&self.name)
                .await
                .map(|()| Frozen::default()),
            #[cfg(feature = "postgres")]
            Backend::Postgres => super::postgres::scratch::freeze(&self.admin, &self.name)
                .await
                .map(|()| Frozen::default()),
            #[cfg(feature = "mysql")]
            Backend::MySql => super::mysql::scratch::freeze(&self.admin, &self.name).await,
            #[allow(unreachable_patterns)]
            _ => Ok(Frozen::default()),
        }
    }

    /// Creates `clone` as a copy of this frozen template (schema and rows).
    pub(crate) async fn clone_into(
        &self,
        frozen: &Frozen,
        clone: &Scratch,
    ) -> Result<(), sqlx::Error> {
        let _ = frozen;
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => super::sqlite::scratch::copy(&self.name, &clone.name),
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                super::postgres::scratch::clone(&self.admin, &self.name, &clone.name).await
            }
            #[cfg(feature = "mysql")]
            Backend::MySql => {
                super::mysql::scratch::clone(&self.admin, &self.name, frozen, &clone.name).await
            }
            #[allow(unreachable_patterns)]
            _ => Ok(()),
        }
    }

    /// Drops the database (SQLite: removes the file and its journals). Blocking: runs on a
    /// thread of its own, so it can be called from `Drop` inside a runtime.
    pub(crate) fn drop_blocking(&self) {
        let _ = self.drop_in_background().join();
    }

    /// Drops the database on a thread of its own and returns at once: a test does not wait
    /// for its server to remove its database. A drop cut short by the process's exit leaves
    /// the database to the next run's clean-up of ended processes.
    pub(crate) fn drop_in_background(&self) -> std::thread::JoinHandle<Option<()>> {
        let scratch = self.clone();
        std::thread::spawn(move || {
            let runtime = rocket::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(scratch.drop_database()).ok()
        })
    }

    async fn drop_database(&self) -> Result<(), sqlx::Error> {
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                super::sqlite::scratch::remove(&self.name);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => super::postgres::scratch::drop(&self.admin, &self.name).await,
            #[cfg(feature = "mysql")]
            Backend::MySql => super::mysql::scratch::drop(&self.admin, &self.name).await,
            #[allow(unreachable_patterns)]
            _ => Ok(()),
        }
    }

    /// The scratch databases of this server whose names start with `prefix`.
    pub(crate) async fn list(
        backend: Backend,
        admin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let _ = (admin, prefix);
        match backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => super::postgres::scratch::list(admin, prefix).await,
            #[cfg(feature = "mysql")]
            Backend::MySql => super::mysql::scratch::list(admin, prefix).await,
            _ => Ok(Vec::new()),
        }
    }
}
