//! `[actions]`: what Outrider does before the kill ([`crate::actions`]), validated
//! with their key paths like every other section. Off unless `signal` or `command`
//! is set.

use std::str::FromStr;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::actions::ActionsConfig;
use crate::units::{parse_duration, Scalar};

/// `[actions]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawActions {
    /// Signal sent to the target's main process (`SIGUSR1`, `USR1`); empty: none.
    pub signal: String,
    /// Program and arguments run as written; empty: none.
    pub command: Vec<String>,
    /// Act when the limit is less than this away at the current growth.
    pub time_to_limit: String,
    /// Act when memory in use reaches this share of the limit.
    pub level: Scalar,
    /// The command is killed after this.
    pub timeout: String,
    /// Least time between two actions on one target.
    pub cooldown: String,
}

impl Default for RawActions {
    fn default() -> Self {
        RawActions {
            signal: String::new(),
            command: Vec::new(),
            time_to_limit: "10m".into(),
            level: Scalar::Float(0.9),
            timeout: "30s".into(),
            cooldown: "10m".into(),
        }
    }
}

/// `actions.signal`: a name with or without `SIG`, any case; empty: none.
fn parse_signal(s: &str, err: &mut impl FnMut(&str, String)) -> Option<Signal> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    match Signal::from_str(&name) {
        Ok(sig) => Some(sig),
        Err(_) => {
            err(
                "signal",
                format!("{s:?} is not a signal name such as SIGUSR1"),
            );
            None
        }
    }
}

/// Checks `[actions]`; every problem is listed with its key.
pub fn validate_actions(a: &RawActions, errors: &mut Vec<String>) -> ActionsConfig {
    let d = ActionsConfig::default();
    let mut err = |key: &str, msg: String| errors.push(format!("actions.{key}: {msg}"));
    let signal = parse_signal(&a.signal, &mut err);
    if a.command.first().is_some_and(|p| p.trim().is_empty()) {
        err("command", "the program (its first word) is empty".into());
    }
    let mut duration = |key: &str, v: &str, default: f64| match parse_duration(v) {
        Ok(x) if !x.is_zero() => x.as_secs_f64(),
        Ok(_) => {
            err(key, "must be above zero".into());
            default
        }
        Err(e) => {
            err(key, e);
            default
        }
    };
    let time_to_limit_seconds =
        duration("time_to_limit", &a.time_to_limit, d.time_to_limit_seconds);
    let timeout = duration("timeout", &a.timeout, d.timeout.as_secs_f64());
    let cooldown_seconds = duration("cooldown", &a.cooldown, d.cooldown_seconds);
    let level = match a.level.to_string().trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => x,
        Ok(_) => {
            err(
                "level",
                "must be above 0 and at most 1 (a share of the memory limit)".into(),
            );
            d.level
        }
        Err(_) => {
            err(
                "level",
                format!("{:?} is not a number", a.level.to_string()),
            );
            d.level
        }
    };
    ActionsConfig {
        signal,
        command: a.command.clone(),
        time_to_limit_seconds,
        level,
        timeout: std::time::Duration::from_secs_f64(timeout),
        cooldown_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_off() {
        let mut errors = Vec::new();
        let c = validate_actions(&RawActions::default(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c, ActionsConfig::default());
        assert!(!c.enabled());
    }

    #[test]
    fn a_signal_by_either_name_and_a_command() {
        let mut errors = Vec::new();
        let raw = RawActions {
            signal: "usr1".into(),
            command: vec!["jcmd".into(), "GC.heap_dump".into()],
            level: Scalar::Str("0.5".into()),
            timeout: "5s".into(),
            ..Default::default()
        };
        let c = validate_actions(&raw, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.signal, Some(Signal::SIGUSR1));
        assert_eq!(c.level, 0.5);
        assert_eq!(c.timeout, std::time::Duration::from_secs(5));
        assert!(c.enabled());
    }

    #[test]
    fn bad_values_are_all_reported_with_their_keys() {
        let mut errors = Vec::new();
        let raw = RawActions {
            signal: "SIGNOPE".into(),
            command: vec![" ".into()],
            time_to_limit: "soon".into(),
            level: Scalar::Float(1.5),
            timeout: "0s".into(),
            cooldown: "-1m".into(),
        };
        validate_actions(&raw, &mut errors);
        let keys: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "actions.signal",
                "actions.command",
                "actions.time_to_limit",
                "actions.timeout",
                "actions.cooldown",
                "actions.level"
            ],
            "{errors:#?}"
        );
    }

    /// Through the whole load, as the CLI sees it: an unknown key and every bad
    /// value, each with its key (the CLI then exits 64).
    #[test]
    fn a_bad_actions_section_lists_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outrider.toml");
        std::fs::write(
            &path,
            "[actions]\nsignl = \"USR1\"\nsignal = \"USR9\"\nlevel = 0\ntimeout = \"forever\"\n",
        )
        .unwrap();
        let errors = crate::config::load(Some(&path), [], &Default::default())
            .unwrap_err()
            .0;
        assert_eq!(
            errors,
            [
                "actions.signl: unknown key (did you mean `actions.signal`?)",
                "actions.signal: \"USR9\" is not a signal name such as SIGUSR1",
                "actions.timeout: \"forever\" is not a duration such as 5s, 250ms or 1h30m",
                "actions.level: must be above 0 and at most 1 (a share of the memory limit)",
            ],
        );
    }
}
