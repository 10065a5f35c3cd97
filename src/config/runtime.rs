//! `[http]`, `[sampling]` and `[lifecycle]`: how Outrider itself runs — where it
//! listens, how often it samples and scans, and how long it drains at shutdown.
//! (`sampling.pss_interval` is checked with `[capacity]`, which uses it.)

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::capacity;
use crate::units::parse_duration;

/// Where Outrider listens unless told otherwise: a free port in the range the
/// Prometheus wiki keeps for exporters.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9717";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawHttp {
    pub listen: String,
    /// Most client connections open at once; a new one past it closes the least
    /// recently active one. Also held to half the fd limit (docs/security.md).
    pub max_connections: usize,
}

/// `http.max_connections` unless set: well above any number of scrapers and
/// browsers, well below the usual 1024-fd soft limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: DEFAULT_LISTEN.to_string(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawSampling {
    pub interval: String,
    pub proc_root: String,
    /// Append every sample to this trace file (the `replay` format); empty: off.
    pub record: String,
    /// The trace file's size at which it is renamed to FILE.1 and begun afresh.
    pub record_max_size: String,
    /// Least time between two scans of the app's TCP sockets; "0" or "off": never.
    pub connections_interval: String,
    /// How often the PSS of pre-fork masters and workers is read; `off`: never.
    #[serde(default = "capacity::default_pss_interval")]
    pub pss_interval: String,
}

impl Default for RawSampling {
    fn default() -> Self {
        RawSampling {
            interval: "5s".into(),
            proc_root: "/proc".into(),
            record: String::new(),
            record_max_size: "64Mi".into(),
            connections_interval: "15s".into(),
            pss_interval: capacity::default_pss_interval(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawLifecycle {
    pub shutdown_grace: String,
}

impl Default for RawLifecycle {
    fn default() -> Self {
        RawLifecycle {
            shutdown_grace: "1s".into(),
        }
    }
}

/// `http.listen`: an address and port; `http.max_connections`: at least 1.
pub(super) fn validate_http(h: &RawHttp, errors: &mut Vec<String>) -> Option<SocketAddr> {
    if h.max_connections == 0 {
        errors.push("http.max_connections: must be at least 1".into());
    }
    match h.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(format!(
                "http.listen: {:?} is not an address and port such as 0.0.0.0:9717",
                h.listen
            ));
            None
        }
    }
}

/// What `[sampling]`'s intervals came to; `None` where the value was wrong.
pub(super) struct Intervals {
    pub interval: Option<Duration>,
    /// `Some(None)`: connection scans are off.
    pub connections_interval: Option<Option<Duration>>,
}

/// `sampling.interval` (at least 100 ms) and `sampling.connections_interval`
/// (at least 100 ms, or off).
pub(super) fn validate_intervals(s: &RawSampling, errors: &mut Vec<String>) -> Intervals {
    let mut err = |key: &str, msg: String| errors.push(format!("sampling.{key}: {msg}"));
    let interval = match parse_duration(&s.interval) {
        Ok(d) if d >= Duration::from_millis(100) => Some(d),
        Ok(_) => {
            err("interval", "must be at least 100ms".into());
            None
        }
        Err(e) => {
            err("interval", e);
            None
        }
    };
    let connections_interval = match s.connections_interval.trim() {
        "off" | "0" => Some(None),
        v => match parse_duration(v) {
            Ok(d) if d.is_zero() => Some(None),
            Ok(d) if d >= Duration::from_millis(100) => Some(Some(d)),
            Ok(_) => {
                err(
                    "connections_interval",
                    "must be at least 100ms, or \"off\"".into(),
                );
                None
            }
            Err(e) => {
                err("connections_interval", format!("{e}, or \"off\""));
                None
            }
        },
    };
    Intervals {
        interval,
        connections_interval,
    }
}

/// `sampling.record_max_size`: a size of at least 4Ki (a header and a few rows).
pub(super) fn validate_record_max_size(s: &RawSampling, errors: &mut Vec<String>) -> u64 {
    match crate::units::parse_bytes(&s.record_max_size) {
        Ok(n) if n >= 4096 => n,
        Ok(_) => {
            errors.push("sampling.record_max_size: must be at least 4Ki".into());
            0
        }
        Err(e) => {
            errors.push(format!("sampling.record_max_size: {e}"));
            0
        }
    }
}

/// `sampling.proc_root`: any path, but not an empty one.
pub(super) fn validate_proc_root(s: &RawSampling, errors: &mut Vec<String>) {
    if s.proc_root.is_empty() {
        errors.push("sampling.proc_root: must not be empty".into());
    }
}

/// `lifecycle.shutdown_grace`: a duration.
pub(super) fn validate_lifecycle(l: &RawLifecycle, errors: &mut Vec<String>) -> Option<Duration> {
    parse_duration(&l.shutdown_grace)
        .map_err(|e| errors.push(format!("lifecycle.shutdown_grace: {e}")))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_trace_limits_are_checked() {
        let mut errors = Vec::new();
        let http = RawHttp {
            max_connections: 0,
            ..Default::default()
        };
        assert!(validate_http(&http, &mut errors).is_some());
        let sampling = |size: &str| RawSampling {
            record_max_size: size.into(),
            ..Default::default()
        };
        assert_eq!(
            validate_record_max_size(&sampling("64Mi"), &mut errors),
            64 << 20
        );
        validate_record_max_size(&sampling("1Ki"), &mut errors);
        validate_record_max_size(&sampling("lots"), &mut errors);
        assert_eq!(
            errors,
            [
                "http.max_connections: must be at least 1",
                "sampling.record_max_size: must be at least 4Ki",
                "sampling.record_max_size: \"lots\" is not a memory quantity such as 512Mi, 1G or 134217728",
            ]
        );
    }
}
