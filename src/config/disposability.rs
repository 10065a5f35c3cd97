//! `[disposability]`: when a start-up or a shutdown is slow, and how long a wrapped
//! app may take to exit after SIGTERM before Outrider kills it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::parse_duration;

/// `[disposability]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDisposability {
    /// A start-up (to listening, or to the first request) over this is slow.
    pub slow_startup: String,
    /// A shutdown (SIGTERM to exit) over this is slow.
    pub slow_shutdown: String,
    /// Wrap mode: after SIGTERM, the app is killed (SIGKILL) once this has passed.
    /// 25 s: within Kubernetes' default 30 s grace, so Outrider still says so.
    pub kill_after: String,
}

impl Default for RawDisposability {
    fn default() -> Self {
        RawDisposability {
            slow_startup: "10s".into(),
            slow_shutdown: "10s".into(),
            kill_after: "25s".into(),
        }
    }
}

/// `[disposability]`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisposabilityConfig {
    pub slow_startup: Duration,
    pub slow_shutdown: Duration,
    pub kill_after: Duration,
}

impl Default for DisposabilityConfig {
    fn default() -> Self {
        validate_disposability(&RawDisposability::default(), &mut Vec::new())
    }
}

/// Checks `[disposability]`; a wrong value is reported and its default stands in.
pub fn validate_disposability(
    r: &RawDisposability,
    errors: &mut Vec<String>,
) -> DisposabilityConfig {
    let mut duration = |key: &str, v: &str, default: u64| match parse_duration(v) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            errors.push(format!("disposability.{key}: must be more than 0s"));
            Duration::from_secs(default)
        }
        Err(e) => {
            errors.push(format!("disposability.{key}: {e}"));
            Duration::from_secs(default)
        }
    };
    DisposabilityConfig {
        slow_startup: duration("slow_startup", &r.slow_startup, 10),
        slow_shutdown: duration("slow_shutdown", &r.slow_shutdown, 10),
        kill_after: duration("kill_after", &r.kill_after, 25),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_their_key() {
        let d = DisposabilityConfig::default();
        assert_eq!(d.slow_startup, Duration::from_secs(10));
        assert_eq!(d.kill_after, Duration::from_secs(25));
        let mut errors = Vec::new();
        let raw = RawDisposability {
            slow_startup: "soon".into(),
            kill_after: "0s".into(),
            ..Default::default()
        };
        let c = validate_disposability(&raw, &mut errors);
        assert_eq!(c, d);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("disposability.slow_startup: "));
        assert_eq!(errors[1], "disposability.kill_after: must be more than 0s");
    }
}
