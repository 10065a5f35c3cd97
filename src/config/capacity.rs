//! `[capacity]` and `sampling.pss_interval`: the settings of the capacity advice
//! ([`crate::analysis::capacity`], [`crate::sample::workers`]), validated with
//! their key paths like every other section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::analysis::capacity::CapacityConfig;
use crate::units::{parse_duration, Scalar};

/// `[capacity]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawCapacity {
    /// The window requests per CPU-second are measured over.
    pub window: String,
    /// Workers per core the worker hint starts from.
    pub workers_per_core: Scalar,
    /// Share of the memory limit the workers may fill.
    pub memory_margin: Scalar,
}

impl Default for RawCapacity {
    fn default() -> Self {
        RawCapacity {
            window: "5m".into(),
            workers_per_core: Scalar::Int(2),
            memory_margin: Scalar::Float(0.9),
        }
    }
}

/// The default of `sampling.pss_interval`.
pub fn default_pss_interval() -> String {
    "60s".into()
}

/// `sampling.pss_interval`: a duration, or `off` (`None`: PSS is never read).
pub fn validate_pss_interval(v: &str, errors: &mut Vec<String>) -> Option<Duration> {
    if v.trim().eq_ignore_ascii_case("off") {
        return None;
    }
    match parse_duration(v) {
        Ok(d) if d >= Duration::from_secs(1) => Some(d),
        Ok(_) => {
            errors.push("sampling.pss_interval: must be at least 1s, or off".into());
            None
        }
        Err(e) => {
            errors.push(format!("sampling.pss_interval: {e}, or off"));
            None
        }
    }
}

/// Checks `[capacity]`.
pub fn validate_capacity(c: &RawCapacity, errors: &mut Vec<String>) -> CapacityConfig {
    let d = CapacityConfig::default();
    let window = match parse_duration(&c.window) {
        Ok(w) if w.as_secs_f64() > 0.0 => w.as_secs_f64(),
        Ok(_) => {
            errors.push("capacity.window: must be above zero".into());
            d.window
        }
        Err(e) => {
            errors.push(format!("capacity.window: {e}"));
            d.window
        }
    };
    let mut number = |key: &str, v: &Scalar, ok: fn(f64) -> bool, want: &str, default: f64| match v
        .to_string()
        .trim()
        .parse::<f64>()
    {
        Ok(x) if x.is_finite() && ok(x) => x,
        Ok(_) => {
            errors.push(format!("capacity.{key}: must be {want}"));
            default
        }
        Err(_) => {
            errors.push(format!(
                "capacity.{key}: {:?} is not a number",
                v.to_string()
            ));
            default
        }
    };
    CapacityConfig {
        window,
        workers_per_core: number(
            "workers_per_core",
            &c.workers_per_core,
            |x| x > 0.0,
            "above zero",
            d.workers_per_core,
        ),
        memory_margin: number(
            "memory_margin",
            &c.memory_margin,
            |x| x > 0.0 && x <= 1.0,
            "above 0 and at most 1",
            d.memory_margin,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_all_reported_with_their_keys() {
        let mut errors = Vec::new();
        let raw = RawCapacity {
            window: "soon".into(),
            workers_per_core: Scalar::Int(0),
            memory_margin: Scalar::Str("lots".into()),
        };
        validate_capacity(&raw, &mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("capacity.window:"));
        assert!(errors[1].starts_with("capacity.workers_per_core:"));
        assert!(errors[2].starts_with("capacity.memory_margin:"));
        assert_eq!(validate_pss_interval("off", &mut errors), None);
        assert_eq!(
            validate_pss_interval("2s", &mut errors),
            Some(Duration::from_secs(2))
        );
        assert_eq!(validate_pss_interval("10ms", &mut errors), None);
        assert_eq!(errors.len(), 4);
        assert!(errors[3].starts_with("sampling.pss_interval:"));
    }

    #[test]
    fn defaults_are_valid() {
        let mut errors = Vec::new();
        let c = validate_capacity(&RawCapacity::default(), &mut errors);
        assert!(errors.is_empty());
        assert_eq!(c, CapacityConfig::default());
        assert_eq!(
            validate_pss_interval(&default_pss_interval(), &mut errors),
            Some(Duration::from_secs(60))
        );
    }
}
