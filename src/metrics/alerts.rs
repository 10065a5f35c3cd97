//! Outrider's own alerts and their delivery: `outrider_alerts{alertname,target,state}`,
//! `outrider_notifications_total{receiver,result}`, `outrider_notification_queue`.

use super::{Family, Num};
use crate::alerts::notify::ReceiverStats;
use crate::state::Snapshot;

/// Appends the alert and notification families.
pub(super) fn families<'a>(
    snap: &'a Snapshot,
    receivers: &'a [std::sync::Arc<ReceiverStats>],
    fams: &mut Vec<Family<'a>>,
) {
    let mut alerts = Family::gauge(
        "outrider_alerts",
        "1 per active alert, by alertname, target and state (pending or firing).",
    );
    for a in &snap.alerts {
        alerts.add(
            [
                ("alertname", a.alertname),
                ("target", a.target.as_str()),
                ("state", a.state.as_str()),
            ],
            Num::U(1),
        );
    }

    let mut notes = Family::counter("outrider_notifications",
        "Alert notifications by receiver: sent (delivered), failed (delivery attempts that did not succeed, each retry counts), dropped (given up: queue full or refused with a 4xx), rate_limited (delayed by the rate limit, once each; delivered later), unspooled (not written to the spool: kept in memory only, lost if Outrider restarts before delivery)."
    );
    let mut queue = Family::gauge(
        "outrider_notification_queue",
        "Notifications waiting to be delivered, by receiver.",
    );
    for r in receivers {
        use std::sync::atomic::Ordering::Relaxed;
        let n = r.name.as_str();
        for (result, v) in [
            ("sent", &r.sent),
            ("failed", &r.failed),
            ("dropped", &r.dropped),
            ("rate_limited", &r.rate_limited),
            ("unspooled", r.unspooled.as_ref()),
        ] {
            notes.add(
                [("receiver", n), ("result", result)],
                Num::U(v.load(Relaxed)),
            );
        }
        queue.add([("receiver", n)], Num::U(r.queued.load(Relaxed)));
    }
    fams.extend([alerts, notes, queue]);
}
