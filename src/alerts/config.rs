//! The `[alerts]` section as written, and its validation into [`AlertsConfig`].
//!
//! ```toml
//! [alerts]
//! labels = { namespace = "${POD_NAMESPACE}", pod = "${POD_NAME}" }
//! [alerts.rules.TargetDown]
//! for = "30s"
//! severity = "page"
//! [alerts.rules.ErrorRateHigh]
//! errors_per_minute = 20
//! [alerts.rules.CpuOverAllocated]
//! enabled = false
//! ```
//!
//! Rule names match case-insensitively, so `OUTRIDER_ALERTS__RULES__TARGETDOWN__FOR`
//! reaches `[alerts.rules.TargetDown]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rules::{RuleConfig, RuleName, Unit};
use super::AlertsConfig;
use crate::config::{expand_env, parse_duration, Scalar};

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawAlerts {
    /// Static labels on every alert; values may use `${VAR}`.
    pub labels: BTreeMap<String, String>,
    /// Per-rule overrides, by rule name.
    pub rules: BTreeMap<String, RawRule>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Scalar>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The rule's own thresholds; names are checked against the rule.
    #[serde(flatten)]
    pub thresholds: BTreeMap<String, Scalar>,
}

fn label_name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks `[alerts]`; problems go to `errors` with their key paths.
pub fn validate(raw: &RawAlerts, errors: &mut Vec<String>) -> AlertsConfig {
    let mut cfg = AlertsConfig::default();
    for (k, v) in &raw.labels {
        let key = format!("alerts.labels.{k}");
        if !label_name_ok(k) {
            errors.push(format!("{key}: not a Prometheus label name"));
        } else if matches!(k.as_str(), "alertname" | "target" | "severity") {
            errors.push(format!("{key}: set by Outrider itself"));
        }
        match expand_env(v) {
            Ok(v) => {
                cfg.labels.insert(k.clone(), v);
            }
            Err(e) => errors.push(format!("{key}: {e}")),
        }
    }
    for (name, r) in &raw.rules {
        let key = format!("alerts.rules.{name}");
        let Some(rule) = RuleName::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(name))
        else {
            let known: Vec<&str> = RuleName::ALL.iter().map(|r| r.as_str()).collect();
            errors.push(format!(
                "{key}: unknown rule; the rules are {}",
                known.join(", ")
            ));
            continue;
        };
        let mut c = RuleConfig::defaults(rule);
        if let Some(e) = &r.enabled {
            match e.to_string().trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => c.enabled = true,
                "false" | "0" | "no" => c.enabled = false,
                other => errors.push(format!("{key}.enabled: {other:?} is not true or false")),
            }
        }
        if let Some(f) = &r.for_ {
            match parse_duration(f) {
                Ok(d) => c.for_seconds = d.as_secs_f64(),
                Err(e) => errors.push(format!("{key}.for: {e}")),
            }
        }
        if let Some(s) = &r.severity {
            if s.is_empty() {
                errors.push(format!("{key}.severity: must not be empty"));
            } else {
                c.severity = s.clone();
            }
        }
        for (t, v) in &r.thresholds {
            let Some((tname, unit, _)) = rule.thresholds().iter().find(|(n, _, _)| n == t) else {
                let known: Vec<&str> = rule.thresholds().iter().map(|(n, _, _)| *n).collect();
                errors.push(format!(
                    "{key}.{t}: unknown key; {} takes enabled, for, severity{}",
                    rule.as_str(),
                    known.iter().map(|k| format!(", {k}")).collect::<String>()
                ));
                continue;
            };
            let parsed = match unit {
                Unit::Number => v
                    .to_string()
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{v} is not a number")),
                Unit::Seconds => parse_duration(&v.to_string()).map(|d| d.as_secs_f64()),
            };
            match parsed {
                Ok(x) if x.is_finite() && x >= 0.0 => {
                    c.thresholds.insert(tname, x);
                }
                Ok(_) => errors.push(format!("{key}.{t}: must be zero or more")),
                Err(e) => errors.push(format!("{key}.{t}: {e}")),
            }
        }
        cfg.rules.insert(rule, c);
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> (AlertsConfig, Vec<String>) {
        #[derive(Deserialize)]
        struct W {
            alerts: RawAlerts,
        }
        let w: W = toml::from_str(toml_text).unwrap();
        let mut errors = Vec::new();
        (validate(&w.alerts, &mut errors), errors)
    }

    #[test]
    fn overrides_and_defaults() {
        let (c, errors) = parse(
            r#"
            [alerts]
            labels = { namespace = "shop" }
            [alerts.rules.TargetDown]
            for = "30s"
            severity = "page"
            [alerts.rules.errorratehigh]
            errors_per_minute = "20"
            [alerts.rules.CpuOverAllocated]
            enabled = "false"
            "#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.labels["namespace"], "shop");
        let down = &c.rules[&RuleName::TargetDown];
        assert_eq!((down.for_seconds, down.severity.as_str()), (30.0, "page"));
        let err = &c.rules[&RuleName::ErrorRateHigh];
        assert_eq!(err.thresholds["errors_per_minute"], 20.0);
        assert_eq!(err.thresholds["error_ratio"], 0.05);
        assert!(!c.rules[&RuleName::CpuOverAllocated].enabled);
        assert!(c.rules[&RuleName::MemoryLeakSuspected].enabled);
        let near = &c.rules[&RuleName::MemoryNearLimit];
        assert_eq!(near.thresholds["time_to_limit"], 4.0 * 3600.0);
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let (_, errors) = parse(
            r#"
            [alerts]
            labels = { "bad-name" = "x", severity = "y", pod = "${OUTRIDER_TEST_UNSET_VAR}" }
            [alerts.rules.NoSuchRule]
            for = "1m"
            [alerts.rules.TargetDown]
            for = "soon"
            ratio = 1
            [alerts.rules.Http5xxRatioHigh]
            ratio = -1
            "#,
        );
        let joined = errors.join("\n");
        for want in [
            "alerts.labels.bad-name: not a Prometheus label name",
            "alerts.labels.severity: set by Outrider itself",
            "alerts.labels.pod:",
            "alerts.rules.NoSuchRule: unknown rule",
            "alerts.rules.TargetDown.for:",
            "alerts.rules.TargetDown.ratio: unknown key",
            "alerts.rules.Http5xxRatioHigh.ratio: must be zero or more",
        ] {
            assert!(joined.contains(want), "{want} missing from:\n{joined}");
        }
        assert_eq!(errors.len(), 7, "{joined}");
    }
}
