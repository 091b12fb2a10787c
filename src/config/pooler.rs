//! What sits between the app and a PostgreSQL server: nothing, or a transaction pooler.

use std::fmt;

use serde::Deserialize;

/// The connection pooler in front of a PostgreSQL bind (`pooler = "…"`).
///
/// | value | for | what changes |
/// |---|---|---|
/// | `none` (default) | a direct connection, or PgBouncer in `session` mode | nothing |
/// | `transaction` | PgBouncer, PgCat, PgDog in transaction mode; Supabase's pooler on port 6543 ("transaction mode"); Neon's `-pooler` host names | see below |
///
/// Behind a transaction pooler, consecutive transactions of one client connection may run on
/// different server connections, so nothing may outlive a transaction. With
/// `pooler = "transaction"`:
///
/// * statements are parsed unnamed on each execution (sqlx's statement cache is off and every
///   query is sent with `persistent(false)`), so no `sqlx_s_N` name outlives a transaction or
///   collides with another client's on a shared server connection;
/// * `create_all` runs in one transaction holding a transaction-scoped advisory lock
///   (it does so on every PostgreSQL bind);
/// * migrations, which hold a session lock across several transactions, run over
///   `direct_url` (the server's own address); without it, `migrate = true` stops the launch
///   and the `database` commands refuse to run, naming the key.
///
/// Raw sqlx queries you send on the session's connection must also use
/// `.persistent(false)` there.
///
/// ```
/// use rocket_alchemy::Pooler;
///
/// let pooler: Pooler = serde_json::from_str("\"transaction\"").unwrap();
/// assert_eq!(pooler, Pooler::Transaction);
/// assert!(!pooler.named_statements());
/// assert!(Pooler::None.named_statements());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooler {
    /// No pooler, or one that keeps a server connection per client connection.
    #[default]
    None,
    /// A transaction-mode pooler.
    Transaction,
}

impl Pooler {
    /// Whether statements may be prepared by name and cached on the connection.
    pub fn named_statements(self) -> bool {
        self == Pooler::None
    }
}

impl fmt::Display for Pooler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pooler::None => "none",
            Pooler::Transaction => "transaction",
        })
    }
}
