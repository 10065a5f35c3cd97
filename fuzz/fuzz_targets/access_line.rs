//! Access-line parsing: the built-in formats, a gunicorn `access_log_format` and a
//! user `duration_regex` both taken from the input. No panic; a duration is finite,
//! non-negative and within the parser's ceiling; a bare duration value likewise.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outrider::logs::access::{duration_value, AccessParser};
use outrider::logs::classify::StatusClass;
use outrider::logs::latency::Buckets;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // "kind, setting\0line": kind picks which setting the text before \0 is.
    let kind = data[0] % 3;
    let rest = &data[1..];
    let (setting, line) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (std::str::from_utf8(&rest[..i]).ok(), &rest[i + 1..]),
        None => (None, rest),
    };
    let setting = setting.filter(|s| s.len() < 128);
    let parser = match kind {
        0 => AccessParser::new(None, None, Buckets::default()),
        1 => AccessParser::new(setting, None, Buckets::default()),
        _ => AccessParser::new(None, setting, Buckets::default()),
    };
    let Ok(parser) = parser.or_else(|_| AccessParser::new(None, None, Buckets::default())) else {
        return;
    };
    for http in [None, StatusClass::of(200), StatusClass::of(503)] {
        if let Some((_, secs)) = parser.request(line, http) {
            assert!((0.0..=86_400.0).contains(&secs), "duration {secs}");
        }
    }
    for unit in [1.0, 1e-3, 1e-6] {
        if let Some(v) = duration_value(line, unit) {
            assert!(v.is_finite() && v >= 0.0, "{v} from {line:?}");
        }
    }
});
