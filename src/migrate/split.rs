//! Splits a migration's SQL into statements, to name the one that failed.
//!
//! Handles quoted strings and identifiers (`'…'`, `"…"`, `` `…` ``, with doubled-quote
//! escapes), `--` and `/* */` comments, PostgreSQL dollar quoting (`$$…$$`, `$tag$…$tag$`) and
//! SQLite trigger bodies (`CREATE TRIGGER … BEGIN …; END`).

/// The statements of `sql`, trimmed, without empty ones and comments-only ones.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut in_trigger = false;
    let mut depth = 0i32; // BEGIN … END nesting inside a trigger
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == c {
                        if i + 1 < bytes.len() && bytes[i + 1] == c {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                // $tag$ … $tag$
                let tag_end = sql[i + 1..].find('$').map(|p| i + 1 + p);
                match tag_end {
                    Some(end)
                        if sql[i + 1..end]
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_') =>
                    {
                        let tag = &sql[i..=end];
                        match sql[end + 1..].find(tag) {
                            Some(close) => i = end + 1 + close + tag.len(),
                            None => i = bytes.len(),
                        }
                    }
                    _ => i += 1,
                }
            }
            b';' if depth == 0 => {
                push(&mut out, &sql[start..i]);
                in_trigger = false;
                start = i + 1;
                i += 1;
            }
            _ if c.is_ascii_alphabetic() => {
                let word_end = sql[i..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .map(|p| i + p)
                    .unwrap_or(sql.len());
                let word = sql[i..word_end].to_ascii_uppercase();
                let boundary =
                    i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
                if boundary {
                    match word.as_str() {
                        "TRIGGER" => in_trigger = true,
                        "BEGIN" if in_trigger => depth += 1,
                        "CASE" if depth > 0 => depth += 1,
                        "END" if depth > 0 => depth -= 1,
                        _ => {}
                    }
                }
                i = word_end;
            }
            _ => i += 1,
        }
    }
    push(&mut out, &sql[start..]);
    out
}

fn push(out: &mut Vec<String>, statement: &str) {
    let trimmed = statement.trim();
    let meaningful = trimmed.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with("--")
    });
    if meaningful {
        out.push(trimmed.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn splits() {
        let sql = "-- header\nCREATE TABLE a (x TEXT DEFAULT 'a;b');\n/* ; */ INSERT INTO \"we;ird\" VALUES ('it''s;');\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = CASE WHEN 1 THEN 'y' END; DELETE FROM a; END;\n\
                   SELECT 1";
        let got = statements(sql);
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got[0].ends_with("'a;b')"));
        assert!(got[1].contains("'it''s;'"));
        assert!(got[2].contains("$body$ SELECT 1; $body$"));
        assert!(got[3].starts_with("CREATE TRIGGER") && got[3].ends_with("END"));
        assert_eq!(got[4], "SELECT 1");
        assert!(statements("-- only a comment\n").is_empty());
    }
}
