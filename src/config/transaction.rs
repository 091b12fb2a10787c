//! How transactions begin: isolation level, read-only, timeouts and transaction-scoped
//! settings, per bind (`databases.<bind_key>`) and per session.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A transaction isolation level (`isolation_level = "…"`).
///
/// PostgreSQL and MySQL / MariaDB; SQLite transactions are always serializable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolationLevel {
    /// `READ UNCOMMITTED` (PostgreSQL treats it as `READ COMMITTED`).
    ReadUncommitted,
    /// `READ COMMITTED`: PostgreSQL's default.
    ReadCommitted,
    /// `REPEATABLE READ`: MySQL's default.
    RepeatableRead,
    /// `SERIALIZABLE`: conflicts fail with a serialization error (409 with `Retry-After` in
    /// a request; [`Alchemy::retrying`](crate::Alchemy::retrying) re-runs work outside one).
    Serializable,
}

impl IsolationLevel {
    /// The SQL spelling.
    pub fn sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "READ UNCOMMITTED",
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Serializable => "SERIALIZABLE",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql())
    }
}

/// How a session's transactions begin. A bind's defaults come from its configuration keys
/// (`isolation_level`, `read_only`, `statement_timeout`, `lock_timeout`); a session can
/// replace them for its next transactions with
/// [`DbSession::set_transaction_options`](crate::DbSession::set_transaction_options).
///
/// On PostgreSQL everything is sent with the `BEGIN` in one round trip —
/// `BEGIN ISOLATION LEVEL … READ ONLY; SET LOCAL statement_timeout = …; SET LOCAL …` —
/// and is transaction-scoped, so it is safe behind a transaction pooler. A session with any
/// of these set begins a transaction for reads too. On MySQL / MariaDB the isolation level
/// and read-only apply (`SET TRANSACTION ISOLATION LEVEL …; START TRANSACTION READ ONLY`);
/// `lock_timeout` is a bind setting there (`innodb_lock_wait_timeout`, on every
/// connection).
///
/// ```
/// use std::time::Duration;
/// use rocket_alchemy::{IsolationLevel, TransactionOptions};
///
/// let options = TransactionOptions::default()
///     .isolation(IsolationLevel::Serializable)
///     .statement_timeout(Duration::from_millis(1500))
///     .set_local("app.tenant_id", "42");
/// assert_eq!(options.isolation_level, Some(IsolationLevel::Serializable));
/// assert_eq!(options.settings(), &[("app.tenant_id".to_string(), "42".to_string())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TransactionOptions {
    /// _Default:_ the server's.
    pub isolation_level: Option<IsolationLevel>,
    /// Begin transactions `READ ONLY`: a write fails. _Default:_ `false`.
    pub read_only: bool,
    /// PostgreSQL: cancel a statement running longer (`SET LOCAL statement_timeout`); it
    /// answers 503 with nothing committed. _Default:_ none.
    pub statement_timeout: Option<Duration>,
    /// Give up waiting for a row or table lock after this long (`SET LOCAL lock_timeout`
    /// on PostgreSQL); answers 503 with nothing committed. _Default:_ none.
    pub lock_timeout: Option<Duration>,
    /// Transaction-scoped settings (`SET LOCAL name = 'value'`), e.g. a tenant id read by
    /// row-level security policies.
    settings: Vec<(String, String)>,
}

impl TransactionOptions {
    /// With this isolation level.
    pub fn isolation(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = Some(level);
        self
    }

    /// Read-only, or not.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// With a statement timeout.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// With a lock timeout.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// Adds a transaction-scoped setting, `SET LOCAL name = 'value'` (PostgreSQL; a
    /// placeholder such as `app.tenant_id` for row-level security policies to read with
    /// `current_setting('app.tenant_id')`). The value is sent as a quoted literal.
    ///
    /// # Panics
    ///
    /// If `name` is not made of ASCII letters, digits, `_` and `.` (names are the
    /// program's, never a request's).
    pub fn set_local(mut self, name: &str, value: impl Into<String>) -> Self {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'),
            "invalid setting name `{name}`"
        );
        let value = value.into();
        self.settings.retain(|(n, _)| n != name);
        self.settings.push((name.to_string(), value));
        self
    }

    /// The transaction-scoped settings, in the order they are sent.
    pub fn settings(&self) -> &[(String, String)] {
        &self.settings
    }

    /// Whether every option is the server's default (a plain `BEGIN`).
    pub fn is_default(&self) -> bool {
        *self == TransactionOptions::default()
    }
}
