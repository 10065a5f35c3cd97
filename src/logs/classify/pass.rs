//! The logfmt level and the access line's status, read in one pass over a line.
//!
//! Both were a search over the whole line each (`=` signs, then `HTTP/`): on the
//! realistic mix those two passes cost more than what they found. Here one search
//! stops at both (`memchr2` on `=` and `H`), and each is dropped once answered.
//! The answers are those of the two searches (checked against them in the tests).
//! The search starts where the framer found the line's first `=` or `H`
//! ([`crate::logs::framing::Line::unmarked_to`]): a line without them is not
//! searched at all.

use memchr::memmem;
use std::sync::LazyLock;

use super::{Severity, StatusClass};
use crate::logs::bytes::{Byte, TwoBytes};

/// logfmt keys of a level, in order of precedence.
const LOGFMT_KEYS: [&[u8]; 3] = [b"level", b"lvl", b"severity"];
// Built once: building a searcher per line cost more than the search.
static HTTP_VERSION: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"HTTP/"));
static EQ_OR_H: LazyLock<TwoBytes> = LazyLock::new(|| TwoBytes::new(b'=', b'H'));
static EQ: LazyLock<Byte> = LazyLock::new(|| Byte::new(b'='));
static QUOTE: LazyLock<Byte> = LazyLock::new(|| Byte::new(b'"'));

/// What the pass found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Pass {
    /// The logfmt level (`level=`, else `lvl=`, else `severity=`), when asked for.
    pub level: Option<Severity>,
    /// The status class after a quoted request line, when asked for.
    pub http: Option<StatusClass>,
    /// Where the first `HTTP/` starts; `None` when there is none or it was not
    /// looked for (the status was not asked for).
    pub first_http: Option<usize>,
    /// Whether the line has a `=`; `None` when not looked for to the end.
    pub has_eq: Option<bool>,
}

/// Reads the logfmt level when `want_level` and the access status when `want_http`;
/// no `=` or `H` lies before `unmarked_to` (0 when nothing is known, past the line's
/// end when it has none).
pub(super) fn level_and_status(
    line: &[u8],
    want_level: bool,
    want_http: bool,
    unmarked_to: usize,
) -> Pass {
    let mut pass = Pass::default();
    let mut logfmt = Logfmt::default();
    let (mut level_open, mut http_open) = (want_level, want_http);
    let mut saw_eq = false;
    let mut from = unmarked_to.min(line.len());
    // A line without `=` and `H` (most plain lines) is not searched.
    while (level_open || http_open) && from < line.len() {
        let rest = &line[from..];
        let hit = match (level_open, http_open) {
            (true, true) => EQ_OR_H.find(rest),
            (true, false) => EQ.find(rest),
            _ => HTTP_VERSION.find(rest),
        };
        let Some(at) = hit.map(|h| from + h) else {
            break;
        };
        from = at + 1;
        if line[at] == b'=' {
            saw_eq = true;
            if let Some(s) = logfmt.at_eq(line, at) {
                pass.level = Some(s);
                level_open = false;
            }
        } else if line[at..].starts_with(b"HTTP/") {
            pass.first_http = pass.first_http.or(Some(at));
            if let Some(found) = status_at(line, at) {
                pass.http = found;
                http_open = false;
            }
        }
    }
    if want_level {
        pass.level = pass.level.or(logfmt.best.map(|(_, s)| s));
        pass.has_eq = Some(saw_eq);
    }
    pass
}

/// The logfmt level so far: the first `level=` with a level word wins, else the
/// first such `lvl=`, else `severity=`.
#[derive(Default)]
struct Logfmt {
    /// The highest-ranked key with a level word found so far.
    best: Option<(usize, Severity)>,
}

impl Logfmt {
    /// The `=` at `eq`; `Some` when it settles the level (a `level=` word).
    fn at_eq(&mut self, line: &[u8], eq: usize) -> Option<Severity> {
        // The key is what stands between the last space or tab and the `=`; only
        // the few bytes a key can have are looked at, so a line of `=` stays linear.
        let before = &line[..eq];
        let rank = LOGFMT_KEYS.iter().position(|k| ends_with_key(before, k))?;
        if self.best.is_some_and(|(r, _)| r <= rank) {
            return None;
        }
        let value = &line[eq + 1..];
        let value = match value.strip_prefix(b"\"") {
            Some(quoted) => &quoted[..QUOTE.find(quoted).unwrap_or(quoted.len())],
            None => {
                &value[..value
                    .iter()
                    .position(|b| matches!(b, b' ' | b'\t'))
                    .unwrap_or(value.len())]
            }
        };
        let s = Severity::from_level_word(value)?;
        if rank == 0 {
            return Some(s);
        }
        self.best = Some((rank, s));
        None
    }
}

/// `before` ends with `key`, which starts the line or follows a space or tab.
fn ends_with_key(before: &[u8], key: &[u8]) -> bool {
    before.ends_with(key)
        && match before.len() - key.len() {
            0 => true,
            n => matches!(before[n - 1], b' ' | b'\t'),
        }
}

/// The `HTTP/` at `at`: `Some(answer)` when it settles the line's status (`"GET /path
/// HTTP/1.1" 200 …`, or a request line cut before its status), `None` to look on.
fn status_at(line: &[u8], at: usize) -> Option<Option<StatusClass>> {
    let rest = &line[at + 5..];
    let version = rest
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    let rest = rest[version..].strip_prefix(b"\" ")?;
    let Some(code) = rest.get(..3) else {
        return Some(None);
    };
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let code = code.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    Some(StatusClass::of(code))
}

#[cfg(test)]
mod tests;
