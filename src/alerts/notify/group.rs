//! Grouping, Alertmanager's way simplified: alerts whose `group_by` labels agree go
//! out together in one message.
//!
//! A new group waits `group_wait` before its first message, to collect the alerts
//! that change with it; after that, messages about the group are at least
//! `group_interval` apart. A message lists every alert of the group: the firing ones
//! and those resolved since the last message (which then leave the group). A group
//! with nothing new sends nothing: there is no repeat of an unchanged group. The
//! clock is passed in (`now`), so the schedule is tested without waiting.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::alerts::Alert;

/// The labels a group is known by, in name order.
pub type GroupLabels = BTreeMap<String, String>;

/// `group_by = ["..."]`: every label, so each alert is its own group.
pub const ALL_LABELS: &str = "...";

#[derive(Debug)]
struct Group {
    /// By fingerprint: a resolved alert replaces its firing self.
    alerts: BTreeMap<String, Alert>,
    /// Fingerprints of the firing alerts a message has told.
    told: BTreeSet<String>,
    /// When the next message is due; `None`: nothing new since the last one.
    due: Option<Instant>,
    last_sent: Option<Instant>,
}

/// The groups of one receiver.
#[derive(Debug)]
pub struct AlertGroups {
    by: Vec<String>,
    wait: Duration,
    interval: Duration,
    groups: BTreeMap<GroupLabels, Group>,
}

impl AlertGroups {
    pub fn new(by: Vec<String>, wait: Duration, interval: Duration) -> Self {
        AlertGroups {
            by,
            wait,
            interval,
            groups: BTreeMap::new(),
        }
    }

    fn labels_of(&self, a: &Alert) -> GroupLabels {
        if self.by.iter().any(|l| l == ALL_LABELS) {
            return a.labels.clone();
        }
        // A label the alert lacks is left out, as Alertmanager does.
        self.by
            .iter()
            .filter_map(|l| a.labels.get(l).map(|v| (l.clone(), v.clone())))
            .collect()
    }

    /// Takes a fired or resolved alert into its group and schedules the group.
    pub fn add(&mut self, alert: Alert, now: Instant) {
        let labels = self.labels_of(&alert);
        let g = self.groups.entry(labels.clone()).or_insert_with(|| Group {
            alerts: BTreeMap::new(),
            told: BTreeSet::new(),
            due: None,
            last_sent: None,
        });
        let fingerprint = alert.fingerprint();
        if alert.ends_at.is_some() && !g.told.contains(&fingerprint) {
            // Resolved before any message told it fired (a crash and a restart
            // within group_wait): nothing to tell, as Alertmanager tells nothing;
            // a lone "resolved" came before.
            g.alerts.remove(&fingerprint);
            let news = g
                .alerts
                .iter()
                .any(|(f, a)| a.ends_at.is_some() || !g.told.contains(f));
            if !news {
                g.due = None;
            }
            if g.alerts.is_empty() {
                self.groups.remove(&labels);
            }
            return;
        }
        g.alerts.insert(fingerprint, alert);
        if g.due.is_none() {
            g.due = Some(match g.last_sent {
                None => now + self.wait,
                Some(last) => (last + self.interval).max(now),
            });
        }
    }

    /// The groups whose message is due at `now`: their labels and alerts (sorted by
    /// labels). Resolved alerts leave their group; an empty group is forgotten, so
    /// its next alert waits `group_wait` again.
    pub fn take_due(&mut self, now: Instant) -> Vec<(GroupLabels, Vec<Alert>)> {
        let mut out = Vec::new();
        for (labels, g) in &mut self.groups {
            if g.due.is_none_or(|d| d > now) {
                continue;
            }
            let mut alerts: Vec<Alert> = g.alerts.values().cloned().collect();
            alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
            out.push((labels.clone(), alerts));
            g.alerts.retain(|_, a| a.ends_at.is_none());
            g.told = g.alerts.keys().cloned().collect();
            g.due = None;
            g.last_sent = Some(now);
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
        out
    }

    /// When the next group is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.groups.values().filter_map(|g| g.due).min()
    }

    /// Makes every group with news due now (on shutdown: no waiting).
    pub fn hurry(&mut self, now: Instant) {
        for g in self.groups.values_mut() {
            if let Some(d) = &mut g.due {
                *d = (*d).min(now);
            }
        }
    }

    /// Groups with a message still to send.
    pub fn pending(&self) -> usize {
        self.groups.values().filter(|g| g.due.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    pub(crate) fn alert(name: &'static str, target: &str, ends_at: Option<f64>) -> Alert {
        Alert {
            annotations: Default::default(),
            ..Alert::example(name, target, "critical", ends_at)
        }
    }

    fn names(alerts: &[Alert]) -> Vec<(&str, bool)> {
        alerts
            .iter()
            .map(|a| (a.alertname, a.ends_at.is_some()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn group_wait_collects_then_group_interval_spaces_the_messages() {
        let mut g = AlertGroups::new(
            vec!["target".into()],
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        let t0 = Instant::now();
        g.add(alert("TargetDown", "app", None), Instant::now());
        advance(Duration::from_secs(5)).await;
        g.add(alert("OOMKilled", "app", None), Instant::now());
        g.add(alert("OOMKilled", "db", None), Instant::now());
        assert_eq!(g.next_due(), Some(t0 + Duration::from_secs(10)));
        advance(Duration::from_millis(4999)).await;
        assert!(
            g.take_due(Instant::now()).is_empty(),
            "9.999 s: still waiting"
        );
        advance(Duration::from_millis(1)).await;
        let due = g.take_due(Instant::now());
        assert_eq!(due.len(), 1, "db's group waits until 15 s");
        assert_eq!(
            due[0].0,
            GroupLabels::from([("target".into(), "app".into())])
        );
        assert_eq!(
            names(&due[0].1),
            [("OOMKilled", false), ("TargetDown", false)]
        );
        advance(Duration::from_secs(5)).await;
        assert_eq!(g.take_due(Instant::now()).len(), 1, "db at 15 s");
        assert_eq!(g.pending(), 0);

        // A change 20 s after app's message waits until 60 s after it, and the
        // message lists the still-firing alert with the resolved one.
        advance(Duration::from_secs(15)).await;
        g.add(alert("OOMKilled", "app", Some(30.0)), Instant::now());
        assert_eq!(g.next_due(), Some(t0 + Duration::from_secs(70)));
        advance(Duration::from_secs(39)).await;
        assert!(g.take_due(Instant::now()).is_empty());
        advance(Duration::from_secs(1)).await;
        let due = g.take_due(Instant::now());
        assert_eq!(
            names(&due[0].1),
            [("OOMKilled", true), ("TargetDown", false)]
        );
        // The resolved alert left; nothing new means no message.
        advance(Duration::from_secs(600)).await;
        assert!(g.take_due(Instant::now()).is_empty());
        assert_eq!(g.next_due(), None);

        // An emptied group is forgotten: its next alert waits group_wait, not more.
        g.add(alert("TargetDown", "app", Some(700.0)), Instant::now());
        g.take_due(Instant::now() + Duration::from_secs(60));
        let t = Instant::now();
        g.add(alert("TargetDown", "app", None), t);
        assert_eq!(g.next_due(), Some(t + Duration::from_secs(10)));
    }

    /// An alert that fires and resolves within group_wait (a crash and a
    /// restart in 2 s) was told only as "resolved"; Alertmanager tells nothing
    /// then, and neither does a group whose other alerts are unchanged.
    #[tokio::test(start_paused = true)]
    async fn an_alert_resolved_before_it_was_told_is_not_told() {
        let mut g = AlertGroups::new(
            vec!["target".into()],
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        g.add(alert("TargetDown", "app", None), Instant::now());
        advance(Duration::from_secs(2)).await;
        g.add(alert("TargetDown", "app", Some(2.0)), Instant::now());
        assert_eq!((g.pending(), g.next_due()), (0, None));
        advance(Duration::from_secs(60)).await;
        assert!(g.take_due(Instant::now()).is_empty());
        // Told, then another fires and resolves before the next message: nothing.
        g.add(alert("OOMKilled", "app", None), Instant::now());
        advance(Duration::from_secs(10)).await;
        assert_eq!(g.take_due(Instant::now()).len(), 1);
        g.add(alert("TargetDown", "app", None), Instant::now());
        g.add(alert("TargetDown", "app", Some(75.0)), Instant::now());
        assert_eq!(g.next_due(), None);
        advance(Duration::from_secs(120)).await;
        assert!(g.take_due(Instant::now()).is_empty());
        // The told one resolving is told.
        g.add(alert("OOMKilled", "app", Some(200.0)), Instant::now());
        let due = g.take_due(Instant::now());
        assert_eq!(names(&due[0].1), [("OOMKilled", true)]);
    }

    #[tokio::test(start_paused = true)]
    async fn group_by_all_labels_and_hurry() {
        let mut g = AlertGroups::new(
            vec![ALL_LABELS.into()],
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        g.add(alert("TargetDown", "app", None), Instant::now());
        g.add(alert("OOMKilled", "app", None), Instant::now());
        assert_eq!(g.pending(), 2);
        g.hurry(Instant::now());
        let due = g.take_due(Instant::now());
        assert_eq!(due.len(), 2, "one group per alert");
        assert_eq!(due[0].0.len(), 3, "every label is a group label");
    }
}
