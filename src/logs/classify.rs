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
use std::sync::LazyLock;

use memchr::memmem;
use regex::bytes::RegexSet;

mod markers;

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
        word.eq_ignore_ascii_case(level).then_some(severity)
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

/// logfmt keys of a level, in order of precedence.
const LOGFMT_KEYS: [&[u8]; 3] = [b"level", b"lvl", b"severity"];
// Built once: building a searcher per line cost more than the search.
static HTTP_VERSION: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"HTTP/"));

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
        let mut ruled = None;
        if let Some((set, actions)) = &self.rules {
            // The lowest index among matches is the first rule in config order.
            if let Some(i) = set.matches(line).iter().next() {
                match actions[i] {
                    RuleAction::Ignore => {
                        return Classification {
                            severity: Severity::Unknown,
                            ignored: true,
                            http: None,
                        }
                    }
                    RuleAction::Severity(s) => ruled = Some(s),
                }
            }
        }
        let json = json_fields(line);
        let severity = ruled
            .or(json.level)
            .or_else(|| logfmt_level(line))
            .or_else(|| text_marker(line))
            .unwrap_or(Severity::Unknown);
        let http = match json.status {
            Some(code) => StatusClass::of(code),
            None => access_line_status(line),
        };
        Classification {
            severity,
            ignored: false,
            http,
        }
    }
}

// ---------------------------------------------------------------- JSON lines

/// The fields of a JSON object line that classification reads.
#[derive(Debug, Default)]
struct JsonFields {
    level: Option<Severity>,
    status: Option<u32>,
}

/// Walks the top-level keys of a line that is a JSON object, without building it:
/// a malformed or cut line yields what was read before the damage.
fn json_fields(line: &[u8]) -> JsonFields {
    let mut fields = JsonFields::default();
    let start = skip_ws(line, 0);
    if line.get(start) != Some(&b'{') {
        return fields;
    }
    walk_object(line, start, &mut |key, value| match key {
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
    });
    fields
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
    // A byte loop over the first bytes was tried here: it cost more than the search.
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', s.get(i..)?)?;
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

// ---------------------------------------------------------------- logfmt

fn logfmt_level(line: &[u8]) -> Option<Severity> {
    // One pass over the `=` signs (most lines have none). The first `level=` with a
    // level word wins, else the first such `lvl=`, else `severity=`: `best` keeps
    // the highest-ranked key found so far.
    let mut best: Option<(usize, Severity)> = None;
    for eq in memchr::memchr_iter(b'=', line) {
        // The key is what stands between the last space or tab and the `=`; only
        // the few bytes a key can have are looked at, so a line of `=` stays linear.
        let before = &line[..eq];
        let Some(rank) = LOGFMT_KEYS.iter().position(|k| ends_with_key(before, k)) else {
            continue;
        };
        if best.is_some_and(|(r, _)| r <= rank) {
            continue;
        }
        let value = &line[eq + 1..];
        let value = match value.strip_prefix(b"\"") {
            Some(quoted) => &quoted[..memchr::memchr(b'"', quoted).unwrap_or(quoted.len())],
            None => {
                &value[..value
                    .iter()
                    .position(|b| matches!(b, b' ' | b'\t'))
                    .unwrap_or(value.len())]
            }
        };
        if let Some(s) = Severity::from_level_word(value) {
            if rank == 0 {
                return Some(s);
            }
            best = Some((rank, s));
        }
    }
    best.map(|(_, s)| s)
}

/// `before` ends with `key`, which starts the line or follows a space or tab.
fn ends_with_key(before: &[u8], key: &[u8]) -> bool {
    before.ends_with(key)
        && match before.len() - key.len() {
            0 => true,
            n => matches!(before[n - 1], b' ' | b'\t'),
        }
}

// ---------------------------------------------------------------- access lines

/// `"GET /path HTTP/1.1" 200 …`: the status after a quoted request line.
fn access_line_status(line: &[u8]) -> Option<StatusClass> {
    for at in HTTP_VERSION.find_iter(line) {
        let rest = &line[at + 5..];
        let version = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let Some(rest) = rest[version..].strip_prefix(b"\" ") else {
            continue;
        };
        let code = rest.get(..3)?;
        if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| b.is_ascii_digit()) {
            continue;
        }
        let code = code.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
        return StatusClass::of(code);
    }
    None
}

#[cfg(test)]
mod tests;
