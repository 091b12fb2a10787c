//! Text patterns for the filters' `LIKE`-style searches, rendered per engine by
//! [`Dialect::text_match`](super::Dialect::text_match).

/// What a text filter looks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TextPattern<'a> {
    /// Literal text anywhere.
    Contains(&'a str),
    /// Literal text at the start.
    Prefix(&'a str),
    /// Literal text at the end.
    Suffix(&'a str),
    /// A user's LIKE pattern (`%`, `_`, `\` escapes).
    Like(&'a str),
}

impl TextPattern<'_> {
    /// The pattern for `LIKE … ESCAPE '\'`.
    pub(crate) fn like(&self) -> String {
        match self {
            TextPattern::Contains(t) => format!("%{}%", escape_like(t)),
            TextPattern::Prefix(t) => format!("{}%", escape_like(t)),
            TextPattern::Suffix(t) => format!("%{}", escape_like(t)),
            TextPattern::Like(p) => (*p).to_string(),
        }
    }

    /// The pattern for SQLite's case-sensitive `GLOB`.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn glob(&self) -> String {
        match self {
            TextPattern::Contains(t) => format!("*{}*", escape_glob(t)),
            TextPattern::Prefix(t) => format!("{}*", escape_glob(t)),
            TextPattern::Suffix(t) => format!("*{}", escape_glob(t)),
            TextPattern::Like(p) => like_to_glob(p),
        }
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
///
/// ```
/// assert_eq!(rocket_alchemy::filters::escape_like("50%_off"), r"50\%\_off");
/// ```
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes GLOB's special characters (`*`, `?`, `[`) by bracketing them.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// A LIKE pattern (`%`, `_`, `\` escapes) as a GLOB pattern.
fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(next) => out.push_str(&escape_glob(&next.to_string())),
                None => out.push('\\'),
            },
            other => out.push_str(&escape_glob(&other.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_translation() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob(r"100\%"), "100%");
        assert_eq!(like_to_glob("x*y?[z]"), "x[*]y[?][[]z]");
        assert_eq!(escape_like("50%_off\\"), r"50\%\_off\\");
        assert_eq!(TextPattern::Prefix("a_").like(), r"a\_%");
        assert_eq!(TextPattern::Suffix("a*").glob(), "*a[*]");
    }
}
