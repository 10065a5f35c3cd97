//! The capacity families: pre-fork workers, their PSS, the worker hint, requests per
//! CPU-second and the request rate the allocation carries. Labels: `target`, and
//! `allocation="request|limit"` on the last.

use super::{Family, Num};
use crate::state::Snapshot;

/// Appends the capacity families, with rows for every target that has the figures.
pub(super) fn families<'a>(snap: &'a Snapshot, fams: &mut Vec<Family<'a>>) {
    let mut workers = Family::gauge(
        "outrider_target_workers",
        "Workers of the group's pre-fork server (children of its master that share one executable).",
    );
    let mut pss = Family::gauge(
        "outrider_worker_memory_pss_bytes",
        "Mean PSS per worker of the pre-fork server, read at sampling.pss_interval.",
    );
    let mut master = Family::gauge(
        "outrider_master_memory_pss_bytes",
        "PSS of the pre-fork server's master, read at sampling.pss_interval.",
    );
    let mut hint = Family::gauge(
        "outrider_recommended_workers",
        "Worker-count hint: workers_per_core x cores, bounded by what fits in the memory limit.",
    );
    let mut rpcs = Family::gauge(
        "outrider_requests_per_cpu_second",
        "HTTP requests per CPU-second used, over capacity.window.",
    );
    let mut carry = Family::gauge(
        "outrider_capacity_requests_per_second",
        "Requests per second the CPU request or limit carries at the observed CPU cost per request.",
    );
    for t in &snap.targets {
        let l = || [("target", t.name.as_str())];
        if let Some(w) = &t.workers {
            workers.add(l(), Num::U(w.workers));
            pss.add_opt(l(), w.worker_pss_bytes);
            master.add_opt(l(), w.master_pss_bytes);
        }
        if let Some(c) = &t.capacity {
            rpcs.add_opt(l(), c.requests_per_cpu_second);
            for (a, v) in [
                ("request", c.requests_per_second_at_cpu_request),
                ("limit", c.requests_per_second_at_cpu_limit),
            ] {
                carry.add_opt([("target", t.name.as_str()), ("allocation", a)], v);
            }
            if let Some(h) = &c.worker_hint {
                hint.add(l(), Num::U(h.recommended_workers));
            }
        }
    }
    fams.extend([workers, pss, master, hint, rpcs, carry]);
}
