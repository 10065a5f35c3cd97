//! Config errors that never echo a secret.
//!
//! The rule: an error names the key (its dotted path, or the environment variable)
//! and, for the file, the line and column; it never shows a line of the file nor a
//! value read from the file or the environment. The TOML parser's and serde's own
//! texts do both (toml prints the offending line under a caret; serde writes
//! ``invalid type: string "…"``), and the line holding a Slack URL or a token is as
//! likely as any to hold the mistake. So their messages are kept only for what they
//! say about the shape (`invalid type: integer, expected a string`) with every quoted
//! value cut out, and key names (`unknown field`, `duplicate key`) kept. Our own
//! validation messages quote a value only for keys that are never secret (names,
//! durations, counts, label names); a receiver's `url`, `headers`, `bearer_token`
//! and `basic_auth.password` are never quoted anywhere.

use std::path::Path;

/// 1-based line and column of byte `offset` in `text` (columns count characters).
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// `, line L, column C`, or nothing without a span.
fn at(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(s) => {
            let (line, column) = line_col(text, s.start);
            format!(", line {line}, column {column}")
        }
        None => String::new(),
    }
}

/// A file that is not TOML: where, and what the parser expected; not the line.
pub(super) fn syntax(path: &Path, text: &str, e: &toml::de::Error) -> String {
    format!(
        "config file {}{}: not valid TOML: {}",
        path.display(),
        at(text, e.span()),
        without_values(e.message())
    )
}

/// A value of the wrong type or shape, found while deserializing the merged table:
/// `KEY: MESSAGE`, located in the file when the file alone shows the same fault (its
/// span comes from deserializing the text itself), or named by the environment
/// variable that set it.
/// `key`: the error's key path with its array indexes, when found (toml's own
/// names none).
pub(super) fn shape(
    e: &toml::de::Error,
    key: Option<&str>,
    file: Option<(&Path, &str)>,
    env: &[(String, String)],
) -> String {
    // A message that began with the value ("`x` is not a whole number") begins
    // with its verb once the value is cut.
    let message = without_values(e.message()).trim_start().to_string();
    let key = key.map(str::to_string).or_else(|| key_of(e));
    // The environment overrides the file: a key it set is its value.
    let mut whence = String::new();
    // The variable that set this key: its element when both name one, else by
    // the path without indexes (toml's own error path has none).
    let set_by = |k: &String| match &key {
        Some(key) if key.split('.').any(|p| p.parse::<usize>().is_ok()) => k == key,
        Some(key) => super::sources::without_indexes(k) == *key,
        None => false,
    };
    if let Some((var, _)) = env.iter().find(|(_, k)| set_by(k)) {
        whence = format!(" (set by {var})");
    } else if let (Some((path, text)), Some(k)) = (file, &key) {
        if let Some(span) = span_of(text, k) {
            whence = format!(" (config file {}{})", path.display(), at(text, Some(span)));
        }
    }
    match key {
        Some(k) => format!("{k}{whence}: {message}"),
        None => format!("configuration{whence}: {message}"),
    }
}

/// Where the value at `key` (`cost.currency`, `targets.pid`: an array's first
/// element that has it) is written in the TOML `text`.
fn span_of(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    fn in_table<'a, 'i>(t: &'a DeTable<'i>, part: &str) -> Option<&'a toml::Spanned<DeValue<'i>>> {
        t.iter().find(|(k, _)| k.get_ref() == part).map(|(_, v)| v)
    }
    fn find<'a, 'i>(
        v: &'a toml::Spanned<DeValue<'i>>,
        parts: &[&str],
    ) -> Option<&'a toml::Spanned<DeValue<'i>>> {
        let Some((part, rest)) = parts.split_first() else {
            return Some(v);
        };
        match v.get_ref() {
            DeValue::Table(t) => find(in_table(t, part)?, rest),
            DeValue::Array(a) => match part.parse::<usize>() {
                Ok(i) => find(a.get(i)?, rest),
                Err(_) => a.iter().find_map(|e| find(e, parts)),
            },
            _ => None,
        }
    }
    let doc = DeTable::parse(text).ok()?;
    let parts: Vec<&str> = key.split('.').collect();
    let (first, rest) = parts.split_first()?;
    Some(find(in_table(doc.get_ref(), first)?, rest)?.span())
}

/// The key path of a deserializing error: without an input the display ends
/// with "in `a.b.c`".
pub(super) fn key_of(e: &toml::de::Error) -> Option<String> {
    let shown = e.to_string();
    shown
        .rsplit_once("in `")
        .and_then(|(_, k)| k.trim_end().strip_suffix('`'))
        .map(str::to_string)
}

/// A serde or TOML message with every quoted value cut out: `` `…` `` and `"…"`
/// spans go, except after `field`/`key` (those name a key, never a value) and in
/// the `expected …` tail (written by the program, not read from input).
pub(super) fn without_values(message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let (head, tail) = match first.find(", expected") {
        Some(i) => first.split_at(i),
        None => (first, ""),
    };
    let mut out = String::with_capacity(first.len());
    let mut rest = head;
    while let Some(i) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[i] as char;
        let before = &rest[..i];
        let Some(len) = rest[i + 1..].find(quote) else {
            // An unclosed quote: drop what follows it.
            out.push_str(before.trim_end());
            rest = "";
            break;
        };
        let quoted = &rest[i..i + len + 2];
        let keeps_key = before.trim_end().ends_with("field") || before.trim_end().ends_with("key");
        if keeps_key {
            out.push_str(before);
            out.push_str(quoted);
        } else {
            out.push_str(before.trim_end());
        }
        rest = &rest[i + len + 2..];
    }
    out.push_str(rest);
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_and_keys_kept() {
        let cases = [
            (
                "invalid type: integer `5`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: string \"xoxb-SECRET-123\", expected u64",
                "invalid type: string, expected u64",
            ),
            (
                "unknown variant `xoxb-SECRET-123`, expected `a` or `b`",
                "unknown variant, expected `a` or `b`",
            ),
            (
                "unknown field `bearer_toke`, expected one of `url`",
                "unknown field `bearer_toke`, expected one of `url`",
            ),
            ("duplicate key `url`", "duplicate key `url`"),
            ("invalid value: string \"xoxb", "invalid value: string"),
            (
                "invalid basic string, expected `\"`",
                "invalid basic string, expected `\"`",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(without_values(raw), want, "{raw}");
        }
    }

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\nbé = \"x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, text.find('=').unwrap()), (1, 3));
        let second = text.rfind('=').unwrap();
        assert_eq!(line_col(text, second), (2, 4));
    }
}
