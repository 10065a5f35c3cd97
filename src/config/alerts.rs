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

use crate::alerts::notify::{self, Auth, Receiver, ReceiverKind, Secret};
use crate::alerts::rules::{RuleConfig, RuleName, Thresholds, Unit};
use crate::alerts::AlertsConfig;
use crate::units::{expand_env, parse_duration, valid_label_value, Scalar};

mod secrets;
use secrets::{inline_or_file, redact, redact_external_url, redact_map, redact_url};

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawAlerts {
    /// Static labels on every alert; values may use `${VAR}`.
    pub labels: BTreeMap<String, String>,
    /// Per-rule overrides, by rule name.
    pub rules: BTreeMap<String, RawRule>,
    /// The `generatorURL` of alerts; empty: `http://<http.listen>/`. `check-config`
    /// hides its user, password, query and fragment (they may be credentials).
    #[serde(serialize_with = "redact_external_url")]
    pub external_url: String,
    /// Where undelivered notifications are kept across restarts; empty: nowhere.
    pub spool_dir: String,
}

/// One `[[receivers]]` entry. Secrets print as `<redacted>` (`check-config`), and a
/// URL's path and query too: a Slack or webhook URL often is the credential.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    pub name: String,
    /// webhook | alertmanager | slack
    pub kind: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact_url"
    )]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alertnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "redact_map"
    )]
    pub headers: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact"
    )]
    pub bearer_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<RawBasicAuth>,
    /// Webhook only: a file holding the HMAC key of `Outrider-Signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// A number; a string too, as environment overrides give.
    #[serde(default = "queue_capacity")]
    pub queue_capacity: Scalar,
    #[serde(default = "resend_interval")]
    pub resend_interval: String,
    /// Per request: a receiver that hangs longer is retried.
    #[serde(default = "request_timeout")]
    pub timeout: String,
    /// Webhook, Slack: labels whose values make a group (default `["target"]`); a
    /// string is split at commas (`OUTRIDER_RECEIVERS__0__GROUP_BY=alertname,target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<OneOrMany>,
    /// Webhook, Slack: a new group's wait for more alerts (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    /// Webhook, Slack: the least time between messages about one group (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    /// Messages per minute at most; 0: no limit. A number, or a string.
    #[serde(default = "max_per_minute")]
    pub max_per_minute: Scalar,
}

/// A list, or one string of comma-separated items (as the environment gives).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    Many(Vec<String>),
    One(String),
}

impl OneOrMany {
    fn items(&self) -> Vec<String> {
        match self {
            OneOrMany::Many(v) => v.clone(),
            OneOrMany::One(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        }
    }
}

/// A whole number from a number or a string, within `range`.
fn count(
    key: &str,
    v: &Scalar,
    range: std::ops::RangeInclusive<u64>,
    errors: &mut Vec<String>,
) -> Option<u64> {
    match v.to_string().trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            errors.push(format!(
                "{key}: {v} is not a whole number from {} to {}",
                range.start(),
                range.end()
            ));
            None
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact"
    )]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

fn queue_capacity() -> Scalar {
    Scalar::Int(1000)
}
fn resend_interval() -> String {
    "1m".into()
}
fn request_timeout() -> String {
    "10s".into()
}
/// No limit by default: grouping already bounds a webhook or Slack to one message
/// per group per `group_interval`, and an Alertmanager takes whatever Prometheus
/// would send. Slack's incoming webhooks want about one a second: 60.
fn max_per_minute() -> Scalar {
    Scalar::Int(0)
}

/// Defaults of grouping. `target`: a sidecar's user thinks of the app, so what goes
/// wrong with it at once (down, OOM-killed, restarting) is one message. 10 s is two
/// ticks at the default interval, so alerts of neighbouring ticks share a message,
/// and far below Alertmanager's 30 s, which suits a hub, not a page about one app.
pub const DEFAULT_GROUP_BY: &str = "target";
pub const DEFAULT_GROUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
pub const DEFAULT_GROUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// A duration key of a receiver: `default` when unset, errors with the key path.
fn receiver_duration(
    key: &str,
    value: &Option<String>,
    default: std::time::Duration,
    errors: &mut Vec<String>,
) -> std::time::Duration {
    match value.as_deref().map(parse_duration) {
        None => default,
        Some(Ok(d)) if d <= std::time::Duration::from_secs(24 * 3600) => d,
        Some(Ok(_)) => {
            errors.push(format!("{key}: must be at most 24h"));
            default
        }
        Some(Err(e)) => {
            errors.push(format!("{key}: {e}"));
            default
        }
    }
}

/// Checks the grouping keys of receiver `key`.
fn grouping(
    key: &str,
    r: &RawReceiver,
    kind: ReceiverKind,
    errors: &mut Vec<String>,
) -> (Vec<String>, std::time::Duration, std::time::Duration) {
    if kind == ReceiverKind::Alertmanager {
        for (name, set) in [
            ("group_by", r.group_by.is_some()),
            ("group_wait", r.group_wait.is_some()),
            ("group_interval", r.group_interval.is_some()),
        ] {
            if set {
                errors.push(format!(
                    "{key}.{name}: an alertmanager receiver is not grouped (Alertmanager groups itself)"
                ));
            }
        }
    }
    let by = r
        .group_by
        .as_ref()
        .map(OneOrMany::items)
        .unwrap_or_else(|| vec![DEFAULT_GROUP_BY.to_string()]);
    if by.is_empty() {
        errors.push(format!("{key}.group_by: must name at least one label"));
    }
    for l in &by {
        if l == notify::ALL_LABELS {
            if by.len() > 1 {
                errors.push(format!(
                    "{key}.group_by: \"...\" (every label) stands alone"
                ));
            }
        } else if !label_name_ok(l) {
            errors.push(format!("{key}.group_by: {l:?} is not a label name"));
        }
    }
    let wait = receiver_duration(
        &format!("{key}.group_wait"),
        &r.group_wait,
        DEFAULT_GROUP_WAIT,
        errors,
    );
    let interval = receiver_duration(
        &format!("{key}.group_interval"),
        &r.group_interval,
        DEFAULT_GROUP_INTERVAL,
        errors,
    );
    (by, wait, interval)
}

/// Checks `[[receivers]]`.
pub fn validate_receivers(raw: &[RawReceiver], errors: &mut Vec<String>) -> Vec<Receiver> {
    let mut names = std::collections::HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, r)| validate_receiver(&format!("receivers[{i}]"), r, &mut names, errors))
        .collect()
}

/// One receiver at `key`, in the order its keys are listed; `None` when anything
/// about it is wrong. `names` are those already taken.
fn validate_receiver(
    key: &str,
    r: &RawReceiver,
    names: &mut std::collections::HashSet<String>,
    errors: &mut Vec<String>,
) -> Option<Receiver> {
    let n0 = errors.len();
    receiver_name(key, &r.name, names, errors);
    let kind = receiver_kind(key, &r.kind, errors);
    let url = receiver_url(key, r, errors);
    for n in &r.alertnames {
        if RuleName::parse(n).is_none() {
            errors.push(format!("{key}.alertnames: {n:?} is not a rule"));
        }
    }
    let auth = receiver_auth(key, r, errors);
    receiver_headers(key, r, errors);
    let secret = match &r.secret_file {
        Some(_) if kind != ReceiverKind::Webhook => {
            errors.push(format!("{key}.secret_file: only a webhook signs its body"));
            None
        }
        f => inline_or_file(&format!("{key}.secret"), &None, f, errors).map(Secret),
    };
    let resend_interval = at_least(
        &format!("{key}.resend_interval"),
        &r.resend_interval,
        (std::time::Duration::from_secs(1), "1s"),
        std::time::Duration::from_secs(60),
        errors,
    );
    let timeout = at_least(
        &format!("{key}.timeout"),
        &r.timeout,
        (std::time::Duration::from_millis(100), "100ms"),
        std::time::Duration::from_secs(10),
        errors,
    );
    let queue_capacity = count(
        &format!("{key}.queue_capacity"),
        &r.queue_capacity,
        1..=1_000_000,
        errors,
    );
    let max_per_minute = count(
        &format!("{key}.max_per_minute"),
        &r.max_per_minute,
        0..=60_000,
        errors,
    );
    let (group_by, group_wait, group_interval) = grouping(key, r, kind, errors);
    (errors.len() == n0).then(|| Receiver {
        name: r.name.clone(),
        kind,
        url: Secret(url.unwrap_or_default()),
        alertnames: r.alertnames.clone(),
        severities: r.severities.clone(),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Secret(v.clone())))
            .collect(),
        auth,
        secret,
        queue_capacity: queue_capacity.unwrap_or(1) as usize,
        resend_interval,
        timeout,
        group_by,
        group_wait,
        group_interval,
        max_per_minute: max_per_minute.unwrap_or(0) as u32,
    })
}

/// A receiver's name: a label value, not used by another receiver.
fn receiver_name(
    key: &str,
    name: &str,
    names: &mut std::collections::HashSet<String>,
    errors: &mut Vec<String>,
) {
    if name.is_empty() || !valid_label_value(name) {
        errors.push(format!(
            "{key}.name: {name:?} must be 1-64 characters of letters, digits, '_', '-', '.'"
        ));
    } else if !names.insert(name.to_string()) {
        errors.push(format!("{key}.name: {name:?} is used by another receiver"));
    }
}

/// `webhook | alertmanager | slack`; a webhook, with an error, for anything else.
fn receiver_kind(key: &str, kind: &str, errors: &mut Vec<String>) -> ReceiverKind {
    match kind {
        "webhook" => ReceiverKind::Webhook,
        "alertmanager" => ReceiverKind::Alertmanager,
        "slack" => ReceiverKind::Slack,
        other => {
            errors.push(format!(
                "{key}.kind: {other:?} is not webhook, alertmanager or slack"
            ));
            ReceiverKind::Webhook
        }
    }
}

/// `url` or `url_file`, one of them, an http(s) URL.
fn receiver_url(key: &str, r: &RawReceiver, errors: &mut Vec<String>) -> Option<String> {
    let url = inline_or_file(&format!("{key}.url"), &r.url, &r.url_file, errors);
    match &url {
        None if r.url.is_none() && r.url_file.is_none() => {
            errors.push(format!("{key}.url: required (or url_file)"))
        }
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            errors.push(format!("{key}.url: must start with http:// or https://"))
        }
        Some(u) => {
            if let Some(why) = url_problem(u) {
                errors.push(format!("{key}.url: {why}"));
            }
        }
        _ => {}
    }
    url
}

/// What is wrong with an http(s) URL, in words that never quote it (it may
/// carry a token): one that does not parse, or names no host, fails every send
/// forever ("builder error"), so it is refused at start.
fn url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Err(e) => Some(format!("not a URL ({e})")),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("names no host".into()),
        Ok(_) => None,
    }
}

/// Header names and values a request can carry: a space in a name or a line
/// break in a value failed every send forever.
fn receiver_headers(key: &str, r: &RawReceiver, errors: &mut Vec<String>) {
    for (name, value) in &r.headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(format!("{key}.headers: {name:?} is not a header name"));
        } else if reqwest::header::HeaderValue::from_str(value).is_err() {
            errors.push(format!(
                "{key}.headers.{name}: not a header value (a line break or control character)"
            ));
        }
    }
}

/// A bearer token or basic auth, not both; each secret inline or from a file.
fn receiver_auth(key: &str, r: &RawReceiver, errors: &mut Vec<String>) -> Auth {
    let bearer = inline_or_file(
        &format!("{key}.bearer_token"),
        &r.bearer_token,
        &r.bearer_token_file,
        errors,
    );
    match (&r.basic_auth, bearer) {
        (Some(_), Some(_)) => {
            errors.push(format!("{key}: bearer_token and basic_auth are exclusive"));
            Auth::None
        }
        (Some(b), None) => {
            let pw = inline_or_file(
                &format!("{key}.basic_auth.password"),
                &b.password,
                &b.password_file,
                errors,
            );
            Auth::Basic {
                username: b.username.clone(),
                password: Secret(pw.unwrap_or_default()),
            }
        }
        (None, Some(t)) => {
            if reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).is_err() {
                errors.push(format!(
                    "{key}.bearer_token: not a header value (a line break or control character)"
                ));
            }
            Auth::Bearer(Secret(t))
        }
        (None, None) => Auth::None,
    }
}

/// A duration at `key` of at least `min` (written as its text); `default` otherwise.
fn at_least(
    key: &str,
    value: &str,
    (min, min_text): (std::time::Duration, &str),
    default: std::time::Duration,
    errors: &mut Vec<String>,
) -> std::time::Duration {
    match parse_duration(value) {
        Ok(d) if d >= min => d,
        Ok(_) => {
            errors.push(format!("{key}: must be at least {min_text}"));
            default
        }
        Err(e) => {
            errors.push(format!("{key}: {e}"));
            default
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The rule's own thresholds; names are checked against the rule.
    #[serde(flatten)]
    pub thresholds: BTreeMap<String, Scalar>,
}

/// `true`/`false`, or a string from the environment (`"false"`, `"0"`, `"no"`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Str(String),
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
    let mut cfg = AlertsConfig {
        external_url: raw.external_url.clone(),
        ..Default::default()
    };
    if !raw.external_url.is_empty() {
        if let Some(why) = url_problem(&raw.external_url) {
            errors.push(format!("alerts.external_url: {why}"));
        }
    }
    cfg.spool_dir = spool_dir(&raw.spool_dir, errors);
    cfg.labels = labels(&raw.labels, errors);
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
        cfg.rules.insert(rule, validate_rule(&key, rule, r, errors));
    }
    cfg
}

/// `alerts.spool_dir`: empty is off; an existing path must be a directory.
fn spool_dir(raw: &str, errors: &mut Vec<String>) -> Option<std::path::PathBuf> {
    if raw.is_empty() {
        return None;
    }
    let dir = std::path::PathBuf::from(raw);
    if dir.exists() && !dir.is_dir() {
        errors.push(format!(
            "alerts.spool_dir: {} is not a directory",
            dir.display()
        ));
    }
    Some(dir)
}

/// `alerts.labels`: Prometheus label names, none of Outrider's own, values expanded.
fn labels(raw: &BTreeMap<String, String>, errors: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let key = format!("alerts.labels.{k}");
        if !label_name_ok(k) {
            errors.push(format!("{key}: not a Prometheus label name"));
        } else if matches!(k.as_str(), "alertname" | "target" | "severity") {
            errors.push(format!("{key}: set by Outrider itself"));
        }
        match expand_env(v) {
            Ok(v) => {
                out.insert(k.clone(), v);
            }
            Err(e) => errors.push(format!("{key}: {e}")),
        }
    }
    out
}

/// `[alerts.rules.<rule>]` at `key`: its overrides on the rule's defaults.
fn validate_rule(key: &str, rule: RuleName, r: &RawRule, errors: &mut Vec<String>) -> RuleConfig {
    let mut c = RuleConfig::defaults(rule);
    if let Some(e) = &r.enabled {
        let text = match e {
            Flag::Bool(b) => b.to_string(),
            Flag::Str(s) => s.trim().to_ascii_lowercase(),
        };
        match text.as_str() {
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
    c.thresholds = thresholds(key, rule, &r.thresholds, errors);
    c
}

/// The rule's threshold keys at `key`, checked in the order written; an unset or
/// invalid one keeps its default.
fn thresholds(
    key: &str,
    rule: RuleName,
    raw: &BTreeMap<String, Scalar>,
    errors: &mut Vec<String>,
) -> Thresholds {
    let keys = Thresholds::keys(rule);
    let mut given: BTreeMap<&str, f64> = BTreeMap::new();
    for (t, v) in raw {
        let Some((tname, unit)) = keys.iter().find(|(n, _)| n == t) else {
            errors.push(format!(
                "{key}.{t}: unknown key; {} takes enabled, for, severity{}",
                rule.as_str(),
                keys.iter()
                    .map(|(k, _)| format!(", {k}"))
                    .collect::<String>()
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
                given.insert(tname, x);
            }
            Ok(_) => errors.push(format!("{key}.{t}: must be zero or more")),
            Err(e) => errors.push(format!("{key}.{t}: {e}")),
        }
    }
    Thresholds::build(rule, |k, _, default| {
        given.get(k).copied().unwrap_or(default)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::thresholds::ErrorRate;

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
            enabled = false
            [alerts.rules.MemoryOverAllocated]
            enabled = "no"
            "#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.labels["namespace"], "shop");
        let down = &c.rules[&RuleName::TargetDown];
        assert_eq!((down.for_seconds, down.severity.as_str()), (30.0, "page"));
        assert_eq!(
            c.rules[&RuleName::ErrorRateHigh].thresholds,
            Thresholds::ErrorRateHigh(ErrorRate {
                errors_per_minute: 20.0,
                error_ratio: 0.05
            })
        );
        assert!(!c.rules[&RuleName::CpuOverAllocated].enabled);
        assert!(!c.rules[&RuleName::MemoryOverAllocated].enabled);
        assert!(c.rules[&RuleName::MemoryLeakSuspected].enabled);
        let Thresholds::MemoryNearLimit(near) = c.rules[&RuleName::MemoryNearLimit].thresholds
        else {
            panic!("MemoryNearLimit has its own thresholds")
        };
        assert_eq!(near.time_to_limit, 4.0 * 3600.0);
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

    fn receivers(toml_text: &str) -> (Vec<Receiver>, Vec<String>) {
        #[derive(Deserialize)]
        struct W {
            receivers: Vec<RawReceiver>,
        }
        let w: W = toml::from_str(toml_text).unwrap();
        let mut errors = Vec::new();
        (validate_receivers(&w.receivers, &mut errors), errors)
    }

    #[test]
    fn grouping_and_rate_limit_keys_default_and_are_checked() {
        let (ok, errors) = receivers(
            r#"
            [[receivers]]
            name = "hook"
            kind = "webhook"
            url = "http://127.0.0.1:1/"
            [[receivers]]
            name = "slack"
            kind = "slack"
            url = "https://hooks.slack.com/x"
            group_by = ["alertname", "target"]
            group_wait = "0s"
            group_interval = "5m"
            max_per_minute = 60
            "#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(ok[0].group_by, ["target"]);
        assert_eq!(
            (ok[0].group_wait, ok[0].group_interval, ok[0].max_per_minute),
            (DEFAULT_GROUP_WAIT, DEFAULT_GROUP_INTERVAL, 0)
        );
        assert_eq!(ok[1].group_by, ["alertname", "target"]);
        assert_eq!(ok[1].group_wait, std::time::Duration::ZERO);
        assert_eq!(ok[1].max_per_minute, 60);

        let (ok, errors) = receivers(
            r#"
            [[receivers]]
            name = "am"
            kind = "alertmanager"
            url = "http://am:9093"
            group_wait = "1s"
            [[receivers]]
            name = "hook"
            kind = "webhook"
            url = "http://127.0.0.1:1/"
            group_by = ["...", "target", "bad-label"]
            group_interval = "soon"
            group_wait = "48h"
            max_per_minute = -1
            queue_capacity = "0"
            [[receivers]]
            name = "env"
            kind = "slack"
            url = "http://127.0.0.1:1/"
            group_by = "alertname, target"
            max_per_minute = "60"
            queue_capacity = "10"
            "#,
        );
        let joined = errors.join("\n");
        for want in [
            "receivers[0].group_wait: an alertmanager receiver is not grouped",
            "receivers[1].group_by: \"...\" (every label) stands alone",
            "receivers[1].group_by: \"bad-label\" is not a label name",
            "receivers[1].group_interval:",
            "receivers[1].group_wait: must be at most 24h",
            "receivers[1].max_per_minute: -1 is not a whole number from 0 to 60000",
            "receivers[1].queue_capacity: 0 is not a whole number from 1 to 1000000",
        ] {
            assert!(joined.contains(want), "{want} missing from:\n{joined}");
        }
        assert_eq!(errors.len(), 7, "{joined}");
        // Strings, as environment overrides give them.
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].group_by, ["alertname", "target"]);
        assert_eq!((ok[0].max_per_minute, ok[0].queue_capacity), (60, 10));
    }
}
