//! What one line says: its severity, and the status class of an HTTP access line.
//!
//! This module owns the judgement of a single line; grouping lines into events is
//! [`super::events`]'s. It works on bytes (invalid UTF-8 is fine) and runs no regex
//! unless the user configured rules.
//!
//! # Severity, first answer wins
//!
//! 1. **User rules**, in order: the first regex that matches sets the severity, or
//!    marks the line ignored (not an event, not an HTTP line).
//! 2. **A JSON object's level field**: top-level `level`, `severity`, `lvl`,
//!    `levelname`, `loglevel`, `log.level`, or `level` inside a nested `"log"`
//!    object (ECS). A string is read as a level word (below, any case); a number as a
//!    bunyan/pino level: ≥50 error (50 error, 60 fatal), ≥40 warning, ≥30 info, else
//!    debug (10 trace, 20 debug).
//! 3. **logfmt** `level=`, `lvl=` or `severity=` (value optionally quoted).
//! 4. **Text markers**, the first one in the line wins:
//!    - at the start of the line: `Traceback (most recent call last):`, `panic: `,
//!      `fatal error: `, `thread '…' panicked at`, `Exception in thread `, an
//!      exception line (`ValueError: …`, `java.lang.IllegalStateException: …`,
//!      `Error: …`), and glog's `E0101 12:00:00` (`I`/`W`/`E`/`F` + 4 digits);
//!    - a level word as a whole token (tokens are runs of letters, digits and `_`;
//!      ANSI colour codes separate tokens) among the first 256 bytes, where every
//!      common format puts its level; later words are message text. Level words:
//!      error: `ERROR ERR CRITICAL CRIT FATAL SEVERE ALERT EMERG EMERGENCY PANIC`;
//!      warning: `WARN WARNING`; info: `INFO NOTICE`; debug: `DEBUG TRACE`.
//!      Upper case counts anywhere in those bytes. Another case (`error`, `Warn`)
//!      counts only in a level position: bracketed (`[error]`, `<warn>`, `(info)`,
//!      `|debug|`), tab-delimited (zap's console format), or first in the line and
//!      followed by `:`, `]`, `|` or a tab (`error: cannot open`);
//!    - a capitalised token ending in `Exception` (`NullPointerException`) anywhere in
//!      those bytes.
//!
//!    **Counts are not levels.** A level word does not count when it is a key or a
//!    count of nothing: followed by `=` (`ERROR=0`, `error=3`), followed by an
//!    optional `:` and the number `0` (`ERROR: 0`), or preceded by `no`, `0`,
//!    `zero` or `without` (`no ERROR`). Plurals and compounds are other tokens, so
//!    `errors: 0`, `0 errors`, `no errors`, `error_count=0`, `ERRORS=0` and
//!    `ErrorHandler` never count.
//! 5. Otherwise `unknown`.
//!
//! # HTTP status
//!
//! A JSON object's top-level `status`, `status_code`, `statusCode`,
//! `DownstreamStatus` (Traefik), `http.status_code` / `http.response.status_code`
//! (OpenTelemetry, ECS), or pino-http's `res.statusCode` (number or numeric string);
//! else a quoted request line followed by the status, as written by
//! the common/combined log format (nginx, Apache, gunicorn) and uvicorn:
//! `"GET / HTTP/1.1" 200`. Only 2xx–5xx count.

use std::str::FromStr;

use regex::bytes::RegexSet;

mod markers;
mod pass;

pub(crate) use markers::is_exception_line;
use markers::text_marker;

/// How bad an event is; `as_str` gives the `severity` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Info,
    Debug,
    Unknown,
}

impl Severity {
    /// Every severity, in label order.
    pub const ALL: [Severity; 5] = [
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Debug,
        Severity::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Debug => "debug",
            Severity::Unknown => "unknown",
        }
    }

    /// A level word in any case: `ERROR`, `warn`, `Notice`, `crit`, …
    #[inline]
    pub fn from_level_word(word: &[u8]) -> Option<Severity> {
        // The first letter and the length leave at most one level word to compare
        // with: most words tried (`GET`, `HTTP`, a logger's name) go no further.
        use Severity::{Debug, Error, Info, Warning};
        let (level, severity): (&[u8], Severity) = match (word.first()? | 0x20, word.len()) {
            (b'i', 4) => (b"info", Info),
            (b'd', 5) => (b"debug", Debug),
            (b'w', 7) => (b"warning", Warning),
            (b'w', 4) => (b"warn", Warning),
            (b'e', 5) if word[1] | 0x20 == b'r' => (b"error", Error),
            (b'e', 5) => (b"emerg", Error),
            (b'e', 3) => (b"err", Error),
            (b'e', 9) => (b"emergency", Error),
            (b't', 5) => (b"trace", Debug),
            (b'n', 6) => (b"notice", Info),
            (b'c', 8) => (b"critical", Error),
            (b'c', 4) => (b"crit", Error),
            (b'f', 5) => (b"fatal", Error),
            (b's', 6) => (b"severe", Error),
            (b'a', 5) => (b"alert", Error),
            (b'p', 5) => (b"panic", Error),
            _ => return None,
        };
        // `level` is lower-case letters: `b | 0x20` equals one only for that letter in
        // either case, so this is `eq_ignore_ascii_case` without lowering both sides.
        (word.len() == level.len() && word.iter().zip(level).all(|(b, l)| b | 0x20 == *l))
            .then_some(severity)
    }
}

/// The class of an HTTP response status; `as_str` gives `2xx` … `5xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl StatusClass {
    pub const ALL: [StatusClass; 4] = [
        StatusClass::Success,
        StatusClass::Redirection,
        StatusClass::ClientError,
        StatusClass::ServerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
        }
    }

    /// 200–599 → a class; anything else (1xx, nonsense) → `None`.
    pub fn of(code: u32) -> Option<StatusClass> {
        match code {
            200..=299 => Some(StatusClass::Success),
            300..=399 => Some(StatusClass::Redirection),
            400..=499 => Some(StatusClass::ClientError),
            500..=599 => Some(StatusClass::ServerError),
            _ => None,
        }
    }
}

/// What a user rule does with a line it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Severity(Severity),
    /// Not an event and not an HTTP line (health checks, known noise). The line is
    /// still read and counted in `outrider_log_lines_total`.
    Ignore,
}

impl FromStr for RuleAction {
    type Err = String;

    /// `error`, `warning` (or `warn`), `info`, `debug`, `unknown`, or `ignore`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ignore" => Ok(RuleAction::Ignore),
            "unknown" => Ok(RuleAction::Severity(Severity::Unknown)),
            "error" | "warning" | "warn" | "info" | "debug" => Ok(RuleAction::Severity(
                Severity::from_level_word(s.as_bytes()).expect("a level word"),
            )),
            _ => Err(format!(
                "unknown rule action {s:?}: expected error, warning, info, debug, unknown or ignore"
            )),
        }
    }
}

/// One user rule as configured: a regex and what a match means.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    pub action: RuleAction,
}

/// The verdict on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// `Unknown` when `ignored`.
    pub severity: Severity,
    /// A user rule said to ignore the line.
    pub ignored: bool,
    /// The status class when the line is an HTTP access line.
    pub http: Option<StatusClass>,
}

/// Classifies lines. Cheap to share: build once per source set, `&self` to use.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    /// `None` without rules, so no regex runs.
    rules: Option<(RegexSet, Vec<RuleAction>)>,
    /// Reads request durations from access lines ([`super::access`]).
    access: std::sync::Arc<super::access::AccessParser>,
}

impl Classifier {
    /// Compiles `rules` (matched in order, first match wins). Patterns are Rust
    /// regexes over bytes; the error names the bad pattern.
    pub fn new(rules: &[Rule]) -> Result<Classifier, regex::Error> {
        if rules.is_empty() {
            return Ok(Classifier::default());
        }
        let set = RegexSet::new(rules.iter().map(|r| &r.pattern))?;
        Ok(Classifier {
            rules: Some((set, rules.iter().map(|r| r.action).collect())),
            ..Default::default()
        })
    }

    /// The same classifier, reading request durations with `access`.
    pub fn with_access(mut self, access: super::access::AccessParser) -> Classifier {
        self.access = std::sync::Arc::new(access);
        self
    }

    /// The status class and duration in seconds of the request an access line logs
    /// (see [`super::access`]); `http` is [`Classification::http`] of the line.
    pub fn request(&self, line: &[u8], http: Option<StatusClass>) -> Option<(StatusClass, f64)> {
        self.access.request(line, http)
    }

    /// How request durations are read.
    pub fn access(&self) -> &super::access::AccessParser {
        &self.access
    }

    /// Bounds of the exported duration histogram.
    pub fn duration_buckets(&self) -> &crate::logs::latency::Buckets {
        &self.access.buckets
    }

    pub fn classify(&self, line: &[u8]) -> Classification {
        self.classify_found(line, None).0
    }

    /// The line's classification and the request it logs (as [`Self::request`]),
    /// with the searches of one shared by the other.
    pub fn classify_and_request(
        &self,
        line: &[u8],
    ) -> (Classification, Option<(StatusClass, f64)>) {
        self.classify_marked(line, None)
    }

    /// [`Self::classify_and_request`] of a line with no `=` or `H` before
    /// `unmarked_to` (as the framer found: [`super::framing::Line::unmarked_to`]),
    /// so that part is not searched for them again. The same answers.
    pub fn classify_marked(
        &self,
        line: &[u8],
        unmarked_to: Option<usize>,
    ) -> (Classification, Option<(StatusClass, f64)>) {
        let (c, found) = self.classify_found(line, unmarked_to);
        (c, self.access.request_found(line, c.http, &found))
    }

    fn classify_found(&self, line: &[u8], unmarked_to: Option<usize>) -> (Classification, Found) {
        let mut ruled = None;
        if let Some((set, actions)) = &self.rules {
            // The lowest index among matches is the first rule in config order.
            if let Some(i) = set.matches(line).iter().next() {
                match actions[i] {
                    RuleAction::Ignore => {
                        let c = Classification {
                            severity: Severity::Unknown,
                            ignored: true,
                            http: None,
                        };
                        return (c, Found::default());
                    }
                    RuleAction::Severity(s) => ruled = Some(s),
                }
            }
        }
        let json = json_fields(line);
        let want_level = ruled.is_none() && json.level.is_none();
        let pass = pass::level_and_status(
            line,
            want_level,
            json.status.is_none(),
            unmarked_to.unwrap_or(0),
        );
        let severity = ruled
            .or(json.level)
            .or(pass.level)
            .or_else(|| text_marker(line))
            .unwrap_or(Severity::Unknown);
        let http = match json.status {
            Some(code) => StatusClass::of(code),
            None => pass.http,
        };
        let c = Classification {
            severity,
            ignored: false,
            http,
        };
        let found = Found {
            json_duration: json.duration,
            first_http: pass.first_http,
            has_eq: pass.has_eq,
        };
        (c, found)
    }
}

/// What classifying a line found that reading its request's duration needs too
/// ([`super::access`]), so the line is not searched twice.
#[derive(Debug, Clone, Default)]
pub(super) struct Found {
    /// The first top-level member of a JSON line with a duration key: its unit
    /// and the value's range. `Walked(None)`: the line has none.
    pub json_duration: JsonDuration,
    /// Where the first `HTTP/` starts, when it was looked for.
    pub first_http: Option<usize>,
    /// Whether the line has a `=`, when it was looked for.
    pub has_eq: Option<bool>,
}

/// A JSON line's first duration member, as found by the classifier's walk.
#[derive(Debug, Clone, Default)]
pub(super) enum JsonDuration {
    /// Not walked the way [`super::access`] walks it (not a JSON line, or leading
    /// or trailing whitespace).
    #[default]
    Unknown,
    /// Walked: the unit of the first duration key and its value's range, if any.
    Walked(Option<(f64, std::ops::Range<usize>)>),
}

// ---------------------------------------------------------------- JSON lines

/// The fields of a JSON object line that classification reads.
#[derive(Debug, Default)]
struct JsonFields {
    level: Option<Severity>,
    status: Option<u32>,
    duration: JsonDuration,
}

/// Walks the top-level keys of a line that is a JSON object, without building it:
/// a malformed or cut line yields what was read before the damage.
#[inline]
fn json_fields(line: &[u8]) -> JsonFields {
    // Most lines are not JSON: they are turned away here, without a call.
    let start = skip_ws(line, 0);
    if line.get(start) != Some(&b'{') {
        return JsonFields::default();
    }
    json_object_fields(line, start)
}

/// [`json_fields`] of the object at `line[start]`.
fn json_object_fields(line: &[u8], start: usize) -> JsonFields {
    let mut fields = JsonFields::default();
    // The access parser walks a JSON line trimmed of whitespace: its walk is this
    // one when there is none, and then this one can tell it where the duration is.
    let as_access = start == 0 && !line.last().is_some_and(u8::is_ascii_whitespace);
    let mut duration = None;
    walk_object(line, start, &mut |key, value| {
        if as_access && duration.is_none() {
            if let Some(unit) = super::access::duration_key_unit(key) {
                let at = value.as_ptr() as usize - line.as_ptr() as usize;
                duration = Some((unit, at..at + value.len()));
            }
        }
        json_member(&mut fields, key, value);
    });
    if as_access {
        fields.duration = JsonDuration::Walked(duration);
    }
    fields
}

/// One top-level member of a JSON line, read into `fields`.
fn json_member(fields: &mut JsonFields, key: &[u8], value: &[u8]) {
    match key {
        b"level" | b"severity" | b"lvl" | b"levelname" | b"loglevel" | b"log.level"
            if fields.level.is_none() =>
        {
            fields.level = json_level(value);
        }
        b"log" if value.first() == Some(&b'{') => {
            walk_object(value, 0, &mut |k, v| {
                if k == b"level" && fields.level.is_none() {
                    fields.level = json_level(v);
                }
            });
        }
        b"status"
        | b"status_code"
        | b"statusCode"
        | b"DownstreamStatus"
        | b"http.status_code"
        | b"http.response.status_code"
            if fields.status.is_none() =>
        {
            fields.status = json_number(value);
        }
        // pino-http: `"res":{"statusCode":200}`.
        b"res" if value.first() == Some(&b'{') => {
            walk_object(value, 0, &mut |k, v| {
                if k == b"statusCode" && fields.status.is_none() {
                    fields.status = json_number(v);
                }
            });
        }
        _ => {}
    }
}

/// Calls `f(raw key, raw value)` for each member of the object at `s[start] == '{'`.
/// Keys are compared raw (an escaped key never matches, which is fine here).
pub(super) fn walk_object(s: &[u8], start: usize, f: &mut impl FnMut(&[u8], &[u8])) {
    let mut i = start + 1;
    loop {
        i = skip_ws(s, i);
        if s.get(i) != Some(&b'"') {
            return;
        }
        let Some(key_end) = string_end(s, i + 1) else {
            return;
        };
        let key = &s[i + 1..key_end - 1];
        i = skip_ws(s, key_end);
        if s.get(i) != Some(&b':') {
            return;
        }
        i = skip_ws(s, i + 1);
        let Some(value_end) = value_end(s, i) else {
            return;
        };
        f(key, &s[i..value_end]);
        i = skip_ws(s, value_end);
        if s.get(i) != Some(&b',') {
            return;
        }
        i += 1;
    }
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// Index just past the closing quote of the string whose body starts at `i`.
fn string_end(s: &[u8], mut i: usize) -> Option<usize> {
    // A byte loop over the first bytes was tried here: it cost more than the search,
    // and so did sixteen bytes compared at once and made a mask (issue 17). The
    // searcher is built once: short strings are searched inline, without dispatch.
    static QUOTE_OR_ESCAPE: std::sync::LazyLock<crate::logs::bytes::TwoBytes> =
        std::sync::LazyLock::new(|| crate::logs::bytes::TwoBytes::new(b'"', b'\\'));
    loop {
        let j = i + QUOTE_OR_ESCAPE.find(s.get(i..)?)?;
        if s[j] == b'"' {
            return Some(j + 1);
        }
        i = j + 2;
    }
}

/// Index just past the value starting at `i`.
fn value_end(s: &[u8], i: usize) -> Option<usize> {
    match *s.get(i)? {
        b'"' => string_end(s, i + 1),
        b'{' | b'[' => {
            // Strings are the only place brackets do not nest.
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *s.get(j)? {
                    b'"' => {
                        j = string_end(s, j + 1)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = s[i..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(s.len() - i);
            (len > 0).then_some(i + len)
        }
    }
}

fn json_level(value: &[u8]) -> Option<Severity> {
    match value.first()? {
        b'"' => Severity::from_level_word(value.get(1..value.len() - 1)?),
        _ => {
            let n = json_number(value)?;
            Some(match n {
                50.. => Severity::Error,
                40..=49 => Severity::Warning,
                30..=39 => Severity::Info,
                _ => Severity::Debug,
            })
        }
    }
}

/// A non-negative integer, bare or quoted.
fn json_number(value: &[u8]) -> Option<u32> {
    let digits = match value.first()? {
        b'"' => value.get(1..value.len() - 1)?,
        _ => value,
    };
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

#[cfg(test)]
mod tests;
