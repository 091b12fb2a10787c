//! [`TestApp`]: a local client on the user's app, and the databases of its test.

use std::ops::Deref;
use std::path::Path;

use rocket::local::asynchronous::{Client, LocalResponse};

use super::{TestDatabase, TestTarget};
use crate::bind::Alchemy;
use crate::config::Backend;
use crate::fairing::STATEMENTS_HEADER;
use crate::fixtures::FixtureError;

/// The app of one test, started by [`TestKit::start`](super::TestKit::start): a
/// [`Client`] (it derefs to one) on databases that belong to this test only, dropped with it.
pub struct TestApp {
    // Declared first: the client (and its pools) goes before the databases are dropped.
    client: Client,
    target: TestTarget,
    databases: Vec<(String, TestDatabase)>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("target", &self.target)
            .field("databases", &self.databases)
            .finish_non_exhaustive()
    }
}

impl Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl TestApp {
    pub(crate) fn new(
        client: Client,
        target: TestTarget,
        databases: Vec<(String, TestDatabase)>,
    ) -> Self {
        TestApp {
            client,
            target,
            databases,
        }
    }

    /// The local client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where the test's databases live.
    pub fn target(&self) -> TestTarget {
        self.target
    }

    /// The engine of the test's databases.
    pub fn backend(&self) -> Backend {
        self.target.backend()
    }

    /// The test database of bind `key` (its URLs, for checks on a connection of your own).
    ///
    /// # Panics
    /// When the app has no bind `key`.
    pub fn database(&self, key: &str) -> &TestDatabase {
        self.databases
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, db)| db)
            .unwrap_or_else(|| {
                let known: Vec<&str> = self.databases.iter().map(|(k, _)| k.as_str()).collect();
                panic!("the app has no bind `{key}`; its binds: {known:?}")
            })
    }

    /// The app's databases, as the routes see them.
    pub fn alchemy(&self) -> &Alchemy {
        Alchemy::fetch(self.client.rocket()).expect("the fairing manages Alchemy")
    }

    /// Loads the fixtures that `database dump-data` wrote (`<dir>/<table>.json`) into bind
    /// `key`'s database, parents before children, in one transaction; returns
    /// `(table, rows)` per file loaded.
    pub async fn load_fixtures(
        &self,
        key: &str,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<(String, usize)>, FixtureError> {
        let bind = self.alchemy().bind(key).map_err(|e| FixtureError::Format {
            path: dir.as_ref().display().to_string(),
            message: e.to_string(),
        })?;
        crate::fixtures::load(bind, dir.as_ref()).await
    }

    /// The statements the request of `response` ran on bind `key` through its session
    /// (0 when it did not use the bind): the statement budget that catches N+1 queries.
    /// See [`DbSession::statement_count`](crate::DbSession::statement_count) for what counts.
    pub fn statements(&self, response: &LocalResponse<'_>, key: &str) -> u32 {
        statements_in(response.headers().get_one(STATEMENTS_HEADER), key)
    }

    /// Shuts the app down (closing its pools), then drops its databases.
    pub async fn finish(self) {
        self.alchemy().close().await;
    }
}

/// The count of `key` in an `X-Db-Statements: default=2, audit=0` header.
fn statements_in(header: Option<&str>, key: &str) -> u32 {
    header
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::statements_in;

    #[test]
    fn reads_the_header() {
        assert_eq!(statements_in(Some("default=2, audit=11"), "audit"), 11);
        assert_eq!(statements_in(Some("default=2, audit=11"), "default"), 2);
        assert_eq!(statements_in(Some("default=2"), "audit"), 0);
        assert_eq!(statements_in(None, "default"), 0);
    }
}
