//! The connection families: TCP sockets by state and by remote service, their
//! trend, and the scans' own cost.

use super::{Family, Num};

/// The targets' TCP connections at the latest scan, their trend, and the scans'
/// own cost. Label values come from fixed sets ([`Connections::STATES`],
/// [`ByService::LABELS`]).
///
/// [`Connections::STATES`]: crate::sample::sockets::Connections::STATES
/// [`ByService::LABELS`]: crate::sample::sockets::ByService::LABELS
pub(super) fn families<'a>(fams: &mut Vec<Family<'a>>, snap: &'a crate::state::Snapshot) {
    let mut states = Family::gauge(
        "outrider_target_tcp_connections",
        "TCP sockets the group's processes hold, by state, at the latest connection scan (time_wait: left on the group's listening ports).",
    );
    let mut services = Family::gauge(
        "outrider_target_tcp_established_connections",
        "Established TCP connections by the well-known service at the remote port (inbound ones count as other), at the latest connection scan.",
    );
    let mut growth = Family::gauge(
        "outrider_connection_growth_per_second",
        "Robust trend of connections held open (established + close_wait) over the leak window.",
    );
    for t in &snap.targets {
        let name = t.name.as_str();
        if let Some(c) = &t.connections {
            for (state, n) in c.by_state() {
                states.add([("target", name), ("state", state)], Num::U(n));
            }
            for (service, n) in c.established_by_service.rows() {
                services.add([("target", name), ("service", service)], Num::U(n));
            }
        }
        if let Some(v) = &t.verdicts {
            growth.add_opt([("target", name)], v.connection_leak.growth_per_second);
        }
    }
    fams.extend([states, services, growth]);
    if let Some(s) = &snap.connection_scans {
        let mut scans = Family::counter(
            "outrider_connection_scans",
            "Connection scans run (at most one per sampling.connections_interval).",
        );
        scans.add([], Num::U(s.scans));
        let mut took = Family::gauge(
            "outrider_connection_scan_duration_seconds",
            "Time the last connection scan took.",
        );
        if s.scans > 0 {
            took.add([], Num::F(s.last_duration_seconds));
        }
        fams.extend([scans, took]);
    }
}
