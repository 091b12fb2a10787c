//! What a statement needs of its session's connection, read from its SQL: a reader will
//! do, or it writes. (A session that needs a transaction whatever it runs asks for
//! [`Need::Transaction`] itself.)

/// What a statement needs from its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// A read: any session will do.
    Read,
    /// A write (or a locking read): the session must be a writer.
    Write,
    /// A transaction, whatever the statements (savepoints, a raw connection).
    Transaction,
}

/// Classifies `sql` as a read or a write. Quoted text (strings, quoted identifiers) and
/// comments are skipped; a statement is a read when it starts with `SELECT`, `VALUES` or
/// `WITH` and contains no data-changing or locking keyword (`SELECT "update" FROM t` reads).
pub(crate) fn need_of(sql: &str) -> Need {
    let mut words = Words::new(sql);
    match words.next() {
        Some(first) if is(first, "SELECT") || is(first, "VALUES") || is(first, "WITH") => {}
        _ => return Need::Write,
    }
    let mut previous: &str = "";
    while let Some(word) = words.next() {
        // `REPLACE(…)`, `INSERT(…)` are string functions, not statements.
        if writes(word) && !words.sql[words.at..].trim_start().starts_with('(') {
            return Need::Write;
        }
        // `FOR UPDATE`, `FOR SHARE`, `FOR NO KEY UPDATE`, `FOR KEY SHARE`, `LOCK IN SHARE MODE`
        let locks = match previous.len() {
            3 => is(previous, "FOR") && (is(word, "SHARE") || is(word, "KEY") || is(word, "NO")),
            4 => is(previous, "LOCK") && is(word, "IN"),
            _ => false,
        };
        if locks {
            return Need::Write;
        }
        previous = word;
    }
    Need::Read
}

/// Whether `word` is one of [`WRITE_WORDS`] (compared by length first: this runs on every
/// word of every statement).
fn writes(word: &str) -> bool {
    match word.len() {
        4..=8 => WRITE_WORDS
            .iter()
            .any(|w| w.len() == word.len() && is(word, w)),
        _ => false,
    }
}

/// Keywords that make a statement a write wherever they appear unquoted (data-modifying
/// CTEs, `SELECT … INTO`, `FOR UPDATE`).
const WRITE_WORDS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT", "INTO", "CREATE", "DROP", "ALTER",
    "TRUNCATE",
];

fn is(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

/// The unquoted words of a SQL text.
struct Words<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Self {
        Words { sql, at: 0 }
    }

    /// Skips to the end of a quoted run opened at `self.at` by `quote`.
    fn skip_quoted(&mut self, quote: u8) {
        let bytes = self.sql.as_bytes();
        self.at += 1;
        while self.at < bytes.len() {
            if bytes[self.at] == quote {
                // A doubled quote is an escaped one.
                if bytes.get(self.at + 1) == Some(&quote) {
                    self.at += 2;
                    continue;
                }
                self.at += 1;
                return;
            }
            if bytes[self.at] == b'\\' && quote == b'\'' {
                self.at += 1;
            }
            self.at += 1;
        }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.sql.as_bytes();
        while self.at < bytes.len() {
            let b = bytes[self.at];
            match b {
                b'\'' | b'"' | b'`' => self.skip_quoted(b),
                b'[' => match self.sql[self.at..].find(']') {
                    Some(end) => self.at += end + 1,
                    None => self.at = bytes.len(),
                },
                b'-' if bytes.get(self.at + 1) == Some(&b'-') => {
                    match self.sql[self.at..].find('\n') {
                        Some(end) => self.at += end + 1,
                        None => self.at = bytes.len(),
                    }
                }
                b'/' if bytes.get(self.at + 1) == Some(&b'*') => {
                    match self.sql[self.at + 2..].find("*/") {
                        Some(end) => self.at += end + 4,
                        None => self.at = bytes.len(),
                    }
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    let start = self.at;
                    while self.at < bytes.len()
                        && (bytes[self.at].is_ascii_alphanumeric()
                            || bytes[self.at] == b'_'
                            || bytes[self.at] == b'$')
                    {
                        self.at += 1;
                    }
                    return Some(&self.sql[start..self.at]);
                }
                _ => self.at += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads() {
        for sql in [
            "SELECT 1",
            "  select \"id\", \"name\" FROM \"author\" WHERE \"id\" = $1",
            "SELECT `update`, `insert` FROM `t` WHERE `delete` = ?",
            "SELECT 'INSERT INTO x' AS s, \"for\" FROM t",
            "SELECT 'it''s an update' FROM t -- delete\n",
            "SELECT /* update */ 1",
            "WITH ra_page AS (SELECT * FROM t ORDER BY a LIMIT 2) SELECT * FROM ra_page",
            "VALUES (1)",
            "SELECT * FROM t WHERE a IN (SELECT b FROM u)",
            "SELECT * FROM t ORDER BY created_at FOR_X",
            "(SELECT 1)",
            "SELECT REPLACE(name, 'a', 'b'), INSERT(name, 1, 2, 'x') FROM t",
        ] {
            assert_eq!(need_of(sql), Need::Read, "{sql}");
        }
    }

    #[test]
    fn writes() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "insert into t values (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "REPLACE INTO t VALUES (1)",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR NO KEY UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SELECT * INTO u FROM t",
            "CREATE TABLE t (a int)",
            "PRAGMA user_version = 3",
            "SAVEPOINT a",
            "",
        ] {
            assert_eq!(need_of(sql), Need::Write, "{sql}");
        }
    }
}
