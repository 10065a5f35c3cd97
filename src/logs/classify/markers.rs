//! Text markers: what a line that is neither JSON with a level nor logfmt says by
//! its words (rule 4 of [`super`]'s severity list).
//!
//! Trace heads and glog's prefix are read at column 0; level words and
//! `…Exception` tokens anywhere in the first [`HEAD_BYTES`] bytes, with the tests
//! that keep counts (`ERROR=0`, `no errors`) from being levels.

use memchr::memmem;

use super::Severity;

/// How far into a line level words are looked for.
pub(super) const HEAD_BYTES: usize = 256;

pub(super) fn text_marker(line: &[u8]) -> Option<Severity> {
    if let Some(s) = line_start_marker(line) {
        return Some(s);
    }
    let head = line.len().min(HEAD_BYTES);
    // A token can be a marker only when it is capitalised or stands in a level
    // position (first in the line, after an opener or an ANSI code). `i` is where
    // such a token may start; `opened` says it would be in a level position.
    let mut i = 0;
    let mut opened = true;
    while i < head {
        let class = BYTE_CLASS[usize::from(line[i])];
        if class & WORD != 0 {
            if (class & UPPER != 0 || opened) && line[i].is_ascii_alphabetic() {
                // A token is read whole even when it runs past the head.
                let end = token_end(line, i);
                if let Some(s) = token_marker(line, i, end) {
                    return Some(s);
                }
                i = end;
            } else if i == 0 || BYTE_CLASS[usize::from(line[i - 1])] & WORD == 0 {
                // No marker starts here (a digit, `_`, a lower-case word outside a
                // level position): passing its first byte is enough. The skip below
                // passes the rest; a capital it stops at inside the token is one
                // whose token's start was passed over, and such a token, not
                // starting with a capital, is no marker. Reading the token's end
                // cost more (`2024` starts most lines).
                i += 1;
            } else {
                // Right after an ANSI code whose final byte is a letter (`\x1b[K`):
                // looking back from a capital inside would take that letter for the
                // token's start.
                i = token_end(line, i);
            }
        }
        i = next_candidate(line, i, head);
        if i >= head {
            // Exactly at the head: the skip loops stopped there, maybe in a token.
            return (i == head)
                .then(|| passed_over_at_head(line, head))
                .flatten();
        }
        let class = BYTE_CLASS[usize::from(line[i])];
        opened = false;
        if class & ESC != 0 {
            i = skip_ansi(&line[..head], i);
        } else if class & OPENER != 0 {
            i += 1;
            opened = true;
        } else if i > 0 && BYTE_CLASS[usize::from(line[i - 1])] & WORD != 0 {
            // A capital inside a token whose start was passed over.
            let end = token_end(line, i);
            if let Some(s) = passed_over_token(line, i, end) {
                return Some(s);
            }
            i = end;
        }
    }
    None
}

/// The first byte at or after `i` (before `head`) where the text-marker scan stops
/// to look, or `head`; `i` when `i` is past the head.
///
/// Ordinary words, digits and punctuation, most of a line, are passed over in a
/// tight loop: only an opener, an escape or a capital that can start a marker
/// (`CANDIDATE`) can lead to one. Eight bytes at a time first: independent loads,
/// one test. (Sixteen bytes by comparisons the compiler vectorises took more
/// instructions: issue 17.)
#[inline(always)]
fn next_candidate(line: &[u8], mut i: usize, head: usize) -> usize {
    while i + 8 <= head {
        let chunk: &[u8; 8] = line[i..i + 8].try_into().expect("eight bytes");
        let classes = chunk
            .iter()
            .fold(0, |any, &b| any | BYTE_CLASS[usize::from(b)]);
        if classes & CANDIDATE != 0 {
            break;
        }
        i += 8;
    }
    match line.get(i..head) {
        Some(rest) => {
            i + rest
                .iter()
                .position(|&b| BYTE_CLASS[usize::from(b)] & CANDIDATE != 0)
                .unwrap_or(rest.len())
        }
        None => i,
    }
}

/// The token that runs past the head, when the scan passed over its start up to
/// the head: looked at as in [`passed_over_token`], for its `Exception` may lie
/// past the head.
fn passed_over_at_head(line: &[u8], head: usize) -> Option<Severity> {
    let word = |at: usize| {
        line.get(at)
            .is_some_and(|&b| BYTE_CLASS[usize::from(b)] & WORD != 0)
    };
    if head == 0 || !word(head - 1) || !word(head) {
        return None;
    }
    passed_over_token(line, head, token_end(line, head))
}

/// The token that holds `line[at]` and ends at `end`, whose start the scan passed
/// over: it is looked at only when it starts with a capital (`RuntimeException`),
/// not when it starts in lower case (`errorHandler`).
fn passed_over_token(line: &[u8], at: usize, end: usize) -> Option<Severity> {
    let start = line[..at]
        .iter()
        .rposition(|&b| BYTE_CLASS[usize::from(b)] & WORD == 0)
        .map_or(0, |p| p + 1);
    if BYTE_CLASS[usize::from(line[start])] & UPPER == 0 {
        return None;
    }
    token_marker(line, start, end)
}

/// Just past the token (run of word bytes) that starts at `start`.
pub(super) fn token_end(line: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < line.len() && BYTE_CLASS[usize::from(line[i])] & WORD != 0 {
        i += 1;
    }
    i
}

pub(super) const WORD: u8 = 1;
pub(super) const UPPER: u8 = 2;
/// Can precede a level word in a level position: `[`, `<`, `(`, `|`, tab.
pub(super) const OPENER: u8 = 4;
pub(super) const ESC: u8 = 8;
/// A capital that can start a level word (`ERROR`, `Warn`, …) or `Exception`.
const INITIAL: u8 = 16;
/// Where the text-marker scan stops to look. Other capitals (`GET`, `HTTP`,
/// `Mozilla`) cannot start a marker: a token that starts with one is a marker only
/// when it ends in `Exception`, and the scan stops at that `E`.
const CANDIDATE: u8 = INITIAL | OPENER | ESC;

/// Byte classes for the tokenizer: one table load per byte in the hot loop.
pub(super) static BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if is_word(b) {
            table[i] |= WORD;
        }
        if b.is_ascii_uppercase() {
            table[i] |= UPPER;
        }
        if matches!(
            b,
            b'A' | b'C' | b'D' | b'E' | b'F' | b'I' | b'N' | b'P' | b'S' | b'T' | b'W'
        ) {
            table[i] |= INITIAL;
        }
        if matches!(b, b'[' | b'<' | b'(' | b'|' | b'\t') {
            table[i] |= OPENER;
        }
        if b == 0x1b {
            table[i] |= ESC;
        }
        i += 1;
    }
    table
};

pub(super) const fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Past an ANSI escape sequence (`ESC [ params letter`) starting at `i`.
pub(super) fn skip_ansi(s: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if s.get(j) == Some(&b'[') {
        j += 1;
        while j < s.len() && !(0x40..=0x7e).contains(&s[j]) {
            j += 1;
        }
        j += 1;
    }
    j.min(s.len())
}

#[inline(always)]
pub(super) fn token_marker(line: &[u8], start: usize, end: usize) -> Option<Severity> {
    // Most tokens are turned away here, without a call: a level word is 3 to 9
    // letters long and starts with one of these letters; a longer token can end in
    // `Exception`.
    let (first, len) = (line[start], end - start);
    let level_initial = matches!(
        first | 0x20,
        b'a' | b'c' | b'd' | b'e' | b'f' | b'i' | b'n' | b'p' | b's' | b't' | b'w'
    );
    if !first.is_ascii_alphabetic() || len < 3 || (len <= 9 && !level_initial) {
        return None;
    }
    word_marker(line, start, end)
}

/// [`token_marker`] of a token that may be a level word or end in `Exception`.
fn word_marker(line: &[u8], start: usize, end: usize) -> Option<Severity> {
    let token = &line[start..end];
    let upper = token.iter().all(u8::is_ascii_uppercase);
    // Cheap position test first: most tokens are ordinary lower-case words.
    let severity = if upper || level_position(line, start, end) {
        Severity::from_level_word(token)
    } else {
        None
    };
    let severity = match severity {
        Some(s) => s,
        None if token.len() > 9 && token.ends_with(b"Exception") => Severity::Error,
        None => return None,
    };
    (!is_count(line, start, end)).then_some(severity)
}

/// Bracketed, tab-delimited, or first in the line before `:`, `]`, `|` or a tab.
fn level_position(line: &[u8], start: usize, end: usize) -> bool {
    let before = start.checked_sub(1).map(|i| line[i]);
    let after = line.get(end).copied();
    matches!(
        (before, after),
        (None, Some(b':' | b']' | b'|' | b'\t'))
            | (Some(b'['), Some(b']'))
            | (Some(b'<'), Some(b'>'))
            | (Some(b'('), Some(b')'))
            | (Some(b'|'), Some(b'|'))
            | (Some(b'\t'), Some(b'\t') | None)
    )
}

/// The token is a key (`ERROR=`), a zero count (`ERROR: 0`) or an absence
/// (`no ERROR`).
fn is_count(line: &[u8], start: usize, end: usize) -> bool {
    let after = &line[end..];
    if after.first() == Some(&b'=') {
        return true;
    }
    let after = trim_start(after);
    let after = trim_start(after.strip_prefix(b":").unwrap_or(after));
    if after.first() == Some(&b'0') && !after.get(1).is_some_and(u8::is_ascii_digit) {
        return true;
    }
    let before = &line[..start];
    let trimmed = trim_end(before);
    if trimmed.len() == before.len() {
        return false; // nothing or no space before: no previous word to read
    }
    let before = trimmed;
    let word_start = before
        .iter()
        .rposition(|&b| !is_word(b))
        .map_or(0, |i| i + 1);
    let previous = &before[word_start..];
    previous == b"0"
        || previous.eq_ignore_ascii_case(b"no")
        || previous.eq_ignore_ascii_case(b"zero")
        || previous.eq_ignore_ascii_case(b"without")
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &s[..s.len() - n]
}

/// Markers that only mean something at column 0: trace heads and glog.
pub(super) fn line_start_marker(line: &[u8]) -> Option<Severity> {
    let first = *line.first()?;
    if first.is_ascii_lowercase() {
        let rust_panic = line.starts_with(b"thread '")
            && memmem::find(&line[..line.len().min(HEAD_BYTES)], b"' panicked at").is_some();
        if rust_panic || line.starts_with(b"panic: ") || line.starts_with(b"fatal error: ") {
            return Some(Severity::Error);
        }
        return None;
    }
    if !first.is_ascii_uppercase() {
        return None;
    }
    if line.starts_with(b"Traceback (most recent call last):")
        || line.starts_with(b"Exception in thread ")
        || is_exception_line(line)
    {
        return Some(Severity::Error);
    }
    glog_severity(line)
}

/// `ValueError: …`, `java.lang.IllegalStateException: boom`, `Error: …`,
/// `KeyError` alone: a dotted identifier ending in Error, Exception or Throwable.
pub(crate) fn is_exception_line(line: &[u8]) -> bool {
    let n = line
        .iter()
        .take_while(|&&b| is_word(b) || b == b'.' || b == b'$')
        .count();
    let name = &line[..n];
    let rest = &line[n..];
    (rest.is_empty() || rest.starts_with(b": ") || rest == b":")
        && (name.ends_with(b"Error")
            || name.ends_with(b"Exception")
            || name.ends_with(b"Throwable"))
}

/// glog: `E0101 12:00:00.000000 1 file.go:12] msg` (I, W, E or F + MMDD).
fn glog_severity(line: &[u8]) -> Option<Severity> {
    if line.len() < 8 || line[5] != b' ' || !line[1..5].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !line[6].is_ascii_digit() {
        return None;
    }
    match line[0] {
        b'E' | b'F' => Some(Severity::Error),
        b'W' => Some(Severity::Warning),
        b'I' => Some(Severity::Info),
        _ => None,
    }
}
