//! Units and small parsers every layer may use: durations (`5s`), CPU and memory
//! quantities (`500m`, `512Mi`), `${VAR}` expansion, label values, and the
//! string-or-number [`Scalar`] a user may write either way.
//!
//! This is the bottom layer: it imports nothing from the rest of the crate, so any
//! module may import it without making a cycle.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A value a user may write as a string or a number (`cpu_request = 0.5` or `"500m"`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Str(s) => write!(f, "{s}"),
        }
    }
}

/// How long to wait, rounded as a person would say it: `1.5 s`, `40 s`, `1.5 min`,
/// `12 min`, `12 h`, `11.5 h`, `2.5 days` (a tenth kept below ten of a unit, so
/// 90 s is not "2 min").
pub fn spoken(seconds: f64) -> String {
    let trim = |x: f64| format!("{x:.1}").trim_end_matches(".0").to_string();
    match seconds {
        s if s < 10.0 => format!("{} s", trim(s.max(0.0))),
        s if s < 60.0 => format!("{:.0} s", s),
        s if s < 600.0 => format!("{} min", trim(s / 60.0)),
        s if s < 90.0 * 60.0 => format!("{:.0} min", s / 60.0),
        s if s < 48.0 * 3600.0 => format!("{} h", trim(s / 3600.0)),
        s => format!("{} days", trim(s / 86400.0)),
    }
}

/// Expands `${NAME}` from the environment (the downward API's namespace, pod name,
/// pod uid and container name build the kubelet's log path).
pub fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{s:?}: an unclosed ${{ in the path"))?;
        let name = &after[..end];
        let value = std::env::var(name)
            .map_err(|_| format!("{s:?}: the environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Label values come from config only; keep them short and plain.
pub fn valid_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `"5s"`, `"250ms"`, `"1h30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    use humantime::DurationError as E;
    humantime::parse_duration(s.trim()).map_err(|e| {
        // A unit it does not know, or a number too large, says something; a
        // parser's position ("expected number at 0") does not.
        let why = match e {
            E::UnknownUnit { .. } | E::NumberOverflow => format!(" ({e})"),
            _ => String::new(),
        };
        format!("{s:?} is not a duration such as 5s, 250ms or 1h30m{why}")
    })
}

/// Kubernetes CPU quantity in cores: `"500m"` → 0.5, `"2"` → 2.0, `"0.25"`.
pub fn parse_cpu(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a CPU quantity such as 500m, 0.5 or 2");
    let (num, scale) = match t.strip_suffix('m') {
        Some(n) => (n, 0.001),
        None => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok(v * scale)
}

/// Kubernetes memory quantity in bytes: `"512Mi"`, `"1G"`, `"134217728"`, `"1.5Gi"`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a memory quantity such as 512Mi, 1G or 134217728");
    const UNITS: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (num, scale) = UNITS
        .iter()
        .find_map(|(u, f)| t.strip_suffix(u).map(|n| (n, *f)))
        .unwrap_or((t, 1.0));
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok((v * scale).round() as u64)
}

/// A count with its noun, as English reads it: `1 worker`, `3 workers`, `0 restarts`.
pub fn count(n: u64, one: &str) -> String {
    count_as(n, one, &format!("{one}s"))
}

/// [`count`] for a noun whose plural is not `+s`: `count_as(2, "process", "processes")`.
pub fn count_as(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_cpu("500m").unwrap(), 0.5);
        assert_eq!(parse_cpu("2").unwrap(), 2.0);
        assert!(parse_cpu("-1").is_err());
        assert_eq!(parse_bytes("512Mi").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("1.5Gi").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("134217728").unwrap(), 134217728);
        assert!(parse_bytes("12 apples").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration(" 250ms ").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        let e = parse_duration("soon").unwrap_err();
        assert!(
            e.starts_with("\"soon\" is not a duration such as 5s"),
            "{e}"
        );
    }

    #[test]
    fn label_values_are_short_and_plain() {
        assert!(valid_label_value("web-1_a.b"));
        assert!(!valid_label_value(""));
        assert!(!valid_label_value("a b"));
        assert!(valid_label_value(&"x".repeat(64)));
        assert!(!valid_label_value(&"x".repeat(65)));
    }

    #[test]
    fn env_expansion_names_what_is_missing() {
        std::env::set_var("OUTRIDER_UNITS_TEST_NS", "prod");
        assert_eq!(
            expand_env("/logs/${OUTRIDER_UNITS_TEST_NS}/*.log").unwrap(),
            "/logs/prod/*.log"
        );
        assert_eq!(expand_env("no vars").unwrap(), "no vars");
        let e = expand_env("/x/${OUTRIDER_UNITS_TEST_UNSET}").unwrap_err();
        assert!(
            e.ends_with("the environment variable OUTRIDER_UNITS_TEST_UNSET is not set"),
            "{e}"
        );
        let e = expand_env("/x/${OPEN").unwrap_err();
        assert!(e.ends_with("an unclosed ${ in the path"), "{e}");
    }

    #[test]
    fn scalars_print_as_written() {
        assert_eq!(Scalar::Int(3).to_string(), "3");
        assert_eq!(Scalar::Float(0.5).to_string(), "0.5");
        assert_eq!(Scalar::Str("500m".into()).to_string(), "500m");
    }
}
