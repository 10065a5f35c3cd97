//! Alerts: the built-in rules evaluated once per tick, with Prometheus' states.
//!
//! # Layout
//! - [`rules`]: the rules, their defaults and thresholds, and their checks
//! - [`notify`]: queues and delivery tasks per receiver: grouping, retries, rate
//!   limit, spool, signatures
//! - [`payload`]: the webhook v4, Alertmanager v2 and Slack bodies
//!
//! An alert is keyed by (rule, target). When its condition first holds it is
//! *pending*; once it has held for the rule's `for` it is *firing*; when the condition
//! stops holding it is dropped (a firing alert *resolves*, a pending one just goes).
//! [`Engine::evaluate`] takes the time as unix seconds, so tests drive it with plain
//! numbers and the live tick passes the snapshot's time.

pub mod notify;
pub mod payload;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::analysis::{LogRates, TargetStatus};
use rules::{RuleConfig, RuleHistory, RuleName};

/// `pending | firing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// A state change worth telling receivers about.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Fired(Alert),
    /// The alert as it last was, with `ends_at` set to the resolve time.
    Resolved(Alert),
}

/// The `[alerts]` section, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// Static labels put on every alert (`${VAR}` already expanded).
    pub labels: BTreeMap<String, String>,
    /// Every rule, defaults filled in.
    pub rules: BTreeMap<RuleName, RuleConfig>,
    /// `generatorURL` of every alert; empty: `http://<http.listen>/`.
    pub external_url: String,
    /// Where undelivered notifications are kept across restarts (`None`: off).
    pub spool_dir: Option<std::path::PathBuf>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            labels: BTreeMap::new(),
            rules: RuleName::ALL
                .into_iter()
                .map(|r| (r, RuleConfig::defaults(r)))
                .collect(),
            external_url: String::new(),
            spool_dir: None,
        }
    }
}

/// One active alert: what `/api/v1/status` lists and receivers are sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub alertname: &'static str,
    pub target: String,
    pub state: AlertState,
    /// alertname, target, severity and the static labels.
    pub labels: BTreeMap<String, String>,
    /// summary, description, and recommendation where there is one.
    pub annotations: BTreeMap<String, String>,
    /// Unix time the condition started to hold.
    pub active_since: f64,
    /// Unix time it fired; `None` while pending.
    pub fired_at: Option<f64>,
    /// Unix time it resolved; `None` while active.
    pub ends_at: Option<f64>,
}

impl Alert {
    /// This alert as a line: `OOMKilled (firing, critical): web was OOM-killed`.
    pub fn line(&self) -> String {
        let get = |m: &std::collections::BTreeMap<String, String>, k: &str| {
            m.get(k).cloned().unwrap_or_default()
        };
        crate::words::alert::line(
            self.alertname,
            self.fired_at.is_some(),
            &get(&self.labels, "severity"),
            &get(&self.annotations, "summary"),
        )
    }
}

/// Pending and firing alerts in the order every surface lists them: firing
/// first, then by name.
pub fn in_order(alerts: &[Alert]) -> Vec<&Alert> {
    let mut list: Vec<&Alert> = alerts.iter().collect();
    list.sort_by_key(|a| (a.fired_at.is_none(), a.alertname));
    list
}

#[cfg(test)]
impl Alert {
    /// A firing alert for tests: labels alertname, target and severity, a summary,
    /// active and fired at 0.
    pub(crate) fn example(
        name: &'static str,
        target: &str,
        severity: &str,
        ends_at: Option<f64>,
    ) -> Alert {
        let pairs = |kv: &[(&str, String)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        Alert {
            alertname: name,
            target: target.into(),
            state: AlertState::Firing,
            labels: pairs(&[
                ("alertname", name.to_string()),
                ("target", target.to_string()),
                ("severity", severity.to_string()),
            ]),
            annotations: pairs(&[("summary", format!("{target}: {name}"))]),
            active_since: 0.0,
            fired_at: Some(0.0),
            ends_at,
        }
    }
}

impl Alert {
    /// Prometheus' label-set fingerprint (FNV-1a 64 over sorted name, value pairs),
    /// so the same alert has the same id everywhere.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf29ce484222325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x100000001b3);
            }
        };
        for (k, v) in &self.labels {
            eat(k.as_bytes());
            eat(&[0xff]);
            eat(v.as_bytes());
            eat(&[0xff]);
        }
        format!("{h:016x}")
    }
}

/// The alert engine: rule configs, per-target memory, and the active alerts.
#[derive(Debug, Clone)]
pub struct Engine {
    config: AlertsConfig,
    memory: HashMap<String, RuleHistory>,
    active: BTreeMap<(RuleName, String), Alert>,
}

/// What the rules are evaluated against on one tick: every target with its verdicts,
/// and the rates of the app's output.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub targets: &'a [TargetStatus],
    pub logs: Option<&'a LogRates>,
    /// What was done before the kill, for the annotations; `None`: nothing known.
    pub actions: Option<&'a crate::actions::Done>,
}

/// The `target` of an alert on the app's output: the one target when there is one
/// (its output is what is read), else empty, and the label is left off. A made-up
/// name would appear as a target in every dashboard's `target` variable.
fn logs_target(snap: Evidence) -> String {
    match snap.targets {
        [t] => t.name.clone(),
        _ => String::new(),
    }
}

impl Engine {
    pub fn new(config: AlertsConfig) -> Self {
        debug_assert!(
            config.rules.iter().all(|(r, c)| c.thresholds.rule() == *r),
            "each rule's thresholds are its own"
        );
        Engine {
            config,
            memory: HashMap::new(),
            active: BTreeMap::new(),
        }
    }

    /// Pending and firing alerts, in (rule, target) order.
    pub fn active(&self) -> Vec<Alert> {
        self.active.values().cloned().collect()
    }

    /// Evaluates every enabled rule against `snap` at unix time `now`; returns what
    /// fired and what resolved on this tick.
    pub fn evaluate<'a>(&mut self, snap: impl Into<Evidence<'a>>, now: f64) -> Vec<Transition> {
        let snap = snap.into();
        let holds = self.findings(snap, now);
        let mut transitions = Vec::new();
        let mut seen = BTreeSet::new();
        for (rule, target, f) in holds {
            let key = (rule, target);
            seen.insert(key.clone());
            if let Some(fired) = self.hold(key, f, now) {
                transitions.push(Transition::Fired(fired));
            }
        }
        self.resolve_all_but(&seen, now, &mut transitions);
        let live: HashSet<&str> = snap.targets.iter().map(|t| t.name.as_str()).collect();
        self.memory.retain(|name, _| live.contains(name.as_str()));
        transitions
    }

    /// Folds this tick into each target's rule history, then checks every enabled
    /// rule: what holds now, by (rule, target).
    fn findings(&mut self, snap: Evidence, now: f64) -> Vec<(RuleName, String, rules::Finding)> {
        let keep = self
            .config
            .rules
            .values()
            .filter_map(|r| r.thresholds.history_window())
            .fold(0.0, f64::max);
        let enabled = |log_rules: bool| {
            self.config
                .rules
                .iter()
                .filter(move |(r, c)| c.enabled && r.is_log_rule() == log_rules)
        };
        let mut holds = Vec::new();
        for t in snap.targets {
            let mem = self.memory.entry(t.name.clone()).or_default();
            mem.update(t, now, keep);
            let done = snap.actions.and_then(|d| d.get(&t.name));
            for (rule, cfg) in enabled(false) {
                if let Some(f) = rules::check(cfg, t, mem, done, now) {
                    holds.push((*rule, t.name.clone(), f));
                }
            }
        }
        if let Some(rates) = snap.logs {
            for (rule, cfg) in enabled(true) {
                if let Some(f) = rules::check_logs(cfg, rates) {
                    holds.push((*rule, logs_target(snap), f));
                }
            }
        }
        holds
    }

    /// The alert `key` holds with finding `f`: it is made pending if new, its
    /// annotations are brought up to date, and it is returned if it fires now.
    fn hold(&mut self, key: (RuleName, String), f: rules::Finding, now: f64) -> Option<Alert> {
        let cfg = &self.config.rules[&key.0];
        let labels = &self.config.labels;
        let alert = self
            .active
            .entry(key)
            .or_insert_with_key(|(rule, target)| pending(*rule, target, cfg, labels, now));
        alert.annotations = BTreeMap::from([
            ("summary".to_string(), f.summary),
            ("description".to_string(), f.description),
        ]);
        if let Some(r) = f.recommendation {
            alert.annotations.insert("recommendation".into(), r);
        }
        if alert.state == AlertState::Pending && now - alert.active_since >= cfg.for_seconds {
            alert.state = AlertState::Firing;
            alert.fired_at = Some(now);
            return Some(alert.clone());
        }
        None
    }

    /// Drops every active alert not in `seen`; the firing ones resolve at `now`.
    fn resolve_all_but(
        &mut self,
        seen: &BTreeSet<(RuleName, String)>,
        now: f64,
        transitions: &mut Vec<Transition>,
    ) {
        let gone: Vec<_> = self
            .active
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(mut alert) = self.active.remove(&key) {
                if alert.state == AlertState::Firing {
                    alert.ends_at = Some(now);
                    transitions.push(Transition::Resolved(alert));
                }
            }
        }
    }
}

/// A new pending alert of `rule` on `target` (empty: no `target` label), with the
/// static labels, alertname and severity.
fn pending(
    rule: RuleName,
    target: &str,
    cfg: &RuleConfig,
    static_labels: &BTreeMap<String, String>,
    now: f64,
) -> Alert {
    let mut labels = static_labels.clone();
    labels.insert("alertname".into(), rule.as_str().into());
    if !target.is_empty() {
        labels.insert("target".into(), target.to_string());
    }
    labels.insert("severity".into(), cfg.severity.clone());
    Alert {
        alertname: rule.as_str(),
        target: target.to_string(),
        state: AlertState::Pending,
        labels,
        annotations: BTreeMap::new(),
        active_since: now,
        fired_at: None,
        ends_at: None,
    }
}

#[cfg(test)]
mod tests;
