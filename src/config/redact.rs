//! URLs that never print their password.

use std::fmt;

/// A database URL that prints with its password (and any `password=` query parameter)
/// replaced by `***`. Its `Debug` output is redacted as well.
///
/// ```
/// use rocket_alchemy::RedactedUrl;
///
/// let url = RedactedUrl::new("postgres://app:s3cret@db:5432/app?sslpassword=x&sslmode=require");
/// assert_eq!(url.to_string(), "postgres://app:***@db:5432/app?sslpassword=***&sslmode=require");
/// assert!(!format!("{url:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl(url.into())
    }

    /// The URL with its secrets in it. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redact(url: &str) -> String {
        let mut out = String::with_capacity(url.len());
        let (before_query, query) = match url.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (url, None),
        };
        match before_query.split_once("://") {
            Some((scheme, rest)) => {
                out.push_str(scheme);
                out.push_str("://");
                let authority_end = rest.find('/').unwrap_or(rest.len());
                let (authority, path) = rest.split_at(authority_end);
                match authority.rsplit_once('@') {
                    Some((userinfo, host)) => {
                        match userinfo.split_once(':') {
                            Some((user, _password)) => {
                                out.push_str(user);
                                out.push_str(":***");
                            }
                            None => out.push_str(userinfo),
                        }
                        out.push('@');
                        out.push_str(host);
                    }
                    None => out.push_str(authority),
                }
                out.push_str(path);
            }
            None => out.push_str(before_query),
        }
        if let Some(query) = query {
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((k, _)) if k.to_ascii_lowercase().contains("password") => {
                        out.push_str(k);
                        out.push_str("=***");
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        out
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::redact(&self.0))
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Self::redact(&self.0))
    }
}

/// Replaces every occurrence of the URL's password in `text` with `***` (driver messages can
/// quote the URL they failed on).
pub(crate) fn scrub(text: &str, raw_url: &str) -> String {
    let password = raw_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password);
    let mut out = text.replace(raw_url, &RedactedUrl::new(raw_url).to_string());
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        out = out.replace(password, "***");
    }
    out
}
