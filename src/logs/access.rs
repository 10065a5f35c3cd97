//! How long a request took, read from the app's access line.
//!
//! This module owns the duration of one line; its status class is
//! [`super::classify`]'s and the histograms are [`super::latency`]'s. A
//! duration counts only on an HTTP access line (a status class is known), except
//! with a user regex that captures the status itself. Anything unreadable is no
//! duration: never an error, never a guess of zero.
//!
//! # What is read, first answer wins
//!
//! 1. **A user regex** (`log_options.duration_regex`) with one named capture
//!    `duration_s`, `duration_ms` or `duration_us` (a number, or a string with a unit
//!    as below), and optionally `status`. A line it does not match goes on to 2.
//! 2. **A JSON object line**: the first top-level key among `duration`, `latency`,
//!    `elapsed`, `request_time`, `response_time` (any case, `_`, `-` or camelCase:
//!    `responseTime`), optionally suffixed with a unit: `_s`, `_sec`, `_seconds`,
//!    `_ms`, `_millis`, `_us`, `_micros`, `_ns`. Without a suffix `response_time` is
//!    in milliseconds (pino-http, morgan) and the others in seconds (nginx
//!    `$request_time` as JSON, zap, structlog). The value is a number, a numeric
//!    string, or a string with a unit, which wins over the key's: `"12ms"`, `"0.5s"`,
//!    and Go's duration strings (`"1.5ms"`, `"1m2.5s"`, `"250µs"`). A whole number of
//!    100000 or more where seconds are meant is Go's integer nanoseconds (slog's
//!    JSON handler, Traefik's `"Duration"`).
//! 3. **gunicorn with a configured format** (`log_options.gunicorn_access_log_format`,
//!    the app's `access_log_format`): `%(L)s` seconds (`0.012345`), `%(D)s`
//!    microseconds, `%(M)s` milliseconds, `%(T)s` whole seconds.
//! 4. **`key=value` fields**: the keys of 2 in logfmt, and nginx's `rt=` /
//!    `request_time=` (seconds); `urt=` / `upstream_response_time=` (seconds, a list
//!    `0.010, 0.020` summed, `-` none) only when no request time is there.
//!    `uct=`/`uht=` (connect, header time) are not the request's duration.
//! 5. **A trailing field** after the last quoted field (the user agent of the
//!    combined format): a decimal is seconds (nginx `$request_time`, gunicorn
//!    `%(L)s`), a whole number microseconds (Apache `%D`, gunicorn `%(D)s`). Apache's
//!    `%T` (whole seconds) is indistinguishable from `%D` this way: use a regex.
//!    Apache's `"%r" %>s %b %D "%{Referer}i" …` (a third number before the referer)
//!    is read as microseconds too.
//!    ingress-nginx's `upstreaminfo` (`"agent" $request_length $request_time [name]`)
//!    is read too.
//!
//! uvicorn's access line (`INFO:     127.0.0.1:40000 - "GET / HTTP/1.1" 200 OK`)
//! carries no duration; its status class is still counted. Run uvicorn under
//! gunicorn (`-k uvicorn.workers.UvicornWorker`) with an `access_log_format` that has
//! `%(L)s`, or give a regex for a custom format.

use memchr::memchr;
use regex::bytes::Regex;

use super::classify::{Found, JsonDuration, StatusClass};
use crate::logs::latency::Buckets;

/// What the duration parser is configured with, as validated.
#[derive(Debug, Clone, Default)]
pub struct AccessParser {
    user: Option<UserRegex>,
    gunicorn: Option<Regex>,
    /// Bounds of the exported histogram.
    pub buckets: Buckets,
}

#[derive(Debug, Clone)]
struct UserRegex {
    re: Regex,
    /// The capture's name and its unit in seconds.
    group: &'static str,
    unit: f64,
    has_status: bool,
}

/// The named captures a user regex may carry, with their units.
const USER_GROUPS: [(&str, f64); 3] = [
    ("duration_s", 1.0),
    ("duration_ms", 1e-3),
    ("duration_us", 1e-6),
];

impl AccessParser {
    /// Checks and compiles the user's settings; errors are for `validate()`, without
    /// the key path.
    pub fn new(
        duration_regex: Option<&str>,
        gunicorn_format: Option<&str>,
        buckets: Buckets,
    ) -> Result<AccessParser, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let user = match duration_regex {
            None => None,
            Some(p) => match user_regex(p) {
                Ok(u) => Some(u),
                Err(e) => {
                    errors.push(("duration_regex", e));
                    None
                }
            },
        };
        let gunicorn = match gunicorn_format {
            None => None,
            Some(f) => match gunicorn_regex(f) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.push(("gunicorn_access_log_format", e));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AccessParser {
            user,
            gunicorn,
            buckets,
        })
    }

    /// The same parser with another user regex (a log's own `duration_regex`).
    pub fn with_user_regex(&self, pattern: &str) -> Result<AccessParser, String> {
        Ok(AccessParser {
            user: Some(user_regex(pattern)?),
            ..self.clone()
        })
    }

    /// The status class and duration (seconds) of the request `line` logs; `http`
    /// is the class the classifier found.
    pub fn request(&self, line: &[u8], http: Option<StatusClass>) -> Option<(StatusClass, f64)> {
        self.parse(line, http, None)
            .filter(|(_, secs)| *secs <= MAX_DURATION_SECONDS)
    }

    /// [`Self::request`] with what classifying the line found: the same answer,
    /// without searching the line again.
    pub(super) fn request_found(
        &self,
        line: &[u8],
        http: Option<StatusClass>,
        found: &Found,
    ) -> Option<(StatusClass, f64)> {
        self.parse(line, http, Some(found))
            .filter(|(_, secs)| *secs <= MAX_DURATION_SECONDS)
    }

    fn parse(
        &self,
        line: &[u8],
        http: Option<StatusClass>,
        found: Option<&Found>,
    ) -> Option<(StatusClass, f64)> {
        if let Some(u) = &self.user {
            if let Some(caps) = u.re.captures(line) {
                let class = if u.has_status {
                    caps.name("status")
                        .and_then(|m| parse_number(m.as_bytes()))
                        .and_then(|n| StatusClass::of(n as u32))
                        .or(http)
                } else {
                    http
                };
                let secs = caps
                    .name(u.group)
                    .and_then(|m| duration_value(m.as_bytes(), u.unit));
                if let (Some(class), Some(secs)) = (class, secs) {
                    return Some((class, secs));
                }
            }
        }
        let class = http?;
        let secs = match found {
            Some(found) => self.builtin(line, found)?,
            None => self.builtin(line, &Found::default())?,
        };
        Some((class, secs))
    }

    fn builtin(&self, line: &[u8], found: &Found) -> Option<f64> {
        let line = trim_line_end(line);
        let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
        if line[start] == b'{' {
            return match &found.json_duration {
                JsonDuration::Unknown => json_duration(line, start),
                JsonDuration::Walked(None) => None,
                // The first duration member: when its value is no duration, the
                // walk goes on to the next (rare).
                JsonDuration::Walked(Some((unit, value))) => {
                    json_member_duration(&line[value.clone()], *unit)
                        .or_else(|| json_duration(line, start))
                }
            };
        }
        if let Some(re) = &self.gunicorn {
            if let Some(secs) = re.captures(line).and_then(|c| gunicorn_duration(&c)) {
                return Some(secs);
            }
        }
        if found.has_eq.unwrap_or_else(|| memchr(b'=', line).is_some()) {
            if let Some(secs) = key_value_duration(line) {
                return Some(secs);
            }
        }
        trailing_duration(line, found.first_http)
    }
}

/// Longer is no request duration but a misread (or a crafted header): not counted,
/// so one line cannot make the histogram's sum infinite.
const MAX_DURATION_SECONDS: f64 = 86_400.0;

fn trim_line_end(line: &[u8]) -> &[u8] {
    let n = line
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    &line[..line.len() - n]
}

fn user_regex(pattern: &str) -> Result<UserRegex, String> {
    let re = Regex::new(pattern).map_err(|e| {
        format!(
            "bad regex: {}",
            e.to_string().lines().last().unwrap_or_default()
        )
    })?;
    let names: Vec<&str> = re.capture_names().flatten().collect();
    let found: Vec<_> = USER_GROUPS
        .iter()
        .filter(|(g, _)| names.contains(g))
        .collect();
    let [(group, unit)] = found.as_slice() else {
        return Err(
            "needs exactly one named capture among (?P<duration_s>…), (?P<duration_ms>…), (?P<duration_us>…)"
                .into(),
        );
    };
    Ok(UserRegex {
        has_status: names.contains(&"status"),
        re,
        group,
        unit: *unit,
    })
}

// ---------------------------------------------------------------- values

/// A plain non-negative decimal number (`12`, `0.123`, `1e-3`).
fn parse_number(s: &[u8]) -> Option<f64> {
    if s.is_empty()
        || s.len() > 32
        || !s[0].is_ascii_digit()
        || !s
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A duration with an optional unit suffix: `12` (× `default_unit` seconds), `12ms`,
/// `0.5s`, `12 ms`, or a Go duration string (`1m2.5s`, `250µs`).
pub fn duration_value(s: &[u8], default_unit: f64) -> Option<f64> {
    let s = trim(s);
    if let Some(v) = parse_number(s) {
        return Some(v * default_unit);
    }
    go_duration(s)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Go's `time.Duration` string: one or more `<number><unit>`, units `ns`, `us`,
/// `µs`, `μs`, `ms`, `s`, `m`, `h` (one space before a lone unit is allowed).
fn go_duration(s: &[u8]) -> Option<f64> {
    let mut i = 0;
    let mut total = 0.0;
    let mut parts = 0;
    while i < s.len() {
        let n = s[i..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let v = parse_number(&s[i..i + n])?;
        i += n;
        if parts == 0 && s.get(i) == Some(&b' ') {
            i += 1;
        }
        let rest = &s[i..];
        let (unit, len) = if rest.starts_with(b"ns") {
            (1e-9, 2)
        } else if rest.starts_with(b"us") {
            (1e-6, 2)
        } else if rest.starts_with("µs".as_bytes()) || rest.starts_with("μs".as_bytes()) {
            (1e-6, 3)
        } else if rest.starts_with(b"ms") {
            (1e-3, 2)
        } else if rest.starts_with(b"s") {
            (1.0, 1)
        } else if rest.starts_with(b"m") {
            (60.0, 1)
        } else if rest.starts_with(b"h") {
            (3600.0, 1)
        } else {
            return None;
        };
        total += v * unit;
        i += len;
        parts += 1;
    }
    (parts > 0).then_some(total)
}

/// A duration key's default unit in seconds: `duration`, `latencyMs`,
/// `response_time`, `request-time-us`, …; `None` for any other key.
fn key_unit(key: &[u8]) -> Option<f64> {
    // Every key of a JSON line is asked: the first letter turns most away.
    // Every base below has 7 letters or more.
    let first = key.iter().find(|&&b| b != b'_' && b != b'-')? | 0x20;
    if key.len() < 7 || key.len() > 32 || !matches!(first, b'd' | b'l' | b'e' | b'r') {
        return None;
    }
    let mut norm = [0u8; 32];
    let mut n = 0;
    for &b in key {
        if b == b'_' || b == b'-' {
            continue;
        }
        norm[n] = b.to_ascii_lowercase();
        n += 1;
    }
    let norm = &norm[..n];
    let bases: [(&[u8], f64); 5] = [
        (b"duration", 1.0),
        (b"latency", 1.0),
        (b"elapsed", 1.0),
        (b"requesttime", 1.0),
        (b"responsetime", 1e-3),
    ];
    let (base, default) = bases.iter().find(|(b, _)| norm.starts_with(b))?;
    match &norm[base.len()..] {
        b"" => Some(*default),
        b"s" | b"sec" | b"secs" | b"seconds" => Some(1.0),
        b"ms" | b"millis" | b"milliseconds" => Some(1e-3),
        b"us" | b"micros" | b"microseconds" => Some(1e-6),
        b"ns" | b"nanos" | b"nanoseconds" => Some(1e-9),
        _ => None,
    }
}

// ---------------------------------------------------------------- JSON

/// The default unit of a JSON line's duration key: [`key_unit`]'s, and nginx's
/// `"rt":$request_time` in a JSON log_format.
#[inline]
pub(super) fn duration_key_unit(key: &[u8]) -> Option<f64> {
    // Every key of a JSON line is asked: most are shorter than any of key_unit's.
    if key.len() < 7 {
        (key == b"rt").then_some(1.0)
    } else {
        key_unit(key)
    }
}

fn json_duration(line: &[u8], start: usize) -> Option<f64> {
    let mut found = None;
    super::classify::walk_object(line, start, &mut |key, value| {
        if found.is_some() {
            return;
        }
        if let Some(unit) = duration_key_unit(key) {
            found = json_member_duration(value, unit);
        }
    });
    found
}

/// The raw JSON `value` of a duration key whose default unit is `unit`.
fn json_member_duration(value: &[u8], unit: f64) -> Option<f64> {
    // Go encodes a time.Duration as integer nanoseconds (slog's JSON handler,
    // Traefik's `"Duration"`): a whole number of "seconds" this large is that.
    let unit = match parse_number(value) {
        Some(n) if unit == 1.0 && n >= 1e5 && value.iter().all(u8::is_ascii_digit) => 1e-9,
        _ => unit,
    };
    let value = match value.first() {
        Some(b'"') => &value[1..value.len().saturating_sub(1).max(1)],
        _ => value,
    };
    duration_value(value, unit)
}

// ---------------------------------------------------------------- gunicorn

/// `access_log_format` → a regex: `%(L)s`, `%(D)s`, `%(M)s`, `%(T)s` and `%(s)s`
/// captured, every other atom any text, literal text as is.
fn gunicorn_regex(format: &str) -> Result<Regex, String> {
    let mut re = String::new();
    let mut rest = format;
    let mut has_duration = false;
    while let Some(at) = rest.find("%(") {
        re.push_str(&regex::escape(&rest[..at]));
        let after = &rest[at + 2..];
        let Some(close) = after.find(")s") else {
            return Err(format!(
                "unclosed atom at {:?}",
                rest[at..].chars().take(12).collect::<String>()
            ));
        };
        let name = &after[..close];
        match name {
            "L" => re.push_str(r"(?P<L>[0-9]+\.[0-9]+)"),
            "D" | "M" | "T" => re.push_str(&format!("(?P<{name}>[0-9]+)")),
            "s" => re.push_str(r"(?P<s>[0-9]{3})"),
            _ => re.push_str(".*?"),
        }
        has_duration |= matches!(name, "L" | "D" | "M" | "T");
        rest = &after[close + 2..];
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    if !has_duration {
        return Err("has no duration atom: add %(L)s (seconds) or %(D)s (microseconds)".into());
    }
    Regex::new(&re).map_err(|e| e.to_string())
}

fn gunicorn_duration(c: &regex::bytes::Captures<'_>) -> Option<f64> {
    for (name, unit) in [("L", 1.0), ("D", 1e-6), ("M", 1e-3), ("T", 1.0)] {
        if let Some(v) = c.name(name).and_then(|m| parse_number(m.as_bytes())) {
            return Some(v * unit);
        }
    }
    None
}

// ---------------------------------------------------------------- key=value

fn key_value_duration(line: &[u8]) -> Option<f64> {
    let mut upstream = None;
    let mut i = 0;
    // Whether `line[..i]` ends inside a quoted field (a request line, referer or user
    // agent): a `key=` there is the client's text, not the server's field.
    let mut quoted = false;
    while let Some(eq) = memchr(b'=', &line[i..]).map(|e| e + i) {
        quoted ^= unescaped_quotes(&line[i..eq]) % 2 == 1;
        if quoted {
            i = eq + 1;
            continue;
        }
        let key_start = line[..eq]
            .iter()
            .rposition(|b| matches!(b, b' ' | b'\t'))
            .map_or(0, |p| p + 1);
        let key = &line[key_start..eq];
        let (value, next) = field_value(line, eq + 1);
        i = next.max(eq + 1).min(line.len());
        quoted ^= unescaped_quotes(&line[eq..i]) % 2 == 1;
        match key {
            b"rt" | b"request_time" => {
                if let Some(v) = duration_value(value, 1.0) {
                    return Some(v);
                }
            }
            b"urt" | b"upstream_response_time" => {
                upstream = upstream.or_else(|| upstream_sum(value));
            }
            _ => {
                if let Some(v) = key_unit(key).and_then(|u| duration_value(value, u)) {
                    return Some(v);
                }
            }
        }
    }
    upstream
}

/// The value at `i` (quoted or up to the next space) and the index after it.
/// `"` not preceded by a backslash.
fn unescaped_quotes(s: &[u8]) -> usize {
    memchr::memchr_iter(b'"', s)
        .filter(|&q| q == 0 || s[q - 1] != b'\\')
        .count()
}

fn field_value(line: &[u8], i: usize) -> (&[u8], usize) {
    if line.get(i) == Some(&b'"') {
        let end = memchr(b'"', &line[i + 1..]).map_or(line.len(), |e| i + 1 + e);
        return (&line[i + 1..end], end + 1);
    }
    let end = line[i..]
        .iter()
        .position(|b| matches!(b, b' ' | b'\t'))
        .map_or(line.len(), |e| i + e);
    (&line[i..end], end)
}

/// nginx's `$upstream_response_time`: `0.010, 0.020 : 0.005` summed; `-` is none.
fn upstream_sum(value: &[u8]) -> Option<f64> {
    let mut total = None;
    for part in value.split(|b| matches!(b, b',' | b':')) {
        if let Some(v) = parse_number(trim(part)) {
            total = Some(total.unwrap_or(0.0) + v);
        }
    }
    total
}

// ---------------------------------------------------------------- trailing field

/// `first_http`: where the first `HTTP/` starts, when the classifier found it.
fn trailing_duration(line: &[u8], first_http: Option<usize>) -> Option<f64> {
    if let Some(v) = apache_middle_duration(line, first_http) {
        return Some(v);
    }
    let q = memchr::memrchr(b'"', line)?;
    // The request line's closing quote: what follows is status and size.
    if closes_request_line(&line[..q]) {
        return None;
    }
    let rest = &line[q + 1..];
    let mut tokens = rest.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let first = tokens.next()?;
    match tokens.next() {
        // `"agent" 0.123` or `"agent" 1234`.
        None => {
            let v = parse_number(first)?;
            Some(if memchr(b'.', first).is_some() {
                v
            } else {
                v * 1e-6
            })
        }
        // ingress-nginx: `"agent" $request_length $request_time [upstream] …`.
        Some(second) => {
            let third = tokens.next()?;
            (first.iter().all(u8::is_ascii_digit)
                && memchr(b'.', second).is_some()
                && third.starts_with(b"["))
            .then(|| parse_number(second))?
        }
    }
}

/// Apache's `"%r" %>s %b %D "%{Referer}i" …`: a third number (microseconds) between
/// the size and the referer.
fn apache_middle_duration(line: &[u8], first_http: Option<usize>) -> Option<f64> {
    // Built once: a searcher built per line cost more than the search.
    static REQUEST_VERSION: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b" HTTP/"));
    // A ` HTTP/` holds an `HTTP/`: the first one starts at the first `HTTP/`'s
    // space, or later.
    let at = match first_http {
        Some(q) if q > 0 && line[q - 1] == b' ' => q - 1,
        Some(q) => q + REQUEST_VERSION.find(&line[q..])?,
        None => REQUEST_VERSION.find(line)?,
    };
    let close = at + memchr(b'"', &line[at..])?;
    let rest = line.get(close + 1..)?;
    let mut tokens = rest.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let (status, size, micros, next) = (
        tokens.next()?,
        tokens.next()?,
        tokens.next()?,
        tokens.next()?,
    );
    let digits = |t: &[u8]| t.iter().all(u8::is_ascii_digit);
    (status.len() == 3
        && digits(status)
        && (digits(size) || size == b"-")
        && digits(micros)
        && next.starts_with(b"\""))
    .then(|| parse_number(micros).map(|v| v * 1e-6))?
}

/// `… HTTP/1.1` right before a quote.
fn closes_request_line(before: &[u8]) -> bool {
    let n = before
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    before[..before.len() - n].ends_with(b"HTTP/")
}

#[cfg(test)]
mod tests;
