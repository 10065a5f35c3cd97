//! The bodies receivers are sent: Alertmanager's webhook v4 JSON, Alertmanager's
//! `/api/v2/alerts` array, and a Slack incoming-webhook text.
//!
//! The webhook body has exactly the fields and shape of what Alertmanager 0.25 POSTs
//! (see the fixtures in the test below), so a receiver written for Alertmanager takes
//! Outrider's unchanged.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};

use super::Alert;

/// Alertmanager's "no end time": the zero time of Go.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Unix seconds as RFC 3339 UTC with nanoseconds, as Alertmanager writes them.
pub fn rfc3339(unix: f64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs_f64(unix.max(0.0));
    humantime::format_rfc3339_nanos(t).to_string()
}

fn status(a: &Alert) -> &'static str {
    if a.ends_at.is_some() {
        "resolved"
    } else {
        "firing"
    }
}

/// Labels (or annotations) every alert shares, with the same value.
fn common(maps: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One alert as the webhook and the v2 API write it (without `status`/`fingerprint`
/// for the API).
fn alert_json(a: &Alert, generator_url: &str) -> Value {
    json!({
        "status": status(a),
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.fired_at.unwrap_or(a.active_since)),
        "endsAt": a.ends_at.map(rfc3339).unwrap_or_else(|| GO_ZERO_TIME.to_string()),
        "generatorURL": generator_url,
        "fingerprint": a.fingerprint(),
    })
}

/// The Alertmanager webhook v4 body for one group: `group_labels` are the values of
/// the receiver's `group_by` labels the group's alerts share.
pub fn webhook_v4(
    receiver: &str,
    alerts: &[Alert],
    external_url: &str,
    group_labels: &BTreeMap<String, String>,
) -> Value {
    let labels: Vec<&BTreeMap<String, String>> = alerts.iter().map(|a| &a.labels).collect();
    let annotations: Vec<&BTreeMap<String, String>> =
        alerts.iter().map(|a| &a.annotations).collect();
    let common_labels = common(&labels);
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let any_firing = alerts.iter().any(|a| a.ends_at.is_none());
    json!({
        "receiver": receiver,
        "status": if any_firing { "firing" } else { "resolved" },
        "alerts": alerts.iter().map(|a| alert_json(a, external_url)).collect::<Vec<_>>(),
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common(&annotations),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    })
}

/// The body of `POST /api/v2/alerts`: firing alerts end at `ends_at_firing` (in the
/// future, so Alertmanager resolves them itself if Outrider goes quiet); resolved
/// ones at their resolve time.
pub fn alertmanager_v2(alerts: &[Alert], ends_at_firing: f64, generator_url: &str) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|a| {
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.fired_at.unwrap_or(a.active_since)),
                    "endsAt": rfc3339(a.ends_at.unwrap_or(ends_at_firing)),
                    "generatorURL": generator_url,
                })
            })
            .collect(),
    )
}

/// A Slack incoming-webhook body for one group: a headline with the counts and the
/// group's labels, then the alerts, firing first.
///
/// ```text
/// *[FIRING:2, RESOLVED:1] target=app*
/// 🔥 FIRING *OOMKilled* [critical] app was OOM-killed
/// …
/// ```
pub fn slack_group(group_labels: &BTreeMap<String, String>, alerts: &[Alert]) -> Value {
    let firing = alerts.iter().filter(|a| a.ends_at.is_none()).count();
    let resolved = alerts.len() - firing;
    let mut counts = Vec::new();
    if firing > 0 {
        counts.push(format!("FIRING:{firing}"));
    }
    if resolved > 0 {
        counts.push(format!("RESOLVED:{resolved}"));
    }
    let labels = group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let headline = format!("*[{}]* {labels}", counts.join(", "));
    let mut ordered: Vec<Alert> = alerts.to_vec();
    ordered.sort_by_key(|a| a.ends_at.is_some());
    let lines = slack(&ordered)["text"].as_str().unwrap_or("").to_string();
    json!({ "text": format!("{}\n{lines}", headline.trim_end()) })
}

/// A Slack incoming-webhook body: one readable line per alert.
pub fn slack(alerts: &[Alert]) -> Value {
    let text = alerts
        .iter()
        .map(|a| {
            let icon = if a.ends_at.is_some() {
                "✅ RESOLVED"
            } else {
                "🔥 FIRING"
            };
            let summary = a
                .annotations
                .get("summary")
                .map(String::as_str)
                .unwrap_or("");
            let description = a
                .annotations
                .get("description")
                .map(String::as_str)
                .unwrap_or("");
            let severity = a.labels.get("severity").map(String::as_str).unwrap_or("");
            let mut line = format!("{icon} *{}* [{severity}] {summary}", a.alertname);
            if !description.is_empty() {
                line.push('\n');
                line.push_str(description);
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    json!({ "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertState;

    /// Real payloads captured from Alertmanager 0.25 (Debian package) on loopback.
    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/data/alertmanager-webhook-v4-{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn alert(resolved: bool) -> Alert {
        Alert {
            alertname: "TargetDown",
            target: "app".into(),
            state: AlertState::Firing,
            labels: BTreeMap::from([
                ("alertname".into(), "TargetDown".into()),
                ("severity".into(), "critical".into()),
                ("target".into(), "app".into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), "app is down".into())]),
            active_since: 1.8e9,
            fired_at: Some(1.8e9 + 60.0),
            ends_at: resolved.then_some(1.8e9 + 120.0),
        }
    }

    /// Same keys, recursively, and the same JSON types, as the real payload.
    fn same_shape(ours: &Value, real: &Value, path: &str) {
        match (ours, real) {
            (Value::Object(a), Value::Object(b))
                if !path.ends_with("abels") && !path.ends_with("nnotations") =>
            {
                let ka: Vec<_> = a.keys().collect();
                let kb: Vec<_> = b.keys().collect();
                assert_eq!(ka, kb, "keys at {path}");
                for k in a.keys() {
                    same_shape(&a[k], &b[k], &format!("{path}.{k}"));
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "length at {path}");
                for (x, y) in a.iter().zip(b) {
                    same_shape(x, y, &format!("{path}[]"));
                }
            }
            (a, b) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "type at {path}: {a} vs {b}"
            ),
        }
    }

    #[test]
    fn webhook_body_has_alertmanagers_shape() {
        for (name, resolved) in [("firing", false), ("resolved", true)] {
            let real = fixture(name);
            let group = BTreeMap::from([("alertname".to_string(), "TargetDown".to_string())]);
            let ours = webhook_v4(
                "webhook",
                &[alert(resolved)],
                "http://outrider:9717",
                &group,
            );
            same_shape(&ours, &real, "$");
            assert_eq!(ours["status"], real["status"]);
            assert_eq!(ours["alerts"][0]["status"], real["alerts"][0]["status"]);
            assert_eq!(ours["version"], "4");
            assert_eq!(ours["groupKey"], "{}:{alertname=\"TargetDown\"}");
        }
        let firing = webhook_v4("w", &[alert(false)], "", &BTreeMap::new());
        assert_eq!(firing["groupKey"], "{}:{}");
        assert_eq!(firing["alerts"][0]["endsAt"], GO_ZERO_TIME);
        assert_eq!(
            firing["alerts"][0]["startsAt"],
            "2027-01-15T08:01:00.000000000Z"
        );
    }

    #[test]
    fn slack_text_reads_as_a_sentence_per_alert() {
        let body = slack(&[alert(false), alert(true)]);
        assert_eq!(
            body["text"],
            "🔥 FIRING *TargetDown* [critical] app is down\n\n✅ RESOLVED *TargetDown* [critical] app is down"
        );
        assert_eq!(body.as_object().unwrap().len(), 1, "only text");
    }

    #[test]
    fn slack_group_has_a_headline_and_firing_first() {
        let mut oom = alert(false);
        oom.alertname = "OOMKilled";
        oom.labels.insert("alertname".into(), "OOMKilled".into());
        oom.annotations
            .insert("summary".into(), "app was OOM-killed".into());
        let group = BTreeMap::from([("target".to_string(), "app".to_string())]);
        let body = slack_group(&group, &[alert(true), oom]);
        assert_eq!(
            body["text"],
            "*[FIRING:1, RESOLVED:1]* target=app\n🔥 FIRING *OOMKilled* [critical] app was OOM-killed\n\n✅ RESOLVED *TargetDown* [critical] app is down"
        );
    }

    #[test]
    fn api_v2_firing_ends_in_the_future_resolved_at_resolve_time() {
        let body = alertmanager_v2(&[alert(false), alert(true)], 1.8e9 + 300.0, "");
        assert_eq!(body[0]["endsAt"], rfc3339(1.8e9 + 300.0));
        assert_eq!(body[1]["endsAt"], rfc3339(1.8e9 + 120.0));
        assert!(body[0].get("status").is_none());
    }
}
