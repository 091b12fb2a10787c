//! Commit modes: when a request's session is committed for you.

use std::fmt;

use serde::Deserialize;

/// When the request session of a bind is committed for you, decided on the final response
/// status in the fairing's `on_response` hook (after handlers and catchers).
///
/// | mode | commits when | otherwise |
/// |---|---|---|
/// | `manual` | never: call [`Session::commit`](crate::Session) yourself | rollback |
/// | `autocommit` | `200 <= status < 300` | rollback |
/// | `autocommit_include_redirect` | `200 <= status < 400` | rollback |
///
/// ```
/// use rocket_alchemy::CommitMode;
///
/// assert!(CommitMode::Autocommit.commits(201));
/// assert!(!CommitMode::Autocommit.commits(303));
/// assert!(CommitMode::AutocommitIncludeRedirect.commits(303));
/// assert!(!CommitMode::AutocommitIncludeRedirect.commits(404));
/// assert!(!CommitMode::Manual.commits(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// Nothing is committed for you; whatever is uncommitted when the response leaves is
    /// rolled back.
    #[default]
    Manual,
    /// Commit on a 2xx final status, roll back otherwise.
    Autocommit,
    /// Commit on a 2xx or 3xx final status, roll back otherwise.
    AutocommitIncludeRedirect,
}

impl CommitMode {
    /// Whether a response with this final `status` code commits the request's session.
    /// 1xx statuses never commit.
    pub const fn commits(self, status: u16) -> bool {
        match self {
            CommitMode::Manual => false,
            CommitMode::Autocommit => status >= 200 && status < 300,
            CommitMode::AutocommitIncludeRedirect => status >= 200 && status < 400,
        }
    }

    /// What this mode does, in words, for the launch line ("commits on 2xx").
    ///
    /// ```
    /// use rocket_alchemy::CommitMode;
    ///
    /// assert_eq!(CommitMode::Autocommit.describe(), "commits on 2xx");
    /// ```
    pub const fn describe(self) -> &'static str {
        match self {
            CommitMode::Manual => "commits only on session.commit()",
            CommitMode::Autocommit => "commits on 2xx",
            CommitMode::AutocommitIncludeRedirect => "commits on 2xx and 3xx",
        }
    }

    /// The configuration spelling of this mode.
    pub const fn as_str(self) -> &'static str {
        match self {
            CommitMode::Manual => "manual",
            CommitMode::Autocommit => "autocommit",
            CommitMode::AutocommitIncludeRedirect => "autocommit_include_redirect",
        }
    }
}

impl fmt::Display for CommitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
